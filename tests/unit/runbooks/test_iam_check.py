"""IAM policy simulation of the Karpenter controller role (module_utils/aws/iam_simulate.py) with botocore's Stubber.

moto does not implement iam:SimulatePrincipalPolicy (the sandbox's moto server answers HTTP 500), so the logic is
tested with ``botocore.stub.Stubber``: every request is checked against the real IAM service model shipped with
botocore (operation, parameter names, types and enums, e.g. ``ContextKeyType``), every canned response against its
output shape, and a call that is not queued fails the test. The result is then fed to the diagnosis to show the
finding, recommendation or note the runbook writes.
"""

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper
from ansible_collections.karpenter_eks.platform.plugins.module_utils import runbooks
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.iam_simulate import (
    EC2_DESCRIBE,
    check_controller_role,
    controller_checks,
    request_context,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.errors import InputError
from botocore.stub import Stubber
from diagnose_fakes import KWOK_NODECLASS, NOW, FakeApi

CLUSTER, REGION, ACCOUNT = "platform-prod", "eu-west-1", "123456789012"
ROLE_NAME = "KarpenterControllerRole-platform-prod"
ROLE_ARN = "arn:aws:iam::%s:role/%s" % (ACCOUNT, ROLE_NAME)
NODE_ROLE_ARN = "arn:aws:iam::%s:role/KarpenterNodeRole-platform-prod" % ACCOUNT


@pytest.fixture
def iam():
    raw = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("iam", endpoint_url="http://127.0.0.1:1")  # never reached: every call is stubbed
    with Stubber(raw) as stub:
        yield RetryingBotoClientWrapper(raw, AWSRetry.jittered_backoff(retries=1, delay=0)), stub
        stub.assert_no_pending_responses()


def params(**kw):
    p = dict(
        cluster_name=CLUSTER,
        role_name=ROLE_NAME,
        role_arn=None,
        node_role_name=None,
        node_role_arn=None,
        interruption_queue=CLUSTER,
        actions=[],
    )
    p.update(kw)
    return p


def get_role(stub):
    role = {
        "Path": "/",
        "RoleName": ROLE_NAME,
        "RoleId": "AROAEXAMPLEEXAMPLE123",
        "Arn": ROLE_ARN,
        "CreateDate": NOW,
    }
    stub.add_response("get_role", {"Role": role}, {"RoleName": ROLE_NAME})


def evaluation(action, resources, decision="allowed", per_resource=None, **extra):
    per_resource = per_resource or {}
    ev = {
        "EvalActionName": action,
        "EvalResourceName": resources[0],
        "EvalDecision": decision,
        "ResourceSpecificResults": [
            {"EvalResourceName": r, "EvalResourceDecision": per_resource.get(r, decision)} for r in resources
        ],
    }
    ev.update(extra)
    return ev


def queue_simulations(stub, decide=None, checks=None):
    """One simulate_principal_policy per check, answered per action by ``decide(action, resources)``."""
    checks = checks if checks is not None else controller_checks(CLUSTER, REGION, ACCOUNT, queue_name=CLUSTER)
    context = request_context(CLUSTER, REGION)
    for actions, resources in checks:
        results = []
        for a in actions:
            results.append((decide or evaluation)(a, resources))
        stub.add_response(
            "simulate_principal_policy",
            {"EvaluationResults": results, "IsTruncated": False},
            {"PolicySourceArn": ROLE_ARN, "ActionNames": actions, "ResourceArns": resources, "ContextEntries": context},
        )
    return checks


def test_the_checks_cover_the_karpenter_v1_controller_actions():
    checks = controller_checks(CLUSTER, REGION, ACCOUNT, queue_name=CLUSTER)
    actions = set(a for acts, unused in checks for a in acts)
    for a in (
        "ec2:CreateFleet",
        "ec2:RunInstances",
        "ec2:CreateLaunchTemplate",
        "ec2:CreateTags",
        "ec2:TerminateInstances",
        "ec2:DeleteLaunchTemplate",
        "iam:PassRole",
        "iam:CreateInstanceProfile",
        "iam:TagInstanceProfile",
        "iam:AddRoleToInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
        "iam:DeleteInstanceProfile",
        "iam:GetInstanceProfile",
        "iam:ListInstanceProfiles",
        "pricing:GetProducts",
        "ssm:GetParameter",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueUrl",
        "eks:DescribeCluster",
    ):
        assert a in actions, a
    assert set(EC2_DESCRIBE) <= actions
    # the interruption queue is optional
    assert not any(a.startswith("sqs:") for acts, unused in controller_checks(CLUSTER, REGION, ACCOUNT) for a in acts)
    (passrole,) = [r for acts, r in checks if acts == ["iam:PassRole"]]
    assert passrole == [NODE_ROLE_ARN]
    ctx = dict((e["ContextKeyName"], e["ContextKeyValues"]) for e in request_context(CLUSTER, REGION))
    assert ctx["aws:RequestTag/kubernetes.io/cluster/%s" % CLUSTER] == ["owned"]
    assert ctx["aws:RequestTag/eks:eks-cluster-name"] == [CLUSTER] and ctx["iam:PassedToService"] == [
        "ec2.amazonaws.com"
    ]


def test_all_allowed_is_no_finding(iam):
    client, stub = iam
    get_role(stub)
    checks = queue_simulations(stub)
    res = check_controller_role(client, params(), region=REGION)
    assert res["available"] and res["denied"] == [] and res["role_arn"] == ROLE_ARN and not res["changed"]
    assert res["allowed"] == sorted(set(a for acts, unused in checks for a in acts))

    d = runbooks.Diagnosis(FakeApi([KWOK_NODECLASS]), "provisioning", now=NOW)
    d.provisioning(iam_check=res)
    r = d.result()
    assert r["healthy"] and r["findings"] == [] and r["notes"] == []


def test_denied_actions_are_named_with_the_recommendation(iam):
    client, stub = iam

    def decide(action, resources):
        if action == "ec2:CreateFleet":  # allowed on images/subnets, not on the fleet it creates
            return evaluation(action, resources, per_resource={r: "implicitDeny" for r in resources if "fleet/" in r})
        if action == "iam:PassRole":
            return evaluation(
                action, resources, "explicitDeny", OrganizationsDecisionDetail={"AllowedByOrganizations": False}
            )
        return evaluation(action, resources)

    get_role(stub)
    queue_simulations(stub, decide)
    res = check_controller_role(client, params(), region=REGION)
    assert [(d["action"], d["decision"]) for d in res["denied"]] == [
        ("ec2:CreateFleet", "implicitDeny"),
        ("iam:PassRole", "explicitDeny"),
    ]
    assert res["denied"][0]["resource"] == "arn:aws:ec2:%s:%s:fleet/*" % (REGION, ACCOUNT)
    assert "SCP" in res["denied"][1]["why"] and "explicit Deny" in res["denied"][1]["why"]
    assert "ec2:CreateFleet" not in res["allowed"] and "ec2:RunInstances" in res["allowed"]

    d = runbooks.Diagnosis(FakeApi([KWOK_NODECLASS]), "provisioning", now=NOW)
    d.provisioning(iam_check=res)
    r = d.result()
    assert r["causes"] == ["iam_permissions_denied"]
    (f,) = r["findings"]
    assert "ec2:CreateFleet, iam:PassRole" in f["summary"] and ROLE_ARN in f["summary"]
    (rec,) = r["recommendations"]
    assert rec["id"] == "grant_iam_permissions" and rec["actions"] == ["ec2:CreateFleet", "iam:PassRole"]


def test_access_denied_on_the_simulator_is_a_note(iam):
    client, stub = iam
    get_role(stub)
    stub.add_client_error(
        "simulate_principal_policy",
        "AccessDenied",
        "User: arn:aws:sts::123456789012:assumed-role/oncall is not authorized to perform: iam:SimulatePrincipalPolicy",
        403,
    )
    res = check_controller_role(client, params(), region=REGION)
    assert not res["available"] and res["denied"] == [] and res["allowed"] == []
    assert res["note"].startswith("IAM simulator not available: AccessDenied: User:")

    d = runbooks.Diagnosis(FakeApi([KWOK_NODECLASS]), "provisioning", now=NOW)
    d.provisioning(iam_check=res)
    r = d.result()
    assert r["healthy"] and r["findings"] == [] and r["notes"] == [res["note"]]
    assert "IAM policy simulator: not available" in r["checked"]


def test_missing_role(iam):
    client, stub = iam
    stub.add_client_error("get_role", "NoSuchEntity", "The role with name x cannot be found.", 404)
    res = check_controller_role(client, params(), region=REGION)
    assert res["role_missing"] and res["available"] and res["denied"] == []


def test_role_not_readable_is_a_note(iam):
    client, stub = iam
    stub.add_client_error("get_role", "AccessDenied", "not authorized to perform: iam:GetRole", 403)
    res = check_controller_role(client, params(), region=REGION)
    assert not res["available"] and "cannot read role %s: AccessDenied" % ROLE_NAME in res["note"]


def test_role_arn_skips_get_role_and_actions_filter_the_calls(iam):
    client, stub = iam
    only = ["iam:PassRole", "ec2:CreateFleet"]
    checks = [
        ([a for a in acts if a in only], res)
        for acts, res in controller_checks(CLUSTER, REGION, ACCOUNT, node_role_arn=NODE_ROLE_ARN)
        if set(acts) & set(only)
    ]
    queue_simulations(stub, checks=checks)
    res = check_controller_role(
        client, params(role_arn=ROLE_ARN, actions=only, node_role_arn=NODE_ROLE_ARN), region=REGION
    )
    assert res["allowed"] == ["ec2:CreateFleet", "iam:PassRole"] and len(checks) == 3


def test_paginated_results(iam):
    client, stub = iam
    (actions, resources) = [c for c in controller_checks(CLUSTER, REGION, ACCOUNT) if c[0] == ["eks:DescribeCluster"]][
        0
    ]
    context = request_context(CLUSTER, REGION)
    base = {"PolicySourceArn": ROLE_ARN, "ActionNames": actions, "ResourceArns": resources, "ContextEntries": context}
    stub.add_response("simulate_principal_policy", {"EvaluationResults": [], "IsTruncated": True, "Marker": "m1"}, base)
    stub.add_response(
        "simulate_principal_policy",
        {"EvaluationResults": [evaluation("eks:DescribeCluster", resources, "implicitDeny")], "IsTruncated": False},
        dict(base, Marker="m1"),
    )
    res = check_controller_role(client, params(role_arn=ROLE_ARN, actions=actions), region=REGION)
    assert [d["action"] for d in res["denied"]] == ["eks:DescribeCluster"]


def test_role_name_or_arn_required(iam):
    client, _stub = iam
    with pytest.raises(InputError, match="role_name, role_arn: one of them is required"):
        check_controller_role(client, params(role_name=None), region=REGION)


def test_no_region_is_a_note(iam):
    client, _stub = iam  # no call queued: nothing is sent
    res = check_controller_role(client, params(), region=None)
    assert not res["available"] and res["note"].startswith("IAM simulator not available: no AWS region")


def test_an_emulator_error_page_is_a_note(iam, monkeypatch):
    """What the sandbox's moto answers (HTML 500) surfaces as botocore's ResponseParserError, not a BotoCoreError."""
    from botocore.parsers import ResponseParserError

    client, stub = iam
    get_role(stub)

    def html_500(**kw):
        raise ResponseParserError("Unable to parse response (syntax error), invalid XML received: b'<!doctype html>'")

    monkeypatch.setattr(client.client, "simulate_principal_policy", html_500)
    res = check_controller_role(client, params(), region=REGION)
    assert not res["available"] and res["note"].startswith("IAM simulator not available: ResponseParserError: ")
