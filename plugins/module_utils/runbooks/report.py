# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a runbook run leaves for people: the Markdown summary and the JSON + Markdown bundle."""

from __future__ import annotations

import json
import os

from ..kube import engine

UNSET = "(unset)"


def _flatten(value, path, out):
    """Leaves of ``value`` by dotted path; lists of ``{key: ...}`` items (requirements) are keyed by their key."""
    if isinstance(value, dict):
        for k in sorted(value):
            _flatten(value[k], "%s.%s" % (path, k) if path else k, out)
    elif isinstance(value, list) and value and all(isinstance(i, dict) and "key" in i for i in value):
        for item in value:
            rest = dict((k, v) for k, v in item.items() if k != "key")
            out["%s[%s]" % (path, item["key"])] = json.dumps(rest, sort_keys=True, separators=(", ", ": "))
    else:
        out[path] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return out


def field_changes(previous: dict | None, new: dict) -> list[tuple[str, str, str]]:
    """``(field, old, new)`` for every field of ``spec`` and of the labels and annotations that differ between
    the live object ``previous`` and the planned ``new``; a field absent on one side is ``(unset)``."""
    previous = previous or {}
    old, planned = {}, {}
    for obj, out in ((previous, old), (new, planned)):
        meta = obj.get("metadata") or {}
        _flatten({"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}}, "metadata", out)
        _flatten(obj.get("spec") or {}, "spec", out)
    return [
        (k, old.get(k, UNSET), planned.get(k, UNSET))
        for k in sorted(set(old) | set(planned))
        if old.get(k, UNSET) != planned.get(k, UNSET)
    ]


def managed_by_us(obj: dict | None) -> bool:
    """Whether the live object carries this collection's ``managed-by`` label (we created or adopted it)."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(engine.MANAGED_BY_LABEL) == engine.MANAGED_BY_VALUE


def incident_failure(result: dict, fail_on_incident: bool) -> str | None:
    """The message to fail the run with when ``fail_on_incident`` is set and the diagnosis is not healthy
    (a red AWX job for a diagnose-only run that finds an incident); None otherwise."""
    if not fail_on_incident or result["healthy"]:
        return None
    where = (result.get("bundle") or {}).get("markdown")
    return "INCIDENT (%s): %s.%s" % (
        result["scenario"],
        ", ".join(result["causes"]) or "unhealthy",
        " Bundle: %s" % where if where else "",
    )


def markdown(result):
    lines = [
        "# Karpenter runbook: %s" % result["scenario"],
        "",
        "- time: %s" % result["time"],
        "- status: **%s**" % ("healthy" if result["healthy"] else "INCIDENT: " + ", ".join(result["causes"])),
        "",
        "## What was checked",
        "",
    ]
    lines += ["- %s" % c for c in result["checked"]]
    if result.get("notes"):
        lines += ["", "## Notes", ""] + ["- %s" % n for n in result["notes"]]
    lines += ["", "## Findings", ""]
    lines += ["- **%s** `%s`: %s" % (f["severity"], f["id"], f["summary"]) for f in result["findings"]] or ["- none"]
    lines += ["", "## Recommendations", ""]
    lines += [
        "- `%s`: %s (why: %s)%s"
        % (r["id"], r["action"], r["why"], "; run with `%s`" % r["remediation_var"] if r.get("remediation_var") else "")
        for r in result["recommendations"]
    ] or ["- none"]
    changes = result["remediation"]["nodepools"]
    if changes:
        lines += ["", "## Planned NodePool changes (old -> new)", ""]
        for p in changes:
            name = p["metadata"]["name"]
            before = result["remediation"].get("previous", {}).get(name)
            lines.append("- NodePool `%s`:" % name)
            lines += ["  - `%s`: `%s` -> `%s`" % c for c in field_changes(before, p)] or ["  - no field changes"]
            if before and not managed_by_us(before):
                lines.append(
                    "  - note: this NodePool was not created by this collection (no label %s=%s), and applying the"
                    " change adds that label; if GitOps or another tool owns it, make the change at its source too,"
                    " or it will be reverted" % (engine.MANAGED_BY_LABEL, engine.MANAGED_BY_VALUE)
                )
    return "\n".join(lines) + "\n"


def write_bundle(result, output_dir, bundle_name):
    """``<bundle_name>.json`` (everything but the Markdown) and ``<bundle_name>.md``; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "json": os.path.join(output_dir, bundle_name + ".json"),
        "markdown": os.path.join(output_dir, bundle_name + ".md"),
    }
    with open(paths["json"], "w") as f:
        json.dump(dict((k, v) for k, v in result.items() if k != "markdown"), f, indent=2, sort_keys=True)
    with open(paths["markdown"], "w") as f:
        f.write(result["markdown"])
    return paths
