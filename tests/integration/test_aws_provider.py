"""Karpenter's AWS provider (what EKS users run) against the sandbox's AWS emulator.

Every object here goes through the controller users run: EC2NodeClasses resolve subnets, security groups, AMIs and
an instance profile from the emulator; NodePools launch instances through CreateFleet with launch templates built
from what ``node_template`` set; the one simulated step is the instance booting and its kubelet registering
(sandbox/node_join.py). Each test uses its own names and removes what it created.
"""

from __future__ import annotations

import base64
import json
import os

import boto3
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SANDBOX_CLASS = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"}

pytestmark = pytest.mark.sandbox


def aws(sandbox, service):
    return boto3.client(service, endpoint_url=sandbox.env["AWS_ENDPOINT_URL"], region_name=sandbox.env["AWS_REGION"])


def get(sandbox, plural, name, group="karpenter.k8s.aws"):
    return sandbox.custom.get_cluster_custom_object(group, "v1", plural, name)


def condition(obj, ctype):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return c
    return None


def nodepool(name, requirements, node_class=SANDBOX_CLASS, **disruption):
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {"example.com/pool": name}},
                "spec": {"nodeClassRef": node_class, "requirements": requirements, "expireAfter": "Never"},
            },
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5s", **disruption},
            # above the largest type: a limit below it serialises launches until each claim's type is known
            "limits": {"cpu": "1000"},
        },
    }


def node_class(name, **spec):
    """An EC2NodeClass on the sandbox's node role, subnets and security groups (spec fields added or replaced)."""
    disc = [{"tags": {"karpenter.sh/discovery": "sandbox"}}]
    base = {
        "role": "KarpenterNodeRole-sandbox",
        "amiSelectorTerms": [{"alias": "al2023@latest"}],
        "subnetSelectorTerms": disc,
        "securityGroupSelectorTerms": disc,
    }
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name},
        "spec": base | spec,
    }


def deployment(name, pool, replicas=1, cpu="500m", spread=False):
    spec = {
        "nodeSelector": {"example.com/pool": pool},
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": cpu}}}],
    }
    if spread:  # one pod per node
        spec["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": name}}}
                ]
            }
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def running_pods(sandbox, app):
    pods = sandbox.core.list_namespaced_pod("default", label_selector=f"app={app}").items
    return [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]


def pool_nodes(sandbox, pool):
    return sandbox.core.list_node(label_selector=f"karpenter.sh/nodepool={pool}").items


def instance(sandbox, node):
    iid = node.spec.provider_id.rsplit("/", 1)[1]
    return aws(sandbox, "ec2").describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def cleanup(sandbox, *names):
    for kind, name in names:
        ns = ["-n", "default"] if kind == "deployment" else []
        sandbox.kubectl("delete", kind, name, *ns, "--ignore-not-found", "--wait=false")


