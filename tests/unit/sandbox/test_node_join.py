"""sandbox/node_join.py: user data parsing (AL2023 nodeadm, Bottlerocket, AL2 bootstrap.sh), Node capacity and
allocatable, the reconcile loop against moto (in-process) with a recording Node API, and the process end to end
against a moto server and a TLS apiserver stand-in that requires the kubeconfig's client certificate.

The user data fixtures under data/node_join/ are the golden files of the AWS provider's launch template tests
(``pkg/providers/launchtemplate/testdata`` in github.com/aws/karpenter-provider-aws v1.15.0) with their ``%s``
placeholders filled in: what Karpenter really writes into launch templates, alone and merged with users' own.
"""

from __future__ import annotations

import base64
import copy
import gzip
import importlib.util
import json
import math
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import moto
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "sandbox" / "node_join.py"
DATA = Path(__file__).resolve().parent / "data" / "node_join"
REGION = "us-east-1"
CLUSTER = "sandbox"
AMI = "ami-12c6146b"
KARPENTER_TAGS = {
    "karpenter.sh/nodepool": "general",
    "karpenter.k8s.aws/ec2nodeclass": "default",
    "eks:eks-cluster-name": CLUSTER,
    f"kubernetes.io/cluster/{CLUSTER}": "owned",
    "karpenter.sh/nodeclaim": "general-abcde",
}
UNREGISTERED = {"key": "karpenter.sh/unregistered", "effect": "NoExecute"}
KARPENTER_LABELS = {
    "karpenter.k8s.aws/ec2nodeclass": "default",
    "karpenter.sh/capacity-type": "on-demand",
    "karpenter.sh/do-not-sync-taints": "true",
    "karpenter.sh/nodepool": "general",
    "testing/cluster": "unspecified",
}
Mi, Gi = 1024**2, 1024**3


@pytest.fixture(scope="module")
def nj():
    """sandbox/node_join.py as a module (sandbox/ is not a package; it imports its sibling procfiles.py)."""
    name = "karpenter_sandbox_node_join"
    if name in sys.modules:
        return sys.modules[name]
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def moto_types() -> dict[str, dict]:
    """moto's DescribeInstanceTypes data (what the emulator serves)."""
    path = Path(moto.__file__).parent / "ec2" / "resources" / "instance_types.json.gz"
    return json.loads(gzip.decompress(path.read_bytes()))


def fixture(name: str) -> str:
    return (DATA / name).read_text()


def q(nj, value: str) -> Fraction:
    return nj.parse_quantity(value)


# ---------------------------------------------------------------------------------------------------------------
# User data


def test_al2023_karpenter_nodeconfig(nj):
    boot = nj.parse_user_data(fixture("al2023_karpenter.mime"))
    assert boot.family == "al2023"
    assert boot.labels == KARPENTER_LABELS
    assert [t.to_dict() for t in boot.taints] == [UNREGISTERED]
    assert boot.max_pods == 110
    assert boot.notes == []


def test_al2023_merged_with_users_mime_later_nodeconfig_wins(nj):
    # The user's NodeConfig says maxPods 42, Karpenter's (last) 110: nodeadm's merge lets the later one win.
    text = fixture("al2023_merged.mime")
    assert "maxPods: 42" in text and 'echo "Hello, AL2023!"' in text
    boot = nj.parse_user_data(text)
    assert boot.family == "al2023"
    assert boot.max_pods == 110
    assert boot.labels == KARPENTER_LABELS
    assert [str(t) for t in boot.taints] == ["karpenter.sh/unregistered:NoExecute"]


def _mime(*parts: tuple[str, str]) -> str:
    out = ['MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="//"\n']
    for ctype, content in parts:
        out.append(f"--//\nContent-Type: {ctype}\n\n{content}")
    out.append("--//--\n")
    return "\n".join(out)


USER_NODECONFIG = """apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  kubelet:
    config:
      maxPods: 42
      kubeReserved:
        cpu: 250m
      systemReserved:
        memory: 300Mi
      evictionHard:
        memory.available: 5%
    flags:
    - --node-labels=team=payments,karpenter.sh/capacity-type=spot
"""
KARPENTER_NODECONFIG = """# Karpenter Generated NodeConfig
apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
metadata: {}
spec:
  cluster:
    apiServerEndpoint: https://127.0.0.1:6443
    cidr: 10.96.0.0/16
    name: sandbox
  kubelet:
    config:
      kubeReserved:
        memory: 1Gi
      registerWithTaints:
      - effect: NoExecute
        key: karpenter.sh/unregistered
      - effect: NoSchedule
        key: example.com/gpu
        value: "true"
    flags:
    - --node-labels="karpenter.sh/capacity-type=on-demand,karpenter.sh/nodepool=general"
"""


def test_al2023_user_kubelet_settings_merge_like_nodeadm(nj):
    boot = nj.parse_user_data(
        _mime(("application/node.eks.aws", USER_NODECONFIG), ("application/node.eks.aws", KARPENTER_NODECONFIG))
    )
    assert boot.max_pods == 42  # only the user's NodeConfig sets it
    assert boot.kube_reserved == {"cpu": "250m", "memory": "1Gi"}  # kubeReserved maps deep-merged
    assert boot.system_reserved == {"memory": "300Mi"}
    assert boot.eviction_hard == {"memory.available": "5%"}
    assert not boot.kube_reserved_replaced and not boot.eviction_hard_replaced
    # --node-labels flags are appended in order: Karpenter's later value wins for the same key
    assert boot.labels == {
        "team": "payments",
        "karpenter.sh/capacity-type": "on-demand",
        "karpenter.sh/nodepool": "general",
    }
    assert [t.to_dict() for t in boot.taints] == [
        UNREGISTERED,
        {"key": "example.com/gpu", "value": "true", "effect": "NoSchedule"},
    ]


