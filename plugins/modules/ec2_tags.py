#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ec2_tags
short_description: Ensure one set of tags on many EC2 resources with one read and one write
version_added: 0.1.0
description:
  - Ensures one set of tags on many EC2 resources - given by id, or the subnets and security groups that filters
    select - for example Karpenter's C(karpenter.sh/discovery) tag on the cluster's subnets and node security groups.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  resources:
    description: EC2 resource ids (subnets, security groups, instances, VPCs, ...).
    type: list
    elements: str
    default: []
  subnet_filters:
    description:
      - C(ec2:DescribeSubnets) filters (as amazon.aws.ec2_vpc_subnet_info takes them); the matching subnets are
        tagged too and returned in RV(subnet_ids). No lookup when empty.
    type: dict
    default: {}
  security_group_filters:
    description:
      - C(ec2:DescribeSecurityGroups) filters; the matching groups are tagged too and returned in
        RV(security_group_ids). No lookup when empty.
    type: dict
    default: {}
  tags:
    description:
      - The tags. With O(state=absent), a tag is removed only where it has the given value; a null value removes
        it whatever its value.
    type: dict
    required: true
  purge_tags:
    description: With O(state=present), also remove every other tag of these resources (except C(aws:) tags).
    type: bool
    default: false
  require_subnets:
    description:
      - Fail before any write when no subnet is among the resources (given or found by O(subnet_filters)).
    type: bool
    default: false
  state:
    description: Whether the tags are present or absent.
    type: str
    default: present
    choices: [present, absent]
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_aws
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Replaces one amazon.aws.ec2_tag task per resource. Reads with one C(ec2:DescribeTags) (or
    C(ec2:DescribeSubnets)/C(ec2:DescribeSecurityGroups) for what the filters select, whose answers carry the tags);
    writes with at most one C(ec2:CreateTags) and one C(ec2:DeleteTags) per 1,000 resources. A converged set of
    resources sends no write request.
  - The whole input is validated (resource ids, tag keys and values) before any request; an error names the field.
  - With C(--diff), returns one entry per resource whose tags change, with its tags before and after.
"""

EXAMPLES = r"""
- name: Tag the cluster's private subnets and node security groups for Karpenter's discovery
  karpenter_eks.platform.ec2_tags:
    resources: [sg-0123456789abcdef0]
    subnet_filters:
      "tag:kubernetes.io/role/internal-elb": "1"
      "tag:kubernetes.io/cluster/prod": [shared, owned]
    require_subnets: true
    tags:
      karpenter.sh/discovery: prod
  register: discovery

- name: Remove the tag again (only where it still has this value)
  karpenter_eks.platform.ec2_tags:
    resources: "{{ discovery.resources }}"
    tags:
      karpenter.sh/discovery: prod
    state: absent
"""

RETURN = r"""
resources:
  description: Every resource handled - O(resources), then the subnets and security groups the filters found.
  returned: always
  type: list
  elements: str
subnet_ids:
  description: The subnets among RV(resources).
  returned: always
  type: list
  elements: str
security_group_ids:
  description: The security groups among RV(resources).
  returned: always
  type: list
  elements: str
results:
  description: Per resource, whether its tags changed and all its tags after the run (as they would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{resource_id: subnet-0123456789abcdef0, changed: false, tags: {karpenter.sh/discovery: prod}}]
requests:
  description: Requests sent to EC2 - their number, and the operations that write (empty on a no-op or in check mode).
  returned: always
  type: dict
  sample: {total: 1, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.ec2_tags import ensure_tags, validate_tags
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module


def main():
    argument_spec = dict(
        resources=dict(type="list", elements="str", default=[]),
        subnet_filters=dict(type="dict", default={}),
        security_group_filters=dict(type="dict", default={}),
        tags=dict(type="dict", required=True),
        purge_tags=dict(type="bool", default=False),
        require_subnets=dict(type="bool", default=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    run_aws_module(argument_spec, "ec2", ensure_tags, validate=validate_tags)


if __name__ == "__main__":
    main()
