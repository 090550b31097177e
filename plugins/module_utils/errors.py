# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one error model of the collection (no Ansible import).

Every failure a user sees is a ``PlatformError``; the module layer turns it into ``fail_json`` in one
place (``module.KubeModule.fail_from`` and the AWS runner):

* ``InputError``  - the input breaks a rule; raised before any write. The message names the field and
  the rule; ``details`` holds one dict per problem.
* ``ApiError``    - a remote API (Kubernetes, AWS) answered an error or could not be reached. ``status``
  is the HTTP status when there was one.
* ``CredentialError`` - credentials could not be obtained (a kubeconfig exec plugin failed, ...).

Any of them may carry ``result``: the module result up to the failure when writes were done before it,
so the task reports ``changed: true`` and lists what was written.
"""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    """Base of the user-facing errors: a message, per-problem ``details`` and the result so far."""

    def __init__(
        self,
        msg: str,
        details: list | None = None,
        status: int | None = None,
        result: dict | None = None,
    ) -> None:
        super().__init__(msg)
        self.details: list = details or []
        self.status = status
        self.result: dict | None = result  # set when writes were done before the failure

    @property
    def written(self) -> bool:
        """Whether anything was written before the failure."""
        return bool(self.result and self.result.get("changed"))

    def fail_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``fail_json`` for this error (the message excepted)."""
        out: dict[str, Any] = dict(self.result or {})
        out.setdefault("changed", self.written)
        if self.details:
            out["errors"] = self.details
        if self.status is not None:
            out["status"] = self.status
        return out


class InputError(PlatformError):
    """Bad input: nothing was written. The message names the field and the rule."""


class ApiError(PlatformError):
    """A remote API failed (after the retries transient errors get)."""


class CredentialError(PlatformError):
    """Credentials could not be obtained (for example a kubeconfig exec plugin failed)."""
