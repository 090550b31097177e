"""Stubbed AWS clients for the EKS/IAM module logic (plugins/module_utils/aws/eks.py)."""

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper
from batchlib import aws, moto_endpoint  # noqa: F401  # pylint: disable=unused-import
from botocore.stub import Stubber


def _client(service):
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(service, endpoint_url="http://127.0.0.1:1")  # never reached: every call is stubbed


@pytest.fixture
def eks():
    """(wrapped client as the modules get it, Stubber); asserts every queued call was made."""
    client = _client("eks")
    with Stubber(client) as stub:
        yield RetryingBotoClientWrapper(client, AWSRetry.jittered_backoff(retries=1, delay=0)), stub
        stub.assert_no_pending_responses()
