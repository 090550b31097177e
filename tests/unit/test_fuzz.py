"""Property tests (hypothesis): malformed input never produces a traceback and never a write.

Inputs are either arbitrary JSON/YAML-like values or real objects (v1, v1beta1 and v1alpha5/v1alpha1 shapes)
with random subtrees replaced, deleted, added (with real field names) or wrapped in a list.

* ``validate_batch`` returns one result per object and never raises;
* ``convert`` returns ``(objects, report)`` and never raises;
* ``karpenter_apply.run`` against a fake API that raises on any write: the only exception is the documented
  ``InputError``; in check mode nothing is ever written; outside check mode a write is attempted only
  when the whole batch passes validation.
"""

import copy
import json

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.apply import karpenter as karpenter_apply
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import (
    convert as convert_mod,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import schema
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import (
    validate as validate_mod,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.issues import Issue
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine, resource
from hypothesis import HealthCheck, given, settings  # requirements-dev.txt: hypothesis
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

NODEPOOL = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "general", "labels": {"team": "a"}},
    "spec": {
        "template": {
            "metadata": {"labels": {"example.com/team": "a"}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [
                    {
                        "key": "karpenter.k8s.aws/instance-category",
                        "operator": "In",
                        "values": ["c", "m"],
                        "minValues": 1,
                    },
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                    {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]},
                ],
                "taints": [{"key": "example.com/dedicated", "value": "gpu", "effect": "NoSchedule"}],
                "expireAfter": "720h",
            },
        },
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "1m",
            "budgets": [{"nodes": "10%"}, {"nodes": "0", "schedule": "@daily", "duration": "1h"}],
        },
        "limits": {"cpu": "100", "memory": "400Gi"},
        "weight": 10,
    },
}
EC2NODECLASS = {
    "apiVersion": "karpenter.k8s.aws/v1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "default"},
    "spec": {
        "role": "KarpenterNodeRole",
        "amiSelectorTerms": [{"alias": "al2023@v20250505"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "c"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "c"}}],
        "kubelet": {
            "maxPods": 110,
            "evictionSoft": {"memory.available": "5%"},
            "evictionSoftGracePeriod": {"memory.available": "1m"},
        },
        "blockDeviceMappings": [
            {"deviceName": "/dev/xvda", "rootVolume": True, "ebs": {"volumeSize": "50Gi", "volumeType": "gp3"}}
        ],
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
        "tags": {"team": "a"},
    },
}
PROVISIONER = {
    "apiVersion": "karpenter.sh/v1alpha5",
    "kind": "Provisioner",
    "metadata": {"name": "legacy"},
    "spec": {
        "requirements": [
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.*", "m5.large"]},
            {"key": "karpenter.sh/provisioner-name", "operator": "Exists"},
        ],
        "limits": {"resources": {"cpu": 100, "memory": "100Gi"}},
        "labels": {"topology.kubernetes.io/zone": "us-east-1a"},
        "taints": [{"key": "spot", "value": "true", "effect": "NoSchedule"}],
        "ttlSecondsAfterEmpty": 30,
        "ttlSecondsUntilExpired": 604800,
        "consolidation": {"enabled": False},
        "weight": 50,
        "kubeletConfiguration": {"maxPods": 50, "containerRuntime": "containerd"},
        "provider": {
            "subnetSelector": {"aws-ids": "subnet-1,subnet-2"},
            "securityGroupSelector": {"karpenter.sh/discovery": "c"},
            "instanceProfile": "KarpenterNodeInstanceProfile",
            "amiSelector": {"aws::name": "my-ami-*", "aws::owners": "self,amazon"},
            "launchTemplate": "lt",
        },
    },
}
AWSNODETEMPLATE = {
    "apiVersion": "karpenter.k8s.aws/v1alpha1",
    "kind": "AWSNodeTemplate",
    "metadata": {"name": "default"},
    "spec": {
        "subnetSelector": {"karpenter.sh/discovery": "c"},
        "securityGroupSelector": {"aws::ids": "sg-1"},
        "instanceProfile": "p",
        "amiFamily": "Ubuntu",
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "100Gi", "kmsKeyId": "k"}}],
        "metadataOptions": {"httpTokens": "required"},
        "tags": {"karpenter.sh/managed-by": "c"},
        "userData": "#!/bin/bash",
    },
}
BETA_NODEPOOL = {
    "apiVersion": "karpenter.sh/v1beta1",
    "kind": "NodePool",
    "metadata": {"name": "beta"},
    "spec": {
        "template": {
            "spec": {
                "nodeClassRef": {"apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
                "kubelet": {"maxPods": 20},
            }
        },
        "disruption": {"consolidationPolicy": "WhenUnderutilized", "expireAfter": "720h"},
        "limits": {"cpu": 10},
    },
}
BETA_NODECLASS = {
    "apiVersion": "karpenter.k8s.aws/v1beta1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "beta"},
    "spec": {
        "amiFamily": "AL2",
        "role": "r",
        "subnetSelectorTerms": [{"tags": {"a": "b"}}],
        "securityGroupSelectorTerms": [{"tags": {"a": "b"}}],
    },
}
BASES = [NODEPOOL, EC2NODECLASS, PROVISIONER, AWSNODETEMPLATE, BETA_NODEPOOL, BETA_NODECLASS]


def _field_names():
    names = set()
    for crd in schema.CRDS.values():
        for path, _node in schema.iter_schema(crd.SCHEMA):
            last = path.replace("[*]", "").replace("{*}", "").split(".")[-1]
            if last:
                names.add(last)
    for base in BASES:
        stack = [base]
        while stack:
            cur = stack.pop()
            if isinstance(cur, dict):
                names.update(k for k in cur if isinstance(k, str))
                stack.extend(cur.values())
            elif isinstance(cur, list):
                stack.extend(cur)
    return sorted(names)


FIELD_NAMES = _field_names()

keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=24),
    st.sampled_from(
        [
            "In",
            "Gt",
            "Never",
            "0s",
            "720h",
            "10%",
            "al2023@latest",
            "karpenter.sh/v1",
            "NodePool",
            "EC2NodeClass",
            "-1",
            "g5.*",
        ]
    ),
)
json_values = st.recursive(
    leaves, lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4), max_leaves=12
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    if not path:
        return value
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return obj


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


