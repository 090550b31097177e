"""sandbox/aws_emulator.py as a process: /sandbox-api/ control, AMI drift, reset, interruption messages, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "sandbox" / "aws_emulator.py"
AL2023 = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard"
BOTTLEROCKET = "/aws/service/bottlerocket/aws-k8s-1.34/arm64"


def client(emulator, service):
    return boto3.client(
        service,
        endpoint_url=emulator["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def raw(emulator, method, path, body=None):
    """(status, headers, JSON) of one request, without the helpers' error mapping."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(emulator["endpoint"] + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read() or b"null")


def reset(emulator):
    assert raw(emulator, "POST", "/moto-api/reset")[0] == 200


@pytest.fixture(autouse=True)
def _fresh(request):
    """Each test that talks to the emulator starts from a reset one (no rules, only the base AMI release)."""
    if "emulator" in request.fixturenames:
        reset(request.getfixturevalue("emulator"))


# ---------------------------------------------------------------------------------------------------- capacity


def test_capacity_api(emulator):
    assert raw(emulator, "GET", "/sandbox-api/capacity")[::2] == (200, {"rules": []})
    status, _, body = raw(
        emulator, "POST", "/sandbox-api/capacity", {"instanceType": "m6i.large", "capacityType": "spot"}
    )
    assert status == 201
    assert body["rule"] == {"instanceType": "m6i.large", "zone": None, "capacityType": "spot"}
    rule = {"instanceType": "c6i.large", "zone": "us-east-1b", "capacityType": "on-demand"}
    assert raw(emulator, "POST", "/sandbox-api/capacity", rule)[0] == 201
    assert raw(emulator, "GET", "/sandbox-api/capacity")[2]["rules"][1] == rule
    status, _, body = raw(emulator, "DELETE", "/sandbox-api/capacity", rule)
    assert (status, body["removed"], len(body["rules"])) == (200, True, 1)
    assert raw(emulator, "DELETE", "/sandbox-api/capacity")[2] == {"rules": []}
    assert raw(emulator, "GET", "/sandbox-api/capacity")[2] == {"rules": []}


@pytest.mark.parametrize(
    "body",
    [
        {"instanceType": "m6i.huge", "capacityType": "spot"},
        {"instanceType": "m6i.large", "capacityType": "Spot"},
        {"instanceType": "m6i.large", "zone": "us-east-9z", "capacityType": "spot"},
        b"{not json",
        None,
    ],
)
def test_capacity_api_rejects_bad_rules(emulator, body):
    status, _, answer = raw(emulator, "POST", "/sandbox-api/capacity", body)
    assert status == 400 and answer["error"]
    assert raw(emulator, "GET", "/sandbox-api/capacity")[2] == {"rules": []}


def test_unknown_paths_and_methods(emulator):
    assert raw(emulator, "GET", "/sandbox-api/nothing")[0] == 404
    status, headers, _ = raw(emulator, "PUT", "/sandbox-api/capacity", {})
    assert status == 405 and headers["Allow"] == "GET, POST, DELETE"
    assert raw(emulator, "DELETE", "/sandbox-api/ami-release")[0] == 405


def test_capacity_helpers_and_fleet_over_http(emulator, aws_emulator_mod):
    endpoint = emulator["endpoint"]
    rules = aws_emulator_mod.refuse_capacity(endpoint, "m6i.large", "on-demand", zone="us-east-1a")
    assert rules == [{"instanceType": "m6i.large", "zone": "us-east-1a", "capacityType": "on-demand"}]
    with pytest.raises(ValueError, match="capacityType"):
        aws_emulator_mod.refuse_capacity(endpoint, "m6i.large", "reserved")
    ec2 = client(emulator, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        z: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(("us-east-1a", "us-east-1b"))
    }
    group = ec2.create_security_group(GroupName="nodes", Description="nodes", VpcId=vpc)["GroupId"]
    image = client(emulator, "ssm").get_parameter(Name=f"{AL2023}/recommended/image_id")["Parameter"]["Value"]
    ec2.create_launch_template(
        LaunchTemplateName="karpenter-http",
        LaunchTemplateData={"ImageId": image, "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [group]}]},
    )
    overrides = [
        {"InstanceType": "m6i.large", "SubnetId": subnets[z], "AvailabilityZone": z, "ImageId": image, "Priority": p}
        for z, p in (("us-east-1a", 0.096), ("us-east-1b", 0.097))
    ]
    resp = ec2.create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "karpenter-http", "Version": "$Latest"},
                "Overrides": overrides,
            }
        ],
        TargetCapacitySpecification={"DefaultTargetCapacityType": "on-demand", "TotalTargetCapacity": 1},
    )
    assert [e["ErrorCode"] for e in resp["Errors"]] == ["InsufficientInstanceCapacity"]
    (instance_id,) = resp["Instances"][0]["InstanceIds"]
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [group]
    assert aws_emulator_mod.allow_capacity(endpoint, "m6i.large", "on-demand", zone="us-east-1a") == []
    aws_emulator_mod.refuse_capacity(endpoint, "m6i.large", "spot")
    aws_emulator_mod.clear_capacity_refusals(endpoint)
    assert aws_emulator_mod.capacity_refusals(endpoint) == []


