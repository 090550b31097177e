"""Provisioning-failure diagnosis (runbooks.Diagnosis.provisioning) on hand-made API objects: each finding, the
planned NodePool changes with their previous specs, the recommendations and the IAM simulator result."""

import json

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils import runbooks
from diagnose_fakes import EC2_REF, KWOK_NODECLASS, NOW, FakeApi, cond, event, node, nodeclaim, nodepool, pod

LIMIT_MSG = 'Failed to schedule pod, all available instance types exceed limits for nodepool: "general"'


def run(objects, http=None, **kw):
    api = FakeApi(list(objects) + [KWOK_NODECLASS])
    d = runbooks.Diagnosis(api, "provisioning", http_get=(lambda url: http[url]) if http else None, now=NOW)
    d.provisioning(**kw)
    return d.result()


def ids(result):
    return [f["id"] for f in result["findings"]]


def finding(result, fid):
    (f,) = [f for f in result["findings"] if f["id"] == fid]
    return f


def limit_incident(cpu_limit="2", usage="2", pending=2, cpu="1"):
    objs = [nodepool("general", limits={"cpu": cpu_limit}, usage={"cpu": usage})]
    for i in range(pending):
        objs.append(pod("app", "app-%d" % i, cpu=cpu, node_selector={"karpenter.sh/nodepool": "general"}))
        objs.append(event("app", "Pod", "app-%d" % i, "FailedScheduling", LIMIT_MSG, obj_ns="app"))
    return objs


def test_nothing_pending_is_healthy():
    r = run([nodepool("general"), pod("app", "web", phase="Running", node="n1")])
    assert r["healthy"] and r["findings"] == [] and r["recommendations"] == []
    assert r["observed"]["pending_pods"] == [] and r["remediation"] == {"nodepools": [], "previous": {}}


def test_nodepool_limit_reached_plans_a_higher_limit():
    r = run(limit_incident(), namespaces=["app"])
    assert r["causes"] == ["nodepool_limit_reached", "pods_unschedulable"]
    assert finding(r, "pods_unschedulable")["pods"] == ["app/app-0", "app/app-1"]
    assert [u["cause"] for u in r["observed"]["pending_pods"]] == ["nodepool_limit", "nodepool_limit"]
    assert r["observed"]["pending_requests"] == {"cpu": "2"}
    (planned,) = r["remediation"]["nodepools"]
    # max(limit x factor, usage + 2 x pending requests) = max(4, 2 + 4) = 6
    assert planned["metadata"] == {"name": "general"} and planned["spec"]["limits"] == {"cpu": "6"}
    assert r["remediation"]["previous"]["general"]["spec"]["limits"] == {"cpu": "2"}
    assert "status" not in planned and "_why" not in planned
    rec = r["recommendations"][0]
    assert (
        rec["id"] == "raise_limit" and "general" in rec["action"] and "runbook_limit_factor=2" in rec["remediation_var"]
    )


def test_limit_factor_and_memory():
    objs = [nodepool("general", limits={"cpu": "100", "memory": "8Gi"}, usage={"cpu": "4", "memory": "8Gi"})]
    objs += [
        pod("app", "big", cpu="1", memory="1Gi"),
        event("app", "Pod", "big", "FailedScheduling", LIMIT_MSG, obj_ns="app"),
    ]
    r = run(objs, namespaces=["app"], limit_factor=3)
    assert r["remediation"]["nodepools"][0]["spec"]["limits"] == {"cpu": "100", "memory": "24Gi"}
    assert finding(r, "nodepool_limit_reached")["nodepool"] == "general"


def test_full_pool_without_a_limit_message_is_not_blamed():
    objs = [nodepool("general", limits={"cpu": "2"}, usage={"cpu": "2"}), pod("app", "web")]
    r = run(objs)
    assert "nodepool_limit_reached" not in ids(r) and r["remediation"]["nodepools"] == []
    assert r["observed"]["nodepools"][0]["at_limit"] == ["cpu"]
    assert [x["id"] for x in r["recommendations"]] == ["scale_node_group"]


