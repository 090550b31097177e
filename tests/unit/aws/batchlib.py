"""Helpers of the batch AWS module tests: a moto server on loopback and a witness of every request sent.

The server is moto's ``ThreadedMotoServer`` bound to 127.0.0.1 on a free port, in this process; each test starts
from an empty state (``POST /moto-api/reset``). The clients talk to it over HTTP like the modules do.

``Witness`` records the operation of every request a botocore client sends (``before-call``, registered by the
test, not by the code under test), so "no write" is asserted from what left the client, and moto's state is
read back with a second, plain client.
"""

import json
import os
import urllib.request

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper

READS = ("Describe", "Get", "List")


class Witness:
    def __init__(self, raw):
        self.calls = []
        raw.meta.events.register("before-call", self._record)

    def _record(self, model=None, **kwargs):
        self.calls.append(model.name)

    @property
    def writes(self):
        return [c for c in self.calls if not c.startswith(READS)]

    def reset(self):
        del self.calls[:]


def make_client(endpoint, service):
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(service, endpoint_url=endpoint)


@pytest.fixture(scope="module")
def moto_endpoint():
    moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    yield "http://127.0.0.1:%d" % port
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """``aws(service)`` -> (client as the modules get it, witness, plain client for reading moto's state)."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    urllib.request.urlopen(urllib.request.Request(moto_endpoint + "/moto-api/reset", method="POST"), timeout=10)

    def make(service):
        raw = make_client(moto_endpoint, service)
        wrapped = RetryingBotoClientWrapper(raw, AWSRetry.jittered_backoff(retries=2, delay=0))
        return wrapped, Witness(raw), make_client(moto_endpoint, service)

    return make


def stub_client(service):
    """A client for botocore's Stubber (never reaches the network), wrapped as the modules get it."""
    raw = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        service, region_name="us-east-1", endpoint_url="http://127.0.0.1:1"
    )
    return RetryingBotoClientWrapper(raw, AWSRetry.jittered_backoff(retries=3, delay=0)), raw


def as_json(value):
    return json.loads(json.dumps(value, default=str))