def test_spot_prices_over_http(emulator):
    prices = client(emulator, "ec2").describe_spot_price_history(
        InstanceTypes=["m6i.large", "m6i.8xlarge"], ProductDescriptions=["Linux/UNIX"], AvailabilityZone="us-east-1a"
    )["SpotPriceHistory"]
    by_type = {p["InstanceType"]: float(p["SpotPrice"]) for p in prices}
    assert 0.096 * 0.30 <= by_type["m6i.large"] <= 0.096 * 0.45
    assert by_type["m6i.8xlarge"] == pytest.approx(16 * by_type["m6i.large"], rel=0.5)


def test_reset_clears_rules(emulator, aws_emulator_mod):
    aws_emulator_mod.refuse_capacity(emulator["endpoint"], "m6i.large", "spot")
    reset(emulator)
    assert aws_emulator_mod.capacity_refusals(emulator["endpoint"]) == []


def test_helpers_refuse_non_loopback(aws_emulator_mod):
    for call in (
        lambda: aws_emulator_mod.refuse_capacity("http://192.0.2.10:5055", "m6i.large", "spot"),
        lambda: aws_emulator_mod.capacity_refusals("http://example.com:5055"),
        lambda: aws_emulator_mod.publish_ami_release("http://10.0.0.1:5055", "20261201"),
        lambda: aws_emulator_mod.send_interruption("http://192.0.2.10:5055", "q", "rebalance-recommendation", ["i-1"]),
    ):
        with pytest.raises(ValueError, match="non-loopback"):
            call()


# ---------------------------------------------------------------------------------------------------- AMI drift


def test_ami_release_updates_parameters_in_place(emulator, aws_emulator_mod):
    ssm, ec2 = client(emulator, "ssm"), client(emulator, "ec2")
    before = ssm.get_parameter(Name=f"{AL2023}/recommended/image_id")["Parameter"]
    br_before = ssm.get_parameter(Name=f"{BOTTLEROCKET}/latest/image_id")["Parameter"]["Value"]
    assert before["Version"] == 1

    release = aws_emulator_mod.publish_ami_release(emulator["endpoint"], "20261201")
    assert release["release"] == "20261201" and release["bottlerocketVersion"] == "1.42.1"

    after = ssm.get_parameter(Name=f"{AL2023}/recommended/image_id")["Parameter"]
    assert after["Version"] == 2 and after["Value"] != before["Value"]
    assert ssm.get_parameter(Name=f"{AL2023}/recommended/image_id:1")["Parameter"]["Value"] == before["Value"]
    assert ssm.get_parameter(Name=f"{AL2023}/recommended/release_version")["Parameter"]["Value"] == "1.34.0-20261201"
    pinned = f"{AL2023}/amazon-eks-node-al2023-x86_64-standard-1.34-v"
    assert ssm.get_parameter(Name=f"{pinned}20261201/image_id")["Parameter"]["Value"] == after["Value"]
    assert ssm.get_parameter(Name=f"{pinned}20260701/image_id")["Parameter"]["Value"] == before["Value"]
    br_after = ssm.get_parameter(Name=f"{BOTTLEROCKET}/latest/image_id")["Parameter"]["Value"]
    assert br_after != br_before
    assert ssm.get_parameter(Name=f"{BOTTLEROCKET}/latest/image_version")["Parameter"]["Value"] == "1.42.1"
    assert ssm.get_parameter(Name=f"{BOTTLEROCKET}/1.42.0/image_id")["Parameter"]["Value"] == br_before

    images = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=[before["Value"], after["Value"]])["Images"]}
    assert images[after["Value"]]["Name"] == "amazon-eks-node-al2023-x86_64-standard-1.34-v20261201"
    assert images[after["Value"]]["State"] == "available" and "DeprecationTime" not in images[after["Value"]]
    deprecated = datetime.strptime(images[before["Value"]]["DeprecationTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert deprecated.replace(tzinfo=UTC) <= datetime.now(UTC)

    # a second release without deprecation; the first release stays current-but-one
    aws_emulator_mod.publish_ami_release(emulator["endpoint"], "20270115", "1.43.0", deprecate_previous=False)
    third = ssm.get_parameter(Name=f"{AL2023}/recommended/image_id")["Parameter"]
    assert third["Version"] == 3
    assert "DeprecationTime" not in ec2.describe_images(ImageIds=[after["Value"]])["Images"][0]
    assert ssm.get_parameter(Name=f"{BOTTLEROCKET}/latest/image_version")["Parameter"]["Value"] == "1.43.0"
    releases = aws_emulator_mod.published_ami_releases(emulator["endpoint"])
    assert [r["release"] for r in releases] == ["20260701", "20261201", "20270115"]


def test_ami_release_reaches_regions_created_later(emulator, aws_emulator_mod):
    aws_emulator_mod.publish_ami_release(emulator["endpoint"], "20261201")
    ssm = boto3.client(
        "ssm",
        endpoint_url=emulator["endpoint"],
        region_name="ap-southeast-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    param = ssm.get_parameter(Name=f"{AL2023}/recommended/image_name")["Parameter"]
    assert param["Value"].endswith("-v20261201") and param["Version"] == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"release": "2026-12-01"}, "YYYYMMDD"),
        ({"release": "20260601"}, "not later"),
        ({"release": "20261201", "bottlerocketVersion": "1.42.0"}, "already released"),
        ({"release": "20261201", "bottlerocketVersion": "v2"}, "MAJOR.MINOR.PATCH"),
        ({"release": "20261201", "deprecatePrevious": "yes"}, "true or false"),
        ({"release": "20261201", "arch": "x86_64"}, "body must be"),
    ],
)
def test_ami_release_validation(emulator, body, message):
    status, _, answer = raw(emulator, "POST", "/sandbox-api/ami-release", body)
    assert status == 400 and message in answer["error"]
    assert len(raw(emulator, "GET", "/sandbox-api/ami-release")[2]["releases"]) == 1


