"""Exec credential plugins (``aws eks get-token``, the EKS kubeconfig) in the direct transport.

What is checked is client-go's contract for ``users[].user.exec``: the plugin runs once per process with
the kubeconfig's args and env added to the environment and ``KUBERNETES_EXEC_INFO`` set (non-interactive),
its ``ExecCredential`` token is reused until it expires and fetched again on expiry or on a 401, a client
certificate from the plugin goes into the TLS context, relative commands are found beside the kubeconfig,
and every failure is a clear ``CredentialError`` that never echoes the plugin's output (the token). Shapes
the transport does not implement (``provideClusterInfo``, ``interactiveMode: Always``, ...) go to the
official client. The real plugin against the real apiserver (the sandbox authenticates ``aws eks
get-token`` tokens like EKS) is in tests/integration/test_kube_transport.py.
"""

import base64
import json
import os
import stat
import subprocess
import sys

import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import transport

V1BETA1 = "client.authentication.k8s.io/v1beta1"
CLUSTER = {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}


def write_kubeconfig(path, exec_spec, extra_user=None):
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "eks",
        "clusters": [{"name": "c", "cluster": CLUSTER}],
        "users": [{"name": "u", "user": dict({"exec": exec_spec}, **(extra_user or {}))}],
        "contexts": [{"name": "eks", "context": {"cluster": "c", "user": "u"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def plugin_script(path, status, api_version=V1BETA1, exit_code=0, stderr=""):
    """An executable that records its argv/env beside itself and prints an ExecCredential."""
    record = str(path) + ".calls"
    body = f"""#!{sys.executable}
import json, os, sys
with open({record!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "info": os.environ.get("KUBERNETES_EXEC_INFO"),
                        "region": os.environ.get("AWS_REGION"), "stdin_tty": sys.stdin.isatty()}}) + "\\n")
sys.stderr.write({stderr!r})
if {exit_code}:
    sys.exit({exit_code})
print(json.dumps({{"kind": "ExecCredential", "apiVersion": {api_version!r}, "spec": {{}}, "status": {status!r}}}))
"""
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return record


def calls(record):
    if not os.path.exists(record):
        return []
    with open(record) as f:
        return [json.loads(line) for line in f]


def test_token_plugin_runs_once_with_args_env_and_exec_info(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = plugin_script(bindir / "get-token", {"token": "k8s-aws-v1.abc"})
    path = write_kubeconfig(
        tmp_path / "config",
        {
            "apiVersion": V1BETA1,
            "command": "bin/get-token",  # relative with a separator: beside the kubeconfig, as client-go
            "args": ["eks", "get-token", "--cluster-name", "prod"],
            "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
            "interactiveMode": "Never",
        },
    )
    cfg = transport.direct_config({"kubeconfig": path}, environ={"HOME": "/nonexistent"})
    assert cfg is not None and cfg.authorization == "Bearer k8s-aws-v1.abc"
    assert cfg.current_authorization() == "Bearer k8s-aws-v1.abc"  # cached: no second run
    (call,) = calls(record)
    assert call["argv"] == ["eks", "get-token", "--cluster-name", "prod"]
    assert call["region"] == "eu-west-1"
    assert json.loads(call["info"]) == {"apiVersion": V1BETA1, "kind": "ExecCredential", "spec": {"interactive": False}}
    assert call["stdin_tty"] is False


def test_client_certificate_from_the_plugin_goes_into_the_tls_context(tmp_path, monkeypatch):
    monkeypatch.setattr(transport.tempfile, "tempdir", str(tmp_path))
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = _self_signed(key)
    plugin_script(tmp_path / "cert-plugin", {"clientCertificateData": cert_pem, "clientKeyData": key_pem})
    path = write_kubeconfig(tmp_path / "config", {"apiVersion": V1BETA1, "command": str(tmp_path / "cert-plugin")})
    cfg = transport.direct_config({"kubeconfig": path}, environ={"HOME": "/nonexistent"})
    assert cfg is not None and cfg.authorization is None and cfg.plugin is None
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["cert-plugin", "cert-plugin.calls", "config"]  # the key went through a removed temp dir


def _self_signed(key):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exec-user")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class FakeRunner:
    """Stands in for subprocess.run: answers the queued ExecCredentials and counts runs."""

    def __init__(self, *statuses):
        self.statuses = list(statuses)
        self.argv = []

    def __call__(self, argv, **kw):
        self.argv.append(argv)
        status = self.statuses.pop(0)
        out = {"kind": "ExecCredential", "apiVersion": V1BETA1, "status": status}
        return subprocess.CompletedProcess(argv, 0, json.dumps(out).encode(), b"")


def test_token_is_fetched_again_when_it_expires_or_is_forced():
    now = [1_800_000_000.0]
    runner = FakeRunner(
        {"token": "t1", "expirationTimestamp": "2027-01-15T08:15:00Z"},  # 1_800_000_000 + 900 s
        {"token": "t2"},
        {"token": "t3"},
    )
    plugin = transport.ExecPlugin("aws", [], {}, V1BETA1, None, runner=runner, clock=lambda: now[0])
    assert plugin.credential()["token"] == "t1"
    now[0] += 860  # 40 s before expiry: still good
    assert plugin.credential()["token"] == "t1" and plugin.runs == 1
    now[0] += 20  # within the 30 s skew: fetched again
    assert plugin.credential()["token"] == "t2" and plugin.runs == 2
    assert plugin.credential()["token"] == "t2"  # no expiry given: kept
    assert plugin.credential(force=True)["token"] == "t3" and plugin.runs == 3


class FakeResponse:
    will_close = False
    reason = "Unauthorized"

    def __init__(self, status, body):
        self.status, self.body = status, body

    def read(self):
        return self.body

    def getheaders(self):
        return []


class FakeConnection:
    sock = object()

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.authorizations = []

    def request(self, method, url, body=None, headers=None):
        self.authorizations.append(headers.get("Authorization"))

    def getresponse(self):
        status = self.statuses.pop(0)
        return FakeResponse(status, b'{"kind":"NamespaceList","items":[]}' if status == 200 else b"{}")


def direct_with_plugin(runner, statuses):
    plugin = transport.ExecPlugin("aws", [], {}, V1BETA1, None, runner=runner)
    cfg = transport.DirectConfig("h", 443, None, "Bearer %s" % plugin.credential()["token"], plugin=plugin)
    t = transport.DirectTransport(cfg, "test")
    conn = FakeConnection(statuses)
    t._connection = lambda timeout, fresh=False: conn
    return t, conn, plugin


def test_a_401_fetches_a_new_token_and_retries_once():
    t, conn, plugin = direct_with_plugin(FakeRunner({"token": "old"}, {"token": "new"}), [401, 200])
    assert json.loads(t.request("GET", "/api/v1/namespaces"))["kind"] == "NamespaceList"
    assert conn.authorizations == ["Bearer old", "Bearer new"] and plugin.runs == 2


def test_a_second_401_is_the_answer():
    t, conn, plugin = direct_with_plugin(FakeRunner({"token": "a"}, {"token": "b"}), [401, 401])
    with pytest.raises(transport.HTTPStatusError) as err:
        t.request("GET", "/api/v1/namespaces")
    assert err.value.status == 401 and plugin.runs == 2 and len(conn.authorizations) == 2


def test_kubeapi_reports_a_failing_plugin_as_a_kube_error_without_retrying():
    class Failing(FakeRunner):
        def __call__(self, argv, **kw):
            if not self.argv:
                return super().__call__(argv, **kw)
            self.argv.append(argv)
            return subprocess.CompletedProcess(argv, 255, b"", b"ExpiredToken: the security token has expired\n")

    runner = Failing({"token": "a"})
    plugin = transport.ExecPlugin("aws", [], {}, V1BETA1, None, runner=runner)
    cfg = transport.DirectConfig("h", 443, None, "Bearer a", plugin=plugin)
    api = kclient.KubeApi(cfg, sleep=lambda s: None)
    api.direct._connection = lambda timeout, fresh=False: FakeConnection([401])
    with pytest.raises(kclient.KubeError) as err:
        api.list("/api/v1/namespaces")
    assert "no Kubernetes credential" in str(err.value) and "ExpiredToken" in str(err.value)
    assert len(runner.argv) == 2  # one refresh attempt, no retry loop


@pytest.mark.parametrize(
    "answer, expected",
    [
        (
            subprocess.CompletedProcess([], 254, b'{"token": "secret-out"}', b"Unable to locate credentials\n"),
            "exit 254",
        ),
        (subprocess.CompletedProcess([], 0, b"not json", b""), "did not print an ExecCredential (JSON)"),
        (subprocess.CompletedProcess([], 0, b'{"kind": "Status"}', b""), "did not print an ExecCredential"),
        (
            subprocess.CompletedProcess(
                [],
                0,
                json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1"}).encode(),
                b"",
            ),
            "answered apiVersion",
        ),
        (
            subprocess.CompletedProcess(
                [], 0, json.dumps({"kind": "ExecCredential", "apiVersion": V1BETA1, "status": {}}).encode(), b""
            ),
            "neither a token nor a client certificate",
        ),
        (
            subprocess.CompletedProcess(
                [],
                0,
                json.dumps(
                    {
                        "kind": "ExecCredential",
                        "apiVersion": V1BETA1,
                        "status": {"token": "x", "expirationTimestamp": "soon"},
                    }
                ).encode(),
                b"",
            ),
            "not an RFC 3339 time",
        ),
    ],
    ids=["exit-code", "not-json", "wrong-kind", "wrong-api-version", "no-credential", "bad-expiry"],
)
def test_plugin_failures_are_clear_and_never_echo_stdout(answer, expected):
    plugin = transport.ExecPlugin("/usr/local/bin/aws", [], {}, V1BETA1, None, runner=lambda argv, **kw: answer)
    with pytest.raises(transport.CredentialError) as err:
        plugin.credential()
    assert expected in str(err.value) and "'aws'" in str(err.value)
    assert "secret-out" not in str(err.value)
    if answer.returncode:
        assert "Unable to locate credentials" in str(err.value)


def test_missing_command_shows_the_install_hint(tmp_path):
    path = write_kubeconfig(
        tmp_path / "config",
        {"apiVersion": V1BETA1, "command": str(tmp_path / "no-such-aws"), "installHint": "Install the AWS CLI"},
    )
    with pytest.raises(transport.CredentialError, match="not found: Install the AWS CLI"):
        transport.direct_config({"kubeconfig": path}, environ={"HOME": "/nonexistent"})


@pytest.mark.parametrize(
    "spec, extra_user",
    [
        ({"apiVersion": V1BETA1, "command": "aws", "provideClusterInfo": True}, None),
        ({"apiVersion": V1BETA1, "command": "aws", "interactiveMode": "Always"}, None),
        ({"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "aws"}, None),
        ({"apiVersion": V1BETA1, "command": "aws", "unknownKey": 1}, None),
        ({"apiVersion": V1BETA1, "command": "aws"}, {"token": "also-a-token"}),
        ({"apiVersion": V1BETA1, "command": "aws", "env": [{"value": "no-name"}]}, None),
    ],
    ids=["cluster-info", "interactive-always", "v1alpha1", "unknown-key", "exec-and-token", "env-without-name"],
)
def test_exec_shapes_left_to_the_official_client(tmp_path, spec, extra_user):
    path = write_kubeconfig(tmp_path / "config", spec, extra_user)
    assert transport.direct_config({"kubeconfig": path}, environ={"HOME": "/nonexistent"}) is None


def test_base64_token_survives_unchanged(tmp_path):
    token = "k8s-aws-v1." + base64.urlsafe_b64encode(b"http://127.0.0.1:1/?Action=GetCallerIdentity").decode().rstrip(
        "="
    )
    plugin_script(tmp_path / "p", {"token": token})
    path = write_kubeconfig(tmp_path / "config", {"apiVersion": V1BETA1, "command": str(tmp_path / "p")})
    assert transport.direct_config({"kubeconfig": path}, environ={}).authorization == "Bearer " + token
