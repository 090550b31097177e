"""The karpenter_convert / karpenter_validate Ansible filters."""

import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.karpenter_eks.platform.plugins.filter.karpenter import FilterModule

FILTERS = FilterModule().filters()
FILTER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "plugins", "filter")


def test_filters_are_registered():
    assert sorted(FILTERS) == [
        "karpenter_convert",
        "karpenter_label_select",
        "karpenter_lint_controller_policy",
        "karpenter_lint_helm_values",
        "karpenter_lint_metrics",
        "karpenter_manifest",
        "karpenter_manifest_mismatches",
        "karpenter_validate",
    ]
    for name in FILTERS:  # every filter has its documentation file
        assert os.path.exists(os.path.join(FILTER_DIR, name + ".yml")), name


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


SHARED_CLASS = """\
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata: {name: a}
spec:
  template:
    spec:
      nodeClassRef: {name: shared}
      kubelet: {maxPods: 10}
---
# b has other kubelet settings: it gets a copy of the class
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata: {name: b}
spec:
  template:
    spec:
      nodeClassRef: {name: shared}
      kubelet: {maxPods: 20}
---
---
apiVersion: karpenter.k8s.aws/v1beta1
kind: EC2NodeClass
metadata: {name: shared}
spec:
  amiFamily: AL2023
  role: r
  amiSelectorTerms: [{alias: al2023@v20240807}]
  subnetSelectorTerms: [{tags: {a: b}}]
"""


def test_convert_with_source_names_file_document_and_line():
    out = FILTERS["karpenter_convert"](SHARED_CLASS, source="old/pools.yaml")
    assert [o["metadata"]["name"] for o in out["objects"]] == ["a", "b", "shared", "shared-b"]
    where = {(r["object"], r["rule"], r["file"], r["document"], r["line"]) for r in out["report"]}
    assert ("NodePool/a", "moved", "old/pools.yaml", 1, 1) in where  # from the kubelet distribution
    assert ("NodePool/b", "split", "old/pools.yaml", 2, 11) in where
    # the class (document 4: the empty one counts) has no securityGroupSelectorTerms: the conversion, the
    # validation of the class and of its copy report it, all at the class' document
    assert ("EC2NodeClass/shared", "unconvertible", "old/pools.yaml", 4, 21) in where
    assert ("EC2NodeClass/shared", "invalid-output", "old/pools.yaml", 4, 21) in where
    assert ("EC2NodeClass/shared-b", "invalid-output", "old/pools.yaml", 4, 21) in where
    assert {r["object"] for r in out["report"]} == {
        "NodePool/a",
        "NodePool/b",
        "EC2NodeClass/shared",
        "EC2NodeClass/shared-b",
    }
    first = next(r for r in out["report"] if r["object"] == "NodePool/b")
    assert first["text"].startswith("old/pools.yaml:11 (document 2): NodePool/b: ")


def test_convert_with_source_reports_unreadable_yaml_instead_of_failing():
    text = "apiVersion: karpenter.sh/v1alpha5\nkind: Provisioner\nmetadata:\n  name: x: y\n"
    out = FILTERS["karpenter_convert"](text, source="a.yaml")
    assert out["objects"] == []
    (entry,) = out["report"]
    assert (entry["file"], entry["line"], entry["rule"], entry["severity"]) == ("a.yaml", 4, "yaml", "error")
    assert "mapping values are not allowed" in entry["message"] and entry["text"].startswith("a.yaml:4: ")
    duplicate = FILTERS["karpenter_convert"]("a: 1\n\na: 2\n", source="d.yaml")["report"][0]
    assert duplicate["line"] == 3 and "duplicate key 'a'" in duplicate["message"]
    control = FILTERS["karpenter_convert"]("ok: 1\n\nbad: \x07\n", source="c.yaml")["report"][0]
    assert control["line"] == 3 and "control characters" in control["message"]
    not_utf8 = b"kind: NodePool\nmetadata: {name: \xff}\n".decode("utf-8", "surrogateescape")  # as b64decode gives
    entry = FILTERS["karpenter_convert"](not_utf8, source="b.yaml")["report"][0]
    assert (entry["line"], entry["message"]) == (2, "not UTF-8 text; nothing converted from this file")
    with pytest.raises(AnsibleFilterError, match="not valid YAML"):  # without source: a failure, as before
        FILTERS["karpenter_convert"](text)


