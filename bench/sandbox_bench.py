#!/usr/bin/env python3
"""Sandbox numbers on Karpenter's AWS provider: warm `up` time, 100 pods Running on Karpenter nodes (CreateFleet
in the emulator, node-join), an interruption message to a replacement node Ready, consolidation after scale-to-zero.

    .venv/bin/python bench/sandbox_bench.py [--pods 100] [--restart]

Cold build time and peak memory come from sandbox/build.sh's per-binary logs (<cache>/logs/*.time);
this script prints them too. Targets: warm start <= 60 s, 100 pods (500m) Running <= 90 s, interruption ->
replacement Ready <= 60 s. Results are written to bench/results/sandbox.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANDBOX = [sys.executable, os.path.join(ROOT, "sandbox", "sandbox.py")]


def kubectl(env, *args, input=None):
    return subprocess.run(
        [os.path.join(env["SANDBOX_BIN"], "kubectl"), "--kubeconfig", env["KUBECONFIG"], *args],
        input=input,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def until(fn, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if fn():
            return time.monotonic() - t0
        time.sleep(0.25)
    raise SystemExit(f"timed out after {timeout}s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--restart", action="store_true", help="measure warm start: down, then up")
    a = ap.parse_args()
    out = {}
    if a.restart:
        subprocess.run([*SANDBOX, "down"], check=True)
    t0 = time.monotonic()
    subprocess.run([*SANDBOX, "up"], check=True)
    out["up_seconds"] = round(time.monotonic() - t0, 2)
    # bench/run.py runs this without --restart: `up` on a running sandbox is no warm start, say which it was
    out["up_from"] = "stopped (--restart)" if a.restart else "running (no --restart: not the warm-start time)"
    env = json.loads(subprocess.run([*SANDBOX, "env", "--format", "json"], capture_output=True, text=True).stdout)
    logs = os.path.join(os.path.dirname(env["SANDBOX_BIN"]), "logs")
    out["build"] = {
        f[:-5]: open(os.path.join(logs, f)).read().strip() for f in sorted(os.listdir(logs)) if f.endswith(".time")
    }
    docs = [
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "bench"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"bench": "yes"}},
                    "spec": {
                        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"},
                        "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}],
                    },
                },
                "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {
                "replicas": a.pods,
                "selector": {"matchLabels": {"app": "bench"}},
                "template": {
                    "metadata": {"labels": {"app": "bench"}},
                    "spec": {
                        "nodeSelector": {"bench": "yes"},
                        "containers": [
                            {
                                "name": "c",
                                "image": "registry.k8s.io/pause:3.10",
                                "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                            }
                        ],
                    },
                },
            },
        },
    ]
    kubectl(env, "apply", "--server-side", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))

    def running():
        pods = json.loads(kubectl(env, "get", "pods", "-l", "app=bench", "-o", "json"))["items"]
        return sum(p["status"].get("phase") == "Running" for p in pods) >= a.pods

    out["pods_running_seconds"] = round(until(running, 300), 2)
    nodes = json.loads(kubectl(env, "get", "nodes", "-l", "karpenter.sh/nodepool=bench", "-o", "json"))["items"]
    out["karpenter_nodes"] = sorted(n["metadata"]["labels"]["node.kubernetes.io/instance-type"] for n in nodes)

    # an EC2 spot interruption warning (or, for on-demand, a scheduled-change health event) for one node's instance,
    # on the controller's queue: seconds until a replacement node is Ready and no bench pod is Pending
    sys.path.insert(0, os.path.join(ROOT, "sandbox"))
    from aws_emulator import send_interruption

    victim = nodes[0]
    iid = victim["spec"]["providerID"].rsplit("/", 1)[1]
    kind = (
        "spot-interruption"
        if victim["metadata"]["labels"]["karpenter.sh/capacity-type"] == "spot"
        else "scheduled-change"
    )
    # nodes by uid: the emulator may give the replacement the victim's private IP, i.e. the victim's node name
    before = {n["metadata"]["uid"] for n in nodes}
    send_interruption(env["AWS_ENDPOINT_URL"], env["SANDBOX_INTERRUPTION_QUEUE"], kind, [iid])

    def replaced():
        now = json.loads(kubectl(env, "get", "nodes", "-l", "karpenter.sh/nodepool=bench", "-o", "json"))["items"]
        new_ready = [
            n
            for n in now
            if n["metadata"]["uid"] not in before
            and any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        ]
        pods = json.loads(kubectl(env, "get", "pods", "-l", "app=bench", "-o", "json"))["items"]
        victim_left = any(n["metadata"]["uid"] == victim["metadata"]["uid"] for n in now)
        on_victim = victim_left and [p for p in pods if p["spec"].get("nodeName") == victim["metadata"]["name"]]
        running_ = sum(p["status"].get("phase") == "Running" for p in pods)
        return new_ready and not on_victim and running_ >= a.pods

    out["interruption"] = {"kind": kind, "replacement_ready_seconds": round(until(replaced, 300), 2)}
    kubectl(env, "scale", "deployment/bench", "-n", "default", "--replicas=0")

    def gone():
        return not json.loads(kubectl(env, "get", "nodeclaims", "-o", "json"))["items"]

    out["consolidation_seconds"] = round(until(gone, 300), 2)
    kubectl(env, "delete", "deployment/bench", "-n", "default")
    kubectl(env, "delete", "nodepool/bench")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "sandbox.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
