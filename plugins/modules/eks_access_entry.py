#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: eks_access_entry
short_description: Manage an EKS access entry (for example the Karpenter node role, type EC2_LINUX)
version_added: 0.1.0
description:
  - Creates, updates or deletes the EKS access entry of an IAM principal, for example the access entry of type
    C(EC2_LINUX) for the Karpenter node role, without which Karpenter's nodes cannot join the cluster.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  cluster_name:
    description: Name of the EKS cluster.
    type: str
    required: true
  principal_arn:
    description: ARN of the IAM role or user.
    type: str
    required: true
  type:
    description: Type of the access entry (immutable).
    type: str
    default: STANDARD
    choices: [STANDARD, EC2_LINUX, EC2_WINDOWS, FARGATE_LINUX, EC2, HYBRID_LINUX, HYPERPOD_LINUX]
  kubernetes_groups:
    description: Kubernetes groups of a C(STANDARD) entry; unchanged when not given.
    type: list
    elements: str
  username:
    description: Kubernetes username of a C(STANDARD) entry; unchanged when not given.
    type: str
  state:
    description: Whether the entry exists.
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
  - Needs a cluster with authentication mode C(API) or C(API_AND_CONFIG_MAP). Entries of type C(EC2_LINUX) or
    C(EC2_WINDOWS) take no Kubernetes groups.
  - EKS cannot change the type of an existing entry; the module fails with a clear message instead.
  - With C(--diff), returns the entry's type, groups, username and tags before and after.
"""

EXAMPLES = r"""
- name: Let Karpenter's nodes join the cluster
  karpenter_eks.platform.eks_access_entry:
    cluster_name: platform-prod
    principal_arn: arn:aws:iam::123456789012:role/KarpenterNodeRole-platform-prod
    type: EC2_LINUX

- name: Remove it
  karpenter_eks.platform.eks_access_entry:
    cluster_name: platform-prod
    principal_arn: arn:aws:iam::123456789012:role/KarpenterNodeRole-platform-prod
    state: absent
"""

RETURN = r"""
access_entry:
  description: The access entry (snake_case keys of the EKS API, tags unchanged); empty after a delete.
  returned: always
  type: dict
  sample:
    principal_arn: arn:aws:iam::123456789012:role/KarpenterNodeRole-platform-prod
    type: EC2_LINUX
    kubernetes_groups: []
    tags: {}
requests:
  description: Requests sent to EKS - their number, and the operations that write (empty on a no-op or in check mode).
  returned: always
  type: dict
  sample: {total: 1, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import ensure_access_entry
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module

TYPES = ["STANDARD", "EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "EC2", "HYBRID_LINUX", "HYPERPOD_LINUX"]


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True),
        principal_arn=dict(type="str", required=True),
        type=dict(type="str", default="STANDARD", choices=TYPES),
        kubernetes_groups=dict(type="list", elements="str"),
        username=dict(type="str"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    run_aws_module(argument_spec, "eks", ensure_access_entry)


if __name__ == "__main__":
    main()
