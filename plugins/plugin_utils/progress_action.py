# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Status lines while a long module runs: the action plugin of the modules that write, wait or back up.

A module's only output is its result at the end, so a task creating 500 NodePools and waiting for them, or an
EKS version update, used to sit silent for minutes. When the module runs on the controller (the ``local``
connection, which is how these modules are run: the APIs are remote, the module is not), this action plugin
names a file in ``KARPENTER_EKS_PROGRESS_FILE``; the module appends its status to it
(``plugins/module_utils/progress.py``), and a thread here prints the newest status every
``karpenter_eks_progress_interval`` seconds (a task variable, else the environment variable of the same name in
upper case; default 15; 0 turns it off) for as long as the module runs:

    [localhost] Apply the NodePools: waiting for NodePools to be Ready: 312/500 (waiting for: a, b ...) - 45 s

A task that ends before the first interval prints nothing, so no-op runs look and cost as before. With
another connection, ``async`` or the interval 0 the module runs exactly as the ``normal`` action runs it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time

from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible_collections.karpenter_eks.platform.plugins.module_utils.progress import ENV_VAR, format_status

INTERVAL_VAR = "karpenter_eks_progress_interval"
DEFAULT_INTERVAL = 15.0
LOCAL_CONNECTIONS = ("local", "ansible.builtin.local", "ansible.legacy.local")

display = Display()


def last_status(path: str) -> dict | None:
    """The newest complete status line of the progress file, or None (nothing yet, or unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            lines = f.read().split(b"\n")
    except OSError:
        return None
    for raw in reversed(lines[:-1]):  # the part after the last newline is incomplete (or empty)
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            return line
    return None


def status_line(host: str, task: str, status: dict | None, elapsed: float) -> str:
    """``[host] task: status - 45 s`` (``still running`` before the module said anything)."""
    text = format_status(status) if status else "still running"
    return "[%s] %s: %s - %d s" % (host, task, text, elapsed)


class Ticker:
    """Prints ``status_line`` every ``interval`` seconds from a daemon thread until ``stop()``."""

    def __init__(self, path: str, host: str, task: str, interval: float, emit=None, clock=time.monotonic) -> None:
        self.path, self.host, self.task, self.interval = path, host, task, interval
        self._emit = emit or (lambda text: display.display(text, color=C.COLOR_VERBOSE))
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="karpenter-eks-progress", daemon=True)
        self.lines = 0

    def start(self) -> Ticker:
        self._start = self._clock()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._emit(status_line(self.host, self.task, last_status(self.path), self._clock() - self._start))
                self.lines += 1
            except Exception:  # pylint: disable=broad-exception-caught
                return  # progress is a courtesy: never break the task because of it

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class ProgressAction(ActionBase):
    """The ``normal`` action plus status lines (see the module docstring)."""

    _supports_check_mode = True
    _supports_async = True
    _progress_path: str | None = None

    def _interval(self, task_vars: dict) -> float:
        value = task_vars.get(INTERVAL_VAR)
        if value is not None:
            value = self._templar.template(value)
        if value is None:
            value = os.environ.get(INTERVAL_VAR.upper())
        try:
            return max(0.0, float(value)) if value not in (None, "") else DEFAULT_INTERVAL
        except (TypeError, ValueError):
            display.warning(
                "%s must be a number of seconds, got %r: using %s" % (INTERVAL_VAR, value, DEFAULT_INTERVAL)
            )
            return DEFAULT_INTERVAL

    def _compute_environment_string(self, raw_environment_out=None) -> str:
        env: dict = {}
        super()._compute_environment_string(env)
        if self._progress_path:
            env[ENV_VAR] = self._progress_path
        if isinstance(raw_environment_out, dict):
            raw_environment_out.clear()
            raw_environment_out.update(env)
        return self._connection._shell.env_prefix(**env)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        wrap_async = self._task.async_val
        interval = self._interval(task_vars)
        ticker = None
        if not wrap_async and interval > 0 and self._connection.transport in LOCAL_CONNECTIONS:
            fd, self._progress_path = tempfile.mkstemp(prefix="karpenter-eks-progress-", suffix=".jsonl")
            os.close(fd)
            host = str(task_vars.get("inventory_hostname") or "localhost")
            ticker = Ticker(self._progress_path, host, self._task.get_name(), interval).start()
        try:
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        finally:
            if ticker is not None:
                ticker.stop()
            if self._progress_path:
                try:
                    os.unlink(self._progress_path)
                except OSError:
                    pass
                self._progress_path = None
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
