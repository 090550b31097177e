# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backup and restore of the Karpenter configuration (plain Python; the module only wires params).

Archive (``karpenter-backup.<cluster>.<UTC time>.tar.gz``), ``manifest.json`` first::

    manifest.json                  format, versions, counts, sha256 + size of every other file, redactions
    resources/10-configmaps.yaml   ConfigMaps of the Karpenter namespace (restored only when asked)
    resources/20-ec2nodeclasses.yaml, 21-kwoknodeclasses.yaml, 30-nodepools.yaml, 40-nodeoverlays.yaml
                                   clean manifests (engine.normalize: no status/managedFields/uid/...),
                                   sorted by name, in apply order
    helm/release.json              the Helm release's chart, revision and user values, secrets redacted
    cluster/crds.json              the Karpenter CRDs' served/storage versions
    inventory/nodeclaims.jsonl, inventory/nodes.jsonl   forensic snapshot, never restored

Backup: one paginated LIST per kind (``limit``/``continue``), inventory streamed page by page to disk,
files checksummed, then the archive is written under a temporary name and renamed: an interrupted
backup never leaves a file with an archive's name. Secrets are never written: Secret objects are not
backed up, and values that look like credentials are redacted (or the backup fails, ``secret_policy``).

Restore: every checksum and the format version are verified, then the whole set is validated offline
(pinned CRD schema + CEL + runtime rules + lint for NodePool/EC2NodeClass, structure for the rest)
before the first write; the writes go through ``karpenter_apply.run`` (the modules' apply core) in
dependency order. Nothing is written in check mode.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tarfile
import tempfile
import threading
import zlib

from .. import progress, yaml_emit, yaml_load
from ..errors import PlatformError
from ..karpenter.issues import shorten
from ..kube import engine, resource
from ..kube.client import KubeError
from ..redaction import SECRET_KEY_RE, secret_reason

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    yaml = None

FORMAT = "karpenter_eks.platform/backup"
FORMAT_VERSION = 1
CREATED_BY = "karpenter_eks.platform.karpenter_backup"
PAGE_SIZE = 500
REDACTED = "<redacted by karpenter_backup>"
ARCHIVE_PREFIX = "karpenter-backup."
ARCHIVE_SUFFIX = ".tar.gz"
# EKS cluster names: [0-9A-Za-z][A-Za-z0-9_-]* (no dot), so the name splits without ambiguity
ARCHIVE_RE = re.compile(
    r"^karpenter-backup\.(?P<cluster>[0-9A-Za-z][A-Za-z0-9_-]*)\.(?P<ts>\d{8}T\d{6}\.\d{3}Z)\.tar\.gz$"
)
PARTIAL_RE = re.compile(r"^\.karpenter-backup\..+\.partial-[0-9a-z_]+$")
CLUSTER_NAME_RE = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class BackupError(PlatformError):
    """A clear, user-facing failure; ``written`` says whether anything was written before it."""

    def __init__(self, msg, details=None, written=False):
        super().__init__(msg, details=details)
        self._written = written

    @property
    def written(self):
        return self._written


NODEOVERLAY = resource.NODEOVERLAY


class Section:
    """One restorable file of the archive."""

    def __init__(self, kind, filename, crd, validated, order, optional=False):
        self.kind, self.filename, self.crd, self.validated, self.order = kind, filename, crd, validated, order
        self.optional = optional  # CRD may be absent (NodeOverlay is alpha, KWOKNodeClass is the sandbox's)


def sections(namespace):
    """Restorable sections in apply order (node classes before the NodePools that reference them)."""
    return [
        Section(
            resource.CONFIGMAP.in_namespace(namespace),
            "resources/10-configmaps.yaml",
            None,
            False,
            10,
        ),
        Section(
            resource.EC2NODECLASS, "resources/20-ec2nodeclasses.yaml", "ec2nodeclasses.karpenter.k8s.aws", True, 20
        ),
        Section(
            resource.KWOKNODECLASS,
            "resources/21-kwoknodeclasses.yaml",
            "kwoknodeclasses.karpenter.kwok.sh",
            False,
            21,
            True,
        ),
        Section(resource.NODEPOOL, "resources/30-nodepools.yaml", "nodepools.karpenter.sh", True, 30),
        Section(NODEOVERLAY, "resources/40-nodeoverlays.yaml", "nodeoverlays.karpenter.sh", False, 40, True),
    ]


KARPENTER_CRDS = (
    "nodepools.karpenter.sh",
    "nodeclaims.karpenter.sh",
    "nodeoverlays.karpenter.sh",
    "ec2nodeclasses.karpenter.k8s.aws",
    "kwoknodeclasses.karpenter.kwok.sh",
)
# ConfigMaps the apiserver/controllers create in every namespace: never backed up
SYSTEM_CONFIGMAPS = ("kube-root-ca.crt",)


# ---------------------------------------------------------------------------------------------- redaction


def redact(obj, by_key=False, path=""):
    """Return (copy, [(path, reason)]) with credential-looking values replaced by REDACTED.

    Values are always scanned (AWS access key ids, private keys, JWTs, ``password=...`` in scripts such
    as userData). ``by_key`` also redacts any value under a key that names a secret (Helm values,
    ConfigMap data) and the ``value`` of ``{name: <secret-ish>, value: ...}`` env entries.
    """
    found = []

    def walk(node, p):
        if isinstance(node, dict):
            out = {}
            env_secret = by_key and isinstance(node.get("name"), str) and SECRET_KEY_RE.search(node["name"])
            for k, v in node.items():
                sub = "%s.%s" % (p, k) if p else str(k)
                if by_key and isinstance(k, str) and SECRET_KEY_RE.search(k) and v not in (None, "", {}, []):
                    if not isinstance(v, (dict, list, bool)):
                        out[k] = REDACTED
                        found.append((sub, "key-name"))
                        continue
                if env_secret and k == "value" and isinstance(v, str) and v:
                    out[k] = REDACTED
                    found.append((sub, "key-name"))
                    continue
                out[k] = walk(v, sub)
            return out
        if isinstance(node, list):
            return [walk(v, "%s[%d]" % (p, i)) for i, v in enumerate(node)]
        if isinstance(node, str):
            reason = secret_reason(node)
            if reason:
                found.append((p, reason))
                return REDACTED
        return node

    return walk(obj, path), found


def contains_redacted(obj):
    if isinstance(obj, dict):
        return any(contains_redacted(v) for v in obj.values())
    if isinstance(obj, list):
        return any(contains_redacted(v) for v in obj)
    return obj == REDACTED


# ---------------------------------------------------------------------------------------------- reading the cluster


def list_paginated(api, path, label_selector=None, page_size=PAGE_SIZE):
    """Yield the items of a collection, one page (LIST request) at a time."""
    token = None
    while True:
        query = {"limit": str(page_size)}
        if label_selector:
            query["labelSelector"] = label_selector
        if token:
            query["continue"] = token
        data = api.call("list", "GET", path, query=query)
        yield from data.get("items") or []
        token = (data.get("metadata") or {}).get("continue")
        if not token:
            return


def _get_or_none(api, path):
    try:
        return api.get(path)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def crd_versions(api):
    out = {}
    for name in KARPENTER_CRDS:
        crd = _get_or_none(api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s" % name)
        if crd is None:
            out[name] = {"present": False}
            continue
        spec = crd.get("spec") or {}
        versions = spec.get("versions") or []
        out[name] = {
            "present": True,
            "group": spec.get("group"),
            "kind": (spec.get("names") or {}).get("kind"),
            "served": [v["name"] for v in versions if v.get("served")],
            "storage": next((v["name"] for v in versions if v.get("storage")), None),
            "controller_gen": ((crd.get("metadata") or {}).get("annotations") or {}).get(
                "controller-gen.kubebuilder.io/version"
            ),
        }
    return out


def decode_helm_release(secret):
    """Helm 3 release Secret -> release dict (data.release = base64(base64(gzip(json))) via the API)."""
    raw = base64.b64decode(((secret.get("data") or {}).get("release")) or "")
    raw = base64.b64decode(raw)
    if raw[:3] == b"\x1f\x8b\x08":
        raw = gzip.decompress(raw)
    return json.loads(raw.decode("utf-8"))


def helm_release(api, namespace, release):
    """The deployed Helm release's chart/revision/user values, redacted; never the Secret itself."""
    path = "/api/v1/namespaces/%s/secrets" % namespace
    try:
        items = list(list_paginated(api, path, label_selector="owner=helm,name=%s,status=deployed" % release))
    except KubeError as exc:
        if exc.status in (403, 404):
            return {"release": release, "namespace": namespace, "found": False, "error": str(exc)}, []
        raise
    if not items:
        return {"release": release, "namespace": namespace, "found": False}, []
    items.sort(key=lambda s: int(((s.get("metadata") or {}).get("labels") or {}).get("version") or 0))
    rel = decode_helm_release(items[-1])
    meta = (rel.get("chart") or {}).get("metadata") or {}
    values, found = redact(rel.get("config") or {}, by_key=True)
    out = {
        "release": release,
        "namespace": namespace,
        "found": True,
        "revision": rel.get("version"),
        "status": (rel.get("info") or {}).get("status"),
        "chart": meta.get("name"),
        "chart_version": meta.get("version"),
        "app_version": meta.get("appVersion"),
        "values": values,
    }
    return out, [("helm/release.json", "values." + p if p else "values", reason) for p, reason in found]


def deployment_version(api, namespace):
    """Karpenter's version from its Deployment's image tag (when no Helm release is found)."""
    try:
        items = list(
            list_paginated(
                api, "/apis/apps/v1/namespaces/%s/deployments" % namespace, "app.kubernetes.io/name=karpenter"
            )
        )
    except KubeError:
        return None
    for d in items:
        for c in ((d.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
            image = c.get("image") or ""
            tag = image.split("@")[0].rsplit(":", 1)
            if len(tag) == 2 and "/" not in tag[1]:
                return tag[1]
    return None


def node_summary(node):
    """The forensic part of a Node (no managedFields, no images list, no volumes)."""
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    return {
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "creationTimestamp": meta.get("creationTimestamp"),
        "labels": meta.get("labels") or {},
        "annotations": {k: v for k, v in (meta.get("annotations") or {}).items() if "karpenter" in k},
        "spec": {k: v for k, v in (node.get("spec") or {}).items() if k in ("providerID", "taints", "unschedulable")},
        "capacity": status.get("capacity"),
        "allocatable": status.get("allocatable"),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "lastTransitionTime")}
            for c in status.get("conditions") or []
        ],
        "nodeInfo": {
            k: v
            for k, v in (status.get("nodeInfo") or {}).items()
            if k in ("kubeletVersion", "osImage", "kernelVersion", "containerRuntimeVersion", "architecture")
        },
    }


def nodeclaim_snapshot(claim):
    """A NodeClaim without managedFields. ``claim`` comes straight from a LIST page (nothing else holds it),
    so only the metadata level is rebuilt - a deep copy of 5,000 claims cost more than reading them."""
    meta = claim.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        claim = dict(claim, metadata={k: v for k, v in meta.items() if k != "managedFields"})
    return claim


# ---------------------------------------------------------------------------------------------- files


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dump_yaml_docs(objs):
    """The objects as a YAML stream (``---`` before each), keys sorted; see yaml_emit for why not PyYAML."""
    return yaml_emit.dump_docs(objs)


def load_yaml_docs(text):
    """The documents of a YAML stream; a duplicate key is an error (yaml_load.DuplicateKeyError)."""
    return yaml_load.load_all(text)


def utcnow():
    return datetime.datetime.now(datetime.UTC)


def archive_name(cluster_name, when):
    return "%s%s.%s.%03dZ%s" % (
        ARCHIVE_PREFIX,
        cluster_name,
        when.strftime("%Y%m%dT%H%M%S"),
        when.microsecond // 1000,
        ARCHIVE_SUFFIX,
    )


def parse_archive_name(name):
    """(cluster, datetime) of an archive this module named, else None."""
    m = ARCHIVE_RE.match(os.path.basename(name))
    if not m:
        return None
    when = datetime.datetime.strptime(m.group("ts"), "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=datetime.UTC)
    return m.group("cluster"), when


def _write(staging, rel, data, files, **info):
    path = os.path.join(staging, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    files.append(dict(info, path=rel, sha256=sha256_file(path), size=os.path.getsize(path)))


def _stream_jsonl(staging, rel, items, files, kind, transform):
    path = os.path.join(staging, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    count = 0
    with open(path, "w") as f:
        for item in items:
            f.write(json.dumps(transform(item), sort_keys=True, separators=(",", ":")))
            f.write("\n")
            count += 1
    files.append(
        dict(path=rel, kind=kind, count=count, restore=False, sha256=sha256_file(path), size=os.path.getsize(path))
    )
    return count


class _Background:
    """Run ``fn(*args)`` in a thread; ``result()`` joins it and returns its value or raises its exception."""

    def __init__(self, fn, *args):
        self._value, self._error = None, None
        self._thread = threading.Thread(target=self._run, args=(fn,) + args, daemon=True)
        self._thread.start()

    def _run(self, fn, *args):
        try:
            self._value = fn(*args)
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc

    def join(self):
        self._thread.join()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _read_inventory(api, staging):
    """The forensic NodeClaim and Node snapshots (never restored); returns their file entries."""
    files = []
    _stream_jsonl(
        staging,
        "inventory/nodeclaims.jsonl",
        list_paginated(api, resource.NODECLAIM.path()),
        files,
        "NodeClaim",
        nodeclaim_snapshot,
    )
    _stream_jsonl(staging, "inventory/nodes.jsonl", list_paginated(api, "/api/v1/nodes"), files, "Node", node_summary)
    return files


def collect(
    api,
    staging,
    cluster_name,
    namespace="karpenter",
    release="karpenter",
    label_selector=None,
    include_configmaps=True,
    include_helm=True,
    include_inventory=True,
    secret_policy="redact",
    now=None,
):
    """Read the cluster into ``staging`` (a directory); returns the manifest dict (not yet written)."""
    from ..karpenter import crds as crds_mod

    now = now or utcnow()
    files, redactions, counts = [], [], {}
    # the NodeClaim/Node inventory (the big reads) streams to its files in a second thread, on its own
    # connection, while this one reads and writes the restorable sections
    inventory = _Background(_read_inventory, api, staging) if include_inventory else None
    try:
        version = api.get("/version")
        crds = crd_versions(api)

        for sec in sections(namespace):
            kind = sec.kind
            if kind.kind == "ConfigMap" and not include_configmaps:
                continue
            if sec.crd and not crds.get(sec.crd, {}).get("present"):
                if not sec.optional:
                    raise BackupError("CRD %s is not installed: is Karpenter installed in this cluster?" % sec.crd)
                continue
            objs = []
            for item in list_paginated(api, kind.path(), label_selector=label_selector):
                name = item["metadata"]["name"]
                if kind.kind == "ConfigMap" and name in SYSTEM_CONFIGMAPS:
                    continue
                clean = engine.normalize(item)
                clean["apiVersion"], clean["kind"] = kind.api_version, kind.kind
                clean, found = redact(clean, by_key=(kind.kind == "ConfigMap"))
                for p, reason in found:
                    redactions.append(
                        {"file": sec.filename, "object": "%s/%s" % (kind.kind, name), "path": p, "reason": reason}
                    )
                objs.append(clean)
                progress.update("reading %s" % engine.plural(kind), len(objs))
            objs.sort(key=lambda o: o["metadata"]["name"])
            counts[kind.kind] = len(objs)
            _write(
                staging,
                sec.filename,
                dump_yaml_docs(objs),
                files,
                kind=kind.kind,
                count=len(objs),
                restore=True,
                order=sec.order,
            )

        _write(
            staging,
            "cluster/crds.json",
            json.dumps(crds, indent=2, sort_keys=True),
            files,
            kind="CustomResourceDefinition",
            count=len(crds),
            restore=False,
        )

        karpenter_version, source = None, None
        helm = {"release": release, "namespace": namespace, "found": False, "skipped": True}
        if include_helm:
            helm, found = helm_release(api, namespace, release)
            redactions.extend(
                {"file": f, "object": "HelmRelease/%s" % release, "path": p, "reason": r} for f, p, r in found
            )
            if helm.get("found"):
                karpenter_version, source = helm.get("app_version"), "helm"
            _write(
                staging,
                "helm/release.json",
                json.dumps(helm, indent=2, sort_keys=True),
                files,
                kind="HelmRelease",
                count=1 if helm.get("found") else 0,
                restore=False,
            )
        if karpenter_version is None:
            karpenter_version = deployment_version(api, namespace)
            source = "deployment" if karpenter_version else None

    except BaseException:
        if inventory is not None:
            inventory.join()  # the first error is the one reported; staging is removed by the caller
        raise
    if inventory is not None:
        progress.update("reading the NodeClaim and Node inventory", force=True)
    inv_files = inventory.result() if inventory is not None else []  # re-raises the thread's error
    for f in inv_files:
        files.append(f)
        counts["%s (inventory)" % f["kind"]] = f["count"]

    if redactions and secret_policy == "fail":
        raise BackupError(
            "%d credential-looking value(s) found, nothing was written (secret_policy=fail): %s"
            % (len(redactions), "; ".join("%s %s (%s)" % (r["object"], r["path"], r["reason"]) for r in redactions)),
            details=redactions,
        )
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "created_by": CREATED_BY,
        "cluster_name": cluster_name,
        "label_selector": label_selector,
        "kubernetes_version": version.get("gitVersion"),
        "karpenter": {
            "version": karpenter_version,
            "version_source": source,
            "pinned_crd_version": crds_mod.KARPENTER_VERSION,
            "crds": crds,
        },
        "helm": {k: v for k, v in helm.items() if k != "values"},
        "counts": counts,
        "files": files,
        "redactions": redactions,
        "restore_order": [f["kind"] for f in sorted((f for f in files if f.get("restore")), key=lambda f: f["order"])],
    }


def write_archive(staging, manifest, dest_dir, name, fail_after=None):
    """Tar+gzip ``staging`` with manifest.json first, under a temporary name, then rename (atomic).

    Returns (path, sha256, size). On any error the temporary file is removed; a crash leaves only a
    hidden ``.karpenter-backup.*.partial-*`` file, which never matches an archive name.
    """
    os.makedirs(dest_dir, exist_ok=True)
    final = os.path.join(dest_dir, name)
    if os.path.exists(final):
        raise BackupError("%s already exists" % final)
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".partial-" + writer_tag(), dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
                    info = tarfile.TarInfo("manifest.json")
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))
                    for i, f in enumerate(manifest["files"]):
                        if fail_after is not None and i >= fail_after:
                            raise BackupError("interrupted (test hook)")
                        info = tar.gettarinfo(os.path.join(staging, f["path"]), arcname=f["path"])
                        info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
                        with open(os.path.join(staging, f["path"]), "rb") as src:
                            tar.addfile(info, src)
            raw.flush()
            os.fsync(raw.fileno())
        digest, size = sha256_file(tmp), os.path.getsize(tmp)
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final, digest, size


# ---------------------------------------------------------------------------------------------- reading an archive


class Archive:
    """A verified archive: manifest + restorable objects by kind (inventory checksummed, not loaded)."""

    def __init__(self, manifest, objects, name):
        self.manifest, self.objects, self.name = manifest, objects, name

    def summary(self):
        m = self.manifest
        return {
            "name": self.name,
            "cluster_name": m.get("cluster_name"),
            "created": m.get("created"),
            "kubernetes_version": m.get("kubernetes_version"),
            "karpenter_version": (m.get("karpenter") or {}).get("version"),
            "pinned_crd_version": (m.get("karpenter") or {}).get("pinned_crd_version"),
            "counts": m.get("counts"),
            "redactions": len(m.get("redactions") or []),
            "format_version": m.get("format_version"),
        }


def open_archive(path):
    """Read and verify an archive: format, version, every file's sha256 and size. Raises BackupError."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise BackupError("archive %s does not exist" % path)
    try:
        tar = tarfile.open(path, mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError("%s is not a readable backup archive (tar.gz): %s" % (name, exc))
    manifest, seen, contents = None, {}, {}
    try:
        with tar:
            for member in tar:
                if not member.isfile():
                    continue
                f = tar.extractfile(member)
                if member.name == "manifest.json":
                    try:
                        manifest = json.loads(f.read().decode("utf-8"))
                    except ValueError as exc:
                        raise BackupError("%s: manifest.json is not valid JSON: %s" % (name, exc))
                    continue
                h, size = hashlib.sha256(), 0
                keep = member.name.startswith("resources/")
                buf = []
                for chunk in iter(functools.partial(f.read, 1 << 20), b""):
                    h.update(chunk)
                    size += len(chunk)
                    if keep:
                        buf.append(chunk)
                seen[member.name] = (h.hexdigest(), size)
                if keep:
                    contents[member.name] = b"".join(buf)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError("%s is truncated or corrupted: %s" % (name, exc))
    if not isinstance(manifest, dict):
        raise BackupError("%s has no manifest.json: not a karpenter_backup archive (or an incomplete one)" % name)
    if manifest.get("format") != FORMAT:
        raise BackupError("%s: unknown archive format %r (expected %s)" % (name, manifest.get("format"), FORMAT))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            "%s: unsupported format_version %r; this collection reads version %d"
            % (name, manifest.get("format_version"), FORMAT_VERSION)
        )
    problems = []
    listed = {f["path"]: f for f in manifest.get("files") or []}
    for rel, f in sorted(listed.items()):
        if rel not in seen:
            problems.append("%s: missing from the archive" % rel)
        elif seen[rel] != (f.get("sha256"), f.get("size")):
            problems.append(
                "%s: sha256 %s (size %d) != manifest %s (size %s)"
                % (rel, seen[rel][0], seen[rel][1], f.get("sha256"), f.get("size"))
            )
    for rel in sorted(set(seen) - set(listed)):
        problems.append("%s: not listed in the manifest" % rel)
    if problems:
        raise BackupError(
            "%s failed verification, nothing was restored:\n  %s" % (name, "\n  ".join(problems)), details=problems
        )
    objects = {}
    for rel, f in listed.items():
        if f.get("restore"):
            try:
                docs = load_yaml_docs(contents[rel].decode("utf-8"))
            except yaml.YAMLError as exc:
                raise BackupError("%s: %s is not valid YAML: %s" % (name, rel, exc))
            for i, doc in enumerate(docs):
                if not isinstance(doc, dict):
                    raise BackupError(
                        "%s: %s: document %d is %s, not a Kubernetes object (a mapping): not an archive this "
                        "module wrote, or edited by hand" % (name, rel, i + 1, _a_type(doc))
                    )
            objects[f["kind"]] = docs
    return Archive(manifest, objects, name)


def _a_type(value):
    """``a string``, ``a list``, ... for a YAML value (the YAML names, not Python's)."""
    for types, text in (
        (bool, "a boolean"),
        (str, "a string"),
        (int, "an integer"),
        (float, "a number"),
        ((list, tuple), "a list"),
        (dict, "a mapping"),
    ):
        if isinstance(value, types):
            return text
    return "a %s" % type(value).__name__


# ---------------------------------------------------------------------------------------------- restore

# fields of an EC2NodeClass that carry cluster identity; only these are rewritten, only for mapped values
REWRITE_SELECTORS = (
    "subnetSelectorTerms",
    "securityGroupSelectorTerms",
    "amiSelectorTerms",
    "capacityReservationSelectorTerms",
)


def rewrite(obj, mapping):
    """Rewrite exact values (and tag keys) that the user maps, in an EC2NodeClass's identity fields.

    Returns (object, [{object, path, from, to}]). Nothing else is touched.
    """
    if not mapping or not isinstance(obj, dict) or obj.get("kind") != "EC2NodeClass":
        return obj, []
    obj = copy.deepcopy(obj)
    ref = _ref("EC2NodeClass", obj)
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    changes = []

    def swap_tags(tags, path):
        if not isinstance(tags, dict):
            return tags
        out = {}
        for k, v in tags.items():
            nk, nv = mapping.get(k, k), mapping.get(v, v) if isinstance(v, str) else v
            if nk != k:
                changes.append({"object": ref, "path": "%s (key)" % path, "from": k, "to": nk})
            if nv != v:
                changes.append({"object": ref, "path": "%s.%s" % (path, nk), "from": v, "to": nv})
            out[nk] = nv
        return out

    for field in ("role", "instanceProfile"):
        v = spec.get(field)
        if isinstance(v, str) and v in mapping:
            spec[field] = mapping[v]
            changes.append({"object": ref, "path": "spec." + field, "from": v, "to": mapping[v]})
    for field in REWRITE_SELECTORS:
        for i, term in enumerate(spec.get(field) or []):
            if isinstance(term, dict) and "tags" in term:
                term["tags"] = swap_tags(term["tags"], "spec.%s[%d].tags" % (field, i))
    if "tags" in spec:
        spec["tags"] = swap_tags(spec["tags"], "spec.tags")
    return obj, changes


def _meta_name(obj):
    """metadata.name of an archived document, whatever its shape (None when there is none)."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta.get("name") if isinstance(meta, dict) else None


def _ref(kind_name, obj, index=None):
    """``Kind/name`` of an archived document for messages (long names shortened, see issues.shorten)."""
    name = _meta_name(obj)
    if isinstance(name, str) and name:
        return "%s/%s" % (kind_name, shorten(name))
    return "%s/#%d" % (kind_name, index) if index is not None else "%s/%s" % (kind_name, name)


def _shown(value):
    """A value from the archive as a message shows it: its repr, a long one shortened."""
    return repr(shorten(value)) if isinstance(value, str) else shorten(repr(value))


def _structural_problems(kind, obj, index):
    ref = _ref(kind.kind, obj, index)
    out = []
    if not isinstance(obj, dict):
        return ["%s: not a mapping" % ref]
    if (obj.get("apiVersion"), obj.get("kind")) != (kind.api_version, kind.kind):
        out.append(
            "%s: apiVersion/kind %s %s, expected %s %s"
            % (ref, shorten(obj.get("apiVersion")), shorten(obj.get("kind")), kind.api_version, kind.kind)
        )
    name = _meta_name(obj)
    if not isinstance(name, str) or len(name) > 253 or not DNS_SUBDOMAIN_RE.match(name):
        out.append("%s: metadata.name %s is not a valid DNS subdomain" % (ref, _shown(name)))
    body = "data" if kind.kind == "ConfigMap" else "spec"
    if body in obj and not isinstance(obj[body], dict):
        out.append("%s: %s must be a mapping" % (ref, body))
    return out


def _without_ours(obj):
    """An object without our managed-by label: adding it to an identical object is no conflict."""
    obj = copy.deepcopy(obj)
    labels = (obj.get("metadata") or {}).get("labels") or {}
    labels.pop(engine.MANAGED_BY_LABEL, None)
    if not labels:
        (obj.get("metadata") or {}).pop("labels", None)
    return obj


def _slim(result):
    keep = ("kind", "name", "action", "changed", "method", "removed_fields", "error")
    return {k: v for k, v in result.items() if k in keep}


def restore(
    api,
    archive,
    cluster_name=None,
    rewrites=None,
    kinds=None,
    exclude=None,
    conflict="skip",
    namespace="karpenter",
    check_mode=False,
    server_dry_run=True,
):
    """Validate the whole archive offline, then apply it kind by kind through karpenter_apply.run.

    A KubeError raised after some objects were written - in the failing kind or a kind before it - carries
    ``result``: the restore so far, with ``changed`` true and ``written`` naming the objects written."""
    from ..apply import karpenter as karpenter_apply
    from ..karpenter import validate as validate_mod

    m = archive.manifest
    src_cluster = m.get("cluster_name")
    if cluster_name and src_cluster != cluster_name and rewrites is None:
        raise BackupError(
            "archive %s was taken from cluster %r, not %r: to restore it into another cluster pass `rewrite` "
            "(a mapping of role names/discovery tag values to rewrite; {} to rewrite nothing)"
            % (archive.name, src_cluster, cluster_name)
        )
    exclude = set(exclude or [])
    secs = [s for s in sections(namespace) if s.kind.kind in archive.objects]
    if kinds is not None:
        secs = [s for s in secs if s.kind.kind in kinds]
    warnings, rewrites_done, problems = [], [], []

    # the cluster must serve the archive's API versions
    live_crds = crd_versions(api)
    desired = {}
    for sec in secs:
        objs = []
        for i, obj in enumerate(archive.objects.get(sec.kind.kind) or []):
            ref = "%s/%s" % (sec.kind.kind, _meta_name(obj))
            if ref in exclude:
                continue
            problems.extend(_structural_problems(sec.kind, obj, i))
            if contains_redacted(obj):
                red = [r["path"] for r in m.get("redactions") or [] if r.get("object") == ref]
                problems.append(
                    "%s: values were redacted at backup time (%s); exclude it (exclude: [%s]) and restore it by hand"
                    % (_ref(sec.kind.kind, obj), ", ".join(red) or "?", _ref(sec.kind.kind, obj))
                )
            obj, changes = rewrite(obj, rewrites)
            rewrites_done.extend(changes)
            objs.append(obj)
        if objs and sec.crd:
            live = live_crds.get(sec.crd) or {}
            if not live.get("present"):
                problems.append("%s: CRD %s is not installed in the target cluster" % (sec.kind.kind, sec.crd))
            elif sec.kind.version not in live.get("served", []):
                problems.append(
                    "%s: the target cluster serves %s %s, the archive holds %s"
                    % (sec.kind.kind, sec.crd, live.get("served"), sec.kind.version)
                )
        if objs:
            desired[sec.kind.kind] = (sec, objs)
    used = set(c["from"] for c in rewrites_done)
    for k in sorted(set(rewrites or {}) - used):
        warnings.append("rewrite %s matched nothing in the archive's EC2NodeClass identity fields" % _shown(k))
    if problems:
        raise BackupError(
            "%d problem(s) in %s, nothing was restored:\n  %s" % (len(problems), archive.name, "\n  ".join(problems)),
            details=problems,
        )

    # one LIST per kind: live state for the offline validation (transition rules), conflicts and node classes
    live = {}
    for kind_name, sec_objs in desired.items():
        live[kind_name], unused = engine.list_live(api, sec_objs[0].kind)
    for kind in (resource.EC2NODECLASS, resource.KWOKNODECLASS):
        if kind.kind not in live and (live_crds.get(kind.plural + "." + kind.group) or {}).get("present"):
            live[kind.kind], unused = engine.list_live(api, kind)

    # offline validation of the whole set (pinned CRD schema + CEL + runtime + lint) before any write
    validated = [o for k in ("EC2NodeClass", "NodePool") for o in (desired.get(k, (None, []))[1])]
    nodeclasses = set()
    for k in ("EC2NodeClass", "KWOKNodeClass"):
        nodeclasses.update(live.get(k) or {})
        nodeclasses.update(o["metadata"]["name"] for o in desired.get(k, (None, []))[1])
    batch = None
    if validated:
        old = {
            "%s/%s" % (o["kind"], o["metadata"]["name"]): live[o["kind"]][o["metadata"]["name"]]
            for o in validated
            if o["metadata"]["name"] in live.get(o["kind"], {})
        }
        batch = validate_mod.validate_batch(validated, known_nodeclasses=sorted(nodeclasses), old_objects=old)
        if batch.errors:
            raise BackupError(
                "%d invalid object(s) in %s, nothing was restored:\n  %s"
                % (
                    len(set(p.object_ref for p in batch.errors)),
                    archive.name,
                    "\n  ".join(str(p) for p in batch.errors),
                ),
                details=[p.to_dict() for p in batch.errors],
            )
        warnings.extend(str(w) for w in batch.warnings)
        defaulted = {"%s/%s" % (r.kind, r.defaulted["metadata"]["name"]): r.defaulted for r in batch.results}
    else:
        defaulted = {}

    # conflicts: objects that exist and would change
    skipped, plans = [], {}
    for kind_name, (sec, objs) in list(desired.items()):
        want = [engine.add_managed_by(defaulted.get("%s/%s" % (kind_name, o["metadata"]["name"]), o)) for o in objs]
        plan = engine.plan_kind(sec.kind, want, live[kind_name])
        differs = set(
            i.name for i in plan if i.action == "update" and _without_ours(i.after) != _without_ours(i.before)
        )
        if conflict == "skip" and differs:
            skipped.extend(
                {"kind": kind_name, "name": n, "reason": "exists and differs (conflict=skip)"} for n in sorted(differs)
            )
            objs = [o for o in objs if o["metadata"]["name"] not in differs]
            plan = [i for i in plan if i.name not in differs]
            desired[kind_name] = (sec, objs)
        plans[kind_name] = plan

    # the apiserver (schema, admission webhooks, policies) sees every object before the first real write: an
    # object it refuses stops the whole restore with nothing written
    if not check_mode and server_dry_run:
        errors = [p for kind_name in desired for p in engine.dry_run(api, plans[kind_name])]
        if errors:
            raise BackupError(
                "%d object(s) rejected by the apiserver (dry-run), nothing was restored:\n  %s"
                % (len(errors), "\n  ".join("%s: %s" % (e["object"], e["message"]) for e in errors)),
                details=errors,
            )

    # apply in dependency order
    results, diffs, written = [], [], []

    def outcome():
        return {
            "changed": any(r["changed"] and not r.get("error") for r in results),
            "results": results,
            "written": written,
            "conflicts": skipped,
            "rewrites": rewrites_done,
            "diff": diffs,
            "warnings": warnings,
            "archive": archive.summary(),
        }

    def failed(exc):
        """``exc`` with the restore so far when objects were written before it (its kind's or earlier kinds')."""
        if written:
            exc.result = dict(outcome(), changed=True)
        return exc

    known = sorted(nodeclasses)
    for kind_name, (sec, objs) in sorted(desired.items(), key=lambda kv: kv[1][0].order):
        if not objs:
            continue
        if sec.validated:
            # validated above as one set (schema, CEL with the live objects as oldSelf, runtime, lint):
            # applied as defaulted there, not validated a second time
            ready = [defaulted.get("%s/%s" % (kind_name, o["metadata"]["name"]), o) for o in objs]
            try:
                res = karpenter_apply.run(
                    api,
                    sec.kind,
                    ready,
                    check_mode=check_mode,
                    extra_nodeclasses=known,
                    prevalidated=True,
                    server_dry_run=False,  # done above for the whole archive
                )
            except KubeError as exc:
                if exc.result is not None:  # some objects of this kind were written before the failure
                    results.extend(_slim(r) for r in exc.result["results"])
                    diffs.extend(exc.result["diff"])
                    written.extend(exc.result["written"])
                raise failed(exc)
            results.extend(_slim(r) for r in res["results"])
            diffs.extend(res["diff"])
            written.extend(res["written"])
        else:
            plan = plans[kind_name]
            try:
                engine.execute(api, plan, check_mode=check_mode)
            except KubeError as exc:
                results.extend(_slim(i.to_dict()) for i in plan)
                written.extend(i.ref for i in plan if i.written)
                raise failed(exc)
            results.extend(_slim(i.to_dict()) for i in plan)
            written.extend(i.ref for i in plan if i.written)
            diffs.extend(
                {
                    "before": i.before,
                    "after": i.after,
                    "before_header": "%s/%s" % (kind_name, i.name),
                    "after_header": "%s/%s" % (kind_name, i.name),
                }
                for i in plan
                if i.changed
            )
    return outcome()


# ---------------------------------------------------------------------------------------------- local store


def list_local(directory, cluster_name=None):
    """Archives this module named in ``directory`` (newest first); partial files are never listed."""
    out = []
    if not os.path.isdir(directory):
        return out
    for name in os.listdir(directory):
        parsed = parse_archive_name(name)
        if not parsed or (cluster_name and parsed[0] != cluster_name):
            continue
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        out.append(
            {"name": name, "path": path, "cluster_name": parsed[0], "created": parsed[1], "size": os.path.getsize(path)}
        )
    out.sort(key=lambda a: a["created"], reverse=True)
    return out


def is_our_archive(path):
    """True when the first member is our manifest (cheap: reads only the archive's first block)."""
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            first = tar.next()
            if first is None or first.name != "manifest.json":
                return False
            return json.loads(tar.extractfile(first).read().decode("utf-8")).get("format") == FORMAT
    except Exception:
        return False


def select_expired(archives, keep_last=None, max_age_days=None, now=None, protect=()):
    """Archives (newest first) that retention removes: beyond ``keep_last`` or older than ``max_age_days``.

    With both set, an archive goes only when both say so (so keep_last is a floor under max_age).
    """
    if keep_last is None and max_age_days is None:
        return []
    now = now or utcnow()
    out = []
    for i, a in enumerate(archives):
        if a["name"] in protect:
            continue
        beyond = keep_last is not None and i >= keep_last
        old = max_age_days is not None and (now - a["created"]).total_seconds() > max_age_days * 86400
        if keep_last is not None and max_age_days is not None:
            expired = beyond and old
        else:
            expired = beyond or old
        if expired:
            out.append(a)
    return out


def apply_local_retention(
    directory, cluster_name, keep_last=None, max_age_days=None, check_mode=False, protect=(), now=None
):
    expired = select_expired(list_local(directory, cluster_name), keep_last, max_age_days, now=now, protect=protect)
    deleted = []
    for a in expired:
        if not is_our_archive(a["path"]):
            continue  # named like ours but not made by this module: left alone
        if not check_mode:
            os.unlink(a["path"])
        deleted.append(a["path"])
    return deleted


def check_dest(directory, probe=True):
    """Raise BackupError unless ``directory`` is, or can be created as, a directory this process writes to.

    Runs before the cluster is read, and leaves nothing behind (the archive write creates the directory):
    an existing directory must be writable - with ``probe`` a probe file is created in it and removed at
    once (what counts, whatever the permission bits say: read-only file systems, ACLs), else its write
    access is checked (check mode); a missing one needs a nearest existing parent that is a directory
    with write access."""
    path = os.path.abspath(directory)
    if os.path.isdir(path):
        if not probe:
            if not os.access(path, os.W_OK | os.X_OK):
                raise BackupError("dest %s is not writable: no write access" % directory)
            return
        try:
            fd, name = tempfile.mkstemp(prefix=".karpenter-backup-probe-", dir=path)
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise BackupError("dest %s is not writable: %s" % (directory, exc.strerror or exc))
        return
    if os.path.lexists(path):
        raise BackupError("dest %s is not a directory" % directory)
    parent = os.path.dirname(path)
    while not os.path.lexists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise BackupError("dest %s cannot be created: %s is not a directory" % (directory, parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BackupError("dest %s is not writable: it cannot be created in %s (no write access)" % (directory, parent))


# ---------------------------------------------------------------------------------------------- leftovers

# A run killed mid-way (SIGKILL, OOM, a lost host) leaves a ``.karpenter-backup.*.partial-*`` file in ``dest`` and
# staging directories in the temporary directory. Their names carry the writer: a hash of the host name and the
# process id (``<host8>_<pid>_<random>``). A later run removes one when
#   * it was written on this host and that process is gone (the normal case: removed at once), or
#   * it was written elsewhere (a shared dest) or has no writer tag, and nothing in it changed for STALE_AGE.
# A leftover of a live process on this host is never removed, whatever its age (a live writer may be slow); one of
# another host only by age: a writer keeps touching its file, and a backup never takes hours between two writes.
STALE_AGE = datetime.timedelta(hours=6)
STAGE_PREFIXES = ("karpenter-backup-out-", "karpenter-restore-", "karpenter-backup-")
_HOST_ID = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]
_WRITER_RE = re.compile(r"^(?P<host>[0-9a-f]{8})_(?P<pid>[0-9]+)_")


def writer_tag() -> str:
    """``<host8>_<pid>_``: the start of the random part of every temporary name this process creates."""
    return "%s_%d_" % (_HOST_ID, os.getpid())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except OSError:
        return True
    return True


def _newest_mtime(path: str) -> float:
    newest = os.lstat(path).st_mtime
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path):
            for n in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, n)).st_mtime)
                except OSError:
                    pass
    return newest


