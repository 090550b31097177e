"""sandbox/ec2_emulation.py in-process (moto's mock): CreateFleet instant, capacity refusals, spot prices."""

from __future__ import annotations

import base64
import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

SANDBOX = Path(__file__).resolve().parents[3] / "sandbox"
REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
AMI_X86 = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id"
AMI_ARM = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/recommended/image_id"
USER_DATA = "MIME-Version: 1.0\n\nnode-config\n"


@pytest.fixture(scope="module")
def emu(aws_emulator_mod):
    aws_emulator_mod.install_seeding()  # also installs ec2_emulation, imported as aws_emulator.py imports it
    return importlib.import_module("ec2_emulation")


@pytest.fixture(autouse=True)
def _no_rules(emu):
    emu.CAPACITY.clear()
    yield
    emu.CAPACITY.clear()


class World:
    """A VPC with one subnet per zone, two security groups, an instance profile and Karpenter-like templates.

    One per module (moto's backends take seconds to build); each test makes its own template."""

    def __init__(self) -> None:
        self.templates = 0
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
        iam.create_instance_profile(InstanceProfileName="sandbox-node")
        self.profile_arn = iam.get_instance_profile(InstanceProfileName="sandbox-node")["InstanceProfile"]["Arn"]
        self.vpc = self.ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        self.subnets = {
            zone: self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=zone)["Subnet"][
                "SubnetId"
            ]
            for i, zone in enumerate(ZONES)
        }
        self.groups = [
            self.ec2.create_security_group(GroupName=name, Description=name, VpcId=self.vpc)["GroupId"]
            for name in ("node", "cluster-shared")
        ]
        self.ami = self.ssm.get_parameter(Name=AMI_X86)["Parameter"]["Value"]
        self.ami_arm = self.ssm.get_parameter(Name=AMI_ARM)["Parameter"]["Value"]

    def template(self, nics: bool = True, **extra) -> str:
        """A launch template shaped like the provider's (pkg/providers/launchtemplate/types.go); the default of
        ``fleet`` from now on."""
        self.templates += 1
        name = self.current = f"karpenter-node-{self.templates}"
        data = {
            "ImageId": self.ami,
            "UserData": base64.b64encode(USER_DATA.encode()).decode(),
            "IamInstanceProfile": {"Name": "sandbox-node"},
            "MetadataOptions": {
                "HttpEndpoint": "enabled",
                "HttpProtocolIpv6": "disabled",
                "HttpPutResponseHopLimit": 2,
                "HttpTokens": "required",
                "InstanceMetadataTags": "disabled",
            },
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
                }
            ],
            "Monitoring": {"Enabled": False},
            "TagSpecifications": [
                {"ResourceType": "network-interface", "Tags": [{"Key": "karpenter.sh/nodepool", "Value": "default"}]},
                {
                    "ResourceType": "spot-instances-request",
                    "Tags": [{"Key": "karpenter.sh/nodepool", "Value": "default"}],
                },
            ],
            **extra,
        }
        if nics:
            data["NetworkInterfaces"] = [
                {"DeviceIndex": 0, "NetworkCardIndex": 0, "InterfaceType": "interface", "Groups": self.groups}
            ]
        else:
            data["SecurityGroupIds"] = self.groups
        self.ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
        return name

    def override(self, instance_type: str, zone: str, priority: float | None = None, image: str | None = None):
        o = {
            "InstanceType": instance_type,
            "SubnetId": self.subnets[zone],
            "AvailabilityZone": zone,
            "ImageId": image or self.ami,
        }
        if priority is not None:
            o["Priority"] = priority
        return o

    def fleet(self, overrides, capacity_type="on-demand", count=1, template=None, **kwargs):
        """CreateFleet as the provider builds it (pkg/providers/instance/types.go)."""
        request = {
            "Type": "instant",
            "LaunchTemplateConfigs": [
                {
                    "LaunchTemplateSpecification": {
                        "LaunchTemplateName": template or self.current,
                        "Version": "$Latest",
                    },
                    "Overrides": overrides,
                }
            ],
            "TargetCapacitySpecification": {"DefaultTargetCapacityType": capacity_type, "TotalTargetCapacity": count},
            "TagSpecifications": [
                {"ResourceType": t, "Tags": [{"Key": "karpenter.sh/nodeclaim", "Value": "default-abcde"}]}
                for t in ("instance", "volume", "fleet")
            ],
        }
        if capacity_type == "spot":
            request["SpotOptions"] = {"AllocationStrategy": "price-capacity-optimized"}
        else:
            request["OnDemandOptions"] = {"AllocationStrategy": "lowest-price"}
        request.update(kwargs)
        return self.ec2.create_fleet(**request)

    def instance(self, instance_id: str) -> dict:
        return self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    def instance_count(self) -> int:
        return sum(len(r["Instances"]) for r in self.ec2.describe_instances()["Reservations"])


