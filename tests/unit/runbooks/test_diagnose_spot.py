"""Spot storm and spot reintroduction diagnosis on hand-made objects, plus the result helpers (markdown, waits,
metrics parsing)."""

import json

from ansible_collections.karpenter_eks.platform.plugins.module_utils import runbooks
from diagnose_fakes import NOW, FakeApi, ago, event, nodeclaim, nodepool, pod

CT = runbooks.CAPACITY_TYPE
SAVED = runbooks.SAVED_ANNOTATION


def storm(pool="batch", n=3, age=60, reason="SpotInterrupted"):
    """n spot NodeClaims of the pool, each with an interruption event ``age`` seconds old."""
    objs = []
    for i in range(n):
        name = "%s-%d" % (pool, i)
        objs.append(nodeclaim(name, pool, "spot"))
        objs.append(event("default", "NodeClaim", name, reason, "Spot interruption warning", age=age))
    return objs


def run(objects, method="spot_storm", **kw):
    api = FakeApi(objects)
    d = runbooks.Diagnosis(api, method, now=NOW)
    getattr(d, method)(**kw)
    return d.result()


def ids(r):
    return [f["id"] for f in r["findings"]]


def ct_req(np):
    return [r for r in np["spec"]["template"]["spec"]["requirements"] if r["key"] == CT]


def test_storm_switches_spot_pools_to_on_demand_and_saves_the_requirements():
    pools = [nodepool("batch", ["spot", "on-demand"]), nodepool("web", ["on-demand"]), nodepool("spiky", ["spot"])]
    r = run(pools + storm("batch", 3), window_seconds=900, threshold=3)
    assert r["causes"] == ["spot_interruption_storm"]
    f = r["findings"][0]
    assert f["affected_nodepools"] == {"batch": 3} and f["spot_nodepools"] == ["batch", "spiky"]
    assert r["observed"]["interruptions_in_window"] == 3 and r["observed"]["rate_per_hour"] == 12.0
    planned = dict((p["metadata"]["name"], p) for p in r["remediation"]["nodepools"])
    assert sorted(planned) == ["batch", "spiky"]  # the on-demand pool is left alone
    for name, np in planned.items():
        assert ct_req(np) == [{"key": CT, "operator": "In", "values": ["on-demand"]}]
        previous = r["remediation"]["previous"][name]["spec"]["template"]["spec"]["requirements"]
        assert json.loads(np["metadata"]["annotations"][SAVED]) == previous
    assert [x["id"] for x in r["recommendations"]] == ["switch_to_on_demand", "pdbs"]


def test_events_outside_the_window_and_rebalance_recommendations_do_not_count():
    pools = [nodepool("batch", ["spot"])]
    assert run(pools + storm("batch", 3, age=2000), window_seconds=900)["findings"] == []
    r = run(pools + storm("batch", 3, reason="SpotRebalanceRecommendation"), threshold=3)
    assert r["observed"]["interruptions_in_window"] == 0 and r["observed"]["affected_nodepools"] == {}


def test_below_threshold_is_info():
    r = run([nodepool("batch", ["spot"])] + storm("batch", 2), threshold=3)
    assert r["healthy"] and ids(r) == ["spot_interruptions"] and r["findings"][0]["severity"] == "info"
    assert r["remediation"]["nodepools"] == []


def test_terminating_spot_nodeclaims_count_without_events():
    claims = [nodeclaim("batch-%d" % i, "batch", "spot", deleting=True) for i in range(3)]
    r = run([nodepool("batch", ["spot"])] + claims, threshold=3)
    assert r["causes"] == ["spot_interruption_storm"] and r["observed"]["spot_nodeclaims_terminating"] == [
        "batch-0",
        "batch-1",
        "batch-2",
    ]


