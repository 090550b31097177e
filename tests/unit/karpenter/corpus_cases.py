"""The verdict corpus (tests/integration/corpus/*.yaml) as objects, for the unit tests that compare two
implementations over it (test_fastpath.py, test_celcompile.py): one loader, one JSON merge patch."""

import copy
import glob
import os

import yaml

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration", "corpus")


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: maps merge recursively, anything else replaces, null deletes."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def bases():
    with open(os.path.join(CORPUS, "bases.yaml")) as f:
        return yaml.safe_load(f)


def entries():
    """``(entry, obj, old)`` for every corpus entry: the base with its patch, and with its old_patch (or None)."""
    base = bases()
    for path in sorted(glob.glob(os.path.join(CORPUS, "*.yaml"))):
        if os.path.basename(path) == "bases.yaml":
            continue
        with open(path) as f:
            for entry in yaml.safe_load(f) or []:
                obj = merge_patch(base[entry["base"]], entry.get("patch") or {})
                old = merge_patch(base[entry["base"]], entry["old_patch"]) if "old_patch" in entry else None
                yield entry, obj, old
