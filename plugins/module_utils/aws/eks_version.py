# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubernetes version of an existing EKS cluster (module eks_cluster_version).

community.aws.eks_cluster creates clusters but refuses a version change ("Cannot modify version of existing
cluster", community.aws#2053). :func:`ensure_cluster_version` compares the live version with the desired one and

* does nothing when they are equal (one DescribeCluster, no write);
* upgrades the control plane with UpdateClusterVersion when the desired version is exactly one minor above and the
  caller allowed it, then waits for the update (DescribeUpdate by update id) to be ``Successful`` within a timeout;
* fails with an explanation otherwise: EKS cannot downgrade, cannot skip minor versions, and an upgrade must be
  asked for explicitly.

A version update already in progress (a previous run that timed out) is waited for instead of started again.
Check mode reads only. Errors are :class:`api.AwsOperationError` (runner.run_aws_module turns them into fail_json);
:func:`validate_version` checks the input before any client exists.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from .. import progress
from ..errors import InputError
from .api import AwsOperationError, call, call_missing_ok

WAIT_DELAY = 30  # seconds between DescribeUpdate calls (a control plane upgrade takes 10-30 minutes)

NEXT_STEPS = (
    "After the control plane upgrade to {version}: upgrade the managed node groups (their AMI release version), "
    "update the EKS add-ons (vpc-cni, coredns, kube-proxy, eks-pod-identity-agent, aws-ebs-csi-driver) to versions "
    "built for {version}, check that the installed Karpenter release supports Kubernetes {version} "
    "(compatibility matrix), and let Karpenter replace its nodes: the EC2NodeClasses' amiSelectorTerms alias "
    "resolves the AMI for {version} (a pinned alias version such as al2023@vYYYYMMDD must exist for {version}), "
    "so nodes drift to it within the NodePools' disruption budgets."
)


def parse_version(version: Any, what: str = "version") -> tuple[int, int]:
    """'1.34' -> (1, 34). EKS versions are major.minor; quote them in YAML (1.30 unquoted is the float 1.3)."""
    match = re.match(r"^(\d+)\.(\d+)$", str(version).strip())
    if not match:
        raise AwsOperationError(
            "Invalid %s %r: EKS Kubernetes versions are major.minor, for example '1.34' (quote it in YAML)"
            % (what, version),
            None,
        )
    return int(match.group(1)), int(match.group(2))


def validate_version(params: dict) -> None:
    """The module input check (before any request): ``version`` is major.minor."""
    try:
        parse_version(params.get("version"))
    except AwsOperationError as e:
        raise InputError("version: %s" % e.message) from None


def plan_version_change(cluster_name: str, current: str, desired: str, allow_upgrade: bool) -> bool:
    """Return True when an upgrade from ``current`` to ``desired`` should be started, False when they are equal;
    raise AwsOperationError (nothing written) for every change EKS or the caller does not allow."""
    have, want = parse_version(current, "current version"), parse_version(desired, "desired version")
    if have == want:
        return False
    intro = "EKS cluster %s runs Kubernetes %s, the desired version is %s: " % (cluster_name, current, desired)
    if want < have:
        raise AwsOperationError(
            intro + "EKS cannot downgrade a cluster's Kubernetes version. Set the desired version back to %s "
            "(cluster_kubernetes_version), or create a new cluster at %s and migrate to it." % (current, desired),
            None,
        )
    if want[0] != have[0] or want[1] != have[1] + 1:
        step = "%d.%d" % (have[0], have[1] + 1)
        raise AwsOperationError(
            intro + "EKS upgrades the control plane one minor version at a time and cannot skip versions. "
            "Upgrade to %s first (set the desired version to %s, run, upgrade node groups and add-ons), then "
            "continue minor by minor." % (step, step),
            None,
        )
    if not allow_upgrade:
        raise AwsOperationError(
            intro + "upgrading the control plane is irreversible and must be asked for explicitly: set "
            "allow_upgrade=true (role variable cluster_allow_version_upgrade: true), or set the desired version to "
            "%s. %s" % (current, NEXT_STEPS.format(version=desired)),
            None,
        )
    return True


def _cluster_view(cluster):
    if not cluster:
        return {}
    return {
        "name": cluster.get("name"),
        "arn": cluster.get("arn"),
        "version": cluster.get("version"),
        "platform_version": cluster.get("platformVersion"),
        "status": cluster.get("status"),
        "endpoint": cluster.get("endpoint"),
        "oidc_issuer": ((cluster.get("identity") or {}).get("oidc") or {}).get("issuer"),
    }


def _update_view(update):
    return camel_dict_to_snake_dict(update) if update else {}


def _update_version(update):
    for param in update.get("params") or []:
        if param.get("type") == "Version":
            return param.get("value")
    return None


def find_version_update_in_progress(client: Any, cluster_name: str) -> dict | None:
    """The cluster's InProgress VersionUpdate (its DescribeUpdate ``update``), or None."""
    request = {"name": cluster_name}
    while True:
        page = call("list the updates of EKS cluster " + cluster_name, client.list_updates, **request)
        for update_id in page.get("updateIds") or []:
            update = call(
                "describe update %s of EKS cluster %s" % (update_id, cluster_name),
                client.describe_update,
                name=cluster_name,
                updateId=update_id,
            )["update"]
            if update.get("type") == "VersionUpdate" and update.get("status") == "InProgress":
                return update
        if not page.get("nextToken"):
            return None
        request["nextToken"] = page["nextToken"]


def wait_for_update(
    client: Any,
    cluster_name: str,
    update: dict,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    delay: float = WAIT_DELAY,
) -> dict:
    """Poll DescribeUpdate until the update is Successful; raise on Failed/Cancelled or after ``timeout`` seconds."""
    update_id = update["id"]
    deadline = clock() + timeout
    while True:
        update = call(
            "describe update %s of EKS cluster %s" % (update_id, cluster_name),
            client.describe_update,
            name=cluster_name,
            updateId=update_id,
        )["update"]
        status = update.get("status")
        if status == "Successful":
            return update
        if status in ("Failed", "Cancelled"):
            errors = "; ".join(
                "%s: %s" % (e.get("errorCode"), e.get("errorMessage")) for e in update.get("errors") or []
            )
            raise AwsOperationError(
                "EKS version update %s of cluster %s to %s ended %s%s"
                % (update_id, cluster_name, _update_version(update), status, (" (" + errors + ")") if errors else ""),
                None,
            )
        if clock() >= deadline:
            raise AwsOperationError(
                "EKS version update %s of cluster %s to %s is still %s after %d s. It goes on in AWS: run again to "
                "keep waiting (the in-progress update is picked up, not started twice), or follow it with "
                "`aws eks describe-update --name %s --update-id %s`."
                % (update_id, cluster_name, _update_version(update), status, timeout, cluster_name, update_id),
                None,
            )
        progress.update(
            "waiting for the EKS version update of %s to %s (status %s)"
            % (cluster_name, _update_version(update), status)
        )
        sleep(delay)


def ensure_cluster_version(
    client: Any,
    params: dict,
    check_mode: bool,
    warn: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict:
    name, desired = params["name"], params["version"]
    found = call_missing_ok(
        "describe EKS cluster " + name, client.describe_cluster, "ResourceNotFoundException", name=name
    )
    if not found:
        # creating the cluster is community.aws.eks_cluster's job; nothing to compare
        return {
            "changed": False,
            "cluster": {},
            "eks_update": {},
            "msg": "EKS cluster %s does not exist" % name,
            "diff": {"before": {}, "after": {}},
        }
    cluster = found["cluster"]
    current = cluster.get("version")
    before = {"version": current}
    if not plan_version_change(name, current, desired, params["allow_upgrade"]):
        return {
            "changed": False,
            "cluster": _cluster_view(cluster),
            "eks_update": {},
            "msg": "EKS cluster %s already runs Kubernetes %s" % (name, current),
            "diff": {"before": before, "after": before},
        }

    in_progress = find_version_update_in_progress(client, name) if cluster.get("status") == "UPDATING" else None
    if in_progress and _update_version(in_progress) != desired:
        raise AwsOperationError(
            "EKS cluster %s has a version update %s to %s in progress, not to %s: wait for it to finish first"
            % (name, in_progress["id"], _update_version(in_progress), desired),
            None,
        )
    result = {
        "changed": True,
        "eks_update": _update_view(in_progress),
        "next_steps": NEXT_STEPS.format(version=desired),
        "diff": {"before": before, "after": {"version": desired}},
    }
    if check_mode:
        result["cluster"] = _cluster_view(cluster)  # the live cluster: nothing was sent
        result["msg"] = "Would upgrade EKS cluster %s from Kubernetes %s to %s" % (name, current, desired)
        return result

    update = (
        in_progress
        or call(
            "upgrade EKS cluster %s from %s to %s" % (name, current, desired),
            client.update_cluster_version,
            name=name,
            version=desired,
        )["update"]
    )
    if params["wait"]:
        update = wait_for_update(client, name, update, params["wait_timeout"], sleep=sleep, clock=clock)
        cluster = call("describe EKS cluster " + name, client.describe_cluster, name=name)["cluster"]
        result["msg"] = "Upgraded EKS cluster %s from Kubernetes %s to %s" % (name, current, desired)
    else:
        result["msg"] = "Started the upgrade of EKS cluster %s from Kubernetes %s to %s (update %s)" % (
            name,
            current,
            desired,
            update["id"],
        )
    result["cluster"] = _cluster_view(cluster)
    result["eks_update"] = _update_view(update)
    if warn:
        warn(result["next_steps"])
    return result
