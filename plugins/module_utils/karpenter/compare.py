# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Normalisation and desired-vs-live comparison of Karpenter objects.

``normalize(obj)`` drops what the server or Karpenter populate (``status``; ``metadata.uid``,
``resourceVersion``, ``generation``, ``creationTimestamp``, ``managedFields``, ``selfLink``,
deletion fields; the ``karpenter.sh/nodepool-hash``, ``karpenter.k8s.aws/ec2nodeclass-hash`` and
``-version`` annotations and ``kubectl.kubernetes.io/last-applied-configuration``; the controller
finalizers) and applies the CRD defaults (pruning unknown fields, as the apiserver stores them).

``diff(desired, live) -> (changed, before, after, paths_changed)`` compares only what the desired
object sets, the way server-side apply ownership works: a field absent from ``desired`` is not a
change unless the CRD defaults it (defaults are part of the normalised desired object). Atomic
lists and maps (``x-kubernetes-list-type: atomic``, ``x-kubernetes-map-type: atomic``) are
compared whole; other maps and objects key by key; ``list-type: set`` as a subset. Quantities
(``limits``, kubelet reservations and eviction thresholds, int-or-string fields) compare by value:
``"1000"`` equals ``1000`` and ``"1Gi"`` equals ``"1024Mi"``. The open ``spec.kubelet`` map of
Karpenter v1.15 is compared with the shape of the upstream KubeletConfiguration (``kubelet``).
``before`` is the normalised live object, ``after`` the live object with the desired fields applied.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ..kube.resource import SERVER_METADATA_FIELDS
from .kubelet import QUANTITY_MARK
from .kubelet import openapi_schema as kubelet_openapi_schema
from .quantity import parse_quantity
from .schema import apply_defaults, prune, schema_for

_EC2NODECLASS_API_VERSION = "karpenter.k8s.aws/v1"

SERVER_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "karpenter.sh/nodepool-hash",
    "karpenter.sh/nodepool-hash-version",
    "karpenter.k8s.aws/ec2nodeclass-hash",
    "karpenter.k8s.aws/ec2nodeclass-hash-version",
)
CONTROLLER_FINALIZERS = ("karpenter.sh/termination", "karpenter.k8s.aws/termination")

# metadata behaves like a granular struct; finalizers are a set, ownerReferences a map keyed by uid
_METADATA_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object"},
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
        },
    },
}


