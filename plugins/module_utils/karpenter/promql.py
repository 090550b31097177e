# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The metric names a PromQL expression selects, from a small tokenizer (not a full parser).

``metric_names(expr)`` returns the names of the series an expression reads, in order of appearance: an
identifier followed by ``{`` or ``[``, or standing alone as a selector, and the name given inside the braces
(``{__name__="x"}``, PromQL 3's ``{"x"}``). It ignores function and aggregation names (an identifier before
``(``; ``sum by (le) (...)``), keywords (``and``, ``offset``, ``bool``, ...), label names and values inside
``{...}``, the label lists of ``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``,
ranges and subqueries (``[5m:1m]``), numbers and durations, string literals, comments and Grafana variables
(``$var``, ``${var:csv}``, ``[[var]]``, ``$__rate_interval``).

``grafana_query_names(query)`` does the same for a Grafana templating query, which may wrap PromQL in
``label_values(selector, label)``, ``query_result(expr)``, ``label_names(selector)`` or ``metrics(regex)``.

An expression PromQL would reject is not reported here: the names found up to the damage are returned.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)
  | (?P<var>\$\{[^}]*\}?|\$[A-Za-z_]\w*|\[\[[^\]]*\]\])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:[a-zA-Z][a-zA-Z0-9]*)*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=!@(){}\[\],:;|&.~?])
  | (?P<other>.)
    """,
    re.X | re.S,
)

# words that are never metric names where they stand (binary operators, modifiers, number words)
KEYWORDS = frozenset(
    (
        "and",
        "or",
        "unless",
        "atan2",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "start",
        "end",
        "step",
        "inf",
        "nan",
        "smoothed",
        "anchored",
    )
)
# followed by a parenthesised list of label names
LABEL_LIST_KEYWORDS = frozenset(("by", "without", "on", "ignoring", "group_left", "group_right"))
# aggregation operators: the label list may stand between the name and its argument (sum by (le) (...))
AGGREGATIONS = frozenset(
    (
        "sum",
        "avg",
        "count",
        "min",
        "max",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "limitk",
        "limit_ratio",
    )
)


def tokens(expr: str) -> list[tuple[str, str]]:
    """``[(kind, text)]`` of an expression, without blanks and comments; kinds: string, var, number, ident, op,
    other."""
    out = []
    for m in _TOKEN.finditer(expr or ""):
        kind = m.lastgroup
        if kind not in ("ws", "comment"):
            out.append((kind, m.group(0)))
    return out


def _unquote(text: str) -> str:
    body = text[1:-1] if len(text) >= 2 and text[-1] == text[0] else text[1:]
    if text[0] == "`":
        return body
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _skip_group(toks: list[tuple[str, str]], i: int, open_: str, close: str) -> int:
    """Index after the group opened at ``toks[i]`` (or its end when it is not closed)."""
    depth = 0
    while i < len(toks):
        text = toks[i][1]
        if toks[i][0] == "op":
            if text == open_:
                depth += 1
            elif text == close:
                depth -= 1
                if depth == 0:
                    return i + 1
        i += 1
    return i


def _names_in_braces(toks: list[tuple[str, str]], start: int, end: int) -> list[str]:
    """Metric names given inside a matcher list ``toks[start:end]`` (braces excluded)."""
    out = []
    item: list[tuple[str, str]] = []
    for tok in toks[start:end] + [("op", ",")]:
        if tok == ("op", ","):
            if len(item) == 1 and item[0][0] == "string":
                out.append(_unquote(item[0][1]))  # PromQL 3: {"metric.name", label="x"}
            elif len(item) == 3 and item[0][1] in ("__name__", '"__name__"') and item[1][1] == "=":
                if item[2][0] == "string":
                    out.append(_unquote(item[2][1]))
            item = []
        else:
            item.append(tok)
    return out


def metric_names(expr: str) -> list[str]:
    """Names of the metrics a PromQL expression selects (each once, in order of appearance)."""
    toks = tokens(expr)
    found: list[str] = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "op" and text == "{":
            end = _skip_group(toks, i, "{", "}")
            found.extend(_names_in_braces(toks, i + 1, end - 1))
            i = end
            continue
        if kind == "op" and text == "[":
            i = _skip_group(toks, i, "[", "]")  # range or subquery: durations, steps, variables
            continue
        if kind != "ident":
            i += 1
            continue
        word = text.lower()
        if word in LABEL_LIST_KEYWORDS:
            i += 1
            if i < len(toks) and toks[i] == ("op", "("):
                i = _skip_group(toks, i, "(", ")")
            continue
        if nxt == ("op", "(") or word in KEYWORDS:
            i += 1  # a function, an aggregation or a keyword
            continue
        if text in AGGREGATIONS and nxt[0] == "ident" and nxt[1].lower() in ("by", "without"):
            i += 1  # sum by (le) (...)
            continue
        found.append(text)
        i += 1
    seen: set[str] = set()
    return [n for n in found if not (n in seen or seen.add(n))]


_GRAFANA_FUNC = re.compile(r"^\s*(label_values|query_result|label_names|metrics)\s*\((.*)\)\s*$", re.S)


def _split_args(body: str) -> list[str]:
    """Top-level comma-separated arguments of a call body (strings and brackets respected)."""
    args, depth, cur = [], 0, []
    for kind, text in tokens(body):
        if kind == "op" and text in "([{":
            depth += 1
        elif kind == "op" and text in ")]}":
            depth -= 1
        if kind == "op" and text == "," and depth == 0:
            args.append(" ".join(cur))
            cur = []
        else:
            cur.append(text)
    args.append(" ".join(cur))
    return [a for a in (s.strip() for s in args) if a]


def grafana_query_names(query: str) -> list[str]:
    """Metric names of a Grafana Prometheus templating query: ``label_values(selector, label)`` (the selector;
    ``label_values(label)`` selects none), ``query_result(expr)``, ``label_names(selector)``, ``metrics(regex)``
    (none: a regex), or plain PromQL."""
    m = _GRAFANA_FUNC.match(query or "")
    if not m:
        return metric_names(query)
    func, args = m.group(1), _split_args(m.group(2))
    if func == "metrics":
        return []
    if func == "label_values":
        return metric_names(args[0]) if len(args) >= 2 else []
    return metric_names(args[0]) if args else []
