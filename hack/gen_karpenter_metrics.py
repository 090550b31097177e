#!/usr/bin/env python3
"""Generate plugins/module_utils/karpenter/metrics_data.py: the metric names Karpenter exports, per minor version.

The table backs lint rule KPL034 (PromQL of PrometheusRules and Grafana dashboards must name metrics the target
Karpenter exports). It is read from the Go sources of the two modules the AWS controller is built from,
``sigs.k8s.io/karpenter`` (core) and ``github.com/aws/karpenter-provider-aws`` (provider), in the Go module cache;
nothing is built or downloaded.

Usage (from the repository root)::

    python hack/gen_karpenter_metrics.py            # write the table
    python hack/gen_karpenter_metrics.py --check    # exit 1 if the committed table is out of date
    python hack/gen_karpenter_metrics.py --modcache DIR

Versions: one per Karpenter minor the collection supports, as the sandbox builds them (the ``require`` lines of
both modules in sandbox/go/karpenter-aws-lts/go.mod and sandbox/go/karpenter-aws/go.mod: the versions the
controller binary is linked from, not only the ones the provider's go.mod asks for).

How a name is composed: every Karpenter metric is declared with a ``prometheus.{Counter,Gauge,Histogram,
Summary}Opts{Namespace: ..., Subsystem: ..., Name: ...}`` literal (wrapped by operatorpkg's
``NewPrometheus*`` or client_golang's ``New*Vec``); the exported name is the non-empty parts joined with ``_``
(client_golang's BuildFQName), the namespace being ``metrics.Namespace`` = ``karpenter``. The parts are string
literals, constants (of the same package or of an imported package of either module) or ``+`` concatenations
of those; anything else stops the generator with the file and line, so a new way of naming metrics is noticed
instead of silently missing from the table (so does a native histogram, which KPL034 does not model). Only ``pkg/`` and ``cmd/`` are read (not tests, test helpers, kwok,
hack or tools). Metrics of other libraries the controller also serves (controller-runtime ``controller_runtime_*``
and ``workqueue_*``, client-go ``rest_client_*``, operatorpkg ``operator_*``, the AWS SDK ``aws_sdk_go_*``, the
Go runtime ``go_*`` and ``process_*``, leader election) do not carry the ``karpenter_`` prefix and are not in
the table: KPL034 checks ``karpenter_*`` names only.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_crd_data import go_code, go_imports, go_mod_requires  # noqa: E402  (hack/ is not a package)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "plugins", "module_utils", "karpenter", "metrics_data.py")
CORE = "sigs.k8s.io/karpenter"
PROVIDER = "github.com/aws/karpenter-provider-aws"
# the controllers the sandbox builds, one per supported minor (oldest first)
SANDBOX_GO_MODS = (
    os.path.join(REPO, "sandbox", "go", "karpenter-aws-lts", "go.mod"),
    os.path.join(REPO, "sandbox", "go", "karpenter-aws", "go.mod"),
)
SOURCE_DIRS = ("pkg", "cmd")
SKIP_DIRS = {"test", "testdata", "fake", "mock", "mocks", "tools", "hack", "kwok"}

_OPTS = re.compile(r"\bprometheus\.(Counter|Gauge|Histogram|Summary)(?:Vec)?Opts\s*\{")
_CONST_BLOCK = re.compile(r"^(?:const|var)\s*\((.*?)^\)", re.M | re.S)
_CONST_LINE = re.compile(r"^(?:const|var)\s+([A-Za-z_]\w*)\s*(?:string\s*)?=\s*([^\n]+)$", re.M)
_CONST_SPEC = re.compile(r"^\s+([A-Za-z_]\w*)\s*(?:string\s*)?=\s*([^\n]+)$", re.M)
_STRING = re.compile(r'^"((?:[^"\\]|\\.)*)"$')
_QUALIFIED = re.compile(r"^([A-Za-z_]\w*)\.([A-Za-z_]\w*)$")
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class GenError(Exception):
    """A declaration the generator cannot read."""


def module_cache(explicit=None):
    """The Go module cache: ``explicit``, $GOMODCACHE, ``go env GOMODCACHE`` (no toolchain download), or
    $GOPATH/pkg/mod and ~/go/pkg/mod."""
    if explicit:
        return explicit
    if os.environ.get("GOMODCACHE"):
        return os.environ["GOMODCACHE"]
    try:
        proc = subprocess.run(
            ["go", "env", "GOMODCACHE"],
            env=dict(os.environ, GOTOOLCHAIN="local"),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    gopath = os.environ.get("GOPATH") or os.path.join(os.path.expanduser("~"), "go")
    return os.path.join(gopath.split(os.pathsep)[0], "pkg", "mod")


def escape_module_path(path):
    """The module cache's case encoding: an upper-case letter becomes ``!`` and its lower case."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def module_dir(cache, path, version):
    return os.path.join(cache, escape_module_path(path) + "@" + version)