@st.composite
def mutated_objects(draw):
    """A real object (any supported shape) with 1-4 random mutations."""
    obj = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _step in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(_paths(obj))
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete", "add", "wrap", "stringify"]))
        target = _get(obj, path)
        if op == "replace":
            obj = _set(obj, path, draw(json_values))
        elif op == "delete" and path:
            parent = _get(obj, path[:-1])
            del parent[path[-1]]
        elif op == "add" and isinstance(target, dict):
            target[draw(keys)] = draw(json_values)
        elif op == "add" and isinstance(target, list):
            target.append(draw(json_values))
        elif op == "wrap":
            obj = _set(obj, path, [target])
        elif op == "stringify":
            obj = _set(obj, path, json.dumps(target, default=str))
    return obj


inputs = st.one_of(mutated_objects(), json_values)
batches = st.lists(inputs, max_size=4)


def _check_issue(issue):
    assert isinstance(issue, Issue)
    assert isinstance(str(issue), str)
    json.dumps(issue.to_dict(), default=str)


# --------------------------------------------------------------------------------------------- validate


@FUZZ
@given(objs=batches, known=st.one_of(st.none(), st.lists(st.text(max_size=8), max_size=3)), lint=st.booleans())
def test_validate_batch_never_raises(objs, known, lint):
    result = validate_mod.validate_batch(objs, known_nodeclasses=known, lint=lint)
    assert len(result) == len(objs)
    assert result.ok in (True, False)
    for r in result:
        assert r.ok in (True, False)
        for i in r.issues:
            _check_issue(i)
    json.dumps(result.to_dict(), default=str)


