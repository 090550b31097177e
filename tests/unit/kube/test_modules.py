"""The module layer (glue/kube_module.py): a module's main() run as Ansible runs it, its JSON
output read back. The API below it is a real KubeApi over a scripted connection (kubefakes)."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import transport
from ansible_collections.karpenter_eks.platform.plugins.modules import (
    k8s_objects,
    karpenter_backup,
    karpenter_cost_report,
    karpenter_diagnose,
    karpenter_info,
    karpenter_provisioner,
    node_template,
)
from kubefakes import Stream, direct_api, incomplete_read


def run_main(module, args, capsys):
    """(rc, parsed JSON output) of module.main() with ``args``."""
    with patch_module_args(args), pytest.raises(SystemExit) as exit_:
        module.main()
    return exit_.value.code, json.loads(capsys.readouterr().out)


def nodepool_list(*names):
    items = [
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": n, "resourceVersion": "9", "labels": {"app.kubernetes.io/managed-by": "x"}},
            "spec": {},
        }
        for n in names
    ]
    return (200, json.dumps({"metadata": {"resourceVersion": "10"}, "items": items}).encode())


def test_a_wait_that_breaks_after_the_delete_fails_with_changed_and_what_was_written(monkeypatch, capsys):
    script = [nodepool_list("a"), (200, b'{"items": []}'), (200, b"{}")] + [Stream(error=incomplete_read())] * 50
    api, conn, _unused = direct_api(script)
    monkeypatch.setattr(kclient, "connect", lambda params, timeout=30, **kw: api)
    rc, out = run_main(
        karpenter_provisioner, {"name": "a", "state": "absent", "wait": True, "wait_timeout": 30}, capsys
    )
    assert rc == 1 and out["failed"] is True and out["changed"] is True
    assert "IncompleteRead" in out["msg"] and "broken and not re-established" in out["msg"]
    assert out["written"] == ["NodePool/a"] and out["results"][0]["action"] == "delete"
    assert out["requests"]["delete"] == 1 and "diff" not in out


# ------------------------------------------------------------------------------------ kubeconfig secrets
TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-bearer-token"
KEY_DATA = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCnNlY3JldC1rZXk="
PASSWORD = "basic-auth-pa55word"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REFRESH = "oidc-refresh-token-value"
SECRETS = (TOKEN, KEY_DATA, PASSWORD, AWS_SECRET, REFRESH)
KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "a",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1", "certificate-authority-data": "Q0E="}}],
    "contexts": [{"name": "a", "context": {"cluster": "c", "user": "token"}}],
    "users": [
        {"name": "token", "user": {"token": TOKEN}},
        {"name": "cert", "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": KEY_DATA}},
        {"name": "basic", "user": {"username": "admin", "password": PASSWORD}},
        {"name": "oidc", "user": {"auth-provider": {"name": "oidc", "config": {"refresh-token": REFRESH}}}},
        {
            "name": "eks",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "aws",
                    "args": ["eks", "get-token", "--cluster-name", "prod"],
                    "env": [
                        {"name": "AWS_PROFILE", "value": "prod"},
                        {"name": "AWS_SECRET_ACCESS_KEY", "value": AWS_SECRET},
                    ],
                }
            },
        },
    ],
}


def test_kubeconfig_secrets_are_the_credentials_only():
    assert transport.kubeconfig_secrets(KUBECONFIG) == set(SECRETS)
    assert transport.kubeconfig_secrets("/home/me/.kube/config") == set()
    assert transport.kubeconfig_secrets(None) == set()


def empty_cluster():
    """A KubeApi whose every LIST finds nothing (enough for a no-op or a check-mode run)."""
    api, conn, _unused = direct_api([(200, b'{"metadata": {"resourceVersion": "1"}, "items": []}')] * 10)
    return api


@pytest.mark.parametrize(
    "module, args",
    [
        (k8s_objects, {"definitions": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}]}),
        (karpenter_provisioner, {"name": "a", "state": "absent"}),
        (node_template, {"name": "x", "state": "absent"}),
        (karpenter_info, {}),
    ],
    ids=["k8s_objects", "karpenter_provisioner", "node_template", "karpenter_info"],
)
@pytest.mark.parametrize("outcome", ["success", "argument-error"])
def test_a_dict_kubeconfig_leaves_no_secret_in_the_output(module, args, outcome, monkeypatch, capsys):
    monkeypatch.setattr(kclient, "connect", lambda params, timeout=30, **kw: empty_cluster())
    args = dict(args, kubeconfig=KUBECONFIG, _ansible_inject_invocation=True, _ansible_check_mode=True)
    if outcome == "argument-error":
        args["no_such_option"] = TOKEN  # the argument checks fail: their answer carries the parameters too
    rc, out = run_main(module, args, capsys)
    text = json.dumps(out)
    assert "invocation" in out and "kubeconfig" in out["invocation"]["module_args"]
    assert (rc == 0) == (outcome == "success"), out.get("msg")
    for secret in SECRETS:
        assert secret not in text
    assert "prod" in text  # a public exec env value (AWS_PROFILE) is not masked


@pytest.mark.parametrize(
    "module", [karpenter_diagnose, karpenter_cost_report, karpenter_backup], ids=lambda m: m.__name__.split(".")[-1]
)
def test_the_other_kubernetes_modules_mask_the_kubeconfig_too(module, capsys):
    args = {"kubeconfig": KUBECONFIG, "_ansible_inject_invocation": True, "no_such_option": 1}
    rc, out = run_main(module, args, capsys)
    assert rc == 1 and "kubeconfig" in out["invocation"]["module_args"]
    assert not [s for s in SECRETS if s in json.dumps(out)]


USER_DATA_SECRET = "Zx9/kQ2+wEr7tYu1iOp3aSd5fGh8jKl0mNb4vCx6"
USER_DATA = "#!/bin/bash\naws configure set aws_secret_access_key %s\n/etc/eks/bootstrap.sh\n" % USER_DATA_SECRET
CM_SECRET = "hunter2hunter2hunter2"


@pytest.mark.parametrize(
    "module, args",
    [
        (node_template, {"name": "x", "spec": {"role": "r", "userData": USER_DATA}}),
        (
            k8s_objects,
            {
                "definitions": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "c", "namespace": "karpenter"},
                        "data": {"db_password": CM_SECRET, "init.sh": "PGPASSWORD=%s psql" % USER_DATA_SECRET},
                    }
                ]
            },
        ),
    ],
    ids=["node_template-user-data", "k8s_objects-configmap"],
)
def test_credentials_in_parameters_are_masked(module, args, monkeypatch, capsys):
    monkeypatch.setattr(kclient, "connect", lambda params, timeout=30, **kw: empty_cluster())
    rc, out = run_main(module, dict(args, _ansible_inject_invocation=True, _ansible_check_mode=True), capsys)
    text = json.dumps(out)
    assert "invocation" in out and ("bootstrap.sh" in text or "PGPASSWORD=********" in text)
    assert USER_DATA_SECRET not in text and CM_SECRET not in text


def test_credentials_read_from_the_cluster_are_masked(monkeypatch, capsys):
    """karpenter_info returns the stored objects: a credential in an EC2NodeClass's user data is masked."""
    ncs = {
        "metadata": {"resourceVersion": "1"},
        "items": [
            {
                "apiVersion": "karpenter.k8s.aws/v1",
                "kind": "EC2NodeClass",
                "metadata": {"name": "default"},
                "spec": {"role": "r", "userData": USER_DATA},
            }
        ],
    }
    body = json.dumps(ncs).encode()
    monkeypatch.setattr(kclient, "connect", lambda params, timeout=30, **kw: direct_api([(200, body)] * 10)[0])
    rc, out = run_main(karpenter_info, {"kinds": ["EC2NodeClass"]}, capsys)
    text = json.dumps(out)
    assert rc == 0, out
    assert "aws configure set aws_secret_access_key ********" in text  # the object is there, its secret masked
    assert USER_DATA_SECRET not in text
