"""Spot runbooks against the sandbox's real Karpenter: storm -> on-demand, then spot back step by step.

The storm is real: EC2 spot interruption warnings (the EventBridge messages AWS sends) for every spot instance of
the pool go to the controller's interruption queue (the one the karpenter role creates), and the sandbox's Karpenter (AWS provider)
handles them as on EKS: ``SpotInterrupted`` events, the NodeClaims cordoned, drained and replaced, the offerings
marked unavailable. After the switch Karpenter replaces the spot nodes with on-demand ones (requirements drift),
which the runbook's verification waits for. Each test uses its own NodePool/namespace and removes them; the apiserver audit log is the witness that check mode writes nothing.
"""

import concurrent.futures
import glob
import json
import os
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNBOOKS = os.path.join(ROOT, "playbooks", "runbooks")
UA = "karpenter-eks-platform/"
KWOK_REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"}  # the sandbox's Ready node class
CT = "karpenter.sh/capacity-type"
SAVED = "karpenter-eks.platform/spot-storm-previous-requirements"


def task(out, name):
    for play in out["plays"]:
        for t in play["tasks"]:
            if t["task"]["name"] == name or t["task"]["name"].endswith(" : " + name):
                return t["hosts"]["sandbox"]
    raise KeyError(name)


def requirements(capacity_types):
    return [
        {"key": CT, "operator": "In", "values": list(capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
    ]


def nodepool(name, capacity_types, annotations=None):
    meta = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": meta,
        "spec": {
            "template": {
                "spec": {"nodeClassRef": KWOK_REF, "requirements": requirements(capacity_types), "expireAfter": "Never"}
            },
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
            "limits": {"cpu": "64"},
        },
    }


def workload(ns, pool, replicas):
    spec = {
        "nodeSelector": {"karpenter.sh/nodepool": pool},
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "app"}}}
                ]
            }
        },
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "1"}}}],
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


def claims(sandbox, pool):
    items = sandbox.custom.list_cluster_custom_object(
        "karpenter.sh", "v1", "nodeclaims", label_selector=f"karpenter.sh/nodepool={pool}"
    )["items"]
    return [c for c in items if not c["metadata"].get("deletionTimestamp")]


def ready(c):
    return any(x["type"] == "Ready" and x["status"] == "True" for x in (c.get("status") or {}).get("conditions") or [])


def running(sandbox, ns):
    pods = sandbox.core.list_namespaced_pod(ns).items
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def writes(sandbox, mark, *names):
    out = []
    for e in sandbox.writes_since(mark):
        ref = e.get("objectRef") or {}
        if ref.get("name") in names or ref.get("namespace") in names:
            if e.get("verb") in ("create", "update", "patch", "delete") and (e.get("userAgent") or "").startswith(UA):
                out.append((e["verb"], ref.get("resource"), ref.get("name")))
    return out


def interrupt(sandbox, claim_list):
    """EC2 spot interruption warnings for the claims' instances, sent to the controller's interruption queue."""
    sys.path.insert(0, os.path.join(ROOT, "sandbox"))
    from aws_emulator import send_interruption

    ids = [c["status"]["providerID"].rsplit("/", 1)[1] for c in claim_list]
    send_interruption(
        sandbox.env["AWS_ENDPOINT_URL"], sandbox.env["SANDBOX_INTERRUPTION_QUEUE"], "spot-interruption", ids
    )
    return ids


