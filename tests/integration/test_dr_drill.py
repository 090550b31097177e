"""The disaster-recovery drill (issue 5) on the sandbox's real Karpenter: back up, delete, restore, converge.

The drill is scoped by a label selector to objects this test creates, so it never touches other tests' objects.
It proves: the archive holds the objects, they are deleted for real (NodePool deletion drains their KWOK nodes),
the restore brings back the same objects field by field, the NodePools are Ready again, and Karpenter launches a
NEW node for a probe pod on a restored NodePool.
"""

import json
import os
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRILL = os.path.join(ROOT, "playbooks", "drills", "dr_backup_restore.yml")
KWOK_REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"}  # the sandbox's Ready node class


def _objects(uid):
    label = {"dr-drill-test": uid, "app.kubernetes.io/managed-by": "karpenter_eks.platform"}
    pools = [
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": f"dr-{uid}-{i}", "labels": dict(label)},
            "spec": {
                "template": {
                    "metadata": {"labels": {"team": f"t{i}"}},
                    "spec": {
                        "nodeClassRef": KWOK_REF,
                        "requirements": [
                            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        ],
                        **({"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]} if i else {}),
                    },
                },
                "limits": {"cpu": "64"},
                "disruption": {"consolidateAfter": "30s", "budgets": [{"nodes": "20%"}]},
            },
        }
        for i in range(2)
    ]
    nodeclass = {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": f"dr-{uid}", "labels": dict(label)},
        "spec": {
            "role": "KarpenterNodeRole-sandbox",
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
        },
    }
    return pools, nodeclass


def _get(sandbox, plural, name):
    group = "karpenter.sh" if plural == "nodepools" else "karpenter.k8s.aws"
    return sandbox.custom.get_cluster_custom_object(group, "v1", plural, name)


def test_dr_drill_refuses_without_confirmation(sandbox, uid):
    pools, nodeclass = _objects(uid)
    sandbox.apply(pools)
    try:
        rc, out = sandbox.playbook(DRILL, extra_vars={"dr_drill_label_selector": f"dr-drill-test={uid}"}, check=False)
        assert rc != 0
        assert "dr_drill_confirm=true" in json.dumps(out)
        for p in pools:  # nothing deleted
            assert _get(sandbox, "nodepools", p["metadata"]["name"])["metadata"]["name"] == p["metadata"]["name"]
    finally:
        sandbox.kubectl("delete", "nodepools", "-l", f"dr-drill-test={uid}", "--wait=false", check=False)


def test_dr_drill_backs_up_deletes_restores_and_converges(sandbox, uid, tmp_path):
    pools, nodeclass = _objects(uid)
    sandbox.apply([nodeclass, *pools])
    before = {p["metadata"]["name"]: _get(sandbox, "nodepools", p["metadata"]["name"]) for p in pools}
    uids_before = {n: o["metadata"]["uid"] for n, o in before.items()}
    started = time.time()
    try:
        rc, out = sandbox.playbook(
            DRILL,
            extra_vars={
                "dr_drill_confirm": True,
                "dr_drill_label_selector": f"dr-drill-test={uid}",
                "dr_drill_dest": str(tmp_path),
                "dr_drill_timeout": 180,
            },
        )
        reports = [f for f in os.listdir(tmp_path) if f.startswith("dr-drill-") and f.endswith(".json")]
        assert len(reports) == 1, os.listdir(tmp_path)
        report = json.load(open(tmp_path / reports[0]))
        assert report["counts"]["NodePool"] == 2 and report["counts"]["EC2NodeClass"] == 1
        assert report["mismatches"] == []
        assert sorted(report["restored"]) == sorted([*before, nodeclass["metadata"]["name"]])
        # the probe ran on the untainted restored pool, on a node created after the deletion
        assert report["probe"]["nodepool"] == f"dr-{uid}-0"
        assert report["probe"]["node_nodepool"] == f"dr-{uid}-0"
        created = datetime.strptime(report["probe"]["node_created"], "%Y-%m-%dT%H:%M:%SZ").timestamp()
        assert created >= started - 1
        assert 0 < float(report["seconds"]["recovery_to_probe_running"]) < 180
        # really deleted and re-created: new uids, same specs
        for name, old in before.items():
            new = _get(sandbox, "nodepools", name)
            assert new["metadata"]["uid"] != uids_before[name]
            assert new["spec"] == old["spec"]
            assert new["metadata"]["labels"] == old["metadata"]["labels"]
        assert os.path.exists(report["archive"]["path"])
    finally:
        sandbox.kubectl("delete", "nodepools", "-l", f"dr-drill-test={uid}", "--wait=false", check=False)
        sandbox.kubectl("delete", "ec2nodeclasses", "-l", f"dr-drill-test={uid}", "--wait=false", check=False)
