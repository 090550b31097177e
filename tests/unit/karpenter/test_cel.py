"""The CRDs' own CEL rules, evaluated with cel-python at the node where they are declared."""

import copy
import time

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import caches, cel
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.crds import ec2nodeclass_v1, nodepool_v1
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import validate

SCHEMAS = {"NodePool": nodepool_v1.SCHEMA, "EC2NodeClass": ec2nodeclass_v1.SCHEMA}


def crd_rule(kind, schema_path, message_start):
    """The rule dict of the CRD at ``schema_path`` whose message starts with ``message_start``."""
    found = [r for p, r in cel.iter_rules(SCHEMAS[kind]) if p == schema_path and r["message"].startswith(message_start)]
    assert len(found) == 1, (schema_path, message_start, found)
    return found[0]


def cel_errors(result):
    return [i for i in result.errors if i.source == "cel"]


def test_all_56_rules_compile():
    rules = set()
    for schema in SCHEMAS.values():
        _count, failures = cel.compile_schema(schema)
        assert failures == [], failures
        rules.update(r["rule"] for _p, r in cel.iter_rules(schema))
    # v1.15.0: spec.kubelet became an open map, so its 10 rules (6 distinct; v1.14.1 had 54 EC2NodeClass
    # rules and 62 distinct in all) moved to the controller (kubelet.py ports them as runtime checks)
    assert len(rules) == 56
    assert len(list(cel.iter_rules(nodepool_v1.SCHEMA))) == 20
    assert len(list(cel.iter_rules(ec2nodeclass_v1.SCHEMA))) == 44


def test_kubernetes_library_functions():
    def run(expr, value):
        node = cel.Node(value, None)
        return cel.run_rule(expr, node, None)

    assert run("self.find('^[^@]+') == 'al2023'", "al2023@v1") == (True, None)
    assert run("self.find('zzz') == ''", "abc") == (True, None)
    assert run("self.split('@') == ['a', 'b', 'c']", "a@b@c") == (True, None)
    assert run("self.split('@', 2) == ['a', 'b@c']", "a@b@c") == (True, None)
    assert run("self.lowerAscii() == 'abc' && self.upperAscii() == 'ABC'", "aBc") == (True, None)
    assert run("self.trim() == 'x' && self.replace('x', 'y') == 'y'", " x ") == (False, None)
    assert run("self.indexOf('b') == 1 && self.lastIndexOf('b') == 3 && self.substring(1, 3) == 'bc'", "abcb") == (
        True,
        None,
    )
    assert run("self.findAll('[0-9]+') == ['1', '22']", "a1b22") == (True, None)
    assert run("['a', 'b'].join('-') == self", "a-b") == (True, None)
    ok, err = run("int(self) > 0", "abc")
    assert ok is None and err


def test_reference_objects_have_no_cel_errors(nodepool, ec2nodeclass):
    assert cel_errors(validate(nodepool)) == []
    assert cel_errors(validate(ec2nodeclass)) == []


def _req(key, operator, values=None, **kw):
    r = {"key": key, "operator": operator}
    if values is not None:
        r["values"] = values
    r.update(kw)
    return r


REQS = "spec.template.spec.requirements"

