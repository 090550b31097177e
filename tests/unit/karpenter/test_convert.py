"""Conversion of v1alpha5/v1alpha1/v1beta1 objects to v1 (docs/karpenter-v1.md section 3)."""

import copy

import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.convert import convert
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import validate, validate_batch

# docs/karpenter-v1.md section 3.5, verbatim
WORKED_INPUT = """
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata: {name: gpu}
spec:
  providerRef: {name: gpu}
  requirements:
    - {key: node.kubernetes.io/instance-type, operator: In, values: ["g5.*"]}     # invalid glob
    - {key: karpenter.sh/capacity-type, operator: In, values: ["spot", "on-demand"]}
  taints: [{key: nvidia.com/gpu, effect: NoSchedule}]
  kubeletConfiguration: {maxPods: 58}
  limits: {resources: {cpu: "256", nvidia.com/gpu: "16"}}
  ttlSecondsAfterEmpty: 60
  ttlSecondsUntilExpired: 604800
---
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata: {name: gpu}
spec: {instanceProfile: KarpenterNodeInstanceProfile-prod, subnetSelector: {karpenter.sh/discovery: prod},
       securityGroupSelector: {karpenter.sh/discovery: prod}}
"""

WORKED_OUTPUT = """
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: gpu}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: gpu}
      requirements:
        - {key: karpenter.k8s.aws/instance-family, operator: In, values: ["g5"]}   # from "g5.*" (reported)
        - {key: karpenter.sh/capacity-type, operator: In, values: ["spot", "on-demand"]}
        - {key: kubernetes.io/os, operator: In, values: ["linux"]}                  # alpha default made explicit
        - {key: kubernetes.io/arch, operator: In, values: ["amd64"]}                # alpha default made explicit
      taints: [{key: nvidia.com/gpu, effect: NoSchedule}]
      expireAfter: 168h
  disruption: {consolidationPolicy: WhenEmpty, consolidateAfter: 60s}
  limits: {cpu: "256", nvidia.com/gpu: "16"}
---
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: gpu}
spec:
  instanceProfile: KarpenterNodeInstanceProfile-prod
  amiFamily: AL2                              # alpha default; prefer AL2023 (reported); may be omitted with an alias
  amiSelectorTerms: [{alias: al2@latest}]     # pin a version; AL2 stops at k8s 1.32 (reported)
  subnetSelectorTerms: [{tags: {karpenter.sh/discovery: prod}}]
  securityGroupSelectorTerms: [{tags: {karpenter.sh/discovery: prod}}]
  kubelet: {maxPods: 58}
  metadataOptions: {httpEndpoint: enabled, httpProtocolIPv6: disabled, httpPutResponseHopLimit: 2, httpTokens: required}  # alpha default kept (reported)
"""


def report_for(report, path=None, severity=None, contains=None):
    out = report
    if path is not None:
        out = [i for i in out if i.path == path]
    if severity is not None:
        out = [i for i in out if i.severity == severity]
    if contains is not None:
        out = [i for i in out if contains in i.message]
    return out


def test_worked_example_exact_output():
    objects, report = convert(list(yaml.safe_load_all(WORKED_INPUT)))
    assert objects == list(yaml.safe_load_all(WORKED_OUTPUT))
    # key order follows the reference too (what a YAML dump shows)
    expected = list(yaml.safe_load_all(WORKED_OUTPUT))
    assert list(objects[1]["spec"]) == list(expected[1]["spec"])
    assert list(objects[0]["spec"]["template"]["spec"]) == list(expected[0]["spec"]["template"]["spec"])


def test_worked_example_report():
    _objects, report = convert(list(yaml.safe_load_all(WORKED_INPUT)))
    assert report_for(report, severity="error") == []
    assert report_for(report, path="spec.requirements[0].values", severity="warning", contains="g5")
    assert report_for(report, contains="kubernetes.io/os")
    assert report_for(report, contains="kubernetes.io/arch")
    assert report_for(report, contains="al2@latest", severity="warning")
    assert report_for(report, contains="AL2 AMIs only up to Kubernetes 1.32", severity="warning")
    assert report_for(report, contains="httpPutResponseHopLimit 2", severity="warning")
    assert all(i.source == "convert" and i.object_ref for i in report)


