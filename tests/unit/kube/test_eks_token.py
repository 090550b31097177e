"""EKS tokens made in-process (module_utils/kube/eks_token.py) instead of running `aws eks get-token`.

The token must be what the CLI prints - ``k8s-aws-v1.`` + base64url of a GetCallerIdentity URL presigned for
60 s with ``x-k8s-aws-id`` signed - and only the exact CLI stanza may be taken over; anything else, a failure
to make a token, a token the cluster refuses, or KARPENTER_EKS_TOKEN_SOURCE=exec runs the command. No request
leaves the process: presigning sends none, AssumeRole goes to botocore's Stubber (it checks the request against
the STS service model). The real apiserver accepting these tokens is in tests/integration/test_kube_transport.py.
"""

import base64
import datetime
import json
import os
import subprocess
import sys
import urllib.parse

import ansible_collections
import botocore.exceptions
import botocore.session
import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import eks_token, transport
from botocore.stub import Stubber

STANZA_ARGS = ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod", "--output", "json"]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.delenv(eks_token.SOURCE_ENV, raising=False)


def url_of(token):
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    body = token[len("k8s-aws-v1.") :]
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    parts = urllib.parse.urlsplit(url)
    return parts, dict(urllib.parse.parse_qsl(parts.query))


@pytest.mark.parametrize(
    "command, args, env, expected",
    [
        ("aws", STANZA_ARGS, {}, {"region": "eu-west-1", "cluster_name": "prod", "env": {}}),
        (
            "/usr/local/bin/aws",
            ["eks", "get-token", "--cluster-name=prod", "--role-arn", "arn:aws:iam::1:role/r", "--profile", "ops"],
            {"AWS_STS_REGIONAL_ENDPOINTS": "regional"},
            {
                "cluster_name": "prod",
                "role_arn": "arn:aws:iam::1:role/r",
                "profile": "ops",
                "env": {"AWS_STS_REGIONAL_ENDPOINTS": "regional"},
            },
        ),
        ("aws", ["eks", "get-token", "--cluster-id", "abc"], {}, None),  # EKS on Outposts: the command knows
        ("aws", ["eks", "get-token", "--cluster-name", "x", "--debug"], {}, None),
        ("aws", ["eks", "get-token", "--cluster-name", "x", "--output", "text"], {}, None),
        ("aws", ["eks", "get-token"], {}, None),
        ("aws", ["eks", "get-token", "--cluster-name"], {}, None),
        ("aws", ["eks", "describe-cluster", "--cluster-name", "x"], {}, None),
        ("aws", ["eks", "get-token", "--cluster-name", "x"], {"AWS_ACCESS_KEY_ID": "k"}, None),
        ("aws-iam-authenticator", ["token", "-i", "x"], {}, {"cluster_name": "x", "env": {}}),
        (
            "/usr/local/bin/aws-iam-authenticator",
            ["token", "--cluster-id=x", "-r", "arn:aws:iam::1:role/r", "--region", "eu-west-1"],
            {},
            {"cluster_name": "x", "role_arn": "arn:aws:iam::1:role/r", "region": "eu-west-1", "env": {}},
        ),
        ("aws-iam-authenticator", ["token", "-i", "x", "--session-name", "me"], {}, None),
        ("aws-iam-authenticator", ["verify", "-i", "x"], {}, None),
        ("kubelogin", ["get-token"], {}, None),
    ],
    ids=["update-kubeconfig", "role-profile-env", "cluster-id", "unknown-option", "text", "no-name", "dangling",
         "other-command", "credential-env", "authenticator", "authenticator-role", "authenticator-unknown-option",
         "authenticator-verify", "other-plugin"],
)  # fmt: skip
def test_only_the_exact_cli_stanza_is_taken_over(command, args, env, expected):
    assert eks_token.parse_get_token(command, args, env) == expected


def test_token_is_what_aws_eks_get_token_prints():
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    token = eks_token.make_token("prod", region="eu-west-1")
    parts, q = url_of(token)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")
    assert q["Action"] == "GetCallerIdentity" and q["Version"] == "2011-06-15"
    assert q["X-Amz-Expires"] == "60" and q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert q["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert q["X-Amz-Credential"].startswith("AKIDEXAMPLE/") and q["X-Amz-Credential"].endswith(
        "/eu-west-1/sts/aws4_request"
    )
    signed_at = datetime.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    assert signed_at >= before
    assert "ClusterName" not in parts.query  # the cluster name travels in the signed header only


def test_loading_only_sts_gives_the_same_token_as_plain_botocore(monkeypatch):
    """make_token's own session skips botocore's listing of every service (~60 ms); the token is the same."""
    import botocore.auth

    fixed = datetime.datetime(2026, 12, 7, 12, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: fixed)
    plain = botocore.session.Session()
    assert eks_token.make_token("prod", region="eu-west-1") == eks_token.make_token(
        "prod", region="eu-west-1", session=plain
    )
    assert "20261207T120000Z" in url_of(eks_token.make_token("prod", region="eu-west-1"))[1]["X-Amz-Date"]
    with pytest.raises(botocore.exceptions.UnknownServiceError):
        eks_token.sts_session().create_client("s3", region_name="eu-west-1")


