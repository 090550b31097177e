"""Fault injection: the apiserver goes away at a chosen write of a multi-object apply, delete, prune or restore,
or at a chosen read of a backup.

``KillableApiserver`` is an HTTP proxy in front of the sandbox's apiserver (TLS terminated with the apiserver's
own serving certificate, so the kubeconfig's CA and address check pass; forwarded with the kubeconfig's client
certificate). It counts the write requests (POST/PUT/PATCH/DELETE, server-side dry runs excepted) and, when write
N+1 arrives, waits until the answers to writes 1..N have been sent, then "dies" as a SIGKILLed apiserver does:
write N+1 never reaches the apiserver, every open connection (watches included) is closed, and new connections
are refused. What the apiserver really stored is then known exactly: the writes the proxy answered. It can
die at the read (GET) after the M-th the same way (``kill_after_reads``), and ``kubeconfig()`` writes a
kubeconfig pointing at it, for a module run in-process.

Each test then checks, against the real apiserver:

* nothing is lost or half-applied: every object the proxy let through is, field by field, what was desired;
  every other object is exactly as it was before the run (or still absent);
* the error carries the result so far: ``changed: true`` and ``written`` naming exactly those objects;
* a rerun (through a proxy that does not die) writes exactly the objects the first run did not, and converges;
* a third run sends no write request (``requests.writes == 0``, and none reaches the proxy).

The tests: 4 NodePools applied (2 updates, 2 creates), the apiserver gone after the 2nd write, over the direct
transport and over the official client (``KARPENTER_EKS_KUBE_TRANSPORT=kubernetes``'s path); 4 NodePools deleted
(state=absent), gone after the 2nd DELETE; a prune (1 pool kept and updated, 3 pruned, their deletions held by a
finalizer; the proxy adds a label selector to the NodePool lists, so the other managed pools of the sandbox stay out
of it), gone after 3 of the 4 writes; a karpenter_backup restore of 1 EC2NodeClass + 3 NodePools, gone after
the 1st write (between two kinds) and after the 2nd (among the NodePools); a karpenter_backup backup to a local
dest (the module's main() as AnsiballZ runs it), gone after the 1st and the 10th of its 14 reads: a clear error
(no traceback), no archive, no ``.partial`` file, no staging directory, no write, and the rerun writes a complete
archive. The restore ones caught a bug: its error carried no result (changed false) or only the failing kind's
writes; the prune one another: a rerun deleted again (and reported written) the pools whose deletion was pending.

The apply, delete and restore scenarios also run with the sandbox's real kube-apiserver SIGKILLed when the 3rd
write arrives, then started again (``sandbox.py up``, which waits until it is ready and Karpenter sees it again): what it answered
must be what etcd kept. Tests run one after another in the tier, so no other test loses its apiserver; where
others share a sandbox (helpers running tiers side by side), ``FAULTS_SIGKILL_APISERVER=0`` leaves it out.

The client's retries (connection errors, with backoff) make each failing run last ~8-15 s; the file ~2 min
(the SIGKILL case included).
"""

import base64
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import urllib.parse

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.apply import karpenter as karpenter_apply
from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import core as bk
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine, resource, transport
from conftest import _sandbox

pytestmark = pytest.mark.sandbox

LABEL = "it.karpenter-eks/faults"
MANAGED = {engine.MANAGED_BY_LABEL: engine.MANAGED_BY_VALUE}
USER_AGENT = "karpenter-eks-platform/"  # our requests in the sandbox's audit log
SIGKILL_ENV = "FAULTS_SIGKILL_APISERVER"  # 0: no test SIGKILLs (and restarts) the sandbox's kube-apiserver
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "upgrade")
POOLS = ("karpenter.sh", "v1", "nodepools")
CLASSES = ("karpenter.k8s.aws", "v1", "ec2nodeclasses")


# ------------------------------------------------------------------------------------ the dying apiserver
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, *args):  # quiet
        pass

    def _any(self):
        self.server.owner.serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any