def test_the_sandbox_node_class_is_resolved_from_the_emulator(sandbox):
    nc = get(sandbox, "ec2nodeclasses", "sandbox")
    assert condition(nc, "Ready")["status"] == "True", nc.get("status")
    status = nc["status"]
    ec2 = aws(sandbox, "ec2")
    tagged = ec2.describe_subnets(Filters=[{"Name": "tag:karpenter.sh/discovery", "Values": ["sandbox"]}])["Subnets"]
    assert {s["id"] for s in status["subnets"]} == {s["SubnetId"] for s in tagged}
    assert {s["zone"] for s in status["subnets"]} == {"us-east-1a", "us-east-1b", "us-east-1c"}
    sgs = ec2.describe_security_groups(Filters=[{"Name": "tag:karpenter.sh/discovery", "Values": ["sandbox"]}])
    assert {g["id"] for g in status["securityGroups"]} == {g["GroupId"] for g in sgs["SecurityGroups"]}
    # AMIs: the al2023@latest alias, resolved through the emulator's SSM parameters for the apiserver's minor: images
    # that exist in the emulator, EKS AL2023 builds for that minor, both architectures, each with its requirements
    # (a release published by another test may be newer than what the controller resolved; its cache is 24 h)
    minor = json.loads(sandbox.kubectl("version", "-o", "json").stdout)["serverVersion"]["minor"].rstrip("+")
    ids = {a["id"] for a in status["amis"]}
    images = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=sorted(ids))["Images"]}
    assert set(images) == ids
    for a in status["amis"]:
        img = images[a["id"]]
        assert img["Name"].startswith("amazon-eks-node-al2023-") and f"-1.{minor}-v" in img["Name"], img["Name"]
        arch = {"x86_64": "amd64", "arm64": "arm64"}[img["Architecture"]]
        arch_req = [r for r in a["requirements"] if r["key"] == "kubernetes.io/arch"]
        assert arch_req and arch_req[0]["values"] == [arch], a
    assert {images[i]["Architecture"] for i in ids} == {"x86_64", "arm64"}
    # the instance profile Karpenter made for spec.role exists in IAM with that role
    profile = aws(sandbox, "iam").get_instance_profile(InstanceProfileName=status["instanceProfile"])["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [nc["spec"]["role"]]


def test_launch_templates_carry_what_node_template_set(sandbox, uid):
    """node_template's EC2NodeClass -> Karpenter's launch template and the instance, read back from the emulator."""
    name = f"lt-{uid}"
    key = aws(sandbox, "kms").create_key(Description=f"ebs {name}")["KeyMetadata"]["Arn"]
    user_data = "#!/bin/bash\necho 'hello from node_template'\n"
    nodeclass = node_class(
        name,
        metadataOptions={
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 2,
            "httpTokens": "required",
        },
        blockDeviceMappings=[
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": "30Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "kmsKeyID": key,
                    "deleteOnTermination": True,
                },
            }
        ],
        detailedMonitoring=True,
        tags={"team": "platform", "cost-center": uid},
        userData=user_data,
    )
    pool_ref = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name}
    pool = nodepool(name, [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}], pool_ref)
    try:
        sandbox.playbook(
            os.path.join(HERE, "playbooks", "node_template_apply.yml"),
            extra_vars={"definitions": [nodeclass], "pools": [pool]},
        )
        sandbox.apply([deployment(name, name)])
        sandbox.wait_until("the pod Running on a Karpenter node", lambda: running_pods(sandbox, name), 120)
        node = pool_nodes(sandbox, name)[0]
        inst = instance(sandbox, node)
        status = get(sandbox, "ec2nodeclasses", name)["status"]
        ec2 = aws(sandbox, "ec2")
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        assert tags["karpenter.k8s.aws/ec2nodeclass"] == name and tags["team"] == "platform"
        assert tags["cost-center"] == uid
        templates = ec2.describe_launch_templates(
            Filters=[{"Name": "tag:karpenter.k8s.aws/ec2nodeclass", "Values": [name]}]
        )["LaunchTemplates"]
        assert templates, "Karpenter created no launch template for the node class"
        data = ec2.describe_launch_template_versions(LaunchTemplateId=templates[0]["LaunchTemplateId"])[
            "LaunchTemplateVersions"
        ][0]["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
        ebs = data["BlockDeviceMappings"][0]["Ebs"]
        assert data["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvda"
        assert (ebs["VolumeType"], ebs["VolumeSize"], ebs["Encrypted"], ebs["KmsKeyId"]) == ("gp3", 30, True, key)
        assert data["Monitoring"]["Enabled"] is True
        tag_specs = {t["Key"]: t["Value"] for s in data.get("TagSpecifications", []) for t in s["Tags"]}
        assert tag_specs.get("team") == "platform"
        # user data merged as Karpenter documents for AL2023: the user's part and Karpenter's NodeConfig, MIME
        merged = base64.b64decode(data["UserData"]).decode()
        assert "hello from node_template" in merged and "node.eks.aws/v1alpha1" in merged
        assert "MIME-Version" in merged
        # the instance was launched from that template: its security groups, subnet and profile are the status'
        assert {g["GroupId"] for g in inst["SecurityGroups"]} == {g["id"] for g in status["securityGroups"]}
        assert inst["SubnetId"] in {s["id"] for s in status["subnets"]}
        assert inst["IamInstanceProfile"]["Arn"].endswith("/" + status["instanceProfile"])
        # ... and it stays: no drift at launch (SecurityGroupDrift would replace it in a loop)
        claim = [
            c
            for c in sandbox.custom.list_cluster_custom_object("karpenter.sh", "v1", "nodeclaims")["items"]
            if c["metadata"]["labels"].get("karpenter.sh/nodepool") == name
        ][0]
        assert (condition(claim, "Drifted") or {}).get("status") != "True", claim["status"]
    finally:
        cleanup(sandbox, ("deployment", name), ("nodepool", name))
        sandbox.wait_until("the pool's nodes gone", lambda: not pool_nodes(sandbox, name), 120)
        cleanup(sandbox, ("ec2nodeclass", name))


def emulator():
    import sys

    sys.path.insert(0, os.path.join(ROOT, "sandbox"))
    import aws_emulator

    return aws_emulator


def claims(sandbox, pool, live_only=True):
    items = sandbox.custom.list_cluster_custom_object(
        "karpenter.sh", "v1", "nodeclaims", label_selector=f"karpenter.sh/nodepool={pool}"
    )["items"]
    return [c for c in items if not (live_only and c["metadata"].get("deletionTimestamp"))]


def test_min_values_spot_and_zones_against_the_full_catalogue(sandbox, uid):
    """minValues on a karpenter.k8s.aws label: the NodeClaim keeps at least that many families for the fleet."""
    name = f"mv-{uid}"
    reqs = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1b", "us-east-1c"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
        {"key": "karpenter.k8s.aws/instance-family", "operator": "Exists", "minValues": 4},
    ]
    try:
        sandbox.apply([nodepool(name, reqs), deployment(name, name, replicas=2, spread=True)])
        sandbox.wait_until("2 pods Running", lambda: len(running_pods(sandbox, name)) == 2, 120)
        for c in claims(sandbox, name):
            labels = c["metadata"]["labels"]
            assert labels["karpenter.sh/capacity-type"] == "spot"
            assert labels["topology.kubernetes.io/zone"] in ("us-east-1b", "us-east-1c")
            assert labels["karpenter.k8s.aws/instance-category"] in ("c", "m", "r")
            fam = [r for r in c["spec"]["requirements"] if r["key"] == "karpenter.k8s.aws/instance-family"]
            assert fam and fam[0].get("minValues") == 4
            types = [r for r in c["spec"]["requirements"] if r["key"] == "node.kubernetes.io/instance-type"][0]
            families = {t.split(".")[0] for t in types["values"]}
            assert len(families) >= 4, families
        for n in pool_nodes(sandbox, name):
            inst = instance(sandbox, n)
            assert inst.get("InstanceLifecycle") == "spot"
            assert inst["Placement"]["AvailabilityZone"] == n.metadata.labels["topology.kubernetes.io/zone"]
    finally:
        cleanup(sandbox, ("deployment", name), ("nodepool", name))


def launch_failures(sandbox, capacity_type):
    import urllib.request

    text = urllib.request.urlopen(sandbox.env["KARPENTER_METRICS_URL"], timeout=10).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("karpenter_cloudprovider_instance_launch_failures_total{")
        and f'capacity_type="{capacity_type}"' in line
    )


