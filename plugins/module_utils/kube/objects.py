# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain Kubernetes objects (Namespaces, ConfigMaps, NetworkPolicies, Kyverno policies, Prometheus Operator
objects, ...) converged with server-side apply, writing only what differs. No Ansible import: the module
``k8s_objects`` only wires its parameters to ``run``.

    objs = prepare(definitions)                 # input checks; nothing is sent on any error
    resolve(api, objs, namespace)               # kinds: built-in table, discovery only for other kinds
    live, unserved = read_live(api, objs)       # one LIST per kind and namespace
    plan = make_plan(objs, live, state, ...)    # no request
    execute(api, plan, check_mode, ...)         # only the objects that differ; nothing in check mode

An object is up to date when the live object contains every desired field (``differences``: maps key by
key, lists item by item with the same length, so fields the API server adds or defaults - also inside list
items - do not count) and carries the fingerprint of the definition last applied (annotation
``HASH_ANNOTATION``), so a field removed from the definition is still noticed and server-side apply removes
it. This is the rule of the roles' former ``k8s-pending.j2`` template, with the fingerprint in place of
``kubectl.kubernetes.io/last-applied-configuration`` (a full copy of a Grafana dashboard there would double
its size).
"""

from __future__ import absolute_import, division, print_function

import base64
import copy
import hashlib
import json
import re

from . import ssa
from .client import KubeError
from .engine import FIELD_MANAGER, normalize

HASH_ANNOTATION = "karpenter-eks.platform/applied-sha256"

# (apiVersion, kind) -> (plural, namespaced): no discovery request for these. Other kinds are looked up
# with one discovery GET per apiVersion.
KNOWN_KINDS = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "LimitRange"): ("limitranges", True),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("scheduling.k8s.io/v1", "PriorityClass"): ("priorityclasses", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("kyverno.io/v1", "ClusterPolicy"): ("clusterpolicies", False),
    ("kyverno.io/v1", "Policy"): ("policies", True),
    ("monitoring.coreos.com/v1", "PrometheusRule"): ("prometheusrules", True),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("servicemonitors", True),
    ("monitoring.coreos.com/v1", "PodMonitor"): ("podmonitors", True),
}

HASH_PATH = 'metadata.annotations["%s"]' % HASH_ANNOTATION
API_VERSION_RE = re.compile(r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[a-z0-9]+$")
KIND_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
REDACTED = "<redacted>"


class InputError(Exception):
    """Bad input: nothing was written. ``details``: one dict per problem (index, object, field, message)."""

    def __init__(self, msg, details=None):
        super(InputError, self).__init__(msg)
        self.details = details or []


class ObjectError(Exception):
    """A request about one object failed; ``item`` is its plan entry (writes before it were done)."""

    def __init__(self, item, exc):
        super(ObjectError, self).__init__("%s: %s" % (item.ref, exc))
        self.item, self.status = item, getattr(exc, "status", None)
        self.result = None  # the module result up to the failure (set by run)


class Resource(object):
    """Where a kind lives in the API: plural name and scope."""

    def __init__(self, api_version, kind, plural, namespaced):
        self.api_version, self.kind, self.plural, self.namespaced = api_version, kind, plural, namespaced

    def path(self, namespace=None, name=None):
        base = "/api/v1" if self.api_version == "v1" else "/apis/" + self.api_version
        if self.namespaced:
            base += "/namespaces/" + namespace
        base += "/" + self.plural
        return base + ("/" + name if name else "")


class Obj(object):
    """One desired object: its position in ``definitions``, the body to apply and, once resolved, its Resource."""

    def __init__(self, index, body):
        self.index, self.body, self.resource = index, body, None

    @property
    def api_version(self):
        return self.body["apiVersion"]

    @property
    def kind(self):
        return self.body["kind"]

    @property
    def name(self):
        return self.body["metadata"]["name"]

    @property
    def namespace(self):
        return self.body["metadata"].get("namespace")

    @property
    def key(self):
        return (self.api_version.split("/")[0] if "/" in self.api_version else "", self.kind, self.namespace, self.name)

    @property
    def ref(self):
        return describe(self.kind, self.namespace, self.name)


def describe(kind, namespace, name):
    return "%s %s%s" % (kind, namespace + "/" if namespace else "", name)


# ---------------------------------------------------------------------------------------------- comparison
def _key_path(path, key):
    if re.match(r"^[A-Za-z0-9_-]+$", key):
        return "%s.%s" % (path, key) if path else key
    return '%s["%s"]' % (path, key)


def _scalar_equal(want, have):
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


def differences(want, have):
    """Field paths where ``have`` (the live object) does not contain ``want`` (the desired one).

    Maps: every desired key must be there (extra live keys are fine); lists: the same length and item by
    item the same rule (extra keys the API server defaults inside items are fine); scalars: equal, with
    booleans never equal to numbers. A desired ``null`` matches an absent field. Empty: nothing differs.
    """
    out = []
    _differences(want, have, "", out)
    return out


def applied_hash(body):
    """Fingerprint of a definition as applied (canonical JSON, without the fingerprint annotation)."""
    body = copy.deepcopy(body)
    annotations = (body.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(HASH_ANNOTATION, None)
        if not annotations:
            body["metadata"].pop("annotations")
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def with_hash(body):
    """The body to send: ``body`` plus its fingerprint annotation."""
    out = copy.deepcopy(body)
    meta = out["metadata"]
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    meta["annotations"][HASH_ANNOTATION] = applied_hash(body)
    return out


def _overlaps(path, others):
    return any(o[: len(path)] == path or path[: len(o)] == o for o in others)


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


def predict(live, sent, manager):
    """The object (normalised) the apiserver stores after server-side apply of ``sent`` with ``force``.

    ``live`` with the fields ``manager`` owned and no longer sends removed (unless another manager owns
    them too), then ``sent`` merged in (maps merged, lists replaced), lists the live object already holds
    kept with their server defaults. Server defaults of new list items or new objects are not predicted.
    """
    before = normalize(live)
    desired = normalize(sent)
    others = ssa.owned_paths_of_others(live, manager)
    removable = set(p for p in ssa.owned_paths(live, manager) if not _overlaps(p, others))
    after = ssa.predict(before, desired, removable)
    _keep_live_lists(after, before, desired)
    return after


# ---------------------------------------------------------------------------------------------- input
def _flatten(definitions):
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
        if isinstance(d, (list, tuple)):  # lookup(...) | from_yaml_all inside a list
            out.extend(x for x in d if x is not None)
        elif d is not None:
            out.append(d)
    return out


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _json_problem(value, path):
    """The first path holding something JSON cannot carry (a YAML date, a set, ...), or None."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return _key_path(path, str(k)), "keys must be strings, got %s" % _type_name(k)
            found = _json_problem(v, _key_path(path, k))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _json_problem(v, "%s[%d]" % (path, i))
            if found:
                return found
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        return path, "must be a string, number, boolean, null, list or mapping, got %s (quote it)" % _type_name(value)
    return None


