"""IAM OIDC provider logic against moto in-process (moto implements the IAM OIDC provider APIs).

Each test reads moto's state with a plain boto3 client to prove what was (or, in check mode, was not) written.
"""

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import (
    ensure_oidc_provider,
    oidc_provider_arn,
)
from botocore.stub import Stubber

moto = pytest.importorskip("moto")

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
ARN = oidc_provider_arn("123456789012", "aws", ISSUER)


@pytest.fixture
def iam(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        raw = boto3.client("iam", region_name="us-east-1")
        yield RetryingBotoClientWrapper(raw, AWSRetry.jittered_backoff(retries=1, delay=0)), raw


def params(**kw):
    p = dict(
        url=ISSUER,
        client_id_list=["sts.amazonaws.com"],
        purge_client_ids=True,
        thumbprint_list=None,
        tags=None,
        purge_tags=True,
        state="present",
    )
    p.update(kw)
    return p


def test_arn_strips_the_scheme():
    assert (
        ARN
        == "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    )


def test_check_mode_creates_nothing_then_create_then_noop(iam):
    client, raw = iam
    res = ensure_oidc_provider(client, params(tags={"team": "platform"}), True, ARN)
    assert res["changed"] is True and res["diff"]["before"] == {}
    assert raw.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []

    res = ensure_oidc_provider(client, params(tags={"team": "platform"}), False, ARN)
    assert res["changed"] is True and res["arn"] == ARN
    live = raw.get_open_id_connect_provider(OpenIDConnectProviderArn=ARN)
    assert live["ClientIDList"] == ["sts.amazonaws.com"]
    assert live["Tags"] == [{"Key": "team", "Value": "platform"}]

    res = ensure_oidc_provider(client, params(tags={"team": "platform"}), False, ARN)
    assert res["changed"] is False
    assert res["diff"]["before"] == res["diff"]["after"]


def test_tags_converge_and_check_mode_does_not_write(iam):
    client, raw = iam
    ensure_oidc_provider(client, params(tags={"a": "1"}), False, ARN)
    want = params(tags={"b": "2"})

    assert ensure_oidc_provider(client, want, True, ARN)["changed"] is True
    assert raw.get_open_id_connect_provider(OpenIDConnectProviderArn=ARN)["Tags"] == [{"Key": "a", "Value": "1"}]

    res = ensure_oidc_provider(client, want, False, ARN)
    assert res["changed"] is True
    assert raw.get_open_id_connect_provider(OpenIDConnectProviderArn=ARN)["Tags"] == [{"Key": "b", "Value": "2"}]
    assert ensure_oidc_provider(client, want, False, ARN)["changed"] is False


def test_client_ids_converge_stubbed():
    """moto 5.2 has no Add/RemoveClientID...; these requests are checked against botocore's IAM model instead."""
    raw = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        "iam", region_name="us-east-1", endpoint_url="http://127.0.0.1:1"
    )
    client = RetryingBotoClientWrapper(raw, AWSRetry.jittered_backoff(retries=1, delay=0))
    live = {
        "Url": ISSUER.split("://")[1],
        "ClientIDList": ["sts.amazonaws.com", "old"],
        "ThumbprintList": [],
        "Tags": [],
    }
    with Stubber(raw) as stub:
        for check in (True, False):
            stub.add_response("get_open_id_connect_provider", live, {"OpenIDConnectProviderArn": ARN})
            if not check:
                stub.add_response(
                    "add_client_id_to_open_id_connect_provider",
                    {},
                    {"OpenIDConnectProviderArn": ARN, "ClientID": "new"},
                )
                stub.add_response(
                    "remove_client_id_from_open_id_connect_provider",
                    {},
                    {"OpenIDConnectProviderArn": ARN, "ClientID": "old"},
                )
            res = ensure_oidc_provider(client, params(client_id_list=["sts.amazonaws.com", "new"]), check, ARN)
            assert res["changed"] is True
            assert res["diff"]["after"]["client_id_list"] == ["new", "sts.amazonaws.com"]
        stub.assert_no_pending_responses()


def test_delete(iam):
    client, raw = iam
    ensure_oidc_provider(client, params(), False, ARN)
    assert ensure_oidc_provider(client, params(state="absent"), True, ARN)["changed"] is True
    assert len(raw.list_open_id_connect_providers()["OpenIDConnectProviderList"]) == 1
    assert ensure_oidc_provider(client, params(state="absent"), False, ARN)["changed"] is True
    assert raw.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    assert ensure_oidc_provider(client, params(state="absent"), False, ARN)["changed"] is False
