# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The runner of k8s_objects: converge plain Kubernetes objects with server-side apply (``kube/objects.py``)."""

from __future__ import annotations

from ..kube import objects
from .kube_module import KubeModule

OBJECTS_SPEC = dict(
    definitions=dict(type="list", elements="raw", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    namespace=dict(type="str"),
    field_manager=dict(type="str", default="karpenter-eks-platform"),
    request_timeout=dict(type="int", default=30),
)


def run_objects() -> None:
    """k8s_objects: converge plain Kubernetes objects with server-side apply."""
    module = KubeModule(argument_spec=OBJECTS_SPEC, supports_check_mode=True)
    p = module.params
    if not p["field_manager"]:
        module.fail_json(msg="field_manager: must not be empty")
    api = module.connect()
    result = module.run(
        lambda: objects.run(
            api,
            p["definitions"],
            state=p["state"],
            check_mode=module.check_mode,
            manager=p["field_manager"],
            namespace=p["namespace"],
        )
    )
    module.exit_json(**result)
