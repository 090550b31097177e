#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: karpenter_backup
short_description: Back up, verify, list and restore the Karpenter configuration of a cluster
version_added: 0.1.0
description:
  - Backs up the Karpenter configuration of a cluster to a checksummed archive on disk or in S3, and verifies,
    lists and restores such archives.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_karpenter
  - kubernetes.core.k8s_auth_options
  - karpenter_eks.platform.aws_credentials
attributes:
  check_mode:
    details:
      - Sends no write request to Kubernetes (not even a dry-run) and writes nothing locally or to S3; a backup
        reads the cluster and reports what it would write, a restore reports the plan and diff, retention reports
        what it would delete.
  diff_mode:
    details: Only a restore (O(state=restored)) returns a diff - each changed object before and after.
    support: partial
  idempotent:
    details:
      - A second restore of the same archive sends no write request and reports no change.
      - Every O(state=present) run creates a new archive and reports a change.
    support: partial
options:
  state:
    description:
      - V(present) takes a backup; V(restored) restores one; V(verified) checks an archive's integrity
        without touching the cluster; V(listed) lists archives.
    type: str
    choices: [present, restored, verified, listed]
    default: present
  cluster_name:
    description:
      - Name of the cluster; part of the archive name and recorded in the manifest.
      - On restore, the target cluster. Restoring an archive of another cluster requires O(rewrite).
    type: str
  dest:
    description:
      - Local directory for archives (created when missing). Used for backups, retention, and to find
        archives to restore, verify or list.
      - A backup checks that it can write there before it reads the cluster.
    type: path
  archive:
    description:
      - Archive to restore or verify - a local path (relative paths are looked up in O(dest)), an
        C(s3://bucket/key) URI in O(s3_bucket), or V(latest), the newest archive of O(source_cluster_name)
        in O(dest) and O(s3_bucket).
    type: str
    default: latest
  source_cluster_name:
    description:
      - Cluster whose archives V(latest) and V(listed) look at. Defaults to O(cluster_name).
    type: str
  s3_bucket:
    description:
      - S3 bucket for archives (in addition to, or instead of, O(dest)). Versioning is expected, see
        O(require_versioning).
    type: str
  s3_prefix:
    description: Key prefix of the archives in O(s3_bucket).
    type: str
    default: karpenter-backups/
  kms_key_id:
    description:
      - KMS key (id, ARN or alias) for SSE-KMS. A backup checks that the key exists and is enabled before
        reading the cluster, uploads with it and checks the stored object's encryption. A restore refuses
        an archive not encrypted with this key.
    type: str
  require_versioning:
    description: Fail, instead of warning, when O(s3_bucket) does not have versioning enabled.
    type: bool
    default: false
  keep_last:
    description:
      - Retention, applied after a successful backup in O(dest) and O(s3_bucket) to archives of
        O(cluster_name) this module made (name pattern, plus the manifest locally or the object's
        metadata in S3); keep this many newest archives.
      - With O(max_age_days) too, an archive is deleted only when it is both beyond O(keep_last) and
        older than O(max_age_days).
      - At least V(1); V(0) or less is refused before anything is read (it would delete every older archive).
    type: int
  max_age_days:
    description:
      - Retention - delete archives older than this many days (see O(keep_last)).
      - At least V(1); V(0) or less is refused before anything is read (it would delete every older archive).
    type: int
  namespace:
    description:
      - Namespace of the Karpenter controller (ConfigMaps, Helm release).
      - A valid namespace name (a DNS-1123 label), else the task fails before anything is read.
    type: str
    default: karpenter
  helm_release:
    description: Name of Karpenter's Helm release (a valid Helm release name, at most 53 characters).
    type: str
    default: karpenter
  label_selector:
    description:
      - Back up only the NodePools, node classes, NodeOverlays and ConfigMaps with these labels
        (Kubernetes label selector syntax). The inventory is never filtered.
    type: str
  include_configmaps:
    description: Back up the ConfigMaps of O(namespace) (except C(kube-root-ca.crt)).
    type: bool
    default: true
  include_helm:
    description: Back up the chart, revision and user values of O(helm_release) (reads its release Secret).
    type: bool
    default: true
  include_inventory:
    description: Add the NodeClaim and Node inventory (forensics only, never restored).
    type: bool
    default: true
  secret_policy:
    description:
      - V(redact) replaces credential-looking values and lists them in the manifest; an object with a
        redacted value cannot be restored until it is excluded (O(exclude)) and restored by hand.
      - V(fail) fails the backup and writes nothing when any is found.
    type: str
    choices: [redact, fail]
    default: redact
  conflict:
    description:
      - On restore, what to do with objects that exist and differ from the archive - V(skip) leaves them
        (listed in RV(conflicts)), V(overwrite) applies the archived version.
    type: str
    choices: [skip, overwrite]
    default: skip
  kinds:
    description:
      - Kinds to restore. Default - every restorable kind in the archive, ConfigMaps only with
        O(restore_configmaps).
    type: list
    elements: str
    choices: [ConfigMap, EC2NodeClass, KWOKNodeClass, NodePool, NodeOverlay]
  restore_configmaps:
    description: Also restore the archived ConfigMaps (they are often owned by the Helm release).
    type: bool
    default: false
  exclude:
    description: Objects not to restore, as C(Kind/name) with a kind of O(kinds).
    type: list
    elements: str
  rewrite:
    description:
      - Restore into a different cluster - exact values to replace in EC2NodeClass C(spec.role),
        C(spec.instanceProfile), the C(tags) of the subnet, security group, AMI and capacity reservation
        selector terms, and C(spec.tags) (values and keys). Nothing else is rewritten; every replacement is
        reported in RV(rewrites).
      - Required (possibly V({})) when the archive's cluster differs from O(cluster_name).
    type: dict
  request_timeout:
    description:
      - Seconds before a single Kubernetes API request times out (429/5xx are retried with backoff).
      - At least V(1).
    type: int
    default: 30
notes:
  - O(state=present) backs up NodePools, EC2NodeClasses, NodeOverlays and KWOKNodeClasses (when their CRDs are
    installed), the ConfigMaps of the Karpenter namespace, the Karpenter Helm release's chart and user values
    (credentials redacted), the Karpenter CRDs' versions, and a NodeClaim/Node inventory for forensics (never
    restored).
  - Objects are stored as clean manifests (no status, managedFields, uid, resourceVersion, timestamps or
    controller annotations) in apply order, in a C(.tar.gz) archive whose C(manifest.json) records the cluster
    name, the Kubernetes and Karpenter versions, the time, object counts and a SHA-256 per file. The archive is
    written under a temporary name and renamed, so an interrupted backup never leaves a file that looks complete.
  - Secret objects are never backed up; values that look like credentials (AWS access key ids, private keys,
    tokens, C(password=...) in user data, Helm values under secret-like keys) are redacted or fail the backup, see
    O(secret_policy).
  - O(state=restored) verifies every checksum and the format version, validates the whole set offline (pinned
    Karpenter CRD schema, defaults and CEL rules, runtime rules and lint for NodePool and EC2NodeClass; structure
    for the other kinds) and only then applies it, EC2NodeClasses before NodePools, through the same
    server-side-apply core as M(karpenter_eks.platform.karpenter_provisioner) and
    M(karpenter_eks.platform.node_template). Restored objects carry the label
    C(app.kubernetes.io/managed-by=karpenter_eks.platform).
  - O(state=verified) only verifies an archive; O(state=listed) lists the archives of a cluster.
  - S3 and KMS calls are retried like the AWS modules' calls (amazon.aws's jittered exponential backoff) on
    throttling, transient errors and connection errors, 10 attempts; Kubernetes calls retry HTTP 429/5xx honouring
    C(Retry-After).
  - A backup lists each kind with pagination (500 per page); the inventory is streamed to disk page by page.
  - NodeOverlay, KWOKNodeClass and ConfigMap have no pinned schema; before the first real write of a
    restore the apiserver validates them with a server-side dry-run (not in check mode).
