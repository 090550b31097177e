# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A direct HTTPS transport to the Kubernetes API for the simple, common connection settings.

Importing the ``kubernetes`` package costs about 0.3 s (it loads ~700 model classes) in every module
process, although our modules only send raw JSON requests. For the settings most runs use - a kubeconfig
whose user authenticates with a client certificate or a bearer token, or ``host`` + ``api_key``
(the ``K8S_AUTH_*`` variables an AWX Kubernetes credential injects) - this module connects with the
standard library instead.

Exec credential plugins - the ``aws eks get-token`` stanza ``aws eks update-kubeconfig`` writes, so every
EKS kubeconfig - are run here too, as client-go runs them: once per process, ``KUBERNETES_EXEC_INFO`` set,
the kubeconfig's ``env`` added to the environment, the ``ExecCredential`` token (or client certificate)
used until it expires, and run again when the server answers 401 (``ExecPlugin``). For the exact ``aws eks
get-token`` stanza the token is made in-process with botocore (``eks_token``), the command being the fallback.

Anything else goes to the official client, unchanged: auth-provider plugins, exec plugins that ask for
``provideClusterInfo`` or ``interactiveMode: Always``, basic auth, proxies (settings or ``*_PROXY``
variables), impersonation, in-cluster configuration, several kubeconfig files in ``KUBECONFIG``,
``tls-server-name`` and any kubeconfig key not listed below. ``direct_config`` returns None for those, and
``KARPENTER_EKS_KUBE_TRANSPORT=kubernetes`` forces the official client everywhere.

The resolution follows kubernetes.core (module parameter, then ``K8S_AUTH_<NAME>``; explicit host +
credentials first, then the kubeconfig and context; relative file paths are relative to the kubeconfig).
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import quote, urlencode, urlsplit

from .. import errors
from . import eks_token

FORCE_ENV = "KARPENTER_EKS_KUBE_TRANSPORT"
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
# parameter name -> environment variable suffix(es), as kubernetes.core's AUTH_ARG_MAP
AUTH_PARAMS = (
    ("kubeconfig", ("KUBECONFIG",)),
    ("context", ("CONTEXT",)),
    ("host", ("HOST",)),
    ("api_key", ("API_KEY",)),
    ("username", ("USERNAME",)),
    ("password", ("PASSWORD",)),
    ("validate_certs", ("VALIDATE_CERTS", "VERIFY_SSL")),
    ("ca_cert", ("CA_CERT", "SSL_CA_CERT")),
    ("client_cert", ("CLIENT_CERT", "CERT_FILE")),
    ("client_key", ("CLIENT_KEY", "KEY_FILE")),
    ("proxy", ("PROXY",)),
    ("no_proxy", ("NO_PROXY",)),
    ("persist_config", ("PERSIST_CONFIG",)),
    ("impersonate_user", ("IMPERSONATE_USER",)),
    ("impersonate_groups", ("IMPERSONATE_GROUPS",)),
)
BOOL_PARAMS = ("validate_certs", "persist_config")
DIRECT_PARAMS = ("kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert", "client_cert", "client_key")
CLUSTER_KEYS = {
    "server",
    "certificate-authority",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "extensions",
}
USER_KEYS = {"client-certificate", "client-certificate-data", "client-key", "client-key-data", "token", "tokenFile"}
USER_KEYS_IGNORED = {"extensions"}
EXEC_KEYS = {"command", "args", "env", "apiVersion", "installHint", "provideClusterInfo", "interactiveMode"}
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_TIMEOUT = 120  # seconds an exec plugin may take (aws eks get-token takes about 0.5 s)
EXPIRY_SKEW = 30  # seconds before expirationTimestamp at which a credential is fetched again


# kubeconfig keys whose string values are credentials, wherever they appear (users[].user, auth-provider.config)
SECRET_KEYS = frozenset(
    ("token", "password", "client-key-data", "id-token", "refresh-token", "access-token", "client-secret", "secret")
)
# exec plugin environment variables known to hold no secret; every other value of users[].user.exec.env is one
# (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, a vault token, ...)
PUBLIC_EXEC_ENV = frozenset(
    (
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_STS_REGIONAL_ENDPOINTS",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ACCESS_KEY_ID",
    )
)