class KillableApiserver:
    """See the module docstring. ``kill_after``: the number of writes let through (None: never dies);
    ``kill_after_reads``: the number of read requests (GET: reads, lists, watches) let through, the next
    read kills it the same way (None: reads never kill it).

    ``answered``: (method, path, status) of every write forwarded and answered; ``refused``: the write requests
    that arrived after the death (none of them reached the apiserver); ``reads``: (method, path) of every read
    forwarded; ``refused_reads``: the read that killed it. ``on_death``: called once when it dies, before
    the open connections are closed (``sigkill_apiserver``). ``scope``: {collection path: label selector}: a
    LIST or watch of that collection is forwarded with the selector added, so a client sees only the objects of
    one test (a prune must not see, and delete, other tests' objects on a shared sandbox)."""

    def __init__(self, sandbox, kill_after=None, kill_after_reads=None, on_death=None, scope=None):
        env = sandbox.env
        with open(env["KUBECONFIG"]) as f:
            kc = json.load(f)
        self.kubeconfig_doc = kc
        self.upstream_port = int(kc["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])
        self.tmp = tempfile.mkdtemp(prefix="faults-")
        files = {}
        for name, field in (("ca", None), ("crt", "client-certificate-data"), ("key", "client-key-data")):
            data = (
                kc["clusters"][0]["cluster"]["certificate-authority-data"]
                if field is None
                else kc["users"][0]["user"][field]
            )
            files[name] = os.path.join(self.tmp, name + ".pem")
            with open(files[name], "wb") as f:
                f.write(base64.b64decode(data))
        self.upstream_ctx = ssl.create_default_context(cafile=files["ca"])
        self.upstream_ctx.load_cert_chain(files["crt"], files["key"])
        pki = os.path.join(env["SANDBOX_STATE"], "pki")
        serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        serving.load_cert_chain(os.path.join(pki, "apiserver.crt"), os.path.join(pki, "apiserver.key"))

        self.kill_after, self.kill_after_reads, self.on_death = kill_after, kill_after_reads, on_death
        self.scope = scope or {}
        self.cond = threading.Condition()
        self.arrived, self.answered, self.refused, self.down = 0, [], [], False
        self.reads, self.refused_reads = [], []
        self.sockets = set()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.socket = serving.wrap_socket(self.server.socket, server_side=True)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    # -- what the apiserver received
    def written_names(self):
        """Names of the objects whose write the apiserver answered with success, in answer order."""
        return [path.split("?", 1)[0].rsplit("/", 1)[1] for m, path, status in self.answered if 200 <= status < 300]

    def writes_seen(self):
        return len(self.answered) + len(self.refused)

    def kubeconfig(self):
        """A copy of the sandbox's kubeconfig whose server is this proxy (for a module's ``kubeconfig`` option)."""
        doc = json.loads(json.dumps(self.kubeconfig_doc))
        doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        path = os.path.join(self.tmp, "kubeconfig")
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    # -- the proxy
    def serve(self, h):
        with self.cond:
            self.sockets.add(h.connection)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        write = h.command in WRITE_METHODS and "dryRun=" not in h.path
        with self.cond:
            if self.down:
                return self._drop(h)
            if write:
                index, self.arrived = self.arrived, self.arrived + 1
                if self.kill_after is not None and index >= self.kill_after:
                    # the answers to the writes before this one are sent first: what was answered is what was stored
                    self.cond.wait_for(lambda: len(self.answered) >= self.kill_after or self.down, timeout=30)
                    self.refused.append((h.command, h.path))
                    self._kill_locked()
                    return self._drop(h)
            elif h.command == "GET":
                if self.kill_after_reads is not None and len(self.reads) >= self.kill_after_reads:
                    self.refused_reads.append((h.command, h.path))
                    self._kill_locked()
                    return self._drop(h)
                self.reads.append((h.command, h.path))
        try:
            status = self._forward(h, body)
        except (OSError, http.client.HTTPException):
            return self._drop(h)
        if write:
            with self.cond:
                self.answered.append((h.command, h.path, status))
                self.cond.notify_all()

    def _forward(self, h, body):
        if h.upstream is None:
            h.upstream = http.client.HTTPSConnection(
                "127.0.0.1", self.upstream_port, context=self.upstream_ctx, timeout=300
            )
            h.upstream.connect()
            with self.cond:
                self.sockets.add(h.upstream.sock)
        up = h.upstream
        up.putrequest(h.command, self._scoped(h.command, h.path), skip_host=True, skip_accept_encoding=True)
        for k, v in h.headers.items():
            if k.lower() not in HOP_BY_HOP:
                up.putheader(k, v)
        if body is not None:
            up.putheader("Content-Length", str(len(body)))
        up.endheaders(body)
        resp = up.getresponse()
        h.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                h.send_header(k, v)
        if resp.chunked or resp.length is None:  # a watch: streamed as it comes
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            while chunk := resp.read1(65536):
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            h.wfile.write(b"0\r\n\r\n")
        else:
            data = resp.read()
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        h.wfile.flush()
        if resp.will_close:
            up.close()
            h.upstream = None
        return resp.status

    def _scoped(self, method, path):
        base, _sep, query = path.partition("?")
        selector = self.scope.get(base) if method == "GET" else None
        if selector is None:
            return path
        assert "labelSelector=" not in query, path
        return base + "?" + "&".join(q for q in (query, urllib.parse.urlencode({"labelSelector": selector})) if q)

    @staticmethod
    def _drop(h):
        h.close_connection = True
        if h.upstream is not None:
            h.upstream.close()
            h.upstream = None

    def _kill_locked(self):
        if self.down:
            return
        self.down = True
        if self.on_death is not None:
            self.on_death()
        self.server.shutdown()  # returns once serve_forever stopped accepting
        self.server.server_close()  # new connections are refused from now on
        for s in list(self.sockets):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.cond.notify_all()

    def stop(self):
        with self.cond:
            self._kill_locked()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def proxies(sandbox):
    made = []

    def make(kill_after=None, kill_after_reads=None, on_death=None, scope=None):
        p = KillableApiserver(sandbox, kill_after, kill_after_reads, on_death, scope)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


def sigkill_apiserver(sandbox):
    """SIGKILL the sandbox's kube-apiserver (etcd keeps what it stored); returns its pid."""
    with open(os.path.join(sandbox.env["SANDBOX_STATE"], "run", "kube-apiserver.pid")) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL)
    return pid


def restart_apiserver():
    """``sandbox.py up`` starts what is not running (the apiserver) and returns once it is ready."""
    res = _sandbox("up", "--quiet", check=False)
    assert res.returncode == 0, res.stderr[-3000:]


ONLY_IF_SIGKILL_ALLOWED = pytest.mark.skipif(
    os.environ.get(SIGKILL_ENV, "1") == "0",
    reason=f"{SIGKILL_ENV}=0: the sandbox's kube-apiserver is shared with tests running beside these",
)
SIGKILL_PARAMS = [
    pytest.param(False, id="proxy-dies"),
    pytest.param(True, id="apiserver-sigkilled", marks=ONLY_IF_SIGKILL_ALLOWED),
]


def dying_proxy(sandbox, proxies, kill_after, sigkill, killed):
    """A proxy that dies at write ``kill_after + 1``; with ``sigkill`` the real kube-apiserver is SIGKILLed then
    too (its pid appended to ``killed``)."""
    return proxies(
        kill_after=kill_after, on_death=(lambda: killed.append(sigkill_apiserver(sandbox))) if sigkill else None
    )


def after_sigkill(proxy, killed):
    """The apiserver really died (its port refuses connections); start it again."""
    assert len(killed) == 1
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.upstream_port), timeout=5).close()
    restart_apiserver()