def test_convert_with_source_of_objects_numbers_them():
    objs = [{"apiVersion": "karpenter.sh/v1alpha5", "kind": "Machine", "metadata": {"name": "m"}}, "text"]
    report = FILTERS["karpenter_convert"](objs, source="objs")["report"]
    assert [(r["object"], r["document"], "line" in r) for r in report] == [("Machine/m", 1, False), ("#1", 2, False)]
    assert report[1]["text"] == "objs (document 2): #1: not an object; skipped (unconvertible)"
    with pytest.raises(AnsibleFilterError, match="source"):
        FILTERS["karpenter_convert"](objs, source=["a"])


def test_bad_input_raises_filter_error():
    with pytest.raises(AnsibleFilterError):
        FILTERS["karpenter_validate"](42)
    with pytest.raises(AnsibleFilterError):
        FILTERS["karpenter_convert"]("a: [unclosed")
    with pytest.raises(AnsibleFilterError):
        FILTERS["karpenter_validate"]({}, known_nodeclasses="default")


@pytest.mark.parametrize(
    "name",
    ["karpenter_convert", "karpenter_validate", "karpenter_lint_helm_values", "karpenter_lint_controller_policy"],
)
def test_filter_docs(name):
    with open(os.path.join(FILTER_DIR, name + ".yml")) as fh:
        doc = yaml.safe_load(fh)
    assert doc["DOCUMENTATION"]["name"] == name
    assert "_input" in doc["DOCUMENTATION"]["options"]
    assert doc["EXAMPLES"].strip() and doc["RETURN"]["_value"]["type"]


