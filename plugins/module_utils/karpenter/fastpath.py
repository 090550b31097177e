# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One pass over an object that does what ``schema.prune``, ``schema.apply_defaults``,
``schema.validate_schema`` and ``cel.evaluate`` do in four passes, with the same results.

The schema is turned once into a tree of small functions ("plans"), one per schema node, that copy a
value while pruning it, fill in defaults, check it and note which CEL rules to run on it; the CEL
rules then run through ``celcompile`` (Python compiled from the rule text) and, when that cannot decide,
through cel-python exactly as ``cel.evaluate`` does.

Same results means: the same defaulted object (same key order) and the same issues in the same order
as the four-pass path. The fast path therefore declines (``run`` returns None and the caller uses the
four passes) whenever it could differ:

* values that are not plain JSON (dict/list/str/int/float/bool/None of exactly these types, string
  keys) - e.g. Ansible's string subclasses or tuples;
* a container that appears twice in the object (YAML anchors): ``copy.deepcopy`` keeps such sharing
  and the in-place pruning/defaulting of the four passes is then visible in both places;
* schemas using keywords the plans do not implement (``allOf``/``anyOf``/``oneOf`` outside
  int-or-string, untyped nodes other than a bare ``x-kubernetes-preserve-unknown-fields``, ...) -
  decided once per schema;
* for CEL (``cel_issues``): integers outside int64 anywhere in the object (cel.to_cel refuses them).

