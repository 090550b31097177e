# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks the Karpenter v1 controller role with the IAM policy simulator (iam:SimulatePrincipalPolicy).

The actions, resources and conditions are those of the controller policies of Karpenter v1.14 (getting-started
CloudFormation, docs/karpenter-v1.md section 5.3). The simulator evaluates each action on a resource of the kind the
policy scopes it to, with the request context Karpenter sends (its tags on created resources, the tags on resources
it owns, the passed-to service, the region), so a role built from that policy passes and a role that lacks a
statement, or whose permission boundary or SCP denies it, names the action.

The result never raises for the simulator itself: where it is missing (an emulator), denied to the caller, or
unreachable, the result says so in ``note`` (``available: false``) and the runbook carries on without it.
"""

from __future__ import annotations

try:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError
except ImportError:  # pragma: no cover - AnsibleAWSModule reports the missing SDK
    BotoCoreError = ClientError = ResponseParserError = Exception

from typing import Any

from ..errors import InputError
from ..karpenter.iam_actions import INSTANCE_PROFILE_ACTIONS

# what an unusable simulator raises: API errors, transport errors, and a reply that is not the IAM API's (an
# emulator's HTML error page; ResponseParserError is not a BotoCoreError)
UNAVAILABLE = (BotoCoreError, ClientError, ResponseParserError)

EC2_DESCRIBE = [
    "ec2:DescribeCapacityReservations",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribePlacementGroups",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
]


def controller_checks(
    cluster: str,
    region: str,
    account: str,
    partition: str = "aws",
    node_role_arn: str | None = None,
    queue_name: str | None = None,
) -> list:
    """[(actions, resource ARNs)] of the v1.14 controller policies, one entry per kind of resource."""
    ec2 = "arn:%s:ec2:%s:%s:" % (partition, region, account)
    ip = "arn:%s:iam::%s:instance-profile/*" % (partition, account)
    node_role = node_role_arn or "arn:%s:iam::%s:role/KarpenterNodeRole-%s" % (partition, account, cluster)
    checks = [
        # AllowScopedEC2InstanceAccessActions
        (
            ["ec2:RunInstances", "ec2:CreateFleet"],
            ["arn:%s:ec2:%s::image/*" % (partition, region), ec2 + "subnet/*", ec2 + "security-group/*"],
        ),
        # AllowScopedEC2LaunchTemplateAccessActions + AllowScopedEC2InstanceActionsWithTags
        (
            ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            [ec2 + "launch-template/*", ec2 + "instance/*", ec2 + "fleet/*", ec2 + "volume/*"],
        ),
        # AllowScopedResourceCreationTagging, AllowScopedResourceTagging
        (["ec2:CreateTags"], [ec2 + "instance/*", ec2 + "launch-template/*", ec2 + "volume/*"]),
        # AllowScopedDeletion
        (["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"], [ec2 + "instance/*", ec2 + "launch-template/*"]),
        # AllowRegionalReadActions
        (list(EC2_DESCRIBE), ["*"]),
        # AllowPassingInstanceRole
        (["iam:PassRole"], [node_role]),
        # instance profiles (EC2NodeClass spec.role)
        (
            list(INSTANCE_PROFILE_ACTIONS),
            [ip],
        ),
        (["iam:ListInstanceProfiles", "pricing:GetProducts"], ["*"]),
        # AllowSSMReadActions (the EKS-optimized AMI parameters)
        (["ssm:GetParameter"], ["arn:%s:ssm:%s::parameter/aws/service/eks/optimized-ami/*" % (partition, region)]),
        # KarpenterControllerEKSIntegrationPolicy
        (["eks:DescribeCluster"], ["arn:%s:eks:%s:%s:cluster/%s" % (partition, region, account, cluster)]),
    ]
    if queue_name:
        # KarpenterControllerInterruptionPolicy
        checks.append(
            (
                ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl"],
                ["arn:%s:sqs:%s:%s:%s" % (partition, region, account, queue_name)],
            )
        )
    return checks


def request_context(cluster: str, region: str, nodepool: str = "default", nodeclass: str = "default") -> list:
    """The condition keys Karpenter's requests carry (tags it sets and finds, passed-to service, region)."""
    owned = "kubernetes.io/cluster/%s" % cluster
    values = {
        "aws:RequestedRegion": region,
        "aws:RequestTag/" + owned: "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster,
        "aws:RequestTag/karpenter.sh/nodepool": nodepool,
        "aws:RequestTag/topology.kubernetes.io/region": region,
        "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": nodeclass,
        "aws:ResourceTag/" + owned: "owned",
        "aws:ResourceTag/karpenter.sh/nodepool": nodepool,
        "aws:ResourceTag/topology.kubernetes.io/region": region,
        "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": nodeclass,
        "ec2:CreateAction": "RunInstances",
        "iam:PassedToService": "ec2.amazonaws.com",
    }
    entries = [
        {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"} for k, v in sorted(values.items())
    ]
    entries.append(
        {
            "ContextKeyName": "aws:TagKeys",
            "ContextKeyValues": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"],
            "ContextKeyType": "stringList",
        }
    )
    return entries


def _error_text(exc):
    if isinstance(exc, ClientError):
        err = exc.response.get("Error") or {}
        return "%s: %s" % (err.get("Code"), err.get("Message"))
    return "%s: %s" % (type(exc).__name__, exc)


def _why(result, decision):
    details = []
    if (result.get("OrganizationsDecisionDetail") or {}).get("AllowedByOrganizations") is False:
        details.append("denied by an SCP")
    if (result.get("PermissionsBoundaryDecisionDetail") or {}).get("AllowedByPermissionsBoundary") is False:
        details.append("denied by the permissions boundary")
    if decision == "explicitDeny":
        details.append("explicit Deny statement")
    elif not details:
        details.append("no statement allows it with Karpenter's request context")
    return "; ".join(details)


def _simulate(client, role_arn, actions, resources, context):
    out = []
    kwargs = dict(PolicySourceArn=role_arn, ActionNames=actions, ResourceArns=resources, ContextEntries=context)
    while True:
        page = client.simulate_principal_policy(aws_retry=True, **kwargs)
        out.extend(page.get("EvaluationResults") or [])
        if not page.get("IsTruncated"):
            return out
        kwargs["Marker"] = page["Marker"]


def check_controller_role(client: Any, params: dict, check_mode: bool = False, region: str | None = None) -> dict:
    """Simulate the controller role; returns the module result (read-only: the same in check mode)."""
    cluster = params["cluster_name"]
    result = {
        "changed": False,
        "available": False,
        "role_missing": False,
        "role_arn": params.get("role_arn"),
        "role_name": params.get("role_name"),
        "allowed": [],
        "denied": [],
        "note": None,
    }
    role_arn = params.get("role_arn")
    if not role_arn and not params.get("role_name"):
        raise InputError("role_name, role_arn: one of them is required")
    if not region:
        result["note"] = "IAM simulator not available: no AWS region configured (the simulated resources are regional)"
        return result
    if not role_arn:
        try:
            role_arn = client.get_role(aws_retry=True, RoleName=params["role_name"])["Role"]["Arn"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                result.update(available=True, role_missing=True)
                return result
            result["note"] = "IAM simulator not available: cannot read role %s: %s" % (
                params["role_name"],
                _error_text(exc),
            )
            return result
        except (BotoCoreError, ResponseParserError) as exc:
            result["note"] = "IAM simulator not available: %s" % _error_text(exc)
            return result
    result["role_arn"] = role_arn
    parts = role_arn.split(":")
    partition, account = parts[1], parts[4]
    node_role_arn = params.get("node_role_arn") or (
        "arn:%s:iam::%s:role/%s" % (partition, account, params["node_role_name"])
        if params.get("node_role_name")
        else None
    )
    checks = controller_checks(
        cluster, region, account, partition, node_role_arn=node_role_arn, queue_name=params.get("interruption_queue")
    )
    only = set(params.get("actions") or [])
    context = request_context(cluster, region)
    denied = {}
    allowed = []
    for actions, resources in checks:
        actions = [a for a in actions if not only or a in only]
        if not actions:
            continue
        try:
            evaluations = _simulate(client, role_arn, actions, resources, context)
        # UNAVAILABLE is a tuple of exception classes
        except UNAVAILABLE as exc:  # pylint: disable=catching-non-exception
            result["note"] = "IAM simulator not available: %s" % _error_text(exc)
            result["allowed"], result["denied"] = [], []
            return result
        for ev in evaluations:
            action = ev["EvalActionName"]
            per_resource = ev.get("ResourceSpecificResults") or [
                {"EvalResourceName": ev.get("EvalResourceName"), "EvalResourceDecision": ev["EvalDecision"]}
            ]
            bad = [r for r in per_resource if r.get("EvalResourceDecision") != "allowed"]
            if ev["EvalDecision"] != "allowed" and not bad:
                bad = [{"EvalResourceName": ev.get("EvalResourceName"), "EvalResourceDecision": ev["EvalDecision"]}]
            for r in bad:
                decision = r.get("EvalResourceDecision") or ev["EvalDecision"]
                key = (action, r.get("EvalResourceName"))
                denied[key] = {
                    "action": action,
                    "resource": r.get("EvalResourceName"),
                    "decision": decision,
                    "why": _why(ev, decision),
                }
            if not bad and action not in allowed:
                allowed.append(action)
    result["available"] = True
    result["denied"] = [denied[k] for k in sorted(denied)]
    denied_actions = set(d["action"] for d in result["denied"])
    result["allowed"] = sorted(a for a in allowed if a not in denied_actions)
    return result
