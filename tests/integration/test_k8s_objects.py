"""karpenter_eks.platform.k8s_objects through ansible-playbook against the sandbox's real apiserver.

The apiserver's audit log (every write request, dry-runs included) is the witness for "no write": the module's
own request counters are checked as well, but not trusted alone. Objects live in a namespace of their own
(``it-objs-<uid>``), removed at the end.
"""

import copy
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PLAY = os.path.join(HERE, "playbooks", "k8s_objects.yml")
UA = "karpenter-eks-platform/"
HASH = "karpenter-eks.platform/applied-sha256"


def task(out):
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def objects(uid):
    ns = f"it-objs-{uid}"
    labels = {"app.kubernetes.io/managed-by": "karpenter_eks.platform", "team": "blue"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": dict(labels, **{"pod-security.kubernetes.io/enforce": "restricted"})},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "dashboard", "namespace": ns, "labels": dict(labels)},
            "data": {"board.json": json.dumps({"panels": [1, 2]})},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "controller", "namespace": ns, "labels": dict(labels)},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                "policyTypes": ["Ingress"],
                # protocol is left to the apiserver's default (TCP): not a difference on the next run
                "ingress": [{"ports": [{"port": 8080}]}],
            },
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "karpenter", "namespace": ns, "labels": dict(labels)},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                "endpoints": [{"port": "http-metrics", "interval": "30s"}],
            },
        },
        # not in the module's built-in kind table: found through discovery (one GET of /apis/coordination.k8s.io/v1)
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "probe", "labels": dict(labels)},  # namespace from the module's namespace option
            "spec": {"holderIdentity": "it"},
        },
    ]


def run(sandbox, objs, *args, state="present", namespace=None, check=True):
    return sandbox.playbook(
        PLAY, *args, extra_vars={"objs": objs, "state": state, "objs_namespace": namespace or ""}, check=check
    )


