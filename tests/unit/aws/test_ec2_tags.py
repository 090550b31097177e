"""ec2_tags logic against a moto server on loopback (moto implements DescribeTags, CreateTags, DeleteTags and the
subnet/security group lookups), read back with a plain client; every request the module's client sends is
witnessed: one read, and at most one CreateTags/DeleteTags.
"""

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.api import AwsOperationError
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.ec2_tags import ensure_tags, validate_tags
from ansible_collections.karpenter_eks.platform.plugins.module_utils.errors import InputError

KEY = "karpenter.sh/discovery"


def params(**kw):
    p = {
        "resources": [],
        "subnet_filters": {},
        "security_group_filters": {},
        "tags": {KEY: "sandbox"},
        "purge_tags": False,
        "require_subnets": False,
        "state": "present",
    }
    p.update(kw)
    return p


def run(client, p, check_mode=False):
    return ensure_tags(client, p, check_mode, desired=validate_tags(p))


@pytest.fixture
def vpc(aws):
    client, witness, ec2 = aws("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in (
            ("10.42.0.0/19", "us-east-1a"),
            ("10.42.32.0/19", "us-east-1b"),
            ("10.42.64.0/19", "us-east-1c"),
        )
    ]
    ec2.create_tags(Resources=subnets[:2], Tags=[{"Key": "kubernetes.io/role/internal-elb", "Value": "1"}])
    group = ec2.create_security_group(GroupName="sandbox-node", Description="nodes", VpcId=vpc_id)["GroupId"]
    ec2.create_tags(Resources=[group], Tags=[{"Key": "Name", "Value": "sandbox-node"}])
    return client, witness, ec2, subnets, group


def tags_of(ec2, ids):
    out = dict((i, {}) for i in ids)
    for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": ids}])["Tags"]:
        out[t["ResourceId"]][t["Key"]] = t["Value"]
    return out


def test_check_then_one_create_then_noop(vpc):
    client, witness, ec2, subnets, group = vpc
    ids = subnets + [group]
    before = tags_of(ec2, ids)
    res = run(client, params(resources=ids), check_mode=True)
    assert res["changed"] is True and witness.writes == [] and witness.calls == ["DescribeTags"]
    assert tags_of(ec2, ids) == before
    assert len(res["diff"]) == 4
    assert res["diff"][3]["before"] == {"tags": {"Name": "sandbox-node"}}
    assert res["diff"][3]["after"] == {"tags": {"Name": "sandbox-node", KEY: "sandbox"}}

    witness.reset()
    res = run(client, params(resources=ids))
    assert witness.writes == ["CreateTags"] and witness.calls == ["DescribeTags", "CreateTags"]
    assert all(t[KEY] == "sandbox" for t in tags_of(ec2, ids).values())
    assert res["subnet_ids"] == subnets and res["security_group_ids"] == [group]

    witness.reset()
    again = run(client, params(resources=ids))
    assert again["changed"] is False and again["diff"] == [] and witness.calls == ["DescribeTags"]


def test_only_the_resources_that_differ_are_written(vpc):
    client, witness, ec2, subnets, group = vpc
    ec2.create_tags(Resources=subnets[:2], Tags=[{"Key": KEY, "Value": "sandbox"}])
    ec2.create_tags(Resources=[group], Tags=[{"Key": KEY, "Value": "other"}])
    res = run(client, params(resources=subnets + [group]))
    assert [r["changed"] for r in res["results"]] == [False, False, True, True]
    assert witness.writes == ["CreateTags"]
    assert tags_of(ec2, [group])[group] == {"Name": "sandbox-node", KEY: "sandbox"}


def test_filters_find_the_resources_without_describe_tags(vpc):
    client, witness, ec2, subnets, group = vpc
    p = params(
        subnet_filters={"tag:kubernetes.io/role/internal-elb": "1"},
        security_group_filters={"group-name": "sandbox-node"},
        require_subnets=True,
    )
    res = run(client, p)
    assert res["subnet_ids"] == subnets[:2] and res["security_group_ids"] == [group]
    assert witness.calls == ["DescribeSubnets", "DescribeSecurityGroups", "CreateTags"]
    assert KEY not in tags_of(ec2, [subnets[2]])[subnets[2]]
    witness.reset()
    assert run(client, p)["changed"] is False and witness.writes == []


def test_require_subnets_fails_before_any_write(vpc):
    client, witness, ec2, subnets, group = vpc
    with pytest.raises(InputError) as e:
        run(client, params(resources=[group], subnet_filters={"tag:missing": "x"}, require_subnets=True))
    assert "require_subnets" in str(e.value)
    assert witness.writes == []
    assert KEY not in tags_of(ec2, [group])[group]


def test_purge_and_absent(vpc):
    client, witness, ec2, subnets, group = vpc
    run(client, params(resources=[group]))
    res = run(client, params(resources=[group], purge_tags=True), check_mode=True)
    assert res["diff"][0]["after"] == {"tags": {KEY: "sandbox"}}
    witness.reset()
    run(client, params(resources=[group], purge_tags=True))
    assert witness.writes == ["DeleteTags"]
    assert tags_of(ec2, [group])[group] == {KEY: "sandbox"}

    witness.reset()
    assert run(client, params(resources=[group], tags={KEY: "other"}, state="absent"))["changed"] is False
    assert witness.writes == []
    res = run(client, params(resources=[group], tags={KEY: None}, state="absent"))
    assert res["changed"] is True and witness.writes == ["DeleteTags"]
    assert tags_of(ec2, [group])[group] == {}


def test_unknown_resource_is_an_aws_error_naming_it(aws):
    client, witness, ec2 = aws("ec2")
    with pytest.raises(AwsOperationError) as e:
        run(client, params(resources=["subnet-0123456789abcdef0"]))
    assert "subnet-0123456789abcdef0" in e.value.message
