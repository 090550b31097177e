"""Go semantics the apiserver and Karpenter apply to strings, in one place.

The apiserver and Karpenter are Go programs: a CRD ``pattern``, a CEL ``matches()``/``find()``, an
``int()`` of a string, a ``date-time`` format or a duration are decided by Go's ``regexp`` (RE2),
``strconv``, kube-openapi's ``strfmt`` and ``time`` packages. Python's ``re``, ``int()`` and ``datetime``
accept more (Unicode ``\\d``/``\\s``/``\\w``, ``"16_384"``, ``" 4"``, a date-time with a space), so every check
of this collection that mirrors one of those goes through the functions here:

* :func:`compile_regex` - a Go (RE2) regular expression as a Python pattern with the same matches:
  ``re.ASCII`` (RE2's Perl classes are ASCII-only), ``\\s`` as RE2's ``[\\t\\n\\f\\r ]`` (no ``\\v``),
  ``$`` as end of text (Go's ``$`` never matches before a final newline), POSIX classes (``[[:alpha:]]``)
  and ``\\Q..\\E`` translated; lookarounds and back-references, which RE2 refuses, raise
  :class:`GoRegexError`. A pattern using what the translation does not cover (``\\pL``, a flag group in
  the middle, ...) is compiled by RE2 itself (the ``re2`` module, which cel-python needs) when present;
* :func:`parse_int` - ``strconv.ParseInt(s, 10, 64)`` (CEL ``int()`` of a string, ``strconv.Atoi``);
* :func:`is_openapi_date_time` - kube-openapi ``strfmt.IsDateTime`` (the CRD ``format: date-time`` check);
* :func:`parse_rfc3339` - ``time.Parse(time.RFC3339, s)`` (how Karpenter decodes a ``metav1.Time``);
* :data:`MAX_DURATION_NS` - the largest ``time.Duration`` (about 292 years).
"""

from __future__ import annotations

import re
from typing import TypeAlias

try:  # RE2 itself, for the few patterns the translation below does not cover (comes with cel-python)
    import re2
except ImportError:  # pragma: no cover - optional
    re2 = None

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DURATION_NS = INT64_MAX  # time.Duration is an int64 of nanoseconds: 2562047h47m16.854775807s


class GoRegexError(ValueError):
    """The pattern is not a valid Go (RE2) regular expression."""


class _Untranslatable(Exception):
    pass


_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_RE2_SPACE = "\\t\\n\\f\\r "
_CLASS_ESCAPE_SAFE = frozenset("dDwW")
_SIMPLE_ESCAPES = frozenset("abfnrtv.\\+*?()|[]{}^$-/ ")
_CACHE: dict = {}


_REPEAT = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")


def _translate(pattern: str) -> str:
    out = []
    i, n = 0, len(pattern)
    repeat = None  # None, "op" (after a repetition operator) or "lazy" (after its ? as well)
    while i < n:
        ch = pattern[i]
        counted = _REPEAT.match(pattern, i) if ch == "{" else None
        if ch in "*+?" or counted:
            if repeat == "lazy" or (repeat == "op" and ch != "?"):
                raise GoRegexError("invalid nested repetition operator: %r" % pattern[max(0, i - 2) : i + 1])
            if repeat == "op":  # the lazy marker of the previous repetition
                repeat = "lazy"
                out.append(ch)
                i += 1
                continue
            repeat = "op"
            text = counted.group(0) if counted else ch
            out.append(text)
            i += len(text)
            continue
        repeat = None
        if ch == "\\":
            i, text = _escape(pattern, i, in_class=False)
            out.append(text)
            continue
        if ch == "[":
            i, text = _char_class(pattern, i)
            out.append(text)
            continue
        if ch == "$":
            out.append("\\Z")
        elif ch == "{" and pattern.startswith("{,", i):  # a literal in RE2, {0,n} in Python 3.12
            out.append("\\{")
        elif ch == "(" and pattern.startswith("(?", i):
            i, text = _group_open(pattern, i, not out)
            out.append(text)
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _group_open(pattern, i, at_start):
    rest = pattern[i + 2 :]
    if rest[:1] in ("=", "!") or rest[:2] in ("<=", "<!") or rest[:1] == ">":
        raise GoRegexError("invalid or unsupported Perl syntax: %r (RE2 has no lookaround)" % pattern[i : i + 4])
    if rest.startswith("P<"):
        return i + 4, "(?P<"
    if rest.startswith("<"):
        return i + 3, "(?P<"
    m = re.match(r"([imsU]*)(?:-([imsU]*))?([:)])", rest)
    if not m:
        raise GoRegexError("invalid or unsupported Perl syntax: %r" % pattern[i : i + 4])
    on, off, end = m.group(1), m.group(2) or "", m.group(3)
    if "U" in on + off or "i" in on:  # RE2 folds case over Unicode (K matches the Kelvin sign)
        raise _Untranslatable()
    if end == ")":
        if not at_start or off:
            raise _Untranslatable()  # Python takes global flags only at the start
        return i + 2 + m.end(), "(?%s)" % on if on else ""
    return i + 2 + m.end(), "(?%s%s:" % (on, "-" + off if off else "")


