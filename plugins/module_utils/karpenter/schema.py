# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Structural OpenAPI v3 validation and defaulting driven by the Karpenter CRD schemas.

Mirrors what the apiserver does with a custom resource, in the same order:

1. :func:`prune` - drop fields the schema does not know. The apiserver prunes them silently; here
   each one is also reported as an ``unknown field`` error, because it is a user mistake.
2. :func:`apply_defaults` - drop ``null`` values of non-nullable fields and apply ``default``
   values to absent fields of objects that are present, recursively (a defaulted object receives
   its own nested defaults, e.g. ``disruption`` -> ``consolidationPolicy`` and ``budgets``).
3. :func:`validate_schema` - type, required, enum, pattern, min/maxLength, minimum/maximum,
   min/maxItems, min/maxProperties, list-type set/map uniqueness, formats (int32, int64,
   date-time, duration), ``x-kubernetes-int-or-string``, ``x-kubernetes-preserve-unknown-fields``.
   String keywords apply only to strings (the apiserver ignores ``pattern`` on arrays).

``metadata`` is validated like ObjectMeta (name, labels, annotations, known fields) by
:func:`validate_metadata`; ``status`` is ignored (the status subresource resets it).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from . import golang
from .crds import ec2nodeclass_v1, nodepool_v1
from .issues import Issue, join_path, key
from .labels import is_dns1123_subdomain, is_qualified_name, is_valid_label_value

CRD_MODULES = (nodepool_v1, ec2nodeclass_v1)
CRDS = {(m.API_VERSION, m.KIND): m for m in CRD_MODULES}
KARPENTER_VERSION = nodepool_v1.KARPENTER_VERSION

OBJECT_META_FIELDS = frozenset(
    (
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    )
)
_TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_MAX_SAFE_FLOAT_INT = 2**53 - 1
_DURATION = re.compile(r"^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+\Z|^[-+]?0\Z")
# format -> predicate over the string (the apiserver's checks; formats not listed are not checked)
FORMAT_CHECKS = {"date-time": golang.is_openapi_date_time, "duration": _DURATION.match}


def crd_for(api_version: str | None, kind: str | None) -> ModuleType | None:
    """The generated CRD module for (apiVersion, kind), or None."""
    return CRDS.get((api_version, kind))


def schema_for(api_version: str | None, kind: str | None) -> dict[str, Any] | None:
    """The openAPIV3Schema for (apiVersion, kind), or None when it is not a served v1 Karpenter kind."""
    crd = crd_for(api_version, kind)
    return crd.SCHEMA if crd else None


def compile_pattern(pattern: str) -> golang.GoPattern:
    """Compile an OpenAPI pattern (a Go RE2 expression, unanchored search) with Go's semantics
    (``golang.compile_regex``: ASCII classes, ``$`` = end of text, ...)."""
    return golang.compile_regex(pattern)


def fmt_value(value: object) -> str:
    """Render a value the way apiserver error messages do."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return '"null"'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(str(value))


def is_int64(value: object) -> bool:
    """True for an integer (or an integral float) the apiserver decodes as an int64.

    A JSON integer outside the int64 range is decoded as a float64 ("number"): it is not of type
    ``integer`` (``must be of type int64`` / ``must be of type integer,string``). A JSON number written
    with a fraction or an exponent (``1000.0``, ``1e3``) is a float64 too: it counts as an integer only
    when it is integral and a "safe" JSON integer (at most 2^53 - 1 in magnitude, go-openapi's
    ``IsFloat64AJSONInteger`` and the integer format check).
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return value.is_integer() and abs(value) <= _MAX_SAFE_FLOAT_INT
    return isinstance(value, int) and INT64[0] <= value <= INT64[1]


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if is_int64(value) else "number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def matches_type(value: object, schema: dict[str, Any]) -> bool:
    """True when the value has the schema's type (int-or-string and untyped nodes included)."""
    if schema.get("x-kubernetes-int-or-string"):  # an integral float is an integer (kube-openapi isFloatInt)
        return isinstance(value, str) or is_int64(value)
    typ = schema.get("type")
    if not typ:
        return True
    if typ == "object":
        return isinstance(value, dict)
    if typ == "array":
        return isinstance(value, list)
    if typ == "string":
        return isinstance(value, str)
    if typ == "boolean":
        return isinstance(value, bool)
    if typ == "integer":
        return is_int64(value)
    if typ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


