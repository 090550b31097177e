# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every runbook scenario shares: the Diagnosis record, Kubernetes reads, log and metrics parsing."""

from __future__ import annotations

import copy
import datetime
import json
import re

from ..kube import engine

CAPACITY_TYPE = "karpenter.sh/capacity-type"
SAVED_ANNOTATION = "karpenter-eks.platform/spot-storm-previous-requirements"
CRDS = ("nodepools.karpenter.sh", "nodeclaims.karpenter.sh")
INTERRUPTION_REASONS = (
    "SpotInterrupted",
    "SpotRebalanceRecommendation",
    "InstanceTerminating",
    "InstanceStopping",
    "Interrupted",
    "TerminatingOnInterruption",
)
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
# labels Karpenter derives from instance types/offerings (docs/karpenter-v1.md section 1.4): a NodePool can serve a
# pod that selects one of them without naming it in its requirements
WELL_KNOWN_LABELS = (
    "karpenter.sh/capacity-type",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.k8s.aws/zone-id",
    "node.kubernetes.io/instance-type",
    "node.kubernetes.io/windows-build",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "kubernetes.io/hostname",
)
WIDEN_KEYS = {
    "capacity_types": CAPACITY_TYPE,
    "zones": "topology.kubernetes.io/zone",
    "instance_families": "karpenter.k8s.aws/instance-family",
    "instance_categories": "karpenter.k8s.aws/instance-category",
}
# message patterns Karpenter (v1.x) writes in pod events / NodeClaim conditions
CAUSES = (
    ("nodepool_limit", re.compile(r"exceed(s|ed)? limits? for nodepool|limits? exceeded|limit.*exceed", re.I)),
    ("insufficient_capacity", re.compile(r"InsufficientInstanceCapacity|insufficient.capacity|no capacity", re.I)),
    ("iam_denied", re.compile(r"UnauthorizedOperation|AccessDenied|not authorized to perform", re.I)),
    ("nodeclass_not_ready", re.compile(r"node ?class.*not (found|ready)|NodeClassNotReady", re.I)),
    (
        "no_instance_type",
        re.compile(r"no instance type|incompatible with nodepool|did not tolerate|requirements", re.I),
    ),
)


def _now():
    return datetime.datetime.now(datetime.UTC)


def parse_time(value):
    if not value:
        return None
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def age_seconds(value, now):
    t = parse_time(value)
    return None if t is None else (now - t).total_seconds()


def get_condition(obj, ctype):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def from_epoch(value):
    return datetime.datetime.fromtimestamp(float(value), datetime.UTC)


def allows_spot(nodepool):
    return capacity_type_allowed(nodepool, "spot")


def capacity_type_allowed(nodepool, value):
    """Whether the pool's requirements allow capacity type ``value`` (a pool without such a requirement: on-demand)."""
    reqs = ((nodepool.get("spec") or {}).get("template") or {}).get("spec", {}).get("requirements") or []
    ct = [r for r in reqs if r.get("key") == CAPACITY_TYPE]
    if not ct:
        return value == "on-demand"
    return all(
        (r.get("operator") == "In" and value in (r.get("values") or []))
        or (r.get("operator") == "NotIn" and value not in (r.get("values") or []))
        or r.get("operator") == "Exists"
        for r in ct
    )


def pool_can_serve(nodepool, node_selector):
    """Whether a pod with this ``nodeSelector`` could land on a node of the NodePool (labels and requirements)."""
    tmpl = (nodepool.get("spec") or {}).get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    reqs = (tmpl.get("spec") or {}).get("requirements") or []
    name = (nodepool.get("metadata") or {}).get("name")
    for key, value in (node_selector or {}).items():
        if key == "karpenter.sh/nodepool":
            if value != name:
                return False
            continue
        if key in labels:
            if labels[key] != value:
                return False
            continue
        mine = [r for r in reqs if r.get("key") == key]
        if not mine and key not in WELL_KNOWN_LABELS and not key.startswith("karpenter.k8s.aws/"):
            return False  # a custom label no node of this pool carries
        for r in mine:
            op, values = r.get("operator"), r.get("values") or []
            if (op == "In" and value not in values) or (op == "NotIn" and value in values) or op == "DoesNotExist":
                return False
    return True


