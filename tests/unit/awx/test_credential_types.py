"""Credential types of awx/configs: injected the way AWX injects them, the env they produce configures
kubernetes.core / our modules (K8S_AUTH_*) and boto3 (AWS_*) correctly - including AWX's habit of setting every
env injector, even for an empty input."""

import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awxlib  # noqa: E402

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://10.1.2.3:6443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "u", "user": {"token": "kubeconfig-token"}}],
    "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "ctx",
}


@pytest.fixture(scope="module")
def config():
    return awxlib.load_config()


def _kube_configuration(env, monkeypatch):
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube.client import configuration_from_params

    for k in [k for k in os.environ if k.startswith(("K8S_AUTH_", "KUBECONFIG"))]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.kube/config fallback
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    configuration, _headers = configuration_from_params({})
    return configuration


def test_kubeconfig_type_injects_a_file(config, tmp_path, monkeypatch):
    ct = awxlib.credential_type(config, "kubeconfig")
    env, extra = awxlib.inject_credential(ct, {"kubeconfig": yaml.safe_dump(KUBECONFIG)}, str(tmp_path))
    assert set(env) == {"K8S_AUTH_KUBECONFIG"} and not extra
    path = env["K8S_AUTH_KUBECONFIG"]
    assert os.path.dirname(path) == str(tmp_path / "env") and yaml.safe_load(open(path)) == KUBECONFIG
    c = _kube_configuration(env, monkeypatch)
    assert c.host == "https://10.1.2.3:6443" and "Bearer kubeconfig-token" in c.api_key.values()


def test_token_type_injects_host_token_and_ca(config, tmp_path, monkeypatch):
    ct = awxlib.credential_type(config, "token")
    inputs = {"host": "https://eks.example:443", "api_key": "sa-token", "ssl_ca_cert": "-----BEGIN CERTIFICATE-----\n"}
    env, _ = awxlib.inject_credential(ct, inputs, str(tmp_path))
    assert set(env) == {"K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_SSL_CA_CERT", "K8S_AUTH_VERIFY_SSL"}
    assert all(env.values()), "no env injector may render empty for the required inputs"
    assert env["K8S_AUTH_VERIFY_SSL"] == "true", "TLS is verified unless skip_tls_verify is set"
    c = _kube_configuration(env, monkeypatch)
    assert c.host == "https://eks.example:443" and c.api_key == {"authorization": "Bearer sa-token"}
    assert c.verify_ssl is True and open(c.ssl_ca_cert).read().startswith("-----BEGIN CERTIFICATE")
    env, _ = awxlib.inject_credential(ct, dict(inputs, skip_tls_verify=True), str(tmp_path))
    assert env["K8S_AUTH_VERIFY_SSL"] == "false"
    with pytest.raises(ValueError, match="required"):
        awxlib.inject_credential(ct, {"host": "https://x"}, str(tmp_path))


def test_why_two_kubernetes_types(tmp_path, monkeypatch):
    """An empty K8S_AUTH_HOST (what AWX injects for an unset input) overrides the kubeconfig's server."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    env = {"K8S_AUTH_KUBECONFIG": str(path), "K8S_AUTH_HOST": ""}
    _kube_configuration(env, monkeypatch)  # sets the environment
    # kubernetes.core's own modules (k8s_info, helm's kubeconfig handling) take the empty host as a value; this
    # asserts the upstream behaviour the two AWX types work around, so it reads upstream's (private) builder
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as upstream

    c = upstream._create_configuration(upstream._create_auth_spec())
    assert c.host == "", "kubernetes.core behaviour changed: a combined credential type may be possible again"
    # this collection's modules ignore an empty K8S_AUTH_* value and keep the kubeconfig's server
    ours = _kube_configuration(env, monkeypatch)
    assert ours.host == KUBECONFIG["clusters"][0]["cluster"]["server"]


def test_aws_type(config, tmp_path, monkeypatch):
    import boto3

    ct = awxlib.credential_type(config, "aws")
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    base = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret", "region": "eu-west-1"}
    env, _ = awxlib.inject_credential(ct, base, str(tmp_path))
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL"} <= set(
        env
    )
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    creds = boto3.Session().get_credentials()
    assert (creds.access_key, creds.secret_key, creds.token) == ("AKIAEXAMPLE", "secret", None)
    client = boto3.client("sts")
    assert client.meta.region_name == "eu-west-1" and client.meta.endpoint_url.endswith(".amazonaws.com")
    # STS session token and endpoint override (the sandbox's moto)
    env, _ = awxlib.inject_credential(
        ct, dict(base, session_token="tok", endpoint_url="http://127.0.0.1:25055"), str(tmp_path)
    )
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert boto3.Session().get_credentials().token == "tok"
    assert boto3.client("sts").meta.endpoint_url == "http://127.0.0.1:25055"


@pytest.mark.parametrize("source", ["access-key", "web-identity"])
def test_aws_role_type_assumes_the_role(config, tmp_path, monkeypatch, source):
    """The assume-role type makes botocore call STS (AssumeRole from the source keys, AssumeRoleWithWebIdentity from
    the token file) on the endpoint override - a private moto here - and use the role's credentials."""
    import sys

    import boto3

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    import awslib

    ct = awxlib.credential_type(config, "aws_role")
    role = "arn:aws:iam::123456789012:role/karpenter-eks-deployer"
    inputs = {"role_arn": role, "region": "eu-west-1", "external_id": "ext-1", "role_session_name": "awx-job-42"}
    if source == "access-key":
        inputs.update(access_key_id="AKIASOURCE", secret_access_key="source-secret")
    else:
        token = tmp_path / "token"
        token.write_text("eyJhbGciOiJSUzI1NiJ9.irsa.token")
        inputs["web_identity_token_file"] = str(token)
    (tmp_path / "moto").mkdir()
    with awslib.moto_server(str(tmp_path / "moto")) as endpoint:
        env, _ = awxlib.inject_credential(ct, dict(inputs, endpoint_url=endpoint), str(tmp_path))
        config_text = open(env["AWS_CONFIG_FILE"]).read()
        assert "source-secret" not in "".join(env.values()), "keys stay in the 0660 file, not the environment"
        for k in [k for k in os.environ if k.startswith("AWS_")]:
            monkeypatch.delenv(k)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        identity = boto3.Session().client("sts").get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/karpenter-eks-deployer/awx-job-42", identity
    assert ("web_identity_token_file" in config_text) == (source == "web-identity")
    assert "external_id = ext-1" in config_text


def test_injected_names_are_allowed_by_awx(config, tmp_path):
    for ct in awxlib.plain(config["karpenter_eks_awx_credential_types"]):
        assert ct["kind"] in ("cloud", "net")
        ids = {f["id"] for f in ct["inputs"]["fields"]}
        assert set(ct["inputs"].get("required", [])) <= ids
        for var in ct["injectors"].get("env", {}):
            assert var.startswith(("K8S_AUTH_", "AWS_")), var
