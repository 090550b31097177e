"""karpenter_cost_report on the sandbox: real Karpenter nodes + Cost Explorer seeded in moto.

Two NodePools pinned to one instance type each (m6i.xlarge on-demand, c6i.large spot in us-east-1a), one
Deployment on each; the report is restricted to this test's nodes with a label selector. Expected numbers
are computed here from what AWS charges (the on-demand price list; spot from the emulator's spot price history,
which is what Karpenter's AWS provider decides on) and from the nodes' allocatable and the pods' requests as the
API returns them.
"""

import json
import os
import sys
from html.parser import HTMLParser

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLAY = os.path.join(ROOT, "playbooks", "cost_report.yml")
sys.path.insert(0, os.path.join(ROOT, "sandbox"))

pytestmark = pytest.mark.sandbox


def nodepool(name, run_label, instance_type, capacity_type, zone):
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {"test.karpenter-eks.io/cost-run": run_label}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"},
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [instance_type]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity_type]},
                        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]},
                    ],
                },
            },
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
        },
    }


def deployment(name, ns, pool, cpu, memory):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"karpenter.sh/nodepool": pool},
                    "containers": [
                        {"name": "app", "image": "fake", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
                    ],
                },
            },
        },
    }


def ce_results(uid):
    """Three days; by [INSTANCE_TYPE, USAGE_TYPE] then by [TAG nodepool, PURCHASE_TYPE] (query order)."""
    days = [("2026-07-01", "2026-07-02"), ("2026-07-02", "2026-07-03"), ("2026-07-03", "2026-07-04")]

    def g(keys, amount):
        return {"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}}

    by_type = {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": s, "End": e},
                "Estimated": False,
                "Groups": [
                    g(["m6i.xlarge", "USE1-BoxUsage:m6i.xlarge"], 4.608),  # 0.192 x 24
                    g(["c6i.large", "USE1-SpotUsage:c6i.large"], 0.6),
                ],
            }
            for s, e in days
        ]
    }
    by_pool = {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": s, "End": e},
                "Groups": [
                    g([f"karpenter.sh/nodepool$od-{uid}", "On Demand Instances"], 4.608),
                    g([f"karpenter.sh/nodepool$spot-{uid}", "Spot Instances"], 0.6),
                ],
            }
            for s, e in days
        ]
    }
    return [by_type, by_pool]


class Charts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.svgs, self.rects, self.external = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svgs.append(a["id"])
        if tag == "rect" and "data-series" in a:
            self.rects.append((self.svgs[-1], a["data-series"], a["data-category"], float(a["data-value"])))
        if tag in ("script", "link", "img", "iframe"):
            self.external.append(tag)


