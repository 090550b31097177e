"""Cost model against hand-computed values (every expected number is worked out in the comments)."""

from html.parser import HTMLParser

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import htmlreport as chtml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import model
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost_data import prices_us_east_1 as table

GI = 2**30


def node(name, itype, ct=None, pool=None, zone="us-east-1a", cpu="4", mem="16Gi", gpu=None, price=None, ng=None):
    labels = {"node.kubernetes.io/instance-type": itype, "topology.kubernetes.io/zone": zone}
    if pool:
        labels["karpenter.sh/nodepool"] = pool
    if ct:
        labels["karpenter.sh/capacity-type"] = ct
    if ng:
        labels["eks.amazonaws.com/nodegroup"] = ng
        labels["eks.amazonaws.com/capacityType"] = "ON_DEMAND"
    if price is not None:
        labels["eks-node-viewer/instance-price"] = "%f" % price
    alloc = {"cpu": cpu, "memory": mem, "pods": "110"}
    if gpu:
        alloc["nvidia.com/gpu"] = str(gpu)
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": alloc}}


def pod(node_name, cpu=None, mem=None, gpu=None, init=None, phase="Running", daemon=False):
    req = {}
    if cpu:
        req["cpu"] = cpu
    if mem:
        req["memory"] = mem
    if gpu:
        req["nvidia.com/gpu"] = gpu
    spec = {"nodeName": node_name, "containers": [{"name": "c", "resources": {"requests": req}}]}
    if init:
        spec["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": init}}}]
    meta = {"name": "p"}
    if daemon:
        meta["ownerReferences"] = [{"kind": "DaemonSet", "name": "ds"}]
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


NODES = [
    node("a", "c6i.2xlarge", "spot", "batch", cpu="8", mem="16Gi", price=0.06),
    node("b", "m6i.large", "on-demand", "batch", zone="us-east-1b", cpu="2", mem="8Gi"),
    node("c", "m6i.xlarge", "on-demand", "general", cpu="4", mem="16Gi"),
    node("d", "m6i.xlarge", ng="system", cpu="4", mem="16Gi"),
    node("e", "g5.xlarge", "on-demand", "gpu", cpu="4", mem="16Gi", gpu=1),
]
PODS = [
    pod("a", cpu="1", mem="2Gi"),
    # containers 500m in total, init container 1 CPU: effective request = max(0.5, 1) = 1
    {
        "metadata": {"name": "p2"},
        "spec": {
            "nodeName": "a",
            "containers": [
                {"name": "x", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}},
                {"name": "y", "resources": {"requests": {"cpu": "250m"}}},
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}],
        },
        "status": {"phase": "Running"},
    },
    pod("b", cpu="100m", mem="128Mi", daemon=True),
    pod("c", cpu="3", mem="8Gi"),
    pod("c", cpu="4", mem="8Gi", phase="Succeeded"),  # finished: not counted
    pod("e", cpu="1", mem="4Gi", gpu="1"),
    pod(None, cpu="8"),  # pending: no node
]
SPOT_OR_OD = {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]}
SPECS = {"batch": {"template": {"spec": {"requirements": [SPOT_OR_OD]}}}}


@pytest.fixture
def report():
    records = model.price_nodes(model.node_records(NODES, PODS), model.PriceBook())
    return model.build_report(records, model.PriceBook(), SPECS, period={"start": "2026-07-01", "end": "2026-07-08"})


def by(items, key, value):
    return next(i for i in items if i[key] == value)


def test_static_table_is_the_karpenter_table():
    assert len(table.ON_DEMAND) > 1000
    assert table.ON_DEMAND["m6i.large"] == 0.096
    assert table.ON_DEMAND["g5.xlarge"] == 1.006
    assert table.ON_DEMAND["p4d.24xlarge"] == 21.957642