def test_create_noop_check_diff_and_absent(sandbox, uid):
    objs = objects(uid)
    ns = objs[0]["metadata"]["name"]
    try:
        # check mode on objects that do not exist: reports the creates, writes nothing
        mark = sandbox.audit_mark()
        _, out = run(sandbox, objs, "--check", namespace=ns)
        res = task(out)
        assert res["changed"] is True
        assert [r["action"] for r in res["results"]] == ["create"] * 5
        assert res["requests"]["writes"] == 0
        assert sandbox.writes_since(mark, UA) == [], "check mode must send no write request"
        assert sandbox.kubectl("get", "namespace", ns, check=False).returncode != 0

        # create
        mark = sandbox.audit_mark()
        _, out = run(sandbox, objs, namespace=ns)
        res = task(out)
        assert res["changed"] is True
        assert [(r["kind"], r["namespace"], r["action"]) for r in res["results"]] == [
            ("Namespace", None, "create"),
            ("ConfigMap", ns, "create"),
            ("NetworkPolicy", ns, "create"),
            ("ServiceMonitor", ns, "create"),
            ("Lease", ns, "create"),
        ]
        writes = sandbox.writes_since(mark, UA)
        assert len(writes) == 5 and {w["verb"] for w in writes} == {"patch"}  # server-side apply, one per object
        netpol = json.loads(sandbox.kubectl("get", "networkpolicy", "-n", ns, "controller", "-o", "json").stdout)
        assert netpol["spec"]["ingress"][0]["ports"][0] == {"port": 8080, "protocol": "TCP"}
        assert netpol["metadata"]["annotations"][HASH]

        # converged: no write request, changed=false; one LIST per kind and namespace + one discovery GET
        mark = sandbox.audit_mark()
        _, out = run(sandbox, objs, namespace=ns)
        res = task(out)
        assert res["changed"] is False
        assert [r["action"] for r in res["results"]] == ["unchanged"] * 5
        assert res["requests"] == {"get": 1, "list": 5, "total": 6, "writes": 0}
        assert sandbox.writes_since(mark, UA) == [], "a no-op run must send no write request"

        # drift in the definitions: check mode reports it with a diff and writes nothing
        drifted = copy.deepcopy(objs)
        drifted[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"
        drifted[1]["data"]["board.json"] = json.dumps({"panels": [1, 2, 3]})
        del drifted[2]["metadata"]["labels"]["team"]  # a removed field: only the fingerprint tells
        mark = sandbox.audit_mark()
        _, check_out = run(sandbox, drifted, "--check", "--diff", namespace=ns)
        res = task(check_out)
        assert [r["action"] for r in res["results"]] == ["update", "update", "update", "unchanged", "unchanged"]
        assert res["results"][0]["differences"] == ['metadata.labels["pod-security.kubernetes.io/enforce"]']
        assert res["results"][2]["differences"] == [f'metadata.annotations["{HASH}"]']
        assert sandbox.writes_since(mark, UA) == [], "check mode must send no write request"
        diff = res["diff"]
        assert [d["before_header"] for d in diff] == [
            f"Namespace/{ns}",
            f"ConfigMap/{ns}/dashboard",
            f"NetworkPolicy/{ns}/controller",
        ]
        assert diff[0]["before"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert diff[0]["after"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
        assert json.loads(diff[1]["after"]["data"]["board.json"]) == {"panels": [1, 2, 3]}
        assert diff[2]["before"]["metadata"]["labels"]["team"] == "blue"
        assert "team" not in diff[2]["after"]["metadata"]["labels"]
        assert diff[2]["after"]["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
        live = json.loads(sandbox.kubectl("get", "namespace", ns, "-o", "json").stdout)
        assert live["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

        # the real run changes exactly what check mode showed, and removes the dropped label
        mark = sandbox.audit_mark()
        _, out = run(sandbox, drifted, "--diff", namespace=ns)
        res = task(out)
        assert res["diff"] == diff
        assert len(sandbox.writes_since(mark, UA)) == 3
        netpol = json.loads(sandbox.kubectl("get", "networkpolicy", "-n", ns, "controller", "-o", "json").stdout)
        assert "team" not in netpol["metadata"]["labels"]
        _, out = run(sandbox, drifted, namespace=ns)
        assert task(out)["changed"] is False

        # absent: deletes what exists (objects first, the namespace last), then nothing more to do
        mark = sandbox.audit_mark()
        _, out = run(sandbox, drifted[::-1], state="absent", namespace=ns)
        res = task(out)
        assert [r["action"] for r in res["results"]] == ["delete"] * 5
        assert {w["verb"] for w in sandbox.writes_since(mark, UA)} == {"delete"}
        mark = sandbox.audit_mark()
        _, out = run(sandbox, drifted[::-1], state="absent", namespace=ns)
        assert task(out)["changed"] is False  # gone, or the namespace still terminating: no second delete
        assert sandbox.writes_since(mark, UA) == []
    finally:
        run(sandbox, objs[::-1], state="absent", namespace=ns, check=False)


def test_bad_input_fails_clearly_before_any_write(sandbox, uid):
    ns = f"it-objs-bad-{uid}"
    good = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    try:
        # problems found without a request: every one reported, with object and field
        mark = sandbox.audit_mark()
        bad = [
            good,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": ns}},
            {"kind": "ConfigMap", "metadata": {"name": "x", "namespace": ns}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y", "namespace": ns, "labels": {"a": 1}}},
        ]
        rc, out = run(sandbox, bad, check=False)
        res = task(out)
        assert rc != 0 and res["failed"]
        assert "Traceback" not in res["msg"] and "nothing was applied" in res["msg"]
        assert "definitions[1] (ConfigMap): metadata.name: Required value" in res["msg"]
        assert f"definitions[2] (ConfigMap {ns}/x): apiVersion: Required value" in res["msg"]
        assert f'definitions[3] (ConfigMap {ns}/y): metadata.labels.a: Invalid value: "number"' in res["msg"]
        assert [e["index"] for e in res["errors"]] == [1, 2, 3]
        assert res["requests"]["total"] == 0

        # problems only the cluster can tell: unknown kind, unserved API, namespace missing
        bad = [
            good,
            {"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}},
            {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "z"}},
        ]
        rc, out = run(sandbox, bad, check=False)
        res = task(out)
        assert rc != 0 and "Traceback" not in res["msg"]
        assert 'definitions[1] (Widget w): kind: Invalid value: "Widget": no such kind in v1' in res["msg"]
        assert 'definitions[2] (Gadget g): apiVersion: Invalid value: "example.com/v1": not served' in res["msg"]
        assert "definitions[3] (ConfigMap z): metadata.namespace: Required value: ConfigMap is namespaced" in res["msg"]
        assert res["requests"]["writes"] == 0
        assert sandbox.writes_since(mark, UA) == [], "nothing may be written when any definition is bad"
        assert sandbox.kubectl("get", "namespace", ns, check=False).returncode != 0

        # a kind of the built-in table whose CRD is not installed: error for present, nothing to do for absent
        missing = {"apiVersion": "kyverno.io/v1", "kind": "Policy", "metadata": {"name": "p", "namespace": ns}}
        if sandbox.kubectl("get", "--raw", "/apis/kyverno.io/v1", check=False).stdout.find('"Policy"') < 0:
            rc, out = run(sandbox, [good, missing], check=False)
            assert rc != 0 and "kyverno.io/v1 Policy is not served by the cluster" in task(out)["msg"]
            assert sandbox.writes_since(mark, UA) == []
            _, out = run(sandbox, [missing], state="absent")
            assert task(out)["results"][0]["action"] == "unchanged"
    finally:
        run(sandbox, [good], state="absent", check=False)


def test_server_rejection_names_the_object(sandbox, uid):
    """A definition the apiserver refuses (unknown field, strict validation) fails the task naming it; the
    objects before it in the list were written, the ones after it not attempted."""
    ns = f"it-objs-rej-{uid}"
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": ns}, "dat": {"a": "b"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d", "namespace": ns}, "data": {"a": "b"}},
    ]
    try:
        rc, out = run(sandbox, objs, check=False)
        res = task(out)
        assert rc != 0 and "Traceback" not in res["msg"]
        assert res["msg"].startswith(f"Kubernetes API error: ConfigMap/{ns}/c: ")
        assert "dat" in res["msg"]
        assert [(r["action"], r.get("error")) for r in res["results"]] == [
            ("create", None),
            ("create", "failed"),
            ("create", "not attempted"),
        ]
        assert sandbox.kubectl("get", "configmap", "-n", ns, "d", check=False).returncode != 0
        assert sandbox.kubectl("get", "namespace", ns, check=False).returncode == 0
    finally:
        run(sandbox, objs[:1], state="absent", check=False)
