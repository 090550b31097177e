"""fastpath (one pass + compiled CEL rules) gives exactly what the separate passes give.

``validate.FAST_PATH = False`` forces schema.prune + schema.apply_defaults + schema.validate_schema +
cel.evaluate; every test compares the two on the same input: the defaulted object (key order included)
and every issue (object, path, rule, message, severity, source, in order).
"""

import copy
import json

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import (
    caches,
    cel,
    celcompile,
    fastpath,
    golang,
    schema,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import validate as validate_mod
from corpus_cases import entries as corpus_entries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def snapshot(result):
    return (
        result.object_ref,
        result.api_version,
        result.kind,
        json.dumps(result.defaulted, default=repr),  # same values and the same key order
        [(i.object_ref, i.path, i.rule, i.message, i.severity, i.source, i.hint) for i in result.issues],
    )


def both(obj, old=None, monkeypatch=None):
    """``(fast, slow)`` snapshots of validate(obj, old)."""
    fast = snapshot(validate_mod.validate(copy.deepcopy(obj), old=copy.deepcopy(old)))
    saved = validate_mod.FAST_PATH
    validate_mod.FAST_PATH = False
    try:
        slow = snapshot(validate_mod.validate(copy.deepcopy(obj), old=copy.deepcopy(old)))
    finally:
        validate_mod.FAST_PATH = saved
    return fast, slow


def corpus_cases():
    cases = []
    for case, obj, old in corpus_entries():
        for o in (obj, old):
            if isinstance(o, dict) and isinstance(o.get("metadata"), dict):
                o["metadata"]["name"] = "fast-%s" % case["id"][:50]
        cases.append(pytest.param(obj, old, id=case["id"]))
    return cases


CASES = corpus_cases()


def test_corpus_is_loaded():
    assert len(CASES) >= 200


@pytest.mark.parametrize("obj,old", CASES)
def test_corpus_object_same_result_both_ways(obj, old):
    fast, slow = both(obj, old)
    assert fast == slow


@pytest.mark.parametrize("obj,old", CASES)
def test_default_same_result_both_ways(obj, old):
    assert json.dumps(validate_mod.default(obj)) == json.dumps(_slow_default(obj))


def _slow_default(obj):
    pruned, unused = schema.prune(obj, schema.schema_for(*validate_mod.kind_of(obj)))
    return schema.apply_defaults(pruned, schema.schema_for(*validate_mod.kind_of(obj)), copy_obj=False)


def test_fast_path_is_taken_and_decides_cel_without_cel_python(nodepool, ec2nodeclass, monkeypatch):
    calls = []
    real = cel._evaluate
    monkeypatch.setattr(cel, "_evaluate", lambda expr, act: calls.append(expr) or real(expr, act))
    for obj in (nodepool, ec2nodeclass):
        walk = fastpath.run(dict(obj.items()), schema.schema_for(obj["apiVersion"], obj["kind"]))
        assert walk is not None and fastpath.cel_ready(walk[1])
        assert validate_mod.validate(obj).ok
    assert calls == []  # every rule decided by its compiled form
    nodepool["spec"]["template"]["spec"]["nodeClassRef"]["name"] = ""
    (issue,) = validate_mod.validate(nodepool).errors
    assert issue.source == "cel" and issue.path == "spec.template.spec.nodeClassRef.name"
    assert calls == []  # a false rule is decided by the compiled form too (cel-python only words errors)


def test_undecided_rules_go_to_cel_python(nodepool, monkeypatch):
    calls = []
    real = cel._evaluate
    monkeypatch.setattr(cel, "_evaluate", lambda expr, act: calls.append(expr) or real(expr, act))
    # a numeric operator without values: the rule reads the absent x.values (an evaluation error). The
    # v1.14.1 example, the kubelet evictionSoft/evictionSoftGracePeriod rule, is not a CRD rule in v1.15.0.
    nodepool["spec"]["template"]["spec"]["requirements"].append({"key": "example.com/a", "operator": "Lte"})
    fast, slow = both(nodepool)
    assert fast == slow
    assert any("x.operator == 'Lte'" in c for c in calls)
    assert "rule evaluation error" in fast[4][0][3]


class Text(str):
    """A str subclass, like Ansible's AnsibleUnicode."""


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda o: o["spec"].update(tags=(("a", "b"),)), id="tuple"),
        pytest.param(lambda o: o["spec"].update(role=Text("r")), id="str-subclass"),
        pytest.param(lambda o: o["spec"]["tags"].update({3: "x"}), id="int-key"),
        pytest.param(lambda o: o["spec"].update(blockDeviceMappings=[o["spec"]["tags"]]), id="shared-dict"),
        pytest.param(lambda o: o["metadata"].update(labels=o["spec"]["tags"]), id="shared-with-metadata"),
    ],
)
def test_objects_the_fast_path_declines(ec2nodeclass, change):
    ec2nodeclass["spec"]["tags"] = {"team": "a"}
    change(ec2nodeclass)
    walk = fastpath.run(ec2nodeclass, schema.schema_for("karpenter.k8s.aws/v1", "EC2NodeClass"))
    assert walk is None
    result = validate_mod.validate(ec2nodeclass)  # still validated (by the separate passes)
    assert isinstance(result.ok, bool)


