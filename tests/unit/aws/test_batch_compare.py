"""Pure logic of the batch AWS modules: policy and event pattern comparison, tag planning, input validation.

No AWS at all: what is compared equal must be what IAM/EventBridge evaluate identically, and what differs must not
be hidden; input errors must name the field.
"""

import copy

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.batch import check_tags
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.ec2_tags import plan_tags, validate_tags
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eventbridge import (
    canonical_pattern,
    same_pattern,
    same_target,
    validate_rules,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.iam_policies import (
    same_policy,
    validate_policies,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.errors import InputError

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": ["ec2:DescribeSubnets", "ec2:DescribeImages"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2"]}},
        },
        {"Sid": "Pass", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/x"},
    ],
}

# ---------------------------------------------------------------- IAM policy documents


def test_policy_order_and_single_values_do_not_count():
    other = copy.deepcopy(POLICY)
    other["Statement"].reverse()
    other["Statement"][1]["Action"].reverse()
    other["Statement"][1]["Condition"]["StringEquals"]["aws:RequestedRegion"].reverse()
    other["Statement"][0]["Action"] = ["iam:PassRole"]
    other["Statement"][0]["Resource"] = ["arn:aws:iam::1:role/x"]
    assert same_policy(POLICY, other)


def test_policy_statement_as_object_and_duplicates():
    one = {"Version": "2012-10-17", "Statement": POLICY["Statement"][1]}
    assert same_policy(one, {"Version": "2012-10-17", "Statement": [POLICY["Statement"][1]] * 2})


def test_policy_missing_version_is_2008():
    doc = {"Statement": POLICY["Statement"]}
    assert same_policy(doc, dict(doc, Version="2008-10-17"))
    assert not same_policy(doc, POLICY)


def test_condition_scalars_compare_as_iam_stores_them():
    a = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": True}}}
        ]
    }
    b = copy.deepcopy(a)
    b["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"] = "true"
    assert same_policy(a, b)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["Statement"][0]["Action"].append("ec2:RunInstances"),
        lambda d: d["Statement"][0].update(Effect="Deny"),
        lambda d: d["Statement"][1].update(Resource="arn:aws:iam::1:role/y"),
        lambda d: d["Statement"][0]["Condition"]["StringEquals"].update({"aws:RequestedRegion": "us-east-1"}),
        lambda d: d["Statement"][0].update(Sid="Other"),
        lambda d: d["Statement"].pop(),
        lambda d: d["Statement"][0]["Condition"].update(StringLike={"aws:ResourceTag/x": "*"}),
        lambda d: d.update(Version="2008-10-17"),
    ],
)
def test_policy_real_differences_count(change):
    other = copy.deepcopy(POLICY)
    change(other)
    assert not same_policy(POLICY, other)


def policies(*items, **kw):
    p = {"policies": list(items), "state": "present", "tags": None, "purge_tags": True}
    p.update(kw)
    return p


def item(**kw):
    out = {"name": "P", "document": POLICY, "description": None, "path": "/", "tags": None, "state": None}
    out.update(kw)
    return out