def test_nodepool_not_ready_is_critical_only_for_pools_the_pending_pods_can_use():
    objs = [
        nodepool("broken", ready=False),
        nodepool("other-broken", ready=False),
        pod("app", "web", node_selector={"karpenter.sh/nodepool": "broken"}),
    ]
    r = run(objs)
    sev = dict((f["nodepool"], f["severity"]) for f in r["findings"] if f["id"] == "nodepool_not_ready")
    assert sev == {"broken": "critical", "other-broken": "warning"}
    assert r["observed"]["nodepools_serving_pending_pods"] == ["broken"]


def test_nodeclass_missing_or_not_ready():
    nc_path = "/apis/karpenter.k8s.aws/v1/ec2nodeclasses"
    not_ready = (nc_path, {"metadata": {"name": "default"}, "status": {"conditions": [cond("Ready", "False")]}})
    objs = [nodepool("general", ref=EC2_REF), pod("app", "web")]
    r = run(objs)
    assert (
        "nodeclass_not_ready" in r["causes"]
        and "EC2NodeClass default of NodePool general is missing" in finding(r, "nodeclass_not_ready")["summary"]
    )
    r = run(objs + [not_ready])
    assert "is not Ready" in finding(r, "nodeclass_not_ready")["summary"]
    ready = (nc_path, {"metadata": {"name": "default"}, "status": {"conditions": [cond("Ready", "True")]}})
    assert "nodeclass_not_ready" not in ids(run(objs + [ready]))


def test_nodeclaim_stuck_in_launch_with_insufficient_capacity():
    stuck = nodeclaim(
        "general-abc",
        "general",
        created=900,
        conditions=[
            cond("Launched", "False", "LaunchFailed", "InsufficientInstanceCapacity: no capacity in us-east-1a")
        ],
    )
    young = nodeclaim(
        "general-def", "general", created=20, conditions=[cond("Launched", "True"), cond("Registered", "Unknown")]
    )
    r = run([nodepool("general"), stuck, young, pod("app", "web")])
    (s,) = r["observed"]["stuck_nodeclaims"]
    assert s["nodeclaim"] == "general-abc" and s["stuck_in"] == "Launched" and s["cause"] == "insufficient_capacity"
    f = finding(r, "nodeclaim_stuck")
    assert f["severity"] == "critical" and f["cause"] == "insufficient_capacity"
    assert "widen_requirements" in [x["id"] for x in r["recommendations"]]


def test_nodeclaim_not_registered_is_stuck_after_the_timeout():
    claim = nodeclaim(
        "general-abc", "general", created=400, conditions=[cond("Launched", "True"), cond("Registered", "Unknown")]
    )
    r = run([nodepool("general"), claim], stuck_seconds=300)
    assert r["causes"] == ["nodeclaim_stuck"] and r["observed"]["stuck_nodeclaims"][0]["stuck_in"] == "Registered"
    assert run([nodepool("general"), claim], stuck_seconds=600)["healthy"]


def test_stuck_nodeclaim_of_a_pool_no_pending_pod_can_use_is_a_warning():
    claim = nodeclaim("other-abc", "other", created=900, conditions=[cond("Launched", "False", "LaunchFailed", "x")])
    objs = [
        nodepool("general"),
        nodepool("other"),
        claim,
        pod("app", "web", node_selector={"karpenter.sh/nodepool": "general"}),
    ]
    assert finding(run(objs), "nodeclaim_stuck")["severity"] == "warning"
    # and out of sight when the diagnosis is limited to other NodePools
    assert "nodeclaim_stuck" not in ids(run(objs, nodepools=["general"]))


def test_iam_errors_in_events():
    msg = "creating instance, UnauthorizedOperation: You are not authorized to perform: ec2:CreateFleet"
    r = run([nodepool("general"), pod("app", "web"), event("app", "Pod", "web", "FailedLaunch", msg, obj_ns="app")])
    assert "iam_denied" in r["causes"] and "events/NodeClaim conditions" in finding(r, "iam_denied")["summary"]
    assert r["observed"]["pending_pods"][0]["karpenter_message"] == msg
    assert "check_iam" in [x["id"] for x in r["recommendations"]]


