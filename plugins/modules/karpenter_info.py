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
  - Reads Karpenter v1 NodePools, EC2NodeClasses and NodeClaims and summarises their readiness, and per NodePool its
    nodes and the resources in use against its limits.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - karpenter_eks.platform.attributes.info_module
  - karpenter_eks.platform.attributes.action_group_karpenter
  - kubernetes.core.k8s_auth_options
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
notes:
  - One LIST request per kind read.
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
  description: One entry per NodeClaim with C(name), C(nodepool), C(nodeclass), C(instance_type), C(capacity_type),
    C(zone), C(node), C(ready) and C(capacity).
  returned: when NodeClaim is in O(kinds)
  type: list
  elements: dict
requests:
  description: Number of API requests by verb.
  returned: always
  type: dict
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.glue.info_main import run_info


def main():
    run_info()


if __name__ == "__main__":
    main()