def instance_state(sandbox, instance_id):
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"], region_name=sandbox.env["AWS_REGION"])
    (res,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return res["Instances"][0]["State"]["Name"]


def cleanup(sandbox, ns, pool):
    sandbox.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
    sandbox.kubectl("delete", "nodepool", pool, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def outdir(tmp_path):
    return str(tmp_path / "bundles")


def test_spot_storm_switches_to_on_demand(sandbox, uid, outdir):
    ns = pool = f"rb-spot-{uid}"
    play = os.path.join(RUNBOOKS, "spot_interruption.yml")
    ev = {"runbook_namespaces": [ns], "runbook_nodepools": [pool], "karpenter_eks_artifacts_dir": outdir}
    interrupted_objects = set()
    try:
        # spot NodePool with 3 running spot nodes (Karpenter picks spot: cheaper than on-demand in the sandbox)
        sandbox.apply([nodepool(pool, ["spot", "on-demand"])] + workload(ns, pool, 3))
        sandbox.wait_until("3 pods Running", lambda: len(running(sandbox, ns)) == 3, 120)
        spot = claims(sandbox, pool)
        assert len(spot) == 3 and {c["metadata"]["labels"][CT] for c in spot} == {"spot"}
        previous = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        previous_reqs = previous["spec"]["template"]["spec"]["requirements"]

        # the storm: AWS warns that all three spot instances will be reclaimed; Karpenter reacts for real
        interrupt(sandbox, spot)
        gone = {c["metadata"]["name"] for c in spot}
        interrupted_objects |= gone | {c["status"].get("nodeName") for c in spot}

        def interrupted():
            evs = sandbox.core.list_event_for_all_namespaces(field_selector="reason=SpotInterrupted").items
            return len({e.involved_object.name for e in evs if e.involved_object.name in gone}) >= 3

        sandbox.wait_until("Karpenter's SpotInterrupted events for the three claims", interrupted, 60)

        # diagnosis only: names the storm, the rate and the pool; writes nothing
        mark = sandbox.audit_mark()
        t0 = time.monotonic()
        _, out = sandbox.playbook(play, extra_vars=ev)
        diag = task(out, "Diagnose")
        print(f"diagnosis: {time.monotonic() - t0:.1f}s")
        assert "spot_interruption_storm" in diag["causes"], diag["findings"]
        assert diag["observed"]["interruptions_in_window"] >= 3 and diag["observed"]["rate_per_hour"] >= 12
        assert diag["observed"]["affected_nodepools"].get(pool, 0) >= 2
        assert diag["observed"]["spot_nodepools"] == [pool]
        (planned,) = diag["remediation"]["nodepools"]
        assert planned["metadata"]["annotations"][SAVED] == json.dumps(previous_reqs, sort_keys=True)
        assert {"key": CT, "operator": "In", "values": ["on-demand"]} in planned["spec"]["template"]["spec"][
            "requirements"
        ]
        md = open(diag["bundle"]["markdown"]).read()
        assert "spot_interruption_storm" in md and pool in md and "/h" in md
        assert writes(sandbox, mark, ns, pool) == []

        # check mode + diff: shows the switch and the annotation, writes nothing
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, "--check", "--diff", extra_vars=dict(ev, runbook_remediate=True))
        applied = task(out, "Apply the NodePool changes")
        (d,) = applied["diff"]
        assert applied["changed"] and SAVED in d["after"]["metadata"]["annotations"]
        ct_after = [r for r in d["after"]["spec"]["template"]["spec"]["requirements"] if r["key"] == CT]
        assert ct_after == [{"key": CT, "operator": "In", "values": ["on-demand"]}]
        assert writes(sandbox, mark, ns, pool) == []
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        assert live["spec"]["template"]["spec"]["requirements"] == previous_reqs

        # remediation: switch, then verified by conditions (on-demand NodeClaims Ready, pods Running)
        t0 = time.monotonic()
        _, out = sandbox.playbook(play, extra_vars=dict(ev, runbook_remediate=True))
        print(f"switch + verification (Karpenter replaces the spot nodes): {time.monotonic() - t0:.1f}s")
        assert task(out, "Verify (switched NodeClaims on-demand and Ready, no pod Pending)")["healthy"]
        now = claims(sandbox, pool)
        assert len(now) >= 3 and {c["metadata"]["labels"][CT] for c in now} == {"on-demand"} and all(map(ready, now))
        assert len(running(sandbox, ns)) == 3
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        assert json.loads(live["metadata"]["annotations"][SAVED]) == previous_reqs
        bundle_dir = os.path.dirname(task(out, "Diagnose")["bundle"]["json"])
        prev = json.load(open(os.path.join(bundle_dir, "previous-nodepools.json")))
        assert prev[pool]["spec"]["template"]["spec"]["requirements"] == previous_reqs

        # twice is harmless: the storm is still in the window but mitigated; nothing to change, no write
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, extra_vars=dict(ev, runbook_remediate=True))
        diag = task(out, "Diagnose")
        assert diag["healthy"] and diag["remediation"]["nodepools"] == []
        assert "spot_interruption_storm_mitigated" in [f["id"] for f in diag["findings"]]
        assert diag["observed"]["switched_nodepools"] == [pool]
        assert out["stats"]["sandbox"]["changed"] == 0
        assert writes(sandbox, mark, ns, pool) == []
    finally:
        cleanup(sandbox, ns, pool)
        sandbox.forget_interruptions(interrupted_objects)