@pytest.fixture(scope="module")
def world(emu):
    with mock_aws():
        yield World()


def only_instance(response) -> str:
    assert len(response["Instances"]) == 1, response["Instances"]
    (instance_id,) = response["Instances"][0]["InstanceIds"]
    return instance_id


# ---------------------------------------------------------------------------------------------------- launching


def test_instance_gets_the_launch_template(world):
    world.template()
    chosen = world.override("m6i.large", "us-east-1b", priority=0.096)
    resp = world.fleet([chosen])
    assert resp["Errors"] == []
    inst = world.instance(only_instance(resp))
    assert sorted(g["GroupId"] for g in inst["SecurityGroups"]) == sorted(world.groups)
    assert inst["SubnetId"] == world.subnets["us-east-1b"]
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert inst["VpcId"] == world.vpc
    assert inst["ImageId"] == world.ami
    assert inst["InstanceType"] == "m6i.large"
    assert inst["IamInstanceProfile"]["Arn"] == world.profile_arn
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert inst["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert "InstanceLifecycle" not in inst and "SpotInstanceRequestId" not in inst
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    assert tags["karpenter.sh/nodeclaim"] == "default-abcde"
    assert tags["aws:ec2launchtemplate:version"] == "1"
    user_data = world.ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
    assert base64.b64decode(user_data["UserData"]["Value"]).decode() == USER_DATA
    (root,) = inst["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    volume = world.ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["Size"], volume["VolumeType"], volume["Encrypted"]) == (30, "gp3", True)
    assert {"Key": "karpenter.sh/nodeclaim", "Value": "default-abcde"} in volume["Tags"]
    eni = inst["NetworkInterfaces"][0]
    assert sorted(g["GroupId"] for g in eni["Groups"]) == sorted(world.groups)
    eni_tags = world.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])
    assert {"Key": "karpenter.sh/nodepool", "Value": "default"} in eni_tags["NetworkInterfaces"][0]["TagSet"]


def test_security_group_ids_without_interfaces(world):
    world.template(nics=False)
    inst = world.instance(only_instance(world.fleet([world.override("c6i.large", "us-east-1c")])))
    assert sorted(g["GroupId"] for g in inst["SecurityGroups"]) == sorted(world.groups)
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1c"


def test_override_image_wins_over_template_image(world):
    world.template()
    inst = world.instance(only_instance(world.fleet([world.override("m7g.large", "us-east-1a", image=world.ami_arm)])))
    assert inst["ImageId"] == world.ami_arm
    assert inst["Architecture"] == "arm64"
    without = {k: v for k, v in world.override("m6i.large", "us-east-1a").items() if k != "ImageId"}
    assert world.instance(only_instance(world.fleet([without])))["ImageId"] == world.ami


