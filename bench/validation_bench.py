#!/usr/bin/env python3
"""What validating N Karpenter objects costs: offline (fresh process, import included) vs server-side dry-runs.

    source .sandbox/env.sh && .venv/bin/python bench/validation_bench.py [--sizes 10,100,1000] [--every 4]
        [--repeat 5] [--no-module] [--out bench/results/validation_bench.json] [--against REV]

For each size N: N/2 EC2NodeClasses + N/2 NodePools (bench/benchlib.py); every ``--every``-th object of a kind
carries one known mistake (benchlib.MUTATIONS: schema, CEL and Karpenter-runtime ones). Measured in one run:

* bare interpreter: ``python -c pass`` (the venv's python), once per run;
* offline, fresh process (bench/validation_child.py ``offline``): spawn, import the collection's apply path as
  a module run does (``glue.karpenter_main`` + ``load_karpenter_apply()``), read the N objects from a JSON file,
  ``validate_batch``, exit. Wall time from spawn to exit (median and minimum of ``--repeat``, the rounds
  interleaved across the sizes), its CPU time, and the import and validation times the child reports; N=0 is
  the same process with an empty file: interpreter + import;
* offline, in this process (``validate_batch`` only): ``cold`` (every cache cleared: CEL rules compiled again,
  validation plans rebuilt, ``re.purge()``), ``compiled`` (result memo cleared) and ``warm``;
* module, check mode (unless ``--no-module``): ``node_template`` then ``karpenter_provisioner`` through the
  module entry point as AnsiballZ runs it (``python -m <module> args.json``, ``_ansible_check_mode``), on the
  sandbox: imports, one LIST per kind, validation, plan, no write. The batches contain invalid objects, so both
  runs end in the expected "invalid definition(s), nothing was applied" failure, after validating everything
  (ansible-playbook adds its own start-up and AnsiballZ packaging on top; not measured here);
* server, from this process, already connected (the connections are opened by untimed requests first):
  ``POST ...?dryRun=All&fieldValidation=Strict`` per object with the kubernetes client, sequentially on one
  keep-alive connection; and the module's own dry-run (``engine.dry_run`` with the module's client: server-side
  apply with ``dryRun=All&fieldValidation=Strict``) sequentially and with ``engine.WRITE_CONCURRENCY`` in flight;
  best of two runs each. The module's client keeps one connection per thread and ``engine.dry_run`` starts new
  worker threads per call (per kind), so the concurrent runs open their TLS connections inside the timing, as a
  module run does; only the sequential ones reuse a warm connection. An object with a field of the wrong type
  is refused by server-side apply with HTTP 500 before validation (counted, see validation_child.py);
* server, fresh process (bench/validation_child.py ``server``): import + connect + ``engine.dry_run`` with the
  module's concurrency, spawn to exit (median of ``--repeat``).

Verdicts, per size: the apiserver's (accepted or not, for the POSTs and for the module's dry-run) must equal
"no schema/CEL error" offline for every object; objects only Karpenter's runtime validation rejects are counted
apart (the apiserver accepts them, offline reports them with source ``runtime``). Nothing is stored.
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import validation_child  # noqa: E402
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import caches, validate  # noqa: E402
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client, engine  # noqa: E402

ROOT = benchlib.ROOT
CHILD = os.path.join(ROOT, "bench", "validation_child.py")
PATHS = {
    "NodePool": "/apis/karpenter.sh/v1/nodepools",
    "EC2NodeClass": "/apis/karpenter.k8s.aws/v1/ec2nodeclasses",
}
MODULES = (("EC2NodeClass", "node_template"), ("NodePool", "karpenter_provisioner"))
MODULE_PACKAGE = "ansible_collections.karpenter_eks.platform.plugins.modules."


def objects(n, every):
    """n objects: n // 2 EC2NodeClasses (the rest) and n // 2 NodePools, with benchlib's mistakes."""
    nps = n // 2
    base = benchlib.nodeclasses(n - nps, label="validation-bench", prefix="vbench") + benchlib.nodepools(
        nps, label="validation-bench", prefix="vbench"
    )
    return benchlib.invalid_variants(base, every=every)