def kubeconfig_secrets(kubeconfig: object) -> set[str]:
    """The secret strings of a kubeconfig given as a mapping (the ``kubeconfig`` parameter as a dict): what a
    module must add to ``no_log_values`` so that none of them is returned (``invocation``), shown by ``-vvv`` or
    logged. Tokens, passwords, client keys and auth-provider secrets anywhere in it, and the exec plugin's
    ``env`` values except the names in PUBLIC_EXEC_ENV. A path (a str kubeconfig) holds none."""
    out = set()

    def walk(value):
        if isinstance(value, dict):
            for key, sub in value.items():
                if key in SECRET_KEYS and isinstance(sub, str):
                    out.add(sub)
                elif key == "exec" and isinstance(sub, dict) and isinstance(sub.get("env"), list):
                    for item in sub["env"]:
                        if isinstance(item, dict) and item.get("name") not in PUBLIC_EXEC_ENV:
                            if isinstance(item.get("value"), str):
                                out.add(item["value"])
                    walk(dict((k, v) for k, v in sub.items() if k != "env"))
                else:
                    walk(sub)
        elif isinstance(value, list):
            for sub in value:
                walk(sub)

    walk(kubeconfig if isinstance(kubeconfig, (dict, list)) else None)
    out.discard("")
    return out


def encode_json(body: object) -> bytes:
    """``body`` as UTF-8 JSON bytes, characters outside ASCII written as they are (not ``\\uXXXX``-escaped).

    Server-side apply bodies (``application/apply-patch+yaml``) are read by the apiserver's YAML decoder,
    which refuses JSON's surrogate-pair escapes of a character outside the Basic Multilingual Plane (an
    emoji: ``\\ud83d\\ude00``) with HTTP 400; raw UTF-8 is what ``kubectl apply --server-side`` sends. A
    surrogate pair held as two code points (a YAML ``"\\ud83d\\ude00"`` escape) is joined into its character
    as a JSON decoder would; a lone surrogate raises UnicodeEncodeError (it has no UTF-8 form)."""
    if isinstance(body, bytes):
        return body
    try:
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(json.loads(json.dumps(body)), ensure_ascii=False).encode("utf-8")


class CredentialError(errors.CredentialError):
    """The kubeconfig's exec credential plugin failed or answered something unusable."""


class HTTPStatusError(Exception):
    """A non-2xx answer; carries the same attributes as kubernetes' ApiException."""

    def __init__(self, status, reason, headers, body):
        super().__init__("%s %s" % (status, reason))
        self.status, self.reason, self.headers, self.body = status, reason, headers, body


def resolve_auth(params: dict, environ: dict | None = None) -> dict:
    """The connection settings kubernetes.core would use: parameters first, then K8S_AUTH_* variables."""
    environ = os.environ if environ is None else environ
    auth = {}
    for name, suffixes in AUTH_PARAMS:
        value = params.get(name)
        if value is None:
            for suffix in suffixes:
                value = environ.get("K8S_AUTH_" + suffix)
                if value is not None:
                    break
            if value is not None and name in BOOL_PARAMS:
                value = value.lower() not in ("0", "false", "no")
        if value is not None and value != "" and value != []:
            auth[name] = value
    if params.get("proxy_headers"):
        auth["proxy_headers"] = params["proxy_headers"]
    elif any(k.startswith("K8S_AUTH_PROXY_HEADERS_") for k in environ):
        auth["proxy_headers"] = True
    return auth


