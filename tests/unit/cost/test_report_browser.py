"""Both HTML reports as a person sees them: rendered by a real headless browser (Debian's ``chromium``).

Inputs are made the way production makes them, without AWS: the cost report by ``collect.collect`` (the
module's code) over the unit fixtures' nodes and pods, with every AWS source answered by a loopback HTTP server
sending an HTML error page (a proxy at 3 a.m.); the what-if report by running ``playbooks/tasks/whatif_report.yml``
(the report part of ``playbooks/whatif.yml``) with ``ansible-playbook`` over registered results shaped like the
real ones. chromium then renders each file with the network switched off (``--host-resolver-rules`` maps every
name to nothing, ``--disable-background-networking``): a screenshot that must not be blank and must show the
charts' bar colours, and ``--dump-dom`` that must hold the headline numbers and the per-variant differences.

Without chromium the browser tests skip (saying why), unless ``REQUIRE_BROWSER=1`` - set by ``scripts/test.sh``
after it installs chromium - which makes a missing browser a failure. ``REPORT_SHOTS_DIR`` keeps the screenshots.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import collect, fmt, htmlreport
from test_cost_model import NODES, PODS
from test_cost_sources import NOW, PARAMS, HtmlErrorEndpoint, cluster_reader

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TASKS = os.path.join(ROOT, "playbooks", "tasks", "whatif_report.yml")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1280, 2200)
ON_DEMAND, SPOT = (0x2B, 0x6C, 0xB0), (0x38, 0xA1, 0x69)  # htmlreport.CT_COLOURS
MISSING_RED = (0x9B, 0x2C, 0x2C)  # .kpi.missing b


# ------------------------------------------------------------------------------------------ inputs


@pytest.fixture(scope="module")
def cost_report(tmp_path_factory):
    """The module's report for the fixture cluster while every AWS endpoint answers with an HTML error page."""
    endpoint = HtmlErrorEndpoint(403)
    try:
        p = dict(PARAMS, endpoint_url=endpoint.url, access_key="a", secret_key="b", aws_retries=0)
        report, unused = collect.collect(p, NOW, cluster_reader=cluster_reader(NODES, PODS))
    finally:
        endpoint.close()
    path = tmp_path_factory.mktemp("cost") / "karpenter-cost-prod.html"
    path.write_text(htmlreport.render(report))
    return report, path


def _whatif_node(run, variant, pool, name, itype, ct, zone):
    labels = {
        "node.kubernetes.io/instance-type": itype,
        "topology.kubernetes.io/zone": zone,
        "karpenter.sh/nodepool": "wi-%s-%s-%s" % (run, variant, pool),
        "karpenter.sh/capacity-type": ct,
        "whatif.karpenter-eks.io/variant": "%s-%s" % (run, variant),
    }
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"cpu": "8", "memory": "32Gi"}}}


def _whatif_pod(app, node_name, cpu):
    spec = {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}
    if node_name:
        spec["nodeName"] = node_name
    phase = "Running" if node_name else "Pending"
    return {
        "metadata": {"name": "%s-5d9f8c7b6-%s" % (app, node_name or "pend"), "labels": {"app": app}},
        "spec": spec,
        "status": {"phase": phase},
    }


RUN = "t20abc"
WORKLOAD = [
    {"name": "web", "replicas": 3, "requests": {"cpu": "2", "memory": "1Gi"}},
    {"name": "batch", "replicas": 2, "requests": {"cpu": "1", "memory": "1Gi"}},
]


