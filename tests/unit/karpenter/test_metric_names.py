"""KPL034: metric names of PrometheusRules and Grafana dashboards against the table generated from the Karpenter Go
sources (hack/gen_karpenter_metrics.py), and the generator itself."""

import importlib.util
import json
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.karpenter_eks.platform.plugins.filter.karpenter import FilterModule
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import metrics_data
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.lint import find_obsolete_metrics
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.metric_names import (
    check_name,
    exported_series,
    lint_metrics,
    minor_version,
    supported_versions,
)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
LINT_METRICS = FilterModule().filters()["karpenter_lint_metrics"]


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "gen_karpenter_metrics", os.path.join(REPO, "hack", "gen_karpenter_metrics.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = load_generator()


def prometheus_rule(*exprs, records=()):
    rules = [{"alert": "Alert%d" % i, "expr": e} for i, e in enumerate(exprs)]
    rules += [{"record": name, "expr": expr} for name, expr in records]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "karpenter", "namespace": "karpenter"},
        "spec": {"groups": [{"name": "g", "rules": rules}]},
    }


# ---- the committed table


def test_table_is_what_the_generator_reads_from_the_module_cache():
    """Re-generates the table from the Go module cache; skipped when the modules are not there (no download)."""
    cache = GEN.module_cache()
    versions = GEN.supported_versions()
    missing = [
        "%s@%s" % (mod, ver)
        for pair in versions.values()
        for mod, ver in pair.items()
        if not os.path.isdir(GEN.module_dir(cache, mod, ver))
    ]
    if missing:
        pytest.skip("not in the Go module cache %s: %s (sandbox/build.sh downloads them)" % (cache, ", ".join(missing)))
    sources, metrics = GEN.build_table(cache, versions)
    assert sources == metrics_data.SOURCES
    assert metrics == metrics_data.METRICS
    with open(GEN.OUT, encoding="utf-8") as fh:
        assert fh.read() == GEN.render(sources, metrics)


def test_table_covers_the_versions_the_roles_support():
    assert supported_versions() == ["1.14", "1.15"]
    with open(os.path.join(REPO, "roles", "karpenter", "defaults", "main.yml")) as fh:
        chart = yaml.safe_load(fh)["karpenter_chart_version"]
    assert minor_version(chart) == "1.15"
    for minor, table in metrics_data.METRICS.items():
        assert len(table) > 50 and all(name.startswith("karpenter_") for name in table), minor
        assert set(table.values()) <= {"counter", "gauge", "histogram", "summary"}


def test_kpl027_never_calls_an_exported_name_obsolete():
    for minor, table in metrics_data.METRICS.items():
        flagged = [n for n in sorted(exported_series(table)) if find_obsolete_metrics(n)]
        assert flagged == [], minor


# ---- names


def test_known_names_histogram_and_summary_suffixes():
    assert check_name("karpenter_nodepools_usage", "1.15") is None
    assert check_name("karpenter_nodes_allocatable", "1.15") is None  # still exported by v1 (not a v0.x leftover)
    for suffix in ("_bucket", "_sum", "_count"):  # a histogram's series
        assert check_name("karpenter_interruption_message_queue_duration_seconds" + suffix, "1.15") is None
    for name in ("karpenter_pods_startup_duration_seconds", "karpenter_pods_startup_duration_seconds_sum"):
        assert check_name(name, "1.15") is None  # a summary: the name itself (quantiles), _sum, _count
    message, hint = check_name("karpenter_interruption_message_queue_duration_seconds", "1.15")
    assert "is a histogram" in message and "_bucket" in hint
    message, hint = check_name("karpenter_pods_startup_duration_seconds_bucket", "1.15")
    assert "is a summary" in message and 'quantile="0.99"' in hint
    assert check_name("karpenter_nodepools_usage_total", "1.15") is not None  # a suffix on a gauge is no series


