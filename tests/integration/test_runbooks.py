"""Runbooks against the sandbox's real Karpenter: induce the incident, diagnose, remediate, verify.

Each test makes its own NodePool/namespace (unique names) and removes them. The apiserver audit log is
the witness that check mode sends no write request.
"""

import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNBOOKS = os.path.join(ROOT, "playbooks", "runbooks")
UA = "karpenter-eks-platform/"
KWOK_REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"}  # the sandbox's Ready node class


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
        "karpenter_eks_artifacts_dir": outdir,
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
        # the Markdown shows the planned change old -> new, the run prints the bundle and every file, all under
        # karpenter_eks_artifacts_dir
        md = open(bundle["markdown"]).read()
        assert f"- NodePool `{pool}`:\n  - `spec.limits.cpu`: `2` -> `" in md, md
        bundle_dir = os.path.dirname(bundle["json"])
        assert bundle_dir.startswith(outdir + os.sep)
        assert "Bundle: " + bundle_dir in task(out, "Summary")["msg"]
        assert task(out, "Files written by this run")["msg"] == sorted([bundle["json"], bundle["markdown"]])
        assert diag["incident_failure"] is None  # runbook_fail_on_incident is off outside AWX

        # runbook_fail_on_incident: the same diagnosis fails the play (a red AWX job), after writing the bundle
        rc, out = sandbox.playbook(play, extra_vars=dict(ev, runbook_fail_on_incident=True), check=False)
        assert rc != 0
        failed = task(out, "Fail on the incident (runbook_fail_on_incident, a diagnose-only run)")
        assert failed["failed"] and failed["msg"].startswith("INCIDENT (provisioning): nodepool_limit_reached")
        md_path = task(out, "Diagnose")["bundle"]["markdown"]
        assert failed["msg"].endswith("Bundle: " + md_path) and os.path.exists(md_path)
        assert md_path in task(out, "Files written by this run")["msg"]

        # check mode + diff: shows the new limit, writes nothing
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, "--check", "--diff", extra_vars=dict(ev, runbook_remediate=True))
        applied = task(out, "Apply the NodePool changes")
        assert applied["changed"]
        (d,) = applied["diff"]
        new_limit = d["after"]["spec"]["limits"]["cpu"]
        assert d["before"]["spec"]["limits"]["cpu"] == "2" and int(new_limit) > 4
        assert writes(sandbox, mark, ns, pool) == []
        # the bundle and the undo command are printed, in check mode too
        check_bundle = os.path.dirname(task(out, "Diagnose")["bundle"]["json"])
        printed = task(out, "Bundle and undo command")["msg"]
        assert printed[0] == "Bundle: " + check_bundle and printed[1] == "Would change NodePool(s): " + pool
        assert printed[2].startswith("Undo: ansible-playbook -i ")
        assert f"-e runbook_undo_file={check_bundle}/previous-nodepools.json" in printed[2]
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

        # the printed undo command, run as printed, restores the previous limit
        undo = json.load(open(os.path.join(bundle_dir, "remediation-nodepools.json")))["undo_command"]
        argv = shlex.split(undo)
        assert argv[0] == "ansible-playbook" and argv[argv.index("-e") + 1].startswith(
            "runbook_undo_file=" + bundle_dir
        )
        _, out = sandbox.playbook(*argv[1:])
        assert task(out, "Apply the previous NodePool specs")["changed"]
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        assert live["spec"]["limits"] == {"cpu": "2"}
        (undo_record,) = task(out, "Files written by this run")["msg"]
        assert os.path.dirname(undo_record) == bundle_dir and os.path.basename(undo_record).startswith("undo-")
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
        "karpenter_eks_artifacts_dir": outdir,
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
        assert [e for e in sandbox.client_writes_since(mark) if (e.get("objectRef") or {}).get("namespace") == ns] == []
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
        assert [e for e in sandbox.client_writes_since(mark) if (e.get("objectRef") or {}).get("namespace") == ns] == []
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


# ---------------------------------------------------------------- provisioning: IAM simulator, managed node group


def _aws(service):
    import boto3  # noqa: PLC0415

    return boto3.client(service, region_name="us-east-1")  # AWS_ENDPOINT_URL (sandbox env): moto on loopback


