# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline validation of Karpenter v1 objects: ``validate(obj, old=None)`` and ``validate_batch(objs)``.

For NodePool (``karpenter.sh/v1``) and EC2NodeClass (``karpenter.k8s.aws/v1``) this runs, in the
apiserver's order, unknown-field pruning, defaulting, structural schema validation, ObjectMeta
checks and the CRD's CEL rules (``schema``, ``cel``), then the runtime validation Karpenter's
controllers apply after admission (``RuntimeValidate``: restricted label domains, label-value
syntax of requirement values, taint syntax and duplicates, well-known values, numeric operators;
the EC2NodeClass controller's checks of the open ``spec.kubelet`` map, see ``kubelet``), which the
CRD alone does not catch but which make a NodePool or EC2NodeClass ``NotReady``, and an EC2NodeClass
without a spec (which the CRD accepts and which cannot launch anything).

``validate_batch`` adds the linter (``lint``) over the whole batch and reports ``ok`` when no
object has an error.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from . import cel as cel_mod
from . import fastpath, golang
from . import kubelet as kubelet_mod
from . import schema as schema_mod
from .issues import ERROR, WARNING, Issue, join_path, key, object_ref
from .labels import (
    NODEPOOL_LABEL,
    NORMALIZED_LABELS,
    NUMERIC_OPERATORS,
    SUPPORTED_OPERATORS,
    WELL_KNOWN_VALUES,
    is_qualified_name,
    is_restricted_label,
    is_restricted_tag,
    is_valid_label_value,
)

# validate() takes fastpath (one pass, compiled CEL rules) whenever it gives the same result as the
# separate prune / defaults / schema / cel.evaluate passes; False forces those passes (tests compare both).
FAST_PATH = True

NODEPOOL = ("karpenter.sh/v1", "NodePool")
EC2NODECLASS = ("karpenter.k8s.aws/v1", "EC2NodeClass")
SUPPORTED = (NODEPOOL, EC2NODECLASS)

# apiVersion/kind pairs that Karpenter no longer serves, with the hint to use convert().
LEGACY = {
    ("karpenter.sh/v1alpha5", "Provisioner"): "not served since Karpenter v0.33",
    ("karpenter.sh/v1alpha5", "Machine"): "not served since Karpenter v0.33",
    ("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate"): "not served since Karpenter v0.33",
    ("karpenter.sh/v1beta1", "NodePool"): "not served since Karpenter v1.1.0",
    ("karpenter.sh/v1beta1", "NodeClaim"): "not served since Karpenter v1.1.0",
    ("karpenter.k8s.aws/v1beta1", "EC2NodeClass"): "not served since Karpenter v1.1.0",
}


class ValidationResult:
    """Outcome of validating one object."""

    def __init__(
        self,
        obj: object,
        object_ref_: str,
        api_version: str | None,
        kind: str | None,
        defaulted: dict[str, Any] | None,
        issues: Iterable[Issue],
    ) -> None:
        self.object = obj
        self.object_ref = object_ref_
        self.api_version = api_version
        self.kind = kind
        self.defaulted = defaulted
        self.issues = list(issues)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, issues: Iterable[Issue]) -> None:
        self.issues.extend(issues)

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object_ref,
            "apiVersion": self.api_version,
            "kind": self.kind,
            "ok": self.ok,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
            "defaulted": self.defaulted,
        }

    def __repr__(self):
        return "ValidationResult(%s, errors=%d, warnings=%d)" % (self.object_ref, len(self.errors), len(self.warnings))


class BatchResult:
    """Outcome of ``validate_batch``: one ValidationResult per input object (same order)."""

    def __init__(self, results: Iterable[ValidationResult]) -> None:
        self.results = list(results)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def errors(self) -> list[Issue]:
        return [i for r in self.results for i in r.errors]

    @property
    def warnings(self) -> list[Issue]:
        return [i for r in self.results for i in r.warnings]

    def __iter__(self):
        return iter(self.results)

    def __len__(self):
        return len(self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error_count": len(self.errors),
            "warning_count": len(self.warnings),
            "results": [r.to_dict() for r in self.results],
        }


def kind_of(obj: object) -> tuple[str | None, str | None]:
    """``(apiVersion, kind)`` of an object; non-string values are returned as None."""
    if not isinstance(obj, dict):
        return None, None
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    return (api_version if isinstance(api_version, str) else None), (kind if isinstance(kind, str) else None)


