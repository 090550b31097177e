# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Self-contained HTML for a cost report: inline SVG charts generated here, no JavaScript, no CDN.

Every chart is an ``<svg class="chart" id="chart-...">`` with a ``<title>`` and one ``<rect>`` per bar
segment carrying ``data-series``/``data-value`` attributes, so tests (and screen readers) can read them.
"""

from __future__ import annotations

import re
from html import escape

from . import fmt, model

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#718096", "#e53e3e")
CT_COLOURS = {"on-demand": "#2b6cb0", "spot": "#38a169", "reserved": "#805ad5", "savings-plans": "#b7791f"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1a202c;max-width:1100px}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e2e8f0}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #e2e8f0;padding:.25rem .5rem;text-align:right}th{background:#f7fafc}
td.l,th.l{text-align:left}.kpi{display:inline-block;margin:0 2rem 1rem 0}.kpi b{display:block;font-size:1.4rem}
.note{color:#744210;background:#fffbeb;padding:.25rem .5rem;margin:.25rem 0}.rec{margin:.4rem 0}
svg.chart{display:block;margin:.5rem 0;font-size:11px}
.kpi small{display:block;max-width:22rem;color:#4a5568;font-size:.75rem}.kpi.missing b{color:#9b2c2c}
.nodata{border:1px dashed #a0aec0;background:#f7fafc;color:#2d3748;padding:.75rem 1rem;margin:.5rem 0;max-width:720px}
.delta-up{color:#9b2c2c}.delta-down{color:#276749}#whatif-comparison td,#whatif-comparison th{text-align:left;vertical-align:top}
"""
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_money = fmt.money  # one money format for every number of every report
_pct = fmt.pct


def axis_label(category):
    """An x-axis label: ``2026-07-01`` -> ``07-01`` (the year is in the period line); anything else unchanged."""
    text = str(category)
    return text[5:] if _DATE_RE.match(text) else text


def _colour(name, i):
    return CT_COLOURS.get(name, PALETTE[i % len(PALETTE)])


def _legend(names, x, y):
    out = []
    for i, n in enumerate(names):
        out.append(
            '<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>'
            % (x, y + i * 16, _colour(n, i), x + 14, y + i * 16 + 9, escape(str(n)))
        )
    return "".join(out)