def test_response_shape_and_lowest_priority(world):
    world.template()
    overrides = [
        world.override("m6i.xlarge", "us-east-1a", priority=0.192),
        world.override("c6i.large", "us-east-1b", priority=0.085),
        world.override("m6i.large", "us-east-1c", priority=0.096),
    ]
    resp = world.fleet(overrides)
    assert resp["FleetId"].startswith("fleet-")
    (entry,) = resp["Instances"]
    assert entry["Lifecycle"] == "on-demand"
    assert entry["InstanceType"] == "c6i.large"
    assert entry["LaunchTemplateAndOverrides"]["Overrides"] == overrides[1]
    spec = entry["LaunchTemplateAndOverrides"]["LaunchTemplateSpecification"]
    assert spec["LaunchTemplateId"].startswith("lt-") and spec["Version"] == "1"
    assert world.instance(entry["InstanceIds"][0])["SubnetId"] == world.subnets["us-east-1b"]


def test_priority_beats_price(world):
    world.template()
    overrides = [world.override("c6i.large", "us-east-1a", priority=5), world.override("m6i.8xlarge", "us-east-1a", 1)]
    assert world.fleet(overrides)["Instances"][0]["InstanceType"] == "m6i.8xlarge"


def test_without_priority_cheapest_on_demand(world, emu):
    world.template()
    types = ["m6i.xlarge", "r6i.large", "c6i.large", "m6i.large"]
    resp = world.fleet([world.override(t, "us-east-1a") for t in types])
    cheapest = min(types, key=emu.on_demand_price)
    assert cheapest == "c6i.large"  # 0.085 $/h in the provider's table
    assert resp["Instances"][0]["InstanceType"] == cheapest


def test_without_priority_cheapest_spot_pool(world, emu):
    world.template()
    pools = [(t, z) for t in ("m6i.large", "m7i.large", "c7i.large") for z in ZONES]
    resp = world.fleet([world.override(t, z) for t, z in pools], capacity_type="spot")
    best = min(pools, key=lambda p: emu.spot_price(*p))
    entry = resp["Instances"][0]
    assert (entry["InstanceType"], entry["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"]) == best


def test_batched_request_fills_one_pool(world):
    world.template()
    resp = world.fleet(
        [world.override("m6i.large", "us-east-1a", 0.1), world.override("c6i.large", "us-east-1b", 0.2)], count=3
    )
    (entry,) = resp["Instances"]
    assert len(set(entry["InstanceIds"])) == 3
    assert {world.instance(i)["SubnetId"] for i in entry["InstanceIds"]} == {world.subnets["us-east-1a"]}
    fleet_instances = world.ec2.describe_fleet_instances(FleetId=resp["FleetId"])["ActiveInstances"]
    assert sorted(i["InstanceId"] for i in fleet_instances) == sorted(entry["InstanceIds"])
    world.ec2.terminate_instances(InstanceIds=entry["InstanceIds"][:1])
    fleet_instances = world.ec2.describe_fleet_instances(FleetId=resp["FleetId"])["ActiveInstances"]
    assert sorted(i["InstanceId"] for i in fleet_instances) == sorted(entry["InstanceIds"][1:])


def test_spot_instance_has_a_spot_request(world):
    world.template()
    resp = world.fleet([world.override("m6i.large", "us-east-1a")], capacity_type="spot")
    entry = resp["Instances"][0]
    assert entry["Lifecycle"] == "spot"
    inst = world.instance(entry["InstanceIds"][0])
    assert inst["InstanceLifecycle"] == "spot"
    request_id = inst["SpotInstanceRequestId"]
    (request,) = world.ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[request_id])["SpotInstanceRequests"]
    assert request["InstanceId"] == inst["InstanceId"]
    assert {"Key": "karpenter.sh/nodepool", "Value": "default"} in request["Tags"]
    assert sorted(g["GroupId"] for g in inst["SecurityGroups"]) == sorted(world.groups)
    assert inst["IamInstanceProfile"]["Arn"] == world.profile_arn


def test_dry_run_launches_nothing(world):
    world.template()
    before = world.instance_count()
    with pytest.raises(ClientError) as err:
        world.fleet([world.override("m6i.large", "us-east-1a")], DryRun=True)
    assert err.value.response["Error"]["Code"] == "DryRunOperation"
    assert world.instance_count() == before


def test_unknown_template_is_an_api_error(world):
    with pytest.raises(ClientError) as err:
        world.fleet([world.override("m6i.large", "us-east-1a")], template="no-such-template")
    assert err.value.response["Error"]["Code"] == "InvalidLaunchTemplateName.NotFoundException"