def default(obj: Any) -> Any:
    """Return a pruned and defaulted copy of a v1 NodePool/EC2NodeClass (unchanged copy otherwise)."""
    schema = schema_mod.schema_for(*kind_of(obj))
    if schema is None:
        return copy.deepcopy(obj)
    walk = fastpath.run(obj, schema) if FAST_PATH else None
    if walk is not None:
        return walk[0]
    pruned, unused = schema_mod.prune(obj, schema)
    return schema_mod.apply_defaults(pruned, schema, copy_obj=False)


def validate(obj: object, old: object = None, index: int | None = None, stored: bool = False) -> ValidationResult:
    """Validate one object; ``old`` (the live object) enables the CRDs' transition rules.

    ``stored=True`` says the defaulted object is exactly what the apiserver already stores (the
    caller compared it with the live object): the CRD admitted it, and no request will be sent for
    it, so its CEL rules are not evaluated again (the costly part); everything else still runs.

    Returns a :class:`ValidationResult` with ``errors``, ``warnings`` and ``defaulted`` (the
    object as the apiserver would store it: unknown fields pruned, defaults applied, no status).
    """
    return _validate(obj, old, stored, object_ref(obj, index), *kind_of(obj))


def _validate(obj, old, stored, ref, api_version, kind):
    if not isinstance(obj, dict):
        issue = Issue(ref, "", "type", "Invalid value: an object (mapping) is required")
        return ValidationResult(obj, ref, None, None, None, [issue])
    schema = schema_mod.schema_for(api_version, kind)
    if schema is None:
        return ValidationResult(obj, ref, api_version, kind, None, [_unsupported_issue(ref, api_version, kind, obj)])

    # status is reset by the apiserver (status subresource): neither pruned nor validated
    stripped = {k: v for k, v in obj.items() if k != "status"}
    walk = fastpath.run(stripped, schema, ref) if FAST_PATH else None
    if walk is not None:  # the same object and issues as the three calls below, in one pass
        defaulted, walk = walk
        issues = walk.P + walk.V
    else:
        pruned, issues = schema_mod.prune(stripped, schema, ref)
        defaulted = schema_mod.apply_defaults(pruned, schema, copy_obj=False)
        issues.extend(schema_mod.validate_schema(defaulted, schema, ref))

    old_defaulted = None
    if old is not None:
        if kind_of(old) == (api_version, kind):
            old_defaulted = default(old)
        else:
            issues.append(
                Issue(
                    ref, "", "old", "old object is not a %s %s; transition rules skipped" % (api_version, kind), WARNING
                )
            )

    error_paths = [i.path for i in issues if i.severity == ERROR]
    if stored:
        pass
    elif cel_mod.HAS_CELPY:
        if old_defaulted is None and fastpath.cel_ready(walk):
            issues.extend(fastpath.cel_issues(walk, error_paths))
        else:
            issues.extend(cel_mod.evaluate(defaulted, schema, old_defaulted, ref, error_paths))
    else:
        issues.append(
            Issue(
                ref,
                "",
                "cel-unavailable",
                "the CRD's CEL rules were not evaluated: cel-python (import celpy) is not installed",
                WARNING,
                "validate",
            )
        )

    if (api_version, kind) == NODEPOOL:
        runtime = runtime_validate_nodepool(defaulted, ref)
    else:
        runtime = runtime_validate_ec2nodeclass(defaulted, ref, original=obj)
    error_paths = set(i.path for i in issues if i.severity == ERROR)
    issues.extend(i for i in runtime if not _reported_by_apiserver(i, error_paths))
    issues.extend(size_issues(obj, ref))
    return ValidationResult(obj, ref, api_version, kind, defaulted, _dedupe(issues))


# kube-apiserver --max-request-bytes default (MaxRequestBodyBytes): a larger body gets 413, dry-run included
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
# etcd --max-request-bytes default: a larger write fails with "etcdserver: request is too large" (500)
ETCD_MAX_REQUEST_BYTES = 1536 * 1024
# what the apiserver adds to the stored object (uid, timestamps, generation, managedFields), kept free
STORED_OBJECT_RESERVE = 8 * 1024
MAX_STORED_OBJECT_BYTES = ETCD_MAX_REQUEST_BYTES - STORED_OBJECT_RESERVE


