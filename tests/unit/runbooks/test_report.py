"""The runbook report: old -> new for every planned NodePool change, the note on NodePools we did not create,
and the fail-on-incident verdict."""

import copy

from ansible_collections.karpenter_eks.platform.plugins.module_utils import runbooks
from diagnose_fakes import KWOK_NODECLASS, NOW, FakeApi, event, nodepool, pod

LIMIT_MSG = 'Failed to schedule pod, all available instance types exceed limits for nodepool: "general"'


def limit_incident():
    objs = [nodepool("general", limits={"cpu": "2"}, usage={"cpu": "2"}), KWOK_NODECLASS]
    for i in range(2):
        objs.append(pod("app", "app-%d" % i, cpu="1", node_selector={"karpenter.sh/nodepool": "general"}))
        objs.append(event("app", "Pod", "app-%d" % i, "FailedScheduling", LIMIT_MSG, obj_ns="app"))
    d = runbooks.Diagnosis(FakeApi(objs), "provisioning", now=NOW)
    d.provisioning(namespaces=["app"])
    return d.result()


def test_field_changes_lists_only_what_differs():
    old = nodepool("general", limits={"cpu": "2"})[1]
    new = copy.deepcopy(old)
    new["spec"]["limits"] = {"cpu": "6", "memory": "8Gi"}
    new["spec"]["template"]["spec"]["requirements"][0]["values"] = ["spot", "on-demand"]
    assert runbooks.field_changes(old, new) == [
        ("spec.limits.cpu", "2", "6"),
        ("spec.limits.memory", "(unset)", "8Gi"),
        (
            "spec.template.spec.requirements[karpenter.sh/capacity-type]",
            '{"operator": "In", "values": ["on-demand"]}',
            '{"operator": "In", "values": ["spot", "on-demand"]}',
        ),
    ]
    assert runbooks.field_changes(old, copy.deepcopy(old)) == []


def test_field_changes_of_annotations_and_a_removed_field():
    old = nodepool("general", annotations={"a": "1"})[1]
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {"b": "2"}
    del new["spec"]["template"]["spec"]["expireAfter"]
    assert runbooks.field_changes(old, new) == [
        ("metadata.annotations.a", "1", "(unset)"),
        ("metadata.annotations.b", "(unset)", "2"),
        ("spec.template.spec.expireAfter", "Never", "(unset)"),
    ]


def test_markdown_shows_old_and_new_values_of_the_planned_change():
    r = limit_incident()
    md = runbooks.markdown(r)
    assert "## Planned NodePool changes (old -> new)" in md
    # max(limit x 2, usage + 2 x pending requests) = max(4, 2 + 4) = 6
    assert "- NodePool `general`:\n  - `spec.limits.cpu`: `2` -> `6`\n" in md
    # a hand-made NodePool (no managed-by label): the report says the apply adds the label
    assert "was not created by this collection" in md


def test_markdown_has_no_ownership_note_for_our_nodepools():
    r = limit_incident()
    r["remediation"]["previous"]["general"]["metadata"]["labels"] = {
        "app.kubernetes.io/managed-by": "karpenter_eks.platform"
    }
    md = runbooks.markdown(r)
    assert "`spec.limits.cpu`: `2` -> `6`" in md and "was not created by this collection" not in md


def test_incident_failure_only_when_asked_and_unhealthy():
    r = limit_incident()
    assert not r["healthy"]
    assert runbooks.incident_failure(r, False) is None
    r["bundle"] = {"markdown": "/art/provisioning-x/diagnosis.md", "json": "/art/provisioning-x/diagnosis.json"}
    msg = runbooks.incident_failure(r, True)
    assert msg == (
        "INCIDENT (provisioning): nodepool_limit_reached, pods_unschedulable. Bundle: /art/provisioning-x/diagnosis.md"
    )
    healthy = dict(r, healthy=True, causes=[])
    assert runbooks.incident_failure(healthy, True) is None


def test_incident_failure_without_a_bundle():
    r = dict(limit_incident())
    r.pop("bundle", None)
    assert runbooks.incident_failure(r, True) == "INCIDENT (provisioning): nodepool_limit_reached, pods_unschedulable."