def timed(fn, repeat=1):
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def spawn(args, env=None, cpu=None):
    """Run a child with the venv's python; (wall seconds, parsed JSON stdout or None, completed process).

    ``cpu``: a list that gets the child's CPU seconds (user + system), which the machine's load changes far
    less than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = None
    return wall, out, proc


def run_child(args, stats):
    """One fresh process of bench/validation_child.py; its wall and reported times appended to ``stats``."""
    wall, out, proc = spawn([CHILD, *args], cpu=stats["cpu"])
    if out is None:
        raise SystemExit("validation_child.py %s failed: %s" % (" ".join(args), proc.stderr[-2000:]))
    stats["wall"].append(wall)
    stats["import"].append(out["import_seconds"])
    stats["inner"].append(out["inner_seconds"])
    return out


def new_stats():
    return {"wall": [], "cpu": [], "import": [], "inner": []}


def fresh_offline(paths, repeat):
    """Fresh offline processes for every size, interleaved: ``repeat`` rounds, each a bare interpreter and then
    one process per size, so that a change of the (shared) machine's load hits every size alike."""
    bare, stats, last = new_stats(), {n: new_stats() for n in paths}, {}
    for _ in range(repeat):
        bare["wall"].append(spawn(["-c", "pass"], cpu=bare["cpu"])[0])
        for n, path in paths.items():
            last[n] = run_child(["offline", path], stats[n])
    return bare, stats, last


def module_check(objs, kubeconfig, tmp, repeat, trees=None):
    """The two Karpenter modules in check mode through their entry point; per tree (default: this one), the wall
    and CPU seconds of both per repeat and their outcome. Several trees run alternately, the order turning."""
    trees = trees or {"this_tree": ROOT}
    walls = {name: [] for name in trees}
    cpus = {name: [] for name in trees}
    outcome = {name: {} for name in trees}
    for i in range(repeat):
        for name in list(trees) if i % 2 == 0 else list(trees)[::-1]:
            env = dict(os.environ, PYTHONPATH=os.path.join(trees[name], ".collections"))
            total, cpu = 0.0, []
            for kind, module in MODULES:
                args = {
                    "ANSIBLE_MODULE_ARGS": {
                        "definitions": [o for o in objs if o["kind"] == kind],
                        "kubeconfig": kubeconfig,
                        "_ansible_check_mode": True,
                    }
                }
                path = os.path.join(tmp, "%s-args.json" % module)
                with open(path, "w") as f:
                    json.dump(args, f)
                wall, out, proc = spawn(["-m", MODULE_PACKAGE + module, path], env=env, cpu=cpu)
                if out is None:
                    raise SystemExit("%s (%s) failed without a result: %s" % (module, name, proc.stderr[-2000:]))
                total += wall
                outcome[name][module] = {
                    "rc": proc.returncode,
                    "failed": bool(out.get("failed")),
                    "validation_errors": len(out.get("errors") or []),
                    "requests": out.get("requests"),
                    "changed": out.get("changed"),
                }
            walls[name].append(total)
            cpus[name].append(sum(cpu))
    return walls, cpus, outcome


def server_connected(sb, api, objs):
    """Dry-runs from this (connected) process: POST sequential, module dry-run sequential and concurrent."""
    post_t, statuses = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        statuses = []
        for o in objs:
            status, body = sb.raw("POST", PATHS[o["kind"]], {"dryRun": "All", "fieldValidation": "Strict"}, o)
            statuses.append((status, body))
        post_t.append(time.perf_counter() - t0)
    module_t, rejected = {}, {}
    for label, concurrency in (("sequential", 1), ("concurrent", engine.WRITE_CONCURRENCY)):
        rejected[label], module_t[label] = timed(lambda c=concurrency: validation_child.dry_run_kinds(api, objs, c), 2)
    return post_t, statuses, module_t, rejected


