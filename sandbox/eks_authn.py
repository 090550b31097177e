#!/usr/bin/env python3
"""The sandbox's aws-iam-authenticator: a Kubernetes token-authentication webhook that accepts EKS tokens.

``aws eks get-token --cluster-name <name>`` prints ``k8s-aws-v1.<base64url of a presigned STS GetCallerIdentity
URL>`` (the signed headers include ``x-k8s-aws-id``, whose value is the cluster name). Real EKS verifies such a
token with aws-iam-authenticator, a TokenReview webhook of the apiserver that calls the presigned URL with
``x-k8s-aws-id: <cluster>`` and maps the caller ARN STS returns to a Kubernetes user. This is the same thing
against moto on loopback, with the standard library only:

* ``POST /authenticate``: a ``TokenReview`` (``authentication.k8s.io/v1``, JSON in and out, always HTTP 200 for a
  well-formed review). A token is accepted only if it decodes to a URL whose scheme, host and port are exactly
  those of ``--sts-endpoint`` (a loopback address, checked at start-up), with path ``/``, only the query
  parameters a presigned GetCallerIdentity has (each once), ``Action=GetCallerIdentity``, a SigV4 ``sts``
  credential scope, ``X-Amz-SignedHeaders`` including ``x-k8s-aws-id`` and an ``X-Amz-Date`` at most 15 minutes
  old (moto checks neither signatures nor expiry, aws-iam-authenticator checks the same 15 minutes). Every other
  token is refused **without any request**. An accepted one is fetched (no proxy, no redirect, a few seconds'
  timeout) from a URL rebuilt from ``--sts-endpoint`` and the validated query; ``<Arn>``, ``<Account>`` and
  ``<UserId>`` of the GetCallerIdentity reply become ``username`` = the ARN,
  ``uid`` = ``aws-iam-authenticator:<account>:<userid>`` and ``groups`` = ``system:masters`` (the sandbox's caller
  is its cluster creator, which EKS makes an admin).
* ``GET /healthz``: ``ok``. ``GET /stats``: JSON counters ``reviews``, ``authenticated``, ``rejected``,
  ``sts_requests`` (outbound calls made), ``sts_errors``.

moto (5.2.5) routes a request to a service only by the credential scope of its ``Authorization`` header; a
presigned URL has none, so moto would answer it as S3 ``ListBuckets``. The webhook therefore repeats the query's
credential, signed headers and signature as an ``Authorization`` header (real STS would not need it).

One line per review goes to stderr (the result and the reason or the ARN; never the token).

CLI::

    python sandbox/eks_authn.py --port 26460 --sts-endpoint http://127.0.0.1:25055 --cluster-name sandbox \\
        [--ready-file F]

runs in the foreground until SIGTERM/SIGINT; ``--port 0`` picks a free port (read it from the ready file,
``{"endpoint", "host", "port", "pid"}``, written once listening).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import http.client
import ipaddress
import json
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from procfiles import write_ready

HOST = "127.0.0.1"
TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
MAX_TOKEN_BYTES = 4096  # aws-iam-authenticator's limit
MAX_BODY_BYTES = 64 * 1024
PRESIGN_MAX_AGE = timedelta(minutes=15)
DEFAULT_GROUPS = ("system:masters",)
# The parameters of a presigned GetCallerIdentity URL (lower case); anything else is refused.
ALLOWED_PARAMS = frozenset(
    {
        "action",
        "version",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-signedheaders",
    }
)
REVIEW_VERSIONS = ("authentication.k8s.io/v1", "authentication.k8s.io/v1beta1")


class TokenError(ValueError):
    """Why a token is refused (the message never contains the token)."""


@dataclass(frozen=True)
class Presigned:
    url: str  # rebuilt from the configured endpoint and the validated query
    params: dict[str, str]  # lower-case name -> value
    access_key_id: str
    region: str


@dataclass(frozen=True)
class Identity:
    arn: str
    account: str
    user_id: str
    access_key_id: str = ""


def _require_loopback_endpoint(endpoint: str) -> urllib.parse.SplitResult:
    ep = urllib.parse.urlsplit(endpoint)
    if ep.scheme not in ("http", "https") or not ep.hostname or ep.username or ep.password:
        raise ValueError(f"--sts-endpoint must be http(s)://<loopback host>:<port>, not {endpoint!r}")
    host = ep.hostname
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"refusing non-loopback STS endpoint {endpoint!r}: the sandbox only talks to 127.0.0.1")
    return ep


def _origin(u: urllib.parse.SplitResult) -> tuple[str, str, int | None]:
    port = u.port or {"http": 80, "https": 443}.get(u.scheme.lower())
    return (u.scheme.lower(), (u.hostname or "").lower(), port)


def _short(value: str, n: int = 60) -> str:
    return repr(value if len(value) <= n else value[:n] + "...")


def decode_token(token: str) -> str:
    """``k8s-aws-v1.<base64url>`` -> the presigned URL (padding added)."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise TokenError("not an EKS token (no k8s-aws-v1. prefix)")
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError(f"token longer than {MAX_TOKEN_BYTES} bytes")
    body = token[len(TOKEN_PREFIX) :]
    if not body or not re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", body):
        raise TokenError("token is not base64url")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise TokenError("token is not base64url of an ASCII URL")