@pytest.mark.parametrize(
    "name,hint",
    [
        # removed v0.x names: the v1 name when KPL027 knows one, else the closest existing name
        ("karpenter_nodes_termination_time_seconds", "use karpenter_nodes_termination_duration_seconds"),
        ("karpenter_pods_startup_time_seconds", "use karpenter_pods_startup_duration_seconds"),
        ("karpenter_nodepool_usage", "closest existing name: karpenter_nodepools_usage"),
        ("karpenter_nodes_created", "closest existing name: karpenter_nodes_created_total"),
        ("karpenter_provisioner_scheduling_duration_seconds", "dropped without a replacement"),
        ("karpenter_interruption_message_latency_time_seconds_bucket", "message_queue_duration_seconds_bucket"),
        # typos
        ("karpenter_scheduler_queue_dept", "closest existing name: karpenter_scheduler_queue_depth"),
        ("karpenter_nodeclaims_launched_total", "closest existing name: karpenter_nodeclaims_"),
    ],
)
def test_unknown_names_with_a_suggestion(name, hint):
    message, got = check_name(name, "1.15")
    assert message == "metric %s is not exported by Karpenter 1.15 (v1.15.0)" % name
    assert hint in got


def test_no_suggestion_when_nothing_is_close():
    message, hint = check_name("karpenter_zzzzzzzz", "1.15")
    assert "not exported" in message and hint is None


def test_versions_differ():
    # the reboot controller's metrics are new in 1.15
    assert check_name("karpenter_nodes_reboots_total", "1.15") is None
    message = check_name("karpenter_nodes_reboots_total", "1.14")[0]
    assert "Karpenter 1.14 (v1.14.3)" in message and "(it is by Karpenter 1.15)" in message


def test_other_names_pass():
    rule = prometheus_rule(
        'absent(up{job="karpenter"} == 1)',
        'sum(leader_election_master_status{name="karpenter-leader-election"}) < 1',
        "rate(controller_runtime_reconcile_errors_total[5m]) + go_goroutines + operator_status_condition_count",
    )
    assert lint_metrics([rule], "1.15.0") == []


@pytest.mark.parametrize("version,minor", [("1.15.0", "1.15"), ("v1.14.3", "1.14"), ("1.15", "1.15"), (None, "1.15")])
def test_versions_accepted(version, minor):
    assert minor_version(version) == minor


@pytest.mark.parametrize("version", ["1.16.0", "0.37.0", "latest", "", "1", "1.15.0.1"])
def test_versions_refused(version):
    with pytest.raises(ValueError):
        minor_version(version)


# ---- objects


def test_prometheus_rule_issues_name_the_alert_the_path_and_skip_recording_rules():
    rule = prometheus_rule(
        "sum by (nodepool) (karpenter_nodepools_usage) > 0",
        "karpenter:usage:ratio > 0.9 and karpenter_nodepool_limit > 0",
        records=[("karpenter_custom_ratio", "karpenter_nodepools_usage / karpenter_nodepools_limit")],
    )
    rule["spec"]["groups"][0]["rules"].append({"alert": "UsesRecord", "expr": "karpenter_custom_ratio > 1"})
    (issue,) = lint_metrics([rule], "1.15.0")
    assert issue.object_ref == "PrometheusRule/karpenter" and issue.path == "spec.groups[0].rules[1].expr"
    assert issue.message.startswith("alert Alert1: metric karpenter_nodepool_limit is not exported")
    assert "karpenter_nodepools_limit" in issue.hint
    assert issue.to_dict()["text"].endswith("(KPL034); hint: " + issue.hint)