def minor(version):
    """``"1.15"`` of ``v1.15.0`` / ``1.15.2`` / ``v1.15.1-0.2026...``; None when it is not a version."""
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$", str(version).strip())
    return "%s.%s" % (m.group(1), m.group(2)) if m else None


def supported_versions(go_mods=SANDBOX_GO_MODS):
    """``{minor: {CORE: version, PROVIDER: version}}`` of the controllers the sandbox builds."""
    out = {}
    for path in go_mods:
        requires = go_mod_requires(path)
        pair = {CORE: requires.get(CORE), PROVIDER: requires.get(PROVIDER)}
        if not all(pair.values()):
            raise GenError("%s does not require both %s and %s" % (os.path.relpath(path, REPO), CORE, PROVIDER))
        key = minor(pair[PROVIDER])
        if key in out:
            raise GenError("two sandbox controllers of Karpenter %s" % key)
        out[key] = pair
    return out


class Package:
    """The top-level string constants of one Go package and the imports of each of its files."""

    def __init__(self, directory):
        self.consts = {}  # name -> (expression text, imports of its file)
        self.files = []  # (file name, code without comments, imports)
        for fname in sorted(os.listdir(directory)):
            if not fname.endswith(".go") or fname.endswith("_test.go"):
                continue
            with open(os.path.join(directory, fname), encoding="utf-8") as fh:
                src = fh.read()
            if re.search(r"^//go:build\s+ignore\b", src, re.M):
                continue
            code = go_code(src)
            imports = go_imports(code)
            self.files.append((fname, code, imports))
            specs = list(_CONST_LINE.findall(code))
            for block in _CONST_BLOCK.findall(code):
                specs += _CONST_SPEC.findall(block)
            for name, expr in specs:
                self.consts.setdefault(name, (expr.strip().rstrip(";").strip(), imports))


class Modules:
    """Go packages of a set of modules, loaded on demand; resolves string constant expressions."""

    def __init__(self, roots):
        self.roots = roots  # module path -> directory
        self.packages = {}

    def package_dir(self, import_path):
        for mod, root in self.roots.items():
            if import_path == mod or import_path.startswith(mod + "/"):
                return os.path.join(root, import_path[len(mod) :].lstrip("/"))
        return None

    def package(self, directory):
        if directory not in self.packages:
            self.packages[directory] = Package(directory)
        return self.packages[directory]

    def resolve(self, expr, directory, imports, where, depth=0):
        """The string value of a Go constant expression (literals, constants, ``+``)."""
        if depth > 20:
            raise GenError("%s: constant loop in %r" % (where, expr))
        parts = _split_plus(expr.strip())
        if len(parts) > 1:
            return "".join(self.resolve(p, directory, imports, where, depth + 1) for p in parts)
        expr = parts[0]
        m = _STRING.match(expr)
        if m:
            return bytes(m.group(1), "utf-8").decode("unicode_escape")
        if expr.startswith("`") and expr.endswith("`") and len(expr) > 1:
            return expr[1:-1]
        m = _QUALIFIED.match(expr)
        if m and m.group(1) in imports:
            target = self.package_dir(imports[m.group(1)])
            if target is None:
                raise GenError(
                    "%s: %s comes from %s, outside the Karpenter modules" % (where, expr, imports[m.group(1)])
                )
            return self._const(target, m.group(2), where, depth)
        if _IDENT.match(expr):
            return self._const(directory, expr, where, depth)
        raise GenError("%s: cannot evaluate %r as a constant string" % (where, expr))

    def _const(self, directory, name, where, depth):
        found = self.package(directory).consts.get(name)
        if found is None:
            raise GenError("%s: no string constant %s in %s" % (where, name, directory))
        return self.resolve(found[0], directory, found[1], where, depth + 1)


def _split_plus(expr):
    """``a + "b" + pkg.C`` -> its operands (``+`` outside string literals)."""
    parts, cur, i = [], "", 0
    while i < len(expr):
        ch = expr[i]
        if ch == '"':
            j = i + 1
            while expr[j] != '"':
                j += 2 if expr[j] == "\\" else 1
            cur += expr[i : j + 1]
            i = j + 1
            continue
        if ch == "+":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur.strip())
    return parts


def _block(code, start):
    """The text between the ``{`` at ``start - 1`` and its closing brace (strings skipped)."""
    depth, i = 1, start
    while depth:
        ch = code[i]
        if ch in "\"`'":
            close = code.index(ch, i + 1) if ch == "`" else _string_close(code, i)
            i = close + 1
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        i += 1
    return code[start : i - 1]


def _string_close(code, i):
    quote, j = code[i], i + 1
    while code[j] != quote:
        j += 2 if code[j] == "\\" else 1
    return j


