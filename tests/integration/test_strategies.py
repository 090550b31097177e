"""The design document's four NodePool strategies, in their original v1alpha5 shape, provision real nodes.

Source: the original design document, "Node Pool Strategies" (general-purpose, GPU,
batch-spot) and "Multi-AZ and Multi-Region Strategy", copied verbatim below except for the placeholders
(``${CLUSTER_NAME}`` -> sandbox, ``${AWS_REGION}`` -> us-east-1, ``${KMS_KEY_ARN}`` -> a fake ARN) and a
per-run suffix on the names. Each strategy goes through ``karpenter_apply.run`` exactly like the module:
legacy input -> converter -> validation + lint -> server-side apply, with ``node_class_ref`` pointing at the
sandbox's Ready EC2NodeClass. A workload per strategy then has to run on
nodes Karpenter launches for that pool, with the capacity types, taints and zones the strategy asks for.

Two strategies carry known design errors (docs/karpenter-v1.md section 4) that the collection reports as lint
warnings; they are checked as designed (the warning is reported) and applied with the lint's fix:

* GPU pool without a taint (KPL006): applied with ``nvidia.com/gpu=true:NoSchedule`` added;
* multi-AZ pool with a fixed ``topology.kubernetes.io/zone`` label (KPL002, design error #4 - every node
  in one zone): applied without that label, and the pods then spread over the three zones.

The multi-AZ file's AWSNodeTemplate has neither an instance profile nor a security-group selector, which v1
cannot express without input (conversion errors): the whole file is refused, naming both; the Provisioner
is then applied on its own.
"""

import copy
import re

import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.apply import karpenter as karpenter_apply
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import resource

KWOK_REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"}  # the sandbox's Ready node class
ZONES = {"us-east-1a", "us-east-1b", "us-east-1c"}

GENERAL_PURPOSE = """
# config/karpenter/provisioners/general-purpose.yaml
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: general-purpose
spec:
  # Requirements constrain the parameters of provisioned nodes.
  requirements:
    - key: karpenter.sh/capacity-type
      operator: In
      values: ["spot", "on-demand"]
    - key: kubernetes.io/arch
      operator: In
      values: ["amd64", "arm64"]
    - key: karpenter.k8s.aws/instance-category
      operator: In
      values: ["c", "m", "r"]
    - key: karpenter.k8s.aws/instance-generation
      operator: Gt
      values: ["2"]

  # Resource limits constrain the total size of the cluster.
  limits:
    resources:
      cpu: 1000  # Cluster size will not exceed 1000 vCPUs across all nodes managed by this provisioner
      memory: 1000Gi # Cluster memory will not exceed 1000 GiB

  # Labels are applied to every node.
  labels:
    environment: production
    managed-by: karpenter

  # Taints are applied to every node. Only pods with this matching toleration can be scheduled
  taints:
    - key: dedicated
      value: workload
      effect: NoSchedule

  # Startup taints are taints that are temporarily applied to nodes during startup.
  startupTaints:
    - key: node.kubernetes.io/not-ready
      effect: NoSchedule

  # ProviderRef references the AWSNodeTemplate resource
  providerRef:
    name: default

  # Consolidation Policy: Cost Optimization by terminating underutilized nodes after pod shuffling
  consolidation:
    enabled: true
---
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata:
  name: default
spec:
  subnetSelector: # This tag should be applied to all EKS cluster subnets and security groups
    karpenter.sh/discovery: ${CLUSTER_NAME}
  securityGroupSelector:
    karpenter.sh/discovery: ${CLUSTER_NAME}

  # Instance Profile: New EC2 nodes will assume granting necessary permissions
  instanceProfile: KarpenterNodeInstanceProfile-${CLUSTER_NAME}

  # Block Device Mappings
  blockDeviceMappings:
    - deviceName: /dev/xvda
      ebs:
        volumeSize: 100Gi # Root volume size
        volumeType: gp3 # cost-effective and high-performance gp3 volume type
        encrypted: true
        deleteOnTermination: true

  # Enables CloudWatch detailed monitoring (1-minute intervals) for better visibility
  detailedMonitoring: true

  # Metadata Options
  metadataOptions:
    httpEndpoint: enabled
    httpProtocolIPv6: disabled
    httpPutResponseHopLimit: 2
    httpTokens: required # Ensures IMDSv2 is strictly enforced for security

  # Tags applied to every instance, for compliance, billing, etc
  tags:
    CostCenter: "Platform"
    BusinessUnit: "Engineering"
    Compliance: "PCI-DSS"
"""