def test_spot_reintroduction_step_by_step(sandbox, uid, outdir):
    """Two pools as the storm runbook leaves them (on-demand, previous requirements in the annotation): one was
    spot-or-on-demand, one spot-only. Step 1 adds spot to one pool at a time; the restore puts the spot-only pool
    back to spot-only, so Karpenter replaces its on-demand node by a spot one, which the verification waits for."""
    mixed, spot_only = f"rb-reint-a-{uid}", f"rb-reint-b-{uid}"
    ns = f"rb-reint-{uid}"
    play = os.path.join(RUNBOOKS, "spot_reintroduction.yml")
    ev = {
        "runbook_namespaces": [ns],
        "runbook_nodepools": [mixed, spot_only],
        "karpenter_eks_artifacts_dir": outdir,
        "runbook_step_observe_seconds": 5,
    }
    saved = {mixed: requirements(["spot", "on-demand"]), spot_only: requirements(["spot"])}
    pools = [nodepool(p, ["on-demand"], {SAVED: json.dumps(saved[p], sort_keys=True)}) for p in (mixed, spot_only)]
    deploy = workload(ns, spot_only, 1)
    try:
        sandbox.apply(pools + deploy)
        sandbox.wait_until("the pod Running on on-demand", lambda: len(running(sandbox, ns)) == 1, 120)
        assert [c["metadata"]["labels"][CT] for c in claims(sandbox, spot_only)] == ["on-demand"]

        # check mode: shows every step, writes nothing
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, "--check", "--diff", extra_vars=ev)
        plan = task(out, "Plan - add spot back")
        assert sorted(p["metadata"]["name"] for p in plan["remediation"]["nodepools"]) == [mixed, spot_only]
        restore = task(out, "Plan - restore the saved specs")
        assert all(SAVED not in p["metadata"].get("annotations", {}) for p in restore["remediation"]["nodepools"])
        assert writes(sandbox, mark, ns, mixed, spot_only) == []

        # the real run: step by step, then the saved specs
        t0 = time.monotonic()
        _, out = sandbox.playbook(play, extra_vars=ev)
        print(f"reintroduction (2 steps + restore, observe 5s each): {time.monotonic() - t0:.1f}s")
        bundle = os.path.dirname(task(out, "Plan - add spot back")["bundle"]["json"])
        files = sorted(os.listdir(bundle))
        for p in (mixed, spot_only):
            assert f"check-add-spot-{p}.json" in files and f"observe-add-spot-{p}.json" in files, files
            live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", p)
            assert live["spec"]["template"]["spec"]["requirements"] == saved[p]
            assert SAVED not in (live["metadata"].get("annotations") or {})
        step = json.load(open(os.path.join(bundle, f"remediation-nodepools-add-spot-{spot_only}.json")))
        ct = [r for r in step["results"][0]["object"]["spec"]["template"]["spec"]["requirements"] if r["key"] == CT]
        assert ct[0]["values"] == ["on-demand", "spot"]  # step 1 kept on-demand allowed
        sandbox.wait_until(
            "spot NodeClaim",
            lambda: [c["metadata"]["labels"].get(CT) for c in claims(sandbox, spot_only)] == ["spot"],
            5,
        )
        assert len(running(sandbox, ns)) == 1

        # twice: nothing left to reintroduce, no write
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(play, extra_vars=ev)
        assert task(out, "Plan - add spot back")["remediation"]["nodepools"] == []
        assert out["stats"]["sandbox"]["changed"] == 0
        assert writes(sandbox, mark, ns, mixed, spot_only) == []
    finally:
        cleanup(sandbox, ns, spot_only)
        sandbox.kubectl("delete", "nodepool", mixed, "--wait=false", "--ignore-not-found", check=False)


