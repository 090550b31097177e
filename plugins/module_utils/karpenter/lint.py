# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lint rules for Karpenter objects beyond what the CRD and Karpenter's runtime validation reject.

Every rule has an id (``KPLnnn``), a default severity, a message and the field path. The rules
catch configurations the apiserver accepts but that do not do what was meant (globs in requirement
values, a zone label pinning a multi-zone pool, requirements nothing satisfies, GPU pools without
a taint, pools that are never disrupted, ...) and the known errors of the original design
(docs/karpenter-v1.md section 4), with the v1 fix as ``hint``.

``lint(obj)`` lints one object, ``lint_batch(objs, known_nodeclasses=None)`` lints a batch
(cross-object rules: NodePool -> EC2NodeClass references, duplicates). ``RULES`` lists the ids.
Helpers outside the batch flow: ``lint_controller_policy(doc)`` (IAM policy of the controller),
``lint_helm_values(values)`` and ``find_obsolete_metrics(text)``.
"""

# pylint: disable=unidiomatic-typecheck  # bool is not an integer quantity here
from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

from .golang import compile_regex
from .iam_actions import V1_NEW_ACTIONS
from .issues import ERROR, WARNING, Issue, join_path, key, object_ref
from .labels import (
    CAPACITY_TYPE_LABEL,
    INSTANCE_TYPE_LABEL,
    NORMALIZED_LABELS,
    ZONE_LABEL,
    is_kubernetes_domain_label,
    is_qualified_name,
    is_valid_label_value,
)
from .placeholders import binding, has_placeholder, may_equal, may_intersect
from .quantity import GI, parse_quantity

NODEPOOL = ("karpenter.sh/v1", "NodePool")
EC2NODECLASS = ("karpenter.k8s.aws/v1", "EC2NodeClass")

RULES = {
    "KPL001": (ERROR, "glob or regex in requirement values (values match literally; NodePool NotReady)"),
    "KPL002": (WARNING, "fixed topology.kubernetes.io/zone label on a pool whose requirements allow several zones"),
    "KPL003": (ERROR, "requirements no instance type can satisfy"),
    "KPL004": (ERROR, "nodeClassRef to a node class (EC2NodeClass) that is not known"),
    "KPL005": (WARNING, "limits lower than one node"),
    "KPL006": (WARNING, "GPU pool without a NoSchedule taint"),
    "KPL007": (WARNING, "spot-only pool without an explicit disruption budget"),
    "KPL008": (WARNING, "consolidateAfter: Never with expireAfter: Never (nodes are never disrupted)"),
    "KPL009": (ERROR, "nodeClassRef written with an apiVersion (group karpenter.k8s.aws/v1 or apiVersion field)"),
    "KPL010": (ERROR, "nodeClassRef group/kind is not karpenter.k8s.aws EC2NodeClass"),
    "KPL011": (ERROR, "legacy Karpenter API (v1alpha5/v1alpha1/v1beta1) - not served"),
    "KPL012": (ERROR, "PodSecurityPolicy / policy/v1beta1 - removed in Kubernetes 1.25"),
    "KPL013": (ERROR, "alpha/beta field on a v1 NodePool (pruned or rejected)"),
    "KPL014": (ERROR, "consolidationPolicy WhenUnderutilized (renamed WhenEmptyOrUnderutilized)"),
    "KPL015": (WARNING, "disruption block without consolidateAfter (required up to v1.14, defaulted to 0s from v1.15)"),
    "KPL016": (ERROR, "amiFamily Ubuntu (removed in v1)"),
    "KPL017": (ERROR, "disruption budget nodes given as a number"),
    "KPL018": (ERROR, "duration with an unsupported unit (only s/m/h, or Never)"),
    "KPL019": (ERROR, "custom label under kubernetes.io / k8s.io"),
    "KPL020": (ERROR, "weight 0 (omit it, or 1..100)"),
    "KPL021": (ERROR, "more than 100 template labels + requirements"),
    "KPL022": (ERROR, "NodePool name is not a valid label value (karpenter.sh/nodepool)"),
    "KPL023": (WARNING, "AMI alias @latest (every new AMI drifts every node)"),
    "KPL024": (WARNING, "AL2 AMI family (no EKS AMIs for Kubernetes >= 1.33)"),
    "KPL025": (WARNING, "obsolete alpha tag keys (karpenter.sh/provisioner-name, karpenter.sh/managed-by)"),
    "KPL026": (ERROR, "duplicate object in the batch"),
    "KPL027": (WARNING, "obsolete Karpenter metric names (pre-v1)"),
    "KPL028": (ERROR, "controller IAM policy uses alpha tag conditions or lacks v1 permissions"),
    "KPL029": (WARNING, "Helm values the v1 chart ignores or lacks (pre-v1 settings, clusterName, interruptionQueue)"),
    "KPL030": (WARNING, "requirement key karpenter.sh/provisioner-name or node.kubernetes.io/instance-family"),
    "KPL031": (ERROR, "template annotations a NodeClaim/Node cannot carry (invalid key, more than 256 KiB in total)"),
    "KPL032": (ERROR, "more than 50 tags per instance: spec.tags plus the 6 Karpenter adds (EC2's limit)"),
    "KPL033": (ERROR, "negative limit (the pool is always over it and never launches)"),
    "KPL034": (ERROR, "metric name the target Karpenter version does not export (PrometheusRule, Grafana dashboard)"),
}

# node classes of Karpenter's own test provider (sigs.k8s.io/karpenter/kwok), used by the sandbox
TEST_PROVIDER_NODECLASSES = (("karpenter.kwok.sh", "KWOKNodeClass"),)

# ---------------------------------------------------------------------------------------------


def _issue(ref, path, rule_id, message, hint=None, severity=None):
    return Issue(ref, path, rule_id, message, severity or RULES[rule_id][0], source="lint", hint=hint)


def _get(obj, *path):
    for p in path:
        if isinstance(obj, dict):
            obj = obj.get(p)
        elif isinstance(obj, list) and isinstance(p, int) and 0 <= p < len(obj):
            obj = obj[p]
        else:
            return None
    return obj


def _dict(v):
    return v if isinstance(v, dict) else {}


def _list(v):
    return v if isinstance(v, list) else []


def _kind(obj):
    """``(apiVersion, kind)``; a value that is not a string (a list, a map) is None (the validator reports it)."""
    if not isinstance(obj, dict):
        return None, None
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    return (api_version if isinstance(api_version, str) else None), (kind if isinstance(kind, str) else None)


def _requirements(np):
    """``(index, key, operator, values, minValues)`` for each requirement of a NodePool."""
    out = []
    for i, r in enumerate(_list(_get(np, "spec", "template", "spec", "requirements"))):
        if isinstance(r, dict) and isinstance(r.get("key"), str):
            vals = [v for v in _list(r.get("values")) if isinstance(v, str)]
            out.append((i, NORMALIZED_LABELS.get(r["key"], r["key"]), r.get("operator"), vals, r.get("minValues")))
    return out


def _template_labels(np):
    return {k: v for k, v in _dict(_get(np, "spec", "template", "metadata", "labels")).items() if isinstance(k, str)}


# lint_nodepool computes the requirements and the template labels once and hands them to the rules
def _reqs(np, reqs):
    return _requirements(np) if reqs is None else reqs


def _labels(np, labels):
    return _template_labels(np) if labels is None else labels


REQ_PATH = "spec.template.spec.requirements"
LABELS_PATH = "spec.template.metadata.labels"

# ---------------------------------------------------------------------------------------------
# NodePool rules

GLOB_CHARS = re.compile(r"[*?\[\]^$|+(){}\\]")
FAMILY_GLOB = re.compile(r"^([a-z][a-z0-9-]*[a-z0-9])\.\*\Z")


def _rule_glob_values(np, ref, reqs=None):
    out = []
    for i, rkey, op, values, _unused in _reqs(np, reqs):
        for j, v in enumerate(values):
            if not GLOB_CHARS.search(v):
                continue  # other invalid values are reported by the runtime validation
            hint = "list concrete values; values match literally"
            m = FAMILY_GLOB.match(v)
            if m and rkey == INSTANCE_TYPE_LABEL:
                hint = "use {key: karpenter.k8s.aws/instance-family, operator: %s, values: [%s]}" % (op, m.group(1))
            elif v in ("*", ".*"):
                hint = "use operator Exists (or drop the requirement) to allow any value"
            out.append(
                _issue(
                    ref,
                    join_path(join_path(join_path(REQ_PATH, i), "values"), j),
                    "KPL001",
                    "value %r of %s looks like a glob/regex; requirement values are matched literally and %r is not a "
                    "valid label value, so Karpenter marks the NodePool NotReady (ValidationSucceeded=False)"
                    % (v, rkey, v),
                    hint,
                )
            )
    return out


def _rule_zone_label(np, ref, reqs=None, labels=None):
    zone = _labels(np, labels).get(ZONE_LABEL)
    if zone is None:
        return []
    for i, rkey, op, values, _unused in _reqs(np, reqs):
        if rkey == ZONE_LABEL and op == "In" and len(values) > 1 and zone in values:
            return [
                _issue(
                    ref,
                    join_path(LABELS_PATH, key(ZONE_LABEL)),
                    "KPL002",
                    "template label %s=%s becomes a requirement 'In [%s]': every node of this pool lands in %s "
                    "although "
                    "requirements[%d] allows %s" % (ZONE_LABEL, zone, zone, zone, i, ", ".join(values)),
                    "drop the label; keep the zone requirement and use pod topologySpreadConstraints",
                )
            ]
        if rkey == ZONE_LABEL and _zone_pin_before_substitution(zone, op, values):
            return [
                _issue(
                    ref,
                    join_path(LABELS_PATH, key(ZONE_LABEL)),
                    "KPL002",
                    _zone_pin_message(zone, i, values),
                    "drop the label; keep the zone requirement and use pod topologySpreadConstraints",
                )
            ]
    return []


def _zone_pin_before_substitution(zone, op, values):
    """A zone label and a multi-zone In requirement, one of them with ``${...}`` placeholders (a design before
    substitution): the label pins one zone whenever it can be one of the allowed values."""
    if not isinstance(zone, str) or op != "In" or len(set(values)) < 2:
        return False
    if not (has_placeholder(zone) or any(has_placeholder(v) for v in values)):
        return False
    return any(may_equal(zone, v) for v in values)


def _zone_pin_message(zone, i, values):
    pairs = ((zone, v) for v in values) if has_placeholder(zone) else ((v, zone) for v in values)
    when = [b for b in (binding(t, lit) for t, lit in pairs if not has_placeholder(lit)) if b]
    subst = " (with %s)" % ", ".join("%s=%s" % kv for kv in when[0].items()) if when else ""
    return (
        "template label %s=%s becomes a requirement 'In [%s]': once the ${...} placeholders are substituted every "
        "node of this pool lands in that one zone%s although requirements[%d] allows %s"
        % (ZONE_LABEL, zone, zone, subst, i, ", ".join(values))
    )


def _numeric(v):
    try:
        return int(v, 10)
    except (TypeError, ValueError):
        return None


def _rule_unsatisfiable(np, ref, reqs=None, labels=None):
    """Per key: In sets (template labels included), NotIn, Exists/DoesNotExist and numeric bounds."""
    out = []
    per_key = {}
    for lkey, lval in _labels(np, labels).items():
        if isinstance(lval, str):
            per_key.setdefault(NORMALIZED_LABELS.get(lkey, lkey), []).append(
                (join_path(LABELS_PATH, key(lkey)), "In", [lval], "label")
            )
    for i, rkey, op, values, _unused in _reqs(np, reqs):
        per_key.setdefault(rkey, []).append((join_path(REQ_PATH, i), op, values, "requirement"))
    for rkey, entries in per_key.items():
        allowed = None  # None = any value
        excluded = set()
        exists = does_not_exist = False
        low, high = None, None
        first_path = entries[0][0]
        reasons = []
        templated = any(has_placeholder(v) for entry in entries for v in entry[2])
        for path, op, values, _src in entries:
            if op == "In":
                if not values:
                    out.append(
                        _issue(
                            ref,
                            path,
                            "KPL003",
                            "requirement on %s has operator In with no values: nothing matches" % rkey,
                        )
                    )
                    continue
                allowed = set(values) if allowed is None else allowed & set(values)
                exists = True
            elif op == "NotIn":
                excluded |= set(values)
            elif op == "Exists":
                exists = True
            elif op == "DoesNotExist":
                does_not_exist = True
            elif op in ("Gt", "Gte", "Lt", "Lte") and len(values) == 1 and _numeric(values[0]) is not None:
                n = _numeric(values[0])
                exists = True
                if op in ("Gt", "Gte"):
                    lo = n + 1 if op == "Gt" else n
                    low = lo if low is None else max(low, lo)
                else:
                    hi = n - 1 if op == "Lt" else n
                    high = hi if high is None else min(high, hi)
        if exists and does_not_exist:
            reasons.append("it must both exist and not exist (DoesNotExist combined with In/Exists/Gt/Lt)")
        if allowed is not None and templated:  # ${...} placeholders: only what holds for every substitution
            if not may_intersect(r[2] for r in entries if r[1] == "In" and r[2]):
                reasons.append(
                    "the In value sets (template labels count as In) do not intersect, whatever the "
                    "${...} placeholders become"
                )
        elif allowed is not None:
            remaining = allowed - excluded
            if not remaining and allowed:
                reasons.append("no value is left: In %s, NotIn %s" % (sorted(allowed), sorted(excluded)))
            elif not allowed and len([r for r in entries if r[1] == "In" and r[2]]) > 1:
                reasons.append("the In value sets (template labels count as In) do not intersect")
            elif low is not None or high is not None:
                nums = [_numeric(v) for v in remaining]
                if not any(n is not None and (low is None or n >= low) and (high is None or n <= high) for n in nums):
                    reasons.append("no In value %s lies within the numeric bounds" % sorted(remaining))
        if low is not None and high is not None and low > high:
            reasons.append("the numeric bounds are empty (Gt/Gte %d .. Lt/Lte %d)" % (low, high))
        for reason in reasons:
            out.append(_issue(ref, first_path, "KPL003", "requirements on %s cannot be satisfied: %s" % (rkey, reason)))
    return out


def _rule_nodeclass_ref(np, ref, known, strict):
    out = []
    ncr = _get(np, "spec", "template", "spec", "nodeClassRef")
    if not isinstance(ncr, dict):
        return out
    path = "spec.template.spec.nodeClassRef"
    group = ncr.get("group")
    if "apiVersion" in ncr or (isinstance(group, str) and "/" in group):
        out.append(
            _issue(
                ref,
                join_path(path, "group") if "apiVersion" not in ncr else join_path(path, "apiVersion"),
                "KPL009",
                "nodeClassRef needs group (without version), kind and name; got %s"
                % ", ".join("%s=%s" % (k, ncr[k]) for k in ("apiVersion", "group") if k in ncr),
                "nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: %s}" % ncr.get("name"),
            )
        )
    elif (group, ncr.get("kind")) in TEST_PROVIDER_NODECLASSES:
        pass  # Karpenter's KWOK test provider (kwok/ in sigs.k8s.io/karpenter) manages only NodePools that reference it
    elif (isinstance(group, str) and group and group != "karpenter.k8s.aws") or (
        ncr.get("kind") and ncr.get("kind") != "EC2NodeClass"
    ):
        out.append(
            _issue(
                ref,
                path,
                "KPL010",
                "the AWS provider only serves EC2NodeClass in group karpenter.k8s.aws; got group=%s kind=%s"
                % (group, ncr.get("kind")),
            )
        )
    name = ncr.get("name")
    if known is not None and isinstance(name, str) and name and name not in known:
        ref_kind = ncr.get("kind") if isinstance(ncr.get("kind"), str) and ncr.get("kind") else "EC2NodeClass"
        out.append(
            _issue(
                ref,
                join_path(path, "name"),
                "KPL004",
                "nodeClassRef names %s %r, which is neither in this batch nor among the known node classes (%s)"
                % (ref_kind, name, ", ".join(sorted(known)) or "none"),
                severity=ERROR if strict else WARNING,
            )
        )
    return out


_MIN_NODE = {"cpu": 1, "memory": GI, "nodes": 1}


_PLAIN_QUANTITY = re.compile(r"([0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei)?\Z")
_BINARY_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def _quantity(value):
    """``parse_quantity(value)``; the common exact forms (an int, "100", "400Gi") as a plain int."""
    if type(value) is int:
        return value
    if type(value) is str:
        m = _PLAIN_QUANTITY.match(value)
        if m:
            return int(m.group(1)) * _BINARY_SUFFIX[m.group(2)] if m.group(2) else int(m.group(1))
    return parse_quantity(value)


def _rule_limits(np, ref):
    out = []
    for name, value in _dict(_get(np, "spec", "limits")).items():
        try:
            q = _quantity(value)
        except ValueError:
            continue
        if q < 0:  # the CRD's quantity pattern allows a sign
            out.append(
                _issue(
                    ref,
                    join_path("spec.limits", key(name)),
                    "KPL033",
                    "limit %s=%s is negative: any usage, even none, exceeds it, so Karpenter never launches a node "
                    "for this pool" % (name, value),
                    "use a positive limit, or delete the NodePool to disable it",
                )
            )
            continue
        floor = _MIN_NODE.get(name)
        if q <= 0 or (floor is not None and q < floor):
            what = {"cpu": "1 vCPU", "memory": "1Gi", "nodes": "1 node"}.get(name, "one unit")
            out.append(
                _issue(
                    ref,
                    join_path("spec.limits", key(name)),
                    "KPL005",
                    "limit %s=%s is below the smallest plausible node (%s): the pool cannot launch any node"
                    % (name, value, what),
                    "raise the limit, or delete the NodePool to disable it",
                )
            )
    return out


_GPU_FAMILY = re.compile(r"^(g|p|gr)[0-9]")
_GPU_KEYS = ("karpenter.k8s.aws/instance-gpu-",)


def _selects_gpu(np, reqs=None):
    for _i, rkey, op, values, _unused in _reqs(np, reqs):
        if rkey.startswith(_GPU_KEYS):
            if op in ("In", "Exists", "Gt", "Gte"):
                if op == "In" and rkey.endswith("-count") and all(v == "0" for v in values):
                    continue
                return True
        elif op == "In":
            if rkey == "karpenter.k8s.aws/instance-category" and any(v in ("g", "p") for v in values):
                return True
            if rkey in ("karpenter.k8s.aws/instance-family", INSTANCE_TYPE_LABEL) and any(
                _GPU_FAMILY.match(v) for v in values
            ):
                return True
    return False


def _rule_gpu_taint(np, ref, reqs=None):
    if not _selects_gpu(np, reqs):
        return []
    taints = _list(_get(np, "spec", "template", "spec", "taints"))
    if any(isinstance(t, dict) and t.get("effect") in ("NoSchedule", "NoExecute") for t in taints):
        return []
    return [
        _issue(
            ref,
            "spec.template.spec.taints",
            "KPL006",
            "the requirements select GPU instances but the pool has no NoSchedule taint: any pending pod can land on "
            "(and keep alive) an expensive GPU node",
            "add taints: [{key: nvidia.com/gpu, effect: NoSchedule}] and a matching toleration on GPU pods",
        )
    ]


def _capacity_types(np, reqs=None, labels=None):
    types = None
    for _i, rkey, op, values, _unused in _reqs(np, reqs):
        if rkey == CAPACITY_TYPE_LABEL and op == "In":
            types = set(values) if types is None else types & set(values)
    label = _labels(np, labels).get(CAPACITY_TYPE_LABEL)
    if label is not None:
        types = {label} if types is None else types & {label}
    return types


def _rule_spot_budget(np, ref, reqs=None, labels=None):
    if _capacity_types(np, reqs, labels) != {"spot"}:
        return []
    if "budgets" in _dict(_get(np, "spec", "disruption")):
        return []
    return [
        _issue(
            ref,
            "spec.disruption.budgets",
            "KPL007",
            "spot-only pool without an explicit disruption budget: on top of spot interruptions, consolidation, "
            "drift and (from v1.15) the repair of unhealthy nodes may disrupt up to the default 10% of its nodes at "
            "any time",
            "set spec.disruption.budgets (e.g. [{nodes: '10%'}, {nodes: '0', schedule: '0 9 * * mon-fri', duration: "
            "8h}])",
        )
    ]


def _rule_never_disrupted(np, ref, defaulted):
    consolidate = _get(defaulted, "spec", "disruption", "consolidateAfter")
    expire = _get(defaulted, "spec", "template", "spec", "expireAfter")
    if consolidate == "Never" and expire == "Never":
        return [
            _issue(
                ref,
                "spec.disruption.consolidateAfter",
                "KPL008",
                "consolidateAfter: Never with expireAfter: Never: nodes are never consolidated nor expired, they run "
                "(and "
                "stay unpatched) until drift or manual deletion",
                "set expireAfter (e.g. 720h) or allow consolidation",
            )
        ]
    return []


# alpha/beta NodePool fields -> v1 location
_LEGACY_SPEC_FIELDS = {
    "ttlSecondsUntilExpired": "spec.template.spec.expireAfter (e.g. 720h)",
    "ttlSecondsAfterEmpty": "spec.disruption {consolidationPolicy: WhenEmpty, consolidateAfter: <N>s}",
    "consolidation": "spec.disruption.consolidationPolicy: WhenEmptyOrUnderutilized",
    "providerRef": "spec.template.spec.nodeClassRef {group: karpenter.k8s.aws, kind: EC2NodeClass, name}",
    "provider": "a separate EC2NodeClass referenced by spec.template.spec.nodeClassRef",
    "kubeletConfiguration": "the EC2NodeClass spec.kubelet",
    "requirements": "spec.template.spec.requirements",
    "taints": "spec.template.spec.taints",
    "startupTaints": "spec.template.spec.startupTaints",
    "labels": "spec.template.metadata.labels",
    "annotations": "spec.template.metadata.annotations",
}


def _rule_legacy_fields(np, ref):
    out = []
    spec = _dict(np.get("spec"))
    for field, target in _LEGACY_SPEC_FIELDS.items():
        if field in spec:
            out.append(
                _issue(
                    ref,
                    join_path("spec", field),
                    "KPL013",
                    "spec.%s is not a v1 NodePool field" % field,
                    "move it to %s" % target,
                )
            )
    if isinstance(spec.get("limits"), dict) and "resources" in spec["limits"]:
        out.append(
            _issue(
                ref,
                "spec.limits.resources",
                "KPL013",
                "spec.limits.resources is the alpha layout",
                "flatten it: spec.limits: {cpu: ..., memory: ...}",
            )
        )
    if "expireAfter" in _dict(spec.get("disruption")):
        out.append(
            _issue(
                ref,
                "spec.disruption.expireAfter",
                "KPL013",
                "disruption.expireAfter is the v1beta1 position",
                "move it to spec.template.spec.expireAfter",
            )
        )
    if "kubelet" in _dict(_get(np, "spec", "template", "spec")):
        out.append(
            _issue(
                ref,
                "spec.template.spec.kubelet",
                "KPL013",
                "kubelet moved from the NodePool to the EC2NodeClass in v1",
                "move it to the EC2NodeClass spec.kubelet",
            )
        )
    return out


def _rule_disruption(np, ref):
    out = []
    disruption = _get(np, "spec", "disruption")
    if not isinstance(disruption, dict):
        return out
    if disruption.get("consolidationPolicy") == "WhenUnderutilized":
        out.append(
            _issue(
                ref,
                "spec.disruption.consolidationPolicy",
                "KPL014",
                "consolidationPolicy WhenUnderutilized is the v1beta1 name",
                "use WhenEmptyOrUnderutilized (with consolidateAfter: 0s for the v1beta1 behaviour)",
            )
        )
    if "consolidateAfter" not in disruption:
        out.append(
            _issue(
                ref,
                "spec.disruption.consolidateAfter",
                "KPL015",
                "a disruption block without consolidateAfter is rejected by Karpenter v1.0-v1.14 (required in the "
                "block); v1.15 defaults it to 0s, so set it to stay valid on older controllers",
                "always set consolidateAfter (0s = v1beta1 behaviour and the v1.15 default)",
            )
        )
    for i, budget in enumerate(_list(disruption.get("budgets"))):
        if (
            isinstance(budget, dict)
            and isinstance(budget.get("nodes"), (int, float))
            and not isinstance(budget.get("nodes"), bool)
        ):
            out.append(
                _issue(
                    ref,
                    join_path(join_path("spec.disruption.budgets", i), "nodes"),
                    "KPL017",
                    "budget nodes must be a string (percent or integer), got the number %s" % budget["nodes"],
                    'quote it: nodes: "%s"' % budget["nodes"],
                )
            )
    return out


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LOOSE_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?|w|weeks?)\s*\Z",
    re.I | re.ASCII,
)
_VALID_DURATION = compile_regex(r"^(([0-9]+(s|m|h))+|Never)$")  # the CRD's pattern


def suggest_duration(value: object) -> str | None:
    """``"30d"`` -> ``"720h"``; None when the text is not a recognisable duration."""
    m = _LOOSE_DURATION.match(str(value))
    if not m:
        return None
    unit = m.group(2).lower()
    unit = {"sec": "s", "secs": "s", "min": "m", "mins": "m", "hr": "h", "hrs": "h"}.get(unit, unit[0])
    seconds = float(m.group(1)) * _DURATION_UNITS[unit]
    if seconds != int(seconds):
        return None
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return "%dh" % (seconds // 3600)
    if seconds % 60 == 0:
        return "%dm" % (seconds // 60)
    return "%ds" % seconds


_BUDGET_DURATION = compile_regex(r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$")  # the CRD's pattern


def _rule_durations(np, ref):
    out = []
    fields = (
        ("spec.template.spec.expireAfter", _get(np, "spec", "template", "spec", "expireAfter")),
        ("spec.template.spec.terminationGracePeriod", _get(np, "spec", "template", "spec", "terminationGracePeriod")),
        ("spec.disruption.consolidateAfter", _get(np, "spec", "disruption", "consolidateAfter")),
    )
    for path, value in fields:
        if isinstance(value, str) and not _VALID_DURATION.match(value):
            suggestion = suggest_duration(value)
            out.append(
                _issue(
                    ref,
                    path,
                    "KPL018",
                    "duration %r is not accepted: only s, m and h units (e.g. 720h, 1h30m) or Never" % value,
                    "use %s" % suggestion if suggestion else None,
                )
            )
    for i, budget in enumerate(_list(_get(np, "spec", "disruption", "budgets"))):
        duration = budget.get("duration") if isinstance(budget, dict) else None
        if isinstance(duration, str) and not _BUDGET_DURATION.match(duration):
            suggestion = suggest_duration(duration)
            out.append(
                _issue(
                    ref,
                    join_path(join_path("spec.disruption.budgets", i), "duration"),
                    "KPL018",
                    "budget duration %r is not accepted: hours and/or minutes only (10m, 8h, 1h30m)" % duration,
                    "use %s" % suggestion if suggestion and not suggestion.endswith("s") else "use minutes or hours",
                )
            )
    return out


def _rule_kubernetes_labels(np, ref, reqs=None, labels=None):
    out = []
    for lkey in _labels(np, labels):
        if is_kubernetes_domain_label(lkey):
            out.append(
                _issue(
                    ref,
                    join_path(LABELS_PATH, key(lkey)),
                    "KPL019",
                    "custom label %s uses a Kubernetes-owned domain: rejected by Karpenter < v1.9 and by kubelet "
                    "--node-labels" % lkey,
                    "use your own domain (example.com/...)",
                )
            )
    for i, rkey, _op, _values, _unused in _reqs(np, reqs):
        if is_kubernetes_domain_label(rkey):
            out.append(
                _issue(
                    ref,
                    join_path(join_path(REQ_PATH, i), "key"),
                    "KPL019",
                    "requirement key %s is a custom key under a Kubernetes-owned domain (rejected by Karpenter < v1.9)"
                    % rkey,
                    "use a well-known label or your own domain",
                )
            )
    return out


def _rule_weight(np, ref):
    if _get(np, "spec", "weight") == 0 and not isinstance(_get(np, "spec", "weight"), bool):
        return [
            _issue(ref, "spec.weight", "KPL020", "weight 0 is rejected (range 1..100)", "omit weight for 'no weight'")
        ]
    return []


def _rule_label_count(np, ref, labels=None):
    n = len(_labels(np, labels)) + len(_list(_get(np, "spec", "template", "spec", "requirements")))
    if n > 100:
        return [
            _issue(
                ref,
                "spec.template",
                "KPL021",
                "%d template labels + requirements; Karpenter allows at most 100 in total" % n,
            )
        ]
    return []


# metav1 validation.TotalAnnotationSizeLimitB: the keys and values of an object's annotations, in bytes
ANNOTATIONS_SIZE_LIMIT = 256 * 1024
ANNOTATIONS_PATH = "spec.template.metadata.annotations"


def _rule_template_annotations(np, ref):
    """Karpenter copies the template's annotations onto every NodeClaim and from there onto the Node; the
    apiserver validates them there (ValidateAnnotations), not on the NodePool: an invalid key, or more
    than 256 KiB in total, and no NodeClaim of the pool can be created."""
    annotations = _get(np, "spec", "template", "metadata", "annotations")
    if not isinstance(annotations, dict):
        return []
    out = []
    size = 0
    for akey, value in annotations.items():
        if not isinstance(akey, str):
            continue
        size += len(akey.encode("utf-8")) + (len(value.encode("utf-8")) if isinstance(value, str) else 0)
        errs = is_qualified_name(akey.lower())  # case does not matter for annotation keys
        if errs:
            out.append(
                _issue(
                    ref,
                    join_path(ANNOTATIONS_PATH, key(akey)),
                    "KPL031",
                    "annotation key %s is not a qualified name (%s): the apiserver refuses every NodeClaim and Node "
                    "of this pool" % (akey, "; ".join(errs)),
                )
            )
    if size > ANNOTATIONS_SIZE_LIMIT:
        out.append(
            _issue(
                ref,
                ANNOTATIONS_PATH,
                "KPL031",
                "the template's annotations total %d bytes (keys and values); an object's annotations may total "
                "at most %d bytes (256 KiB), so the apiserver refuses every NodeClaim and Node of this pool "
                "(Karpenter and the kubelet add some of their own too)" % (size, ANNOTATIONS_SIZE_LIMIT),
                "keep large data out of node annotations (a ConfigMap, or the EC2NodeClass userData)",
            )
        )
    return out


def _rule_name(obj, ref):
    name = _get(obj, "metadata", "name")
    if isinstance(name, str) and is_valid_label_value(name):
        return [
            _issue(
                ref,
                "metadata.name",
                "KPL022",
                "NodePool name %r is used as the value of label karpenter.sh/nodepool and must be a valid label value "
                "(at most 63 characters)" % name,
            )
        ]
    return []


def _rule_provisioner_name_key(np, ref, reqs=None):
    out = []
    for i, rkey, _op, _values, _unused in _reqs(np, reqs):
        if rkey in ("karpenter.sh/provisioner-name", "node.kubernetes.io/instance-family"):
            hint = (
                "karpenter.k8s.aws/instance-family"
                if rkey.endswith("instance-family")
                else "drop it (Karpenter sets karpenter.sh/nodepool itself)"
            )
            out.append(
                _issue(
                    ref,
                    join_path(join_path(REQ_PATH, i), "key"),
                    "KPL030",
                    "%s is not a Karpenter v1 label" % rkey,
                    hint,
                )
            )
    return out


def lint_nodepool(
    np: dict[str, Any],
    defaulted: dict[str, Any] | None = None,
    known_nodeclasses: Collection[str] | None = None,
    strict_nodeclasses: bool = True,
) -> list[Issue]:
    ref = object_ref(np)
    defaulted = defaulted if isinstance(defaulted, dict) else np
    out = []
    reqs = _requirements(np)
    labels = _template_labels(np)
    out += _rule_glob_values(np, ref, reqs)
    out += _rule_zone_label(np, ref, reqs, labels)
    out += _rule_unsatisfiable(np, ref, reqs, labels)
    out += _rule_nodeclass_ref(np, ref, known_nodeclasses, strict_nodeclasses)
    out += _rule_limits(np, ref)
    out += _rule_gpu_taint(np, ref, reqs)
    out += _rule_spot_budget(np, ref, reqs, labels)
    out += _rule_never_disrupted(np, ref, defaulted)
    out += _rule_legacy_fields(np, ref)
    out += _rule_disruption(np, ref)
    out += _rule_durations(np, ref)
    out += _rule_kubernetes_labels(np, ref, reqs, labels)
    out += _rule_weight(np, ref)
    out += _rule_label_count(np, ref, labels)
    out += _rule_template_annotations(np, ref)
    out += _rule_name(np, ref)
    out += _rule_provisioner_name_key(np, ref, reqs)
    return out


# ---------------------------------------------------------------------------------------------
# EC2NodeClass rules


# EC2 allows 50 user tags per resource. Besides spec.tags, karpenter-provider-aws v1.15.0 tags every
# instance (and its volumes, network interfaces and launch template) at launch with the 4 tags of
# pkg/utils.GetTags, and once the node registered, the nodeclaim tagging controller adds Name (unless
# the instance has one already, i.e. spec.tags sets it) and karpenter.sh/nodeclaim
# (pkg/controllers/nodeclaim/tagging). spec.tags cannot set the others (restricted-tag).
EC2_TAG_LIMIT = 50
KARPENTER_LAUNCH_TAGS = (
    "kubernetes.io/cluster/<cluster>",
    "karpenter.sh/nodepool",
    "eks:eks-cluster-name",
    "karpenter.k8s.aws/ec2nodeclass",
)
KARPENTER_REGISTRATION_TAGS = ("Name", "karpenter.sh/nodeclaim")


def _rule_tag_count(spec, ref):
    tags = {k for k in _dict(spec.get("tags")) if isinstance(k, str)}
    # a restricted key is replaced by Karpenter's own (and reported by the validation)
    own = {k for k in tags if not k.startswith("kubernetes.io/cluster/")} - set(KARPENTER_LAUNCH_TAGS)
    karpenter = set(KARPENTER_LAUNCH_TAGS) | set(KARPENTER_REGISTRATION_TAGS)
    total = len(own | karpenter)
    if total <= EC2_TAG_LIMIT:
        return []
    later = [t for t in KARPENTER_REGISTRATION_TAGS if t not in own]
    return [
        _issue(
            ref,
            "spec.tags",
            "KPL032",
            "%d tags on each instance: %d from spec.tags plus the ones Karpenter adds (%s at launch, %s once the "
            "node registered); EC2 allows %d per resource, so launches (CreateFleet) or the tagging of the "
            "instance fail" % (total, len(own), ", ".join(KARPENTER_LAUNCH_TAGS), " and ".join(later), EC2_TAG_LIMIT),
            "keep spec.tags to %d keys (%d with a Name tag of your own)"
            % (EC2_TAG_LIMIT - len(karpenter), EC2_TAG_LIMIT - len(karpenter) + 1),
        )
    ]


def lint_ec2nodeclass(nc: dict[str, Any], defaulted: dict[str, Any] | None = None) -> list[Issue]:
    ref = object_ref(nc)
    out = []
    spec = _dict(nc.get("spec"))
    if spec.get("amiFamily") == "Ubuntu":
        out.append(
            _issue(
                ref,
                "spec.amiFamily",
                "KPL016",
                "amiFamily Ubuntu was removed in v1",
                "use AL2023 (alias al2023@<version>), or amiFamily AL2/Custom with explicit amiSelectorTerms",
            )
        )
    al2 = spec.get("amiFamily") == "AL2"
    for i, term in enumerate(_list(spec.get("amiSelectorTerms"))):
        alias = term.get("alias") if isinstance(term, dict) else None
        if not isinstance(alias, str) or "@" not in alias:
            continue
        family, version = alias.split("@", 1)
        path = join_path(join_path("spec.amiSelectorTerms", i), "alias")
        if version == "latest" and not family.startswith("windows"):
            out.append(
                _issue(
                    ref,
                    path,
                    "KPL023",
                    "alias %s follows the newest AMI: every release drifts (replaces) every node of this class" % alias,
                    "pin a version, e.g. %s@v20240807" % family,
                )
            )
        if family == "al2":
            al2 = True
    if al2:
        out.append(
            _issue(
                ref,
                "spec.amiFamily" if spec.get("amiFamily") == "AL2" else "spec.amiSelectorTerms",
                "KPL024",
                "AL2: EKS publishes AL2 AMIs only up to Kubernetes 1.32",
                "move to AL2023 (userData becomes a NodeConfig document)",
            )
        )
    out += _rule_tag_count(spec, ref)
    for tkey in _dict(spec.get("tags")):
        if tkey in ("karpenter.sh/provisioner-name", "karpenter.sh/managed-by"):
            out.append(
                _issue(
                    ref,
                    join_path("spec.tags", key(tkey)),
                    "KPL025",
                    "tag %s is an alpha-era tag; v1 tags instances with karpenter.sh/nodepool and eks:eks-cluster-name"
                    % tkey,
                    "drop it and update IAM conditions that use it",
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# other objects of the original design

_LEGACY_KINDS = {
    ("karpenter.sh/v1alpha5", "Provisioner"): "NodePool (karpenter.sh/v1)",
    ("karpenter.sh/v1alpha5", "Machine"): "NodeClaim (karpenter.sh/v1, created by Karpenter)",
    ("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate"): "EC2NodeClass (karpenter.k8s.aws/v1)",
    ("karpenter.sh/v1beta1", "NodePool"): "NodePool (karpenter.sh/v1)",
    ("karpenter.sh/v1beta1", "NodeClaim"): "NodeClaim (karpenter.sh/v1)",
    ("karpenter.k8s.aws/v1beta1", "EC2NodeClass"): "EC2NodeClass (karpenter.k8s.aws/v1)",
}


def _lint_legacy(obj, ref):
    target = _LEGACY_KINDS.get(_kind(obj))
    if target is None:
        return []
    msg = '%s %s is not served by Karpenter v1 ("no matches for kind")' % _kind(obj)
    spec = _dict(obj.get("spec"))
    if (
        _kind(obj)[1] == "Provisioner"
        and "ttlSecondsAfterEmpty" in spec
        and _get(spec, "consolidation", "enabled") is True
    ):
        msg += "; it also sets both ttlSecondsAfterEmpty and consolidation.enabled (rejected even in v1alpha5)"
    return [_issue(ref, "apiVersion", "KPL011", msg, "convert it to %s with karpenter_convert" % target)]


def _lint_psp(obj, ref):
    api_version, kind = _kind(obj)
    if kind == "PodSecurityPolicy" or api_version == "policy/v1beta1":
        return [
            _issue(
                ref,
                "kind",
                "KPL012",
                "%s %s: PodSecurityPolicy and policy/v1beta1 were removed in Kubernetes 1.25" % (api_version, kind),
                "use Pod Security Admission namespace labels (pod-security.kubernetes.io/enforce: restricted|baseline)",
            )
        ]
    return []


# old metric name (regex) -> replacement
OBSOLETE_METRICS = (
    (r"karpenter_provisioner_usage_pct", "karpenter_nodepools_usage / karpenter_nodepools_limit"),
    (r"karpenter_provisioner_(usage|limit)\b", "karpenter_nodepools_usage / karpenter_nodepools_limit"),
    (r"karpenter_nodepool_(usage|limit)\b", "karpenter_nodepools_usage / karpenter_nodepools_limit"),
    (
        r"karpenter_provisioner_scheduling_simulation_duration_seconds",
        "karpenter_scheduler_scheduling_duration_seconds",
    ),
    (r"karpenter_provisioner_scheduling_queue_depth", "karpenter_scheduler_queue_depth"),
    (r"karpenter_provisioner_scheduling_duration_seconds", "(dropped)"),
    (r"karpenter_provisioner_\w+", "karpenter_nodepools_* / karpenter_scheduler_*"),
    (r"karpenter_machines_\w+", "karpenter_nodeclaims_*_total"),
    (r"karpenter_deprovisioning_\w+", "karpenter_voluntary_disruption_*"),
    (r"karpenter_disruption_actions_performed_total", "karpenter_voluntary_disruption_decisions_total"),
    (
        r"karpenter_disruption_evaluation_duration_seconds",
        "karpenter_voluntary_disruption_decision_evaluation_duration_seconds",
    ),
    (r"karpenter_disruption_eligible_nodes", "karpenter_voluntary_disruption_eligible_nodes"),
    (
        r"karpenter_disruption_consolidation_timeouts_total",
        "karpenter_voluntary_disruption_consolidation_timeouts_total",
    ),
    (r"karpenter_disruption_budgets_allowed_disruptions", "karpenter_nodepools_allowed_disruptions"),
    (r"karpenter_nodes_(created|terminated)(?!_total)\b", "karpenter_nodes_{created,terminated}_total"),
    (r"karpenter_nodes_termination_time_seconds", "karpenter_nodes_termination_duration_seconds"),
    (r"karpenter_nodeclaims_(created|terminated|disrupted)(?!_total)\b", "karpenter_nodeclaims_*_total"),
    (r"karpenter_pods_startup_time_seconds", "karpenter_pods_startup_duration_seconds"),
    (r"karpenter_pods_pods_drained_total", "karpenter_pods_drained_total"),
    (r"karpenter_interruption_received_messages(?!_total)\b", "karpenter_interruption_received_messages_total"),
    (r"karpenter_interruption_deleted_messages(?!_total)\b", "karpenter_interruption_deleted_messages_total"),
    (r"karpenter_interruption_message_latency_time_seconds", "karpenter_interruption_message_queue_duration_seconds"),
    (
        r"karpenter_cloudprovider_instance_type_price_estimate",
        "karpenter_cloudprovider_instance_type_offering_price_estimate",
    ),
    (r"karpenter_ignored_pod_count", "karpenter_scheduler_ignored_pods_count"),
    (r"karpenter_allocation_controller_\w+", "(gone)"),
    (r"\bprovisioner=", "label nodepool"),
)
_OBSOLETE_METRICS_RX = [(re.compile(p), r) for p, r in OBSOLETE_METRICS]


def find_obsolete_metrics(text: str | None) -> list[tuple[str, str]]:
    """``[(name, replacement)]`` for pre-v1 Karpenter metric names found in a PromQL/dashboard text."""
    found = []
    seen = set()
    for rx, replacement in _OBSOLETE_METRICS_RX:
        for m in rx.finditer(text or ""):
            name = m.group(0)
            if any(name in s for s in seen):
                continue
            seen.add(name)
            found.append((name, replacement))
    return found


def _lint_prometheus_rule(obj, ref):
    if _kind(obj)[1] != "PrometheusRule":
        return []
    out = []
    for gi, group in enumerate(_list(_get(obj, "spec", "groups"))):
        for ri, rule in enumerate(_list(_dict(group).get("rules"))):
            expr = _dict(rule).get("expr")
            if not isinstance(expr, str):
                continue
            path = "spec.groups[%d].rules[%d].expr" % (gi, ri)
            for name, replacement in find_obsolete_metrics(expr):
                out.append(
                    _issue(
                        ref, path, "KPL027", "metric %s does not exist in Karpenter v1" % name, "use %s" % replacement
                    )
                )
    return out


# ---------------------------------------------------------------------------------------------
# helpers for non-Kubernetes inputs


def lint_controller_policy(doc: dict[str, Any] | list[dict[str, Any]], name: str = "ControllerPolicy") -> list[Issue]:
    """Lint one or more IAM policy documents (dict or list) of the Karpenter controller (KPL028)."""
    docs = doc if isinstance(doc, list) else [doc]
    text = repr(docs)
    ref = "IAMPolicy/%s" % name
    out = []
    for old in ("karpenter.sh/provisioner-name", "karpenter.sh/managed-by"):
        if old in text:
            out.append(
                _issue(
                    ref,
                    "Statement",
                    "KPL028",
                    "condition on %s: v1 tags resources with karpenter.sh/nodepool, eks:eks-cluster-name, "
                    "karpenter.sh/nodeclaim "
                    "and karpenter.k8s.aws/ec2nodeclass, so dry-runs and deletions are denied" % old,
                    "use the conditions of the v1 getting-started policies",
                )
            )
    actions = set()
    for d in docs:
        for st in (
            _list(_dict(d).get("Statement"))
            if isinstance(_dict(d).get("Statement"), list)
            else [_dict(d).get("Statement")]
        ):
            if isinstance(st, dict) and st.get("Effect", "Allow") == "Allow":
                acts = st.get("Action")
                for a in acts if isinstance(acts, list) else [acts]:
                    if isinstance(a, str):
                        actions.add(a)
    if "*" not in actions:
        missing = []
        for action in V1_NEW_ACTIONS:
            service = action.split(":", maxsplit=1)[0]
            if action not in actions and "%s:*" % service not in actions:
                missing.append(action)
        if missing:
            out.append(_issue(ref, "Statement", "KPL028", "missing v1 controller permissions: %s" % ", ".join(missing)))
    return out


def _blank(value):
    """A Helm value that is not set: absent, null, or a string of blanks."""
    return value is None or (isinstance(value, str) and not value.strip())


def lint_helm_values(values: object, name: str = "karpenter") -> list[Issue]:
    """Lint Helm values of the karpenter chart (v1.15 layout) (KPL029): pre-v1 settings (warnings), no
    ``settings.clusterName`` (error: the chart refuses to render and the controller does not start without it), a
    top-level ``resources`` (error: the chart ignores it, the controller's are ``controller.resources``), no
    ``settings.interruptionQueue`` and no ``controller.resources.requests`` (warnings)."""
    ref = "HelmValues/%s" % name
    out = []
    settings = _dict(_dict(values).get("settings"))
    if _blank(settings.get("clusterName")):
        out.append(
            _issue(
                ref,
                "settings.clusterName",
                "KPL029",
                "settings.clusterName is not set: the chart cannot be installed and the controller does not start "
                "without it",
                "the EKS cluster's name",
                severity=ERROR,
            )
        )
    if _blank(settings.get("interruptionQueue")):
        out.append(
            _issue(
                ref,
                "settings.interruptionQueue",
                "KPL029",
                "settings.interruptionQueue is not set: spot interruptions, rebalance recommendations, scheduled "
                "maintenance and instance state changes are not handled (nodes vanish without a drain)",
                "the name of the SQS queue the EventBridge rules send to",
            )
        )
    if "resources" in _dict(values):
        out.append(
            _issue(
                ref,
                "resources",
                "KPL029",
                "top-level resources is ignored by the chart: the controller gets no requests or limits from it",
                "controller.resources",
                severity=ERROR,
            )
        )
    resources = _dict(_get(values, "controller", "resources"))
    if not resources.get("requests"):
        out.append(
            _issue(
                ref,
                "controller.resources.requests",
                "KPL029",
                "controller.resources.requests is not set (recommended: 1 CPU and 1Gi)%s"
                % ("" if resources.get("limits") else ": the controller pods are BestEffort, the first evicted"),
                "controller.resources: {requests: {cpu: '1', memory: 1Gi}, limits: {cpu: '1', memory: 1Gi}}",
            )
        )
    if "aws" in settings:
        out.append(
            _issue(
                ref,
                "settings.aws",
                "KPL029",
                "settings.aws.* was removed",
                "settings.clusterName, settings.clusterEndpoint, settings.interruptionQueue",
            )
        )
    if "defaultInstanceProfile" in repr(values):
        out.append(
            _issue(
                ref,
                "settings.aws.defaultInstanceProfile",
                "KPL029",
                "defaultInstanceProfile is gone",
                "set EC2NodeClass role/instanceProfile",
            )
        )
    if "webhook" in _dict(values):
        out.append(_issue(ref, "webhook", "KPL029", "webhooks were removed in Karpenter v1.1"))
    if "charts.karpenter.sh" in repr(values):
        out.append(
            _issue(
                ref, "", "KPL029", "repository charts.karpenter.sh is gone", "oci://public.ecr.aws/karpenter/karpenter"
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# entry points


def lint(
    obj: object,
    defaulted: dict[str, Any] | None = None,
    known_nodeclasses: Collection[str] | None = None,
    strict_nodeclasses: bool = True,
) -> list[Issue]:
    """Lint one object; returns a list of Issues (source ``lint``)."""
    if not isinstance(obj, dict):
        return []
    kind = _kind(obj)
    if kind == NODEPOOL:
        return lint_nodepool(obj, defaulted, known_nodeclasses, strict_nodeclasses)
    if kind == EC2NODECLASS:
        return lint_ec2nodeclass(obj, defaulted)
    ref = object_ref(obj)
    return _lint_legacy(obj, ref) + _lint_psp(obj, ref) + _lint_prometheus_rule(obj, ref)


def lint_batch(
    objs: Iterable[Any] | None,
    known_nodeclasses: Iterable[str] | None = None,
    defaulted: Iterable[dict[str, Any] | None] | None = None,
) -> list[list[Issue]]:
    """Lint a batch; returns one list of Issues per object (same order).

    NodePool -> EC2NodeClass references are checked against the batch's EC2NodeClasses plus
    ``known_nodeclasses``: an unknown reference is an error when ``known_nodeclasses`` is given
    (the caller knows the cluster's classes), a warning when only the batch is known.
    """
    objs = list(objs or [])
    defaulted = list(defaulted) if defaulted is not None else [None] * len(objs)
    batch_classes = set()
    for obj in objs:
        if _kind(obj) == EC2NODECLASS and isinstance(_get(obj, "metadata", "name"), str):
            batch_classes.add(obj["metadata"]["name"])
    if known_nodeclasses is not None:
        known, strict = batch_classes | set(known_nodeclasses), True
    elif batch_classes:
        known, strict = batch_classes, False
    else:
        known, strict = None, False
    results = []
    seen = {}
    for i, obj in enumerate(objs):
        issues = lint(obj, defaulted[i] if i < len(defaulted) else None, known, strict)
        ref = object_ref(obj, i)
        name = _get(obj, "metadata", "name")
        if isinstance(name, str) and name:  # a name that is not a string is a schema error, not a duplicate
            ident = _kind(obj) + (name,)
            if ident in seen:
                issues.append(
                    _issue(
                        ref,
                        "metadata.name",
                        "KPL026",
                        "%s appears more than once in the batch (first at index %d)" % (ref, seen[ident]),
                    )
                )
            else:
                seen[ident] = i
        # object_ref with the index for unnamed objects
        for issue in issues:
            if not issue.object_ref or issue.object_ref.endswith("<unnamed>"):
                issue.object_ref = ref
        results.append(issues)
    return results
