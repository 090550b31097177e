# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Evaluation of the CRDs' ``x-kubernetes-validations`` (CEL) rules with cel-python (``celpy``).

Each rule is evaluated at the schema node where it is declared, with ``self`` bound to that node
of the (pruned, defaulted) object, as the apiserver does:

* rules on absent fields are not evaluated (nor rules under a node of the wrong type - the schema
  validator reports that);
* transition rules (those reading ``oldSelf``) run only when an old object is given and the node
  exists in it too (correlated through object properties, map keys and ``list-type: map`` keys;
  ``optionalOldSelf`` rules run on create with ``oldSelf`` unset);
* the error uses ``messageExpression`` when it evaluates to a string, else ``message``, else
  ``failed rule: <rule>``; ``fieldPath`` is appended to the node path;
* a rule that cannot be evaluated (e.g. ``int("abc")``) is an error, as in the apiserver.

Kubernetes CEL library functions the Karpenter rules use and celpy lacks are supplied:
``find`` (regex library) and ``split`` (strings extension), plus a few other strings-library
functions (``lowerAscii``, ``upperAscii``, ``trim``, ``replace``, ``join``, ``indexOf``,
``lastIndexOf``, ``substring``, ``findAll``) for rules of newer CRDs.

Compiled programs are cached per rule text (module level), and results are memoised per
(rule, value, old value) - rules are pure functions of their inputs - so validating a batch of
similar objects is fast.

``validate.validate`` normally does not call :func:`evaluate`: ``fastpath`` walks the object once and
runs the rules compiled to Python by ``celcompile``, falling back to :func:`_run` (cel-python, exactly
as here) for every rule the compiled code cannot decide. :func:`evaluate` remains the reference (and
the path for transition rules with an old object); tests compare both.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import golang
from .issues import Issue, join_path
from .schema import matches_type

if TYPE_CHECKING:  # annotations only: cel-python is imported on first use (_load)
    from celpy import Environment, Runner
    from celpy.celtypes import Value as CELValue

# cel-python is imported on first use (about 0.1 s, more than validating hundreds of objects): the
# rules compiled by celcompile decide almost every evaluation without it.
celpy = celtypes = None


class CELEvalError(Exception):  # replaced by celpy.evaluation.CELEvalError when cel-python is loaded
    pass


HAS_CELPY = importlib.util.find_spec("celpy") is not None
CELPY_IMPORT_ERROR = None if HAS_CELPY else ImportError("No module named 'celpy'")

_ENV = None
_PROGRAMS = {}
_RESULTS = {}
_RESULTS_MAX = 50000
_OLD_SELF = re.compile(r"\boldSelf\b")


class CELUnavailable(RuntimeError):
    """cel-python is not installed."""


# --------------------------------------------------------------------------------------------
# Kubernetes CEL library functions


def _regex(pattern):
    return golang.compile_regex(pattern)  # Go RE2 semantics (cached there)


def _find(text, pattern):
    m = _regex(pattern).search(text)
    return celtypes.StringType(m.group(0) if m else "")


def _find_all(text, pattern, limit=None):
    found = [m.group(0) for m in _regex(pattern).finditer(text)]
    if limit is not None and int(limit) >= 0:
        found = found[: int(limit)]
    return celtypes.ListType([celtypes.StringType(s) for s in found])


def _split(text, sep, limit=None):
    if limit is None:
        parts = text.split(sep) if sep else list(text)
    else:
        n = int(limit)
        if n == 0:
            parts = []
        elif n < 0:
            parts = text.split(sep) if sep else list(text)
        else:
            parts = text.split(sep, n - 1) if sep else list(text[: n - 1]) + ([text[n - 1 :]] if len(text) >= n else [])
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _join(items, sep=""):
    return celtypes.StringType(str(sep).join(str(i) for i in items))


def _substring(text, start, end=None):
    start = int(start)
    end = len(text) if end is None else int(end)
    if start < 0 or end > len(text) or start > end:
        raise ValueError("substring(%d, %d) out of range" % (start, end))
    return celtypes.StringType(text[start:end])