def test_spot_reintroduction_rolls_back_a_failed_step(sandbox, uid, outdir):
    """A check between steps fails - a pod Pending in the watched namespace that no node can take (it asks for more
    CPU than any offering has) - so the step is rolled back: the pool's spec before the step (spot off, annotation
    kept) is applied again, the failure is recorded in the bundle and the playbook exits non-zero with a clear
    message; the restore of the saved specs is not reached."""
    pool, ns = f"rb-rollback-{uid}", f"rb-rollback-{uid}"
    play = os.path.join(RUNBOOKS, "spot_reintroduction.yml")
    saved = requirements(["spot", "on-demand"])
    before = nodepool(pool, ["on-demand"], {SAVED: json.dumps(saved, sort_keys=True)})
    stuck = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "too-big", "namespace": ns},
        "spec": {
            "nodeSelector": {"karpenter.sh/nodepool": pool},
            "containers": [
                {"name": "app", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "1000"}}}
            ],
        },
    }
    ev = {
        "runbook_namespaces": [ns],
        "runbook_nodepools": [pool],
        "karpenter_eks_artifacts_dir": outdir,
        "runbook_verify_timeout": 10,
        "runbook_step_observe_seconds": 5,
    }
    try:
        sandbox.apply([before, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, stuck])
        live_before = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)

        t0 = time.monotonic()
        rc, out = sandbox.playbook(play, extra_vars=ev, check=False)
        print(f"failed step + rollback: {time.monotonic() - t0:.1f}s")
        assert rc != 0
        applied = task(out, "Apply the NodePool changes")
        assert applied["changed"]  # the step really added spot before the check failed
        ct = [r for r in applied["results"][0]["object"]["spec"]["template"]["spec"]["requirements"] if r["key"] == CT]
        assert ct[0]["values"] == ["on-demand", "spot"]
        check = task(out, f"Wait until converged, step add-spot-{pool}")
        assert check["failed"] and "pods_pending" in check["causes"]
        assert task(out, f"Roll back (spot off again), step add-spot-{pool}")["changed"]
        stop = task(out, f"Stop at step add-spot-{pool}")
        assert stop["failed"] and f"step add-spot-{pool} FAILED" in stop["msg"] and "Rolled back" in stop["msg"]
        assert "pods_pending" in stop["msg"]
        with pytest.raises(KeyError):
            task(out, "Plan - restore the saved specs")

        # the pool is as it was before the step: spot off, the saved requirements still in the annotation
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        assert (
            live["spec"]["template"]["spec"]["requirements"] == live_before["spec"]["template"]["spec"]["requirements"]
        )
        assert json.loads(live["metadata"]["annotations"][SAVED]) == saved
        bundle = os.path.dirname(task(out, "Plan - add spot back")["bundle"]["json"])
        failed = json.load(open(os.path.join(bundle, f"failed-add-spot-{pool}.json")))
        assert failed["rolled_back_to"] == f"previous-nodepools-add-spot-{pool}.json"
        assert failed["failed_task"] == f"Wait until converged, step add-spot-{pool}"
        previous = json.load(open(os.path.join(bundle, f"previous-nodepools-add-spot-{pool}.json")))
        assert previous[pool]["spec"]["template"]["spec"]["requirements"] == requirements(["on-demand"])
    finally:
        cleanup(sandbox, ns, pool)