def _label(index, d):
    """``definitions[i] (Kind ns/name)`` with whatever of kind and name is usable."""
    meta = d.get("metadata") if isinstance(d, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    kind = d.get("kind") if isinstance(d, dict) else None
    name, ns = meta.get("name"), meta.get("namespace")
    parts = []
    if isinstance(kind, str) and kind:
        parts.append(kind)
    if isinstance(name, str) and name:
        parts.append((ns + "/" if isinstance(ns, str) and ns else "") + name)
    return "definitions[%d]%s" % (index, " (%s)" % " ".join(parts) if parts else "")


def _name_problem(value):
    if value is None or value == "":
        return "Required value"
    if not isinstance(value, str):
        return 'Invalid value: "%s": must be of type string' % _type_name(value)
    if not value:
        return "Required value"
    if "/" in value or value in (".", ".."):
        return 'Invalid value: "%s": may not contain "/" or be "." or ".."' % value
    return None


def _fold_string_data(body):
    """v1 Secret: ``stringData`` is stored in ``data`` (base64) - compare and apply it that way."""
    string_data = body.pop("stringData", None)
    if string_data:
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode("utf-8")).decode("ascii")
        body["data"] = data


def prepare(definitions):
    """Check the definitions without a request; returns [Obj]. Raises InputError listing every problem."""
    objs, problems = [], []

    def problem(index, d, field, message):
        problems.append(
            {"index": index, "object": _label(index, d), "field": field, "message": message},
        )

    for i, d in enumerate(_flatten(definitions)):
        if not isinstance(d, dict):
            problem(i, d, "", "must be a mapping (a Kubernetes manifest), got %s" % _type_name(d))
            continue
        found = _json_problem(d, "")
        if found:
            problem(i, d, found[0], found[1])
            continue
        before = len(problems)
        for field, rx in (("apiVersion", API_VERSION_RE), ("kind", KIND_RE)):
            value = d.get(field)
            if value is None or value == "":
                problem(i, d, field, "Required value")
            elif not isinstance(value, str):
                problem(i, d, field, 'Invalid value: "%s": must be of type string' % _type_name(value))
            elif not rx.match(value):
                problem(i, d, field, 'Invalid value: "%s"' % value)
        meta = d.get("metadata")
        if meta is None:
            problem(i, d, "metadata.name", "Required value")
        elif not isinstance(meta, dict):
            problem(i, d, "metadata", 'Invalid value: "%s": must be of type mapping' % _type_name(meta))
        else:
            msg = _name_problem(meta.get("name"))
            if msg:
                problem(i, d, "metadata.name", msg)
            ns = meta.get("namespace")
            if ns is not None:
                msg = _name_problem(ns)
                if msg:
                    problem(i, d, "metadata.namespace", msg)
            for field in ("labels", "annotations"):
                value = meta.get(field)
                if value is None:
                    continue
                if not isinstance(value, dict):
                    problem(
                        i, d, "metadata." + field, 'Invalid value: "%s": must be of type mapping' % _type_name(value)
                    )
                    continue
                for k, v in value.items():
                    if not isinstance(v, str):
                        problem(
                            i,
                            d,
                            _key_path("metadata." + field, k),
                            'Invalid value: "%s": must be of type string (quote it)' % _type_name(v),
                        )
        if len(problems) > before:
            continue
        body = copy.deepcopy(d)
        if body.get("apiVersion") == "v1" and body.get("kind") == "Secret":
            _fold_string_data(body)
        objs.append(Obj(i, body))
    if problems:
        raise _input_error(problems)
    return objs


