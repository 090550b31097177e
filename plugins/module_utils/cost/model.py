# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cost model: nodes + pods + prices -> cost per NodePool and capacity type, utilisation, recommendations.

Plain Python (stdlib only, plus the collection's quantity parser); no Ansible, no Kubernetes client, no boto3.
Inputs are the JSON objects the Kubernetes API returns (Node, Pod, NodePool) and the plain responses of
Cost Explorer / EC2 / CloudWatch, so everything here is unit-testable with hand-written dicts.

Definitions (also printed in the report):

* hourly price of a node: first match of (1) the user's ``overrides``, (2) EC2 spot price history for the
  node's type and zone (spot nodes; entries older than ``max_age`` are ignored as stale), (3) the price the
  provider recorded on the node (``eks-node-viewer/instance-price`` label or annotation), (4) the Pricing API's
  on-demand price in the node's region, (5) the shipped static on-demand table, which holds us-east-1 prices
  only: for a node in another region it is a stand-in, said so in a note and in the node's ``price_region``.
  (4) and (5) are multiplied by ``spot_fraction`` for spot nodes (an estimate, flagged as such).
* a node's region comes from its zone label (``eu-west-1a`` -> ``eu-west-1``), else the report's region.
* requested = sum over the node's non-terminated pods of max(sum of containers, largest init container)
  plus pod overhead (the scheduler's rule); utilisation = requested / allocatable.
* monthly = hourly x ``hours_per_month`` (730 = 8760 / 12).
"""

from __future__ import annotations

import json
import math
import re

from ..cost_data import prices_us_east_1 as static_prices
from ..karpenter.quantity import parse_quantity
from . import fmt

HOURS_PER_MONTH = 730.0
PRICE_LABEL = "eks-node-viewer/instance-price"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
EKS_CAPACITY_LABEL = "eks.amazonaws.com/capacityType"
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "aws.amazon.com/neuron")
TERMINAL_PHASES = ("Succeeded", "Failed")
ESTIMATE_SOURCES = ("static-table x spot_fraction", "pricing-api x spot_fraction")
STATIC_SOURCES = ("static-table", "static-table x spot_fraction")
_REGION_RE = re.compile(r"^([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)")


def zone_region(zone):
    """``us-east-1a`` / ``us-east-1-bos-1a`` (Local Zone) / ``us-gov-west-1a`` -> the region; None otherwise."""
    m = _REGION_RE.match(zone or "")
    return m.group(1) if m else None


def _q(value, default=0.0):
    try:
        return float(parse_quantity(value))
    except (ValueError, TypeError):
        return default


def _r(value, digits=6):
    return round(float(value), digits)


# ---------------------------------------------------------------------------------------------- pods / nodes


def pod_requests(pod):
    """Effective requests of one pod: {resource: float} (cpu in cores, memory in bytes).

    The scheduler's rule: max(sum of containers + sidecars, each init container + the sidecars started
    before it) + pod overhead (sidecar = init container with restartPolicy Always).
    """
    spec = pod.get("spec") or {}

    def reqs(c):
        return dict((k, _q(v)) for k, v in ((c.get("resources") or {}).get("requests") or {}).items())

    containers, sidecars, init_peak = {}, {}, {}
    for c in spec.get("containers") or []:
        for k, v in reqs(c).items():
            containers[k] = containers.get(k, 0.0) + v
    for c in spec.get("initContainers") or []:
        r = reqs(c)
        if c.get("restartPolicy") == "Always":
            for k, v in r.items():
                sidecars[k] = sidecars.get(k, 0.0) + v
            r = {}
        for k in set(r) | set(sidecars):
            init_peak[k] = max(init_peak.get(k, 0.0), r.get(k, 0.0) + sidecars.get(k, 0.0))
    total = {}
    for k in set(containers) | set(sidecars) | set(init_peak):
        total[k] = max(containers.get(k, 0.0) + sidecars.get(k, 0.0), init_peak.get(k, 0.0))
    for k, v in (spec.get("overhead") or {}).items():
        total[k] = total.get(k, 0.0) + _q(v)
    return total


def _is_daemon(pod):
    return any(o.get("kind") == "DaemonSet" for o in (pod.get("metadata") or {}).get("ownerReferences") or [])


def _first(labels, keys):
    for k in keys:
        if labels.get(k):
            return labels[k]
    return None


def node_record(node, pods=(), claim=None):
    """One node as the report sees it (pods: the non-terminated pods bound to it)."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    claim = claim or {}
    nodepool = labels.get(NODEPOOL_LABEL) or claim.get("nodepool")
    if nodepool:
        managed_by = "karpenter"
    elif labels.get(NODEGROUP_LABEL):
        managed_by, nodepool = "nodegroup", "nodegroup/" + labels[NODEGROUP_LABEL]
    else:
        managed_by, nodepool = "other", "(not Karpenter)"
    capacity_type = labels.get(CAPACITY_TYPE_LABEL) or claim.get("capacity_type")
    if not capacity_type and labels.get(EKS_CAPACITY_LABEL):
        capacity_type = labels[EKS_CAPACITY_LABEL].lower().replace("_", "-")
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    requested, workload_pods, daemon_pods = {}, 0, 0
    for p in pods:
        for k, v in pod_requests(p).items():
            requested[k] = requested.get(k, 0.0) + v
        if _is_daemon(p):
            daemon_pods += 1
        else:
            workload_pods += 1
    label_price = labels.get(PRICE_LABEL) or annotations.get(PRICE_LABEL)
    try:
        label_price = float(label_price) if label_price not in (None, "") else None
    except ValueError:
        label_price = None
    gpus = sum(_q(allocatable.get(r)) for r in GPU_RESOURCES)
    return {
        "name": meta.get("name"),
        "nodepool": nodepool,
        "managed_by": managed_by,
        "nodeclaim": claim.get("name"),
        "instance_type": _first(labels, INSTANCE_TYPE_LABELS) or claim.get("instance_type"),
        "capacity_type": capacity_type or "on-demand",
        "zone": _first(labels, ZONE_LABELS) or claim.get("zone"),
        "allocatable": {"cpu": _q(allocatable.get("cpu")), "memory": _q(allocatable.get("memory")), "gpu": gpus},
        "requested": {
            "cpu": requested.get("cpu", 0.0),
            "memory": requested.get("memory", 0.0),
            "gpu": sum(requested.get(r, 0.0) for r in GPU_RESOURCES),
        },
        "pods": workload_pods,
        "daemon_pods": daemon_pods,
        "label_price": label_price,
    }


def node_records(nodes, pods, claims=()):
    """Join nodes, pods (by spec.nodeName) and NodeClaim summaries (by status.nodeName)."""
    by_node = {}
    for p in pods:
        name = (p.get("spec") or {}).get("nodeName")
        if name and (p.get("status") or {}).get("phase") not in TERMINAL_PHASES:
            by_node.setdefault(name, []).append(p)
    claims_by_node = dict((c.get("node"), c) for c in claims if c.get("node"))
    out = []
    for n in nodes:
        name = (n.get("metadata") or {}).get("name")
        out.append(node_record(n, by_node.get(name, ()), claims_by_node.get(name)))
    return sorted(out, key=lambda r: (r["nodepool"] or "", r["name"] or ""))


# ---------------------------------------------------------------------------------------------- prices


class PriceBook:
    """Hourly prices with a named source (and the region the price is for) for every answer.

    ``regional``: {region: {instance type: on-demand price}} (Pricing API); ``on_demand``: the static table,
    whose prices are for ``table_region``.
    """

    def __init__(
        self,
        on_demand=None,
        spot_history=None,
        overrides=None,
        spot_fraction=None,
        region="us-east-1",
        regional=None,
        table_region=None,
    ):
        self.on_demand = static_prices.ON_DEMAND if on_demand is None else on_demand
        self.table_region = table_region or static_prices.REGION
        self.regional = regional or {}
        self.spot_history = spot_history or {}  # {(instance_type, zone): price}
        self.overrides = overrides or {}  # {type: price} or {type: {"on-demand": x, "spot": y}}
        self.spot_fraction = static_prices.SPOT_FRACTION if spot_fraction is None else spot_fraction
        self.region = region

    def _override(self, instance_type, capacity_type):
        v = self.overrides.get(instance_type)
        if isinstance(v, dict):
            v = v.get(capacity_type)
        return None if v is None else float(v)

    def node_region(self, zone):
        return zone_region(zone) or self.region

    def _on_demand(self, instance_type, region):
        """(price, source, price region) of the best on-demand price for a node in ``region``."""
        price = (self.regional.get(region) or {}).get(instance_type)
        if price is not None:
            return price, "pricing-api", region
        if instance_type in self.on_demand:
            return self.on_demand[instance_type], "static-table", self.table_region
        return None, "unknown", None

    def spot_estimate(self, instance_type, zone=None):
        """Best spot price without a node to read it from: history, else on-demand x fraction."""
        if (instance_type, zone) in self.spot_history:
            return self.spot_history[(instance_type, zone)], "spot-price-history"
        zonal = [p for (t, _z), p in self.spot_history.items() if t == instance_type]
        if zonal:
            return min(zonal), "spot-price-history"
        od, source, _region = self._on_demand(instance_type, self.node_region(zone))
        if od is None:
            return None, "unknown"
        return od * self.spot_fraction, source + " x spot_fraction"

    def price_with_region(self, record):
        """(hourly USD or None, source, region the price is for or None when unknown)."""
        it, ct, zone = record.get("instance_type"), record.get("capacity_type"), record.get("zone")
        region = self.node_region(zone)
        v = self._override(it, ct)
        if v is not None:
            return v, "override", region
        if ct == "spot" and (it, zone) in self.spot_history:
            return self.spot_history[(it, zone)], "spot-price-history", region
        if record.get("label_price") is not None:
            return record["label_price"], "node-label", region
        od, source, price_region = self._on_demand(it, region)
        if od is None:
            return None, "unknown", None
        if ct == "spot":
            return od * self.spot_fraction, source + " x spot_fraction", price_region
        return od, source, price_region

    def price(self, record):
        """(hourly USD or None, source) for a node record."""
        return self.price_with_region(record)[:2]


def price_nodes(records, book):
    for r in records:
        price, source, price_region = book.price_with_region(r)
        r["hourly"] = None if price is None else _r(price)
        r["price_source"] = source
        r["region"] = book.node_region(r.get("zone"))
        r["price_region"] = price_region
    return records


def pricing_on_demand(price_list, instance_type=None):
    """Pricing API GetProducts ``PriceList`` (JSON strings or dicts) -> lowest positive on-demand USD/hour or None."""
    best = None
    for item in price_list or []:
        try:
            doc = json.loads(item) if isinstance(item, (str, bytes)) else item
        except ValueError:
            continue
        attrs = ((doc or {}).get("product") or {}).get("attributes") or {}
        if instance_type and attrs.get("instanceType") not in (None, instance_type):
            continue
        for offer in (((doc.get("terms") or {}).get("OnDemand")) or {}).values():
            for dim in (offer.get("priceDimensions") or {}).values():
                if (dim.get("unit") or "Hrs") != "Hrs":
                    continue
                try:
                    usd = float((dim.get("pricePerUnit") or {}).get("USD"))
                except (TypeError, ValueError):
                    continue
                if usd > 0 and (best is None or usd < best):
                    best = usd
    return best


def spot_history_prices(entries, now_epoch, max_age_seconds=7 * 86400):
    """EC2 DescribeSpotPriceHistory entries -> ({(type, zone): latest price}, stale count).

    ``Timestamp`` may be a datetime or epoch seconds. Entries older than max_age (moto answers 2006) or with
    a non-positive price are ignored.
    """
    latest, stale = {}, 0
    for e in entries:
        ts = e.get("Timestamp")
        ts = ts.timestamp() if hasattr(ts, "timestamp") else float(ts or 0)
        try:
            price = float(e.get("SpotPrice"))
        except (TypeError, ValueError):
            continue
        if now_epoch - ts > max_age_seconds or price <= 0:
            stale += 1
            continue
        key = (e.get("InstanceType"), e.get("AvailabilityZone"))
        if key not in latest or ts > latest[key][0]:
            latest[key] = (ts, price)
    return dict((k, v[1]) for k, v in latest.items()), stale


# ---------------------------------------------------------------------------------------------- aggregation


def _ratio(a, b):
    return _r(a / b, 4) if b else None


def _group(records, key, hours_per_month):
    groups = {}
    for r in records:
        g = groups.setdefault(
            r[key],
            {
                key: r[key],
                "nodes": 0,
                "hourly": 0.0,
                "unpriced_nodes": 0,
                "cpu_allocatable": 0.0,
                "cpu_requested": 0.0,
                "memory_allocatable": 0.0,
                "memory_requested": 0.0,
                "gpu_allocatable": 0.0,
                "gpu_requested": 0.0,
                "by_capacity_type": {},
                "instance_types": {},
            },
        )
        g["nodes"] += 1
        if r.get("hourly") is None:
            g["unpriced_nodes"] += 1
        else:
            g["hourly"] += r["hourly"]
            ct = g["by_capacity_type"].setdefault(r["capacity_type"], {"nodes": 0, "hourly": 0.0})
            ct["nodes"] += 1
            ct["hourly"] += r["hourly"]
        for res in ("cpu", "memory", "gpu"):
            g[res + "_allocatable"] += r["allocatable"][res]
            g[res + "_requested"] += r["requested"][res]
        g["instance_types"][r["instance_type"]] = g["instance_types"].get(r["instance_type"], 0) + 1
    out = []
    for name in sorted(groups, key=str):
        g = groups[name]
        g["hourly"] = _r(g["hourly"])
        g["monthly"] = _r(g["hourly"] * hours_per_month, 2)
        for ct in g["by_capacity_type"].values():
            ct["hourly"] = _r(ct["hourly"])
            ct["monthly"] = _r(ct["hourly"] * hours_per_month, 2)
        for res in ("cpu", "memory", "gpu"):
            g[res + "_utilization"] = _ratio(g[res + "_requested"], g[res + "_allocatable"])
            g[res + "_requested"] = _r(g[res + "_requested"], 4)
        out.append(g)
    return out


def summarize(records, hours_per_month=HOURS_PER_MONTH):
    """Totals, per NodePool and per capacity type, spot share (by nodes, vCPU and cost)."""
    hourly = sum(r["hourly"] for r in records if r.get("hourly") is not None)
    spot = [r for r in records if r["capacity_type"] == "spot"]
    spot_hourly = sum(r["hourly"] for r in spot if r.get("hourly") is not None)
    vcpu = sum(r["allocatable"]["cpu"] for r in records)
    cpu_alloc = sum(r["allocatable"]["cpu"] for r in records)
    mem_alloc = sum(r["allocatable"]["memory"] for r in records)
    return {
        "totals": {
            "nodes": len(records),
            "hourly": _r(hourly),
            "monthly": _r(hourly * hours_per_month, 2),
            "cpu_allocatable": _r(cpu_alloc, 4),
            "cpu_requested": _r(sum(r["requested"]["cpu"] for r in records), 4),
            "cpu_utilization": _ratio(sum(r["requested"]["cpu"] for r in records), cpu_alloc),
            "memory_allocatable": _r(mem_alloc, 0),
            "memory_requested": _r(sum(r["requested"]["memory"] for r in records), 0),
            "memory_utilization": _ratio(sum(r["requested"]["memory"] for r in records), mem_alloc),
            "unpriced_nodes": sum(1 for r in records if r.get("hourly") is None),
        },
        "spot_share": {
            "nodes": _ratio(len(spot), len(records)),
            "vcpu": _ratio(sum(r["allocatable"]["cpu"] for r in spot), vcpu),
            "cost": _ratio(spot_hourly, hourly),
        },
        "nodepools": _group(records, "nodepool", hours_per_month),
        "capacity_types": _group(records, "capacity_type", hours_per_month),
    }


# ---------------------------------------------------------------------------------------------- recommendations


def _pool_allows_spot(spec):
    reqs = (((spec or {}).get("template") or {}).get("spec") or {}).get("requirements") or []
    for r in reqs:
        if r.get("key") == CAPACITY_TYPE_LABEL:
            op, values = r.get("operator"), r.get("values") or []
            if op == "In":
                return "spot" in values
            if op == "NotIn":
                return "spot" not in values
    return False  # Karpenter's default when absent is on-demand only


def _fmt_pct(x):
    return "%d%%" % int(round(x * 100))


def recommendations(
    summary,
    records,
    book,
    nodepool_specs=None,
    low_utilization=0.5,
    target_utilization=0.8,
    hours_per_month=HOURS_PER_MONTH,
    min_monthly_saving=1.0,
):
    """Actionable findings with numbers, highest saving first.

    * empty: Karpenter nodes without workload pods (DaemonSets only): their full monthly price.
    * underutilised: the NodePool's nodes with workloads have a requested share of allocatable below
      ``low_utilization`` for CPU and memory (GPU too when it has GPUs). Packing them to ``target_utilization``
      needs ``max(util)/target`` of their capacity: saving = their monthly cost x (1 - max(util)/target).
    * spot: a NodePool that does not allow spot, for its on-demand nodes with workloads and without GPUs:
      saving = sum of (price - spot estimate) x hours_per_month.

    Empty nodes are left out of the other two, so the savings of one pool do not overlap.
    """
    specs = nodepool_specs or {}
    recs = []
    managed = set(r["nodepool"] for r in records if r["managed_by"] == "karpenter")
    for name in sorted(managed):
        pool_nodes = [r for r in records if r["nodepool"] == name]
        busy = [r for r in pool_nodes if r["pods"] > 0 and r.get("hourly") is not None]
        g = _group(busy, "nodepool", hours_per_month)[0] if busy else None
        utils = [g["cpu_utilization"] or 0.0, g["memory_utilization"] or 0.0] if g else [1.0]
        if g and g["gpu_allocatable"]:
            utils.append(g["gpu_utilization"] or 0.0)
        peak = max(utils)
        if g and g["monthly"] and peak < low_utilization:
            saving = g["monthly"] * (1 - peak / target_utilization)
            if saving >= min_monthly_saving:
                policy = ((specs.get(name) or {}).get("disruption") or {}).get("consolidationPolicy")
                hint = (
                    " (its consolidationPolicy is WhenEmpty: WhenEmptyOrUnderutilized would let Karpenter repack it)"
                    if policy == "WhenEmpty"
                    else ""
                )
                recs.append(
                    {
                        "kind": "underutilized",
                        "nodepool": name,
                        "monthly_saving": _r(saving, 2),
                        "cpu_utilization": g["cpu_utilization"],
                        "memory_utilization": g["memory_utilization"],
                        "message": "NodePool %s runs %s CPU-requested and %s memory-requested on %d node(s) with "
                        "workloads (%s/month): consolidation or smaller instance types would save ~%s/month "
                        "(packing to %s)%s."
                        % (
                            name,
                            _fmt_pct(g["cpu_utilization"] or 0),
                            _fmt_pct(g["memory_utilization"] or 0),
                            g["nodes"],
                            fmt.money(g["monthly"]),
                            fmt.money(saving),
                            _fmt_pct(target_utilization),
                            hint,
                        ),
                    }
                )
        od = [r for r in busy if r["capacity_type"] == "on-demand" and not r["allocatable"]["gpu"]]
        if od and not (name in specs and _pool_allows_spot(specs[name])):
            saving, sources = 0.0, set()
            for r in od:
                spot, source = book.spot_estimate(r["instance_type"], r["zone"])
                if spot is not None and spot < r["hourly"]:
                    saving += (r["hourly"] - spot) * hours_per_month
                    sources.add(source)
            if saving >= min_monthly_saving:
                od_monthly = sum(r["hourly"] for r in od) * hours_per_month
                recs.append(
                    {
                        "kind": "spot",
                        "nodepool": name,
                        "monthly_saving": _r(saving, 2),
                        "message": "NodePool %s runs %d on-demand nodes (%s/month): if its workloads tolerate "
                        "interruption, allowing spot (karpenter.sh/capacity-type In [spot, on-demand]) would save "
                        "~%s/month (spot price: %s)."
                        % (name, len(od), fmt.money(od_monthly), fmt.money(saving), ", ".join(sorted(sources))),
                    }
                )
        empty = [r for r in pool_nodes if r["pods"] == 0 and r.get("hourly") is not None]
        if empty:
            cost = sum(r["hourly"] for r in empty) * hours_per_month
            if cost >= min_monthly_saving:
                recs.append(
                    {
                        "kind": "empty",
                        "nodepool": name,
                        "monthly_saving": _r(cost, 2),
                        "nodes": [r["name"] for r in empty],
                        "message": "NodePool %s has %d node(s) without workload pods (%s): %s/month; check "
                        "consolidateAfter, disruption budgets and do-not-disrupt annotations."
                        % (name, len(empty), ", ".join(r["name"] for r in empty), fmt.money(cost)),
                    }
                )
    return sorted(recs, key=lambda x: (-x["monthly_saving"], x["nodepool"], x["kind"]))


# ---------------------------------------------------------------------------------------------- Cost Explorer

PURCHASE_TYPES = {
    "On Demand Instances": "on-demand",
    "Spot Instances": "spot",
    "Reserved Instances": "reserved",
    "Savings Plans": "savings-plans",
}


def _amount(group_or_total, metric):
    m = (group_or_total or {}).get(metric) or {}
    try:
        return float(m.get("Amount") or 0)
    except (TypeError, ValueError):
        return 0.0


def _tag_value(key):
    """Cost Explorer tag group keys look like ``karpenter.sh/nodepool$batch`` (``...$`` = untagged)."""
    if "$" in key:
        value = key.split("$", 1)[1]
        return value or "(untagged)"
    return key or "(untagged)"


def ce_by_type(results, metric="UnblendedCost"):
    """ResultsByTime grouped by [INSTANCE_TYPE, USAGE_TYPE] -> totals and a daily series."""
    by_type, by_usage, series, total = {}, {}, [], 0.0
    for period in results:
        day = (period.get("TimePeriod") or {}).get("Start")
        day_total = 0.0
        for g in period.get("Groups") or []:
            keys = list(g.get("Keys") or []) + ["", ""]
            amount = _amount(g.get("Metrics"), metric)
            it = keys[0] or "(none)"
            ut = keys[1] or "(none)"
            by_type[it] = by_type.get(it, 0.0) + amount
            by_usage[ut] = by_usage.get(ut, 0.0) + amount
            day_total += amount
        if not period.get("Groups"):
            day_total = _amount(period.get("Total"), metric)
        series.append({"date": day, "cost": _r(day_total, 4), "estimated": bool(period.get("Estimated"))})
        total += day_total
    return {
        "total": _r(total, 4),
        "by_instance_type": dict((k, _r(v, 4)) for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])),
        "by_usage_type": dict((k, _r(v, 4)) for k, v in sorted(by_usage.items(), key=lambda kv: -kv[1])),
        "daily": series,
    }