def dashboard():
    return {
        "title": "Karpenter",
        "panels": [
            {"title": "Nodes", "targets": [{"refId": "A", "expr": "sum(karpenter_nodes_created_total)"}]},
            {
                "type": "row",
                "title": "Collapsed",
                "collapsed": True,
                "panels": [{"title": "Inner", "targets": [{"refId": "B", "expr": "karpenter_machines_created"}]}],
            },
            {
                "title": "Logs",
                "datasource": {"type": "loki", "uid": "l"},
                "targets": [{"refId": "C", "expr": 'sum(count_over_time({app="karpenter_not_a_metric"}[5m]))'}],
            },
        ],
        "rows": [{"panels": [{"title": "Old row", "targets": [{"expr": "karpenter_pods_startup_time_seconds"}]}]}],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {"name": "pool", "type": "query", "query": "label_values(karpenter_nodepool_limit, nodepool)"},
                {
                    "name": "zone",
                    "type": "query",
                    "query": {"query": "label_values(karpenter_nodes_allocatable, zone)"},
                },
                {"name": "window", "type": "interval", "query": "karpenter_not_a_query,5m"},
            ]
        },
    }


def test_dashboard_panels_rows_and_templating():
    issues = lint_metrics([dashboard()], "1.15.0")
    assert [(i.object_ref, i.path) for i in issues] == [
        ("GrafanaDashboard/Karpenter", "panels[1].panels[0].targets[0].expr"),
        ("GrafanaDashboard/Karpenter", "rows[0].panels[0].targets[0].expr"),
        ("GrafanaDashboard/Karpenter", "templating.list[1].query"),
    ]
    assert issues[0].message.startswith("panel 'Inner', query B: metric karpenter_machines_created")
    assert issues[2].message.startswith("templating variable pool: metric karpenter_nodepool_limit")
    # the same dashboard as the HTTP API wraps it
    assert len(lint_metrics([{"dashboard": dashboard(), "overwrite": True}], "1.15.0")) == 3


def test_dashboard_configmap():
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "dash", "namespace": "monitoring"},
        "data": {"k.json": json.dumps(dashboard()), "notes.txt": "karpenter_machines_created", "bad.json": "{"},
    }
    issues = lint_metrics([cm], "1.15.0")
    assert [i.path for i in issues] == [
        "data[bad.json]",
        "data[k.json].panels[1].panels[0].targets[0].expr",
        "data[k.json].rows[0].panels[0].targets[0].expr",
        "data[k.json].templating.list[1].query",
    ]
    assert "not valid JSON" in issues[0].message
    assert all(i.object_ref == "ConfigMap/dash" and i.rule == "KPL034" and i.is_error for i in issues)


# ---- the role's own content passes


def test_the_monitoring_roles_dashboard_is_clean_for_every_supported_version():
    with open(os.path.join(REPO, "roles", "monitoring", "files", "karpenter-dashboard.json")) as fh:
        dash = json.load(fh)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs and any("karpenter_" in e for e in exprs)
    for version in supported_versions():
        assert lint_metrics([dash], version) == []


# ---- the filter


def test_filter_accepts_yaml_and_returns_dicts():
    text = yaml.safe_dump_all([prometheus_rule("karpenter_nodes_termination_time_seconds > 1"), {"kind": "Other"}])
    (issue,) = LINT_METRICS(text, karpenter_version="1.15.0")
    assert issue["rule"] == "KPL034" and issue["severity"] == "error" and "hint" in issue
    assert LINT_METRICS([prometheus_rule("karpenter_nodes_termination_duration_seconds > 1")]) == []


def test_filter_refuses_a_version_without_a_table():
    with pytest.raises(AnsibleFilterError, match="no metric table for Karpenter 1.16"):
        LINT_METRICS([prometheus_rule("up")], karpenter_version="1.16.0")
    with pytest.raises(AnsibleFilterError, match="karpenter_version must be a string"):
        LINT_METRICS([prometheus_rule("up")], karpenter_version=1.15)