def test_al2023_kubelet_flags_win_over_config(nj):
    flags = """apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  kubelet:
    flags:
    - --register-with-taints=dedicated=infra:NoSchedule
    - --max-pods 17
    - --kube-reserved=cpu=1
    - --eviction-hard=memory.available<200Mi
"""
    boot = nj.parse_user_data(
        _mime(("application/node.eks.aws", KARPENTER_NODECONFIG), ("application/node.eks.aws", flags))
    )
    assert [str(t) for t in boot.taints] == ["dedicated=infra:NoSchedule"]
    assert boot.max_pods == 17
    assert boot.kube_reserved == {"cpu": "1"} and boot.kube_reserved_replaced
    assert boot.eviction_hard == {"memory.available": "200Mi"} and boot.eviction_hard_replaced


def test_bare_nodeconfig_yaml_is_al2023(nj):
    boot = nj.parse_user_data(KARPENTER_NODECONFIG)
    assert boot.family == "al2023"
    assert boot.labels == {"karpenter.sh/capacity-type": "on-demand", "karpenter.sh/nodepool": "general"}


def test_al2_bootstrap_sh_merged_with_users_script(nj):
    text = fixture("al2_merged.mime")
    assert "Running custom user data script" in text
    boot = nj.parse_user_data(text)
    assert boot.family == "al2"
    assert boot.labels == KARPENTER_LABELS
    assert [t.to_dict() for t in boot.taints] == [UNREGISTERED]
    assert boot.max_pods == 110
    assert boot.use_max_pods is False


def test_al2_plain_script_without_max_pods_uses_eni_limit(nj, moto_types):
    script = (
        "#!/bin/bash -xe\n/etc/eks/bootstrap.sh 'sandbox' --apiserver-endpoint 'https://127.0.0.1:6443' \\\n"
        '--kubelet-extra-args \'--node-labels="a=b" --register-with-taints="karpenter.sh/unregistered:NoExecute,x=y:NoSchedule"\'\n'
    )
    boot = nj.parse_user_data(script)
    assert boot.family == "al2" and boot.use_max_pods
    assert boot.max_pods is None
    assert boot.labels == {"a": "b"}
    assert [str(t) for t in boot.taints] == ["karpenter.sh/unregistered:NoExecute", "x=y:NoSchedule"]
    cap, _ = nj.node_resources(moto_types["m5.large"], boot)
    assert cap["pods"] == "29"  # 3 ENIs * (10 - 1) + 2
    # --use-max-pods false without --max-pods: kubelet's default 110
    boot = nj.parse_user_data(script.replace("'sandbox'", "'sandbox' --use-max-pods false"))
    assert nj.node_resources(moto_types["m5.large"], boot)[0]["pods"] == "110"


def test_bottlerocket_merged_toml(nj):
    boot = nj.parse_user_data(fixture("bottlerocket_merged.toml"))
    assert boot.family == "bottlerocket"
    assert boot.labels == KARPENTER_LABELS | {"custom-node-label": "custom"}
    assert sorted(str(t) for t in boot.taints) == [
        "baz=bin:NoExecute",
        "foo=bar:NoExecute",
        "karpenter.sh/unregistered:NoExecute",
    ]
    assert boot.max_pods == 110
    assert boot.eviction_hard == {"memory.available": "12%"} and boot.eviction_hard_replaced


def test_custom_user_data_without_unregistered_taint(nj):
    custom = """apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  kubelet:
    flags:
    - --node-labels=role=custom
"""
    boot = nj.parse_user_data(
        _mime(
            ("application/node.eks.aws", custom), ('text/x-shellscript; charset="us-ascii"', "#!/bin/bash\necho hi\n")
        )
    )
    assert boot.family == "al2023"
    assert boot.taints is None
    assert boot.labels == {"role": "custom"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n",
        "#!/bin/bash\necho no kubelet here\n",
        "just some text",
        _mime(('text/x-shellscript; charset="us-ascii"', "#!/bin/bash\ntrue\n")),
    ],
)
def test_unknown_user_data_gives_cloud_labels_only(nj, text):
    boot = nj.parse_user_data(text)
    assert boot.family == "unknown"
    assert boot.labels == {} and boot.taints is None and boot.max_pods is None
    assert boot.notes, "the reason must be logged"


@pytest.mark.parametrize(
    "text, fragment",
    [
        (_mime(("application/node.eks.aws", "apiVersion: [unclosed")), "not YAML"),
        (KARPENTER_NODECONFIG.replace("NoExecute", "NoRun"), "invalid effect"),
        (
            "#!/bin/bash\n/etc/eks/bootstrap.sh sandbox --kubelet-extra-args '--register-with-taints=oops'\n",
            "invalid taint",
        ),
        (KARPENTER_NODECONFIG.replace("memory: 1Gi", "memory: lots"), None),  # caught when the Node is built
        ("[settings.kubernetes.node-taints]\nfoo = ['NoSchedule']\n", "value:Effect"),
        (KARPENTER_NODECONFIG.replace("node.eks.aws/v1alpha1", "node.eks.aws/v9"), "apiVersion"),
    ],
)
def test_user_data_kubelet_would_refuse(nj, moto_types, text, fragment):
    with pytest.raises(nj.UserDataError) as err:
        boot = nj.parse_user_data(text)
        nj.node_resources(moto_types["m5.large"], boot)
    if fragment:
        assert fragment in str(err.value)


