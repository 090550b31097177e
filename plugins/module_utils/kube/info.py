# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-only summary of Karpenter objects (one LIST per kind), for karpenter_info and runbooks."""

from __future__ import annotations

from . import engine, resource
from .client import KubeApi


def _claim_summary(c):
    labels = c.get("metadata", {}).get("labels") or {}
    return {
        "name": c["metadata"]["name"],
        "nodepool": labels.get("karpenter.sh/nodepool"),
        "nodeclass": ((c.get("spec") or {}).get("nodeClassRef") or {}).get("name"),
        "instance_type": labels.get("node.kubernetes.io/instance-type"),
        "capacity_type": labels.get("karpenter.sh/capacity-type"),
        "zone": labels.get("topology.kubernetes.io/zone"),
        "node": (c.get("status") or {}).get("nodeName"),
        "ready": engine.is_ready(c),
        "capacity": (c.get("status") or {}).get("capacity") or {},
    }


def summarize(api: KubeApi, kinds: list, names: list | tuple = ()) -> dict:
    names = set(names or [])

    def keep(n):
        return not names or n in names

    claims = []
    if {"NodeClaim", "NodePool", "EC2NodeClass"} & set(kinds):
        live, _rv = engine.list_live(api, resource.NODECLAIM)
        claims = [_claim_summary(c) for _n, c in sorted(live.items())]
    out = {}
    if "NodePool" in kinds:
        live, _rv = engine.list_live(api, resource.NODEPOOL)
        out["nodepools"] = []
        for n, np in sorted(live.items()):
            if not keep(n):
                continue
            status = np.get("status") or {}
            spec = np.get("spec") or {}
            owned = [c["name"] for c in claims if c["nodepool"] == n]
            out["nodepools"].append(
                {
                    "name": n,
                    "ready": engine.is_ready(np),
                    "conditions": status.get("conditions") or [],
                    "nodes": status.get("nodes", len(owned)),
                    "nodeclaims": owned,
                    "resources": status.get("resources") or {},
                    "limits": spec.get("limits") or {},
                    "node_class_ref": ((spec.get("template") or {}).get("spec") or {}).get("nodeClassRef"),
                    "object": engine.strip_managed_fields(np),
                }
            )
    if "EC2NodeClass" in kinds:
        live, _rv = engine.list_live(api, resource.EC2NODECLASS)
        out["ec2nodeclasses"] = [
            {
                "name": n,
                "ready": engine.is_ready(nc),
                "conditions": (nc.get("status") or {}).get("conditions") or [],
                "nodeclaims": [c["name"] for c in claims if c["nodeclass"] == n],
                "object": engine.strip_managed_fields(nc),
            }
            for n, nc in sorted(live.items())
            if keep(n)
        ]
    if "NodeClaim" in kinds:
        out["nodeclaims"] = [c for c in claims if keep(c["name"]) or keep(c["nodepool"])]
    return out