def test_region_comes_from_the_exec_env_then_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert url_of(eks_token.make_token("c"))[0].netloc == "sts.ap-south-1.amazonaws.com"
    assert url_of(eks_token.make_token("c", env={"AWS_REGION": "ca-central-1"}))[0].netloc == (
        "sts.ca-central-1.amazonaws.com"
    )


def test_role_arn_signs_with_the_assumed_role():
    session = botocore.session.Session()
    real_create = session.create_client
    stubs = []

    def create_client(*args, **kwargs):
        client = real_create(*args, **kwargs)
        if not stubs:  # the first client assumes the role
            stub = Stubber(client)
            stub.add_response(
                "assume_role",
                {
                    "Credentials": {
                        "AccessKeyId": "ASIAASSUMEDROLE01",
                        "SecretAccessKey": "s",
                        "SessionToken": "t",
                        "Expiration": datetime.datetime(2030, 1, 1),
                    }
                },
                {"RoleArn": "arn:aws:iam::123456789012:role/eks-admin", "RoleSessionName": "EKSGetTokenAuth"},
            )
            stub.activate()
            stubs.append(stub)
        return client

    session.create_client = create_client
    token = eks_token.make_token(
        "prod", region="us-east-1", role_arn="arn:aws:iam::123456789012:role/eks-admin", session=session
    )
    q = url_of(token)[1]
    assert q["X-Amz-Credential"].startswith("ASIAASSUMEDROLE01/") and q["X-Amz-Security-Token"] == "t"
    stubs[0].assert_no_pending_responses()


class Runner:
    """subprocess.run stand-in: counts runs, answers a token or fails."""

    def __init__(self, fail=False):
        self.calls, self.fail = 0, fail

    def __call__(self, argv, **kw):
        self.calls += 1
        if self.fail:
            return subprocess.CompletedProcess(argv, 255, b"", b"Unable to locate credentials\n")
        out = {"kind": "ExecCredential", "apiVersion": transport.EXEC_API_VERSIONS[1], "status": {"token": "from-cli"}}
        return subprocess.CompletedProcess(argv, 0, json.dumps(out).encode(), b"")


def plugin(runner, args=tuple(STANZA_ARGS)):
    args = list(args)
    native = eks_token.parse_get_token("aws", args, {})
    return transport.ExecPlugin("aws", args, {}, transport.EXEC_API_VERSIONS[1], None, runner=runner, native=native)


def test_exec_plugin_makes_the_token_without_running_the_cli():
    runner = Runner()
    p = plugin(runner)
    assert p.credential()["token"].startswith("k8s-aws-v1.") and p.source == "native"
    assert runner.calls == 0 and p.runs == 1


def test_a_refused_token_is_fetched_again_by_the_cli():
    runner = Runner()
    p = plugin(runner)
    p.credential()
    assert p.credential(force=True)["token"] == "from-cli" and p.source == "exec" and runner.calls == 1
    assert p.credential(force=True)["token"] == "from-cli" and runner.calls == 2  # the CLI from now on


def test_no_credentials_falls_back_to_the_cli_and_both_errors_are_reported(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    runner = Runner(fail=True)
    p = plugin(runner)
    with pytest.raises(transport.CredentialError) as err:
        p.credential()
    assert runner.calls == 1
    assert "Unable to locate credentials" in str(err.value) and "in-process token: NoCredentialsError" in str(err.value)


def test_a_refused_token_and_a_failing_cli_say_both():
    runner = Runner(fail=True)
    p = plugin(runner)
    p.credential()
    with pytest.raises(transport.CredentialError, match="in-process token: the cluster refused the token made"):
        p.credential(force=True)


def test_the_environment_can_insist_on_the_cli(monkeypatch):
    monkeypatch.setenv(eks_token.SOURCE_ENV, "exec")
    runner = Runner()
    p = plugin(runner)
    assert p.credential()["token"] == "from-cli" and p.source == "exec" and runner.calls == 1


@pytest.mark.parametrize("module", ["karpenter_provisioner", "node_template", "k8s_objects", "karpenter_info"])
def test_a_kubernetes_module_does_not_import_botocore_until_a_token_is_made(module):
    """Importing botocore costs ~0.1 s of every module run; only an EKS kubeconfig needs it."""
    code = (
        "import sys\n"
        f"import ansible_collections.karpenter_eks.platform.plugins.modules.{module}\n"
        "from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import eks_token\n"
        "print(eks_token.HAS_BOTOCORE, 'botocore' in sys.modules)\n"
    )
    paths = [os.path.dirname(p) for p in ansible_collections.__path__]
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(paths)),
    )
    assert res.stdout.split() == ["True", "False"], res.stderr
