#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: node_template
short_description: Manage Karpenter v1 EC2NodeClasses (karpenter.k8s.aws/v1 EC2NodeClass)
version_added: 0.1.0
description:
  - Creates, updates and deletes C(karpenter.k8s.aws/v1) C(EC2NodeClass) objects in batches.
  - The name is historical; the module manages v1 B(EC2NodeClasses). Karpenter stopped serving
    C(karpenter.k8s.aws/v1alpha1 AWSNodeTemplate) in v0.33 and C(v1beta1 EC2NodeClass) in v1.1; both
    shapes are accepted as input and converted to v1 (see RV(conversion_report)).
  - One LIST request per run; writes only for objects whose stored state would change.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - karpenter_eks.platform.karpenter
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    description: Sends no write request; the plan and diff come from one LIST and an offline server-side-apply prediction.
    support: full
  diff_mode:
    description: Returns the stored object before and after, exactly as a real run leaves it.
    support: full
  idempotent:
    description: A second run with the same input sends no write request and reports no change.
    support: full
"""

EXAMPLES = r"""
- name: Default EC2NodeClass (AL2023, discovery by tag)
  karpenter_eks.platform.node_template:
    name: default
    spec:
      role: KarpenterNodeRole-prod
      amiSelectorTerms:
        - alias: al2023@v20250505
      subnetSelectorTerms:
        - tags: {karpenter.sh/discovery: prod}
      securityGroupSelectorTerms:
        - tags: {karpenter.sh/discovery: prod}
"""

RETURN = r"""
results:
  description:
    - One entry per object. C(action) is V(create), V(update), V(unchanged) or V(delete); C(method) is
      V(server-side-apply), V(delete) or V(none); C(object) is the object as stored (after the write,
      or the live one); C(conditions) and C(ready) come from its status; for NodePools C(usage) holds
      C(nodes), C(resources) in use and C(limits); C(removed_fields) lists fields this collection
      owned and no longer sets.
    - With O(wait), C(object), C(conditions), C(ready) and C(usage) are the object as the wait last saw it.
    - When a write failed, C(error) is V(failed) for it and V(not attempted) for the writes not sent after it.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: NodePool
      name: general
      action: update
      changed: true
      method: server-side-apply
      ready: true
      usage: {nodes: 3, resources: {cpu: "48"}, limits: {cpu: "1000"}}
written:
  description:
    - Names of the objects whose write (server-side apply or delete) the apiserver accepted; none in check mode.
    - When a later write or the wait fails, the task fails with C(changed=true) and this list.
  returned: always
  type: list
  elements: str
disrupted_nodeclaims:
  description: For deletes allowed with O(allow_disruption), the NodeClaims of each deleted object.
  returned: always
  type: dict
not_ready:
  description: With O(wait), the objects still not C(Ready) when O(wait_timeout) ran out (the task fails).
  returned: always
  type: list
  elements: str
not_deleted:
  description: With O(wait), the deleted objects still present (finalizers pending) when O(wait_timeout) ran out
    (the task fails).
  returned: always
  type: list
  elements: str
conversion_report:
  description: Fields of legacy input that could not be converted or were converted lossily.
  returned: always
  type: list
  elements: dict
requests:
  description: Number of API requests by verb (list, get, patch, delete, watch), total and writes.
  returned: always
  type: dict
errors:
  description: Validation problems (object, path, rule, message) when the input is invalid.
  returned: failure
  type: list
  elements: dict
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter_module import build_module, run_module


def main():
    module = build_module()
    run_module(module, "EC2NodeClass")


if __name__ == "__main__":
    main()