# --------------------------------------------------------------------------------------------
# pruning


def prune(obj: dict[str, Any], schema: dict[str, Any], object_ref: str = "") -> tuple[dict[str, Any], list[Issue]]:
    """Return ``(pruned_copy, issues)``: unknown fields removed, one ``unknown field`` error each."""
    issues = []
    out = prune_node(copy.deepcopy(obj), schema, "", issues, object_ref, root=True)
    return out, issues


def canonical_number(value: object, schema: dict[str, Any]) -> object:
    """An integral float at an integer, number or int-or-string node as the int the apiserver stores.

    The apiserver decodes ``1000.0`` as a float64, accepts it where an integer is expected (kube-openapi
    takes an integral float as an integer) and stores it re-encoded by Go, i.e. as ``1000``: a quantity
    written as ``{{ x * 1.0 }}`` is stored as the integer. Anything else is returned unchanged."""
    if (
        isinstance(value, float)
        and (schema.get("x-kubernetes-int-or-string") or schema.get("type") in ("integer", "number"))
        and is_int64(value)
    ):
        return int(value)
    return value


def prune_node(value: Any, schema: dict[str, Any], path: str, issues: list[Issue], ref: str, root: bool = False) -> Any:
    if isinstance(value, float):
        return canonical_number(value, schema)
    if isinstance(value, dict) and (schema.get("type") == "object" or "properties" in schema):
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        for k in list(value):
            if root and k == "metadata":
                _prune_metadata(value, path, issues, ref)
                continue
            if k in props:
                value[k] = prune_node(value[k], props[k], join_path(path, k), issues, ref)
            elif isinstance(addl, dict):
                value[k] = prune_node(value[k], addl, join_path(path, key(k)), issues, ref)
            elif addl is True or preserve:
                continue
            else:
                field = join_path(path, k)
                issues.append(Issue(ref, field, "unknown-field", 'unknown field "%s"' % field))
                del value[k]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            value[i] = prune_node(item, schema["items"], join_path(path, i), issues, ref)
    return value


def _prune_metadata(obj, path, issues, ref):
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return
    for k in list(meta):
        if meta[k] is None:  # decoded as the zero value of the ObjectMeta field: omitted
            del meta[k]
        elif k not in OBJECT_META_FIELDS:
            field = join_path(join_path(path, "metadata"), k)
            issues.append(Issue(ref, field, "unknown-field", 'unknown field "%s"' % field))
            del meta[k]


# --------------------------------------------------------------------------------------------
# defaulting


def apply_defaults(obj: dict[str, Any], schema: dict[str, Any], copy_obj: bool = True) -> dict[str, Any]:
    """Apply CRD defaults like the apiserver: nulls of non-nullable fields are dropped first."""
    if copy_obj:
        obj = copy.deepcopy(obj)
    default_node(obj, schema)
    return obj


