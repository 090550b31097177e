#!/usr/bin/env python3
"""site.yml benchmark (issue 6): first converge vs no-op rerun on the sandbox, tasks and seconds per role.

A first converge is measured without touching what the sandbox already runs: the run uses a fresh cluster name,
namespace and Helm release (``bench-<id>``), so every AWS resource in moto (VPC, subnets, IAM roles and
policies, OIDC provider, EKS cluster, SQS queue, EventBridge rules), the namespace, the Helm release and the
NodePools/EC2NodeClasses are new; cluster-scoped objects shared with the main sandbox run (Kyverno
ClusterPolicies, CRDs) are already there. The same command is then run again (the no-op rerun). Afterwards the
Kubernetes objects are removed; moto's ``bench-<id>`` resources are left (moto is in-memory).

Timings come from the ``ansible.posix.json`` callback (per-task start/end, the same data ``profile_tasks`` and
``profile_roles`` print), summed per role. Goal: no-op rerun <= 40 % of the first converge.

    source .sandbox/env.sh && .venv/bin/python bench/site_bench.py [--json bench/results/site_bench.json]
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import uuid

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def bench_vars(bid):
    with open(os.path.join(ROOT, "inventories", "local", "group_vars", "all", "nodepools.yml")) as f:
        pools = yaml.safe_load(f)
    classes = pools["karpenter_ec2nodeclasses"]
    renamed = {c["metadata"]["name"]: f"{c['metadata']['name']}-{bid}" for c in classes}
    for c in classes:
        c["metadata"]["name"] = renamed[c["metadata"]["name"]]
    for p in pools["karpenter_nodepools"]:
        p["metadata"]["name"] = f"{p['metadata']['name']}-{bid}"
        ref = p["spec"]["template"]["spec"]["nodeClassRef"]
        ref["name"] = renamed.get(ref["name"], ref["name"])
    return {
        "karpenter_eks_cluster_name": bid,
        "karpenter_eks_namespace": bid,
        "karpenter_release_name": f"karpenter-{bid}",
        "karpenter_ec2nodeclasses": classes,
        "karpenter_nodepools": pools["karpenter_nodepools"],
        "cluster_vpc_cidr": "10.77.0.0/16",
        "cluster_vpc_subnets": [
            {"cidr": "10.77.0.0/19", "az": "us-east-1a"},
            {"cidr": "10.77.32.0/19", "az": "us-east-1b"},
        ],
    }


def _ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def run_site(extra_vars):
    env = dict(
        os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"
    )
    t0 = time.monotonic()
    res = subprocess.run(
        [PLAYBOOK, "-i", "inventories/local", "playbooks/site.yml", "-e", json.dumps(extra_vars)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    wall = time.monotonic() - t0
    out = json.loads(res.stdout)
    if res.returncode != 0:
        raise SystemExit(f"site.yml failed (rc={res.returncode}): {json.dumps(out)[-3000:]}")
    roles = {}
    for play in out["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            role = name.split(" : ", 1)[0].rsplit(".", 1)[-1] if " : " in name else "(play)"
            d = task["task"].get("duration", {})
            secs = _ts(d["end"]) - _ts(d["start"]) if d.get("end") else 0.0
            r = roles.setdefault(role, {"tasks": 0, "seconds": 0.0, "changed": 0, "skipped": 0, "changed_tasks": []})
            r["tasks"] += 1
            r["seconds"] += secs
            h = task["hosts"].get("sandbox", {})
            r["changed"] += int(bool(h.get("changed")))
            if h.get("changed"):
                r["changed_tasks"].append(name.split(" : ", 1)[-1])
            r["skipped"] += int(bool(h.get("skipped")))
    stats = out["stats"]["sandbox"]
    return {"wall_seconds": round(wall, 1), "stats": stats, "roles": roles}


def cleanup(bid):
    kubectl = os.path.join(os.environ["SANDBOX_BIN"], "kubectl")
    helm = os.path.join(os.environ["SANDBOX_BIN"], "helm")
    kc = ["--kubeconfig", os.environ["KUBECONFIG"]]
    subprocess.run([helm, *kc, "uninstall", f"karpenter-{bid}", "-n", bid, "--wait"], capture_output=True)
    for kind in ("nodepools.karpenter.sh", "ec2nodeclasses.karpenter.k8s.aws"):
        names = subprocess.run([kubectl, *kc, "get", kind, "-o", "name"], capture_output=True, text=True).stdout.split()
        mine = [n for n in names if n.endswith(f"-{bid}")]
        if mine:
            subprocess.run([kubectl, *kc, "delete", *mine, "--wait=false"], capture_output=True)
    subprocess.run([kubectl, *kc, "delete", "namespace", bid, "--wait=false"], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--json",
        default=os.path.join(ROOT, "bench", "results", "site_bench.json"),
        help="write the results here (default: bench/results/site_bench.json, as bench/run.py expects)",
    )
    args = ap.parse_args()
    for var in ("KUBECONFIG", "AWS_ENDPOINT_URL", "SANDBOX_BIN"):
        if not os.environ.get(var):
            raise SystemExit(f"{var} is not set: source .sandbox/env.sh first")
    if not os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:"):
        raise SystemExit("AWS_ENDPOINT_URL is not loopback; refusing")
    bid = "bench-" + uuid.uuid4().hex[:6]
    ev = bench_vars(bid)
    try:
        first = run_site(ev)
        rerun = run_site(ev)
    finally:
        cleanup(bid)
    result = {"id": bid, "first_converge": first, "noop_rerun": rerun}
    ratio = rerun["wall_seconds"] / first["wall_seconds"]
    result["ratio"] = round(ratio, 3)
    print(f"{'role':<12} {'first: tasks':>12} {'s':>7} {'changed':>8} | {'rerun: tasks':>12} {'s':>7} {'changed':>8}")
    for role in first["roles"]:
        a, b = first["roles"][role], rerun["roles"].get(role, {"tasks": 0, "seconds": 0, "changed": 0})
        print(
            f"{role:<12} {a['tasks']:>12} {a['seconds']:>7.1f} {a['changed']:>8} | "
            f"{b['tasks']:>12} {b['seconds']:>7.1f} {b['changed']:>8}"
        )
    print(
        f"wall: first converge {first['wall_seconds']} s, no-op rerun {rerun['wall_seconds']} s "
        f"= {ratio:.0%} (goal <= 40%: {'met' if ratio <= 0.4 else 'NOT met'})"
    )
    changed_on_rerun = [t for r in rerun["roles"].values() for t in r["changed_tasks"]]
    if changed_on_rerun:
        print(f"changed on the rerun: {changed_on_rerun}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
