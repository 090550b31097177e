#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: eks_pod_identity_association
short_description: Manage an EKS Pod Identity association (service account to IAM role)
version_added: 0.1.0
description:
  - Creates, updates (role) or deletes the EKS Pod Identity association that gives the pods of a Kubernetes service
    account an IAM role.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  cluster_name:
    description: Name of the EKS cluster.
    type: str
    required: true
  namespace:
    description: Namespace of the service account.
    type: str
    required: true
  service_account:
    description: Name of the service account.
    type: str
    required: true
  role_arn:
    description: IAM role the pods of the service account get. Required with O(state=present).
    type: str
  state:
    description: Whether the association exists.
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
  - The association is found by cluster, namespace and service account.
  - The role's trust policy must allow C(pods.eks.amazonaws.com) to C(sts:AssumeRole) and C(sts:TagSession), and
    the C(eks-pod-identity-agent) add-on must run in the cluster (see M(karpenter_eks.platform.eks_addon)).
  - With C(--diff), returns namespace, service account, role and tags before and after.
"""

EXAMPLES = r"""
- name: Karpenter controller identity through EKS Pod Identity
  karpenter_eks.platform.eks_pod_identity_association:
    cluster_name: platform-prod
    namespace: kube-system
    service_account: karpenter
    role_arn: arn:aws:iam::123456789012:role/KarpenterControllerRole-platform-prod
"""

RETURN = r"""
association:
  description: The association (snake_case keys of the EKS API, tags unchanged); empty after a delete.
  returned: always
  type: dict
  sample:
    association_id: a-1234567890abcdef0
    namespace: kube-system
    service_account: karpenter
    role_arn: arn:aws:iam::123456789012:role/KarpenterControllerRole-platform-prod
requests:
  description: Requests sent to EKS - their number, and the operations that write (empty on a no-op or in check mode).
  returned: always
  type: dict
  sample: {total: 1, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import ensure_pod_identity_association
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        service_account=dict(type="str", required=True),
        role_arn=dict(type="str"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    run_aws_module(
        argument_spec, "eks", ensure_pod_identity_association, required_if=[("state", "present", ["role_arn"])]
    )


if __name__ == "__main__":
    main()