def test_worked_example_output_passes_validate():
    objects, _report = convert(list(yaml.safe_load_all(WORKED_INPUT)))
    for obj in objects:
        assert validate(obj).ok, [str(i) for i in validate(obj).issues]
    assert validate_batch(objects, known_nodeclasses=[]).ok


def test_alpha_without_ttls_keeps_never_scale_in_and_no_expiry():
    prov = {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {
            "name": "default",
            "uid": "x",
            "resourceVersion": "1",
            "annotations": {"karpenter.sh/provisioner-hash": "1"},
        },
        "spec": {"providerRef": {"name": "default"}, "labels": {"team": "a"}},
        "status": {"resources": {}},
    }
    (np,), report = convert(prov, validate=False)
    assert np["metadata"] == {"name": "default"}
    assert np["spec"]["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"}
    assert np["spec"]["template"]["spec"]["expireAfter"] == "Never"
    assert np["spec"]["template"]["metadata"] == {"labels": {"team": "a"}}
    keys = [(r["key"], r["operator"], r["values"]) for r in np["spec"]["template"]["spec"]["requirements"]]
    assert keys == [
        ("kubernetes.io/os", "In", ["linux"]),
        ("kubernetes.io/arch", "In", ["amd64"]),
        ("karpenter.sh/capacity-type", "In", ["on-demand"]),
        ("karpenter.k8s.aws/instance-category", "In", ["c", "m", "r"]),
        ("karpenter.k8s.aws/instance-generation", "Gt", ["2"]),
    ]
    assert report_for(report, path="spec.template.spec.expireAfter", severity="info")
    assert "status" not in np


def test_ignore_alpha_defaults():
    prov = {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": "p"},
        "spec": {"providerRef": {"name": "p"}},
    }
    (np,), unused = convert(prov, ignore_alpha_defaults=True, validate=False)
    assert np["spec"]["template"]["spec"]["requirements"] == []


