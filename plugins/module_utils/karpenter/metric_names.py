# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lint rule KPL034: PromQL of PrometheusRules and Grafana dashboards must name metrics the target Karpenter exports.

The names come from ``metrics_data`` (generated from the Karpenter Go sources by hack/gen_karpenter_metrics.py), one
table per supported minor version. Only names with the ``karpenter_`` prefix are checked; every other name
(controller-runtime, client-go, Go runtime, kube-state-metrics, recording rules, ...) passes. A histogram is
exported as ``<name>_bucket``/``_sum``/``_count`` only (Karpenter declares no native histograms), a summary as
``<name>`` (with ``quantile``), ``_sum`` and ``_count``.

``lint_metrics(objects, karpenter_version=None)`` checks PrometheusRule objects (``spec.groups[].rules[].expr``),
Grafana dashboards (a dashboard dict, or ``{"dashboard": {...}}`` as the HTTP API has it) and ConfigMaps holding
dashboards (``data`` keys ending in ``.json``): panel targets (nested rows and panels included) and templating
queries. Recording rules defined by any PrometheusRule of the batch are known names.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable

from .issues import Issue, join_path, key, object_ref
from .lint import RULES, find_obsolete_metrics
from .metrics_data import METRICS, SOURCES
from .promql import grafana_query_names, metric_names

RULE = "KPL034"
PREFIX = "karpenter_"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
SUMMARY_SUFFIXES = ("_sum", "_count")
# datasource types whose targets carry an ``expr`` that is not PromQL
_NOT_PROMQL = ("loki", "tempo", "elasticsearch", "cloudwatch", "influxdb")


def supported_versions() -> list[str]:
    """The Karpenter minor versions with a metric table, oldest first."""
    return sorted(METRICS, key=lambda v: tuple(int(x) for x in v.split(".")))


def minor_version(version: str | None) -> str:
    """The table key (``"1.15"``) of a Karpenter version (``1.15.0``, ``v1.15.2``, ``1.15``); None is the newest.
    Raises ValueError for anything else, or for a version without a table."""
    if version is None:
        return supported_versions()[-1]
    text = str(version).strip()
    parts = text[1:].split(".") if text[:1] in ("v", "V") else text.split(".")
    head = parts[:2]
    tail = parts[2].split("-", 1)[0].split("+", 1)[0] if len(parts) > 2 else "0"
    if len(parts) > 3 or len(head) != 2 or not all(p.isdigit() for p in head + [tail]):
        raise ValueError("karpenter_version %r is not a version like 1.15.0" % (text,))
    found = "%d.%d" % (int(head[0]), int(head[1]))
    if found not in METRICS:
        raise ValueError(
            "no metric table for Karpenter %s (supported: %s; hack/gen_karpenter_metrics.py adds one)"
            % (found, ", ".join(supported_versions()))
        )
    return found


def exported_series(table: dict[str, str]) -> set[str]:
    """Every series name a table's metrics are scraped as (histogram and summary suffixes included)."""
    out = set()
    for name, kind in table.items():
        if kind == "histogram":
            out.update(name + s for s in HISTOGRAM_SUFFIXES)
        elif kind == "summary":
            out.add(name)
            out.update(name + s for s in SUMMARY_SUFFIXES)
        else:
            out.add(name)
    return out


