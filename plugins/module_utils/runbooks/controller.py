# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller scenario: Deployment, pods, health and metrics endpoints, logs, CRDs and webhooks."""

from __future__ import annotations

from .common import (
    CRDS,
    age_seconds,
    get_condition,
    log_errors,
    metric_sum,
    tail_text,
)


class ControllerScenario:
    """Diagnosis gatherers of this scenario (mixed into runbooks.Diagnosis)."""

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
            avail = get_condition(dep, "Available") or {}
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
            if obj is None or (get_condition(obj, "Established") or {}).get("status") != "True":
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
            age = age_seconds((spec.get("renewTime") or "")[:19] + "Z", self.now)
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
