"""The HTML cost report, read as a machine would: well-formed, self-contained, and charts that encode the JSON.

No headless browser is available offline on this machine (no chromium/firefox binary, no Playwright browser
build), so the charts are checked geometrically instead of by pixels: every SVG parses as XML, each bar's
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
        assert "$0" in texts(root)
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