def check_name(name: str, minor: str) -> tuple[str, str | None] | None:
    """``None`` when Karpenter ``minor`` exports ``name`` (or it is not a ``karpenter_`` name), else
    ``(message, hint)``."""
    if not name.startswith(PREFIX):
        return None
    table = METRICS[minor]
    series = exported_series(table)
    if name in series:
        return None
    where = source_label(minor)
    if table.get(name) == "histogram":
        return (
            "%s is a histogram: %s exports only its _bucket, _sum and _count series" % (name, where),
            "histogram_quantile(0.99, sum by (le) (rate(%s_bucket[5m]))), or %s_sum / %s_count" % (name, name, name),
        )
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and table.get(base) == "summary":
            return (
                "%s is a summary: %s exports %s{quantile=...}, its _sum and _count series, no buckets"
                % (base, where, base),
                '%s{quantile="0.99"}' % base,
            )
    message = "metric %s is not exported by %s" % (name, where)
    elsewhere = [v for v in supported_versions() if v != minor and name in exported_series(METRICS[v])]
    if elsewhere:
        message += " (it is by Karpenter %s)" % ", ".join(elsewhere)
    obsolete = find_obsolete_metrics(name)
    replacement = obsolete[0][1] if obsolete and obsolete[0][0] == name else None
    if replacement in series:
        return message, "use %s (the v1 name of this pre-v1 metric)" % replacement
    hints = []
    close = closest_name(name, table)
    if close:
        hints.append("closest existing name: %s" % close)
    if replacement and replacement.startswith("("):
        hints.append("a pre-v1 metric v1 dropped without a replacement")
    elif replacement:
        hints.append("v1 replacement of this pre-v1 metric: %s" % replacement)
    return message, "; ".join(hints) or None


def closest_name(name: str, table: dict[str, str]) -> str | None:
    """The exported series closest to ``name`` (difflib on the part after ``karpenter_``, suffixes kept apart), or
    None when nothing is close enough."""
    base, suffix = name, ""
    for s in HISTOGRAM_SUFFIXES:
        if name.endswith(s):
            base, suffix = name[: -len(s)], s
    candidates = {n[len(PREFIX) :]: n for n in table if n.startswith(PREFIX)}
    match = difflib.get_close_matches(base[len(PREFIX) :], sorted(candidates), n=1, cutoff=0.6)
    if not match and suffix:  # karpenter_x_count where karpenter_x_count is a counter's own name
        base, suffix = name, ""
        match = difflib.get_close_matches(base[len(PREFIX) :], sorted(candidates), n=1, cutoff=0.6)
    if not match:
        return None
    found = candidates[match[0]]
    kind = table[found]
    if kind == "histogram":
        return found + (suffix or "_bucket")
    if kind == "summary" and suffix in SUMMARY_SUFFIXES:
        return found + suffix
    return found


def source_label(minor: str) -> str:
    """``Karpenter 1.15 (v1.15.0)``: the minor and the module versions its table was read from."""
    versions = sorted(set(SOURCES[minor].values()))
    return "Karpenter %s (%s)" % (minor, ", ".join(versions))


def _issue(ref: str, path: str, message: str, hint: str | None) -> Issue:
    return Issue(ref, path, RULE, message, RULES[RULE][0], source="lint", hint=hint)


def _check_expr(expr, names_of, ref, path, what, minor, known, out):
    if not isinstance(expr, str):
        return
    for name in names_of(expr):
        if name in known:
            continue
        problem = check_name(name, minor)
        if problem:
            out.append(_issue(ref, path, "%s: %s" % (what, problem[0]), problem[1]))


def _records(objs: list) -> set[str]:
    out = set()
    for obj in objs:
        if isinstance(obj, dict) and obj.get("kind") == "PrometheusRule":
            for group in _list(_dict(obj.get("spec")).get("groups")):
                for rule in _list(_dict(group).get("rules")):
                    if isinstance(_dict(rule).get("record"), str):
                        out.add(rule["record"])
    return out


def _dict(v):
    return v if isinstance(v, dict) else {}


def _list(v):
    return v if isinstance(v, list) else []


def _lint_prometheus_rule(obj, ref, minor, known, out):
    for gi, group in enumerate(_list(_dict(obj.get("spec")).get("groups"))):
        for ri, rule in enumerate(_list(_dict(group).get("rules"))):
            rule = _dict(rule)
            label = (
                "alert %s" % rule["alert"]
                if isinstance(rule.get("alert"), str)
                else "record %s" % rule["record"]
                if isinstance(rule.get("record"), str)
                else "rule %d of group %s" % (ri, _dict(group).get("name"))
            )
            path = "spec.groups[%d].rules[%d].expr" % (gi, ri)
            _check_expr(rule.get("expr"), metric_names, ref, path, label, minor, known, out)


