# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  definitions:
    description:
      - List of manifests to manage (a list of mappings, or a list of lists as produced by
        C(lookup('template', ...) | from_yaml_all)).
      - Objects are validated offline against the pinned Karpenter CRD (OpenAPI schema, defaults and
        the CRD's own CEL rules) and linted before anything is written; if any object of the batch
        fails, nothing is applied and every problem is reported with its field path and rule.
      - Legacy shapes are accepted and converted to v1, with a C(conversion_report) of everything
        that could not be converted.
    type: list
    elements: raw
    default: []
  name:
    description:
      - Name of a single object, used with O(spec) instead of O(definitions).
    type: str
  spec:
    description:
      - The C(spec) of a single object named O(name).
    type: dict
  labels:
    description:
      - Labels of the single object named O(name).
    type: dict
  state:
    description:
      - V(present) creates or updates (server-side apply, field manager C(karpenter-eks-platform)),
        V(absent) deletes.
    type: str
    choices: [present, absent]
    default: present
  prune:
    description:
      - Also delete objects of this kind labelled C(app.kubernetes.io/managed-by=karpenter_eks.platform)
        that are not in O(definitions).
      - An object already being deleted (its finalizers pending) is not deleted again; it counts as unchanged and,
        with O(wait=true), is waited for, as with O(state=absent).
    type: bool
    default: false
  allow_disruption:
    description:
      - Deleting a NodePool (O(state=absent) or O(prune)) drains and terminates every node it owns, and
        deleting an EC2NodeClass does the same to the nodes launched from it. Unless this is V(true),
        such a delete is refused (also in check mode) and the message lists the NodeClaims affected.
    type: bool
    default: false
  strict:
    description:
      - Treat lint warnings as errors.
    type: bool
    default: false
  server_dry_run:
    description:
      - When more than one object will be written, send each through a server-side dry-run first, so that an
        object the cluster refuses (an admission policy or webhook, a rule the offline checks do not model) fails
        the task with nothing of the batch written. Costs one request per written object.
      - Set to V(false) to skip it; a refusal then stops the batch after the objects written before it.
    type: bool
    default: true
  wait:
    description:
      - Wait until every managed object reports condition C(Ready=True) for its current generation
        (one watch request; no polling).
      - Objects deleted by this task (O(state=absent) or O(prune)) are waited for until they are gone, which
        takes as long as their finalizers (Karpenter drains and terminates the nodes of a deleted NodePool first).
      - A watch that breaks (apiserver restart, connection reset) is watched again from where it stopped, or
        after a fresh list when that version expired, until O(wait_timeout).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait with O(wait).
      - At least V(1); a smaller value fails the task before the cluster is read.
    type: int
    default: 120
  request_timeout:
    description:
      - Seconds before a single API request times out (transient errors and HTTP 429/5xx are retried
        with jittered exponential backoff, honouring C(Retry-After)).
    type: int
    default: 30
  conversion:
    description:
      - Options for converting legacy input (C(karpenter.sh/v1alpha5) Provisioner, C(karpenter.k8s.aws/v1alpha1)
        AWSNodeTemplate, C(v1beta1) shapes) to v1; ignored for v1 input. The conversion report is returned in
        RV(conversion_report).
    type: dict
    default: {}
    suboptions:
      node_role:
        description:
          - IAM role name for converted EC2NodeClasses (C(spec.role)); used instead of an C(instanceProfile), or when
            the legacy template has none (v1alpha5 took it from the global C(defaultInstanceProfile) setting).
        type: str
      instance_profile:
        description: Instance profile for converted EC2NodeClasses whose legacy template has none.
        type: str
      ami_version:
        description:
          - Version of the C(amiSelectorTerms) alias written for a legacy C(amiFamily), for example V(v20250505).
            V(latest) is reported as a warning (nodes drift on every AMI release).
        type: str
        default: latest
      ignore_alpha_defaults:
        description:
          - Do not write out the defaults v1alpha5 applied implicitly (C(kubernetes.io/os), C(kubernetes.io/arch),
            IMDS settings), like C(karpenter-convert --ignore-defaults). The report says which behaviour changes.
        type: bool
        default: false
      kubernetes_version:
        description: The cluster's Kubernetes version (V(1.33)); AL2 on 1.33 or later is then an error.
        type: str
notes:
  - Check mode sends no write request (not even a dry-run); the plan comes from one LIST per kind and
    an offline prediction of server-side apply, so C(--check --diff) shows exactly what a real run
    changes.
  - A second run with the same input sends no write request and reports C(changed=false).
requirements:
  - kubernetes >= 24.2.0
  - cel-python >= 0.5.0
"""
