"""playbooks/whatif.yml on the sandbox: the real Karpenter places a GPU and a spot-tolerant workload.

Two variants side by side (separate pools with a spot-only pool vs one mixed pool); every node's hourly price
in the report must equal what AWS charges for it (the on-demand list; the emulator's spot price history, which
Karpenter's AWS provider decides on), and everything the play created must be gone afterwards.
"""

import json
import os
from html.parser import HTMLParser

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLAY = os.path.join(ROOT, "playbooks", "whatif.yml")

pytestmark = pytest.mark.sandbox


def pool(name, requirements, taints=()):
    spec = {
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": requirements,
                "taints": list(taints),
            }
        },
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
    }
    if not taints:
        del spec["template"]["spec"]["taints"]
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec}


GPU = pool(
    "gpu",
    [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g5", "p4d"]},
    ],
    [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
)
CPU = [
    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
    {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m"]},
]
VARIANTS = [
    {
        "name": "split",
        "nodepools": [
            GPU,
            pool("general", [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}] + CPU),
            pool(
                "spot",
                [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}] + CPU,
                [{"key": "example.com/spot", "value": "true", "effect": "NoSchedule"}],
            ),
        ],
    },
    {
        "name": "mixed",
        "nodepools": [
            GPU,
            pool(
                "general",
                [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]}] + CPU,
            ),
        ],
    },
]
WORKLOAD = [
    {
        "name": "train",
        "replicas": 1,
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
    {
        "name": "batch",
        "replicas": 2,
        "requests": {"cpu": "1", "memory": "1Gi"},
        "node_selector": {"karpenter.sh/capacity-type": "spot"},
        "tolerations": [{"key": "example.com/spot", "operator": "Exists", "effect": "NoSchedule"}],
    },
]


class Table(HTMLParser):
    def __init__(self):
        super().__init__()
        self.in_table, self.headers = False, []
        self._th = False

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == "whatif-comparison":
            self.in_table = True
        self._th = self.in_table and tag == "th"

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_table = False
        self._th = False

    def handle_data(self, data):
        if self._th and data.strip():
            self.headers.append(data.strip())


def test_whatif_gpu_and_spot_side_by_side(sandbox, tmp_path, uid):
    rc, out = sandbox.playbook(
        PLAY,
        extra_vars={
            "whatif_run_id": uid,
            "whatif_workload": WORKLOAD,
            "whatif_variants": VARIANTS,
            "whatif_report_dir": str(tmp_path),
            "whatif_timeout": 120,
        },
    )
    report = json.loads((tmp_path / f"whatif-{uid}.json").read_text())
    variants = {v["variant"]: v for v in report["variants"]}
    assert set(variants) == {"split", "mixed"}
    for name, v in variants.items():
        # the GPU workload lands on the GPU pool, on a GPU type, on-demand
        train = v["workloads"]["train"]
        assert (train["pods"], train["pending"], train["nodepools"]) == (1, 0, ["gpu"]), (name, v)
        # the spot-tolerant batch lands on spot (split: the spot-only pool; mixed: the mixed pool)
        batch = v["workloads"]["batch"]
        assert (batch["pods"], batch["pending"]) == (2, 0), (name, v)
        assert batch["nodepools"] == (["spot"] if name == "split" else ["general"])
        by_node = {n["name"]: n for n in v["node_list"]}
        for n in train["nodes"]:
            assert by_node[n]["instance_type"].split(".")[0] in ("g5", "p4d")
            assert by_node[n]["capacity_type"] == "on-demand"
        for n in batch["nodes"]:
            assert by_node[n]["capacity_type"] == "spot"
        # costs match the price list, node by node, and add up
        for n in v["node_list"]:
            assert n["hourly"] == sandbox.aws_price(n["instance_type"], n["capacity_type"], n["zone"]), n
        assert v["hourly"] == round(sum(n["hourly"] for n in v["node_list"]), 6)
        assert v["nodes"] == len(v["node_list"]) == sum(v["by_instance_type"].values())
        assert sum(v["by_capacity_type"].values()) == v["nodes"]

    # the run ends by listing the two reports (and hands them to AWX), as every playbook that writes files does
    listed = [
        host["msg"]
        for play in out["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith("Files written by this run")
        for host in task["hosts"].values()
    ]
    assert listed == [[str(tmp_path / f"whatif-{uid}.html"), str(tmp_path / f"whatif-{uid}.json")]], listed

    table = Table()
    table.feed((tmp_path / f"whatif-{uid}.html").read_text())
    assert table.headers[:2] == ["split", "mixed"]

    # cleaned up: no namespace and no NodePool of this run is left
    assert not [n for n in sandbox.core.list_namespace().items if n.metadata.name.startswith(f"wi-{uid}-")]
    pools = sandbox.custom.list_cluster_custom_object("karpenter.sh", "v1", "nodepools")["items"]
    assert not [p for p in pools if p["metadata"]["name"].startswith(f"wi-{uid}-")]
