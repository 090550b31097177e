"""The apply engine against the real apiserver: request counts, exact check mode, atomic batches.

These call plugins/module_utils/apply/karpenter.py's run() with a real KubeApi (the same code path the
modules take), so the request accounting and the check-mode prediction are checked against what
the apiserver actually stores.
"""

import copy

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.apply import karpenter as karpenter_apply
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import resource

KWOK_REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"}  # the sandbox's Ready node class


def api_for(sandbox):
    from kubernetes import config
    from kubernetes.client import Configuration

    cfg = Configuration()
    config.load_kube_config(config_file=sandbox.env["KUBECONFIG"], client_configuration=cfg)
    return kclient.KubeApi(cfg)


def pool(name, **spec):
    base = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": dict(KWOK_REF),
                    "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}],
                }
            },
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
            "limits": {"cpu": "100"},
            "weight": 10,
        },
    }
    base["spec"].update(spec)
    return base


@pytest.fixture
def names(sandbox, uid):
    made = [f"eng-{uid}-{i}" for i in range(3)]
    yield made
    for n in made:
        sandbox.kubectl("delete", "nodepool", n, "--ignore-not-found", "--wait=false")


def test_create_then_noop_sends_no_write(sandbox, names):
    api = api_for(sandbox)
    res = karpenter_apply.run(api, resource.NODEPOOL, [pool(n) for n in names], wait=True, wait_timeout=60)
    assert res["changed"] and [r["action"] for r in res["results"]] == ["create"] * 3
    assert res["requests"]["patch"] == 3 and res["requests"]["writes"] == 3
    assert res["not_ready"] == []

    api2 = api_for(sandbox)
    res2 = karpenter_apply.run(api2, resource.NODEPOOL, [pool(n) for n in names], wait=True)
    assert not res2["changed"]
    assert res2["requests"]["writes"] == 0
    # a no-op is exactly one LIST of NodePools (node classes are listed only when a pool will be written)
    assert res2["requests"] == {"list": 1, "total": 1, "writes": 0}


def test_check_mode_predicts_exactly_what_the_real_run_stores(sandbox, names):
    api = api_for(sandbox)
    karpenter_apply.run(api, resource.NODEPOOL, [pool(names[0])])
    changed = pool(names[0], limits={"cpu": "200", "memory": "800Gi"})
    del changed["spec"]["weight"]  # a field we owned and now drop: SSA removes it
    changed["spec"]["template"]["spec"]["taints"] = [{"key": "example.com/t", "value": "x", "effect": "NoSchedule"}]

    check_api = api_for(sandbox)
    predicted = karpenter_apply.run(check_api, resource.NODEPOOL, [copy.deepcopy(changed)], check_mode=True)
    assert predicted["changed"] and check_api.writes == 0
    assert predicted["results"][0]["removed_fields"] == ["spec.weight"]

    real = karpenter_apply.run(api_for(sandbox), resource.NODEPOOL, [changed])
    assert real["changed"]
    assert predicted["diff"][0]["after"] == real["diff"][0]["after"]
    assert "weight" not in real["diff"][0]["after"]["spec"]
    assert predicted["diff"][0]["before"] == real["diff"][0]["before"]


