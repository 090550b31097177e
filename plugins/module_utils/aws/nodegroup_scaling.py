# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Scaling config of an existing EKS managed node group (module eks_nodegroup_scaling).

Only ``scalingConfig`` is read and written (``eks:DescribeNodegroup``, ``eks:UpdateNodegroupConfig``): unlike
community.aws.eks_nodegroup it needs neither the node role nor the subnets and leaves labels, taints, tags and the
update config alone, which is what a runbook that scales the core node group up (and its undo) needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from .. import progress
from ..errors import InputError
from .api import AwsOperationError, call, call_missing_ok

KEYS = (("minSize", "min_size"), ("maxSize", "max_size"), ("desiredSize", "desired_size"))


def describe(client: Any, cluster: str, name: str) -> dict | None:
    """The node group, or None when it does not exist."""
    found = call_missing_ok(
        "describe node group %s of cluster %s" % (name, cluster),
        client.describe_nodegroup,
        "ResourceNotFoundException",
        clusterName=cluster,
        nodegroupName=name,
    )
    return found["nodegroup"] if found else None


def validate_scaling(params: dict) -> None:
    """The module input check (before any request): sizes are not negative, min <= desired <= max when given."""
    for field in ("desired_size", "min_size", "max_size"):
        if params.get(field) is not None and params[field] < 0:
            raise InputError("%s: %s is negative; node group sizes are 0 or more" % (field, params[field]))
    low, want, high = params.get("min_size"), params.get("desired_size"), params.get("max_size")
    if low is not None and want is not None and low > want:
        raise InputError("min_size: %s is above desired_size %s" % (low, want))
    if high is not None and want is not None and high < want:
        raise InputError("max_size: %s is below desired_size %s" % (high, want))
    if high is not None and high < 1:
        raise InputError("max_size: EKS needs a maximum of at least 1")


def snake(scaling: dict) -> dict:
    return dict((s, scaling.get(c)) for c, s in KEYS)


def target(current: dict, desired_size: int, min_size: int | None = None, max_size: int | None = None) -> dict:
    """The new scalingConfig: ``desired_size``, min lowered / max raised only as far as needed unless given."""
    new = {
        "minSize": min_size if min_size is not None else min(current.get("minSize", desired_size), desired_size),
        "maxSize": max_size if max_size is not None else max(current.get("maxSize", desired_size), desired_size),
        "desiredSize": desired_size,
    }
    if not (0 <= new["minSize"] <= new["desiredSize"] <= new["maxSize"]) or new["maxSize"] < 1:
        raise AwsOperationError(
            "invalid scaling config min %(minSize)s <= desired %(desiredSize)s <= max %(maxSize)s (max >= 1)" % new,
            None,
        )
    return new


def ensure_nodegroup_scaling(
    client: Any,
    params: dict,
    check_mode: bool,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict:
    cluster, name = params["cluster_name"], params["name"]
    ng = describe(client, cluster, name)
    if ng is None:
        raise AwsOperationError("node group %s of cluster %s not found" % (name, cluster), None)
    current = dict((c, ng.get("scalingConfig", {}).get(c)) for c, _s in KEYS)
    new = target(current, params["desired_size"], params.get("min_size"), params.get("max_size"))
    changed = current != new
    update = {}
    if changed and not check_mode:
        resp = call(
            "update the scaling config of node group %s of cluster %s" % (name, cluster),
            client.update_nodegroup_config,
            clusterName=cluster,
            nodegroupName=name,
            scalingConfig=new,
        )
        update = resp.get("update") or {}
        if params.get("wait"):
            ng = wait_scaled(client, cluster, name, new, params.get("wait_timeout", 600), sleep, clock)
        else:
            ng = describe(client, cluster, name) or ng
    elif changed:
        ng = dict(ng, scalingConfig=new)  # what it would be
    return {
        "changed": changed,
        "nodegroup": camel_dict_to_snake_dict(ng, ignore_list=["tags", "labels"]),
        "scaling_config": snake(new),
        "previous_scaling_config": snake(current),
        "eks_update": camel_dict_to_snake_dict(update),
        "diff": {"before": {"scaling_config": snake(current)}, "after": {"scaling_config": snake(new)}},
    }


def wait_scaled(
    client: Any,
    cluster: str,
    name: str,
    new: dict,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    delay: float = 5.0,
) -> dict:
    """Until the node group is ACTIVE with the new scaling config (EKS applies it asynchronously)."""
    deadline = clock() + timeout
    while True:
        ng = describe(client, cluster, name) or {}
        have = dict((c, (ng.get("scalingConfig") or {}).get(c)) for c, _s in KEYS)
        if ng.get("status") == "ACTIVE" and have == new:
            return ng
        if ng.get("status") in ("DEGRADED", "DELETING", "CREATE_FAILED", "DELETE_FAILED") or clock() >= deadline:
            raise AwsOperationError(
                "node group %s of cluster %s not ACTIVE with %s after %ss: status %s, scaling %s, health %s"
                % (name, cluster, new, timeout, ng.get("status"), have, ng.get("health")),
                None,
            )
        progress.update(
            "waiting for node group %s to be ACTIVE with %s (status %s, scaling %s)"
            % (name, new, ng.get("status"), have)
        )
        sleep(delay)
