"""Controller-failure diagnosis (runbooks.Diagnosis.controller) on hand-made API objects: one test per finding."""

import json

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils import runbooks
from diagnose_fakes import NOW, FakeApi, ago, cond, event

NS = "karpenter"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def deployment(replicas=1, ready=1, available="True"):
    return (
        "/apis/apps/v1/namespaces/%s/deployments" % NS,
        {
            "metadata": {"name": "karpenter", "namespace": NS},
            "spec": {"replicas": replicas},
            "status": {
                "readyReplicas": ready,
                "availableReplicas": ready,
                "updatedReplicas": ready,
                "conditions": [cond("Available", available, message="Deployment has minimum availability.")],
            },
        },
    )


def controller_pod(name="karpenter-6d9f-abcde", restarts=0, waiting=None, last_terminated=None):
    status = {"restartCount": restarts, "state": {"running": {}}}
    if waiting:
        status["state"] = {"waiting": {"reason": waiting}}
    if last_terminated:
        status["lastState"] = {"terminated": {"reason": last_terminated}}
    return (
        "/api/v1/namespaces/%s/pods" % NS,
        {
            "metadata": {"name": name, "namespace": NS, "labels": {"app.kubernetes.io/name": "karpenter"}},
            "spec": {"nodeName": "system-a"},
            "status": {"phase": "Running", "containerStatuses": [status]},
        },
    )


def crd(name, established="True"):
    return (CRD_PATH, {"metadata": {"name": name}, "status": {"conditions": [cond("Established", established)]}})


def lease(renewed_ago=3, duration=15):
    return (
        "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS,
        {
            "metadata": {"name": "karpenter-leader-election"},
            "spec": {
                "holderIdentity": "karpenter-6d9f-abcde_1",
                "leaseDurationSeconds": duration,
                "renewTime": ago(renewed_ago)[:-1] + ".123456Z",
            },
        },
    )


def healthy(**replace):
    objs = {
        "deployment": deployment(),
        "pod": controller_pod(),
        "crd1": crd("nodepools.karpenter.sh"),
        "crd2": crd("nodeclaims.karpenter.sh"),
        "lease": lease(),
    }
    objs.update(replace)
    return [o for o in objs.values() if o is not None]


def run(objects, http=None, pod_log=None, version_error=None, **kw):
    api = FakeApi(objects, version_error=version_error)
    d = runbooks.Diagnosis(
        api, "controller", http_get=(lambda url: http[url]) if http is not None else None, now=NOW, pod_log=pod_log
    )
    d.controller(NS, "karpenter", **kw)
    return d.result()


def ids(result):
    return [f["id"] for f in result["findings"]]


def test_healthy_controller_has_no_finding():
    r = run(healthy())
    assert r["healthy"] and r["causes"] == [] and r["findings"] == [] and r["recommendations"] == []
    ctrl = r["observed"]["controller"]
    assert ctrl["deployment"]["ready"] == 1 and ctrl["pods"][0]["restarts"] == 0
    assert ctrl["lease"]["holder"] == "karpenter-6d9f-abcde_1" and ctrl["lease"]["renewed_seconds_ago"] <= 4
    for what in ("Deployment karpenter/karpenter", "CRD nodepools.karpenter.sh", "Lease karpenter/"):
        assert any(c.startswith(what) for c in r["checked"]), r["checked"]


def test_apiserver_unreachable_stops_there():
    r = run(healthy(), version_error="cannot reach the Kubernetes API: connection refused")
    assert r["causes"] == ["apiserver_unreachable"] and "connection refused" in r["findings"][0]["summary"]
    assert r["checked"] == ["kube-apiserver /version"]


def test_deployment_missing_is_critical_for_an_in_cluster_controller():
    r = run(healthy(deployment=None, pod=None))
    assert "deployment_missing" in r["causes"]
    assert [x["id"] for x in r["recommendations"]] == ["rollout_restart"]


def test_deployment_missing_is_a_warning_when_the_controller_runs_out_of_cluster():
    url = "http://127.0.0.1:28081/readyz"
    r = run(healthy(deployment=None, pod=None), http={url: (True, "ok")}, health_url=url)
    assert r["healthy"] and ids(r) == ["deployment_missing"] and r["findings"][0]["severity"] == "warning"
    assert r["observed"]["controller"]["health"]["ok"]


def test_deployment_scaled_to_zero():
    r = run(healthy(deployment=deployment(replicas=0, ready=0)))
    assert r["causes"] == ["deployment_scaled_to_zero"]


def test_deployment_unavailable():
    r = run(healthy(deployment=deployment(replicas=2, ready=1, available="False")))
    assert r["causes"] == ["deployment_unavailable"] and "1/2 replicas ready" in r["findings"][0]["summary"]


