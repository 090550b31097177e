"""EKS authentication against the sandbox: `aws eks get-token` tokens, verified by sandbox/eks_authn.py.

The sandbox writes $SANDBOX_EKS_KUBECONFIG the way `aws eks update-kubeconfig` does (the user runs
`aws eks get-token --cluster-name sandbox`); with the sandbox env the token is a GetCallerIdentity URL presigned
for moto. The apiserver hands it to eks-authn (--authentication-token-webhook-config-file), which calls moto with
`x-k8s-aws-id: sandbox` and maps the caller ARN to a user in system:masters, as aws-iam-authenticator does for
EKS's cluster creator. Tokens pointing anywhere else, malformed ones and ones whose signature does not cover
x-k8s-aws-id are refused, and eks-authn makes no request for them (its GET /stats counts the calls it made).
"""

import base64
import json
import os
import secrets
import shutil
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest
import yaml

pytestmark = pytest.mark.sandbox

PREFIX = "k8s-aws-v1."


@pytest.fixture
def eks(sandbox):
    if not shutil.which("aws"):
        pytest.skip("the AWS CLI is not installed: the EKS kubeconfig runs `aws eks get-token`")
    return sandbox


def kubectl_eks(sandbox, *args):
    return subprocess.run(
        [sandbox.kubectl_bin, "--kubeconfig", sandbox.env["SANDBOX_EKS_KUBECONFIG"], *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def get_token(sandbox):
    """What the kubeconfig's exec plugin runs (with the sandbox env: presigned for moto)."""
    doc = yaml.safe_load(open(sandbox.env["SANDBOX_EKS_KUBECONFIG"]))
    exec_ = doc["users"][0]["user"]["exec"]
    out = subprocess.run([exec_["command"], *exec_["args"]], capture_output=True, text=True, check=True, timeout=60)
    cred = json.loads(out.stdout)
    assert cred["kind"] == "ExecCredential"
    return cred["status"]["token"]


def token_url(token):
    body = token[len(PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def make_token(url):
    return PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def rewrite(token, netloc=None, scheme=None, **params):
    """A token like ``token`` with another host and/or query parameters (None drops one) and a fresh signature
    (the apiserver caches reviews by token: every forged token must be new)."""
    u = urllib.parse.urlsplit(token_url(token))
    query = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    query["X-Amz-Signature"] = secrets.token_hex(32)
    for k, v in params.items():
        k = k.replace("_", "-")
        if v is None:
            query.pop(k, None)
        else:
            query[k] = v
    url = urllib.parse.urlunsplit(
        (
            scheme or u.scheme,
            netloc or u.netloc,
            u.path,
            urllib.parse.urlencode(query, quote_via=urllib.parse.quote),
            "",
        )
    )
    return make_token(url)


def apiserver_status(sandbox, token):
    """HTTP status of GET /api/v1/namespaces with ``Authorization: Bearer <token>`` (no client certificate)."""
    cluster = yaml.safe_load(open(sandbox.env["SANDBOX_EKS_KUBECONFIG"]))["clusters"][0]["cluster"]
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    req = urllib.request.Request(f"{cluster['server']}/api/v1/namespaces", headers={"Authorization": f"Bearer {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def stats(sandbox):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{sandbox.env['SANDBOX_EKS_AUTHN_URL']}/stats", timeout=10) as resp:
        return json.load(resp)


def webhook_log(sandbox):
    with open(os.path.join(sandbox.env["SANDBOX_STATE"], "logs", "eks-authn.log")) as f:
        return f.read()


def assert_refused_without_request(sandbox, token, reason):
    before, log_mark = stats(sandbox), len(webhook_log(sandbox))
    assert apiserver_status(sandbox, token) == 401
    after = stats(sandbox)
    assert after["sts_requests"] == before["sts_requests"], "eks-authn called STS for a token it must refuse"
    assert after["rejected"] > before["rejected"], "the apiserver did not ask eks-authn"
    log = webhook_log(sandbox)[log_mark:]
    assert reason in log
    assert token not in log and token.removeprefix(PREFIX) not in log, "eks-authn logged the token"


def test_the_eks_kubeconfig_is_what_update_kubeconfig_writes(eks):
    doc = yaml.safe_load(open(eks.env["SANDBOX_EKS_KUBECONFIG"]))
    admin = yaml.safe_load(open(eks.env["KUBECONFIG"]))
    assert doc["clusters"][0]["cluster"] == admin["clusters"][0]["cluster"]
    assert doc["users"][0]["user"] == {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["--region", "us-east-1", "eks", "get-token", "--cluster-name", "sandbox", "--output", "json"],
            "interactiveMode": "Never",
        }
    }
    url = urllib.parse.urlsplit(token_url(get_token(eks)))
    assert f"{url.scheme}://{url.netloc}" == eks.env["AWS_ENDPOINT_URL"]  # presigned for moto, not AWS


def test_whoami_is_the_moto_caller_in_system_masters(eks):
    sts = boto3.client("sts", endpoint_url=eks.env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    caller = sts.get_caller_identity()
    res = kubectl_eks(eks, "auth", "whoami", "-o", "json")
    assert res.returncode == 0, (
        f"{res.stderr}\n(a sandbox started before eks-authn existed needs `sandbox/sandbox.py down` and `up`)"
    )
    user = json.loads(res.stdout)["status"]["userInfo"]
    assert user["username"] == caller["Arn"]
    assert "system:masters" in user["groups"]
    assert user["uid"] == f"aws-iam-authenticator:{caller['Account']}:{caller['UserId']}"

    res = kubectl_eks(eks, "get", "ns", "-o", "name")
    assert res.returncode == 0, res.stderr
    assert "namespace/default" in res.stdout.split()
    assert stats(eks)["authenticated"] >= 1
    assert f"authenticated {caller['Arn']}" in webhook_log(eks)

    # client certificates still work beside it
    admin = json.loads(eks.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert admin["username"] == "sandbox-admin"


def test_a_token_for_another_host_is_refused_without_a_request(eks):
    token = rewrite(get_token(eks), scheme="https", netloc="sts.amazonaws.com")
    assert token_url(token).startswith("https://sts.amazonaws.com/?Action=GetCallerIdentity&")
    assert_refused_without_request(eks, token, "is not the STS endpoint")
    # the same host with other ports or user info is another host too
    port = urllib.parse.urlsplit(eks.env["AWS_ENDPOINT_URL"]).port
    for netloc in (f"127.0.0.1:{port + 1}", f"localhost:{port}", f"x@127.0.0.1:{port}", "169.254.169.254"):
        assert_refused_without_request(eks, rewrite(get_token(eks), netloc=netloc), "is not the STS endpoint")


@pytest.mark.parametrize(
    "forge, reason",
    [
        (lambda n: f"garbage-{n}", "no k8s-aws-v1. prefix"),
        (lambda n: f"{PREFIX}!!not*base64!!{n}", "not base64url"),
        (lambda n: PREFIX + base64.urlsafe_b64encode(b"\xff\xfe" + n.encode()).decode(), "not base64url"),
        (lambda n: make_token(f"not a url {n}"), "whitespace"),
        (lambda n: make_token(f"{n}"), "is not the STS endpoint"),
    ],
    ids=["no-prefix", "not-base64", "not-ascii", "not-a-url", "bare-word"],
)
def test_garbage_is_refused(eks, forge, reason):
    assert_refused_without_request(eks, forge(secrets.token_hex(8)), reason)  # a new token each run: no cache hit


def test_a_signature_without_the_cluster_header_is_refused(eks):
    token = rewrite(get_token(eks), X_Amz_SignedHeaders="host")
    assert "X-Amz-SignedHeaders=host&" in token_url(token)
    assert_refused_without_request(eks, token, "X-Amz-SignedHeaders does not include x-k8s-aws-id")


def test_other_actions_and_extra_parameters_are_refused(eks):
    real = get_token(eks)
    assert_refused_without_request(eks, rewrite(real, Action="AssumeRole"), "Action is not GetCallerIdentity")
    assert_refused_without_request(eks, rewrite(real, RoleArn="arn:aws:iam::1:role/x"), "unexpected query parameter")