def test_storm_already_mitigated_is_a_warning_and_plans_nothing():
    switched = nodepool("batch", ["on-demand"], annotations={SAVED: json.dumps([])})
    r = run([switched] + storm("batch", 3), threshold=3)
    assert r["healthy"] and ids(r) == ["spot_interruption_storm_mitigated"]
    assert r["remediation"]["nodepools"] == [] and r["observed"]["switched_nodepools"] == ["batch"]
    assert "reintroduce_spot" not in [x["id"] for x in r["recommendations"]]


def test_calm_after_a_switch_recommends_reintroduction():
    switched = nodepool("batch", ["on-demand"], annotations={SAVED: json.dumps([])})
    r = run([switched], threshold=3)
    assert r["healthy"] and [x["id"] for x in r["recommendations"]] == ["reintroduce_spot"]


def test_nodepools_filter_limits_the_examined_pools():
    pools = [nodepool("batch", ["spot"]), nodepool("other", ["spot"])]
    r = run(pools + storm("batch", 3), threshold=3, nodepools=["other"])
    assert r["observed"]["affected_nodepools"] == {} and r["observed"]["spot_nodepools"] == ["other"]


def test_verify_waits_for_the_expected_capacity_type_and_no_pending_pod():
    pools = [nodepool("batch", ["on-demand"])]
    spot_left = [nodeclaim("batch-0", "batch", "spot"), nodeclaim("batch-1", "batch", "on-demand")]
    r = run(pools + spot_left, verify=True, expect_capacity_type="on-demand", nodepools=["batch"])
    f = [f for f in r["findings"] if f["id"] == "nodeclaims_not_converged"]
    assert f and f[0]["nodepool"] == "batch" and r["observed"]["nodeclaims_by_nodepool"]["batch"]["not_allowed"] == 1
    converged = [nodeclaim("batch-1", "batch", "on-demand")]
    assert run(pools + converged, verify=True, expect_capacity_type="on-demand")["healthy"]
    r = run(pools + converged + [pod("app", "web")], verify=True, namespaces=["app"])
    assert r["causes"] == ["pods_pending"] and r["findings"][0]["pods"] == ["app/web"]
    not_ready = [nodeclaim("batch-1", "batch", "on-demand", ready=False)]
    assert "nodeclaims_not_converged" in run(pools + not_ready, verify=True)["causes"]


def karpenter_storm(pool="batch", n=3, claims=True, age=60):
    """What Karpenter's AWS provider leaves for n interrupted spot instances: per instance a SpotInterrupted and a
    TerminatingOnInterruption event on the NodeClaim and the same two on its Node; the (terminating) NodeClaims while
    they exist."""
    objs = []
    for i in range(n):
        claim, node = "%s-%d" % (pool, i), "ip-10-0-0-%d.ec2.internal" % i
        if claims:
            objs.append(nodeclaim(claim, pool, "spot", node=node, deleting=True))
        for reason in ("SpotInterrupted", "TerminatingOnInterruption"):
            objs.append(event("default", "NodeClaim", claim, reason, "Spot interruption warning", age=age))
            objs.append(event("default", "Node", node, reason, "Spot interruption warning", age=age))
    return objs


def test_an_instance_reported_on_its_nodeclaim_and_node_counts_once():
    pools = [nodepool("batch", ["spot", "on-demand"])]
    for claims in (True, False):  # while the NodeClaims terminate, and after they are gone
        r = run(pools + karpenter_storm("batch", 2, claims=claims), threshold=3)
        assert r["observed"]["interruptions_in_window"] == 2, claims
        assert r["healthy"] and ids(r) == ["spot_interruptions"], r["findings"]
        assert len(r["observed"]["interrupted_objects"]) == 4  # the report still lists every object
        assert r["observed"]["affected_nodepools"] == ({"batch": 2} if claims else {})
        r = run(pools + karpenter_storm("batch", 3, claims=claims), threshold=3)
        assert r["causes"] == ["spot_interruption_storm"] and r["observed"]["interruptions_in_window"] == 3
    r = run(pools + karpenter_storm("batch", 3), threshold=3, nodepools=["batch"])
    assert r["observed"]["affected_nodepools"] == {"batch": 3}
    assert r["observed"]["interrupted_nodeclaims"] == ["batch-0", "batch-1", "batch-2"]


