# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one apply engine: a LIST, an exact plan, then only the writes the plan needs (no Ansible import).

    live, rv = list_live(api, NODEPOOL)                        # 1 request per kind
    plan = plan_kind(NODEPOOL, desired, live, ...)             # no request: SSA predicted offline
    execute(api, plan, check_mode=...)                         # 0 requests in check mode or when nothing changed
    wait_ready(api, NODEPOOL, plan, timeout, rv)               # one watch, conditions (never sleeps)

Every caller (the Karpenter modules, ``k8s_objects``, restore) plans with ``make_plan`` and writes with
``execute``; what differs between them is the comparison ``Strategy``:

* ``EXACT`` (NodePools, EC2NodeClasses, restore): the desired objects arrive validated and defaulted as the
  apiserver stores them, so an object changes iff the predicted stored object differs from the live one.
* ``CONTAINS`` (``k8s_objects``): an object is up to date when the live object contains every desired field
  and carries the fingerprint of the definition last applied (``HASH_ANNOTATION``), so fields the apiserver
  defaults never count and a field removed from the definition is still noticed.

Both predict what server-side apply stores the same way (``predict``): a field we stop sending is removed
only when no other field manager co-owns it.
"""

from __future__ import annotations

import concurrent.futures
import copy
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .. import progress
from ..errors import InputError
from . import ssa
from .client import KubeApi, KubeError, is_transient
from .resource import NODECLAIM, SERVER_METADATA_FIELDS, Resource

Kind = Resource  # the name the Karpenter callers use

FIELD_MANAGER = "karpenter-eks-platform"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "karpenter_eks.platform"
HASH_ANNOTATION = "karpenter-eks.platform/applied-sha256"
HASH_PATH = 'metadata.annotations["%s"]' % HASH_ANNOTATION
REDACTED = "<redacted>"
WRITE_CONCURRENCY = 4

# metadata the server owns, and annotations the controllers write; never part of a comparison
SERVER_METADATA = SERVER_METADATA_FIELDS + ("finalizers", "ownerReferences")
SERVER_ANNOTATION_PREFIXES = (
    "karpenter.sh/nodepool-hash",
    "karpenter.k8s.aws/ec2nodeclass-hash",
    "kubectl.kubernetes.io/last-applied-configuration",
)


# ---------------------------------------------------------------------------------------------- objects
def copy_json(value: Any) -> Any:
    """A deep copy of decoded JSON (dicts, lists, scalars) - about 5x faster than ``copy.deepcopy``, which
    tracks shared references JSON cannot have; anything else is deep-copied as usual."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return copy.deepcopy(value)


def _copy_without(obj: dict, fields: tuple, metadata_fields: tuple) -> dict:
    """A copy of ``obj`` without the top-level ``fields`` and the ``metadata_fields``, which are not copied first
    (``managedFields`` and ``status`` are often most of a live object)."""
    out = {}
    for key, value in obj.items():
        if key in fields:
            continue
        if key == "metadata" and isinstance(value, dict):
            out[key] = {k: copy_json(v) for k, v in value.items() if k not in metadata_fields}
        else:
            out[key] = copy_json(value)
    return out


def normalize(obj: dict | None) -> dict:
    """A copy without status, server metadata and controller annotations (for compare and diff)."""
    if not obj:
        return {}
    out = _copy_without(obj, ("status",), SERVER_METADATA)
    meta = out.setdefault("metadata", {})
    ann = meta.get("annotations") if isinstance(meta, dict) else None
    if ann:
        for k in list(ann):
            if k.startswith(SERVER_ANNOTATION_PREFIXES):
                del ann[k]
        if not ann:
            del meta["annotations"]
    return out


def strip_managed_fields(obj: dict) -> dict:
    """A copy without ``metadata.managedFields``."""
    return _copy_without(obj, (), ("managedFields",))


