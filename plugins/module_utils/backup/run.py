# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The four operations of karpenter_backup (present, restored, verified, listed) over the local and S3 stores.

Plain Python: ``api`` is a kube.client.KubeApi (or None when not needed), ``store`` an s3.S3Store
(or None), ``p`` the module's parameters as a dict.
"""

from __future__ import annotations

import os
import re

from .. import param_checks as pc
from .. import progress
from . import core as bk

STATES = ("present", "restored", "verified", "listed")
SECRET_POLICIES = ("redact", "fail")
CONFLICTS = ("skip", "overwrite")
# Helm's own rule for release names (pkg/chartutil ValidateReleaseName)
HELM_RELEASE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
HELM_RELEASE_MAX = 53
# keep_last 0 would delete every archive but the one just written, max_age_days 0 every archive older
# than now (and a negative value the same): a rendered 0 or -1 must not empty the backup store
RETENTION_MIN = {
    "keep_last": (1, "the number of newest archives kept (0 would delete every older archive)"),
    "max_age_days": (1, "archives older than this many days are deleted (0 or less would delete every older archive)"),
}


def restorable_kinds():
    """The kinds an archive can restore, in apply order."""
    return tuple(s.kind.kind for s in bk.sections("karpenter"))


def _retention_problems(p):
    return [pc.at_least(k, p.get(k), minimum, meaning) for k, (minimum, meaning) in RETENTION_MIN.items()]


S3_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_params(p):
    """Refuse bad parameters before anything is read or written: raises BackupError naming each one.

    The module calls it before it connects to the cluster (request_timeout is the client's); the four
    operations call it too. Parameters missing from ``p`` are not checked (library callers)."""
    problems = _retention_problems(p)
    if "state" in p:
        problems.append(pc.one_of("state", p["state"], STATES))
    if "request_timeout" in p:
        problems.append(pc.positive_seconds("request_timeout", p.get("request_timeout")))
    if "namespace" in p:
        problems.append(pc.dns1123_label("namespace", p["namespace"]))
    bucket = p.get("s3_bucket")
    if bucket is not None and not (isinstance(bucket, str) and S3_BUCKET_RE.match(bucket)):
        problems.append(
            "s3_bucket %s is not a valid S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens)"
            % pc.show(bucket)
        )
    release = p.get("helm_release")
    if "helm_release" in p and not (
        isinstance(release, str) and len(release) <= HELM_RELEASE_MAX and HELM_RELEASE_RE.match(release)
    ):
        problems.append(
            "helm_release %s is not a valid Helm release name (at most %d lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit)" % (pc.show(release), HELM_RELEASE_MAX)
        )
    if "secret_policy" in p:
        problems.append(pc.one_of("secret_policy", p["secret_policy"], SECRET_POLICIES))
    if "conflict" in p:
        problems.append(pc.one_of("conflict", p["conflict"], CONFLICTS))
    for name in ("cluster_name", "source_cluster_name"):
        value = p.get(name)
        if value is not None and not (isinstance(value, str) and bk.CLUSTER_NAME_RE.match(value)):
            problems.append(
                "%s %s is not a valid EKS cluster name (1-100 letters, digits, '-' and '_', starting with a letter "
                "or digit)" % (name, pc.show(value))
            )
    kinds = restorable_kinds()
    if p.get("kinds") is not None:
        if not isinstance(p["kinds"], (list, tuple)):
            problems.append("kinds must be a list of kinds, got %s" % pc.show(p["kinds"]))
        else:
            problems.extend(
                "kinds: unknown kind %s; the restorable kinds are %s" % (pc.show(k), ", ".join(kinds))
                for k in p["kinds"]
                if k not in kinds
            )
    if p.get("exclude") is not None:
        entries = p["exclude"] if isinstance(p["exclude"], (list, tuple)) else [p["exclude"]]
        for entry in entries:
            kind, sep, name = entry.partition("/") if isinstance(entry, str) else ("", "", "")
            if not (sep and name and kind in kinds):
                problems.append(
                    "exclude: %s is not Kind/name with a restorable kind (%s)" % (pc.show(entry), ", ".join(kinds))
                )
    problems = [x for x in problems if x]
    if len(problems) == 1:
        raise bk.BackupError(problems[0], details=problems)
    if problems:
        raise bk.BackupError("%d invalid parameters:\n  %s" % (len(problems), "\n  ".join(problems)), details=problems)


def _iso(a):
    return dict(a, created=a["created"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z")


def do_backup(api, store, p, check_mode=False, now=None):
    check_params(p)
    if not bk.CLUSTER_NAME_RE.match(p["cluster_name"] or ""):
        raise bk.BackupError("cluster_name %s is not a valid EKS cluster name" % pc.show(p["cluster_name"]))
    if not p.get("dest") and store is None:
        raise bk.BackupError("a destination is required: dest (local directory) and/or s3_bucket")
    if p.get("dest"):  # fail before reading the cluster: not a directory, not writable
        bk.check_dest(p["dest"], probe=not check_mode)
    now = now or bk.utcnow()
    warnings = []
    if store is not None:  # fail before reading the cluster: missing bucket, access denied, bad KMS key
        versioning = store.check_bucket()
        if versioning != "Enabled":
            msg = "bucket %s has versioning %s; enable it so that a deleted or overwritten archive can be recovered" % (
                store.bucket,
                versioning,
            )
            if p.get("require_versioning"):
                raise bk.BackupError(msg)
            warnings.append(msg)
        unused, warn = store.check_kms_key()
        if warn:
            warnings.append(warn)
    # leftovers of killed runs (see backup.remove_stale): removed before this run stages anything, and told
    for left in bk.remove_stale(p.get("dest"), check_mode=check_mode):
        warnings.append(
            "%s leftover of an interrupted backup %s: %s"
            % ("would remove" if check_mode else "removed", left["path"], left["reason"])
        )
    staging = bk.stage_dir()
    try:
        manifest = bk.collect(
            api,
            staging,
            p["cluster_name"],
            namespace=p["namespace"],
            release=p["helm_release"],
            label_selector=p.get("label_selector"),
            include_configmaps=p["include_configmaps"],
            include_helm=p["include_helm"],
            include_inventory=p["include_inventory"],
            secret_policy=p["secret_policy"],
            now=now,
        )
        name = bk.archive_name(p["cluster_name"], now)
        result = {
            "changed": True,
            "archive": {"name": name},
            "manifest": {k: v for k, v in manifest.items() if k not in ("files",)},
            "files": [{k: f[k] for k in ("path", "kind", "count", "sha256", "size")} for f in manifest["files"]],
            "retention": {"deleted": []},
            "warnings": warnings,
        }
        for r in manifest["redactions"]:
            warnings.append("redacted %s %s in %s (%s)" % (r["object"], r["path"], r["file"], r["reason"]))
        if check_mode:  # nothing written; retention reports what it would delete
            result["retention"] = retention(store, p, True, now=now)
            return result
        out_dir = p.get("dest") or bk.stage_dir("karpenter-backup-out-")
        try:
            progress.update("writing the archive %s" % name, force=True)
            path, digest, size = bk.write_archive(staging, manifest, out_dir, name)
            result["archive"].update(sha256=digest, size=size)
            if p.get("dest"):
                result["archive"]["path"] = path
            if store is not None:
                progress.update("uploading the archive to S3", force=True)
                result["archive"]["s3"] = store.upload(path, name, digest, p["cluster_name"])
        finally:
            if not p.get("dest"):
                bk.remove_dir(out_dir)
    finally:
        bk.remove_dir(staging)
    result["retention"] = retention(store, p, check_mode, protect=(name,), now=now)
    return result


def retention(store, p, check_mode, protect=(), now=None):
    keep_last, max_age = p.get("keep_last"), p.get("max_age_days")
    out = {"keep_last": keep_last, "max_age_days": max_age, "deleted": []}
    if keep_last is None and max_age is None:
        return out
    problems = [x for x in _retention_problems(p) if x]
    if problems:
        raise bk.BackupError("; ".join(problems), details=problems)
    if p.get("dest"):
        out["deleted"] += bk.apply_local_retention(
            p["dest"], p["cluster_name"], keep_last, max_age, check_mode, protect, now
        )
    if store is not None:
        out["deleted"] += store.retention(p["cluster_name"], keep_last, max_age, check_mode, protect, now)
    return out


def resolve(store, p):
    """Where the archive to restore/verify is: (local path, source description, temp dir or None)."""
    archive = p.get("archive") or "latest"
    source_cluster = p.get("source_cluster_name") or p.get("cluster_name")
    if archive == "latest":
        candidates = []
        if p.get("dest"):
            candidates += [dict(a, where="local") for a in bk.list_local(p["dest"], source_cluster)]
        if store is not None:
            candidates += [dict(a, where="s3") for a in store.list(source_cluster)]
        if not candidates:
            raise bk.BackupError(
                "no backup of cluster %r found in %s"
                % (source_cluster, " or ".join(x for x in (p.get("dest"), store and store.uri(store.prefix)) if x))
            )
        best = max(candidates, key=lambda a: a["created"])
        archive = best["path"] if best["where"] == "local" else best["uri"]
    if archive.startswith("s3://"):
        if store is None:
            raise bk.BackupError("archive %s is in S3 but s3_bucket is not set" % archive)
        bucket, unused, key = archive[5:].partition("/")
        if bucket != store.bucket:
            raise bk.BackupError("archive %s is not in s3_bucket %s" % (archive, store.bucket))
        tmp = bk.stage_dir("karpenter-restore-")
        path = os.path.join(tmp, os.path.basename(key))
        try:
            info = store.download(key, path, expected_kms_key=p.get("kms_key_id"))
        except Exception:
            bk.remove_dir(tmp)
            raise
        return path, dict(info, location="s3"), tmp
    if not os.path.isabs(archive) and p.get("dest") and not os.path.exists(archive):
        archive = os.path.join(p["dest"], archive)
    return archive, {"location": "local", "path": archive}, None


def do_verify(store, p):
    check_params(p)
    path, source, tmp = resolve(store, p)
    try:
        arc = bk.open_archive(path)
    finally:
        if tmp:
            bk.remove_dir(tmp)
    return {"changed": False, "archive": dict(arc.summary(), source=source), "verified": True}


def do_restore(api, store, p, check_mode=False):
    check_params(p)
    path, source, tmp = resolve(store, p)
    try:
        arc = bk.open_archive(path)  # every checksum, before anything else
    finally:
        if tmp:
            bk.remove_dir(tmp)
    kinds = p.get("kinds")
    if kinds is None:
        kinds = [k for k in arc.objects if k != "ConfigMap" or p.get("restore_configmaps")]
    res = bk.restore(
        api,
        arc,
        cluster_name=p.get("cluster_name"),
        rewrites=p.get("rewrite"),
        kinds=kinds,
        exclude=p.get("exclude"),
        conflict=p["conflict"],
        namespace=p["namespace"],
        check_mode=check_mode,
    )
    res["archive"]["source"] = source
    return res


def do_list(store, p):
    check_params(p)
    cluster = p.get("source_cluster_name") or p.get("cluster_name")
    out = []
    if p.get("dest"):
        out += [dict(_iso(a), location="local") for a in bk.list_local(p["dest"], cluster)]
    if store is not None:
        out += [dict(_iso(a), location="s3") for a in store.list(cluster)]
    out.sort(key=lambda a: a["created"], reverse=True)
    return {"changed": False, "backups": out}
