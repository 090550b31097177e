"""The Karpenter apply engine (plugins/module_utils/kube/engine.py) and karpenter_apply.run over a real KubeApi
whose connection is scripted (kubefakes): deletes that find the object gone, writes interrupted by a failure,
and what a wait returns. The same against the real apiserver: tests/integration/test_reliability.py."""

import http.client
import json

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.apply import karpenter as karpenter_apply
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine, resource
from kubefakes import Stream, direct_api, event, status_body


def pool(name, ready=None, generation=1, rv="10"):
    obj = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {
            "name": name,
            "generation": generation,
            "resourceVersion": rv,
            "labels": {engine.MANAGED_BY_LABEL: engine.MANAGED_BY_VALUE},
        },
        "spec": {"template": {"spec": {"requirements": []}}},
    }
    if ready is not None:
        cond = {"type": "Ready", "status": "True" if ready else "False", "observedGeneration": generation}
        obj["status"] = {"conditions": [cond], "nodes": 0, "resources": {}}
    return obj


def delete_plan(*names):
    live = {n: pool(n, ready=True) for n in names}
    return engine.plan_kind(resource.NODEPOOL, [{"metadata": {"name": n}} for n in names], live, state="absent")


NOT_FOUND = (404, status_body(404, 'nodepools.karpenter.sh "a" not found', reason="NotFound"))


# ------------------------------------------------------------------------------------ DELETE answered 404
def test_a_delete_retried_after_its_answer_was_lost_is_done():
    lost = (200, http.client.IncompleteRead(b""))  # served, the answer lost: sent again, now 404
    api, conn, _unused = direct_api([lost, NOT_FOUND])
    plan = delete_plan("a")
    engine.execute(api, plan)
    assert [r[0] for r in conn.requests] == ["DELETE", "DELETE"]
    assert plan[0].to_dict() == {
        "api_version": "karpenter.sh/v1",
        "kind": "NodePool",
        "namespace": None,
        "name": "a",
        "action": "delete",
        "changed": True,
        "method": "delete",
    }


def test_an_object_deleted_by_someone_else_after_the_list_is_done():
    api, conn, _unused = direct_api([NOT_FOUND, (200, json.dumps(pool("b")).encode())])
    plan = delete_plan("a", "b")
    engine.execute(api, plan, concurrency=1)
    assert [(i.name, i.action, i.changed) for i in plan] == [("a", "delete", True), ("b", "delete", True)]
    assert len(conn.requests) == 2


# ------------------------------------------------------------------------------------ failures after writes
FORBIDDEN = (403, status_body(403, 'nodepools.karpenter.sh "b" is forbidden', reason="Forbidden"))


def test_a_failed_write_marks_itself_and_the_ones_not_attempted():
    api, conn, _unused = direct_api([(200, b"{}"), FORBIDDEN])
    plan = delete_plan("a", "b", "c")
    with pytest.raises(kclient.KubeError, match="forbidden"):
        engine.execute(api, plan, concurrency=1)
    assert [(i.name, i.written, i.error) for i in plan] == [
        ("a", True, None),
        ("b", False, "failed"),
        ("c", False, "not attempted"),
    ]
    assert [r.get("error") for r in (i.to_dict() for i in plan)] == [None, "failed", "not attempted"]


def absent_run(script, **kw):
    """karpenter_apply.run(state=absent, wait=True) of NodePool ``a`` over a scripted connection."""
    listed = {"metadata": {"resourceVersion": "10"}, "items": [pool("a", ready=True)]}
    api, conn, sleeps = direct_api([(200, json.dumps(listed).encode()), (200, b'{"items": []}'), *script])
    run = karpenter_apply.run(
        api, resource.NODEPOOL, [{"metadata": {"name": "a"}}], state="absent", wait=True, wait_timeout=30, **kw
    )
    return run, api, conn


@pytest.mark.parametrize(
    "stream, message",
    [
        (Stream(error=http.client.IncompleteRead(b"")), r"broken and not re-established within 30s: IncompleteRead"),
        (Stream(b"<html>proxy error</html>\n"), r"JSONDecodeError"),
    ],
    ids=["watch-never-back", "unexpected-error"],
)
def test_a_failure_after_writes_carries_the_result_with_changed_and_what_was_written(stream, message):
    with pytest.raises(kclient.KubeError, match=message) as err:
        absent_run([(200, b"{}")] + [stream] * 100)
    result = err.value.result
    assert result["changed"] is True and result["written"] == ["NodePool/a"]
    assert [(r["name"], r["action"], r["changed"]) for r in result["results"]] == [("a", "delete", True)]
    assert result["requests"]["delete"] == 1 and result["requests"]["writes"] == 1


def test_a_failure_before_any_write_carries_no_result():
    with pytest.raises(kclient.KubeError) as err:
        absent_run([FORBIDDEN])
    assert err.value.result is None


