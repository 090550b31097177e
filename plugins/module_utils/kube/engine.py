# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply engine: one LIST per kind, an exact plan, then only the writes the plan needs.

    kind = Kind("karpenter.sh", "v1", "nodepools", "NodePool")
    live = list_live(api, kind)                     # 1 request
    plan = make_plan(kind, desired, live, ...)      # no request: SSA predicted offline (ssa.py)
    execute(api, kind, plan, check_mode=...)        # 0 requests in check mode or when nothing changed
    wait_ready(api, kind, plan, timeout, rv)        # one watch, conditions (never sleeps)

``desired`` objects arrive validated and defaulted (as the apiserver would store them), so "no
change" is exact: an object is changed iff server-side apply would store something different.
"""

from __future__ import absolute_import, division, print_function

import concurrent.futures
import copy

from ..karpenter.compare import SERVER_METADATA_FIELDS
from .client import KubeError
from .ssa import owned_paths, predict, removed_paths

FIELD_MANAGER = "karpenter-eks-platform"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "karpenter_eks.platform"

# metadata the server owns, and annotations the controllers write; never part of a comparison
SERVER_METADATA = SERVER_METADATA_FIELDS + ("finalizers", "ownerReferences")
SERVER_ANNOTATION_PREFIXES = (
    "karpenter.sh/nodepool-hash",
    "karpenter.k8s.aws/ec2nodeclass-hash",
    "kubectl.kubernetes.io/last-applied-configuration",
)


class Kind(object):
    def __init__(self, group, version, plural, kind, namespaced=False):
        self.group, self.version, self.plural, self.kind, self.namespaced = group, version, plural, kind, namespaced

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    def path(self, name=None):
        base = "/apis/%s/%s/%s" % (self.group, self.version, self.plural)
        return base + ("/" + name if name else "")


NODEPOOL = Kind("karpenter.sh", "v1", "nodepools", "NodePool")
EC2NODECLASS = Kind("karpenter.k8s.aws", "v1", "ec2nodeclasses", "EC2NodeClass")
NODECLAIM = Kind("karpenter.sh", "v1", "nodeclaims", "NodeClaim")
KWOKNODECLASS = Kind("karpenter.kwok.sh", "v1alpha1", "kwoknodeclasses", "KWOKNodeClass")
NODECLASS_KINDS = {
    ("karpenter.k8s.aws", "EC2NodeClass"): EC2NODECLASS,
    ("karpenter.kwok.sh", "KWOKNodeClass"): KWOKNODECLASS,
}


def normalize(obj):
    """A copy without status, server metadata and controller annotations (for compare and diff)."""
    if not obj:
        return {}
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    for k in SERVER_METADATA:
        meta.pop(k, None)
    ann = meta.get("annotations")
    if ann:
        for k in list(ann):
            if k.startswith(SERVER_ANNOTATION_PREFIXES):
                del ann[k]
        if not ann:
            del meta["annotations"]
    return out


def strip_managed_fields(obj):
    out = copy.deepcopy(obj)
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


def list_live(api, kind, label_selector=None):
    """Return ({name: object}, resourceVersion) with one LIST request."""
    data = api.list(kind.path(), label_selector=label_selector)
    items = {i["metadata"]["name"]: i for i in data.get("items", [])}
    return items, data.get("metadata", {}).get("resourceVersion")


def add_managed_by(obj):
    obj = copy.deepcopy(obj)
    if obj.get("metadata") is None:
        obj["metadata"] = {}
    if obj["metadata"].get("labels") is None:  # absent or null
        obj["metadata"]["labels"] = {}
    obj["metadata"]["labels"][MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    return obj


class PlanItem(object):
    def __init__(self, name, action, desired=None, live=None, before=None, after=None, removed=None):
        self.name, self.action, self.desired, self.live = name, action, desired, live
        self.before, self.after, self.removed = before or {}, after or {}, removed or []
        self.result = None  # object returned by the apiserver after the write (or seen by the wait)
        self.written = False  # the apiserver accepted the write (execute)
        self.error = None  # after a failed execute: "failed" for the write that failed, "not attempted" after

    @property
    def changed(self):
        return self.action in ("create", "update", "delete")

    @property
    def method(self):
        return {"create": "server-side-apply", "update": "server-side-apply", "delete": "delete"}.get(
            self.action, "none"
        )

    def to_dict(self, kind):
        out = {
            "kind": kind.kind,
            "name": self.name,
            "action": self.action,
            "changed": self.changed,
            "method": self.method,
        }
        if self.removed:
            out["removed_fields"] = [".".join(p) for p in self.removed]
        if self.error:
            out["error"] = self.error
        obj = self.result or (self.live if self.action != "delete" else None)
        if obj:
            out["object"] = strip_managed_fields(obj)
            status = obj.get("status") or {}
            out["conditions"] = status.get("conditions") or []
            out["ready"] = is_ready(obj)
            if kind.kind == "NodePool":
                out["usage"] = {
                    "nodes": status.get("nodes"),
                    "resources": status.get("resources") or {},
                    "limits": (obj.get("spec") or {}).get("limits") or {},
                }
        return out


def make_plan(kind, desired, live, state="present", prune=False, manager=FIELD_MANAGER):
    """Plan create/update/unchanged/delete for ``desired`` (validated + defaulted objects)."""
    plan = []
    wanted = set()
    for obj in desired:
        name = obj["metadata"]["name"]
        wanted.add(name)
        cur = live.get(name)
        if state == "absent":
            if cur is not None:
                plan.append(PlanItem(name, "delete", live=cur, before=normalize(cur), after={}))
            else:
                plan.append(PlanItem(name, "unchanged", before={}, after={}))
            continue
        if cur is None:
            plan.append(PlanItem(name, "create", desired=obj, before={}, after=normalize(obj)))
            continue
        before = normalize(cur)
        owned = owned_paths(cur, manager)
        after = predict(before, obj, owned)
        removed = [p for p in removed_paths(owned, obj) if p[0] != "metadata" or p[1:2] != ("managedFields",)]
        action = "update" if after != before else "unchanged"
        plan.append(
            PlanItem(
                name,
                action,
                desired=obj,
                live=cur,
                before=before,
                after=after,
                removed=removed if action == "update" else [],
            )
        )
    if prune and state == "present":
        for name, cur in sorted(live.items()):
            labels = cur.get("metadata", {}).get("labels") or {}
            if name not in wanted and labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE:
                plan.append(PlanItem(name, "delete", live=cur, before=normalize(cur), after={}))
    return plan


def disruption_of_deletes(api, kind, plan):
    """For each planned delete: the NodeClaims (nodes) it would disrupt. One NodeClaim LIST at most."""
    deletes = [i.name for i in plan if i.action == "delete"]
    if not deletes or kind.kind not in ("NodePool", "EC2NodeClass"):
        return {}
    claims, _rv = list_live(api, NODECLAIM)
    affected = {}
    for cname, claim in sorted(claims.items()):
        if kind.kind == "NodePool":
            owner = (claim.get("metadata", {}).get("labels") or {}).get("karpenter.sh/nodepool")
        else:
            ref = (claim.get("spec") or {}).get("nodeClassRef") or {}
            owner = ref.get("name") if ref.get("kind") == kind.kind else None
        if owner in deletes:
            affected.setdefault(owner, []).append(cname)
    return affected


WRITE_CONCURRENCY = 4


def _write(api, kind, item, manager):
    if item.action == "delete":
        try:
            api.delete(kind.path(item.name))
        except KubeError as exc:
            # already gone: our DELETE was served and its answer lost (the retry finds nothing), or someone
            # deleted the object after our LIST. Either way what the plan asked for is done.
            if exc.status != 404:
                raise
        item.written = True
        return
    body = copy.deepcopy(item.desired)
    body["apiVersion"], body["kind"] = kind.api_version, kind.kind
    item.result = api.apply(kind.path(item.name), body, manager)
    item.written = True
    item.after = normalize(item.result)


def execute(api, kind, plan, check_mode=False, manager=FIELD_MANAGER, concurrency=WRITE_CONCURRENCY):
    """Run the writes of ``plan``; none in check mode. Sets ``item.result`` and the final ``after``.

    The objects of one kind are independent of each other, so up to ``concurrency`` writes are in
    flight at once (each one request; the apiserver's priority-and-fairness still applies, and the
    client retries 429s). On the first failure no further write is started, the ones in flight
    finish, and the first error is raised - as a sequential loop would, only sooner. ``item.written``
    tells which writes were done; ``item.error`` marks the failed one(s) and those not attempted.
    """
    todo = [item for item in plan if item.changed and not check_mode]
    failed = []

    def guarded(item):
        if failed:  # a write already failed: do not start more
            item.error = "not attempted"
            return
        try:
            _write(api, kind, item, manager)
        except Exception as exc:
            item.error = "failed"
            failed.append(exc)

    if len(todo) <= 1 or concurrency <= 1:
        for item in todo:
            guarded(item)
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(concurrency, len(todo))) as pool:
            list(pool.map(guarded, todo))
    if failed:
        raise failed[0]


def is_ready(obj):
    """Karpenter's Ready condition, for the current generation."""
    gen = (obj.get("metadata") or {}).get("generation")
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            observed = c.get("observedGeneration")
            return c.get("status") == "True" and (observed is None or gen is None or observed >= gen)
    return False