Issues that the plans find at a container node (``required``, ``maxItems``, list uniqueness, ...) need
the defaulted children, so they are computed after the children and inserted where the four-pass
order puts them (before the children's issues).
"""

# pylint: disable=unidiomatic-typecheck  # exact JSON types: a subclass (bool of int, Ansible's str subclasses) takes the slow path
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from . import cel as cel_mod
from . import celcompile
from . import schema as schema_mod
from .issues import Issue

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_PLANS = {}


class _Slow(Exception):
    """This object (or schema) must take the four-pass path."""


class Walk:
    """State of one object's pass: prune issues, schema issues, pending CEL nodes, seen containers."""

    __slots__ = ("ref", "P", "V", "C", "seen", "bigint", "cel_order")

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.P = []
        self.V = []
        self.C = []
        self.seen = []  # ids of the input's containers (one twice: the object shares a subtree)
        self.bigint = False
        self.cel_order = None


# --------------------------------------------------------------------------------------------
# helpers


def _plain_copy(value, w):
    """Deep copy of plain JSON (registering containers and integers CEL cannot hold); _Slow otherwise."""
    t = type(value)
    if t is str or t is bool or t is float or value is None:
        return value
    if t is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            w.bigint = True
        return value
    if t is dict:
        w.seen.append(id(value))
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _Slow()
            out[k] = _plain_copy(v, w)
        return out
    if t is list:
        w.seen.append(id(value))
        return [_plain_copy(v, w) for v in value]
    raise _Slow()


def _is_plain(value):
    t = type(value)
    if t is str or t is bool or t is float or t is int or value is None:
        return True
    if t is dict:
        return all(type(k) is str and _is_plain(v) for k, v in value.items())
    if t is list:
        return all(_is_plain(v) for v in value)
    return False


def _other(value, node, path, w, rules):
    """A value whose type is not the node's own (or a null): copied as is, checked by schema.validate_node."""
    new = schema_mod.canonical_number(_plain_copy(value, w), node)
    schema_mod.validate_node(new, node, path, w.V, w.ref)
    if rules and new is not None and schema_mod.matches_type(new, node):
        w.C.append((rules, new, path, node))
    return new


# --------------------------------------------------------------------------------------------
# plans


def plan_for(schema: dict[str, Any]) -> _Root | None:
    """The root plan of a CRD schema, or None when the schema uses what the plans do not implement."""
    key = id(schema)
    hit = _PLANS.get(key)
    if hit is None or hit[0] is not schema:
        try:
            root = _Root(schema)
        except _Slow:
            root = None
        hit = (schema, root)
        _PLANS[key] = hit
    return hit[1]


class _NodeRules:
    """The CEL rules of one schema node evaluated without an old object (transition rules only with
    ``optionalOldSelf``), and their compiled function (built on first use, see celcompile.compile_node)."""

    __slots__ = ("rules", "kind", "fn", "position", "rest", "ready")

    def __init__(self, rules, kind):
        self.rules = rules
        self.kind = kind
        self.fn = None
        self.position = ()
        self.rest = rules
        self.ready = False

    def prepare(self):
        fn, covered = celcompile.compile_node([expr for unused, expr in self.rules], self.kind)
        self.fn = fn
        self.position = tuple(covered.index(i) if i in covered else -1 for i in range(len(self.rules)))
        self.rest = tuple(r for i, r in enumerate(self.rules) if i not in covered)
        self.ready = True


def _rules_of(node):
    out = []
    for rule in node.get("x-kubernetes-validations") or ():
        expr = rule.get("rule")
        if not expr:
            continue
        if cel_mod.is_transition_rule(expr) and not rule.get("optionalOldSelf"):
            continue
        out.append((rule, expr))
    if not out:
        return None
    # the rules run only on a value of the node's type (a str for a string node, a dict for an object ...)
    kind = "any" if node.get("x-kubernetes-int-or-string") else celcompile.SELF_KINDS.get(node.get("type"), "any")
    return _NodeRules(tuple(out), kind)


def _build(node):
    if not isinstance(node, dict):
        raise _Slow()
    ios = node.get("x-kubernetes-int-or-string")
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in node and not ios:
            raise _Slow()
    typ = node.get("type")
    if node.get("x-kubernetes-preserve-unknown-fields") and typ != "object":
        if set(node) == {"x-kubernetes-preserve-unknown-fields"}:
            return _any_value  # untyped and open (EC2NodeClass spec.kubelet values): kept as they are
        raise _Slow()
    if ("properties" in node or "additionalProperties" in node) and typ != "object":
        raise _Slow()
    if "items" in node and typ != "array":
        raise _Slow()
    if typ == "object":
        return _object(node)
    if typ == "array":
        return _array(node)
    if ios or typ in ("string", "integer", "number", "boolean"):
        return _leaf(node)
    raise _Slow()


def _string_ok(node):
    """A predicate ``ok(str)``: True when schema.validate_node_string reports nothing."""
    max_len = node["maxLength"] if "maxLength" in node else None
    min_len = node["minLength"] if "minLength" in node else None
    pattern = node.get("pattern")
    search = None  # compiled on first use: a fresh process compiles only the patterns it needs
    fmt = node.get("format")
    fmt_match = schema_mod.FORMAT_CHECKS.get(fmt)
    if max_len is None and min_len is None and pattern is None and fmt_match is None:
        return None

    def ok(v):
        nonlocal search
        if max_len is not None and len(v) > max_len:
            return False
        if min_len is not None and len(v) < min_len:
            return False
        if pattern is not None:
            if search is None:
                search = schema_mod.compile_pattern(pattern).search
            if not search(v):
                return False
        if fmt_match is not None and not fmt_match(v):
            return False
        return True

    return ok


def _number_ok(node):
    """A predicate ``ok(int)``: True when schema.validate_node_number reports nothing."""
    has_min, has_max = "minimum" in node, "maximum" in node
    lo, hi = node.get("minimum"), node.get("maximum")
    excl_lo, excl_hi = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    multiple = node.get("multipleOf") if "multipleOf" in node else None
    fmt = node.get("format")
    bounds = schema_mod.INT32 if fmt == "int32" else schema_mod.INT64 if fmt == "int64" else None
    if node.get("type") != "integer":
        bounds = None
    if not (has_min or has_max or multiple or bounds):
        return None

    def ok(v):
        if has_min and (v < lo or (excl_lo and v == lo)):
            return False
        if has_max and (v > hi or (excl_hi and v == hi)):
            return False
        if multiple and v % multiple != 0:
            return False
        if bounds and not bounds[0] <= v <= bounds[1]:
            return False
        return True

    return ok


def _string_leaf(node, rules):
    """A ``type: string`` node: the checks of schema.validate_node_string inline (the common leaf)."""
    enum = node.get("enum")
    max_len = node["maxLength"] if "maxLength" in node else None
    min_len = node["minLength"] if "minLength" in node else None
    pattern = node.get("pattern")
    search = None  # compiled on first use: a fresh process compiles only the patterns it needs
    fmt = node.get("format")
    fmt_match = schema_mod.FORMAT_CHECKS.get(fmt)
    validate = schema_mod.validate_node

    def proc(value, path, w):
        nonlocal search
        if type(value) is not str:
            return _other(value, node, path, w, rules)
        if (
            (enum is not None and value not in enum)
            or (max_len is not None and len(value) > max_len)
            or (min_len is not None and len(value) < min_len)
            or (fmt_match is not None and not fmt_match(value))
        ):
            validate(value, node, path, w.V, w.ref)
        elif pattern is not None:
            if search is None:
                search = schema_mod.compile_pattern(pattern).search
            if not search(value):
                validate(value, node, path, w.V, w.ref)
        if rules:
            w.C.append((rules, value, path, node))
        return value

    return proc


def _any_value(value, path, w):
    """An untyped ``x-kubernetes-preserve-unknown-fields`` node: nothing pruned, defaulted or checked."""
    return _plain_copy(value, w)


def _leaf(node):
    rules = _rules_of(node)
    typ = node.get("type")
    if typ == "string" and not node.get("x-kubernetes-int-or-string"):
        return _string_leaf(node, rules)
    ios = bool(node.get("x-kubernetes-int-or-string"))
    enum = node.get("enum")
    takes_str = ios or typ == "string"
    takes_int = ios or typ in ("integer", "number")
    takes_bool = typ == "boolean" and not ios
    str_ok = _string_ok(node) if takes_str else None
    num_ok = _number_ok(node) if takes_int else None
    validate = schema_mod.validate_node

    def proc(value, path, w):
        t = type(value)
        if t is str:
            if not takes_str:
                return _other(value, node, path, w, rules)
            ok = (enum is None or value in enum) and (str_ok is None or str_ok(value))
        elif t is int:
            if not takes_int or not _INT64_MIN <= value <= _INT64_MAX:
                return _other(value, node, path, w, rules)
            ok = (enum is None or value in enum) and (num_ok is None or num_ok(value))
        elif t is bool and takes_bool:
            ok = enum is None or value in enum
        else:
            return _other(value, node, path, w, rules)
        if not ok:
            validate(value, node, path, w.V, w.ref)
        if rules:
            w.C.append((rules, value, path, node))
        return value

    return proc


def _container_checks(value, node, path, w, vpos):
    """Issues of the container node itself, inserted before those of its children."""
    issues = []
    enum = node.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(schema_mod.fmt_value(e) for e in enum)
        issues.append(
            Issue(
                w.ref,
                path,
                "enum",
                "Unsupported value: %s: supported values: %s" % (schema_mod.fmt_value(value), supported),
            )
        )
    if isinstance(value, list):
        schema_mod.array_checks(value, node, path, issues, w.ref)
    else:
        schema_mod.object_checks(value, node, path, issues, w.ref)
    if issues:
        w.V[vpos:vpos] = issues


def _default_value(sub):
    """The default of a property, fully defaulted (as default_node leaves it); must be plain and prune-clean."""
    value = copy.deepcopy(sub["default"])
    schema_mod.default_node(value, sub)
    issues = []
    pruned = schema_mod.prune_node(copy.deepcopy(value), sub, "", issues, "")
    if issues or pruned != value or not _is_plain(value):
        raise _Slow()
    return value


def _object(node):
    rules = _rules_of(node)
    props = node.get("properties") or {}
    procs = {k: _build(sub) for k, sub in props.items()}
    nullable = frozenset(k for k, sub in props.items() if sub.get("nullable"))
    addl = node.get("additionalProperties")
    addl_proc = _build(addl) if isinstance(addl, dict) else None
    addl_nullable = bool(addl.get("nullable")) if isinstance(addl, dict) else False
    keep_unknown = addl is True or bool(node.get("x-kubernetes-preserve-unknown-fields"))
    defaults = tuple(
        (k, procs[k], dv, type(dv) in (str, int, bool, float) or dv is None)
        for k, dv in ((k, _default_value(sub)) for k, sub in props.items() if "default" in sub)
    )
    max_p = node["maxProperties"] if "maxProperties" in node else None
    min_p = node["minProperties"] if "minProperties" in node else None
    required = tuple(node.get("required") or ())
    enum = node.get("enum")
    bounds = max_p is not None or min_p is not None or enum is not None
    get = procs.get

    def proc(value, path, w):
        if type(value) is not dict:
            return _other(value, node, path, w, rules)
        w.seen.append(id(value))  # the same dict twice in the object: checked at the end (run)
        vpos = len(w.V)
        if rules:
            slot = [rules, None, path, node]
            w.C.append(slot)
        out = {}
        prefix = path + "."
        for k, v in value.items():
            sub = get(k)
            if sub is not None:
                if v is None and k not in nullable:
                    continue  # dropped by defaulting (and defaulted again below if it has a default)
                out[k] = sub(v, prefix + k, w)
            elif type(k) is not str:
                raise _Slow()
            elif addl_proc is not None:
                if v is None and not addl_nullable:
                    continue
                out[k] = addl_proc(v, path + "[" + k + "]", w)
            elif keep_unknown:
                out[k] = _plain_copy(v, w)
            else:
                field = prefix + k
                w.P.append(Issue(w.ref, field, "unknown-field", 'unknown field "%s"' % field))
        for k, dproc, dvalue, scalar in defaults:
            if k not in out:
                out[k] = dproc(dvalue if scalar else copy.deepcopy(dvalue), prefix + k, w)
        bad = bounds and (
            (max_p is not None and len(out) > max_p)
            or (min_p is not None and len(out) < min_p)
            or (enum is not None and out not in enum)
        )
        if not bad:
            for r in required:
                if r not in out:
                    bad = True
                    break
        if bad:
            _container_checks(out, node, path, w, vpos)
        if rules:
            slot[1] = out
        return out

    return proc


def _array(node):
    rules = _rules_of(node)
    items = node.get("items")
    item_proc = _build(items) if isinstance(items, dict) else None
    max_i = node["maxItems"] if "maxItems" in node else None
    min_i = node["minItems"] if "minItems" in node else None
    unique = node.get("x-kubernetes-list-type") in ("set", "map") or bool(node.get("uniqueItems"))
    enum = node.get("enum")

    def proc(value, path, w):
        if type(value) is not list:
            return _other(value, node, path, w, rules)
        w.seen.append(id(value))
        vpos = len(w.V)
        if rules:
            slot = [rules, None, path, node]
            w.C.append(slot)
        if item_proc is None:
            out = [_plain_copy(v, w) for v in value]
        else:
            out = [item_proc(v, f"{path}[{n}]", w) for n, v in enumerate(value)]
        if (
            unique
            or (max_i is not None and len(out) > max_i)
            or (min_i is not None and len(out) < min_i)
            or (enum is not None and out not in enum)
        ):
            _container_checks(out, node, path, w, vpos)
        if rules:
            slot[1] = out
        return out

    return proc


class _Root:
    """The object level: metadata (ObjectMeta pruning and checks), the schema's properties, required."""

    def __init__(self, schema):
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
            raise _Slow()
        props = schema["properties"]
        self.schema = schema
        self.props = props
        self.order = tuple(props)
        self.procs = {k: (_build(sub), bool(sub.get("nullable"))) for k, sub in props.items() if k != "metadata"}
        meta = props.get("metadata")
        self.meta_droppable = meta is not None and not meta.get("nullable")
        if isinstance(meta, dict) and (meta.get("properties") or meta.get("default") is not None):
            raise _Slow()
        if "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields"):
            raise _Slow()
        if any("default" in sub for sub in props.values()):
            raise _Slow()
        self.required = tuple(schema.get("required") or ())

    def run(self, obj, ref):
        w = Walk(ref)
        out = {}
        ranges = {}
        for k, v in obj.items():
            if type(k) is not str:
                raise _Slow()
            if k == "metadata":
                meta = self._metadata(v, w)
                if meta is None and self.meta_droppable:
                    continue
                out[k] = meta
                if meta is not None:
                    w.V.extend(schema_mod.validate_metadata(meta, ref))
                continue
            sp = self.procs.get(k)
            if sp is None:
                w.P.append(Issue(ref, k, "unknown-field", 'unknown field "%s"' % k))
                continue
            if v is None and not sp[1]:
                continue
            start = len(w.C)
            out[k] = sp[0](v, k, w)
            ranges[k] = (start, len(w.C))
        prefix = [Issue(ref, req, "required", "Required value") for req in self.required if req not in out]
        if out.get("metadata") is None:
            prefix.append(Issue(ref, "metadata.name", "required", "Required value: name or generateName is required"))
        if prefix:
            w.V[0:0] = prefix
        if len(set(w.seen)) != len(w.seen):
            raise _Slow()  # a container appears twice (YAML anchor): deepcopy keeps such sharing
        # cel.evaluate visits the top-level properties in the schema's order
        w.cel_order = [ranges[k] for k in self.order if k in ranges and k != "status"]
        return out, w

    def _metadata(self, meta, w):
        if type(meta) is not dict:
            return _plain_copy(meta, w)
        w.seen.append(id(meta))
        out = {}
        for k, v in meta.items():
            if type(k) is not str:
                raise _Slow()
            if v is None:
                continue
            if k not in schema_mod.OBJECT_META_FIELDS:
                field = "metadata." + k
                w.P.append(Issue(w.ref, field, "unknown-field", 'unknown field "%s"' % field))
                continue
            out[k] = _plain_copy(v, w)
        return out


