# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The provisioning scenario: pending pods, NodePool limits and requirements, IAM, and the remediations."""

from __future__ import annotations

from ..karpenter.quantity import format_quantity, parse_quantity
from ..kube import engine, resource
from .common import (
    NODEGROUP_LABEL,
    age_seconds,
    classify,
    get_condition,
    metric_sum,
    pool_can_serve,
)


class ProvisioningScenario:
    """Diagnosis gatherers of this scenario (mixed into runbooks.Diagnosis)."""

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
            cond = get_condition(p, "PodScheduled") or {}
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
                    "pending_seconds": age_seconds(p["metadata"].get("creationTimestamp"), self.now),
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

        pools, _rv = engine.list_live(self.api, resource.NODEPOOL)
        claims, _rv = engine.list_live(self.api, resource.NODECLAIM)
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
                c = get_condition(np, "Ready") or {}
                self.find(
                    "nodepool_not_ready",
                    severity,
                    "NodePool %s not Ready: %s %s" % (name, c.get("reason"), c.get("message")),
                    nodepool=name,
                )
            ref = ((spec.get("template") or {}).get("spec") or {}).get("nodeClassRef") or {}
            kind = resource.NODECLASS_KINDS.get((ref.get("group"), ref.get("kind")))
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
            age = age_seconds(c["metadata"].get("creationTimestamp"), self.now) or 0
            for ctype in ("Launched", "Registered", "Initialized"):
                cond = get_condition(c, ctype) or {}
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
            g["ready"] += int((get_condition(n, "Ready") or {}).get("status") == "True")
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
