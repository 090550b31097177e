# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one path every Karpenter object takes (no Ansible import; the modules only wire params):

input -> convert legacy shapes -> validate + lint the WHOLE batch (nothing written on any error)
      -> one LIST -> exact plan -> only the needed writes (none in check mode) -> wait -> report
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from .. import param_checks
from ..errors import InputError
from ..karpenter import convert as convert_mod
from ..karpenter import validate as validate_mod
from ..karpenter.issues import ERROR, Issue, shorten
from ..karpenter.schema import type_name
from ..kube import engine, resource
from ..kube.client import KubeApi, KubeError
from ..kube.resource import Resource


def check_timeouts(wait_timeout: float | None = None, request_timeout: float | None = None) -> None:
    """Raise InputError unless the given timeouts are positive numbers of seconds (None: not checked).

    ``run`` checks ``wait_timeout``; the module checks ``request_timeout`` with it before it connects."""
    problems = [
        param_checks.positive_seconds(name, value)
        for name, value in (("wait_timeout", wait_timeout), ("request_timeout", request_timeout))
        if value is not None
    ]
    problems = [p for p in problems if p]
    if problems:
        raise InputError("; ".join(problems))


OTHER_KIND_MODULES = {
    "NodePool": "karpenter_eks.platform.karpenter_provisioner",
    "EC2NodeClass": "karpenter_eks.platform.node_template",
}


def prepare(
    kind: Resource,
    definitions: Any,
    node_class_ref: dict | None = None,
    conversion: dict | None = None,
    skipped: list | None = None,
) -> tuple[list[dict], list[dict], list[dict]]:
    """Convert legacy objects, keep those of ``kind``; returns (objects, conversion_report, others).

    ``conversion``: options of ``convert.convert`` (node_role, instance_profile, ami_version,
    ignore_alpha_defaults, kubernetes_version); None values are left at the converter's defaults.
    ``skipped``: a list to which the objects of other kinds given as they are (not produced by conversion)
    are added as ``(index, kind, name)``: the caller warns that they were not applied."""
    options = dict((k, v) for k, v in (conversion or {}).items() if v is not None)
    objs, report, others = [], [], []
    items = []
    for i, d in enumerate(engine.flatten(definitions)):
        if not isinstance(d, dict):
            raise InputError(
                "definitions[%d]: must be a mapping (a Kubernetes manifest), got %s" % (i, type(d).__name__)
            )
        for field in ("apiVersion", "kind"):
            value = d.get(field)
            if value is not None and not isinstance(value, str):
                raise InputError(
                    'definitions[%d].%s: Invalid value: "%s": must be of type string' % (i, field, type_name(value))
                )
        if "kind" not in d and "apiVersion" not in d:  # e.g. {metadata: {name: x}} with state=absent
            d = dict(d, apiVersion=kind.api_version, kind=kind.kind)
        items.append((i, d))
    # The legacy objects are converted as ONE batch: a Provisioner's kubelet settings move to the EC2NodeClass
    # converted from its AWSNodeTemplate when both are given (the converter distributes them across the batch);
    # the converted objects take the place of the first legacy object.
    legacy = [d for _i, d in items if validate_mod.kind_of(d) in validate_mod.LEGACY]
    batch: list = []
    if legacy:
        batch, rep = convert_mod.convert(legacy if len(legacy) > 1 else legacy[0], **options)
        report.extend(r if isinstance(r, dict) else r.to_dict() for r in rep)
    for i, d in items:
        if validate_mod.kind_of(d) in validate_mod.LEGACY:
            converted, batch = batch, []
        else:
            converted = [d]
        for c in converted:
            if c.get("kind") == kind.kind:
                objs.append(copy.deepcopy(c))
            else:
                others.append(c)
                if c is d and skipped is not None:
                    name = (d.get("metadata") or {}).get("name") if isinstance(d.get("metadata"), dict) else None
                    skipped.append((i, d.get("kind"), name))
    if node_class_ref and kind is resource.NODEPOOL:
        if not isinstance(node_class_ref, dict):
            raise InputError(
                "node_class_ref: must be a mapping (group, kind, name), got %s" % type(node_class_ref).__name__
            )
        for o in objs:
            _set_node_class_ref(o, node_class_ref)
    return objs, report, others


