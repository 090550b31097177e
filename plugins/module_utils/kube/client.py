# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small REST client for the Kubernetes API that counts its requests and retries.

Connection settings are resolved as kubernetes.core resolves them (module params, then ``K8S_AUTH_*``
environment variables, then in-cluster config, then the kubeconfig chain), so users configure this
collection exactly like ``kubernetes.core.k8s``. Unlike the DynamicClient it does no discovery: the
paths of the kinds we manage are known, which saves requests on every run.

Two transports: ``transport.DirectTransport`` (standard library) for client-certificate, bearer-token and
exec-plugin (``aws eks get-token``) settings, and ``kubernetes.client.ApiClient`` for everything else
(auth providers, proxies, in-cluster, ...).
``connect()`` picks one; the ``kubernetes`` package is imported only when the official client is used,
which saves ~0.3 s per module run.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import ApiError
from . import transport as direct

try:
    HAS_KUBERNETES = importlib.util.find_spec("kubernetes") is not None
except (ImportError, ValueError):  # pragma: no cover
    HAS_KUBERNETES = False
KUBERNETES_IMPORT_ERROR = None if HAS_KUBERNETES else ImportError("No module named 'kubernetes'")


# answers that are transient by their status: throttled, the apiserver (or a proxy before it) unavailable or
# timed out. A 500 is retried only when its Status says it is transient (TRANSIENT_REASONS, TRANSIENT_500);
# any other 500 (a failed typed patch, a schema or conversion error, ...) answers the same every time.
RETRY_STATUS = (429, 502, 503, 504)
TRANSIENT_REASONS = ("ServerTimeout", "Timeout", "TooManyRequests", "ServiceUnavailable")
TRANSIENT_500 = re.compile(
    r"etcdserver: (request timed out|leader changed|no leader|too many requests|server stopped|request cancelled)"
    r"|context deadline exceeded|rpc error: code = (Unavailable|DeadlineExceeded)|\btimed out\b"
    r"|unable to return a response in the time allotted|http2: client connection lost|connection reset by peer",
    re.IGNORECASE,
)


# the apiserver drops the parameters of a patch's Content-Type; the body is UTF-8 JSON (JSON is YAML)
APPLY_PATCH = "application/apply-patch+yaml; charset=utf-8"
WRITE_VERBS = ("create", "patch", "update", "delete")
USER_AGENT = "karpenter-eks-platform/0.1.0"


class KubeError(ApiError):
    """A Kubernetes API error with the status code and the apiserver's message (``result``: see PlatformError)."""

    def __init__(self, msg, status=None, body=None):
        super().__init__(msg, status=status)
        self.body = body


def connect(params: dict, timeout: float = 30, retries: int = 5) -> KubeApi:
    """A KubeApi for the module parameters: the direct transport when it applies, else the official client."""
    config = direct.direct_config(params)
    if config is not None:
        return KubeApi(config, timeout=timeout, retries=retries)
    configuration, headers = configuration_from_params(params)
    return KubeApi(configuration, headers, timeout=timeout, retries=retries)


def configuration_from_params(params: dict, environ: dict | None = None) -> tuple:
    """A kubernetes ``Configuration`` + headers for the connection options, with the rules kubernetes.core's
    modules follow (parameters, then ``K8S_AUTH_*``; host plus credentials alone, else the kubeconfig, else
    in-cluster then the default kubeconfig), built on the public APIs of the kubernetes client only."""
    import kubernetes
    import urllib3
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import (
        AUTH_ARG_MAP,
        AUTH_PROXY_HEADERS_SPEC,
    )

    environ = os.environ if environ is None else environ
    auth = direct.resolve_auth(params, environ)
    if auth.get("host"):
        auth["host"] = auth["host"].rstrip("/")

    def given(*names):
        return all(auth.get(n) for n in names)

    def load_kubeconfig():
        kubeconfig = auth.get("kubeconfig")
        options = {"context": auth.get("context"), "persist_config": auth.get("persist_config")}
        if isinstance(kubeconfig, dict):
            kubernetes.config.load_kube_config_from_dict(config_dict=kubeconfig, **options)
        else:
            kubernetes.config.load_kube_config(config_file=kubeconfig or None, **options)

    if given("username", "password", "host") or given("api_key", "host") or given("client_cert", "client_key", "host"):
        pass  # enough to authenticate: neither a kubeconfig nor the in-cluster configuration is read
    elif given("kubeconfig") or given("context"):
        load_kubeconfig()
    else:
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            load_kubeconfig()
    configuration = kubernetes.client.Configuration().get_default_copy()
    attribute = {param: attr for attr, param in AUTH_ARG_MAP.items()}
    for name, value in auth.items():
        attr = attribute.get(name)
        if attr is None or value is None:
            continue
        if attr == "api_key":
            value = {"authorization": "Bearer %s" % value}
        elif attr == "proxy_headers":
            if value is True:  # from K8S_AUTH_PROXY_HEADERS_* variables
                value = {}
                for key, spec in AUTH_PROXY_HEADERS_SPEC.items():
                    env_value = environ.get("K8S_AUTH_PROXY_HEADERS_%s" % key.upper())
                    if env_value is not None:
                        value[key] = (
                            env_value.lower() not in ("0", "false", "no") if spec.get("type") == "bool" else env_value
                        )
            value = urllib3.util.make_headers(**value)
        setattr(configuration, attr, value)
    headers = {}
    for name, header in (("impersonate_user", "Impersonate-User"), ("impersonate_groups", "Impersonate-Group")):
        value = auth.get(name)
        if isinstance(value, str) and name == "impersonate_groups":
            value = [v for v in value.split(",") if v]
        if value:
            headers[header] = value
    return configuration, headers


