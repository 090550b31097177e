# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small compiler from CEL rule text to Python functions over plain JSON values.

The CRDs' ``x-kubernetes-validations`` rules are evaluated by cel-python (``celpy``, see ``cel.py``); its
tree-walking interpreter costs about a millisecond per evaluation and needs every value converted to
``celtypes`` first. This module compiles the subset of CEL the Karpenter rules use into one Python
function per rule, which reads the (pruned, defaulted) JSON value directly.

Contract - a compiled rule is a *fast path* of the cel-python evaluation, never a second opinion:

* ``compile_rule(text)`` returns ``None`` when the rule uses anything outside the subset (the caller then
  always uses cel-python for it); the decision is made once per rule text;
* the compiled function returns ``True`` or ``False`` only when that is exactly what cel-python returns for
  the same value (``self`` converted with ``cel.to_cel``), and ``None`` ("undecided") otherwise: on any
  CEL evaluation error (no such key, bad index, ``int("abc")``, ...), on any value of an unexpected type
  (a float, a null, a string where a list is expected, ...) and whenever cel-python's own quirks could
  matter. The caller evaluates undecided rules with cel-python, which also produces the exact error text.

Why short-circuiting ``&&``/``||`` is still exact: cel-python evaluates both operands, but ``false && e``
is ``false`` and ``true || e`` is ``true`` whatever ``e`` evaluates to (an error value included). The only
operands that do not evaluate to a value are those that *raise* inside cel-python (a macro over a value
that is not iterable, an error inside a ``filter``/``map``/``exists_one`` body, ``int()`` of an infinite
double). When the skipped operand contains such a construct, the generated code still evaluates a
*probe* of it (the macro's target, or the whole macro) and is undecided when cel-python could raise; the
``all``/``exists`` macros stop at the first deciding element only when their body cannot raise.

Supported: literals (int, string without escapes, bool, lists), ``self`` and macro variables, field
selection, ``has()``, indexing, ``! && || ?:``, ``== != < <= > >= in``, ``size()`` (both forms),
``startsWith endsWith matches find split`` (literal arguments), ``int()``, and the macros ``all exists
exists_one filter map``. tests/unit/karpenter/test_celcompile.py compares every shipped rule with
cel-python over corpus and generated values (differential tests).

``compile_node`` compiles all rules of one schema node into one function (one call per node and value,
``self`` of the node's type); ``compile_rule`` compiles one rule.
"""

# pylint: disable=unidiomatic-typecheck  # CEL types: bool is not int, int is not float - exact type checks are the semantics
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from . import golang


class Unsupported(Exception):
    """The rule uses CEL outside the compiled subset (or is not valid CEL): cel-python evaluates it."""


class Undecided(Exception):
    """Raised inside a compiled rule: only cel-python can tell the result (an error or a quirk)."""


# --------------------------------------------------------------------------------------------
# tokenizer

_TOKEN = re.compile(
    r"""(?:[\t\n\f\r ]+|//[^\n]*)*(?:
    ([0-9][0-9A-Za-z_.]*)
    |('[^'\\\n]*'|"[^"\\\n]*")
    |([_a-zA-Z][_a-zA-Z0-9]*)
    |(\|\||&&|==|!=|<=|>=|[<>!?:.,()\[\]{}+\-*/%])
    |(.|\n)
    |\Z)""",
    re.X,
)
_INT = re.compile(r"[0-9]+\Z")
_RESERVED = frozenset(
    "as break const continue else for function if import let loop package namespace return var void while".split()
)


def tokenize(text: str) -> list[tuple[str, int | str | None]]:
    """``[(kind, value)]`` with kinds ``int str id op end``; raises Unsupported on anything else."""
    out = []
    append = out.append
    for num, string, ident, op, bad in _TOKEN.findall(text):
        if ident:
            if ident in _RESERVED:
                raise Unsupported("reserved word %r" % ident)
            append(("id", ident))
        elif op:
            append(("op", op))
        elif string:
            append(("str", string[1:-1]))
        elif num:
            if not _INT.match(num):  # doubles, uints, hex: not in the subset
                raise Unsupported("number literal %r" % num)
            append(("int", int(num)))
        elif bad:
            raise Unsupported("unexpected character %r" % bad)
    for i in range(len(out) - 1):  # r'..' b'..' (a prefix lexed as an identifier) and -1 (one token in celpy)
        tok, nxt = out[i], out[i + 1]
        if tok[0] == "id" and tok[1] in ("r", "R", "b", "B") and nxt[0] == "str":
            raise Unsupported("prefixed string literal")
        if tok == ("op", "-") and nxt[0] == "int":
            raise Unsupported("signed number literal")
    append(("end", None))
    return out


# --------------------------------------------------------------------------------------------
# parser (CEL grammar, same precedence and associativity as cel-python's cel.lark)
#
# AST nodes are tuples:
#   ("int", n) ("str", s) ("bool", b) ("list", [items]) ("ident", name) ("select", e, field)
#   ("has", e, field) ("index", e, i) ("call", name, target|None, [args]) ("macro", name, target, var, body)
#   ("not", e) ("and", a, b) ("or", a, b) ("cond", c, a, b) ("op", op, a, b)

_MACROS = frozenset(("all", "exists", "exists_one", "filter", "map"))
_CELPY_MACROS = _MACROS | {"reduce", "min"}
_PREC = {("op", "||"): 1, ("op", "&&"): 2, ("id", "in"): 3}
_PREC.update((("op", op), 3) for op in ("<", "<=", ">", ">=", "==", "!="))
_PREC.update((("op", op), 4) for op in ("+", "-", "*", "/", "%"))


class _Parser:
    def __init__(self, text):
        self.toks = tokenize(text)
        self.pos = 0

    def peek(self):
        return self.toks[self.pos]

    def next(self):
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def accept(self, op):
        if self.toks[self.pos] == ("op", op):
            self.pos += 1
            return True
        return False

    def expect(self, op):
        if not self.accept(op):
            raise Unsupported("expected %r, got %r" % (op, self.peek()))

    def parse(self):
        e = self.expr()
        if self.peek()[0] != "end":
            raise Unsupported("trailing input %r" % (self.peek(),))
        return e

    def expr(self):
        c = self.binary(1)
        if self.accept("?"):
            a = self.binary(1)
            self.expect(":")
            b = self.expr()
            return ("cond", c, a, b)
        return c

    def binary(self, min_prec):
        """Left-associative binary operators by precedence (|| < && < relations), as in cel.lark."""
        left = self.unary()
        toks = self.toks
        while True:
            tok = toks[self.pos]
            prec = _PREC.get(tok)
            if prec is None or prec < min_prec:
                return left
            if prec == 4:
                raise Unsupported("arithmetic")
            self.pos += 1
            right = self.binary(prec + 1)
            if prec == 1:
                left = ("or", left, right)
            elif prec == 2:
                left = ("and", left, right)
            else:
                left = ("op", tok[1], left, right)

    def unary(self):
        if self.accept("!"):
            return ("not", self.unary())
        if self.peek() == ("op", "-"):
            raise Unsupported("negation")
        return self.member()

    def member(self):
        e = self.primary()
        while True:
            if self.accept("."):
                tok = self.next()
                if tok[0] != "id" or tok[1] in ("true", "false", "null", "in"):
                    raise Unsupported("field name %r" % (tok,))
                name = tok[1]
                if self.accept("("):
                    args = self.args(")")
                    e = self.method(e, name, args)
                else:
                    e = ("select", e, name)
            elif self.accept("["):
                i = self.expr()
                self.expect("]")
                e = ("index", e, i)
            elif self.peek() == ("op", "{"):
                raise Unsupported("message construction")
            else:
                return e

    def method(self, target, name, args):
        if name in _CELPY_MACROS:
            if name not in _MACROS or len(args) != 2 or args[0][0] != "ident":
                raise Unsupported("macro %s with %d argument(s)" % (name, len(args)))
            var = args[0][1]
            if var in ("self", "oldSelf"):
                raise Unsupported("macro variable %s" % var)
            return ("macro", name, target, var, args[1])
        return ("call", name, target, args)

    def args(self, close):
        out = []
        if self.accept(close):
            return out
        toks = self.toks
        ends = (("op", ","), ("op", close))
        while True:
            tok = toks[self.pos]
            if tok[0] == "str" and toks[self.pos + 1] in ends:  # a bare literal (long lists of them)
                self.pos += 1
                out.append(tok)
            else:
                out.append(self.expr())
            if self.accept(close):
                return out
            self.expect(",")

    def primary(self):
        tok = self.next()
        kind, value = tok
        if kind == "int":
            return ("int", value)
        if kind == "str":
            return ("str", value)
        if kind == "id":
            if value in ("true", "false"):
                return ("bool", value == "true")
            if value in ("null", "in"):
                raise Unsupported(value)
            if self.accept("("):
                args = self.args(")")
                if value == "has":
                    if len(args) != 1 or args[0][0] != "select":
                        raise Unsupported("has() of a non-field")
                    return ("has", args[0][1], args[0][2])
                return ("call", value, None, args)
            return ("ident", value)
        if tok == ("op", "("):
            e = self.expr()
            self.expect(")")
            return e
        if tok == ("op", "["):
            return ("list", self.args("]"))
        raise Unsupported("unexpected %r" % (tok,))


def parse(text: str) -> tuple:
    """Parse CEL text into the tuple AST; raises Unsupported."""
    return _Parser(text).parse()


# --------------------------------------------------------------------------------------------
# runtime helpers (the names the generated code uses)


def _b(v):
    if v is True or v is False:
        return v
    raise Undecided()


def _eq(a, b):
    t = type(a)
    if t is type(b):
        if t is str or t is int or t is bool:
            return a == b
        if t is list and _all_str(a) and _all_str(b):
            return a == b
    raise Undecided()


def _ne(a, b):
    return not _eq(a, b)


def _eq_str(a, lit):  # a == 'literal'
    if type(a) is str:
        return a == lit
    raise Undecided()


def _ne_str(a, lit):
    if type(a) is str:
        return a != lit
    raise Undecided()


def _eq_int(a, lit):  # a == 3 (a bool is not an int here)
    if type(a) is int:
        return a == lit
    raise Undecided()


def _ne_int(a, lit):
    if type(a) is int:
        return a != lit
    raise Undecided()


def _all_str(items):
    for i in items:
        if type(i) is not str:
            return False
    return True


def _cmp_ok(a, b):
    t = type(a)
    if t is type(b) and (t is int or t is str or t is bool):
        return True
    raise Undecided()


def _lt(a, b):
    return _cmp_ok(a, b) and a < b


def _le(a, b):
    return _cmp_ok(a, b) and a <= b


def _gt(a, b):
    return _cmp_ok(a, b) and a > b


def _ge(a, b):
    return _cmp_ok(a, b) and a >= b


def _in(item, container):
    """``item in container`` for a string/int item and a list of the same type or a map (its keys)."""
    t = type(item)
    tc = type(container)
    if t is str and tc is dict:
        return item in container
    if (t is str or t is int) and tc is list:
        for c in container:
            if type(c) is not t:
                raise Undecided()
        return item in container
    raise Undecided()


def _in_const(item, const):
    """``item in [literal strings]`` (``const`` is their frozenset)."""
    if type(item) is str:
        return item in const
    raise Undecided()


def _has(v, field):
    return type(v) is dict and field in v


def _size(v):
    t = type(v)
    if t is str or t is list or t is dict:
        return len(v)
    raise Undecided()


def _idx(c, i):
    tc = type(c)
    ti = type(i)
    if (tc is list and ti is int) or (tc is dict and ti is str):
        return c[i]  # IndexError / KeyError: undecided (the caller catches every exception)
    raise Undecided()


def _iter(v):
    t = type(v)
    if t is list or t is dict:
        return v
    raise Undecided()


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _int(v):
    t = type(v)
    if t is int:
        return v
    if t is str:  # strconv.ParseInt(v, 10, 64), as cel-go and cel.FUNCTIONS["int"]
        return golang.parse_int(v)  # ValueError: undecided (cel-python reports the error)
    raise Undecided()


def _starts(s, p):
    if type(s) is str and type(p) is str:
        return s.startswith(p)
    raise Undecided()


def _ends(s, p):
    if type(s) is str and type(p) is str:
        return s.endswith(p)
    raise Undecided()


def _split(s, sep):
    if type(s) is str and type(sep) is str:
        return s.split(sep) if sep else list(s)
    raise Undecided()


def _true(_probe):  # ``true || e``: e was probed (it cannot raise inside cel-python), the result is true
    return True


def _false(_probe):
    return False


def _probe(thunk, run, safe):
    """Probe a macro (or int()) that cel-python evaluates although its value does not matter: raise
    Undecided unless cel-python surely evaluates it to a value (an error value included) without raising.

    ``thunk()`` evaluates the target; when that fails and the target cannot raise inside cel-python
    (``safe``), cel-python got an error value and the macro returns it. Otherwise ``run(target)`` must
    succeed (every exception propagates and makes the rule undecided)."""
    try:
        target = thunk()
    except Exception:  # noqa: BLE001
        if safe:
            return None
        raise
    run(target)
    return None


def _probe_iter(thunk, safe):
    """Probe of ``all``/``exists`` with a body that cannot raise: cel-python raises only when the target
    is a value it cannot iterate (lists, maps and strings it can)."""
    try:
        target = thunk()
    except Exception:  # noqa: BLE001
        if safe:
            return None
        raise
    t = type(target)
    if t is list or t is dict or t is str:
        return None
    raise Undecided()


def _probe_int(thunk, safe):
    """Probe of ``int(x)``: celtypes.IntType raises (instead of returning an error value) only for an
    infinite double; any double is left to cel-python."""
    try:
        target = thunk()
    except Exception:  # noqa: BLE001
        if safe:
            return None
        raise
    if type(target) is float:
        raise Undecided()
    return None


_FINDS = {}


_PREFIX_BEFORE = re.compile(r"\^\(?\[\^([A-Za-z0-9@/:=,_-])\]\+\)?\Z")


def _prefix_before(pattern):
    """For ``^[^c]+`` / ``^([^c]+)`` (c one plain character): the character. Such a find() returns the
    text up to the first c, i.e. ``text.partition(c)[0]`` (empty when there is no match)."""
    m = _PREFIX_BEFORE.match(pattern)
    if m and pattern.count("(") == pattern.count(")"):
        return m.group(1)
    return None


def _make_find(rx, before=None):
    if before is not None:

        def find(s):
            if type(s) is str:
                return s.partition(before)[0]
            raise Undecided()

        return find

    search = rx.search

    def find(s):
        if type(s) is str:
            m = search(s)
            return m.group(0) if m else ""
        raise Undecided()

    return find


# matches() runs re2 in cel-python (Go's regexp in the apiserver); golang.compile_regex gives the same
# matches with Python's re (ASCII classes, $ = end of text), 40 times faster than a call into re2.


def _utf8(s):
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _make_matches(rx):
    search = rx.search

    def matches(s):
        if type(s) is str and (s.isascii() or _utf8(s)):
            return search(s) is not None
        raise Undecided()  # a lone surrogate: re2 cannot take it (cel-python reports an error)

    return matches


_HELPERS = {
    "_b": _b,
    "_eq": _eq,
    "_ne": _ne,
    "_eq_str": _eq_str,
    "_ne_str": _ne_str,
    "_eq_int": _eq_int,
    "_ne_int": _ne_int,
    "_lt": _lt,
    "_le": _le,
    "_gt": _gt,
    "_ge": _ge,
    "_in": _in,
    "_in_const": _in_const,
    "_has": _has,
    "_size": _size,
    "_idx": _idx,
    "_iter": _iter,
    "_int": _int,
    "_starts": _starts,
    "_ends": _ends,
    "_split": _split,
    "_true": _true,
    "_false": _false,
    "_probe": _probe,
    "_probe_iter": _probe_iter,
    "_probe_int": _probe_int,
}

# --------------------------------------------------------------------------------------------
# code generation: each node becomes (python_expression, kind, raises)
#   kind: "bool" "int" "str" "list" "map" or "any" (statically unknown). Only literals, results of
#   operators and ``self`` have a known kind: the caller evaluates a node's rules only on a value of the
#   node's schema type, so ``self`` of a string node is a str, of an object node a dict, ... (the keys of
#   a dict are str). Values read from inside ``self`` may have any type (a child with a schema error).
#   raises: the node contains a macro or int() of a non-int, which cel-python may *raise* from (a
#   non-iterable target, an error inside a filter/map/exists_one body, int() of an infinite double)
#   instead of returning an error value that && || ?: could absorb.

SELF_KINDS = {"string": "str", "object": "map", "array": "list", "boolean": "bool"}


class _Gen:
    def __init__(self, self_kind="any"):
        self.consts = {}
        self.n = 0
        self.self_kind = self_kind
        self.memo = {}  # (id(node), scope) -> generated code: probes ask for the same subtrees again
        self.keep = []

    def const(self, value):
        for name, v in self.consts.items():
            if type(v) is type(value) and v == value:
                return name
        name = "_k%d" % len(self.consts)
        self.consts[name] = value
        return name

    def tmp(self):
        self.n += 1
        return "t_%d" % self.n

    def as_bool(self, node, scope):
        code, kind, raises = self.gen(node, scope)
        if kind != "bool":
            code = "_b(%s)" % code
        return code, raises

    def gen(self, node, scope):
        key = (id(node), tuple(sorted(scope.items())) if scope else ())
        hit = self.memo.get(key)
        if hit is None:
            hit = self.memo[key] = getattr(self, "g_" + node[0])(node, scope)
            self.keep.append(node)  # ids stay unique while the memo lives
        return hit

    # ---- probes: code that raises Undecided when cel-python could raise evaluating the node

    def probe(self, node, scope):
        """Python expression evaluating what cel-python evaluates of ``node`` that could raise, or None."""
        if not self.gen(node, scope)[2]:
            return None
        tag = node[0]
        if tag == "macro":
            unused, name, target, var, body = node
            t, kt, rt = self.gen(target, scope)
            inner = dict(scope)
            inner[var] = ("v_" + var, "str" if kt == "map" else "any")
            if name in ("all", "exists") and not self.gen(body, inner)[2]:
                if kt in ("list", "map") and not rt:
                    return None  # the target is a list or a map whenever it evaluates
                return "_probe_iter(lambda: %s, %s)" % (t, not rt)
            v = self.tmp()
            code = self.macro_code(name, v, kt, var, body, scope)[0]
            return "_probe(lambda: %s, lambda %s: %s, %s)" % (t, v, code, not rt)
        if tag == "call" and node[1] == "int" and node[2] is None:
            t, unused, rt = self.gen(node[3][0], scope)
            inner = self.probe(node[3][0], scope)
            run = "_probe_int(lambda: %s, %s)" % (t, not rt)
            return run if inner is None else "(%s, %s)" % (inner, run)
        if tag == "cond":
            pc = self.probe(node[1], scope)
            pa = self.probe(node[2], scope) or "None"
            pb = self.probe(node[3], scope) or "None"
            if pa == pb == "None":
                return pc
            c, unused = self.as_bool(node[1], scope)  # the branch cel-python takes (undecided when c fails)
            return "(%s if %s else %s)" % (pa, c, pb)
        children = [c for c in _children(node) if isinstance(c, tuple)]
        probes = [p for p in (self.probe(c, scope) for c in children) if p]
        return "(%s,)" % ", ".join(probes) if probes else None

    # ---- nodes

    def g_int(self, node, scope):
        if not _INT64_MIN <= node[1] <= _INT64_MAX:
            raise Unsupported("int literal out of range")
        return repr(node[1]), "int", False

    def g_str(self, node, scope):
        return repr(node[1]), "str", False

    def g_bool(self, node, scope):
        return repr(node[1]), "bool", False

    def g_list(self, node, scope):
        parts = [self.gen(e, scope) for e in node[1]]
        return "[%s]" % "".join(p[0] + ", " for p in parts), "list", any(p[2] for p in parts)

    def g_ident(self, node, scope):
        name = node[1]
        if name in scope:  # a macro variable (it may shadow self)
            return scope[name][0], scope[name][1], False
        if name == "self":
            return "s", self.self_kind, False
        raise Unsupported("identifier %s" % name)

    def g_select(self, node, scope):
        code, unused, raises = self.gen(node[1], scope)
        return "%s[%r]" % (code, node[2]), "any", raises

    def g_has(self, node, scope):
        code, kind, raises = self.gen(node[1], scope)
        if kind == "map":
            return "(%r in %s)" % (node[2], code), "bool", raises
        return "_has(%s, %r)" % (code, node[2]), "bool", raises

    def g_index(self, node, scope):
        c, kc, r1 = self.gen(node[1], scope)
        i, ki, r2 = self.gen(node[2], scope)
        if (kc == "map" and ki == "str") or (kc == "list" and ki == "int"):
            return "%s[%s]" % (c, i), "any", r1 or r2
        return "_idx(%s, %s)" % (c, i), "any", r1 or r2

    def g_not(self, node, scope):
        code, raises = self.as_bool(node[1], scope)
        return "(not %s)" % code, "bool", raises

    def _logic(self, node, scope, word):
        a, ra = self.as_bool(node[1], scope)
        b, rb = self.as_bool(node[2], scope)
        if rb:  # the right operand is still probed when the left one decides (cel-python evaluates both)
            probe = self.probe(node[2], scope)
            if probe is None:
                return "(%s %s %s)" % (a, word, b), "bool", True
            if word == "or":
                return "(_true(%s) if %s else %s)" % (probe, a, b), "bool", True
            return "(%s if %s else _false(%s))" % (b, a, probe), "bool", True
        return "(%s %s %s)" % (a, word, b), "bool", ra

    def g_and(self, node, scope):
        return self._logic(node, scope, "and")

    def g_or(self, node, scope):
        return self._logic(node, scope, "or")

    def g_cond(self, node, scope):
        c, rc = self.as_bool(node[1], scope)
        a, ka, ra = self.gen(node[2], scope)
        b, kb, rb = self.gen(node[3], scope)
        return "(%s if %s else %s)" % (a, c, b), (ka if ka == kb else "any"), rc or ra or rb

    def g_op(self, node, scope):
        op = node[1]
        if op == "in" and node[3][0] == "list" and node[3][1] and all(e[0] == "str" for e in node[3][1]):
            item, kind, raises = self.gen(node[2], scope)
            const = self.const(frozenset(e[1] for e in node[3][1]))
            if kind == "str":
                return "(%s in %s)" % (item, const), "bool", raises
            return "_in_const(%s, %s)" % (item, const), "bool", raises
        a, ka, ra = self.gen(node[2], scope)
        b, kb, rb = self.gen(node[3], scope)
        raises = ra or rb
        if op == "in":
            if ka == "str" and kb == "map":
                return "(%s in %s)" % (a, b), "bool", raises
            return "_in(%s, %s)" % (a, b), "bool", raises
        if ka == kb and ka in ("int", "str", "bool"):  # statically the same scalar type: plain Python
            return "(%s %s %s)" % (a, op, b), "bool", raises
        if op in ("==", "!=") and "any" in (ka, kb) and {ka, kb} & {"str", "int"}:
            known = ka if ka != "any" else kb
            x, y = (a, b) if ka == "any" else (b, a)  # == and != are symmetric here
            return "_%s_%s(%s, %s)" % ("eq" if op == "==" else "ne", known, x, y), "bool", raises
        name = {"==": "_eq", "!=": "_ne", "<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}[op]
        return "%s(%s, %s)" % (name, a, b), "bool", raises

    def g_call(self, node, scope):
        unused, name, target, args = node
        if target is None:
            if name == "size" and len(args) == 1:
                return self._size(args[0], scope)
            if name == "int" and len(args) == 1:
                code, kind, raises = self.gen(args[0], scope)
                if kind == "int":
                    return code, "int", raises
                return "_int(%s)" % code, "int", True
            raise Unsupported("function %s/%d" % (name, len(args)))
        if name == "size" and not args:
            return self._size(target, scope)
        t, kt, rt = self.gen(target, scope)
        if name in ("startsWith", "endsWith") and len(args) == 1:
            a, ka, ra = self.gen(args[0], scope)
            if kt == "str" and ka == "str":
                return "%s.%s(%s)" % (t, name.lower(), a), "bool", rt or ra
            return "%s(%s, %s)" % ("_starts" if name == "startsWith" else "_ends", t, a), "bool", rt or ra
        if name in ("find", "matches") and len(args) == 1 and args[0][0] == "str":
            pattern = args[0][1]
            if name == "find":
                fn = _FINDS.get(pattern)
                if fn is None:
                    try:
                        fn = _FINDS[pattern] = _make_find(golang.compile_regex(pattern), _prefix_before(pattern))
                    except golang.GoRegexError as exc:
                        raise Unsupported("find pattern: %s" % exc)
                return "%s(%s)" % (self.const(fn), t), "str", rt
            try:
                rx = golang.compile_regex(pattern)
            except golang.GoRegexError as exc:  # let cel-python report it
                raise Unsupported("matches pattern: %s" % exc)
            return "%s(%s)" % (self.const(_make_matches(rx)), t), "bool", rt
        if name == "split" and len(args) == 1 and args[0][0] == "str":
            if kt == "str" and args[0][1]:
                return "%s.split(%r)" % (t, args[0][1]), "list", rt
            return "_split(%s, %r)" % (t, args[0][1]), "list", rt
        raise Unsupported("method %s/%d" % (name, len(args)))

    def _size(self, arg, scope):
        code, kind, raises = self.gen(arg, scope)
        if kind in ("list", "str", "map"):
            return "len(%s)" % code, "int", raises
        return "_size(%s)" % code, "int", raises

    def g_macro(self, node, scope):
        unused, name, target, var, body = node
        t, kt, unused = self.gen(target, scope)
        return self.macro_code(name, t, kt, var, body, scope)

    def macro_code(self, name, t, kt, var, body, scope):
        inner = dict(scope)
        v = "v_" + var
        inner[var] = (v, "str" if kt == "map" else "any")  # a map's elements are its (string) keys
        it = t if kt in ("list", "map") else "_iter(%s)" % t
        if name == "map":
            b = self.gen(body, inner)[0]
            return "[%s for %s in %s]" % (b, v, it), "list", True
        b, rb = self.as_bool(body, inner)
        if name == "filter":
            return "[%s for %s in %s if %s]" % (v, v, it, b), "list", True
        if name == "exists_one":
            return "(sum(1 for %s in %s if %s) == 1)" % (v, it, b), "bool", True
        fn = "all" if name == "all" else "any"
        if rb:  # every element is evaluated, as cel-python does
            return "%s([%s for %s in %s])" % (fn, b, v, it), "bool", True
        return "%s(%s for %s in %s)" % (fn, b, v, it), "bool", True


def _children(node):
    tag = node[0]
    if tag in ("int", "str", "bool", "ident"):
        return ()
    if tag == "list":
        return tuple(node[1])
    if tag in ("select", "has", "not"):
        return (node[1],)
    if tag == "index":
        return (node[1], node[2])
    if tag in ("and", "or"):
        return (node[1], node[2])
    if tag == "cond":
        return (node[1], node[2], node[3])
    if tag == "op":
        return (node[2], node[3])
    if tag == "call":
        return ((node[2],) if node[2] is not None else ()) + tuple(node[3])
    if tag == "macro":
        return (node[2], node[4])
    raise Unsupported(tag)


_COMPILED = {}


def source(text: str, self_kind: str = "any") -> tuple[str, dict[str, object]]:
    """``(python_source, constants)`` for a rule; raises Unsupported."""
    gen = _Gen(self_kind)
    tree = parse(text)
    code, unused = gen.as_bool(tree, {})
    return "def rule(s):\n    return %s\n" % code, gen.consts


def _build(src, consts, name):
    namespace = dict(_HELPERS)
    namespace.update(consts)
    exec(compile(src, name, "exec"), namespace)  # noqa: S102 - generated from the parsed rule above
    return namespace["rule"]


def compile_rule(text: str) -> Callable[[object], bool | None] | None:
    """The compiled rule (``fn(value) -> True | False | None``), or None when it is not in the subset."""
    try:
        return _COMPILED[text]
    except KeyError:
        pass
    try:
        src, consts = source(text)
        fn = _wrap(_build(src, consts, "<cel %s>" % text[:60]))
    except Unsupported:
        fn = None
    _COMPILED[text] = fn
    return fn


def _wrap(rule):
    def run(value):
        try:
            r = rule(value)
        except Exception:  # noqa: BLE001 - Undecided, KeyError, IndexError, ValueError ...: cel-python decides
            return None
        if r is True or r is False:
            return r
        return None

    run.rule = rule
    return run


def node_source(texts: Sequence[str], self_kind: str = "any") -> tuple[str | None, dict[str, object], list[int]]:
    """``(python_source, constants, covered)``: one function for the rules of a schema node that are in
    the subset (``covered``: their indexes into ``texts``). It returns None when every one of them is
    true, else a tuple with each one's result: True, False or None (undecided), in ``covered`` order.
    ``self_kind`` (``SELF_KINDS``) is what ``self`` always is when the function is called."""
    gen = _Gen(self_kind)
    lines = ["def rule(s):"]
    covered = []
    for i, text in enumerate(texts):
        try:
            code, unused = gen.as_bool(parse(text), {})
        except Unsupported:
            continue
        name = "r%d" % len(covered)
        covered.append(i)
        lines += ["    try:", "        %s = %s" % (name, code), "    except Exception:", "        %s = None" % name]
    if not covered:
        return None, gen.consts, covered
    names = ["r%d" % n for n in range(len(covered))]
    lines.append("    if %s:" % " and ".join("%s is True" % r for r in names))
    lines.append("        return None")
    lines.append("    return (%s,)" % ", ".join(names))
    return "\n".join(lines) + "\n", gen.consts, covered


def compile_node(
    texts: Iterable[str], self_kind: str = "any"
) -> tuple[Callable[[object], tuple[bool | None, ...] | None] | None, tuple[int, ...]]:
    """``(fn, covered)`` for the rules of one schema node: ``fn(value)`` is None when every rule of
    ``covered`` (indexes into ``texts``) evaluates to true for ``value``, else the tuple of their results
    (True/False exactly as cel-python; None: undecided, ask cel-python). ``fn`` is None when no rule is in
    the subset."""
    texts = tuple(texts)
    key = ("node", self_kind) + texts
    hit = _COMPILED.get(key)
    if hit is None:
        src, consts, covered = node_source(texts, self_kind)
        fn = _build(src, consts, "<cel node %s>" % texts[0][:50]) if src is not None else None
        hit = (fn, tuple(covered))
        _COMPILED[key] = hit
    return hit


def clear_cache() -> None:
    _COMPILED.clear()
    _FINDS.clear()


def cache_size() -> int:
    return len(_COMPILED)