def test_reset_forgets_releases(emulator, aws_emulator_mod):
    ssm = client(emulator, "ssm")
    base = ssm.get_parameter(Name=f"{AL2023}/recommended/image_id")["Parameter"]["Value"]
    aws_emulator_mod.publish_ami_release(emulator["endpoint"], "20261201")
    reset(emulator)
    param = ssm.get_parameter(Name=f"{AL2023}/recommended/image_id")["Parameter"]
    assert (param["Value"], param["Version"]) == (base, 1)
    assert [r["release"] for r in aws_emulator_mod.published_ami_releases(emulator["endpoint"])] == ["20260701"]


# ---------------------------------------------------------------------------------------------------- interruptions


def receive(sqs, url, n):
    out = []
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        out += [json.loads(m["Body"]) for m in got]
        if len(out) >= n:
            return out
    raise AssertionError(f"got {len(out)} of {n} messages")


def assert_envelope(event, source, detail_type):
    assert event["version"] == "0"
    assert (event["source"], event["detail-type"]) == (source, detail_type)
    assert event["account"] == "123456789012" and event["region"] == "us-east-1"
    assert datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")  # RFC 3339, what Go's time.Time decodes
    assert len(event["id"]) == 36


@pytest.mark.parametrize(
    ("kind", "kwargs", "source", "detail_type", "detail"),
    [
        (
            "spot-interruption",
            {},
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            {"instance-id": "i-0aaa", "instance-action": "terminate"},
        ),
        ("rebalance-recommendation", {}, "aws.ec2", "EC2 Instance Rebalance Recommendation", {"instance-id": "i-0aaa"}),
        (
            "state-change",
            {"state": "stopping"},
            "aws.ec2",
            "EC2 Instance State-change Notification",
            {"instance-id": "i-0aaa", "state": "stopping"},
        ),
        (
            "capacity-reservation-interruption",
            {"action": "stop"},
            "aws.ec2",
            "EC2 Capacity Reservation Instance Interruption Warning",
            {"instance-id": "i-0aaa", "instance-action": "stop"},
        ),
    ],
)
def test_ec2_interruption_messages(emulator, aws_emulator_mod, kind, kwargs, source, detail_type, detail):
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName="sandbox-interruptions")["QueueUrl"]
    ids = aws_emulator_mod.send_interruption(
        emulator["endpoint"], "sandbox-interruptions", kind, ["i-0aaa", "i-0bbb"], **kwargs
    )
    assert len(ids) == 2
    events = sorted(receive(sqs, url, 2), key=lambda e: e["detail"]["instance-id"])
    for event in events:
        assert_envelope(event, source, detail_type)
    assert events[0]["detail"] == detail
    assert events[1]["detail"]["instance-id"] == "i-0bbb"
    assert events[0]["resources"] == ["arn:aws:ec2:us-east-1:123456789012:instance/i-0aaa"]