def test_pod_requests_init_sidecar_overhead():
    p = {
        "spec": {
            "containers": [{"resources": {"requests": {"cpu": "200m", "memory": "1Gi"}}}],
            "initContainers": [
                {"resources": {"requests": {"cpu": "1"}}},  # plain init: max
                {"restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},  # sidecar: added
            ],
            "overhead": {"cpu": "50m"},
        }
    }
    assert model.pod_requests(p) == {"cpu": pytest.approx(1.05), "memory": GI}


def test_node_records_and_prices(report):
    n = dict((r["name"], r) for r in report["nodes"])
    assert (n["a"]["hourly"], n["a"]["price_source"]) == (0.06, "node-label")
    assert (n["b"]["hourly"], n["b"]["price_source"]) == (0.096, "static-table")
    assert n["b"]["pods"] == 0 and n["b"]["daemon_pods"] == 1
    assert n["a"]["requested"]["cpu"] == 2.0  # 1 + max(0.5, 1)
    assert n["a"]["requested"]["memory"] == 3 * GI
    assert n["c"]["requested"]["cpu"] == 3.0  # the Succeeded pod is ignored
    assert (n["d"]["nodepool"], n["d"]["managed_by"], n["d"]["capacity_type"]) == (
        "nodegroup/system",
        "nodegroup",
        "on-demand",
    )
    assert n["e"]["allocatable"]["gpu"] == 1.0 and n["e"]["requested"]["gpu"] == 1.0


def test_totals_and_spot_share(report):
    t = report["totals"]
    assert t["nodes"] == 5
    assert t["hourly"] == 1.546  # 0.06 + 0.096 + 0.192 + 0.192 + 1.006
    assert t["monthly"] == 1128.58  # 1.546 x 730
    assert t["cpu_allocatable"] == 22.0 and t["cpu_requested"] == 6.1  # 2 + 0.1 + 3 + 0 + 1
    assert t["cpu_utilization"] == 0.2773  # 6.1 / 22
    assert report["spot_share"] == {"nodes": 0.2, "vcpu": 0.3636, "cost": 0.0388}  # 1/5, 8/22, 0.06/1.546


def test_per_nodepool_and_capacity_type(report):
    batch = by(report["nodepools"], "nodepool", "batch")
    assert batch["nodes"] == 2
    assert batch["hourly"] == 0.156 and batch["monthly"] == 113.88
    assert batch["cpu_utilization"] == 0.21  # 2.1 / 10
    assert batch["memory_utilization"] == 0.1302  # 3.125Gi / 24Gi
    assert batch["by_capacity_type"] == {
        "spot": {"nodes": 1, "hourly": 0.06, "monthly": 43.8},
        "on-demand": {"nodes": 1, "hourly": 0.096, "monthly": 70.08},
    }
    assert batch["instance_types"] == {"c6i.2xlarge": 1, "m6i.large": 1}
    assert by(report["nodepools"], "nodepool", "gpu")["gpu_utilization"] == 1.0
    od = by(report["capacity_types"], "capacity_type", "on-demand")
    spot = by(report["capacity_types"], "capacity_type", "spot")
    assert (od["nodes"], od["hourly"], spot["nodes"], spot["hourly"]) == (4, 1.486, 1, 0.06)


def test_recommendations_with_numbers(report):
    recs = [(r["kind"], r["nodepool"], r["monthly_saving"]) for r in report["recommendations"]]
    assert recs == [
        ("spot", "general", 91.1),  # (0.192 - 0.192 x 0.35) x 730 = 91.104
        ("empty", "batch", 70.08),  # node b: 0.096 x 730
        ("underutilized", "batch", 30.11),  # node a only (b is empty): 43.8 x (1 - 0.25 / 0.8)
    ]
    under = report["recommendations"][2]["message"]
    assert (
        "NodePool batch runs 25% CPU-requested and 19% memory-requested on 1 node(s) with workloads ($43.80/month)"
        in (under)
    )  # node a: 2/8 CPU, 3Gi/16Gi memory
    assert "~$30.11/month" in under
    # the GPU pool is fully used and GPUs are not moved to spot; nodegroups are not Karpenter's
    assert not [r for r in report["recommendations"] if r["nodepool"] in ("gpu", "nodegroup/system")]


def test_spot_estimate_note(report):
    assert not any("spot_fraction" in n for n in report["notes"])  # the only spot node has a price label
    records = model.price_nodes(model.node_records([node("s", "m6i.large", "spot", "x")], []), model.PriceBook())
    rep = model.build_report(records, model.PriceBook())
    assert records[0]["hourly"] == 0.0336  # 0.096 x 0.35
    assert any("priced as on-demand x 0.35" in n for n in rep["notes"])


def test_price_precedence_override_and_history():
    rec = model.node_records([node("s", "m6i.large", "spot", "x", zone="us-east-1b", price=0.05)], [])
    book = model.PriceBook(spot_history={("m6i.large", "us-east-1b"): 0.031})
    assert book.price(rec[0]) == (0.031, "spot-price-history")
    assert model.PriceBook(overrides={"m6i.large": {"spot": 0.02}}).price(rec[0]) == (0.02, "override")
    assert model.PriceBook().price(rec[0]) == (0.05, "node-label")
    unknown = model.node_records([node("u", "zz9.huge", "on-demand", "x")], [])[0]
    assert model.PriceBook().price(unknown) == (None, "unknown")


def test_spot_history_ignores_stale_entries():
    import datetime

    now = datetime.datetime(2026, 7, 8, tzinfo=datetime.UTC)
    entries = [
        {"InstanceType": "m6i.large", "AvailabilityZone": "us-east-1a", "SpotPrice": "0.0400",
         "Timestamp": now - datetime.timedelta(hours=2)},
        {"InstanceType": "m6i.large", "AvailabilityZone": "us-east-1a", "SpotPrice": "0.0300",
         "Timestamp": now - datetime.timedelta(hours=1)},
        {"InstanceType": "m6i.large", "AvailabilityZone": "us-east-1b", "SpotPrice": "0.00001",
         "Timestamp": datetime.datetime(2006, 1, 1, tzinfo=datetime.UTC)},  # what moto answers
    ]  # fmt: skip
    prices, stale = model.spot_history_prices(entries, now.timestamp())
    assert prices == {("m6i.large", "us-east-1a"): 0.03} and stale == 1


CE_TYPE = [
    {"TimePeriod": {"Start": "2026-07-01", "End": "2026-07-02"}, "Estimated": False, "Groups": [
        {"Keys": ["m6i.large", "USE1-BoxUsage:m6i.large"], "Metrics": {"UnblendedCost": {"Amount": "2.304"}}},
        {"Keys": ["c6i.xlarge", "USE1-SpotUsage:c6i.xlarge"], "Metrics": {"UnblendedCost": {"Amount": "1.44"}}},
    ]},
    {"TimePeriod": {"Start": "2026-07-02", "End": "2026-07-03"}, "Estimated": True, "Groups": [
        {"Keys": ["m6i.large", "USE1-BoxUsage:m6i.large"], "Metrics": {"UnblendedCost": {"Amount": "1.152"}}},
    ]},
]  # fmt: skip
CE_POOL = [
    {"TimePeriod": {"Start": "2026-07-01", "End": "2026-07-02"}, "Groups": [
        {"Keys": ["karpenter.sh/nodepool$batch", "Spot Instances"], "Metrics": {"UnblendedCost": {"Amount": "1.44"}}},
        {"Keys": ["karpenter.sh/nodepool$batch", "On Demand Instances"],
         "Metrics": {"UnblendedCost": {"Amount": "2.304"}}},
    ]},
    {"TimePeriod": {"Start": "2026-07-02", "End": "2026-07-03"}, "Groups": [
        {"Keys": ["karpenter.sh/nodepool$", "On Demand Instances"], "Metrics": {"UnblendedCost": {"Amount": "1.152"}}},
    ]},
]  # fmt: skip


def test_cost_explorer_aggregation():
    t = model.ce_by_type(CE_TYPE)
    assert t["total"] == 4.896  # 2.304 + 1.44 + 1.152
    assert t["by_instance_type"] == {"m6i.large": 3.456, "c6i.xlarge": 1.44}
    assert t["by_usage_type"]["USE1-BoxUsage:m6i.large"] == 3.456
    assert [d["cost"] for d in t["daily"]] == [3.744, 1.152]
    p = model.ce_by_pool(CE_POOL)
    assert p["by_nodepool"] == {"(untagged)": 1.152, "batch": 3.744}
    assert p["by_capacity_type"] == {"on-demand": 3.456, "spot": 1.44}
    assert p["nodepool_series"] == {"(untagged)": [0.0, 1.152], "batch": [3.744, 0.0]}
    assert p["spot_share"] == 0.2941  # 1.44 / 4.896


def test_cloudwatch_average():
    assert model.cloudwatch_average([{"Id": "cpu", "Values": [10.0, 20.0, 36.0]}, {"Id": "mem", "Values": []}]) == {
        "cpu": 22.0,
        "mem": None,
    }


class _Svgs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.charts, self.rects, self.scripts = [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.charts.append(a.get("id"))
        elif tag == "rect" and "data-series" in a:
            self.rects.append((self.charts[-1], a["data-series"], a["data-category"], float(a["data-value"])))
        elif tag in ("script", "link"):
            self.scripts += 1


def test_html_has_charts_and_no_external_resources(report):
    report["cost_explorer"] = {"by_type": model.ce_by_type(CE_TYPE), "by_nodepool": model.ce_by_pool(CE_POOL)}
    doc = chtml.render(report)
    p = _Svgs()
    p.feed(doc)
    assert p.charts == [
        "chart-cost-by-nodepool",
        "chart-cost-by-capacity-type",
        "chart-monthly-by-nodepool",
        "chart-utilization",
        "chart-ce-instance-types",
    ]
    assert p.scripts == 0 and "http://" not in doc.replace("http://www.w3.org/2000/svg", "")
    assert ("chart-cost-by-nodepool", "batch", "2026-07-01", 3.744) in p.rects
    assert ("chart-cost-by-capacity-type", "spot", "2026-07-01", 1.44) in p.rects
    assert ("chart-monthly-by-nodepool", "spot", "batch", 43.8) in p.rects
    assert ("chart-utilization", "cpu", "batch", 0.21) in p.rects
    assert "~$30.11/month" in doc


def test_html_without_cost_explorer_says_there_is_no_history(report):
    doc = chtml.render(report)
    p = _Svgs()
    p.feed(doc)
    assert "chart-ce-instance-types" not in p.charts
    # no one-bar "over time" charts: a "no history" panel with the run-rate per day instead
    assert "chart-cost-by-nodepool" not in p.charts and "chart-cost-by-capacity-type" not in p.charts
    assert '<div class="nodata" id="no-history"' in doc
    per_day = chtml.fmt.money(report["totals"]["hourly"] * 24)
    assert "run-rate is %s/day" % per_day in doc


def test_static_prices_outside_us_east_1_are_flagged_not_silent(report):
    # the us-east-1 fixture: the table is the right one, nothing to flag
    assert not [n for n in report["notes"] if n.startswith("prices:")]
    assert report["prices"]["stand_in_types"] == {} and report["prices"]["static_table_region"] == "us-east-1"

    nodes = [
        node("x", "m6i.large", "on-demand", "web", zone="eu-west-1a"),
        node("y", "c6i.2xlarge", "spot", "web", zone="eu-west-1b"),
        node("z", "zz9.huge", "on-demand", "web", zone="eu-west-1a"),  # in no table
        node("u", "m6i.large", "on-demand", "web", zone="us-east-1a"),  # a us-east-1 node: the table is right
        node("w", "m6i.xlarge", "on-demand", "web", zone=None),  # no zone: the report's region
    ]
    book = model.PriceBook(region="eu-west-1")
    records = model.price_nodes(model.node_records(nodes, []), book)
    rep = model.build_report(records, book)
    n = dict((r["name"], r) for r in rep["nodes"])
    assert (n["x"]["region"], n["x"]["price_region"], n["x"]["hourly"]) == ("eu-west-1", "us-east-1", 0.096)
    assert (n["w"]["region"], n["w"]["price_region"]) == ("eu-west-1", "us-east-1")
    assert (n["u"]["region"], n["u"]["price_region"]) == ("us-east-1", "us-east-1")
    assert n["z"]["hourly"] is None and n["z"]["price_region"] is None
    assert rep["prices"]["stand_in_types"] == {"eu-west-1": ["c6i.2xlarge", "m6i.large", "m6i.xlarge"]}
    assert rep["prices"]["missing_types"] == ["zz9.huge"]
    stand_in = [x for x in rep["notes"] if x.startswith("prices:")]
    assert stand_in == [
        "prices: region eu-west-1 has no shipped price table; 3 node(s) of type(s) c6i.2xlarge, m6i.large, "
        "m6i.xlarge are priced with the static us-east-1 on-demand prices as a stand-in, so their costs are "
        "estimates (eu-west-1 prices differ; allow pricing:GetProducts or pass prices to fix)."
    ]
    assert any("zz9.huge" in x and "no price" in x for x in rep["notes"])
    # Pricing API prices for the region replace the stand-in; an override needs no region at all
    book = model.PriceBook(
        region="eu-west-1", regional={"eu-west-1": {"m6i.large": 0.107}}, overrides={"c6i.2xlarge": 0.1}
    )
    records = model.price_nodes(model.node_records(nodes, []), book)
    rep = model.build_report(records, book)
    n = dict((r["name"], r) for r in rep["nodes"])
    assert (n["x"]["hourly"], n["x"]["price_source"], n["x"]["price_region"]) == (0.107, "pricing-api", "eu-west-1")
    assert n["u"]["hourly"] == 0.096  # Pricing answered for eu-west-1 only: the us-east-1 node keeps the table
    assert rep["prices"]["stand_in_types"] == {"eu-west-1": ["m6i.xlarge"]}


def test_zone_region():
    assert model.zone_region("eu-west-1a") == "eu-west-1"
    assert model.zone_region("us-east-1-bos-1a") == "us-east-1"  # Local Zone
    assert model.zone_region("us-gov-west-1b") == "us-gov-west-1"
    assert model.zone_region(None) is None and model.zone_region("kwok-zone") is None