def test_a_field_another_manager_co_owns_is_kept_and_check_mode_says_so(sandbox, names):
    """Server-side apply keeps a field we stop sending while another field manager owns it too: the plan must
    not show its removal (it will not happen), and --check --diff must predict what the real run stores."""
    import json

    api = api_for(sandbox)
    karpenter_apply.run(api, resource.NODEPOOL, [pool(names[0])])  # we own spec.weight = 10
    other = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": names[0]},
        "spec": {"weight": 10},
    }
    sandbox.kubectl(
        "apply", "--server-side", "--field-manager=team-gitops", "-f", "-", input=json.dumps(other)
    )  # a second manager applies the same field with the same value: co-owned
    dropped = pool(names[0])
    del dropped["spec"]["weight"]

    check_api = api_for(sandbox)
    predicted = karpenter_apply.run(check_api, resource.NODEPOOL, [copy.deepcopy(dropped)], check_mode=True)
    assert check_api.writes == 0
    assert "removed_fields" not in predicted["results"][0], predicted["results"][0]

    real_api = api_for(sandbox)
    real = karpenter_apply.run(real_api, resource.NODEPOOL, [dropped])
    stored = json.loads(sandbox.kubectl("get", "nodepool", names[0], "-o", "json").stdout)
    assert stored["spec"]["weight"] == 10  # the apiserver kept it
    assert predicted["changed"] == real["changed"]
    if real["changed"]:  # our field set shrinks (a managedFields-only change): the prediction is the stored object
        assert predicted["diff"][0]["after"] == real["diff"][0]["after"]
    assert predicted["results"][0]["action"] == real["results"][0]["action"]
    # the next run is a no-op
    again = karpenter_apply.run(api_for(sandbox), resource.NODEPOOL, [dropped])
    assert again["changed"] is False and again["requests"]["writes"] == 0


def test_a_definitions_list_from_from_yaml_all_with_a_trailing_separator_is_applied(sandbox, names):
    """``lookup('file', f) | from_yaml_all`` of a file ending in ``---`` gives ``[[obj, None]]``: the None of the
    empty last document is skipped, as k8s_objects does."""
    res = karpenter_apply.run(api_for(sandbox), resource.NODEPOOL, [[pool(names[2]), None]], check_mode=True)
    assert [r["action"] for r in res["results"]] == ["create"]


DENY_LABEL = "example.com/deny-by-policy"


@pytest.fixture
def deny_policy(sandbox, uid):
    """A ValidatingAdmissionPolicy (as Kyverno or Gatekeeper would add) refusing NodePools with DENY_LABEL: a rule
    the offline validator cannot know."""
    import json
    import time

    name = f"deny-{uid}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["karpenter.sh"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["nodepools"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"!has(object.metadata.labels) || !('{DENY_LABEL}' in object.metadata.labels)",
                    "message": "NodePools labelled for denial are refused by policy",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    sandbox.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]})
    )
    probe = pool(f"probe-{uid}")
    probe["metadata"]["labels"] = {DENY_LABEL: "x"}
    deadline = time.monotonic() + 30
    while True:  # the policy takes effect within a few seconds: wait until a dry-run is refused
        got = sandbox.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False)
        if got.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    yield
    sandbox.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, "--ignore-not-found")


def test_a_batch_the_cluster_refuses_in_part_writes_nothing(sandbox, names, deny_policy):
    """[good, refused, good]: the offline checks pass all three, the apiserver's policy refuses the second. The
    server-side dry-run of the batch stops it before the first write (before, two NodePools were created)."""
    refused = pool(names[1])
    refused["metadata"]["labels"] = {DENY_LABEL: "yes"}
    api = api_for(sandbox)
    with pytest.raises(karpenter_apply.InputError) as err:
        karpenter_apply.run(api, resource.NODEPOOL, [pool(names[0]), refused, pool(names[2])])
    assert "rejected by the apiserver (server-side dry-run), nothing was applied" in str(err.value)
    assert f"NodePool/{names[1]}" in str(err.value) and "refused by policy" in str(err.value)
    assert [d["object"] for d in err.value.details] == [f"NodePool/{names[1]}"]
    assert api.writes == 0 and api.request_summary()["dry-run"] == 3
    for n in (names[0], names[2]):
        assert sandbox.kubectl("get", "nodepool", n, check=False).returncode != 0, "nothing of the batch is written"
    # without the refused object the same batch goes through (one dry-run per object, then the writes)
    api = api_for(sandbox)
    res = karpenter_apply.run(api, resource.NODEPOOL, [pool(names[0]), pool(names[2])])
    assert res["written"] == [f"NodePool/{names[0]}", f"NodePool/{names[2]}"]
    assert res["requests"]["dry-run"] == 2 and res["requests"]["patch"] == 2