def _index_of(text, sub, start=0):
    return celtypes.IntType(text.find(sub, int(start)))


def _last_index_of(text, sub, end=None):
    return celtypes.IntType(text.rfind(sub) if end is None else text.rfind(sub, 0, int(end) + len(sub)))


def _replace(text, old, new, limit=None):
    n = -1 if limit is None else int(limit)
    return celtypes.StringType(text.replace(old, new, n))


def _ascii_case(fn):
    def convert(text):
        return celtypes.StringType("".join(fn(c) if c.isascii() else c for c in text))

    return convert


def _int(value):
    """CEL ``int()`` as cel-go: a string is parsed by ``strconv.ParseInt(s, 10, 64)`` (cel-python also takes
    ``"16_384"``, ``" 4"`` and ``"0x10"``, which the apiserver refuses); anything else as cel-python does."""
    if isinstance(value, str):
        try:
            return celtypes.IntType(golang.parse_int(str(value)))
        except ValueError as exc:  # the apiserver's wording, then Go's reason
            return CELEvalError("type conversion error from 'string' to 'int'", ValueError, (str(exc),))
    return celtypes.IntType(value)


FUNCTIONS = {
    "int": _int,
    "find": _find,
    "findAll": _find_all,
    "split": _split,
    "join": _join,
    "substring": _substring,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "replace": _replace,
    "lowerAscii": _ascii_case(str.lower),
    "upperAscii": _ascii_case(str.upper),
    "trim": lambda text: celtypes.StringType(text.strip()),
}


# --------------------------------------------------------------------------------------------
# compilation


def _load():
    """Import cel-python (once)."""
    global celpy, celtypes, CELEvalError, CELPY_IMPORT_ERROR
    if celtypes is not None:
        return
    if HAS_CELPY:
        try:
            import celpy as celpy_mod
            from celpy import celtypes as celtypes_mod
            from celpy.evaluation import CELEvalError as error_class
        except ImportError as exc:  # installed but broken
            CELPY_IMPORT_ERROR = exc
        else:
            celpy, celtypes, CELEvalError = celpy_mod, celtypes_mod, error_class
            return
    raise CELUnavailable("cel-python (import celpy) is required for CEL validation: %s" % CELPY_IMPORT_ERROR)


def environment() -> Environment:
    global _ENV
    _load()
    if _ENV is None:
        _ENV = celpy.Environment()
    return _ENV


def compile_rule(rule: str) -> Runner:
    """Compile (once) and return the celpy program for a rule expression."""
    prog = _PROGRAMS.get(rule)
    if prog is None:
        env = environment()
        prog = env.program(env.compile(rule), functions=FUNCTIONS)
        _PROGRAMS[rule] = prog
    return prog


def is_transition_rule(rule: str | dict[str, Any]) -> bool:
    return bool(_OLD_SELF.search(rule.get("rule", "") if isinstance(rule, dict) else rule))