def _input_error(problems):
    problems = sorted(problems, key=lambda p: p["index"])
    lines = [
        "%s: %s: %s" % (p["object"], p["field"], p["message"])
        if p["field"]
        else "%s: %s"
        % (
            p["object"],
            p["message"],
        )
        for p in problems
    ]
    return InputError(
        "%d problem(s) in definitions, nothing was applied:\n  %s" % (len(problems), "\n  ".join(lines)),
        details=problems,
    )


def resolve(api, objs, namespace=None):
    """Set ``obj.resource`` for every object: the built-in table, else one discovery GET per apiVersion.

    Namespaced objects need a namespace (``namespace`` is the default); a namespace on a cluster-scoped
    object is dropped (as kubectl does). Returns warnings; raises InputError (unknown kind, missing
    namespace, the same object twice) before anything is written.
    """
    discovered, problems, warnings = {}, [], []
    for o in objs:
        known = KNOWN_KINDS.get((o.api_version, o.kind))
        if known is None:
            if o.api_version not in discovered:
                discovered[o.api_version] = _discover(api, o.api_version)
            served = discovered[o.api_version]
            if served is None:
                problems.append(
                    _problem(o, "apiVersion", 'Invalid value: "%s": not served by the cluster' % o.api_version)
                )
                continue
            known = served.get(o.kind)
            if known is None:
                problems.append(
                    _problem(
                        o,
                        "kind",
                        'Invalid value: "%s": no such kind in %s (served: %s)'
                        % (o.kind, o.api_version, ", ".join(sorted(served)) or "none"),
                    )
                )
                continue
        plural, namespaced = known
        o.resource = Resource(o.api_version, o.kind, plural, namespaced)
        if namespaced and not o.namespace:
            if namespace:
                o.body["metadata"]["namespace"] = namespace
            else:
                problems.append(_problem(o, "metadata.namespace", "Required value: %s is namespaced" % o.kind))
        elif not namespaced and "namespace" in o.body["metadata"]:
            if o.namespace:
                warnings.append("%s: %s is cluster-scoped, metadata.namespace ignored" % (o.ref, o.kind))
            del o.body["metadata"]["namespace"]
    seen = {}
    for o in objs:
        if o.resource is not None and o.key in seen:
            problems.append(_problem(o, "metadata.name", "Duplicate value: also definitions[%d]" % seen[o.key]))
        seen.setdefault(o.key, o.index)
    if problems:
        raise _input_error(problems)
    return warnings