def ce_by_pool(results, metric="UnblendedCost"):
    """ResultsByTime grouped by [TAG nodepool, PURCHASE_TYPE] -> series per NodePool and per capacity type."""
    pools, cts, days = {}, {}, []
    by_pool_day, by_ct_day = {}, {}
    for period in results:
        day = (period.get("TimePeriod") or {}).get("Start")
        days.append(day)
        for g in period.get("Groups") or []:
            keys = list(g.get("Keys") or []) + ["", ""]
            pool = _tag_value(keys[0])
            ct = PURCHASE_TYPES.get(keys[1], keys[1] or "(none)")
            amount = _amount(g.get("Metrics"), metric)
            pools[pool] = pools.get(pool, 0.0) + amount
            cts[ct] = cts.get(ct, 0.0) + amount
            by_pool_day[(pool, day)] = by_pool_day.get((pool, day), 0.0) + amount
            by_ct_day[(ct, day)] = by_ct_day.get((ct, day), 0.0) + amount
    total = sum(pools.values())
    return {
        "dates": days,
        "by_nodepool": dict((k, _r(v, 4)) for k, v in sorted(pools.items())),
        "by_capacity_type": dict((k, _r(v, 4)) for k, v in sorted(cts.items())),
        "nodepool_series": dict((p, [_r(by_pool_day.get((p, d), 0.0), 4) for d in days]) for p in sorted(pools)),
        "capacity_type_series": dict((c, [_r(by_ct_day.get((c, d), 0.0), 4) for d in days]) for c in sorted(cts)),
        "spot_share": _ratio(cts.get("spot", 0.0), total),
        "total": _r(total, 4),
    }


