#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: eks_cluster_version
short_description: Keep an existing EKS cluster at a Kubernetes version, upgrading one minor version when allowed
version_added: 0.1.0
description:
  - Keeps the control plane of an existing EKS cluster at a Kubernetes version - nothing to do when it runs
    O(version), an upgrade by one minor version when O(allow_upgrade=true), otherwise a failure before any write.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  name:
    description: Name of the EKS cluster.
    type: str
    required: true
    aliases: [cluster_name]
  version:
    description: Desired Kubernetes version, C(major.minor) (quote it in YAML - V(1.30) unquoted is the number 1.3).
    type: str
    required: true
  allow_upgrade:
    description: Allow the (irreversible) upgrade of the control plane by one minor version.
    type: bool
    default: false
  wait:
    description: Wait for the upgrade to finish (C(Successful)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the upgrade; the update goes on in AWS after a timeout, run again to keep waiting.
    type: int
    default: 3600
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_aws
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - An equal version costs one DescribeCluster call. An upgrade calls UpdateClusterVersion and, with
    O(wait=true), waits until the update (DescribeUpdate with its update id) is C(Successful), failing after
    O(wait_timeout) seconds. A version update already in progress (for example from a run that timed out) is
    waited for rather than started again.
  - Any other version fails, saying why - EKS cannot downgrade a cluster, cannot skip minor versions, and an
    upgrade needs O(allow_upgrade=true).
  - A cluster that does not exist is left alone (C(changed=false)); create it with M(community.aws.eks_cluster),
    which cannot change the version of an existing cluster.
  - The control plane only - node groups, add-ons and Karpenter's nodes are upgraded separately (RV(next_steps)).
  - With C(--diff), returns the Kubernetes version before and after.
  - moto (the sandbox's AWS emulator) has no UpdateClusterVersion/DescribeUpdate; the upgrade path is unit-tested
    with botocore's Stubber, the equal-version path also runs against moto.
"""

EXAMPLES = r"""
- name: Fail unless the cluster runs 1.34 (no write)
  karpenter_eks.platform.eks_cluster_version:
    name: platform-prod
    version: "1.34"

- name: Upgrade the control plane from 1.34 to 1.35 and wait up to an hour
  karpenter_eks.platform.eks_cluster_version:
    name: platform-prod
    version: "1.35"
    allow_upgrade: true
    wait_timeout: 3600
"""

RETURN = r"""
cluster:
  description: The cluster after the run (in check mode, as it is); empty when it does not exist.
  returned: always
  type: dict
  sample: {name: platform-prod, version: "1.35", platform_version: eks.3, status: ACTIVE,
           arn: "arn:aws:eks:us-east-1:123456789012:cluster/platform-prod",
           endpoint: "https://0123456789ABCDEF0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com",
           oidc_issuer: "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"}
eks_update:
  description: The EKS version update (snake_case DescribeUpdate fields); empty when nothing was (or would be) started.
  returned: always
  type: dict
  sample: {id: 0a1b2c3d-0000-4000-8000-000000000000, status: Successful, type: VersionUpdate,
           params: [{type: Version, value: "1.35"}, {type: PlatformVersion, value: eks.1}], errors: []}
next_steps:
  description: What to upgrade after the control plane (node groups, add-ons, Karpenter and its nodes' AMIs).
  returned: when changed
  type: str
msg:
  description: What was done.
  returned: always
  type: str
requests:
  description: Requests sent to EKS - their number, and the operations that write (empty on a no-op or in check mode).
  returned: always
  type: dict
  sample: {total: 1, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks_version import (
    ensure_cluster_version,
    validate_version,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module


def main():
    argument_spec = dict(
        name=dict(type="str", required=True, aliases=["cluster_name"]),
        version=dict(type="str", required=True),
        allow_upgrade=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
    )
    run_aws_module(
        argument_spec,
        "eks",
        ensure_cluster_version,
        validate=validate_version,
        prepare=lambda module, connect: {"warn": module.warn},
    )


if __name__ == "__main__":
    main()