def test_shared_subtree_keeps_the_copy_semantics(nodepool):
    # YAML anchors share one dict; deepcopy keeps the sharing, so defaulting one place changes the other
    shared = {"nodes": "10%", "schedule": None}
    nodepool["spec"]["disruption"]["budgets"] = [shared, shared]
    fast, slow = both(nodepool)
    assert fast == slow


def test_integers_beyond_int64_use_cel_evaluate(nodepool):
    nodepool["spec"]["limits"]["cpu"] = 2**70
    walk = fastpath.run(nodepool, schema.schema_for("karpenter.sh/v1", "NodePool"))
    assert walk is not None and not fastpath.cel_ready(walk[1])
    fast, slow = both(nodepool)
    assert fast == slow


def test_cold_caches_same_result(nodepool, ec2nodeclass):
    nodepool["spec"]["template"]["spec"]["requirements"].append({"key": "kubernetes.io/hostname", "operator": "In"})
    ec2nodeclass["spec"]["amiSelectorTerms"] = [{"alias": "windows2022@v1"}]
    before = [both(o) for o in (nodepool, ec2nodeclass)]
    caches.clear_caches(programs=True)
    assert fastpath._PLANS == {} and celcompile.cache_size() == 0 and golang._CACHE == {}
    after = [both(o) for o in (nodepool, ec2nodeclass)]
    assert before == after
    assert all(fast == slow for fast, slow in after)


def test_unsupported_schema_keywords_take_the_separate_passes():
    s = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}},
        },
    }
    assert fastpath.plan_for(s) is None
    assert fastpath.run({"spec": {"a": 1}}, s) is None


# --------------------------------------------------------------------------------------------
# generated objects: real objects with random changes (types, nulls, unknown fields, big numbers ...)

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
                    {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c"], "minValues": 1},
                    {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]},
                ],
                "taints": [{"key": "example.com/dedicated", "value": "gpu", "effect": "NoSchedule"}],
                "expireAfter": "720h",
            },
        },
        "disruption": {"consolidateAfter": "1m", "budgets": [{"nodes": "0", "schedule": "@daily", "duration": "1h"}]},
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
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "c"}, "id": "sg-1"}],
        "kubelet": {"maxPods": 110, "evictionSoft": {"memory.available": "5%"}},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": {"volumeSize": "50Gi"}}],
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
        "networkInterfaces": [{"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"}],
        "tags": {"team": "a"},
    },
}
FIELDS = sorted(
    {
        p.replace("[*]", "").replace("{*}", "").split(".")[-1]
        for c in schema.CRDS.values()
        for p, _node in schema.iter_schema(c.SCHEMA)
    }
    - {""}
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=200),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["", "In", "Gt", "Never", "0s", "10%", "al2023@latest", "windows2022@v1", "x", "-1", "Custom"]),
    st.text(max_size=6),
)
values = st.recursive(
    leaves,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated(draw):
    obj = copy.deepcopy(draw(st.sampled_from([NODEPOOL, EC2NODECLASS])))
    for _step in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(list(_paths(obj))[1:]))
        parent = obj
        for p in path[:-1]:
            parent = parent[p]
        op = draw(st.sampled_from(["replace", "delete", "add", "null"]))
        if op == "replace":
            parent[path[-1]] = draw(values)
        elif op == "delete":
            del parent[path[-1]]
        elif op == "null":
            parent[path[-1]] = None
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(FIELDS))] = draw(values)
        elif isinstance(parent[path[-1]], list):
            parent[path[-1]].append(draw(values))
    return obj


@FUZZ
@given(obj=mutated())
def test_generated_objects_same_result_both_ways(obj):
    fast, slow = both(obj)
    assert fast == slow


@FUZZ
@given(obj=mutated())
def test_generated_objects_with_old_object_same_result_both_ways(obj):
    old = copy.deepcopy(NODEPOOL if obj.get("kind") == "NodePool" else EC2NODECLASS)
    fast, slow = both(obj, old)
    assert fast == slow