def test_iam_errors_in_the_controller_log(tmp_path):
    line = json.dumps(
        {
            "level": "ERROR",
            "time": NOW.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "message": "failed launching nodeclaim",
            "error": "AccessDenied: not authorized to perform iam:PassRole",
        }
    )
    path = tmp_path / "karpenter.log"
    path.write_text(line + "\n")
    r = run([nodepool("general")], log_file=str(path))
    f = finding(r, "iam_denied")
    assert f["summary"].endswith("the controller log") and "iam:PassRole" in f["log_errors"][0]
    assert r["observed"]["log_causes"] == ["iam_denied"]


def test_other_log_errors_do_not_make_a_provisioning_cause(tmp_path):
    line = json.dumps({"level": "ERROR", "time": NOW.isoformat(), "message": "Reconciler error", "error": "conflict"})
    path = tmp_path / "karpenter.log"
    path.write_text(line + "\n")
    r = run([nodepool("general")], log_file=str(path))
    assert r["healthy"] and r["observed"]["log_causes"] == [] and len(r["observed"]["log_errors"]) == 1


def test_insufficient_capacity_metrics_and_interruption_queue():
    url = "http://127.0.0.1:28080/metrics"
    text = (
        'karpenter_cloudprovider_errors_total{error="InsufficientCapacityError",controller="x"} 3\n'
        'karpenter_cloudprovider_errors_total{error="NodeClaimNotFoundError"} 9\n'
        'karpenter_interruption_received_messages_total{message_type="spot_interrupted"} 2\n'
        "karpenter_interruption_deleted_messages_total 2\n"
    )
    r = run([nodepool("general")], http={url: (True, text)}, metrics_url=url)
    f = finding(r, "insufficient_capacity")
    assert f["severity"] == "warning" and f["summary"].startswith("3 InsufficientCapacityError")
    assert r["observed"]["cloudprovider_errors"] == {"InsufficientCapacityError": 3.0}
    assert r["observed"]["interruption_queue"] == {"received": {"spot_interrupted": 2.0}, "deleted": 2.0}
    assert [x["id"] for x in r["recommendations"]] == ["widen_requirements"]


def test_widen_requirements_plans_the_change_with_the_previous_spec():
    zones = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]}
    reqs = [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}, zones]
    objs = [
        nodepool("general", requirements=reqs),
        pod("app", "web", node_selector={"karpenter.sh/nodepool": "general"}),
    ]
    r = run(objs, widen={"zones": ["us-east-1b", "us-east-1a"], "capacity_types": ["spot"]})
    (planned,) = r["remediation"]["nodepools"]
    after = dict((q["key"], q["values"]) for q in planned["spec"]["template"]["spec"]["requirements"])
    assert after == {
        "karpenter.sh/capacity-type": ["on-demand", "spot"],
        "topology.kubernetes.io/zone": ["us-east-1a", "us-east-1b"],
    }
    assert r["remediation"]["previous"]["general"]["spec"]["template"]["spec"]["requirements"] == reqs
    assert "scale_node_group" not in [x["id"] for x in r["recommendations"]]


def test_pods_for_a_managed_node_group_recommend_scaling_it():
    objs = [
        nodepool("general", ready=False),  # cannot serve pods that select a node group label
        pod("app", "core-dns", node_selector={"eks.amazonaws.com/nodegroup": "core"}),
        node("core-1", group="core"),
        node("core-2", group="core", ready=False),
        node("karpenter-1"),
    ]
    r = run(objs)
    assert r["causes"] == ["pods_unschedulable"] and finding(r, "nodepool_not_ready")["severity"] == "warning"
    assert r["observed"]["managed_node_groups"] == {"core": {"nodes": 2, "ready": 1}}
    (rec,) = r["recommendations"]
    assert rec["id"] == "scale_node_group" and "runbook_node_group=core" in rec["action"]
    assert (
        rec["node_groups"] == {"core": {"nodes": 2, "ready": 1}}
        and rec["remediation_var"] == "runbook_scale_node_group=true"
    )