def serialized_size(obj: object) -> int:
    """Bytes of the object as compact UTF-8 JSON (the smallest body a client sends; CRs are stored as JSON)."""
    try:
        text = json.dumps(obj, separators=(",", ":"), default=str)
    except (TypeError, ValueError):  # e.g. mixed-type keys: not sendable as it is; other checks report it
        return 0
    # ensure_ascii output is at least the UTF-8 size (a \uXXXX escape is 6 bytes, the character at most 4)
    if len(text) <= MAX_STORED_OBJECT_BYTES:
        return len(text)
    return len(json.dumps(obj, separators=(",", ":"), default=str, ensure_ascii=False).encode("utf-8"))


def size_issues(obj: object, ref: str = "") -> list[Issue]:
    """The object cannot be written whole: request body over the apiserver's limit (413, even on a
    dry-run) or stored object over etcd's request limit (the create/update fails after a dry-run passed)."""
    size = serialized_size(obj)
    if size > MAX_REQUEST_BODY_BYTES:
        return [
            Issue(
                ref,
                "",
                "request-size",
                "Request entity too large: the object is %d bytes as JSON, the apiserver's request body limit is "
                "%d bytes (3 MiB); the apiserver refuses it with 413, even on a dry-run"
                % (size, MAX_REQUEST_BODY_BYTES),
            )
        ]
    if size > MAX_STORED_OBJECT_BYTES:
        return [
            Issue(
                ref,
                "",
                "object-size",
                "object too large to store: %d bytes as JSON; etcd refuses writes over %d bytes (1.5 MiB, "
                '"etcdserver: request is too large") and the apiserver adds metadata and managedFields, so keep it '
                "under %d bytes (a dry-run does not reach etcd and still passes)"
                % (size, ETCD_MAX_REQUEST_BYTES, MAX_STORED_OBJECT_BYTES),
                source="storage",
            )
        ]
    return []


# runtime rule -> apiserver error paths that already report the same problem ("." = the issue's
# own path); the runtime check never runs on an object the apiserver rejected.
_LABELS_PATH = "spec.template.metadata.labels"
_REQUIREMENTS_PATH = "spec.template.spec.requirements"
_SAME_PROBLEM = {
    "operator": (".",),
    "restricted-label": (".", _LABELS_PATH),
    "label-key": (".",),
    "label-value": (".",),
    "values": (_REQUIREMENTS_PATH,),
    "minValues": (_REQUIREMENTS_PATH,),
    "numeric-operator": (_REQUIREMENTS_PATH,),
    "taint-key": (".",),
    "taint-value": (".",),
    "taint-effect": (".",),
    "spec-required": (".",),
    "duration-range": (".",),
    "expire-after-zero": (".",),
    "time-added": (".",),
}


def _reported_by_apiserver(issue, error_paths):
    for p in _SAME_PROBLEM.get(issue.rule, ()):
        if (issue.path if p == "." else p) in error_paths:
            return True
    return False


def _dedupe(issues):
    seen = set()
    out = []
    for i in issues:
        k = (i.path, i.rule, i.message, i.severity)
        if k not in seen:
            seen.add(k)
            out.append(i)
    return out


def _unsupported_issue(ref, api_version, kind, obj):
    legacy = LEGACY.get((api_version, kind))
    if legacy:
        msg = '%s %s is %s ("no matches for kind"); convert it to v1 first (convert() / karpenter_convert)' % (
            api_version,
            kind,
            legacy,
        )
        return Issue(ref, "apiVersion", "unsupported-kind", msg)
    if not api_version or not kind:
        field = "apiVersion" if not api_version else "kind"
        message = "Required value: apiVersion and kind are required"
        value = obj.get(field)
        if value is not None and not isinstance(value, str):
            message += ' (Invalid value: "%s": must be of type string)' % schema_mod.type_name(value)
        return Issue(ref, field, "required", message)
    return Issue(
        ref,
        "kind",
        "unsupported-kind",
        "%s %s is not a Karpenter v1 kind this validator knows (NodePool karpenter.sh/v1, EC2NodeClass "
        "karpenter.k8s.aws/v1)" % (api_version, kind),
    )


# --------------------------------------------------------------------------------------------
# runtime validation (kubernetes-sigs/karpenter pkg/apis/v1/nodepool_validation.go, nodeclaim_validation.go)


def _runtime(ref, path, rule, message):
    return Issue(ref, path, rule, message, source="runtime")