def test_refused_capacity_makes_karpenter_fall_back(sandbox, uid):
    """The emulator refuses on-demand <family>.large everywhere: Karpenter's real fallback launches the other type."""
    name = f"ice-{uid}"
    em = emulator()
    endpoint = sandbox.env["AWS_ENDPOINT_URL"]
    # Karpenter remembers refused offerings for minutes: a family per run, so a rerun in the same sandbox is new
    family = ["m5", "c5", "r5", "m6i", "c6i", "r6i", "m5a", "c5a", "r5a", "m6a", "c6a", "r6a"][int(uid, 16) % 12]
    small, large = f"{family}.large", f"{family}.xlarge"
    reqs = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [small, large]},
    ]
    em.refuse_capacity(endpoint, small, "on-demand")
    failures_before = launch_failures(sandbox, "on-demand")
    try:
        sandbox.apply([nodepool(name, reqs), deployment(name, name, cpu="500m")])
        sandbox.wait_until("the pod Running", lambda: running_pods(sandbox, name), 120)
        (node,) = pool_nodes(sandbox, name)
        assert node.metadata.labels["node.kubernetes.io/instance-type"] == large
        # Karpenter tried the cheaper type first and got the fleet's InsufficientInstanceCapacity errors back (its
        # own launch-failure counter, one per refused pool the fleet tried)
        assert launch_failures(sandbox, "on-demand") > failures_before
    finally:
        em.clear_capacity_refusals(endpoint)
        cleanup(sandbox, ("deployment", name), ("nodepool", name))


