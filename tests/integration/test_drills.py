"""Drills against the sandbox's real Karpenter: each fault is injected for real and recovery is asserted
by the playbook itself (pods Running off the failed node, capacity replaced, within the stated time)."""

import json
import os
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DRILL = os.path.join(ROOT, "playbooks", "drills", "node_failure.yml")


def task(out, name):
    for play in out["plays"]:
        for t in play["tasks"]:
            if t["task"]["name"] == name or t["task"]["name"].endswith(" : " + name):
                return t["hosts"]["sandbox"]
    raise KeyError(name)


@pytest.mark.parametrize("fault", ["delete_nodeclaim", "delete_node", "not_ready"])
def test_node_failure_drill_recovers(sandbox, uid, tmp_path, fault):
    name = f"drill-{fault.replace('_', '')[:10]}-{uid}"
    if fault == "not_ready" and not _kwok_has_chaos_stage(sandbox):
        pytest.skip("the sandbox's kwok does not load kustomize/stage/node/chaos/node-not-ready.yaml (sandbox.py)")
    timeout = 180 if fault == "not_ready" else 120  # not_ready waits for the node-monitor grace period
    t0 = time.monotonic()
    _, out = sandbox.playbook(
        DRILL,
        extra_vars={
            "drill_fault": fault,
            "drill_name": name,
            "karpenter_eks_artifacts_dir": str(tmp_path),
            "drill_recovery_timeout": timeout,
        },
    )
    took = time.monotonic() - t0
    bundle = task(out, "Choose the bundle folder")["ansible_facts"]["runbook_common_bundle_dir"]
    result = json.load(open(os.path.join(bundle, "drill-result.json")))
    print(f"{fault}: recovered in {result['recovery_seconds']}s (playbook {took:.1f}s)")
    assert result["recovered"] and result["recovery_seconds"] <= timeout
    assert result["target_node"] not in result["pod_nodes"]
    # cleaned up: no drill namespace or NodePool left
    assert sandbox.kubectl("get", "nodepool", name, check=False).returncode != 0


def _kwok_has_chaos_stage(sandbox):
    try:
        with open(os.path.join(sandbox.env["SANDBOX_STATE"], "run", "kwok.pid")) as f:
            pid = int(f.read())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"node-not-ready" in f.read()
    except (OSError, ValueError):
        return False