def _variant_inputs():
    """(variants, registered karpenter_cost_report results, pods results, events results), as the play has them."""
    layout = {  # variant -> [(pool, node, type, capacity, zone)]; "split" is the baseline
        "split": [
            ("general", "ip-10-0-1-11", "m6i.2xlarge", "on-demand", "us-east-1a"),
            ("spot", "ip-10-0-2-12", "c6i.2xlarge", "spot", "us-east-1b"),
        ],
        "mixed": [
            ("general", "ip-10-0-1-21", "m6i.2xlarge", "spot", "us-east-1a"),
            ("general", "ip-10-0-1-22", "m6i.2xlarge", "on-demand", "us-east-1c"),
            ("general", "ip-10-0-1-23", "c6i.xlarge", "spot", "us-east-1b"),
        ],
    }
    variants, costs, pods_results, events_results = [], [], [], []
    for name, nodes in layout.items():
        variant = {"name": name, "nodepools": [{"metadata": {"name": p}} for p in sorted({n[0] for n in nodes})]}
        node_objs = [_whatif_node(RUN, name, *n) for n in nodes]
        pods = [_whatif_pod("web", n[1], "2") for n in nodes[:2]] + [_whatif_pod("batch", nodes[-1][1], "1")]
        events = []
        if name == "mixed":  # one web replica does not fit: pending, with Karpenter's reason
            pods.append(_whatif_pod("web", None, "2"))
            events.append(
                {
                    "metadata": {"creationTimestamp": "2026-12-07T03:01:00Z"},
                    "involvedObject": {"name": "web-5d9f8c7b6-pend"},
                    "message": 'Failed to schedule pod, incompatible with nodepool "wi-%s-mixed-general"' % RUN,
                }
            )
        p = dict(PARAMS, sources=["cluster"], node_selector="whatif.karpenter-eks.io/variant=%s-%s" % (RUN, name))
        report, unused = collect.collect(p, NOW, cluster_reader=cluster_reader(node_objs, pods))
        variants.append(variant)
        costs.append({"item": variant, "report": report, "notes": report["notes"], "changed": False})
        pods_results.append({"item": variant, "resources": pods})
        events_results.append({"item": variant, "resources": events})
    return variants, costs, pods_results, events_results


