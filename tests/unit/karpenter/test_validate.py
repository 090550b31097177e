"""validate() / validate_batch(): runtime checks Karpenter applies after admission, legacy kinds, batches."""

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import validate as validate_mod
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import (
    BatchResult,
    ValidationResult,
    validate,
    validate_batch,
)


def runtime_errors(result):
    return [i for i in result.errors if i.source == "runtime"]


def test_result_api(nodepool):
    result = validate(nodepool)
    assert isinstance(result, ValidationResult)
    assert result.ok and result.errors == [] and result.warnings == []
    assert result.object_ref == "NodePool/general"
    assert result.kind == "NodePool" and result.api_version == "karpenter.sh/v1"
    d = result.to_dict()
    assert d["ok"] is True and d["defaulted"]["spec"]["disruption"]["consolidateAfter"] == "1m"


def test_glob_value_passes_apiserver_but_fails_runtime_validation(nodepool):
    nodepool["spec"]["template"]["spec"]["requirements"].append(
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.*"]}
    )
    result = validate(nodepool)
    assert [i.source for i in result.errors] == ["runtime"]
    (err,) = result.errors
    assert err.path == "spec.template.spec.requirements[4].values[0]"
    assert err.rule == "label-value"
    assert "invalid value g5.* for key node.kubernetes.io/instance-type" in err.message


@pytest.mark.parametrize(
    "requirement,rule",
    [
        ({"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["preemptible"]}, "well-known-values"),
        (
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "x"], "minValues": 2},
            "well-known-values",
        ),
        ({"key": "karpenter.k8s.aws/instance-tenancy", "operator": "In", "values": ["host"]}, "well-known-values"),
        ({"key": "example.com/a", "operator": "In", "values": ["has space"]}, "label-value"),
        ({"key": "example.com/a", "operator": "In", "values": ["x" * 64]}, "label-value"),
    ],
)
def test_runtime_requirement_checks(nodepool, requirement, rule):
    nodepool["spec"]["template"]["spec"]["requirements"] = [requirement]
    result = validate(nodepool)
    assert rule in [i.rule for i in runtime_errors(result)], [str(i) for i in result.issues]


def test_runtime_does_not_repeat_apiserver_errors(nodepool):
    nodepool["spec"]["template"]["spec"]["requirements"] = [
        {"key": "karpenter.sh/foo", "operator": "Gt", "values": ["x"]}
    ]
    result = validate(nodepool)
    # CEL already rejects the key and the Gt value: the runtime check (never reached) adds nothing
    assert [i.source for i in result.errors] == ["cel", "cel"]


def test_runtime_validate_requirement_port():
    assert validate_mod.validate_requirement({"key": "example.com/a", "operator": "Exists"}) == []
    out = validate_mod.validate_requirement({"key": "example.com/a", "operator": "Gte", "values": ["-1"]})
    assert [r[0] for r in out] == ["label-value", "numeric-operator"]  # "-1" is not a label value either
    out = validate_mod.validate_requirement({"key": "example.com/a", "operator": "Lt", "values": ["10"]})
    assert out == []
    out = validate_mod.validate_requirement(
        {"key": "failure-domain.beta.kubernetes.io/zone", "operator": "In", "values": ["a"]}
    )
    assert out == []  # normalised alias is well known
    out = validate_mod.validate_requirement({"key": "karpenter.sh/nodepool", "operator": "Foo", "values": ["a"]})
    assert sorted(r[0] for r in out) == ["operator"]


def test_duplicate_taints_across_taints_and_startup_taints(nodepool):
    nodepool["spec"]["template"]["spec"]["startupTaints"].append(
        {"key": "example.com/dedicated", "value": "x", "effect": "NoSchedule"}
    )
    errs = runtime_errors(validate(nodepool))
    assert [(i.path, i.rule) for i in errs] == [("spec.template.spec.startupTaints[1]", "duplicate-taint")]
    assert errs[0].message == "duplicate taint Key/Effect pair example.com/dedicated=NoSchedule"


def test_runtime_label_checks():
    issues = validate_mod.runtime_validate_nodepool(
        {
            "spec": {
                "template": {
                    "metadata": {
                        "labels": {"karpenter.sh/nodepool": "a", "karpenter.k8s.aws/instance-pods": "1", "team": "ok"}
                    }
                }
            }
        },
        "NodePool/x",
    )
    assert sorted((i.path, i.rule) for i in issues) == [
        ("spec.template.metadata.labels[karpenter.k8s.aws/instance-pods]", "restricted-label"),
        ("spec.template.metadata.labels[karpenter.sh/nodepool]", "restricted-label"),
    ]


def test_restricted_tag_runtime_check(ec2nodeclass):
    issues = validate_mod.runtime_validate_ec2nodeclass(
        {"spec": {"tags": {"kubernetes.io/cluster/prod": "owned", "team": "a"}}}, "EC2NodeClass/x"
    )
    assert [(i.path, i.rule) for i in issues] == [("spec.tags[kubernetes.io/cluster/prod]", "restricted-tag")]