def stacked_bars(chart_id, title, categories, series, fmt_value=_money):
    """Vertical stacked bars: categories on x, one stack segment per series (dict name -> values)."""
    width, height, left, bottom, top = 760, 260, 60, 40, 30
    names = list(series)
    totals = [sum(series[n][i] for n in names) for i in range(len(categories))]
    peak = max(totals + [0.0]) or 1.0
    plot_w = width - left - 170
    plot_h = height - bottom - top
    bw = plot_w / max(len(categories), 1)
    parts = [
        '<svg class="chart" id="%s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">'
        % (escape(chart_id), width, height),
        "<title>%s</title>" % escape(title),
        '<text x="%d" y="18" font-weight="bold">%s</text>' % (left, escape(title)),
        '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#a0aec0"/>' % (left, top + plot_h, left + plot_w, top + plot_h),
        '<text x="4" y="%d">%s</text>' % (top + 8, escape(fmt_value(peak))),
        '<text x="4" y="%d">%s</text>' % (top + plot_h, escape(fmt_value(0))),
    ]
    for i, cat in enumerate(categories):
        y = top + plot_h
        for j, n in enumerate(names):
            v = series[n][i]
            if v <= 0:
                continue
            h = plot_h * v / peak
            y -= h
            parts.append(
                '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" data-series="%s" data-category="%s" '
                'data-value="%s"><title>%s %s: %s</title></rect>'
                % (
                    left + i * bw + bw * 0.1,
                    y,
                    bw * 0.8,
                    h,
                    _colour(n, j),
                    escape(str(n)),
                    escape(str(cat)),
                    round(v, 6),
                    escape(str(n)),
                    escape(str(cat)),
                    escape(fmt_value(v)),
                )
            )
        if len(categories) <= 16 or i % max(1, len(categories) // 8) == 0:
            parts.append(
                '<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                % (left + i * bw + bw / 2, top + plot_h + 14, escape(axis_label(cat)))
            )
    parts.append(_legend(names, left + plot_w + 20, top))
    parts.append("</svg>")
    return "".join(parts)


def hbars(chart_id, title, rows, series_names, fmt=_money, max_value=None):
    """Horizontal bars: rows = [(label, {series: value})]; stacked when several series are given."""
    row_h, left, width = 22, 170, 760
    height = 40 + row_h * max(len(rows), 1) + 16 * len(series_names)
    peak = max_value or max([sum(v for v in vals.values() if v) for _l, vals in rows] + [0.0]) or 1.0
    plot_w = width - left - 120
    parts = [
        '<svg class="chart" id="%s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">'
        % (escape(chart_id), width, height),
        "<title>%s</title>" % escape(title),
        '<text x="4" y="18" font-weight="bold">%s</text>' % escape(title),
    ]
    for i, (label, vals) in enumerate(rows):
        y = 30 + i * row_h
        x = left
        parts.append('<text x="4" y="%d">%s</text>' % (y + 14, escape(str(label))))
        for j, n in enumerate(series_names):
            v = vals.get(n) or 0.0
            if v <= 0:
                continue
            w = plot_w * min(v, peak) / peak
            parts.append(
                '<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" data-series="%s" data-category="%s" '
                'data-value="%s"><title>%s %s: %s</title></rect>'
                % (x, y, w, row_h - 6, _colour(n, j), escape(str(n)), escape(str(label)), round(v, 6), escape(str(label)),
                   escape(str(n)), escape(fmt(v)))
            )  # fmt: skip
            x += w
        total = sum(v for v in vals.values() if v)
        parts.append('<text x="%.1f" y="%d">%s</text>' % (x + 4, y + 13, escape(fmt(total))))
    parts.append(_legend(series_names, 4, 30 + len(rows) * row_h + 4))
    parts.append("</svg>")
    return "".join(parts)


def grouped_util(chart_id, title, pools):
    """Utilisation per NodePool: one bar per resource (CPU, memory), 0..100 %."""
    width, row_h, left = 760, 34, 170
    plot_w = width - left - 80
    height = 50 + row_h * max(len(pools), 1)
    parts = [
        '<svg class="chart" id="%s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">'
        % (escape(chart_id), width, height),
        "<title>%s</title>" % escape(title),
        '<text x="4" y="18" font-weight="bold">%s</text>' % escape(title),
    ]
    for i, p in enumerate(pools):
        y = 30 + i * row_h
        parts.append('<text x="4" y="%d">%s</text>' % (y + 16, escape(str(p["nodepool"]))))
        for j, (res, colour) in enumerate((("cpu", "#2b6cb0"), ("memory", "#dd6b20"))):
            u = p.get(res + "_utilization")
            w = plot_w * min(u or 0.0, 1.0)
            parts.append(
                '<rect x="%d" y="%d" width="%.1f" height="12" fill="%s" data-series="%s" data-category="%s" '
                'data-value="%s"><title>%s %s requested/allocatable: %s</title></rect>'
                '<text x="%.1f" y="%d">%s</text>'
                % (left, y + j * 14, w, colour, res, escape(str(p["nodepool"])), u, escape(str(p["nodepool"])),
                   res, _pct(u), left + w + 4, y + j * 14 + 10, _pct(u))
            )  # fmt: skip
    parts.append(
        '<line x1="%d" y1="26" x2="%d" y2="%d" stroke="#a0aec0" stroke-dasharray="3"/>'
        % (left + plot_w, left + plot_w, height - 20)
    )
    parts.append(_legend(["cpu", "memory"], width - 70, 30))
    parts.append("</svg>")
    return "".join(parts)


def _price_source(node):
    """The node's price source, with the region of the price when it is not the node's (a stand-in)."""
    source = node.get("price_source") or "-"
    if node.get("price_region") and node.get("region") and node["price_region"] != node["region"]:
        return "%s (%s prices, node in %s)" % (source, node["price_region"], node["region"])
    return source


def _table(headers, rows, left_cols=1):
    out = ["<table><tr>"]
    out += ['<th class="%s">%s</th>' % ("l" if i < left_cols else "", escape(h)) for i, h in enumerate(headers)]
    out.append("</tr>")
    for r in rows:
        out.append("<tr>")
        out += ['<td class="%s">%s</td>' % ("l" if i < left_cols else "", escape(str(c))) for i, c in enumerate(r)]
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def source_problem(report, source):
    """None when ``source`` answered, else why it did not, in one line (its note, else its status)."""
    status = (report.get("data_sources") or {}).get(source)
    if status == "ok":
        return None
    for n in report.get("notes") or []:
        head = n.split(":", 1)[0]
        if source in [h.strip() for h in head.split(",")] or (head == "aws" and source in n):
            return fmt.one_line(n, 400)
    if status == "not requested":
        return "%s was not requested (module option sources)." % source
    if status == "empty":
        return "%s answered with no data." % source
    if status:
        return "%s: %s." % (source, status)
    return None


def has_cost_history(report):
    """Did Cost Explorer return any cost for the period (not only empty days)?"""
    ce = report.get("cost_explorer") or {}
    pools = ce.get("by_nodepool") or {}
    return bool(pools.get("dates")) and any(v for vals in (pools.get("nodepool_series") or {}).values() for v in vals)


def _ce_total(report):
    """Cost Explorer's total for the period, None when it has no cost data (failed, skipped, tag not active)."""
    ce = report.get("cost_explorer") or {}
    by_type = ce.get("by_type") or {}
    if by_type.get("by_instance_type") or (ce.get("by_nodepool") or {}).get("by_nodepool"):
        return by_type.get("total")
    return None


def _kpi(label, value, kpi_id, missing=None, detail=None):
    """One headline number; ``missing`` (why there is no number) replaces it: never a $0.00 for no data."""
    if missing:
        return '<span class="kpi missing" id="%s">%s<b>no data</b><small>%s</small></span>' % (
            kpi_id,
            escape(label),
            escape(missing),
        )
    small = "<small>%s</small>" % escape(detail) if detail else ""
    return '<span class="kpi" id="%s">%s<b>%s</b>%s</span>' % (kpi_id, escape(label), escape(value), small)


def _run_rate_problem(report):
    """Why the cluster's run-rate is not a number (no node data, no priced node), else None."""
    t = report["totals"]
    if not t["nodes"]:
        why = source_problem(report, "cluster")
        if (report.get("data_sources") or {}).get("cluster") == "empty":
            why = "the cluster answered with no node (check node_selector)."
        return "no node data: %s" % (why or "the report holds no node.")
    if t.get("unpriced_nodes") == t["nodes"]:
        return "no price for any of the %d node(s) (see Data sources and notes)." % t["nodes"]
    return None


def _kpis(report):
    t = report["totals"]
    missing = _run_rate_problem(report)
    unpriced = t.get("unpriced_nodes") or 0
    partial = "excludes %d unpriced node(s)" % unpriced if unpriced and not missing else None
    out = [
        '<div id="kpis">',
        _kpi("Hourly", _money(t["hourly"]), "kpi-hourly", missing, partial),
        _kpi("Monthly run-rate", _money(t["monthly"]), "kpi-monthly", missing, partial),
        _kpi("Nodes", "%d" % t["nodes"], "kpi-nodes", None if t["nodes"] else missing),
        _kpi("CPU requested", _pct(t["cpu_utilization"]), "kpi-cpu"),
        _kpi("Memory requested", _pct(t["memory_utilization"]), "kpi-memory"),
        _kpi("Spot share (cost)", _pct(report["spot_share"]["cost"]), "kpi-spot"),
    ]
    ce_total = _ce_total(report)
    if ce_total is not None:
        out.append(_kpi("Cost Explorer, period", _money(ce_total), "kpi-cost-explorer"))
    elif report.get("cost_explorer") is not None or "cost_explorer" in (report.get("data_sources") or {}):
        why = source_problem(report, "cost_explorer") or "Cost Explorer returned no cost for the period."
        out.append(_kpi("Cost Explorer, period", "", "kpi-cost-explorer", why))
    out.append("</div>")
    return out


def headline(report):
    """The headline numbers as one line (the cost report playbook's summary): the same "no data" rules as the page."""
    t = report["totals"]
    missing = _run_rate_problem(report)
    if missing:
        text = "run-rate: no data (%s)" % missing
    else:
        text = "%d node(s), %s/h, %s/month run-rate" % (t["nodes"], _money(t["hourly"]), _money(t["monthly"]))
        if t.get("unpriced_nodes"):
            text += " (excludes %d unpriced node(s))" % t["unpriced_nodes"]
        text += "; spot share (cost) %s" % _pct(report["spot_share"]["cost"])
    ce_total = _ce_total(report)
    if ce_total is not None:
        text += "; Cost Explorer, period: %s" % _money(ce_total)
    elif report.get("cost_explorer") is not None or "cost_explorer" in (report.get("data_sources") or {}):
        why = source_problem(report, "cost_explorer") or "Cost Explorer returned no cost for the period."
        text += "; Cost Explorer, period: no data (%s)" % why
    return text


def _history(report):
    """The two "over time" charts from Cost Explorer, or one clear "no history" panel saying why."""
    ce = (report.get("cost_explorer") or {}).get("by_nodepool") or {}
    if has_cost_history(report):
        return [
            "<p>Time series source: Cost Explorer (daily).</p>",
            stacked_bars("chart-cost-by-nodepool", "Cost by NodePool over time", ce["dates"], ce["nodepool_series"]),
            stacked_bars(
                "chart-cost-by-capacity-type",
                "Cost by capacity type over time",
                ce["dates"],
                ce["capacity_type_series"],
            ),
        ]
    why = source_problem(report, "cost_explorer") or "Cost Explorer returned no cost for the period."
    t = report["totals"]
    run_rate = (
        "The cluster's current run-rate is %s/day (%s/month); the charts below are for now, not over time."
        % (_money(t["hourly"] * 24), _money(t["monthly"]))
        if not _run_rate_problem(report)
        else "There is no current run-rate either (no priced node)."
    )
    return [
        '<div class="nodata" id="no-history" role="note"><b>No cost history for this period.</b> '
        "Cost by NodePool and by capacity type over time come from Cost Explorer, which has no data here: "
        "%s %s</div>" % (escape(why), escape(run_rate))
    ]


def render(report, title=None):
    """The whole report as one HTML document (str)."""
    title = title or "Karpenter cost report - %s" % (report.get("cluster_name") or "cluster")
    period = report.get("period") or {}
    pools = report["nodepools"]
    h = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>%s</title><style>%s</style></head><body>'
        % (escape(title), CSS),
        "<h1>%s</h1>" % escape(title),
        "<p>Generated %s; period %s to %s; prices in USD; month = %g hours.</p>"
        % (
            escape(str(report.get("generated_at") or "-")),
            escape(str(period.get("start", "-"))),
            escape(str(period.get("end", "-"))),
            report.get("hours_per_month") or model.HOURS_PER_MONTH,
        ),
    ]
    h += _kpis(report)
    h.append('<h2 id="recommendations">Recommendations</h2>')
    if report["recommendations"]:
        h += ['<p class="rec">%s</p>' % escape(r["message"]) for r in report["recommendations"]]
    else:
        h.append("<p>No recommendation: no NodePool below the thresholds.</p>")
    h.append('<h2 id="charts">Charts</h2>')
    h += _history(report)
    cts = sorted(set(ct for p in pools for ct in p["by_capacity_type"]))
    h.append(
        hbars(
            "chart-monthly-by-nodepool",
            "Monthly run-rate by NodePool and capacity type",
            [(p["nodepool"], dict((ct, v["monthly"]) for ct, v in p["by_capacity_type"].items())) for p in pools],
            cts,
        )
    )
    h.append(grouped_util("chart-utilization", "Utilisation: requested / allocatable (CPU, memory)", pools))
    by_type = ((report.get("cost_explorer") or {}).get("by_type") or {}).get("by_instance_type") or {}
    if by_type:
        top = list(by_type.items())[:12]
        h.append(
            hbars("chart-ce-instance-types", "Cost Explorer: cost by instance type", [(k, {"cost": v}) for k, v in top],
                  ["cost"])
        )  # fmt: skip
    h.append('<h2 id="nodepools">NodePools</h2>')
    h.append(
        _table(
            ["NodePool", "nodes", "hourly", "monthly", "CPU req/alloc", "CPU util", "mem util", "instance types"],
            [
                (
                    p["nodepool"],
                    p["nodes"],
                    _money(p["hourly"]),
                    _money(p["monthly"]),
                    "%.2f / %.2f" % (p["cpu_requested"], p["cpu_allocatable"]),
                    _pct(p["cpu_utilization"]),
                    _pct(p["memory_utilization"]),
                    ", ".join("%s x%d" % kv for kv in sorted(p["instance_types"].items())),
                )
                for p in pools
            ],
        )
    )
    h.append('<h2 id="capacity-types">Capacity types</h2>')
    h.append(
        _table(
            ["capacity type", "nodes", "hourly", "monthly"],
            [
                (c["capacity_type"], c["nodes"], _money(c["hourly"]), _money(c["monthly"]))
                for c in report["capacity_types"]
            ],
        )
    )
    h.append('<h2 id="nodes">Nodes</h2>')
    h.append(
        _table(
            ["node", "NodePool", "instance type", "capacity", "zone", "hourly", "price source", "pods", "CPU req"],
            [
                (
                    n["name"],
                    n["nodepool"],
                    n["instance_type"],
                    n["capacity_type"],
                    n["zone"],
                    _money(n.get("hourly")),
                    _price_source(n),
                    n["pods"],
                    "%.2f / %.2f" % (n["requested"]["cpu"], n["allocatable"]["cpu"]),
                )
                for n in report["nodes"]
            ],
            left_cols=5,
        )
    )
    h.append('<h2 id="notes">Data sources and notes</h2>')
    notes = report.get("notes") or []
    h += ['<p class="note">%s</p>' % escape(fmt.one_line(n, 600)) for n in notes] or ["<p>All sources answered.</p>"]
    status = report.get("data_sources") or {}
    if status:
        h.append(_table(["data source", "status"], sorted(status.items())))
    a = report.get("assumptions") or {}
    h.append(
        "<p>Prices: static table %s, %s prices (generated %s); spot estimate = on-demand x %s when no better "
        "source.</p>"
        % (
            escape(str(a.get("price_table"))),
            escape(str(a.get("price_table_region"))),
            escape(str(a.get("price_table_generated_at"))),
            a.get("spot_fraction"),
        )
    )
    h.append("</body></html>")
    return "\n".join(h)


