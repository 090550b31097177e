# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-only incident diagnosis for the runbooks (controller, provisioning, spot storm).

Every gatherer appends what it looked at to ``checked`` and what it found to ``findings`` (with an
``id`` the playbooks and tests branch on), and the scenario adds ``recommendations``. Remediations
that change NodePools are computed here as complete NodePool definitions (live spec + the change),
with the previous spec alongside, so the playbooks feed them to ``karpenter_provisioner`` (which
gives exact ``--check --diff`` and sends no write in check mode).
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
import time

from .karpenter.quantity import format_quantity, parse_quantity
from .kube import engine

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


def _ts(value):
    if not value:
        return None
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def _age(value, now):
    t = _ts(value)
    return None if t is None else (now - t).total_seconds()


def _cond(obj, ctype):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _from_epoch(value):
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

    # ---------------------------------------------------------------- controller
    def controller_logs(self, namespace, pods=None, log_file=None, window_seconds=900):
        """ERROR lines of the controller's log in the window: from ``log_file`` (a controller running out of
        cluster, e.g. the sandbox's) or else from the pods' logs (pod log API). Unreadable logs are a note.
        A window of 0 reads no log."""
        texts = []
        if window_seconds <= 0:
            return []
        if log_file:
            self.checked.append("controller log file %s (last %ds)" % (log_file, window_seconds))
            try:
                texts.append(tail_text(log_file))
            except OSError as exc:
                self.notes.append("controller log file not readable: %s" % exc)
        elif self.pod_log:
            if pods is None:
                pods = [
                    p["metadata"]["name"]
                    for p in self.list(
                        "/api/v1/namespaces/%s/pods" % namespace, labelSelector="app.kubernetes.io/name=karpenter"
                    )
                ]
            self.checked.append("controller pod logs in %s (last %ds)" % (namespace, window_seconds))
            for name in pods:
                try:
                    texts.append(self.pod_log(namespace, name, int(window_seconds)))
                except Exception as exc:  # a pod without a started container has no log
                    self.notes.append("log of pod %s/%s not readable: %s" % (namespace, name, exc))
        else:
            return []
        errors = log_errors("\n".join(texts), window_seconds, self.now)
        self.observed["log_errors"] = errors
        self.observed["log_source"] = log_file or "pods"
        return errors

    def controller(
        self,
        namespace,
        deployment,
        health_url=None,
        metrics_url=None,
        lease="karpenter-leader-election",
        log_file=None,
        log_seconds=900,
    ):
        api_ok = True
        try:
            version = self.api.get("/version")
            self.observed["apiserver"] = version.get("gitVersion")
        except Exception as exc:
            api_ok = False
            self.find("apiserver_unreachable", "critical", "Kubernetes API not reachable: %s" % exc)
        self.checked.append("kube-apiserver /version")
        if not api_ok:
            return
        dep = self.get("/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, deployment))
        self.checked.append("Deployment %s/%s" % (namespace, deployment))
        ctrl = {"deployment": None, "pods": []}
        if dep is None:
            self.find(
                "deployment_missing",
                "critical" if not health_url else "warning",
                "Deployment %s/%s not found" % (namespace, deployment),
            )
        else:
            st = dep.get("status") or {}
            desired = (dep.get("spec") or {}).get("replicas", 1)
            avail = _cond(dep, "Available") or {}
            ctrl["deployment"] = {
                "replicas": desired,
                "ready": st.get("readyReplicas", 0),
                "available": st.get("availableReplicas", 0),
                "updated": st.get("updatedReplicas", 0),
                "conditions": st.get("conditions") or [],
            }
            if desired == 0:
                self.find("deployment_scaled_to_zero", "critical", "Deployment %s has 0 replicas" % deployment)
            elif avail.get("status") != "True" or st.get("readyReplicas", 0) < desired:
                self.find(
                    "deployment_unavailable",
                    "critical",
                    "Deployment %s: %s/%s replicas ready (%s)"
                    % (deployment, st.get("readyReplicas", 0), desired, avail.get("message", "")),
                )
        selector = "app.kubernetes.io/name=karpenter"
        pods = self.list("/api/v1/namespaces/%s/pods" % namespace, labelSelector=selector)
        self.checked.append("Pods %s in %s" % (selector, namespace))
        for p in pods:
            statuses = (p.get("status") or {}).get("containerStatuses") or []
            restarts = sum(s.get("restartCount", 0) for s in statuses)
            waiting = [((s.get("state") or {}).get("waiting") or {}).get("reason") for s in statuses]
            last = [((s.get("lastState") or {}).get("terminated") or {}).get("reason") for s in statuses]
            info = {
                "name": p["metadata"]["name"],
                "phase": (p.get("status") or {}).get("phase"),
                "node": (p.get("spec") or {}).get("nodeName"),
                "restarts": restarts,
                "waiting": [w for w in waiting if w],
                "last_terminated": [t for t in last if t],
            }
            ctrl["pods"].append(info)
            if info["waiting"] or restarts >= 3 or "OOMKilled" in info["last_terminated"]:
                self.find(
                    "pod_crashing",
                    "critical",
                    "Pod %s: %d restarts, waiting %s, last terminated %s"
                    % (info["name"], restarts, info["waiting"], info["last_terminated"]),
                )
        events = self.list("/api/v1/namespaces/%s/events" % namespace, fieldSelector="type=Warning")
        self.checked.append("Warning events in %s" % namespace)
        ctrl["events"] = self._recent_events(events, 3600)
        for crd in CRDS:
            obj = self.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s" % crd)
            self.checked.append("CRD %s" % crd)
            if obj is None or (_cond(obj, "Established") or {}).get("status") != "True":
                self.find("crd_not_established", "critical", "CRD %s missing or not Established" % crd)
        for kind in ("validating", "mutating"):
            hooks = self.list("/apis/admissionregistration.k8s.io/v1/%swebhookconfigurations" % kind)
            self.checked.append("%s webhook configurations" % kind)
            stale = [h["metadata"]["name"] for h in hooks if "karpenter" in h["metadata"]["name"]]
            if stale:
                self.find(
                    "stale_webhook",
                    "critical",
                    "%s webhook configurations %s: Karpenter v1.1+ serves no webhooks; API calls for its "
                    "objects fail while these point at a missing service" % (kind, stale),
                )
        lease_obj = self.get("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (namespace, lease))
        self.checked.append("Lease %s/%s" % (namespace, lease))
        if lease_obj:
            spec = lease_obj.get("spec") or {}
            age = _age((spec.get("renewTime") or "")[:19] + "Z", self.now)
            ctrl["lease"] = {"holder": spec.get("holderIdentity"), "renewed_seconds_ago": age}
            if age is not None and age > 2 * (spec.get("leaseDurationSeconds") or 15):
                self.find("leader_lease_stale", "critical", "leader lease %s not renewed for %ds" % (lease, age))
        else:
            ctrl["lease"] = None
        if health_url and self.http_get:
            ok, body = self.http_get(health_url)
            self.checked.append("controller health %s" % health_url)
            ctrl["health"] = {"url": health_url, "ok": ok, "body": (body or "")[:300]}
            if not ok:
                self.find(
                    "controller_unhealthy", "critical", "Karpenter health endpoint %s failed: %s" % (health_url, body)
                )
        errors = self.controller_logs(
            namespace, pods=[p["name"] for p in ctrl["pods"]], log_file=log_file, window_seconds=log_seconds
        )
        if errors:
            self.find(
                "controller_log_errors",
                "warning",
                "%d ERROR line(s) in the controller log in the last %ds; most frequent: %s (%dx)"
                % (sum(e["count"] for e in errors), log_seconds, errors[0]["message"], errors[0]["count"]),
                errors=[dict(message=e["message"], error=e["error"][:200], count=e["count"]) for e in errors[:5]],
            )
        m = self.metrics(metrics_url)
        if metrics_url and not self.observed.get("metrics_reachable"):
            self.find("metrics_unreachable", "warning", "Karpenter metrics %s not reachable" % metrics_url)
        if m:
            ctrl["cluster_state_synced"] = metric_sum(m, "karpenter_cluster_state_synced")
            ctrl["reconcile_errors"] = metric_sum(m, "controller_runtime_reconcile_errors_total", by="controller")
        self.observed["controller"] = ctrl
        if any(f["severity"] == "critical" for f in self.findings):
            self.recommend(
                "rollout_restart",
                "restart the Karpenter controller (rollout restart; the restart command for an out-of-cluster "
                "controller), then redeploy with the karpenter role if it is still unhealthy",
                "controller not healthy: %s" % ", ".join(sorted(set(f["id"] for f in self.findings))),
                remediation_var="runbook_remediate=true",
            )

    def _recent_events(self, events, window, reasons=None):
        out = []
        for e in events:
            if reasons and e.get("reason") not in reasons:
                continue
            age = _age(e.get("lastTimestamp") or (e.get("eventTime") or "")[:19] + "Z", self.now)
            if age is None:
                age = _age((e.get("metadata") or {}).get("creationTimestamp"), self.now)
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

    # ---------------------------------------------------------------- provisioning
    def provisioning(
        self,
        namespaces=None,
        metrics_url=None,
        stuck_seconds=300,
        limit_factor=2,
        widen=None,
        nodepools=None,
        iam_check=None,
        controller_namespace="karpenter",
        log_file=None,
        log_seconds=900,
    ):
        pending = []
        for ns in namespaces or [None]:
            path = "/api/v1/namespaces/%s/pods" % ns if ns else "/api/v1/pods"
            pending += self.list(path, fieldSelector="status.phase=Pending")
        self.checked.append("Pending pods in %s" % (", ".join(namespaces) if namespaces else "all namespaces"))
        events = []
        for ns in namespaces or [None]:
            path = "/api/v1/namespaces/%s/events" % ns if ns else "/api/v1/events"
            events += self.list(path, fieldSelector="involvedObject.kind=Pod,type=Warning")
        self.checked.append("Warning events of pods")
        by_pod = {}
        for e in events:
            io = e.get("involvedObject") or {}
            by_pod.setdefault((io.get("namespace"), io.get("name")), []).append(e)
        unsched = []
        requests = {}
        wanted = set()
        selectors = []
        for p in pending:
            if (p.get("spec") or {}).get("nodeName"):
                continue
            cond = _cond(p, "PodScheduled") or {}
            evs = sorted(
                by_pod.get((p["metadata"]["namespace"], p["metadata"]["name"]), []),
                key=lambda e: e.get("lastTimestamp") or "",
            )
            karp = [
                e
                for e in evs
                if ((e.get("source") or {}).get("component") or e.get("reportingComponent")) == "karpenter"
            ]
            msg = (karp[-1] if karp else (evs[-1] if evs else {})).get("message") or cond.get("message") or ""
            cause = classify(" ".join(e.get("message") or "" for e in karp)) or classify(msg)
            unsched.append(
                {
                    "pod": "%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]),
                    "reason": cond.get("reason"),
                    "message": msg[:600],
                    "karpenter_message": (karp[-1].get("message") or "")[:600] if karp else None,
                    "cause": cause,
                    "pending_seconds": _age(p["metadata"].get("creationTimestamp"), self.now),
                }
            )
            node_selector = (p.get("spec") or {}).get("nodeSelector") or {}
            selectors.append(node_selector)
            if node_selector.get("karpenter.sh/nodepool"):
                wanted.add(node_selector["karpenter.sh/nodepool"])
            for c in (p.get("spec") or {}).get("containers") or []:
                for res, q in ((c.get("resources") or {}).get("requests") or {}).items():
                    try:
                        requests[res] = requests.get(res, 0) + parse_quantity(q)
                    except ValueError:
                        pass
        self.observed["pending_pods"] = unsched
        self.observed["pending_requests"] = dict((k, format_quantity(v)) for k, v in requests.items())
        if unsched:
            causes = sorted(set(u["cause"] or "unknown" for u in unsched))
            self.find(
                "pods_unschedulable",
                "critical",
                "%d pod(s) pending and unscheduled; causes: %s" % (len(unsched), ", ".join(causes)),
                pods=[u["pod"] for u in unsched][:50],
            )

        pools, _rv = engine.list_live(self.api, engine.NODEPOOL)
        claims, _rv = engine.list_live(self.api, engine.NODECLAIM)
        self.checked.append("NodePools, NodeClaims")
        self.observed["nodepools"] = []
        at_limit = []
        if nodepools:
            pools = dict((n, np) for n, np in pools.items() if n in nodepools)
        serving = self.observed["nodepools_serving_pending_pods"] = []
        for name, np in sorted(pools.items()):
            # a broken pool matters when pending pods could use it (their nodeSelector allows it)
            relevant = any(pool_can_serve(np, sel) for sel in selectors)
            if relevant:
                serving.append(name)
            severity = "critical" if relevant else "warning"
            spec = np.get("spec") or {}
            used = (np.get("status") or {}).get("resources") or {}
            limits = spec.get("limits") or {}
            full = []
            for res, lim in limits.items():
                try:
                    if parse_quantity(used.get(res, "0")) + requests.get(res, 0) > parse_quantity(lim) and unsched:
                        full.append(res)
                    elif parse_quantity(used.get(res, "0")) >= parse_quantity(lim):
                        full.append(res)
                except ValueError:
                    continue
            ready = engine.is_ready(np)
            self.observed["nodepools"].append(
                {"name": name, "ready": ready, "limits": limits, "usage": used, "at_limit": full}
            )
            if not ready:
                c = _cond(np, "Ready") or {}
                self.find(
                    "nodepool_not_ready",
                    severity,
                    "NodePool %s not Ready: %s %s" % (name, c.get("reason"), c.get("message")),
                    nodepool=name,
                )
            ref = ((spec.get("template") or {}).get("spec") or {}).get("nodeClassRef") or {}
            kind = engine.NODECLASS_KINDS.get((ref.get("group"), ref.get("kind")))
            if kind is not None:
                nc = self.get(kind.path(ref.get("name")))
                if nc is None or not engine.is_ready(nc):
                    self.find(
                        "nodeclass_not_ready",
                        severity,
                        "%s %s of NodePool %s is %s"
                        % (ref.get("kind"), ref.get("name"), name, "missing" if nc is None else "not Ready"),
                        nodepool=name,
                    )
            limit_hit = [
                u for u in unsched if u["cause"] == "nodepool_limit" and name in (u["karpenter_message"] or "")
            ]
            if full and (limit_hit or any(u["cause"] == "nodepool_limit" for u in unsched)):
                at_limit.append(name)
                self.find(
                    "nodepool_limit_reached",
                    "critical",
                    "NodePool %s at its limits for %s (usage %s, limits %s, pending requests %s)"
                    % (name, ", ".join(full), used, limits, self.observed["pending_requests"]),
                    nodepool=name,
                )
                new_limits = {}
                for res in full:
                    # pending requests twice: nodes come in instance sizes and carry overhead
                    need = parse_quantity(used.get(res, "0")) + 2 * requests.get(res, 0)
                    new = max(parse_quantity(limits[res]) * limit_factor, need)
                    if res == "cpu":
                        new = -(-new.numerator // new.denominator)
                    new_limits[res] = format_quantity(new)
                self._update_pool(np, "raise_limit", limits=new_limits)
        if at_limit:
            self.recommend(
                "raise_limit",
                "raise spec.limits of NodePool(s) %s" % ", ".join(at_limit),
                "pods are unschedulable because the pool's limits are reached",
                remediation_var="runbook_remediate=true (runbook_limit_factor=%s)" % limit_factor,
            )
        stuck = []
        for name, c in sorted(claims.items()):
            pool = (c["metadata"].get("labels") or {}).get("karpenter.sh/nodepool")
            if nodepools and pool not in nodepools:
                continue
            age = _age(c["metadata"].get("creationTimestamp"), self.now) or 0
            for ctype in ("Launched", "Registered", "Initialized"):
                cond = _cond(c, ctype) or {}
                if cond.get("status") != "True":
                    if age > stuck_seconds or cond.get("status") == "False":
                        stuck.append(
                            {
                                "nodeclaim": name,
                                "nodepool": pool,
                                "stuck_in": ctype,
                                "age_seconds": int(age),
                                "reason": cond.get("reason"),
                                "message": (cond.get("message") or "")[:400],
                                "cause": classify(cond.get("message") or cond.get("reason") or ""),
                            }
                        )
                    break
        self.observed["stuck_nodeclaims"] = stuck
        for s in stuck:
            # stuck capacity is critical unless pods are pending and it belongs to no pool that could serve them
            blocking = not unsched or s["nodepool"] in serving
            self.find(
                "nodeclaim_stuck",
                "critical" if s["age_seconds"] > stuck_seconds and blocking else "warning",
                "NodeClaim %s not %s after %ds: %s %s"
                % (s["nodeclaim"], s["stuck_in"], s["age_seconds"], s["reason"], s["message"]),
                cause=s["cause"],
            )
        m = self.metrics(metrics_url)
        if m:
            errors = metric_sum(m, "karpenter_cloudprovider_errors_total", by="error")
            errors.pop("NodeClaimNotFoundError", None)
            self.observed["cloudprovider_errors"] = errors
            if errors.get("InsufficientCapacityError"):
                self.find(
                    "insufficient_capacity",
                    "warning",
                    "%d InsufficientCapacityError(s) from the cloud provider" % errors["InsufficientCapacityError"],
                )
            self.observed["interruption_queue"] = {
                "received": metric_sum(m, "karpenter_interruption_received_messages_total", by="message_type"),
                "deleted": metric_sum(m, "karpenter_interruption_deleted_messages_total"),
            }
        causes = set(u["cause"] for u in unsched) | set(s["cause"] for s in stuck)
        # the controller's log: only the causes that name an AWS problem (other errors are the controller scenario's)
        log_errs = self.controller_logs(controller_namespace, log_file=log_file, window_seconds=log_seconds)
        log_causes = set(e["cause"] for e in log_errs) & set(["iam_denied", "insufficient_capacity"])
        causes |= log_causes
        self.observed["log_causes"] = sorted(log_causes)
        if "iam_denied" in causes:
            self.find(
                "iam_denied",
                "critical",
                "AWS authorization errors in %s"
                % " and ".join(
                    w
                    for w, hit in (
                        ("events/NodeClaim conditions", "iam_denied" in causes - log_causes),
                        ("the controller log", "iam_denied" in log_causes),
                    )
                    if hit
                ),
                log_errors=[e["error"][:300] for e in log_errs if e["cause"] == "iam_denied"][:5],
            )
            self.recommend(
                "check_iam",
                "compare the controller role with the karpenter role's policies (roles/karpenter templates); "
                "simulate with the AWS policy simulator (runbook_iam_check=true, runbook_controller_role_name)",
                "UnauthorizedOperation/AccessDenied seen",
            )
        if iam_check:
            self.iam(iam_check)
        if "insufficient_capacity" in causes or any(f["id"] == "insufficient_capacity" for f in self.findings):
            self.recommend(
                "widen_requirements",
                "widen NodePool requirements (instance families, zones, capacity types)",
                "insufficient capacity for the allowed offerings",
                remediation_var="runbook_widen={capacity_types: [...], zones: [...], instance_families: [...]}",
            )
        if widen:
            for name, np in sorted(pools.items()):
                if wanted and name not in wanted:
                    continue
                self._update_pool(np, "widen_requirements", widen=widen)
        groups = {}
        for n in self.list("/api/v1/nodes", labelSelector=NODEGROUP_LABEL):
            g = groups.setdefault(n["metadata"]["labels"][NODEGROUP_LABEL], {"nodes": 0, "ready": 0})
            g["nodes"] += 1
            g["ready"] += int((_cond(n, "Ready") or {}).get("status") == "True")
        self.checked.append("Nodes of EKS managed node groups (label %s)" % NODEGROUP_LABEL)
        self.observed["managed_node_groups"] = groups
        if unsched and not at_limit and not widen:
            self.recommend(
                "scale_node_group",
                "last resort: scale the managed node group up (runbook_scale_node_group=true, runbook_node_group=%s, "
                "runbook_node_group_size=<desired nodes>); the previous scaling config is saved in the bundle"
                % ("|".join(sorted(groups)) or "<name>"),
                "pods stay unschedulable and no NodePool change is known to fix it",
                node_groups=groups,
                remediation_var="runbook_scale_node_group=true",
            )

    def iam(self, check):
        """Findings from the IAM policy simulation of the controller role (karpenter_iam_check's result)."""
        role = check.get("role_arn") or check.get("role_name") or "the controller role"
        keys = ("available", "role_arn", "role_name", "role_missing", "allowed", "denied", "note")
        self.observed["iam_check"] = dict((k, check[k]) for k in keys if k in check)
        if check.get("role_missing"):
            self.find(
                "controller_role_missing",
                "warning",
                "IAM role %s not found (set runbook_controller_role_name if the controller uses another role)" % role,
            )
            return
        if not check.get("available"):
            self.notes.append(check.get("note") or "IAM simulator not available")
            self.checked.append("IAM policy simulator: not available")
            return
        self.checked.append(
            "IAM policy simulator: %d Karpenter controller actions for %s"
            % (len(check.get("allowed") or []) + len(check.get("denied") or []), role)
        )
        denied = check.get("denied") or []
        if not denied:
            return
        actions = sorted(set(d["action"] for d in denied))
        self.find(
            "iam_permissions_denied",
            "critical",
            "the IAM policy simulator denies %s to %s: %s"
            % ("this action" if len(actions) == 1 else "%d actions" % len(actions), role, ", ".join(actions)),
            denied=denied,
        )
        self.recommend(
            "grant_iam_permissions",
            "grant %s to %s: re-apply the karpenter role (its controller policies KarpenterController*Policy, see "
            "docs/karpenter-v1.md section 5.3 in the karpenter_eks.platform collection) or add the statements by "
            "hand; check permission boundaries and SCPs that deny them" % (", ".join(actions), role),
            "Karpenter v1 needs these actions to launch, tag, discover and terminate nodes",
            actions=actions,
        )

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

    # ---------------------------------------------------------------- spot storm
    def _interruptions(self, window_seconds, since=None, nodepools=None):
        """Interruption events in the window (and after ``since``, epoch seconds), NodePools, NodeClaims."""
        events = self.list("/api/v1/events")
        self.checked.append("events (interruption reasons %s)" % ", ".join(INTERRUPTION_REASONS))
        if since:
            window_seconds = min(window_seconds, max(0.0, (self.now - _from_epoch(since)).total_seconds()) + 1)
        recent = self._recent_events(events, window_seconds, reasons=INTERRUPTION_REASONS)
        pools, _rv = engine.list_live(self.api, engine.NODEPOOL)
        claims, _rv = engine.list_live(self.api, engine.NODECLAIM)
        self.checked.append("NodePools, NodeClaims")
        if nodepools:
            pools = dict((n, np) for n, np in pools.items() if n in nodepools)
        claim_pool = dict(
            (n, (c["metadata"].get("labels") or {}).get("karpenter.sh/nodepool")) for n, c in claims.items()
        )
        node_claim = dict(((c.get("status") or {}).get("nodeName"), n) for n, c in claims.items())
        node_claim.pop(None, None)
        claim_node = dict((n, node) for node, n in node_claim.items())
        cutoff = self.now - datetime.timedelta(seconds=window_seconds)
        terminating_all = sorted(
            n
            for n, c in claims.items()
            if c["metadata"].get("deletionTimestamp")
            and (_ts(c["metadata"]["deletionTimestamp"]) or self.now) >= cutoff
            and (c["metadata"].get("labels") or {}).get(CAPACITY_TYPE) == "spot"
        )
        # Karpenter reports one interruption on the NodeClaim and, once registered, again on its Node (and a
        # second reason, TerminatingOnInterruption, as it deletes them): count instances, not events. A Node event
        # is tied to its NodeClaim through status.nodeName while the claim exists.
        for e in recent:
            kind, _sep, obj = e["object"].partition("/")
            claim = obj if kind == "NodeClaim" else node_claim.get(obj) if kind == "Node" else None
            e["nodeclaim"] = claim
            e["nodepool"] = claim_pool.get(claim)
        if nodepools:
            # an interruption whose NodeClaim is gone cannot be attributed: it still counts
            recent = [e for e in recent if e["nodepool"] in nodepools or e["nodepool"] is None]
        interrupting = [e for e in recent if e["reason"] != "SpotRebalanceRecommendation"]
        interrupted = sorted(set(e["object"] for e in interrupting))
        terminating = [n for n in terminating_all if not nodepools or claim_pool[n] in nodepools]
        by_claim = set(e["nodeclaim"] for e in interrupting if e["nodeclaim"])
        by_node = set(
            e["object"] if not e["object"].startswith("NodeClaim/") else "Node/%s" % claim_node.get(e["nodeclaim"])
            for e in interrupting
        )
        by_node.discard("Node/None")
        affected = {}
        for claim in by_claim | set(terminating):
            pool = claim_pool.get(claim)
            if pool and (not nodepools or pool in nodepools):
                affected[pool] = affected.get(pool, 0) + 1
        by_pool = {}
        for n, c in claims.items():
            pool = claim_pool[n]
            if pool not in pools:
                continue
            counts = by_pool.setdefault(
                pool, {"spot": 0, "on-demand": 0, "terminating": 0, "not_ready": 0, "not_allowed": 0}
            )
            if c["metadata"].get("deletionTimestamp"):
                counts["terminating"] += 1
                continue
            ct = (c["metadata"].get("labels") or {}).get(CAPACITY_TYPE) or "unknown"
            counts[ct] = counts.get(ct, 0) + 1
            if (_cond(c, "Ready") or {}).get("status") != "True":
                counts["not_ready"] += 1
            if ct != "unknown" and not capacity_type_allowed(pools[pool], ct):
                counts["not_allowed"] += 1  # Karpenter will replace it (requirements drift)
        self.observed["interruption_events"] = recent[-100:]
        self.observed["interrupted_objects"] = interrupted
        self.observed["interrupted_nodeclaims"] = sorted(by_claim)
        self.observed["spot_nodeclaims_terminating"] = terminating
        self.observed["affected_nodepools"] = affected
        self.observed["nodeclaims_by_nodepool"] = by_pool
        self.observed["window_seconds"] = int(window_seconds)
        # the same instances seen from either side; the larger side counts events whose twin cannot be matched
        # (the claim already gone) once, and the terminating spot claims those not yet reported by an event
        count = max(len(by_claim), len(by_node), len(terminating))
        self.observed["interruptions_in_window"] = count
        self.observed["rate_per_hour"] = round(count * 3600.0 / max(window_seconds, 1), 1)
        self.observed["switched_nodepools"] = sorted(
            n for n, np in pools.items() if SAVED_ANNOTATION in (np["metadata"].get("annotations") or {})
        )
        return pools, count

    def spot_storm(
        self,
        window_seconds=900,
        threshold=3,
        metrics_url=None,
        nodepools=None,
        since=None,
        verify=False,
        expect_capacity_type=None,
        namespaces=None,
    ):
        pools, count = self._interruptions(window_seconds, since=since, nodepools=nodepools)
        if verify:
            self._converged(pools, expect_capacity_type, namespaces)
        m = self.metrics(metrics_url)
        if m:
            self.observed["metrics"] = {
                "nodeclaims_disrupted_spot": metric_sum(
                    m, "karpenter_nodeclaims_disrupted_total", by="reason", capacity_type="spot"
                ),
                "nodeclaims_terminated_spot": metric_sum(
                    m, "karpenter_nodeclaims_terminated_total", by="nodepool", capacity_type="spot"
                ),
                "interruption_messages": metric_sum(
                    m, "karpenter_interruption_received_messages_total", by="message_type"
                ),
            }
        spot_pools = sorted(name for name, np in pools.items() if allows_spot(np))
        self.observed["spot_nodepools"] = spot_pools
        affected = self.observed["affected_nodepools"]
        rate = "%d spot interruptions in the last %ds (%.1f/h, threshold %d)" % (
            count,
            self.observed["window_seconds"],
            self.observed["rate_per_hour"],
            threshold,
        )
        if count >= threshold and spot_pools:
            self.find(
                "spot_interruption_storm",
                "critical",
                "%s; affected NodePools: %s; spot-using NodePools: %s"
                % (
                    rate,
                    ", ".join("%s (%d)" % kv for kv in sorted(affected.items())) or "unknown",
                    ", ".join(spot_pools),
                ),
                affected_nodepools=affected,
                spot_nodepools=spot_pools,
            )
            for name in spot_pools:
                self._update_pool(
                    pools[name], "switch_to_on_demand", capacity_types=["on-demand"], save_requirements=True
                )
            self.recommend(
                "switch_to_on_demand",
                "switch NodePools %s to on-demand (previous requirements saved in the bundle and in the "
                "annotation %s); bring spot back with playbooks/runbooks/spot_reintroduction.yml"
                % (", ".join(spot_pools), SAVED_ANNOTATION),
                "interruption rate above threshold",
                remediation_var="runbook_remediate=true",
            )
            self.recommend("pdbs", "make sure workloads have PodDisruptionBudgets", "limits simultaneous evictions")
        elif count >= threshold:
            self.find(
                "spot_interruption_storm_mitigated",
                "warning",
                "%s, but no NodePool allows spot any more (switched: %s)"
                % (rate, ", ".join(self.observed["switched_nodepools"]) or "none"),
                affected_nodepools=affected,
            )
        elif count:
            self.find("spot_interruptions", "info", "%s: below threshold" % rate, affected_nodepools=affected)
        if self.observed["switched_nodepools"] and count < threshold:
            self.recommend(
                "reintroduce_spot",
                "bring spot back to %s step by step with playbooks/runbooks/spot_reintroduction.yml"
                % ", ".join(self.observed["switched_nodepools"]),
                "the interruption rate is below the threshold again",
            )

    def _converged(self, pools, expect_capacity_type, namespaces):
        """Verification: the pools' NodeClaims all Ready (none terminating), of the expected capacity type; no pod
        Pending in ``namespaces`` (all when empty)."""
        for name in sorted(pools):
            counts = self.observed["nodeclaims_by_nodepool"].get(name) or {}
            other = dict(
                (k, v)
                for k, v in counts.items()
                if k not in ("terminating", "not_ready", "not_allowed", expect_capacity_type)
                and v
                and expect_capacity_type
            )
            if other or counts.get("terminating") or counts.get("not_ready") or counts.get("not_allowed"):
                self.find(
                    "nodeclaims_not_converged",
                    "critical",
                    "NodePool %s: NodeClaims %s (waiting for%s all Ready, none terminating)"
                    % (name, counts, " %s only," % expect_capacity_type if expect_capacity_type else ""),
                    nodepool=name,
                )
        pending = []
        for ns in namespaces or [None]:
            path = "/api/v1/namespaces/%s/pods" % ns if ns else "/api/v1/pods"
            pending += [
                "%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"])
                for p in self.list(path, fieldSelector="status.phase=Pending")
            ]
        self.checked.append("Pending pods in %s" % (", ".join(namespaces) if namespaces else "all namespaces"))
        self.observed["pending_pods"] = pending
        if pending:
            self.find("pods_pending", "critical", "%d pod(s) Pending" % len(pending), pods=pending[:50])

    def spot_reintroduction(self, window_seconds=900, threshold=3, nodepools=None, stage="add_spot"):
        """Plan one reintroduction stage for the switched NodePools (those with the saved-requirements annotation).

        ``add_spot``: the saved capacity types are added to the current ones (on-demand stays allowed), the
        annotation stays. ``restore``: the saved requirements exactly, the annotation removed. Nothing is
        planned while the interruption rate is at or above ``threshold`` (the storm is not over).
        """
        pools, count = self._interruptions(window_seconds, nodepools=nodepools)
        switched = self.observed["switched_nodepools"]
        self.observed["stage"] = stage
        if count >= threshold:
            self.find(
                "spot_interruption_storm",
                "critical",
                "%d spot interruptions in the last %ds (threshold %d): the storm is not over, spot stays off"
                % (count, self.observed["window_seconds"], threshold),
                affected_nodepools=self.observed["affected_nodepools"],
            )
            return
        saved = {}
        for name in switched:
            raw = pools[name]["metadata"]["annotations"][SAVED_ANNOTATION]
            try:
                saved[name] = json.loads(raw)
            except ValueError:
                self.find("saved_requirements_invalid", "critical", "NodePool %s: annotation is not JSON" % name)
                continue
            if not isinstance(saved[name], list):
                self.find("saved_requirements_invalid", "critical", "NodePool %s: annotation is not a list" % name)
                del saved[name]
        self.observed["saved_requirements"] = saved
        for name in sorted(saved):
            np = pools[name]
            reqs = np["spec"]["template"]["spec"].get("requirements") or []
            if stage == "restore":
                self._update_pool(np, "restore_saved_requirements", requirements=saved[name], drop_saved=True)
                continue
            before = [r for r in reqs if r.get("key") == CAPACITY_TYPE]
            want = [r for r in saved[name] if r.get("key") == CAPACITY_TYPE]
            if not want or want[0].get("operator") != "In":
                # the saved spec allowed every capacity type (no requirement, Exists or NotIn): drop the restriction
                new = [r for r in reqs if r.get("key") != CAPACITY_TYPE] + want
            else:
                have = before[0].get("values") if before and before[0].get("operator") == "In" else []
                values = list(have) + [v for v in want[0].get("values") or [] if v not in have]
                new = [r for r in reqs if r.get("key") != CAPACITY_TYPE] + [dict(want[0], values=values)]
            if new != reqs:
                self._update_pool(np, "add_spot", requirements=new)
        if not saved:
            self.find("nothing_to_reintroduce", "info", "no NodePool carries the annotation %s" % SAVED_ANNOTATION)

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


def markdown(result):
    lines = [
        "# Karpenter runbook: %s" % result["scenario"],
        "",
        "- time: %s" % result["time"],
        "- status: **%s**" % ("healthy" if result["healthy"] else "INCIDENT: " + ", ".join(result["causes"])),
        "",
        "## What was checked",
        "",
    ]
    lines += ["- %s" % c for c in result["checked"]]
    if result.get("notes"):
        lines += ["", "## Notes", ""] + ["- %s" % n for n in result["notes"]]
    lines += ["", "## Findings", ""]
    lines += ["- **%s** `%s`: %s" % (f["severity"], f["id"], f["summary"]) for f in result["findings"]] or ["- none"]
    lines += ["", "## Recommendations", ""]
    lines += [
        "- `%s`: %s (why: %s)%s"
        % (r["id"], r["action"], r["why"], "; run with `%s`" % r["remediation_var"] if r.get("remediation_var") else "")
        for r in result["recommendations"]
    ] or ["- none"]
    changes = result["remediation"]["nodepools"]
    if changes:
        lines += ["", "## Planned NodePool changes (previous specs in the JSON bundle)", ""]
        lines += ["- NodePool `%s`" % p["metadata"]["name"] for p in changes]
    return "\n".join(lines) + "\n"


def wait_healthy(run_once, timeout, interval=2.0, sleep=time.sleep, clock=time.monotonic):
    """Re-run the diagnosis until it reports healthy (a condition) or the timeout passes."""
    deadline = clock() + timeout
    while True:
        result = run_once()
        if result["healthy"] or clock() >= deadline:
            return result
        sleep(interval)


def watch(run_once, seconds, interval=5.0, sleep=time.sleep, clock=time.monotonic):
    """Re-run the diagnosis for ``seconds`` (an observation period); stops at the first unhealthy result."""
    deadline = clock() + seconds
    runs = 0
    while True:
        result = run_once()
        runs += 1
        if not result["healthy"] or clock() >= deadline:
            result["observed"]["watch"] = {"seconds": seconds, "runs": runs, "stopped_early": not result["healthy"]}
            return result
        sleep(min(interval, max(0.0, deadline - clock())))


def run_scenario(api, p, http_get=None, pod_log=None, now=None):
    """One diagnosis of ``p["scenario"]`` with the module's parameters ``p``; returns the result."""
    d = Diagnosis(api, p["scenario"], http_get=http_get, now=now, pod_log=pod_log)
    if p["scenario"] == "controller":
        d.controller(
            p["namespace"],
            p["deployment"],
            health_url=p.get("health_url"),
            metrics_url=p.get("metrics_url"),
            log_file=p.get("log_file"),
            log_seconds=900 if p.get("log_seconds") is None else p["log_seconds"],
        )
    elif p["scenario"] == "provisioning":
        d.provisioning(
            namespaces=p.get("namespaces"),
            metrics_url=p.get("metrics_url"),
            stuck_seconds=p.get("stuck_seconds", 300),
            limit_factor=p.get("limit_factor", 2),
            widen=p.get("widen"),
            nodepools=p.get("nodepools"),
            iam_check=p.get("iam_check"),
            controller_namespace=p["namespace"],
            log_file=p.get("log_file"),
            log_seconds=900 if p.get("log_seconds") is None else p["log_seconds"],
        )
    elif p["scenario"] == "spot_storm":
        d.spot_storm(
            window_seconds=p["window_seconds"],
            threshold=p["threshold"],
            metrics_url=p.get("metrics_url"),
            nodepools=p.get("nodepools"),
            since=p.get("since"),
            verify=p.get("verify", False),
            expect_capacity_type=p.get("expect_capacity_type"),
            namespaces=p.get("namespaces"),
        )
    else:
        d.spot_reintroduction(
            window_seconds=p["window_seconds"],
            threshold=p["threshold"],
            nodepools=p.get("nodepools"),
            stage=p.get("stage", "add_spot"),
        )
    return d.result()


def write_bundle(result, output_dir, bundle_name):
    """``<bundle_name>.json`` (everything but the Markdown) and ``<bundle_name>.md``; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "json": os.path.join(output_dir, bundle_name + ".json"),
        "markdown": os.path.join(output_dir, bundle_name + ".md"),
    }
    with open(paths["json"], "w") as f:
        json.dump(dict((k, v) for k, v in result.items() if k != "markdown"), f, indent=2, sort_keys=True)
    with open(paths["markdown"], "w") as f:
        f.write(result["markdown"])
    return paths
