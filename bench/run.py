#!/usr/bin/env python3
"""``make bench``: every benchmark in bench/ (``*_bench.py``), one after the other - never two at once.

    source .sandbox/env.sh && .venv/bin/python bench/run.py [name ...]   # e.g. module validation

Each benchmark prints its table and writes its JSON to bench/results/. Exit status: the number of
benchmarks that failed.
"""

import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    wanted = set(sys.argv[1:])
    scripts = sorted(glob.glob(os.path.join(HERE, "*_bench.py")))
    if wanted:
        scripts = [s for s in scripts if os.path.basename(s)[: -len("_bench.py")] in wanted]
    failed = 0
    for script in scripts:
        name = os.path.basename(script)
        print("=== %s" % name, flush=True)
        t0 = time.monotonic()
        rc = subprocess.run([sys.executable, script]).returncode
        print("=== %s: rc=%d, %.0f s" % (name, rc, time.monotonic() - t0), flush=True)
        failed += rc != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