def tail_text(path, max_bytes=2 * 1024 * 1024):
    """The last ``max_bytes`` of a (log) file as text, starting at a line boundary."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        data = f.read()
    text = data.decode("utf-8", "replace")
    return text if size <= max_bytes else text.partition("\n")[2]


def _log_time(value):
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def _log_objects(rec):
    """The Kubernetes objects a Karpenter log line names (its structured fields), as Kind/name."""
    out = []
    for kind in ("NodePool", "NodeClaim", "Node", "Pod", "EC2NodeClass"):
        ref = rec.get(kind)
        if isinstance(ref, dict) and ref.get("name"):
            out.append(
                "%s/%s" % (kind, "%s/%s" % (ref["namespace"], ref["name"]) if ref.get("namespace") else ref["name"])
            )
    if isinstance(rec.get("nodepool"), str) and rec["nodepool"]:
        out.append("NodePool/%s" % rec["nodepool"])
    return out


def log_errors(text, window_seconds, now, limit=20):
    """ERROR lines of Karpenter's JSON log (``"level":"ERROR"``) in the last ``window_seconds``, grouped by
    message and error text (most frequent first), each with its count, first/last time, classified cause and the
    objects the lines name (the last 20)."""
    groups = {}
    cutoff = now - datetime.timedelta(seconds=window_seconds)
    for line in (text or "").splitlines():
        if '"level":"ERROR"' not in line.replace(" ", ""):
            continue
        try:
            rec = json.loads(line[line.index("{") :])
        except ValueError:
            continue
        if not isinstance(rec, dict) or str(rec.get("level", "")).upper() != "ERROR":
            continue
        t = _log_time(rec.get("time"))
        if t is not None and t < cutoff:
            continue
        error = str(rec.get("error") or "")
        # object names vary from line to line; the group key keeps the message and the first words of the error
        key = (rec.get("message"), rec.get("controller"), re.sub(r'"[^"]*"|\([^)]*\)', "...", error)[:200])
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "message": rec.get("message"),
                "controller": rec.get("controller"),
                "error": error[:500],
                "count": 0,
                "first": rec.get("time"),
                "last": rec.get("time"),
                "cause": classify("%s %s" % (rec.get("message") or "", error)),
                "objects": [],
            }
        g["count"] += 1
        for obj in _log_objects(rec):  # the 20 named most recently
            if obj in g["objects"]:
                g["objects"].remove(obj)
            g["objects"] = (g["objects"] + [obj])[-20:]
        g["last"] = rec.get("time") or g["last"]
    return sorted(groups.values(), key=lambda g: -g["count"])[:limit]


def classify(message):
    for cause, rx in CAUSES:
        if message and rx.search(message):
            return cause
    return None


def parse_metrics(text):
    """Prometheus text format → {name: [(labels, value)]} (enough for counters and gauges)."""
    out = {}
    rx = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
    lrx = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        m = rx.match(line)
        if not m:
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.setdefault(m.group(1), []).append((dict(lrx.findall(m.group(3) or "")), value))
    return out


def metric_sum(metrics, name, by=None, **match):
    """Sum of a metric's samples whose labels match; grouped by the ``by`` label when given."""
    groups = {}
    for labels, value in metrics.get(name, []):
        if all(labels.get(k) == v for k, v in match.items()):
            key = labels.get(by, "") if by else ""
            groups[key] = groups.get(key, 0.0) + value
    return groups if by else groups.get("", 0.0)