def default_node(value: object, schema: dict[str, Any]) -> None:
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else None
        for k in list(value):
            sub = props.get(k, addl)
            if value[k] is None and sub is not None and not sub.get("nullable"):
                del value[k]
        for k, sub in props.items():
            if k not in value and "default" in sub:
                value[k] = copy.deepcopy(sub["default"])
        for k, v in value.items():
            sub = props.get(k, addl)
            if sub is not None:
                default_node(v, sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            default_node(item, schema["items"])


def defaults_of(schema: dict[str, Any], path: str) -> Any:
    """The default declared at a dotted property path (e.g. ``spec.template.spec.expireAfter``), or None."""
    node = schema
    for part in path.split("."):
        node = (node.get("properties") or {}).get(part)
        if node is None:
            return None
    return node.get("default")


# --------------------------------------------------------------------------------------------
# validation


def validate_schema(obj: object, schema: dict[str, Any], object_ref: str = "") -> list[Issue]:
    """Validate a pruned, defaulted object against the schema; returns a list of Issues."""
    issues = []
    if not isinstance(obj, dict):
        issues.append(Issue(object_ref, "", "type", "Invalid value: %s: must be of type object" % fmt_value(obj)))
        return issues
    props = schema.get("properties") or {}
    for req in schema.get("required") or ():
        if req not in obj:
            issues.append(Issue(object_ref, req, "required", "Required value"))
    if obj.get("metadata") is None:  # absent (or null, which defaulting drops): the name is missing
        issues.append(
            Issue(object_ref, "metadata.name", "required", "Required value: name or generateName is required")
        )
    for k, v in obj.items():
        if k == "metadata":
            if v is not None:
                issues.extend(validate_metadata(v, object_ref))
        elif k == "status":
            continue
        elif k in props:
            validate_node(v, props[k], k, issues, object_ref)
    return issues


def _issue(issues, ref, path, rule, message):
    issues.append(Issue(ref, path, rule, message))


def validate_node(value: object, schema: dict[str, Any], path: str, issues: list[Issue], ref: str) -> None:
    if value is None:
        if not schema.get("nullable"):
            want = "integer or string" if schema.get("x-kubernetes-int-or-string") else schema.get("type", "a value")
            _issue(issues, ref, path, "type", 'Invalid value: "null": must be of type %s' % want)
        return
    if not matches_type(value, schema):
        want = "integer or string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
        message = 'Invalid value: "%s": must be of type %s' % (type_name(value), want)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and "integer" in want:
            if not is_int64(value) and (isinstance(value, int) or value.is_integer()):
                message += " (%s is outside the int64 range)" % fmt_value(value)
        _issue(issues, ref, path, "type", message)
        return

    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(fmt_value(e) for e in enum)
        _issue(issues, ref, path, "enum", "Unsupported value: %s: supported values: %s" % (fmt_value(value), supported))

    if isinstance(value, str):
        _validate_string(value, schema, path, issues, ref)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _validate_number(value, schema, path, issues, ref)
    elif isinstance(value, list):
        _validate_array(value, schema, path, issues, ref)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, issues, ref)

    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema and not schema.get("x-kubernetes-int-or-string"):
            _validate_combinator(value, schema, combinator, path, issues, ref)


def _validate_combinator(value, schema, combinator, path, issues, ref):
    results = []
    for branch in schema[combinator]:
        sub = []
        merged = dict(branch)
        merged.setdefault("type", schema.get("type"))
        validate_node(value, merged, path, sub, ref)
        results.append(sub)
    passing = sum(1 for r in results if not r)
    if combinator == "allOf":
        for r in results:
            issues.extend(r)
    elif combinator == "anyOf" and passing == 0:
        _issue(
            issues,
            ref,
            path,
            "anyOf",
            "Invalid value: %s: must validate at least one schema (anyOf)" % fmt_value(value),
        )
    elif combinator == "oneOf" and passing != 1:
        _issue(
            issues,
            ref,
            path,
            "oneOf",
            "Invalid value: %s: must validate one and only one schema (oneOf)" % fmt_value(value),
        )


def _validate_string(value, schema, path, issues, ref):
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        _issue(issues, ref, path, "maxLength", "Too long: may not be more than %d characters" % schema["maxLength"])
    if "minLength" in schema and len(value) < schema["minLength"]:
        _issue(
            issues,
            ref,
            path,
            "minLength",
            "Invalid value: %s: should be at least %d chars long" % (fmt_value(value), schema["minLength"]),
        )
    pattern = schema.get("pattern")
    if pattern is not None and not compile_pattern(pattern).search(value):
        _issue(issues, ref, path, "pattern", "Invalid value: %s: should match '%s'" % (fmt_value(value), pattern))
    fmt = schema.get("format")
    check = FORMAT_CHECKS.get(fmt)
    if check is not None and not check(value):
        _issue(issues, ref, path, "format", "Invalid value: %s: must be of type %s" % (fmt_value(value), fmt))


