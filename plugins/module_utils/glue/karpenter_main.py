# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The runner of karpenter_provisioner and node_template: converge the definitions of one Karpenter kind with the
apply engine (``apply/karpenter.py``) behind the shared module layer (``kube_module.KubeModule``)."""

from __future__ import annotations

import traceback
from typing import Any

from ansible.module_utils.basic import missing_required_lib

from ..errors import InputError
from ..kube import resource
from .kube_module import KubeModule


def load_karpenter_apply() -> tuple[Any, str | None]:
    """(karpenter_apply, None), or (None, traceback) when cel-python is missing: imported on use so that the
    module can say which library is missing instead of failing at import."""
    try:
        from ..apply import karpenter as karpenter_apply

        return karpenter_apply, None
    except ImportError:
        return None, traceback.format_exc()


APPLY_SPEC = dict(
    definitions=dict(type="list", elements="raw", default=[]),
    name=dict(type="str"),
    spec=dict(type="dict"),
    labels=dict(type="dict"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    prune=dict(type="bool", default=False),
    allow_disruption=dict(type="bool", default=False),
    strict=dict(type="bool", default=False),
    server_dry_run=dict(type="bool", default=True),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=120),
    request_timeout=dict(type="int", default=30),
    conversion=dict(
        type="dict",
        default={},
        options=dict(
            node_role=dict(type="str"),
            instance_profile=dict(type="str"),
            ami_version=dict(type="str", default="latest"),
            ignore_alpha_defaults=dict(type="bool", default=False),
            kubernetes_version=dict(type="str"),
        ),
    ),
)


def build_module(**extra: dict) -> KubeModule:
    """The KubeModule of karpenter_provisioner / node_template (APPLY_SPEC plus ``extra`` options)."""
    return KubeModule(
        argument_spec=dict(APPLY_SPEC, **extra),
        supports_check_mode=True,
        mutually_exclusive=[("definitions", "name"), ("definitions", "spec")],
        required_by={"spec": "name", "labels": "name"},
    )


def run_apply(module: KubeModule, kind_name: str, **run_args: Any) -> None:
    """karpenter_provisioner / node_template: converge the definitions of one Karpenter kind."""
    karpenter_apply, import_error = load_karpenter_apply()
    if karpenter_apply is None:
        module.fail_json(msg=missing_required_lib("cel-python"), exception=import_error)
    kind = {"NodePool": resource.NODEPOOL, "EC2NodeClass": resource.EC2NODECLASS}[kind_name]
    p = module.params
    definitions = p["definitions"]
    if p["name"]:
        meta = {"name": p["name"]}
        if p["labels"]:
            meta["labels"] = p["labels"]
        definitions = [{"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta, "spec": p["spec"] or {}}]
    if not definitions and not p["prune"]:
        module.fail_json(msg="one of definitions or name is required")
    try:  # before anything is read: a timeout of 0 or less would retry for nothing or write and then fail
        karpenter_apply.check_timeouts(p["wait_timeout"], p["request_timeout"])
    except InputError as exc:
        module.fail_from(exc)
    api = module.connect()
    result = module.run(
        lambda: karpenter_apply.run(
            api,
            kind,
            definitions,
            state=p["state"],
            prune=p["prune"],
            wait=p["wait"],
            wait_timeout=p["wait_timeout"],
            check_mode=module.check_mode,
            strict=p["strict"],
            allow_disruption=p["allow_disruption"],
            conversion=p["conversion"],
            server_dry_run=p["server_dry_run"],
            **run_args,
        )
    )
    if result["not_ready"]:
        module.fail_json(
            msg="%s not Ready after %ss: %s" % (kind.kind, p["wait_timeout"], ", ".join(result["not_ready"])), **result
        )
    if result["not_deleted"]:
        module.fail_json(
            msg="%s still present %ss after deletion (finalizers pending): %s"
            % (kind.kind, p["wait_timeout"], ", ".join(result["not_deleted"])),
            **result,
        )
    module.exit_json(**result)