def test_scheduled_change_message(emulator, aws_emulator_mod):
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName="sandbox-health")["QueueUrl"]
    aws_emulator_mod.send_interruption(emulator["endpoint"], "sandbox-health", "scheduled-change", ["i-01", "i-02"])
    (event,) = receive(sqs, url, 1)
    assert_envelope(event, "aws.health", "AWS Health Event")
    detail = event["detail"]
    assert (detail["service"], detail["eventTypeCategory"]) == ("EC2", "scheduledChange")  # what the parser accepts
    assert [e["entityValue"] for e in detail["affectedEntities"]] == ["i-01", "i-02"]
    assert detail["eventArn"].startswith("arn:aws:health:us-east-1::event/EC2/")
    assert detail["eventDescription"][0]["language"] == "en_US"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("state-change", ["i-1"]), {}, "state is required"),
        (("spot-interruption", ["i-1"]), {"state": "stopped"}, "only for them"),
        (("state-change", ["i-1"]), {"state": "exploded"}, "state must be one of"),
        (("preemption", ["i-1"]), {}, "kind must be one of"),
        (("rebalance-recommendation", ["node-1"]), {}, "instance ids"),
        (("rebalance-recommendation", []), {}, "instance ids"),
        (("spot-interruption", ["i-1"]), {"action": "reboot"}, "action must be one of"),
    ],
)
def test_interruption_event_validation(aws_emulator_mod, args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        aws_emulator_mod.interruption_events(*args, **kwargs)


def test_interrupt_cli(emulator, tmp_path):
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName="sandbox-cli")["QueueUrl"]
    ready = tmp_path / "ready.json"
    ready.write_text(json.dumps({"endpoint": emulator["endpoint"]}))
    run = [sys.executable, str(SCRIPT), "interrupt"]
    r = subprocess.run(
        [*run, "state-change", "i-0ccc", "--state", "terminated", "--queue", "sandbox-cli", "--ready-file", str(ready)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 1
    (event,) = receive(sqs, url, 1)
    assert event["detail"] == {"instance-id": "i-0ccc", "state": "terminated"}

    r = subprocess.run(
        [*run, "state-change", "i-0ccc", "--queue", "sandbox-cli", "--endpoint", emulator["endpoint"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1 and "state is required" in r.stderr
    r = subprocess.run(
        [*run, "rebalance-recommendation", "i-0ccc", "--queue", "no-such-queue", "--endpoint", emulator["endpoint"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1 and "NonExistentQueue" in r.stderr


# ---------------------------------------------------------------------------------------------------- EKS create delay


def _create_cluster(emulator, name):
    ec2 = client(emulator, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    return client(emulator, "eks").create_cluster(
        name=name, roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": subnets}
    )["cluster"]


def test_eks_clusters_are_active_at_once_by_default(emulator):
    assert raw(emulator, "GET", "/sandbox-api/eks-create-delay")[::2] == (200, {"seconds": 0.0})
    assert _create_cluster(emulator, "quick")["status"] == "ACTIVE"


def test_eks_create_delay_keeps_a_new_cluster_creating(emulator):
    import time

    assert raw(emulator, "POST", "/sandbox-api/eks-create-delay", {"seconds": 2})[::2] == (200, {"seconds": 2.0})
    t0 = time.monotonic()
    assert _create_cluster(emulator, "slow")["status"] == "CREATING"
    eks = client(emulator, "eks")
    assert eks.describe_cluster(name="slow")["cluster"]["status"] == "CREATING"
    with pytest.raises(eks.exceptions.InvalidRequestException):  # as EKS: no node group before ACTIVE
        eks.create_nodegroup(
            clusterName="slow", nodegroupName="ng", nodeRole="arn:aws:iam::123456789012:role/n", subnets=["subnet-1"]
        )
    while eks.describe_cluster(name="slow")["cluster"]["status"] == "CREATING":
        assert time.monotonic() - t0 < 10
        time.sleep(0.2)
    assert time.monotonic() - t0 >= 2
    assert eks.describe_cluster(name="slow")["cluster"]["status"] == "ACTIVE"
    reset(emulator)  # a reset sets the delay back to 0
    assert raw(emulator, "GET", "/sandbox-api/eks-create-delay")[::2] == (200, {"seconds": 0.0})


@pytest.mark.parametrize("body", [None, {"seconds": -1}, {"seconds": 3601}, {"seconds": "5"}, {"secs": 5}])
def test_eks_create_delay_refuses_bad_bodies(emulator, body):
    status, _, answer = raw(emulator, "POST", "/sandbox-api/eks-create-delay", body)
    assert status == 400 and "seconds" in answer["error"]