def direct_config(params: dict, environ: dict | None = None) -> DirectConfig | None:
    """A DirectConfig for settings this transport handles exactly as the official client, else None."""
    environ = os.environ if environ is None else environ
    if environ.get(FORCE_ENV, "").lower() == "kubernetes":
        return None
    if any(environ.get(v) for v in PROXY_ENV):
        return None
    auth = resolve_auth(params, environ)
    if set(auth) - set(DIRECT_PARAMS):
        return None
    verify = auth.get("validate_certs")
    host = (auth.get("host") or "").rstrip("/")
    if host and (auth.get("api_key") or (auth.get("client_cert") and auth.get("client_key"))):
        if set(auth) & {"kubeconfig", "context"}:
            return None  # kubeconfig plus overrides: leave the merge to the official client
        return DirectConfig.build(
            host,
            ca_file=auth.get("ca_cert"),
            verify=True if verify is None else verify,
            token=auth.get("api_key"),
            cert_file=auth.get("client_cert"),
            key_file=auth.get("client_key"),
        )
    if set(auth) - {"kubeconfig", "context"}:
        return None
    path = auth.get("kubeconfig")
    if path is None:
        if environ.get("KUBERNETES_SERVICE_HOST"):
            return None  # kubernetes.core tries the in-cluster configuration first
        path = environ.get("KUBECONFIG") or os.path.join(
            environ.get("HOME") or os.path.expanduser("~"), ".kube", "config"
        )
        if os.pathsep in path:
            return None  # several files are merged by the official loader
    if not isinstance(path, str):
        return None  # a kubeconfig given as a dict
    return from_kubeconfig(os.path.expanduser(path), auth.get("context"))


def _named(items, name):
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def from_kubeconfig(path: str, context: str | None = None) -> DirectConfig | None:
    import yaml

    from .. import yaml_load

    try:
        with open(path) as f:
            doc = yaml_load.load(f.read())
    except yaml_load.DuplicateKeyError as exc:  # the official loader would silently keep the last value
        raise errors.InputError("kubeconfig %s: %s" % (path, exc)) from exc
    except (OSError, yaml.YAMLError):
        return None  # the official loader reports the problem in its own words
    if not isinstance(doc, dict):
        return None
    ctx = _named(doc.get("contexts"), context or doc.get("current-context"))
    ctx = (ctx or {}).get("context")
    if not isinstance(ctx, dict):
        return None
    cluster = ((_named(doc.get("clusters"), ctx.get("cluster")) or {}).get("cluster")) or None
    user = ((_named(doc.get("users"), ctx.get("user")) or {}).get("user")) or {}
    if not isinstance(cluster, dict) or not isinstance(user, dict):
        return None
    if set(cluster) - CLUSTER_KEYS:
        return None  # proxy-url, tls-server-name, ...
    server = (cluster.get("server") or "").rstrip("/")
    if not server.startswith("https://"):
        return None
    base = os.path.dirname(os.path.abspath(path))
    ca_file, ca_data = _file_or_data(cluster, "certificate-authority", base)
    verify = not cluster.get("insecure-skip-tls-verify")
    if "exec" in user:
        plugin = ExecPlugin.from_user(user, base)
        return None if plugin is None else _exec_config(server, ca_file, ca_data, verify, plugin)
    if set(user) - USER_KEYS - USER_KEYS_IGNORED:
        return None  # auth-provider, basic auth, impersonation, ...
    cert_file, cert_data = _file_or_data(user, "client-certificate", base)
    key_file, key_data = _file_or_data(user, "client-key", base)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        return None  # the official client re-reads token files as they rotate
    if not token and not (cert_file or cert_data):
        return None
    return DirectConfig.build(
        server,
        ca_file=ca_file,
        ca_data=ca_data,
        verify=verify,
        token=token,
        cert_file=cert_file,
        cert_data=cert_data,
        key_file=key_file,
        key_data=key_data,
    )


def _file_or_data(src, key, base):
    """(path, None) or (None, bytes) of a kubeconfig ``<key>``/``<key>-data`` pair; paths relative to ``base``."""
    if src.get(key + "-data"):
        return None, base64.b64decode(src[key + "-data"])
    value = src.get(key)
    return (os.path.join(base, os.path.expanduser(value)) if value else None), None


