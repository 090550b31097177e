# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks of module parameters for the domain cores (plain Python, no Ansible import).

Each check returns None when the value is fine, else the problem as one sentence that names the
parameter, the value (long values shortened, see karpenter.issues.shorten) and the rule; the caller
raises its own error type (apply.karpenter.InputError, backup.core.BackupError) before anything is read
or written. The Ansible argument spec only checks types and choices; these run for every caller.
"""

from __future__ import annotations

import re

from .karpenter.issues import shorten

DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL_MAX = 63


def show(value):
    """A parameter value as a message shows it: its repr, a long one shortened."""
    return repr(shorten(value)) if isinstance(value, str) else shorten(repr(value))


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def positive_seconds(name, value):
    """A timeout: a whole number of seconds, at least 1."""
    if is_int(value) and value > 0:
        return None
    return "%s must be a positive number of seconds, got %s" % (name, show(value))


def at_least(name, value, minimum, meaning):
    """An optional integer (None = not set) of at least ``minimum``; ``meaning`` says what it counts."""
    if value is None or (is_int(value) and value >= minimum):
        return None
    return "%s must be at least %d, got %s: %s" % (name, minimum, show(value), meaning)


def one_of(name, value, allowed):
    if value in allowed:
        return None
    return "%s must be one of %s, got %s" % (name, ", ".join(allowed), show(value))


def dns1123_label(name, value, what="a valid namespace name"):
    """A Kubernetes namespace (or other DNS-1123 label) name."""
    if isinstance(value, str) and len(value) <= DNS1123_LABEL_MAX and DNS1123_LABEL_RE.match(value):
        return None
    return (
        "%s %s is not %s (a DNS-1123 label: at most %d lowercase letters, digits and '-', starting and "
        "ending with a letter or digit)" % (name, show(value), what, DNS1123_LABEL_MAX)
    )