NODEPOOL_CASES = [
    # (mutation, error path, schema path of the rule, message start)
    (
        lambda o: o["spec"]["template"]["spec"]["requirements"].append(_req("example.com/a", "In", [])),
        REQS,
        REQS,
        "requirements with operator 'In'",
    ),
    (
        lambda o: o["spec"]["template"]["spec"]["requirements"].append(_req("example.com/a", "Gt", ["abc"])),
        REQS,
        REQS,
        "requirements operator 'Gt'",
    ),
    (
        lambda o: o["spec"]["template"]["spec"]["requirements"].append(_req("example.com/a", "Lte", ["1", "2"])),
        REQS,
        REQS,
        "requirements operator 'Gt'",
    ),
    (
        lambda o: o["spec"]["template"]["spec"]["requirements"].append(_req("example.com/a", "In", ["x"], minValues=2)),
        REQS,
        REQS,
        "requirements with 'minValues'",
    ),
    (
        lambda o: o["spec"]["template"]["spec"]["requirements"].append(_req("karpenter.sh/foo", "Exists")),
        REQS + "[4].key",
        REQS + "[*].key",
        'label domain "karpenter.sh"',
    ),
    (
        lambda o: o["spec"]["template"]["spec"]["requirements"].append(_req("karpenter.sh/nodepool", "Exists")),
        REQS + "[4].key",
        REQS + "[*].key",
        'label "karpenter.sh/nodepool"',
    ),
    (
        lambda o: o["spec"]["template"]["spec"]["requirements"].append(_req("kubernetes.io/hostname", "Exists")),
        REQS + "[4].key",
        REQS + "[*].key",
        'label "kubernetes.io/hostname"',
    ),
    (
        lambda o: o["spec"]["template"]["spec"]["requirements"].append(
            _req("karpenter.k8s.aws/instance-pods", "Exists")
        ),
        REQS + "[4].key",
        REQS + "[*].key",
        'label domain "karpenter.k8s.aws"',
    ),
    (
        lambda o: o["spec"]["template"]["metadata"]["labels"].update({"sub.karpenter.sh/x": "1"}),
        "spec.template.metadata.labels",
        "spec.template.metadata.labels",
        'label domain "karpenter.sh"',
    ),
    (
        lambda o: o["spec"]["template"]["metadata"]["labels"].update({"karpenter.sh/nodepool": "x"}),
        "spec.template.metadata.labels",
        "spec.template.metadata.labels",
        'label "karpenter.sh/nodepool"',
    ),
    (
        lambda o: o["spec"]["template"]["metadata"]["labels"].update({"karpenter.k8s.aws/instance-ami-id": "x"}),
        "spec.template.metadata.labels",
        "spec.template.metadata.labels",
        'label domain "karpenter.k8s.aws"',
    ),
    (
        lambda o: o["spec"]["disruption"]["budgets"].append({"nodes": "1", "schedule": "@daily"}),
        "spec.disruption.budgets",
        "spec.disruption.budgets",
        "'schedule' must be set",
    ),
    (
        lambda o: o["spec"]["template"]["spec"]["nodeClassRef"].update(name=""),
        "spec.template.spec.nodeClassRef.name",
        "spec.template.spec.nodeClassRef.name",
        "name may not be empty",
    ),
    (
        lambda o: o["spec"]["template"]["spec"]["nodeClassRef"].update(group=""),
        "spec.template.spec.nodeClassRef.group",
        "spec.template.spec.nodeClassRef.group",
        "group may not be empty",
    ),
    (lambda o: o["spec"].update(replicas=3), "spec", "spec", "'weight' is not supported on static NodePools"),
    (lambda o: o["spec"].update(replicas=3), "spec", "spec", "only 'limits.nodes' is supported"),
]


@pytest.mark.parametrize("mutate,path,schema_path,message_start", NODEPOOL_CASES)
def test_nodepool_cel_rules(nodepool, mutate, path, schema_path, message_start):
    rule = crd_rule("NodePool", schema_path, message_start)
    mutate(nodepool)
    errs = [i for i in cel_errors(validate(nodepool)) if i.rule == rule["rule"]]
    assert [i.path for i in errs] == [path]
    assert errs[0].message.startswith(rule["message"])


def test_static_nodepool_with_only_nodes_limit_is_valid(nodepool):
    nodepool["spec"]["replicas"] = 3
    del nodepool["spec"]["weight"]
    nodepool["spec"]["limits"] = {"nodes": "5"}
    assert cel_errors(validate(nodepool)) == []


def test_absent_field_in_rule_is_an_evaluation_error(nodepool):
    # like the apiserver ("no such key"), reading an unset field fails the rule (v1.14.1's example, the
    # kubelet evictionSoft rule, is gone in v1.15.0: a numeric requirement without values reads x.values)
    nodepool["spec"]["template"]["spec"]["requirements"].append({"key": "example.com/a", "operator": "Gte"})
    (err,) = cel_errors(validate(nodepool))
    assert err.path == REQS
    assert err.message.startswith(
        "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value "
        "(rule evaluation error:"
    )


def test_in_without_values_reports_evaluation_error_with_crd_message(nodepool):
    nodepool["spec"]["template"]["spec"]["requirements"].append({"key": "example.com/a", "operator": "In"})
    (err,) = [i for i in cel_errors(validate(nodepool)) if i.path == REQS]
    assert err.message.startswith("requirements with operator 'In' must have a value defined")
    assert "rule evaluation error" in err.message