def test_invalid_batch_writes_nothing(sandbox, names):
    api = api_for(sandbox)
    bad = pool(names[1], weight=0)
    with pytest.raises(karpenter_apply.InputError) as err:
        karpenter_apply.run(api, resource.NODEPOOL, [pool(names[0]), bad])
    assert f"NodePool/{names[1]}" in str(err.value) and "spec.weight" in str(err.value)
    assert api.writes == 0
    got = sandbox.kubectl("get", "nodepool", names[0], check=False)
    assert got.returncode != 0, "the valid object of an invalid batch must not be applied"


def test_prune_and_absent(sandbox, names):
    api = api_for(sandbox)
    karpenter_apply.run(api, resource.NODEPOOL, [pool(n) for n in names])
    res = karpenter_apply.run(api_for(sandbox), resource.NODEPOOL, [pool(names[0])], prune=True)
    actions = {r["name"]: r["action"] for r in res["results"]}
    assert actions[names[0]] == "unchanged"
    assert actions[names[1]] == "delete" and actions[names[2]] == "delete"
    gone = karpenter_apply.run(api_for(sandbox), resource.NODEPOOL, [{"metadata": {"name": names[0]}}], state="absent")
    assert gone["results"][0]["action"] == "delete"
    again = karpenter_apply.run(api_for(sandbox), resource.NODEPOOL, [{"metadata": {"name": names[0]}}], state="absent")
    assert not again["changed"] and again["requests"]["writes"] == 0


def test_legacy_provisioner_is_converted_and_applied(sandbox, uid):
    name = f"legacy-{uid}"
    prov = {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": name},
        "spec": {
            "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
            "limits": {"resources": {"cpu": "50"}},
            "ttlSecondsAfterEmpty": 30,
            "providerRef": {"name": "default"},
        },
    }
    try:
        res = karpenter_apply.run(api_for(sandbox), resource.NODEPOOL, [prov], node_class_ref=KWOK_REF)
        assert res["results"][0]["action"] == "create"
        live = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", name)
        assert live["spec"]["limits"] == {"cpu": "50"}
        assert live["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
        assert live["spec"]["disruption"]["consolidateAfter"] == "30s"
    finally:
        sandbox.kubectl("delete", "nodepool", name, "--ignore-not-found", "--wait=false")


def test_delete_of_a_pool_with_nodes_needs_allow_disruption(sandbox, uid):
    name, app = f"dis-{uid}", f"dis-{uid}"
    p = pool(name)
    p["spec"]["template"]["metadata"] = {"labels": {"example.com/pool": name}}
    karpenter_apply.run(api_for(sandbox), resource.NODEPOOL, [p])
    sandbox.apply(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": app, "namespace": "default"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": app}},
                    "template": {
                        "metadata": {"labels": {"app": app}},
                        "spec": {
                            "nodeSelector": {"example.com/pool": name},
                            "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "1"}}}],
                        },
                    },
                },
            }
        ]
    )
    try:
        sandbox.wait_until(
            "a node of the pool",
            lambda: sandbox.core.list_node(label_selector=f"karpenter.sh/nodepool={name}").items,
            60,
        )
        api = api_for(sandbox)
        with pytest.raises(karpenter_apply.InputError) as err:
            karpenter_apply.run(api, resource.NODEPOOL, [{"metadata": {"name": name}}], state="absent", check_mode=True)
        assert f"NodePool/{name} owns" in str(err.value) and "allow_disruption" in str(err.value)
        assert api.writes == 0
        res = karpenter_apply.run(
            api_for(sandbox), resource.NODEPOOL, [{"metadata": {"name": name}}], state="absent", allow_disruption=True
        )
        assert res["results"][0]["action"] == "delete" and res["disrupted_nodeclaims"][name]
    finally:
        sandbox.kubectl("delete", "deployment", app, "-n", "default", "--ignore-not-found", "--wait=false")
        sandbox.kubectl("delete", "nodepool", name, "--ignore-not-found", "--wait=false")
