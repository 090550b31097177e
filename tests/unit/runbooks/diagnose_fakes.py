"""A read-only fake of the Kubernetes API for the diagnosis logic (plugins/module_utils/runbooks/).

``FakeApi`` holds hand-made objects by collection path and answers GET/LIST the way ``kube.client.KubeApi`` does
(404 as ``KubeError`` with ``status``, field and label selectors applied, ``/api/v1/pods`` and ``/api/v1/events``
across namespaces). It has no write method and refuses any verb but GET, so a test also proves that the
diagnosis never writes.
"""

import copy
import datetime
import re

from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube.client import KubeError

NOW = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.UTC)


def ago(seconds):
    return (NOW - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _field(obj, dotted):
    for part in dotted.split("."):
        obj = (obj or {}).get(part) if isinstance(obj, dict) else None
    return obj


def _matches(obj, query):
    for term in filter(None, (query.get("fieldSelector") or "").split(",")):
        key, unused, value = term.partition("=")
        if str(_field(obj, key)) != value:
            return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (query.get("labelSelector") or "").split(",")):
        key, eq, value = term.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


class FakeApi:
    def __init__(self, objects=(), version_error=None):
        self.objects = [(path, copy.deepcopy(obj)) for path, obj in objects]
        self.version_error = version_error
        self.requests = []

    def get(self, path):
        self.requests.append(("GET", path))
        if path == "/version":
            if self.version_error:
                raise KubeError(self.version_error)
            return {"gitVersion": "v1.36.0"}
        coll, unused, name = path.rpartition("/")
        for c, o in self.objects:
            if c == coll and o["metadata"]["name"] == name:
                return copy.deepcopy(o)
        raise KubeError("%s not found (HTTP 404)" % path, status=404)

    def _items(self, path, query):
        across = re.match(r"^/api/v1/(pods|events)$", path)
        out = []
        for c, o in self.objects:
            same = c == path or (across and re.match(r"^/api/v1/namespaces/[^/]+/%s$" % across.group(1), c))
            if same and _matches(o, query):
                out.append(copy.deepcopy(o))
        return out

    def call(self, verb, method, path, query=None, body=None, content_type=None, timeout=None):
        assert method == "GET" and body is None, "the diagnosis must never write (%s %s)" % (method, path)
        self.requests.append((method, path))
        return {"items": self._items(path, query or {})}

    def list(self, path, label_selector=None):
        self.requests.append(("GET", path))
        query = {"labelSelector": label_selector} if label_selector else {}
        return {"items": self._items(path, query), "metadata": {"resourceVersion": "1"}}


# ---------------------------------------------------------------- object builders (shapes of the real API)
NODEPOOLS = "/apis/karpenter.sh/v1/nodepools"
NODECLAIMS = "/apis/karpenter.sh/v1/nodeclaims"
KWOK_REF = {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"}
EC2_REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}


def cond(ctype, status, reason=None, message=None, **kw):
    c = {"type": ctype, "status": status, "lastTransitionTime": ago(60)}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    c.update(kw)
    return c


def nodepool(
    name,
    capacity_types=("on-demand",),
    limits=None,
    usage=None,
    ready=True,
    ref=None,
    annotations=None,
    requirements=None,
    labels=None,
):
    reqs = (
        requirements
        if requirements is not None
        else [
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(capacity_types)},
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        ]
    )
    meta = {"name": name, "generation": 1, "uid": "uid-" + name, "resourceVersion": "7"}
    if annotations:
        meta["annotations"] = dict(annotations)
    template = {"spec": {"nodeClassRef": ref or KWOK_REF, "requirements": reqs, "expireAfter": "Never"}}
    if labels:
        template["metadata"] = {"labels": labels}
    np = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": meta,
        "spec": {
            "template": template,
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
        },
        "status": {
            "conditions": [
                cond(
                    "Ready", "True" if ready else "False", None if ready else "NodeClassNotReady", observedGeneration=1
                )
            ],
            "resources": dict(usage or {}),
        },
    }
    if limits:
        np["spec"]["limits"] = dict(limits)
    return (NODEPOOLS, np)


def nodeclaim(name, pool, capacity_type="spot", node=None, created=600, ready=True, deleting=False, conditions=None):
    meta = {
        "name": name,
        "creationTimestamp": ago(created),
        "labels": {"karpenter.sh/nodepool": pool, "karpenter.sh/capacity-type": capacity_type},
    }
    if deleting:
        meta["deletionTimestamp"] = ago(30)
    conds = (
        conditions
        if conditions is not None
        else [cond(t, "True" if ready else "Unknown") for t in ("Launched", "Registered", "Initialized", "Ready")]
    )
    return (NODECLAIMS, {"metadata": meta, "status": {"nodeName": node or name + "-node", "conditions": conds}})


def pod(ns, name, phase="Pending", cpu="1", memory=None, node_selector=None, node=None, message=None, created=300):
    requests = {"cpu": cpu}
    if memory:
        requests["memory"] = memory
    spec = {"containers": [{"name": "app", "image": "pause", "resources": {"requests": requests}}]}
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if node:
        spec["nodeName"] = node
    status = {"phase": phase}
    if phase == "Pending" and not node:
        status["conditions"] = [cond("PodScheduled", "False", "Unschedulable", message or "0/2 nodes are available")]
    return (
        "/api/v1/namespaces/%s/pods" % ns,
        {
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": ago(created)},
            "spec": spec,
            "status": status,
        },
    )


_seq = [0]


def event(ns, kind, name, reason, message, component="karpenter", age=30, etype="Warning", obj_ns=None):
    _seq[0] += 1
    return (
        "/api/v1/namespaces/%s/events" % ns,
        {
            "metadata": {"name": "%s.%d" % (name, _seq[0]), "namespace": ns, "creationTimestamp": ago(age)},
            "involvedObject": {"kind": kind, "name": name, "namespace": obj_ns},
            "reason": reason,
            "message": message,
            "type": etype,
            "count": 1,
            "source": {"component": component},
            "lastTimestamp": ago(age),
        },
    )


def node(name, group=None, ready=True):
    labels = {"kubernetes.io/hostname": name}
    if group:
        labels["eks.amazonaws.com/nodegroup"] = group
    return (
        "/api/v1/nodes",
        {"metadata": {"name": name, "labels": labels}, "status": {"conditions": [cond("Ready", str(ready))]}},
    )


# the KWOKNodeClass every test NodePool points at, Ready
KWOK_NODECLASS = (
    "/apis/karpenter.kwok.sh/v1alpha1/kwoknodeclasses",
    {"metadata": {"name": "default"}, "status": {"conditions": [cond("Ready", "True")]}},
)