EC2_CASES = [
    (
        lambda s: s.update(instanceProfile="p"),
        "spec",
        "spec",
        "must specify exactly one of ['role', 'instanceProfile']",
    ),
    (lambda s: s.pop("role"), "spec", "spec", "must specify exactly one of ['role', 'instanceProfile']"),
    (
        lambda s: s["amiSelectorTerms"].append({"id": "ami-123"}),
        "spec.amiSelectorTerms",
        "spec.amiSelectorTerms",
        "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms",
    ),
    (
        lambda s: s.update(amiSelectorTerms=[{"alias": "al2023"}]),
        "spec.amiSelectorTerms[0].alias",
        "spec.amiSelectorTerms[*].alias",
        "'alias' is improperly formatted",
    ),
    (
        lambda s: s.update(amiSelectorTerms=[{"alias": "ubuntu@latest"}]),
        "spec.amiSelectorTerms[0].alias",
        "spec.amiSelectorTerms[*].alias",
        "family is not supported",
    ),
    (
        lambda s: s.update(amiSelectorTerms=[{"alias": "windows2022@v1"}]),
        "spec.amiSelectorTerms[0].alias",
        "spec.amiSelectorTerms[*].alias",
        "windows families may only",
    ),
    (lambda s: s.update(amiFamily="AL2"), "spec", "spec", "if set, amiFamily must be 'AL2023' or 'Custom'"),
    (
        lambda s: s.update(amiSelectorTerms=[{"id": "ami-123"}]),
        "spec",
        "spec",
        "must specify amiFamily if amiSelectorTerms",
    ),
    (
        lambda s: s.update(amiFamily="AL2023", amiSelectorTerms=[{"id": "ami-123", "name": "x"}]),
        "spec.amiSelectorTerms",
        "spec.amiSelectorTerms",
        "'id' is mutually exclusive",
    ),
    (
        lambda s: s.update(amiFamily="AL2023", amiSelectorTerms=[{"owner": "self"}]),
        "spec.amiSelectorTerms",
        "spec.amiSelectorTerms",
        "expected at least one, got none",
    ),
    (
        lambda s: s["blockDeviceMappings"].append(
            {"deviceName": "/dev/xvdb", "rootVolume": True, "ebs": {"volumeSize": "20Gi"}}
        ),
        "spec.blockDeviceMappings",
        "spec.blockDeviceMappings",
        "must have only one blockDeviceMappings with rootVolume",
    ),
    (
        lambda s: s["blockDeviceMappings"][0]["ebs"].pop("volumeSize"),
        "spec.blockDeviceMappings[0].ebs",
        "spec.blockDeviceMappings[*].ebs",
        "snapshotID or volumeSize must be defined",
    ),
    (
        lambda s: s["tags"].update({"eks:eks-cluster-name": "x"}),
        "spec.tags",
        "spec.tags",
        "tag contains a restricted tag matching eks:eks-cluster-name",
    ),
    (
        lambda s: s["tags"].update({"kubernetes.io/cluster/prod": "owned"}),
        "spec.tags",
        "spec.tags",
        "tag contains a restricted tag matching kubernetes.io/cluster/",
    ),
    (
        lambda s: s["tags"].update({"karpenter.sh/nodeclaim": "x"}),
        "spec.tags",
        "spec.tags",
        "tag contains a restricted tag matching karpenter.sh/nodeclaim",
    ),
    # v1.15.0 dropped the six spec.kubelet rules (image GC thresholds, evictionSoft pairing, reserved keys and
    # signs, eviction signal keys): the controller checks them now, see test_kubelet.py
    (
        lambda s: s.update(subnetSelectorTerms=[{"id": "subnet-1", "tags": {"a": "b"}}]),
        "spec.subnetSelectorTerms",
        "spec.subnetSelectorTerms",
        "'id' is mutually exclusive",
    ),
    (
        lambda s: s.update(securityGroupSelectorTerms=[{"tags": {"a": ""}}]),
        "spec.securityGroupSelectorTerms[0].tags",
        "spec.securityGroupSelectorTerms[*].tags",
        "empty tag keys or values",
    ),
    (
        lambda s: s.update(placementGroupSelector={"name": "a", "id": "pg-1"}),
        "spec.placementGroupSelector",
        "spec.placementGroupSelector",
        "'name' and 'id' are mutually exclusive",
    ),
    (
        lambda s: s.update(networkInterfaces=[{"networkCardIndex": 0, "deviceIndex": 1, "interfaceType": "interface"}]),
        "spec.networkInterfaces",
        "spec.networkInterfaces",
        "networkInterfaces must include a primary",
    ),
    (
        lambda s: s.update(connectionTracking={}),
        "spec.connectionTracking",
        "spec.connectionTracking",
        "at least one of tcpEstablishedTimeout",
    ),
    (lambda s: s.update(role=""), "spec.role", "spec.role", "role cannot be empty"),
]


@pytest.mark.parametrize("mutate,path,schema_path,message_start", EC2_CASES)
def test_ec2nodeclass_cel_rules(ec2nodeclass, mutate, path, schema_path, message_start):
    rule = crd_rule("EC2NodeClass", schema_path, message_start)
    mutate(ec2nodeclass["spec"])
    errs = [i for i in cel_errors(validate(ec2nodeclass)) if i.rule == rule["rule"]]
    assert [i.path for i in errs] == [path], [str(i) for i in validate(ec2nodeclass).issues]
    assert errs[0].message == rule["message"]


def test_distinct_rules_covered_by_these_tests():
    rules = set()
    for cases, kind in ((NODEPOOL_CASES, "NodePool"), (EC2_CASES, "EC2NodeClass")):
        for _m, _p, schema_path, message_start in cases:
            rules.add(crd_rule(kind, schema_path, message_start)["rule"])
    assert len(rules) >= 10