def test_a_broken_wait_that_recovers_succeeds():
    gone = Stream(event("DELETED", pool("a", rv="12")))
    res, api, conn = absent_run([(200, b"{}"), Stream(error=http.client.IncompleteRead(b"")), gone])
    assert res["changed"] is True and res["written"] == ["NodePool/a"] and res["not_deleted"] == []
    assert api.counts["watch"] == 2


# ------------------------------------------------------------------------------------ what the wait returns
def test_a_successful_wait_reports_the_ready_object_it_saw():
    desired = pool("a")
    del desired["metadata"]["resourceVersion"], desired["metadata"]["generation"]
    written = pool("a", ready=False, rv="11")
    script = [
        (200, json.dumps({"metadata": {"resourceVersion": "10"}, "items": []}).encode()),  # LIST
        (200, json.dumps(written).encode()),  # server-side apply: not Ready yet
        Stream(
            event("ADDED", written),
            event("MODIFIED", dict(pool("a", ready=True, rv="12"), status={"conditions": [READY], "nodes": 2})),
        ),
    ]
    api, conn, _unused = direct_api(script)
    res = karpenter_apply.run(api, resource.NODEPOOL, [desired], wait=True, wait_timeout=30, prevalidated=True)
    (item,) = res["results"]
    assert res["not_ready"] == [] and res["written"] == ["NodePool/a"]
    assert item["ready"] is True and item["conditions"] == [READY]
    assert item["usage"]["nodes"] == 2 and item["object"]["metadata"]["resourceVersion"] == "12"


READY = {"type": "Ready", "status": "True", "observedGeneration": 1, "reason": "Ready"}


def test_the_wait_ignores_versions_older_than_the_write_and_reports_a_timeout_with_the_last_seen():
    plan = engine.plan_kind(resource.NODEPOOL, [pool("a", generation=2)], {"a": pool("a", ready=True)})
    plan[0].action, plan[0].result = "update", pool("a", ready=False, generation=2, rv="11")
    stale = pool("a", ready=True, generation=1, rv="9")  # replayed from before our write: Ready, but old
    progressing = pool("a", ready=False, generation=2, rv="13")
    api, conn, sleeps = direct_api([Stream(event("MODIFIED", stale), event("MODIFIED", progressing))])
    times = iter([0, 0, 40])
    api._clock = lambda: next(times)
    assert engine.wait_ready(api, resource.NODEPOOL, plan, 30, "10") == ["a"]
    assert plan[0].result["metadata"]["resourceVersion"] == "13" and not plan[0].to_dict()["ready"]