def test_kubelet_label_restrictions(nj):
    nj.check_kubelet_labels(
        {"node.kubernetes.io/exclude-from-external-load-balancers": "true", "team": "a", "example.com/x": "y"}
    )
    nj.check_kubelet_labels({"kubernetes.io/arch": "amd64", "foo.kubelet.kubernetes.io/bar": "1"})
    with pytest.raises(nj.UserDataError, match="node-role.kubernetes.io/worker"):
        nj.check_kubelet_labels({"node-role.kubernetes.io/worker": ""})
    with pytest.raises(nj.UserDataError):
        nj.check_kubelet_labels({"k8s.io/anything": "x"})


def test_decode_user_data(nj):
    text = fixture("al2023_karpenter.mime")
    once = base64.b64encode(text.encode()).decode()
    assert nj.decode_user_data(once) == text
    assert nj.decode_user_data(base64.b64encode(once.encode()).decode()) == text  # encoded twice
    assert nj.decode_user_data(base64.b64encode(base64.encodebytes(text.encode())).decode()) == text
    assert nj.decode_user_data(base64.b64encode(gzip.compress(text.encode())).decode()) == text
    assert nj.decode_user_data(None) == "" and nj.decode_user_data("") == ""
    plain = "#!/bin/bash\necho hi\n"
    assert nj.decode_user_data(base64.b64encode(plain.encode())) == plain
    assert nj.decode_user_data(plain) == plain  # stored without base64: taken as is
    wrapped = base64.encodebytes(text.encode()).decode()  # with line breaks every 76 characters
    assert "\n" in wrapped and nj.decode_user_data(wrapped) == text


def test_taint_and_map_syntax(nj):
    assert [t.to_dict() for t in nj.parse_taints("a=b:NoSchedule,c:NoExecute")] == [
        {"key": "a", "value": "b", "effect": "NoSchedule"},
        {"key": "c", "effect": "NoExecute"},
    ]
    assert nj.parse_map("memory.available<100Mi,nodefs.available<10%", "<") == {
        "memory.available": "100Mi",
        "nodefs.available": "10%",
    }
    with pytest.raises(nj.UserDataError):
        nj.parse_taints("a=b:Sometimes")


# ---------------------------------------------------------------------------------------------------------------
# Capacity and allocatable


def test_quantities(nj):
    assert q(nj, "100Mi") == 100 * Mi
    assert q(nj, "1.5Gi") == Gi * 3 // 2
    assert q(nj, "250m") == Fraction(1, 4)
    assert q(nj, "2") == 2 and q(nj, "1e3") == 1000 and q(nj, "5G") == 5 * 10**9
    with pytest.raises(nj.UserDataError):
        q(nj, "12 apples")
    assert nj.format_quantity(Fraction(1930, 1000), "cpu") == "1930m"
    assert nj.format_quantity(7577 * Mi, "memory") == f"{7577 * 1024}Ki"


def test_m5_large_al2023_defaults(nj, moto_types):
    cap, alloc = nj.node_resources(
        moto_types["m5.large"],
        nj.parse_user_data(KARPENTER_NODECONFIG.replace("      kubeReserved:\n        memory: 1Gi\n", "")),
    )
    # 8192 MiB less ceil(7.5 %) = 615 MiB; 29 ENI-limited pods; kube-reserved 11*29+255 = 574 MiB, 70m CPU, 1Gi disk;
    # eviction 100Mi memory and 10 % of the 20Gi root volume.
    assert q(nj, cap["memory"]) == 7577 * Mi
    assert cap["cpu"] == "2" and cap["pods"] == "29"
    assert q(nj, cap["ephemeral-storage"]) == 20 * Gi
    assert q(nj, alloc["cpu"]) == Fraction(1930, 1000)
    assert q(nj, alloc["memory"]) == (7577 - 574 - 100) * Mi
    assert q(nj, alloc["ephemeral-storage"]) == 17 * Gi
    assert alloc["pods"] == "29"
    assert set(cap) == {"cpu", "memory", "ephemeral-storage", "pods"}


def test_graviton_memory_and_arch(nj, moto_types):
    it = moto_types["m6g.large"]
    assert nj.kube_arch(it) == "arm64"
    assert nj.memory_capacity_bytes(it) == (8128 - math.ceil(8128 * 0.075)) * Mi
    assert nj.kube_arch(moto_types["t2.micro"]) == "amd64"  # i386 first, x86_64 known


def test_user_reservations_and_eviction(nj, moto_types):
    boot = nj.parse_user_data(
        _mime(("application/node.eks.aws", USER_NODECONFIG), ("application/node.eks.aws", KARPENTER_NODECONFIG))
    )
    cap, alloc = nj.node_resources(moto_types["m5.large"], boot)
    memory = q(nj, cap["memory"])
    assert cap["pods"] == "42"
    assert q(nj, alloc["cpu"]) == 2 - Fraction(250, 1000)
    assert q(nj, alloc["memory"]) == memory - Gi - 300 * Mi - math.ceil(float(memory) / 100 * 5)
    assert q(nj, alloc["ephemeral-storage"]) == 20 * Gi - Gi - 2 * Gi  # nodefs default kept (merged)