def test_transition_rules_need_an_old_object(nodepool):
    old = copy.deepcopy(nodepool)
    nodepool["spec"]["template"]["spec"]["nodeClassRef"]["group"] = "example.com"
    assert not [i for i in cel_errors(validate(nodepool)) if "immutable" in i.message]
    errs = [i for i in cel_errors(validate(nodepool, old=old)) if "immutable" in i.message]
    assert [(i.path, i.message) for i in errs] == [
        ("spec.template.spec.nodeClassRef", "nodeClassRef.group is immutable")
    ]
    # name stays mutable
    nodepool["spec"]["template"]["spec"]["nodeClassRef"]["group"] = "karpenter.k8s.aws"
    nodepool["spec"]["template"]["spec"]["nodeClassRef"]["name"] = "other"
    assert cel_errors(validate(nodepool, old=old)) == []


def test_static_dynamic_transition(nodepool):
    old = copy.deepcopy(nodepool)
    nodepool["spec"]["replicas"] = 2
    del nodepool["spec"]["weight"]
    nodepool["spec"]["limits"] = {"nodes": "2"}
    assert cel_errors(validate(nodepool)) == []
    (err,) = cel_errors(validate(nodepool, old=old))
    assert err.path == "spec" and err.message.startswith("Cannot transition NodePool between static")


def test_message_expression_and_field_path():
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {
                        "rule": "self.a < self.b",
                        "message": "static",
                        "messageExpression": "'a=' + string(self.a) + ' must be below b'",
                        "fieldPath": ".a",
                    },
                    {"rule": "self.a != 5", "fieldPath": "['b']"},
                ],
            }
        },
    }
    issues = cel.evaluate({"spec": {"a": 5, "b": 1}}, schema, object_ref="X/y")
    assert [(i.path, i.message) for i in issues] == [
        ("spec.a", "a=5 must be below b"),
        ("spec[b]", "failed rule: self.a != 5"),
    ]


def test_decomposed_all_matches_whole_rule_evaluation():
    """Rules of the form self.all(x, body) are evaluated per element; results must equal the whole rule."""
    samples = [
        [{"key": "a", "operator": "In", "values": []}, {"key": "b", "operator": "Gt", "values": ["x"]}],
        [{"key": "a", "operator": "In", "values": ["1"]}, {"key": "b", "operator": "Gt", "values": ["2"]}],
        [{"key": "a", "operator": "Gt", "values": ["x"]}, {"key": "b", "operator": "In", "values": []}],
        [{"key": "a", "operator": "In"}],
        [],
        {"karpenter.sh/foo": "1", "team": "a"},
        {"team": "a", "kubernetes.io/hostname": "x"},
    ]
    checked = 0
    for schema in SCHEMAS.values():
        for _path, rule in cel.iter_rules(schema):
            plan = cel._plan(rule["rule"])
            if plan[0] != "all":
                continue
            for value in samples:
                node = cel.Node(value, {"items": {"type": "object"}} if isinstance(value, list) else {})
                whole = cel._evaluate(rule["rule"], {"self": node.cel})
                split = cel.run_rule(rule["rule"], node, None)
                assert (whole[0], whole[1] is None) == (split[0], split[1] is None), (rule["rule"], value, whole, split)
                checked += 1
    assert checked > 50


def _pools(n, base):
    pools = []
    for i in range(n):
        p = copy.deepcopy(base)
        p["metadata"]["name"] = "pool-%d" % i
        p["spec"]["template"]["metadata"]["labels"] = {"team": "team-%d" % i, "example.com/pool": str(i)}
        p["spec"]["template"]["spec"]["requirements"][2]["values"] = ["amd64"] if i % 2 else ["arm64"]
        p["spec"]["template"]["spec"]["requirements"][3]["values"] = [str(i % 9)]
        p["spec"]["template"]["spec"]["requirements"].append(
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a", "zone-%d" % i]}
        )
        p["spec"]["weight"] = 1 + i % 100
        pools.append(p)
    return pools


def test_validating_200_distinct_nodepools_is_fast(nodepool):
    pools = _pools(200, nodepool)
    caches.clear_caches(programs=True)  # a fresh process: nothing compiled, nothing memoised
    start = time.perf_counter()
    results = [validate(p) for p in pools]
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in results), [str(i) for r in results for i in r.issues][:5]
    # measured ~0.03 s on 2 cores; the bound leaves room for a busy CI machine
    assert elapsed < 1.0, elapsed
    # the NodePool's rules ran as Python compiled from them (celcompile), cel-python was not needed
    assert caches.cache_info()["compiled"] >= 5
    assert caches.cache_info()["programs"] == 0
