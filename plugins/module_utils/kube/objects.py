# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain Kubernetes objects (Namespaces, ConfigMaps, NetworkPolicies, Kyverno policies, Prometheus Operator
objects, ...) converged with server-side apply, writing only what differs. No Ansible import: the module
``k8s_objects`` only wires its parameters to ``run``.

    objs = prepare(definitions)                         # input checks; nothing is sent on any error
    resolve(api, objs, namespace)                       # kinds: built-in table, discovery only for other kinds
    live, unserved = read_live(api, objs)               # one LIST per kind and namespace
    plan = engine.make_plan(objs, live, state, engine.CONTAINS, manager)   # no request
    engine.execute(api, plan, check_mode, manager)      # only the objects that differ; nothing in check mode

The plan and the writes are the apply engine's (``engine.py``); this module only reads and checks the input
and finds each kind's resource. The comparison is the engine's ``CONTAINS`` strategy: an object is up to
date when the live object contains every desired field (so fields the API server adds or defaults - also
inside list items - do not count) and carries the fingerprint of the definition last applied
(``HASH_ANNOTATION``), so a field removed from the definition is still noticed and server-side apply removes
it. The fingerprint stands in for ``kubectl.kubernetes.io/last-applied-configuration`` (a full copy of a
Grafana dashboard there would double its size).
"""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

from ..errors import InputError
from . import engine
from .client import KubeApi, KubeError
from .engine import FIELD_MANAGER, Desired
from .resource import KNOWN_KINDS, Resource

API_VERSION_RE = re.compile(r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[a-z0-9]+$")
KIND_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


# ---------------------------------------------------------------------------------------------- input
def _key_path(path, key):
    if re.match(r"^[A-Za-z0-9_-]+$", key):
        return "%s.%s" % (path, key) if path else key
    return '%s["%s"]' % (path, key)


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


def prepare(definitions: Any) -> list[Desired]:
    """Check the definitions without a request; returns [engine.Desired]. Raises InputError listing every problem."""
    objs, problems = [], []

    def problem(index, d, field, message):
        problems.append(
            {"index": index, "object": _label(index, d), "field": field, "message": message},
        )

    for i, d in enumerate(engine.flatten(definitions)):
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
        objs.append(Desired(i, body))
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


def resolve(api: KubeApi, objs: list[Desired], namespace: str | None = None) -> list[str]:
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
        o.resource = Resource.of(o.api_version, o.kind, plural, namespaced)
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
    return {"index": o.index, "object": _label(o.index, o.body), "field": field, "message": message}


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
def read_live(api: KubeApi, objs: list[Desired]) -> tuple[dict[tuple, dict], set[tuple[str, str]]]:
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
            data = api.call("list", "GET", resource.path(namespace=namespace), query=query)
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


def run(
    api: KubeApi,
    definitions: Any,
    state: str = "present",
    check_mode: bool = False,
    manager: str = FIELD_MANAGER,
    namespace: str | None = None,
) -> dict:
    """Converge ``definitions``; see the k8s_objects module documentation. Raises InputError (nothing was
    sent but reads) or KubeError; a KubeError raised after writes were done carries ``result`` (the module
    result so far: ``changed``, ``written``, ``results[].error``)."""
    timings = engine.Timings()
    objs = prepare(definitions)
    warnings = resolve(api, objs, namespace)
    live, unserved = read_live(api, objs)
    timings.lap("read")
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
    plan = engine.make_plan(objs, live, state, engine.CONTAINS, manager)
    timings.lap("plan")
    try:
        # one write at a time, in input order: a Namespace before the objects in it, nothing after a failure
        engine.execute(api, plan, check_mode, manager, concurrency=1)
        timings.lap("write")
    except KubeError as exc:
        timings.lap("write")
        exc.result = engine.report(plan, warnings, api.request_summary(), timings)
        raise
    return engine.report(plan, warnings, api.request_summary(), timings)