def test_bottlerocket_reserves_memory_for_its_max_pods(nj, moto_types):
    boot = nj.parse_user_data(fixture("bottlerocket_merged.toml"))
    cap, alloc = nj.node_resources(moto_types["m5.large"], boot)
    memory = q(nj, cap["memory"])
    assert cap["pods"] == "110"
    assert q(nj, alloc["memory"]) == memory - (11 * 110 + 255) * Mi - math.ceil(float(memory) / 100 * 12)
    assert q(nj, alloc["ephemeral-storage"]) == 19 * Gi  # its eviction-hard table has no nodefs threshold


def test_pods_per_core_caps_pods(nj, moto_types):
    boot = nj.parse_user_data(
        KARPENTER_NODECONFIG.replace("      kubeReserved:", "      podsPerCore: 4\n      kubeReserved:")
    )
    assert nj.node_resources(moto_types["m5.large"], boot)[0]["pods"] == "8"


def test_extended_resources(nj, moto_types):
    assert nj.extended_resources(moto_types["p4d.24xlarge"]) == {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 4}
    assert nj.extended_resources(moto_types["inf1.xlarge"]) == {
        "aws.amazon.com/neuron": 1,
        "aws.amazon.com/neuroncore": 4,
    }
    assert nj.extended_resources(moto_types["m5.large"]) == {}
    cap, alloc = nj.node_resources(moto_types["p4d.24xlarge"], nj.BootConfig(family="al2023"))
    assert cap["nvidia.com/gpu"] == alloc["nvidia.com/gpu"] == "8"
    assert cap["pods"] == "737"  # 15 ENIs on the default card * 49 + 2


def karpenter_expected(it: dict, family: str, max_pods: int | None = None) -> dict[str, float]:
    """Karpenter v1.15's allocatable for an instance type (pkg/providers/instancetype/types.go), written out anew."""
    vcpus = it["VCpuInfo"]["DefaultVCpus"]
    mib = it["MemoryInfo"]["SizeInMiB"] - (64 if it["ProcessorInfo"]["SupportedArchitectures"][0] == "arm64" else 0)
    memory = (mib - math.ceil(mib * Mi * 0.075 / Mi)) * Mi
    net = it["NetworkInfo"]
    enis = net["NetworkCards"][net["DefaultNetworkCardIndex"]]["MaximumNetworkInterfaces"]
    eni_pods = enis * (net["Ipv4AddressesPerInterface"] - 1) + 2 if enis else 0
    pods = max_pods if max_pods is not None else eni_pods
    overhead_pods = pods if family == "bottlerocket" else eni_pods
    cpu_reserved = 0.0
    milli = vcpus * 1000
    for start, end, pct in ((0, 1000, 0.06), (1000, 2000, 0.01), (2000, 4000, 0.005), (4000, 1 << 31, 0.0025)):
        if milli >= start:
            cpu_reserved += int((min(milli, end) - start) * pct)
    storage = 20 * Gi
    return {
        "cpu": vcpus - cpu_reserved / 1000,
        "memory": memory - (11 * overhead_pods + 255) * Mi - 100 * Mi,
        "ephemeral-storage": storage - Gi - math.ceil(storage / 100 * 10),
        "pods": pods,
    }


@pytest.mark.parametrize(
    "family, max_pods",
    [("al2023", None), ("al2023", 110), ("bottlerocket", None), ("bottlerocket", 110), ("al2", None)],
)
def test_allocatable_matches_karpenter_for_every_moto_type(nj, moto_types, family, max_pods):
    """Pods Karpenter packs onto a node must fit: with its defaults, allocatable equals what it expects."""
    checked = 0
    for name, it in moto_types.items():
        net = it.get("NetworkInfo") or {}
        if not net.get("NetworkCards") or not {"x86_64", "arm64"} & set(it["ProcessorInfo"]["SupportedArchitectures"]):
            continue
        _, alloc = nj.node_resources(it, nj.BootConfig(family=family, max_pods=max_pods))
        want = karpenter_expected(it, family, max_pods)
        for res, value in want.items():
            got = float(q(nj, alloc[res]))
            assert got == pytest.approx(max(value, 0), abs=1e-9), (name, res, got, value)
        checked += 1
    assert checked > 1000


# ---------------------------------------------------------------------------------------------------------------
# Reconcile against moto (in-process) with a recording Node API


class FakeNodes:
    """The Node API of the reconciler, recording every call; creation keeps status unless drop_status."""

    def __init__(self, nj, nodes=(), drop_status=False):
        self.nj = nj
        self.nodes: dict[str, dict] = {}
        for n in nodes:
            n = copy.deepcopy(n)
            n["metadata"].setdefault("uid", str(uuid.uuid4()))
            self.nodes[n["metadata"]["name"]] = n
        self.drop_status = drop_status
        self.calls: list[tuple] = []
        self.fail_create: list[Exception] = []

    def list_nodes(self):
        self.calls.append(("list",))
        return copy.deepcopy(list(self.nodes.values()))

    def get_node(self, name):
        self.calls.append(("get", name))
        return copy.deepcopy(self.nodes.get(name))

    def create_node(self, node):
        self.calls.append(("create", node["metadata"]["name"]))
        if self.fail_create:
            raise self.fail_create.pop(0)
        name = node["metadata"]["name"]
        if name in self.nodes:
            raise self.nj.ApiError(409, f'nodes "{name}" already exists')
        stored = copy.deepcopy(node)
        stored["metadata"]["uid"] = str(uuid.uuid4())
        if self.drop_status:
            stored.pop("status", None)
        self.nodes[name] = stored
        return copy.deepcopy(stored)

    def patch_node_status(self, name, status):
        self.calls.append(("patch-status", name))
        self.nodes[name]["status"] = copy.deepcopy(status)
        return copy.deepcopy(self.nodes[name])

    def delete_node(self, name, uid):
        self.calls.append(("delete", name, uid))
        node = self.nodes.get(name)
        if node is None or node["metadata"]["uid"] != uid:
            return False
        del self.nodes[name]
        return True

    def writes(self):
        return [c for c in self.calls if c[0] in ("create", "patch-status", "delete")]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def ec2():
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


