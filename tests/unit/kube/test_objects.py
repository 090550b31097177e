"""The pure logic of k8s_objects (plugins/module_utils/kube/objects.py): the subset rule that decides whether an
object differs, the applied-definition fingerprint, the offline server-side-apply prediction used by check mode,
input checks and the plan. No request is made here; tests/integration/test_k8s_objects.py runs the module against
the real apiserver."""

import copy

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine, objects

NETPOL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "karpenter-controller", "namespace": "karpenter", "labels": {"app": "x"}},
    "spec": {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"ports": [{"port": 8080}]}],
    },
}


def live_of(desired, manager=objects.FIELD_MANAGER, fields=None, extra_managers=()):
    """What the apiserver stores after applying ``desired`` (with a default inside a list item and server
    metadata), with managedFields for ``manager`` (``fields``: fieldsV1) and other managers."""
    live = copy.deepcopy(engine.with_hash(desired))
    live["metadata"].update(uid="u-1", resourceVersion="7", creationTimestamp="2026-01-01T00:00:00Z")
    for rule in (live.get("spec") or {}).get("ingress") or []:
        for port in rule.get("ports") or []:
            port.setdefault("protocol", "TCP")  # the API server's default
    entries = []
    if fields is not None:
        entries.append({"manager": manager, "operation": "Apply", "fieldsV1": fields})
    entries.extend(extra_managers)
    live["metadata"]["managedFields"] = entries
    return live


def plan_one(desired, live, state="present"):
    (obj,) = objects.prepare([desired])
    obj.resource = objects.Resource.of(obj.api_version, obj.kind, "things", bool(obj.namespace))
    return engine.make_plan([obj], {obj.key: live} if live is not None else {}, state, engine.CONTAINS)[0]


# --------------------------------------------------------------------------------------- differences
@pytest.mark.parametrize(
    "want,have,expected",
    [
        ({"a": 1}, {"a": 1, "b": 2}, []),  # extra live keys are fine
        ({"a": {"b": "x"}}, {"a": {"b": "x", "c": "y"}}, []),
        ({"a": 1}, {}, ["a"]),
        ({"a": 1}, {"a": 2}, ["a"]),
        ({"a": "1"}, {"a": 1}, ["a"]),  # no type coercion
        ({"a": True}, {"a": 1}, ["a"]),  # True == 1 in Python, not here
        ({"a": 1}, {"a": True}, ["a"]),
        ({"a": False}, {"a": False}, []),
        ({"a": 1}, {"a": 1.0}, []),
        ({"a": [1, 2]}, {"a": [1, 2]}, []),
        ({"a": [1, 2]}, {"a": [2, 1]}, ["a[0]", "a[1]"]),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, ["a"]),  # lists: same length
        ({"a": [{"p": 1}]}, {"a": [{"p": 1, "protocol": "TCP"}]}, []),  # defaults inside list items
        ({"a": [{"p": 1}]}, {"a": [{"p": 2, "protocol": "TCP"}]}, ["a[0].p"]),
        ({"a": []}, {}, ["a"]),
        ({"a": {}}, {"a": "x"}, ["a"]),
        ({"a": "x"}, {"a": {}}, ["a"]),
        ({"a": None}, {}, []),  # null: must not be set, and it is not
        ({"a": None}, {"a": None}, []),
        ({"a": None}, {"a": 1}, ["a"]),
        (
            {"metadata": {"labels": {"app.kubernetes.io/name": "k"}}},
            {"metadata": {}},
            ["metadata.labels"],
        ),
        (
            {"metadata": {"labels": {"app.kubernetes.io/name": "k"}}},
            {"metadata": {"labels": {}}},
            ['metadata.labels["app.kubernetes.io/name"]'],
        ),
    ],
)
def test_differences_is_the_subset_rule(want, have, expected):
    assert engine.differences(want, have) == expected


def test_differences_of_identical_objects_is_empty():
    assert engine.differences(NETPOL, copy.deepcopy(NETPOL)) == []


# --------------------------------------------------------------------------------------- fingerprint
def test_fingerprint_is_canonical_and_ignores_itself():
    a = copy.deepcopy(NETPOL)
    b = {"spec": a["spec"], "metadata": a["metadata"], "kind": a["kind"], "apiVersion": a["apiVersion"]}
    assert engine.applied_hash(a) == engine.applied_hash(b)
    sent = engine.with_hash(a)
    assert sent["metadata"]["annotations"][engine.HASH_ANNOTATION] == engine.applied_hash(a)
    assert engine.applied_hash(sent) == engine.applied_hash(a)  # hashing what was sent gives the same value
    assert "annotations" not in a["metadata"]  # the input is not modified
    changed = copy.deepcopy(a)
    changed["spec"]["policyTypes"] = ["Ingress", "Egress"]
    assert engine.applied_hash(changed) != engine.applied_hash(a)


