# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The spot scenarios: interruption storms (switch to on-demand) and the reintroduction of spot, step by step."""

from __future__ import annotations

import datetime
import json

from ..kube import engine, resource
from .common import (
    CAPACITY_TYPE,
    INTERRUPTION_REASONS,
    SAVED_ANNOTATION,
    allows_spot,
    capacity_type_allowed,
    from_epoch,
    get_condition,
    metric_sum,
    parse_time,
)


class SpotScenarios:
    """Diagnosis gatherers of this scenario (mixed into runbooks.Diagnosis)."""

    # ---------------------------------------------------------------- spot storm
    def _interruptions(self, window_seconds, since=None, nodepools=None):
        """Interruption events in the window (and after ``since``, epoch seconds), NodePools, NodeClaims."""
        events = self.list("/api/v1/events")
        self.checked.append("events (interruption reasons %s)" % ", ".join(INTERRUPTION_REASONS))
        if since:
            window_seconds = min(window_seconds, max(0.0, (self.now - from_epoch(since)).total_seconds()) + 1)
        recent = self._recent_events(events, window_seconds, reasons=INTERRUPTION_REASONS)
        pools, _rv = engine.list_live(self.api, resource.NODEPOOL)
        claims, _rv = engine.list_live(self.api, resource.NODECLAIM)
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
            and (parse_time(c["metadata"]["deletionTimestamp"]) or self.now) >= cutoff
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
            if (get_condition(c, "Ready") or {}).get("status") != "True":
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
