#!/usr/bin/env python3
"""Sandbox numbers: warm `up` time, 100 pods Running on Karpenter nodes, consolidation after scale-to-zero.

    .venv/bin/python bench/sandbox_bench.py [--pods 100]

Cold build time and peak memory come from sandbox/build.sh's per-binary logs (<cache>/logs/*.time);
this script prints them too. Targets (issue 3): warm start <= 60 s, 100 pods Running <= 60 s.
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
                        "nodeClassRef": {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"},
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
    kubectl(env, "scale", "deployment/bench", "-n", "default", "--replicas=0")

    def gone():
        return not json.loads(kubectl(env, "get", "nodeclaims", "-o", "json"))["items"]

    out["consolidation_seconds"] = round(until(gone, 300), 2)
    kubectl(env, "delete", "deployment/bench", "-n", "default")
    kubectl(env, "delete", "nodepool/bench")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
