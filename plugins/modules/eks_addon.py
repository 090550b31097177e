#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: eks_addon
short_description: Manage an EKS add-on (for example eks-pod-identity-agent, vpc-cni, coredns)
version_added: 0.1.0
description:
  - Creates, updates (version, service account role, configuration values) or deletes an EKS add-on.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  cluster_name:
    description: Name of the EKS cluster.
    type: str
    required: true
  name:
    description: Name of the add-on.
    type: str
    required: true
  addon_version:
    description: Version, for example C(v1.3.8-eksbuild.2); unchanged when not given.
    type: str
  service_account_role_arn:
    description: IAM role of the add-on's service account (IRSA); unchanged when not given.
    type: str
  configuration_values:
    description: Configuration values as a JSON or YAML string; unchanged when not given.
    type: str
  resolve_conflicts:
    description: How EKS resolves conflicts with fields changed outside the add-on.
    type: str
    choices: [OVERWRITE, NONE, PRESERVE]
  preserve:
    description: With O(state=absent), keep the add-on's Kubernetes objects.
    type: bool
    default: false
  state:
    description: Whether the add-on exists.
    type: str
    default: present
    choices: [present, absent]
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_aws
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags.modules
  - amazon.aws.boto3
notes:
  - Options that are not given are left as they are (for example the add-on version EKS picked at creation).
  - With C(--diff), returns version, role, configuration values and tags before and after.
"""

EXAMPLES = r"""
- name: EKS Pod Identity agent (needed by Karpenter with karpenter_controller_identity=pod_identity)
  karpenter_eks.platform.eks_addon:
    cluster_name: platform-prod
    name: eks-pod-identity-agent
"""

RETURN = r"""
addon:
  description: The add-on (snake_case keys of the EKS API, tags unchanged); empty after a delete.
  returned: always
  type: dict
  sample:
    addon_name: eks-pod-identity-agent
    addon_version: v1.3.8-eksbuild.2
    status: ACTIVE
requests:
  description: Requests sent to EKS - their number, and the operations that write (empty on a no-op or in check mode).
  returned: always
  type: dict
  sample: {total: 1, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import ensure_addon
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True),
        name=dict(type="str", required=True),
        addon_version=dict(type="str"),
        service_account_role_arn=dict(type="str"),
        configuration_values=dict(type="str"),
        resolve_conflicts=dict(type="str", choices=["OVERWRITE", "NONE", "PRESERVE"]),
        preserve=dict(type="bool", default=False),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    run_aws_module(argument_spec, "eks", ensure_addon)


if __name__ == "__main__":
    main()