def normalize(obj: Any) -> Any:
    """Copy of ``obj`` without server-populated fields, with CRD defaults applied."""
    if not isinstance(obj, dict):
        return copy.deepcopy(obj)
    schema = schema_for(obj.get("apiVersion"), obj.get("kind"))
    if schema is not None:
        out, unused = prune(obj, schema)
        out = apply_defaults(out, schema, copy_obj=False)
    else:
        out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for field in SERVER_METADATA_FIELDS:
            meta.pop(field, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for a in SERVER_ANNOTATIONS:
                annotations.pop(a, None)
            if not annotations:
                meta.pop("annotations")
        finalizers = meta.get("finalizers")
        if isinstance(finalizers, list):
            finalizers = [f for f in finalizers if f not in CONTROLLER_FINALIZERS]
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers")
        if meta.get("labels") == {}:
            meta.pop("labels")
        if schema is not None:
            meta.pop("namespace", None)  # cluster-scoped: the apiserver ignores it
    return out


_COMPARE_SCHEMAS = {}


def compare_schema(api_version: str | None, kind: str | None) -> dict[str, Any] | None:
    """The CRD schema used to compare objects of (apiVersion, kind): the CRD's, except that the open
    EC2NodeClass ``spec.kubelet`` (Karpenter v1.15) is described by the upstream KubeletConfiguration."""
    schema = schema_for(api_version, kind)
    if schema is None or (api_version, kind) != (_EC2NODECLASS_API_VERSION, "EC2NodeClass"):
        return schema
    cached = _COMPARE_SCHEMAS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    out = schema
    spec = (schema.get("properties") or {}).get("spec") or {}
    node = (spec.get("properties") or {}).get("kubelet")
    if isinstance(node, dict) and node.get("x-kubernetes-preserve-unknown-fields") and not node.get("properties"):
        spec = dict(spec, properties=dict(spec["properties"], kubelet=kubelet_openapi_schema()))
        out = dict(schema, properties=dict(schema["properties"], spec=spec))
    _COMPARE_SCHEMAS[id(schema)] = (schema, out)
    return out


def _is_quantity_node(schema):
    if not schema:
        return False
    if schema.get("x-kubernetes-int-or-string") or schema.get(QUANTITY_MARK):
        return True
    pattern = schema.get("pattern") or ""
    return schema.get("type") == "string" and "[KMGTPE]i" in pattern


def values_equal(a: object, b: object, schema: dict[str, Any] | None = None) -> bool:
    """Semantic equality under a schema node (quantities by value, numbers 1 == 1.0, bools strict)."""
    if _is_quantity_node(schema):
        try:
            return parse_quantity(a) == parse_quantity(b)
        except ValueError:
            pass
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and str(a) == str(b)
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return False
        props = (schema or {}).get("properties") or {}
        addl = (schema or {}).get("additionalProperties")
        addl = addl if isinstance(addl, dict) else None
        return all(values_equal(a[k], b[k], props.get(k, addl)) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        items = (schema or {}).get("items")
        items = items if isinstance(items, dict) else None
        return all(values_equal(x, y, items) for x, y in zip(a, b))  # noqa: B905 - lengths checked
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    return a == b


def _path(path, seg, is_key=False):
    if is_key:
        return "%s[%s]" % (path, seg)
    if isinstance(seg, int):
        return "%s[%d]" % (path, seg)
    return "%s.%s" % (path, seg) if path else seg


def _sub_schema(schema, k):
    if not schema:
        return None, False
    props = schema.get("properties") or {}
    if k in props:
        return props[k], False
    addl = schema.get("additionalProperties")
    if isinstance(addl, dict):
        return addl, True
    return None, bool(addl) or not props


def _merge(desired, live, schema, path, changed):
    """Return the value after applying ``desired`` over ``live``; record changed paths."""
    if isinstance(desired, dict) and isinstance(live, dict) and not _atomic_map(schema):
        out = copy.deepcopy(live)
        for k, dv in desired.items():
            sub, is_key = _sub_schema(schema, k)
            p = _path(path, k, is_key)
            if k not in live:
                changed.append(p)
                out[k] = copy.deepcopy(dv)
            else:
                out[k] = _merge(dv, live[k], sub, p, changed)
        return out
    if isinstance(desired, list) and isinstance(live, list) and schema:
        list_type = schema.get("x-kubernetes-list-type")
        items = schema.get("items") if isinstance(schema.get("items"), dict) else None
        if list_type == "set":
            out = copy.deepcopy(live)
            missing = [d for d in desired if not any(values_equal(d, lv, items) for lv in live)]
            if missing:
                changed.append(path)
                out.extend(copy.deepcopy(missing))
            return out
        if list_type == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or []
            out = copy.deepcopy(live)

            def ident(item):
                return tuple(json.dumps(item.get(k), sort_keys=True) for k in keys) if isinstance(item, dict) else None

            index = {ident(item): i for i, item in enumerate(live)}
            for j, d in enumerate(desired):
                i = index.get(ident(d))
                if i is None:
                    changed.append(_path(path, j))
                    out.append(copy.deepcopy(d))
                else:
                    out[i] = _merge(d, live[i], items, _path(path, i), changed)
            return out
    if not values_equal(desired, live, schema):
        changed.append(path)
        return copy.deepcopy(desired)
    return copy.deepcopy(live)


def _atomic_map(schema):
    return bool(schema) and schema.get("x-kubernetes-map-type") == "atomic"


def diff(desired: Any, live: Any) -> tuple[bool, Any, Any, list[str]]:
    """Compare a desired object with the live one; returns ``(changed, before, after, paths_changed)``.

    ``live`` None means the object does not exist: changed, ``before`` None, ``after`` the
    normalised desired object, ``paths_changed`` its top-level fields.
    """
    want = normalize(desired)
    if live is None:
        paths = sorted(k for k in want if k not in ("apiVersion", "kind")) if isinstance(want, dict) else [""]
        return True, None, want, paths
    have = normalize(live)
    if not isinstance(want, dict) or not isinstance(have, dict):
        same = values_equal(want, have)
        return (not same), have, want, ([] if same else [""])
    schema = compare_schema(want.get("apiVersion"), want.get("kind")) or {}
    props = dict(schema.get("properties") or {})
    props["metadata"] = _METADATA_SCHEMA
    changed = []
    after = copy.deepcopy(have)
    for k, dv in want.items():
        if k == "status":
            continue
        if k not in have:
            changed.append(k)
            after[k] = copy.deepcopy(dv)
        else:
            after[k] = _merge(dv, have[k], props.get(k), k, changed)
    return bool(changed), have, after, changed
