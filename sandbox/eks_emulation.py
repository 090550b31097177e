"""EKS control planes that take time to create, as EKS's do: moto makes a cluster ACTIVE at once.

A real ``CreateCluster`` returns ``status: CREATING`` and the cluster becomes ``ACTIVE`` about ten minutes
later; tools must wait for it (the cluster role waits and prints a status line per check). moto 5 sets every
new cluster ``ACTIVE`` immediately, so that wait was never exercised. ``install()`` patches this process's moto:
a cluster created while ``CREATE_DELAY.seconds`` is above 0 reports ``CREATING`` (``DescribeCluster``) and
refuses node groups and Fargate profiles (moto's ``InvalidRequestException`` for a cluster that is not ACTIVE)
until that many seconds after its creation; then it is ``ACTIVE``. The default is 0 (moto's behaviour); clusters
created before a change keep their own delay.

Control API (aws_emulator.py): ``GET /sandbox-api/eks-create-delay`` -> ``{"seconds": N}``, ``POST
{"seconds": N}`` (0 <= N <= 3600) sets it for clusters created afterwards. ``POST /moto-api/reset`` sets it back
to 0.
"""

from __future__ import annotations

import time
from typing import Any

MAX_SECONDS = 3600.0


class CreateDelay:
    """Seconds a new EKS cluster stays CREATING."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def set(self, body: object) -> float:
        if not isinstance(body, dict) or set(body) != {"seconds"}:
            raise ValueError('body must be {"seconds": N}')
        seconds = body["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_SECONDS:
            raise ValueError("seconds must be a number from 0 to %d" % MAX_SECONDS)
        self.seconds = float(seconds)
        return self.seconds

    def clear(self) -> None:
        self.seconds = 0.0


CREATE_DELAY = CreateDelay()
_MARK = "_sandbox_eks_emulation"


def install(clock: Any = time.monotonic) -> None:
    """Patch moto's EKS ``Cluster`` (idempotent): its ``status`` is CREATING until its own ready time."""
    from moto.eks.models import Cluster

    if getattr(Cluster, _MARK, False):
        return
    original_init = Cluster.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self._sandbox_ready_at = clock() + CREATE_DELAY.seconds
        original_init(self, *args, **kwargs)

    def get_status(self: Any) -> str:
        status = self.__dict__.get("_sandbox_status", "ACTIVE")
        if status == "ACTIVE" and clock() < self.__dict__.get("_sandbox_ready_at", 0.0):
            return "CREATING"
        return status

    def set_status(self: Any, value: str) -> None:
        self.__dict__["_sandbox_status"] = value

    Cluster.__init__ = __init__
    Cluster.status = property(get_status, set_status)
    setattr(Cluster, _MARK, True)