INTERRUPTIONS = [
    # kind, state, capacity type, the controller's event reason, whether it replaces the node
    ("spot-interruption", None, "spot", "SpotInterrupted", True),
    ("scheduled-change", None, "on-demand", "InstanceUnhealthy", True),
    ("state-change", "stopping", "on-demand", "InstanceStopping", True),
    ("rebalance-recommendation", None, "spot", "SpotRebalanceRecommendation", False),
]


@pytest.mark.parametrize(
    "kind, state, capacity_type, reason, replaces", INTERRUPTIONS, ids=[i[0] for i in INTERRUPTIONS]
)
def test_interruption_messages_are_handled_by_the_controller(
    sandbox, uid, kind, state, capacity_type, reason, replaces
):
    """An EventBridge message on the controller's queue: cordon, drain, terminate and a replacement Ready (or, for a
    rebalance recommendation, only an event), as on EKS."""
    import time

    name = f"int-{uid}"
    reqs = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity_type]},
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m"]},
    ]
    ec2 = aws(sandbox, "ec2")

    def instance_state(iid):
        return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]

    interrupted = set()
    try:
        sandbox.apply([nodepool(name, reqs), deployment(name, name)])
        sandbox.wait_until("the pod Running", lambda: running_pods(sandbox, name), 120)
        (old,) = pool_nodes(sandbox, name)
        interrupted = {old.metadata.name, *(c["metadata"]["name"] for c in claims(sandbox, name))}
        iid = old.spec.provider_id.rsplit("/", 1)[1]
        t0 = time.monotonic()
        emulator().send_interruption(
            sandbox.env["AWS_ENDPOINT_URL"], sandbox.env["SANDBOX_INTERRUPTION_QUEUE"], kind, [iid], state=state
        )

        def event_seen():
            evs = sandbox.core.list_event_for_all_namespaces(field_selector=f"reason={reason}").items
            return any(e.involved_object.name == old.metadata.name for e in evs)

        sandbox.wait_until(f"the controller's {reason} event", event_seen, 60)
        if replaces:

            def replaced():
                nodes = [n for n in pool_nodes(sandbox, name) if n.metadata.name != old.metadata.name]
                ready = [
                    n
                    for n in nodes
                    if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
                ]
                pods = running_pods(sandbox, name)
                return ready and pods and all(p.spec.node_name != old.metadata.name for p in pods)

            sandbox.wait_until("a replacement node Ready and the pod moved", replaced, 120)
            print(f"{kind} -> replacement Ready, pod moved: {time.monotonic() - t0:.1f}s")
            sandbox.wait_until(
                "the interrupted instance terminated",
                lambda: instance_state(iid) in ("shutting-down", "terminated"),
                60,
            )
        else:
            time.sleep(10)  # a recommendation is only reported: the node and its instance stay
            assert [n.metadata.name for n in pool_nodes(sandbox, name)] == [old.metadata.name]
            assert not [c for c in claims(sandbox, name, live_only=False) if c["metadata"].get("deletionTimestamp")]
            assert instance_state(iid) == "running"
        # the message was consumed
        sqs = aws(sandbox, "sqs")
        url = sqs.get_queue_url(QueueName=sandbox.env["SANDBOX_INTERRUPTION_QUEUE"])["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "0"
    finally:
        cleanup(sandbox, ("deployment", name), ("nodepool", name))
        sandbox.forget_interruptions(interrupted)


def test_node_class_change_drifts_nodes_within_the_budget(sandbox, uid):
    """A new AMI release pinned in the EC2NodeClass: Karpenter replaces every node, at most one at a time."""
    name = f"drift-{uid}"
    em = emulator()
    endpoint = sandbox.env["AWS_ENDPOINT_URL"]
    import datetime

    latest = max(r["release"] for r in em.published_ami_releases(endpoint))
    release = (datetime.datetime.strptime(latest, "%Y%m%d") + datetime.timedelta(days=1)).strftime("%Y%m%d")
    nodeclass = node_class(name)
    ref = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name}
    pool = nodepool(name, [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}], ref)
    pool["spec"]["disruption"]["budgets"] = [{"nodes": "1"}]
    try:
        sandbox.apply([nodeclass, pool, deployment(name, name, replicas=3, spread=True)])
        sandbox.wait_until("3 pods Running", lambda: len(running_pods(sandbox, name)) == 3, 150)
        before = {i["InstanceId"]: i["ImageId"] for i in (instance(sandbox, n) for n in pool_nodes(sandbox, name))}
        em.publish_ami_release(endpoint, release)
        nodeclass["spec"]["amiSelectorTerms"] = [{"alias": f"al2023@v{release}"}]
        sandbox.apply([nodeclass])
        most_disrupting = 0

        def all_new():
            nonlocal most_disrupting
            every = claims(sandbox, name, live_only=False)
            most_disrupting = max(most_disrupting, len([c for c in every if c["metadata"].get("deletionTimestamp")]))
            now = {i["InstanceId"]: i["ImageId"] for i in (instance(sandbox, n) for n in pool_nodes(sandbox, name))}
            return (
                len(running_pods(sandbox, name)) == 3
                and len(now) == 3
                and not set(before) & set(now)
                and not set(now.values()) & set(before.values())
            )

        sandbox.wait_until("every node replaced by one with the new AMI", all_new, 300)
        assert most_disrupting <= 1, most_disrupting
    finally:
        cleanup(sandbox, ("deployment", name), ("nodepool", name))
        sandbox.wait_until("the pool's nodes gone", lambda: not pool_nodes(sandbox, name), 120)
        cleanup(sandbox, ("ec2nodeclass", name))