def _generation(obj):
    return (obj.get("metadata") or {}).get("generation") or 0


def wait_ready(api, kind, plan, timeout, list_version):
    """Wait until every created/updated/kept object is Ready; returns the names still not ready.

    One watch from the LIST's resourceVersion: it replays our own writes and every status update
    after them, so nothing between the LIST and the watch is missed. No polling, no sleeps. The
    newest version of each object the watch delivers becomes ``item.result``: the results report
    the Ready object (conditions, usage) the wait saw, not the one the write returned. A version
    older than the one written (a lower generation) is ignored.
    """
    items = {}
    pending = set()
    for item in plan:
        if item.action in ("create", "update", "unchanged"):
            obj = item.result or item.live
            if obj is not None:
                items[item.name] = item
                if not is_ready(obj):
                    pending.add(item.name)
    if not pending:
        return []

    def seen(obj):
        item = items.get((obj.get("metadata") or {}).get("name"))
        if item is None or _generation(obj) < _generation(item.result or item.live):
            return
        item.result = obj
        if is_ready(obj):
            pending.discard(item.name)

    def done(event_type, obj):
        if event_type != "DELETED":
            seen(obj)
        return not pending

    def relisted(objs):  # the watch expired: the current objects
        for obj in objs:
            seen(obj)
        return not pending

    api.watch_until(kind.path(), done, list_version, timeout, on_list=relisted)
    return sorted(pending)


def wait_deleted(api, kind, plan, timeout, list_version):
    """Wait until every object this plan deleted is gone (finalizers done); returns the names left.

    Same single watch as wait_ready: from the LIST's resourceVersion it replays our DELETE's effect,
    so an object removed at once is seen as well as one a finalizer holds for a while.
    """
    pending = set(item.name for item in plan if item.action == "delete" and item.changed)
    if not pending:
        return []

    def done(event_type, obj):
        if event_type == "DELETED":
            pending.discard(obj.get("metadata", {}).get("name"))
        return not pending

    def relisted(objs):  # the watch expired: what is not listed is gone
        pending.intersection_update((o.get("metadata") or {}).get("name") for o in objs)
        return not pending

    api.watch_until(kind.path(), done, list_version, timeout, on_list=relisted)
    return sorted(pending)