class Diagnosis:
    """What one runbook run gathered: ``checked``, ``findings``, ``recommendations``, ``observed`` and the
    NodePool ``remediation``; the scenarios (controller.py, provisioning.py, spot.py) add their gatherers."""

    def __init__(self, api, scenario, http_get=None, now=None, pod_log=None):
        self.api = api
        self.scenario = scenario
        self.http_get = http_get
        # pod_log(namespace, pod, since_seconds) -> log text (the pod log API; the module provides it)
        self.pod_log = pod_log
        self.now = now or _now()
        self.checked = []
        self.notes = []
        self.findings = []
        self.recommendations = []
        self.observed = {}
        self.remediation = {"nodepools": [], "previous": {}}
        self._metrics = None

    # ---------------------------------------------------------------- helpers
    def find(self, fid, severity, summary, **detail):
        self.findings.append(dict(id=fid, severity=severity, summary=summary, **detail))

    def recommend(self, rid, action, why, **detail):
        if not any(r["id"] == rid for r in self.recommendations):
            self.recommendations.append(dict(id=rid, action=action, why=why, **detail))

    def get(self, path):
        try:
            return self.api.get(path)
        except Exception as exc:  # KubeError; 404 included
            if getattr(exc, "status", None) == 404:
                return None
            raise

    def list(self, path, **query):
        return self.api.call("list", "GET", path, query=query or None).get("items", [])

    def metrics(self, url):
        if self._metrics is None:
            self._metrics = {}
            if url and self.http_get:
                ok, body = self.http_get(url)
                self.checked.append("karpenter metrics %s" % url)
                self.observed["metrics_reachable"] = ok
                if ok:
                    self._metrics = parse_metrics(body)
        return self._metrics

    def _recent_events(self, events, window, reasons=None):
        out = []
        for e in events:
            if reasons and e.get("reason") not in reasons:
                continue
            age = age_seconds(e.get("lastTimestamp") or (e.get("eventTime") or "")[:19] + "Z", self.now)
            if age is None:
                age = age_seconds((e.get("metadata") or {}).get("creationTimestamp"), self.now)
            if age is not None and age > window:
                continue
            io = e.get("involvedObject") or {}
            out.append(
                {
                    "object": "%s/%s" % (io.get("kind"), io.get("name")),
                    "namespace": io.get("namespace"),
                    "reason": e.get("reason"),
                    "message": (e.get("message") or "")[:500],
                    "count": e.get("count", 1),
                    "source": (e.get("source") or {}).get("component") or e.get("reportingComponent"),
                }
            )
        return out if reasons else out[-50:]

    def _update_pool(
        self,
        np,
        why,
        limits=None,
        widen=None,
        capacity_types=None,
        save_requirements=False,
        requirements=None,
        drop_saved=False,
    ):
        name = np["metadata"]["name"]
        existing = [p for p in self.remediation["nodepools"] if p["metadata"]["name"] == name]
        if existing:
            obj = existing[0]
        else:
            obj = engine.normalize(np)
            obj["metadata"] = {k: v for k, v in obj["metadata"].items() if k in ("name", "labels", "annotations") and v}
            self.remediation["nodepools"].append(obj)
            self.remediation["previous"][name] = engine.normalize(np)
        spec = obj["spec"]
        if limits:
            spec.setdefault("limits", {}).update(limits)
        reqs = spec["template"]["spec"].setdefault("requirements", [])
        if save_requirements:
            obj["metadata"].setdefault("annotations", {})[SAVED_ANNOTATION] = json.dumps(
                np["spec"]["template"]["spec"].get("requirements") or [], sort_keys=True
            )
        if requirements is not None:
            spec["template"]["spec"]["requirements"] = copy.deepcopy(requirements)
        if drop_saved:
            ann = obj["metadata"].get("annotations") or {}
            ann.pop(SAVED_ANNOTATION, None)
            if not ann:
                obj["metadata"].pop("annotations", None)
        if capacity_types:
            kept = [r for r in reqs if r.get("key") != CAPACITY_TYPE]
            kept.append({"key": CAPACITY_TYPE, "operator": "In", "values": list(capacity_types)})
            spec["template"]["spec"]["requirements"] = kept
        for opt, key in WIDEN_KEYS.items():
            values = (widen or {}).get(opt)
            if not values:
                continue
            for r in reqs:
                if r.get("key") == key and r.get("operator") == "In":
                    r["values"] = sorted(set(r.get("values") or []) | set(values))
        obj.setdefault("_why", [])
        if why not in obj["_why"]:
            obj["_why"].append(why)

    # ---------------------------------------------------------------- result
    def result(self):
        for p in self.remediation["nodepools"]:
            p.pop("_why", None)
        crit = [f for f in self.findings if f["severity"] == "critical"]
        return {
            "scenario": self.scenario,
            "time": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "healthy": not crit,
            "causes": sorted(set(f["id"] for f in crit)),
            "checked": self.checked,
            "notes": self.notes,
            "findings": self.findings,
            "recommendations": self.recommendations,
            "observed": self.observed,
            "remediation": copy.deepcopy(self.remediation),
        }