def test_a_new_ami_behind_the_ssm_parameter_drifts_nodes(sandbox, uid):
    """The EC2NodeClass selects its image through an SSM parameter (amiSelectorTerms[].ssmParameter); a new image id
    behind the parameter alone makes the controller replace the nodes, within the budget. The AWS provider caches
    SSM answers for 24 h (its invalidation controller drops entries only for deprecated images, every 30 min and at
    start), so the test restarts the controller - as an EKS pod restart would - instead of waiting. The parameter
    is this test's own, so no other node class drifts."""
    name = f"ssm-{uid}"
    ec2, ssm = aws(sandbox, "ec2"), aws(sandbox, "ssm")
    base = next(
        a["id"]
        for a in get(sandbox, "ec2nodeclasses", "sandbox")["status"]["amis"]
        if {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]} in (a.get("requirements") or [])
    )
    new = ec2.copy_image(SourceImageId=base, SourceRegion="us-east-1", Name=f"{name}-next")["ImageId"]
    param = f"/sandbox/{name}/image_id"
    ssm.put_parameter(Name=param, Value=base, Type="String")
    nodeclass = node_class(name, amiFamily="AL2023", amiSelectorTerms=[{"ssmParameter": param}])
    ref = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name}
    reqs = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
    ]
    pool = nodepool(name, reqs, ref)
    pool["spec"]["disruption"]["budgets"] = [{"nodes": "1"}]
    try:
        sandbox.apply([nodeclass, pool, deployment(name, name, replicas=2, spread=True)])
        sandbox.wait_until("2 pods Running", lambda: len(running_pods(sandbox, name)) == 2, 150)
        images = {instance(sandbox, n)["ImageId"] for n in pool_nodes(sandbox, name)}
        assert images == {base}, images
        ssm.put_parameter(Name=param, Value=new, Overwrite=True)
        sandbox.restart_controller()
        most_disrupting = 0

        def all_new():
            nonlocal most_disrupting
            every = claims(sandbox, name, live_only=False)
            most_disrupting = max(most_disrupting, len([c for c in every if c["metadata"].get("deletionTimestamp")]))
            now = [instance(sandbox, n)["ImageId"] for n in pool_nodes(sandbox, name)]
            return len(running_pods(sandbox, name)) == 2 and len(now) == 2 and set(now) == {new}

        sandbox.wait_until("every node replaced by one with the image behind the parameter", all_new, 300)
        assert most_disrupting <= 1, most_disrupting
        status = get(sandbox, "ec2nodeclasses", name)["status"]
        assert [a["id"] for a in status["amis"]] == [new]
    finally:
        cleanup(sandbox, ("deployment", name), ("nodepool", name))
        sandbox.wait_until("the pool's nodes gone", lambda: not pool_nodes(sandbox, name), 120)
        cleanup(sandbox, ("ec2nodeclass", name))
        ssm.delete_parameter(Name=param)
        ec2.deregister_image(ImageId=new)


