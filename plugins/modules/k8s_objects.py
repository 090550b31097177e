#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_objects
short_description: Apply or delete a batch of plain Kubernetes objects, writing only those that differ
version_added: 0.1.0
description:
  - Applies (server-side apply) or deletes a batch of plain Kubernetes objects of any kind - Namespaces, ConfigMaps,
    NetworkPolicies, Kyverno policies, Prometheus Operator objects, ... - in one task, writing only those that differ.
  - Every definition is checked before anything is written; problems are reported together, naming object and field.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_karpenter
  - kubernetes.core.k8s_auth_options
options:
  definitions:
    description:
      - The objects (manifests). A list of mappings; nested lists, as produced by
        C(lookup('template', ...) | from_yaml_all), are flattened and null entries skipped.
      - Each needs C(apiVersion), C(kind) and C(metadata.name); namespaced kinds a C(metadata.namespace) or
        O(namespace).
      - For a v1 Secret, C(stringData) is applied as C(data) (base64), as the API server stores it.
    type: list
    elements: raw
    required: true
  state:
    description:
      - V(present) creates or updates the objects that differ (server-side apply); V(absent) deletes those that
        exist (only C(apiVersion), C(kind) and C(metadata) of each definition are used).
      - With V(absent), a kind the cluster does not serve counts as absent; with V(present) it is an error.
    type: str
    choices: [present, absent]
    default: present
  namespace:
    description: Namespace of namespaced objects whose definition has no C(metadata.namespace).
    type: str
  field_manager:
    description: Server-side apply field manager.
    type: str
    default: karpenter-eks-platform
  request_timeout:
    description:
      - Seconds before a single API request times out (transient errors and HTTP 429/5xx are retried with
        jittered exponential backoff, honouring C(Retry-After)).
    type: int
    default: 30
notes:
  - Reads with one LIST request per kind and namespace (filtered by name when only one object of that group is
    wanted), decides per object whether it differs, and writes only those. A converged run sends no write request.
  - An object is up to date when the live object contains every desired field (maps key by key; lists item by item
    with the same length, so fields the API server adds or defaults, also inside list items, do not count) and
    carries the fingerprint of the definition last applied (annotation C(karpenter-eks.platform/applied-sha256)),
    so that a field removed from the definition is noticed too; server-side apply then removes it unless another
    field manager also owns it.
  - "Kinds: a built-in table covers common core, apps, networking, policy, RBAC, Kyverno and Prometheus Operator
    kinds without a request; any other kind is looked up with one discovery request per C(apiVersion)."
  - The checks before any write cover C(apiVersion), C(kind), C(metadata.name), the namespace of namespaced kinds,
    kinds the cluster serves, and duplicates.
  - Writes go in the order of O(definitions) (put a Namespace before the objects in it). If one fails, the task
    fails naming it; the objects before it were written.
  - Check mode sends no write request, not even a dry-run; the plan comes from the reads.
  - With C(--diff), returns each changed object before and after. After a real run, C(after) is the object as
    stored; in check mode it is predicted offline (server-side apply with the fields this field manager owns),
    which is exact for updates of existing fields; server defaults of new objects or new list items are not
    predicted. Values of Secret C(data) are replaced by C(<redacted>) and a short SHA-256.
  - Objects first written by another tool (for example C(kubernetes.core.k8s) with C(apply=true)) are taken over on
    the first run (one write that adds the fingerprint). Fields that tool set stay co-owned by its field manager,
    so removing one of them from the definition later leaves it in place (server-side apply semantics).
  - Deletes do not wait for finalizers.
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Namespace with Pod Security labels and a NetworkPolicy in it
  karpenter_eks.platform.k8s_objects:
    definitions:
      - apiVersion: v1
        kind: Namespace
        metadata:
          name: team-a
          labels:
            pod-security.kubernetes.io/enforce: restricted
      - "{{ lookup('ansible.builtin.template', 'networkpolicy.yml.j2') | from_yaml }}"

- name: Objects of a multi-document file
  karpenter_eks.platform.k8s_objects:
    definitions: "{{ lookup('ansible.builtin.file', 'policies.yaml') | from_yaml_all }}"
  register: applied

- name: Remove a NetworkPolicy
  karpenter_eks.platform.k8s_objects:
    state: absent
    definitions:
      - apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: karpenter-controller, namespace: karpenter}
"""

RETURN = r"""
results:
  description:
    - One entry per object, in the order of O(definitions). C(action) is V(unchanged), V(create), V(update) or
      V(delete) (in check mode, what a real run would do), as in the Karpenter modules; C(method) is
      V(server-side-apply), V(delete) or V(none). For V(update), C(differences) lists the desired
      field paths the live object lacks or holds with another value (the fingerprint annotation when only the
      definition changed, for example a field was removed).
  returned: always
  type: list
  elements: dict
  sample:
    - api_version: v1
      kind: Namespace
      namespace: null
      name: karpenter
      action: update
      changed: true
      method: server-side-apply
      differences: ['metadata.labels["pod-security.kubernetes.io/enforce"]']
written:
  description:
    - The objects (C(Kind/name) or C(Kind/namespace/name)) whose write the apiserver accepted; none in check mode.
    - When a write fails, the task fails with this list and C(changed=true) if it is not empty.
  returned: always
  type: list
  elements: str
  sample: [Namespace/karpenter]
diff:
  description: With C(--diff), C(before), C(after), C(before_header) and C(after_header) of each changed object.
  returned: with diff mode
  type: list
  elements: dict
timings:
  description:
    - Seconds spent in each step of the run (read, plan, write); a step that did not happen is absent.
    - Module start-up and the connection are not included.
  returned: always
  type: dict
  sample: {read: 0.012, plan: 0.001, write: 0.034}
requests:
  description: Number of API requests by verb (get, list, patch, delete), C(total) and C(writes).
  returned: always
  type: dict
  sample: {list: 3, total: 3, writes: 0}
errors:
  description: With invalid definitions, one entry per problem with C(index), C(object), C(field) and C(message).
  returned: failure
  type: list
  elements: dict
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.glue.objects_main import run_objects


def main():
    run_objects()


if __name__ == "__main__":
    main()
