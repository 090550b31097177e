"""The direct HTTPS transport against the real sandbox apiserver, side by side with the official client.

The modules use the direct transport for the sandbox's client-certificate kubeconfig (and for AWX's
K8S_AUTH_HOST + K8S_AUTH_API_KEY, see test_awx_credentials.py); KARPENTER_EKS_KUBE_TRANSPORT=kubernetes forces
kubernetes.client. Both must read the same objects with the same requests and map errors the same way.
"""

import json
import sys

import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import transport


@pytest.fixture
def both(sandbox, monkeypatch):
    params = {"kubeconfig": sandbox.env["KUBECONFIG"]}
    fast = kclient.connect(params)
    monkeypatch.setenv(transport.FORCE_ENV, "kubernetes")
    slow = kclient.connect(params)
    assert (fast.transport_name, slow.transport_name) == ("direct", "kubernetes")
    return fast, slow


def test_same_answers_and_requests(both):
    fast, slow = both
    for api in both:
        assert api.get("/version")["major"] == "1"
    paths = [
        "/api/v1/namespaces",
        "/apis/karpenter.sh/v1/nodepools",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    ]
    for path in paths:
        a, b = fast.list(path), slow.list(path)
        assert sorted(i["metadata"]["uid"] for i in a["items"]) == sorted(i["metadata"]["uid"] for i in b["items"])
    assert fast.request_summary() == slow.request_summary()


def test_errors_carry_the_apiserver_message_and_status(both):
    for api in both:
        with pytest.raises(kclient.KubeError) as exc:
            api.get("/api/v1/namespaces/does-not-exist-ns")
        assert exc.value.status == 404
        assert 'namespaces "does-not-exist-ns" not found (HTTP 404)' in str(exc.value)
        assert api.counts["get"] == 1  # a 404 is not retried


def test_apply_watch_and_delete_over_the_direct_transport(both, uid):
    fast = both[0]
    ns, name = "default", f"transport-{uid}"
    path = f"/api/v1/namespaces/{ns}/configmaps"
    rv = fast.list(path)["metadata"]["resourceVersion"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}}
    out = fast.apply(f"{path}/{name}", cm, "transport-test")
    assert out["data"] == {"k": "v"}
    seen = fast.watch_until(path, lambda t, o: t == "ADDED" and o["metadata"]["name"] == name, rv, timeout=20)
    assert seen is True
    fast.delete(f"{path}/{name}")
    with pytest.raises(kclient.KubeError) as exc:
        fast.get(f"{path}/{name}")
    assert exc.value.status == 404
    # the connection used by the watch was dropped; the next request opened a new one and succeeded
    assert fast.counts == {"list": 1, "patch": 1, "watch": 1, "delete": 1, "get": 1}


def test_a_wrong_ca_is_a_clear_error_and_is_not_retried(sandbox, tmp_path):
    doc = yaml.safe_load(open(sandbox.env["KUBECONFIG"]))
    other_ca = tmp_path / "other-ca.crt"
    # any valid CA that did not sign the apiserver's certificate: the client certificate itself
    user = doc["users"][0]["user"]
    if "client-certificate-data" in user:
        import base64

        other_ca.write_bytes(base64.b64decode(user["client-certificate-data"]))
    else:
        other_ca.write_text(open(user["client-certificate"]).read())
    cluster = doc["clusters"][0]["cluster"]
    cluster.pop("certificate-authority-data", None)
    cluster["certificate-authority"] = str(other_ca)
    if "client-certificate" in user and not user["client-certificate"].startswith("/"):
        pytest.skip("relative paths in the sandbox kubeconfig")
    bad = tmp_path / "kubeconfig"
    bad.write_text(json.dumps(doc))
    api = kclient.connect({"kubeconfig": str(bad)}, retries=3)
    assert api.transport_name == "direct"
    with pytest.raises(kclient.KubeError) as exc:
        api.get("/version")
    assert "TLS error" in str(exc.value) and "CERTIFICATE_VERIFY_FAILED" in str(exc.value)
    assert api.counts == {"get": 1}


@pytest.fixture
def eks_params(sandbox):
    """The sandbox's EKS kubeconfig; its in-process token needs no AWS CLI (tests running the CLI skip without it)."""
    return {"kubeconfig": sandbox.env["SANDBOX_EKS_KUBECONFIG"]}


def needs_aws_cli():
    import shutil

    if not shutil.which("aws"):
        pytest.skip("the AWS CLI is not installed: this test runs `aws eks get-token`")