# ---------------------------------------------------------------------------------------------- what-if


def _delta_cell(v):
    """The difference from the baseline, coloured (more expensive: red, cheaper: green), with its caveat."""
    d = v.get("delta")
    if d is None:
        return '<td class="delta">baseline</td>'
    cls = ""
    if d["comparable"]:  # red: dearer than the baseline, green: cheaper; no colour for an unsure difference
        cls = "delta-up" if d["monthly"] > 0 else ("delta-down" if d["monthly"] < 0 else "")
    pct = " (%s)" % _pct(d["monthly_pct"], signed=True) if d["monthly_pct"] is not None else ""
    text = "%s/month%s<br>%s/h; %+d node(s)" % (
        escape(_money(d["monthly"], signed=True)),
        escape(pct),
        escape(_money(d["hourly"], signed=True)),
        d["nodes"],
    )
    if not d["comparable"]:
        text += "<br><b>not comparable: %s</b>" % escape(d["caveat"])
    return '<td class="delta %s" data-delta-monthly="%s">%s</td>' % (cls, d["monthly"], text)


def _variant_cost(v, key):
    """A variant's hourly/monthly cell: the amount, or "no data" when none of its nodes has a price."""
    if v.get("nodes") and v.get("unpriced_nodes") == v.get("nodes"):
        return "no data (no node has a price)"
    text = _money(v.get(key))
    if v.get("unpriced_nodes"):
        text += " (excludes %d unpriced node(s))" % v["unpriced_nodes"]
    return text