requirements:
  - kubernetes >= 24.2.0
  - cel-python >= 0.5.0
  - boto3 >= 1.34.0 (for S3)
"""

EXAMPLES = r"""
- name: Nightly backup to S3 with SSE-KMS, keep 30
  karpenter_eks.platform.karpenter_backup:
    cluster_name: prod
    s3_bucket: acme-karpenter-backups
    kms_key_id: alias/karpenter-backups
    keep_last: 30

- name: What would a restore of the latest backup change
  karpenter_eks.platform.karpenter_backup:
    state: restored
    cluster_name: prod
    s3_bucket: acme-karpenter-backups
    kms_key_id: alias/karpenter-backups
  check_mode: true
  diff: true

- name: Restore prod's configuration into the DR cluster
  karpenter_eks.platform.karpenter_backup:
    state: restored
    cluster_name: dr
    source_cluster_name: prod
    dest: /var/backups/karpenter
    conflict: overwrite
    rewrite:
      KarpenterNodeRole-prod: KarpenterNodeRole-dr
      prod: dr
"""

RETURN = r"""
archive:
  description: The archive written (name, path, s3, sha256, size) or read (summary of its manifest, source).
  returned: success
  type: dict
manifest:
  description: The manifest of the backup (versions, counts, redactions), without the file list.
  returned: state=present
  type: dict
files:
  description: Files of the archive with kind, object count, sha256 and size.
  returned: state=present
  type: list
  elements: dict
