#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: karpenter_iam_check
short_description: Check the Karpenter controller role's permissions with the IAM policy simulator
version_added: 0.1.0
description:
  - Checks with the IAM policy simulator whether the Karpenter v1 controller role is allowed what the controller
    does, and reports the denied actions.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  cluster_name:
    description: EKS cluster name (resource ARNs and the tag conditions of the policies).
    type: str
    required: true
  role_name:
    description:
      - Name of the controller role, for example C(KarpenterControllerRole-<cluster>).
      - One of O(role_name) or O(role_arn) is required.
    type: str
  role_arn:
    description: ARN of the controller role (instead of O(role_name); no C(iam:GetRole) call).
    type: str
  node_role_name:
    description: Node role Karpenter passes to instances (C(iam:PassRole)); C(KarpenterNodeRole-<cluster>) when unset.
    type: str
  node_role_arn:
    description: ARN of the node role (instead of O(node_role_name)).
    type: str
  interruption_queue:
    description: Name of the SQS interruption queue; the C(sqs) actions are skipped when empty.
    type: str
  actions:
    description: Only simulate these actions (of the list above); all when empty.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - karpenter_eks.platform.attributes.info_module
  - karpenter_eks.platform.attributes.action_group_aws
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Calls C(iam:SimulatePrincipalPolicy) with the actions, resources and request context of the Karpenter v1.14
    controller policies (C(ec2:CreateFleet), C(ec2:RunInstances), C(ec2:CreateLaunchTemplate), C(ec2:CreateTags),
    C(ec2:TerminateInstances), the C(ec2:Describe*) reads, C(iam:PassRole), the C(iam:*InstanceProfile) actions,
    C(pricing:GetProducts), C(ssm:GetParameter), C(eks:DescribeCluster) and the interruption queue's C(sqs)
    actions).
  - Where the simulator cannot be used (not implemented by an emulator, C(AccessDenied) for the caller, endpoint
    unreachable) the module does not fail; RV(available) is false and RV(note) says why.
  - Used by C(playbooks/runbooks/provisioning_failure.yml), which passes the result to
    M(karpenter_eks.platform.karpenter_diagnose) (O(karpenter_eks.platform.karpenter_diagnose#module:iam_check)).
"""

EXAMPLES = r"""
- name: Which Karpenter actions does the controller role lack?
  karpenter_eks.platform.karpenter_iam_check:
    cluster_name: platform-prod
    role_name: KarpenterControllerRole-platform-prod
    interruption_queue: platform-prod
  register: iam_check

- name: Denied actions
  ansible.builtin.debug:
    msg: "{{ iam_check.denied | map(attribute='action') | list if iam_check.available else iam_check.note }}"
"""

RETURN = r"""
available:
  description: Whether the simulator answered (false with RV(note) otherwise).
  returned: always
  type: bool
role_missing:
  description: The role given by O(role_name) does not exist.
  returned: always
  type: bool
role_arn:
  description: ARN of the simulated role.
  returned: always
  type: str
allowed:
  description: Actions allowed on every simulated resource.
  returned: always
  type: list
  elements: str
denied:
  description: Denied action/resource pairs with C(action), C(resource), C(decision) (V(implicitDeny),
    V(explicitDeny)) and C(why).
  returned: always
  type: list
  elements: dict
note:
  description: Why the simulator could not be used (C(IAM simulator not available - ...)); null otherwise.
  returned: always
  type: str
requests:
  description: Requests sent to IAM - their number, and the operations that write (empty on a no-op or in check mode).
  returned: always
  type: dict
  sample: {total: 1, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.iam_simulate import check_controller_role
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module


def _region(module, connect):
    return {"region": module.region}


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True),
        role_name=dict(type="str"),
        role_arn=dict(type="str"),
        node_role_name=dict(type="str"),
        node_role_arn=dict(type="str"),
        interruption_queue=dict(type="str"),
        actions=dict(type="list", elements="str", default=[]),
    )
    run_aws_module(
        argument_spec, "iam", check_controller_role, prepare=_region, required_one_of=[("role_name", "role_arn")]
    )


if __name__ == "__main__":
    main()