def runtime_validate_nodepool(np: dict[str, Any], ref: str = "") -> list[Issue]:
    """Port of ``NodePool.RuntimeValidate()`` (condition ValidationSucceeded) for a defaulted NodePool."""
    issues = []
    spec = np.get("spec") if isinstance(np.get("spec"), dict) else {}
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    tmeta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    tspec = template.get("spec") if isinstance(template.get("spec"), dict) else {}

    labels = tmeta.get("labels")
    if isinstance(labels, dict):
        base = "spec.template.metadata.labels"
        for k, v in labels.items():
            if not isinstance(k, str):
                continue
            found = []  # (rule, message); the path is built only when something is found
            if k == NODEPOOL_LABEL:
                found.append(("restricted-label", "invalid key name %s: restricted" % k))
            for err in is_qualified_name(k):
                found.append(("label-key", "invalid key name %s: %s" % (k, err)))
            if isinstance(v, str):
                for err in is_valid_label_value(v):
                    found.append(("label-value", "invalid value: %s, %s" % (v, err)))
            restricted = is_restricted_label(k)
            if restricted:
                found.append(("restricted-label", restricted))
            if found:
                p = join_path(base, key(k))
                issues.extend(_runtime(ref, p, rule, message) for rule, message in found)

    existing = set()
    for field in ("taints", "startupTaints"):
        taints = tspec.get(field)
        if not isinstance(taints, list):
            continue
        for i, taint in enumerate(taints):
            if not isinstance(taint, dict):
                continue
            p = join_path("spec.template.spec.%s" % field, i)
            tkey = taint.get("key") if isinstance(taint.get("key"), str) else ""
            tval = taint.get("value") if isinstance(taint.get("value"), str) else ""
            effect = taint.get("effect") if isinstance(taint.get("effect"), str) else ""
            if not tkey:
                issues.append(_runtime(ref, join_path(p, "key"), "taint-key", "invalid value: taint key is required"))
            else:
                for err in is_qualified_name(tkey):
                    issues.append(_runtime(ref, join_path(p, "key"), "taint-key", "invalid value: %s" % err))
            if tval:
                for err in is_qualified_name(tval):
                    issues.append(_runtime(ref, join_path(p, "value"), "taint-value", "invalid value: %s" % err))
            if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute", ""):
                issues.append(_runtime(ref, join_path(p, "effect"), "taint-effect", "invalid value: %s" % effect))
            pair = (tkey, effect)
            if pair in existing:
                issues.append(_runtime(ref, p, "duplicate-taint", "duplicate taint Key/Effect pair %s=%s" % pair))
            existing.add(pair)

    issues.extend(_duration_issues(spec, tspec, ref))
    issues.extend(_time_added_issues(tspec, ref))

    reqs = tspec.get("requirements")
    if isinstance(reqs, list):
        for i, req in enumerate(reqs):
            if isinstance(req, dict):
                found = validate_requirement(req)
                restricted = req.get("key") == NODEPOOL_LABEL
                if found or restricted:
                    p = join_path("spec.template.spec.requirements", i)
                    issues.extend(_runtime(ref, p + sub, rule, msg) for rule, sub, msg in found)
                    if restricted:
                        issues.append(_runtime(ref, p, "restricted-label", "%s is restricted" % NODEPOOL_LABEL))
    return issues


def _duration_fields(spec, tspec):
    """``(path, value)`` of every NodePool duration Karpenter decodes with Go's ``time.ParseDuration``."""
    yield "spec.template.spec.expireAfter", tspec.get("expireAfter")
    yield "spec.template.spec.terminationGracePeriod", tspec.get("terminationGracePeriod")
    disruption = spec.get("disruption") if isinstance(spec.get("disruption"), dict) else {}
    yield "spec.disruption.consolidateAfter", disruption.get("consolidateAfter")
    budgets = disruption.get("budgets")
    for i, budget in enumerate(budgets if isinstance(budgets, list) else ()):
        if isinstance(budget, dict):
            yield join_path(join_path("spec.disruption.budgets", i), "duration"), budget.get("duration")


_MAX_DURATION_TEXT = "2562047h47m16.854775807s (about 292 years, Go's time.Duration)"


