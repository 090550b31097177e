#!/usr/bin/env python3
"""Generate the Karpenter CRD schema modules under plugins/module_utils/karpenter/crds/.

Ansible ships module_utils to the managed node as Python files only (AnsiballZ zips ``.py``
files), so the CRDs' ``openAPIV3Schema`` of the served ``v1`` version is stored as a compact JSON
string inside a generated Python module, together with the Karpenter version it came from.

Usage (from the repository root)::

    python hack/gen_crd_data.py                    # version from sandbox/versions.env (AWS_KARPENTER_VERSION)
    python hack/gen_crd_data.py --version v1.14.1  # explicit version, fetched with `go mod download`
    python hack/gen_crd_data.py --crd-dir DIR      # use CRD YAML files already on disk
    python hack/gen_crd_data.py --check            # exit 1 if the generated files are out of date

The CRDs come from the Go module ``github.com/aws/karpenter-provider-aws@<version>``
(``pkg/apis/crds/``), downloaded through the Go module proxy. ``description`` keywords are
stripped (they are documentation, not validation) unless ``--keep-descriptions`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "plugins", "module_utils", "karpenter", "crds")
MODULE = "github.com/aws/karpenter-provider-aws"
DEFAULT_VERSION = "v1.14.1"

# output module name -> CRD file name in pkg/apis/crds/
CRDS = {
    "nodepool_v1": "karpenter.sh_nodepools.yaml",
    "ec2nodeclass_v1": "karpenter.k8s.aws_ec2nodeclasses.yaml",
}
SERVED_VERSION = "v1"

# Schema keywords whose value is a map of property name -> schema, or a schema, or a list of schemas.
_MAP_OF_SCHEMAS = ("properties",)
_SCHEMA_VALUED = ("items", "additionalProperties", "not")
_LIST_OF_SCHEMAS = ("anyOf", "allOf", "oneOf")


def pinned_version():
    """Return AWS_KARPENTER_VERSION from sandbox/versions.env, or the built-in default."""
    path = os.path.join(REPO, "sandbox", "versions.env")
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("AWS_KARPENTER_VERSION="):
                    return line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return DEFAULT_VERSION


def download_crd_dir(version):
    """Download the provider module with `go mod download -json` and return its CRD directory."""
    env = dict(os.environ, GOFLAGS="-mod=mod")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["go", "mod", "download", "-json", f"{MODULE}@{version}"],
            cwd=tmp,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    info = json.loads(out)
    if info.get("Error"):
        raise SystemExit(f"go mod download failed: {info['Error']}")
    return os.path.join(info["Dir"], "pkg", "apis", "crds")


def strip_descriptions(schema):
    """Return a copy of an OpenAPI schema without ``description`` keywords (property names are kept)."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "description":
            continue
        if key in _MAP_OF_SCHEMAS and isinstance(value, dict):
            out[key] = {name: strip_descriptions(sub) for name, sub in value.items()}
        elif key in _SCHEMA_VALUED and isinstance(value, dict):
            out[key] = strip_descriptions(value)
        elif key in _LIST_OF_SCHEMAS and isinstance(value, list):
            out[key] = [strip_descriptions(sub) for sub in value]
        else:
            out[key] = value
    return out


def load_crd(path, keep_descriptions=False):
    """Load one CRD file and return the data for the served v1 version."""
    with open(path, encoding="utf-8") as fh:
        crd = yaml.safe_load(fh)
    spec = crd["spec"]
    versions = [v for v in spec["versions"] if v["name"] == SERVED_VERSION and v.get("served")]
    if not versions:
        raise SystemExit(f"{path}: no served {SERVED_VERSION} version")
    version = versions[0]
    schema = version["schema"]["openAPIV3Schema"]
    if not keep_descriptions:
        schema = strip_descriptions(schema)
    return {
        "crd_name": crd["metadata"]["name"],
        "group": spec["group"],
        "version": SERVED_VERSION,
        "kind": spec["names"]["kind"],
        "plural": spec["names"]["plural"],
        "short_names": spec["names"].get("shortNames", []),
        "scope": spec["scope"],
        "storage": bool(version.get("storage")),
        "subresources": sorted((version.get("subresources") or {}).keys()),
        "schema": schema,
    }


