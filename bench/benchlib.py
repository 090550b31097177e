"""Shared helpers of the benchmarks in bench/: generated objects, the sandbox, request accounting.

* ``nodeclasses(n)`` / ``nodepools(n)`` - realistic, valid Karpenter v1 objects (each NodePool references
  its own EC2NodeClass), labelled ``bench=<label>`` so they can be cleaned up with one request.
* ``invalid_variants(objs)`` - the same objects with one known mistake injected into some of them
  (apiserver-rejected and Karpenter-runtime-rejected), for verdict comparisons.
* ``Sandbox`` - the running sandbox (``sandbox/sandbox.py env``): kubectl, a kubernetes ApiClient with the
  admin client certificate, apiserver ``/metrics`` (``apiserver_request_total``) and the audit log, which
  records every write request (sandbox/sandbox.py audit policy) with its user agent.
"""

import copy
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

KWOK_REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"}  # the sandbox's Ready node class
KINDS = ("nodepools", "ec2nodeclasses")
DISCOVERY_SKIP = ("/readyz", "/livez", "/healthz", "/metrics", "/version")


# --------------------------------------------------------------------------------------------- objects


def nodeclass(i, label="module-bench", prefix="bench"):
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "%s-nc-%03d" % (prefix, i), "labels": {"bench": label}},
        "spec": {
            "role": "KarpenterNodeRole-bench",
            "amiSelectorTerms": [{"alias": "al2023@v20250505"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "bench"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "bench"}}],
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "rootVolume": True,
                    "ebs": {"volumeSize": "%dGi" % (50 + (i % 4) * 50), "volumeType": "gp3", "encrypted": True},
                }
            ],
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1 + i % 2},
            "kubelet": {"maxPods": 110, "systemReserved": {"cpu": "100m", "memory": "200Mi"}},
            "tags": {"team": "team-%d" % (i % 10), "cost-center": "cc-%03d" % (i % 37)},
        },
    }


def nodepool(i, label="module-bench", prefix="bench", node_class_ref=None):
    spot = i % 3 != 0
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "%s-np-%03d" % (prefix, i), "labels": {"bench": label}},
        "spec": {
            "template": {
                "metadata": {"labels": {"example.com/team": "team-%d" % (i % 10)}},
                "spec": {
                    "nodeClassRef": dict(node_class_ref)
                    if node_class_ref
                    else {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "%s-nc-%03d" % (prefix, i)},
                    "requirements": [
                        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": ["spot", "on-demand"] if spot else ["on-demand"],
                        },
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["5"]},
                    ],
                    "expireAfter": "720h",
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "%dm" % (1 + i % 5),
                "budgets": [{"nodes": "10%"}],
            },
            "limits": {"cpu": str(100 + 10 * (i % 10)), "memory": "%dGi" % (400 + 40 * (i % 10))},
            "weight": 1 + i % 100,
        },
    }


def nodeclasses(n, **kw):
    return [nodeclass(i, **kw) for i in range(n)]


def nodepools(n, **kw):
    return [nodepool(i, **kw) for i in range(n)]


# One mistake per variant: (name, kind, mutate(obj), expected) where expected is
#   "apiserver" - the apiserver rejects it (schema or CEL), or
#   "runtime"   - the apiserver accepts it, Karpenter's runtime validation rejects it (NodePool NotReady).
def _set(path, value):
    def mutate(o):
        cur = o
        for p in path[:-1]:
            cur = cur[p]
        cur[path[-1]] = value

    return mutate


def _req(req):
    def mutate(o):
        o["spec"]["template"]["spec"]["requirements"].append(req)

    return mutate


def _both_role_and_profile(o):
    o["spec"]["instanceProfile"] = "KarpenterNodeInstanceProfile-bench"