def api_via(sandbox, proxy, transport_name="direct"):
    """A KubeApi talking to ``proxy``: the direct transport, or (``"kubernetes"``) the official client, which
    the modules use when ``KARPENTER_EKS_KUBE_TRANSPORT=kubernetes`` is set."""
    if transport_name == "kubernetes":
        configuration, headers = kclient.configuration_from_params(
            {"kubeconfig": proxy.kubeconfig()}, environ={transport.FORCE_ENV: "kubernetes", "HOME": "/nonexistent"}
        )
        api = kclient.KubeApi(configuration, headers)
    else:
        cfg = transport.direct_config({"kubeconfig": sandbox.env["KUBECONFIG"]}, environ={"HOME": "/nonexistent"})
        cfg.port = proxy.port
        api = kclient.KubeApi(cfg)
    assert api.transport_name == transport_name
    return api


# ------------------------------------------------------------------------------------ objects
def nodepool(name, uid, rev, node_class="sandbox"):
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name, "labels": {LABEL: uid}, "annotations": {"example.com/rev": str(rev)}},
        "spec": {
            "template": {
                "metadata": {"labels": {"example.com/pool": name, "example.com/rev": str(rev)}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    ],
                    # no pod of another test tolerates it: these pools never own nodes (deletes disrupt nothing)
                    "taints": [{"key": LABEL, "value": uid, "effect": "NoSchedule"}],
                },
            },
            "limits": {"cpu": str(10 * rev)},
            "weight": rev,
        },
    }