def test_launch_error_is_reported_and_next_pool_used(world):
    world.template()
    bad = {**world.override("c6i.large", "us-east-1a", priority=0.01), "SubnetId": "subnet-0123456789abcdef0"}
    resp = world.fleet([bad, world.override("m6i.large", "us-east-1b", priority=0.02)])
    assert resp["Instances"][0]["InstanceType"] == "m6i.large"
    (error,) = resp["Errors"]
    assert error["ErrorCode"] == "InvalidSubnetID.NotFound"
    assert error["LaunchTemplateAndOverrides"]["Overrides"]["SubnetId"] == "subnet-0123456789abcdef0"


def test_unknown_instance_profile_launches_nothing(world):
    world.template(IamInstanceProfile={"Name": "no-such-profile"})
    before = world.instance_count()
    resp = world.fleet([world.override("m6i.large", z) for z in ZONES])
    assert resp.get("Instances", []) == []
    assert [e["ErrorCode"] for e in resp["Errors"]] == ["InvalidParameterValue"] * 3
    assert "no-such-profile" in resp["Errors"][0]["ErrorMessage"]
    assert world.instance_count() == before


def test_unemulated_capacity_type(world):
    world.template()
    with pytest.raises(ClientError) as err:
        world.fleet([world.override("m6i.large", "us-east-1a")], capacity_type="capacity-block")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_other_fleet_types_keep_moto_behaviour(world):
    world.template()
    resp = world.ec2.create_fleet(
        Type="request",
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {"LaunchTemplateName": world.current, "Version": "$Latest"},
                "Overrides": [{"InstanceType": "m6i.large"}],
            }
        ],
        TargetCapacitySpecification={"DefaultTargetCapacityType": "on-demand", "TotalTargetCapacity": 1},
    )
    assert "Instances" not in resp and "Errors" not in resp
    fleet = world.ec2.describe_fleets(FleetIds=[resp["FleetId"]])["Fleets"][0]
    assert fleet["Type"] == "request"


# ---------------------------------------------------------------------------------------------------- capacity


def test_refused_pool_is_skipped_and_reported(world, emu):
    world.template()
    emu.CAPACITY.add({"instanceType": "c6i.large", "zone": "us-east-1a", "capacityType": "on-demand"})
    overrides = [world.override("c6i.large", "us-east-1a", 0.085), world.override("c6i.large", "us-east-1b", 0.09)]
    resp = world.fleet(overrides)
    entry = resp["Instances"][0]
    assert entry["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"] == "us-east-1b"
    (error,) = resp["Errors"]
    assert error["ErrorCode"] == "InsufficientInstanceCapacity"
    assert error["Lifecycle"] == "on-demand"
    assert error["LaunchTemplateAndOverrides"]["Overrides"] == overrides[0]
    assert "c6i.large capacity in the Availability Zone you requested (us-east-1a)" in error["ErrorMessage"]


def test_everything_refused_launches_nothing(world, emu):
    world.template()
    for t in ("m6i.large", "c6i.large"):
        emu.CAPACITY.add({"instanceType": t, "capacityType": "spot"})  # every zone
    overrides = [world.override(t, z) for t in ("m6i.large", "c6i.large") for z in ZONES]
    before = world.instance_count()
    resp = world.fleet(overrides, capacity_type="spot", count=2)
    assert resp.get("Instances", []) == []
    assert len(resp["Errors"]) == len(overrides)
    assert {e["ErrorCode"] for e in resp["Errors"]} == {"InsufficientInstanceCapacity"}
    assert {e["Lifecycle"] for e in resp["Errors"]} == {"spot"}
    reported = {
        (
            e["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"],
            e["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"],
        )
        for e in resp["Errors"]
    }
    assert reported == {(o["InstanceType"], o["AvailabilityZone"]) for o in overrides}
    assert world.instance_count() == before


