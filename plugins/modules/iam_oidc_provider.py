#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iam_oidc_provider
short_description: Manage an IAM OpenID Connect provider (the EKS cluster's issuer, for IRSA)
version_added: 0.1.0
description:
  - Creates, updates (client ids, thumbprints, tags) or deletes the IAM OpenID Connect provider of an issuer URL,
    for example the OIDC issuer of an EKS cluster, which IAM roles for service accounts (IRSA) trust.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  url:
    description: Issuer URL, for example C(https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE).
    type: str
    required: true
  client_id_list:
    description: Audiences (client ids).
    type: list
    elements: str
    default: [sts.amazonaws.com]
  purge_client_ids:
    description: Remove client ids not in O(client_id_list).
    type: bool
    default: true
  thumbprint_list:
    description:
      - Server certificate thumbprints. IAM no longer uses them for well-known issuers such as EKS; unchanged
        when not given.
    type: list
    elements: str
  state:
    description: Whether the provider exists.
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
  - amazon.aws and community.aws have no module for IAM OIDC providers.
  - With C(--diff), returns URL, client ids, thumbprints and tags before and after.
"""

EXAMPLES = r"""
- name: OIDC provider of the cluster (IRSA)
  karpenter_eks.platform.iam_oidc_provider:
    url: "{{ cluster.identity.oidc.issuer }}"
  register: oidc

- name: Trust it
  ansible.builtin.debug:
    msg: "{{ oidc.arn }}"
"""

RETURN = r"""
arn:
  description: ARN of the provider.
  returned: always
  type: str
  sample: arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
oidc_provider:
  description: C(url), C(client_id_list), C(thumbprint_list), C(tags) and C(arn); empty after a delete.
  returned: always
  type: dict
requests:
  description: Requests sent to STS and IAM - their number, and the operations that write (none in check mode).
  returned: always
  type: dict
  sample: {total: 2, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.api import call
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import (
    ensure_oidc_provider,
    oidc_provider_arn,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module


def _provider_arn(module, connect):
    sts = connect("sts")
    identity = call("read the AWS account (sts:GetCallerIdentity)", sts.get_caller_identity)
    partition = identity["Arn"].split(":")[1]
    return {"arn": oidc_provider_arn(identity["Account"], partition, module.params["url"])}


def main():
    argument_spec = dict(
        url=dict(type="str", required=True),
        client_id_list=dict(type="list", elements="str", default=["sts.amazonaws.com"]),
        purge_client_ids=dict(type="bool", default=True),
        thumbprint_list=dict(type="list", elements="str"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    run_aws_module(argument_spec, "iam", ensure_oidc_provider, prepare=_provider_arn)


if __name__ == "__main__":
    main()