@pytest.fixture
def api_calls(ec2):
    """The EC2 operations the code under test calls, in order."""
    calls: list[str] = []
    ec2.meta.events.register("before-call.ec2", lambda model, **_: calls.append(model.name))
    return calls


def launch(ec2, user_data: str | None = None, *, itype="m5.large", zone="us-east-1b", tags=None, bdm=None) -> dict:
    kwargs = {}
    if user_data is not None:
        kwargs["UserData"] = user_data  # boto3 base64-encodes it, as the launch template holds it
    if bdm:
        kwargs["BlockDeviceMappings"] = bdm
    tags = KARPENTER_TAGS if tags is None else tags
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    r = ec2.run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, InstanceType=itype, Placement={"AvailabilityZone": zone}, **kwargs
    )
    return r["Instances"][0]


def reconciler(nj, ec2, nodes, lines=None, clock=None):
    return nj.Reconciler(
        ec2,
        nodes,
        cluster_name=CLUSTER,
        region=REGION,
        logger=(lines.append if lines is not None else lambda _m: None),
        clock=clock or Clock(),
    )


SYSTEM_NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "sandbox-system-a", "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": {}},
    "spec": {"providerID": "aws:///us-east-1a/i-0sandbox00000000"},
}


def test_joins_an_al2023_instance_as_kubelet_would(nj, ec2, api_calls):
    inst = launch(ec2, fixture("al2023_karpenter.mime"), bdm=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 80}}])
    nodes, lines = FakeNodes(nj, [SYSTEM_NODE]), []
    rec = reconciler(nj, ec2, nodes, lines)
    assert rec.reconcile() == {"instances": 1, "joined": 1, "removed": 0}
    name = inst["PrivateDnsName"]
    assert nodes.writes() == [("create", name)]
    node = nodes.nodes[name]
    assert node["spec"]["providerID"] == f"aws:///us-east-1b/{inst['InstanceId']}"
    assert node["spec"]["taints"] == [UNREGISTERED]
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert node["metadata"]["annotations"][nj.INSTANCE_ANNOTATION] == inst["InstanceId"]
    zone_id = next(
        z["ZoneId"] for z in ec2.describe_availability_zones()["AvailabilityZones"] if z["ZoneName"] == "us-east-1b"
    )
    assert node["metadata"]["labels"] == KARPENTER_LABELS | {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "m5.large",
        "topology.kubernetes.io/zone": "us-east-1b",
        "topology.kubernetes.io/region": REGION,
        "topology.k8s.aws/zone-id": zone_id,
    }
    status = node["status"]
    assert status["capacity"]["pods"] == "110"  # maxPods from the NodeConfig
    assert q(nj, status["capacity"]["ephemeral-storage"]) == 80 * Gi  # the launch's /dev/xvda volume
    assert q(nj, status["allocatable"]["ephemeral-storage"]) == 80 * Gi - Gi - 8 * Gi
    assert status["nodeInfo"] == {"architecture": "amd64", "operatingSystem": "linux", "osImage": "Amazon Linux 2023"}
    assert len([m for m in lines if m.startswith("joined ")]) == 1
    assert "karpenter.sh/unregistered:NoExecute" in lines[-1] and inst["InstanceId"] in lines[-1]

    # Later ticks: one DescribeInstances each, nothing else, no writes.
    api_calls.clear()
    for _ in range(3):
        assert rec.reconcile()["joined"] == 0
    assert api_calls == ["DescribeInstances"] * 3
    assert nodes.writes() == [("create", name)]
    assert "sandbox-system-a" in nodes.nodes


def test_describe_instance_types_is_cached(nj, ec2, api_calls):
    launch(ec2, fixture("al2023_karpenter.mime"))
    launch(ec2, fixture("al2023_karpenter.mime"), zone="us-east-1c")
    nodes = FakeNodes(nj)
    assert reconciler(nj, ec2, nodes).reconcile()["joined"] == 2
    assert api_calls.count("DescribeInstanceTypes") == 1
    assert api_calls.count("DescribeInstances") == 1
    assert api_calls.count("DescribeAvailabilityZones") == 1


