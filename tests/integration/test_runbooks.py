"""Runbooks against the sandbox's real Karpenter: induce the incident, diagnose, remediate, verify.

Each test makes its own NodePool/namespace (unique names) and removes them. The apiserver audit log is
the witness that check mode sends no write request.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNBOOKS = os.path.join(ROOT, "playbooks", "runbooks")
UA = "karpenter-eks-platform/"
KWOK_REF = {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"}


def task(out, name):
    for play in out["plays"]:
        for t in play["tasks"]:
            if t["task"]["name"] == name or t["task"]["name"].endswith(" : " + name):
                return t["hosts"]["sandbox"]
    raise KeyError(name)


def nodepool(name, cpu_limit, capacity_types=("on-demand",)):
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": KWOK_REF,
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(capacity_types)},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    ],
                    "expireAfter": "Never",
                }
            },
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
            "limits": {"cpu": str(cpu_limit)},
        },
    }


def workload(ns, pool, replicas, cpu="1", spread=False):
    spec = {
        "nodeSelector": {"karpenter.sh/nodepool": pool},
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": cpu}}}],
    }
    if spread:
        spec["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "app"}}}
                ]
            }
        }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "app"}},
                "template": {"metadata": {"labels": {"app": "app"}}, "spec": spec},
            },
        },
    ]


def writes(sandbox, mark, *names):
    """Write requests after ``mark`` on our objects (other engineers' tests may write concurrently)."""
    out = []
    for e in sandbox.writes_since(mark):
        ref = e.get("objectRef") or {}
        if ref.get("name") in names or ref.get("namespace") in names:
            if e.get("verb") in ("create", "update", "patch", "delete") and (e.get("userAgent") or "").startswith(UA):
                out.append((e["verb"], ref.get("resource"), ref.get("name")))
    return out


def running(sandbox, ns):
    pods = sandbox.core.list_namespaced_pod(ns).items
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def cleanup(sandbox, ns, pool):
    sandbox.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
    sandbox.kubectl("delete", "nodepool", pool, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def outdir(tmp_path):
    return str(tmp_path / "bundles")


def test_provisioning_failure_nodepool_limit(sandbox, uid, outdir):
    ns, pool = f"rb-prov-{uid}", f"rb-prov-{uid}"
    play = os.path.join(RUNBOOKS, "provisioning_failure.yml")
    ev = {
        "runbook_namespaces": [ns],
        "runbook_output_dir": outdir,
        "runbook_metrics_url": sandbox.env["KARPENTER_METRICS_URL"],
    }
    try:
        # incident: a 2-CPU limit for a Deployment that needs 4 x 1 CPU
        sandbox.apply([nodepool(pool, 2)] + workload(ns, pool, 4))
        sandbox.wait_until(
            "Karpenter to hit the limit",
            lambda: (
                len(running(sandbox, ns)) >= 1
                and any(
                    "limit" in (e.message or "")
                    for e in sandbox.core.list_namespaced_event(ns).items
                    if e.source and e.source.component == "karpenter"
                )
            ),
            90,
        )

        # diagnosis only: names the cause, changes nothing
        mark = sandbox.audit_mark()
        t0 = time.monotonic()
        _, out = sandbox.playbook(play, extra_vars=ev)
        diag = task(out, "Diagnose")
        assert "nodepool_limit_reached" in diag["causes"], diag["findings"]
        assert "pods_unschedulable" in diag["causes"]
        assert [p["metadata"]["name"] for p in diag["remediation"]["nodepools"]] == [pool]
        assert diag["remediation"]["previous"][pool]["spec"]["limits"] == {"cpu": "2"}
        assert any(r["id"] == "raise_limit" for r in diag["recommendations"])
        bundle = diag["bundle"]
        assert os.path.exists(bundle["json"]) and "nodepool_limit_reached" in open(bundle["markdown"]).read()
        assert writes(sandbox, mark, ns, pool) == []
        print(f"diagnosis: {time.monotonic() - t0:.1f}s")

        # check mode + diff: shows the new limit, writes nothing
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, "--check", "--diff", extra_vars=dict(ev, runbook_remediate=True))
        applied = task(out, "Apply the NodePool changes")
        assert applied["changed"]
        (d,) = applied["diff"]
        new_limit = d["after"]["spec"]["limits"]["cpu"]
        assert d["before"]["spec"]["limits"]["cpu"] == "2" and int(new_limit) > 4
        assert writes(sandbox, mark, ns, pool) == []
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        assert live["spec"]["limits"] == {"cpu": "2"}

        # remediation: raise the limit, verified by conditions (all pods scheduled)
        t0 = time.monotonic()
        _, out = sandbox.playbook(play, extra_vars=dict(ev, runbook_remediate=True))
        took = time.monotonic() - t0
        assert task(out, "Verify (pods scheduled, no critical finding)")["healthy"]
        assert len(running(sandbox, ns)) == 4
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        assert int(live["spec"]["limits"]["cpu"]) > 4
        bundle_dir = os.path.dirname(task(out, "Diagnose")["bundle"]["json"])
        prev = json.load(open(os.path.join(bundle_dir, "previous-nodepools.json")))
        assert prev[pool]["spec"]["limits"] == {"cpu": "2"}
        assert os.path.exists(os.path.join(bundle_dir, "verification.md"))
        print(f"remediation + verification: {took:.1f}s")

        # twice is harmless: healthy, nothing to change, no write
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, extra_vars=dict(ev, runbook_remediate=True))
        assert task(out, "Diagnose")["healthy"]
        assert out["stats"]["sandbox"]["changed"] == 0
        assert writes(sandbox, mark, ns, pool) == []
    finally:
        cleanup(sandbox, ns, pool)