def _fields(body):
    """``{field: expression}`` of the top level of a composite literal body."""
    out, depth, cur, i = {}, 0, "", 0
    items = []
    while i < len(body):
        ch = body[i]
        if ch in "\"`'":
            close = body.index(ch, i + 1) if ch == "`" else _string_close(body, i)
            cur += body[i : close + 1]
            i = close + 1
            continue
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    items.append(cur)
    for item in items:
        key, sep, value = item.partition(":")
        if sep and _IDENT.match(key.strip()):
            out[key.strip()] = value.strip()
    return out


def metrics_of(modules, root):
    """``{name: type}`` of the metrics declared under ``root``'s pkg/ and cmd/."""
    out = {}
    for top in SOURCE_DIRS:
        for directory, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            if not any(f.endswith(".go") and not f.endswith("_test.go") for f in files):
                continue
            pkg = modules.package(directory)
            for fname, code, imports in pkg.files:
                for m in _OPTS.finditer(code):
                    line = code.count("\n", 0, m.start()) + 1
                    where = "%s:%d" % (os.path.relpath(os.path.join(directory, fname), root), line)
                    fields = _fields(_block(code, m.end()))
                    if "Name" not in fields:
                        raise GenError("%s: metric options without a Name" % where)
                    parts = [
                        modules.resolve(fields[f], directory, imports, where) if f in fields else ""
                        for f in ("Namespace", "Subsystem", "Name")
                    ]
                    name = "_".join(p for p in parts if p) if parts[2] else ""
                    if not _METRIC_NAME.match(name):
                        raise GenError("%s: %r is not a metric name" % (where, name))
                    kind = m.group(1).lower()
                    if any(f.startswith("NativeHistogram") for f in fields):
                        # KPL034 takes a histogram to be scraped as _bucket/_sum/_count only
                        raise GenError("%s: %s is a native histogram, which the table does not model" % (where, name))
                    if out.get(name, kind) != kind:
                        raise GenError("%s: %s declared as %s and %s" % (where, name, out[name], kind))
                    out[name] = kind
    return out


def build_table(cache, versions=None):
    """``(sources, metrics)``: ``{minor: {module: version}}`` and ``{minor: {name: type}}``."""
    versions = versions or supported_versions()
    metrics = {}
    for key, pair in sorted(versions.items(), key=lambda kv: tuple(int(x) for x in kv[0].split("."))):
        roots = {mod: module_dir(cache, mod, ver) for mod, ver in pair.items()}
        for mod, directory in roots.items():
            if not os.path.isdir(directory):
                raise GenError("%s@%s is not in the module cache %s" % (mod, pair[mod], cache))
        modules = Modules(roots)
        table = {}
        for mod in (CORE, PROVIDER):
            for name, kind in metrics_of(modules, roots[mod]).items():
                if table.get(name, kind) != kind:
                    raise GenError("%s: declared as %s and %s" % (name, table[name], kind))
                table[name] = kind
        metrics[key] = dict(sorted(table.items()))
    return {k: versions[k] for k in metrics}, metrics


def render(sources, metrics):
    lines = [
        "# Copyright: karpenter_eks.platform contributors",
        "# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)",
        "# SPDX-License-Identifier: GPL-3.0-or-later",
        "# generated by hack/gen_karpenter_metrics.py from the Karpenter Go sources — do not edit",
        '"""Metric names (and Prometheus types) Karpenter exports, per minor version, read from the',
        "prometheus.*Opts declarations of the core and AWS provider modules (hack/gen_karpenter_metrics.py).",
        "",
        "Only Karpenter's own metrics: controller-runtime, client-go, operatorpkg, AWS SDK and Go runtime metrics",
        'are not listed."""',
        "",
        "# minor -> the module versions the table was read from",
        "SOURCES = {",
    ]
    for key, pair in sources.items():
        lines.append('    "%s": {' % key)
        for mod in (CORE, PROVIDER):
            lines.append('        "%s": "%s",' % (mod, pair[mod]))
        lines.append("    },")
    lines += ["}", "", "# minor -> {metric name: counter | gauge | histogram | summary}", "METRICS = {"]
    for key, table in metrics.items():
        lines.append('    "%s": {' % key)
        for name, kind in table.items():
            lines.append('        "%s": "%s",' % (name, kind))
        lines.append("    },")
    lines += ["}", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modcache", default=None, help="Go module cache (default: go env GOMODCACHE)")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--check", action="store_true", help="only check that the committed table is current")
    args = parser.parse_args(argv)
    try:
        text = render(*build_table(module_cache(args.modcache)))
    except GenError as exc:
        print("gen_karpenter_metrics: %s" % exc, file=sys.stderr)
        return 2
    try:
        with open(args.out, encoding="utf-8") as fh:
            current = fh.read()
    except OSError:
        current = None
    if current == text:
        print("up to date")
        return 0
    if args.check:
        print("out of date: %s" % os.path.relpath(args.out, REPO), file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    print("wrote %s" % os.path.relpath(args.out, REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
