"""normalize() and diff(): no change modulo defaults/server fields, only user-set fields compared."""

import copy

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.compare import (
    diff,
    normalize,
    values_equal,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import default


def as_live(obj):
    """What the apiserver returns: defaults applied plus server- and controller-populated fields."""
    live = default(obj)
    live["metadata"].update(
        {
            "uid": "0b6a",
            "resourceVersion": "4711",
            "generation": 3,
            "creationTimestamp": "2026-08-01T10:00:00Z",
            "selfLink": "/apis/karpenter.sh/v1/nodepools/general",
            "managedFields": [{"manager": "ansible", "operation": "Apply"}],
            "finalizers": ["karpenter.sh/termination"],
        }
    )
    live["metadata"].setdefault("annotations", {}).update(
        {
            "karpenter.sh/nodepool-hash": "6821555240594823858",
            "karpenter.sh/nodepool-hash-version": "v3",
            "karpenter.k8s.aws/ec2nodeclass-hash": "1",
            "karpenter.k8s.aws/ec2nodeclass-hash-version": "v4",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        }
    )
    live["status"] = {"conditions": [{"type": "Ready", "status": "True"}], "resources": {"cpu": "4"}}
    return live


def test_normalize_drops_server_fields(nodepool):
    norm = normalize(as_live(nodepool))
    assert norm == default(nodepool)
    assert "status" not in norm and "annotations" not in norm["metadata"] and "finalizers" not in norm["metadata"]


def test_normalize_keeps_user_finalizers_and_annotations(nodepool):
    live = as_live(nodepool)
    live["metadata"]["finalizers"].append("example.com/keep")
    live["metadata"]["annotations"]["example.com/owner"] = "me"
    norm = normalize(live)
    assert norm["metadata"]["finalizers"] == ["example.com/keep"]
    assert norm["metadata"]["annotations"] == {"example.com/owner": "me"}


def test_no_change_against_live(nodepool, ec2nodeclass):
    for obj in (nodepool, ec2nodeclass):
        changed, before, after, paths = diff(obj, as_live(obj))
        assert (changed, paths) == (False, [])
        assert before == after


def test_no_change_when_desired_omits_defaulted_fields(nodepool):
    live = as_live(nodepool)
    del nodepool["spec"]["template"]["spec"]["expireAfter"]  # 720h == default
    nodepool["spec"]["disruption"].pop("consolidationPolicy")  # WhenEmptyOrUnderutilized == default
    assert diff(nodepool, live)[0] is False


def test_field_absent_from_desired_is_not_a_change(nodepool):
    live = as_live(nodepool)
    live["spec"]["limits"]["example.com/extra"] = "3"  # someone else's field
    live["metadata"].setdefault("labels", {})["owner"] = "other-tool"
    assert diff(nodepool, live)[0] is False


def test_schema_default_is_a_change_when_live_differs(nodepool):
    live = as_live(nodepool)
    del nodepool["spec"]["disruption"]  # defaults: consolidateAfter 0s, budgets [10%]
    changed, _before, after, paths = diff(nodepool, live)
    assert changed
    assert paths == ["spec.disruption.consolidateAfter", "spec.disruption.budgets"]
    assert after["spec"]["disruption"]["consolidateAfter"] == "0s"


@pytest.mark.parametrize(
    "desired,live",
    [("1000", 1000), ("1Gi", "1024Mi"), ("1k", "1000"), ("0.5", "500m"), ("1e3", 1000), (8, "8")],
)
def test_quantities_compare_by_value(nodepool, desired, live):
    live_obj = as_live(nodepool)
    nodepool["spec"]["limits"]["cpu"] = desired
    live_obj["spec"]["limits"]["cpu"] = live
    assert diff(nodepool, live_obj)[0] is False


def test_quantity_change_is_detected(nodepool):
    live = as_live(nodepool)
    nodepool["spec"]["limits"]["memory"] = "2000Gi"
    changed, before, after, paths = diff(nodepool, live)
    assert changed and paths == ["spec.limits[memory]"]
    assert before["spec"]["limits"]["memory"] == "1000Gi" and after["spec"]["limits"]["memory"] == "2000Gi"


def test_atomic_lists_and_maps_compare_whole(nodepool):
    live = as_live(nodepool)
    nodepool["spec"]["template"]["spec"]["requirements"] = nodepool["spec"]["template"]["spec"]["requirements"][:2]
    changed, _b, after, paths = diff(nodepool, live)
    assert paths == ["spec.template.spec.requirements"]
    assert len(after["spec"]["template"]["spec"]["requirements"]) == 2
    # template labels are an atomic map: dropping a label is a change
    nodepool = copy.deepcopy(live)
    nodepool["spec"]["template"]["metadata"]["labels"] = {}
    assert diff(nodepool, live)[3] == ["spec.template.metadata.labels"]


def test_granular_map_key_change(ec2nodeclass):
    live = as_live(ec2nodeclass)
    ec2nodeclass["spec"]["tags"]["team"] = "b"
    assert diff(ec2nodeclass, live)[3] == ["spec.tags[team]"]
    ec2nodeclass["spec"]["kubelet"]["systemReserved"]["memory"] = "0.1Gi"
    assert "spec.kubelet.systemReserved[memory]" in diff(ec2nodeclass, live)[3]


def test_create_when_live_is_none(nodepool):
    changed, before, after, paths = diff(nodepool, None)
    assert changed and before is None and paths == ["metadata", "spec"]
    assert after["spec"]["disruption"]["budgets"]  # normalised desired


def test_values_equal_strictness():
    assert not values_equal(True, 1)
    assert not values_equal("1", 1)
    assert values_equal(1, 1.0)
    assert not values_equal(None, "")
    assert values_equal({"a": [1, "x"]}, {"a": [1.0, "x"]})