# --------------------------------------------------------------------------------------------
# entry points


def run(obj: object, schema: dict[str, Any], ref: str = "") -> tuple[dict[str, Any], Walk] | None:
    """``(defaulted, walk)`` for a dict ``obj`` (status included only if given), or None when the
    four-pass path must be used. ``walk.P + walk.V`` are the prune and schema issues, in order."""
    root = plan_for(schema)
    if root is None or type(obj) is not dict:
        return None
    try:
        return root.run(obj, ref)
    except _Slow:
        return None
    except RecursionError:
        return None


def cel_ready(walk: Walk | None) -> bool:
    """True when ``cel_issues`` may be used for this walk (no integer CEL cannot represent)."""
    return walk is not None and not walk.bigint


def cel_issues(walk: Walk, suppress_errors_under: Iterable[str] = ()) -> list[Issue]:
    """The issues ``cel.evaluate(defaulted, schema, None, ref, suppress_errors_under)`` returns."""
    issues = []
    suppress = tuple(suppress_errors_under)
    pending = walk.C
    ref = walk.ref
    for start, end in walk.cel_order:
        for n in range(start, end):
            rules, value, path, node = pending[n]
            if not rules.ready:
                rules.prepare()
            verdicts = rules.fn(value) if rules.fn is not None else ()
            if verdicts is None:  # every compiled rule holds
                if not rules.rest:
                    continue
                todo = [(rule, expr, None) for rule, expr in rules.rest]
            else:
                position = rules.position
                todo = [
                    (rule, expr, verdicts[position[i]] if position[i] >= 0 else None)
                    for i, (rule, expr) in enumerate(rules.rules)
                ]
            cel_node = None
            for rule, expr, ok in todo:
                if ok is True:
                    continue
                err = None
                if cel_node is None:
                    cel_node = cel_mod.Node(value, node, path)
                if ok is not False:  # undecided: cel-python, exactly as cel.evaluate does
                    ok, err = cel_mod.run_rule(expr, cel_node, None)
                    if ok:
                        continue
                if ok is None and cel_mod.is_suppressed(path, suppress):
                    continue
                where = cel_mod.with_field_path(path, rule.get("fieldPath"))
                message = cel_mod.rule_message(rule, cel_node, None)
                if ok is None:
                    message = "%s (rule evaluation error: %s)" % (message, err)
                issues.append(Issue(ref, where, expr, message, source="cel"))
    return issues


def clear_cache() -> None:
    _PLANS.clear()