def _exec_config(server, ca_file, ca_data, verify, plugin):
    """Connect with what the plugin gives: a token (fetched again on expiry or 401) or a client certificate."""
    cred = plugin.credential()
    if cred.get("token"):
        config = DirectConfig.build(server, ca_file=ca_file, ca_data=ca_data, verify=verify, token=cred["token"])
        if config is not None:
            config.plugin = plugin
        return config
    # a client certificate lives in the TLS context, built once: it is not fetched again on 401
    return DirectConfig.build(
        server,
        ca_file=ca_file,
        ca_data=ca_data,
        verify=verify,
        cert_data=cred["clientCertificateData"].encode("ascii"),
        key_data=cred["clientKeyData"].encode("ascii"),
    )


def _parse_time(value):
    """An RFC 3339 expirationTimestamp as epoch seconds; None when absent; ValueError when malformed."""
    if value is None or value == "":
        return None
    when = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


class ExecPlugin:
    """A kubeconfig ``user.exec`` credential plugin, run the way client-go runs it (non-interactive)."""

    def __init__(self, command, args, env, api_version, install_hint, runner=None, clock=time.time, native=None):
        self.command, self.args, self.env = command, list(args), dict(env)
        self.api_version, self.install_hint = api_version, install_hint
        self.runner = runner or subprocess.run
        self.clock = clock
        # an `aws eks get-token` stanza: the token is made in-process (eks_token), the command is the fallback
        use_native = os.environ.get(eks_token.SOURCE_ENV, "native").lower() != "exec" and eks_token.HAS_BOTOCORE
        self.native = native if use_native else None
        self.native_error = None
        self.runs = 0  # credentials fetched, either way
        self.source = None  # "native" or "exec": where the current credential came from
        self._cred, self._expiry = None, None
        self._lock = threading.Lock()

    @classmethod
    def from_user(cls, user: dict, base: str) -> ExecPlugin | None:
        """The plugin of a kubeconfig user, or None when the official client must handle it."""
        spec = user.get("exec")
        if set(user) - {"exec"} - USER_KEYS_IGNORED or not isinstance(spec, dict) or set(spec) - EXEC_KEYS:
            return None
        command, args, env = spec.get("command"), spec.get("args") or [], spec.get("env") or []
        if not isinstance(command, str) or not command or not isinstance(args, list) or not isinstance(env, list):
            return None
        if spec.get("apiVersion") not in EXEC_API_VERSIONS or spec.get("provideClusterInfo"):
            return None
        if spec.get("interactiveMode") == "Always":
            return None  # needs a terminal: the official client reports it
        pairs = {}
        for item in env:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                return None
            pairs[item["name"]] = str(item.get("value", ""))
        args = [str(a) for a in args]
        native = eks_token.parse_get_token(command, args, pairs)
        if os.sep in command and not os.path.isabs(command):
            command = os.path.join(base, command)  # client-go: relative to the kubeconfig's directory
        return cls(command, args, pairs, spec["apiVersion"], spec.get("installHint"), native=native)

    def credential(self, force: bool = False) -> dict:
        """The ExecCredential status (token, or clientCertificateData + clientKeyData); cached until it expires."""
        with self._lock:
            fresh = self._expiry is None or self.clock() < self._expiry - EXPIRY_SKEW
            if self._cred is None or force or not fresh:
                if force and self.source == "native":
                    # the cluster refused a token made here: ask the command itself
                    self.native, self.native_error = None, "the cluster refused the token made in-process"
                self._cred, self._expiry = self._fetch()
            return self._cred

    def _fetch(self):
        if self.native is not None:
            try:
                token = eks_token.make_token(**self.native)
            except Exception as exc:  # no credentials, AssumeRole refused, ...: the command decides
                self.native, self.native_error = None, "%s: %s" % (type(exc).__name__, exc)
            else:
                self.runs += 1
                self.source = "native"
                return {"token": token}, self.clock() + eks_token.LIFETIME
        cred = self._run()
        self.source = "exec"
        return cred

    def _run(self):
        env = dict(os.environ, **self.env)
        env["KUBERNETES_EXEC_INFO"] = json.dumps(
            {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
        )
        name = os.path.basename(self.command)
        self.runs += 1
        try:
            # no AnsibleModule here (a transport, also used from threads): run_command is not available
            res = self.runner(  # pylint: disable=ansible-bad-function
                [self.command] + self.args,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            hint = (": %s" % self.install_hint.strip()) if self.install_hint else ""
            raise CredentialError("exec plugin %r of the kubeconfig user not found%s" % (self.command, hint))
        except subprocess.TimeoutExpired:
            raise CredentialError("exec plugin %r gave no credential in %ss" % (name, EXEC_TIMEOUT))
        except OSError as exc:
            raise CredentialError("exec plugin %r cannot run: %s" % (name, exc))
        if res.returncode != 0:
            err = (res.stderr or b"").decode("utf-8", "replace").strip().splitlines()[-5:]
            raise CredentialError(
                "exec plugin %r failed (exit %s): %s%s"
                % (
                    name,
                    res.returncode,
                    " ".join(err) or "no message",
                    " (in-process token: %s)" % self.native_error if self.native_error else "",
                )
            )
        try:
            doc = json.loads(res.stdout)
        except ValueError:
            raise CredentialError("exec plugin %r did not print an ExecCredential (JSON)" % name)
        if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
            raise CredentialError("exec plugin %r did not print an ExecCredential" % name)
        if doc.get("apiVersion") != self.api_version:
            raise CredentialError(
                "exec plugin %r answered apiVersion %r, the kubeconfig asks for %r"
                % (name, doc.get("apiVersion"), self.api_version)
            )
        status = doc.get("status") if isinstance(doc.get("status"), dict) else {}
        if not status.get("token") and not (status.get("clientCertificateData") and status.get("clientKeyData")):
            raise CredentialError("exec plugin %r gave neither a token nor a client certificate and key" % name)
        try:
            return status, _parse_time(status.get("expirationTimestamp"))
        except ValueError:
            raise CredentialError(
                "exec plugin %r: expirationTimestamp %r is not an RFC 3339 time"
                % (name, status.get("expirationTimestamp"))
            )


class DirectConfig:
    """Where and how to connect: host, port, TLS context and the Authorization header."""

    def __init__(self, host, port, ssl_context, authorization=None, plugin=None):
        self.host, self.port, self.ssl_context, self.authorization = host, port, ssl_context, authorization
        self.plugin = plugin  # an ExecPlugin whose token is the Authorization header

    def current_authorization(self, force: bool = False) -> str | None:
        """The Authorization header to send now (a plugin's token is fetched again when expired or forced)."""
        if self.plugin is None:
            return self.authorization
        self.authorization = "Bearer %s" % self.plugin.credential(force=force)["token"]
        return self.authorization

    @classmethod
    def build(
        cls,
        server: str,
        ca_file: str | None = None,
        ca_data: bytes | None = None,
        verify: bool = True,
        token: str | None = None,
        cert_file: str | None = None,
        cert_data: bytes | None = None,
        key_file: str | None = None,
        key_data: bytes | None = None,
    ) -> DirectConfig | None:
        url = urlsplit(server)
        if url.scheme != "https" or not url.hostname or url.path not in ("", "/"):
            return None
        # only the cluster's CA when one is given, as the official client (not the system's CAs as well)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname check and CERT_REQUIRED by default
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif ca_data:
            ctx.load_verify_locations(cadata=ca_data.decode("ascii"))
        elif ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        else:
            _load_public_cas(ctx)
        if cert_data or key_data or cert_file:
            _load_client_cert(ctx, cert_file, cert_data, key_file, key_data)
        return cls(url.hostname, url.port or 443, ctx, "Bearer %s" % token if token else None)


def _load_public_cas(ctx):
    """No CA in the settings: certifi's bundle, as the official client (urllib3), else the system's."""
    try:
        import certifi

        ctx.load_verify_locations(cafile=certifi.where())
    except ImportError:  # pragma: no cover
        ctx.load_default_certs()


def _load_client_cert(ctx, cert_file, cert_data, key_file, key_data):
    """ssl only loads certificates from files: *-data values go through a private, short-lived directory."""
    tmp = None
    try:
        if cert_data is not None or key_data is not None:
            tmp = tempfile.mkdtemp(prefix="karpenter-eks-tls-")  # 0700
            if cert_data is not None:
                cert_file = os.path.join(tmp, "client.crt")
                with open(cert_file, "wb") as f:
                    f.write(cert_data)
            if key_data is not None:
                key_file = os.path.join(tmp, "client.key")
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(key_data)
        ctx.load_cert_chain(cert_file, key_file)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


class DirectTransport:
    """Keep-alive HTTPS connections, one per thread (http.client connections are not thread-safe)."""

    def __init__(self, config, user_agent, headers=None):
        self.config = config
        self.base_headers = {"User-Agent": user_agent}
        self.base_headers.update(headers or {})
        self._local = threading.local()

    def _connection(self, timeout, fresh=False):
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPSConnection(
                self.config.host, self.config.port, timeout=timeout, context=self.config.ssl_context
            )
            self._local.conn = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _send_authorized(self, method, path, query, headers, body, timeout):
        """Send; on 401 with an exec plugin's token, fetch a new token and send once more (as client-go)."""
        resp = self._send(method, path, query, headers, body, timeout)
        if resp.status == 401 and self.config.plugin is not None:
            resp.read()
            resp = self._send(method, path, query, headers, body, timeout, refresh=True)
        return resp

    def _send(self, method, path, query, headers, body, timeout, refresh=False):
        url = quote(path, safe="/:@-._~!$&'()*+,;=") + ("?" + urlencode(query) if query else "")
        all_headers = dict(self.base_headers, **headers)
        authorization = self.config.current_authorization(force=refresh)  # CredentialError is not transient
        if authorization:
            all_headers["Authorization"] = authorization
        data = None if body is None else encode_json(body)
        for attempt in (0, 1):
            conn = self._connection(timeout, fresh=attempt > 0)
            reused = conn.sock is not None
            try:
                conn.request(method, url, body=data, headers=all_headers)
                return conn.getresponse()
            except ssl.SSLError:
                conn.close()
                raise
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: reconnect once
                raise ConnectionError("connection to %s:%s closed" % (self.config.host, self.config.port))
            except TimeoutError:
                conn.close()
                raise TimeoutError("no answer from %s:%s in %ss" % (self.config.host, self.config.port, timeout))
            except OSError as exc:
                conn.close()
                raise ConnectionError("cannot connect to %s:%s: %s" % (self.config.host, self.config.port, exc))
        raise ConnectionError("unreachable")  # pragma: no cover - the loop returns or raises

    def request(
        self,
        method: str,
        path: str,
        query: dict | None = None,
        headers: dict | None = None,
        body: bytes | None = None,
        timeout: float = 30,
    ) -> bytes:
        """The response body (bytes) of a 2xx answer; raises HTTPStatusError otherwise."""
        resp = self._send_authorized(method, path, query, headers or {}, body, timeout)
        try:
            data = resp.read()
        except TimeoutError:
            self._connection(timeout, fresh=True)
            raise TimeoutError("no answer from %s:%s in %ss" % (self.config.host, self.config.port, timeout))
        except (http.client.HTTPException, OSError) as exc:
            self._connection(timeout, fresh=True)
            raise ConnectionError("connection broken while reading the answer: %s" % exc)
        if resp.will_close:
            self._local.conn.close()
        if not 200 <= resp.status < 300:
            raise HTTPStatusError(resp.status, resp.reason, dict(resp.getheaders()), data)
        return data

    def stream(
        self, method: str, path: str, query: dict | None = None, headers: dict | None = None, timeout: float = 30
    ) -> tuple[Iterator[bytes], Callable[[], None]]:
        """(chunks iterator, close function) of a 2xx streaming answer (watches)."""
        resp = self._send_authorized(method, path, query, headers or {}, None, timeout)
        if not 200 <= resp.status < 300:
            data = resp.read()
            raise HTTPStatusError(resp.status, resp.reason, dict(resp.getheaders()), data)

        def chunks():
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    return
                yield chunk

        def close():
            # a watch that ends before the server's timeout leaves unread data: never reuse that connection
            self._connection(timeout, fresh=True)

        return chunks(), close