def render_whatif(run, title=None):
    """The what-if report (playbooks/whatif.yml) as one HTML document: variants side by side, each one's
    difference from the first (the baseline), a chart of the monthly cost per variant, then the nodes."""
    variants = run.get("variants") or []
    if variants and "delta" not in variants[0]:
        variants = model.whatif_compare(variants)
    workload = run.get("workload") or []
    title = title or "Karpenter what-if (%s)" % run.get("run_id", "-")
    h = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>%s</title><style>%s</style></head><body>'
        % (escape(title), CSS),
        "<h1>%s</h1>" % escape(title),
        "<p>%s; workload: %s. Prices: USD; the spot price EC2 quotes, else the price recorded on each node by the "
        "provider, else the collection's static on-demand table; month = %g hours. Differences are against the "
        "first variant (%s).</p>"
        % (
            escape(str(run.get("karpenter") or "Karpenter")),
            escape(", ".join(str(w.get("name")) for w in workload)),
            model.HOURS_PER_MONTH,
            escape(str(variants[0]["variant"]) if variants else "-"),
        ),
        '<table id="whatif-comparison">',
        "<tr><th></th>%s</tr>" % "".join("<th>%s</th>" % escape(str(v["variant"])) for v in variants),
    ]

    def row(row_id, header, cells):
        h.append('<tr id="%s"><th class="l">%s</th>%s</tr>' % (row_id, escape(header), "".join(cells)))

    row(
        "whatif-nodepools", "NodePools", ["<td>%s</td>" % escape(", ".join(v.get("nodepools") or [])) for v in variants]
    )
    row("whatif-nodes", "nodes", ["<td>%d</td>" % (v.get("nodes") or 0) for v in variants])
    row("whatif-hourly", "hourly", ["<td>%s</td>" % escape(_variant_cost(v, "hourly")) for v in variants])
    row("whatif-monthly", "monthly", ["<td>%s</td>" % escape(_variant_cost(v, "monthly")) for v in variants])
    row("whatif-delta", "difference from %s" % (variants[0]["variant"] if variants else "-"), [_delta_cell(v) for v in variants])  # fmt: skip
    row(
        "whatif-requested",
        "CPU / memory requested",
        ["<td>%s / %s</td>" % (_pct(v.get("cpu_utilization")), _pct(v.get("memory_utilization"))) for v in variants],
    )
    for key, header in (
        ("by_instance_type", "instance types"),
        ("by_capacity_type", "capacity types"),
        ("by_zone", "zones"),
        ("by_nodepool", "nodes per NodePool"),
    ):
        row(
            "whatif-" + key.replace("_", "-"),
            header,
            [
                "<td>%s</td>"
                % "<br>".join("%s x%d" % (escape(str(k)), n) for k, n in sorted((v.get(key) or {}).items()))
                for v in variants
            ],  # fmt: skip
        )
    for w in workload:
        cells = []
        for v in variants:
            r = (v.get("workloads") or {}).get(w.get("name")) or {}
            text = "%d running on %s" % (r.get("pods", 0), escape(", ".join(r.get("nodepools") or [])))
            if r.get("pending"):
                reason = (v.get("pending_reasons") or {}).get(w.get("name"), "")
                text += "; <b>%d pending</b>: %s" % (r["pending"], escape(fmt.one_line(reason, 300)))
            cells.append("<td>%s</td>" % text)
        row("whatif-workload-" + str(w.get("name")), "%s (%s)" % (w.get("name"), w.get("replicas", 1)), cells)
    h.append("</table>")
    cts = sorted(set(ct for v in variants for ct in v.get("monthly_by_capacity_type") or {}))
    h.append('<h2 id="chart">Monthly cost per variant</h2>')
    h.append(
        hbars(
            "chart-whatif-monthly",
            "Monthly cost per variant by capacity type",
            [(v["variant"], v.get("monthly_by_capacity_type") or {}) for v in variants],
            cts,
        )
    )
    for v in variants:
        h.append("<h2>%s: nodes</h2>" % escape(str(v["variant"])))
        h.append(
            _table(
                ["node", "NodePool", "instance type", "capacity", "zone", "hourly", "price source"],
                [
                    (
                        n.get("name"),
                        n.get("nodepool"),
                        n.get("instance_type"),
                        n.get("capacity_type"),
                        n.get("zone"),
                        _money(n.get("hourly")),
                        n.get("price_source") or "-",
                    )
                    for n in v.get("node_list") or []
                ],
                left_cols=5,
            )
        )
        h += ['<p class="note">%s</p>' % escape(fmt.one_line(n, 600)) for n in v.get("notes") or []]
    h.append("</body></html>")
    return "\n".join(h)
