"""The HTML cost report, read as a machine would: well-formed, self-contained, and charts that encode the JSON.

The charts are checked geometrically here (test_report_browser.py renders both reports in headless chromium
for the pixels): every SVG parses as XML, each bar's
length is proportional to its ``data-value`` with one scale per chart, stacked segments touch, the y-axis
maximum equals the tallest stack, every series has a legend entry in the bars' colour, and the values are
exactly the report's JSON numbers (all of them, not a sample).
"""

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import htmlreport as chtml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import model
from test_cost_model import CE_POOL, CE_TYPE, NODES, PODS, SPECS

SVG = "{http://www.w3.org/2000/svg}"
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
# SVG children html.parser sees as start tags without an end when written self-closing
EXTERNAL_ATTRS = {"src", "href", "xlink:href", "srcset", "action", "poster", "data", "background"}


@pytest.fixture
def report():
    book = model.PriceBook()
    records = model.price_nodes(model.node_records(NODES, PODS), book)
    rep = model.build_report(records, book, SPECS, period={"start": "2026-07-01", "end": "2026-07-03"})
    rep["cost_explorer"] = {"by_type": model.ce_by_type(CE_TYPE), "by_nodepool": model.ce_by_pool(CE_POOL)}
    rep["data_sources"] = {"cluster": "ok", "cost_explorer": "ok", "pricing": "failed"}
    return rep


@pytest.fixture
def doc(report):
    return chtml.render(report)