def _datasource_type(ds):
    return ds.get("type") if isinstance(ds, dict) and isinstance(ds.get("type"), str) else None


def _lint_panels(panels, prefix, ref, minor, known, out, inherited=None):
    for pi, panel in enumerate(_list(panels)):
        panel = _dict(panel)
        ppath = join_path(prefix, pi)
        title = panel.get("title") if isinstance(panel.get("title"), str) else None
        label = "panel %r" % title if title else "panel #%d" % pi
        ds_type = _datasource_type(panel.get("datasource")) or inherited
        for ti, target in enumerate(_list(panel.get("targets"))):
            target = _dict(target)
            if (_datasource_type(target.get("datasource")) or ds_type) in _NOT_PROMQL:
                continue
            tpath = join_path(join_path(join_path(ppath, "targets"), ti), "expr")
            what = "%s, query %s" % (label, target.get("refId") or ti)
            _check_expr(target.get("expr"), metric_names, ref, tpath, what, minor, known, out)
        _lint_panels(panel.get("panels"), join_path(ppath, "panels"), ref, minor, known, out, ds_type)


def _lint_dashboard(dash, prefix, ref, minor, known, out):
    _lint_panels(dash.get("panels"), join_path(prefix, "panels"), ref, minor, known, out)
    for ri, row in enumerate(_list(dash.get("rows"))):  # pre-5.0 dashboards
        _lint_panels(
            _dict(row).get("panels"),
            join_path(join_path(join_path(prefix, "rows"), ri), "panels"),
            ref,
            minor,
            known,
            out,
        )
    for vi, var in enumerate(_list(_dict(dash.get("templating")).get("list"))):
        var = _dict(var)
        if var.get("type") != "query" or _datasource_type(var.get("datasource")) in _NOT_PROMQL:
            continue  # datasource, custom, interval, ... variables hold no PromQL
        query, qpath = var.get("query"), join_path(join_path(join_path(prefix, "templating.list"), vi), "query")
        if isinstance(query, dict):
            query, qpath = query.get("query"), join_path(qpath, "query")
        what = "templating variable %s" % (var.get("name") or vi)
        _check_expr(query, grafana_query_names, ref, qpath, what, minor, known, out)


def _is_dashboard(value) -> bool:
    return isinstance(value, dict) and any(k in value for k in ("panels", "rows", "templating"))


def lint_metrics(objects: Iterable, karpenter_version: str | None = None) -> list[Issue]:
    """KPL034 issues of a batch (PrometheusRules, Grafana dashboards, dashboard ConfigMaps); other objects are
    skipped. ``karpenter_version``: the target Karpenter (``1.15.0``; default: the newest table). Raises ValueError
    for a version without a table."""
    minor = minor_version(karpenter_version)
    objs = list(objects or [])
    known = _records(objs)
    out: list[Issue] = []
    for i, obj in enumerate(objs):
        if not isinstance(obj, dict):
            continue
        kind = obj.get("kind")
        if kind == "PrometheusRule":
            _lint_prometheus_rule(obj, object_ref(obj, i), minor, known, out)
        elif kind == "ConfigMap":
            ref = object_ref(obj, i)
            for name, text in sorted(_dict(obj.get("data")).items()):
                if not (isinstance(name, str) and name.endswith(".json") and isinstance(text, str)):
                    continue
                path = join_path("data", key(name))
                try:
                    dash = json.loads(text)
                except ValueError as exc:
                    out.append(_issue(ref, path, "not valid JSON, its metric names cannot be checked: %s" % exc, None))
                    continue
                if _is_dashboard(dash):
                    _lint_dashboard(dash, path, ref, minor, known, out)
        elif kind is None and (_is_dashboard(obj) or _is_dashboard(obj.get("dashboard"))):
            dash, prefix = (obj["dashboard"], "dashboard") if _is_dashboard(obj.get("dashboard")) else (obj, "")
            name = dash.get("title") or dash.get("uid") or "#%d" % i
            _lint_dashboard(dash, prefix, "GrafanaDashboard/%s" % name, minor, known, out)
    return out