def test_consolidation_enabled_and_both_set():
    prov = {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": "p"},
        "spec": {
            "providerRef": {"name": "p"},
            "consolidation": {"enabled": True},
            "ttlSecondsAfterEmpty": 30,
            "ttlSecondsUntilExpired": 90,
        },
    }
    (np,), report = convert(prov, validate=False)
    assert np["spec"]["disruption"] == {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"}
    assert np["spec"]["template"]["spec"]["expireAfter"] == "90s"
    (conflict,) = report_for(report, path="spec.ttlSecondsAfterEmpty")
    assert conflict.severity == "warning" and "expected exactly one, got both" in conflict.message


def test_inline_provider_becomes_ec2nodeclass_and_lossy_items_reported():
    prov = {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": "legacy"},
        "spec": {
            "provider": {
                "apiVersion": "extensions.karpenter.sh/v1alpha1",
                "kind": "AWS",
                "instanceProfile": "ip",
                "subnetSelector": {"aws-ids": "subnet-1,subnet-2"},
                "securityGroupSelector": {"Name": "a,b", "env": "prod"},
                "launchTemplate": "my-lt",
                "tags": {"team": "x", "karpenter.sh/provisioner-name": "legacy", "kubernetes.io/cluster/prod": "owned"},
            },
            "kubeletConfiguration": {"containerRuntime": "dockerd", "maxPods": 20},
            "requirements": [
                {"key": "karpenter.k8s.aws/instance-pods", "operator": "Gt", "values": ["10"]},
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.*large"]},
                {"key": "failure-domain.beta.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]},
            ],
            "annotations": {"karpenter.sh/do-not-consolidate": "true"},
        },
    }
    objects, report = convert(prov, ami_version="v20240807")
    np, nc = objects
    assert np["spec"]["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "legacy",
    }
    assert np["spec"]["template"]["metadata"]["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    keys = [r["key"] for r in np["spec"]["template"]["spec"]["requirements"]]
    assert "karpenter.k8s.aws/instance-pods" not in keys and "topology.kubernetes.io/zone" in keys
    assert "node.kubernetes.io/instance-type" not in keys  # only an untranslatable glob: dropped, reported
    assert nc["metadata"] == {"name": "legacy"}
    assert nc["spec"]["subnetSelectorTerms"] == [{"id": "subnet-1"}, {"id": "subnet-2"}]
    assert nc["spec"]["securityGroupSelectorTerms"] == [
        {"tags": {"Name": "a", "env": "prod"}},
        {"tags": {"Name": "b", "env": "prod"}},
    ]
    assert nc["spec"]["amiSelectorTerms"] == [{"alias": "al2@v20240807"}]
    assert nc["spec"]["tags"] == {"team": "x"}
    assert nc["spec"]["kubelet"] == {"maxPods": 20}
    (lt,) = report_for(report, path="spec.provider.launchTemplate")
    assert lt.severity == "error" and 'cannot convert with "spec.launchTemplate"' in lt.message
    (cr,) = report_for(report, path="spec.kubeletConfiguration.containerRuntime")
    assert cr.severity == "warning"
    assert report_for(report, path="spec.requirements[0]", contains="instance-pods")
    assert report_for(report, path="spec.requirements[1].values", severity="error")
    assert report_for(report, path="spec.provider.tags[karpenter.sh/provisioner-name]")
    assert report_for(report, path="spec.provider.tags[kubernetes.io/cluster/prod]")
    assert validate_batch(objects).ok


def test_ami_selector_cartesian_product_and_ids():
    tpl = {
        "apiVersion": "karpenter.k8s.aws/v1alpha1",
        "kind": "AWSNodeTemplate",
        "metadata": {"name": "custom"},
        "spec": {
            "instanceProfile": "ip",
            "amiFamily": "Bottlerocket",
            "amiSelector": {"aws::ids": "ami-1,ami-2", "aws::name": "a,b", "aws::owners": "self", "team": "x"},
            "subnetSelector": {"karpenter.sh/discovery": "prod"},
            "securityGroupSelector": {"aws::ids": "sg-1"},
            "metadataOptions": {"httpPutResponseHopLimit": 1},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "107374182400"}}],
        },
    }
    (nc,), report = convert(tpl)
    assert nc["spec"]["amiFamily"] == "Bottlerocket"
    assert nc["spec"]["amiSelectorTerms"] == [
        {"id": "ami-1"},
        {"id": "ami-2"},
        {"tags": {"team": "x"}, "name": "a", "owner": "self"},
        {"tags": {"team": "x"}, "name": "b", "owner": "self"},
    ]
    assert nc["spec"]["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert not report_for(report, contains="httpPutResponseHopLimit 2")
    assert nc["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "100Gi"
    assert report_for(report, severity="error") == []
    assert validate(nc).ok


@pytest.mark.parametrize(
    "spec,needle",
    [
        ({"amiFamily": "Ubuntu"}, "Ubuntu was removed"),
        ({"amiFamily": "Custom"}, "needs explicit AMIs"),
        ({"instanceProfile": None}, "no instanceProfile"),
        ({"subnetSelector": None}, "selector missing"),
    ],
)
def test_unconvertible_nodetemplates(spec, needle):
    base = {"instanceProfile": "ip", "subnetSelector": {"a": "b"}, "securityGroupSelector": {"a": "b"}}
    base.update(spec)
    base = {k: v for k, v in base.items() if v is not None}
    _objs, report = convert(
        {"apiVersion": "karpenter.k8s.aws/v1alpha1", "kind": "AWSNodeTemplate", "metadata": {"name": "t"}, "spec": base}
    )
    assert [i for i in report if i.severity == "error" and needle in i.message]


def test_ubuntu_with_amis_becomes_al2_with_ubuntu_root_volume():
    tpl = {
        "apiVersion": "karpenter.k8s.aws/v1alpha1",
        "kind": "AWSNodeTemplate",
        "metadata": {"name": "u"},
        "spec": {
            "amiFamily": "Ubuntu",
            "amiSelector": {"aws::ids": "ami-9"},
            "subnetSelector": {"a": "b"},
            "securityGroupSelector": {"a": "b"},
        },
    }
    (nc,), report = convert(tpl, node_role="NodeRole")
    assert nc["spec"]["role"] == "NodeRole" and "instanceProfile" not in nc["spec"]
    assert nc["spec"]["amiFamily"] == "AL2"
    assert nc["spec"]["blockDeviceMappings"] == [
        {"deviceName": "/dev/sda1", "ebs": {"volumeSize": "20Gi", "volumeType": "gp3", "encrypted": True}}
    ]
    assert report_for(report, severity="warning", contains="Ubuntu")
    assert report_for(report, severity="error") == []


def test_al2_on_kubernetes_133_is_an_error():
    tpl = {
        "apiVersion": "karpenter.k8s.aws/v1alpha1",
        "kind": "AWSNodeTemplate",
        "metadata": {"name": "t"},
        "spec": {"instanceProfile": "i", "subnetSelector": {"a": "b"}, "securityGroupSelector": {"a": "b"}},
    }
    _objs, report = convert(tpl, kubernetes_version="1.33")
    assert report_for(report, severity="error", contains="AL2 AMIs only up to Kubernetes 1.32")


def test_shared_template_with_different_kubelets_is_split():
    docs = [
        {
            "apiVersion": "karpenter.sh/v1alpha5",
            "kind": "Provisioner",
            "metadata": {"name": "a"},
            "spec": {"providerRef": {"name": "shared"}, "kubeletConfiguration": {"maxPods": 10}},
        },
        {
            "apiVersion": "karpenter.sh/v1alpha5",
            "kind": "Provisioner",
            "metadata": {"name": "b"},
            "spec": {"providerRef": {"name": "shared"}, "kubeletConfiguration": {"maxPods": 20}},
        },
        {
            "apiVersion": "karpenter.sh/v1alpha5",
            "kind": "Provisioner",
            "metadata": {"name": "c"},
            "spec": {"providerRef": {"name": "shared"}, "kubeletConfiguration": {"maxPods": 10}},
        },
        {
            "apiVersion": "karpenter.k8s.aws/v1alpha1",
            "kind": "AWSNodeTemplate",
            "metadata": {"name": "shared"},
            "spec": {"instanceProfile": "i", "subnetSelector": {"a": "b"}, "securityGroupSelector": {"a": "b"}},
        },
    ]
    objects, report = convert(docs)
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert names == [
        ("NodePool", "a"),
        ("NodePool", "b"),
        ("NodePool", "c"),
        ("EC2NodeClass", "shared"),
        ("EC2NodeClass", "shared-b"),
    ]
    refs = [o["spec"]["template"]["spec"]["nodeClassRef"]["name"] for o in objects[:3]]
    assert refs == ["shared", "shared-b", "shared"]
    assert objects[3]["spec"]["kubelet"] == {"maxPods": 10} and objects[4]["spec"]["kubelet"] == {"maxPods": 20}
    assert report_for(report, severity="warning", contains="different kubelet settings")
    assert validate_batch(objects).ok


def test_kubelet_for_a_template_not_in_the_input_is_reported():
    prov = {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": "a"},
        "spec": {"providerRef": {"name": "elsewhere"}, "kubeletConfiguration": {"maxPods": 10}},
    }
    _objects, report = convert(prov)
    (err,) = report_for(report, severity="error")
    assert "EC2NodeClass/elsewhere" in err.message and '"maxPods": 10' in err.message


def test_v1beta1_nodepool_and_ec2nodeclass():
    docs = list(
        yaml.safe_load_all(
            """
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata: {name: default, annotations: {karpenter.sh/nodepool-hash: "123"}}
spec:
  template:
    metadata: {labels: {team: a}}
    spec:
      nodeClassRef: {apiVersion: karpenter.k8s.aws/v1beta1, kind: EC2NodeClass, name: default}
      requirements: [{key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m], minValues: 2}]
      kubelet: {maxPods: 110, systemReserved: {cpu: 100m}}
  disruption: {consolidationPolicy: WhenUnderutilized, expireAfter: 336h, budgets: [{nodes: "5%"}]}
  limits: {cpu: 100}
  weight: 5
---
apiVersion: karpenter.k8s.aws/v1beta1
kind: EC2NodeClass
metadata: {name: default}
spec:
  amiFamily: AL2023
  role: NodeRole
  subnetSelectorTerms: [{tags: {karpenter.sh/discovery: prod}}]
  securityGroupSelectorTerms: [{id: sg-1}]
  userData: "x"
  metadataOptions: {httpTokens: required}
"""
        )
    )
    objects, report = convert(docs, ami_version="v20240807")
    np, nc = objects
    assert np["apiVersion"] == "karpenter.sh/v1" and np["metadata"] == {"name": "default"}
    assert np["spec"]["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "default",
    }
    assert np["spec"]["template"]["spec"]["expireAfter"] == "336h"
    assert "kubelet" not in np["spec"]["template"]["spec"]
    assert np["spec"]["disruption"] == {
        "consolidationPolicy": "WhenEmptyOrUnderutilized",
        "consolidateAfter": "0s",
        "budgets": [{"nodes": "5%"}],
    }
    assert np["spec"]["limits"] == {"cpu": 100} and np["spec"]["weight"] == 5
    assert nc["apiVersion"] == "karpenter.k8s.aws/v1"
    assert nc["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20240807"}]
    assert nc["spec"]["kubelet"] == {"maxPods": 110, "systemReserved": {"cpu": "100m"}}
    assert nc["spec"]["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpProtocolIPv6": "disabled",
        "httpPutResponseHopLimit": 2,
        "httpTokens": "required",
    }
    assert report_for(report, severity="error") == []
    assert report_for(report, contains="v1beta1 default")
    assert validate_batch(objects).ok


def test_v1beta1_when_empty_keeps_consolidate_after():
    np = {
        "apiVersion": "karpenter.sh/v1beta1",
        "kind": "NodePool",
        "metadata": {"name": "e"},
        "spec": {
            "template": {"spec": {"nodeClassRef": {"name": "d"}, "requirements": []}},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
        },
    }
    (out,), unused = convert(np)
    assert out["spec"]["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"}


def test_v1_and_other_objects_pass_through(nodepool):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    objects, report = convert([nodepool, cm])
    assert objects == [nodepool, cm] and objects[0] is not nodepool
    assert [i.rule for i in report] == ["passthrough"]


def test_conversion_does_not_modify_input():
    docs = list(yaml.safe_load_all(WORKED_INPUT))
    before = copy.deepcopy(docs)
    convert(docs)
    assert docs == before


def _glob_provisioner(values, operator="In"):
    return {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": "gpu"},
        "spec": {
            "providerRef": {"name": "gpu"},
            "requirements": [{"key": "node.kubernetes.io/instance-type", "operator": operator, "values": values}],
        },
    }


def _family_requirement(objects):
    pool = [o for o in objects if o["kind"] == "NodePool"][0]
    reqs = pool["spec"]["template"]["spec"]["requirements"]
    return [r for r in reqs if r["key"] == "karpenter.k8s.aws/instance-family"]


def test_family_glob_that_is_not_a_family_uses_the_families_it_prefixes():
    # the design's "p4.*" meant the A100 instances: there is no p4 family, they are p4d and p4de
    objects, report = convert([_glob_provisioner(["p4.*", "g5.*"])])
    assert _family_requirement(objects) == [
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["p4d", "p4de", "g5"]}
    ]
    warning = report_for(report, path="spec.requirements[0].values", severity="warning")
    assert warning and "p4 is not an EC2 instance family; using ['p4d', 'p4de']" in warning[0].message
    assert report_for(report, severity="error") == []
    objects, report = convert([_glob_provisioner(["p4.*"], operator="NotIn")])
    assert _family_requirement(objects)[0]["operator"] == "NotIn"
    assert "excluding ['p4d', 'p4de']" in report_for(report, severity="warning", contains="p4 is not")[0].message