def iter_rules(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(schema_path, rule_dict)`` for every x-kubernetes-validations rule in a schema."""
    for r in schema.get("x-kubernetes-validations") or ():
        yield path, r
    for k, sub in (schema.get("properties") or {}).items():
        yield from iter_rules(sub, join_path(path, k))
    if isinstance(schema.get("items"), dict):
        yield from iter_rules(schema["items"], path + "[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from iter_rules(schema["additionalProperties"], path + "{*}")


def compile_schema(schema: dict[str, Any]) -> tuple[int, list[tuple[str, str, str]]]:
    """Compile every rule (and messageExpression) of a schema; return ``(count, failures)``."""
    failures = []
    seen = set()
    for path, r in iter_rules(schema):
        for expr in (r.get("rule"), r.get("messageExpression")):
            if not expr or expr in seen:
                continue
            seen.add(expr)
            try:
                compile_rule(expr)
            except Exception as exc:  # noqa: BLE001 - report every compile failure
                failures.append((path, expr, "%s: %s" % (type(exc).__name__, exc)))
    return len(seen), failures


# --------------------------------------------------------------------------------------------
# conversion to CEL values


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class CELConversionError(ValueError):
    """A value CEL cannot represent (an integer outside the int64 range); ``path`` is where it is.

    The apiserver cannot evaluate a rule over such a value either: it reports a rule evaluation error.
    """

    def __init__(self, path, message):
        super().__init__("%s: %s" % (path, message) if path else message)
        self.path = path


def _cel_int(value, path):
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise CELConversionError(path, "integer %d overflows int64 (CEL int)" % value)
    return celtypes.IntType(value)


def to_cel(value: object, schema: dict[str, Any] | None = None, path: str = "") -> CELValue:
    """Convert JSON-like data to celpy values (integral numbers of integer fields become ints).

    Raises :class:`CELConversionError` (naming ``path``, the value's field path) for an integer
    outside the int64 range.
    """
    _load()
    return _to_cel(value, schema, path)


def _to_cel(value, schema, path):
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, int):
        return _cel_int(value, path)
    if isinstance(value, float):
        if schema is not None and schema.get("type") == "integer" and value.is_integer():
            return _cel_int(int(value), path)
        return celtypes.DoubleType(value)
    if isinstance(value, dict):
        props = (schema or {}).get("properties") or {}
        addl = (schema or {}).get("additionalProperties")
        addl = addl if isinstance(addl, dict) else None
        return celtypes.MapType(
            {
                celtypes.StringType(k): _to_cel(v, props.get(k, addl), join_path(path, k if k in props else ("key", k)))
                for k, v in value.items()
            }
        )
    if isinstance(value, (list, tuple)):
        items = (schema or {}).get("items")
        items = items if isinstance(items, dict) else None
        return celtypes.ListType([_to_cel(v, items, join_path(path, i)) for i, v in enumerate(value)])
    if value is None:
        return None
    return celtypes.StringType(str(value))


class Node:
    """Lazily converted value of one schema node (CEL value and memo key computed once)."""

    __slots__ = ("value", "schema", "path", "_cel", "_key")

    def __init__(self, value: object, schema: dict[str, Any] | None, path: str = "") -> None:
        self.value = value
        self.schema = schema
        self.path = path
        self._cel = None
        self._key = None

    @property
    def cel(self) -> CELValue:
        """The CEL value; raises :class:`CELConversionError` when the value has no CEL form."""
        if self._cel is None:
            self._cel = to_cel(self.value, self.schema, self.path)
        return self._cel

    @property
    def key(self) -> str | None:
        """The memo key (canonical JSON), or None for a value that has none (mixed-type map keys)."""
        if self._key is None:
            self._key = _memo_key(self.value) or False
        return self._key or None


def _memo_key(value):
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):  # e.g. {1: .., "a": ..} cannot be sorted: not memoised
        return None


# --------------------------------------------------------------------------------------------
# evaluation


_ALL_RULE = re.compile(r"^\s*self\.all\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,(.*)\)\s*$", re.S)
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_SELF_REF = re.compile(r"\b(self|oldSelf)\b")
_PLANS = {}


def _plan(expr):
    """How to evaluate a rule: ``("all", var, body)`` for ``self.all(v, body)`` whose body does not
    read ``self``/``oldSelf`` (evaluated and memoised per element, combined with CEL ``all``
    semantics), else ``("whole",)``."""
    plan = _PLANS.get(expr)
    if plan is None:
        plan = ("whole",)
        m = _ALL_RULE.match(expr)
        if m:
            var, body = m.group(1), m.group(2)
            bare = _STRING_LITERAL.sub("''", body)
            if not _SELF_REF.search(bare) and _balanced(bare):
                plan = ("all", var, body.strip())
        _PLANS[expr] = plan
    return plan


def _balanced(text):
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _evaluate(expr, activation):
    try:
        result = compile_rule(expr).evaluate(activation)
        if isinstance(result, celtypes.BoolType):
            return (bool(result), None)
        return (None, "rule did not evaluate to a bool: %r" % (result,))
    except CELEvalError as exc:
        return (None, _eval_error_text(exc))
    except Exception as exc:  # noqa: BLE001 - celpy may raise plain Python errors
        return (None, "%s: %s" % (type(exc).__name__, exc))


def _remember(memo_key, out):
    if len(_RESULTS) >= _RESULTS_MAX:
        _RESULTS.clear()
    _RESULTS[memo_key] = out
    return out


def run_rule(expr: str, node: Node, old: Node | None) -> tuple[bool | None, str | None]:
    """Evaluate ``expr``; return ``(True|False|None, error_text)`` (None = evaluation error)."""
    plan = _plan(expr) if old is None else ("whole",)
    if plan[0] == "all" and isinstance(node.value, (dict, list)):
        return _run_all(plan[1], plan[2], node)
    memo_key = ("rule", expr, node.key, old.key if old is not None else None)
    if node.key is None or (old is not None and old.key is None):
        memo_key = None
    hit = _RESULTS.get(memo_key) if memo_key is not None else None
    if hit is not None:
        return hit
    try:
        activation = {"self": node.cel}
        if old is not None:
            activation["oldSelf"] = old.cel
    except CELConversionError as exc:  # not memoised: the message names this node's path
        return (None, str(exc))
    out = _evaluate(expr, activation)
    return _remember(memo_key, out) if memo_key is not None else out


def _run_all(var, body, node):
    """``self.all(var, body)`` element by element: false if any element is false, else the first
    evaluation error, else true (the CEL ``all`` macro's error-absorbing semantics)."""
    value = node.value
    if isinstance(value, dict):
        elements = [(k, _memo_key(k), None, node.path) for k in value]
    else:
        items = (node.schema or {}).get("items")
        items = items if isinstance(items, dict) else None
        elements = [(v, None, items, join_path(node.path, i)) for i, v in enumerate(value)]
    error = None
    for element, elem_key, elem_schema, elem_path in elements:
        if elem_key is None:
            elem_key = _memo_key(element)
        memo_key = ("element", body, var, elem_key) if elem_key is not None else None
        out = _RESULTS.get(memo_key) if memo_key is not None else None
        if out is None:
            try:
                cel_element = to_cel(element, elem_schema, elem_path)
            except CELConversionError as exc:  # not memoised: the message names this element's path
                out = (None, str(exc))
            else:
                out = _evaluate(body, {var: cel_element})
                if memo_key is not None:
                    _remember(memo_key, out)
        if out[0] is False:
            return out
        if out[0] is None and error is None:
            error = out
    return error or (True, None)


def _eval_error_text(exc):
    args = getattr(exc, "args", ())
    if len(args) >= 3 and args[2]:
        detail = args[2][0] if isinstance(args[2], tuple) and args[2] else args[2]
        return "%s (%s)" % (args[0], detail)
    return str(args[0]) if args else str(exc)


def rule_message(rule: dict[str, Any], node: Node, old: Node | None) -> str:
    expr = rule.get("messageExpression")
    if expr:
        try:
            activation = {"self": node.cel}
            if old is not None:
                activation["oldSelf"] = old.cel
            msg = compile_rule(expr).evaluate(activation)
            if isinstance(msg, str) and msg.strip():
                return str(msg)
        except Exception:  # noqa: BLE001 - fall back to message, as the apiserver does
            pass
    if rule.get("message"):
        return rule["message"]
    return "failed rule: %s" % rule.get("rule")


_FIELD_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^']*)'\]|\[(\d+)\]")


def with_field_path(path: str, field_path: str | None) -> str:
    if not field_path:
        return path
    pos = 0
    out = path
    while pos < len(field_path):
        m = _FIELD_PATH_TOKEN.match(field_path, pos)
        if not m:
            return path + field_path
        if m.group(1) is not None:
            out = join_path(out, m.group(1))
        elif m.group(2) is not None:
            out = join_path(out, ("key", m.group(2)))
        else:
            out = join_path(out, int(m.group(3)))
        pos = m.end()
    return out


def evaluate(
    obj: object,
    schema: dict[str, Any],
    old: dict[str, Any] | None = None,
    object_ref: str = "",
    suppress_errors_under: Iterable[str] = (),
) -> list[Issue]:
    """Evaluate every applicable rule of ``schema`` on ``obj``; return a list of Issues.

    ``old`` (optional) is the previous version of the object, enabling transition rules.
    ``suppress_errors_under``: paths that already have schema errors; a rule that fails to
    *evaluate* (not one that evaluates to false) at or above such a path is not reported again.
    """
    environment()
    issues = []
    ctx = (issues, object_ref, tuple(suppress_errors_under))
    if not isinstance(obj, dict):
        return issues
    props = schema.get("properties") or {}
    has_old = isinstance(old, dict)
    for k, sub in props.items():
        if k in ("metadata", "status") or k not in obj:
            continue
        old_k = old.get(k) if has_old and k in old else None
        _walk(obj[k], sub, k, old_k, has_old and k in old, ctx)
    return issues


def is_suppressed(path: str, prefixes: Iterable[str]) -> bool:
    for p in prefixes:
        if p == path or p.startswith(path + ".") or p.startswith(path + "["):
            return True
    return False


def _walk(value, schema, path, old, has_old, ctx):
    if value is None or not matches_type(value, schema):
        return
    if has_old and (old is None or not matches_type(old, schema)):
        has_old = False
    rules = schema.get("x-kubernetes-validations")
    if rules:
        node = Node(value, schema, path)
        old_node = Node(old, schema, path) if has_old else None
        issues, ref, suppress = ctx
        for rule in rules:
            expr = rule.get("rule")
            if not expr:
                continue
            transition = bool(_OLD_SELF.search(expr))
            if transition and not has_old and not rule.get("optionalOldSelf"):
                continue
            ok, err = run_rule(expr, node, old_node if transition else None)
            if ok:
                continue
            where = with_field_path(path, rule.get("fieldPath"))
            message = rule_message(rule, node, old_node if transition else None)
            if ok is None:
                if is_suppressed(path, suppress):
                    continue
                message = "%s (rule evaluation error: %s)" % (message, err)
            issues.append(Issue(ref, where, expr, message, source="cel"))

    if isinstance(value, dict):
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else None
        old_map = old if has_old and isinstance(old, dict) else None
        for k, v in value.items():
            sub = props.get(k)
            seg = k
            if sub is None:
                if addl is None:
                    continue
                sub, seg = addl, ("key", k)
            in_old = old_map is not None and k in old_map
            _walk(v, sub, join_path(path, seg), old_map.get(k) if in_old else None, in_old, ctx)
    elif isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return
        map_keys = schema.get("x-kubernetes-list-map-keys") if schema.get("x-kubernetes-list-type") == "map" else None
        old_index = {}
        if map_keys and has_old and isinstance(old, list):
            for o in old:
                if isinstance(o, dict):
                    old_index[tuple(_memo_key(o.get(k)) or repr(o.get(k)) for k in map_keys)] = o
        for i, item in enumerate(value):
            old_item = None
            if old_index and isinstance(item, dict):
                old_item = old_index.get(tuple(_memo_key(item.get(k)) or repr(item.get(k)) for k in map_keys))
            _walk(item, items, join_path(path, i), old_item, old_item is not None, ctx)


def cache_sizes() -> dict[str, int]:
    """Sizes of this module's caches (compiled programs, memoised results)."""
    return {"programs": len(_PROGRAMS), "results": len(_RESULTS)}


def clear_cache(programs: bool = False) -> None:
    """Forget memoised results; with ``programs=True`` also the compiled celpy programs and evaluation plans."""
    _RESULTS.clear()
    if programs:
        _PROGRAMS.clear()
        _PLANS.clear()
