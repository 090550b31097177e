#!/usr/bin/env python3
"""Offline validation (validate_batch) vs server-side dry-run create of the same objects, and their verdicts.

    source .sandbox/env.sh && .venv/bin/python bench/validation_bench.py [--count 200] [--every 4]
        [--out bench/results/validation_bench.json]

Objects: ``--count`` EC2NodeClasses + ``--count`` NodePools (bench/benchlib.py); every ``--every``-th object
of a kind carries one known mistake (benchlib.MUTATIONS: schema, CEL and Karpenter-runtime ones).

* offline: ``validate_batch(objs, known_nodeclasses=...)`` (schema + defaults + CEL + runtime + lint, the
  module's path), timed three ways - ``cold`` (every cache cleared: the CEL rules compiled again to Python
  and, when needed, to cel-python programs, the schemas' validation plans rebuilt, every regular expression
  compiled again (``re.purge()``): what a fresh module process pays), ``compiled`` (all that kept, result
  memo cleared) and ``warm`` (memo kept).
* server: ``POST ...?dryRun=All&fieldValidation=Strict`` per object, sequentially, one keep-alive
  connection (the admin client), nothing stored.

Verdicts: the apiserver's (accepted or not) must equal "no schema/CEL error" offline for every object; the
objects only Karpenter's runtime validation rejects are counted apart (the apiserver accepts them; offline
reports them with source ``runtime``). Goal (issue 4): offline >= 20x faster, same verdicts.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import caches, validate  # noqa: E402

ROOT = benchlib.ROOT
PATHS = {
    "NodePool": "/apis/karpenter.sh/v1/nodepools",
    "EC2NodeClass": "/apis/karpenter.k8s.aws/v1/ec2nodeclasses",
}
API_SOURCES = ("schema", "cel")


def offline(objs, known):
    return validate.validate_batch(objs, known_nodeclasses=known)


def timed(fn, repeat=1):
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "validation_bench.json"))
    a = ap.parse_args()

    base = benchlib.nodeclasses(a.count, label="validation-bench", prefix="vbench") + benchlib.nodepools(
        a.count, label="validation-bench", prefix="vbench"
    )
    objs, expected = benchlib.invalid_variants(base, every=a.every)
    known = [o["metadata"]["name"] for o in objs if o["kind"] == "EC2NodeClass"]

    # ---- offline
    def cold():
        caches.clear_caches(programs=True)
        re.purge()
        return offline(objs, known)

    def compiled():
        caches.clear_caches(programs=False)
        return offline(objs, known)

    batch, cold_t = timed(cold, a.repeat)
    cel_python_programs = caches.cache_info()["programs"]  # rules the compiled Python could not decide alone
    _, compiled_t = timed(compiled, a.repeat)
    _, warm_t = timed(lambda: offline(objs, known), a.repeat)

    # ---- server-side dry-run
    sb = benchlib.Sandbox()
    sb.raw("GET", "/version")  # open the connection outside the timing
    server = []
    t0 = time.perf_counter()
    for o in objs:
        status, body = sb.raw("POST", PATHS[o["kind"]], {"dryRun": "All", "fieldValidation": "Strict"}, o)
        server.append((status, body))
    server_t = time.perf_counter() - t0
    # the same, once more (the apiserver's CEL cost is per request; this shows run-to-run noise)
    t0 = time.perf_counter()
    for o in objs:
        sb.raw("POST", PATHS[o["kind"]], {"dryRun": "All", "fieldValidation": "Strict"}, o)
    server_t2 = time.perf_counter() - t0

    # ---- verdicts
    rows, mismatches = [], []
    counts = {"valid": 0, "apiserver": 0, "runtime": 0}
    path_hits = path_total = 0
    for o, exp, res, (status, body) in zip(objs, expected, batch.results, server, strict=True):
        api_ok = status in (200, 201)
        offline_api_errors = [i for i in res.errors if i.source in API_SOURCES]
        offline_runtime = [i for i in res.errors if i.source == "runtime"]
        offline_api_ok = not offline_api_errors
        counts[exp] += 1
        row = {
            "object": res.object_ref,
            "mutation": (o["metadata"].get("annotations") or {}).get("bench/mutation"),
            "expected": exp,
            "apiserver_status": status,
            "apiserver_ok": api_ok,
            "offline_ok_for_apiserver": offline_api_ok,
            "offline_runtime_errors": [str(i) for i in offline_runtime],
            "offline_errors": [str(i) for i in offline_api_errors],
            "apiserver_message": None if api_ok else body.get("message"),
        }
        if not api_ok:
            causes = [c.get("field") for c in (body.get("details") or {}).get("causes") or []]
            for i in offline_api_errors:
                path_total += 1
                path_hits += any(c and (c == i.path or c.startswith(i.path) or i.path.startswith(c)) for c in causes)
        agree = api_ok == offline_api_ok
        if exp == "runtime":
            agree = agree and api_ok and bool(offline_runtime)
        elif exp == "apiserver":
            agree = agree and not api_ok
        else:
            agree = agree and api_ok and res.ok
        row["agree"] = agree
        if not agree:
            mismatches.append(row)
        rows.append(row)

    n = len(objs)
    cold_s, compiled_s, warm_s = min(cold_t), min(compiled_t), min(warm_t)
    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.executable, ROOT)] + sys.argv),
        "objects": n,
        "expected": counts,
        "offline_seconds": {
            "cold": [round(t, 4) for t in cold_t],
            "compiled": [round(t, 4) for t in compiled_t],
            "warm": [round(t, 4) for t in warm_t],
        },
        "offline_median_seconds": {
            "cold": round(statistics.median(cold_t), 4),
            "compiled": round(statistics.median(compiled_t), 4),
            "warm": round(statistics.median(warm_t), 4),
        },
        "cel_python_programs_after_cold_run": cel_python_programs,
        "server_dry_run_seconds": [round(server_t, 4), round(server_t2, 4)],
        "throughput_objects_per_second": {
            "offline_cold": round(n / cold_s, 1),
            "offline_compiled": round(n / compiled_s, 1),
            "offline_warm": round(n / warm_s, 1),
            "server_dry_run": round(n / min(server_t, server_t2), 1),
        },
        "ratio_server_over_offline": {
            "cold": round(min(server_t, server_t2) / cold_s, 1),
            "compiled": round(min(server_t, server_t2) / compiled_s, 1),
            "warm": round(min(server_t, server_t2) / warm_s, 1),
        },
        "ratio_median_server_over_median_offline": {
            "cold": round(statistics.median([server_t, server_t2]) / statistics.median(cold_t), 1),
            "warm": round(statistics.median([server_t, server_t2]) / statistics.median(warm_t), 1),
        },
        "verdicts_agree": n - len(mismatches),
        "verdict_mismatches": mismatches,
        "error_paths_named_by_apiserver": "%d/%d" % (path_hits, path_total),
        "rows": rows,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)

    print(
        "%d objects (%d valid, %d rejected by the apiserver, %d only by Karpenter's runtime validation)"
        % (n, counts["valid"], counts["apiserver"], counts["runtime"])
    )
    hdr = "%-34s %10s %12s %8s"
    print(hdr % ("path", "seconds", "objects/s", "ratio"))
    server_s = min(server_t, server_t2)
    print(hdr % ("server dry-run create (sequential)", "%.3f" % server_s, "%.0f" % (n / server_s), "1.0x"))
    for label, s in (
        ("offline cold (fresh process)", cold_s),
        ("offline compiled CEL", compiled_s),
        ("offline warm", warm_s),
    ):
        print(hdr % (label, "%.3f" % s, "%.0f" % (n / s), "%.1fx" % (server_s / s)))
    print(
        "offline timings (min of %d): cold %s, compiled %s, warm %s; median cold %.3f (ratio of medians %.1fx)"
        % (
            a.repeat,
            result["offline_seconds"]["cold"],
            result["offline_seconds"]["compiled"],
            result["offline_seconds"]["warm"],
            statistics.median(cold_t),
            result["ratio_median_server_over_median_offline"]["cold"],
        )
    )
    print(
        "rules cel-python had to evaluate in the cold run (not decided by the compiled rules): %d" % cel_python_programs
    )
    print(
        "verdicts agree: %d/%d; error paths also named by the apiserver: %s"
        % (result["verdicts_agree"], n, result["error_paths_named_by_apiserver"])
    )
    for m in mismatches:
        print(
            "MISMATCH %s (%s, expected %s): apiserver %s %s; offline %s %s"
            % (
                m["object"],
                m["mutation"],
                m["expected"],
                m["apiserver_status"],
                m["apiserver_message"],
                m["offline_errors"],
                m["offline_runtime_errors"],
            )
        )
    print(
        "goal  >= 20x faster than server dry-run (cold / warm): %s / %s"
        % ("MET" if server_s / cold_s >= 20 else "MISSED", "MET" if server_s / warm_s >= 20 else "MISSED")
    )
    print("written: %s" % os.path.relpath(a.out, ROOT))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