@pytest.fixture(scope="module")
def whatif_run(tmp_path_factory):
    """playbooks/tasks/whatif_report.yml run by ansible-playbook: (the JSON report, the HTML path, the output)."""
    tmp = tmp_path_factory.mktemp("whatif")
    variants, costs, pods, events = _variant_inputs()
    inputs = {
        "whatif_run_id": RUN,
        "whatif_workload": WORKLOAD,
        "whatif_variants": variants,
        "whatif_report_dir": str(tmp / "out"),
        "whatif_karpenter_description": "Karpenter v1.15.0 (AWS provider) on the sandbox",
        "whatif_costs": {"results": costs},
        "whatif_pods": {"results": pods},
        "whatif_events": {"results": events},
    }
    (tmp / "inputs.json").write_text(json.dumps(inputs))
    play = [
        {
            "name": "What-if report only",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars_files": [str(tmp / "inputs.json")],
            "tasks": [{"name": "Report", "ansible.builtin.include_tasks": TASKS}],
        }
    ]
    (tmp / "play.yml").write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp / "ansible-tmp")
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run(
        [playbook, "-i", "localhost,", "-e", "ansible_python_interpreter=" + sys.executable, str(tmp / "play.yml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads((tmp / "out" / ("whatif-%s.json" % RUN)).read_text())
    return report, tmp / "out" / ("whatif-%s.html" % RUN), proc.stdout


# ------------------------------------------------------------------------------------------ without a browser


def test_whatif_play_writes_differences_from_the_baseline(whatif_run):
    report, html_path, out = whatif_run
    split, mixed = report["variants"]
    assert (split["variant"], mixed["variant"]) == ("split", "mixed")
    assert split["delta"] is None and mixed["baseline"] == "split"
    assert mixed["delta"]["monthly"] == round(mixed["monthly"] - split["monthly"], 2)
    assert mixed["delta"]["hourly"] == round(mixed["hourly"] - split["hourly"], 6)
    assert mixed["delta"]["nodes"] == 1 and mixed["pending_pods"] == 1 and not mixed["delta"]["comparable"]
    assert mixed["delta"]["monthly_pct"] == round((mixed["monthly"] - split["monthly"]) / split["monthly"], 4)
    # monthly per capacity type, from the nodes' prices, adds up to the variant's monthly cost
    for v in (split, mixed):
        assert sum(v["monthly_by_capacity_type"].values()) == pytest.approx(v["monthly"], abs=0.02)
    # the play's summary line: one money format, the difference and the caveat
    line = (
        "mixed: 3 node(s), %s/h (%s/month); %s/month (%s) vs split (not comparable: pods pending); 1 pod(s) pending"
        % (  # noqa: E501
            fmt.money(mixed["hourly"]),
            fmt.money(mixed["monthly"]),
            fmt.money(mixed["delta"]["monthly"], signed=True),
            fmt.pct(mixed["delta"]["monthly_pct"], signed=True),
        )
    )
    assert line in re.sub(r"\s+", " ", out)  # the YAML callback wraps long lines
    doc = html_path.read_text()
    assert 'id="chart-whatif-monthly"' in doc and "<script" not in doc
    # no raw floats in the HTML: every node price is in the money format
    for v in (split, mixed):
        for n in v["node_list"]:
            assert '<td class="">%s</td>' % fmt.money(n["hourly"]) in doc
            assert ">%s<" % n["hourly"] not in doc


# ------------------------------------------------------------------------------------------ chromium


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but no chromium on PATH (scripts/test.sh installs Debian's chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/test.sh unit installs it)")
    return CHROMIUM


def _chromium(binary, tmp, html_path, *args):
    cmd = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: a report that fetched something would break
        "--hide-scrollbars",
        "--user-data-dir=%s" % (tmp / "profile"),
        *args,
        html_path.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, (cmd, proc.stderr[-3000:])
    return proc.stdout


def _png_pixels(data):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB/RGBA non-interlaced PNG (what chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _comp, _filt, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride, prev, rows = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x : x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def _screenshot(binary, tmp, html_path, name):
    shot = tmp / name
    _chromium(binary, tmp, html_path, "--screenshot=%s" % shot, "--window-size=%d,%d" % WINDOW)
    keep = os.environ.get("REPORT_SHOTS_DIR")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, os.path.join(keep, name))
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == WINDOW
    counts = {}
    for row in rows:
        for px in row:
            counts[px] = counts.get(px, 0) + 1
    return counts, width * height


def _text(dom, element_id):
    """The text of the element with this id in chromium's DOM (tags dropped, whitespace collapsed)."""
    m = re.search(r'<(\w+)[^>]*\bid="%s"[^>]*>(.*?)</\1>' % re.escape(element_id), dom, re.S)
    assert m, element_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(2))).replace("&amp;", "&").strip()


def test_cost_report_in_a_browser(browser, cost_report, tmp_path):
    report, html_path = cost_report
    counts, total = _screenshot(browser, tmp_path, html_path, "cost-report-no-history.png")
    white = counts.get((255, 255, 255), 0)
    assert white < total * 0.98, "blank page"
    assert len(counts) > 50  # text, bars, panels: not a flat fill
    assert counts.get(ON_DEMAND, 0) > 500 and counts.get(SPOT, 0) > 200  # the monthly-by-NodePool bars are drawn
    assert counts.get(MISSING_RED, 0) > 20  # the "no data" headline is visible

    dom = _chromium(browser, tmp_path, html_path, "--dump-dom")
    t = report["totals"]
    assert _text(dom, "kpi-hourly") == "Hourly %s" % fmt.money(t["hourly"])
    assert _text(dom, "kpi-monthly") == "Monthly run-rate %s" % fmt.money(t["monthly"])
    ce = _text(dom, "kpi-cost-explorer")
    assert ce.startswith("Cost Explorer, period no data cost_explorer: unavailable, HTTP 403 Forbidden")
    assert 'HTML error page "403 Forbidden"' in ce
    history = _text(dom, "no-history")
    assert "No cost history for this period" in history and "%s/day" % fmt.money(t["hourly"] * 24) in history
    assert "chart-cost-by-nodepool" not in dom and "font-family:sans-serif" not in dom and "tracker" not in dom
    notes = re.findall(r'<p class="note">(.*?)</p>', dom)
    assert len(notes) >= 4 and all(len(n) < 400 for n in notes)


def test_whatif_report_in_a_browser(browser, whatif_run, tmp_path):
    report, html_path, unused = whatif_run
    counts, total = _screenshot(browser, tmp_path, html_path, "whatif.png")
    assert counts.get((255, 255, 255), 0) < total * 0.98, "blank page"
    assert counts.get(ON_DEMAND, 0) > 500 and counts.get(SPOT, 0) > 500  # both variants' bars, both segments

    dom = _chromium(browser, tmp_path, html_path, "--dump-dom")
    split, mixed = report["variants"]
    hourly = _text(dom, "whatif-hourly")
    assert hourly == "hourly %s %s" % (fmt.money(split["hourly"]), fmt.money(mixed["hourly"]))
    delta = _text(dom, "whatif-delta")
    assert delta == "difference from split baseline %s/month (%s) %s/h; +1 node(s) not comparable: pods pending" % (
        fmt.money(mixed["delta"]["monthly"], signed=True),
        fmt.pct(mixed["delta"]["monthly_pct"], signed=True),
        fmt.money(mixed["delta"]["hourly"], signed=True),
    )
    assert "1 pending" in _text(dom, "whatif-workload-web")
    bars = re.findall(r'<rect [^>]*data-series="([^"]+)" data-category="([^"]+)" data-value="([^"]+)"', dom)
    expected = sorted(
        (ct, v["variant"], str(x)) for v in (split, mixed) for ct, x in v["monthly_by_capacity_type"].items()
    )
    assert sorted(bars) == expected