def add_managed_by(obj: dict) -> dict:
    obj = copy_json(obj)
    if obj.get("metadata") is None:
        obj["metadata"] = {}
    if obj["metadata"].get("labels") is None:  # absent or null
        obj["metadata"]["labels"] = {}
    obj["metadata"]["labels"][MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    return obj


def flatten(definitions: Any) -> list:
    """The one reading of ``definitions``: a mapping, or a list whose items may themselves be lists (what
    ``lookup(...) | from_yaml_all`` gives, including the ``None`` of an empty document or a trailing
    ``---``). ``None`` items are dropped at both levels; anything else is returned for the caller to check."""
    if isinstance(definitions, dict):
        return [definitions]
    if definitions is None:
        return []
    if not isinstance(definitions, (list, tuple)):
        raise InputError(
            "definitions: must be a list of mappings (Kubernetes manifests), got %s" % type(definitions).__name__
        )
    out = []
    for d in definitions:
        if isinstance(d, (list, tuple)):
            out.extend(x for x in d if x is not None)
        elif d is not None:
            out.append(d)
    return out


def describe(kind: str, namespace: str | None, name: str) -> str:
    """``Kind/name`` or ``Kind/namespace/name``: how results and diff headers name an object."""
    return "%s/%s%s" % (kind, namespace + "/" if namespace else "", name)


class Desired:
    """One desired object: its position in the input, the body to apply and, once known, its Resource."""

    def __init__(self, index: int | None, body: dict, resource: Resource | None = None) -> None:
        self.index, self.body, self.resource = index, body, resource

    @property
    def api_version(self) -> str:
        return self.body.get("apiVersion") or (self.resource.api_version if self.resource else "")

    @property
    def kind(self) -> str:
        return self.body.get("kind") or (self.resource.kind if self.resource else "")

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]

    @property
    def namespace(self) -> str | None:
        return self.body["metadata"].get("namespace")

    @property
    def key(self) -> tuple:
        return (self.api_version.rpartition("/")[0], self.kind, self.namespace, self.name)

    @property
    def ref(self) -> str:
        return describe(self.kind, self.namespace, self.name)


def list_live(api: KubeApi, resource: Resource, label_selector: str | None = None) -> tuple:
    """Return ({name: object}, resourceVersion) with one LIST request."""
    data = api.list(resource.path(), label_selector=label_selector)
    items = {i["metadata"]["name"]: i for i in data.get("items", [])}
    return items, data.get("metadata", {}).get("resourceVersion")


# ---------------------------------------------------------------------------------------------- comparison
def _key_path(path: str, key: str) -> str:
    if re.match(r"^[A-Za-z0-9_-]+$", key):
        return "%s.%s" % (path, key) if path else key
    return '%s["%s"]' % (path, key)


def _scalar_equal(want, have) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):  # True == 1 in Python, not in Kubernetes
        return isinstance(want, bool) and isinstance(have, bool) and want == have
    return want == have


def _differences(want, have, path, out):
    if isinstance(want, dict):
        if not isinstance(have, dict):
            out.append(path or ".")
            return
        for key, value in want.items():
            sub = _key_path(path, key)
            if key not in have:
                if value is not None:  # null: the field must not be set, and it is not
                    out.append(sub)
            else:
                _differences(value, have[key], sub, out)
    elif isinstance(want, (list, tuple)):
        if not isinstance(have, list) or len(want) != len(have):
            out.append(path or ".")
            return
        for i, w in enumerate(want):
            _differences(w, have[i], "%s[%d]" % (path, i), out)
    elif not _scalar_equal(want, have):
        out.append(path or ".")


def differences(want: Any, have: Any) -> list:
    """Field paths where ``have`` (the live object) does not contain ``want`` (the desired one).

    Maps: every desired key must be there (extra live keys are fine); lists: the same length and item by
    item the same rule (extra keys the API server defaults inside items are fine); scalars: equal, with
    booleans never equal to numbers. A desired ``null`` matches an absent field. Empty: nothing differs.
    """
    out: list = []
    _differences(want, have, "", out)
    return out


