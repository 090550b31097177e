# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a runbook run leaves for people: the Markdown summary and the JSON + Markdown bundle."""

from __future__ import annotations

import json
import os


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
        lines += ["", "## Planned NodePool changes (previous specs in the JSON bundle)", ""]
        lines += ["- NodePool `%s`" % p["metadata"]["name"] for p in changes]
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
