"""Structural schema validation, pruning and defaulting against the generated v1.15.0 CRD schemas."""

import copy

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import schema
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.crds import ec2nodeclass_v1, nodepool_v1
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.issues import Issue
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import validate

NP_SCHEMA = nodepool_v1.SCHEMA
NC_SCHEMA = ec2nodeclass_v1.SCHEMA


def errors_at(result, path):
    return [i for i in result.errors if i.path == path]


def test_generated_crd_modules_carry_version_and_identity():
    assert nodepool_v1.KARPENTER_VERSION == "v1.15.0"
    assert ec2nodeclass_v1.KARPENTER_VERSION == "v1.15.0"
    assert (nodepool_v1.API_VERSION, nodepool_v1.KIND, nodepool_v1.SCOPE) == ("karpenter.sh/v1", "NodePool", "Cluster")
    assert (ec2nodeclass_v1.API_VERSION, ec2nodeclass_v1.KIND) == ("karpenter.k8s.aws/v1", "EC2NodeClass")
    assert ec2nodeclass_v1.SHORT_NAMES == ("ec2nc", "ec2ncs")
    # descriptions are stripped, validation keywords kept
    assert "description" not in NP_SCHEMA["properties"]["spec"]
    assert NP_SCHEMA["properties"]["spec"]["properties"]["weight"]["maximum"] == 100
    assert schema.schema_for("karpenter.sh/v1", "NodePool") is NP_SCHEMA
    assert schema.schema_for("karpenter.sh/v1beta1", "NodePool") is None


def test_reference_objects_are_valid(nodepool, ec2nodeclass):
    for obj in (nodepool, ec2nodeclass):
        result = validate(obj)
        assert result.ok, [str(i) for i in result.issues]
        assert result.issues == []


def test_defaults_when_disruption_block_absent(nodepool):
    del nodepool["spec"]["disruption"]
    del nodepool["spec"]["template"]["spec"]["expireAfter"]
    defaulted = validate(nodepool).defaulted
    assert defaulted["spec"]["disruption"] == {
        "consolidateAfter": "0s",
        "consolidationPolicy": "WhenEmptyOrUnderutilized",
        "budgets": [{"nodes": "10%"}],
    }
    assert defaulted["spec"]["template"]["spec"]["expireAfter"] == "720h"
    # no default for terminationGracePeriod / weight
    assert "weight" in nodepool["spec"] and "terminationGracePeriod" in defaulted["spec"]["template"]["spec"]
    assert "replicas" not in defaulted["spec"]


def test_defaults_inside_present_objects_only(nodepool):
    nodepool["spec"]["disruption"] = {"consolidateAfter": "5m", "budgets": [{"schedule": "@daily", "duration": "10m"}]}
    defaulted = validate(nodepool).defaulted
    assert defaulted["spec"]["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert defaulted["spec"]["disruption"]["budgets"] == [{"schedule": "@daily", "duration": "10m", "nodes": "10%"}]
    # the input is not modified
    assert "consolidationPolicy" not in nodepool["spec"]["disruption"]


def test_ec2nodeclass_metadata_options_defaults(ec2nodeclass):
    del ec2nodeclass["spec"]["metadataOptions"]
    defaulted = validate(ec2nodeclass).defaulted
    assert defaulted["spec"]["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpProtocolIPv6": "disabled",
        "httpPutResponseHopLimit": 1,
        "httpTokens": "required",
    }
    ec2nodeclass["spec"]["metadataOptions"] = {"httpPutResponseHopLimit": 2}
    mo = validate(ec2nodeclass).defaulted["spec"]["metadataOptions"]
    assert mo == {
        "httpPutResponseHopLimit": 2,
        "httpEndpoint": "enabled",
        "httpProtocolIPv6": "disabled",
        "httpTokens": "required",
    }


def test_null_values_are_dropped_then_defaulted(nodepool):
    nodepool["spec"]["weight"] = None
    nodepool["spec"]["template"]["spec"]["expireAfter"] = None
    result = validate(nodepool)
    assert result.ok
    assert "weight" not in result.defaulted["spec"]
    assert result.defaulted["spec"]["template"]["spec"]["expireAfter"] == "720h"


def test_apply_defaults_helper_directly():
    out = schema.apply_defaults({"spec": {"template": {"spec": {}}}}, NP_SCHEMA)
    assert out["spec"]["disruption"]["budgets"] == [{"nodes": "10%"}]
    assert out["spec"]["template"]["spec"]["expireAfter"] == "720h"
    assert schema.defaults_of(NP_SCHEMA, "spec.disruption.consolidationPolicy") == "WhenEmptyOrUnderutilized"


def test_unknown_fields_are_errors_and_pruned(nodepool):
    nodepool["spec"]["ttlSecondsUntilExpired"] = 3600
    nodepool["spec"]["template"]["spec"]["kubelet"] = {"maxPods": 10}
    nodepool["metadata"]["nmae"] = "typo"
    result = validate(nodepool)
    unknown = sorted(i.path for i in result.errors if i.rule == "unknown-field")
    assert unknown == ["metadata.nmae", "spec.template.spec.kubelet", "spec.ttlSecondsUntilExpired"]
    assert 'unknown field "spec.ttlSecondsUntilExpired"' in [i.message for i in result.errors]
    assert "ttlSecondsUntilExpired" not in result.defaulted["spec"]
    assert "kubelet" not in result.defaulted["spec"]["template"]["spec"]


def test_consolidate_after_default(nodepool):
    # v1.15.0: consolidateAfter is optional with default 0s (v1.14.1 required it in a disruption block)
    del nodepool["spec"]["disruption"]["consolidateAfter"]
    result = validate(nodepool)
    assert result.ok, [str(i) for i in result.issues]
    assert result.defaulted["spec"]["disruption"]["consolidateAfter"] == "0s"
    assert schema.defaults_of(NP_SCHEMA, "spec.disruption.consolidateAfter") == "0s"
    nodepool["spec"]["disruption"] = {"consolidationPolicy": "WhenEmpty"}
    assert validate(nodepool).defaulted["spec"]["disruption"] == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "0s",
        "budgets": [{"nodes": "10%"}],
    }