def test_spot_reintroduction_aborts_on_an_interruption_while_observing(sandbox, uid, outdir):
    """A real interruption during a step's observation window: the step's spot instance gets an EC2 spot
    interruption warning on the controller's queue while the runbook watches the pool. The runbook stops the watch
    early, rolls the step back (spot off, the saved requirements kept) and exits non-zero naming the interruption.

    The pod selects spot, so it is Pending while the pool is on-demand only and the step's own spot launch is the
    one interrupted (converged first: the check bundle appears, then the observation window runs)."""
    pool, ns = f"rb-abort-{uid}", f"rb-abort-{uid}"
    play = os.path.join(RUNBOOKS, "spot_reintroduction.yml")
    saved = requirements(["spot", "on-demand"])
    before = nodepool(pool, ["on-demand"], {SAVED: json.dumps(saved, sort_keys=True)})
    deploy = workload(ns, pool, 1)
    deploy[1]["spec"]["template"]["spec"]["nodeSelector"][CT] = "spot"
    observe = 120
    ev = {
        "runbook_namespaces": [ns],
        "runbook_nodepools": [pool],
        "karpenter_eks_artifacts_dir": outdir,
        "runbook_verify_timeout": 120,
        "runbook_step_observe_seconds": observe,
    }
    interrupted_objects = set()
    try:
        sandbox.apply([before] + deploy)
        sandbox.wait_until(
            "the spot-only pod Pending (the pool is on-demand only)",
            lambda: [p.status.phase for p in sandbox.core.list_namespaced_pod(ns).items] == ["Pending"],
            30,
        )
        assert claims(sandbox, pool) == []
        live_before = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool_runner:
            run = pool_runner.submit(sandbox.playbook, play, extra_vars=ev, check=False)

            def converged_check_written():
                if run.done():
                    return "playbook finished early"
                found = glob.glob(os.path.join(outdir, "*", f"check-add-spot-{pool}.json"))
                return found[0] if found else None

            check_file = sandbox.wait_until("the step's convergence check", converged_check_written, 240)
            assert check_file != "playbook finished early", run.result()
            check = json.load(open(check_file))
            assert check["healthy"], check["findings"]
            (spot,) = claims(sandbox, pool)  # launched by the step
            assert spot["metadata"]["labels"][CT] == "spot" and ready(spot)
            interrupted_objects |= {spot["metadata"]["name"], spot["status"]["nodeName"]}
            sent_at = time.monotonic()
            (instance_id,) = interrupt(sandbox, [spot])
            rc, out = run.result(timeout=observe + 240)
        print(
            f"step + interruption {sent_at - t0:.1f}s after the start, rollback done {time.monotonic() - sent_at:.1f}s"
            f" later (observe window {observe}s)"
        )

        # the controller received the warning: its SpotInterrupted event, the NodeClaim drained and replaced
        def spot_interrupted():
            evs = sandbox.core.list_event_for_all_namespaces(field_selector="reason=SpotInterrupted").items
            return {e.involved_object.name for e in evs} & interrupted_objects

        sandbox.wait_until("Karpenter's SpotInterrupted event", spot_interrupted, 30)
        assert spot["metadata"]["name"] not in {c["metadata"]["name"] for c in claims(sandbox, pool)}
        sandbox.wait_until(
            "the interrupted instance terminated",
            lambda: instance_state(sandbox, instance_id) in ("shutting-down", "terminated"),
            60,
        )

        # the runbook: the watch stopped early on the interruption, the step was rolled back, the play failed
        assert rc != 0
        observed = task(out, f"Observe (no interruption), step add-spot-{pool}")
        assert observed["failed"] and "spot_interruption_storm" in observed["causes"], observed["findings"]
        assert observed["observed"]["watch"]["stopped_early"]
        # one instance, reported by Karpenter on its NodeClaim and its Node: one interruption
        assert observed["observed"]["interruptions_in_window"] == 1
        assert observed["observed"]["interrupted_nodeclaims"] == [spot["metadata"]["name"]]
        assert interrupted_objects & {
            e["object"].partition("/")[2] for e in observed["observed"]["interruption_events"]
        }, observed["observed"]["interruption_events"]
        assert time.monotonic() - sent_at < observe  # aborted on the interruption, not at the end of the window
        assert task(out, f"Roll back (spot off again), step add-spot-{pool}")["changed"]
        stop = task(out, f"Stop at step add-spot-{pool}")
        assert stop["failed"] and "Rolled back" in stop["msg"] and "spot_interruption_storm" in stop["msg"]
        with pytest.raises(KeyError):
            task(out, "Plan - restore the saved specs")
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        assert (
            live["spec"]["template"]["spec"]["requirements"] == live_before["spec"]["template"]["spec"]["requirements"]
        )
        assert json.loads(live["metadata"]["annotations"][SAVED]) == saved
        bundle = os.path.dirname(check_file)
        failed = json.load(open(os.path.join(bundle, f"failed-add-spot-{pool}.json")))
        assert failed["failed_task"] == f"Observe (no interruption), step add-spot-{pool}"
        assert failed["rolled_back_to"] == f"previous-nodepools-add-spot-{pool}.json"
    finally:
        cleanup(sandbox, ns, pool)
        sandbox.forget_interruptions(interrupted_objects)