def test_graviton_bottlerocket_and_al2_instances(nj, ec2):
    br = launch(ec2, fixture("bottlerocket_merged.toml"), itype="m6g.large")
    al2 = launch(ec2, fixture("al2_merged.mime"), itype="c5.xlarge", zone="us-east-1a")
    nodes = FakeNodes(nj)
    reconciler(nj, ec2, nodes).reconcile()
    n = nodes.nodes[br["PrivateDnsName"]]
    assert n["metadata"]["labels"]["kubernetes.io/arch"] == "arm64"
    assert n["metadata"]["labels"]["custom-node-label"] == "custom"
    assert n["status"]["nodeInfo"]["architecture"] == "arm64"
    assert sorted(t["key"] for t in n["spec"]["taints"]) == ["baz", "foo", "karpenter.sh/unregistered"]
    assert q(nj, n["status"]["capacity"]["ephemeral-storage"]) == 20 * Gi  # no /dev/xvdb volume: Karpenter's default
    m = nodes.nodes[al2["PrivateDnsName"]]
    assert m["metadata"]["labels"]["karpenter.sh/nodepool"] == "general"
    assert m["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "c5.xlarge"
    assert m["spec"]["taints"] == [UNREGISTERED]
    assert m["status"]["capacity"]["pods"] == "110"


def test_instance_through_a_launch_template_and_instant_fleet(nj, ec2):
    """Karpenter's path: the launch template holds base64 user data, CreateFleet (instant) tags the instances."""
    subnet = ec2.describe_subnets()["Subnets"][0]
    lt = ec2.create_launch_template(
        LaunchTemplateName="karpenter.k8s.aws/123",
        LaunchTemplateData={
            "ImageId": AMI,
            "UserData": base64.b64encode(fixture("al2023_karpenter.mime").encode()).decode(),
        },
    )["LaunchTemplate"]
    fleet = ec2.create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Latest"},
                "Overrides": [
                    {
                        "InstanceType": "m5.large",
                        "SubnetId": subnet["SubnetId"],
                        "AvailabilityZone": subnet["AvailabilityZone"],
                    }
                ],
            }
        ],
        TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in KARPENTER_TAGS.items()]}
        ],
    )
    iid = fleet["Instances"][0]["InstanceIds"][0]
    nodes = FakeNodes(nj)
    assert reconciler(nj, ec2, nodes).reconcile()["joined"] == 1
    (node,) = nodes.nodes.values()
    assert node["spec"]["providerID"].endswith("/" + iid)
    assert node["spec"]["taints"] == [UNREGISTERED]
    assert node["metadata"]["labels"]["karpenter.sh/nodepool"] == "general"


@pytest.mark.parametrize(
    "tags",
    [
        {},  # not Karpenter's
        {k: v for k, v in KARPENTER_TAGS.items() if k != "karpenter.k8s.aws/ec2nodeclass"},
        KARPENTER_TAGS | {"eks:eks-cluster-name": "another-cluster"},
    ],
)
def test_ignores_instances_that_are_not_this_clusters_karpenter_nodes(nj, ec2, tags):
    launch(ec2, fixture("al2023_karpenter.mime"), tags=tags)
    nodes = FakeNodes(nj)
    assert reconciler(nj, ec2, nodes).reconcile()["instances"] == 0
    assert nodes.writes() == []


def test_terminated_instance_loses_its_node_and_nothing_else(nj, ec2):
    a = launch(ec2, fixture("al2023_karpenter.mime"))
    b = launch(ec2, fixture("al2023_karpenter.mime"), zone="us-east-1c")
    stranger = {  # right providerID and kwok annotation, but not registered by node-join
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "stranger", "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "spec": {"providerID": f"aws:///us-east-1b/{a['InstanceId']}"},
    }
    nodes, lines = FakeNodes(nj, [SYSTEM_NODE, stranger]), []
    rec = reconciler(nj, ec2, nodes, lines)
    rec.reconcile()
    uid_a = nodes.nodes[a["PrivateDnsName"]]["metadata"]["uid"]
    ec2.terminate_instances(InstanceIds=[a["InstanceId"]])
    assert rec.reconcile() == {"instances": 1, "joined": 0, "removed": 1}
    assert nodes.writes()[-1] == ("delete", a["PrivateDnsName"], uid_a)
    assert set(nodes.nodes) == {"sandbox-system-a", "stranger", b["PrivateDnsName"]}
    assert any(m.startswith(f"removed node {a['PrivateDnsName']}") for m in lines)
    rec.reconcile()
    assert [c for c in nodes.writes() if c[0] == "delete"] == [("delete", a["PrivateDnsName"], uid_a)]


def test_stopped_instance_keeps_its_node_and_deleted_node_is_not_recreated(nj, ec2):
    a = launch(ec2, fixture("al2023_karpenter.mime"))
    b = launch(ec2, fixture("al2023_karpenter.mime"))
    nodes = FakeNodes(nj)
    rec = reconciler(nj, ec2, nodes)
    rec.reconcile()
    ec2.stop_instances(InstanceIds=[a["InstanceId"]])
    del nodes.nodes[b["PrivateDnsName"]]  # e.g. kubectl delete node: kubelet registered once and does not retry
    rec.reconcile()
    assert a["PrivateDnsName"] in nodes.nodes
    assert [c[0] for c in nodes.writes()] == ["create", "create"]


def test_restart_adopts_its_nodes_and_removes_them_later(nj, ec2):
    a = launch(ec2, fixture("al2023_karpenter.mime"))
    first = FakeNodes(nj)
    reconciler(nj, ec2, first).reconcile()
    nodes = FakeNodes(nj, [SYSTEM_NODE])
    nodes.nodes.update(copy.deepcopy(first.nodes))
    lines: list[str] = []
    rec = reconciler(nj, ec2, nodes, lines)
    assert rec.reconcile()["joined"] == 0
    assert nodes.writes() == []
    assert any("adopted 1 node" in m for m in lines)
    ec2.terminate_instances(InstanceIds=[a["InstanceId"]])
    assert rec.reconcile()["removed"] == 1
    assert set(nodes.nodes) == {"sandbox-system-a"}


