"""Fake HTTP connections under the real KubeApi (tests/unit/kube): scripted answers, recorded requests.

``direct_api(script)`` is a KubeApi over the direct transport whose connection answers from ``script``, one
entry per request: ``(status, body)``, ``(status, body, headers)``, an exception instance to raise while
sending, or a ``Stream`` (a watch answer: chunks, then optionally an exception while reading, as a
connection broken mid-stream).
"""

import http.client
import json

from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import transport


def status_body(code, message, reason="InternalError", **details):
    """A metav1.Status answer as the apiserver sends it."""
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason}
    body["code"] = code
    if details:
        body["details"] = details
    return json.dumps(body).encode()


def event(kind, obj):
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


class Stream:
    """A watch answer: ``chunks`` (bytes), then ``error`` raised by the next read (None: a clean end)."""

    def __init__(self, *chunks, error=None):
        self.chunks, self.error = list(chunks), error


class FakeResponse:
    reason = "answer"
    will_close = False

    def __init__(self, status, body=b"", headers=None, stream=None):
        self.status, self.body, self.headers, self.stream = status, body, headers or {}, stream

    def read(self):
        if isinstance(self.body, Exception):  # the answer is lost on the way
            raise self.body
        return self.body

    def read1(self, n):
        if self.stream.chunks:
            return self.stream.chunks.pop(0)
        if self.stream.error is not None:
            raise self.stream.error
        return b""

    def getheaders(self):
        return list(self.headers.items())


class FakeConnection:
    sock = object()

    def __init__(self, script):
        self.script = list(script)
        self.requests = []  # (method, url, body bytes, headers)

    def request(self, method, url, body=None, headers=None):
        self.requests.append((method, url, body, dict(headers or {})))
        if isinstance(self.script[0], Exception):
            raise self.script.pop(0)

    def getresponse(self):
        answer = self.script.pop(0)
        if isinstance(answer, Stream):
            return FakeResponse(200, stream=answer)
        return FakeResponse(*answer)

    def close(self):
        pass


class Sleeps(list):
    """The backoff sleeps, recorded; each moves the fake clock on instead of sleeping."""

    def __init__(self):
        super().__init__()
        self.now = 1000.0

    def __call__(self, seconds):
        self.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def direct_api(script, **kw):
    """(KubeApi over the direct transport answering from ``script``, its FakeConnection, recorded sleeps)."""
    sleeps = Sleeps()
    cfg = transport.DirectConfig("h", 443, None, "Bearer t")
    api = kclient.KubeApi(cfg, sleep=sleeps, clock=sleeps.clock, **kw)
    conn = FakeConnection(script)
    api.direct._connection = lambda timeout, fresh=False: conn
    return api, conn, sleeps


def incomplete_read():
    return http.client.IncompleteRead(b"")
