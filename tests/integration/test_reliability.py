"""Reliability of the apply layer against the sandbox's real apiserver (each test takes a few seconds):

* characters outside the Basic Multilingual Plane are applied (raw UTF-8, not JSON surrogate escapes the YAML
  decoder refuses) over both transports, and the next run plans no change;
* a deterministic apply error is answered after one request, with the apiserver's message;
* a DELETE that finds the object already gone is done;
* a watch cut mid-stream (a TCP forwarder in front of the apiserver drops the connection, as a restart or a
  load balancer does) is watched again from where it stopped; a wait whose apiserver goes away after the
  writes fails with changed=true and what was written;
* a wait returns the Ready object it saw;
* a kubeconfig given as a dict leaves none of its secrets in the registered result.

The unit tests of the same behaviours (scripted connections) are tests/unit/kube/test_client.py, test_engine.py
and test_modules.py.
"""

import json
import socket
import threading
import time

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.apply import karpenter as karpenter_apply
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine, objects, resource, transport

EMOJI = "\U0001f680"  # outside the BMP
KWOK_REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"}  # the sandbox's Ready class
CM_PATH = "/api/v1/namespaces/default/configmaps"


class CuttableProxy:
    """A TCP forwarder to the apiserver (TLS passes through) that can cut every open connection and refuse new
    ones, as an apiserver restart or a load balancer does."""

    def __init__(self, port):
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets, self.lock = [], threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # refused from now on
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets = []

    def refuse(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close() alone keeps it listening
        except OSError:
            pass
        self.listener.close()
        self.cut()


def kubeconfig(sandbox):
    with open(sandbox.env["KUBECONFIG"]) as f:
        return json.load(f)


@pytest.fixture
def proxy(sandbox):
    server = kubeconfig(sandbox)["clusters"][0]["cluster"]["server"]
    p = CuttableProxy(int(server.rsplit(":", 1)[1]))
    yield p
    p.refuse()


def direct_api(sandbox, port=None):
    cfg = transport.direct_config({"kubeconfig": sandbox.env["KUBECONFIG"]}, environ={"HOME": "/nonexistent"})
    assert cfg is not None
    if port is not None:
        cfg.port = port
    return kclient.KubeApi(cfg)


def official_api(sandbox, port=None):
    from kubernetes import config
    from kubernetes.client import Configuration

    cfg = Configuration()
    config.load_kube_config(config_file=sandbox.env["KUBECONFIG"], client_configuration=cfg)
    if port is not None:
        cfg.host = "https://127.0.0.1:%d" % port
    return kclient.KubeApi(cfg)


TRANSPORTS = {"direct": direct_api, "kubernetes": official_api}


def nodepool(name, **annotations):
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": dict(KWOK_REF),
                    "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}],
                }
            },
            "limits": {"cpu": "10"},
        },
    }


@pytest.fixture
def pool_name(sandbox, uid):
    name = f"rel-{uid}"
    yield name
    sandbox.kubectl("delete", "nodepool", name, "--ignore-not-found", "--wait=false")


# ------------------------------------------------------------------------------------ UTF-8 bodies
@pytest.mark.parametrize("transport_name", sorted(TRANSPORTS))
def test_an_emoji_is_applied_and_the_next_run_changes_nothing(sandbox, uid, transport_name):
    name = f"rel-utf8-{uid}-{transport_name}"
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "annotations": {"note": "launch " + EMOJI}},
        "data": {"user-data": "#!/bin/sh\necho '\u00e9t\u00e9 " + EMOJI + "'\n"},
    }
    try:
        res = objects.run(TRANSPORTS[transport_name](sandbox), [cm])
        assert [r["action"] for r in res["results"]] == ["create"]
        stored = json.loads(sandbox.kubectl("get", "configmap", "-n", "default", name, "-o", "json").stdout)
        assert stored["data"] == cm["data"] and stored["metadata"]["annotations"]["note"] == "launch " + EMOJI
        again = objects.run(TRANSPORTS[transport_name](sandbox), [cm])
        assert again["changed"] is False and again["requests"]["writes"] == 0
    finally:
        sandbox.kubectl("delete", "configmap", "-n", "default", name, "--ignore-not-found")


def test_a_nodepool_with_an_emoji_waits_ready_reports_it_and_then_changes_nothing(sandbox, pool_name):
    pool = nodepool(pool_name, **{"example.com/owner": "team " + EMOJI})
    res = karpenter_apply.run(direct_api(sandbox), resource.NODEPOOL, [pool], wait=True, wait_timeout=60)
    (item,) = res["results"]
    assert res["not_ready"] == [] and res["written"] == [f"NodePool/{pool_name}"]
    # the Ready object the wait saw, not the one the apply returned
    assert item["ready"] is True and any(c["type"] == "Ready" and c["status"] == "True" for c in item["conditions"])
    again = karpenter_apply.run(official_api(sandbox), resource.NODEPOOL, [pool])
    assert again["changed"] is False and again["requests"]["writes"] == 0


