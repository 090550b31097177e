"""Controller-kill drill against the sandbox's real Karpenter: the karpenter process (the AWS provider's controller) gets SIGTERM (pid file),
a workload that needs a new node arrives while it is down, the restart command (``sandbox.py up``, standing in for
the supervisor that restarts a pod on EKS) brings it back, and the playbook asserts recovery: the health URL answers
again and the pending workload runs on a node Karpenter launched, within the stated time.

Other tests share the sandbox's Karpenter: the test makes sure it is up again whatever happens.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DRILL = os.path.join(ROOT, "playbooks", "drills", "controller_kill.yml")
SANDBOX = os.path.join(ROOT, "sandbox", "sandbox.py")


def task(out, name):
    for play in out["plays"]:
        for t in play["tasks"]:
            if t["task"]["name"] == name or t["task"]["name"].endswith(" : " + name):
                return t["hosts"]["sandbox"]
    raise KeyError(name)


def test_controller_kill_drill_recovers(sandbox, uid, tmp_path):
    name = f"drill-ctrl-{uid}"
    pid_file = os.path.join(sandbox.env["SANDBOX_STATE"], "run", "karpenter.pid")
    pid_before = int(open(pid_file).read())
    timeout = 120
    try:
        t0 = time.monotonic()
        _, out = sandbox.playbook(
            DRILL,
            extra_vars={
                "drill_name": name,
                "drill_kill_pid_file": pid_file,
                "drill_restart_command": [sys.executable, SANDBOX, "up"],
                "drill_recovery_timeout": timeout,
                "karpenter_eks_artifacts_dir": str(tmp_path),
            },
        )
        took = time.monotonic() - t0
        bundle = task(out, "Choose the bundle folder")["ansible_facts"]["runbook_common_bundle_dir"]
        result = json.load(open(os.path.join(bundle, "drill-result.json")))
        print(f"controller_kill: recovered in {result['recovery_seconds']}s (playbook {took:.1f}s)")
        assert result["recovered"] and result["recovery_seconds"] <= timeout
        assert result["killed"] == f"pid {pid_before}"
        # it really was killed and restarted: a new process, and the controller was seen down
        assert int(open(pid_file).read()) != pid_before
        assert task(out, "The controller is down (health endpoint fails)")["status"] != 200
        assert task(out, "The controller is healthy again")["healthy"]
        assert result["pod_nodes"] and all(result["pod_nodes"])
        # cleaned up
        assert sandbox.kubectl("get", "nodepool", name, check=False).returncode != 0
    finally:
        subprocess.run([sys.executable, SANDBOX, "up"], check=False)
        sandbox.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
        sandbox.kubectl("delete", "nodepool", name, "--wait=false", "--ignore-not-found", check=False)