def test_spot_and_on_demand_are_independent(world, emu):
    world.template()
    emu.CAPACITY.add({"instanceType": "m6i.large", "zone": "us-east-1a", "capacityType": "spot"})
    overrides = [world.override("m6i.large", "us-east-1a")]
    spot = world.fleet(overrides, capacity_type="spot")
    assert spot.get("Instances", []) == [] and spot["Errors"][0]["ErrorCode"] == "InsufficientInstanceCapacity"
    on_demand = world.fleet(overrides)
    assert on_demand["Errors"] == [] and on_demand["Instances"][0]["Lifecycle"] == "on-demand"
    emu.CAPACITY.clear()
    assert world.fleet(overrides, capacity_type="spot")["Errors"] == []


def test_capacity_rules(emu):
    rules = emu.CapacityRules()
    rules.add({"instanceType": "m6i.large", "capacityType": "spot"})
    rules.add({"instanceType": "m6i.large", "capacityType": "spot"})  # idempotent
    rules.add({"instanceType": "c6i.large", "zone": "us-east-1b", "capacityType": "on-demand"})
    assert rules.rules() == [
        {"instanceType": "m6i.large", "zone": None, "capacityType": "spot"},
        {"instanceType": "c6i.large", "zone": "us-east-1b", "capacityType": "on-demand"},
    ]
    assert rules.refuses("m6i.large", "us-east-1f", "spot")
    assert not rules.refuses("m6i.large", "us-east-1f", "on-demand")
    assert rules.refuses("c6i.large", "us-east-1b", "on-demand")
    assert not rules.refuses("c6i.large", "us-east-1a", "on-demand")
    assert rules.remove({"instanceType": "m6i.large", "capacityType": "spot"})
    assert not rules.remove({"instanceType": "m6i.large", "capacityType": "spot"})
    rules.clear()
    assert rules.rules() == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"instanceType": "m6i.huge", "capacityType": "spot"}, "not an EC2 instance type"),
        ({"instanceType": "m6i.large", "capacityType": "reserved"}, "capacityType must be one of"),
        ({"instanceType": "m6i.large", "zone": "mars-1a", "capacityType": "spot"}, "not an availability zone"),
        ({"instanceType": "m6i.large", "capacityType": "spot", "region": "x"}, "unknown keys"),
        (["m6i.large"], "JSON object"),
    ],
)
def test_capacity_rule_validation(emu, rule, message):
    with pytest.raises(ValueError, match=message):
        emu.CapacityRules().add(rule)


# ---------------------------------------------------------------------------------------------------- prices


# the families the estimate for unlisted types was fitted on (see ec2_emulation's docstring)
FITTED = tuple(
    f"{fam}.{size}" for fam in ("c6i", "m6i", "r6i", "c7i", "m7i", "r7i") for size in ("large", "2xlarge", "8xlarge")
)


def test_on_demand_prices(emu):
    # AWS's list price (the table Karpenter generates and the collection ships) for every type it has
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    lst = emu._list_prices()
    assert len(lst) > 800 and emu.on_demand_price("t3a.nano") == lst["t3a.nano"] == 0.0047
    assert emu.on_demand_price("m5.large") == lst["m5.large"] == 0.096
    assert all(emu.on_demand_price(name) == price for name, price in lst.items())
    assert emu.on_demand_price("no-such.type") is None
    # types newer than the list: the estimate, which is near the list prices of the types it was fitted on
    for name in FITTED:
        assert emu.estimated_price(INSTANCE_TYPES[name]) == pytest.approx(lst[name], rel=0.25), name
    unlisted = [t for t in INSTANCE_TYPES if t not in lst]
    assert unlisted and all(emu.on_demand_price(t) > 0 for t in unlisted)


def test_unlisted_size_of_a_listed_family_scales_with_vcpus(emu, monkeypatch):
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    lst = dict(emu._list_prices())
    del lst["m6i.4xlarge"]  # as if moto knew it before the list did
    monkeypatch.setattr(emu, "_list_prices", lambda: lst)
    emu._family_price_per_vcpu.cache_clear()
    try:
        assert INSTANCE_TYPES["m6i.4xlarge"]["VCpuInfo"]["DefaultVCpus"] == 16
        assert emu.on_demand_price("m6i.4xlarge") == pytest.approx(16 * lst["m6i.large"] / 2)
    finally:
        emu._family_price_per_vcpu.cache_clear()