def verdicts(objs, expected, offline_rows, statuses, rejected):
    """Compare, object by object: expected, offline, the POSTs' answers and the module dry-run's refusals."""
    counts = {"valid": 0, "apiserver": 0, "runtime": 0}
    mismatches = []
    path_hits = path_total = 0
    for o, exp, off, (status, body) in zip(objs, expected, offline_rows, statuses, strict=True):
        counts[exp] += 1
        api_ok = status in (200, 201)
        module_dry_ok = all(off["object"] not in r for r in rejected.values())
        if not api_ok:
            causes = [c.get("field") for c in (body.get("details") or {}).get("causes") or []]
            for p in off["paths"]:
                path_total += 1
                path_hits += any(c and (c == p or c.startswith(p) or p.startswith(c)) for c in causes)
        agree = api_ok == off["ok_for_apiserver"] == module_dry_ok
        if exp == "runtime":
            agree = agree and api_ok and bool(off["runtime_errors"])
        elif exp == "apiserver":
            agree = agree and not api_ok
        else:
            agree = agree and api_ok and off["ok"]
        if not agree:
            mismatches.append(
                {
                    "object": off["object"],
                    "mutation": (o["metadata"].get("annotations") or {}).get("bench/mutation"),
                    "expected": exp,
                    "apiserver_status": status,
                    "apiserver_message": None if api_ok else body.get("message"),
                    "module_dry_run_ok": module_dry_ok,
                    "offline_errors": off["errors"],
                    "offline_runtime_errors": off["runtime_errors"],
                }
            )
    return counts, mismatches, "%d/%d" % (path_hits, path_total)


def r4(values):
    return [round(v, 4) for v in values]


def med(values):
    return round(statistics.median(values), 4)


def in_process(objs, repeat):
    known = [o["metadata"]["name"] for o in objs if o["kind"] == "EC2NodeClass"]

    def cold():
        caches.clear_caches(programs=True)
        re.purge()
        return validate.validate_batch(objs, known_nodeclasses=known)

    def compiled():
        caches.clear_caches(programs=False)
        return validate.validate_batch(objs, known_nodeclasses=known)

    _, cold_t = timed(cold, repeat)
    _, compiled_t = timed(compiled, repeat)
    _, warm_t = timed(lambda: validate.validate_batch(objs, known_nodeclasses=known), repeat)
    return {"cold": med(cold_t), "compiled": med(compiled_t), "warm": med(warm_t)}