def test_family_glob_naming_no_family_is_an_error():
    objects, report = convert([_glob_provisioner(["zz9.*"])])
    errors = report_for(report, path="spec.requirements[0].values", severity="error")
    assert errors and "zz9.*" in errors[0].message and "no known EC2 instance family" in errors[0].message
    assert _family_requirement(objects) == []  # dropped, reported: nothing silently matches nothing
    objects, report = convert([_glob_provisioner(["zz9.*", "m5.*"])])
    assert _family_requirement(objects)[0]["values"] == ["m5"]
    assert report_for(report, severity="error", contains="zz9.*")


def _provisioner(**spec):
    base = {"providerRef": {"name": "default"}}
    base.update(spec)
    return {"apiVersion": "karpenter.sh/v1alpha5", "kind": "Provisioner", "metadata": {"name": "p"}, "spec": base}


def _template(**spec):
    base = {"instanceProfile": "x", "subnetSelector": {"a": "b"}, "securityGroupSelector": {"a": "b"}}
    base.update(spec)
    return {
        "apiVersion": "karpenter.k8s.aws/v1alpha1",
        "kind": "AWSNodeTemplate",
        "metadata": {"name": "t"},
        "spec": base,
    }


def _reqs(objs):
    return {r["key"]: r.get("values") for r in objs[0]["spec"]["template"]["spec"]["requirements"]}


