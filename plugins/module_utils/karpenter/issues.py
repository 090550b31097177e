# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue objects shared by the validators, the linter and the converter, and field-path helpers.

An :class:`Issue` names the object (``NodePool/general``), the field path
(``spec.template.spec.requirements[0].operator``), the rule that produced it (a schema keyword such
as ``enum``, a CEL expression, a runtime check id or a lint id such as ``KPL001``), a message, a
severity (``error``, ``warning`` or ``info``) and its source (``schema``, ``cel``, ``runtime``,
``lint``, ``convert``).

The texts of an Issue (object, path, message, hint) are bounded here, in one place, whatever rule built
them: a value longer than ``VALUE_LIMIT`` characters (a 1 MiB name, a huge label or annotation) is cut
to its first ``VALUE_LIMIT`` characters followed by ``... (<original length> characters)``, and a text
still longer than ``MESSAGE_LIMIT`` is cut the same way, so one bad value cannot become megabytes of
error output. Every valid Kubernetes name (a DNS subdomain: 253 characters) stays whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar, overload

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)

VALUE_LIMIT = 256
MESSAGE_LIMIT = 4096
_T = TypeVar("_T")
# a "value" inside a message: a run of characters without blanks, quotes, brackets or the separators of
# object refs (Kind/name), label keys (prefix/name), paths and key=value pairs
_LONG_VALUE = re.compile(r"[^\s\"'`\[\](){},:=/]{%d,}" % (VALUE_LIMIT + 1))


def shorten(value: object, limit: int = VALUE_LIMIT) -> str:
    """``value`` (a str, else its ``str()``) cut to ``limit`` characters, with an ellipsis and its length:
    ``"aaaa... (1048576 characters)"``. Use it for values put into a message outside an Issue."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return "%s... (%d characters)" % (text[:limit], len(text))


@overload
def bound(text: str) -> str: ...


@overload
def bound(text: _T) -> _T: ...


def bound(text: object) -> object:
    """A user-facing text with each value longer than ``VALUE_LIMIT`` shortened, then the whole at most
    ``MESSAGE_LIMIT`` characters, the length note included. Anything that is not a str is returned as it is."""
    if not isinstance(text, str) or len(text) <= VALUE_LIMIT:
        return text
    text = _LONG_VALUE.sub(lambda m: shorten(m.group(0)), text)
    if len(text) <= MESSAGE_LIMIT:
        return text
    return shorten(text, MESSAGE_LIMIT - len("... (%d characters)" % len(text)))


class Issue:
    """One finding about one object."""

    __slots__ = ("object_ref", "path", "rule", "message", "severity", "source", "hint")

    def __init__(
        self,
        object_ref: str | None,
        path: str | None,
        rule: str,
        message: str,
        severity: str = ERROR,
        source: str = "schema",
        hint: str | None = None,
    ) -> None:
        if severity not in SEVERITIES:
            raise ValueError("unknown severity %r" % (severity,))
        self.object_ref = bound(object_ref or "")
        self.path = bound(path or "")
        self.rule = rule
        self.message = bound(message)
        self.severity = severity
        self.source = source
        self.hint = bound(hint)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def rule_label(self) -> str:
        """Short rule name used in ``str()``: the CEL expression itself is too long to repeat."""
        if self.source == "cel":
            return "x-kubernetes-validations"
        return self.rule

    def __str__(self):
        parts = [p for p in (self.object_ref, self.path) if p]
        text = ": ".join(parts + [self.message])
        label = self.rule_label()
        if label:
            text += " (%s)" % label
        if self.hint:
            text += "; hint: %s" % self.hint
        return text

    def __repr__(self):
        return "Issue(%r, %r, %r, %r, severity=%r, source=%r)" % (
            self.object_ref,
            self.path,
            self.rule,
            self.message,
            self.severity,
            self.source,
        )

    def __eq__(self, other):
        if not isinstance(other, Issue):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __hash__(self):
        return hash((self.object_ref, self.path, self.rule, self.message, self.severity))

    def to_dict(self) -> dict[str, str]:
        out = {
            "object": self.object_ref,
            "path": self.path,
            "rule": self.rule,
            "message": self.message,
            "severity": self.severity,
            "source": self.source,
            "text": str(self),
        }
        if self.hint:
            out["hint"] = self.hint
        return out


def object_ref(obj: object, index: int | str | None = None) -> str:
    """``Kind/name`` for an object (``Kind/#3`` when unnamed and an index is known)."""
    if not isinstance(obj, dict):
        return "#%s" % index if index is not None else "<not an object>"
    kind = shorten(obj["kind"]) if isinstance(obj.get("kind"), str) and obj.get("kind") else "<no kind>"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    # a name that is not a string (a list, a map) is reported by the validators, never used as a name
    name = next((n for n in (meta.get("name"), meta.get("generateName")) if isinstance(n, str) and n), None)
    if not name:
        name = "#%s" % index if index is not None else "<unnamed>"
    return "%s/%s" % (kind, shorten(name))


def join_path(path: str, segment: str | int | tuple[str, str]) -> str:
    """Append a property name (str), a list index (int) or a map key (tuple ``("key", k)``)."""
    if isinstance(segment, int) and not isinstance(segment, bool):
        return "%s[%d]" % (path, segment)
    if isinstance(segment, tuple):
        return "%s[%s]" % (path, segment[1])
    if not path:
        return segment
    return "%s.%s" % (path, segment)


def key(k: str) -> tuple[str, str]:
    """Path segment for a map key (rendered as ``[k]`` like the apiserver does)."""
    return ("key", k)


def errors(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == ERROR]


def warnings(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == WARNING]