def test_every_offered_type_has_both_prices_and_spot_is_cheaper(emu):
    """Karpenter drops spot offerings dearer than on-demand: the emulator must never quote one, for any type moto
    offers in any zone of the region."""
    from moto.ec2.models.instance_types import INSTANCE_TYPE_OFFERINGS, INSTANCE_TYPES

    offered = {(o["InstanceType"], o["Location"]) for o in INSTANCE_TYPE_OFFERINGS["availability-zone"][REGION]}
    assert len({t for t, _z in offered}) > 800
    for name, zone in offered:
        od, spot = emu.on_demand_price(name), emu.spot_price(name, zone)
        assert od is not None and spot is not None, (name, zone)
        assert 0 < spot < od, (name, zone, spot, od)
        assert emu.price(name, zone, "on-demand") == od and emu.price(name, zone, "spot") == spot
    for name in INSTANCE_TYPES:
        for zone in ZONES:
            assert emu.spot_price(name, zone) < emu.on_demand_price(name), (name, zone)


def test_spot_prices_are_a_deterministic_discount(emu):
    for name in ("m6i.large", "c7g.4xlarge", "m5.2xlarge", "p4d.24xlarge"):
        fractions = {z: emu.spot_price(name, z) / emu.on_demand_price(name) for z in ZONES}
        assert all(0.30 - 1e-4 <= f <= 0.45 + 1e-4 for f in fractions.values()), fractions
        assert len({round(f, 3) for f in fractions.values()}) > 1  # zones differ
        assert emu.spot_price(name, "us-east-1a") == emu.spot_price(name, "us-east-1a")
    values = {emu.spot_fraction(n, z) for n in FITTED for z in ZONES}
    assert min(values) >= 0.30 and max(values) <= 0.45 and len(values) > 20


