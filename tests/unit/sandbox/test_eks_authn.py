"""sandbox/eks_authn.py: EKS token parsing and validation, the STS call, the TokenReview webhook (all on loopback)."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "sandbox" / "eks_authn.py"
ENDPOINT = "http://127.0.0.1:25055"
NOW = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
SIG = "ab" * 32
ARN = "arn:aws:sts::123456789012:user/moto"
CALLER_XML = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
    f"<UserId>AKIAIOSFODNN7EXAMPLE</UserId><Account>123456789012</Account><Arn>{ARN}</Arn>"
    "</GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
    "</GetCallerIdentityResponse>"
)
ERROR_XML = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    "<Code>SignatureDoesNotMatch</Code><Message>no</Message></Error></ErrorResponse>"
)


@pytest.fixture(scope="module")
def m(eks_authn_mod):
    return eks_authn_mod


def query(**overrides) -> str:
    params = {
        "Action": "GetCallerIdentity",
        "Version": "2011-06-15",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": "testing/20260701/us-east-1/sts/aws4_request",
        "X-Amz-Date": NOW.strftime("%Y%m%dT%H%M%SZ"),
        "X-Amz-Expires": "60",
        "X-Amz-SignedHeaders": "host;x-k8s-aws-id",
        "X-Amz-Signature": SIG,
    }
    for k, v in overrides.items():
        k = k.replace("_", "-")
        if v is None:
            params.pop(k)
        else:
            params[k] = v
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def token(url: str) -> str:
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def good(endpoint: str = ENDPOINT, **overrides) -> str:
    return token(f"{endpoint}/?{query(**overrides)}")


# --------------------------------------------------------------------------- parsing (no network)
def test_a_token_like_the_cli_makes_is_accepted(m):
    p = m.parse_token(good(), ENDPOINT, now=NOW + timedelta(minutes=14))
    assert p.url == f"{ENDPOINT}/?{query()}"
    assert p.access_key_id == "testing" and p.region == "us-east-1"
    assert p.params["action"] == "GetCallerIdentity" and p.params["x-amz-signature"] == SIG


def test_a_botocore_presigned_url_is_accepted(m):
    """The way `aws eks get-token` signs: SigV4 query auth over host and x-k8s-aws-id."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(
        method="GET",
        url=f"{ENDPOINT}/?Action=GetCallerIdentity&Version=2011-06-15",
        headers={"x-k8s-aws-id": "sandbox"},
    )
    SigV4QueryAuth(Credentials("testing", "testing"), "sts", "us-east-1", expires=60).add_auth(req)
    url = req.prepare().url
    assert "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id" in url
    p = m.parse_token(token(url), ENDPOINT)
    assert p.params["x-amz-signedheaders"] == "host;x-k8s-aws-id"
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(p.url).query) == urllib.parse.parse_qs(
        urllib.parse.urlsplit(url).query
    )


def test_padding_is_optional(m):
    body = base64.urlsafe_b64encode(f"{ENDPOINT}/?{query()}".encode()).decode()
    assert m.decode_token("k8s-aws-v1." + body) == m.decode_token("k8s-aws-v1." + body.rstrip("="))


