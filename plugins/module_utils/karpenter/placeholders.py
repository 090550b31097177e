# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reasoning about values with ``${NAME}`` placeholders, as design documents and templates carry them before
substitution (``${AWS_REGION}a``, ``${CLUSTER_NAME}``).

A placeholder stands for any string, the same one wherever the same name appears. The lint rules compare such
values with ``may_equal``: True when some substitution makes them equal (literal vs template: the template as a
pattern; two templates: unless their literal heads or tails differ), so a rule only claims what holds for every
substitution.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PLACEHOLDER = re.compile(r"\$\{[^{}]*\}")


def has_placeholder(value: object) -> bool:
    """A string with at least one ``${...}``."""
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def _pattern(template: str) -> re.Pattern:
    """The literal parts of a template, each placeholder standing for any string."""
    return re.compile(".*".join(re.escape(part) for part in PLACEHOLDER.split(template)), re.S)


def _head_tail(template: str) -> tuple[str, str]:
    parts = PLACEHOLDER.split(template)
    return parts[0], parts[-1]


def may_equal(a: str, b: str) -> bool:
    """Whether some substitution of the placeholders makes ``a`` and ``b`` equal."""
    if a == b:
        return True
    ta, tb = has_placeholder(a), has_placeholder(b)
    if not ta and not tb:
        return False
    if ta != tb:
        template, literal = (a, b) if ta else (b, a)
        return _pattern(template).fullmatch(literal) is not None
    (ha, ea), (hb, eb) = _head_tail(a), _head_tail(b)
    heads_agree = ha.startswith(hb) or hb.startswith(ha)
    tails_agree = ea.endswith(eb) or eb.endswith(ea)
    return heads_agree and tails_agree


def may_intersect(value_sets: Iterable[Iterable[str]]) -> bool:
    """False only when the sets certainly share no value whatever the placeholders become (some two sets have no
    pair of values that ``may_equal``)."""
    sets = [list(s) for s in value_sets]
    for i, left in enumerate(sets):
        for right in sets[i + 1 :]:
            if not any(may_equal(a, b) for a in left for b in right):
                return False
    return True


def binding(template: str, literal: str) -> dict[str, str] | None:
    """``{"${NAME}": value}`` that turns a template with one placeholder name (possibly repeated) into ``literal``,
    or None when there is none or the template has several names."""
    names = PLACEHOLDER.findall(template)
    if len(set(names)) != 1:
        return None
    parts = PLACEHOLDER.split(template)
    rx = re.escape(parts[0])
    for i, part in enumerate(parts[1:]):
        rx += ("(?P<v>.*)" if i == 0 else "(?P=v)") + re.escape(part)
    m = re.fullmatch(rx, literal, re.S)
    return {names[0]: m.group("v")} if m else None