def _duration_issues(spec, tspec, ref):
    """Durations the CRD's patterns accept but Karpenter cannot decode (past Go's ``time.Duration`` range:
    the NodePool list then fails to decode and no NodePool provisions anything), and ``expireAfter: 0s``."""
    out = []
    for path, value in _duration_fields(spec, tspec):
        if not isinstance(value, str) or value == "Never":
            continue
        try:
            nanos = kubelet_mod.parse_go_duration(value)
        except ValueError as exc:
            out.append(
                _runtime(
                    ref,
                    path,
                    "duration-range",
                    "Invalid value: %s: %s; Karpenter parses it as a Go time.Duration, whose limit is %s: "
                    "a NodePool holding it cannot be decoded, so Karpenter fails to list NodePools and none "
                    "provisions" % (schema_mod.fmt_value(value), exc, _MAX_DURATION_TEXT),
                )
            )
            continue
        if nanos == 0 and path == "spec.template.spec.expireAfter":
            out.append(
                _runtime(
                    ref,
                    path,
                    "expire-after-zero",
                    "Invalid value: %s: nodes would expire as soon as they launch, so Karpenter replaces them in a "
                    'loop; use "Never" to disable expiry or a positive duration such as 720h'
                    % schema_mod.fmt_value(value),
                )
            )
    return out


def _time_added_issues(tspec, ref):
    """Taint ``timeAdded`` values the apiserver's date-time check accepts (lower-case ``t``/``z``, any
    fraction separator, an offset of ``+25:99``) but Karpenter's ``metav1.Time`` decoding (Go
    ``time.Parse(time.RFC3339)``) refuses: the NodePool could not be decoded."""
    out = []
    for field in ("taints", "startupTaints"):
        taints = tspec.get(field)
        for i, taint in enumerate(taints if isinstance(taints, list) else ()):
            value = taint.get("timeAdded") if isinstance(taint, dict) else None
            if isinstance(value, str) and value and not golang.parse_rfc3339(value):
                out.append(
                    _runtime(
                        ref,
                        join_path(join_path("spec.template.spec.%s" % field, i), "timeAdded"),
                        "time-added",
                        "Invalid value: %s: Karpenter decodes it with Go time.Parse(RFC3339), which refuses it; write "
                        "it as 2006-01-02T15:04:05Z (upper-case T and Z, or an offset +hh:mm)"
                        % schema_mod.fmt_value(value),
                    )
                )
    return out