@FUZZ
@given(obj=mutated_objects())
def test_validate_single_object_never_raises(obj):
    result = validate_mod.validate_batch(obj) if isinstance(obj, dict) else validate_mod.validate_batch([obj])
    assert len(result) == 1
    old = copy.deepcopy(NODEPOOL if (isinstance(obj, dict) and obj.get("kind") == "NodePool") else EC2NODECLASS)
    r = validate_mod.validate(obj, old=old)
    assert r.ok in (True, False)


# --------------------------------------------------------------------------------------------- convert


@FUZZ
@given(
    objs=batches,
    node_role=st.one_of(st.none(), st.text(max_size=10)),
    instance_profile=st.one_of(st.none(), st.text(max_size=10)),
    ami_version=st.one_of(st.just("latest"), st.text(max_size=10)),
    ignore=st.booleans(),
    k8s=st.one_of(st.none(), st.sampled_from(["1.28", "1.33", "v1.35", "1.36.3"]), st.text(max_size=6)),
)
def test_convert_never_raises(objs, node_role, instance_profile, ami_version, ignore, k8s):
    out, report, origins = convert_mod.convert_with_origins(
        objs,
        node_role=node_role,
        instance_profile=instance_profile,
        ami_version=ami_version,
        ignore_alpha_defaults=ignore,
        kubernetes_version=k8s,
    )
    assert isinstance(out, list)
    for i in report:
        _check_issue(i)
    count = len(objs) if isinstance(objs, (list, tuple)) else 1
    assert len(origins) == len(report) and all(o is None or 0 <= o < count for o in origins)


# --------------------------------------------------------------------------------------------- run


class WriteAttempted(AssertionError):
    pass


def _fields_v1(obj):
    if isinstance(obj, dict):
        return {"f:%s" % k: _fields_v1(v) for k, v in obj.items()}
    return {}


