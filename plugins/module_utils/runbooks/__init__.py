# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-only incident diagnosis for the runbooks (controller, provisioning, spot storm).

Every gatherer appends what it looked at to ``checked`` and what it found to ``findings`` (with an
``id`` the playbooks and tests branch on), and the scenario adds ``recommendations``. Remediations
that change NodePools are computed here as complete NodePool definitions (live spec + the change),
with the previous spec alongside, so the playbooks feed them to ``karpenter_provisioner`` (which
gives exact ``--check --diff`` and sends no write in check mode).

Layout: ``common.py`` (the Diagnosis record, reads, log and metrics parsing), one module per scenario
(``controller.py``, ``provisioning.py``, ``spot.py``), ``report.py`` (Markdown and bundle); this module runs a
scenario.
"""

from __future__ import annotations

import time

from ..errors import InputError
from ..param_checks import is_int, show
from .common import (  # noqa: F401 - the names the module and the playbooks' tests use
    CAPACITY_TYPE,
    SAVED_ANNOTATION,
    allows_spot,
    capacity_type_allowed,
    classify,
    log_errors,
    metric_sum,
    parse_metrics,
    pool_can_serve,
    tail_text,
)
from .common import Diagnosis as _Base
from .controller import ControllerScenario
from .provisioning import ProvisioningScenario
from .report import field_changes, incident_failure, markdown, write_bundle  # noqa: F401
from .spot import SpotScenarios


class Diagnosis(ControllerScenario, ProvisioningScenario, SpotScenarios, _Base):
    """One runbook run: the shared record plus every scenario's gatherers."""


def wait_healthy(run_once, timeout, interval=2.0, sleep=time.sleep, clock=time.monotonic):
    """Re-run the diagnosis until it reports healthy (a condition) or the timeout passes."""
    deadline = clock() + timeout
    while True:
        result = run_once()
        if result["healthy"] or clock() >= deadline:
            return result
        sleep(interval)


def watch(run_once, seconds, interval=5.0, sleep=time.sleep, clock=time.monotonic):
    """Re-run the diagnosis for ``seconds`` (an observation period); stops at the first unhealthy result."""
    deadline = clock() + seconds
    runs = 0
    while True:
        result = run_once()
        runs += 1
        if not result["healthy"] or clock() >= deadline:
            result["observed"]["watch"] = {"seconds": seconds, "runs": runs, "stopped_early": not result["healthy"]}
            return result
        sleep(min(interval, max(0.0, deadline - clock())))


def run_scenario(api, p, http_get=None, pod_log=None, now=None):
    """One diagnosis of ``p["scenario"]`` with the module's parameters ``p``; returns the result."""
    d = Diagnosis(api, p["scenario"], http_get=http_get, now=now, pod_log=pod_log)
    if p["scenario"] == "controller":
        d.controller(
            p["namespace"],
            p["deployment"],
            health_url=p.get("health_url"),
            metrics_url=p.get("metrics_url"),
            log_file=p.get("log_file"),
            log_seconds=900 if p.get("log_seconds") is None else p["log_seconds"],
        )
    elif p["scenario"] == "provisioning":
        d.provisioning(
            namespaces=p.get("namespaces"),
            metrics_url=p.get("metrics_url"),
            stuck_seconds=p.get("stuck_seconds", 300),
            limit_factor=p.get("limit_factor", 2),
            widen=p.get("widen"),
            nodepools=p.get("nodepools"),
            iam_check=p.get("iam_check"),
            controller_namespace=p["namespace"],
            log_file=p.get("log_file"),
            log_seconds=900 if p.get("log_seconds") is None else p["log_seconds"],
        )
    elif p["scenario"] == "spot_storm":
        d.spot_storm(
            window_seconds=p["window_seconds"],
            threshold=p["threshold"],
            metrics_url=p.get("metrics_url"),
            nodepools=p.get("nodepools"),
            since=p.get("since"),
            verify=p.get("verify", False),
            expect_capacity_type=p.get("expect_capacity_type"),
            namespaces=p.get("namespaces"),
        )
    else:
        d.spot_reintroduction(
            window_seconds=p["window_seconds"],
            threshold=p["threshold"],
            nodepools=p.get("nodepools"),
            stage=p.get("stage", "add_spot"),
        )
    return d.result()


# bounds of karpenter_diagnose's numeric options: (minimum, maximum, what it counts)
WEEK = 7 * 86400
NUMBER_BOUNDS = {
    "stuck_seconds": (1, WEEK, "seconds a pod may stay pending"),
    "limit_factor": (1, 1000, "how many times the current limit may be raised"),
    "window_seconds": (1, WEEK, "seconds of events to read"),
    "threshold": (1, 100000, "interruptions that make a storm"),
    "log_seconds": (0, WEEK, "seconds of controller log to read; 0 reads none"),
    "wait_timeout": (1, WEEK, "seconds to wait for the controller"),
    "watch_seconds": (0, WEEK, "seconds to watch (0: once)"),
    "request_timeout": (1, 3600, "seconds per API request"),
}


def check_params(p: dict) -> None:
    """Raise InputError naming every numeric option out of its range (before the cluster is read)."""
    problems = []
    for name, (low, high, meaning) in NUMBER_BOUNDS.items():
        value = p.get(name)
        if value is None:
            continue
        if not is_int(value) or not low <= value <= high:
            problems.append(
                "%s must be a whole number from %d to %d (%s), got %s" % (name, low, high, meaning, show(value))
            )
    since = p.get("since")
    if since is not None and not (isinstance(since, (int, float)) and 0 <= since < 1e11):
        problems.append("since must be a Unix time in seconds, got %s" % show(since))
    if problems:
        raise InputError("; ".join(problems), details=[{"msg": x} for x in problems])
