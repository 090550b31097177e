"""The PromQL tokenizer KPL034 reads metric names with: what is a selector and what is not."""

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.promql import (
    grafana_query_names,
    metric_names,
    tokens,
)


@pytest.mark.parametrize(
    "expr,names",
    [
        # functions and aggregations are not metrics; by/without lists are labels
        (
            'sum by (method, error) (rate(karpenter_cloudprovider_errors_total{error!="X"}[10m])) > 0',
            ["karpenter_cloudprovider_errors_total"],
        ),
        ("sum(rate(a_total[5m])) without (instance, pod)", ["a_total"]),
        ('topk(5, count_values("version", karpenter_build_info))', ["karpenter_build_info"]),
        # histogram_quantile over a subquery-free rate, with a number argument
        (
            "histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[10m]))) > 60",
            ["x_seconds_bucket"],
        ),
        # vector matching: on()/ignoring() and group_left/group_right label lists, with and without labels
        (
            "a / on (nodepool, resource_type) group_left(zone) b * ignoring(x) group_right c + on() d",
            ["a", "b", "c", "d"],
        ),
        ("a * on(x) group_left b", ["a", "b"]),
        # offset and @ modifiers, durations, a subquery with a step
        ("max_over_time(rate(m_total[5m])[1h:5m] offset 1d) @ start()", ["m_total"]),
        ("rate(m_total[1h30m:]) offset -5m", ["m_total"]),
        # label matchers whose values look like metrics are values; regexes too
        ('up{job="karpenter_old_name", namespace=~"karpenter_.*", pod!~"karpenter_x"} == 1', ["up"]),
        # keywords, bool modifier, set operators, Inf/NaN
        ("a > bool 0 and b or c unless d > Inf", ["a", "b", "c", "d"]),
        ("a AND ON(x) b", ["a", "b"]),
        # string literals and comments
        ('label_replace(a, "dst", "karpenter_x $1", "src", "(.*)") # karpenter_in_comment', ["a"]),
        # the name inside braces: __name__ equality and PromQL 3 quoted names; a __name__ regex is not a name
        (
            '{__name__="karpenter_a", job="x"} + {"karpenter_b", x="y"} + {__name__=~"karpenter_c.*"}',
            ["karpenter_a", "karpenter_b"],
        ),
        # Grafana variables in ranges and selectors
        (
            'sum(rate(a_total{nodepool=~"$nodepool"}[$__rate_interval])) / ${scale:raw} + b[[[interval]]]',
            ["a_total", "b"],
        ),
        # recording-rule names with colons; a name used twice is listed once
        ("karpenter:nodepool_usage:ratio + karpenter:nodepool_usage:ratio", ["karpenter:nodepool_usage:ratio"]),
        # numbers of every form are not names
        ("a * 1e3 + 0x1f - .5 + 2.5e-3", ["a"]),
        # an aggregation's label list may come first; a metric named like an aggregation stays a metric when bare
        ("count without (x) (y) + count", ["y", "count"]),
    ],
)
def test_metric_names(expr, names):
    assert metric_names(expr) == names


def test_broken_expressions_do_not_raise():
    assert metric_names("sum(rate(a[5m]") == ["a"]
    assert metric_names('a{x="unterminated') == ["a"]
    assert metric_names("") == [] and metric_names(None) == []


def test_tokens_keep_strings_and_durations_whole():
    assert tokens('a{b="c d"}[5m]') == [
        ("ident", "a"),
        ("op", "{"),
        ("ident", "b"),
        ("op", "="),
        ("string", '"c d"'),
        ("op", "}"),
        ("op", "["),
        ("number", "5m"),
        ("op", "]"),
    ]


@pytest.mark.parametrize(
    "query,names",
    [
        ('label_values(karpenter_nodepools_limit{resource_type="cpu"}, nodepool)', ["karpenter_nodepools_limit"]),
        ("label_values(nodepool)", []),  # a label name, no selector
        ("query_result(topk(5, sum by (nodepool) (karpenter_nodes_allocatable)))", ["karpenter_nodes_allocatable"]),
        ("label_names(karpenter_pods_state)", ["karpenter_pods_state"]),
        ("metrics(karpenter_.*)", []),  # a regex over names
        ("karpenter_build_info", ["karpenter_build_info"]),  # plain PromQL
    ],
)
def test_grafana_templating_queries(query, names):
    assert grafana_query_names(query) == names