def test_provisioning_iam_simulator_unavailable_is_a_note(sandbox, uid, outdir):
    """moto has no iam:SimulatePrincipalPolicy (HTTP 500): the runbook records a note and the diagnosis goes on.
    The role exists in moto (so the check gets as far as the simulator); a missing role is a warning."""
    role = f"KarpenterControllerRole-rb-iam-{uid}"
    iam = _aws("iam")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    play = os.path.join(RUNBOOKS, "provisioning_failure.yml")
    ev = {
        "runbook_namespaces": [f"rb-iam-{uid}"],
        "karpenter_eks_artifacts_dir": outdir,
        "runbook_cluster_name": f"rb-iam-{uid}",
        "runbook_controller_role_name": role,
    }
    try:
        t0 = time.monotonic()
        _, out = sandbox.playbook(play, extra_vars=ev)
        print(f"diagnosis with the IAM check: {time.monotonic() - t0:.1f}s")
        check = task(out, "IAM permissions of the controller role (policy simulator, read-only)")
        assert check["available"] is False and check["role_arn"].endswith(":role/" + role)
        assert check["note"].startswith("IAM simulator not available: ")
        diag = task(out, "Diagnose")
        assert check["note"] in diag["notes"] and diag["healthy"]
        assert "IAM policy simulator: not available" in diag["checked"]
        assert "IAM simulator not available" in open(diag["bundle"]["markdown"]).read()

        _, out = sandbox.playbook(play, extra_vars=dict(ev, runbook_controller_role_name=f"missing-{uid}"))
        diag = task(out, "Diagnose")
        assert diag["healthy"] and "controller_role_missing" in [f["id"] for f in diag["findings"]]
    finally:
        iam.delete_role(RoleName=role)


class NodeGroupStandIn(threading.Thread):
    """Stands in for the managed node group's Auto Scaling group, which moto does not run: keeps as many KWOK nodes
    labelled eks.amazonaws.com/nodegroup=<group> as moto's desiredSize (the sandbox's kwok makes them Ready)."""

    def __init__(self, sandbox, cluster, group):
        super().__init__(daemon=True)
        self.sandbox, self.cluster, self.group = sandbox, cluster, group
        self.eks = _aws("eks")
        self.nodes = []
        self.done = threading.Event()

    def node(self, i):
        name = f"{self.group}-{i}"
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "eks.amazonaws.com/nodegroup": self.group,
                    "type": "kwok",
                },
            },
            "spec": {"providerID": f"aws:///us-east-1a/i-0{self.group[-6:]}{i:04d}"},
            "status": {"allocatable": NODE_TYPE, "capacity": NODE_TYPE},
        }

    def run(self):
        while not self.done.wait(1):
            ng = self.eks.describe_nodegroup(clusterName=self.cluster, nodegroupName=self.group)["nodegroup"]
            while len(self.nodes) < ng["scalingConfig"]["desiredSize"]:
                self.sandbox.apply([self.node(len(self.nodes))])
                self.nodes.append(f"{self.group}-{len(self.nodes)}")

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join(10)
        for n in self.nodes:
            self.sandbox.kubectl("delete", "node", n, "--wait=false", "--ignore-not-found", check=False)


NODE_TYPE = {"cpu": "4", "memory": "16Gi", "pods": "58", "ephemeral-storage": "80Gi"}