def _validate_number(value, schema, path, issues, ref):
    if "minimum" in schema:
        lo = schema["minimum"]
        if value < lo or (schema.get("exclusiveMinimum") and value == lo):
            op = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
            _issue(issues, ref, path, "minimum", "Invalid value: %s: should be %s %s" % (fmt_value(value), op, lo))
    if "maximum" in schema:
        hi = schema["maximum"]
        if value > hi or (schema.get("exclusiveMaximum") and value == hi):
            op = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
            _issue(issues, ref, path, "maximum", "Invalid value: %s: should be %s %s" % (fmt_value(value), op, hi))
    if "multipleOf" in schema and schema["multipleOf"] and value % schema["multipleOf"] != 0:
        _issue(
            issues,
            ref,
            path,
            "multipleOf",
            "Invalid value: %s: should be a multiple of %s" % (fmt_value(value), schema["multipleOf"]),
        )
    fmt = schema.get("format")
    bounds = INT32 if fmt == "int32" else INT64 if fmt == "int64" else None
    if bounds and schema.get("type") == "integer" and not bounds[0] <= value <= bounds[1]:
        _issue(issues, ref, path, "format", "Invalid value: %s: is out of range for %s" % (fmt_value(value), fmt))


def _validate_array(value, schema, path, issues, ref):
    array_checks(value, schema, path, issues, ref)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            validate_node(item, items, join_path(path, i), issues, ref)


def array_checks(value: list[Any], schema: dict[str, Any], path: str, issues: list[Issue], ref: str) -> None:
    """The checks of an array node itself (not of its items): size bounds and set/map uniqueness."""
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        _issue(
            issues, ref, path, "maxItems", "Too many: %d: must have at most %d items" % (len(value), schema["maxItems"])
        )
    if "minItems" in schema and len(value) < schema["minItems"]:
        _issue(
            issues,
            ref,
            path,
            "minItems",
            "Invalid value: %d: should have at least %d items" % (len(value), schema["minItems"]),
        )
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set" or schema.get("uniqueItems"):
        seen = []
        for i, item in enumerate(value):
            if item in seen:
                _issue(
                    issues, ref, join_path(path, i), "x-kubernetes-list-type", "Duplicate value: %s" % fmt_value(item)
                )
            else:
                seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen = set()
        for i, item in enumerate(value):
            if isinstance(item, dict):
                k = tuple(json.dumps(item.get(mk), sort_keys=True) for mk in keys)
                if k in seen:
                    _issue(
                        issues,
                        ref,
                        join_path(path, i),
                        "x-kubernetes-list-map-keys",
                        "Duplicate value: %s" % fmt_value(item),
                    )
                seen.add(k)


def _validate_object(value, schema, path, issues, ref):
    object_checks(value, schema, path, issues, ref)
    props = schema.get("properties") or {}
    addl = schema.get("additionalProperties")
    for k, v in value.items():
        if k in props:
            validate_node(v, props[k], join_path(path, k), issues, ref)
        elif isinstance(addl, dict):
            validate_node(v, addl, join_path(path, key(k)), issues, ref)


def object_checks(value: dict[str, Any], schema: dict[str, Any], path: str, issues: list[Issue], ref: str) -> None:
    """The checks of an object node itself (not of its properties): property count bounds, required."""
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        _issue(
            issues,
            ref,
            path,
            "maxProperties",
            "Too many: %d: must have at most %d items" % (len(value), schema["maxProperties"]),
        )
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        _issue(
            issues,
            ref,
            path,
            "minProperties",
            "Invalid value: %d: should have at least %d properties" % (len(value), schema["minProperties"]),
        )
    for req in schema.get("required") or ():
        if req not in value:
            _issue(issues, ref, join_path(path, req), "required", "Required value")


