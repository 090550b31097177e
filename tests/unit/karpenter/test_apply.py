"""karpenter_apply.run (the core of karpenter_provisioner and node_template) refuses bad input before any write."""

import copy

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.apply import karpenter as karpenter_apply
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import default
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine, resource


class FakeApi:
    """LISTs answer ``live``; writes are recorded (and answered like the apiserver would)."""

    def __init__(self, live=None):
        self.live = live or {}
        self.counts = {}
        self.writes = []

    def _count(self, verb):
        self.counts[verb] = self.counts.get(verb, 0) + 1

    def list(self, path, label_selector=None):
        self._count("list")
        return {"items": copy.deepcopy(self.live.get(path, [])), "metadata": {"resourceVersion": "9"}}

    def apply(self, path, obj, field_manager, force=True, dry_run=False):
        self._count("patch")
        self.writes.append(("apply", path, obj))
        return dict(copy.deepcopy(obj), metadata=dict(obj["metadata"], uid="u"))

    def delete(self, path, propagation="Background"):
        self._count("delete")
        self.writes.append(("delete", path, None))

    def request_summary(self):
        return dict(self.counts, total=sum(self.counts.values()), writes=len(self.writes))


def owned_live(obj):
    """``obj`` as stored after this collection applied it (defaulted, our label, our managedFields)."""
    live = engine.add_managed_by(default(obj))
    live["metadata"].update(
        uid="u-1",
        resourceVersion="7",
        managedFields=[
            {
                "manager": engine.FIELD_MANAGER,
                "operation": "Apply",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:%s" % engine.MANAGED_BY_LABEL: {}}},
                    "f:spec": {"f:%s" % k: {} for k in live["spec"]},
                },
            }
        ],
    )
    return live


@pytest.mark.parametrize("check_mode", [False, True], ids=["real", "check"])
@pytest.mark.parametrize("how", ["null", "absent"])
def test_ec2nodeclass_without_spec_is_refused_before_any_write(ec2nodeclass, how, check_mode):
    """Today the plan is an update that removes every field we owned: ``changed: true``, no warning."""
    api = FakeApi({resource.EC2NODECLASS.path(): [owned_live(ec2nodeclass)]})
    if how == "null":
        ec2nodeclass["spec"] = None
    else:
        del ec2nodeclass["spec"]
    with pytest.raises(karpenter_apply.InputError) as exc:
        karpenter_apply.run(api, resource.EC2NODECLASS, [ec2nodeclass], check_mode=check_mode)
    assert "nothing was applied" in str(exc.value)
    assert "EC2NodeClass/default: spec: " in str(exc.value) and "(spec-required)" in str(exc.value)
    (detail,) = exc.value.details
    assert (detail["object"], detail["path"], detail["rule"]) == ("EC2NodeClass/default", "spec", "spec-required")
    assert api.writes == []


def test_nodepool_with_null_template_is_refused_before_any_write(nodepool):
    api = FakeApi({resource.NODEPOOL.path(): [owned_live(nodepool)]})
    nodepool["spec"]["template"] = None
    with pytest.raises(karpenter_apply.InputError, match=r"NodePool/general: spec.template: Required value"):
        karpenter_apply.run(api, resource.NODEPOOL, [nodepool], extra_nodeclasses=["default"])
    assert api.writes == []


@pytest.mark.parametrize("state", ["present", "absent"])
def test_null_metadata_is_refused_before_any_write(ec2nodeclass, state):
    api = FakeApi({resource.EC2NODECLASS.path(): [owned_live(ec2nodeclass)]})
    ec2nodeclass["metadata"] = None
    with pytest.raises(karpenter_apply.InputError, match=r"metadata.name: Required value"):
        karpenter_apply.run(api, resource.EC2NODECLASS, [ec2nodeclass], state=state)
    assert api.writes == []


@pytest.mark.parametrize("value", [0, -1, True, "60"])
@pytest.mark.parametrize("wait", [True, False])
def test_a_wait_timeout_that_is_not_positive_is_refused_before_the_cluster_is_read(ec2nodeclass, value, wait):
    """wait_timeout: -1 used to write, then fail at once: 'not Ready after -1s'."""
    api = FakeApi()
    with pytest.raises(karpenter_apply.InputError, match=r"wait_timeout must be a positive number of seconds, got"):
        karpenter_apply.run(api, resource.EC2NODECLASS, [ec2nodeclass], wait=wait, wait_timeout=value)
    assert api.counts == {} and api.writes == []


def test_check_timeouts_names_each_bad_value():
    karpenter_apply.check_timeouts(wait_timeout=1, request_timeout=1)
    with pytest.raises(karpenter_apply.InputError) as exc:
        karpenter_apply.check_timeouts(wait_timeout=120, request_timeout=0)
    assert str(exc.value) == "request_timeout must be a positive number of seconds, got 0"
    with pytest.raises(karpenter_apply.InputError, match="wait_timeout .* got -1; request_timeout .* got -2"):
        karpenter_apply.check_timeouts(wait_timeout=-1, request_timeout=-2)


def test_objects_of_other_kinds_in_a_batch_are_named_in_a_warning(nodepool, ec2nodeclass):
    """A multi-document file with a NodePool, its EC2NodeClass and a ConfigMap given to the NodePool module: the
    NodePool is applied, and the others are not dropped silently - a warning names each and the module to use."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "karpenter"}}
    res = karpenter_apply.run(
        FakeApi(), resource.NODEPOOL, [nodepool, ec2nodeclass, cm], check_mode=True, extra_nodeclasses=["default"]
    )
    assert [r["kind"] for r in res["results"]] == ["NodePool"]
    assert res["warnings"][:2] == [
        "definitions[1] (EC2NodeClass default) is not a NodePool and was not applied: apply it with "
        "karpenter_eks.platform.node_template",
        "definitions[2] (ConfigMap settings) is not a NodePool and was not applied: apply it with "
        "karpenter_eks.platform.k8s_objects",
    ]


def test_legacy_objects_are_converted_as_one_batch():
    """A Provisioner's kubelet settings move to the EC2NodeClass converted from its AWSNodeTemplate of the same
    definitions, for both modules (per object, the Provisioner's conversion reported an error instead)."""
    template = {
        "apiVersion": "karpenter.k8s.aws/v1alpha1",
        "kind": "AWSNodeTemplate",
        "metadata": {"name": "t"},
        "spec": {
            "subnetSelector": {"karpenter.sh/discovery": "c"},
            "securityGroupSelector": {"karpenter.sh/discovery": "c"},
            "instanceProfile": "KarpenterNodeInstanceProfile",
        },
    }
    provisioner = {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": "p"},
        "spec": {"providerRef": {"name": "t"}, "kubeletConfiguration": {"maxPods": 50}},
    }
    for kind, other in ((resource.NODEPOOL, "EC2NodeClass"), (resource.EC2NODECLASS, "NodePool")):
        objs, report, others = karpenter_apply.prepare(kind, [template, provisioner])
        assert [r for r in report if r.get("severity") == "error"] == []
        assert [o["kind"] for o in objs] == [kind.kind] and [o["kind"] for o in others] == [other]
        (nodeclass,) = [o for o in objs + others if o["kind"] == "EC2NodeClass"]
        assert nodeclass["spec"]["kubelet"] == {"maxPods": 50}
    # alone, the Provisioner still says where its settings must go
    unused, report, unused2 = karpenter_apply.prepare(resource.NODEPOOL, [provisioner])
    assert any("kubelet settings move to EC2NodeClass/t" in r["text"] for r in report), report