@pytest.mark.parametrize("inventory", ["local", "dev", "staging", "prod"])
def test_every_node_class_of_the_inventories_becomes_ready(sandbox, tmp_path, uid, inventory):
    """Each inventory's EC2NodeClasses, rendered for the sandbox's cluster, are resolved by the real controller."""
    key = aws(sandbox, "kms").create_key(Description=f"ebs {inventory}")["KeyMetadata"]["Arn"]
    out = tmp_path / "nodeclasses.json"
    sandbox.playbook(
        os.path.join(HERE, "playbooks", "render_nodeclasses.yml"),
        "-i",
        os.path.join(ROOT, "inventories", inventory),
        extra_vars={"out": str(out), "karpenter_eks_cluster_name": "sandbox", "karpenter_ebs_kms_key_id": key},
    )
    classes = json.loads(out.read_text())
    assert classes, f"inventories/{inventory} defines no EC2NodeClass"
    for c in classes:
        c["metadata"]["name"] = f"inv-{uid}-{c['metadata']['name']}"
    names = [c["metadata"]["name"] for c in classes]
    try:
        # node_template waits for Ready (the task fails otherwise): subnets, security groups, AMIs, profile resolved
        sandbox.playbook(
            os.path.join(HERE, "playbooks", "node_template_apply.yml"), extra_vars={"definitions": classes}
        )
        for name in names:
            status = get(sandbox, "ec2nodeclasses", name)["status"]
            assert condition({"status": status}, "Ready")["status"] == "True", status
            assert status["subnets"] and status["securityGroups"] and status["amis"] and status["instanceProfile"]
    finally:
        for name in names:
            cleanup(sandbox, ("ec2nodeclass", name))