def _live(obj):
    live = copy.deepcopy(obj)
    live["metadata"].update(
        uid="u-1",
        resourceVersion="7",
        generation=1,
        managedFields=[
            {
                "manager": engine.FIELD_MANAGER,
                "operation": "Apply",
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(
                    {"metadata": {"labels": live["metadata"].get("labels", {})}, "spec": live["spec"]}
                ),
            }
        ],
    )
    live["metadata"].setdefault("labels", {})[engine.MANAGED_BY_LABEL] = engine.MANAGED_BY_VALUE
    live["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    return live


LIVE = {
    resource.NODEPOOL.path(): [_live(NODEPOOL), _live(dict(NODEPOOL, metadata={"name": "orphan"}))],
    resource.EC2NODECLASS.path(): [_live(EC2NODECLASS)],
    resource.KWOKNODECLASS.path(): [{"metadata": {"name": "default"}}],
}


class FakeApi:
    """Answers LISTs with a few live objects; any write or watch raises."""

    def __init__(self):
        self.counts = {}
        self.writes = 0

    def _count(self, verb):
        self.counts[verb] = self.counts.get(verb, 0) + 1

    def list(self, path, label_selector=None):
        self._count("list")
        return {"items": copy.deepcopy(LIVE.get(path, [])), "metadata": {"resourceVersion": "9"}}

    def get(self, path):
        self._count("get")
        raise AssertionError("unexpected GET %s" % path)

    def apply(self, path, obj, field_manager, force=True, dry_run=False):
        self.writes += 1
        raise WriteAttempted("apply %s" % path)

    def delete(self, path, propagation="Background"):
        self.writes += 1
        raise WriteAttempted("delete %s" % path)

    def watch_until(self, *args, **kwargs):
        raise AssertionError("unexpected watch")

    def request_summary(self):
        return dict(self.counts, total=sum(self.counts.values()), writes=self.writes)


kinds = st.sampled_from([resource.NODEPOOL, resource.EC2NODECLASS])
node_class_refs = st.one_of(
    st.none(),
    st.fixed_dictionaries({"group": st.text(max_size=20), "kind": st.text(max_size=12), "name": st.text(max_size=12)}),
    st.just({"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"}),
)
definitions = st.lists(st.one_of(inputs, st.lists(inputs, max_size=2)), max_size=4)


@FUZZ
@given(
    defs=definitions,
    kind=kinds,
    state=st.sampled_from(["present", "absent"]),
    prune=st.booleans(),
    ref=node_class_refs,
    strict=st.booleans(),
)
def test_run_in_check_mode_only_raises_input_error_and_never_writes(defs, kind, state, prune, ref, strict):
    api = FakeApi()
    try:
        result = karpenter_apply.run(
            api, kind, defs, state=state, prune=prune, node_class_ref=ref, check_mode=True, strict=strict
        )
    except karpenter_apply.InputError as exc:
        assert str(exc)
        json.dumps(exc.details, default=str)
    else:
        assert result["requests"]["writes"] == 0
        json.dumps(result, default=str)
    assert api.writes == 0


@FUZZ
@given(defs=definitions, kind=kinds, ref=node_class_refs, strict=st.booleans())
def test_run_writes_only_when_the_whole_batch_is_valid(defs, kind, ref, strict):
    api = FakeApi()
    try:
        karpenter_apply.run(api, kind, defs, node_class_ref=ref, strict=strict)
    except karpenter_apply.InputError:
        assert api.writes == 0
    except WriteAttempted:
        # a write is legitimate only for a batch with no error (and no warning in strict mode)
        objs, _report, _others = karpenter_apply.prepare(kind, defs, ref)
        known = ["default"] if kind is resource.NODEPOOL else None
        batch = validate_mod.validate_batch(objs, known_nodeclasses=known)
        assert batch.ok and (not strict or not batch.warnings), "a write for an invalid batch: %s" % batch.errors


def test_mutations_start_from_real_objects():
    """The mutated objects start valid (v1) or convertible (legacy), so the fuzzing reaches deep code paths."""
    assert validate_mod.validate_batch(copy.deepcopy(BASES[:2]), known_nodeclasses=["default"]).ok
    out, _report = convert_mod.convert(copy.deepcopy(BASES[2:]))
    assert {(o["apiVersion"], o["kind"]) for o in out} == {
        ("karpenter.sh/v1", "NodePool"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass"),
    }


# --------------------------------------------------------------------------------------------- found by the fuzzer
# Minimal inputs the properties above found (shrunk by hypothesis, then reduced by hand). Each must give a
# result or an InputError - never a traceback.


def _with(base, **changes):
    obj = copy.deepcopy(base)
    for path, value in changes.items():
        cur = obj
        parts = path.split("__")
        for p in parts[:-1]:
            cur = cur[p]
        if value is _DELETE:
            del cur[parts[-1]]
        else:
            cur[parts[-1]] = value
    return obj


_DELETE = object()
KWOK_REF = {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"}
FOUND_VALIDATE = {
    "apiVersion-is-a-list": [{"apiVersion": [], "kind": "NodePool"}],  # lint._lint_legacy: unhashable
    "name-is-a-list": [_with(NODEPOOL, metadata={"name": ["x"]})],  # lint.lint_batch duplicate check: unhashable
    "int64-overflow-under-a-cel-rule": [
        _with(
            EC2NODECLASS,
            spec__blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "1Gi", "iops": 2**63}}],
        )
    ],  # cel.to_cel: celpy IntType raises ValueError('overflow')
    "huge-integer-limit": [_with(NODEPOOL, spec__limits={"cpu": 2**64})],
}
FOUND_CONVERT = {
    "requirement-key-is-a-list": [_with(PROVISIONER, spec__requirements=[{"key": ["a"], "operator": "Exists"}])],
    "beta-amiFamily-is-a-list": [_with(BETA_NODECLASS, spec__amiFamily=["AL2"])],
    "blockDeviceMapping-is-null": [_with(AWSNODETEMPLATE, spec__blockDeviceMappings=[None])],
    "beta-nodeClassRef-apiVersion-is-a-list": [
        _with(BETA_NODEPOOL, spec__template__spec__nodeClassRef={"apiVersion": ["x"], "name": "a"})
    ],
    "v1-class-metadata-is-a-string": [copy.deepcopy(PROVISIONER), _with(EC2NODECLASS, metadata="x")],
    "provisioner-name-is-a-map": [_with(PROVISIONER, metadata={"name": {"a": 1}})],
}
FOUND_RUN = {
    "kind-is-a-list": (resource.NODEPOOL, [{"apiVersion": "karpenter.sh/v1", "kind": []}], {}),
    "spec-is-a-string-with-node_class_ref": (
        resource.NODEPOOL,
        [_with(NODEPOOL, spec="x")],
        {"node_class_ref": KWOK_REF},
    ),
    "template-is-a-list": (resource.NODEPOOL, [_with(NODEPOOL, spec__template=[1])], {}),
    "absent-metadata-is-a-string": (resource.NODEPOOL, [{"metadata": "x"}], {"state": "absent"}),
    "name-is-a-list": (resource.NODEPOOL, [_with(NODEPOOL, metadata={"name": ["x"]})], {}),
    # prepare() keeps every object whose kind matches, validate_batch() skips kinds it does not know
    # (karpenter.sh/v2 NodePool) without an error, and add_managed_by(None) fails
    "unknown-apiVersion-of-the-kind": (resource.NODEPOOL, [_with(NODEPOOL, apiVersion="karpenter.sh/v2")], {}),
    # validate() never checks a missing metadata (only a present one): make_plan() raises KeyError
    "no-metadata": (resource.EC2NODECLASS, [_with(EC2NODECLASS, metadata=_DELETE)], {}),
}