@pytest.mark.parametrize(
    "values, key",
    [
        (["c", "r", "m"], "karpenter.k8s.aws/instance-category"),
        (["c5", "m6i"], "karpenter.k8s.aws/instance-family"),
        (["foo"], "node.kubernetes.io/instance-family"),
        (["c", "c5"], "node.kubernetes.io/instance-family"),
    ],
)
def test_instance_family_key_is_renamed_only_where_the_values_are_valid(values, key):
    req = {"key": "node.kubernetes.io/instance-family", "operator": "In", "values": values}
    objs, report = convert(_provisioner(requirements=[req]), validate=False)
    assert _reqs(objs)[key] == values
    notes = [r for r in report if r.path == "spec.requirements[0].key"]
    assert len(notes) == 1
    if key.startswith("node."):
        assert notes[0].severity == "warning" and "kept" in notes[0].message
    else:
        assert notes[0].severity == "info" and key in notes[0].message


def test_ttl_until_expired_zero_is_not_converted_to_zero_seconds():
    objs, report = convert(_provisioner(ttlSecondsUntilExpired=0), validate=False)
    assert "expireAfter" not in objs[0]["spec"]["template"]["spec"]
    errors = [r for r in report if r.path == "spec.ttlSecondsUntilExpired"]
    assert [r.severity for r in errors] == ["error"] and "Never" in errors[0].message