def test_v1_15_schema_additions(nodepool, ec2nodeclass):
    nodepool["spec"]["disruption"]["budgets"][1]["reasons"] = ["Unhealthy", "Drifted"]
    for op in ("Gte", "Lte"):
        nodepool["spec"]["template"]["spec"]["requirements"][3]["operator"] = op
        assert validate(nodepool).ok, [str(i) for i in validate(nodepool).issues]
    ec2nodeclass["spec"]["enclaveOptions"] = {"enabled": True}
    result = validate(ec2nodeclass)
    assert result.ok and result.defaulted["spec"]["enclaveOptions"] == {"enabled": True}
    # spec.kubelet is open: nothing in it is pruned or checked by the schema (the controller checks it)
    kubelet = NC_SCHEMA["properties"]["spec"]["properties"]["kubelet"]
    assert kubelet["x-kubernetes-preserve-unknown-fields"] is True and "properties" not in kubelet
    ec2nodeclass["spec"]["kubelet"] = {"maxPods": -1, "notAField": {"x": None}}
    result = validate(ec2nodeclass)
    assert not [i for i in result.errors if i.source != "runtime"]
    assert result.defaulted["spec"]["kubelet"] == {"maxPods": -1, "notAField": {"x": None}}


def test_enum_error_text_and_str(nodepool):
    nodepool["spec"]["template"]["spec"]["requirements"][0]["operator"] = "Foo"
    result = validate(nodepool)
    (err,) = errors_at(result, "spec.template.spec.requirements[0].operator")
    assert err.rule == "enum"
    assert err.object_ref == "NodePool/general"
    # v1.15.0 lists Gte/Lte after the other operators (v1.14.1: "Gte", "Lte", "In", ...)
    assert err.message == (
        'Unsupported value: "Foo": supported values: "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Gte", "Lte"'
    )
    assert str(err).startswith(
        'NodePool/general: spec.template.spec.requirements[0].operator: Unsupported value: "Foo"'
    )
    assert str(err).endswith("(enum)")
    assert err.severity == "error" and err.source == "schema"