def measure(n, a, sb, api, tmp, path, fresh, out, empty):
    objs, expected = objects(n, a.every)
    inproc = in_process(objs, a.repeat)
    post_t, statuses, module_t, rejected = server_connected(sb, api, objs)
    server_fresh = new_stats()
    for _ in range(a.repeat):
        run_child(["server", path, sb.env["KUBECONFIG"], str(engine.WRITE_CONCURRENCY)], server_fresh)
    counts, mismatches, paths = verdicts(objs, expected, out["verdicts"], statuses, rejected)
    entry = {
        "objects": n,
        "expected": counts,
        "offline_fresh_process": {
            "wall_seconds": r4(fresh["wall"]),
            "median_wall_seconds": med(fresh["wall"]),
            "min_wall_seconds": round(min(fresh["wall"]), 4),
            "median_cpu_seconds": med(fresh["cpu"]),
            "median_import_seconds": med(fresh["import"]),
            "median_validate_seconds": med(fresh["inner"]),
            "validation_above_n0_seconds": round(med(fresh["wall"]) - med(empty["wall"]), 4),
        },
        "offline_in_process_median_seconds": inproc,
        "server_connected": {
            "post_sequential_seconds": r4(post_t),
            "module_dry_run_sequential_seconds": r4(module_t["sequential"]),
            "module_dry_run_concurrent_seconds": r4(module_t["concurrent"]),
            "concurrency": engine.WRITE_CONCURRENCY,
        },
        "server_fresh_process_concurrent": {
            "wall_seconds": r4(server_fresh["wall"]),
            "median_wall_seconds": med(server_fresh["wall"]),
            "median_import_seconds": med(server_fresh["import"]),
            "median_connect_and_dry_run_seconds": med(server_fresh["inner"]),
        },
        "module_dry_run_typed_patch_500": sum(
            validation_child.TYPED_PATCH_500 in m for m in rejected["sequential"].values()
        ),
        "verdicts_agree": n - len(mismatches),
        "verdict_mismatches": mismatches,
        "error_paths_named_by_apiserver": paths,
    }
    if not a.no_module:
        trees = {"this_tree": ROOT}
        if a.against:
            trees[a.against] = a.against_tree
        walls, cpus, outcome = module_check(objs, sb.env["KUBECONFIG"], tmp, a.repeat, trees)
        entry["module_check_mode"] = {
            "wall_seconds_both_modules": r4(walls["this_tree"]),
            "median_wall_seconds": med(walls["this_tree"]),
            "median_cpu_seconds": med(cpus["this_tree"]),
            "runs": outcome["this_tree"],
        }
        if a.against:
            old = entry["module_check_mode"]["against"] = {
                "rev": a.against,
                "median_wall_seconds": med(walls[a.against]),
                "median_cpu_seconds": med(cpus[a.against]),
                # the same failures and the same number of validation errors: the two trees agree on every input
                "same_outcome": {m: (r["failed"], r["validation_errors"]) for m, r in outcome[a.against].items()}
                == {m: (r["failed"], r["validation_errors"]) for m, r in outcome["this_tree"].items()},
            }
            for key in ("wall", "cpu"):
                old[key + "_ratio_rev_over_this"] = round(
                    old["median_%s_seconds" % key] / entry["module_check_mode"]["median_%s_seconds" % key], 3
                )
    post_s = min(post_t)
    seq_s, conc_s = min(module_t["sequential"]), min(module_t["concurrent"])
    inner = med(fresh["inner"])
    entry["ratio_server_over_offline"] = {
        # what a user pays: a fresh process each way, import included
        "fresh_process": round(med(server_fresh["wall"]) / med(fresh["wall"]), 2),
        # the work alone: connected dry-runs vs the validation call of a fresh process
        "connected_post_sequential_over_validate": round(post_s / inner, 1),
        "connected_module_sequential_over_validate": round(seq_s / inner, 1),
        "connected_module_concurrent_over_validate": round(conc_s / inner, 1),
    }
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10,100,1000", help="object counts, comma-separated (half of each kind)")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-module", action="store_true", help="skip the module runs in check mode")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "validation_bench.json"))
    ap.add_argument("--against", metavar="REV", help="also run REV's two modules in check mode (a git worktree)")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]

    load_before = os.getloadavg()
    sb = benchlib.Sandbox()
    sb.raw("GET", "/version")  # open the kubernetes client's connection outside the timing
    api = client.connect({"kubeconfig": sb.env["KUBECONFIG"]})
    warm, _ = objects(2 * engine.WRITE_CONCURRENCY, a.every)
    validation_child.dry_run_kinds(api, warm, engine.WRITE_CONCURRENCY)  # open the module client's connections

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="validation-bench-") as tmp:
        paths = {}
        for n in [0] + sizes:
            paths[n] = os.path.join(tmp, "objects-%d.json" % n)
            with open(paths[n], "w") as f:
                json.dump(objects(n, a.every)[0], f)
        bare, fresh, last = fresh_offline(paths, a.repeat)
        empty = fresh[0]
        a.against_tree = benchlib.worktree(a.against) if a.against and not a.no_module else None
        try:
            entries = [measure(n, a, sb, api, tmp, paths[n], fresh[n], last[n], empty) for n in sizes]
        finally:
            if a.against_tree:
                benchlib.remove_worktree(a.against_tree)
    elapsed = time.perf_counter() - t_start

    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.executable, ROOT)] + sys.argv),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "python": sys.version.split()[0],
        },
        "elapsed_seconds": round(elapsed, 1),
        "repeat": a.repeat,
        "bare_interpreter_seconds": r4(bare["wall"]),
        "bare_interpreter_median_cpu_seconds": med(bare["cpu"]),
        "offline_fresh_process_n0": {
            "wall_seconds": r4(empty["wall"]),
            "median_wall_seconds": med(empty["wall"]),
            "min_wall_seconds": round(min(empty["wall"]), 4),
            "median_cpu_seconds": med(empty["cpu"]),
            "median_import_seconds": med(empty["import"]),
        },
        "sizes": entries,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")

    print(
        "load average %s -> %s on %d cores; medians of %d fresh processes; connected server: best of 2"
        % (
            result["machine"]["load_average_before"],
            result["machine"]["load_average_after"],
            os.cpu_count(),
            a.repeat,
        )
    )
    print(
        "bare interpreter %.3f s (CPU %.3f s); N=0 offline process (interpreter + module imports) %.3f s, min %.3f,"
        " CPU %.3f s (imports %.3f s)"
        % (
            statistics.median(bare["wall"]),
            med(bare["cpu"]),
            med(empty["wall"]),
            min(empty["wall"]),
            med(empty["cpu"]),
            med(empty["import"]),
        )
    )
    hdr = "%6s %10s %8s %9s %9s %10s %9s %9s %10s %9s %9s"
    print(
        hdr
        % (
            "N",
            "off.proc",
            "off.cpu",
            "validate",
            "in-proc",
            "module-ck",
            "POST seq",
            "dry seq",
            "dry x%d" % engine.WRITE_CONCURRENCY,
            "srv.proc",
            "agree",
        )
    )
    failed = False
    for e in entries:
        sc = e["server_connected"]
        print(
            hdr
            % (
                e["objects"],
                "%.3f" % e["offline_fresh_process"]["median_wall_seconds"],
                "%.3f" % e["offline_fresh_process"]["median_cpu_seconds"],
                "%.4f" % e["offline_fresh_process"]["median_validate_seconds"],
                "%.4f" % e["offline_in_process_median_seconds"]["cold"],
                "%.3f" % e["module_check_mode"]["median_wall_seconds"] if "module_check_mode" in e else "-",
                "%.3f" % min(sc["post_sequential_seconds"]),
                "%.3f" % min(sc["module_dry_run_sequential_seconds"]),
                "%.3f" % min(sc["module_dry_run_concurrent_seconds"]),
                "%.3f" % e["server_fresh_process_concurrent"]["median_wall_seconds"],
                "%d/%d" % (e["verdicts_agree"], e["objects"]),
            )
        )
        failed = failed or bool(e["verdict_mismatches"])
        for m in e["verdict_mismatches"]:
            print("MISMATCH (N=%d) %s" % (e["objects"], json.dumps(m)))
    print("ratios server / offline:")
    for e in entries:
        r = e["ratio_server_over_offline"]
        print(
            "  N=%-5d fresh process each way %.2fx; connected dry-runs over the validation call: POST seq %.1fx, "
            "module seq %.1fx, module x%d %.1fx; error paths named by the apiserver %s"
            % (
                e["objects"],
                r["fresh_process"],
                r["connected_post_sequential_over_validate"],
                r["connected_module_sequential_over_validate"],
                engine.WRITE_CONCURRENCY,
                r["connected_module_concurrent_over_validate"],
                e["error_paths_named_by_apiserver"],
            )
        )
    print("elapsed %.0f s; written: %s" % (elapsed, os.path.relpath(a.out, ROOT)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