def test_spot_fractions_are_the_same_in_another_process(emu):
    """Not Python's per-process salted hash: a fresh interpreter with another hash seed gets the same ratios."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import ec2_emulation as e; "
        "print(json.dumps([e.spot_fraction(n, z) for n in sys.argv[2].split(',') for z in sys.argv[3].split(',')]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(SANDBOX), ",".join(FITTED), ",".join(ZONES)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONHASHSEED="12345"),
    )
    assert json.loads(out.stdout) == [emu.spot_fraction(n, z) for n in FITTED for z in ZONES]


def history(ec2, **kwargs) -> list[dict]:
    out, token = [], None
    while True:
        page = ec2.describe_spot_price_history(**kwargs, **({"NextToken": token} if token else {}))
        out += page["SpotPriceHistory"]
        token = page.get("NextToken")
        if not token:
            return out


def test_spot_price_history_as_karpenter_reads_it(world, emu):
    from moto.ec2.models.instance_types import INSTANCE_TYPE_OFFERINGS

    records = history(
        world.ec2, ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"], MaxResults=2000
    )  # pkg/providers/pricing UpdateSpotPricing
    offered = {(o["InstanceType"], o["Location"]) for o in INSTANCE_TYPE_OFFERINGS["availability-zone"][REGION]}
    assert {(r["InstanceType"], r["AvailabilityZone"]) for r in records} == offered
    assert len(records) == len(offered)
    for r in records[:: max(1, len(records) // 50)]:
        assert r["ProductDescription"] == "Linux/UNIX"
        assert float(r["SpotPrice"]) == pytest.approx(
            emu.spot_price(r["InstanceType"], r["AvailabilityZone"]), abs=1e-6
        )
        assert r["Timestamp"].year >= 2026
    big = next(r for r in records if r["InstanceType"] == "m6i.32xlarge")
    small = next(
        r for r in records if r["InstanceType"] == "m6i.large" and r["AvailabilityZone"] == big["AvailabilityZone"]
    )
    assert float(big["SpotPrice"]) > 10 * float(small["SpotPrice"])


def test_spot_price_history_filters(world):
    ec2 = world.ec2
    records = history(ec2, InstanceTypes=["m6i.large", "c7g.xlarge"], AvailabilityZone="us-east-1b")
    assert sorted((r["InstanceType"], r["AvailabilityZone"]) for r in records) == [
        ("c7g.xlarge", "us-east-1b"),
        ("m6i.large", "us-east-1b"),
    ]
    records = history(
        ec2,
        Filters=[
            {"Name": "instance-type", "Values": ["m6i.*"]},
            {"Name": "availability-zone", "Values": ["us-east-1c"]},
        ],
    )
    assert records and all(
        r["InstanceType"].startswith("m6i.") and r["AvailabilityZone"] == "us-east-1c" for r in records
    )
    assert history(ec2, InstanceTypes=["m6i.large"], ProductDescriptions=["Windows"]) == []
    vpc = history(ec2, InstanceTypes=["m6i.large"], ProductDescriptions=["Linux/UNIX (Amazon VPC)"])
    assert vpc and {r["ProductDescription"] for r in vpc} == {"Linux/UNIX (Amazon VPC)"}
    assert (
        history(ec2, InstanceTypes=["m6i.large"], Filters=[{"Name": "product-description", "Values": ["Windows*"]}])
        == []
    )
    with pytest.raises(ClientError) as err:
        ec2.describe_spot_price_history(Filters=[{"Name": "spot-price", "Values": ["0.1"]}])
    assert err.value.response["Error"]["Code"] == "InvalidFilter"


def test_spot_price_history_pages(world):
    ec2 = world.ec2
    kwargs = {"Filters": [{"Name": "instance-type", "Values": ["m6i.*", "c6i.*"]}]}
    everything = ec2.describe_spot_price_history(**kwargs, MaxResults=5000)
    assert "NextToken" not in everything
    first = ec2.describe_spot_price_history(**kwargs, MaxResults=7)
    assert len(first["SpotPriceHistory"]) == 7 and first["NextToken"]
    paged = history(ec2, **kwargs, MaxResults=7)
    assert paged == everything["SpotPriceHistory"]
    assert len(paged) > 7 * 3
    default = ec2.describe_spot_price_history()
    assert len(default["SpotPriceHistory"]) == 1000 and default["NextToken"]
    with pytest.raises(ClientError) as err:
        ec2.describe_spot_price_history(NextToken="not-a-token")
    assert err.value.response["Error"]["Code"] == "InvalidNextToken"


def test_weighted_capacity_and_targets(world):
    world.template()
    resp = world.ec2.create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {"LaunchTemplateName": world.current, "Version": "$Latest"},
                "Overrides": [{**world.override("m6i.xlarge", "us-east-1a", 1), "WeightedCapacity": 2.0}],
            }
        ],
        TargetCapacitySpecification={
            "TotalTargetCapacity": 5,
            "OnDemandTargetCapacity": 1,
            "DefaultTargetCapacityType": "spot",
        },
    )
    by_lifecycle = {e["Lifecycle"]: len(e["InstanceIds"]) for e in resp["Instances"]}
    assert by_lifecycle == {"on-demand": math.ceil(1 / 2), "spot": math.ceil(4 / 2)}


def test_spot_max_price_below_the_spot_price(world, emu):
    world.template()
    price = emu.spot_price("m6i.large", "us-east-1a")
    low = {**world.override("m6i.large", "us-east-1a", 0.01), "MaxPrice": f"{price / 2:.6f}"}
    high = {**world.override("m6i.large", "us-east-1b", 0.02), "MaxPrice": "1.0"}
    resp = world.fleet([low, high], capacity_type="spot")
    assert [e["ErrorCode"] for e in resp["Errors"]] == ["SpotMaxPriceTooLow"]
    assert resp["Instances"][0]["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"] == "us-east-1b"
    assert world.fleet([low], capacity_type="on-demand")["Errors"] == []  # MaxPrice is a spot limit