def test_node_only_interruption_events_still_count():
    nodes = [event("default", "Node", "n-%d" % i, "InstanceTerminating", "Instance is terminating") for i in range(3)]
    r = run([nodepool("batch", ["spot"])] + nodes, threshold=3)
    assert r["causes"] == ["spot_interruption_storm"] and r["observed"]["interruptions_in_window"] == 3


def test_one_interruption_during_a_step_observation_aborts_it():
    """The reintroduction step's check: abort threshold 1, since the step began; one instance, two objects."""
    since = NOW.timestamp() - 90
    pools = [nodepool("batch", ["on-demand", "spot"])]
    r = run(pools + karpenter_storm("batch", 1, age=20), threshold=1, since=since, nodepools=["batch"])
    assert "spot_interruption_storm" in r["causes"] and r["observed"]["interruptions_in_window"] == 1
    before = karpenter_storm("batch", 1, claims=False, age=120)  # before the step began: not this step's
    r = run(pools + before, threshold=1, since=since, nodepools=["batch"])
    assert r["healthy"] and r["observed"]["interruptions_in_window"] == 0


def test_since_narrows_the_window():
    since = (NOW.timestamp()) - 30  # the step began 30 s ago; the interruptions are 60 s old
    r = run([nodepool("batch", ["spot"])] + storm("batch", 3, age=60), threshold=1, since=since)
    assert r["healthy"] and r["observed"]["window_seconds"] == 31


# ---------------------------------------------------------------- reintroduction


def switched(name, saved, current=("on-demand",)):
    return nodepool(name, list(current), annotations={SAVED: json.dumps(saved, sort_keys=True)})


def req(values, op="In"):
    return {"key": CT, "operator": op, "values": list(values)} if op == "In" else {"key": CT, "operator": op}


