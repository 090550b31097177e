# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The validator's process-wide caches in one place (above cel, celcompile, fastpath and golang, so none of
them imports another to clear it)."""

from __future__ import annotations

from . import cel, celcompile, fastpath, golang


def cache_info() -> dict:
    """Sizes of the module-level caches (compiled programs, memoised results, rules compiled to Python)."""
    return dict(cel.cache_sizes(), compiled=celcompile.cache_size())


def clear_caches(programs: bool = False) -> None:
    """Forget memoised results; with ``programs=True`` also everything compiled (celpy programs, rules
    compiled to Python, the validation plans of the schemas and the regular expressions): what a fresh
    process starts with."""
    cel.clear_cache(programs)
    if programs:
        golang.clear_cache()
        celcompile.clear_cache()
        fastpath.clear_cache()