def test_cost_report_numbers_equal_hand_computed(sandbox, tmp_path, uid):
    from aws_emulator import seed_cost_explorer

    ns, run = f"cost-{uid}", f"run-{uid}"
    od_pool, spot_pool = f"od-{uid}", f"spot-{uid}"
    sandbox.kubectl("create", "namespace", ns)
    try:
        sandbox.apply(
            [
                nodepool(od_pool, run, "m6i.xlarge", "on-demand", "us-east-1b"),
                nodepool(spot_pool, run, "c6i.large", "spot", "us-east-1a"),
                deployment("od", ns, od_pool, "1", "1Gi"),
                deployment("spot", ns, spot_pool, "500m", "512Mi"),
            ]
        )

        def ready():
            pods = sandbox.core.list_namespaced_pod(ns).items
            ok = len(pods) == 2 and all(p.status.phase == "Running" and p.spec.node_name for p in pods)
            return pods if ok else None

        sandbox.wait_until("both pods Running on Karpenter nodes", ready, timeout=90)
        nodes = {
            n.metadata.name: n
            for n in sandbox.core.list_node(label_selector=f"test.karpenter-eks.io/cost-run={run}").items
        }
        assert len(nodes) == 2

        # expected values, by hand from the price list and the API's own allocatable/requests
        from kubernetes.utils import parse_quantity

        expected = {}
        for name, n in nodes.items():
            on_node = sandbox.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={name}").items
            live = [p for p in on_node if p.status.phase not in ("Succeeded", "Failed")]
            cpu = sum(
                parse_quantity((c.resources.requests or {}).get("cpu", "0")) for p in live for c in p.spec.containers
            )
            labels = n.metadata.labels
            price = sandbox.aws_price(
                labels["node.kubernetes.io/instance-type"],
                labels["karpenter.sh/capacity-type"],
                labels["topology.kubernetes.io/zone"],
            )
            expected[name] = (
                labels["karpenter.sh/nodepool"],
                float(cpu),
                float(parse_quantity(n.status.allocatable["cpu"])),
                price,
            )
        assert sorted(v[3] for v in expected.values()) == sorted(
            [sandbox.aws_price("c6i.large", "spot", "us-east-1a"), 0.192]
        )
        hourly = round(sum(v[3] for v in expected.values()), 6)

        cluster = f"cost-{uid}"  # unique: moto keys seeded results by request body
        seed_cost_explorer(sandbox.env["AWS_ENDPOINT_URL"], ce_results(uid))
        rc, out = sandbox.playbook(
            PLAY,
            "-i",
            "inventories/local",
            extra_vars={
                "cost_report_cluster_name": cluster,
                "cost_report_dir": str(tmp_path),
                "cost_report_basename": "report",
                "cost_report_node_selector": f"test.karpenter-eks.io/cost-run={run}",
                "cost_report_start": "2026-07-01",
                "cost_report_end": "2026-07-04",
            },
        )
        report = json.loads((tmp_path / "report.json").read_text())
        t = report["totals"]
        assert t["nodes"] == 2
        assert t["hourly"] == hourly
        assert t["monthly"] == round(hourly * 730, 2)
        by_pool = {p["nodepool"]: p for p in report["nodepools"]}
        for _name, (pool, cpu, alloc, price) in expected.items():
            assert by_pool[pool]["hourly"] == price
            assert by_pool[pool]["cpu_utilization"] == round(cpu / alloc, 4)
        spot = next(c for c in report["capacity_types"] if c["capacity_type"] == "spot")
        assert spot["hourly"] == sandbox.aws_price("c6i.large", "spot", "us-east-1a")
        assert report["spot_share"]["nodes"] == 0.5
        assert report["spot_share"]["cost"] == round(spot["hourly"] / hourly, 4)
        node_sources = {n["price_source"] for n in report["nodes"]}
        # on-demand from the price list, spot from the emulator's spot price history (as on AWS)
        assert node_sources == {"spot-price-history", "static-table"}, node_sources
        # Cost Explorer: 3 x (4.608 + 0.6) = 15.624; spot 1.8 / 15.624 = 0.1152
        ce = report["cost_explorer"]
        assert ce["by_type"]["total"] == 15.624
        assert ce["by_type"]["by_instance_type"] == {"m6i.xlarge": 13.824, "c6i.large": 1.8}
        assert ce["by_nodepool"]["by_nodepool"] == {od_pool: 13.824, spot_pool: 1.8}
        assert ce["by_nodepool"]["by_capacity_type"] == {"on-demand": 13.824, "spot": 1.8}
        assert ce["by_nodepool"]["spot_share"] == 0.1152
        # the on-demand pool does not allow spot: the recommendation carries the number
        rec = next(r for r in report["recommendations"] if r["kind"] == "spot")
        # (priced at the spot price AWS quotes for that type in the node's zone, not an assumed discount)
        spot_od_type = sandbox.aws_price("m6i.xlarge", "spot", "us-east-1b")
        assert rec["nodepool"] == od_pool and rec["monthly_saving"] == round((0.192 - spot_od_type) * 730, 2)
        # degraded sources are notes, not failures (moto: no Container Insights)
        assert any(n.startswith("cloudwatch:") for n in report["notes"])
        assert not any(n.startswith("spot_price_history:") for n in report["notes"])  # fresh, usable history
        assert report["data_sources"]["cluster"] == "ok" and report["data_sources"]["cost_explorer"] == "ok"
        assert report["data_sources"]["cloudwatch"] == "empty"
        assert report["aws_calls"]["ce:GetCostAndUsage"]["attempts"] == 2  # one call per grouping, no retry
        # us-east-1 nodes: the static table is the right region, nothing is a stand-in
        assert report["prices"]["stand_in_types"] == {}
        assert not [n for n in report["notes"] if n.startswith("prices:")]

        html = Charts()
        html.feed((tmp_path / "report.html").read_text())
        assert {
            "chart-cost-by-nodepool",
            "chart-cost-by-capacity-type",
            "chart-monthly-by-nodepool",
            "chart-utilization",
            "chart-ce-instance-types",
        } <= set(html.svgs)
        assert html.external == []
        assert ("chart-cost-by-nodepool", od_pool, "2026-07-02", 4.608) in html.rects
        assert ("chart-cost-by-capacity-type", "spot", "2026-07-03", 0.6) in html.rects
    finally:
        sandbox.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        sandbox.kubectl("delete", "nodepool", od_pool, spot_pool, "--wait=false", check=False)


def test_check_mode_writes_nothing_and_missing_sources_degrade(sandbox, tmp_path, uid):
    rc, out = sandbox.playbook(
        PLAY,
        "-i",
        "inventories/local",
        "--check",
        extra_vars={
            "cost_report_dir": str(tmp_path),
            "cost_report_basename": "report",
            "cost_report_cluster_name": f"none-{uid}",
            "karpenter_eks_aws_endpoint_url": "http://127.0.0.1:9",  # nothing listens: AWS is unreachable
            "cost_report_node_selector": f"test.karpenter-eks.io/cost-run=none-{uid}",
        },
    )
    assert rc == 0
    assert not list(tmp_path.iterdir())
    task = next(t for p in out["plays"] for t in p["tasks"] if t["task"]["name"] == "Gather and write the report")
    res = next(iter(task["hosts"].values()))
    assert res["report"]["totals"]["nodes"] == 0
    assert res["changed"] is True  # the files would be written
    assert any(n.startswith("cost_explorer: unavailable, endpoint unreachable") for n in res["notes"])
    # no node matched, so only the sources that need no node were asked; each failed once, without retries
    assert res["report"]["data_sources"]["cost_explorer"] == "failed"
    assert res["report"]["data_sources"]["cloudwatch"] == "failed"
    assert res["report"]["aws_calls"] == {
        "ce:GetCostAndUsage": {"attempts": 1, "retries": 0},
        "cloudwatch:GetMetricData": {"attempts": 1, "retries": 0},
    }