def _problem(o, field, message):
    return {"index": o.index, "object": "definitions[%d] (%s)" % (o.index, o.ref), "field": field, "message": message}


def _discover(api, api_version):
    """{kind: (plural, namespaced)} served for ``api_version``, or None when the API is not served."""
    path = "/api/v1" if api_version == "v1" else "/apis/" + api_version
    try:
        data = api.get(path)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    out = {}
    for r in data.get("resources") or []:
        if "/" not in r.get("name", "/"):  # not a subresource
            out.setdefault(r.get("kind"), (r["name"], bool(r.get("namespaced"))))
    return out


# ---------------------------------------------------------------------------------------------- reads
def read_live(api, objs):
    """({obj.key: live object}, {(apiVersion, kind)} not served). One LIST per kind and namespace; a LIST
    filtered by name when only one object of the group is wanted (a 404 then means the kind is not served,
    not that the object is missing)."""
    groups = {}
    for o in objs:
        groups.setdefault((o.api_version, o.kind, o.namespace), []).append(o)
    live, unserved = {}, set()
    for (api_version, kind, namespace), members in groups.items():
        resource = members[0].resource
        query = {"fieldSelector": "metadata.name=%s" % members[0].name} if len(members) == 1 else None
        try:
            data = api.call("list", "GET", resource.path(namespace), query=query)
        except KubeError as exc:
            if exc.status == 404:
                unserved.add((api_version, kind))
                continue
            raise
        wanted = dict((o.name, o) for o in members)
        for item in data.get("items") or []:
            o = wanted.get((item.get("metadata") or {}).get("name"))
            if o is not None:
                item.setdefault("apiVersion", api_version)  # list items of built-in kinds carry neither
                item.setdefault("kind", kind)
                live[o.key] = item
    return live, unserved


# ---------------------------------------------------------------------------------------------- plan
class Item(object):
    """Plan entry: ``action`` is unchanged, created, updated or deleted (what the run does, or would do)."""

    def __init__(self, obj, action, sent=None, before=None, after=None, diffs=None):
        self.obj, self.action, self.sent = obj, action, sent
        self.before, self.after, self.differences = before or {}, after or {}, diffs or []
        self.error = None  # after a failed run: "failed" for the object whose request failed, "not attempted" after

    @property
    def changed(self):
        return self.action != "unchanged"

    @property
    def ref(self):
        return self.obj.ref

    def to_dict(self):
        out = {
            "api_version": self.obj.api_version,
            "kind": self.obj.kind,
            "namespace": self.obj.namespace,
            "name": self.obj.name,
            "action": self.action,
            "changed": self.changed,
        }
        if self.action == "updated":
            out["differences"] = self.differences
        if self.error:
            out["error"] = self.error
        return out