@pytest.mark.parametrize(
    "mutate,path,rule",
    [
        (lambda o: o["spec"]["template"]["spec"].pop("nodeClassRef"), "spec.template.spec.nodeClassRef", "required"),
        (
            lambda o: o["spec"]["template"]["spec"]["nodeClassRef"].pop("kind"),
            "spec.template.spec.nodeClassRef.kind",
            "required",
        ),
        (lambda o: o["spec"].update(weight=0), "spec.weight", "minimum"),
        (lambda o: o["spec"].update(weight=101), "spec.weight", "maximum"),
        (lambda o: o["spec"].update(weight="10"), "spec.weight", "type"),
        (
            lambda o: o["spec"]["template"]["spec"].update(expireAfter="30d"),
            "spec.template.spec.expireAfter",
            "pattern",
        ),
        (
            lambda o: o["spec"]["template"]["spec"].update(expireAfter="1hr"),
            "spec.template.spec.expireAfter",
            "pattern",
        ),
        (
            lambda o: o["spec"]["template"]["spec"].update(terminationGracePeriod="Never"),
            "spec.template.spec.terminationGracePeriod",
            "pattern",
        ),
        (
            lambda o: o["spec"]["disruption"]["budgets"][1].update(duration="30s"),
            "spec.disruption.budgets[1].duration",
            "pattern",
        ),
        (lambda o: o["spec"]["disruption"]["budgets"][0].update(nodes=0), "spec.disruption.budgets[0].nodes", "type"),
        # (v1.14.1 required consolidateAfter in a disruption block; v1.15.0 defaults it: test_consolidate_after_default)
        (
            lambda o: o["spec"]["disruption"]["budgets"][1].update(reasons=["Unhealthy", "Repaired"]),
            "spec.disruption.budgets[1].reasons[1]",
            "enum",
        ),
        (
            lambda o: o["spec"]["disruption"].update(consolidationPolicy="WhenUnderutilized"),
            "spec.disruption.consolidationPolicy",
            "enum",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["nodeClassRef"].update(group="karpenter.k8s.aws/v1"),
            "spec.template.spec.nodeClassRef.group",
            "pattern",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["requirements"][0].update(minValues=51),
            "spec.template.spec.requirements[0].minValues",
            "maximum",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["requirements"][0].update(key="x" * 317),
            "spec.template.spec.requirements[0].key",
            "maxLength",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["taints"][0].update(key=""),
            "spec.template.spec.taints[0].key",
            "minLength",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["taints"][0].update(value="a b"),
            "spec.template.spec.taints[0].value",
            "pattern",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["taints"][0].update(timeAdded="yesterday"),
            "spec.template.spec.taints[0].timeAdded",
            "format",
        ),
        (
            lambda o: o["spec"]["disruption"]["budgets"][1].update(reasons=["Empty", "Empty"]),
            "spec.disruption.budgets[1].reasons[1]",
            "x-kubernetes-list-type",
        ),
        (lambda o: o["spec"]["limits"].update(cpu="1 core"), "spec.limits[cpu]", "pattern"),
        (lambda o: o["spec"]["limits"].update(cpu=True), "spec.limits[cpu]", "type"),
        (
            lambda o: o["spec"]["template"]["metadata"]["labels"].update(team="a b"),
            "spec.template.metadata.labels[team]",
            "pattern",
        ),
        (
            lambda o: o["spec"]["template"]["metadata"].update(labels={"k%d" % i: "v" for i in range(101)}),
            "spec.template.metadata.labels",
            "maxProperties",
        ),
        (
            lambda o: o["spec"]["template"]["spec"].update(requirements=[{"key": "a", "operator": "Exists"}] * 101),
            "spec.template.spec.requirements",
            "maxItems",
        ),
        (lambda o: o["spec"].update(replicas=-1), "spec.replicas", "minimum"),
        (lambda o: o["metadata"].update(name="Not_A_DNS_Name"), "metadata.name", "name"),
    ],
)
def test_nodepool_schema_errors(nodepool, mutate, path, rule):
    mutate(nodepool)
    result = validate(nodepool)
    rules = [i.rule for i in errors_at(result, path)]
    assert rule in rules, [str(i) for i in result.issues]


def test_limits_int_or_string(nodepool):
    nodepool["spec"]["limits"] = {"cpu": 1000, "memory": "1000Gi", "nodes": "5", "nvidia.com/gpu": 8}
    assert validate(nodepool).ok


def test_string_keywords_do_not_apply_to_arrays(nodepool):
    # the CRD puts maxLength/pattern on the requirement values *array*; the apiserver ignores them there,
    # only Karpenter's runtime validation rejects the value (see test_validate)
    nodepool["spec"]["template"]["spec"]["requirements"][0]["values"] = ["c", "m", "*"]
    result = validate(nodepool)
    assert not [i for i in result.errors if i.source == "schema"]