def test_fingerprint_keeps_other_annotations():
    a = copy.deepcopy(NETPOL)
    a["metadata"]["annotations"] = {"team": "blue"}
    assert engine.with_hash(a)["metadata"]["annotations"]["team"] == "blue"
    assert engine.applied_hash(a) != engine.applied_hash(NETPOL)


# --------------------------------------------------------------------------------------- plan
def test_converged_object_is_unchanged():
    item = plan_one(NETPOL, live_of(NETPOL))
    assert item.action == "unchanged" and not item.changed


def test_missing_object_is_created_with_its_fingerprint():
    item = plan_one(NETPOL, None)
    assert item.action == "create"
    assert item.before == {}
    assert item.after["metadata"]["annotations"][engine.HASH_ANNOTATION] == engine.applied_hash(NETPOL)
    assert item.after["spec"] == NETPOL["spec"]


def test_changed_value_is_an_update_with_its_path():
    want = copy.deepcopy(NETPOL)
    want["spec"]["ingress"][0]["ports"][0]["port"] = 9090
    item = plan_one(want, live_of(NETPOL))
    assert item.action == "update"
    assert "spec.ingress[0].ports[0].port" in item.differences


def test_removed_field_is_noticed_through_the_fingerprint():
    """A field dropped from the definition leaves the live object a superset: only the fingerprint tells."""
    live = live_of(NETPOL)
    want = copy.deepcopy(NETPOL)
    del want["metadata"]["labels"]
    item = plan_one(want, live)
    assert item.action == "update"
    assert item.differences == ['metadata.annotations["%s"]' % engine.HASH_ANNOTATION]


def test_object_applied_by_another_tool_is_taken_over_once():
    live = live_of(NETPOL)
    del live["metadata"]["annotations"]
    assert plan_one(NETPOL, live).action == "update"


def test_drift_made_by_someone_else_is_an_update():
    live = live_of(NETPOL)
    live["metadata"]["labels"]["app"] = "edited"
    assert plan_one(NETPOL, live).differences == ["metadata.labels.app"]


def test_absent():
    assert plan_one(NETPOL, live_of(NETPOL), state="absent").action == "delete"
    assert plan_one(NETPOL, None, state="absent").action == "unchanged"


# --------------------------------------------------------------------------------------- prediction
OWNED_LABELS = {
    "f:metadata": {
        "f:annotations": {".": {}, "f:" + engine.HASH_ANNOTATION: {}},
        "f:labels": {".": {}, "f:app": {}, "f:team": {}},
    },
    "f:spec": {"f:podSelector": {}, "f:policyTypes": {}, "f:ingress": {}},
}


def test_prediction_removes_fields_we_owned_and_no_longer_send():
    old = copy.deepcopy(NETPOL)
    old["metadata"]["labels"]["team"] = "blue"
    live = live_of(old, fields=OWNED_LABELS)
    item = plan_one(NETPOL, live)
    assert item.action == "update"
    assert item.after["metadata"]["labels"] == {"app": "x"}
    assert item.before["metadata"]["labels"] == {"app": "x", "team": "blue"}
    assert item.after["metadata"]["annotations"][engine.HASH_ANNOTATION] == engine.applied_hash(NETPOL)
    # the list the live object already holds keeps the server's default (the apiserver stores it again)
    assert item.after["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    # server metadata never shows in the diff
    assert "uid" not in item.after["metadata"] and "managedFields" not in item.before["metadata"]


def test_prediction_keeps_fields_another_manager_owns_too():
    old = copy.deepcopy(NETPOL)
    old["metadata"]["labels"]["team"] = "blue"
    other = {"manager": "kubectl-client-side-apply", "operation": "Update", "fieldsV1": OWNED_LABELS}
    live = live_of(old, fields=OWNED_LABELS, extra_managers=[other])
    item = plan_one(NETPOL, live)
    assert item.after["metadata"]["labels"] == {"app": "x", "team": "blue"}


def test_prediction_replaces_a_changed_list():
    want = copy.deepcopy(NETPOL)
    want["spec"]["ingress"] = [{"ports": [{"port": 9090}]}]
    item = plan_one(want, live_of(NETPOL, fields=OWNED_LABELS))
    assert item.after["spec"]["ingress"] == [{"ports": [{"port": 9090}]}]


# --------------------------------------------------------------------------------------- input
def test_definitions_are_flattened_and_nulls_skipped():
    objs = objects.prepare([[NETPOL, None], None, dict(NETPOL, metadata={"name": "b", "namespace": "k"})])
    assert [o.name for o in objs] == ["karpenter-controller", "b"]
    assert [o.index for o in objs] == [0, 1]


@pytest.mark.parametrize(
    "definition,needle",
    [
        ({"kind": "ConfigMap", "metadata": {"name": "a"}}, "definitions[0] (ConfigMap a): apiVersion: Required value"),
        ({"apiVersion": "v1", "metadata": {"name": "a"}}, "definitions[0] (a): kind: Required value"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "definitions[0] (ConfigMap): metadata.name: Required value"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "metadata.name: Required value"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 3}}, 'metadata.name: Invalid value: "number"'),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a/b"}}, 'may not contain "/"'),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "a"}, 'metadata: Invalid value: "string"'),
        ({"apiVersion": 1, "kind": "ConfigMap", "metadata": {"name": "a"}}, 'apiVersion: Invalid value: "number"'),
        ({"apiVersion": "a/b/c", "kind": "ConfigMap", "metadata": {"name": "a"}}, 'apiVersion: Invalid value: "a/b/c"'),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": True}}},
            'metadata.labels.x: Invalid value: "boolean": must be of type string',
        ),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"d": {1, 2}}},
            "data.d: must be a string, number, boolean, null, list or mapping, got set",
        ),
        ("just a string", "definitions[0]: must be a mapping (a Kubernetes manifest), got string"),
    ],
)
def test_bad_input_names_object_and_field(definition, needle):
    with pytest.raises(objects.InputError) as err:
        objects.prepare([definition])
    assert needle in str(err.value)
    assert "nothing was applied" in str(err.value)
    assert err.value.details and err.value.details[0]["index"] == 0