def _set_node_class_ref(obj, node_class_ref):
    """Set spec.template.spec.nodeClassRef; a non-mapping on the way is left for validation to report."""
    cur = obj
    for field in ("spec", "template", "spec"):
        if cur.get(field) is None:
            cur[field] = {}
        cur = cur[field]
        if not isinstance(cur, dict):
            return
    cur["nodeClassRef"] = dict(node_class_ref)


def _dict(value):
    return value if isinstance(value, dict) else {}


def _name(obj):
    """metadata.name when it is a non-empty string, else None (a wrong type is reported by validation)."""
    name = _dict(obj.get("metadata")).get("name")
    return name if isinstance(name, str) and name else None


def _name_error(index, obj):
    """The InputError text for an object that cannot be addressed by name, or None."""
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return 'definitions[%d].metadata: Invalid value: "%s": must be of type object' % (index, type_name(meta))
    name = _dict(meta).get("name")
    if name is not None and not isinstance(name, str):
        return 'definitions[%d].metadata.name: Invalid value: "%s": must be of type string' % (index, type_name(name))
    if not name:
        return "definitions[%d].metadata.name: Required value" % index
    return None


def _kind_issues(kind, batch):
    """Errors for objects of ``kind`` with another apiVersion (e.g. ``karpenter.sh/v2``): validate_batch
    leaves kinds it does not know alone, without an error, but only ``kind.api_version`` can be applied.
    (A missing or non-string apiVersion is already a validation error.)"""
    out = []
    for r in batch.results:
        if r.defaulted is not None or r.errors:
            continue
        msg = 'no matches for kind "%s" in version "%s": only %s %s can be applied' % (
            kind.kind,
            r.api_version,
            kind.api_version,
            kind.kind,
        )
        out.append(Issue(r.object_ref, "apiVersion", "unsupported-kind", msg))
    return out


def _blocking_conversion_errors(report, node_class_ref):
    """Conversion errors (report dicts) that forbid any write. Validation errors of the converted
    objects (``invalid-output``) are left to validate_batch, which sees what is really applied; with
    node_class_ref the legacy provider reference is overridden, so its errors do not count."""
    out = []
    for r in report:
        if r.get("severity") != ERROR or r.get("rule") == "invalid-output":
            continue
        path = r.get("path") or ""
        if node_class_ref and path.split(".")[:2] == ["spec", "providerRef"]:
            continue
        out.append(r)
    return out


def already_stored(kind: Resource, objs: list[dict], live: dict) -> set[int]:
    """Indexes of objects that, defaulted, are exactly what the apiserver stores now (no write will
    be sent for them), so the costly CEL evaluation can be skipped for them (validate(stored=True))."""
    out = set()
    for i, o in enumerate(objs):
        name = _name(o)
        cur = live.get(name) if name is not None else None
        if cur is None or validate_mod.kind_of(o) != (kind.api_version, kind.kind):
            continue
        labels = _dict(o.get("metadata")).get("labels")
        if labels is not None and not isinstance(labels, dict):
            continue  # not validated yet: malformed labels cannot be what is stored (validation reports them)
        desired = engine.add_managed_by(validate_mod.default(o))
        plan = engine.plan_kind(kind, [desired], {desired["metadata"]["name"]: cur})
        if plan[0].action == "unchanged":
            out.add(i)
    return out


def known_nodeclasses(api: KubeApi, objs: list[dict]) -> list[str]:
    """Names of the node classes the NodePools reference that exist in the cluster (1 LIST per kind)."""
    names = set()
    kinds = set()
    for o in objs:
        ref = _dict(_dict(_dict(_dict(o.get("spec")).get("template")).get("spec")).get("nodeClassRef"))
        group, ref_kind = ref.get("group"), ref.get("kind")
        k = (
            resource.NODECLASS_KINDS.get((group, ref_kind))
            if isinstance(group, str) and isinstance(ref_kind, str)
            else None
        )
        if k is not None:
            kinds.add(k)
    for k in kinds:
        live, unused = engine.list_live(api, k)
        names.update(live)
    return sorted(names)


