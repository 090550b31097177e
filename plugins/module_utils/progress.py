# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Progress of long module work (writes, waits, backups), for the person watching the job (no Ansible import).

A module cannot talk to the controller while it runs: its result is one JSON document at the end. The
collection's action plugins (``plugins/plugin_utils/progress_action.py``) therefore name a file in the
environment variable ``KARPENTER_EKS_PROGRESS_FILE`` when the module runs on the controller; the module
appends one JSON line per status change to it (at most one per ``min_interval`` seconds, except when the phase
changes) and the action plugin prints the newest one periodically while the module is still running. Without
the variable (a module run by other means, or on a remote host) every call here is a no-op.

The status is what the code sees, never an object's content: phase, counts and a few object names.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable

ENV_VAR = "KARPENTER_EKS_PROGRESS_FILE"
MAX_NAMES = 5  # names listed in one status line ("waiting for: a, b, c, d, e and 12 more")


class Progress:
    """Appends status lines to ``path`` (None: does nothing)."""

    def __init__(
        self, path: str | None, min_interval: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.min_interval = min_interval
        self._clock = clock
        self._last_phase: str | None = None
        self._last_time: float | None = None
        self._broken = False

    @property
    def enabled(self) -> bool:
        return bool(self.path) and not self._broken

    def update(
        self,
        phase: str,
        done: int | None = None,
        total: int | None = None,
        pending: Iterable[str] = (),
        force: bool = False,
    ) -> bool:
        """Record the status; returns True when a line was written.

        ``phase`` is a short sentence ("waiting for NodePools to be Ready"); ``done``/``total`` count objects;
        ``pending`` names some of what is still outstanding. A line is written when the phase changed, when
        ``force`` is set (the last status of a phase) or ``min_interval`` has passed since the last line.
        """
        if not self.enabled:
            return False
        now = self._clock()
        if (
            not force
            and phase == self._last_phase
            and self._last_time is not None
            and now - self._last_time < self.min_interval
        ):
            return False
        line: dict = {"phase": phase}
        if done is not None:
            line["done"] = done
        if total is not None:
            line["total"] = total
        names = sorted(pending)
        if names:
            line["pending"] = names[:MAX_NAMES]
            line["more"] = max(0, len(names) - MAX_NAMES)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        except OSError:
            self._broken = True  # progress is a courtesy: never fail the work because of it
            return False
        self._last_phase, self._last_time = phase, now
        return True


def format_status(line: dict) -> str:
    """One human line from a status dict: ``waiting for NodePools to be Ready: 312/500, waiting for: a, b``."""
    text = str(line.get("phase") or "working")
    done, total = line.get("done"), line.get("total")
    if done is not None and total is not None:
        text += ": %s/%s" % (done, total)
    elif done is not None:
        text += ": %s" % done
    names = line.get("pending") or []
    if names:
        more = line.get("more") or 0
        text += " (waiting for: %s%s)" % (", ".join(str(n) for n in names), " and %d more" % more if more else "")
    return text


_current: Progress | None = None


def current() -> Progress:
    """The process's reporter, configured from ``KARPENTER_EKS_PROGRESS_FILE`` on first use."""
    global _current  # pylint: disable=global-statement
    if _current is None:
        _current = Progress(os.environ.get(ENV_VAR) or None)
    return _current


def configure(reporter: Progress | None) -> None:
    """Replace the process's reporter (tests; None: read the environment again on next use)."""
    global _current  # pylint: disable=global-statement
    _current = reporter


def update(
    phase: str,
    done: int | None = None,
    total: int | None = None,
    pending: Iterable[str] = (),
    force: bool = False,
) -> bool:
    """``current().update(...)``: the call the domain code makes."""
    return current().update(phase, done, total, pending, force)
