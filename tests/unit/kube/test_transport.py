"""Which connection settings the direct transport takes, and which it leaves to the official client.

The rule under test: the direct transport is used only where it behaves exactly like the kubernetes client
(client certificates, bearer tokens, CA/insecure settings); everything else returns None so that the module
falls back to kubernetes.client unchanged. A real HTTPS exchange with the real apiserver is in
tests/integration/test_kube_transport.py.
"""

import base64
import datetime
import ssl

import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import transport
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A self-signed CA and a client certificate signed by it (PEM files and bytes)."""
    d = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)

    def make(name, issuer_key=None, issuer_name=None, ca=False):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem, key, subject

    ca = make("test-ca", ca=True)
    cert_pem, key_pem = make("admin", issuer_key=ca[2], issuer_name=ca[3])[:2]
    ca_pem = ca[0]
    files = {"ca.crt": ca_pem, "client.crt": cert_pem, "client.key": key_pem}
    for name, data in files.items():
        (d / name).write_bytes(data)
    return {"dir": d, **files}


def kubeconfig(path, user, cluster=None, extra_contexts=()):
    cluster = cluster or {"server": "https://127.0.0.1:6443", "certificate-authority": "ca.crt"}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "main",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}}, *extra_contexts],
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


CERT_USER = {"client-certificate": "client.crt", "client-key": "client.key"}
CLEAN_ENV = {"HOME": "/nonexistent"}


def test_relative_client_certificate_files_are_read_beside_the_kubeconfig(pki):
    path = kubeconfig(pki["dir"] / "config", CERT_USER)
    cfg = transport.direct_config({"kubeconfig": path}, environ=CLEAN_ENV)
    assert (cfg.host, cfg.port, cfg.authorization) == ("127.0.0.1", 6443, None)
    assert cfg.ssl_context.verify_mode == ssl.CERT_REQUIRED and cfg.ssl_context.check_hostname


def test_inline_data_and_token(pki, tmp_path):
    b64 = {k: base64.b64encode(pki[k]).decode() for k in ("ca.crt", "client.crt", "client.key")}
    path = kubeconfig(
        tmp_path / "config",
        {"client-certificate-data": b64["client.crt"], "client-key-data": b64["client.key"]},
        cluster={"server": "https://10.0.0.1", "certificate-authority-data": b64["ca.crt"]},
    )
    cfg = transport.direct_config({"kubeconfig": path}, environ=CLEAN_ENV)
    assert (cfg.host, cfg.port) == ("10.0.0.1", 443)
    assert len(cfg.ssl_context.get_ca_certs()) == 1
    token_path = kubeconfig(tmp_path / "token", {"token": "abc.def"}, cluster={"server": "https://h:1"})
    assert transport.direct_config({"kubeconfig": token_path}, environ=CLEAN_ENV).authorization == "Bearer abc.def"


def test_no_private_key_is_left_on_disk(pki, tmp_path, monkeypatch):
    monkeypatch.setattr(transport.tempfile, "tempdir", str(tmp_path))
    b64 = {k: base64.b64encode(pki[k]).decode() for k in ("client.crt", "client.key")}
    path = kubeconfig(
        tmp_path / "config",
        {"client-certificate-data": b64["client.crt"], "client-key-data": b64["client.key"]},
        cluster={"server": "https://h", "insecure-skip-tls-verify": True},
    )
    cfg = transport.direct_config({"kubeconfig": path}, environ=CLEAN_ENV)
    assert cfg.ssl_context.verify_mode == ssl.CERT_NONE and not cfg.ssl_context.check_hostname
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_context_parameter_selects_another_context(pki, tmp_path):
    other = {"name": "other", "context": {"cluster": "c", "user": "missing"}}
    path = kubeconfig(pki["dir"] / "ctx", CERT_USER, extra_contexts=[other])
    assert transport.direct_config({"kubeconfig": path}, environ=CLEAN_ENV) is not None
    assert transport.direct_config({"kubeconfig": path, "context": "other"}, environ=CLEAN_ENV) is None
    assert transport.direct_config({"kubeconfig": path, "context": "nope"}, environ=CLEAN_ENV) is None


@pytest.mark.parametrize(
    "user",
    [
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws", "provideClusterInfo": True}},
        {"auth-provider": {"name": "oidc"}},
        {"username": "a", "password": "b"},
        {"tokenFile": "/var/run/token"},
        {"token": "t", "as": "someone"},
        {},
    ],
    ids=["exec-cluster-info", "auth-provider", "basic", "token-file", "impersonation", "no-credentials"],
)
def test_users_the_official_client_must_handle(pki, user):
    path = kubeconfig(pki["dir"] / "fallback", user)
    assert transport.direct_config({"kubeconfig": path}, environ=CLEAN_ENV) is None


@pytest.mark.parametrize(
    "cluster",
    [
        {"server": "https://h", "proxy-url": "http://proxy:3128"},
        {"server": "https://h", "tls-server-name": "kubernetes"},
        {"server": "http://h:8080"},
        {"server": "https://h/prefix"},
    ],
    ids=["proxy-url", "tls-server-name", "plain-http", "path-prefix"],
)
def test_clusters_the_official_client_must_handle(pki, cluster):
    path = kubeconfig(pki["dir"] / "fallback-cluster", CERT_USER, cluster=cluster)
    assert transport.direct_config({"kubeconfig": path}, environ=CLEAN_ENV) is None


@pytest.mark.parametrize(
    "env",
    [
        {"HTTPS_PROXY": "http://proxy:3128"},
        {"K8S_AUTH_PROXY": "http://proxy:3128"},
        {"K8S_AUTH_PROXY_HEADERS_BASIC_AUTH": "a:b"},
        {"K8S_AUTH_IMPERSONATE_USER": "someone"},
        {"K8S_AUTH_USERNAME": "a", "K8S_AUTH_PASSWORD": "b"},
        {"KARPENTER_EKS_KUBE_TRANSPORT": "kubernetes"},
    ],
    ids=["https-proxy", "k8s-auth-proxy", "proxy-headers", "impersonate", "basic-auth", "forced"],
)
def test_environment_that_sends_the_module_to_the_official_client(pki, env):
    path = kubeconfig(pki["dir"] / "env", CERT_USER)
    assert transport.direct_config({"kubeconfig": path}, environ=dict(CLEAN_ENV)) is not None
    assert transport.direct_config({"kubeconfig": path}, environ=dict(CLEAN_ENV, **env)) is None


def test_default_kubeconfig_chain(pki, tmp_path):
    path = kubeconfig(pki["dir"] / "default", CERT_USER)
    assert transport.direct_config({}, environ=dict(CLEAN_ENV, KUBECONFIG=path)) is not None
    # several files are merged by the official loader; in a pod, kubernetes.core tries in-cluster first
    assert transport.direct_config({}, environ=dict(CLEAN_ENV, KUBECONFIG=path + ":" + path)) is None
    assert transport.direct_config({}, environ=dict(CLEAN_ENV, KUBECONFIG=path, KUBERNETES_SERVICE_HOST="x")) is None
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    kubeconfig(home / ".kube" / "config", {"token": "t"}, cluster={"server": "https://h"})
    assert transport.direct_config({}, environ={"HOME": str(home)}).authorization == "Bearer t"
    assert transport.direct_config({}, environ={"HOME": str(tmp_path / "none")}) is None  # missing file


def test_awx_token_credential_and_parameter_precedence(pki):
    env = {
        "K8S_AUTH_HOST": "https://api.example:6443/",
        "K8S_AUTH_API_KEY": "from-env",
        "K8S_AUTH_SSL_CA_CERT": str(pki["dir"] / "ca.crt"),
        "K8S_AUTH_VERIFY_SSL": "yes",
    }
    cfg = transport.direct_config({}, environ=env)
    assert (cfg.host, cfg.port, cfg.authorization) == ("api.example", 6443, "Bearer from-env")
    assert transport.direct_config({"api_key": "param"}, environ=env).authorization == "Bearer param"
    insecure = transport.direct_config({}, environ=dict(env, K8S_AUTH_VERIFY_SSL="no"))
    assert insecure.ssl_context.verify_mode == ssl.CERT_NONE
    # host without credentials, or host plus a kubeconfig to merge: the official client decides
    assert transport.direct_config({}, environ={"K8S_AUTH_HOST": "https://h"}) is None
    assert transport.direct_config({"kubeconfig": "/x"}, environ=env) is None


def test_resolve_auth_follows_kubernetes_core_names():
    auth = transport.resolve_auth(
        {"validate_certs": None, "context": "c"},
        {"K8S_AUTH_VALIDATE_CERTS": "false", "K8S_AUTH_CERT_FILE": "/c", "K8S_AUTH_CONTEXT": "env"},
    )
    assert auth == {"validate_certs": False, "client_cert": "/c", "context": "c"}


def test_a_kubeconfig_with_a_duplicate_key_is_an_error(tmp_path):
    """A repeated key (two ``token:`` lines) is refused naming the file, not resolved to the last value."""
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.errors import InputError

    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: a, context: {cluster: c, user: u}}]\n"
        "users:\n- name: u\n  user:\n    token: first\n    token: second\n"
    )
    with pytest.raises(InputError, match=r"(?s)kubeconfig .*config: .*duplicate key .token."):
        transport.from_kubeconfig(str(path))