def validate_metadata(meta: object, object_ref: str = "", namespaced: bool = False) -> list[Issue]:
    """ObjectMeta checks the apiserver applies to a custom resource."""
    issues = []
    if not isinstance(meta, dict):
        issues.append(
            Issue(object_ref, "metadata", "type", "Invalid value: %s: must be of type object" % fmt_value(meta))
        )
        return issues
    name = meta.get("name")
    if name is None and not meta.get("generateName"):
        issues.append(
            Issue(object_ref, "metadata.name", "required", "Required value: name or generateName is required")
        )
    elif name is not None:
        if not isinstance(name, str):
            issues.append(
                Issue(
                    object_ref, "metadata.name", "type", "Invalid value: %s: must be of type string" % fmt_value(name)
                )
            )
        else:
            for err in is_dns1123_subdomain(name):
                issues.append(
                    Issue(object_ref, "metadata.name", "name", "Invalid value: %s: %s" % (fmt_value(name), err))
                )
    if not namespaced and meta.get("namespace"):
        issues.append(
            Issue(
                object_ref,
                "metadata.namespace",
                "namespace",
                "cluster-scoped resource: metadata.namespace %s is ignored" % fmt_value(meta["namespace"]),
                severity="warning",
            )
        )
    labels = meta.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            issues.append(
                Issue(
                    object_ref,
                    "metadata.labels",
                    "type",
                    "Invalid value: %s: must be of type object" % fmt_value(labels),
                )
            )
        else:
            for k, v in labels.items():
                p = join_path("metadata.labels", key(k))
                for err in is_qualified_name(str(k)):
                    issues.append(
                        Issue(object_ref, "metadata.labels", "label-key", "Invalid value: %s: %s" % (fmt_value(k), err))
                    )
                if not isinstance(v, str):
                    issues.append(
                        Issue(object_ref, p, "type", "Invalid value: %s: must be of type string" % fmt_value(v))
                    )
                    continue
                for err in is_valid_label_value(v):
                    issues.append(Issue(object_ref, p, "label-value", "Invalid value: %s: %s" % (fmt_value(v), err)))
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            issues.append(
                Issue(
                    object_ref,
                    "metadata.annotations",
                    "type",
                    "Invalid value: %s: must be of type object" % fmt_value(annotations),
                )
            )
        else:
            total = 0
            for k, v in annotations.items():
                for err in is_qualified_name(str(k).lower()):
                    issues.append(
                        Issue(
                            object_ref,
                            "metadata.annotations",
                            "annotation-key",
                            "Invalid value: %s: %s" % (fmt_value(k), err),
                        )
                    )
                if not isinstance(v, str):
                    p = join_path("metadata.annotations", key(k))
                    issues.append(
                        Issue(object_ref, p, "type", "Invalid value: %s: must be of type string" % fmt_value(v))
                    )
                    continue
                total += len(k) + len(v)
            if total > _TOTAL_ANNOTATION_SIZE_LIMIT:
                issues.append(
                    Issue(
                        object_ref,
                        "metadata.annotations",
                        "annotation-size",
                        "Too long: must have at most %d bytes" % _TOTAL_ANNOTATION_SIZE_LIMIT,
                    )
                )
    finalizers = meta.get("finalizers")
    if finalizers is not None and not (isinstance(finalizers, list) and all(isinstance(f, str) for f in finalizers)):
        issues.append(Issue(object_ref, "metadata.finalizers", "type", "Invalid value: must be a list of strings"))
    return issues


def iter_schema(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(path, node)`` for every schema node (``[*]`` for items, ``{*}`` for map values)."""
    yield path, schema
    for k, sub in (schema.get("properties") or {}).items():
        yield from iter_schema(sub, join_path(path, k))
    if isinstance(schema.get("items"), dict):
        yield from iter_schema(schema["items"], path + "[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from iter_schema(schema["additionalProperties"], path + "{*}")