# ---- the generator on a small module tree


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_modules(tmp_path, core_extra="", provider_extra=""):
    cache = tmp_path / "mod"
    core = cache / "sigs.k8s.io" / "karpenter@v9.9.0"
    provider = cache / "github.com" / "aws" / "karpenter-provider-aws@v9.9.1"
    write(core / "pkg" / "metrics" / "constants.go", 'package metrics\n\nconst (\n\tNamespace = "karpenter"\n)\n')
    write(
        core / "pkg" / "metrics" / "metrics.go",
        'package metrics\n\nimport "github.com/prometheus/client_golang/prometheus"\n\n'
        'const NodeSubsystem = "nodes"\n\n'
        "var A = prometheus.NewCounterVec(prometheus.CounterOpts{\n"
        '\tNamespace: Namespace, Subsystem: NodeSubsystem, Name: "created_total", Help: "x, y {z}",\n'
        "}, []string{})\n"
        '// prometheus.GaugeOpts{Name: "in_a_comment"}\n' + core_extra,
    )
    write(core / "pkg" / "test" / "m.go", 'package test\nvar T = prometheus.GaugeOpts{Name: "test_only"}\n')
    write(core / "pkg" / "metrics" / "m_test.go", 'package metrics\nvar T = prometheus.GaugeOpts{Name: "in_test"}\n')
    write(
        provider / "pkg" / "interruption" / "metrics.go",
        'package interruption\n\nimport (\n\t"github.com/prometheus/client_golang/prometheus"\n\n'
        '\tkm "sigs.k8s.io/karpenter/pkg/metrics"\n)\n\n'
        'const sub = "interrup" + "tion"\n\n'
        "var H = prometheus.HistogramOpts{\n\tNamespace: km.Namespace,\n\tSubsystem: sub,\n"
        '\tName: "message_queue_duration_seconds",\n\tBuckets: []float64{1, 2},\n}\n'
        'var S = prometheus.SummaryOpts{Namespace: km.Namespace, Name: "build_seconds", Objectives: map[float64]float64{0.5: 0.05}}\n'
        + provider_extra,
    )
    versions = {"9.9": {GEN.CORE: "v9.9.0", GEN.PROVIDER: "v9.9.1"}}
    return str(cache), versions


def test_generator_composes_names_like_client_golang(tmp_path):
    cache, versions = fake_modules(tmp_path)
    sources, metrics = GEN.build_table(cache, versions)
    assert sources == versions
    assert metrics == {
        "9.9": {
            "karpenter_build_seconds": "summary",
            "karpenter_interruption_message_queue_duration_seconds": "histogram",
            "karpenter_nodes_created_total": "counter",
        }
    }
    text = GEN.render(sources, metrics)
    namespace = {}
    exec(compile(text, "metrics_data.py", "exec"), namespace)  # the rendered module is importable
    assert namespace["METRICS"] == metrics and namespace["SOURCES"] == sources


@pytest.mark.parametrize(
    "extra,needle",
    [
        ('var X = prometheus.GaugeOpts{Namespace: km.Namespace, Name: fmt.Sprintf("a_%d", 1)}\n', "cannot evaluate"),
        ("var X = prometheus.GaugeOpts{Namespace: km.Namespace, Name: missing}\n", "no string constant missing"),
        ('var X = prometheus.GaugeOpts{Namespace: km.Namespace, Help: "no name"}\n', "without a Name"),
        (
            'var X = prometheus.HistogramOpts{Name: "n", NativeHistogramBucketFactor: 1.1}\n',
            "native histogram",
        ),
        ('var X = prometheus.GaugeOpts{Namespace: km.Namespace, Name: "build_seconds"}\n', "declared as"),
    ],
)
def test_generator_stops_on_what_it_cannot_read(tmp_path, extra, needle):
    cache, versions = fake_modules(tmp_path, provider_extra=extra)
    with pytest.raises(GEN.GenError, match=needle):
        GEN.build_table(cache, versions)


def test_generator_versions_come_from_the_sandbox_go_mods():
    versions = GEN.supported_versions()
    assert versions == {minor: metrics_data.SOURCES[minor] for minor in versions}
    assert GEN.minor("v1.14.1-0.20260819221709-6e7eab7a0f48") == "1.14"
    assert GEN.escape_module_path("github.com/Azure/x") == "github.com/!azure/x"
