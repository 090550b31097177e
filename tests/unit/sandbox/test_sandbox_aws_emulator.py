"""sandbox/aws_emulator.py: moto on 127.0.0.1 with EKS AMI SSM parameters and Cost Explorer seeding."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest

MINORS = [f"1.{m}" for m in range(30, 37)]


def client(emulator, service, region="us-east-1"):
    return boto3.client(
        service,
        endpoint_url=emulator["endpoint"],
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_ready_file(emulator):
    assert emulator["host"] == "127.0.0.1"
    assert emulator["endpoint"] == f"http://127.0.0.1:{emulator['port']}"
    assert int(emulator["pidfile"].read_text()) == emulator["proc"].pid == emulator["pid"]


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_eks_ami_parameters(emulator, minor, arch):
    ssm = client(emulator, "ssm")
    al2023 = f"/aws/service/eks/optimized-ami/{minor}/amazon-linux-2023/{arch}/standard/recommended/image_id"
    bottlerocket = f"/aws/service/bottlerocket/aws-k8s-{minor}/{arch}/latest/image_id"
    values = [ssm.get_parameter(Name=n)["Parameter"]["Value"] for n in (al2023, bottlerocket)]
    assert all(v.startswith("ami-") and len(v) == 21 for v in values)
    assert values[0] != values[1]


def test_seeded_ami_is_an_image(emulator):
    ssm, ec2 = client(emulator, "ssm"), client(emulator, "ec2")
    name = "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/recommended/image_id"
    ami = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert image["Architecture"] == "arm64" and image["State"] == "available"
    assert "1.34" in image["Name"]


def test_other_region_seeded_on_first_use(emulator):
    ssm = client(emulator, "ssm", region="eu-west-1")
    name = "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id"
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"].startswith("ami-")


def test_managed_policy_attach(emulator):
    iam = client(emulator, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName="sandbox-eks-cluster", AssumeRolePolicyDocument=json.dumps(trust))
    arn = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    iam.attach_role_policy(RoleName="sandbox-eks-cluster", PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName="sandbox-eks-cluster")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]


def test_cost_explorer_seeding(emulator, aws_emulator_mod):
    result = {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"},
                "Total": {"UnblendedCost": {"Amount": "1234.56", "Unit": "USD"}},
                "Groups": [],
                "Estimated": False,
            }
        ]
    }
    aws_emulator_mod.seed_cost_explorer(emulator["endpoint"], [result])
    ce = client(emulator, "ce")
    got = ce.get_cost_and_usage(
        TimePeriod={"Start": "2026-10-01", "End": "2026-11-01"}, Granularity="MONTHLY", Metrics=["UnblendedCost"]
    )
    assert got["ResultsByTime"] == result["ResultsByTime"]


def test_cost_explorer_seed_refuses_non_loopback(aws_emulator_mod):
    with pytest.raises(ValueError, match="non-loopback"):
        aws_emulator_mod.seed_cost_explorer("http://192.0.2.10:5055", [])  # rejected before any traffic


def test_seeding_survives_moto_reset(emulator):
    req = urllib.request.Request(emulator["endpoint"] + "/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    name = "/aws/service/bottlerocket/aws-k8s-1.36/arm64/latest/image_id"
    assert client(emulator, "ssm").get_parameter(Name=name)["Parameter"]["Value"].startswith("ami-")


def _listeners(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            addr, hexport = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                found.append(addr)
    return found


def test_listens_on_loopback_only(emulator):
    listeners = _listeners(emulator["port"])
    assert listeners == ["0100007F"], listeners  # 127.0.0.1 in /proc/net/tcp byte order, nothing on 0.0.0.0/::


def test_sigterm_stops_and_cleans_up(emulator):
    # Runs last in this module (tests run in file order): stop the emulator the fixture started.
    proc = emulator["proc"]
    proc.terminate()
    assert proc.wait(timeout=20) == 0
    assert not emulator["ready_file"].exists()
    assert not emulator["pidfile"].exists()
    assert _listeners(emulator["port"]) == []


def test_refuses_non_loopback_bind(aws_emulator_mod):
    with pytest.raises(ValueError, match="non-loopback"):
        aws_emulator_mod.Emulator(port=0, host="0.0.0.0")


def test_port_in_use_fails_fast(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        script = Path(__file__).resolve().parents[3] / "sandbox" / "aws_emulator.py"
        r = subprocess.run(
            [sys.executable, str(script), "--port", str(port), "--ready-file", str(tmp_path / "ready")],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert not (tmp_path / "ready").exists()


def test_ami_catalog_releases(aws_emulator_mod):
    m = aws_emulator_mod
    base_params, base_amis = m.eks_ami_catalog("us-east-1")
    recommended = "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/arm64/nvidia/recommended"
    # the base release keeps the ids of earlier versions of the emulator: sha256("<region>:<recommended path>")
    assert base_params[f"{recommended}/image_id"] == m._ami_id("us-east-1", recommended)
    pinned = recommended.replace("recommended", "amazon-eks-node-al2023-arm64-nvidia-1.33-v20260701")
    assert base_params[f"{pinned}/image_id"] == base_params[f"{recommended}/image_id"]
    assert base_params["/aws/service/bottlerocket/aws-k8s-1.33-nvidia/x86_64/1.42.0/image_version"] == "1.42.0"
    later = m.AmiRelease("20261201", "1.42.1")
    params, amis = m.eks_ami_catalog("us-east-1", release=later)
    assert params[f"{recommended}/image_name"] == "amazon-eks-node-al2023-arm64-nvidia-1.33-v20261201"
    assert not {a["ami_id"] for a in amis} & {a["ami_id"] for a in base_amis}
    assert len({a["ami_id"] for a in amis}) == len(amis) == len(base_amis)
    assert params["/aws/service/bottlerocket/aws-k8s-1.33/arm64/latest/image_version"] == "1.42.1"
