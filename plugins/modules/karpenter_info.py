#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: karpenter_info
short_description: Read Karpenter v1 NodePools, EC2NodeClasses and NodeClaims with a usage summary
version_added: 0.1.0
description:
  - Lists C(karpenter.sh/v1) NodePools, C(karpenter.k8s.aws/v1) EC2NodeClasses and C(karpenter.sh/v1)
    NodeClaims with one LIST request per kind, and summarises per NodePool its readiness, nodes,
    resources in use versus limits, and per EC2NodeClass its readiness.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
  idempotent:
    description: Read-only.
    support: full
options:
  kinds:
    description: Which kinds to read.
    type: list
    elements: str
    choices: [NodePool, EC2NodeClass, NodeClaim]
    default: [NodePool, EC2NodeClass, NodeClaim]
  names:
    description: Only these names (of every kind read); all when empty.
    type: list
    elements: str
    default: []
  request_timeout:
    description: Seconds before a single API request times out.
    type: int
    default: 30
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: What does Karpenter run right now?
  karpenter_eks.platform.karpenter_info:
  register: karpenter

- name: Pools that are not Ready
  ansible.builtin.debug:
    msg: "{{ karpenter.nodepools | rejectattr('ready') | map(attribute='name') }}"
"""

RETURN = r"""
nodepools:
  description: One entry per NodePool with C(name), C(ready), C(conditions), C(nodes), C(nodeclaims),
    C(resources), C(limits), C(node_class_ref) and the C(object).
  returned: when NodePool is in O(kinds)
  type: list
  elements: dict
ec2nodeclasses:
  description: One entry per EC2NodeClass with C(name), C(ready), C(conditions), C(nodeclaims) and the C(object).
  returned: when EC2NodeClass is in O(kinds)
  type: list
  elements: dict
nodeclaims:
  description: One entry per NodeClaim with C(name), C(nodepool), C(instance_type), C(capacity_type), C(zone),
    C(node), C(ready).
  returned: when NodeClaim is in O(kinds)
  type: list
  elements: dict
requests:
  description: Number of API requests by verb.
  returned: always
  type: dict
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter_module import run_info_module


def main():
    run_info_module()


if __name__ == "__main__":
    main()
