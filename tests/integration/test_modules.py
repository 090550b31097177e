"""The modules through ansible-playbook against the real apiserver, with its audit log as the witness.

The sandbox's apiserver records every write request (sandbox/sandbox.py audit policy), so "sends no
write request" is checked at the server, not by trusting the module's own counters.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
PLAY = os.path.join(HERE, "playbooks", "karpenter_objects.yml")
UA = "karpenter-eks-platform/"


def task_results(out, name):
    for play in out["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == name:
                return task["hosts"]["localhost"]
    raise KeyError(name)


def stats(out):
    return out["stats"]["localhost"]


def test_apply_idempotent_check_and_diff_without_writes(sandbox, uid):
    ev = {"suffix": uid, "pools": ["a", "b", "c"]}
    try:
        _, out = sandbox.playbook(PLAY, extra_vars=ev)
        assert stats(out)["changed"] == 2
        pools = task_results(out, "NodePools")
        assert [r["action"] for r in pools["results"]] == ["create"] * 3
        assert pools["requests"]["writes"] == 3

        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(PLAY, extra_vars=ev)
        assert stats(out)["changed"] == 0
        assert task_results(out, "NodePools")["requests"]["writes"] == 0
        assert sandbox.writes_since(mark, UA) == [], "a no-op run must send no write request"

        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(PLAY, "--check", "--diff", extra_vars=dict(ev, cpu_limit="250", team="blue"))
        assert stats(out)["changed"] == 2
        assert sandbox.writes_since(mark, UA) == [], "check mode must send no write request"
        diff = task_results(out, "NodePools")["diff"]
        assert {d["after"]["spec"]["limits"]["cpu"] for d in diff} == {"250"}
        assert {d["before"]["spec"]["limits"]["cpu"] for d in diff} == {"100"}
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", f"it-{uid}-a")
        assert live["spec"]["limits"]["cpu"] == "100"

        # the real run changes exactly what the check run showed
        _, real = sandbox.playbook(PLAY, "--diff", extra_vars=dict(ev, cpu_limit="250", team="blue"))
        assert task_results(real, "NodePools")["diff"] == diff
        assert task_results(real, "EC2NodeClasses")["diff"] == task_results(out, "EC2NodeClasses")["diff"]
    finally:
        sandbox.playbook(PLAY, extra_vars=dict(ev, state="absent"), check=False)


def test_bad_input_fails_clearly_and_writes_nothing(sandbox, uid):
    mark = sandbox.audit_mark()
    rc, out = sandbox.playbook(PLAY, extra_vars={"suffix": uid, "pools": ["a", "b"], "bad": True}, check=False)
    assert rc != 0
    res = task_results(out, "NodePools")
    assert res["failed"] and "Traceback" not in res["msg"]
    assert "nothing was applied" in res["msg"]
    assert f"NodePool/it-{uid}-a: spec.template.spec.requirements[0].values[1]" in res["msg"]
    assert any(e["rule"] for e in res["errors"])
    # the EC2NodeClass task before it did write; the NodePool task wrote nothing at all
    np_writes = [e for e in sandbox.writes_since(mark, UA) if e["objectRef"]["resource"] == "nodepools"]
    assert np_writes == []
    sandbox.playbook(PLAY, extra_vars={"suffix": uid, "state": "absent"}, check=False)
