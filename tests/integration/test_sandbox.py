"""The sandbox is real: Karpenter (AWS provider) launches instances in the emulator, they join as Nodes, and
consolidation terminates them; the apiserver enforces the CRDs."""

import json
import os

import boto3
import pytest


def ec2(sandbox):
    return boto3.client("ec2", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"], region_name=sandbox.env["AWS_REGION"])


def instance_states(sandbox, ids):
    res = ec2(sandbox).describe_instances(InstanceIds=list(ids))
    return {i["InstanceId"]: i["State"]["Name"] for r in res["Reservations"] for i in r["Instances"]}


def nodepool(name, **disruption):
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {"example.com/pool": name}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"},
                    "requirements": [
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                    ],
                },
            },
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "2s", **disruption},
            "limits": {"cpu": "500"},
        },
    }


def deployment(name, replicas, pool):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"example.com/pool": pool},
                    "containers": [
                        {
                            "name": "c",
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                        }
                    ],
                },
            },
        },
    }


def test_control_plane_version_and_system_nodes(sandbox):
    v = sandbox.kubectl("version", "-o", "json").stdout
    assert json.loads(v)["serverVersion"]["gitVersion"].startswith("v1.36.")
    nodes = sandbox.core.list_node(label_selector="eks.amazonaws.com/nodegroup=system").items
    zones = {n.metadata.labels["topology.kubernetes.io/zone"] for n in nodes}
    assert len(zones) >= 2
    assert all(any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or [])) for n in nodes)


def test_karpenter_provisions_and_consolidates(sandbox, uid):
    pool, app = f"it-{uid}", f"inflate-{uid}"
    sandbox.apply([nodepool(pool), deployment(app, 12, pool)])
    try:

        def running():
            pods = sandbox.core.list_namespaced_pod("default", label_selector=f"app={app}").items
            return len([p for p in pods if p.status.phase == "Running"]) == 12

        sandbox.wait_until("12 pods Running", running, 90)
        claims = sandbox.custom.list_cluster_custom_object("karpenter.sh", "v1", "nodeclaims")["items"]
        claims = [c for c in claims if c["metadata"]["labels"].get("karpenter.sh/nodepool") == pool]
        assert claims, "Karpenter created no NodeClaim"
        catalogue = {
            t["InstanceType"]
            for page in ec2(sandbox).get_paginator("describe_instance_types").paginate()
            for t in page["InstanceTypes"]
        }
        for c in claims:
            itype = c["metadata"]["labels"]["node.kubernetes.io/instance-type"]
            assert itype in catalogue
            assert c["metadata"]["labels"]["karpenter.sh/capacity-type"] == "on-demand"
        nodes = sandbox.core.list_node(label_selector=f"karpenter.sh/nodepool={pool}").items
        # every node is an instance Karpenter launched in the emulator, running its instance type
        ids = {n.spec.provider_id.rsplit("/", 1)[1]: n for n in nodes}
        assert set(instance_states(sandbox, ids).values()) == {"running"}
        for iid, n in ids.items():
            inst = ec2(sandbox).describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
            assert inst["InstanceType"] == n.metadata.labels["node.kubernetes.io/instance-type"]
            assert inst["Placement"]["AvailabilityZone"] == n.metadata.labels["topology.kubernetes.io/zone"]
        assert nodes and all(
            any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or [])) for n in nodes
        )
        assert {n.metadata.labels["kubernetes.io/arch"] for n in nodes} == {"amd64"}
        # every pod runs on a Karpenter node of this pool
        pods = sandbox.core.list_namespaced_pod("default", label_selector=f"app={app}").items
        assert {p.spec.node_name for p in pods} <= {n.metadata.name for n in nodes}

        sandbox.apps.patch_namespaced_deployment_scale(app, "default", {"spec": {"replicas": 0}})
        sandbox.wait_until(
            "nodes of the pool consolidated away",
            lambda: not sandbox.core.list_node(label_selector=f"karpenter.sh/nodepool={pool}").items,
            120,
        )
        # ... and their instances are terminated in the emulator
        sandbox.wait_until(
            "instances terminated",
            lambda: set(instance_states(sandbox, ids).values()) <= {"shutting-down", "terminated"},
            60,
        )
    finally:
        sandbox.kubectl("delete", "deployment", app, "-n", "default", "--ignore-not-found", "--wait=false")
        sandbox.kubectl("delete", "nodepool", pool, "--ignore-not-found", "--wait=false")


