"""The Karpenter apply engine (plugins/module_utils/kube/engine.py) and karpenter_apply.run over a real KubeApi
whose connection is scripted (kubefakes): deletes that find the object gone, writes interrupted by a failure,
and what a wait returns. The same against the real apiserver: tests/integration/test_reliability.py."""

import http.client
import json

from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine
from kubefakes import direct_api, status_body


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
    return engine.make_plan(engine.NODEPOOL, [{"metadata": {"name": n}} for n in names], live, state="absent")


NOT_FOUND = (404, status_body(404, 'nodepools.karpenter.sh "a" not found', reason="NotFound"))


# ------------------------------------------------------------------------------------ DELETE answered 404
def test_a_delete_retried_after_its_answer_was_lost_is_done():
    lost = (200, http.client.IncompleteRead(b""))  # served, the answer lost: sent again, now 404
    api, conn, _ = direct_api([lost, NOT_FOUND])
    plan = delete_plan("a")
    engine.execute(api, engine.NODEPOOL, plan)
    assert [r[0] for r in conn.requests] == ["DELETE", "DELETE"]
    assert plan[0].to_dict(engine.NODEPOOL) == {
        "kind": "NodePool",
        "name": "a",
        "action": "delete",
        "changed": True,
        "method": "delete",
    }


def test_an_object_deleted_by_someone_else_after_the_list_is_done():
    api, conn, _ = direct_api([NOT_FOUND, (200, json.dumps(pool("b")).encode())])
    plan = delete_plan("a", "b")
    engine.execute(api, engine.NODEPOOL, plan, concurrency=1)
    assert [(i.name, i.action, i.changed) for i in plan] == [("a", "delete", True), ("b", "delete", True)]
    assert len(conn.requests) == 2