def test_missing_unregistered_taint_is_a_warning_not_an_addition(nj, ec2):
    user_data = "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flags: ['--node-labels=role=custom']\n"
    inst = launch(ec2, user_data)
    nodes, lines = FakeNodes(nj), []
    reconciler(nj, ec2, nodes, lines).reconcile()
    node = nodes.nodes[inst["PrivateDnsName"]]
    assert "taints" not in node["spec"]
    assert node["metadata"]["labels"]["role"] == "custom"
    assert any("warning" in m and "karpenter.sh/unregistered" in m for m in lines)


def test_no_user_data_registers_with_cloud_labels_only(nj, ec2):
    inst = launch(ec2, None)
    nodes, lines = FakeNodes(nj), []
    reconciler(nj, ec2, nodes, lines).reconcile()
    node = nodes.nodes[inst["PrivateDnsName"]]
    assert not any(k.startswith("karpenter") for k in node["metadata"]["labels"])
    assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "m5.large"
    assert node["status"]["capacity"]["pods"] == "29"
    assert any("empty user data" in m for m in lines)


def test_refused_user_data_is_logged_once_and_never_joined(nj, ec2):
    inst = launch(
        ec2, KARPENTER_NODECONFIG.replace("karpenter.sh/nodepool=general", "node-role.kubernetes.io/worker=true")
    )
    nodes, lines = FakeNodes(nj), []
    clock = Clock()
    rec = reconciler(nj, ec2, nodes, lines, clock)
    for _ in range(3):
        rec.reconcile()
        clock.now += 60
    assert nodes.writes() == []
    refusals = [m for m in lines if inst["InstanceId"] in m]
    assert len(refusals) == 1 and "node-role.kubernetes.io/worker" in refusals[0]


def test_transient_create_failure_is_retried_with_backoff(nj, ec2):
    inst = launch(ec2, fixture("al2023_karpenter.mime"))
    nodes, clock = FakeNodes(nj), Clock()
    nodes.fail_create = [nj.ApiError(500, "etcdserver: request timed out")]
    rec = reconciler(nj, ec2, nodes, clock=clock)
    assert rec.reconcile()["joined"] == 0
    assert rec.reconcile()["joined"] == 0  # backing off: no second attempt yet
    assert [c[0] for c in nodes.calls if c[0] == "create"] == ["create"]
    clock.now += 5
    assert rec.reconcile()["joined"] == 1
    assert inst["PrivateDnsName"] in nodes.nodes


def test_status_is_patched_when_create_drops_it(nj, ec2):
    inst = launch(ec2, fixture("al2023_karpenter.mime"))
    nodes = FakeNodes(nj, drop_status=True)
    reconciler(nj, ec2, nodes).reconcile()
    name = inst["PrivateDnsName"]
    assert nodes.writes() == [("create", name), ("patch-status", name)]
    assert nodes.nodes[name]["status"]["allocatable"]["pods"] == "110"


def test_name_taken_by_a_foreign_node_is_left_alone(nj, ec2):
    inst = launch(ec2, fixture("al2023_karpenter.mime"))
    foreign = copy.deepcopy(SYSTEM_NODE)
    foreign["metadata"]["name"] = inst["PrivateDnsName"]
    nodes = FakeNodes(nj, [foreign])
    rec = reconciler(nj, ec2, nodes)
    rec.reconcile()
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    rec.reconcile()
    assert [c[0] for c in nodes.writes()] == ["create"]  # the refused create only; never a delete
    assert nodes.nodes[inst["PrivateDnsName"]]["spec"] == SYSTEM_NODE["spec"]


def test_a_reused_name_joins_once_the_old_node_is_gone(nj, ec2):
    """EC2 reuses a terminated instance's private IP (and so its Node name): the new instance joins as soon as the
    old instance's Node is deleted, as kubelet's registration retries would."""
    old = launch(ec2, fixture("al2023_karpenter.mime"))
    nodes, clock = FakeNodes(nj), Clock()
    rec = reconciler(nj, ec2, nodes, clock=clock)
    rec.reconcile()
    name = old["PrivateDnsName"]
    old_node = nodes.nodes[name]
    old_node["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z"  # Karpenter is draining it
    new = dict(launch(ec2, fixture("al2023_karpenter.mime")), PrivateDnsName=name)  # the reused IP's name
    assert rec._join(new) is False
    # the name is still held by the old instance's Node: the create is refused, nothing is deleted, not given up
    assert {c[0] for c in nodes.writes()} == {"create"}
    assert nodes.nodes[name] is old_node
    assert not rec.retry[new["InstanceId"]].permanent
    del nodes.nodes[name]  # the old Node is gone
    clock.now += 5
    assert rec._join(new) is True
    assert nodes.nodes[name]["spec"]["providerID"].endswith("/" + new["InstanceId"])


def test_failed_describe_instances_removes_nothing(nj, ec2):
    launch(ec2, fixture("al2023_karpenter.mime"))
    nodes = FakeNodes(nj)
    rec = reconciler(nj, ec2, nodes)
    rec.reconcile()

    class Broken:
        def describe_instances(self, **_):
            raise ConnectionError("emulator down")

    rec.ec2 = Broken()
    with pytest.raises(ConnectionError):
        rec.reconcile()
    assert len(nodes.nodes) == 1 and [c[0] for c in nodes.writes()] == ["create"]


# ---------------------------------------------------------------------------------------------------------------
# CLI and the process end to end


def test_refuses_non_loopback_endpoints(nj, tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text(json.dumps(kubeconfig_doc("https://10.0.0.1:6443")))
    with pytest.raises(SystemExit, match="10.0.0.1"):
        nj.main(["--kubeconfig", str(kc), "--aws-endpoint", "http://127.0.0.1:5055", "--cluster-name", CLUSTER])
    with pytest.raises(SystemExit, match="aws-endpoint"):
        nj.main(
            [
                "--kubeconfig",
                str(kc),
                "--aws-endpoint",
                "https://ec2.us-east-1.amazonaws.com",
                "--cluster-name",
                CLUSTER,
            ]
        )
    assert nj.is_loopback_host("127.0.0.2") and nj.is_loopback_host("::1") and nj.is_loopback_host("localhost")
    assert not nj.is_loopback_host("0.0.0.0") and not nj.is_loopback_host("example.com")


def kubeconfig_doc(server: str, ca: bytes = b"", cert: bytes = b"", key: bytes = b"") -> dict:
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": "admin", "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "admin"}}],
        "current-context": "sandbox",
    }