def expired():
    return Stream(event("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}))


def test_after_an_expired_watch_the_fresh_list_decides():
    plan = engine.plan_kind(resource.NODEPOOL, [pool("a"), pool("b")], {"a": pool("a"), "b": pool("b")})
    listed = (
        200,
        json.dumps({"metadata": {"resourceVersion": "50"}, "items": [pool("a", ready=True, rv="40")]}).encode(),
    )
    b_ready = Stream(event("MODIFIED", pool("b", ready=True, rv="51")))
    api, conn, _unused = direct_api([expired(), listed, b_ready])
    assert engine.wait_ready(api, resource.NODEPOOL, plan, 30, "10") == []
    assert [i.to_dict()["ready"] for i in plan] == [True, True]
    # deletes: what the fresh list no longer holds is gone
    api, conn, _unused = direct_api([expired(), listed])
    assert engine.wait_deleted(api, resource.NODEPOOL, delete_plan("b"), 30, "10") == []


# ------------------------------------------------------------------------------------ one engine: the two bugs
def test_a_field_another_manager_co_owns_is_not_planned_for_removal():
    live = pool("a")
    live["spec"]["weight"] = 10
    owns_weight = {"f:spec": {"f:weight": {}}}
    live["metadata"]["managedFields"] = [
        {"manager": engine.FIELD_MANAGER, "operation": "Apply", "fieldsV1": owns_weight},
        {"manager": "team-gitops", "operation": "Apply", "fieldsV1": owns_weight},
    ]
    desired = pool("a")
    (item,) = engine.plan_kind(resource.NODEPOOL, [desired], {"a": live})
    assert item.action == "unchanged" and item.removed == []
    assert item.after["spec"]["weight"] == 10
    # owned by us alone, the same field goes
    live["metadata"]["managedFields"].pop()
    (item,) = engine.plan_kind(resource.NODEPOOL, [desired], {"a": live})
    assert item.action == "update" and item.removed == [("spec", "weight")]
    assert "weight" not in item.after["spec"]


def test_prune_does_not_delete_again_what_is_already_being_deleted():
    """As state=absent: a managed object with finalizers pending (an interrupted prune's delete) is waited for,
    not deleted (and reported written) a second time at every run."""
    live = {n: pool(n) for n in ("keep", "going", "stale", "foreign")}  # pool(): labelled managed-by
    live["foreign"]["metadata"]["labels"] = {}
    live["going"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    plan = engine.plan_kind(resource.NODEPOOL, [pool("keep")], live, prune=True)
    actions = {i.name: (i.action, i.deleting) for i in plan if i.name != "keep"}
    assert actions == {"going": ("unchanged", True), "stale": ("delete", False)}
    # a wait still waits for both deletions
    assert sorted(i.name for i in plan if i.action == "delete" or i.deleting) == ["going", "stale"]


@pytest.mark.parametrize("definitions", [[[pool("a"), None]], [None, [pool("a")]], pool("a")])
def test_nested_and_null_definitions_are_read_the_same_by_every_module(definitions):
    objs, _report, _others = karpenter_apply.prepare(resource.NODEPOOL, definitions)
    assert [o["metadata"]["name"] for o in objs] == ["a"]
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import objects

    assert [o.name for o in objects.prepare(definitions)] == ["a"]


def test_timings_attribute_each_lap_to_its_step_and_add_repeats():
    clock = iter([10.0, 10.5, 12.0, 12.25, 13.0])
    t = engine.Timings(clock=lambda: next(clock))
    t.lap("read")  # 0.5 s since the start
    t.lap("write")  # 1.5
    t.lap("read")  # 0.25 more
    t.lap("wait")  # 0.75
    assert t.steps == {"read": 0.75, "write": 1.5, "wait": 0.75}
    plan = engine.plan_kind(resource.NODEPOOL, [pool("a")], {})
    assert engine.report(plan, timings=t)["timings"] == t.steps
    assert engine.report(plan)["timings"] == {}


def test_an_apply_reports_where_its_time_went():
    api, _conn, _sleeps = direct_api([(200, b'{"items": []}'), (200, json.dumps(pool("a", ready=True)).encode())])
    res = karpenter_apply.run(api, resource.NODEPOOL, [pool("a")], prevalidated=True)
    assert set(res["timings"]) == {"read", "validate", "plan", "write"}
    assert all(isinstance(v, float) and v >= 0 for v in res["timings"].values())


class RefusingApi:
    """apply() raises the KubeError the test gives (one per object name), else answers nothing."""

    def __init__(self, errors):
        self.errors = errors

    def apply(self, path, body, manager, force=False, dry_run=False):
        assert dry_run
        err = self.errors.get(body["metadata"]["name"])
        if err is not None:
            raise err
        return body


def _created(name):
    target = engine.Desired(0, {"metadata": {"name": name}}, resource.NODEPOOL)
    return engine.PlanItem(target, "create", sent={"metadata": {"name": name}})


def test_dry_run_counts_a_deterministic_500_as_a_refusal():
    typed = kclient.KubeError(
        "failed to create typed patch object",
        status=500,
        body=json.dumps({"kind": "Status", "code": 500, "message": "failed to create typed patch object (...)"}),
    )
    api = RefusingApi({"b": typed})
    problems = engine.dry_run(api, [_created("a"), _created("b")], concurrency=1)
    assert problems == [{"object": "NodePool/b", "status": 500, "message": "failed to create typed patch object"}]


@pytest.mark.parametrize(
    "err",
    [
        kclient.KubeError("cannot reach the Kubernetes API: refused"),
        kclient.KubeError("unavailable", status=503),
        kclient.KubeError(
            "etcd", status=500, body=json.dumps({"code": 500, "message": "etcdserver: request timed out"})
        ),
    ],
)
def test_dry_run_stops_when_the_api_gives_no_verdict(err):
    with pytest.raises(kclient.KubeError):
        engine.dry_run(RefusingApi({"a": err}), [_created("a")], concurrency=1)


def test_normalize_copies_what_it_keeps_and_drops_server_state():
    live = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {
            "name": "a",
            "resourceVersion": "7",
            "managedFields": [{"manager": "x"}],
            "annotations": {"karpenter.sh/nodepool-hash": "1", "team": "t"},
            "labels": {"l": "v"},
        },
        "spec": {"template": {"spec": {"requirements": [{"key": "k", "values": ["a"]}]}}, "weight": 1.5},
        "status": {"conditions": []},
    }
    norm = engine.normalize(live)
    assert list(norm) == ["apiVersion", "kind", "metadata", "spec"]
    assert norm["metadata"] == {"name": "a", "annotations": {"team": "t"}, "labels": {"l": "v"}}
    norm["spec"]["template"]["spec"]["requirements"][0]["values"].append("b")
    norm["metadata"]["labels"]["l"] = "changed"
    assert live["spec"]["template"]["spec"]["requirements"][0]["values"] == ["a"]  # no shared containers
    assert live["metadata"]["labels"] == {"l": "v"}
    assert live["metadata"]["annotations"]["karpenter.sh/nodepool-hash"] == "1"  # the input is not modified
    assert engine.normalize({"kind": "X"}) == {"kind": "X", "metadata": {}}
    assert engine.normalize(None) == {}


def test_copy_json_is_a_deep_copy():
    value = {"a": [{"b": None, "c": (1, [2])}], "d": 1.5, "e": True}
    copied = engine.copy_json(value)
    assert copied == value
    assert copied["a"] is not value["a"] and copied["a"][0] is not value["a"][0]
    assert copied["a"][0]["c"][1] is not value["a"][0]["c"][1]  # other containers: copy.deepcopy
