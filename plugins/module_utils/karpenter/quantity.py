# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small Kubernetes resource-quantity parser (``resource.Quantity`` semantics, exact arithmetic).

``parse_quantity("1Gi") == parse_quantity("1024Mi")``; ``parse_quantity(1000) == parse_quantity("1k")``.
Values are returned as :class:`fractions.Fraction` so ``100m`` CPU compares exactly.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_QUANTITY = re.compile(r"^(%s)(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?[0-9]+))?\Z" % _NUMBER)

GI = Fraction(2**30)


def parse_quantity(value: object) -> Fraction:
    """Parse a quantity (str, int or float) into a Fraction; raise ValueError when it is not one."""
    if isinstance(value, bool):
        raise ValueError("not a quantity: %r" % (value,))
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(repr(value))
    if not isinstance(value, str):
        raise ValueError("not a quantity: %r" % (value,))
    text = value.strip()
    m = _QUANTITY.match(text)
    if not m:
        raise ValueError(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': %r" % value
        )
    number, suffix, exponent = m.group(1), m.group(2), m.group(3)
    base = Fraction(number)
    if exponent is not None:
        # Kubernetes caps quantities far below this (int64 scaled values); refusing huge exponents keeps
        # a hostile "1e1000000000" from building a gigantic integer
        if abs(int(exponent)) > 100:
            raise ValueError("quantity exponent out of range: %r" % value)
        return base * Fraction(10) ** int(exponent)
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    return base * _DECIMAL[suffix or ""]


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)
    except ValueError:
        return False
    return True


def quantities_equal(a: object, b: object) -> bool:
    """True when both parse to the same amount; falls back to ``==`` when either is not a quantity."""
    try:
        return parse_quantity(a) == parse_quantity(b)
    except ValueError:
        return a == b


def format_quantity(value: Fraction | int) -> str:
    """Render a Fraction compactly (``Gi``/``Mi``/``Ki`` when exact, else a decimal or ``m`` suffix)."""
    value = Fraction(value)
    if value.denominator == 1:
        n = value.numerator
        for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            unit = _BINARY[suffix]
            if n and n % unit == 0:
                return "%d%s" % (n // unit, suffix)
        return str(n)
    milli = value * 1000
    if milli.denominator == 1:
        return "%dm" % milli.numerator
    return str(float(value))
