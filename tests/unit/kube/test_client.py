"""KubeApi (plugins/module_utils/kube/client.py) over fake connections: what goes on the wire, which answers are
retried, and how a watch survives a broken connection. The same requests against the real apiserver are in
tests/integration/test_reliability.py."""

import http.client
import json
import ssl
import urllib.parse

import pytest
import urllib3
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine, objects, resource
from kubefakes import Stream, direct_api, event, status_body

EMOJI = "\U0001f600"  # outside the Basic Multilingual Plane: JSON escapes it as a surrogate pair
CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "smile", "namespace": "default", "annotations": {"note": "ship it " + EMOJI}},
    "data": {"greeting": "h\u00e9llo " + EMOJI, "tab": "a\tb"},
}
CM_PATH = "/api/v1/namespaces/default/configmaps/smile"


def stored(body):
    """The object the apiserver stores and returns for an apply body (JSON with raw UTF-8, as Go writes it)."""
    obj = json.loads(body.decode("utf-8"))
    obj["metadata"].update(uid="u", resourceVersion="1", creationTimestamp="2026-01-01T00:00:00Z")
    return obj


# ------------------------------------------------------------------------------------ UTF-8 request bodies
def test_direct_transport_sends_apply_bodies_as_raw_utf8():
    api, conn, _unused = direct_api([(200, json.dumps(CM).encode())])
    api.apply(CM_PATH, CM, "test")
    method, _url, body, headers = conn.requests[0]
    assert method == "PATCH" and headers["Content-Type"].startswith("application/apply-patch+yaml")
    assert b"\\u" not in body  # no escape the YAML decoder could refuse
    assert EMOJI.encode("utf-8") in body and "\u00e9".encode() in body
    assert json.loads(body.decode("utf-8")) == CM


def official_api(monkeypatch):
    """A KubeApi over kubernetes.client whose urllib3 pool records the request instead of sending it."""
    from kubernetes.client import Configuration

    cfg = Configuration()
    cfg.host = "https://127.0.0.1:1"
    api = kclient.KubeApi(cfg, sleep=lambda s: None)
    sent = []

    class Resp:
        status, reason, data = 200, "OK", json.dumps(CM).encode()

        def getheaders(self):
            return {}

        def getheader(self, name, default=None):
            return default

    def request(method, url, body=None, headers=None, **kw):
        sent.append((method, url, body, headers))
        return Resp()

    monkeypatch.setattr(api.client.rest_client.pool_manager, "request", request)
    return api, sent


def test_official_client_sends_apply_bodies_as_raw_utf8(monkeypatch):
    api, sent = official_api(monkeypatch)
    assert api.apply(CM_PATH, CM, "test")["data"] == CM["data"]
    _method, _url, body, headers = sent[0]
    body = body if isinstance(body, bytes) else body.encode("utf-8")
    assert b"\\u" not in body and EMOJI.encode("utf-8") in body
    assert json.loads(body) == CM
    assert headers["Content-Type"].split(";")[0] == "application/apply-patch+yaml"


def test_official_client_still_encodes_json_bodies_itself(monkeypatch):
    api, sent = official_api(monkeypatch)
    api.delete(CM_PATH)
    assert json.loads(sent[0][2]) == {"propagationPolicy": "Background"}


def test_surrogate_pairs_are_joined_and_a_lone_surrogate_sends_nothing():
    pair = dict(CM, data={"k": "\ud83d\ude00"})  # e.g. a YAML "\ud83d\ude00" escape: two code points
    api, conn, _unused = direct_api([(200, b"{}")])
    api.apply(CM_PATH, pair, "test")
    assert json.loads(conn.requests[0][2].decode("utf-8"))["data"]["k"] == EMOJI
    lone = dict(CM, data={"k": "\ud83d"})
    api, conn, _unused = direct_api([])
    with pytest.raises(kclient.KubeError, match="not valid Unicode"):
        api.apply(CM_PATH, lone, "test")
    assert conn.requests == []