def _escape(pattern, i, in_class):
    if i + 1 >= len(pattern):
        raise GoRegexError("trailing backslash at end of expression")
    c = pattern[i + 1]
    if c in "123456789":
        raise GoRegexError("invalid escape sequence: \\%s (RE2 has no back-references)" % c)
    if c == "s":
        return i + 2, _RE2_SPACE if in_class else "[%s]" % _RE2_SPACE
    if c == "S":
        if in_class:
            raise _Untranslatable()
        return i + 2, "[^%s]" % _RE2_SPACE
    if c in _CLASS_ESCAPE_SAFE or c in _SIMPLE_ESCAPES or not c.isalnum():
        return i + 2, "\\" + c
    if c in "bB" and not in_class:
        return i + 2, "\\" + c
    if c in "Az" and not in_class:
        return i + 2, "\\A" if c == "A" else "\\Z"
    if c == "x":
        m = re.match(r"x(\{[0-9A-Fa-f]+\}|[0-9A-Fa-f]{2})", pattern[i + 1 :])
        if not m:
            raise GoRegexError("invalid escape sequence: %r" % pattern[i : i + 4])
        digits = m.group(1).strip("{}")
        return i + 1 + m.end(), "\\U%08x" % int(digits, 16)
    if c == "0":
        m = re.match(r"0[0-7]{0,2}", pattern[i + 1 :])
        return i + 1 + m.end(), "\\x%02x" % int(m.group(0), 8)
    if c == "Q":
        end = pattern.find("\\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        nxt = len(pattern) if end < 0 else end + 2
        if in_class:
            raise _Untranslatable()
        return nxt, re.escape(literal)
    if c in "pPC":
        raise _Untranslatable()
    raise GoRegexError("invalid escape sequence: \\%s" % c)


def _char_class(pattern, i):
    out = ["["]
    j = i + 1
    if pattern[j : j + 1] == "^":
        out.append("^")
        j += 1
    first = True
    while j < len(pattern):
        ch = pattern[j]
        if ch == "]" and not first:
            out.append("]")
            return j + 1, "".join(out)
        first = False
        if ch == "[" and pattern.startswith("[:", j):
            end = pattern.find(":]", j + 2)
            name = pattern[j + 2 : end] if end > 0 else ""
            negated = name.startswith("^")
            body = _POSIX.get(name.lstrip("^"))
            if body is None:
                raise GoRegexError("invalid character class range: %r" % pattern[j : end + 2])
            if negated:
                raise _Untranslatable()
            out.append(body)
            j = end + 2
            continue
        if ch == "\\":
            j, text = _escape(pattern, j, in_class=True)
            out.append(text)
            continue
        if ch in "[&~|":  # literal in RE2; Python warns (set operations) unless escaped
            out.append("\\" + ch)
        else:
            out.append(ch)
        j += 1
    raise GoRegexError("missing closing ]: %r" % pattern[i:])


class _Re2Pattern:
    """RE2's compiled pattern with the methods used here (``search``, ``finditer``)."""

    def __init__(self, compiled):
        self._rx = compiled
        self.pattern = compiled.pattern

    def search(self, text):
        return self._rx.search(text)

    def finditer(self, text):
        return self._rx.finditer(text)


# what compile_regex returns: Python's compiled pattern, or RE2's where Python's re cannot take the pattern
GoPattern: TypeAlias = "re.Pattern[str] | _Re2Pattern"


def compile_regex(pattern: str) -> GoPattern:
    """A compiled pattern (``search``/``finditer``/``match``) that matches exactly what Go's ``regexp``
    matches; raises :class:`GoRegexError` when Go would refuse the pattern."""
    rx = _CACHE.get(pattern)
    if rx is not None:
        return rx
    try:
        rx = re.compile(_translate(pattern), re.ASCII)
    except GoRegexError:
        raise
    except Exception as exc:  # noqa: BLE001 - _Untranslatable, re.error, or sre's own AssertionError (^*)
        if re2 is None:
            if isinstance(exc, re.error):
                raise GoRegexError("error parsing regexp: %s: %r" % (exc, pattern))
            raise GoRegexError("pattern %r needs RE2 (install google-re2) to be checked offline" % pattern)
        try:  # RE2 itself decides what Python's re cannot take (or refuses while RE2 accepts)
            rx = _Re2Pattern(re2.compile(pattern))
        except Exception as err:  # noqa: BLE001 - re2.error
            raise GoRegexError(str(err))
    _CACHE[pattern] = rx
    return rx


def clear_cache() -> None:
    _CACHE.clear()


# --------------------------------------------------------------------------------------------
# strconv


def parse_int(text: str) -> int:
    """``strconv.ParseInt(text, 10, 64)``: an optional sign and ASCII digits, nothing else (no spaces,
    underscores, base prefixes or non-ASCII digits), within int64; ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError("not a string: %r" % (text,))
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError('strconv.ParseInt: parsing "%s": invalid syntax' % text)
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError('strconv.ParseInt: parsing "%s": value out of range' % text)
    return value


# --------------------------------------------------------------------------------------------
# dates and times

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_OPENAPI_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))\Z", re.ASCII)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z", re.ASCII)


def _days_in(month, year):
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month - 1]


def is_full_date(text: str) -> bool:
    """``time.Parse("2006-01-02", text)`` succeeds (a real calendar date, year 0000-9999)."""
    m = _DATE.match(text)
    if not m:
        return False
    year, month, day = (int(g) for g in m.groups())
    return 1 <= month <= 12 and 1 <= day <= _days_in(month, year)


def is_openapi_date_time(text: str) -> bool:
    """kube-openapi ``strfmt.IsDateTime``, the apiserver's ``format: date-time`` check.

    It is looser than RFC 3339 in some ways and stricter in others: the text is lower-cased and split at
    every ``t``; the first part must be a real date, the second ``HH:MM:SS`` (hour <= 23, minute and second
    <= 59), an optional fraction introduced by *any* character, then ``z`` or an offset ``+HH:MM`` whose
    digits are not range-checked; anything after a further ``t`` is ignored. A space separator, hour 25,
    month 13 or 30 February are refused."""
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not is_full_date(parts[0]):
        return False
    m = _OPENAPI_TIME.match(parts[1])
    if not m:
        return False
    return m.group(1) <= "23" and m.group(2) <= "59" and m.group(3) <= "59"


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,][0-9]+)?(?:Z|[+-]([0-9]{2}):([0-9]{2}))\Z",
    re.ASCII,
)


def parse_rfc3339(text: str) -> bool:
    """``time.Parse(time.RFC3339, text)`` succeeds (``metav1.Time`` decoding): upper-case ``T`` and ``Z``,
    a real date, hour <= 23, minute and second <= 59, a fraction after ``.`` or ``,``, an offset whose hour
    is at most 24 and minute at most 60 (Go's own limits)."""
    m = _RFC3339.match(text)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= _days_in(month, year)):
        return False
    if hour > 23 or minute > 59 or second > 59:
        return False
    if m.group(7) is not None and (int(m.group(7)) > 24 or int(m.group(8)) > 60):
        return False
    return True