class KubeApi:
    """Raw JSON REST calls with request accounting, backoff on throttling/transient errors."""

    def __init__(
        self, configuration, headers=None, timeout=30, retries=5, backoff=0.5, sleep=time.sleep, clock=time.monotonic
    ):
        """``configuration``: a transport.DirectConfig, or a kubernetes ``Configuration`` (official client).
        ``sleep`` and ``clock`` (monotonic seconds) time the backoff and the watches' deadlines."""
        self.client = self.direct = None
        if isinstance(configuration, direct.DirectConfig):
            self.direct = direct.DirectTransport(configuration, USER_AGENT, headers)
            self.transport_name = "direct"
        else:
            import kubernetes

            self.client = kubernetes.client.ApiClient(configuration)
            self.client.user_agent = USER_AGENT
            for name, value in (headers or {}).items():
                for v in value if isinstance(value, list) else [value]:
                    self.client.set_default_header(name, v)
            self.transport_name = "kubernetes"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self.counts = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ accounting
    def _count(self, verb):
        with self._lock:  # engine.execute writes from a few threads
            self.counts[verb] = self.counts.get(verb, 0) + 1

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.counts.items() if verb in WRITE_VERBS)

    def request_summary(self) -> dict:
        return dict(self.counts, total=sum(self.counts.values()), writes=self.writes)

    # ------------------------------------------------------------------ transport
    def call(
        self,
        verb: str,
        method: str,
        path: str,
        query: dict | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
        raw: bool = False,
    ) -> Any:
        """One request (retried on throttling and transient errors): the decoded JSON answer, or with ``raw``
        the answer's text (a pod log)."""
        headers = {"Accept": "*/*" if raw else "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            try:
                data = direct.encode_json(body)  # UTF-8, once for every attempt
            except UnicodeEncodeError as exc:
                raise KubeError("the request body is not valid Unicode (%s): nothing was sent" % exc)
        attempt = 0
        while True:
            self._count(verb)
            try:
                answer = self._send(method, path, query, headers, body, data, timeout or self.timeout)
                if raw:
                    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer or ""
                return json.loads(answer) if answer else {}
            except KubeError:
                raise
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status is not None and hasattr(exc, "reason"):  # an HTTP answer (ApiException or ours)
                    if _retryable(exc) and attempt < self.retries:
                        attempt += 1
                        self._sleep(self._delay(attempt, exc))
                        continue
                    raise KubeError(self._message(exc), status=status, body=getattr(exc, "body", None))
                if _transient(exc) and attempt < self.retries:  # connection errors, timeouts
                    attempt += 1
                    self._sleep(self._delay(attempt, None))
                    continue
                raise KubeError("cannot reach the Kubernetes API: %s" % exc)

    def _send(self, method, path, query, headers, body, data, timeout):
        """The answer's bytes. ``body``: the object; ``data``: the same as UTF-8 JSON (encode_json)."""
        if self.direct is not None:
            try:
                return self.direct.request(method, path, query=query, headers=headers, body=data, timeout=timeout)
            except direct.ssl.SSLError as exc:
                if _tls_cut(exc):
                    raise ConnectionError("TLS connection closed by the server: %s" % exc) from exc
                raise KubeError("TLS error talking to the Kubernetes API: %s" % exc)  # a certificate problem
            except direct.CredentialError as exc:  # nor is a failing exec credential plugin
                raise KubeError("no Kubernetes credential: %s" % exc)
        if body is not None and "json" not in headers["Content-Type"]:
            # kubernetes' REST layer would json.dumps the object (ASCII escapes: refused as YAML); bytes under a
            # content type it does not encode itself (with "; charset=utf-8") are sent as they are
            body = data
        resp = self.client.call_api(
            path,
            method,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )
        return resp[0].data if isinstance(resp, tuple) else resp.data

    def _delay(self, attempt, exc):
        retry_after = None
        try:
            retry_after = float((getattr(exc, "headers", None) or {}).get("Retry-After"))
        except (TypeError, ValueError):
            try:
                retry_after = float(_status(exc).get("details", {}).get("retryAfterSeconds"))
            except (AttributeError, TypeError, ValueError):
                pass
        if retry_after is not None:
            return min(retry_after, 30.0)
        return min(self.backoff * (2 ** (attempt - 1)), 10.0) * (0.5 + random.random() / 2)

    @staticmethod
    def _message(exc):
        try:
            body = json.loads(exc.body)
            return "%s (HTTP %s)" % (body.get("message") or exc.reason, exc.status)
        except (TypeError, ValueError, AttributeError):
            return "%s (HTTP %s)" % (getattr(exc, "reason", exc), getattr(exc, "status", "?"))

    # ------------------------------------------------------------------ verbs
    def list(self, path: str, label_selector: str | None = None) -> dict:
        query = {"labelSelector": label_selector} if label_selector else None
        return self.call("list", "GET", path, query=query)

    def get(self, path: str) -> dict:
        return self.call("get", "GET", path)

    def apply(self, path: str, obj: dict, field_manager: str, force: bool = True, dry_run: bool = False) -> dict:
        query = {"fieldManager": field_manager, "force": "true" if force else "false", "fieldValidation": "Strict"}
        if dry_run:  # counted apart: a server-side dry-run stores nothing and is not a write
            query["dryRun"] = "All"
        verb = "dry-run" if dry_run else "patch"
        return self.call(verb, "PATCH", path, query=query, body=obj, content_type=APPLY_PATCH)

    def delete(self, path: str, propagation: str = "Background") -> dict:
        return self.call("delete", "DELETE", path, body={"propagationPolicy": propagation})

    def watch_until(
        self,
        path: str,
        predicate: Callable[[str, dict], bool],
        resource_version: str | None,
        timeout: float,
        on_list: Callable[[list], bool] | None = None,
    ) -> bool:
        """Watch ``path`` (a collection) from ``resource_version`` until predicate(type, object) is true.

        Returns True then, False when ``timeout`` (seconds) ran out first. One request per watch window.
        A watch that breaks (connection reset, incomplete chunk, read timeout, a transient answer) is
        watched again from the last resourceVersion seen, with the client's backoff, until the deadline.
        When that version is too old (410 Gone) the collection is listed afresh, and ``on_list(items)``
        (if given) sees the current objects - the events in between are lost - and returns True when the
        wait is over. Raises KubeError when the watch is refused (403, 404, a deterministic 500, ...) or
        when it could not be re-established before the deadline.
        """
        deadline = self._clock() + timeout
        attempt, broken = 0, None
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                if broken is not None:
                    raise KubeError(
                        "watch of %s broken and not re-established within %ss: %s" % (path, timeout, broken)
                    )
                return False
            if resource_version is None:  # expired: a fresh LIST gives a current version
                data = self.list(path)
                resource_version = (data.get("metadata") or {}).get("resourceVersion")
                if on_list is not None and on_list(data.get("items") or []):
                    return True
                continue
            query = {
                "watch": "true",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(max(1, int(remaining))),
            }
            self._count("watch")
            try:
                chunks, close = self._stream(path, query, remaining + 5)
            except Exception as exc:
                if getattr(exc, "status", None) == 410:
                    resource_version = None
                    continue
                broken, attempt = _watch_open_error(exc, self._message), attempt + 1
                self._sleep(max(0.0, min(self._delay(attempt, exc), deadline - self._clock())))
                continue
            broken = None  # re-established (``attempt`` grows on while it breaks again before any event)
            try:
                for event in _events(chunks):
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:
                            resource_version = None
                            break
                        if not _transient_answer(obj.get("code"), obj, {}):
                            raise KubeError("watch failed: %s" % obj.get("message"), status=obj.get("code"))
                        raise ConnectionError("the watch ended with: %s" % obj.get("message"))
                    attempt = 0
                    resource_version = (obj.get("metadata") or {}).get("resourceVersion", resource_version)
                    if event.get("type") != "BOOKMARK" and predicate(event.get("type"), obj):
                        return True
            except KubeError:
                raise
            except Exception as exc:
                if not _broken(exc):
                    raise
                broken, attempt = "%s: %s" % (type(exc).__name__, exc), attempt + 1
                self._sleep(max(0.0, min(self._delay(attempt, None), deadline - self._clock())))
            finally:
                close()

    def _stream(self, path, query, timeout):
        """(chunks, close) of a watch request, over either transport."""
        headers = {"Accept": "application/json"}
        if self.direct is not None:
            return self.direct.stream("GET", path, query=query, headers=headers, timeout=timeout)
        resp = self.client.call_api(
            path,
            "GET",
            query_params=list(query.items()),
            header_params=headers,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )
        resp = resp[0] if isinstance(resp, tuple) else resp
        return resp.stream(4096, decode_content=True), resp.release_conn


def _status(exc):
    """The metav1.Status of an HTTP error answer ({} when the body is not one)."""
    try:
        body = json.loads(exc.body)
    except (TypeError, ValueError, AttributeError):
        return {}
    return body if isinstance(body, dict) else {}


def is_transient(err: KubeError) -> bool:
    """Did ``err`` say nothing about the request itself (no answer, throttled, the API unavailable, a transient
    500)? A deterministic answer - 4xx, or a 500 such as a failed typed patch - is a verdict on the request."""
    return err.status is None or _transient_answer(err.status, _status(err), {})


def _retryable(exc):
    """Is this HTTP error answer worth sending the request again (with backoff)?"""
    return _transient_answer(exc.status, _status(exc), getattr(exc, "headers", None) or {})


def _transient_answer(code, status, headers):
    """Is an answer with HTTP ``code``, metav1.Status ``status`` and ``headers`` transient?"""
    if code in RETRY_STATUS:
        return True
    if code != 500:
        return False
    if headers.get("Retry-After"):
        return True  # the server asks for it
    details = status.get("details") if isinstance(status.get("details"), dict) else {}
    if status.get("reason") in TRANSIENT_REASONS or details.get("retryAfterSeconds"):
        return True
    return bool(TRANSIENT_500.search(str(status.get("message") or "")))


def _events(chunks):
    """The watch events (dicts) of a stream of newline-delimited JSON chunks."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


def _tls_cut(exc):
    """A TLS connection the peer closed (a restarting apiserver, a load balancer), not a certificate problem."""
    return isinstance(exc, (direct.ssl.SSLEOFError, direct.ssl.SSLZeroReturnError))


def _broken(exc):
    """Did the connection fail or break (sending the request again may work), rather than refuse us?"""
    return _transient(exc) or isinstance(exc, (http.client.HTTPException, OSError))


def _watch_open_error(exc, message):
    """The text of a transient failure to open a watch; raises KubeError for one that will not pass."""
    status = getattr(exc, "status", None)
    if status is not None and hasattr(exc, "reason"):  # an HTTP answer
        if _retryable(exc):
            return message(exc)
        raise KubeError(message(exc), status=status, body=getattr(exc, "body", None))
    if isinstance(exc, direct.CredentialError):
        raise KubeError("no Kubernetes credential: %s" % exc)
    if isinstance(exc, direct.ssl.SSLError) and not _tls_cut(exc):  # a certificate problem is not transient
        raise KubeError("TLS error talking to the Kubernetes API: %s" % exc)
    if _broken(exc):
        return "cannot reach the Kubernetes API: %s" % exc
    raise KubeError("cannot reach the Kubernetes API: %s" % exc)


def _transient(exc):
    name = type(exc).__name__
    return name in (
        "MaxRetryError",
        "ProtocolError",
        "ReadTimeoutError",
        "NewConnectionError",
        "ConnectionError",
        "RemoteDisconnected",
        "ConnectionResetError",
        "TimeoutError",
    )