def nodeclass(name, uid):
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name, "labels": {LABEL: uid}},
        "spec": {
            "role": f"KarpenterNodeRole-{uid}",
            "amiSelectorTerms": [{"alias": "al2023@v20250505"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
            "tags": {"team": "platform"},
        },
    }


def live(sandbox, uid, kind=POOLS):
    """{name: live object} of this test's objects of ``kind``."""
    items = sandbox.custom.list_cluster_custom_object(*kind, label_selector=f"{LABEL}={uid}")["items"]
    return {i["metadata"]["name"]: i for i in items}


def delete_all(sandbox, uid):
    for plural, group in (("nodepools", "karpenter.sh"), ("ec2nodeclasses", "karpenter.k8s.aws")):
        sandbox.kubectl(
            "delete", f"{plural}.{group}", "-l", f"{LABEL}={uid}", "--wait=true", "--timeout=60s", check=False
        )


@pytest.fixture
def cleanup(sandbox, uid):
    yield
    delete_all(sandbox, uid)


def assert_holds(desired, obj):
    """Every field of ``desired`` (plus our managed-by label) is in ``obj`` with the same value, lists item by item
    and of the same length (``engine.differences``). Revisions 1 and 2 give the same fields different values, so
    no field of a pool written at revision 2 is left at revision 1."""
    want = json.loads(json.dumps(desired))
    want["metadata"].setdefault("labels", {}).update(MANAGED)
    assert engine.differences(want, obj) == [], (desired["metadata"]["name"], engine.differences(want, obj))
    assert obj["metadata"]["annotations"]["example.com/rev"] == desired["metadata"]["annotations"]["example.com/rev"]


# ------------------------------------------------------------------------------------ (1) apply
@pytest.mark.parametrize(
    "transport_name, sigkill",
    [
        pytest.param("direct", False, id="direct"),
        pytest.param("kubernetes", False, id="kubernetes"),
        pytest.param("direct", True, id="direct-sigkill", marks=ONLY_IF_SIGKILL_ALLOWED),
    ],
)
def test_apiserver_dies_after_the_2nd_of_4_nodepool_writes(sandbox, uid, proxies, cleanup, transport_name, sigkill):
    """Over the direct transport and the official client. ``direct-sigkill``: when the 3rd write arrives, the
    sandbox's real kube-apiserver is SIGKILLed too (then started again): what it answered must be what etcd
    kept."""
    names = [f"flt-a-{uid}-{i}" for i in range(4)]
    # two pools exist at revision 1 (the run updates them), two do not (the run creates them)
    sandbox.apply([nodepool(n, uid, 1) for n in names[:2]])
    before = {n: engine.normalize(o) for n, o in live(sandbox, uid).items()}
    assert sorted(before) == names[:2]
    desired = [nodepool(n, uid, 2) for n in names]

    killed = []
    dying = dying_proxy(sandbox, proxies, 2, sigkill, killed)
    with pytest.raises(kclient.KubeError, match="cannot reach the Kubernetes API") as err:
        karpenter_apply.run(api_via(sandbox, dying, transport_name), resource.NODEPOOL, desired)
    stored = dying.written_names()
    assert len(stored) == 2 and len(dying.refused) >= 1, (dying.answered, dying.refused)
    if sigkill:
        after_sigkill(dying, killed)
    result = err.value.result
    assert result is not None and result["changed"] is True
    assert sorted(result["written"]) == sorted(f"NodePool/{n}" for n in stored)
    by_name = {r["name"]: r for r in result["results"]}
    assert sorted(n for n, r in by_name.items() if r.get("error")) == sorted(set(names) - set(stored))

    # nothing lost or half-applied: the written pools are revision 2 field by field, the others untouched
    now = live(sandbox, uid)
    for d in desired:
        n = d["metadata"]["name"]
        if n in stored:
            assert_holds(d, now[n])
        elif n in before:
            assert engine.normalize(now[n]) == before[n], n
        else:
            assert n not in now, n

    # the rerun writes exactly what the first run did not, through an apiserver that stays up
    healthy = proxies()
    again = karpenter_apply.run(api_via(sandbox, healthy, transport_name), resource.NODEPOOL, desired)
    assert again["changed"] is True
    assert sorted(again["written"]) == sorted(f"NodePool/{n}" for n in set(names) - set(stored))
    assert sorted(healthy.written_names()) == sorted(set(names) - set(stored))
    now = live(sandbox, uid)
    for d in desired:
        assert_holds(d, now[d["metadata"]["name"]])

    third = karpenter_apply.run(api_via(sandbox, healthy, transport_name), resource.NODEPOOL, desired)
    assert third["changed"] is False and third["written"] == [] and third["requests"]["writes"] == 0
    assert healthy.writes_seen() == 2 == len(healthy.written_names())


# ------------------------------------------------------------------------------------ (2) delete
@pytest.mark.parametrize("sigkill", SIGKILL_PARAMS)
def test_apiserver_dies_after_the_2nd_of_4_nodepool_deletes(sandbox, uid, proxies, cleanup, sigkill):
    names = [f"flt-d-{uid}-{i}" for i in range(4)]
    sandbox.apply([nodepool(n, uid, 1) for n in names])
    before = {n: engine.normalize(o) for n, o in live(sandbox, uid).items()}
    assert sorted(before) == names
    absent = [{"metadata": {"name": n}} for n in names]

    killed = []
    dying = dying_proxy(sandbox, proxies, 2, sigkill, killed)
    with pytest.raises(kclient.KubeError, match="cannot reach the Kubernetes API") as err:
        karpenter_apply.run(api_via(sandbox, dying), resource.NODEPOOL, absent, state="absent")
    deleted = dying.written_names()
    assert len(deleted) == 2 and len(dying.refused) >= 1, (dying.answered, dying.refused)
    if sigkill:
        after_sigkill(dying, killed)
    assert all(m == "DELETE" for m, _p, _s in dying.answered)
    result = err.value.result
    assert result is not None and result["changed"] is True
    assert sorted(result["written"]) == sorted(f"NodePool/{n}" for n in deleted)

    # the deleted pools are gone (or going: a finalizer may hold them), the others are exactly as they were
    def gone():
        now = live(sandbox, uid)
        return all(n not in now or now[n]["metadata"].get("deletionTimestamp") for n in deleted) and now

    now = sandbox.wait_until("the written deletes", gone, 30)
    for n in set(names) - set(deleted):
        assert engine.normalize(now[n]) == before[n], n
        assert not now[n]["metadata"].get("deletionTimestamp"), n

    healthy = proxies()
    again = karpenter_apply.run(
        api_via(sandbox, healthy), resource.NODEPOOL, absent, state="absent", wait=True, wait_timeout=60
    )
    assert again["changed"] is True and again["not_deleted"] == []
    assert sorted(again["written"]) == sorted(f"NodePool/{n}" for n in set(names) - set(deleted))
    assert sorted(healthy.written_names()) == sorted(set(names) - set(deleted))
    assert live(sandbox, uid) == {}

    third = karpenter_apply.run(api_via(sandbox, healthy), resource.NODEPOOL, absent, state="absent")
    assert third["changed"] is False and third["written"] == [] and third["requests"]["writes"] == 0
    assert healthy.writes_seen() == 2


# ------------------------------------------------------------------------------------ (2b) prune
HOLD = "it.karpenter-eks/hold"  # a finalizer of this file: a deletion stays pending until the test removes it


def release(sandbox, names):
    for n in names:
        sandbox.kubectl(
            "patch", "nodepool", n, "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]', check=False
        )


def test_apiserver_dies_during_a_prune(sandbox, uid, proxies):
    """prune: 4 managed pools of this test exist at revision 1; the run keeps pool 0 (updated to revision 2) and
    prunes pools 1-3 (the four writes of one kind are sent concurrently); the apiserver dies after 3 of them. The
    pruned pools carry a finalizer of this test, so a deletion stays pending (as for a pool draining its nodes)
    until the test removes it. The rerun must not delete those a second time: it did (a prune re-sent DELETE
    for an object already being deleted and reported it written at every run until its finalizers were done).

    A prune deletes every managed NodePool the run does not name: the proxies show the client only this test's
    pools (``scope``), and a managed pool outside that scope (``outsider``), like the other managed pools of a
    shared sandbox, must come out untouched."""
    names = [f"flt-p-{uid}-{i}" for i in range(4)]
    outsider = nodepool(f"flt-o-{uid}", "outside", 1)
    outsider["metadata"]["labels"].update(MANAGED)
    managed = f"{engine.MANAGED_BY_LABEL}={engine.MANAGED_BY_VALUE}"
    scope = {"/apis/karpenter.sh/v1/nodepools": f"{LABEL}={uid}"}
    pools = [nodepool(n, uid, 1) for n in names]
    for p in pools:
        p["metadata"]["labels"].update(MANAGED)
    for p in pools[1:]:
        p["metadata"]["finalizers"] = [HOLD]
    refs = {n: f"NodePool/{n}" for n in names}
    try:
        sandbox.apply(pools + [outsider])
        before = {n: engine.normalize(o) for n, o in live(sandbox, uid).items()}
        assert sorted(before) == names
        others = {
            o["metadata"]["name"]: o["metadata"]["uid"]
            for o in sandbox.custom.list_cluster_custom_object(*POOLS, label_selector=managed)["items"]
            if o["metadata"]["name"] not in names
        }
        assert outsider["metadata"]["name"] in others
        desired = [nodepool(names[0], uid, 2)]

        dying = proxies(kill_after=3, scope=scope)
        mark = sandbox.audit_mark()
        with pytest.raises(kclient.KubeError, match="cannot reach the Kubernetes API") as err:
            karpenter_apply.run(api_via(sandbox, dying), resource.NODEPOOL, desired, prune=True)
        stored = sorted(dying.written_names())
        missing = sorted(set(names) - set(stored))
        assert len(stored) == 3 and len(dying.refused) >= 1, (dying.answered, dying.refused)
        result = err.value.result
        assert result is not None and result["changed"] is True
        assert sorted(result["written"]) == [refs[n] for n in stored]
        actions = {r["name"]: r["action"] for r in result["results"]}
        assert actions == {names[0]: "update", **{n: "delete" for n in names[1:]}}
        assert [r["name"] for r in result["results"] if r.get("error")] == missing
        # the apiserver's own record: exactly those writes reached it (the proxy refused the 4th), none other
        audited = sorted((e["objectRef"].get("name"), e["verb"]) for e in sandbox.writes_since(mark, USER_AGENT))
        assert audited == [(n, "patch" if n == names[0] else "delete") for n in stored], audited

        # nothing lost or half-done: a written pool is revision 2 field by field or being deleted; the others as
        # they were
        now = live(sandbox, uid)
        assert sorted(now) == names
        for n in names:
            if n not in stored:
                assert engine.normalize(now[n]) == before[n], n
                assert not now[n]["metadata"].get("deletionTimestamp"), n
            elif n == names[0]:
                assert_holds(desired[0], now[n])
            else:
                assert now[n]["metadata"].get("deletionTimestamp"), n

        # the rerun writes only what is missing: the pools being deleted are not deleted again
        healthy = proxies(scope=scope)
        again = karpenter_apply.run(api_via(sandbox, healthy), resource.NODEPOOL, desired, prune=True)
        assert again["changed"] is True and again["written"] == [refs[n] for n in missing], again["written"]
        assert healthy.written_names() == missing and healthy.writes_seen() == 1
        release(sandbox, names[1:])
        now = sandbox.wait_until(
            "only the kept pool", lambda: sorted(live(sandbox, uid)) == names[:1] and live(sandbox, uid), 30
        )
        assert_holds(desired[0], now[names[0]])

        third = karpenter_apply.run(api_via(sandbox, healthy), resource.NODEPOOL, desired, prune=True)
        assert third["changed"] is False and third["written"] == [] and third["requests"]["writes"] == 0
        assert healthy.writes_seen() == 1
        # the managed pools outside the scope are all still there, none being deleted
        after = {
            o["metadata"]["name"]: o
            for o in sandbox.custom.list_cluster_custom_object(*POOLS, label_selector=managed)["items"]
        }
        for name, obj_uid in others.items():
            assert after[name]["metadata"]["uid"] == obj_uid and not after[name]["metadata"].get("deletionTimestamp")
    finally:
        release(sandbox, names[1:])
        delete_all(sandbox, uid)
        sandbox.kubectl("delete", "nodepool", outsider["metadata"]["name"], "--ignore-not-found", check=False)


# ------------------------------------------------------------------------------------ (3) restore
def make_archive(sandbox, uid, dest):
    """A karpenter_backup archive of this test's objects (read through the real apiserver)."""
    cfg = transport.direct_config({"kubeconfig": sandbox.env["KUBECONFIG"]}, environ={"HOME": "/nonexistent"})
    api = kclient.KubeApi(cfg)
    staging = bk.stage_dir()
    try:
        now = bk.utcnow()
        manifest = bk.collect(
            api,
            staging,
            "sandbox",
            label_selector=f"{LABEL}={uid}",
            include_configmaps=False,
            include_helm=False,
            include_inventory=False,
            now=now,
        )
        path, _digest, _size = bk.write_archive(staging, manifest, dest, bk.archive_name("sandbox", now))
    finally:
        bk.remove_dir(staging)
    return path


def restore(api, path):
    return bk.restore(api, bk.open_archive(path), cluster_name="sandbox", kinds=["EC2NodeClass", "NodePool"])


@pytest.mark.parametrize(
    "kill_after, sigkill",
    [
        pytest.param(1, False, id="between-kinds"),
        pytest.param(2, False, id="among-nodepools"),
        pytest.param(2, True, id="among-nodepools-apiserver-sigkilled", marks=ONLY_IF_SIGKILL_ALLOWED),
    ],
)
def test_apiserver_dies_during_a_restore(sandbox, uid, proxies, cleanup, tmp_path, kill_after, sigkill):
    """The archive: 1 EC2NodeClass and 3 NodePools using it; restore writes the class first, then the pools.
    Dying after the 1st write leaves the class only (a failure between two kinds), after the 2nd the class and
    one pool."""
    nc_name = f"flt-r-{uid}"
    pools = [f"flt-r-{uid}-{i}" for i in range(3)]
    sandbox.apply([nodeclass(nc_name, uid)] + [nodepool(n, uid, 1, node_class=nc_name) for n in pools])
    originals = {
        **{f"EC2NodeClass/{n}": engine.normalize(o) for n, o in live(sandbox, uid, CLASSES).items()},
        **{f"NodePool/{n}": engine.normalize(o) for n, o in live(sandbox, uid).items()},
    }
    assert len(originals) == 4
    path = make_archive(sandbox, uid, str(tmp_path))
    delete_all(sandbox, uid)
    sandbox.wait_until("the objects deleted", lambda: not live(sandbox, uid) and not live(sandbox, uid, CLASSES), 60)

    def restored():
        return {
            **{f"EC2NodeClass/{n}": engine.normalize(o) for n, o in live(sandbox, uid, CLASSES).items()},
            **{f"NodePool/{n}": engine.normalize(o) for n, o in live(sandbox, uid).items()},
        }

    def expected(ref):  # what the archive held, plus our managed-by label
        obj = json.loads(json.dumps(originals[ref]))
        obj["metadata"].setdefault("labels", {}).update(MANAGED)
        return obj

    killed = []
    dying = dying_proxy(sandbox, proxies, kill_after, sigkill, killed)
    with pytest.raises(kclient.KubeError, match="cannot reach the Kubernetes API") as err:
        restore(api_via(sandbox, dying), path)
    stored = dying.written_names()
    assert len(stored) == kill_after and stored[0] == nc_name and len(dying.refused) >= 1, dying.answered
    if sigkill:
        after_sigkill(dying, killed)
    written = [f"EC2NodeClass/{nc_name}"] + [f"NodePool/{n}" for n in stored[1:]]
    result = err.value.result
    assert result is not None, "objects were written: the error must carry changed and what was written"
    assert result["changed"] is True and sorted(result["written"]) == sorted(written)

    # nothing half-restored: what was written is the archived object field by field, the rest is absent
    now = restored()
    assert sorted(now) == sorted(written)
    for ref in written:
        assert now[ref] == expected(ref), ref

    healthy = proxies()
    again = restore(api_via(sandbox, healthy), path)
    assert again["changed"] is True and sorted(again["written"]) == sorted(set(originals) - set(written))
    assert sorted(healthy.written_names()) == sorted(r.split("/", 1)[1] for r in set(originals) - set(written))
    now = restored()
    assert sorted(now) == sorted(originals)
    for ref in originals:
        assert now[ref] == expected(ref), ref

    api = api_via(sandbox, healthy)
    third = restore(api, path)
    assert third["changed"] is False and third["written"] == [] and third["conflicts"] == []
    assert api.writes == 0 and healthy.writes_seen() == len(originals) - len(written)


# ------------------------------------------------------------------------------------ (4) backup reads
@pytest.mark.parametrize("kill_after_reads", [1, 10], ids=["at-the-start", "among-the-kinds"])
def test_apiserver_dies_during_a_backups_reads(sandbox, uid, proxies, cleanup, tmp_path, monkeypatch, kill_after_reads):
    """karpenter_backup state=present to a local dest, run as AnsiballZ runs it, through an apiserver that dies
    at the read after ``kill_after_reads`` (the NodeClaim/Node inventory is read on a second connection, in
    parallel): the task fails with the connection error (no traceback), leaves no archive, no ``.partial`` file
    and no staging directory, and writes nothing; the rerun writes the complete archive."""
    from test_bad_inputs import _run_in_process  # the module's main() as AnsiballZ runs it

    nc_name = f"flt-b-{uid}"
    pools = [f"flt-b-{uid}-{i}" for i in range(2)]
    sandbox.apply([nodeclass(nc_name, uid)] + [nodepool(n, uid, 1, node_class=nc_name) for n in pools])
    dying, healthy = proxies(kill_after_reads=kill_after_reads), proxies()
    dest, staging = tmp_path / "dest", tmp_path / "tmp"
    dest.mkdir()
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))  # where the module stages (bk.stage_dir)

    def backup(proxy):
        args = {
            "state": "present",
            "cluster_name": "sandbox",
            "dest": str(dest),
            "label_selector": f"{LABEL}={uid}",
            "kubeconfig": proxy.kubeconfig(),
        }
        return _run_in_process("karpenter_backup", args)

    mark = sandbox.audit_mark()
    code, result, tb = backup(dying)
    assert tb is None, tb
    assert code == 1 and result.get("failed") is True, result
    assert result["msg"].startswith("Kubernetes API error: cannot reach the Kubernetes API"), result["msg"]
    assert "Traceback" not in json.dumps(result) and "exception" not in result, result
    assert not result.get("changed"), result
    assert len(dying.reads) == kill_after_reads and dying.refused_reads, (dying.reads, dying.refused_reads)
    assert dying.answered == [] and dying.refused == []
    assert sorted(os.listdir(dest)) == [], "no archive, no partial file, no probe left in dest"
    assert sorted(os.listdir(staging)) == [], "no staging directory left"
    assert sandbox.writes_since(mark, USER_AGENT) == []

    code, result, tb = backup(healthy)
    assert tb is None and code == 0 and result["changed"] is True, (code, result, tb)
    assert len(healthy.reads) > kill_after_reads, healthy.reads  # the fault was in the middle of the reads
    assert healthy.answered == [] and sandbox.writes_since(mark, USER_AGENT) == []
    assert sorted(os.listdir(dest)) == [result["archive"]["name"]]
    assert sorted(os.listdir(staging)) == []
    archive = bk.open_archive(result["archive"]["path"])  # every file's checksum and size verified
    assert archive.manifest["counts"]["EC2NodeClass"] == 1 and archive.manifest["counts"]["NodePool"] == 2
    archived = {f"{k}/{o['metadata']['name']}": o for k, objs in archive.objects.items() for o in objs}
    now = {
        **{f"EC2NodeClass/{n}": o for n, o in live(sandbox, uid, CLASSES).items()},
        **{f"NodePool/{n}": o for n, o in live(sandbox, uid).items()},
    }
    assert sorted(archived) == sorted(now)
    for ref, obj in now.items():
        assert engine.differences(archived[ref], obj) == [], ref