def make_plan(objs, live, state="present", manager=FIELD_MANAGER):
    """One Item per object (no request). ``live``: {obj.key: live object}."""
    plan = []
    for o in objs:
        cur = live.get(o.key)
        if state == "absent":
            if cur is None or (cur.get("metadata") or {}).get("deletionTimestamp"):  # gone or being deleted
                plan.append(Item(o, "unchanged"))
            else:
                plan.append(Item(o, "deleted", before=normalize(cur)))
            continue
        sent = with_hash(o.body)
        if cur is None:
            plan.append(Item(o, "created", sent=sent, after=normalize(sent)))
            continue
        diffs = differences(sent, cur)
        if not diffs:
            plan.append(Item(o, "unchanged", sent=sent))
            continue
        # the fingerprint differs whenever anything does: named only when nothing else is (a removed field)
        diffs = [d for d in diffs if d != HASH_PATH] or diffs
        plan.append(
            Item(o, "updated", sent=sent, before=normalize(cur), after=predict(cur, sent, manager), diffs=diffs)
        )
    return plan


def execute(api, plan, check_mode=False, manager=FIELD_MANAGER):
    """The writes of ``plan``, in input order (a Namespace before the objects in it); none in check mode.
    The stored result replaces the predicted ``after``. On the first failure no further write is sent and
    ObjectError names the object (``item.error`` marks it "failed" and the later ones "not attempted")."""
    if check_mode:
        return
    failed = None
    for item in plan:
        if not item.changed:
            continue
        if failed is not None:
            item.error = "not attempted"
            continue
        o = item.obj
        path = o.resource.path(o.namespace, o.name)
        try:
            if item.action == "deleted":
                api.delete(path)
            else:
                item.after = normalize(api.apply(path, item.sent, manager, force=True))
        except KubeError as exc:
            if item.action == "deleted" and exc.status == 404:  # gone meanwhile
                item.action, item.before = "unchanged", {}
                continue
            item.error = "failed"
            failed = ObjectError(item, exc)
    if failed is not None:
        raise failed


def _redact(obj):
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


def report(plan, warnings=(), requests=None):
    """The module result: changed, results, diff (before/after of each changed object), warnings, requests.
    After a failed write, ``changed`` tells whether any write was done (the failed one and those not attempted
    do not count)."""
    return {
        "changed": any(i.changed and not i.error for i in plan),
        "results": [i.to_dict() for i in plan],
        "diff": [
            {
                "before": _redact(i.before),
                "after": _redact(i.after),
                "before_header": i.ref,
                "after_header": i.ref,
            }
            for i in plan
            if i.changed
        ],
        "warnings": list(warnings),
        "requests": requests or {},
    }


def run(api, definitions, state="present", check_mode=False, manager=FIELD_MANAGER, namespace=None):
    """Converge ``definitions``; see the k8s_objects module documentation. Raises InputError (nothing was
    sent but reads), ObjectError (a write failed; the earlier ones were done) or KubeError (a read failed)."""
    objs = prepare(definitions)
    warnings = resolve(api, objs, namespace)
    live, unserved = read_live(api, objs)
    if unserved and state == "present":
        raise _input_error(
            [
                _problem(
                    o, "kind", "%s %s is not served by the cluster (is its CRD installed?)" % (o.api_version, o.kind)
                )
                for o in objs
                if (o.api_version, o.kind) in unserved
            ]
        )
    plan = make_plan(objs, live, state, manager)
    try:
        execute(api, plan, check_mode, manager)
    except ObjectError as exc:
        exc.result = report(plan, warnings, api.request_summary())
        raise
    return report(plan, warnings, api.request_summary())