def _karpenter_pid(sandbox):
    with open(os.path.join(sandbox.env["SANDBOX_STATE"], "run", "karpenter.pid")) as f:
        return int(f.read().strip())


def _health_url():
    sys.path.insert(0, os.path.join(ROOT, "sandbox"))
    import sandbox as sb  # noqa: PLC0415 - the launcher knows the ports

    return f"http://127.0.0.1:{sb.PORTS['karpenter_health']}/readyz"


def controller_stand_in(ns):
    """A Deployment like the chart's (same labels) on the system nodes: what a rollout restart acts on."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "karpenter", "namespace": ns},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "karpenter"}},
                    "spec": {
                        "nodeSelector": {"eks.amazonaws.com/nodegroup": "system"},
                        "containers": [{"name": "controller", "image": "registry.k8s.io/pause:3.10"}],
                    },
                },
            },
        },
    ]


def test_controller_failure_process_killed(sandbox, uid, outdir):
    ns = f"rb-ctrl-{uid}"
    play = os.path.join(RUNBOOKS, "controller_failure.yml")
    ev = {
        "runbook_namespace": ns,
        "runbook_output_dir": outdir,
        "runbook_health_url": _health_url(),
        "runbook_metrics_url": sandbox.env["KARPENTER_METRICS_URL"],
        "runbook_restart_command": [sys.executable, os.path.join(ROOT, "sandbox", "sandbox.py"), "up"],
    }
    try:
        sandbox.apply(controller_stand_in(ns))
        sandbox.kubectl("rollout", "status", "-n", ns, "deployment/karpenter", "--timeout=60s")
        # healthy: diagnosis finds nothing, remediation does nothing
        _, out = sandbox.playbook(play, extra_vars=dict(ev, runbook_remediate=True))
        assert task(out, "Diagnose")["healthy"], task(out, "Diagnose")["findings"]
        assert out["stats"]["sandbox"]["changed"] == 0

        # incident: the real Karpenter controller process dies
        os.kill(_karpenter_pid(sandbox), 15)
        sandbox.wait_until("karpenter down", lambda: not _probe(_health_url()), 30)
        _, out = sandbox.playbook(play, extra_vars=ev)
        diag = task(out, "Diagnose")
        assert "controller_unhealthy" in diag["causes"], diag["findings"]
        assert "metrics_unreachable" in [f["id"] for f in diag["findings"]]
        assert any(r["id"] == "rollout_restart" for r in diag["recommendations"])

        # check mode: shows the restart, writes nothing, starts nothing
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, "--check", "--diff", extra_vars=dict(ev, runbook_remediate=True))
        assert "would patch Deployment" in task(out, "Would restart (check mode)")["msg"]
        assert [e for e in sandbox.writes_since(mark) if (e.get("objectRef") or {}).get("namespace") == ns] == []
        assert not _probe(_health_url())

        # remediation: rollout restart + restart command, verified healthy
        t0 = time.monotonic()
        _, out = sandbox.playbook(play, extra_vars=dict(ev, runbook_remediate=True))
        assert task(out, "Verify (controller healthy)")["healthy"]
        print(f"controller remediation + verification: {time.monotonic() - t0:.1f}s")
        dep = sandbox.apps.read_namespaced_deployment("karpenter", ns)
        assert "kubectl.kubernetes.io/restartedAt" in (dep.spec.template.metadata.annotations or {})
        assert _probe(_health_url())

        # twice: healthy now, nothing changes
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, extra_vars=dict(ev, runbook_remediate=True))
        assert task(out, "Diagnose")["healthy"] and out["stats"]["sandbox"]["changed"] == 0
        assert [e for e in sandbox.writes_since(mark) if (e.get("objectRef") or {}).get("namespace") == ns] == []
    finally:
        if not _probe(_health_url()):
            subprocess.run([sys.executable, os.path.join(ROOT, "sandbox", "sandbox.py"), "up"], check=False)
        sandbox.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


def _probe(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except Exception:
        return False