MUTATIONS = [
    ("weight-0", "NodePool", _set(("spec", "weight"), 0), "apiserver"),
    ("expire-30d", "NodePool", _set(("spec", "template", "spec", "expireAfter"), "30d"), "apiserver"),
    ("in-without-values", "NodePool", _req({"key": "example.com/x", "operator": "In", "values": []}), "apiserver"),
    ("restricted-req-key", "NodePool", _req({"key": "karpenter.sh/nodepool", "operator": "Exists"}), "apiserver"),
    ("budget-nodes-int", "NodePool", _set(("spec", "disruption", "budgets"), [{"nodes": 0}]), "apiserver"),
    (
        "budget-schedule-only",
        "NodePool",
        _set(("spec", "disruption", "budgets"), [{"nodes": "0", "schedule": "@daily"}]),
        "apiserver",
    ),
    (
        "glob-value",
        "NodePool",
        _req({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.*"]}),
        "runtime",
    ),
    (
        "capacity-type-unknown",
        "NodePool",
        _req({"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["cheap"]}),
        "runtime",
    ),
    ("role-and-profile", "EC2NodeClass", _both_role_and_profile, "apiserver"),
    (
        "alias-and-id",
        "EC2NodeClass",
        _set(("spec", "amiSelectorTerms"), [{"alias": "al2023@latest", "id": "ami-1"}]),
        "apiserver",
    ),
    ("restricted-tag", "EC2NodeClass", _set(("spec", "tags"), {"eks:eks-cluster-name": "x"}), "apiserver"),
    ("hop-limit-0", "EC2NodeClass", _set(("spec", "metadataOptions", "httpPutResponseHopLimit"), 0), "apiserver"),
    (
        "volume-type-gp9",
        "EC2NodeClass",
        _set(("spec", "blockDeviceMappings", 0, "ebs", "volumeType"), "gp9"),
        "apiserver",
    ),
]


def invalid_variants(objs, every=4):
    """Copies of ``objs`` where every ``every``-th object of a kind gets the next mutation of that kind.

    Returns ``(objects, expected)`` where ``expected[i]`` is ``"valid"``, ``"apiserver"`` or ``"runtime"``.
    """
    out, expected = [], []
    counters = {}
    for o in objs:
        o = copy.deepcopy(o)
        kind = o["kind"]
        n = counters.get(kind, 0)
        counters[kind] = n + 1
        muts = [m for m in MUTATIONS if m[1] == kind]
        if n % every == every - 1:
            name, _, mutate, verdict = muts[(n // every) % len(muts)]
            mutate(o)
            o["metadata"].setdefault("annotations", {})["bench/mutation"] = name
            expected.append(verdict)
        else:
            expected.append("valid")
        out.append(o)
    return out, expected


# --------------------------------------------------------------------------------------------- sandbox


def worktree(rev: str) -> str:
    """A checkout of ``rev`` (git worktree in a temporary directory) that Ansible loads as karpenter_eks.platform
    through its own .collections link; the A/B benchmarks run its playbooks with this tree's venv."""
    import tempfile

    path = os.path.join(tempfile.mkdtemp(prefix="bench-against-"), re.sub(r"[^A-Za-z0-9._-]", "_", rev))
    subprocess.run(
        ["git", "-C", ROOT, "worktree", "add", "--detach", "--force", path, rev], check=True, capture_output=True
    )
    link = os.path.join(path, ".collections", "ansible_collections", "karpenter_eks")
    os.makedirs(link, exist_ok=True)
    os.symlink(path, os.path.join(link, "platform"))
    return path


def remove_worktree(path: str) -> None:
    subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", path], check=False, capture_output=True)


def ab_row(samples: dict, rev: str) -> dict:
    """Medians of (wall, cpu) samples per tree ("this_tree" and ``rev``) and the ratios rev / this tree."""
    row = {}
    for name, xs in samples.items():
        row[name] = {
            "wall_median_seconds": round(sorted(w for w, _c in xs)[len(xs) // 2], 3),
            "cpu_median_seconds": round(sorted(c for _w, c in xs)[len(xs) // 2], 3),
        }
    for key in ("wall", "cpu"):
        row[key + "_ratio_rev_over_this"] = round(
            row[rev][key + "_median_seconds"] / row["this_tree"][key + "_median_seconds"], 3
        )
    return row


def sandbox_env():
    res = subprocess.run(
        [sys.executable, os.path.join(ROOT, "sandbox", "sandbox.py"), "env", "--format", "json"],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise SystemExit(
            "sandbox is not running: %s\nstart it with: .venv/bin/python sandbox/sandbox.py up" % res.stderr
        )
    return json.loads(res.stdout)


class Sandbox:
    def __init__(self, env=None):
        from kubernetes import client, config

        self.env = env or sandbox_env()
        self.api_client = config.new_client_from_config(config_file=self.env["KUBECONFIG"])
        self.custom = client.CustomObjectsApi(self.api_client)

    def kubectl(self, *args, input=None, check=True, timeout=600):
        res = subprocess.run(
            [os.path.join(self.env["SANDBOX_BIN"], "kubectl"), "--kubeconfig", self.env["KUBECONFIG"], *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise RuntimeError("kubectl %s: %s" % (" ".join(args), res.stderr))
        return res

    def raw(self, method, path, query=None, body=None):
        """One raw request with the admin client; returns (status, parsed body)."""
        from kubernetes.client.rest import ApiException

        try:
            resp = self.api_client.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
            )
            resp = resp[0] if isinstance(resp, tuple) else resp
            return resp.status, json.loads(resp.data) if resp.data else {}
        except ApiException as exc:
            try:
                return exc.status, json.loads(exc.body)
            except (TypeError, ValueError):
                return exc.status, {"message": str(exc.body)}

    # ---- apiserver_request_total from /metrics
    _METRIC = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)$")
    _LABEL = re.compile(r'(\w+)="([^"]*)"')

    def request_counters(self):
        resp = self.api_client.call_api("/metrics", "GET", _preload_content=False, auth_settings=["BearerToken"])
        resp = resp[0] if isinstance(resp, tuple) else resp
        out = {}
        for line in resp.data.decode().splitlines():
            m = self._METRIC.match(line)
            if not m:
                continue
            labels = dict(self._LABEL.findall(m.group(1)))
            k = (labels.get("resource", ""), labels.get("subresource", ""), labels.get("verb", ""))
            out[k] = out.get(k, 0) + float(m.group(2))
        return out

    @staticmethod
    def counter_delta(before, after):
        """Requests between two scrapes: our two kinds by verb (spec, not status) and discovery requests."""
        delta = {}
        for k, v in after.items():
            d = v - before.get(k, 0)
            if d <= 0:
                continue
            resource, sub, verb = k
            if resource in KINDS and sub == "":
                delta["%s %s" % (verb, resource)] = delta.get("%s %s" % (verb, resource), 0) + int(d)
            elif resource == "" and sub not in DISCOVERY_SKIP:
                delta["discovery"] = delta.get("discovery", 0) + int(d)
        return delta

    # ---- audit log: writes
    def audit_mark(self):
        path = self.env["SANDBOX_AUDIT_LOG"]
        return os.path.getsize(path) if os.path.exists(path) else 0

    def writes_since(self, mark, name_prefix, settle=0.5):
        time.sleep(settle)
        events = []
        with open(self.env["SANDBOX_AUDIT_LOG"]) as f:
            f.seek(mark)
            for line in f:
                if not line.strip():
                    continue
                e = json.loads(line)
                ref = e.get("objectRef") or {}
                if e.get("stage") != "ResponseComplete" or ref.get("resource") not in KINDS:
                    continue
                if (ref.get("name") or "").startswith(name_prefix) or (
                    not ref.get("name") and e.get("verb") == "deletecollection"
                ):
                    events.append(e)
        return events


def summarize_writes(events, exclude_agents=("karpenter/",)):
    """{'patch nodepools': n, ...} of the write events not sent by the given user agents (controllers).

    Server-side dry-run writes are write requests too (they run admission and validation) and are counted,
    marked ``(dry-run)``; rejected ones are marked with their status (kubernetes.core tries a strategic merge
    patch first, which custom resources answer with HTTP 415, then a merge patch).
    """
    out = {}
    for e in events:
        ua = e.get("userAgent") or ""
        if ua.startswith(exclude_agents) or (e.get("objectRef") or {}).get("subresource"):
            continue
        dry = "dryRun=All" in (e.get("requestURI") or "")
        code = (e.get("responseStatus") or {}).get("code") or 0
        k = "%s%s %s%s" % (
            e["verb"],
            " (dry-run)" if dry else "",
            e["objectRef"]["resource"],
            " (HTTP %d)" % code if code >= 300 else "",
        )
        out[k] = out.get(k, 0) + 1
    return out


# --------------------------------------------------------------------------------------------- counting proxy


class CountingProxy:
    """A plain-HTTP reverse proxy on 127.0.0.1 in front of the sandbox apiserver that counts every request.

    Clients get a kubeconfig (``self.kubeconfig``) whose server is the proxy, without credentials; the proxy
    forwards over TLS with the admin client certificate. Unlike the apiserver's metrics, the counts belong to
    the clients using this kubeconfig only. It buffers whole responses, so it is not for watches, and it adds
    latency: use it for request accounting, not for timing.
    """

    def __init__(self, env):
        import base64
        import http.client
        import http.server
        import socketserver
        import ssl
        import tempfile
        import threading
        from urllib.parse import urlsplit

        import yaml

        cfg = yaml.safe_load(open(env["KUBECONFIG"]))
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        self.tmp = tempfile.mkdtemp(prefix="counting-proxy-")
        files = {}
        for name, data in (
            ("ca.crt", cluster.get("certificate-authority-data")),
            ("client.crt", user.get("client-certificate-data")),
            ("client.key", user.get("client-key-data")),
        ):
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(base64.b64decode(data))
            files[name] = path
        ctx = ssl.create_default_context(cafile=files["ca.crt"])
        ctx.load_cert_chain(files["client.crt"], files["client.key"])
        upstream = urlsplit(cluster["server"])
        local = threading.local()
        self.counts = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPSConnection(upstream.hostname, upstream.port, context=ctx)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")
                }
                for attempt in (0, 1):
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                        data = resp.read()
                        break
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        conn = local.conn = http.client.HTTPSConnection(upstream.hostname, upstream.port, context=ctx)
                        if attempt:
                            raise
                proxy.count(self.command, self.path, resp.status)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        kube = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "proxy", "cluster": {"server": "http://127.0.0.1:%d" % self.port}}],
            "users": [{"name": "proxy", "user": {}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}],
            "current-context": "proxy",
        }
        self.kubeconfig = os.path.join(self.tmp, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            json.dump(kube, f)

    @staticmethod
    def classify(method, path):
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(path)
        query = parse_qs(parts.query)
        segs = [s for s in parts.path.split("/") if s]
        dry = " (dry-run)" if "All" in query.get("dryRun", []) else ""
        resource = None
        if len(segs) >= 4 and segs[0] == "apis":
            resource, named = segs[3], len(segs) >= 5
        elif len(segs) >= 3 and segs[0] == "api":
            resource, named = segs[2], len(segs) >= 4
        if resource is None:
            return "discovery"
        if method == "GET":
            verb = "WATCH" if query.get("watch") == ["true"] else ("GET" if named else "LIST")
        else:
            verb = method
        return "%s%s %s" % (verb, dry, resource)

    def count(self, method, path, status=200):
        k = self.classify(method, path)
        if status >= 300:
            k += " (HTTP %d)" % status
        with self.lock:
            self.counts[k] = self.counts.get(k, 0) + 1

    def take(self):
        """Counts since the last call."""
        with self.lock:
            out, self.counts = self.counts, {}
        return out

    def close(self):
        import shutil

        self.server.shutdown()
        shutil.rmtree(self.tmp, ignore_errors=True)
