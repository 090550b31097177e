#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: karpenter_provisioner
short_description: Manage Karpenter v1 NodePools (karpenter.sh/v1 NodePool)
version_added: 0.1.0
description:
  - Creates, updates and deletes Karpenter v1 C(NodePool) objects (C(karpenter.sh/v1)), validated offline against the
    pinned Karpenter CRD before anything is written.
  - Also available as C(karpenter_eks.platform.karpenter_nodepool), the name that matches the kind it manages.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_karpenter
  - karpenter_eks.platform.karpenter
  - kubernetes.core.k8s_auth_options
options:
  node_class_ref:
    description:
      - Overrides C(spec.template.spec.nodeClassRef) on every NodePool, for example
        C(group=karpenter.k8s.aws kind=EC2NodeClass name=default) to put every pool on one node class.
    type: dict
    suboptions:
      group:
        description: API group of the node class (no version, no slash).
        type: str
        required: true
      kind:
        description: Kind of the node class.
        type: str
        required: true
      name:
        description: Name of the node class.
        type: str
        required: true
notes:
  - The name C(karpenter_provisioner) is historical; the module manages v1 B(NodePools). Legacy input - a
    C(karpenter.sh/v1alpha5) C(Provisioner) or a C(karpenter.sh/v1beta1) C(NodePool), which Karpenter stopped
    serving in v0.33 and v1.1 - is converted to v1 (see RV(conversion_report)).
  - One LIST request per run; writes only for objects whose stored state would change.
  - With C(--diff), returns each changed NodePool before and after, exactly as a real run stores it.
  - When more than one object will be written, the apiserver first dry-runs each of them (server-side
    C(dryRun=All), counted as C(dry-run) in RV(requests)); an object it refuses - for example by an admission
    policy - fails the task with nothing of the batch written.
"""

EXAMPLES = r"""
- name: General-purpose and GPU NodePools
  karpenter_eks.platform.karpenter_provisioner:
    definitions:
      - apiVersion: karpenter.sh/v1
        kind: NodePool
        metadata:
          name: general
        spec:
          template:
            spec:
              nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
              requirements:
                - {key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m, r]}
                - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
          disruption:
            consolidationPolicy: WhenEmptyOrUnderutilized
            consolidateAfter: 1m
          limits:
            cpu: "1000"
    wait: true

- name: Convert and apply an old v1alpha5 Provisioner
  karpenter_eks.platform.karpenter_provisioner:
    definitions: "{{ lookup('file', 'provisioner.yaml') | from_yaml_all }}"
  register: converted

- name: Remove a NodePool
  karpenter_eks.platform.karpenter_provisioner:
    name: gpu
    state: absent

- name: The same module under the name of the kind it manages
  karpenter_eks.platform.karpenter_nodepool:
    name: batch
    spec:
      template:
        spec:
          nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
          requirements:
            - {key: karpenter.sh/capacity-type, operator: In, values: [spot]}
"""

RETURN = r"""
results:
  description:
    - One entry per NodePool. C(action) is V(create), V(update), V(unchanged) or V(delete); C(method) is
      V(server-side-apply), V(delete) or V(none); C(object) is the object as stored (after the write,
      or the live one); C(conditions) and C(ready) come from its status; C(usage) holds C(nodes),
      C(resources) in use and C(limits); C(removed_fields) lists fields this collection
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
      conditions:
        - {type: Ready, status: "True", reason: Ready}
      usage: {nodes: 3, resources: {cpu: "48"}, limits: {cpu: "1000"}}
written:
  description:
    - The objects (C(Kind/name)) whose write (server-side apply or delete) the apiserver accepted; none in check
      mode.
    - When a later write or the wait fails, the task fails with C(changed=true) and this list.
  returned: always
  type: list
  elements: str
  sample: [NodePool/general]
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
  description: Objects of other kinds produced by conversion (for example an EC2NodeClass from a
    Provisioner's inline C(spec.provider)); apply them with M(karpenter_eks.platform.node_template).
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
  description:
    - Number of API requests by verb (list, get, patch, delete, watch), C(total) and C(writes).
    - Besides the NodePools, the node classes the NodePools reference are listed (one LIST per node class kind).
  returned: always
  type: dict
  sample: {list: 2, patch: 1, total: 3, writes: 1}
errors:
  description: Validation problems (object, path, rule, message) when the input is invalid.
  returned: failure
  type: list
  elements: dict
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.glue.karpenter_main import build_module, run_apply


def main():
    node_class_ref = dict(
        type="dict",
        options=dict(
            group=dict(type="str", required=True),
            kind=dict(type="str", required=True),
            name=dict(type="str", required=True),
        ),
    )
    module = build_module(node_class_ref=node_class_ref)
    run_apply(module, "NodePool", node_class_ref=module.params["node_class_ref"])


if __name__ == "__main__":
    main()