@pytest.mark.parametrize("field", ["ttlSecondsUntilExpired", "ttlSecondsAfterEmpty"])
def test_ttl_past_go_duration_is_reported_and_written_as_never(field):
    objs, report = convert(_provisioner(**{field: 10**12}), validate=True)
    spec = objs[0]["spec"]
    value = (
        spec["template"]["spec"]["expireAfter"]
        if field == "ttlSecondsUntilExpired"
        else spec["disruption"]["consolidateAfter"]
    )
    assert value == "Never"
    notes = [r for r in report if r.path == "spec." + field]
    assert notes and "time.Duration" in notes[0].message
    assert not [r for r in report if r.rule == "invalid-output"]
    ok, _report = convert(_provisioner(**{field: 9223372036}), validate=True)
    assert "9223372036s" in str(ok[0]["spec"])


def test_non_string_requirement_values_become_the_strings_kubectl_sends():
    req = {"key": "example.com/flag", "operator": "In", "values": [True, 1, False]}
    objs, report = convert(_provisioner(requirements=[req]), validate=False)
    assert _reqs(objs)["example.com/flag"] == ["true", "1", "false"]
    assert len([r for r in report if r.path.startswith("spec.requirements[0].values[")]) == 3


@pytest.mark.parametrize(
    "family, version, alias",
    [
        ("AL2023", "v20240807", "al2023@v20240807"),
        ("AL2", "v20240807", "al2@v20240807"),
        ("Bottlerocket", "v20240807", "bottlerocket@latest"),
        ("Bottlerocket", "v1.20.3", "bottlerocket@v1.20.3"),
        ("AL2023", "v1.20.3", "al2023@latest"),
        ("Windows2022", "v20240807", "windows2022@latest"),
    ],
)
def test_ami_version_is_applied_only_to_aliases_it_fits(family, version, alias):
    objs, report = convert(_template(amiFamily=family), ami_version=version, validate=False)
    assert objs[0]["spec"]["amiSelectorTerms"] == [{"alias": alias}]
    mismatch = [r for r in report if "is not a" in r.message and "release" in r.message]
    assert bool(mismatch) == (alias.endswith("@latest") and not family.startswith("Windows"))


def test_custom_ami_family_warns_about_the_unregistered_taint():
    objs, report = convert(_template(amiFamily="Custom", amiSelector={"aws-ids": "ami-123"}), validate=False)
    assert objs[0]["spec"]["amiFamily"] == "Custom"
    warnings = [r for r in report if r.path == "spec.amiFamily" and r.severity == "warning"]
    assert warnings and "karpenter.sh/unregistered:NoExecute" in warnings[0].message


def test_v1alpha5_machine_is_named_as_a_legacy_kind_not_converted():
    machine = {"apiVersion": "karpenter.sh/v1alpha5", "kind": "Machine", "metadata": {"name": "m"}}
    objs, report = convert([machine], validate=False)
    assert objs == []
    assert len(report) == 1 and report[0].severity == "warning"
    assert "legacy kind that is not converted" in report[0].message and "not a legacy" not in report[0].message