GPU = """
# config/karpenter/provisioners/gpu-workloads.yaml
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: gpu-accelerated
spec:
  requirements:
    - key: node.kubernetes.io/instance-type
      operator: In
      values:
        - g5.* # Includes NVIDIA A10G-based GPU instances (modern, popular)
        - p4.* # Includes NVIDIA A100-based instances (highest perf/cost)
        - p3.* # Older V100 NVIDIA instances, (legacy, high cost)
    - key: karpenter.k8s.aws/instance-gpu-count
      operator: Exists
    - key: karpenter.k8s.aws/instance-gpu-manufacturer
      operator: In
      values: ["nvidia"]
    - key: karpenter.sh/capacity-type
      operator: In
      values: ["on-demand"]
      # CRITICAL: GPU workloads are generally expensive, long-running, and cannot tolerate Spot interruption

  ttlSecondsAfterEmpty: 300 # Terminate node 5 minutes after last pod leaves
  ttlSecondsUntilExpired: 604800  # 7 days to terminate nodes to force refresh/patching of AMI updates

  # Labels for prometheus scraping, billing, workload selection
  labels:
    accelerator: nvidia-gpu
    workload-type: ai-ml

  # References corresponding AWSNodeTemplate
  providerRef:
    name: gpu-nodes
"""

BATCH = """
# config/karpenter/provisioners/batch-jobs.yaml
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: batch-processing
spec:
  requirements:
    - key: karpenter.sh/capacity-type
      operator: In
      values: ["spot"] # Forces provisioner to use SPOT instances
    - key: kubernetes.io/arch
      operator: In
      values: ["amd64"] # Restricts to AMD architecture
    - key: karpenter.k8s.aws/instance-category
      operator: In
      values: ["c", "m"] # Limited to standard Compute or general-purpose

  # Allow larger instances for batch workloads
  limits:
    resources:
      cpu: 2000
      memory: 4000Gi

  # If multiple provisioners will work for a Pending pod, the one with the HIGHEST weight is chosen.
  weight: 50  # Implicit default is 100 which is the max

  ttlSecondsAfterEmpty: 45 # Terminate node 45 seconds after last pod leaves

  labels:
    workload-type: batch
    scheduling: interruptible # Clear tag indicating this node can be terminated anytime (Spot).

  # Prevents any Pod from running here UNLESS it explicitly tolerates the 'spot=true' taint
  taints:
    - key: spot
      value: "true"
      effect: NoSchedule
"""

MULTI_AZ = """
# config/karpenter/provisioners/multi-az.yaml
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: multi-az
spec:
  requirements:
    - key: topology.kubernetes.io/zone
      operator: In
      values:
        - ${AWS_REGION}a
        - ${AWS_REGION}b
        - ${AWS_REGION}c
    - key: karpenter.sh/capacity-type
      operator: In
      values: ["spot", "on-demand"]

  # Spread pods across zones
  labels:
    topology.kubernetes.io/zone: ${AWS_REGION}a

  providerRef:
    name: multi-az-template
---
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata:
  name: multi-az-template
spec:
  subnetSelector:
    karpenter.sh/discovery: ${CLUSTER_NAME}

  # Configure for high availability
  metadataOptions:
    httpTokens: required
    httpEndpoint: enabled

  blockDeviceMappings:
    - deviceName: /dev/xvda
      ebs:
        volumeSize: 100Gi
        volumeType: gp3
        iops: 3000
        throughput: 125
        encrypted: true
        kmsKeyId: ${KMS_KEY_ARN}
        deleteOnTermination: true
"""

PLACEHOLDERS = {
    "${CLUSTER_NAME}": "sandbox",
    "${AWS_REGION}": "us-east-1",
    "${KMS_KEY_ARN}": "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000",
}


def design_docs(text, uid):
    for k, v in PLACEHOLDERS.items():
        text = text.replace(k, v)
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        d["metadata"]["name"] = "%s-%s" % (d["metadata"]["name"], uid)
    return docs


def api_for(sandbox):
    from kubernetes import config
    from kubernetes.client import Configuration

    cfg = Configuration()
    config.load_kube_config(config_file=sandbox.env["KUBECONFIG"], client_configuration=cfg)
    return kclient.KubeApi(cfg)


def deployment(name, pool, replicas, tolerations=(), resources=None, spread=False):
    requests = resources or {"cpu": "500m", "memory": "512Mi"}
    extended = {k: v for k, v in requests.items() if "/" in k}  # extended resources need limit == request
    spec = {
        "nodeSelector": {"karpenter.sh/nodepool": pool},
        "tolerations": list(tolerations),
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {
                "name": "c",
                "image": "registry.k8s.io/pause:3.10",
                "resources": dict({"requests": requests}, **({"limits": extended} if extended else {})),
            }
        ],
    }
    if spread:
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": name}},
            }
        ]
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