@pytest.mark.parametrize(
    "tok, reason",
    [
        ("garbage", "no k8s-aws-v1. prefix"),
        ("k8s-aws-v1.", "not base64url"),
        ("k8s-aws-v1.a+b/c", "not base64url"),
        ("k8s-aws-v1." + base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(), "ASCII"),
        ("k8s-aws-v1." + "A" * 5000, "longer than"),
        (good("https://sts.amazonaws.com"), "is not the STS endpoint"),
        (good("http://sts.us-east-1.amazonaws.com:25055"), "is not the STS endpoint"),
        (good("http://127.0.0.1:25056"), "is not the STS endpoint"),
        (good("https://127.0.0.1:25055"), "is not the STS endpoint"),
        (good("http://localhost:25055"), "is not the STS endpoint"),
        (good("http://127.0.0.1"), "is not the STS endpoint"),
        (good("http://user@127.0.0.1:25055"), "is not the STS endpoint"),
        (good("http://127.0.0.1:25055@169.254.169.254"), "is not the STS endpoint"),
        (token(f"http://127.0.0.1:25055\\@evil.example/?{query()}"), "backslash"),
        (token(f"http://127.0.0.1:25055/ /?{query()}"), "whitespace"),
        (token(f"{ENDPOINT}/other?{query()}"), "path is not /"),
        (token(f"{ENDPOINT}/?{query()}#frag"), "path is not /"),
        (token(f"{ENDPOINT}/?{query()}&Action=GetCallerIdentity"), "given twice"),
        (token(f"{ENDPOINT}/?{query()}&action=GetCallerIdentity"), "given twice"),
        (good(RoleArn="arn:aws:iam::1:role/x"), "unexpected query parameter"),
        (good(Action="AssumeRole"), "Action is not GetCallerIdentity"),
        (good(Action=None), "Action is not GetCallerIdentity"),
        (good(X_Amz_Algorithm="AWS4-HMAC-SHA1"), "X-Amz-Algorithm"),
        (good(X_Amz_SignedHeaders="host"), "does not include x-k8s-aws-id"),
        (good(X_Amz_SignedHeaders=None), "does not include x-k8s-aws-id"),
        (good(X_Amz_Signature="nothex"), "X-Amz-Signature"),
        (good(X_Amz_Signature=None), "X-Amz-Signature"),
        (good(X_Amz_Credential="testing/20260701/us-east-1/s3/aws4_request"), "sts SigV4 credential scope"),
        (good(X_Amz_Credential="testing"), "sts SigV4 credential scope"),
        (good(X_Amz_Date="yesterday"), "X-Amz-Date is missing or malformed"),
        (good(X_Amz_Date=(NOW - timedelta(minutes=16)).strftime("%Y%m%dT%H%M%SZ")), "expired"),
    ],
)
def test_refused(m, tok, reason):
    with pytest.raises(m.TokenError) as exc:
        m.parse_token(tok, ENDPOINT, now=NOW)
    assert reason in str(exc.value)
    body = tok.removeprefix("k8s-aws-v1.")
    if body:
        assert body not in str(exc.value)  # the message (logged, returned to the apiserver) never has the token


def test_caller_identity_xml(m):
    assert m.parse_caller_identity(CALLER_XML) == (ARN, "123456789012", "AKIAIOSFODNN7EXAMPLE")
    for text, reason in [
        (ERROR_XML, "not GetCallerIdentityResponse"),
        ("<ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>", "not GetCallerIdentityResponse"),
        ("<GetCallerIdentityResponse><GetCallerIdentityResult/></GetCallerIdentityResponse>", "no caller ARN"),
        ("not xml", "not XML"),
    ]:
        with pytest.raises(m.TokenError, match=reason):
            m.parse_caller_identity(text)


def test_only_loopback_sts_endpoints(m):
    for bad in ("https://sts.amazonaws.com", "http://10.0.0.1:5055", "ftp://127.0.0.1:1", "http://u@127.0.0.1:1"):
        with pytest.raises(ValueError):
            m.Authenticator(bad, "sandbox")
    assert m.Authenticator("http://127.0.0.1:25055/", "sandbox").endpoint == ENDPOINT