def applied_hash(body: dict) -> str:
    """Fingerprint of a definition as applied (canonical JSON, without the fingerprint annotation)."""
    body = copy.deepcopy(body)
    annotations = (body.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(HASH_ANNOTATION, None)
        if not annotations:
            body["metadata"].pop("annotations")
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def with_hash(body: dict) -> dict:
    """The body to send: ``body`` plus its fingerprint annotation."""
    out = copy.deepcopy(body)
    meta = out["metadata"]
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    meta["annotations"][HASH_ANNOTATION] = applied_hash(body)
    return out


def _keep_live_lists(after, live, desired):
    """Where a desired list is contained in the live one (``differences`` empty), the apiserver stores the
    live list again (same items, same defaults): keep it in the prediction instead of the bare desired list."""
    if not (isinstance(after, dict) and isinstance(live, dict) and isinstance(desired, dict)):
        return
    for key, want in desired.items():
        have = live.get(key)
        if isinstance(want, list) and isinstance(have, list):
            if not differences(want, have):
                after[key] = copy.deepcopy(have)
        elif isinstance(want, dict) and key in after:
            _keep_live_lists(after[key], have, want)


def predict(live: dict, sent: dict, manager: str, keep_live_lists: bool = False) -> dict:
    """The object (normalised) the apiserver stores after server-side apply of ``sent`` with ``force``.

    ``live`` with the fields ``manager`` owned and no longer sends removed - unless another manager owns
    them too, as server-side apply keeps those - then ``sent`` merged in (maps merged, lists replaced).
    With ``keep_live_lists`` a list the live object already holds (contained, see ``differences``) is kept
    with its server defaults. Server defaults of new list items or new objects are not predicted.
    """
    before = normalize(live)
    desired = normalize(sent)
    after = ssa.predict(before, desired, ssa.removable_paths(live, manager))
    if keep_live_lists:
        _keep_live_lists(after, before, desired)
    return after


class Strategy:
    """How a desired object is sent and compared with the live one."""

    name = "exact"
    report_objects = True  # results carry the object, its conditions and readiness
    keep_live_lists = False

    def body(self, desired: Desired) -> dict:
        body = copy.deepcopy(desired.body)
        if desired.resource is not None:
            body["apiVersion"], body["kind"] = desired.resource.api_version, desired.resource.kind
        return body

    def differences(self, sent: dict, before: dict, after: dict) -> list:
        """Non-empty when the object must be written (``before``/``after``: normalised live and predicted)."""
        return ["."] if after != before else []


class Contains(Strategy):
    name = "contains"
    report_objects = False
    keep_live_lists = True

    def body(self, desired: Desired) -> dict:
        return with_hash(desired.body)

    def differences(self, sent: dict, before: dict, after: dict) -> list:
        diffs = differences(sent, before)
        # the fingerprint differs whenever anything does: named only when nothing else is (a removed field)
        return [d for d in diffs if d != HASH_PATH] or diffs


EXACT = Strategy()
CONTAINS = Contains()


# ---------------------------------------------------------------------------------------------- plan
class PlanItem:
    """One object of the plan: ``action`` is create, update, delete or unchanged (what the run does, or would
    do in check mode); after ``execute``: ``written``, ``result`` and, on failure, ``error``."""

    def __init__(
        self,
        target: Desired,
        action: str,
        sent: dict | None = None,
        live: dict | None = None,
        before: dict | None = None,
        after: dict | None = None,
        removed: list | None = None,
        differences: list | None = None,
        report_objects: bool = True,
    ) -> None:
        self.target, self.action, self.sent, self.live = target, action, sent, live
        self.before, self.after = before or {}, after or {}
        self.removed, self.differences = removed or [], differences or []
        self.report_objects = report_objects
        self.deleting = False  # state absent: the object is already being deleted (finalizers pending)
        self.result: dict | None = None  # object the apiserver returned after the write (or the wait saw)
        self.written = False  # the apiserver accepted the write
        self.error: str | None = None  # "failed" for the write that failed, "not attempted" after it

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def namespace(self) -> str | None:
        return self.target.namespace

    @property
    def resource(self) -> Resource:
        return self.target.resource

    @property
    def ref(self) -> str:
        return self.target.ref

    @property
    def changed(self) -> bool:
        return self.action in ("create", "update", "delete")

    @property
    def method(self) -> str:
        return {"create": "server-side-apply", "update": "server-side-apply", "delete": "delete"}.get(
            self.action, "none"
        )

    def to_dict(self) -> dict:
        out = {
            "api_version": self.target.api_version,
            "kind": self.target.kind,
            "namespace": self.namespace,
            "name": self.name,
            "action": self.action,
            "changed": self.changed,
            "method": self.method,
        }
        if self.removed:
            out["removed_fields"] = [".".join(p) for p in self.removed]
        if self.action == "update" and self.differences and self.differences != ["."]:
            out["differences"] = self.differences
        if self.error:
            out["error"] = self.error
        obj = self.result or (self.live if self.action != "delete" else None)
        if obj and self.report_objects:
            out["object"] = strip_managed_fields(obj)
            status = obj.get("status") or {}
            out["conditions"] = status.get("conditions") or []
            out["ready"] = is_ready(obj)
            if self.target.kind == "NodePool":
                out["usage"] = {
                    "nodes": status.get("nodes"),
                    "resources": status.get("resources") or {},
                    "limits": (obj.get("spec") or {}).get("limits") or {},
                }
        return out


def make_plan(
    targets: Iterable[Desired],
    live: dict,
    state: str = "present",
    strategy: Strategy = EXACT,
    manager: str = FIELD_MANAGER,
) -> list:
    """One PlanItem per target, without a request. ``live``: {target.key: live object}."""
    plan = []
    for t in targets:
        cur = live.get(t.key)
        if state == "absent":
            if cur is None or (cur.get("metadata") or {}).get("deletionTimestamp"):  # gone or being deleted
                item = PlanItem(t, "unchanged", live=cur, report_objects=strategy.report_objects)
                item.deleting = cur is not None
                plan.append(item)
            else:
                plan.append(
                    PlanItem(t, "delete", live=cur, before=normalize(cur), report_objects=strategy.report_objects)
                )
            continue
        sent = strategy.body(t)
        if cur is None:
            plan.append(PlanItem(t, "create", sent=sent, after=normalize(sent), report_objects=strategy.report_objects))
            continue
        before = normalize(cur)
        after = predict(cur, sent, manager, keep_live_lists=strategy.keep_live_lists)
        diffs = strategy.differences(sent, before, after)
        removed = [
            p
            for p in ssa.removed_paths(ssa.removable_paths(cur, manager), sent)
            if p[:2] != ("metadata", "managedFields")
        ]
        action = "update" if diffs else "unchanged"
        plan.append(
            PlanItem(
                t,
                action,
                sent=sent,
                live=cur,
                before=before,
                after=after,
                removed=removed if diffs else [],
                differences=diffs,
                report_objects=strategy.report_objects,
            )
        )
    return plan


def plan_kind(
    resource: Resource,
    desired: list,
    live: dict,
    state: str = "present",
    prune: bool = False,
    manager: str = FIELD_MANAGER,
    strategy: Strategy = EXACT,
) -> list:
    """``make_plan`` for objects of one resource; ``live``: {name: object} (``list_live``). With ``prune``,
    objects we manage (``MANAGED_BY_LABEL``) that ``desired`` does not name are deleted, as ``state=absent``
    deletes: one already being deleted (finalizers pending, e.g. after an interrupted run) is not deleted again."""
    targets = [Desired(i, obj, resource) for i, obj in enumerate(desired)]
    plan = make_plan(targets, {t.key: live.get(t.name) for t in targets if t.name in live}, state, strategy, manager)
    if prune and state == "present":
        wanted = set(t.name for t in targets)
        pruned = [
            Desired(None, {"metadata": {"name": name}}, resource)
            for name, cur in sorted(live.items())
            if name not in wanted
            and (cur.get("metadata", {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
        ]
        plan += make_plan(pruned, {t.key: live[t.name] for t in pruned}, "absent", strategy, manager)
    return plan


def disruption_of_deletes(api: KubeApi, resource: Resource, plan: list) -> dict:
    """For each planned delete: the NodeClaims (nodes) it would disrupt. One NodeClaim LIST at most."""
    deletes = [i.name for i in plan if i.action == "delete"]
    if not deletes or resource.kind not in ("NodePool", "EC2NodeClass"):
        return {}
    claims, _rv = list_live(api, NODECLAIM)
    affected: dict = {}
    for cname, claim in sorted(claims.items()):
        if resource.kind == "NodePool":
            owner = (claim.get("metadata", {}).get("labels") or {}).get("karpenter.sh/nodepool")
        else:
            ref = (claim.get("spec") or {}).get("nodeClassRef") or {}
            owner = ref.get("name") if ref.get("kind") == resource.kind else None
        if owner in deletes:
            affected.setdefault(owner, []).append(cname)
    return affected


# ---------------------------------------------------------------------------------------------- writes
def _write(api, item: PlanItem, manager: str) -> None:
    path = item.resource.path(item.name, item.namespace)
    try:
        if item.action == "delete":
            try:
                api.delete(path)
            except KubeError as exc:
                # already gone: our DELETE was served and its answer lost (the retry finds nothing), or someone
                # deleted the object after our LIST. Either way what the plan asked for is done.
                if exc.status != 404:
                    raise
            item.written = True
            return
        item.result = api.apply(path, item.sent, manager, force=True)
    except KubeError as err:
        # pylint cannot follow KubeError's bases across the collection's packages (a false positive):
        raise KubeError("%s: %s" % (item.ref, err), status=err.status, body=err.body) from err  # pylint: disable=bad-exception-cause
    item.written = True
    item.after = normalize(item.result)


def execute(
    api: KubeApi,
    plan: list,
    check_mode: bool = False,
    manager: str = FIELD_MANAGER,
    concurrency: int = WRITE_CONCURRENCY,
) -> None:
    """Run the writes of ``plan``; none in check mode. Sets ``item.result`` and the stored ``after``.

    Kinds are written in input order (a Namespace before the objects in it, node classes before the
    NodePools that reference them); the objects of one run of the same kind are independent, so up to
    ``concurrency`` of their writes are in flight at once (the client retries 429s). On the first failure no
    further write is started, the ones in flight finish, and the error is raised naming the object.
    ``item.written`` tells which writes were done; ``item.error`` marks the failed one and those not attempted.
    """
    todo = [item for item in plan if item.changed and not check_mode]
    failed: list = []
    written = [0]
    lock = threading.Lock()

    def guarded(item):
        if failed:  # a write already failed: do not start more
            item.error = "not attempted"
            return
        try:
            _write(api, item, manager)
        except Exception as exc:
            item.error = "failed"
            failed.append(exc)
            return
        with lock:
            written[0] += 1
            progress.update("writing %s" % plural(item.resource), written[0], len(todo))

    for _kind, group in itertools.groupby(todo, key=lambda i: (i.resource.group, i.resource.kind)):
        group = list(group)
        if len(group) <= 1 or concurrency <= 1:
            for item in group:
                guarded(item)
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(concurrency, len(group))) as pool:
                list(pool.map(guarded, group))
    if failed:
        raise failed[0]


def dry_run(api: KubeApi, plan: list, manager: str = FIELD_MANAGER, concurrency: int = WRITE_CONCURRENCY) -> list:
    """Server-side dry-run of every create and update of ``plan`` (nothing is stored; up to ``concurrency`` in
    flight, as the writes); returns one problem dict (``object``, ``status``, ``message``) per object the
    apiserver - its validation, admission webhooks and policies - rejects, in plan order. Callers run it before
    the first real write of a batch, so that an object the offline checks pass but the cluster refuses stops
    the whole batch before anything is written."""
    todo = [item for item in plan if item.action in ("create", "update")]

    def one(item):
        try:
            api.apply(item.resource.path(item.name, item.namespace), item.sent, manager, force=True, dry_run=True)
        except KubeError as exc:
            if is_transient(exc):
                raise  # not a verdict on the object: the API is unavailable
            # a 4xx, or a deterministic 500 (server-side apply cannot build a typed patch from a field of the
            # wrong type): the apiserver refuses this object
            return {"object": item.ref, "status": exc.status, "message": str(exc)}
        return None

    if len(todo) <= 1 or concurrency <= 1:
        answers = [one(item) for item in todo]
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(concurrency, len(todo))) as pool:
            answers = list(pool.map(one, todo))
    return [a for a in answers if a is not None]


# ---------------------------------------------------------------------------------------------- results
def _redact(obj: dict) -> dict:
    if obj.get("kind") != "Secret" or obj.get("apiVersion") != "v1":
        return obj
    out = copy.deepcopy(obj)
    for field in ("data", "stringData"):
        if isinstance(out.get(field), dict):
            out[field] = dict(
                (k, "%s sha256:%s" % (REDACTED, hashlib.sha256(str(v).encode("utf-8")).hexdigest()[:12]))
                for k, v in out[field].items()
            )
    return out


class Timings:
    """Seconds spent in each step of a run (read, validate, plan, dry_run, write, wait), reported as ``timings``
    so that a slow run says where its time went."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = clock()
        self.steps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """The time since the previous lap (or the start) was spent in step ``name``."""
        now = self._clock()
        self.steps[name] = round(self.steps.get(name, 0.0) + now - self._last, 3)
        self._last = now


def report(plan: list, warnings: Iterable = (), requests: dict | None = None, timings: Timings | None = None) -> dict:
    """The result every apply module returns: changed, results, written, diff (before/after of each changed
    object; Secret values redacted), warnings, requests and the seconds per step (``timings``). After a failed
    write ``changed`` tells whether a write was done (the failed one and those not attempted do not count)."""
    return {
        "timings": dict(timings.steps) if timings else {},
        "changed": any(i.changed and not i.error for i in plan),
        "results": [i.to_dict() for i in plan],
        "written": [i.ref for i in plan if i.written],
        "diff": [
            {"before": _redact(i.before), "after": _redact(i.after), "before_header": i.ref, "after_header": i.ref}
            for i in plan
            if i.changed
        ],
        "warnings": [str(w) for w in warnings],
        "requests": requests or {},
    }


# ---------------------------------------------------------------------------------------------- waits
def plural(resource: Resource) -> str:
    """``NodePools``, ``EC2NodeClasses``, ``ConfigMaps``: the kind as the status lines name it."""
    kind = resource.kind
    return kind + ("es" if kind.endswith(("s", "x", "ch", "sh")) else "s")


def is_ready(obj: dict) -> bool:
    """Karpenter's Ready condition, for the current generation."""
    gen = (obj.get("metadata") or {}).get("generation")
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            observed = c.get("observedGeneration")
            return c.get("status") == "True" and (observed is None or gen is None or observed >= gen)
    return False


def _generation(obj: dict) -> int:
    return (obj.get("metadata") or {}).get("generation") or 0


def wait_ready(api: KubeApi, resource: Resource, plan: list, timeout: float, list_version: str | None) -> list:
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

    def tell(force=False):
        progress.update(
            "waiting for %s to be Ready" % plural(resource), len(items) - len(pending), len(items), pending, force
        )

    def done(event_type, obj):
        if event_type != "DELETED":
            seen(obj)
        tell()
        return not pending

    def relisted(objs):  # the watch expired: the current objects
        for obj in objs:
            seen(obj)
        tell()
        return not pending

    tell(force=True)
    api.watch_until(resource.path(), done, list_version, timeout, on_list=relisted)
    return sorted(pending)


def wait_deleted(api: KubeApi, resource: Resource, plan: list, timeout: float, list_version: str | None) -> list:
    """Wait until every object this plan deletes - or found already being deleted - is gone (finalizers
    done); returns the names left.

    Same single watch as wait_ready: from the LIST's resourceVersion it replays our DELETE's effect,
    so an object removed at once is seen as well as one a finalizer holds for a while.
    """
    pending = set(item.name for item in plan if item.action == "delete" or item.deleting)
    if not pending:
        return []
    total = len(pending)

    def tell(force=False):
        progress.update("waiting for %s to be deleted" % plural(resource), total - len(pending), total, pending, force)

    def done(event_type, obj):
        if event_type == "DELETED":
            pending.discard(obj.get("metadata", {}).get("name"))
        tell()
        return not pending

    def relisted(objs):  # the watch expired: what is not listed is gone
        pending.intersection_update((o.get("metadata") or {}).get("name") for o in objs)
        tell()
        return not pending

    tell(force=True)

    api.watch_until(resource.path(), done, list_version, timeout, on_list=relisted)
    return sorted(pending)
