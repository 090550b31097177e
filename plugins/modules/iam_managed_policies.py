#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iam_managed_policies
short_description: Manage many customer managed IAM policies in one task
version_added: 0.1.0
description:
  - Ensures many customer managed IAM policies (document and tags; description and path at creation) in one task.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  policies:
    description: The policies.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Policy name (unique in the account, case-insensitively).
        type: str
        required: true
      document:
        description:
          - The policy document, as a dict or JSON text. Required when the policy's state is C(present).
        type: raw
      description:
        description: Description, set when the policy is created (IAM cannot change it later).
        type: str
      path:
        description: Path, set when the policy is created (IAM cannot change it later).
        type: str
        default: /
      tags:
        description: Tags of this policy; overrides the module's O(tags). Unchanged when neither is given.
        type: dict
      state:
        description: State of this policy; defaults to the module's O(state).
        type: str
        choices: [present, absent]
  state:
    description:
      - Whether the policies exist. C(absent) detaches a policy from every role, user and group, deletes its
        non-default versions and then the policy.
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
  - Replaces one amazon.aws.iam_managed_policy task per policy. Reads with one C(iam:ListPolicies) (customer
    managed policies, paginated) and, per existing policy, C(iam:GetPolicy) and C(iam:GetPolicyVersion) of its
    default version. A converged batch sends no other request.
  - The default version's document is compared as IAM evaluates it - the order of statements, of actions,
    resources and condition values, a single value versus a one-element list and a missing C(Version)
    (C(2008-10-17)) do not count. Only a real difference creates a new default version; when the policy already
    has the five versions IAM allows, the oldest non-default version is deleted first.
  - IAM cannot change the path or the description of an existing policy; a difference is reported as a warning.
  - The whole input is validated (names, paths, documents, tags) before any request; an error names the field.
  - With C(--diff), returns one entry per policy that changes, with its path, description, document and tags
    before and after.
  - O(tags) and O(purge_tags) apply to every policy without its own C(tags).
"""

EXAMPLES = r"""
- name: Karpenter controller policies
  karpenter_eks.platform.iam_managed_policies:
    policies:
      - name: KarpenterControllerNodeLifecyclePolicy-prod
        description: Karpenter v1 controller (NodeLifecycle)
        document: "{{ lookup('ansible.builtin.template', 'policy-node-lifecycle.yml.j2') | from_yaml }}"
      - name: KarpenterControllerInterruptionPolicy-prod
        document: "{{ lookup('ansible.builtin.template', 'policy-interruption.yml.j2') | from_yaml }}"
    tags:
      team: platform

- name: Remove one
  karpenter_eks.platform.iam_managed_policies:
    policies:
      - name: KarpenterControllerZonalShiftPolicy-prod
    state: absent
"""

RETURN = r"""
policies:
  description: One entry per policy, in input order, as it is after the run (as it would be, in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Policy name.
      type: str
    arn:
      description: ARN; null for a policy only planned (check mode) or absent.
      type: str
    path:
      description: Path.
      type: str
    description:
      description: Description.
      type: str
    default_version_id:
      description: Id of the default version (null when only planned).
      type: str
    document:
      description: Document of the default version.
      type: dict
    tags:
      description: Tags.
      type: dict
    state:
      description: The requested state.
      type: str
    changed:
      description: Whether this policy changed.
      type: bool
    changes:
      description: What changed - C(created), C(document), C(tags) or C(deleted).
      type: list
      elements: str
requests:
  description: Requests sent to IAM - their number, and the operations that write (empty on a no-op or in check mode).
  returned: always
  type: dict
  sample: {total: 13, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.iam_policies import (
    ensure_managed_policies,
    validate_policies,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module


def main():
    argument_spec = dict(
        policies=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                document=dict(type="raw"),
                description=dict(type="str"),
                path=dict(type="str", default="/"),
                tags=dict(type="dict"),
                state=dict(type="str", choices=["present", "absent"]),
            ),
        ),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    run_aws_module(argument_spec, "iam", ensure_managed_policies, validate=validate_policies)


if __name__ == "__main__":
    main()
