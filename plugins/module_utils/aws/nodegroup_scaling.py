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

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - AnsibleAWSModule reports the missing SDK
    BotoCoreError = ClientError = Exception

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import AwsOperationError

KEYS = (("minSize", "min_size"), ("maxSize", "max_size"), ("desiredSize", "desired_size"))


def _call(what, method, **kwargs):
    try:
        return method(aws_retry=True, **kwargs)
    except (BotoCoreError, ClientError) as e:
        raise AwsOperationError("Failed to " + what, e)


def describe(client, cluster, name):
    try:
        return client.describe_nodegroup(aws_retry=True, clusterName=cluster, nodegroupName=name)["nodegroup"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
        raise AwsOperationError("Failed to describe node group %s of cluster %s" % (name, cluster), e)


def snake(scaling):
    return dict((s, scaling.get(c)) for c, s in KEYS)


def target(current, desired_size, min_size=None, max_size=None):
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


def ensure_nodegroup_scaling(client, params, check_mode, sleep=time.sleep, clock=time.monotonic):
    cluster, name = params["cluster_name"], params["name"]
    ng = describe(client, cluster, name)
    if ng is None:
        raise AwsOperationError("node group %s of cluster %s not found" % (name, cluster), None)
    current = dict((c, ng.get("scalingConfig", {}).get(c)) for c, _s in KEYS)
    new = target(current, params["desired_size"], params.get("min_size"), params.get("max_size"))
    changed = current != new
    update = {}
    if changed and not check_mode:
        resp = _call(
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


def wait_scaled(client, cluster, name, new, timeout, sleep=time.sleep, clock=time.monotonic, delay=5.0):
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
        sleep(delay)
