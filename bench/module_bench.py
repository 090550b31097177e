#!/usr/bin/env python3
"""Module benchmark (issue 4): 200 NodePools + 200 EC2NodeClasses, three ways, in one run against the sandbox.

    source .sandbox/env.sh && .venv/bin/python bench/module_bench.py [--count 200] [--variants batch,batch-no-dry-run,template,loop]
        [--k8s-apply] [--out bench/results/module_bench.json] [--against REV [--against-runs 6]]

Variants (playbooks in bench/playbooks/, the same objects for all three, passed with -e @objects.json):

* ``batch``    - karpenter_eks.platform.node_template + karpenter_provisioner, one task per kind (definitions: list)
* ``template`` - one kubernetes.core.k8s task with a multi-document template (state: present)
* ``loop``     - kubernetes.core.k8s with loop: (state: present; --k8s-apply: apply: true) - what most playbooks do

Each variant runs twice: first apply (nothing exists) and a no-op rerun; everything is deleted between
variants. Measured per run: wall time of ansible-playbook, time of its tasks (JSON callback), write requests
from the apiserver audit log (only the benchmarked client: controllers' writes are listed apart), and reads
(GET/LIST of nodepools/ec2nodeclasses) plus discovery requests from the deltas of the apiserver's
``apiserver_request_total`` (scraped from /metrics with the admin client certificate). The metric deltas
count every client, so another client reading these kinds at the same time would inflate them; the module's
own request counter (``requests`` in its result) is printed beside them as a cross-check.

``--against REV`` also times the batch variant of an earlier commit (a git worktree) against this tree's, alternating
(``--variants ""`` for that alone).

Goals (issue 4): batch >= 20x faster than the loop on first apply, >= 50x on the no-op rerun; no-op <= one
LIST per kind and zero writes.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

ROOT = benchlib.ROOT
PLAYBOOKS = os.path.join(ROOT, "bench", "playbooks")
VARIANTS = {
    "batch": ("batch.yml", "karpenter_eks.platform batch tasks (definitions: list)"),
    "batch-no-dry-run": ("batch.yml", "the same with server_dry_run: false (no dry-run before the writes)"),
    "template": ("k8s_template.yml", "kubernetes.core.k8s, one task, multi-document template"),
    "loop": ("k8s_loop.yml", "kubernetes.core.k8s with loop:"),
}
LABEL = "module-bench"
PREFIX = "bench-"


def log(msg):
    print("[%s] %s" % (datetime.now().strftime("%H:%M:%S"), msg), flush=True)


def playbook(env, name, vars_file, extra, kubeconfig=None, tree=ROOT):
    playbooks = os.path.join(tree, "bench", "playbooks")
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), os.path.join(playbooks, name), "-e", "@" + vars_file]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    penv = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(tree, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        K8S_AUTH_KUBECONFIG=kubeconfig or env["KUBECONFIG"],
        KUBECONFIG=kubeconfig or env["KUBECONFIG"],
    )
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, env=penv, cwd=tree)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    try:
        out = json.loads(res.stdout)
    except ValueError:
        raise SystemExit(
            "ansible-playbook output is not JSON (rc=%d):\n%s\n%s"
            % (res.returncode, res.stdout[-3000:], res.stderr[-3000:])
        )
    if res.returncode != 0:
        raise SystemExit("ansible-playbook %s failed (rc=%d):\n%s" % (name, res.returncode, json.dumps(out)[-4000:]))
    return wall, cpu, out


def _seconds(duration):
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (datetime.strptime(duration["end"], fmt) - datetime.strptime(duration["start"], fmt)).total_seconds()


def task_summary(out):
    tasks, module_requests, changed_items = [], {}, 0
    for play in out["plays"]:
        for task in play["tasks"]:
            host = task["hosts"].get("localhost", {})
            tasks.append({"name": task["task"]["name"], "seconds": round(_seconds(task["task"]["duration"]), 3)})
            items = host.get("results") if isinstance(host.get("results"), list) else None
            if items and all(isinstance(r, dict) and "changed" in r and "item" in r for r in items):
                changed_items += sum(1 for r in items if r.get("changed"))  # loop: one result per item
            elif items:
                changed_items += sum(1 for r in items if isinstance(r, dict) and r.get("changed"))  # our results
            elif host.get("changed"):
                changed_items += len(host.get("result", {}).get("results", [])) or 1
            for k, v in (host.get("requests") or {}).items():
                module_requests[k] = module_requests.get(k, 0) + v
    return tasks, module_requests, changed_items


def settle(sb, quiet=3.0, timeout=90.0):
    """Wait until the controllers stop writing to the benchmark objects (status/annotation updates)."""
    t0 = time.monotonic()
    mark = sb.audit_mark()
    last_change = time.monotonic()
    while time.monotonic() - t0 < timeout:
        time.sleep(1.0)
        new = sb.writes_since(mark, PREFIX, settle=0)
        mark = sb.audit_mark()
        if new:
            last_change = time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return round(time.monotonic() - t0, 1)
    return round(time.monotonic() - t0, 1)


def count_live(sb):
    n = 0
    for group, plural in (("karpenter.sh", "nodepools"), ("karpenter.k8s.aws", "ec2nodeclasses")):
        items = sb.custom.list_cluster_custom_object(group, "v1", plural, label_selector="bench=%s" % LABEL)["items"]
        n += len(items)
    return n


def cleanup(sb, timeout=300):
    t0 = time.monotonic()
    for kind in ("nodepools", "ec2nodeclasses"):
        sb.kubectl("delete", kind, "-l", "bench=%s" % LABEL, "--wait=false", "--ignore-not-found", check=False)
    while count_live(sb):
        if time.monotonic() - t0 > timeout:
            raise SystemExit("cleanup: objects with bench=%s still present after %ds" % (LABEL, timeout))
        time.sleep(1)
    return round(time.monotonic() - t0, 1)


def measure(sb, variant, phase, vars_file, extra):
    quiet = settle(sb)
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews every timing: recorded
    before = sb.request_counters()
    mark = sb.audit_mark()
    wall, cpu, out = playbook(sb.env, VARIANTS[variant][0], vars_file, extra)
    after = sb.request_counters()
    events = sb.writes_since(mark, PREFIX)
    writes = benchlib.summarize_writes(events)
    controller_writes = {}
    for e in events:
        ua = (e.get("userAgent") or "").split("/")[0]
        if (e.get("userAgent") or "").startswith("karpenter/"):
            k = "%s %s%s" % (
                e["verb"],
                e["objectRef"]["resource"],
                "/" + e["objectRef"]["subresource"] if e["objectRef"].get("subresource") else "",
            )
            controller_writes["%s: %s" % (ua, k)] = controller_writes.get("%s: %s" % (ua, k), 0) + 1
    delta = sb.counter_delta(before, after)
    reads = {k: v for k, v in delta.items() if k.split()[0] in ("GET", "LIST")}
    discovery = delta.get("discovery", 0)
    tasks, module_requests, changed_items = task_summary(out)
    row = {
        "variant": variant,
        "phase": phase,
        "wall_seconds": round(wall, 2),
        "client_cpu_seconds": round(cpu, 2),
        "task_seconds": round(sum(t["seconds"] for t in tasks), 2),
        "tasks": tasks,
        "changed_tasks": out["stats"]["localhost"]["changed"],
        "changed_objects": changed_items,
        "writes": writes,
        "write_count": sum(writes.values()),
        "reads": reads,
        "read_count": sum(reads.values()),
        "discovery_requests": discovery,
        "total_requests": sum(writes.values()) + sum(reads.values()) + discovery,
        "metrics_delta": delta,
        "controller_writes_during_run": controller_writes,
        "module_reported_requests": module_requests or None,
        "settle_seconds_before": quiet,
        "loadavg_1m_before_after": [load_before, round(os.getloadavg()[0], 2)],
    }
    log(
        "%-8s %-5s wall %7.2fs tasks %7.2fs changed objects %3d writes %3d reads %3d discovery %3d load %s"
        % (
            variant,
            phase,
            wall,
            row["task_seconds"],
            changed_items,
            row["write_count"],
            row["read_count"],
            discovery,
            row["loadavg_1m_before_after"],
        )
    )
    return row


def account(sb, proxy, variant, phase, vars_file, extra):
    """Exact requests of one run: the playbook talks to the apiserver through the counting proxy."""
    settle(sb)
    proxy.take()
    mark = sb.audit_mark()
    wall, unused_cpu, out = playbook(sb.env, VARIANTS[variant][0], vars_file, extra, kubeconfig=proxy.kubeconfig)
    counts = proxy.take()
    writes = benchlib.summarize_writes(sb.writes_since(mark, PREFIX))
    tasks, module_requests, changed_items = task_summary(out)
    row = {
        "variant": variant,
        "phase": phase,
        "requests": counts,
        "total": sum(counts.values()),
        "reads": sum(v for k, v in counts.items() if k.split()[0] in ("GET", "LIST")),
        "writes": sum(v for k, v in counts.items() if k.split()[0] in ("POST", "PUT", "PATCH", "DELETE")),
        "discovery": counts.get("discovery", 0),
        "audit_writes": writes,
        "changed_objects": changed_items,
        "module_reported_requests": module_requests or None,
        "wall_seconds_through_proxy": round(wall, 2),
    }
    log(
        "%-8s %-5s exact requests: total %d (%s)"
        % (variant, phase, row["total"], ", ".join("%s=%d" % kv for kv in sorted(counts.items())))
    )
    return row


def against(sb, rev, runs, vars_file):
    """The batch variant of this tree against REV's (a git worktree on the same venv and cluster): ``runs`` rounds,
    the order alternating, each a first apply and a no-op rerun after a cleanup; medians of wall and CPU seconds.
    This tree runs with ``server_dry_run: false``, the same work as a tree from before that option (REV's batch
    playbook ignores the variable where its modules do not have it)."""
    old = benchlib.worktree(rev)
    trees = {"this_tree": ROOT, rev: old}
    samples = {(name, phase): [] for name in trees for phase in ("first", "noop")}
    try:
        for i in range(runs):
            for name in list(trees) if i % 2 == 0 else list(trees)[::-1]:
                cleanup(sb)
                for phase in ("first", "noop"):
                    settle(sb)
                    wall, cpu, _out = playbook(
                        sb.env, "batch.yml", vars_file, {"bench_server_dry_run": False}, tree=trees[name]
                    )
                    samples[(name, phase)].append((wall, cpu))
                    log("against %s: %s %s %.2fs wall %.2fs cpu" % (rev, name, phase, wall, cpu))
        cleanup(sb)
    finally:
        benchlib.remove_worktree(old)
    out = {"rev": rev, "runs_each": runs, "server_dry_run": False}
    for phase in ("first", "noop"):
        out[phase] = benchlib.ab_row({name: samples[(name, phase)] for name in trees}, rev)
    return out


def ratio(a, b):
    return round(a / b, 1) if b else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=200, help="NodePools and EC2NodeClasses each (default 200)")
    ap.add_argument("--variants", default="batch,batch-no-dry-run,template,loop")
    ap.add_argument("--k8s-apply", action="store_true", help="kubernetes.core.k8s with apply: true")
    ap.add_argument(
        "--account-count",
        type=int,
        default=None,
        help="objects per kind for the request-accounting pass through the counting proxy (default: --count; 0: none)",
    )
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "module_bench.json"))
    ap.add_argument("--against", metavar="REV", help="also time REV's batch playbook against this tree's")
    ap.add_argument("--against-runs", type=int, default=6)
    a = ap.parse_args()
    if a.account_count is None:
        a.account_count = a.count
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit("unknown variant %s (known: %s)" % (v, ", ".join(VARIANTS)))

    sb = benchlib.Sandbox()
    data = {
        "bench_nodeclasses": benchlib.nodeclasses(a.count, label=LABEL),
        "bench_nodepools": benchlib.nodepools(a.count, label=LABEL),
    }
    extra = {"k8s_apply": bool(a.k8s_apply)}
    tmp = tempfile.mkdtemp(prefix="module-bench-")
    vars_file = os.path.join(tmp, "objects.json")
    with open(vars_file, "w") as f:
        json.dump(data, f)

    account_file = vars_file
    if a.account_count and a.account_count != a.count:
        account_file = os.path.join(tmp, "objects-account.json")
        with open(account_file, "w") as f:
            json.dump(
                {
                    "bench_nodeclasses": benchlib.nodeclasses(a.account_count, label=LABEL),
                    "bench_nodepools": benchlib.nodepools(a.account_count, label=LABEL),
                },
                f,
            )

    log("cleanup before start: %ss" % cleanup(sb))
    rows, accounting = [], []
    against_result = None
    proxy = benchlib.CountingProxy(sb.env) if a.account_count else None
    try:
        for v in variants:
            vextra = dict(extra, bench_server_dry_run=(v != "batch-no-dry-run"))
            for phase in ("first", "noop"):
                rows.append(measure(sb, v, phase, vars_file, vextra))
            log("cleanup after %s: %ss" % (v, cleanup(sb)))
            if proxy:
                for phase in ("first", "noop"):
                    accounting.append(account(sb, proxy, v, phase, account_file, vextra))
                log("cleanup after %s accounting: %ss" % (v, cleanup(sb)))
        if a.against:
            against_result = against(sb, a.against, a.against_runs, vars_file)
    finally:
        cleanup(sb)
        if proxy:
            proxy.close()

    by = {(r["variant"], r["phase"]): r for r in rows}
    ratios = {}
    for other in ("loop", "template"):
        for phase in ("first", "noop"):
            if ("batch", phase) in by and (other, phase) in by:
                ratios["%s/batch %s wall" % (other, phase)] = ratio(
                    by[(other, phase)]["wall_seconds"], by[("batch", phase)]["wall_seconds"]
                )
                ratios["%s/batch %s client cpu" % (other, phase)] = ratio(
                    by[(other, phase)]["client_cpu_seconds"], by[("batch", phase)]["client_cpu_seconds"]
                )
                ratios["%s/batch %s tasks" % (other, phase)] = ratio(
                    by[(other, phase)]["task_seconds"], by[("batch", phase)]["task_seconds"]
                )
    goals = {}
    acc = {(r["variant"], r["phase"]): r for r in accounting}
    if ("batch", "noop") in by:
        noop = by[("batch", "noop")]
        goals["noop zero writes (audit log)"] = noop["write_count"] == 0
    if ("batch", "noop") in acc:
        exact = acc[("batch", "noop")]["requests"]
        lists = {k: v for k, v in exact.items() if k.startswith("LIST")}
        goals["noop only LISTs (exact)"] = set(k.split()[0] for k in exact) <= {"LIST"}
        goals["noop <= one LIST per kind per run (exact)"] = all(v <= 1 for v in lists.values())
        goals["noop <= one LIST per kind per task (exact)"] = sum(lists.values()) <= 3  # 2 tasks + class lookup
    if "loop/batch first wall" in ratios:
        goals[">= 20x faster than loop, first apply (wall)"] = ratios["loop/batch first wall"] >= 20
        goals[">= 50x faster than loop, no-op (wall)"] = ratios["loop/batch noop wall"] >= 50

    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.executable, ROOT)] + sys.argv),
        "objects": {"NodePool": a.count, "EC2NodeClass": a.count},
        "k8s_mode": "apply: true" if a.k8s_apply else "state: present",
        "machine": {"cpus": os.cpu_count()},
        "rows": rows,
        "accounting": {"objects_per_kind": a.account_count, "rows": accounting},
        "ratios": ratios,
        "goals": goals,
    }
    if against_result:
        result["against"] = against_result
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)

    print()
    print("%d NodePools + %d EC2NodeClasses; kubernetes.core.k8s %s" % (a.count, a.count, result["k8s_mode"]))
    hdr = "%-9s %-6s %9s %9s %8s %8s %7s %6s %10s %6s  %s"
    print(
        hdr
        % (
            "variant",
            "run",
            "wall s",
            "tasks s",
            "cpu s",
            "changed",
            "writes",
            "reads",
            "discovery",
            "total",
            "reads by verb (apiserver metrics)",
        )
    )
    for r in rows:
        print(
            hdr
            % (
                r["variant"],
                r["phase"],
                "%.2f" % r["wall_seconds"],
                "%.2f" % r["task_seconds"],
                "%.2f" % r["client_cpu_seconds"],
                r["changed_objects"],
                r["write_count"],
                r["read_count"],
                r["discovery_requests"],
                r["total_requests"],
                ", ".join("%s=%d" % kv for kv in sorted(r["reads"].items())),
            )
        )
    if accounting:
        print()
        print("exact requests per run (counting proxy, %d + %d objects):" % (a.account_count, a.account_count))
        hdr2 = "%-9s %-6s %7s %7s %7s %10s  %s"
        print(hdr2 % ("variant", "run", "total", "reads", "writes", "discovery", "by verb"))
        for r in accounting:
            print(
                hdr2
                % (
                    r["variant"],
                    r["phase"],
                    r["total"],
                    r["reads"],
                    r["writes"],
                    r["discovery"],
                    ", ".join("%s=%d" % kv for kv in sorted(r["requests"].items()) if kv[0] != "discovery"),
                )
            )
    print()
    for k, v in ratios.items():
        print("ratio %-34s %sx" % (k, v))
    for k, v in goals.items():
        print("goal  %-45s %s" % (k, "MET" if v else "MISSED"))
    if against_result:
        print("against %s (batch, server_dry_run: false): %s" % (a.against, json.dumps(against_result)))
    print("written: %s" % os.path.relpath(a.out, ROOT))


if __name__ == "__main__":
    main()
