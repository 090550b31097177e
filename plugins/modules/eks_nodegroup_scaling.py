#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: eks_nodegroup_scaling
short_description: Set the scaling config (desired, min, max size) of an existing EKS managed node group
version_added: 0.1.0
description:
  - Sets the scaling config (desired, minimum and maximum size) of an existing EKS managed node group and returns
    the previous one, for an undo.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  cluster_name:
    description: Name of the EKS cluster.
    type: str
    required: true
  name:
    description: Name of the managed node group.
    type: str
    required: true
  desired_size:
    description: Desired number of nodes.
    type: int
    required: true
  min_size:
    description: Minimum size; the current one (lowered to O(desired_size) if needed) when not given.
    type: int
  max_size:
    description: Maximum size; the current one (raised to O(desired_size) if needed) when not given.
    type: int
  wait:
    description: Wait until the node group is C(ACTIVE) with the new scaling config.
    type: bool
    default: true
  wait_timeout:
    description: Seconds for O(wait).
    type: int
    default: 600
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_aws
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Calls C(eks:UpdateNodegroupConfig) with the new C(scalingConfig) only when it differs; labels, taints, tags and
    the update config are left alone. Unlike M(community.aws.eks_nodegroup) it needs neither the node role nor
    the subnets.
  - O(min_size) and O(max_size) default to the current values, lowered or raised only as far as O(desired_size)
    needs, so scaling up raises the maximum and scaling back down (an undo) gives the saved values.
  - Used by C(playbooks/runbooks/provisioning_failure.yml) as the last-resort remediation (scale the core node group
    up); RV(previous_scaling_config) is what the runbook saves for the undo.
  - With C(--diff), returns the scaling config before and after.
"""

EXAMPLES = r"""
- name: Scale the core node group to 4 nodes (max raised to 4 if lower)
  karpenter_eks.platform.eks_nodegroup_scaling:
    cluster_name: platform-prod
    name: core
    desired_size: 4
  register: scaled

- name: Undo (the saved config)
  karpenter_eks.platform.eks_nodegroup_scaling:
    cluster_name: platform-prod
    name: core
    desired_size: "{{ scaled.previous_scaling_config.desired_size }}"
    min_size: "{{ scaled.previous_scaling_config.min_size }}"
    max_size: "{{ scaled.previous_scaling_config.max_size }}"
"""

RETURN = r"""
scaling_config:
  description: The scaling config after the change (in check mode, what it would be).
  returned: always
  type: dict
  sample: {min_size: 2, max_size: 4, desired_size: 4}
previous_scaling_config:
  description: The scaling config before the change (the undo).
  returned: always
  type: dict
  sample: {min_size: 2, max_size: 3, desired_size: 2}
nodegroup:
  description: The node group (snake_case keys of C(DescribeNodegroup), labels and tags unchanged).
  returned: always
  type: dict
eks_update:
  description: The EKS update started (C(id), C(status), C(type)); empty when nothing changed or in check mode.
  returned: always
  type: dict
requests:
  description: Requests sent to EKS - their number, and the operations that write (empty on a no-op or in check mode).
  returned: always
  type: dict
  sample: {total: 1, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.nodegroup_scaling import (
    ensure_nodegroup_scaling,
    validate_scaling,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True),
        name=dict(type="str", required=True),
        desired_size=dict(type="int", required=True),
        min_size=dict(type="int"),
        max_size=dict(type="int"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600),
    )
    run_aws_module(argument_spec, "eks", ensure_nodegroup_scaling, validate=validate_scaling)


if __name__ == "__main__":
    main()