@pytest.mark.parametrize("source", ["native", "exec"])
def test_eks_kubeconfig_authenticates_once_per_run_over_the_direct_transport(eks_params, sandbox, monkeypatch, source):
    """The kubeconfig `aws eks update-kubeconfig` writes: one token per run - made in-process (default) or by
    running `aws eks get-token` (KARPENTER_EKS_TOKEN_SOURCE=exec) - that the apiserver (via the sandbox's EKS
    token authenticator) maps to the caller's ARN; the answers equal the official client's."""
    if source == "exec":
        needs_aws_cli()
    monkeypatch.setenv("KARPENTER_EKS_TOKEN_SOURCE", source)
    api = kclient.connect(eks_params)
    plugin = api.direct.config.plugin
    assert api.transport_name == "direct" and (plugin.runs, plugin.source) == (1, source)
    review = api.call(
        "create",
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    user = review["status"]["userInfo"]
    assert user["username"] == "arn:aws:sts::123456789012:user/moto" and "system:masters" in user["groups"]
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    monkeypatch.setenv(transport.FORCE_ENV, "kubernetes")
    official = kclient.connect({"kubeconfig": sandbox.env["KUBECONFIG"]})
    ours, theirs = api.list(path), official.list(path)
    assert sorted(i["metadata"]["uid"] for i in ours["items"]) == sorted(i["metadata"]["uid"] for i in theirs["items"])
    assert plugin.runs == 1  # one token for every request of the run


def test_a_rejected_token_is_fetched_again_once_by_the_cli(eks_params):
    """A token the cluster refuses (401: expired, revoked) makes the transport ask `aws eks get-token` itself and
    repeat the request once."""
    needs_aws_cli()
    api = kclient.connect(eks_params)
    plugin = api.direct.config.plugin
    assert plugin.source == "native"
    plugin._cred = {"token": "k8s-aws-v1.bm90LWEtdXJs"}  # what the apiserver refuses, as an expired token
    assert api.get("/version")["major"] == "1"
    assert (plugin.runs, plugin.source) == (2, "exec") and api.counts["get"] == 1


def test_a_failing_plugin_is_a_clear_module_error(sandbox, tmp_path):
    """The EKS kubeconfig with AWS credentials that STS refuses: the module fails naming the plugin, no traceback."""
    doc = yaml.safe_load(open(sandbox.env["SANDBOX_EKS_KUBECONFIG"]))
    doc["users"][0]["user"]["exec"]["command"] = str(tmp_path / "missing-aws")
    doc["users"][0]["user"]["exec"]["installHint"] = "install the AWS CLI v2"
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(transport.CredentialError, match="not found: install the AWS CLI v2"):
        kclient.connect({"kubeconfig": str(path)})


def test_a_module_run_on_the_eks_kubeconfig_writes_as_the_aws_caller(sandbox, uid, tmp_path):
    """A real module run (k8s_objects) with the kubeconfig `aws eks update-kubeconfig` writes: the apiserver's audit
    log shows the write made by the AWS caller's identity (EKS token), and a second run writes nothing."""
    name = f"eks-auth-{uid}"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "apply",
                    "karpenter_eks.platform.k8s_objects": {
                        "kubeconfig": sandbox.env["SANDBOX_EKS_KUBECONFIG"],
                        "definitions": [
                            {
                                "apiVersion": "v1",
                                "kind": "ConfigMap",
                                "metadata": {"name": name, "namespace": "default"},
                                "data": {"k": "v"},
                            }
                        ],
                    },
                }
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    args = ["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable]
    try:
        mark = sandbox.audit_mark()
        rc, out = sandbox.playbook(str(path), *args)
        writes = [
            e for e in sandbox.writes_since(mark, "karpenter-eks-platform/") if e["objectRef"].get("name") == name
        ]
        assert rc == 0 and writes, json.dumps(out)[-2000:]
        assert {e["user"]["username"] for e in writes} == {"arn:aws:sts::123456789012:user/moto"}
        mark = sandbox.audit_mark()
        rc, out = sandbox.playbook(str(path), *args)
        assert rc == 0 and not out["stats"]["localhost"]["changed"]
        assert [
            e for e in sandbox.writes_since(mark, "karpenter-eks-platform/") if e["objectRef"].get("name") == name
        ] == []
    finally:
        sandbox.kubectl("delete", "configmap", name, "-n", "default", "--ignore-not-found", check=False)