def make_pki():
    """A CA, a server certificate for 127.0.0.1 and an admin client certificate (PEM bytes)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def name(cn, org=None):
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    def pem_key(k):
        return k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test-ca"))
        .issuer_name(name("test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(subject, usage, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), pem_key(key)

    server = leaf(
        name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    client = leaf(name("admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH)
    return ca.public_bytes(serialization.Encoding.PEM), server, client


class FakeApiserver:
    """Nodes over HTTPS with a required client certificate, HTTP/1.1 keep-alive, uid preconditions on delete."""

    def __init__(self, tmp: Path, ca: bytes, server: tuple[bytes, bytes]):
        self.nodes: dict[str, dict] = {}
        self.requests: list[tuple[str, str, str]] = []  # method, path, client CN
        self.lock = threading.Lock()
        (tmp / "srv.crt").write_bytes(server[0])
        (tmp / "srv.key").write_bytes(server[1])
        (tmp / "ca.crt").write_bytes(ca)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / "srv.crt", tmp / "srv.key")
        ctx.load_verify_locations(tmp / "ca.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n)) if n else None

            def _record(self):
                cert = self.connection.getpeercert()
                cn = dict(x[0] for x in cert["subject"]).get("commonName") if cert else None
                with outer.lock:
                    outer.requests.append((self.command, self.path, cn))

            def do_GET(self):
                self._record()
                if self.path == "/api/v1/nodes":
                    return self._send(200, {"kind": "NodeList", "items": list(outer.nodes.values())})
                name = self.path.rsplit("/", 1)[-1]
                if name in outer.nodes:
                    return self._send(200, outer.nodes[name])
                self._send(404, {"kind": "Status", "message": "not found"})

            def do_POST(self):
                self._record()
                node = self._body()
                name = node["metadata"]["name"]
                if name in outer.nodes:
                    return self._send(409, {"kind": "Status", "message": "exists"})
                node["metadata"]["uid"] = str(uuid.uuid4())
                outer.nodes[name] = node
                self._send(201, node)

            def do_PATCH(self):
                self._record()
                self._send(404, {"kind": "Status", "message": "unexpected"})

            def do_DELETE(self):
                self._record()
                body = self._body() or {}
                name = self.path.rsplit("/", 1)[-1]
                node = outer.nodes.get(name)
                if node is None:
                    return self._send(404, {"kind": "Status", "message": "not found"})
                if (body.get("preconditions") or {}).get("uid") not in (None, node["metadata"]["uid"]):
                    return self._send(409, {"kind": "Status", "message": "uid precondition failed"})
                del outer.nodes[name]
                self._send(200, node)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_process_end_to_end(tmp_path):
    from moto.server import ThreadedMotoServer

    ca, server_pair, client_pair = make_pki()
    api = FakeApiserver(tmp_path, ca, server_pair)
    api.nodes["sandbox-system-a"] = copy.deepcopy(SYSTEM_NODE) | {"metadata": SYSTEM_NODE["metadata"] | {"uid": "sys"}}
    moto_port = free_port()
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto_server.start()
    proc = None
    try:
        endpoint = f"http://127.0.0.1:{moto_port}"
        kc = tmp_path / "admin.kubeconfig"
        kc.write_text(json.dumps(kubeconfig_doc(f"https://127.0.0.1:{api.port}", ca, *client_pair)))
        ready = tmp_path / "node-join.ready"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                f"--kubeconfig={kc}",
                f"--aws-endpoint={endpoint}",
                "--region",
                REGION,
                "--cluster-name",
                CLUSTER,
                "--interval",
                "0.2",
                f"--ready-file={ready}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        wait_until(ready.exists, 20, "the ready file")
        assert json.loads(ready.read_text())["pid"] == proc.pid

        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
        t0 = time.monotonic()
        inst = launch(ec2, fixture("al2023_karpenter.mime"))
        name = inst["PrivateDnsName"]
        wait_until(lambda: name in api.nodes, 10, "the node")
        assert time.monotonic() - t0 < 3, "a new instance should become a Node within about a second"
        node = api.nodes[name]
        assert node["spec"]["taints"] == [UNREGISTERED]
        assert node["status"]["capacity"]["pods"] == "110"
        assert {cn for _, _, cn in api.requests} == {"admin"}  # every request carried the client certificate

        ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
        wait_until(lambda: name not in api.nodes, 10, "the node's removal")
        assert "sandbox-system-a" in api.nodes
        assert [(m, p) for m, p, _ in api.requests if m != "GET"] == [
            ("POST", "/api/v1/nodes"),
            ("DELETE", f"/api/v1/nodes/{name}"),
        ]

        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, out
        assert f"joined {inst['InstanceId']} as node {name}" in out
        assert f"removed node {name}" in out
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.communicate()
        moto_server.stop()
        api.close()
