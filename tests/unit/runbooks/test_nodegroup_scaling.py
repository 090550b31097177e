"""Managed node group scaling (module_utils/aws/nodegroup_scaling.py) against moto in-process.

moto implements eks:CreateNodegroup, DescribeNodegroup and UpdateNodegroupConfig, so the logic runs against it and
each test reads moto's state with a plain boto3 client to prove what was (or, in check mode and on a no-op, was
not) written; a recording wrapper lists the API calls made. The failure path of the wait (a DEGRADED node group,
which moto cannot produce) uses botocore's Stubber, which checks the requests against the real EKS service model.
"""

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.api import AwsOperationError
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.nodegroup_scaling import (
    ensure_nodegroup_scaling,
    target,
)
from botocore.stub import Stubber

moto = pytest.importorskip("moto")

CLUSTER, NG = "platform-prod", "core"


class Recording:
    """The retrying client as the module gets it, recording the operations called."""

    def __init__(self, raw):
        self._wrapped = RetryingBotoClientWrapper(raw, AWSRetry.jittered_backoff(retries=1, delay=0))
        self.calls = []

    def __getattr__(self, name):
        method = getattr(self._wrapped, name)

        def call(**kw):
            self.calls.append(name)
            return method(**kw)

        return call


@pytest.fixture
def eks(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        raw = boto3.client("eks", region_name="us-east-1")
        raw.create_cluster(
            name=CLUSTER,
            roleArn="arn:aws:iam::123456789012:role/EKSClusterRole-platform-prod",
            resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
        )
        raw.create_nodegroup(
            clusterName=CLUSTER,
            nodegroupName=NG,
            nodeRole="arn:aws:iam::123456789012:role/core-nodes",
            subnets=["subnet-1", "subnet-2"],
            scalingConfig={"minSize": 1, "maxSize": 3, "desiredSize": 2},
            labels={"role": "core"},
        )
        yield Recording(raw), raw


def params(**kw):
    p = dict(cluster_name=CLUSTER, name=NG, desired_size=4, min_size=None, max_size=None, wait=True, wait_timeout=30)
    p.update(kw)
    return p


def live(raw):
    return raw.describe_nodegroup(clusterName=CLUSTER, nodegroupName=NG)["nodegroup"]


def test_scale_up_raises_max_and_keeps_the_rest(eks):
    client, raw = eks
    res = ensure_nodegroup_scaling(client, params(), check_mode=False)
    assert res["changed"]
    assert res["previous_scaling_config"] == {"min_size": 1, "max_size": 3, "desired_size": 2}
    assert res["scaling_config"] == {"min_size": 1, "max_size": 4, "desired_size": 4}
    assert res["diff"] == {
        "before": {"scaling_config": {"min_size": 1, "max_size": 3, "desired_size": 2}},
        "after": {"scaling_config": {"min_size": 1, "max_size": 4, "desired_size": 4}},
    }
    ng = live(raw)
    assert ng["scalingConfig"] == {"minSize": 1, "maxSize": 4, "desiredSize": 4}
    assert ng["labels"] == {"role": "core"} and res["nodegroup"]["labels"] == {"role": "core"}
    assert res["eks_update"]["type"] == "ConfigUpdate"
    assert client.calls == ["describe_nodegroup", "update_nodegroup_config", "describe_nodegroup"]


def test_check_mode_only_reads(eks):
    client, raw = eks
    res = ensure_nodegroup_scaling(client, params(), check_mode=True)
    assert res["changed"] and res["scaling_config"]["desired_size"] == 4 and res["eks_update"] == {}
    assert res["nodegroup"]["scaling_config"] == {"min_size": 1, "max_size": 4, "desired_size": 4}  # would be
    assert live(raw)["scalingConfig"] == {"minSize": 1, "maxSize": 3, "desiredSize": 2}
    assert client.calls == ["describe_nodegroup"]


def test_second_run_is_a_no_op(eks):
    client, raw = eks
    ensure_nodegroup_scaling(client, params(), check_mode=False)
    client.calls.clear()
    res = ensure_nodegroup_scaling(client, params(), check_mode=False)
    assert not res["changed"] and res["diff"]["before"] == res["diff"]["after"]
    assert client.calls == ["describe_nodegroup"]


def test_undo_restores_the_previous_config(eks):
    client, raw = eks
    first = ensure_nodegroup_scaling(client, params(desired_size=5), check_mode=False)
    prev = first["previous_scaling_config"]
    res = ensure_nodegroup_scaling(
        client,
        params(desired_size=prev["desired_size"], min_size=prev["min_size"], max_size=prev["max_size"]),
        check_mode=False,
    )
    assert res["changed"] and live(raw)["scalingConfig"] == {"minSize": 1, "maxSize": 3, "desiredSize": 2}


def test_missing_node_group(eks):
    client, _raw = eks
    with pytest.raises(AwsOperationError, match="node group other of cluster platform-prod not found"):
        ensure_nodegroup_scaling(client, params(name="other"), check_mode=True)


def test_invalid_config_is_refused_before_any_write(eks):
    client, raw = eks
    with pytest.raises(AwsOperationError, match="invalid scaling config"):
        ensure_nodegroup_scaling(client, params(desired_size=4, max_size=3), check_mode=False)
    assert client.calls == ["describe_nodegroup"]


def test_target():
    cur = {"minSize": 2, "maxSize": 3, "desiredSize": 2}
    assert target(cur, 1) == {"minSize": 1, "maxSize": 3, "desiredSize": 1}
    assert target(cur, 6, max_size=10) == {"minSize": 2, "maxSize": 10, "desiredSize": 6}
    with pytest.raises(AwsOperationError):
        target(cur, 0, max_size=0)


def test_wait_fails_with_the_node_group_state():
    raw = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("eks", endpoint_url="http://127.0.0.1:1")  # never reached: every call is stubbed
    key = {"clusterName": CLUSTER, "nodegroupName": NG}

    def ng(status, desired):
        return {
            "nodegroup": {
                "nodegroupName": NG,
                "clusterName": CLUSTER,
                "status": status,
                "scalingConfig": {"minSize": 1, "maxSize": 4, "desiredSize": desired},
                "health": {"issues": [{"code": "AsgInstanceLaunchFailures", "message": "capacity"}]},
            }
        }

    with Stubber(raw) as stub:
        stub.add_response("describe_nodegroup", ng("ACTIVE", 2), key)
        stub.add_response(
            "update_nodegroup_config",
            {"update": {"id": "u1", "status": "InProgress", "type": "ConfigUpdate"}},
            dict(key, scalingConfig={"minSize": 1, "maxSize": 4, "desiredSize": 4}),
        )
        stub.add_response("describe_nodegroup", ng("UPDATING", 2), key)
        stub.add_response("describe_nodegroup", ng("DEGRADED", 4), key)
        slept = []
        client = RetryingBotoClientWrapper(raw, AWSRetry.jittered_backoff(retries=1, delay=0))
        with pytest.raises(AwsOperationError, match="not ACTIVE.*status DEGRADED.*AsgInstanceLaunchFailures"):
            ensure_nodegroup_scaling(client, params(), check_mode=False, sleep=slept.append, clock=lambda: 0.0)
        assert slept == [5.0]
        stub.assert_no_pending_responses()