@pytest.mark.parametrize("objs", list(FOUND_VALIDATE.values()), ids=list(FOUND_VALIDATE))
def test_found_validate_batch_inputs(objs):
    result = validate_mod.validate_batch(objs)
    assert len(result) == len(objs)


@pytest.mark.parametrize("objs", list(FOUND_CONVERT.values()), ids=list(FOUND_CONVERT))
def test_found_convert_inputs(objs):
    out, report = convert_mod.convert(objs)
    assert isinstance(out, list) and all(isinstance(i, Issue) for i in report)


@pytest.mark.parametrize("kind, defs, kwargs", list(FOUND_RUN.values()), ids=list(FOUND_RUN))
@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "real"])
def test_found_run_inputs(kind, defs, kwargs, check_mode):
    api = FakeApi()
    with pytest.raises(karpenter_apply.InputError):
        karpenter_apply.run(api, kind, copy.deepcopy(defs), check_mode=check_mode, **kwargs)
    assert api.writes == 0


def test_object_without_metadata_is_invalid():
    """The apiserver answers 'metadata.name: Required value: name or generateName is required'."""
    assert not validate_mod.validate(_with(EC2NODECLASS, metadata=_DELETE)).ok
    assert not validate_mod.validate(_with(NODEPOOL, metadata=_DELETE)).ok


def test_unconvertible_legacy_input_is_not_applied():
    """A conversion *error* (here launchTemplate, which karpenter-convert refuses) means nothing is written.

    Today run() applies the converted EC2NodeClass without the launch template's settings and only lists
    the error in ``conversion_report``.
    """
    template = {
        "apiVersion": "karpenter.k8s.aws/v1alpha1",
        "kind": "AWSNodeTemplate",
        "metadata": {"name": "lt"},
        "spec": {
            "subnetSelector": {"karpenter.sh/discovery": "c"},
            "securityGroupSelector": {"karpenter.sh/discovery": "c"},
            "instanceProfile": "KarpenterNodeInstanceProfile",
            "launchTemplate": "my-launch-template",
        },
    }
    _out, report = convert_mod.convert([template])
    assert any(i.severity == "error" and i.path == "spec.launchTemplate" for i in report)
    api = FakeApi()
    with pytest.raises(karpenter_apply.InputError):
        karpenter_apply.run(api, resource.EC2NODECLASS, [template])
    assert api.writes == 0
