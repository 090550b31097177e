"""The one AWS runner (module_utils/aws/runner.py) and the error path (module_utils/aws/api.py).

The modules' main() run in-process against a private moto server on loopback (batchlib.moto_endpoint); a spy on
AnsibleAWSModule.client records every client a module makes, so "no client before the input is checked" is
asserted from what the module did, not from the code under test.
"""

import importlib
import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.karpenter_eks.platform.plugins.module_utils import errors
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws import api, runner
from batchlib import stub_client
from botocore.exceptions import ClientError
from botocore.stub import Stubber

AUTH = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing"}

# every AWS module of meta/runtime.yml's aws group, with arguments that need no existing resource
MODULES = {
    "eks_access_entry": {"cluster_name": "c1", "principal_arn": "arn:aws:iam::123456789012:role/r", "state": "absent"},
    "eks_addon": {"cluster_name": "c1", "name": "vpc-cni", "state": "absent"},
    "eks_cluster_version": {"name": "c1", "version": "1.34"},
    "eks_nodegroup_scaling": {"cluster_name": "c1", "name": "core", "desired_size": 2},
    "eks_pod_identity_association": {
        "cluster_name": "c1",
        "namespace": "ns",
        "service_account": "sa",
        "state": "absent",
    },
    "iam_oidc_provider": {"url": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC", "state": "absent"},
    "karpenter_iam_check": {"cluster_name": "c1", "role_name": "KarpenterControllerRole-c1"},
    "iam_managed_policies": {"policies": [{"name": "karpenter-test", "state": "absent"}]},
    "eventbridge_rules": {"rules": [{"name": "karpenter-test", "state": "absent"}]},
    "ec2_tags": {"resources": ["vpc-0123456789abcdef0"], "tags": {"karpenter.sh/discovery": "c1"}},
}

# bad input of the modules that check their input: (arguments, text the message must hold)
BAD_INPUT = {
    "ec2_tags": ({"resources": ["subnet-xyz"], "tags": {"a": "b"}}, "resources[0]: 'subnet-xyz' is not an EC2"),
    "iam_managed_policies": ({"policies": [{"name": "bad name", "state": "absent"}]}, "policies[0].name"),
    "eventbridge_rules": ({"rules": [{"name": "bad name", "state": "absent"}]}, "rules[0].name"),
    "eks_cluster_version": ({"name": "c1", "version": "latest"}, "version: Invalid version 'latest'"),
    "eks_nodegroup_scaling": ({"cluster_name": "c1", "name": "core", "desired_size": -1}, "desired_size: -1"),
}


def run_module(name, args, capsys):
    """(rc, parsed result) of plugins/modules/<name>.main() with ``args``."""
    mod = importlib.import_module("ansible_collections.karpenter_eks.platform.plugins.modules." + name)
    args = dict(args, _ansible_module_name="karpenter_eks.platform." + name)  # what Ansible passes
    with patch_module_args(args), pytest.raises(SystemExit) as exit_:
        mod.main()
    return exit_.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def clients(monkeypatch):
    """The clients the module made: [(service, extra client parameters, client)]."""
    made = []
    original = AnsibleAWSModule.client

    def spy(self, service, retry_decorator=None, **extra):
        client = original(self, service, retry_decorator=retry_decorator, **extra)
        made.append((service, extra, client))
        return client

    monkeypatch.setattr(AnsibleAWSModule, "client", spy)
    return made


# ---------------------------------------------------------------- (1) bad input: no client, nothing sent


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_fails_before_any_client(name, clients, capsys, monkeypatch):
    for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    args, needle = BAD_INPUT[name]
    rc, out = run_module(name, dict(AUTH, endpoint_url="http://127.0.0.1:1", **args), capsys)
    assert rc == 1 and out["failed"] is True
    assert needle in out["msg"], out["msg"]
    assert out["changed"] is False
    assert out["requests"] == {"total": 0, "writes": []}
    assert clients == []  # not even a client was made


# ---------------------------------------------------------------- (3) every module reports its requests


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_aws_module_result_has_requests(name, aws, moto_endpoint, clients, capsys):
    args = dict(AUTH, endpoint_url=moto_endpoint, _ansible_check_mode=True, **MODULES[name])
    _rc, out = run_module(name, args, capsys)
    # moto may lack an API (a failure then): the result, failed or not, counts what was sent
    assert set(out["requests"]) == {"total", "writes"}
    assert out["requests"]["total"] >= 1
    assert out["requests"]["writes"] == []  # check mode
    assert out["requests"]["total"] >= len(clients) >= 1
    for _service, extra, _client in clients:
        assert extra["config"].user_agent_extra == "karpenter_eks.platform/" + name
    assert "diff" not in out  # no --diff


def test_a_module_result_counts_every_client(aws, moto_endpoint, clients, capsys):
    """iam_oidc_provider reads the account with STS, then the provider with IAM: both are counted."""
    rc, out = run_module(
        "iam_oidc_provider", dict(AUTH, endpoint_url=moto_endpoint, **MODULES["iam_oidc_provider"]), capsys
    )
    assert rc is None or rc == 0, out
    assert out["changed"] is False
    assert out["requests"] == {"total": 2, "writes": []}
    assert [c[0] for c in clients] == ["iam", "sts"]


def test_diff_only_under_diff_and_warnings_emitted(aws, moto_endpoint, clients, capsys):
    args = dict(AUTH, endpoint_url=moto_endpoint, _ansible_diff=True, **MODULES["ec2_tags"])
    _rc, out = run_module("ec2_tags", dict(args, _ansible_check_mode=True), capsys)
    assert out["changed"] is True and out["diff"][0]["after"] == {"tags": {"karpenter.sh/discovery": "c1"}}
    assert out["requests"] == {"total": 1, "writes": []}


# ---------------------------------------------------------------- (2) SDK errors: AnsibleAWSError and PlatformError


def test_client_error_in_a_helper_is_an_ansible_aws_error_and_a_platform_error():
    client, raw = stub_client("eks")
    with Stubber(raw) as stub:
        stub.add_client_error("describe_cluster", "AccessDeniedException", "not allowed", 403, {"name": "c1"})
        with pytest.raises(api.AwsOperationError) as err:
            api.call("describe EKS cluster c1", client.describe_cluster, name="c1")
    e = err.value
    assert isinstance(e, AnsibleAWSError) and isinstance(e, errors.ApiError) and isinstance(e, errors.PlatformError)
    assert isinstance(e.exception, ClientError) and e.exception.response["Error"]["Code"] == "AccessDeniedException"
    assert e.message == "Failed to describe EKS cluster c1"
    assert e.status == 403 and e.fail_kwargs() == {"changed": False, "status": 403}
    assert str(e).startswith("Failed to describe EKS cluster c1: An error occurred (AccessDeniedException)")


def test_descriptions_with_braces_are_not_formatted():
    client, raw = stub_client("events")
    what = 'put rule r1 with pattern {"source": ["aws.ec2"]}'
    with Stubber(raw) as stub:
        stub.add_client_error("put_rule", "ValidationException", "bad", 400)
        with pytest.raises(api.AwsOperationError) as err:
            api.call(what, client.put_rule, Name="r1", EventPattern="{}")
    assert err.value.message == "Failed to " + what


def test_call_missing_ok_returns_none_only_for_its_codes():
    client, raw = stub_client("iam")
    arn = "arn:aws:iam::123456789012:policy/p"
    with Stubber(raw) as stub:
        stub.add_client_error("get_policy", "NoSuchEntity", "gone", 404, {"PolicyArn": arn})
        stub.add_client_error("get_policy", "AccessDenied", "no", 403, {"PolicyArn": arn})
        assert api.call_missing_ok("get policy " + arn, client.get_policy, "NoSuchEntity", PolicyArn=arn) is None
        with pytest.raises(api.AwsOperationError, match="Failed to get policy " + arn):
            api.call_missing_ok("get policy " + arn, client.get_policy, ["NoSuchEntity"], PolicyArn=arn)


def test_an_error_without_message_or_exception_is_still_a_platform_error():
    e = api.AwsOperationError()
    assert str(e) == "AWS operation failed" and e.details == [] and e.status is None


def test_module_fails_through_fail_json_aws_with_requests(aws, moto_endpoint, monkeypatch, capsys):
    """A ClientError in a helper: the module fails once, through fail_json_aws (its error code and the SDK
    versions are in the result), with what was sent."""
    original = AnsibleAWSModule.client
    seen = {}

    def stubbed(self, service, retry_decorator=None, **extra):
        client = original(self, service, retry_decorator=retry_decorator, **extra)
        stub = Stubber(client.client)
        stub.add_client_error("describe_cluster", "AccessDeniedException", "not allowed", 403, {"name": "c1"})
        stub.activate()
        seen["stub"] = stub
        return client

    monkeypatch.setattr(AnsibleAWSModule, "client", stubbed)
    calls = []
    real_fail_json_aws = AnsibleAWSModule.fail_json_aws

    def fail_json_aws(self, exception, msg=None, **kwargs):
        calls.append((exception, msg, kwargs))
        real_fail_json_aws(self, exception, msg=msg, **kwargs)

    monkeypatch.setattr(AnsibleAWSModule, "fail_json_aws", fail_json_aws)
    rc, out = run_module(
        "eks_cluster_version", dict(AUTH, endpoint_url=moto_endpoint, **MODULES["eks_cluster_version"]), capsys
    )
    seen["stub"].assert_no_pending_responses()
    assert rc == 1 and out["failed"] is True
    assert out["msg"].startswith("Failed to describe EKS cluster c1: An error occurred (AccessDeniedException)")
    assert out["error"]["code"] == "AccessDeniedException" and "boto3_version" in out
    assert out["requests"] == {"total": 1, "writes": []} and out["changed"] is False
    assert len(calls) == 1 and isinstance(calls[0][0], ClientError)
    assert calls[0][1] == "Failed to describe EKS cluster c1"


def test_an_error_of_ours_fails_through_fail_json_with_requests(aws, moto_endpoint, clients, capsys):
    """A node group that does not exist: AwsOperationError without an SDK exception -> fail_json."""
    rc, out = run_module(
        "eks_nodegroup_scaling", dict(AUTH, endpoint_url=moto_endpoint, **MODULES["eks_nodegroup_scaling"]), capsys
    )
    assert rc == 1 and "node group core of cluster c1 not found" in out["msg"]
    assert "boto3_version" not in out  # not through fail_json_aws
    assert out["requests"] == {"total": 1, "writes": []}


# ---------------------------------------------------------------- the one retry policy


def test_retry_policy_adds_the_service_codes():
    assert runner.RETRY_CODES["eks"] == ["ResourceInUseException", "ServerException"]
    assert runner.RETRY_CODES["iam"] == ["ConcurrentModification"]
    assert runner.RETRY_CODES["events"] == ["ConcurrentModificationException"]
    assert runner.user_agent("karpenter_eks.platform.ec2_tags") == "karpenter_eks.platform/ec2_tags"


def test_the_modules_policy_is_amazon_aws_jittered_backoff(monkeypatch):
    """api.retry_policy's defaults are the modules' policy: AWSRetry.jittered_backoff, 10 attempts, codes only (a
    503 without a retried code is not retried; the cost report and the backup's S3 store ask for statuses too)."""
    import time

    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # AWSRetry's backoff
    for error, attempts in (
        (ClientError({"Error": {"Code": "Throttling"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "X"), 10),
        (ClientError({"Error": {"Code": "Unknown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "X"), 1),
        (ClientError({"Error": {"Code": "ResourceInUseException"}}, "X"), 10),
    ):
        calls = []

        def failing(error, calls):
            calls.append(1)
            raise error

        call = runner.retry_policy("eks")(failing)
        with pytest.raises(ClientError):
            call(error, calls)
        assert len(calls) == attempts


def test_eks_resource_in_use_is_retried(monkeypatch):
    """EKS's ResourceInUseException (a change still being applied) is retried by the modules' policy."""
    import time

    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # AWSRetry's backoff
    _wrapped, raw = stub_client("eks")
    client = RetryingBotoClientWrapper(raw, runner.retry_policy("eks"))
    with Stubber(raw) as stub:
        stub.add_client_error("update_addon", "ResourceInUseException", "busy", 409)
        stub.add_response("update_addon", {"update": {"id": "u1"}})
        assert api.call("update add-on", client.update_addon, clusterName="c1", addonName="a")["update"]["id"] == "u1"
        stub.assert_no_pending_responses()