@dataclasses.dataclass
class ApplyOptions:
    """How ``run`` converges a batch (the module options of karpenter_provisioner / node_template).

    ``prevalidated=True`` is for callers that already ran ``validate_batch`` over these exact objects (with the
    same known node classes and the same live objects as old values) and pass its ``defaulted`` results: they
    are applied without being validated a second time (restore does this). ``server_dry_run``: when more than one
    object will be written, the apiserver dry-runs every one of them before the first real write, so an object
    the offline checks pass but the cluster refuses (an admission policy, a webhook, a rule we do not model)
    stops the whole batch with nothing written; it costs one extra request per written object."""

    state: str = "present"
    prune: bool = False
    node_class_ref: dict | None = None
    wait: bool = False
    wait_timeout: float = 120
    check_mode: bool = False
    strict: bool = False
    extra_nodeclasses: list | None = None
    allow_disruption: bool = False
    prevalidated: bool = False
    conversion: dict | None = None
    server_dry_run: bool = True


def run(api: KubeApi, kind: Resource, definitions: Any, options: ApplyOptions | None = None, **overrides: Any) -> dict:
    """Converge ``definitions`` of ``kind`` with ``options`` (or ApplyOptions(**overrides)); see the module docs.

    Raises InputError (nothing was written) or KubeError; a KubeError raised after some writes were done
    (a later write failed, the wait broke) carries ``result``: the module result up to the failure, with
    ``changed`` true and ``written`` naming the objects written (``results[].error`` marks the write that
    failed and those not attempted).
    """
    opts = dataclasses.replace(options, **overrides) if options is not None else ApplyOptions(**overrides)
    state, prune, node_class_ref, check_mode = opts.state, opts.prune, opts.node_class_ref, opts.check_mode
    wait, wait_timeout, strict, prevalidated = opts.wait, opts.wait_timeout, opts.strict, opts.prevalidated
    # before the cluster is read: a wait_timeout of 0 or less used to write, then report "not Ready after -1s"
    problem = param_checks.positive_seconds("wait_timeout", wait_timeout)
    if problem:
        raise InputError(problem)
    skipped = []
    objs, conversion_report, others = prepare(
        kind, definitions, node_class_ref, conversion=opts.conversion, skipped=skipped
    )
    skip_warnings = [
        "definitions[%d] (%s %s) is not a %s and was not applied: apply it with %s"
        % (
            i,
            other or "no kind",
            shorten(str(name)),
            kind.kind,
            OTHER_KIND_MODULES.get(other, "karpenter_eks.platform.k8s_objects"),
        )
        for i, other, name in skipped
    ]
    if not objs and not prune:
        raise InputError("no %s in definitions (got %d object(s) of other kinds)" % (kind.kind, len(others)))
    if state == "present":
        blocking = _blocking_conversion_errors(conversion_report, node_class_ref)
        if blocking:
            raise InputError(
                "%d conversion error(s) in the legacy definitions, nothing was applied:\n  %s"
                % (len(blocking), "\n  ".join(r.get("text") or r.get("message", "") for r in blocking)),
                details=blocking,
            )
    names = [_name(o) for o in objs]
    dupes = sorted(set(n for n in names if n and names.count(n) > 1))
    if dupes:
        raise InputError("%s defined more than once: %s" % (kind.kind, ", ".join(shorten(n) for n in dupes)))

    timings = engine.Timings()
    live, list_version = engine.list_live(api, kind)
    timings.lap("read")
    batch = None
    if state == "present" and prevalidated:
        for i, o in enumerate(objs):
            error = _name_error(i, o) or (
                None
                if validate_mod.kind_of(o) == (kind.api_version, kind.kind)
                else "definitions[%d]: prevalidated objects must be %s %s" % (i, kind.api_version, kind.kind)
            )
            if error:
                raise InputError(error)
        desired = [engine.add_managed_by(o) for o in objs]
    elif state == "present":
        stored = already_stored(kind, objs, live)
        known = None
        # the node classes are listed only when a NodePool will be written: a no-op run stays at one
        # LIST per kind (an unchanged pool's reference was checked when it was applied)
        if kind is resource.NODEPOOL and len(stored) < len(objs):
            known = sorted(set(known_nodeclasses(api, objs)) | set(opts.extra_nodeclasses or []))
        old = {"%s/%s" % (kind.kind, n): live[n] for n in names if n is not None and n in live}
        batch = validate_mod.validate_batch(objs, known_nodeclasses=known, old_objects=old, stored=stored)
        problems = _kind_issues(kind, batch) + batch.errors + (batch.warnings if strict else [])
        # generateName alone passes validation, but server-side apply needs a name
        problems += [
            Issue(
                r.object_ref,
                "metadata.name",
                "required",
                "Required value: name is required (server-side apply cannot use generateName)",
            )
            for r in batch.results
            if r.defaulted is not None and not r.errors and _name(r.defaulted) is None
        ]
        if problems:
            raise InputError(
                "%d invalid %s definition(s), nothing was applied:\n  %s"
                % (len(set(p.object_ref for p in problems)), kind.kind, "\n  ".join(str(p) for p in problems)),
                details=[p.to_dict() for p in problems],
            )
        desired = [engine.add_managed_by(r.defaulted) for r in batch.results]
    else:
        for i, o in enumerate(objs):
            error = _name_error(i, o)
            if error:
                raise InputError(error)
        desired = objs

    timings.lap("validate")
    plan = engine.plan_kind(kind, desired, live, state=state, prune=prune)
    affected = engine.disruption_of_deletes(api, kind, plan)
    timings.lap("plan")
    if affected and not opts.allow_disruption:
        raise InputError(
            "refusing to delete %s that still own nodes (their nodes would be drained and terminated): %s. "
            "Set allow_disruption: true to delete anyway."
            % (
                kind.kind,
                "; ".join(
                    "%s/%s owns %d node(s): %s" % (kind.kind, n, len(c), ", ".join(c))
                    for n, c in sorted(affected.items())
                ),
            ),
            details=[{"object": "%s/%s" % (kind.kind, n), "nodeclaims": c} for n, c in sorted(affected.items())],
        )
    not_ready, not_deleted = [], []

    def result(changed):
        out = engine.report(plan, skip_warnings + (batch.warnings if batch else []), api.request_summary(), timings)
        out.update(
            changed=changed,
            conversion_report=conversion_report,
            converted_other_kinds=others,
            not_ready=not_ready,
            not_deleted=not_deleted,
            disrupted_nodeclaims=affected,
        )
        return out

    if opts.server_dry_run and not check_mode and sum(i.action in ("create", "update") for i in plan) > 1:
        rejected = engine.dry_run(api, plan)
        if rejected:
            raise InputError(
                "%d %s definition(s) rejected by the apiserver (server-side dry-run), nothing was applied:\n  %s"
                % (len(rejected), kind.kind, "\n  ".join("%s: %s" % (r["object"], r["message"]) for r in rejected)),
                details=rejected,
            )
        timings.lap("dry_run")
    try:
        engine.execute(api, plan, check_mode=check_mode)
        timings.lap("write")
        if wait and not check_mode:
            if state == "present":
                not_ready = engine.wait_ready(api, kind, plan, wait_timeout, list_version)
            not_deleted = engine.wait_deleted(api, kind, plan, wait_timeout, list_version)
            timings.lap("wait")
    except Exception as exc:
        if not any(i.written for i in plan):
            raise
        # objects were written: the error carries the result so far (changed, what was written), whatever it is
        error = exc if isinstance(exc, KubeError) else KubeError("%s: %s" % (type(exc).__name__, exc))
        error.result = result(True)
        if error is exc:
            raise
        raise error from exc
    return result(any(i.changed for i in plan))
