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
  - Creates, updates and deletes Karpenter v1 C(EC2NodeClass) objects (C(karpenter.k8s.aws/v1)), validated offline
    against the pinned Karpenter CRD before anything is written.
  - Also available as C(karpenter_eks.platform.karpenter_ec2nodeclass), the name that matches the kind it manages.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_karpenter
  - karpenter_eks.platform.karpenter
  - kubernetes.core.k8s_auth_options
notes:
  - The name C(node_template) is historical; the module manages v1 B(EC2NodeClasses). Legacy input - a
    C(karpenter.k8s.aws/v1alpha1) C(AWSNodeTemplate) or a C(karpenter.k8s.aws/v1beta1) C(EC2NodeClass), which
    Karpenter stopped serving in v0.33 and v1.1 - is converted to v1 (see RV(conversion_report)).
  - One LIST request per run; writes only for objects whose stored state would change.
  - With C(--diff), returns each changed EC2NodeClass before and after, exactly as a real run stores it.
  - When more than one object will be written, the apiserver first dry-runs each of them (server-side
    C(dryRun=All), counted as C(dry-run) in RV(requests)); an object it refuses - for example by an admission
    policy - fails the task with nothing of the batch written.
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

- name: The same module under the name of the kind it manages, removing an EC2NodeClass no NodePool uses
  karpenter_eks.platform.karpenter_ec2nodeclass:
    name: legacy
    state: absent
"""

RETURN = r"""
results:
  description:
    - One entry per EC2NodeClass. C(action) is V(create), V(update), V(unchanged) or V(delete); C(method) is
      V(server-side-apply), V(delete) or V(none); C(object) is the object as stored (after the write, or the live
      one); C(conditions) and C(ready) come from its status; C(removed_fields) lists fields this collection owned
      and no longer sets.
    - With O(wait), C(object), C(conditions) and C(ready) are the object as the wait last saw it.
    - When a write failed, C(error) is V(failed) for it and V(not attempted) for the writes not sent after it.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: EC2NodeClass
      name: default
      action: update
      changed: true
      method: server-side-apply
      ready: true
      conditions:
        - {type: Ready, status: "True", reason: Ready}
      object:
        apiVersion: karpenter.k8s.aws/v1
        kind: EC2NodeClass
        metadata: {name: default}
        spec:
          role: KarpenterNodeRole-prod
          amiSelectorTerms: [{alias: al2023@v20250505}]
          subnetSelectorTerms: [{tags: {karpenter.sh/discovery: prod}}]
          securityGroupSelectorTerms: [{tags: {karpenter.sh/discovery: prod}}]
written:
  description:
    - The objects (C(Kind/name)) whose write (server-side apply or delete) the apiserver accepted; none in check
      mode.
    - When a later write or the wait fails, the task fails with C(changed=true) and this list.
  returned: always
  type: list
  elements: str
  sample: [EC2NodeClass/general]
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
converted_other_kinds:
  description: Objects of other kinds produced by conversion (for example the NodePool converted from a legacy
    C(Provisioner) given here); apply them with M(karpenter_eks.platform.karpenter_provisioner).
  returned: always
  type: list
  elements: dict
timings:
  description:
    - Seconds spent in each step of the run (read, validate, plan, dry_run, write, wait); a step that did not happen is absent.
    - Module start-up and the connection are not included.
  returned: always
  type: dict
  sample: {read: 0.012, plan: 0.001, write: 0.034}
requests:
  description: Number of API requests by verb (list, get, patch, delete, watch), C(total) and C(writes).
  returned: always
  type: dict
  sample: {list: 1, patch: 1, total: 2, writes: 1}
errors:
  description: Validation problems (object, path, rule, message) when the input is invalid.
  returned: failure
  type: list
  elements: dict
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.glue.karpenter_main import build_module, run_apply


def main():
    module = build_module()
    run_apply(module, "EC2NodeClass")


if __name__ == "__main__":
    main()