def stale_reason(path: str, tail: str, now: datetime.datetime | None = None) -> str | None:
    """Why the leftover ``path`` (``tail``: its name after the prefix) may be removed, or None to keep it."""
    m = _WRITER_RE.match(tail)
    if m and m.group("host") == _HOST_ID:
        pid = int(m.group("pid"))
        if pid == os.getpid() or _pid_alive(pid):
            return None
        return "its writer (process %d on this host) is gone" % pid
    try:
        age = (now or utcnow()).timestamp() - _newest_mtime(path)
    except OSError:
        return None
    if age > STALE_AGE.total_seconds():
        return "unchanged for %.1f hours (written %s)" % (age / 3600, "on another host" if m else "by an older run")
    return None


def remove_stale(dest: str | None = None, tmp_dir: str | None = None, check_mode: bool = False, now=None) -> list:
    """Remove (or, in check mode, list) leftovers of killed runs: ``[{"path", "reason"}]``.

    ``dest``: partial archives (hidden ``.karpenter-backup.*.partial-*`` regular files); ``tmp_dir`` (default: the
    temporary directory): staging directories this user owns. Nothing else is touched."""
    found = []
    if dest and os.path.isdir(dest):
        for name in sorted(os.listdir(dest)):
            path = os.path.join(dest, name)
            if PARTIAL_RE.match(name) and os.path.isfile(path) and not os.path.islink(path):
                found.append((path, name.rpartition(".partial-")[2], False))
    tmp_dir = tmp_dir or tempfile.gettempdir()
    if os.path.isdir(tmp_dir):
        for name in sorted(os.listdir(tmp_dir)):
            prefix = next((x for x in STAGE_PREFIXES if name.startswith(x)), None)
            path = os.path.join(tmp_dir, name)
            if prefix is None:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if os.path.isdir(path) and not os.path.islink(path) and st.st_uid == os.geteuid():
                found.append((path, name[len(prefix) :], True))
    out = []
    for path, tail, is_dir in found:
        reason = stale_reason(path, tail, now)
        if reason is None:
            continue
        if not check_mode:
            try:
                if is_dir:
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except FileNotFoundError:
                continue  # another run removed it first
            except OSError:
                continue  # not ours to remove after all: left in place, not reported
        out.append({"path": path, "reason": reason})
    return out


def stage_dir(prefix: str = "karpenter-backup-") -> str:
    """A new temporary directory whose name carries this writer (see remove_stale)."""
    if prefix not in STAGE_PREFIXES:
        raise ValueError("unknown staging prefix %r" % prefix)
    return tempfile.mkdtemp(prefix=prefix + writer_tag())


def remove_dir(path):
    shutil.rmtree(path, ignore_errors=True)
