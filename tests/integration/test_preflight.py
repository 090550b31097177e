"""The preflight play of ``playbooks/site.yml`` (roles/preflight): read-only, first, failing early with what to set.

* On the sandbox inventory it passes with changed=0 and sends no write - to the apiserver (audit log, attributed to a
  user minted for the test) nor to moto (snapshot before/after) - in a real run and in ``--check``.
* Subnet filters that match nothing (the issue: ``--check`` used to pass with ``cluster_discovery_subnet_ids: []``)
  fail in ``--check`` and in a real run, in the preflight play, before any other play, naming the variables.
* A kubeconfig that does not exist fails before any Kubernetes call, naming the variables.
"""

import os

import pytest
from test_site_check_mode import INVENTORY, SITE, check_identity, moto_snapshot, writes_by

pytestmark = pytest.mark.sandbox

CLUSTER = "sandbox"
PREFLIGHT_PLAY = "Preflight"


def plays(out):
    return [p["play"]["name"] for p in out["plays"]]


def task_name(task):
    """The task's own name (the JSON callback prefixes tasks of roles with '<role> : ')."""
    return task["task"]["name"].split(" : ", 1)[-1]


def failed_tasks(out):
    return [
        (play["play"]["name"], task_name(t), t["hosts"][CLUSTER].get("msg", ""))
        for play in out["plays"]
        for t in play["tasks"]
        if t["hosts"].get(CLUSTER, {}).get("failed")
    ]


def preflight_tasks(out):
    (play,) = [p for p in out["plays"] if p["play"]["name"].startswith(PREFLIGHT_PLAY)]
    return {task_name(t): t["hosts"][CLUSTER] for t in play["tasks"]}


@pytest.fixture
def identity(sandbox, tmp_path, monkeypatch, uid):
    user = f"preflight-{uid}"
    kubeconfig = check_identity(sandbox.env, tmp_path, user)
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", kubeconfig)
    return user, kubeconfig


@pytest.mark.parametrize("mode", [[], ["--check", "--diff"]], ids=["run", "check"])
def test_preflight_passes_on_the_sandbox_and_writes_nothing(sandbox, identity, mode):
    user, _ = identity
    before = moto_snapshot(sandbox.env)
    mark = sandbox.audit_mark()

    _, out = sandbox.playbook(SITE, "-i", INVENTORY, "--tags", "preflight", *mode)

    stats = out["stats"][CLUSTER]
    assert stats["failures"] == 0 and stats["changed"] == 0, failed_tasks(out)
    tasks = preflight_tasks(out)
    # the checks really ran (also in --check): identity, cluster, Kubernetes read, helm and the chart
    assert "123456789012" in tasks["Report the AWS side"]["msg"]
    assert f"EKS cluster {CLUSTER} ACTIVE" in tasks["Report the AWS side"]["msg"]
    assert tasks["Read one Namespace"]["resources"][0]["metadata"]["name"] == "kube-system"
    assert tasks["Run helm version"]["rc"] == 0 and tasks["Run helm version"]["stdout"].startswith("v3")
    assert tasks["Find the local chart"]["stat"]["exists"]
    assert writes_by(sandbox, mark, user) == [], "the preflight sent write requests to the apiserver"
    assert moto_snapshot(sandbox.env) == before, "the preflight changed moto's state"


def test_preflight_adopting_the_tagged_subnets_passes(sandbox, identity):
    """The dev/staging/prod shape (adopt existing subnets/security groups by filter) on the sandbox's VPC."""
    tag = {"tag:karpenter.sh/discovery": CLUSTER}
    extra = {"cluster_vpc_create": False, "cluster_subnet_filters": tag, "cluster_security_group_filters": tag}

    _, out = sandbox.playbook(SITE, "-i", INVENTORY, "--tags", "preflight", "--check", extra_vars=extra)

    tasks = preflight_tasks(out)
    assert len(tasks["Look the subnets up"]["subnets"]) == 3
    assert tasks["Look the security groups up"]["security_groups"]
    assert out["stats"][CLUSTER]["changed"] == 0


@pytest.mark.parametrize("mode", [["--check"], []], ids=["check", "run"])
def test_no_matching_subnet_fails_before_any_other_play(sandbox, identity, mode):
    user, _ = identity
    extra = {
        "cluster_vpc_create": False,
        "cluster_subnet_filters": {"tag:karpenter.sh/discovery": "no-such-cluster"},
        "cluster_security_group_filters": {"tag:karpenter.sh/discovery": CLUSTER},
    }
    before = moto_snapshot(sandbox.env)
    mark = sandbox.audit_mark()

    rc, out = sandbox.playbook(SITE, "-i", INVENTORY, *mode, extra_vars=extra, check=False)

    assert rc != 0
    ((play, task, msg),) = failed_tasks(out)
    assert play.startswith(PREFLIGHT_PLAY) and task == "Check the subnets and security groups"
    assert plays(out) == [play], "a play ran after the failed preflight"
    assert "Subnets found: []" in msg and "no-such-cluster" in msg
    for name in ("cluster_subnet_filters", "cluster_subnet_ids", "cluster_vpc_create"):
        assert name in msg, (name, msg)
    assert writes_by(sandbox, mark, user) == []
    assert moto_snapshot(sandbox.env) == before


@pytest.mark.parametrize("mode", [["--check"], []], ids=["check", "run"])
def test_missing_kubeconfig_fails_naming_the_variables(sandbox, identity, tmp_path, mode):
    user, _ = identity
    missing = str(tmp_path / "no-such.kubeconfig")
    mark = sandbox.audit_mark()

    rc, out = sandbox.playbook(
        SITE, "-i", INVENTORY, *mode, extra_vars={"karpenter_eks_kubeconfig": missing}, check=False
    )

    assert rc != 0
    ((play, task, msg),) = failed_tasks(out)
    assert play.startswith(PREFLIGHT_PLAY) and task == "Check the kubeconfig file", (task, msg)
    assert missing in msg
    for name in ("karpenter_eks_kubeconfig", "karpenter_eks_kube_context", "K8S_AUTH_KUBECONFIG"):
        assert name in msg, (name, msg)
    # detected before any Kubernetes call
    assert "Read one Namespace" not in preflight_tasks(out)
    assert plays(out) == [play]
    assert writes_by(sandbox, mark, user) == []
    assert not os.path.exists(missing)


def test_preflight_can_be_skipped(sandbox, identity):
    _, out = sandbox.playbook(
        SITE, "-i", INVENTORY, "--tags", "preflight", "--check", extra_vars={"karpenter_eks_preflight": False}
    )
    tasks = preflight_tasks(out)
    assert "Read the AWS identity" in tasks
    assert all(h.get("skipped") for h in tasks.values()), tasks
