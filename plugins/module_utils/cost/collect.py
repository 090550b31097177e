# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cost report's run: read each requested source, price the nodes, build the report.

``collect(params, now)`` never raises because a source failed: each failure is a note (and ``data_sources``
says which source answered, failed, was empty or was skipped). Used by the karpenter_cost_report module.
"""

from __future__ import annotations

import datetime

from ..karpenter.issues import shorten
from ..kube import client as kclient
from . import aws as aws_sources
from . import fmt, model

SOURCES = ["cluster", "cost_explorer", "pricing", "spot_price_history", "cloudwatch"]
AWS_SOURCES = SOURCES[1:]
PODS_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"


def _date(p, name):
    try:
        return datetime.date.fromisoformat(p[name])
    except (TypeError, ValueError):
        raise ValueError("%s must be a date YYYY-MM-DD, got %s" % (name, shorten(repr(p[name]))))


def period(p, today):
    """(start, end) dates; end exclusive as in Cost Explorer. ValueError when invalid."""
    days = p.get("period_days")
    if days is not None and not (isinstance(days, int) and 1 <= days <= 3660):
        raise ValueError("period_days must be a whole number of days from 1 to 3660, got %r" % (days,))
    end = _date(p, "end") if p.get("end") else today
    start = _date(p, "start") if p.get("start") else end - datetime.timedelta(days=p.get("period_days") or 30)
    if start >= end:
        raise ValueError("start (%s) must be before end (%s)" % (start, end))
    return start, end


def read_cluster(p, notes):
    """(node records, NodePool specs by name, request summary); empty with a note when unreachable."""
    if not kclient.HAS_KUBERNETES:
        notes.append("cluster: the kubernetes Python library is missing; no node data.")
        return [], {}, {}
    from ..kube import info

    api = None
    try:
        api = kclient.connect(p, timeout=p.get("request_timeout") or 30)
        summary = info.summarize(api, ["NodePool", "NodeClaim"])
        nodes = api.list("/api/v1/nodes", label_selector=p.get("node_selector")).get("items") or []
        pods = api.call("list", "GET", "/api/v1/pods", query={"fieldSelector": PODS_FIELD_SELECTOR}).get("items")
    except kclient.KubeError as exc:
        notes.append("cluster: Kubernetes API error (%s); no node data." % fmt.one_line(exc))
        return [], {}, api.request_summary() if api else {}
    except Exception as exc:  # kubeconfig missing or unreadable
        notes.append("cluster: cannot configure the Kubernetes client (%s); no node data." % fmt.one_line(exc))
        return [], {}, api.request_summary() if api else {}
    specs = dict((np["name"], (np.get("object") or {}).get("spec") or {}) for np in summary.get("nodepools", []))
    records = model.node_records(nodes, pods or [], summary.get("nodeclaims", []))
    pending = [c["name"] for c in summary.get("nodeclaims", []) if not c.get("node")]
    if pending and not p.get("node_selector"):
        notes.append("cluster: %d NodeClaim(s) without a node yet (launching): not priced." % len(pending))
    return records, specs, api.request_summary()


def _status(notes, source, before, value):
    """ok / empty / failed for a source from the notes it added and what it returned."""
    added = [n for n in notes[before:] if n.startswith(source + ":")]
    if any(n.startswith(source + ": unavailable") for n in added):
        return "failed"
    return "ok" if value else "empty"


def _get(p, key, default):
    return default if p.get(key) is None else p[key]


def _overridden(prices, instance_type):
    v = prices.get(instance_type)
    return v is not None and not isinstance(v, dict)


def collect(p, now, aws=None, cluster_reader=read_cluster):
    """(report, Kubernetes request summary). ``aws``: an ``aws.Aws`` to use (tests), else one from ``p``."""
    start, end = period(p, now.date())
    sources = p.get("sources") or SOURCES
    notes, status = [], dict((s, "not requested") for s in SOURCES)
    records, specs, requests = [], {}, {}
    if "cluster" in sources:
        records, specs, requests = cluster_reader(p, notes)
        failed = any(n.startswith("cluster:") and n.endswith("no node data.") for n in notes)
        status["cluster"] = "failed" if failed else ("ok" if records else "empty")

    wanted = [s for s in sources if s in AWS_SOURCES]
    if wanted and aws is None:
        if not aws_sources.HAS_BOTO3:
            notes.append("aws: boto3 is missing; %s skipped." % ", ".join(wanted))
        else:
            try:
                aws = aws_sources.Aws(p)
            except Exception as exc:  # profile not found, ...
                notes.append("aws: cannot create a session (%s); %s skipped." % (fmt.one_line(exc), ", ".join(wanted)))
    region = aws.region if aws is not None else aws_sources.region_from_params(p)
    cluster_name = p.get("cluster_name")
    ce = cw = None
    history, regional = {}, {}
    if aws is None:
        status.update((s, "skipped") for s in wanted)
    else:
        needs_cluster = [s for s in ("cost_explorer", "cloudwatch") if s in wanted]
        if needs_cluster and not cluster_name:
            notes.append("%s: skipped, cluster_name is not set." % ", ".join(needs_cluster))
            status.update((s, "skipped") for s in needs_cluster)
        if "cost_explorer" in wanted and cluster_name:
            before = len(notes)
            ce = aws_sources.cost_explorer(
                aws,
                cluster_name,
                start,
                end,
                notes,
                p.get("cost_tag_key") or "eks:eks-cluster-name",
                p.get("nodepool_tag_key") or "karpenter.sh/nodepool",
            )
            # days without any cost group (tag not activated for cost allocation) are no data
            has_cost = ce and (ce["by_type"]["by_instance_type"] or ce["by_nodepool"]["by_nodepool"])
            status["cost_explorer"] = _status(notes, "cost_explorer", before, has_cost)
        prices = p.get("prices") or {}
        if "pricing" in wanted:
            by_region = {}  # the nodes' regions (zone label), else the report's
            for r in records:
                if r["instance_type"] and not _overridden(prices, r["instance_type"]):
                    by_region.setdefault(model.zone_region(r["zone"]) or region, set()).add(r["instance_type"])
            before = len(notes)
            for price_region in sorted(by_region):
                regional[price_region] = aws_sources.on_demand_prices(aws, by_region[price_region], price_region, notes)
            got = any(regional.values())
            status["pricing"] = _status(notes, "pricing", before, got) if by_region else "skipped"
        if "spot_price_history" in wanted:
            types = set(r["instance_type"] for r in records if r["instance_type"] and r["managed_by"] == "karpenter")
            before = len(notes)
            history = aws_sources.spot_history(aws, types, now, notes)
            status["spot_price_history"] = _status(notes, "spot_price_history", before, history) if types else "skipped"
        if "cloudwatch" in wanted and cluster_name:
            before = len(notes)
            cw = aws_sources.cloudwatch(aws, cluster_name, start, end, notes)
            status["cloudwatch"] = _status(notes, "cloudwatch", before, cw)

    book = model.PriceBook(
        spot_history=history,
        regional=regional,
        overrides=p.get("prices") or {},
        spot_fraction=p.get("spot_fraction"),
        region=region,
    )
    model.price_nodes(records, book)
    report = model.build_report(
        records,
        book,
        specs,
        cost_explorer=ce,
        cloudwatch=cw,
        notes=notes,
        period={"start": start.isoformat(), "end": end.isoformat(), "days": (end - start).days},
        cluster_name=cluster_name,
        generated_at=now.isoformat(),
        hours_per_month=_get(p, "hours_per_month", model.HOURS_PER_MONTH),
        low_utilization=_get(p, "low_utilization", 0.5),
        target_utilization=_get(p, "target_utilization", 0.8),
    )
    report["data_sources"] = status
    report["aws_calls"] = aws.retry.summary() if aws is not None else {}
    return report, requests