def test_add_spot_keeps_on_demand_allowed_and_the_annotation():
    saved = [req(["spot"]), {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]
    r = run([switched("batch", saved)], method="spot_reintroduction", stage="add_spot")
    (planned,) = r["remediation"]["nodepools"]
    assert ct_req(planned) == [req(["on-demand", "spot"])] and SAVED in planned["metadata"]["annotations"]
    assert r["observed"]["saved_requirements"] == {"batch": saved}


def test_add_spot_drops_the_restriction_when_the_saved_spec_allowed_everything():
    saved = [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]  # no capacity-type requirement
    r = run([switched("batch", saved)], method="spot_reintroduction", stage="add_spot")
    assert ct_req(r["remediation"]["nodepools"][0]) == []


def test_restore_puts_the_saved_requirements_back_and_drops_the_annotation():
    saved = [req(["spot"]), {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]
    r = run([switched("batch", saved, current=("on-demand", "spot"))], method="spot_reintroduction", stage="restore")
    (planned,) = r["remediation"]["nodepools"]
    assert planned["spec"]["template"]["spec"]["requirements"] == saved
    assert SAVED not in (planned["metadata"].get("annotations") or {})
    assert SAVED in r["remediation"]["previous"]["batch"]["metadata"]["annotations"]


def test_invalid_annotation_is_critical():
    bad = nodepool("batch", ["on-demand"], annotations={SAVED: "{not json"})
    r = run([bad], method="spot_reintroduction")
    assert r["causes"] == ["saved_requirements_invalid"] and r["remediation"]["nodepools"] == []
    not_list = nodepool("batch", ["on-demand"], annotations={SAVED: '{"a": 1}'})
    assert run([not_list], method="spot_reintroduction")["causes"] == ["saved_requirements_invalid"]


def test_nothing_to_reintroduce():
    r = run([nodepool("batch", ["on-demand"])], method="spot_reintroduction")
    assert r["healthy"] and ids(r) == ["nothing_to_reintroduce"] and r["remediation"]["nodepools"] == []


def test_no_reintroduction_while_the_storm_goes_on():
    r = run([switched("batch", [req(["spot"])])] + storm("batch", 3), method="spot_reintroduction", threshold=3)
    assert r["causes"] == ["spot_interruption_storm"] and r["remediation"]["nodepools"] == []


# ---------------------------------------------------------------- helpers


def test_capacity_type_allowed():
    unused, od = nodepool("a", ["on-demand"])
    unused, both = nodepool("b", ["spot", "on-demand"])
    unused, none = nodepool("c", requirements=[])
    unused, notin = nodepool("d", requirements=[req(["spot"], "NotIn") | {"values": ["spot"]}])
    assert not runbooks.allows_spot(od) and runbooks.allows_spot(both)
    assert not runbooks.allows_spot(none) and runbooks.capacity_type_allowed(none, "on-demand")
    assert not runbooks.allows_spot(notin) and runbooks.capacity_type_allowed(notin, "on-demand")


def test_parse_metrics_and_metric_sum():
    m = runbooks.parse_metrics(
        '# HELP x\nkarpenter_nodeclaims_disrupted_total{reason="interrupted",capacity_type="spot"} 2\n'
        'karpenter_nodeclaims_disrupted_total{reason="drifted",capacity_type="spot"} 1\n'
        'karpenter_nodeclaims_disrupted_total{reason="drifted",capacity_type="on-demand"} 5\n'
        "bad line\nnot_a_number NaNx\n"
    )
    by_reason = runbooks.metric_sum(m, "karpenter_nodeclaims_disrupted_total", by="reason", capacity_type="spot")
    assert by_reason == {"interrupted": 2.0, "drifted": 1.0}
    assert runbooks.metric_sum(m, "karpenter_nodeclaims_disrupted_total") == 8.0
    assert runbooks.metric_sum(m, "missing") == 0.0


def test_markdown_names_status_findings_recommendations_and_changes():
    r = run([nodepool("batch", ["spot"])] + storm("batch", 3), threshold=3)
    md = runbooks.markdown(r)
    assert "INCIDENT: spot_interruption_storm" in md and "`switch_to_on_demand`" in md
    assert "run with `runbook_remediate=true`" in md and "- NodePool `batch`" in md
    healthy = runbooks.markdown(run([nodepool("batch", ["on-demand"])]))
    assert "status: **healthy**" in healthy and "## Findings\n\n- none" in healthy


class Clock:
    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


def test_wait_healthy_repeats_until_healthy_or_timeout():
    clock = Clock()
    results = iter([{"healthy": False}, {"healthy": False}, {"healthy": True}])
    assert runbooks.wait_healthy(lambda: next(results), 60, interval=2, sleep=clock.sleep, clock=clock)["healthy"]
    assert clock.sleeps == [2, 2]
    clock = Clock()
    r = runbooks.wait_healthy(lambda: {"healthy": False}, 5, interval=2, sleep=clock.sleep, clock=clock)
    assert not r["healthy"] and clock.t >= 5


def test_watch_stops_at_the_first_unhealthy_result():
    clock = Clock()
    results = iter([{"healthy": True, "observed": {}}, {"healthy": False, "observed": {}}])
    r = runbooks.watch(lambda: next(results), 60, interval=5, sleep=clock.sleep, clock=clock)
    assert r["observed"]["watch"] == {"seconds": 60, "runs": 2, "stopped_early": True}
    clock = Clock()
    r = runbooks.watch(lambda: {"healthy": True, "observed": {}}, 12, interval=5, sleep=clock.sleep, clock=clock)
    assert r["observed"]["watch"]["runs"] == 4 and not r["observed"]["watch"]["stopped_early"]


def test_result_shape():
    r = run([nodepool("batch", ["on-demand"])])
    assert set(r) == {
        "scenario",
        "time",
        "healthy",
        "causes",
        "checked",
        "notes",
        "findings",
        "recommendations",
        "observed",
        "remediation",
    }
    assert r["time"] == NOW.strftime("%Y-%m-%dT%H:%M:%SZ") and r["scenario"] == "spot_storm"
    assert ago(0) == r["time"]