@pytest.mark.parametrize(
    "api_version,kind,needle",
    [
        ("karpenter.sh/v1alpha5", "Provisioner", "not served since Karpenter v0.33"),
        ("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate", "not served since Karpenter v0.33"),
        ("karpenter.sh/v1beta1", "NodePool", "not served since Karpenter v1.1.0"),
        ("karpenter.k8s.aws/v1beta1", "EC2NodeClass", "not served since Karpenter v1.1.0"),
        ("v1", "ConfigMap", "not a Karpenter v1 kind"),
    ],
)
def test_legacy_and_unknown_kinds(api_version, kind, needle):
    result = validate({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": {}})
    (err,) = result.errors
    assert err.rule == "unsupported-kind" and needle in err.message


def test_not_a_mapping():
    result = validate(["not", "an", "object"])
    assert not result.ok and result.errors[0].rule == "type"


def test_batch_ok_and_per_object_results(nodepool, ec2nodeclass):
    batch = validate_batch([nodepool, ec2nodeclass])
    assert isinstance(batch, BatchResult)
    assert batch.ok and len(batch) == 2
    assert [r.object_ref for r in batch] == ["NodePool/general", "EC2NodeClass/default"]
    assert batch.to_dict()["error_count"] == 0


def test_batch_not_ok_when_one_object_fails(nodepool, ec2nodeclass):
    ec2nodeclass["spec"]["instanceProfile"] = "p"
    batch = validate_batch([nodepool, ec2nodeclass])
    assert not batch.ok
    assert batch.results[0].ok and not batch.results[1].ok
    assert [i.object_ref for i in batch.errors] == ["EC2NodeClass/default"]


def test_batch_lints_and_checks_references(nodepool, ec2nodeclass):
    batch = validate_batch([nodepool], known_nodeclasses=["other"])
    assert [i.rule for i in batch.errors] == ["KPL004"]
    assert validate_batch([nodepool, ec2nodeclass], known_nodeclasses=[]).ok
    assert validate_batch([nodepool], lint=False, known_nodeclasses=[]).ok


def test_batch_passes_other_kinds_and_flags_legacy(nodepool):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
    old = {"apiVersion": "karpenter.sh/v1alpha5", "kind": "Provisioner", "metadata": {"name": "p"}, "spec": {}}
    batch = validate_batch([nodepool, cm, old])
    assert batch.results[1].ok
    assert sorted(i.rule for i in batch.results[2].errors) == ["KPL011", "unsupported-kind"]


def test_batch_old_objects_enable_transition_rules(nodepool):
    import copy

    live = copy.deepcopy(nodepool)
    nodepool["spec"]["template"]["spec"]["nodeClassRef"]["kind"] = "Other"
    batch = validate_batch([nodepool], old_objects={"NodePool/general": live}, lint=False)
    assert "nodeClassRef.kind is immutable" in [i.message for i in batch.errors]


def test_validate_does_not_modify_input(nodepool):
    import copy

    before = copy.deepcopy(nodepool)
    del nodepool["spec"]["disruption"]
    before_mutation = copy.deepcopy(nodepool)
    validate(nodepool)
    assert nodepool == before_mutation
    assert before != nodepool


def test_without_cel_python_validation_warns(nodepool, monkeypatch):
    monkeypatch.setattr(validate_mod.cel_mod, "HAS_CELPY", False)
    nodepool["spec"]["template"]["spec"]["nodeClassRef"]["name"] = ""  # only CEL catches this
    result = validate(nodepool)
    assert result.ok
    assert [i.rule for i in result.warnings] == ["cel-unavailable"]


def test_non_string_kind():
    result = validate({"apiVersion": ["x"], "kind": 3, "metadata": {"name": "x"}})
    assert [i.rule for i in result.errors] == ["required"]


# ------------------------------------------------------------------------------------------------
# objects whose spec / template / metadata is null or missing (what a template renders for an undefined
# variable): server-side apply of such an object would remove every field the collection owned


def _null_or_absent(obj, field, how):
    if how == "null":
        obj[field] = None
    else:
        del obj[field]
    return obj


@pytest.mark.parametrize("fast", [True, False], ids=["fastpath", "passes"])
@pytest.mark.parametrize("how", ["null", "absent"])
def test_ec2nodeclass_without_spec_is_an_error(ec2nodeclass, how, fast, monkeypatch):
    """The EC2NodeClass CRD does not require spec, so the apiserver would accept it (and SSA wipe the spec)."""
    monkeypatch.setattr(validate_mod, "FAST_PATH", fast)
    _null_or_absent(ec2nodeclass, "spec", how)
    for result in (validate(ec2nodeclass), validate_batch([ec2nodeclass]).results[0]):
        (err,) = result.errors
        assert (err.object_ref, err.path, err.rule, err.source) == (
            "EC2NodeClass/default",
            "spec",
            "spec-required",
            "runtime",
        )
        assert "without a spec cannot launch anything" in err.message
        for field in (
            "role",
            "instanceProfile",
            "amiSelectorTerms",
            "subnetSelectorTerms",
            "securityGroupSelectorTerms",
        ):
            assert field in err.message
        assert ("is null" in err.message) == (how == "null")
        assert str(err).startswith("EC2NodeClass/default: spec: ")


def test_ec2nodeclass_spec_of_a_wrong_type_is_reported_once(ec2nodeclass):
    ec2nodeclass["spec"] = "x"
    assert [i.rule for i in validate(ec2nodeclass).errors] == ["type"]


@pytest.mark.parametrize("how", ["null", "absent"])
@pytest.mark.parametrize("field", ["spec", "template"])
def test_nodepool_without_spec_or_template_is_an_error(nodepool, field, how):
    _null_or_absent(nodepool["spec"] if field == "template" else nodepool, field, how)
    (err,) = validate_batch([nodepool]).errors
    path = "spec.template" if field == "template" else "spec"
    assert (err.object_ref, err.path, err.rule) == ("NodePool/general", path, "required")


@pytest.mark.parametrize("how", ["null", "absent"])
def test_object_without_metadata_is_an_error(nodepool, ec2nodeclass, how):
    for obj in (nodepool, ec2nodeclass):
        _null_or_absent(obj, "metadata", how)
        (err,) = validate_batch([obj]).errors
        assert (err.path, err.rule) == ("metadata.name", "required") and err.object_ref.endswith("/#0")