def _q(value):
    """Python literal for a str or a tuple of str, in the double-quoted style ruff format keeps."""
    if isinstance(value, (list, tuple)):
        if not value:
            return "()"
        inner = ", ".join(json.dumps(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return json.dumps(value)


WIDTH = 110


def wrap_json(text, width=WIDTH):
    """Lines of a non-raw Python string literal holding ``text``: backslashes doubled, long lines cut
    (preferably after a comma) with backslash-newline continuations, which Python removes."""
    escaped = text.replace("\\", "\\\\")
    lines = []
    while len(escaped) > width:
        cut = escaped.rfind(",", width - 40, width) + 1 or width
        # never split an escaped backslash pair: keep an even number of backslashes before the cut
        while cut > 1 and (len(escaped[:cut]) - len(escaped[:cut].rstrip("\\"))) % 2:
            cut -= 1
        lines.append(escaped[:cut] + "\\")
        escaped = escaped[cut:]
    lines.append(escaped)
    return lines


def render(name, crd_file, data, karpenter_version):
    """Render the Python module text for one CRD."""
    schema_json = json.dumps(data["schema"], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if '"""' in schema_json:
        raise SystemExit(f"{name}: schema JSON contains a triple quote; cannot embed it in a string literal")
    meta = {k: v for k, v in data.items() if k != "schema"}
    kind, group = data["kind"], data["group"]
    lines = [
        f"# generated by hack/gen_crd_data.py from karpenter-provider-aws {karpenter_version} — do not edit",
        f"# source: {MODULE}@{karpenter_version}/pkg/apis/crds/{crd_file} (version {SERVED_VERSION})",
        "# ruff: noqa",
        f'"""openAPIV3Schema of the {kind} CRD ({group}/{SERVED_VERSION}), Karpenter {karpenter_version}."""',
        "",
        "import json",
        "",
        f"KARPENTER_VERSION = {_q(karpenter_version)}",
        f"CRD_FILE = {_q(crd_file)}",
        f"CRD_NAME = {_q(meta['crd_name'])}",
        f"GROUP = {_q(meta['group'])}",
        f"VERSION = {_q(meta['version'])}",
        f"API_VERSION = {_q(meta['group'] + '/' + meta['version'])}",
        f"KIND = {_q(meta['kind'])}",
        f"PLURAL = {_q(meta['plural'])}",
        f"SHORT_NAMES = {_q(meta['short_names'])}",
        f"SCOPE = {_q(meta['scope'])}",
        f"SUBRESOURCES = {_q(meta['subresources'])}",
        "",
        "# The CRD's openAPIV3Schema (description keywords removed) as compact JSON, wrapped with",
        "# backslash-newline continuations so that no line is longer than the repository's limit.",
        'SCHEMA = json.loads(\n    """\\',
        *wrap_json(schema_json),
        '"""',
        ")",
        "",
    ]
    return "\n".join(lines)


def render_init(karpenter_version, names):
    lines = [
        f"# generated by hack/gen_crd_data.py from karpenter-provider-aws {karpenter_version} — do not edit",
        '"""CRD schemas of the pinned Karpenter release, as Python data (see hack/gen_crd_data.py)."""',
        "",
        f"KARPENTER_VERSION = {_q(karpenter_version)}",
        f"MODULES = {_q(names)}",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=None, help="karpenter-provider-aws version (default: pinned)")
    parser.add_argument("--crd-dir", default=None, help="directory holding the CRD YAML files (skips download)")
    parser.add_argument("--out-dir", default=OUT_DIR)
    parser.add_argument("--keep-descriptions", action="store_true")
    parser.add_argument("--check", action="store_true", help="only check that the generated files are current")
    args = parser.parse_args(argv)

    version = args.version or pinned_version()
    crd_dir = args.crd_dir or download_crd_dir(version)
    outputs = {}
    for name, crd_file in CRDS.items():
        data = load_crd(os.path.join(crd_dir, crd_file), args.keep_descriptions)
        outputs[name + ".py"] = render(name, crd_file, data, version)
    outputs["__init__.py"] = render_init(version, list(CRDS))

    stale = []
    for fname, text in outputs.items():
        path = os.path.join(args.out_dir, fname)
        try:
            with open(path, encoding="utf-8") as fh:
                current = fh.read()
        except OSError:
            current = None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            os.makedirs(args.out_dir, exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
    if args.check:
        for path in stale:
            print(f"out of date: {os.path.relpath(path, REPO)}", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        print(f"wrote {os.path.relpath(path, REPO)}")
    if not stale:
        print("up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
