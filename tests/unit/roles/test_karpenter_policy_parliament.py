"""The Karpenter controller IAM policy (the role's templates, rendered with the role defaults) through parliament.

Gate: no parliament finding of severity MEDIUM or higher, except an exact, justified list of false positives
(``KNOWN_FALSE_POSITIVES``) that parliament's per-statement analysis produces on the upstream v1.14 policy:

* ``RESOURCE_MISMATCH`` on ``ec2:RunInstances``/``ec2:CreateFleet``: these actions authorise several resources
  (image, subnet, security group, launch template, instance, volume, ...) and the policy grants them in three
  statements with different conditions (no condition on AMIs/subnets/SGs; ``aws:ResourceTag`` on launch
  templates; ``aws:RequestTag`` on what gets created). IAM evaluates each resource of the request against all
  statements; parliament checks each statement alone. ``test_launch_statements_together_cover_every_resource``
  proves the union is complete, using parliament's own IAM definitions.

(``ssm:GetParameter`` on AWS public parameters is written with ``*`` as the account - upstream's empty account
field, which is what public parameter ARNs have, made parliament report a RESOURCE_MISMATCH; ``*`` matches the
empty field and no account can own a parameter under ``/aws/``, so the grant is the same and parliament is clean.)

Every listed false positive must still occur (the list cannot rot), and nothing else may be found. The community
auditors are checked too: the only finding allowed there is PERMISSIONS_MANAGEMENT_ACTIONS for exactly the IAM
actions Karpenter needs (``iam:PassRole`` of the node role and its own instance profiles).
"""

import json
import os
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament 1.6.4 imports the deprecated pkg_resources
    import parliament  # in requirements-dev.txt

POLICIES = (
    "policy-node-lifecycle.json",
    "policy-iam-integration.json",
    "policy-eks-integration.json",
    "policy-resource-discovery.json",
    "policy-interruption.json",
    "policy-zonal-shift.json",
)
SEVERITIES = ["MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]

# (policy file, Sid, issue, actions named in the finding)
KNOWN_FALSE_POSITIVES = {
    ("policy-node-lifecycle.json", "AllowScopedEC2InstanceAccessActions", "RESOURCE_MISMATCH"): {
        "ec2:RunInstances",
        "ec2:CreateFleet",
    },
    ("policy-node-lifecycle.json", "AllowScopedEC2LaunchTemplateAccessActions", "RESOURCE_MISMATCH"): {
        "ec2:RunInstances",
        "ec2:CreateFleet",
    },
    ("policy-node-lifecycle.json", "AllowScopedEC2InstanceActionsWithTags", "RESOURCE_MISMATCH"): {"ec2:RunInstances"},
}


def findings(text, community=False):
    return [
        parliament.enhance_finding(f)
        for f in parliament.analyze_policy_string(text, include_community_auditors=community).findings
    ]


def statement_at(doc_text, line):
    """Sid of the statement whose JSON object starts at ``line`` (parliament reports 1-based lines)."""
    lines = doc_text.splitlines()
    for i in range(line - 1, len(lines)):
        if '"Sid"' in lines[i]:
            return json.loads("{" + lines[i].strip().rstrip(",") + "}")["Sid"]
    raise AssertionError(f"no Sid after line {line}")


def medium_or_higher(f):
    return SEVERITIES.index(f.severity) >= SEVERITIES.index("MEDIUM")


@pytest.fixture(scope="module")
def policies(rendered):
    out = {}
    for name in POLICIES:
        text = (rendered / name).read_text()
        doc = json.loads(text)
        # parliament reports the line of the statement; a stable layout with one key per line
        out[name] = json.dumps(doc, indent=4)
    return out


def test_no_medium_or_higher_finding_beyond_the_known_false_positives(policies):
    seen = {}
    unexpected = []
    for name, text in policies.items():
        for f in findings(text):
            if not medium_or_higher(f):
                continue
            key = (name, statement_at(text, f.location["line"]), f.issue)
            actions = {d["action"] for d in f.detail} if isinstance(f.detail, list) else set()
            if key in KNOWN_FALSE_POSITIVES and actions <= KNOWN_FALSE_POSITIVES[key]:
                seen[key] = actions
            else:
                unexpected.append((key, f.severity, f.detail))
    assert unexpected == []
    assert set(seen) == set(KNOWN_FALSE_POSITIVES), "a known false positive disappeared: shorten the list"


def test_launch_statements_together_cover_every_resource(policies):
    """The split RunInstances/CreateFleet statements, merged into one, give parliament nothing to report."""
    doc = json.loads(policies["policy-node-lifecycle.json"])
    launch = [s for s in doc["Statement"] if {"ec2:RunInstances", "ec2:CreateFleet"} & set(s["Action"])]
    resources = sorted(
        {r for s in launch for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    )
    merged = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:CreateFleet"], "Resource": resources}],
    }
    assert [f.issue for f in findings(json.dumps(merged, indent=4)) if medium_or_higher(f)] == []


def test_ssm_parameter_resource_is_the_public_parameter_path_only(policies):
    doc = json.loads(policies["policy-resource-discovery.json"])
    (ssm,) = [s for s in doc["Statement"] if s["Sid"] == "AllowSSMReadActions"]
    assert ssm["Action"] == "ssm:GetParameter"
    assert ssm["Resource"] == ["arn:aws:ssm:us-east-1:*:parameter/aws/service/*"]


def test_community_auditors_only_flag_the_iam_actions_karpenter_needs(policies):
    parliament.override_config(
        os.path.join(os.path.dirname(parliament.__file__), "community_auditors", "config_override.yaml")
    )
    found = []
    for name, text in policies.items():
        for f in findings(text, community=True):
            if medium_or_higher(f) and f.issue not in {k[2] for k in KNOWN_FALSE_POSITIVES}:
                found.append((name, f.issue, sorted(f.location.get("actions", []))))
    assert found == [
        (
            "policy-iam-integration.json",
            "PERMISSIONS_MANAGEMENT_ACTIONS",
            [
                "iam:addroletoinstanceprofile",
                "iam:createinstanceprofile",
                "iam:deleteinstanceprofile",
                "iam:passrole",
                "iam:removerolefrominstanceprofile",
            ],
        )
    ]
    doc = json.loads(policies["policy-iam-integration.json"])
    (passrole,) = [s for s in doc["Statement"] if "iam:PassRole" in s["Action"]]
    assert passrole["Resource"] == "arn:aws:iam::123456789012:role/KarpenterNodeRole-unit-cluster"