def test_every_problem_is_reported_at_once():
    with pytest.raises(objects.InputError) as err:
        objects.prepare([{"kind": "A", "metadata": {"name": "a"}}, NETPOL, {"apiVersion": "v1", "kind": "B"}])
    assert [d["index"] for d in err.value.details] == [0, 2]


def test_definitions_must_be_a_list():
    with pytest.raises(objects.InputError, match="definitions: must be a list"):
        objects.prepare("kind: ConfigMap")


def test_resolve_table_kinds_without_requests_and_namespaces():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "x"}}
    objs = objects.prepare([cm, ns])
    warnings = objects.resolve(None, objs, namespace="default")  # no API: the table answers
    assert (
        objs[0].namespace == "default"
        and objs[0].resource.path("a", "default") == "/api/v1/namespaces/default/configmaps/a"
    )
    assert "namespace" not in objs[1].body["metadata"] and objs[1].resource.path("n") == "/api/v1/namespaces/n"
    assert warnings == ["Namespace/x/n: Namespace is cluster-scoped, metadata.namespace ignored"]
    cp = objects.prepare([{"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "p"}}])
    objects.resolve(None, cp)
    assert cp[0].resource.path() == "/apis/kyverno.io/v1/clusterpolicies"


def test_resolve_requires_a_namespace_and_rejects_duplicates():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    with pytest.raises(objects.InputError, match=r"definitions\[0\] \(ConfigMap a\): metadata.namespace: Required"):
        objects.resolve(None, objects.prepare([cm]))
    with pytest.raises(objects.InputError, match=r"definitions\[1\] .*Duplicate value: also definitions\[0\]"):
        objects.resolve(None, objects.prepare([NETPOL, NETPOL]))


def test_secret_string_data_is_compared_as_data_and_redacted_in_the_diff():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "n"},
        "stringData": {"k": "v"},
    }
    (obj,) = objects.prepare([secret])
    assert obj.body["data"] == {"k": "dg=="} and "stringData" not in obj.body
    item = plan_one(secret, None)
    diff = engine.report([item])["diff"][0]
    assert diff["after"]["data"]["k"].startswith("<redacted> sha256:")
    assert "dg==" not in str(diff)


# --------------------------------------------------------------------------------------- failed writes
def test_a_failed_write_reports_changed_only_when_an_earlier_write_was_done():
    from kubefakes import direct_api, status_body

    empty = (200, b'{"metadata": {"resourceVersion": "1"}, "items": []}')
    refused = (422, status_body(422, 'ConfigMap "c" is invalid', reason="Invalid"))
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": {"a": "b"}}

    api, _conn, _unused = direct_api([empty, refused])
    with pytest.raises(kclient.KubeError) as err:
        objects.run(api, [cm])
    assert err.value.result["changed"] is False  # nothing was written
    assert [r["error"] for r in err.value.result["results"]] == ["failed"]

    api, _conn, _unused = direct_api([empty, empty, (200, b"{}"), refused])
    with pytest.raises(kclient.KubeError) as err:
        objects.run(api, [ns, cm])
    assert err.value.result["changed"] is True
    assert [(r["action"], r.get("error")) for r in err.value.result["results"]] == [
        ("create", None),
        ("create", "failed"),
    ]