def test_the_stored_object_compares_equal_afterwards():
    """After the write, the next run plans no change (no perpetual update of an emoji)."""
    (obj,) = objects.prepare([CM])
    obj.resource = objects.Resource.of("v1", "ConfigMap", "configmaps", True)
    item = engine.make_plan([obj], {}, strategy=engine.CONTAINS)[0]
    api, conn, _unused = direct_api([(200, b"{}")])
    api.apply(CM_PATH, item.sent, "test")
    live = stored(conn.requests[0][2])
    assert engine.make_plan([obj], {obj.key: live}, strategy=engine.CONTAINS)[0].action == "unchanged"

    pool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "p", "annotations": {"team": EMOJI}},
        "spec": {"template": {"spec": {"requirements": []}}},
    }
    api, conn, _unused = direct_api([(200, b"{}")])
    api.apply(resource.NODEPOOL.path("p"), pool, engine.FIELD_MANAGER)
    live = stored(conn.requests[0][2])
    live["metadata"]["managedFields"] = [
        {
            "manager": engine.FIELD_MANAGER,
            "operation": "Apply",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:team": {}}}, "f:spec": {"f:template": {}}},
        }
    ]
    assert engine.plan_kind(resource.NODEPOOL, [pool], {"p": live})[0].action == "unchanged"


# ------------------------------------------------------------------------------------ which answers are retried
DETERMINISTIC_500 = (
    "failed to create typed patch object (/smile; /v1, Kind=ConfigMap): "
    ".data.x: expected string, got &value.valueUnstructured"
)


def test_a_deterministic_500_fails_at_once_with_the_apiservers_message():
    api, conn, sleeps = direct_api([(500, status_body(500, DETERMINISTIC_500))] * 6)
    with pytest.raises(kclient.KubeError) as err:
        api.apply(CM_PATH, CM, "test")
    assert len(conn.requests) == 1 and sleeps == []
    assert err.value.status == 500 and str(err.value) == DETERMINISTIC_500 + " (HTTP 500)"


@pytest.mark.parametrize(
    "answer",
    [
        (500, status_body(500, "etcdserver: request timed out")),
        (500, status_body(500, "rpc error: code = Unavailable desc = transport is closing")),
        (500, status_body(500, "Timeout: request did not complete", reason="ServerTimeout", retryAfterSeconds=1)),
        (500, status_body(500, "the server is busy"), {"Retry-After": "1"}),
        (429, status_body(429, "too many requests", reason="TooManyRequests")),
        (503, b"<html>service unavailable</html>"),
        (504, status_body(504, "the server was unable to return a response", reason="Timeout")),
    ],
    ids=["etcd-timeout", "grpc-unavailable", "server-timeout", "retry-after", "429", "503", "504"],
)
def test_transient_answers_are_retried_with_backoff(answer):
    api, conn, sleeps = direct_api([answer, answer, (200, b'{"kind": "ConfigMap"}')])
    assert api.apply(CM_PATH, CM, "test") == {"kind": "ConfigMap"}
    assert len(conn.requests) == 3 and len(sleeps) == 2 and all(0 < s <= 10 for s in sleeps)


def test_a_transient_answer_gives_up_after_the_retries_with_its_message():
    answer = (500, status_body(500, "etcdserver: leader changed"))
    api, conn, sleeps = direct_api([answer] * 3, retries=2)
    with pytest.raises(kclient.KubeError, match=r"etcdserver: leader changed \(HTTP 500\)"):
        api.get(CM_PATH)
    assert len(conn.requests) == 3 and len(sleeps) == 2


def test_connection_errors_are_retried():
    api, conn, sleeps = direct_api([OSError("connection refused"), (200, b"{}")])
    assert api.get(CM_PATH) == {} and len(sleeps) == 1


# ------------------------------------------------------------------------------------ watches that break
POOLS = "/apis/karpenter.sh/v1/nodepools"


def obj(name, rv, ready=False):
    return {"metadata": {"name": name, "resourceVersion": rv}, "status": {"ready": ready}}


def watch_queries(conn):
    """The query of every watch request, in order (LISTs excluded)."""
    out = []
    for _m, url, _b, _h in conn.requests:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        if query.get("watch") == "true":
            out.append(query)
    return out


def ready_when(name):
    return lambda kind, o: o["metadata"]["name"] == name and o["status"]["ready"]


@pytest.mark.parametrize(
    "error",
    [
        http.client.IncompleteRead(b""),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),
        urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(0 bytes read)"),
    ],
    ids=["incomplete-read", "reset", "read-timeout", "urllib3-protocol-error"],
)
def test_a_broken_watch_is_watched_again_from_the_last_version(error):
    script = [
        Stream(event("ADDED", obj("a", "11")), error=error),
        Stream(event("MODIFIED", obj("a", "12", ready=True))),
    ]
    api, conn, sleeps = direct_api(script)
    assert api.watch_until(POOLS, ready_when("a"), "10", timeout=60) is True
    assert [q["resourceVersion"] for q in watch_queries(conn)] == ["10", "11"]
    assert len(sleeps) == 1 and api.counts == {"watch": 2}


