# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one module layer of every module that talks to Kubernetes (the only Ansible glue of the apply code).

``KubeModule`` is an AnsibleModule with kubernetes.core's connection options. It connects (the direct
transport with in-process EKS tokens where it applies, else the official client), masks the secrets of a
kubeconfig given as a mapping, reports the same ``requests`` shape everywhere, emits warnings, keeps the
diff only under ``--diff`` and maps every ``PlatformError`` to ``fail_json`` in one place (``fail_from``).

The module files only declare their options and call the runner of their family, each in its own file so
that a module's AnsiballZ payload carries only the code it runs (Ansible packs every module_utils file a module
imports, lazily or not):

* ``karpenter_main.run_apply(module, kind_name)`` - karpenter_provisioner, node_template (apply/karpenter.run)
* ``objects_main.run_objects()``                  - k8s_objects (kube/objects.run)
* ``info_main.run_info()``                        - karpenter_info (kube/info.summarize)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

from .. import param_checks, redaction
from ..errors import PlatformError
from ..karpenter.issues import bound
from ..kube import client as kclient
from ..kube import transport

MAX_REQUEST_TIMEOUT = 86400


def module_secrets(params: dict) -> set[str]:
    """What a module masks in all it returns and logs: the kubeconfig mapping's secrets, and credentials found in
    the other parameters (redaction.secret_values: a password in user data, a token in a ConfigMap's data)."""
    out = set(transport.kubeconfig_secrets(params.get("kubeconfig")))
    out.update(redaction.secret_values({k: v for k, v in params.items() if k != "kubeconfig"}))
    return out


class KubeModule(AnsibleModule):
    """AnsibleModule for kubernetes.core's connection options (AUTH_ARG_SPEC, added to ``argument_spec``).

    The secrets of a ``kubeconfig`` given as a mapping (tokens, passwords, client keys, exec plugin env
    values: transport.kubeconfig_secrets) are no_log values, as kubernetes.core makes them, so no result,
    ``invocation``, ``-vvv`` output or log line shows them. They are added as soon as the parameters are
    read, before the argument checks whose failures return the parameters too. So are credentials found in the
    other parameters (module_secrets): the object as stored, returned by the apply modules, shows ``********``
    in their place."""

    def __init__(self, argument_spec: dict, **kwargs: Any) -> None:
        spec = dict(AUTH_ARG_SPEC)
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)  # _load_params adds the parameters' secrets (once)
        if getattr(self, "_shape_errors", None):
            self.fail_json(msg="; ".join(self._shape_errors), changed=False)
        self.api = None

    def _load_params(self):
        super()._load_params()
        self.no_log_values.update(module_secrets(self.params or {}))
        # ansible-core's argument checks crash (TypeError in set_fallbacks) on a value that is not a mapping for an
        # option with suboptions: such a value is taken out here and refused once the other checks have run
        self._shape_errors = []
        for name, spec in (getattr(self, "argument_spec", None) or {}).items():
            if not (isinstance(spec, dict) and spec.get("options") and spec.get("type", "str") == "dict"):
                continue
            for key in [name] + list(spec.get("aliases") or []):
                value = (self.params or {}).get(key)
                if value is not None and not isinstance(value, dict):
                    self._shape_errors.append(
                        "%s must be a mapping with the keys %s, got %s"
                        % (key, ", ".join(sorted(spec["options"])), type(value).__name__)
                    )
                    del self.params[key]

    # Credentials stored in the cluster (user data, ConfigMap data) come back in the objects a module read or
    # wrote: whatever a module returns is scanned (redaction.secret_values) and what is found is masked.
    def exit_json(self, **kwargs: Any) -> None:
        self.no_log_values.update(redaction.secret_values(kwargs))
        super().exit_json(**kwargs)

    def fail_json(self, msg: Any, **kwargs: Any) -> None:
        """Also bounds ``msg`` (issues.bound): ansible-core's own messages (choices, types) quote the value."""
        self.no_log_values.update(redaction.secret_values(dict(kwargs, msg=msg)))
        super().fail_json(msg=bound(msg), **kwargs)

    def log(self, msg: Any, log_args: Any = None) -> None:
        """ansible-core's syslog call fails on a NUL character in a parameter (with a message about syslog, not
        about the parameter): NULs are written as ``\\x00`` so that the argument checks get to name it."""
        if isinstance(msg, str):
            msg = msg.replace("\x00", "\\x00")
        super().log(msg, log_args=log_args)

    def connect(self, retries: int = 5) -> kclient.KubeApi:
        """The API client for the module's connection options; fails the module with what to fix."""
        if not kclient.HAS_KUBERNETES:
            self.fail_json(msg=missing_required_lib("kubernetes"), exception=str(kclient.KUBERNETES_IMPORT_ERROR))
        timeout = self.params.get("request_timeout") or 30
        problem = param_checks.positive_seconds("request_timeout", self.params.get("request_timeout"))
        if not problem and timeout > MAX_REQUEST_TIMEOUT:
            problem = "request_timeout must be at most %d seconds, got %s" % (MAX_REQUEST_TIMEOUT, timeout)
        if problem:
            self.fail_json(msg=problem, changed=False)
        try:
            self.api = kclient.connect(self.params, timeout=timeout, retries=retries)
        except Exception as exc:  # kubeconfig missing/unreadable
            self.fail_json(msg="cannot configure the Kubernetes client: %s" % exc, changed=False)
        return self.api

    def requests(self) -> dict:
        return self.api.request_summary() if self.api is not None else {}

    def _reported(self, result: dict) -> dict:
        """A result as the module returns it: warnings emitted, the diff only with --diff, requests counted."""
        result = dict(result)
        for w in result.pop("warnings", None) or []:
            self.warn(str(w))
        if not self._diff:
            result.pop("diff", None)
        result["requests"] = self.requests()
        return result

    def fail_from(self, exc: PlatformError) -> None:
        """The one mapping of an error to ``fail_json``: the message, ``errors`` (per-problem details),
        ``status``, and - when writes were done before it - the result so far with ``changed: true``."""
        msg = str(exc)
        if isinstance(exc, kclient.KubeError):
            msg = "Kubernetes API error: %s" % msg
        self.fail_json(msg=msg, **self._reported(exc.fail_kwargs()))

    def run(self, fn: Callable[[], dict]) -> dict:
        """``fn()``'s result as reported, or the module failed from the PlatformError it raised."""
        try:
            return self._reported(fn())
        except PlatformError as exc:
            self.fail_from(exc)
        raise AssertionError("unreachable")  # fail_json exits