# ---------------------------------------------------------------- IAM policy simulator (karpenter_iam_check result)
ROLE = "arn:aws:iam::123456789012:role/KarpenterControllerRole-prod"


def test_iam_denied_actions_are_a_finding_with_the_recommendation():
    check = {
        "available": True,
        "role_arn": ROLE,
        "allowed": ["ec2:RunInstances"],
        "denied": [
            {"action": "ec2:CreateFleet", "decision": "implicitDeny", "resource": "*"},
            {"action": "iam:PassRole", "decision": "explicitDeny", "resource": "arn:aws:iam::123456789012:role/N"},
        ],
    }
    r = run([nodepool("general")], iam_check=check)
    f = finding(r, "iam_permissions_denied")
    assert f["severity"] == "critical" and "ec2:CreateFleet, iam:PassRole" in f["summary"] and ROLE in f["summary"]
    (rec,) = r["recommendations"]
    assert rec["id"] == "grant_iam_permissions" and rec["actions"] == ["ec2:CreateFleet", "iam:PassRole"]
    assert r["observed"]["iam_check"] == check
    assert "iam_permissions_denied" in runbooks.markdown(r)


def test_iam_all_allowed_is_no_finding():
    r = run([nodepool("general")], iam_check={"available": True, "role_arn": ROLE, "allowed": ["a", "b"], "denied": []})
    assert r["healthy"] and r["findings"] == []
    assert "IAM policy simulator: 2 Karpenter controller actions for %s" % ROLE in r["checked"]


def test_iam_simulator_unavailable_is_a_note():
    note = "IAM simulator not available: AccessDenied: not authorized to perform iam:SimulatePrincipalPolicy"
    r = run([nodepool("general")], iam_check={"available": False, "role_arn": ROLE, "note": note})
    assert r["healthy"] and r["findings"] == [] and r["notes"] == [note]
    assert "## Notes" in runbooks.markdown(r) and note in runbooks.markdown(r)


def test_iam_role_missing_is_a_warning():
    r = run(
        [nodepool("general")],
        iam_check={"available": True, "role_missing": True, "role_name": "KarpenterControllerRole-x"},
    )
    f = finding(r, "controller_role_missing")
    assert r["healthy"] and f["severity"] == "warning" and "KarpenterControllerRole-x" in f["summary"]


# ---------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    "selector,expected",
    [
        ({}, True),
        ({"karpenter.sh/nodepool": "general"}, True),
        ({"karpenter.sh/nodepool": "other"}, False),
        ({"team": "a"}, True),  # template label
        ({"team": "b"}, False),
        ({"karpenter.sh/capacity-type": "on-demand"}, True),
        ({"karpenter.sh/capacity-type": "spot"}, False),
        ({"topology.kubernetes.io/zone": "us-east-1c"}, True),  # well-known, not restricted by the pool
        ({"karpenter.k8s.aws/instance-family": "m6i"}, True),
        ({"eks.amazonaws.com/nodegroup": "core"}, False),  # custom label no node of the pool carries
        ({"kubernetes.io/arch": "arm64"}, False),
    ],
)
def test_pool_can_serve(selector, expected):
    unused, np = nodepool("general", labels={"team": "a"})
    assert runbooks.pool_can_serve(np, selector) is expected


@pytest.mark.parametrize(
    "message,cause",
    [
        ('all available instance types exceed limits for nodepool: "a"', "nodepool_limit"),
        ("InsufficientInstanceCapacity: We currently do not have sufficient capacity", "insufficient_capacity"),
        ("UnauthorizedOperation: You are not authorized to perform this operation", "iam_denied"),
        ("NodeClassNotReady", "nodeclass_not_ready"),
        ('incompatible with nodepool "a", no instance type satisfied resources', "no_instance_type"),
        ("something else", None),
        ("", None),
    ],
)
def test_classify(message, cause):
    assert runbooks.classify(message) == cause


def test_requests_are_read_only():
    api = FakeApi(limit_incident())
    runbooks.Diagnosis(api, "provisioning", now=NOW).provisioning(namespaces=["app"])
    assert api.requests and all(method == "GET" for method, unused in api.requests)
