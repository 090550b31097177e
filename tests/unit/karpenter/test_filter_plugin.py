"""The karpenter_convert / karpenter_validate Ansible filters."""

import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.karpenter_eks.platform.plugins.filter.karpenter import FilterModule

FILTERS = FilterModule().filters()
FILTER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "plugins", "filter")


def test_filters_are_registered():
    assert sorted(FILTERS) == ["karpenter_convert", "karpenter_validate"]


def test_validate_returns_errors_only_by_default(nodepool):
    nodepool["spec"]["template"]["spec"]["requirements"].append(
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.*"]}
    )
    errors = FILTERS["karpenter_validate"]([nodepool], known_nodeclasses=["default"])
    assert sorted(e["rule"] for e in errors) == ["KPL001", "label-value"]
    assert all(e["severity"] == "error" and e["object"] == "NodePool/general" for e in errors)
    assert (
        FILTERS["karpenter_validate"](nodepool, known_nodeclasses=["default"], lint=False)[0]["rule"] == "label-value"
    )


def test_validate_with_warnings(ec2nodeclass):
    ec2nodeclass["spec"]["amiSelectorTerms"] = [{"alias": "al2023@latest"}]
    assert FILTERS["karpenter_validate"](ec2nodeclass) == []
    warnings = FILTERS["karpenter_validate"](ec2nodeclass, warnings=True)
    assert [w["rule"] for w in warnings] == ["KPL023"]


def test_convert_accepts_yaml_text():
    text = """
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata: {name: p}
spec: {providerRef: {name: p}, ttlSecondsAfterEmpty: 30}
---
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata: {name: p}
spec: {instanceProfile: ip, subnetSelector: {a: b}, securityGroupSelector: {a: b}}
"""
    out = FILTERS["karpenter_convert"](text, ami_version="v20240807")
    assert [o["kind"] for o in out["objects"]] == ["NodePool", "EC2NodeClass"]
    assert out["objects"][1]["spec"]["amiSelectorTerms"] == [{"alias": "al2@v20240807"}]
    assert all(set(r) >= {"object", "path", "rule", "message", "severity", "text"} for r in out["report"])
    assert not [r for r in out["report"] if r["severity"] == "error"]


def test_bad_input_raises_filter_error():
    with pytest.raises(AnsibleFilterError):
        FILTERS["karpenter_validate"](42)
    with pytest.raises(AnsibleFilterError):
        FILTERS["karpenter_convert"]("a: [unclosed")
    with pytest.raises(AnsibleFilterError):
        FILTERS["karpenter_validate"]({}, known_nodeclasses="default")


@pytest.mark.parametrize("name", ["karpenter_convert", "karpenter_validate"])
def test_filter_docs(name):
    with open(os.path.join(FILTER_DIR, name + ".yml")) as fh:
        doc = yaml.safe_load(fh)
    assert doc["DOCUMENTATION"]["name"] == name
    assert "_input" in doc["DOCUMENTATION"]["options"]
    assert doc["EXAMPLES"].strip() and doc["RETURN"]["_value"]["type"]