def _live(obj, **meta):
    """What the apiserver returns: server metadata and status added."""
    import copy

    out = copy.deepcopy(obj)
    out["metadata"].update(
        uid="1234", resourceVersion="99", generation=3, creationTimestamp="2026-01-01T00:00:00Z", **meta
    )
    out["metadata"]["managedFields"] = [{"manager": "x", "operation": "Apply"}]
    out["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    return out


def test_manifest_strips_server_fields_and_applies_defaults(nodepool):
    nodepool["spec"]["template"]["spec"].pop("expireAfter", None)
    m = FILTERS["karpenter_manifest"](_live(nodepool))
    assert "status" not in m
    assert not {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"} & set(m["metadata"])
    assert m["spec"]["template"]["spec"]["expireAfter"] == "720h"  # CRD default written out
    with pytest.raises(AnsibleFilterError, match="expected an object"):
        FILTERS["karpenter_manifest"]("nope")


def test_manifest_mismatches(nodepool, ec2nodeclass):
    same = FILTERS["karpenter_manifest_mismatches"]([nodepool, ec2nodeclass], [_live(ec2nodeclass), _live(nodepool)])
    assert same == []
    changed = _live(nodepool)
    changed["spec"]["limits"]["cpu"] = "7"
    extra = dict(_live(ec2nodeclass), metadata={"name": "other"})
    out = FILTERS["karpenter_manifest_mismatches"]([nodepool, ec2nodeclass], [changed, extra])
    assert out == [
        "NodePool/general: differs at spec.limits[cpu]",
        "EC2NodeClass/default: missing",
        "EC2NodeClass/other: unexpected",
    ]
    # a field present only on the live side is a difference too (both directions are compared)
    more = _live(nodepool)
    more["metadata"].setdefault("labels", {})["extra"] = "1"
    assert FILTERS["karpenter_manifest_mismatches"]([nodepool], [more]) == [
        "NodePool/general: differs at metadata.labels"
    ]
    with pytest.raises(AnsibleFilterError, match="actual must be a list"):
        FILTERS["karpenter_manifest_mismatches"]([nodepool], "x")


def test_label_select():
    objs = [
        {"metadata": {"name": "a", "labels": {"team": "x", "tier": "1"}}},
        {"metadata": {"name": "b", "labels": {"team": "y"}}},
        {"metadata": {"name": "c"}},
    ]

    def names(selector):
        return [o["metadata"]["name"] for o in FILTERS["karpenter_label_select"](objs, selector)]

    assert names("team=x") == ["a"]
    assert names("team==y") == ["b"]
    assert names("team!=x") == ["b", "c"]
    assert names("tier") == ["a"]
    assert names("!tier") == ["b", "c"]
    assert names("team=x, tier=1") == ["a"]
    assert names("team=x,tier=2") == []
    assert names("") == ["a", "b", "c"]
    with pytest.raises(AnsibleFilterError, match="selector must be a string"):
        FILTERS["karpenter_label_select"](objs, None)


@pytest.mark.parametrize("how", ["null", "absent"])
def test_validate_refuses_an_ec2nodeclass_without_spec(ec2nodeclass, how):
    if how == "null":
        ec2nodeclass["spec"] = None
    else:
        del ec2nodeclass["spec"]
    (error,) = FILTERS["karpenter_validate"](ec2nodeclass)
    assert (error["object"], error["path"], error["rule"]) == ("EC2NodeClass/default", "spec", "spec-required")
    # the same from a rendered YAML template whose spec variable was undefined
    (error,) = FILTERS["karpenter_validate"](
        "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata: {name: default}\nspec:\n"
    )
    assert error["rule"] == "spec-required"


def test_yaml_string_with_a_duplicate_key_is_an_error_naming_the_key_and_line():
    text = (
        "apiVersion: karpenter.sh/v1\n"
        "kind: NodePool\n"
        "metadata: {name: gpu}\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      taints:\n"
        "      - {key: nvidia.com/gpu, effect: NoSchedule}\n"
        "      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}\n"
        "      taints: []\n"
    )
    for name in ("karpenter_validate", "karpenter_convert"):
        with pytest.raises(AnsibleFilterError) as exc:
            FILTERS[name](text)
        message = str(exc.value)
        assert "duplicate key 'taints'" in message and "line 10" in message and "first at line 7" in message


def test_lint_helm_values_returns_errors_and_warnings():
    values = {"settings": {"clusterName": ""}, "resources": {"requests": {"cpu": "1"}}}
    issues = FILTERS["karpenter_lint_helm_values"](values, name="rel")
    assert [(i["rule"], i["path"], i["severity"]) for i in issues] == [
        ("KPL029", "settings.clusterName", "error"),
        ("KPL029", "settings.interruptionQueue", "warning"),
        ("KPL029", "resources", "error"),
        ("KPL029", "controller.resources.requests", "warning"),
    ]
    assert all(i["object"] == "HelmValues/rel" and i["text"] and i["message"] for i in issues)
    assert issues[2]["hint"] == "controller.resources"
    text = "settings: {clusterName: c, interruptionQueue: q}\ncontroller: {resources: {requests: {cpu: '1'}}}\n"
    assert FILTERS["karpenter_lint_helm_values"](text) == []
    with pytest.raises(AnsibleFilterError, match="mapping"):
        FILTERS["karpenter_lint_helm_values"]([1])
    with pytest.raises(AnsibleFilterError, match="not valid YAML"):
        FILTERS["karpenter_lint_helm_values"]("a: 1\na: 2\n")


def test_lint_controller_policy():
    complete = {"Statement": [{"Effect": "Allow", "Action": ["iam:*", "ec2:*"], "Resource": "*"}]}
    # the permissions may be spread over several documents (the role's managed policies)
    split = [
        {"Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]},
        {"Statement": {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}},
    ]
    assert FILTERS["karpenter_lint_controller_policy"](complete) == []
    assert FILTERS["karpenter_lint_controller_policy"](split) == []
    (issue,) = FILTERS["karpenter_lint_controller_policy"](split[:1], name="p")
    assert (issue["rule"], issue["path"], issue["severity"], issue["object"]) == (
        "KPL028",
        "Statement",
        "error",
        "IAMPolicy/p",
    )
    assert "missing v1 controller permissions" in issue["message"] and "ec2:" in issue["message"]
    assert "iam:" not in issue["message"]
    with pytest.raises(AnsibleFilterError, match="policy document"):
        FILTERS["karpenter_lint_controller_policy"](["x"])