def cloudwatch_average(metric_data_results):
    """GetMetricData results -> {id: average of its values or None}."""
    out = {}
    for r in metric_data_results or []:
        values = [float(v) for v in r.get("Values") or [] if v is not None and not math.isnan(float(v))]
        out[r.get("Id")] = _r(sum(values) / len(values), 4) if values else None
    return out


# ---------------------------------------------------------------------------------------------- report


def price_coverage(records, book):
    """Which instance types were priced from where; ``stand_in_types``: {region: types} priced with the static
    table of another region."""
    by_source, stand_in, missing = {}, {}, set()
    for r in records:
        it = r.get("instance_type") or "(unknown)"
        if r["price_source"] == "unknown":
            missing.add(it)
            continue
        by_source.setdefault(r["price_source"], set()).add(it)
        if r["price_source"] in STATIC_SOURCES and r.get("region") != book.table_region:
            stand_in.setdefault(r.get("region") or "(unknown)", set()).add(it)
    return {
        "region": book.region,
        "static_table_region": book.table_region,
        "types_by_source": dict((k, sorted(v)) for k, v in sorted(by_source.items())),
        "stand_in_types": dict((k, sorted(v)) for k, v in sorted(stand_in.items())),
        "missing_types": sorted(missing),
    }


def build_report(
    records,
    book,
    nodepool_specs=None,
    cost_explorer=None,
    cloudwatch=None,
    notes=(),
    period=None,
    cluster_name=None,
    generated_at=None,
    hours_per_month=HOURS_PER_MONTH,
    low_utilization=0.5,
    target_utilization=0.8,
):
    """Everything the JSON and HTML report hold; ``records`` must already be priced (price_nodes)."""
    summary = summarize(records, hours_per_month)
    notes = list(notes)
    sources = {}
    for r in records:
        sources[r["price_source"]] = sources.get(r["price_source"], 0) + 1
    prices = price_coverage(records, book)
    estimated = sum(sources.get(s, 0) for s in ESTIMATE_SOURCES)
    if estimated:
        notes.append(
            "%d spot node(s) priced as on-demand x %.2f (no spot price history or node price label): an estimate."
            % (estimated, book.spot_fraction)
        )
    if prices["missing_types"]:
        notes.append(
            "%d node(s) of instance type(s) %s have no price (not in the Pricing API answer, the static table or "
            "prices): not counted in costs." % (sources.get("unknown", 0), ", ".join(prices["missing_types"]))
        )
    for region, types in sorted(prices["stand_in_types"].items()):
        count = sum(1 for r in records if r["region"] == region and r["price_source"] in STATIC_SOURCES)
        notes.append(
            "prices: region %s has no shipped price table; %d node(s) of type(s) %s are priced with the static "
            "%s on-demand prices as a stand-in, so their costs are estimates (%s prices differ; allow "
            "pricing:GetProducts or pass prices to fix)." % (region, count, ", ".join(types), book.table_region, region)
        )
    return {
        "cluster_name": cluster_name,
        "generated_at": generated_at,
        "period": period,
        "currency": "USD",
        "hours_per_month": hours_per_month,
        "assumptions": {
            "low_utilization": low_utilization,
            "target_utilization": target_utilization,
            "spot_fraction": book.spot_fraction,
            "price_table": static_prices.SOURCE,
            "price_table_generated_at": static_prices.GENERATED_AT,
            "price_table_region": book.table_region,
        },
        "price_sources": sources,
        "prices": prices,
        "totals": summary["totals"],
        "spot_share": summary["spot_share"],
        "nodepools": summary["nodepools"],
        "capacity_types": summary["capacity_types"],
        "nodes": records,
        "recommendations": recommendations(
            summary,
            records,
            book,
            nodepool_specs,
            low_utilization=low_utilization,
            target_utilization=target_utilization,
            hours_per_month=hours_per_month,
        ),
        "cost_explorer": cost_explorer,
        "cloudwatch": cloudwatch,
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------------- what-if


def _pending_pods(variant):
    return sum((w or {}).get("pending", 0) for w in (variant.get("workloads") or {}).values())


def whatif_compare(variants, hours_per_month=HOURS_PER_MONTH):
    """What-if variants (playbooks/whatif.yml results) with their differences from the first one, the baseline.

    Adds to a copy of each variant: ``pending_pods``, ``monthly_by_capacity_type`` (from its nodes' prices),
    ``baseline`` (the first variant's name), ``delta`` (None for the baseline, else hourly, monthly, nodes and
    monthly_pct against it; ``caveat`` says why it is not ``comparable``: pods pending in either, since a variant
    that leaves pods unscheduled is not cheaper for the same work, or nodes without a price) and ``summary`` (one
    line, money in one format).
    """
    out = []
    base = None
    for v in variants or []:
        v = dict(v)
        v["pending_pods"] = _pending_pods(v)
        by_ct = {}
        for n in v.get("node_list") or []:
            if n.get("hourly") is not None:
                ct = n.get("capacity_type") or "on-demand"
                by_ct[ct] = by_ct.get(ct, 0.0) + n["hourly"] * hours_per_month
        v["monthly_by_capacity_type"] = dict((k, _r(x, 2)) for k, x in sorted(by_ct.items()))
        if base is None:
            base = v
            v["delta"] = None
        else:
            v["delta"] = {
                "hourly": _r((v.get("hourly") or 0.0) - (base.get("hourly") or 0.0)),
                "monthly": _r((v.get("monthly") or 0.0) - (base.get("monthly") or 0.0), 2),
                "nodes": (v.get("nodes") or 0) - (base.get("nodes") or 0),
                "monthly_pct": _ratio((v.get("monthly") or 0.0) - (base.get("monthly") or 0.0), base.get("monthly")),
            }
            v["delta"]["caveat"] = _whatif_caveat(v, base)
            v["delta"]["comparable"] = not v["delta"]["caveat"]
        v["baseline"] = base.get("variant")
        out.append(v)
    for v in out:
        v["summary"] = whatif_summary(v)
    return out


def _whatif_caveat(v, base):
    """Why a difference does not compare the same work at known prices ('' when it does)."""
    why = []
    if v["pending_pods"] or base["pending_pods"]:
        why.append("pods pending")
    if v.get("unpriced_nodes") or base.get("unpriced_nodes"):
        why.append("nodes without a price")
    return ", ".join(why)


def whatif_summary(v):
    """One line per variant: nodes, cost, difference from the baseline, pending pods."""
    text = "%s: %d node(s), %s/h (%s/month)" % (
        v.get("variant"),
        v.get("nodes") or 0,
        fmt.money(v.get("hourly")),
        fmt.money(v.get("monthly")),
    )
    if v.get("unpriced_nodes"):
        text += ", %d node(s) without a price" % v["unpriced_nodes"]
    d = v.get("delta")
    if d is None:
        text += "; baseline"
    else:
        pct = " (%s)" % fmt.pct(d["monthly_pct"], signed=True) if d["monthly_pct"] is not None else ""
        text += "; %s/month%s vs %s" % (fmt.money(d["monthly"], signed=True), pct, v.get("baseline"))
        if not d["comparable"]:
            text += " (not comparable: %s)" % d["caveat"]
    if v.get("pending_pods"):
        text += "; %d pod(s) pending" % v["pending_pods"]
    return text