def validate_requirement(req: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Port of ``ValidateRequirement``: list of ``(rule, sub_path, message)`` for one requirement
    (``sub_path`` is relative to the requirement, e.g. ``.values[0]``)."""
    out = []
    rkey = req.get("key") if isinstance(req.get("key"), str) else ""
    rkey = NORMALIZED_LABELS.get(rkey, rkey)
    op = req.get("operator")
    values = req.get("values") if isinstance(req.get("values"), list) else []
    min_values = req.get("minValues")
    if op not in SUPPORTED_OPERATORS:
        out.append(
            (
                "operator",
                ".operator",
                "key %s has an unsupported operator %s not in %s" % (rkey, op, list(SUPPORTED_OPERATORS)),
            )
        )
    restricted = is_restricted_label(rkey)
    if restricted:
        out.append(("restricted-label", ".key", restricted))
    known = WELL_KNOWN_VALUES.get(rkey)
    if known is not None and op == "In":
        valid = [v for v in values if v in known]
        if not valid:
            out.append(
                (
                    "well-known-values",
                    ".values",
                    "no valid values found in %s for %s, expected one of: %s" % (values, rkey, list(known)),
                )
            )
        elif isinstance(min_values, int) and len(valid) < min_values:
            out.append(
                (
                    "well-known-values",
                    ".values",
                    "not enough valid values found in %s for %s with minValues %d, expected one of: %s"
                    % (values, rkey, min_values, list(known)),
                )
            )
    for err in is_qualified_name(rkey):
        out.append(("label-key", ".key", "key %s is not a qualified name, %s" % (rkey, err)))
    for j, value in enumerate(values):
        sub = ".values[%d]" % j
        if not isinstance(value, str):
            out.append(("label-value", sub, "invalid value %r for key %s: must be a string" % (value, rkey)))
            continue
        for err in is_valid_label_value(value):
            out.append(("label-value", sub, "invalid value %s for key %s, %s" % (value, rkey, err)))
    if op == "In" and not values:
        out.append(("values", "", "key %s with operator %s must have a value defined" % (rkey, op)))
    if op == "In" and isinstance(min_values, int) and len(values) < min_values:
        out.append(
            (
                "minValues",
                "",
                "key %s with operator %s must have at least minimum number of values defined in 'values' field"
                % (rkey, op),
            )
        )
    if op in NUMERIC_OPERATORS:
        bad = len(values) != 1
        if not bad:
            try:  # strconv.Atoi: no spaces, underscores or non-ASCII digits
                bad = golang.parse_int(values[0]) < 0
            except ValueError:
                bad = True
        if bad:
            out.append(
                (
                    "numeric-operator",
                    ".values",
                    "key %s with operator %s must have a single positive integer value" % (rkey, op),
                )
            )
    return out


# what an EC2NodeClass cannot do without (the CRD requires these only once a spec is given)
EC2NODECLASS_SPEC_ESSENTIALS = (
    "role or instanceProfile, amiSelectorTerms, subnetSelectorTerms and securityGroupSelectorTerms"
)


def runtime_validate_ec2nodeclass(nc: dict[str, Any], ref: str = "", original: object = None) -> list[Issue]:
    """Checks Karpenter applies to an EC2NodeClass that can be done offline: a spec at all, restricted
    tags, and the controller's validation of the open ``spec.kubelet`` map (see ``kubelet``).

    ``nc`` is the defaulted object (where a ``spec: null`` is already pruned); ``original``, the input
    object, only words the message (``spec`` null or missing)."""
    issues = []
    if not isinstance(nc.get("spec"), dict):
        # The CRD does not require spec, so the apiserver accepts such an object, and server-side apply
        # of it removes every spec field this collection owned: an undefined template variable
        # (``spec: "{{ spec }}"`` renders as null) would silently empty a live EC2NodeClass.
        raw = original if isinstance(original, dict) else nc
        if "spec" not in raw:
            what = "spec is missing"
        elif raw["spec"] is None:
            what = "spec is null"
        else:
            what = "spec is not a mapping"
        issues.append(
            _runtime(
                ref,
                "spec",
                "spec-required",
                "Required value: %s; an EC2NodeClass without a spec cannot launch anything: Karpenter needs %s"
                % (what, EC2NODECLASS_SPEC_ESSENTIALS),
            )
        )
    spec = nc.get("spec") if isinstance(nc.get("spec"), dict) else {}
    issues.extend(kubelet_mod.validate_kubelet(spec.get("kubelet"), kubelet_mod.ami_family(spec), ref))
    tags = spec.get("tags")
    if isinstance(tags, dict):
        for k in tags:
            if isinstance(k, str) and is_restricted_tag(k):
                issues.append(
                    _runtime(
                        ref,
                        join_path("spec.tags", key(k)),
                        "restricted-tag",
                        "tag %s is restricted (Karpenter sets it on instances)" % k,
                    )
                )
    return issues


# --------------------------------------------------------------------------------------------
# batch


def validate_batch(
    objs: dict[str, Any] | Iterable[Any] | None,
    known_nodeclasses: Iterable[str] | None = None,
    old_objects: Mapping[str, object] | None = None,
    lint: bool = True,
    stored: Collection[int] = (),
) -> BatchResult:
    """Validate and lint a batch; returns a :class:`BatchResult` (``.ok``, ``.results``, ``.errors``).

    ``known_nodeclasses``: names of EC2NodeClasses that exist outside the batch (e.g. in the
    cluster); with it, a NodePool referencing a class in neither set is an error.
    ``old_objects``: optional mapping ``"Kind/name" -> live object`` for transition rules.
    ``stored``: indexes of objects whose defaulted form equals the live object (see ``validate``).
    """
    from . import lint as lint_mod  # local import: lint imports this module

    if isinstance(objs, dict):
        objs = [objs]
    objs = list(objs or [])
    results = []
    for i, obj in enumerate(objs):
        ref = object_ref(obj, i)
        old = (old_objects or {}).get(ref)
        api_version, kind = kind_of(obj)
        if (
            api_version
            and kind
            and schema_mod.schema_for(api_version, kind) is None
            and (api_version, kind) not in LEGACY
        ):  # another kind (e.g. a PrometheusRule): only linted
            results.append(ValidationResult(obj, ref, api_version, kind, None, []))
            continue
        results.append(_validate(obj, old, i in stored, ref, api_version, kind))
    if lint:
        per_object = lint_mod.lint_batch(
            objs, known_nodeclasses=known_nodeclasses, defaulted=[r.defaulted for r in results]
        )
        for i, result in enumerate(results):
            result.add(per_object[i])
    return BatchResult(results)