@pytest.mark.parametrize(
    "mutate,path,rule",
    [
        (lambda o: o["spec"].pop("amiSelectorTerms"), "spec.amiSelectorTerms", "required"),
        (lambda o: o["spec"].update(amiSelectorTerms=[]), "spec.amiSelectorTerms", "minItems"),
        (lambda o: o["spec"].update(amiFamily="Ubuntu"), "spec.amiFamily", "enum"),
        (
            lambda o: o["spec"]["metadataOptions"].update(httpPutResponseHopLimit=65),
            "spec.metadataOptions.httpPutResponseHopLimit",
            "maximum",
        ),
        (
            lambda o: o["spec"]["blockDeviceMappings"][0]["ebs"].update(volumeSize="100Ti"),
            "spec.blockDeviceMappings[0].ebs.volumeSize",
            "pattern",
        ),
        (
            lambda o: o["spec"]["blockDeviceMappings"][0]["ebs"].update(volumeType="gp4"),
            "spec.blockDeviceMappings[0].ebs.volumeType",
            "enum",
        ),
        (
            lambda o: o["spec"]["amiSelectorTerms"][0].update(alias="a" * 31),
            "spec.amiSelectorTerms[0].alias",
            "maxLength",
        ),
        (
            lambda o: o["spec"]["subnetSelectorTerms"][0].update(tags={"k%d" % i: "v" for i in range(21)}),
            "spec.subnetSelectorTerms[0].tags",
            "maxProperties",
        ),
        # (v1.14.1 had a typed spec.kubelet, e.g. maxPods minimum 0; v1.15.0's is open: see test_kubelet.py)
        (lambda o: o["spec"].update(enclaveOptions={}), "spec.enclaveOptions.enabled", "required"),
        (lambda o: o["spec"].update(enclaveOptions={"enabled": "yes"}), "spec.enclaveOptions.enabled", "type"),
        (lambda o: o["spec"].update(detailedMonitoring="yes"), "spec.detailedMonitoring", "type"),
        (
            lambda o: o["spec"].update(capacityReservationSelectorTerms=[{"ownerID": "123"}]),
            "spec.capacityReservationSelectorTerms[0].ownerID",
            "pattern",
        ),
    ],
)
def test_ec2nodeclass_schema_errors(ec2nodeclass, mutate, path, rule):
    mutate(ec2nodeclass)
    result = validate(ec2nodeclass)
    rules = [i.rule for i in errors_at(result, path)]
    assert rule in rules, [str(i) for i in result.issues]


def test_go_style_dollar_anchor():
    # Go's "$" never matches before a trailing newline; Python's does unless translated
    rx = schema.compile_pattern("^(([0-9]+(s|m|h))+|Never)$")
    assert rx.search("720h")
    assert not rx.search("720h\n")
    assert schema.compile_pattern("ami-[0-9a-z]+").search("xx-ami-123")  # unanchored, like the apiserver
    assert schema.compile_pattern("^[$a]+$").search("$a$")  # "$" inside a class is literal


def test_metadata_checks():
    issues = schema.validate_metadata(
        {"name": "ok", "labels": {"bad key!": "v", "k": "bad value!"}, "namespace": "x"}, "NodePool/ok"
    )
    rules = sorted(i.rule for i in issues)
    assert rules == ["label-key", "label-value", "namespace"]
    assert [i.severity for i in issues if i.rule == "namespace"] == ["warning"]
    assert [i.rule for i in schema.validate_metadata({}, "NodePool/x")] == ["required"]


def test_status_is_ignored(nodepool):
    nodepool["status"] = {"conditions": [{"type": "Ready"}], "bogus": 1}
    result = validate(nodepool)
    assert result.ok
    assert "status" not in result.defaulted


def test_issue_object_api():
    issue = Issue("NodePool/a", "spec.weight", "minimum", "Invalid value: 0", source="schema")
    assert issue.is_error
    assert issue.to_dict()["text"] == "NodePool/a: spec.weight: Invalid value: 0 (minimum)"
    cel_issue = Issue("NodePool/a", "spec", "has(self.x)", "msg", source="cel")
    assert str(cel_issue) == "NodePool/a: spec: msg (x-kubernetes-validations)"
    with pytest.raises(ValueError):
        Issue("a", "b", "c", "d", severity="fatal")


def test_prune_keeps_input_untouched(nodepool):
    original = copy.deepcopy(nodepool)
    nodepool["spec"]["foo"] = {"bar": 1}
    pruned, issues = schema.prune(nodepool, NP_SCHEMA, "NodePool/general")
    assert "foo" not in pruned["spec"] and "foo" in nodepool["spec"]
    assert [i.path for i in issues] == ["spec.foo"]
    del nodepool["spec"]["foo"]
    assert nodepool == original