def parse_token(token: str, endpoint: str, now: datetime | None = None) -> Presigned:
    """Validate an EKS token against the configured STS endpoint; raise TokenError, never make a request."""
    url = decode_token(token)
    if any(c in url for c in "\r\n\t\\ ") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise TokenError("URL contains whitespace, control characters or backslashes")
    try:
        u = urllib.parse.urlsplit(url)
        origin = _origin(u)
    except ValueError:
        raise TokenError("token is not a URL")
    ep = urllib.parse.urlsplit(endpoint)
    if u.username is not None or u.password is not None or origin != _origin(ep) or u.netloc != ep.netloc:
        raise TokenError(f"URL host {_short(u.netloc)} is not the STS endpoint {ep.netloc}")
    if u.path not in ("", "/") or u.fragment:
        raise TokenError("URL path is not /")
    try:
        pairs = urllib.parse.parse_qsl(u.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise TokenError("URL query is malformed")
    params: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key not in ALLOWED_PARAMS:
            raise TokenError(f"unexpected query parameter {_short(name, 40)}")
        if key in params:
            raise TokenError(f"query parameter {name} given twice")
        params[key] = value
    if params.get("action") != "GetCallerIdentity":
        raise TokenError("Action is not GetCallerIdentity")
    if params.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
        raise TokenError("X-Amz-Algorithm is not AWS4-HMAC-SHA256")
    signed = [h.strip().lower() for h in params.get("x-amz-signedheaders", "").split(";")]
    if CLUSTER_ID_HEADER not in signed:
        raise TokenError(f"X-Amz-SignedHeaders does not include {CLUSTER_ID_HEADER}")
    if not re.fullmatch(r"[0-9a-f]{64}", params.get("x-amz-signature", "")):
        raise TokenError("X-Amz-Signature is missing or malformed")
    scope = params.get("x-amz-credential", "").split("/")
    if len(scope) != 5 or not scope[0] or scope[3] != "sts" or scope[4] != "aws4_request":
        raise TokenError("X-Amz-Credential is not an sts SigV4 credential scope")
    try:
        signed_at = datetime.strptime(params.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise TokenError("X-Amz-Date is missing or malformed")
    if (now or datetime.now(UTC)) > signed_at + PRESIGN_MAX_AGE:
        raise TokenError(f"X-Amz-Date is expired ({PRESIGN_MAX_AGE.seconds // 60} minute expiration)")
    query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
    return Presigned(url=f"{ep.scheme}://{ep.netloc}/?{query}", params=params, access_key_id=scope[0], region=scope[2])


def parse_caller_identity(xml_text: str | bytes) -> tuple[str, str, str]:
    """(Arn, Account, UserId) of a GetCallerIdentityResponse; TokenError for anything else."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        raise TokenError("STS reply is not XML")
    if not root.tag.endswith("GetCallerIdentityResponse"):
        raise TokenError(f"STS reply is {_short(root.tag.rsplit('}', 1)[-1], 40)}, not GetCallerIdentityResponse")
    arn, account, user_id = (
        (root.findtext(f"{{*}}GetCallerIdentityResult/{{*}}{field}") or "").strip()
        for field in ("Arn", "Account", "UserId")
    )
    if not arn.startswith("arn:") or not re.fullmatch(r"\d{12}", account):
        raise TokenError("STS reply has no caller ARN/account")
    return arn, account, user_id


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise TokenError(f"STS answered HTTP {code} (redirects are not followed)")


# No proxy (a proxy from the environment could take loopback traffic elsewhere), no redirect.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def fetch_identity(p: Presigned, cluster: str, timeout: float = 5.0, opener=None) -> Identity:
    """GET the validated presigned URL with ``x-k8s-aws-id: <cluster>``; parse the caller."""
    auth = "AWS4-HMAC-SHA256 Credential={}, SignedHeaders={}, Signature={}".format(
        p.params["x-amz-credential"], p.params["x-amz-signedheaders"], p.params["x-amz-signature"]
    )
    req = urllib.request.Request(
        p.url, headers={CLUSTER_ID_HEADER: cluster, "Authorization": auth, "Accept": "application/xml"}
    )
    try:
        with (opener or _OPENER).open(req, timeout=timeout) as resp:
            body = resp.read(MAX_BODY_BYTES)
    except urllib.error.HTTPError as exc:
        try:
            code = re.search(rb"<Code>([^<]{1,80})</Code>", exc.read(MAX_BODY_BYTES) or b"")
        except (OSError, http.client.HTTPException):
            code = None
        detail = f" {code.group(1).decode(errors='replace')}" if code else ""
        raise TokenError(f"STS answered HTTP {exc.code}{detail}")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise TokenError(f"STS request failed: {getattr(exc, 'reason', None) or exc.__class__.__name__}")
    arn, account, user_id = parse_caller_identity(body)
    return Identity(arn=arn, account=account, user_id=user_id, access_key_id=p.access_key_id)


def review_status(identity: Identity, groups: tuple[str, ...] = DEFAULT_GROUPS) -> dict:
    extra = {"arn": [identity.arn], "accountId": [identity.account], "principalId": [identity.user_id]}
    if identity.access_key_id:
        extra["accessKeyId"] = [identity.access_key_id]
    return {
        "authenticated": True,
        "user": {
            "username": identity.arn,
            "uid": f"aws-iam-authenticator:{identity.account}:{identity.user_id or identity.arn}",
            "groups": list(groups),
            "extra": extra,
        },
    }


class Authenticator:
    """The webhook's state: configuration and counters (thread-safe)."""

    def __init__(self, sts_endpoint: str, cluster: str, timeout: float = 5.0, groups=DEFAULT_GROUPS, opener=None):
        self.endpoint = urllib.parse.urlunsplit(_require_loopback_endpoint(sts_endpoint)[:2] + ("", "", ""))
        if not cluster:
            raise ValueError("a cluster name is required")
        self.cluster, self.timeout, self.groups, self.opener = cluster, timeout, tuple(groups), opener
        self._lock = threading.Lock()
        self.counts = {"reviews": 0, "authenticated": 0, "rejected": 0, "sts_requests": 0, "sts_errors": 0}

    def _count(self, *names: str) -> None:
        with self._lock:
            for n in names:
                self.counts[n] += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def review(self, token: str) -> tuple[dict, str]:
        """(TokenReview status, one-line log summary)."""
        self._count("reviews")
        try:
            presigned = parse_token(token, self.endpoint)
            self._count("sts_requests")
            try:
                identity = fetch_identity(presigned, self.cluster, self.timeout, self.opener)
            except TokenError:
                self._count("sts_errors")
                raise
        except TokenError as exc:
            self._count("rejected")
            return {"authenticated": False, "error": str(exc)}, f"rejected: {exc}"
        except Exception as exc:  # noqa: BLE001 - a bug must refuse the token, not drop the connection
            self._count("rejected")
            summary = f"rejected: internal error ({exc.__class__.__name__})"  # its message might quote the token
            return {"authenticated": False, "error": "internal error"}, summary
        self._count("authenticated")
        return review_status(identity, self.groups), f"authenticated {identity.arn}"


class Handler(BaseHTTPRequestHandler):
    server_version = "sandbox-eks-authn/1"
    protocol_version = "HTTP/1.1"

    @property
    def authn(self) -> Authenticator:
        return self.server.authn  # type: ignore[attr-defined]

    def log_message(self, format, *args):  # the access log would be noise; reviews are logged below
        pass

    def _send(self, code: int, body: dict | str) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            self._send(200, "ok")
        elif self.path == "/stats":
            self._send(200, self.authn.stats())
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/authenticate":
            self._send(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(411, {"error": "Content-Length required"})
            return
        if not 0 < length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, {"error": "body too large or empty"})
            return
        try:
            req = json.loads(self.rfile.read(length))
            api_version = req.get("apiVersion")
            token = req["spec"]["token"]
            if req.get("kind") != "TokenReview" or api_version not in REVIEW_VERSIONS or not isinstance(token, str):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            self._send(400, {"error": "expected a TokenReview (authentication.k8s.io/v1) with spec.token"})
            return
        t0 = time.monotonic()
        status, summary = self.authn.review(token)
        log(f"review from {self.client_address[0]}: {summary} ({(time.monotonic() - t0) * 1000:.0f} ms)")
        self._send(200, {"apiVersion": api_version, "kind": "TokenReview", "status": status})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, authn: Authenticator):
        super().__init__((HOST, port), Handler)
        self.authn = authn

    @property
    def port(self) -> int:
        return self.server_address[1]


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} eks_authn: {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="EKS (aws-iam-authenticator) token webhook for the sandbox, on 127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--sts-endpoint", required=True, help="moto's URL, e.g. http://127.0.0.1:25055 (loopback only)")
    p.add_argument("--cluster-name", required=True, help="sent as x-k8s-aws-id; tokens for other clusters fail")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds for the STS call")
    p.add_argument("--ready-file", type=Path, help="write {endpoint, host, port, pid} JSON here once listening")
    args = p.parse_args(argv)
    if args.ready_file:
        args.ready_file.unlink(missing_ok=True)
    try:
        authn = Authenticator(args.sts_endpoint, args.cluster_name, args.timeout)
        server = Server(args.port, authn)
    except (ValueError, OSError) as exc:
        print(f"eks_authn: cannot start on {HOST}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="eks-authn", daemon=True)
    thread.start()
    endpoint = f"http://{HOST}:{server.port}"
    if args.ready_file:
        write_ready(args.ready_file, endpoint, HOST, server.port)
    log(f"READY {endpoint}/authenticate (STS {authn.endpoint}, cluster {authn.cluster})")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.shutdown()
        server.server_close()
        if args.ready_file:
            args.ready_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