@pytest.mark.parametrize(
    "pod_kw",
    [{"waiting": "CrashLoopBackOff", "restarts": 1}, {"restarts": 3}, {"last_terminated": "OOMKilled"}],
    ids=["crashloop", "restarts", "oomkilled"],
)
def test_pod_crashing(pod_kw):
    r = run(healthy(pod=controller_pod(**pod_kw)))
    assert r["causes"] == ["pod_crashing"]
    assert r["recommendations"][0]["id"] == "rollout_restart" and "pod_crashing" in r["recommendations"][0]["why"]


def test_two_restarts_are_not_yet_a_crash():
    assert run(healthy(pod=controller_pod(restarts=2)))["healthy"]


@pytest.mark.parametrize("missing", [True, False], ids=["missing", "not-established"])
def test_crd_not_established(missing):
    r = run(healthy(crd2=None if missing else crd("nodeclaims.karpenter.sh", "False")))
    assert r["causes"] == ["crd_not_established"] and "nodeclaims.karpenter.sh" in r["findings"][0]["summary"]


def test_stale_karpenter_webhook():
    hook = (
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        {"metadata": {"name": "validation.webhook.karpenter.sh"}},
    )
    other = ("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {"metadata": {"name": "kyverno"}})
    r = run(healthy() + [hook, other])
    assert r["causes"] == ["stale_webhook"] and "validation.webhook.karpenter.sh" in r["findings"][0]["summary"]


def test_leader_lease_stale():
    r = run(healthy(lease=lease(renewed_ago=120, duration=15)))
    assert r["causes"] == ["leader_lease_stale"]
    assert run(healthy(lease=lease(renewed_ago=20, duration=15)))["healthy"]  # within 2 x lease duration


def test_no_lease_is_recorded_not_judged():
    r = run(healthy(lease=None))
    assert r["healthy"] and r["observed"]["controller"]["lease"] is None


def test_health_endpoint_failing():
    url = "http://127.0.0.1:28081/readyz"
    r = run(healthy(), http={url: (False, "connection refused")}, health_url=url)
    assert r["causes"] == ["controller_unhealthy"] and "connection refused" in r["findings"][0]["summary"]
    assert r["recommendations"][0]["remediation_var"] == "runbook_remediate=true"


def test_metrics_unreachable_is_a_warning_and_reachable_metrics_are_read():
    url = "http://127.0.0.1:28080/metrics"
    r = run(healthy(), http={url: (False, "refused")}, metrics_url=url)
    assert r["healthy"] and ids(r) == ["metrics_unreachable"]
    text = (
        "# HELP karpenter_cluster_state_synced x\nkarpenter_cluster_state_synced 1\n"
        'controller_runtime_reconcile_errors_total{controller="nodeclaim.lifecycle"} 4\n'
        'controller_runtime_reconcile_errors_total{controller="provisioner"} 1\n'
    )
    r = run(healthy(), http={url: (True, text)}, metrics_url=url)
    assert r["healthy"] and ids(r) == []
    assert r["observed"]["controller"]["cluster_state_synced"] == 1.0
    assert r["observed"]["controller"]["reconcile_errors"] == {"nodeclaim.lifecycle": 4.0, "provisioner": 1.0}


def test_recent_warning_events_are_recorded():
    old = event(NS, "Pod", "karpenter-6d9f-abcde", "BackOff", "old", component="kubelet", age=7200)
    new = event(NS, "Pod", "karpenter-6d9f-abcde", "BackOff", "Back-off restarting", component="kubelet", age=60)
    r = run(healthy() + [old, new])
    assert [e["message"] for e in r["observed"]["controller"]["events"]] == ["Back-off restarting"]


# ---------------------------------------------------------------- controller log errors


def log_line(level, message, age, **fields):
    t = (NOW - __import__("datetime").timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps(dict(level=level, time=t, logger="controller", message=message, **fields))


LOG = "\n".join(
    [
        log_line("ERROR", "Reconciler error", 5000, controller="provisioner", error="too old"),
        log_line("INFO", "Starting workers", 60, controller="nodepool.readiness"),
        "not json at all",
        log_line(
            "ERROR",
            "Reconciler error",
            120,
            controller="state.nodeclaim",
            error='NodePool "a" not found',
            NodeClaim={"name": "a-x1"},
            nodepool="a",
        ),
        log_line(
            "ERROR", "Reconciler error", 60, controller="state.nodeclaim", error='NodePool "b" not found', nodepool="b"
        ),
        log_line(
            "ERROR",
            "failed launching nodeclaim",
            30,
            controller="nodeclaim.lifecycle",
            error="creating instance, UnauthorizedOperation: You are not authorized to perform: ec2:CreateFleet",
        ),
    ]
)


def test_log_errors_grouped_in_the_window():
    errors = runbooks.log_errors(LOG, 900, NOW)
    assert [(e["message"], e["count"]) for e in errors] == [("Reconciler error", 2), ("failed launching nodeclaim", 1)]
    assert errors[0]["controller"] == "state.nodeclaim" and errors[0]["first"] < errors[0]["last"]
    assert errors[1]["cause"] == "iam_denied" and errors[0]["cause"] is None
    assert errors[0]["objects"] == ["NodeClaim/a-x1", "NodePool/a", "NodePool/b"] and errors[1]["objects"] == []
    assert runbooks.log_errors(LOG, 900, NOW, limit=1)[0]["count"] == 2
    assert len(runbooks.log_errors(LOG, 9000, NOW)) == 3  # the old provisioner error is back in a longer window


def test_controller_log_file_errors_become_a_warning(tmp_path):
    path = tmp_path / "karpenter.log"
    path.write_text(LOG + "\n")
    r = run(healthy(), log_file=str(path), log_seconds=900)
    assert r["healthy"] and ids(r) == ["controller_log_errors"]
    f = r["findings"][0]
    assert f["severity"] == "warning" and "3 ERROR line(s)" in f["summary"] and "Reconciler error (2x)" in f["summary"]
    assert r["observed"]["log_source"] == str(path) and len(r["observed"]["log_errors"]) == 2
    assert any(c.startswith("controller log file %s" % path) for c in r["checked"])


def test_controller_log_read_from_the_pods_when_no_file():
    calls = []

    def pod_log(namespace, pod, since_seconds):
        calls.append((namespace, pod, since_seconds))
        return LOG

    r = run(healthy(), pod_log=pod_log, log_seconds=600)
    assert calls == [(NS, "karpenter-6d9f-abcde", 600)]
    assert r["observed"]["log_source"] == "pods" and r["observed"]["log_errors"][0]["count"] == 2


def test_unreadable_logs_are_notes(tmp_path):
    r = run(healthy(), log_file=str(tmp_path / "missing.log"))
    assert r["healthy"] and r["notes"][0].startswith("controller log file not readable")

    def broken(namespace, pod, since_seconds):
        raise RuntimeError("container not started")

    r = run(healthy(), pod_log=broken)
    assert r["notes"] == ["log of pod karpenter/karpenter-6d9f-abcde not readable: container not started"]
    assert "## Notes" in runbooks.markdown(r)


def test_tail_text_starts_at_a_line(tmp_path):
    path = tmp_path / "big.log"
    path.write_text("".join("line %04d\n" % i for i in range(1000)))
    text = runbooks.tail_text(str(path), max_bytes=100)
    assert text.splitlines()[0].startswith("line ") and text.splitlines()[-1] == "line 0999"
    assert len(text) <= 100


def test_a_zero_window_reads_no_log(tmp_path):
    path = tmp_path / "karpenter.log"
    path.write_text(LOG + "\n")
    calls = []
    r = run(healthy(), pod_log=lambda *a: calls.append(a) or LOG, log_file=str(path), log_seconds=0)
    assert r["healthy"] and ids(r) == [] and "log_errors" not in r["observed"] and calls == []
    assert not any("log" in c for c in r["checked"])


def test_run_scenario_and_write_bundle(tmp_path):
    """The module's dispatch (module params as they come) and the bundle files."""
    p = {
        "scenario": "controller",
        "namespace": NS,
        "deployment": "karpenter",
        "health_url": None,
        "metrics_url": None,
        "log_file": None,
        "log_seconds": None,
    }
    r = runbooks.run_scenario(FakeApi(healthy(pod=controller_pod(restarts=5))), p, now=NOW)
    assert r["scenario"] == "controller" and r["causes"] == ["pod_crashing"]
    r["markdown"] = runbooks.markdown(r)
    paths = runbooks.write_bundle(r, str(tmp_path / "out"), "diagnosis")
    saved = json.load(open(paths["json"]))
    assert saved["causes"] == ["pod_crashing"] and "markdown" not in saved
    assert open(paths["markdown"]).read() == r["markdown"] and "INCIDENT: pod_crashing" in r["markdown"]


def test_log_error_groups_keep_the_objects_named_last():
    text = "\n".join(
        log_line(
            "ERROR",
            "Reconciler error",
            60,
            controller="state.nodeclaim",
            error='NodePool "p%d" not found' % i,
            nodepool="p%d" % i,
        )
        for i in range(25)
    )
    (group,) = runbooks.log_errors(text, 900, NOW)
    assert group["count"] == 25 and group["objects"] == ["NodePool/p%d" % i for i in range(5, 25)]