# ------------------------------------------------------------------------------------ errors
def test_a_deterministic_apply_error_is_answered_after_one_request(sandbox, uid):
    api = direct_api(sandbox)
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"rel-bad-{uid}"}, "data": {"n": 1}}
    with pytest.raises(kclient.KubeError) as err:
        api.apply(f"{CM_PATH}/rel-bad-{uid}", bad, "reliability-test")
    print(f"apiserver answered HTTP {err.value.status}: {err.value}")
    assert api.counts == {"patch": 1}, "a deterministic error must not be retried"
    assert err.value.status in (400, 422, 500) and "(HTTP %s)" % err.value.status in str(err.value)
    assert len(str(err.value)) > len("(HTTP 500)") + 5  # the apiserver's own message


def test_a_delete_that_finds_the_object_gone_is_done(sandbox, pool_name):
    api = direct_api(sandbox)
    karpenter_apply.run(api, resource.NODEPOOL, [nodepool(pool_name)])
    live, version = engine.list_live(api, resource.NODEPOOL)
    plan = engine.plan_kind(resource.NODEPOOL, [{"metadata": {"name": pool_name}}], live, state="absent")
    sandbox.kubectl("delete", "nodepool", pool_name, "--wait=true", "--timeout=30s")  # between our LIST and DELETE
    engine.execute(api, plan)
    assert plan[0].to_dict()["action"] == "delete" and plan[0].written
    assert engine.wait_deleted(api, resource.NODEPOOL, plan, 20, version) == []


# ------------------------------------------------------------------------------------ broken watches
@pytest.mark.parametrize("transport_name", sorted(TRANSPORTS))
def test_a_watch_cut_mid_stream_is_watched_again(sandbox, uid, proxy, transport_name):
    api = TRANSPORTS[transport_name](sandbox, proxy.port)
    first, second = f"rel-w1-{uid}-{transport_name}", f"rel-w2-{uid}-{transport_name}"
    version = api.list(CM_PATH)["metadata"]["resourceVersion"]

    def create(name):
        sandbox.kubectl("create", "configmap", name, "-n", "default", "--from-literal=k=v")

    def seen(event_type, obj):
        name = obj["metadata"]["name"]
        if event_type == "ADDED" and name == first:
            proxy.cut()  # the connection carrying this watch is gone; the next one arrives while it is down
            create(second)
        return event_type == "ADDED" and name == second

    try:
        create(first)
        started = time.monotonic()
        assert api.watch_until(CM_PATH, seen, version, timeout=30) is True
        assert api.counts["watch"] >= 2 and time.monotonic() - started < 20
    finally:
        for name in (first, second):
            sandbox.kubectl("delete", "configmap", "-n", "default", name, "--ignore-not-found")


def test_a_wait_whose_apiserver_goes_away_fails_with_changed_and_what_was_written(sandbox, pool_name, proxy):
    api = direct_api(sandbox, proxy.port)
    watch_until = api.watch_until

    def apiserver_gone(*args, **kw):  # right after the writes, before the wait's watch
        proxy.refuse()
        return watch_until(*args, **kw)

    api.watch_until = apiserver_gone
    with pytest.raises(kclient.KubeError, match="broken and not re-established within 3s") as err:
        karpenter_apply.run(api, resource.NODEPOOL, [nodepool(pool_name)], wait=True, wait_timeout=3)
    result = err.value.result
    assert result["changed"] is True and result["written"] == [f"NodePool/{pool_name}"]
    assert sandbox.kubectl("get", "nodepool", pool_name).returncode == 0  # it was written indeed


# ------------------------------------------------------------------------------------ secrets
def test_a_dict_kubeconfig_leaves_no_secret_in_the_registered_result(sandbox, tmp_path, monkeypatch):
    kc = kubeconfig(sandbox)
    key = kc["users"][0]["user"]["client-key-data"]
    saved = tmp_path / "registered.json"
    play = tmp_path / "info.yml"
    play.write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - karpenter_eks.platform.karpenter_info:\n"
        "        kubeconfig: '{{ kc }}'\n"
        "        kinds: [NodePool]\n"
        "      register: info\n"
        "    - ansible.builtin.copy:\n"
        "        content: '{{ info | to_json }}'\n"
        f"        dest: {saved}\n"
    )
    monkeypatch.setenv("ANSIBLE_INJECT_INVOCATION", "true")
    _, out = sandbox.playbook(str(play), extra_vars={"kc": kc})
    registered = json.loads(saved.read_text())
    assert "kubeconfig" in registered["invocation"]["module_args"]
    assert key not in saved.read_text() and key not in json.dumps(out)