class Structure(HTMLParser):
    """Tag balance (every non-void element closed, in order) and every attribute, for the whole document."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.attrs, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("unexpected </%s> (open: %s)" % (tag, self.stack[-3:]))
        else:
            self.stack.pop()


def charts(doc):
    """{id: ElementTree root} for every inline SVG; each must be well-formed XML on its own."""
    out = {}
    for m in re.finditer(r"<svg\b.*?</svg>", doc, re.S):
        root = ET.fromstring(m.group(0))
        out[root.get("id")] = root
    return out


def bars(root):
    return [
        {
            "series": r.get("data-series"),
            "category": r.get("data-category"),
            "value": float(r.get("data-value")),
            "x": float(r.get("x")),
            "y": float(r.get("y")),
            "w": float(r.get("width")),
            "h": float(r.get("height")),
            "fill": r.get("fill"),
        }
        for r in root.iter(SVG + "rect")
        if r.get("data-series") is not None
    ]


def legend(root):
    """{series name: colour} from the legend (a 10x10 swatch followed by its text)."""
    children = list(root)
    out = {}
    for a, b in zip(children, children[1:], strict=False):
        if a.tag == SVG + "rect" and a.get("data-series") is None and a.get("width") == "10" and b.tag == SVG + "text":
            out[b.text] = a.get("fill")
    return out


def texts(root):
    return [t.text for t in root.iter(SVG + "text")]


def test_document_is_well_formed_and_self_contained(doc):
    assert doc.startswith("<!DOCTYPE html>")
    s = Structure()
    s.feed(doc)
    s.close()
    assert s.errors == [] and s.stack == []
    assert s.tags.count("svg") == 5 and s.tags.count("html") == 1 and s.tags.count("body") == 1
    assert not {"script", "link", "img", "iframe", "object", "embed", "audio", "video"} & set(s.tags)
    assert not [a for a, _v in s.attrs if a in EXTERNAL_ATTRS or a.startswith("on")]
    style = re.search(r"<style>(.*?)</style>", doc, re.S).group(1)
    assert "url(" not in style and "@import" not in style
    assert re.findall(r"https?://[^\s\"'<>]+", doc) == ["http://www.w3.org/2000/svg"] * 5
    assert len(charts(doc)) == 5  # each SVG also parses as XML


def test_stacked_bars_are_proportional_and_stack_to_the_axis(report, doc):
    ce = report["cost_explorer"]["by_nodepool"]
    for chart_id, series in (
        ("chart-cost-by-nodepool", ce["nodepool_series"]),
        ("chart-cost-by-capacity-type", ce["capacity_type_series"]),
    ):
        root = charts(doc)[chart_id]
        bs = bars(root)
        # exactly the JSON's non-zero values, one bar segment each
        expected = sorted(
            (name, day, v) for name, values in series.items() for day, v in zip(ce["dates"], values, strict=True) if v
        )
        assert sorted((b["series"], b["category"], b["value"]) for b in bs) == expected
        baseline = float(next(root.iter(SVG + "line")).get("y1"))
        totals = {}
        for day in ce["dates"]:
            stack = [b for b in bs if b["category"] == day]
            bottom = baseline
            for b in stack:  # drawn bottom-up, each segment on top of the previous one
                assert b["y"] + b["h"] == pytest.approx(bottom, abs=0.11)
                bottom = b["y"]
            totals[day] = sum(b["value"] for b in stack)
        peak_day = max(totals, key=totals.get)
        scale = sum(b["h"] for b in bs if b["category"] == peak_day) / totals[peak_day]
        for b in bs:
            assert b["h"] == pytest.approx(b["value"] * scale, abs=0.11), b
        assert "$%.2f" % totals[peak_day] in texts(root)  # the y-axis maximum is the tallest stack
        assert "$0.00" in texts(root)
        assert {d[5:] for d in ce["dates"]} <= set(texts(root))  # x-axis: one MM-DD label per day
        colours = legend(root)
        assert set(colours) == set(series)
        assert all(colours[b["series"]] == b["fill"] for b in bs)
        assert len(set(colours.values())) == len(colours)  # distinguishable series


def test_horizontal_bars_are_proportional_and_match_the_json(report, doc):
    root = charts(doc)["chart-monthly-by-nodepool"]
    bs = bars(root)
    expected = sorted(
        (ct, p["nodepool"], v["monthly"]) for p in report["nodepools"] for ct, v in p["by_capacity_type"].items()
    )
    assert sorted((b["series"], b["category"], b["value"]) for b in bs) == expected
    rows = {}
    for b in bs:
        rows.setdefault(b["category"], []).append(b)
    widest = max(rows.values(), key=lambda r: sum(b["value"] for b in r))  # the longest bar sets the scale
    scale = sum(b["w"] for b in widest) / sum(b["value"] for b in widest)
    for pool, segments in rows.items():
        x = segments[0]["x"]
        for b in segments:  # segments of one row touch
            assert b["x"] == pytest.approx(x, abs=0.11)
            assert b["w"] == pytest.approx(b["value"] * scale, abs=0.11)
            x = b["x"] + b["w"]
        assert "$%.2f" % sum(b["value"] for b in segments) in texts(root), pool
    assert set(rows) <= set(texts(root))  # row labels
    colours = legend(root)
    assert all(colours[b["series"]] == b["fill"] for b in bs)

    root = charts(doc)["chart-ce-instance-types"]
    bs = bars(root)
    by_type = report["cost_explorer"]["by_type"]["by_instance_type"]
    assert {b["category"]: b["value"] for b in bs} == by_type
    biggest = max(bs, key=lambda b: b["value"])
    for b in bs:
        assert b["w"] / biggest["w"] == pytest.approx(b["value"] / biggest["value"], abs=0.002)


def test_utilisation_bars_use_one_scale_with_100_percent_at_the_dashed_line(report, doc):
    root = charts(doc)["chart-utilization"]
    bs = bars(root)
    expected = sorted(
        (res, p["nodepool"], p[res + "_utilization"])
        for p in report["nodepools"]
        for res in ("cpu", "memory")
        if p[res + "_utilization"] is not None
    )
    assert sorted((b["series"], b["category"], b["value"]) for b in bs) == expected
    line = next(root.iter(SVG + "line"))
    assert line.get("stroke-dasharray")
    full = float(line.get("x1")) - bs[0]["x"]  # bar origin to the 100 % line
    for b in bs:
        assert b["w"] == pytest.approx(full * min(b["value"], 1.0), abs=0.11), b
        assert "%.0f%%" % (b["value"] * 100) in texts(root)
    assert legend(root) == {"cpu": "#2b6cb0", "memory": "#dd6b20"}
    assert all(legend(root)[b["series"]] == b["fill"] for b in bs)


def test_tables_notes_and_stand_in_prices_are_shown():
    nodes = [dict(n) for n in NODES[:2]]
    for n in nodes:  # same nodes, in eu-west-1
        n["metadata"] = dict(n["metadata"], labels=dict(n["metadata"]["labels"]))
        n["metadata"]["labels"]["topology.kubernetes.io/zone"] = "eu-west-1a"
    book = model.PriceBook(region="eu-west-1")
    records = model.price_nodes(model.node_records(nodes, PODS), book)
    rep = model.build_report(records, book)
    rep["data_sources"] = {"cluster": "ok", "pricing": "failed"}
    doc = chtml.render(rep)
    # node b (no price label) is priced with the us-east-1 table: its row says so, the note too
    assert "static-table (us-east-1 prices, node in eu-west-1)" in doc
    note = next(n for n in rep["notes"] if n.startswith("prices:"))
    assert '<p class="note">%s</p>' % note in doc
    assert '<td class="l">pricing</td><td class="">failed</td>' in doc
    assert "us-east-1 prices (generated" in doc


# ------------------------------------------------------------------------------------------ issue 20: 3 a.m. UX


def kpis(doc):
    """{kpi id: (value, small text)} of the headline numbers."""
    out = {}
    for m in re.finditer(r'<span class="kpi[^"]*" id="([^"]+)">[^<]*<b>([^<]*)</b>(?:<small>([^<]*)</small>)?', doc):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out


def test_a_ten_character_category_is_not_cut():
    """Only an ISO date loses its year on the x axis; "now (x24h)" (10 characters too) stays whole."""
    root = ET.fromstring(chtml.stacked_bars("c", "t", ["now (x24h)", "2026-07-01"], {"a": [1.0, 2.0]}))
    assert {"now (x24h)", "07-01"} <= set(texts(root)) and "x24h)" not in texts(root)
    assert chtml.axis_label("2026-07-01") == "07-01" and chtml.axis_label("eu-west-1a") == "eu-west-1a"


def test_without_cost_explorer_there_is_a_no_history_state_with_the_reason(report):
    report["cost_explorer"] = None
    report["data_sources"]["cost_explorer"] = "failed"
    why = "cost_explorer: unavailable, access denied (AccessDeniedException; needs ce:GetCostAndUsage)"
    report["notes"] = [why + "; costs are the cluster's current run-rate only."]
    doc = chtml.render(report)
    assert "chart-cost-by-nodepool" not in charts(doc) and "chart-cost-by-capacity-type" not in charts(doc)
    panel = re.search(r'<div class="nodata" id="no-history"[^>]*>(.*?)</div>', doc, re.S).group(1)
    assert "No cost history for this period" in panel and why in panel
    assert "%s/day" % chtml.fmt.money(report["totals"]["hourly"] * 24) in panel
    ce_kpi = kpis(doc)["kpi-cost-explorer"]
    assert ce_kpi[0] == "no data" and why in ce_kpi[1]
    assert "$0.00" not in doc


def test_cost_explorer_without_any_cost_is_no_data_not_zero(report):
    """The tag is not activated for cost allocation: Cost Explorer answers days without groups."""
    empty = [{"TimePeriod": {"Start": d, "End": d}, "Total": {}, "Groups": []} for d in ("2026-07-01", "2026-07-02")]
    report["cost_explorer"] = {"by_type": model.ce_by_type(empty), "by_nodepool": model.ce_by_pool(empty)}
    note = "cost_explorer: no cost for tag eks:eks-cluster-name=prod in 2026-07-01..2026-07-03 (tag not activated?)."
    report["notes"] = [note]
    report["data_sources"]["cost_explorer"] = "empty"
    doc = chtml.render(report)
    assert kpis(doc)["kpi-cost-explorer"] == ("no data", note)
    assert 'id="no-history"' in doc and "chart-cost-by-nodepool" not in charts(doc)
    assert "$0.00" not in doc


def test_no_node_data_is_said_not_shown_as_zero_spend():
    book = model.PriceBook()
    rep = model.build_report([], book, notes=["cluster: Kubernetes API error (Unauthorized (HTTP 401)); no node data."])
    rep["data_sources"] = {"cluster": "failed", "cost_explorer": "not requested"}
    doc = chtml.render(rep)
    k = kpis(doc)
    for kpi in ("kpi-hourly", "kpi-monthly", "kpi-nodes"):
        assert k[kpi][0] == "no data", kpi
        assert "Unauthorized (HTTP 401)" in k[kpi][1]
    assert k["kpi-cost-explorer"] == ("no data", "cost_explorer was not requested (module option sources).")
    assert "$0.00" not in doc
    # a cluster that answered with no node (node_selector matched nothing) says so
    rep["data_sources"]["cluster"], rep["notes"] = "empty", []
    assert "answered with no node" in kpis(chtml.render(rep))["kpi-hourly"][1]


def test_unpriced_nodes_are_named_next_to_the_headline(report):
    report["totals"]["unpriced_nodes"] = 1
    assert kpis(chtml.render(report))["kpi-hourly"] == (chtml.fmt.money(report["totals"]["hourly"]), "excludes 1 unpriced node(s)")  # fmt: skip
    report["totals"]["unpriced_nodes"] = report["totals"]["nodes"]
    assert kpis(chtml.render(report))["kpi-hourly"][0] == "no data"


def test_an_html_page_in_the_notes_is_rendered_as_one_line(report):
    page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>h1{}</style></head><body>" + "q" * 5000
    report["notes"] = ["pricing: unavailable, 502: " + page]
    doc = chtml.render(report)
    assert '<p class="note">pricing: unavailable, 502: HTML error page &quot;502 Bad Gateway&quot;</p>' in doc
    assert "qqq" not in doc and "&lt;" not in doc


def test_money_has_one_format():
    m = chtml.fmt.money
    assert [m(0), m(0.049198), m(0.17), m(1), m(35.9154), m(1234.5), m(None)] == [
        "$0.00", "$0.0492", "$0.1700", "$1.00", "$35.92", "$1,234.50", "-"
    ]  # fmt: skip
    assert [m(2.5, signed=True), m(-0.0412, signed=True), m(0, signed=True), m(-3)] == ["+$2.50", "-$0.0412", "$0.00", "-$3.00"]  # fmt: skip


def test_every_amount_in_the_report_uses_the_money_format(report, doc):
    amounts = re.findall(r"[-+]?\$[0-9][0-9,]*(?:\.[0-9]+)?", doc)
    assert amounts
    assert [a for a in amounts if not re.fullmatch(r"[-+]?\$(?:[1-9][0-9]{0,2}(?:,[0-9]{3})*\.[0-9]{2}|0\.[0-9]{4}|0\.00)", a)] == []  # fmt: skip


def test_headline_line_follows_the_same_no_data_rules(report):
    t = report["totals"]
    line = chtml.headline(report)
    assert line.startswith("%d node(s), %s/h, %s/month run-rate; spot share (cost) " % (
        t["nodes"], chtml.fmt.money(t["hourly"]), chtml.fmt.money(t["monthly"])))  # fmt: skip
    assert line.endswith("; Cost Explorer, period: %s" % chtml.fmt.money(report["cost_explorer"]["by_type"]["total"]))
    rep = model.build_report([], model.PriceBook(), notes=["cluster: cannot configure the Kubernetes client (x); no node data."])  # fmt: skip
    rep["data_sources"] = {"cluster": "failed", "cost_explorer": "skipped"}
    rep["notes"].append("cost_explorer, cloudwatch: skipped, cluster_name is not set.")
    assert chtml.headline(rep) == (
        "run-rate: no data (no node data: cluster: cannot configure the Kubernetes client (x); no node data.); "
        "Cost Explorer, period: no data (cost_explorer, cloudwatch: skipped, cluster_name is not set.)"
    )
    assert "$0" not in chtml.headline(rep)


def variant(name, hourly, nodes, pending=0, node_list=None, unpriced=0):
    return {
        "variant": name,
        "nodes": nodes,
        "hourly": hourly,
        "monthly": round(hourly * 730, 2),
        "unpriced_nodes": unpriced,
        "workloads": {"web": {"pods": 2, "pending": pending, "nodepools": ["general"], "nodes": []}},
        "node_list": node_list or [],
    }


def test_whatif_compare_differences_against_the_first_variant():
    nodes = [{"hourly": 0.1, "capacity_type": "spot"}, {"hourly": 0.2, "capacity_type": "on-demand"}, {"hourly": None}]
    out = model.whatif_compare([variant("a", 0.5, 2), variant("b", 0.3, 3, node_list=nodes), variant("c", 0.5, 1, pending=2)])  # fmt: skip
    a, b, c = out
    assert a["delta"] is None and a["summary"] == "a: 2 node(s), $0.5000/h ($365.00/month); baseline"
    assert b["delta"] == {"hourly": -0.2, "monthly": -146.0, "nodes": 1, "monthly_pct": -0.4, "comparable": True, "caveat": ""}  # fmt: skip
    assert b["monthly_by_capacity_type"] == {"on-demand": 146.0, "spot": 73.0}  # the unpriced node adds nothing
    assert b["summary"] == "b: 3 node(s), $0.3000/h ($219.00/month); -$146.00/month (-40%) vs a"
    assert c["delta"]["monthly"] == 0 and not c["delta"]["comparable"]
    assert c["summary"].endswith("$0.00/month (+0%) vs a (not comparable: pods pending); 2 pod(s) pending")
    # a baseline that costs nothing has no percentage; the input is not modified
    zero = model.whatif_compare([variant("z", 0.0, 0), variant("y", 0.1, 1)])
    assert zero[1]["delta"]["monthly_pct"] is None and "(" not in zero[1]["summary"].split(";")[1]
    assert "delta" not in variant("a", 0.5, 2)


def test_whatif_page_without_prices_says_no_data_and_the_delta_is_coloured():
    doc = chtml.render_whatif({"run_id": "r1", "variants": [variant("a", 0.5, 2), variant("b", 0.0, 2, unpriced=2), variant("c", 0.6, 2)]})  # fmt: skip
    assert "no data (no node has a price)" in doc
    cells = re.findall(r'<td class="delta ([^"]*)"[^>]*>(.*?)</td>', doc)
    assert cells[0][0] == "" and "not comparable: nodes without a price" in cells[0][1]  # b: -$365, unsure
    assert cells[1][0] == "delta-up" and "not comparable" not in cells[1][1]  # c: dearer
    assert "<script" not in doc and len(charts(doc)) == 1


def test_filters_refuse_bad_input_with_the_rule():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.karpenter_eks.platform.plugins.filter import cost as filters

    assert set(filters.FilterModule().filters()) == {"karpenter_cost_headline", "karpenter_whatif_compare", "karpenter_whatif_html"}  # fmt: skip
    for fn, bad in (
        (filters.karpenter_whatif_compare, {"variant": "a"}),
        (filters.karpenter_whatif_compare, [{"nodes": 1}]),
        (filters.karpenter_whatif_html, [1]),
        (filters.karpenter_cost_headline, {"notes": []}),
    ):
        with pytest.raises(AnsibleFilterError, match="must be"):
            fn(bad)
    assert filters.karpenter_whatif_compare([variant("a", 0.5, 2)])[0]["baseline"] == "a"