@pytest.mark.parametrize(
    "params, field",
    [
        (policies(item(name="bad name")), "policies[0].name"),
        (policies(item(name="a"), item(name="A")), "policies[1].name"),
        (policies(item(path="no-slash")), "policies[0] (P).path"),
        (policies(item(path="/a*/")), "policies[0] (P).path"),
        (policies(item(document=None)), "policies[0] (P).document: required"),
        (policies(item(document="{not json")), "policies[0] (P).document: not valid JSON"),
        (policies(item(document=["x"])), "policies[0] (P).document: a policy document is a JSON object"),
        (policies(item(document={"Version": "2012-10-17"})), "policies[0] (P).document.Statement"),
        (
            policies(item(document={"Statement": [{"Effect": "allow", "Action": "x", "Resource": "*"}]})),
            "policies[0] (P).document.Statement[0].Effect",
        ),
        (
            policies(item(document={"Statement": [{"Effect": "Allow", "Action": "x"}]})),
            "policies[0] (P).document.Statement[0]: needs Resource",
        ),
        (
            policies(
                item(document={"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "x", "Resource": "*"}]})
            ),
            "policies[0] (P).document.Statement[0].Principal",
        ),
        (
            policies(
                item(
                    document={
                        "Statement": [
                            {"Effect": "Allow", "Action": ["s3:GetObject%d" % i for i in range(500)], "Resource": "*"}
                        ]
                    }
                )
            ),
            "IAM allows 6144",
        ),
        (policies(item(tags={"aws:x": "1"})), "policies[0] (P).tags: tag key 'aws:x'"),
        (policies(item(), tags={"k": ["list"]}), "tags: value of tag 'k'"),
        (policies(), "policies: at least one"),
    ],
)
def test_policy_input_errors_name_the_field(params, field):
    with pytest.raises(InputError) as e:
        validate_policies(params)
    assert field in str(e.value)


def test_policy_input_json_text_and_defaults():
    import json

    out = validate_policies(
        policies(item(document=json.dumps(POLICY)), item(name="Q", state="absent", document=None), tags={"n": 1})
    )
    assert out[0]["document"] == POLICY and out[0]["tags"] == {"n": "1"}
    assert out[1]["state"] == "absent" and out[1]["document"] is None


# ---------------------------------------------------------------- EventBridge patterns and targets


def test_pattern_order_does_not_count():
    a = {"source": ["aws.ec2", "aws.health"], "detail-type": ["B", "A"], "detail": {"state": [{"prefix": "x"}, "y"]}}
    b = {
        "detail": {"state": ["y", {"prefix": "x"}]},
        "detail-type": ["A", "B", "A"],
        "source": ["aws.health", "aws.ec2"],
    }
    assert same_pattern(a, b)
    assert canonical_pattern(a) == canonical_pattern(b)


def test_pattern_numeric_ranges_keep_their_order():
    a = {"detail": {"n": [{"numeric": [">", 0, "<=", 5]}]}}
    b = {"detail": {"n": [{"numeric": [">", 5, "<=", 0]}]}}
    assert not same_pattern(a, b)


@pytest.mark.parametrize(
    "b",
    [
        {"source": ["aws.ec2"], "detail-type": ["Other"]},
        {"source": ["aws.ec2"]},
        {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"], "region": ["us-east-1"]},
        {"source": ["aws.EC2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    ],
)
def test_pattern_real_differences_count(b):
    assert not same_pattern({"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}, b)


def test_target_comparison_uses_managed_fields_and_json_input():
    live = {"Id": "t", "Arn": "arn:aws:sqs:us-east-1:1:q", "Input": '{"a": 1, "b": [2]}', "SqsParameters": {}}
    assert same_target(live, {"Id": "t", "Arn": "arn:aws:sqs:us-east-1:1:q", "Input": '{"b":[2],"a":1}'})
    assert not same_target(live, {"Id": "t", "Arn": "arn:aws:sqs:us-east-1:1:other", "Input": '{"a":1,"b":[2]}'})
    assert not same_target(live, {"Id": "t", "Arn": "arn:aws:sqs:us-east-1:1:q"})


def rules(*items, **kw):
    p = {"rules": list(items), "state": "present", "event_bus_name": "default", "purge_targets": True}
    p.update(kw)
    return p


def rule(**kw):
    out = {
        "name": "R",
        "event_pattern": {"source": ["aws.ec2"]},
        "description": None,
        "enabled": True,
        "targets": None,
        "state": None,
    }
    out.update(kw)
    return out


@pytest.mark.parametrize(
    "params, field",
    [
        (rules(rule(name="has space")), "rules[0].name"),
        (rules(rule(), rule()), "rules[1].name: R is already rules[0]"),
        (rules(rule(event_pattern=None)), "rules[0] (R).event_pattern: required"),
        (rules(rule(event_pattern="{")), "rules[0] (R).event_pattern: not valid JSON"),
        (rules(rule(event_pattern={})), "rules[0] (R).event_pattern: an event pattern is a non-empty JSON object"),
        (rules(rule(event_pattern={"source": ["x" * 5000]})), "EventBridge allows 4096"),
        (rules(rule(targets=[{"id": "a b", "arn": "arn:aws:sqs:::q"}])), "rules[0] (R).targets[0].id"),
        (rules(rule(targets=[{"id": "a", "arn": "queue"}])), "rules[0] (R).targets[0].arn"),
        (
            rules(rule(targets=[{"id": "a", "arn": "arn:aws:sqs:::q"}, {"id": "a", "arn": "arn:aws:sqs:::r"}])),
            "rules[0] (R).targets: duplicate id a",
        ),
        (rules(rule(targets=[{"id": str(i), "arn": "arn:aws:sqs:::q"} for i in range(6)])), "EventBridge allows 5"),
        (rules(rule(targets=[{"id": "a", "arn": "arn:aws:sqs:::q", "input": "{x"}])), "rules[0] (R).targets[0].input"),
        (rules(), "rules: at least one"),
    ],
)
def test_rule_input_errors_name_the_field(params, field):
    with pytest.raises(InputError) as e:
        validate_rules(params)
    assert field in str(e.value)


def test_rule_input_dict_input_becomes_json_text():
    out = validate_rules(rules(rule(targets=[{"id": "a", "arn": "arn:aws:sqs:::q", "input": {"k": "v"}}])))
    assert out[0]["targets"] == [{"Id": "a", "Arn": "arn:aws:sqs:::q", "Input": '{"k":"v"}'}]


# ---------------------------------------------------------------- EC2 tag planning

KEY = "karpenter.sh/discovery"


def test_plan_one_create_for_every_resource_that_lacks_the_tag():
    current = {"subnet-1": {KEY: "c"}, "subnet-2": {}, "sg-3": {KEY: "other", "Name": "n"}}
    plan = plan_tags(current, ["subnet-1", "subnet-2", "sg-3"], {KEY: "c"})
    assert plan["create"] == {"tags": [{"Key": KEY, "Value": "c"}], "resources": ["subnet-2", "sg-3"]}
    assert plan["delete"]["resources"] == []
    assert [r["changed"] for r in plan["resources"]] == [False, True, True]
    assert plan["resources"][2]["after"] == {KEY: "c", "Name": "n"}


def test_plan_converged_is_empty():
    plan = plan_tags({"subnet-1": {KEY: "c", "x": "1"}}, ["subnet-1"], {KEY: "c"})
    assert plan["create"]["resources"] == [] and plan["delete"]["resources"] == []
    assert not plan["resources"][0]["changed"]


def test_plan_purge_removes_other_keys_but_not_aws_ones():
    current = {"subnet-1": {KEY: "c", "old": "1", "aws:cloudformation:stack-name": "s"}, "subnet-2": {KEY: "c"}}
    plan = plan_tags(current, ["subnet-1", "subnet-2"], {KEY: "c"}, purge=True)
    assert plan["delete"] == {"tags": [{"Key": "old"}], "resources": ["subnet-1"]}
    assert plan["resources"][0]["after"] == {KEY: "c", "aws:cloudformation:stack-name": "s"}


def test_plan_absent_removes_only_matching_values():
    current = {"subnet-1": {KEY: "c"}, "subnet-2": {KEY: "other"}, "subnet-3": {}}
    plan = plan_tags(current, ["subnet-1", "subnet-2", "subnet-3"], {KEY: "c"}, state="absent")
    assert plan["delete"] == {"tags": [{"Key": KEY, "Value": "c"}], "resources": ["subnet-1"]}
    plan = plan_tags(current, ["subnet-1", "subnet-2", "subnet-3"], {KEY: None}, state="absent")
    assert plan["delete"] == {"tags": [{"Key": KEY}], "resources": ["subnet-1", "subnet-2"]}


def tag_params(**kw):
    p = {
        "resources": [],
        "subnet_filters": {},
        "security_group_filters": {},
        "tags": {KEY: "c"},
        "purge_tags": False,
        "require_subnets": False,
        "state": "present",
    }
    p.update(kw)
    return p


@pytest.mark.parametrize(
    "params, field",
    [
        (tag_params(resources=["subnet-0123456789abcdef0", "subnet_1"]), "resources[1]"),
        (tag_params(resources=["subnet-0123"]), "resources[0]"),
        (tag_params(tags={}), "tags: at least one"),
        (tag_params(tags={"k": None}), "tags: value of tag 'k'"),
        (tag_params(tags={"k" * 128: "v"}), "tags: tag key"),
        (tag_params(tags={"k": "v" * 256}), "tags: value of tag 'k'"),
        (tag_params(subnet_filters={"vpc-id": [{"x": 1}]}), "subnet_filters.vpc-id"),
    ],
)
def test_tag_input_errors_name_the_field(params, field):
    with pytest.raises(InputError) as e:
        validate_tags(params)
    assert field in str(e.value)


def test_tag_input_dedupes_and_absent_accepts_null_values():
    out = validate_tags(tag_params(resources=["sg-01234567", "sg-01234567"], tags={KEY: None}, state="absent"))
    assert out["resources"] == ["sg-01234567"] and out["tags"] == {KEY: None}


def test_check_tags_stringifies_like_aws():
    assert check_tags({"a": True, "b": 2}, "tags") == {"a": "true", "b": "2"}
