# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one path every Karpenter object takes (no Ansible import; the modules only wire params):

input -> convert legacy shapes -> validate + lint the WHOLE batch (nothing written on any error)
      -> one LIST -> exact plan -> only the needed writes (none in check mode) -> wait -> report
"""

from __future__ import absolute_import, division, print_function

import copy

from .karpenter import convert as convert_mod
from .karpenter import validate as validate_mod
from .kube import engine


class InputError(Exception):
    """Bad input: nothing was written. ``details`` carries the per-object issues."""

    def __init__(self, msg, details=None):
        super(InputError, self).__init__(msg)
        self.details = details or []


def _as_list(definitions):
    out = []
    for d in definitions or []:
        if isinstance(d, list):
            out.extend(d)
        elif d is not None:
            out.append(d)
    return out


def prepare(kind, definitions, node_class_ref=None, defaults_from=None):
    """Convert legacy objects, keep those of ``kind``; returns (objects, conversion_report, others)."""
    objs, report, others = [], [], []
    for i, d in enumerate(_as_list(definitions)):
        if not isinstance(d, dict):
            raise InputError(
                "definitions[%d]: must be a mapping (a Kubernetes manifest), got %s" % (i, type(d).__name__)
            )
        if "kind" not in d and "apiVersion" not in d:  # e.g. {metadata: {name: x}} with state=absent
            d = dict(d, apiVersion=kind.api_version, kind=kind.kind)
        api_version, k = d.get("apiVersion"), d.get("kind")
        if (api_version, k) in validate_mod.LEGACY:
            converted, rep = convert_mod.convert(d)
            report.extend(r if isinstance(r, dict) else r.to_dict() for r in rep)
        else:
            converted = [d]
        for c in converted:
            if c.get("kind") == kind.kind:
                objs.append(copy.deepcopy(c))
            else:
                others.append(c)
    if node_class_ref and kind is engine.NODEPOOL:
        for o in objs:
            o.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})["nodeClassRef"] = dict(
                node_class_ref
            )
    return objs, report, others


def already_stored(kind, objs, live):
    """Indexes of objects that, defaulted, are exactly what the apiserver stores now (no write will
    be sent for them), so the costly CEL evaluation can be skipped for them (validate(stored=True))."""
    out = set()
    for i, o in enumerate(objs):
        cur = live.get((o.get("metadata") or {}).get("name"))
        if cur is None or (o.get("apiVersion"), o.get("kind")) != (kind.api_version, kind.kind):
            continue
        desired = engine.add_managed_by(validate_mod.default(o))
        plan = engine.make_plan(kind, [desired], {desired["metadata"]["name"]: cur})
        if plan[0].action == "unchanged":
            out.add(i)
    return out


def known_nodeclasses(api, objs):
    """Names of the node classes the NodePools reference that exist in the cluster (1 LIST per kind)."""
    names = set()
    kinds = set()
    for o in objs:
        ref = ((o.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeClassRef") or {}
        k = engine.NODECLASS_KINDS.get((ref.get("group"), ref.get("kind")))
        if k is not None:
            kinds.add(k)
    for k in kinds:
        live, unused = engine.list_live(api, k)
        names.update(live)
    return sorted(names)


def run(
    api,
    kind,
    definitions,
    state="present",
    prune=False,
    node_class_ref=None,
    wait=False,
    wait_timeout=120,
    check_mode=False,
    strict=False,
    extra_nodeclasses=None,
    allow_disruption=False,
):
    objs, conversion_report, others = prepare(kind, definitions, node_class_ref)
    if not objs and not prune:
        raise InputError("no %s in definitions (got %d object(s) of other kinds)" % (kind.kind, len(others)))
    names = [((o.get("metadata") or {}).get("name")) for o in objs]
    dupes = sorted(set(n for n in names if names.count(n) > 1 and n))
    if dupes:
        raise InputError("%s defined more than once: %s" % (kind.kind, ", ".join(dupes)))

    live, list_version = engine.list_live(api, kind)
    batch = None
    if state == "present":
        known = None
        if kind is engine.NODEPOOL:
            known = sorted(set(known_nodeclasses(api, objs)) | set(extra_nodeclasses or []))
        old = {"%s/%s" % (kind.kind, n): live[n] for n in names if n in live}
        batch = validate_mod.validate_batch(
            objs, known_nodeclasses=known, old_objects=old, stored=already_stored(kind, objs, live)
        )
        problems = batch.errors + (batch.warnings if strict else [])
        if problems:
            raise InputError(
                "%d invalid %s definition(s), nothing was applied:\n  %s"
                % (len(set(p.object_ref for p in problems)), kind.kind, "\n  ".join(str(p) for p in problems)),
                details=[p.to_dict() for p in problems],
            )
        desired = [engine.add_managed_by(r.defaulted) for r in batch.results]
    else:
        for i, o in enumerate(objs):
            if not (o.get("metadata") or {}).get("name"):
                raise InputError("definitions[%d].metadata.name: Required value" % i)
        desired = objs

    plan = engine.make_plan(kind, desired, live, state=state, prune=prune)
    affected = engine.disruption_of_deletes(api, kind, plan)
    if affected and not allow_disruption:
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
    engine.execute(api, kind, plan, check_mode=check_mode)
    not_ready = []
    if wait and state == "present" and not check_mode:
        not_ready = engine.wait_ready(api, kind, plan, wait_timeout, list_version)

    result = {
        "changed": any(i.changed for i in plan),
        "results": [i.to_dict(kind) for i in plan],
        "warnings": [str(w) for w in batch.warnings] if batch else [],
        "conversion_report": conversion_report,
        "converted_other_kinds": others,
        "requests": api.request_summary(),
        "diff": [
            {
                "before": i.before,
                "after": i.after,
                "before_header": "%s/%s" % (kind.kind, i.name),
                "after_header": "%s/%s" % (kind.kind, i.name),
            }
            for i in plan
            if i.changed
        ],
        "not_ready": not_ready,
        "disrupted_nodeclaims": affected,
    }
    return result
