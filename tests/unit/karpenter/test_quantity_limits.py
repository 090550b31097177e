"""Quantity parsing refuses absurd exponents quickly instead of building gigantic integers."""

import time

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.quantity import parse_quantity


def test_huge_exponent_is_rejected_fast():
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="exponent out of range"):
        parse_quantity("1e1000000000")
    assert time.monotonic() - t0 < 1.0
    assert parse_quantity("1e3") == parse_quantity("1k")
