# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The runner of karpenter_info: NodePools, EC2NodeClasses and NodeClaims with their readiness and usage
(``kube/info.py``)."""

from __future__ import annotations

from ..kube import info
from .kube_module import KubeModule

INFO_SPEC = dict(
    kinds=dict(
        type="list",
        elements="str",
        choices=["NodePool", "EC2NodeClass", "NodeClaim"],
        default=["NodePool", "EC2NodeClass", "NodeClaim"],
    ),
    names=dict(type="list", elements="str", default=[]),
    request_timeout=dict(type="int", default=30),
)


def run_info() -> None:
    """karpenter_info: NodePools, EC2NodeClasses and NodeClaims with their readiness and usage."""
    module = KubeModule(argument_spec=INFO_SPEC, supports_check_mode=True)
    p = module.params
    api = module.connect()
    result = module.run(lambda: info.summarize(api, p["kinds"], p["names"]))
    module.exit_json(changed=False, **result)