# --------------------------------------------------------------------------- against a fake STS on loopback
class FakeSTS(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, reply=(200, CALLER_XML), location=None):
        self.requests, self.reply, self.location = [], reply, location
        server = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                code, body = server.reply
                self.send_response(code)
                if server.location:
                    self.send_header("Location", server.location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), H)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def sts():
    servers = []

    def make(**kw):
        servers.append(FakeSTS(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def fresh(endpoint, **overrides):
    return good(endpoint, X_Amz_Date=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"), **overrides)


def test_an_accepted_token_is_fetched_with_the_cluster_header(m, sts):
    fake = sts()
    authn = m.Authenticator(fake.endpoint, "sandbox", timeout=2)
    status, summary = authn.review(fresh(fake.endpoint))
    assert status == {
        "authenticated": True,
        "user": {
            "username": ARN,
            "uid": "aws-iam-authenticator:123456789012:AKIAIOSFODNN7EXAMPLE",
            "groups": ["system:masters"],
            "extra": {
                "arn": [ARN],
                "accountId": ["123456789012"],
                "principalId": ["AKIAIOSFODNN7EXAMPLE"],
                "accessKeyId": ["testing"],
            },
        },
    }
    assert summary == f"authenticated {ARN}"
    [(path, headers)] = fake.requests
    assert path.startswith("/?Action=GetCallerIdentity&")
    assert headers["x-k8s-aws-id"] == "sandbox"
    # moto routes by the Authorization header's credential scope: the query's signature, repeated
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=testing/20260701/us-east-1/sts/aws4_request, "
        f"SignedHeaders=host;x-k8s-aws-id, Signature={SIG}"
    )
    assert authn.stats() == {"reviews": 1, "authenticated": 1, "rejected": 0, "sts_requests": 1, "sts_errors": 0}


def test_a_refused_token_makes_no_request(m, sts):
    fake = sts()
    authn = m.Authenticator(fake.endpoint, "sandbox", timeout=2)
    for tok in ("garbage", fresh("https://sts.amazonaws.com"), fresh(fake.endpoint, X_Amz_SignedHeaders="host")):
        status, summary = authn.review(tok)
        assert status["authenticated"] is False and status["error"] and summary.startswith("rejected: ")
    assert fake.requests == []
    assert authn.stats() == {"reviews": 3, "authenticated": 0, "rejected": 3, "sts_requests": 0, "sts_errors": 0}


@pytest.mark.parametrize(
    "reply, reason",
    [
        ((403, ERROR_XML), "HTTP 403 SignatureDoesNotMatch"),
        ((200, "<ListAllMyBucketsResult/>"), "not GetCallerIdentityResponse"),
        ((500, "oops"), "HTTP 500"),
    ],
)
def test_sts_errors_refuse(m, sts, reply, reason):
    fake = sts(reply=reply)
    authn = m.Authenticator(fake.endpoint, "sandbox", timeout=2)
    status, unused_code = authn.review(fresh(fake.endpoint))
    assert status["authenticated"] is False and reason in status["error"]
    assert authn.stats()["sts_errors"] == 1


def test_redirects_are_not_followed(m, sts):
    elsewhere = sts()
    fake = sts(reply=(302, ""), location=f"{elsewhere.endpoint}/?{query()}")
    authn = m.Authenticator(fake.endpoint, "sandbox", timeout=2)
    status, unused_code = authn.review(fresh(fake.endpoint))
    assert status["authenticated"] is False and "redirects are not followed" in status["error"]
    assert len(fake.requests) == 1 and elsewhere.requests == []


def test_sts_down_refuses(m, sts):
    fake = sts()
    endpoint = fake.endpoint
    fake.close()
    authn = m.Authenticator(endpoint, "sandbox", timeout=2)
    status, unused_code = authn.review(fresh(endpoint))
    assert status["authenticated"] is False and "STS request failed" in status["error"]


# --------------------------------------------------------------------------- the webhook over HTTP
def post(url, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_webhook_tokenreview_over_http(m, sts):
    fake = sts()
    server = m.Server(0, m.Authenticator(fake.endpoint, "sandbox", timeout=2))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": ""}}
        review["spec"]["token"] = fresh(fake.endpoint)
        code, out = post(f"{base}/authenticate?timeout=30s", review)
        assert code == 200 and out["apiVersion"] == "authentication.k8s.io/v1" and out["kind"] == "TokenReview"
        assert out["status"]["authenticated"] is True and out["status"]["user"]["username"] == ARN

        review["spec"]["token"] = "garbage"
        code, out = post(f"{base}/authenticate", review)
        assert code == 200 and out["status"]["authenticated"] is False and "k8s-aws-v1" in out["status"]["error"]

        assert post(f"{base}/authenticate", b"{not json")[0] == 400
        assert post(f"{base}/authenticate", {"kind": "SubjectAccessReview", "spec": {"token": "x"}})[0] == 400
        assert post(f"{base}/elsewhere", review)[0] == 404
        with urllib.request.urlopen(f"{base}/stats", timeout=5) as resp:
            assert json.load(resp) == {
                "reviews": 2,
                "authenticated": 1,
                "rejected": 1,
                "sts_requests": 1,
                "sts_errors": 0,
            }
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
            assert resp.read() == b"ok"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_ready_file_and_sigterm(tmp_path):
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "--port=0",
            "--sts-endpoint=http://127.0.0.1:9",
            "--cluster-name=sandbox",
            f"--ready-file={ready}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["host"] == "127.0.0.1" and info["pid"] == proc.pid
        with urllib.request.urlopen(f"{info['endpoint']}/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0 and not ready.exists()
    assert "READY" in proc.stderr.read()


def test_cli_refuses_a_non_loopback_sts_endpoint():
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--port=0", "--sts-endpoint=https://sts.amazonaws.com", "--cluster-name=x"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 1 and "non-loopback" in res.stderr