@pytest.mark.parametrize(
    "doc, message",
    [
        (
            {
                "apiVersion": "karpenter.sh/v1",
                "kind": "NodePool",
                "metadata": {"name": "bad-weight"},
                "spec": {
                    "weight": 0,
                    "template": {
                        "spec": {
                            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "x"},
                            "requirements": [],
                        }
                    },
                },
            },
            "spec.weight",
        ),
        (
            {
                "apiVersion": "karpenter.sh/v1",
                "kind": "NodePool",
                "metadata": {"name": "bad-label"},
                "spec": {
                    "template": {
                        "metadata": {"labels": {"karpenter.sh/nodepool": "x"}},
                        "spec": {
                            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "x"},
                            "requirements": [],
                        },
                    }
                },
            },
            'label "karpenter.sh/nodepool" is restricted',
        ),
        (
            {
                "apiVersion": "karpenter.k8s.aws/v1",
                "kind": "EC2NodeClass",
                "metadata": {"name": "bad-role"},
                "spec": {
                    "role": "r",
                    "instanceProfile": "p",
                    "amiSelectorTerms": [{"alias": "al2023@latest"}],
                    "subnetSelectorTerms": [{"tags": {"a": "b"}}],
                    "securityGroupSelectorTerms": [{"tags": {"a": "b"}}],
                },
            },
            "must specify exactly one of ['role', 'instanceProfile']",
        ),
        (
            {
                "apiVersion": "karpenter.k8s.aws/v1",
                "kind": "EC2NodeClass",
                "metadata": {"name": "bad-alias"},
                "spec": {
                    "role": "r",
                    "amiSelectorTerms": [{"alias": "al2023@latest", "id": "ami-123"}],
                    "subnetSelectorTerms": [{"tags": {"a": "b"}}],
                    "securityGroupSelectorTerms": [{"tags": {"a": "b"}}],
                },
            },
            "'alias' is mutually exclusive",
        ),
    ],
    ids=["nodepool-weight", "nodepool-restricted-label", "ec2nc-role-and-profile", "ec2nc-alias-with-id"],
)
def test_apiserver_rejects_invalid_objects_with_crd_message(sandbox, doc, message):
    res = sandbox.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(doc), check=False)
    assert res.returncode != 0
    assert message in res.stderr, res.stderr
    got = sandbox.kubectl("get", doc["kind"].lower(), doc["metadata"]["name"], check=False)
    assert got.returncode != 0  # nothing was stored


def _listening_sockets():
    """{inode: (ip, port)} of every listening TCP socket (IPv4 and IPv6) from /proc/net."""
    out = {}
    for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "0A":  # LISTEN
                continue
            hexip, hexport = f[1].split(":")
            if v6:
                ip = "::1" if hexip == "0" * 24 + "01000000" else ("::" if set(hexip) == {"0"} else hexip)
            else:
                ip = ".".join(str(int(hexip[i : i + 2], 16)) for i in (6, 4, 2, 0))
            out[f[9]] = (ip, int(hexport, 16))
    return out


def test_every_sandbox_process_listens_on_loopback_only(sandbox):
    marker = f"KARPENTER_EKS_SANDBOX={sandbox.env['SANDBOX_STATE']}".encode()
    socks = _listening_sockets()
    seen = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in socks:
                seen.append((pid, socks[target[8:-1]]))
    assert len({p for p, _ in seen}) >= 8, seen  # etcd, eks-authn, apiserver, kcm, scheduler, kwok, karpenter, moto
    wide = [(pid, addr) for pid, addr in seen if not (addr[0].startswith("127.") or addr[0] == "::1")]
    assert wide == [], f"sandbox sockets listening beyond loopback: {wide}"