def toleration(key, value, effect="NoSchedule"):
    return {"key": key, "operator": "Equal", "value": value, "effect": effect}


def with_gpu_taint(docs):
    """The lint's fix for the design's GPU Provisioner (KPL006), made in the legacy input itself."""
    docs = copy.deepcopy(docs)
    docs[0]["spec"]["taints"] = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    return docs


def without_zone_label(docs):
    """The lint's fix for the design's multi-AZ Provisioner (KPL002): no fixed zone label."""
    docs = copy.deepcopy(docs)
    del docs[0]["spec"]["labels"]["topology.kubernetes.io/zone"]
    if not docs[0]["spec"]["labels"]:
        del docs[0]["spec"]["labels"]
    return docs


def lint_ids(result):
    return {m for w in result["warnings"] for m in re.findall(r"\((KPL\d+)\)", w)}


STRATEGIES = {
    "general-purpose": dict(
        source=GENERAL_PURPOSE,
        fix=None,
        design_lint=set(),
        replicas=3,
        tolerations=[toleration("dedicated", "workload")],
        resources=None,
        spread=False,
        capacity_types={"spot"},  # spot and on-demand allowed: Karpenter launches the cheaper spot
        taints={("dedicated", "workload", "NoSchedule")},
        labels={"environment": "production", "managed-by": "karpenter"},
        zones=None,
        other_kinds=["EC2NodeClass"],
        template_errors=[],
    ),
    "gpu": dict(
        source=GPU,
        fix=with_gpu_taint,
        design_lint={"KPL006"},
        replicas=2,
        tolerations=[toleration("nvidia.com/gpu", "true")],
        resources={"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
        spread=False,
        capacity_types={"on-demand"},
        taints={("nvidia.com/gpu", "true", "NoSchedule")},
        labels={"accelerator": "nvidia-gpu", "workload-type": "ai-ml"},
        zones=None,
        other_kinds=[],
        template_errors=[],
    ),
    "batch-spot": dict(
        source=BATCH,
        fix=None,
        design_lint={"KPL007"},
        replicas=4,
        tolerations=[toleration("spot", "true")],
        resources={"cpu": "1", "memory": "2Gi"},
        spread=False,
        capacity_types={"spot"},
        taints={("spot", "true", "NoSchedule")},
        labels={"workload-type": "batch", "scheduling": "interruptible"},
        zones=None,
        other_kinds=[],
        template_errors=[],
    ),
    "multi-az": dict(
        source=MULTI_AZ,
        fix=without_zone_label,
        design_lint={"KPL002"},
        replicas=3,
        tolerations=[],
        resources=None,
        spread=True,
        capacity_types={"spot"},
        taints=set(),
        labels={},
        zones=ZONES,
        other_kinds=[],  # the design's AWSNodeTemplate is refused: no instance profile, no security groups
        template_errors=["spec.instanceProfile", "spec.securityGroupSelector"],
    ),
}


def pool_nodes(sandbox, pool):
    return sandbox.core.list_node(label_selector="karpenter.sh/nodepool=%s" % pool).items


def pool_claims(sandbox, pool):
    claims = sandbox.custom.list_cluster_custom_object("karpenter.sh", "v1", "nodeclaims")["items"]
    return [c for c in claims if (c["metadata"].get("labels") or {}).get("karpenter.sh/nodepool") == pool]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_design_strategy_provisions_expected_nodes(sandbox, uid, strategy):
    s = STRATEGIES[strategy]
    design = design_docs(s["source"], uid)
    pool = design[0]["metadata"]["name"]
    app = "strategy-%s" % pool

    # as designed: converts and validates; the known design errors come back as lint warnings; check mode
    # writes nothing. A legacy file whose AWSNodeTemplate cannot be converted is refused as a whole (the
    # errors are named); its Provisioner alone goes on (the node class is the sandbox's KWOK class anyway).
    check_api = api_for(sandbox)
    if s["template_errors"]:
        with pytest.raises(karpenter_apply.InputError) as err:
            karpenter_apply.run(check_api, resource.NODEPOOL, design, node_class_ref=KWOK_REF, check_mode=True)
        for path in s["template_errors"]:
            assert "AWSNodeTemplate/" in str(err.value) and path in str(err.value), str(err.value)
        design = [d for d in design if d["kind"] == "Provisioner"]
    designed = karpenter_apply.run(check_api, resource.NODEPOOL, design, node_class_ref=KWOK_REF, check_mode=True)
    assert check_api.writes == 0
    assert [r["action"] for r in designed["results"]] == ["create"]
    assert s["design_lint"] <= lint_ids(designed), designed["warnings"]
    assert [o["kind"] for o in designed["converted_other_kinds"]] == s["other_kinds"]

    docs = s["fix"](design) if s["fix"] else design
    try:
        res = karpenter_apply.run(
            api_for(sandbox), resource.NODEPOOL, docs, node_class_ref=KWOK_REF, wait=True, wait_timeout=90
        )
        assert [r["action"] for r in res["results"]] == ["create"]
        assert res["not_ready"] == [], "NodePool %s not Ready" % pool
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        assert live["spec"]["template"]["spec"]["nodeClassRef"] == KWOK_REF

        sandbox.apply([deployment(app, pool, s["replicas"], s["tolerations"], s["resources"], s["spread"])])

        def running():
            pods = sandbox.core.list_namespaced_pod("default", label_selector="app=%s" % app).items
            return len([p for p in pods if p.status.phase == "Running"]) == s["replicas"] and pods

        pods = sandbox.wait_until("%d pods of %s Running" % (s["replicas"], strategy), running, 150)
        nodes = {n.metadata.name: n for n in pool_nodes(sandbox, pool)}
        assert nodes, "Karpenter launched no node for %s" % pool
        assert {p.spec.node_name for p in pods} <= set(nodes), "pods run on nodes of another pool"

        for n in nodes.values():
            labels = n.metadata.labels
            assert labels["karpenter.sh/capacity-type"] in s["capacity_types"], (n.metadata.name, labels)
            taints = {
                (t.key, t.value, t.effect)
                for t in n.spec.taints or []
                if not t.key.startswith(("node.", "karpenter.sh/"))
            }
            assert taints == s["taints"], (n.metadata.name, taints)
            for k, v in s["labels"].items():
                assert labels.get(k) == v, (n.metadata.name, k, labels.get(k))
        if strategy == "gpu":
            for n in nodes.values():
                assert n.metadata.labels["node.kubernetes.io/instance-type"].startswith("g5.")
                assert int(n.status.allocatable.get("nvidia.com/gpu", "0")) >= 1
        if strategy == "batch-spot":
            for n in nodes.values():
                assert n.metadata.labels["kubernetes.io/arch"] == "amd64"
                assert n.metadata.labels["karpenter.k8s.aws/instance-category"] in ("c", "m")
        if s["zones"]:
            pod_zones = {nodes[p.spec.node_name].metadata.labels["topology.kubernetes.io/zone"] for p in pods}
            assert pod_zones == s["zones"], "pods not spread over the three zones: %s" % pod_zones
    finally:
        sandbox.kubectl("delete", "deployment", app, "-n", "default", "--ignore-not-found", "--wait=false")
        sandbox.kubectl("delete", "nodepool", pool, "--ignore-not-found", "--wait=false")
        sandbox.wait_until(
            "nodes and NodeClaims of %s gone" % pool,
            lambda: not pool_nodes(sandbox, pool) and not pool_claims(sandbox, pool),
            180,
        )


def test_design_conversion_report(uid):
    """What the converter says about the design's Provisioners (no request at all: offline)."""
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import convert

    out, report = convert.convert(design_docs(GPU, uid))
    gpu = out[0]
    req = {r["key"]: r for r in gpu["spec"]["template"]["spec"]["requirements"]}
    # globs on instance-type become instance-family values (values match literally in v1); "p4.*" names no family:
    # the A100 families it prefixes are p4d and p4de
    assert req["karpenter.k8s.aws/instance-family"]["values"] == ["g5", "p4d", "p4de", "p3"]
    assert any("p4 is not an EC2 instance family" in r.message for r in report)
    assert "node.kubernetes.io/instance-type" not in req
    assert gpu["spec"]["template"]["spec"]["expireAfter"] == "168h"  # ttlSecondsUntilExpired 604800
    assert gpu["spec"]["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "300s"}
    assert any(r.severity == "warning" and "glob" in r.message for r in report)

    out, report = convert.convert(design_docs(BATCH, uid))
    assert out[0]["spec"]["weight"] == 50
    assert out[0]["spec"]["template"]["spec"]["expireAfter"] == "Never"  # no TTL in alpha: never expire
    assert any(r.severity == "error" and "providerRef" in r.path for r in report)  # the design has none

    out, report = convert.convert(design_docs(MULTI_AZ, uid))
    assert out[0]["spec"]["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"}
    # the template cannot be converted without input: no instance profile (alpha used a global default)
    # and no security-group selector (v1 requires one)
    errors = {r.path for r in report if r.severity == "error" and r.object_ref.startswith("AWSNodeTemplate/")}
    assert {"spec.instanceProfile", "spec.securityGroupSelector"} <= errors, errors
    nc = out[1]
    assert nc["kind"] == "EC2NodeClass"
    assert nc["spec"]["metadataOptions"]["httpPutResponseHopLimit"] == 2  # alpha default kept explicit