retention:
  description: Retention settings and the archives deleted (or that would be, in check mode).
  returned: state=present
  type: dict
results:
  description: One entry per restored object with its action (create, update, unchanged).
  returned: state=restored
  type: list
  elements: dict
written:
  description:
    - The objects restored by a write (C(Kind/name)). Also returned when the restore failed after some writes
      (the apiserver went away, a later write failed), with C(changed=true) and exactly what was written before the
      failure.
  returned: state=restored
  type: list
  elements: str
conflicts:
  description: Objects not restored because they exist and differ (O(conflict=skip)).
  returned: state=restored
  type: list
  elements: dict
rewrites:
  description: Every value replaced by O(rewrite) (object, path, from, to).
  returned: state=restored
  type: list
  elements: dict
backups:
  description: Archives found (name, location, cluster_name, created, size), newest first.
  returned: state=listed
  type: list
  elements: dict
requests:
  description: Number of Kubernetes API requests by verb, total and writes.
  returned: when the cluster was contacted
  type: dict
errors:
  description: The problems found (checksums, validation, dry-run rejections) when nothing was restored.
  returned: failure
  type: list
  elements: raw
"""

import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws import credentials
from ansible_collections.karpenter_eks.platform.plugins.module_utils.glue.kube_module import KubeModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

try:
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import core as bk
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import run as backup_run

    IMPORT_ERROR = None
except ImportError:
    bk = backup_run = None
    IMPORT_ERROR = traceback.format_exc()


def load_backup_s3():
    """The S3 store, imported only when a bucket is given (importing boto3 costs ~0.1 s)."""
    try:
        from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import s3 as backup_s3
    except ImportError:
        return None
    return backup_s3


def argument_spec():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(
        state=dict(type="str", choices=["present", "restored", "verified", "listed"], default="present"),
        cluster_name=dict(type="str"),
        dest=dict(type="path"),
        archive=dict(type="str", default="latest"),
        source_cluster_name=dict(type="str"),
        s3_bucket=dict(type="str"),
        s3_prefix=dict(type="str", default="karpenter-backups/"),
        kms_key_id=dict(type="str"),
        require_versioning=dict(type="bool", default=False),
        keep_last=dict(type="int"),
        max_age_days=dict(type="int"),
        namespace=dict(type="str", default="karpenter"),
        helm_release=dict(type="str", default="karpenter"),
        label_selector=dict(type="str"),
        include_configmaps=dict(type="bool", default=True),
        include_helm=dict(type="bool", default=True),
        include_inventory=dict(type="bool", default=True),
        secret_policy=dict(type="str", choices=["redact", "fail"], default="redact"),
        conflict=dict(type="str", choices=["skip", "overwrite"], default="skip"),
        kinds=dict(
            type="list",
            elements="str",
            choices=["ConfigMap", "EC2NodeClass", "KWOKNodeClass", "NodePool", "NodeOverlay"],
        ),
        restore_configmaps=dict(type="bool", default=False),
        exclude=dict(type="list", elements="str"),
        rewrite=dict(type="dict"),
        request_timeout=dict(type="int", default=30),
    )
    spec.update(credentials.credentials_spec())
    return spec


def main():
    module = KubeModule(  # masks the secrets of a kubeconfig given as a mapping
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[("state", "present", ("cluster_name",)), ("state", "restored", ("cluster_name",))],
    )
    p = module.params
    if IMPORT_ERROR:
        module.fail_json(msg="cannot import the backup core", exception=IMPORT_ERROR)
    try:  # before anything is read or written, before connecting (request_timeout is the client's)
        backup_run.check_params(p)
    except bk.BackupError as exc:
        module.fail_from(exc)
    store = None
    if p["s3_bucket"]:
        backup_s3 = load_backup_s3()
        if backup_s3 is None or not backup_s3.HAS_BOTO3:
            module.fail_json(msg=missing_required_lib("boto3"))
        store = backup_s3.S3Store(
            p["s3_bucket"],
            prefix=p["s3_prefix"],
            kms_key_id=p["kms_key_id"],
            **credentials.credential_params(p),
        )
    elif not p["dest"]:
        module.fail_json(msg="one of dest or s3_bucket is required")

    api = module.connect() if p["state"] in ("present", "restored") else None

    def act():
        if p["state"] == "present":
            return backup_run.do_backup(api, store, p, check_mode=module.check_mode)
        if p["state"] == "restored":
            return backup_run.do_restore(api, store, p, check_mode=module.check_mode)
        if p["state"] == "verified":
            return backup_run.do_verify(store, p)
        return backup_run.do_list(store, p)

    module.exit_json(**module.run(act))


if __name__ == "__main__":
    main()