def test_provisioning_last_resort_scales_the_node_group(sandbox, uid, outdir):
    """Pods that only the managed node group can take (they select its label) stay Pending: no NodePool can serve
    them, so the runbook recommends the last resort, shows it in check mode and scales the node group (moto's
    eks:UpdateNodegroupConfig); the stand-in for the Auto Scaling group adds the nodes and the verification waits
    until the pods run. runbook_nodepools names no NodePool: other tests' NodePools and NodeClaims in the shared
    sandbox are out of scope."""
    ns, cluster, group = f"rb-ng-{uid}", f"rb-ng-{uid}", f"core-{uid}"
    eks = _aws("eks")
    eks.create_cluster(
        name=cluster, roleArn="arn:aws:iam::123456789012:role/EKSClusterRole", resourcesVpcConfig={"subnetIds": []}
    )
    eks.create_nodegroup(
        clusterName=cluster,
        nodegroupName=group,
        nodeRole="arn:aws:iam::123456789012:role/core-nodes",
        subnets=["subnet-0sandbox"],
        scalingConfig={"minSize": 0, "maxSize": 1, "desiredSize": 0},
    )
    play = os.path.join(RUNBOOKS, "provisioning_failure.yml")
    ev = {
        "runbook_namespaces": [ns],
        "runbook_nodepools": [f"none-{uid}"],
        "karpenter_eks_artifacts_dir": outdir,
        "runbook_cluster_name": cluster,
        "runbook_iam_check": False,
    }
    scale = dict(ev, runbook_scale_node_group=True, runbook_node_group=group, runbook_node_group_size=2)
    docs = workload(ns, group, 2, cpu="3")
    docs[1]["spec"]["template"]["spec"]["nodeSelector"] = {"eks.amazonaws.com/nodegroup": group}
    stand_in = NodeGroupStandIn(sandbox, cluster, group)
    try:
        sandbox.apply(docs)
        sandbox.wait_until("2 pods Pending", lambda: len(sandbox.core.list_namespaced_pod(ns).items) == 2, 30)

        # diagnosis: unschedulable, no NodePool change known, the last resort recommended
        _, out = sandbox.playbook(play, extra_vars=ev)
        diag = task(out, "Diagnose")
        assert diag["causes"] == ["pods_unschedulable"], diag["findings"]
        assert diag["remediation"]["nodepools"] == []
        assert "scale_node_group" in [r["id"] for r in diag["recommendations"]]

        # check mode + diff: the new scaling config, nothing written (moto unchanged), the undo recorded
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, "--check", "--diff", extra_vars=scale)
        scaled = task(out, "Scale the node group")
        assert scaled["changed"] and scaled["diff"] == {
            "before": {"scaling_config": {"min_size": 0, "max_size": 1, "desired_size": 0}},
            "after": {"scaling_config": {"min_size": 0, "max_size": 2, "desired_size": 2}},
        }
        ng = eks.describe_nodegroup(clusterName=cluster, nodegroupName=group)["nodegroup"]
        assert ng["scalingConfig"] == {"minSize": 0, "maxSize": 1, "desiredSize": 0}
        assert writes(sandbox, mark, ns) == []
        bundle_dir = os.path.dirname(task(out, "Diagnose")["bundle"]["json"])
        assert json.load(open(os.path.join(bundle_dir, "remediation-node-group-check.json")))["check_mode"] is True

        # remediation: scaled in moto, nodes come, the verification sees the pods scheduled
        stand_in.start()
        t0 = time.monotonic()
        _, out = sandbox.playbook(play, extra_vars=scale)
        print(f"node group scale-up + verification: {time.monotonic() - t0:.1f}s")
        assert task(out, "Scale the node group")["changed"]
        assert task(out, "Verify (pods scheduled, no critical finding)")["healthy"]
        ng = eks.describe_nodegroup(clusterName=cluster, nodegroupName=group)["nodegroup"]
        assert ng["scalingConfig"] == {"minSize": 0, "maxSize": 2, "desiredSize": 2}
        bundle_dir = os.path.dirname(task(out, "Diagnose")["bundle"]["json"])
        prev = json.load(open(os.path.join(bundle_dir, "previous-node-group.json")))
        assert (
            prev["scaling_config"] == {"min_size": 0, "max_size": 1, "desired_size": 0} and prev["node_group"] == group
        )
        sandbox.wait_until("2 pods Running", lambda: len(running(sandbox, ns)) == 2, 30)

        # twice: healthy now, nothing changes
        _, out = sandbox.playbook(play, extra_vars=scale)
        assert task(out, "Diagnose")["healthy"] and out["stats"]["sandbox"]["changed"] == 0
        assert task(out, "Scale the node group").get("skipped")
    finally:
        stand_in.stop()
        sandbox.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
        eks.delete_nodegroup(clusterName=cluster, nodegroupName=group)
        eks.delete_cluster(name=cluster)


def test_controller_failure_reads_the_controller_log_errors(sandbox, uid, outdir):
    """The sandbox's Karpenter runs out of cluster and writes its JSON log to .sandbox/logs/karpenter.log (on EKS the
    runbook reads the pods' logs instead). Real ERROR lines are induced: a NodePool deleted with --cascade=orphan
    leaves its NodeClaim behind, which Karpenter's state.nodeclaim controller reports on every reconcile
    ("NodePool ... not found"). Diagnosis only: the controller is not touched."""
    pool = ns = f"rb-log-{uid}"
    log_file = os.path.join(sandbox.env["SANDBOX_STATE"], "logs", "karpenter.log")
    play = os.path.join(RUNBOOKS, "controller_failure.yml")
    try:
        sandbox.apply([nodepool(pool, 8)] + workload(ns, pool, 1))
        sandbox.wait_until("the pod Running on a Karpenter node", lambda: len(running(sandbox, ns)) == 1, 90)
        sandbox.kubectl("delete", "nodepool", pool, "--cascade=orphan")

        def logged():
            with open(log_file, "rb") as f:
                f.seek(max(0, os.path.getsize(log_file) - 200_000))
                return f"nodepool={pool})".encode() in f.read()

        sandbox.wait_until("Karpenter to log the orphaned NodeClaim", logged, 180)
        _, out = sandbox.playbook(
            play,
            extra_vars={
                "karpenter_eks_artifacts_dir": outdir,
                "runbook_controller_log_file": log_file,
                "runbook_log_seconds": 300,
            },
        )
        diag = task(out, "Diagnose")
        assert diag["observed"]["log_source"] == log_file
        assert any(c.startswith(f"controller log file {log_file}") for c in diag["checked"])
        ours = [e for e in diag["observed"]["log_errors"] if f"NodePool/{pool}" in e["objects"]]
        assert ours and ours[0]["message"] == "Reconciler error" and "not found" in ours[0]["error"]
        (finding,) = [f for f in diag["findings"] if f["id"] == "controller_log_errors"]
        assert finding["severity"] == "warning" and "ERROR line(s) in the controller log" in finding["summary"]
        bundle = json.load(open(diag["bundle"]["json"]))
        assert any(f"NodePool/{pool}" in e["objects"] for e in bundle["observed"]["log_errors"])
    finally:
        sandbox.kubectl("delete", "nodeclaim", "-l", f"karpenter.sh/nodepool={pool}", "--wait=false", check=False)
        cleanup(sandbox, ns, pool)