def test_a_watch_that_cannot_be_opened_for_a_while_is_retried():
    script = [
        ConnectionRefusedError(111, "Connection refused"),
        (503, status_body(503, "apiserver restarting", reason="ServiceUnavailable")),
        Stream(event("MODIFIED", obj("a", "12", ready=True))),
    ]
    api, conn, sleeps = direct_api(script)
    assert api.watch_until(POOLS, ready_when("a"), "10", timeout=60) is True
    assert [q["resourceVersion"] for q in watch_queries(conn)] == ["10", "10", "10"] and len(sleeps) == 2


EXPIRED = [  # factories: a Stream is consumed as it is read
    lambda: Stream(event("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"})),
    lambda: (410, status_body(410, "too old resource version", reason="Expired")),
]
LISTED = {"metadata": {"resourceVersion": "50"}, "items": [obj("a", "49", ready=True)]}


@pytest.mark.parametrize("expired", EXPIRED, ids=["error-event", "http-410"])
def test_an_expired_version_is_listed_afresh_and_the_list_seen(expired):
    api, conn, _unused = direct_api([expired(), (200, json.dumps(LISTED).encode())])
    seen = []

    def on_list(items):
        seen.extend(items)
        return True

    assert api.watch_until(POOLS, ready_when("a"), "10", 60, on_list=on_list) is True
    assert seen == LISTED["items"] and api.counts == {"watch": 1, "list": 1}


@pytest.mark.parametrize("expired", EXPIRED, ids=["error-event", "http-410"])
def test_without_on_list_the_fresh_version_is_watched_on(expired):
    script = [expired(), (200, json.dumps(LISTED).encode()), Stream(event("ADDED", obj("a", "51", ready=True)))]
    api, conn, _unused = direct_api(script)
    assert api.watch_until(POOLS, ready_when("a"), "10", 60) is True
    assert [q["resourceVersion"] for q in watch_queries(conn)] == ["10", "50"]


def test_a_watch_still_broken_at_the_deadline_is_an_error_naming_the_cause():
    api, conn, sleeps = direct_api([Stream(error=http.client.IncompleteRead(b""))] * 200)
    with pytest.raises(kclient.KubeError, match=r"broken and not re-established within 20s: IncompleteRead"):
        api.watch_until(POOLS, ready_when("a"), "10", timeout=20)
    assert sum(sleeps) == pytest.approx(20) and all(q["resourceVersion"] == "10" for q in watch_queries(conn))


def test_a_quiet_watch_times_out_as_false():
    api, conn, sleeps = direct_api([Stream()] * 3)
    times = iter([0, 0, 5, 30])
    api._clock = lambda: next(times)
    assert api.watch_until(POOLS, ready_when("a"), "10", timeout=20) is False


@pytest.mark.parametrize(
    "answer",
    [
        (403, status_body(403, "nodepools.karpenter.sh is forbidden", reason="Forbidden")),
        (500, status_body(500, DETERMINISTIC_500)),
        Stream(event("ERROR", {"kind": "Status", "code": 500, "message": DETERMINISTIC_500})),
    ],
    ids=["forbidden", "deterministic-500", "error-event"],
)
def test_a_refused_watch_fails_at_once(answer):
    api, conn, sleeps = direct_api([answer])
    with pytest.raises(kclient.KubeError):
        api.watch_until(POOLS, ready_when("a"), "10", timeout=60)
    assert len(conn.requests) == 1 and sleeps == []


def test_a_tls_connection_cut_by_the_server_is_retried_a_certificate_problem_is_not():
    api, conn, sleeps = direct_api([ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), (200, b"{}")])
    assert api.get(CM_PATH) == {} and len(sleeps) == 1
    refused = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    api, conn, sleeps = direct_api([refused])
    with pytest.raises(kclient.KubeError, match="TLS error"):
        api.get(CM_PATH)
    api, conn, sleeps = direct_api([refused])
    with pytest.raises(kclient.KubeError, match="TLS error"):
        api.watch_until(POOLS, ready_when("a"), "10", timeout=60)
    assert sleeps == []
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    api, conn, sleeps = direct_api([eof, Stream(event("ADDED", obj("a", "11", ready=True)))])
    assert api.watch_until(POOLS, ready_when("a"), "10", timeout=60) is True and len(sleeps) == 1
