"""karpenter_backup core without a cluster: collection with pagination, archive integrity, restore validation."""

import base64
import copy
import datetime
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import core as bk
from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import run as backup_run
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import default
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import resource
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube.client import KubeError

UTC = datetime.UTC


def ec2nodeclass(name, **spec):
    base = {
        "role": "KarpenterNodeRole-prod",
        "amiSelectorTerms": [{"alias": "al2023@v20250505"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "prod"}}],
        "securityGroupSelectorTerms": [
            {"tags": {"karpenter.sh/discovery": "prod", "kubernetes.io/cluster/prod": "owned"}}
        ],
        "tags": {"cluster": "prod", "team": "platform"},
    }
    base.update(spec)
    return {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": name}, "spec": base}


def nodepool(name, nodeclass="default", operator="In"):
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": nodeclass},
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": operator, "values": ["on-demand"]}
                    ],
                }
            },
            "limits": {"cpu": "100"},
        },
    }


def live(obj, i=1):
    """As the apiserver returns it: server metadata, status, controller annotation."""
    out = copy.deepcopy(obj)
    out["metadata"].update(
        uid="u-%d" % i,
        resourceVersion=str(100 + i),
        generation=1,
        creationTimestamp="2026-01-01T00:00:00Z",
        managedFields=[{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
        finalizers=["karpenter.k8s.aws/termination"],
    )
    out["metadata"].setdefault("annotations", {})["karpenter.sh/nodepool-hash"] = "123"
    out["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    return out


def helm_secret(values, app_version="1.14.1", revision=3):
    release = {
        "name": "karpenter",
        "version": revision,
        "info": {"status": "deployed"},
        "chart": {"metadata": {"name": "karpenter", "version": app_version, "appVersion": app_version}},
        "config": values,
        "manifest": "---\nkind: Secret\n",
    }
    inner = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return {
        "metadata": {"name": "sh.helm.release.v1.karpenter.v%d" % revision, "labels": {"version": str(revision)}},
        "data": {"release": base64.b64encode(inner).decode()},
    }


class FakeApi:
    """KubeApi stand-in: GET/LIST with pagination, apply recorded; counts requests like KubeApi."""

    CRDS = {
        "nodepools.karpenter.sh": ("karpenter.sh", "NodePool", "v1"),
        "nodeclaims.karpenter.sh": ("karpenter.sh", "NodeClaim", "v1"),
        "ec2nodeclasses.karpenter.k8s.aws": ("karpenter.k8s.aws", "EC2NodeClass", "v1"),
        "nodeoverlays.karpenter.sh": ("karpenter.sh", "NodeOverlay", "v1alpha1"),
    }

    def __init__(self, collections=None, page=None):
        self.collections = collections or {}
        self.page = page
        self.counts = {}
        self.applied = []

    def _count(self, verb):
        self.counts[verb] = self.counts.get(verb, 0) + 1

    @property
    def writes(self):
        return sum(n for v, n in self.counts.items() if v in ("create", "patch", "update", "delete"))

    def request_summary(self):
        return dict(self.counts, total=sum(self.counts.values()), writes=self.writes)

    def call(self, verb, method, path, query=None, body=None, content_type=None, timeout=None):
        self._count(verb)
        query = query or {}
        if path == "/version":
            return {"gitVersion": "v1.36.3"}
        if path.startswith("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"):
            name = path.rsplit("/", 1)[1]
            if name not in self.CRDS:
                raise KubeError("not found", status=404)
            group, kind, version = self.CRDS[name]
            return {
                "metadata": {"name": name},
                "spec": {
                    "group": group,
                    "names": {"kind": kind},
                    "versions": [{"name": version, "served": True, "storage": True}],
                },
            }
        if path not in self.collections:
            return {"items": [], "metadata": {}}
        items = self.collections[path]
        sel = query.get("labelSelector")
        if sel and "owner=helm" not in sel:
            k, v = sel.split("=")
            items = [i for i in items if (i["metadata"].get("labels") or {}).get(k) == v]
        limit = int(query.get("limit") or 0) or len(items) or 1
        if self.page:
            limit = min(limit, self.page)
        start = int(query.get("continue") or 0)
        chunk = items[start : start + limit]
        more = start + limit < len(items)
        return {"items": chunk, "metadata": {"continue": str(start + limit) if more else None, "resourceVersion": "1"}}

    def get(self, path):
        return self.call("get", "GET", path)

    def list(self, path, label_selector=None):
        return self.call("list", "GET", path, query={"labelSelector": label_selector} if label_selector else None)

    def apply(self, path, obj, field_manager, force=True, dry_run=False):
        self._count("dry-run" if dry_run else "patch")
        self.applied.append((path, dry_run, obj))
        return dict(obj, metadata=dict(obj["metadata"], uid="new"))

    def delete(self, path, propagation="Background"):
        self._count("delete")


def cluster(n_claims=3, page=None, **extra):
    objs = [ec2nodeclass("default", userData="#!/bin/bash\necho hello\n"), nodepool("general"), nodepool("batch")]
    colls = {
        resource.EC2NODECLASS.path(): [live(objs[0], 1)],
        resource.NODEPOOL.path(): [live(objs[1], 2), live(objs[2], 3)],
        resource.NODECLAIM.path(): [
            {
                "metadata": {"name": "c%d" % i, "managedFields": [{}], "labels": {"karpenter.sh/nodepool": "general"}},
                "status": {"providerID": "aws:///x/i-%d" % i},
            }
            for i in range(n_claims)
        ],
        "/api/v1/nodes": [
            {
                "metadata": {"name": "n1", "labels": {"a": "b"}, "managedFields": [{}]},
                "status": {"images": ["big"] * 3, "capacity": {"cpu": "4"}},
            }
        ],
        "/api/v1/namespaces/karpenter/configmaps": [
            {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "x"}},
            {
                "metadata": {"name": "settings", "uid": "x"},
                "data": {"batchMaxDuration": "10s", "webhook_token": "abcdef123456"},
            },
        ],
        "/api/v1/namespaces/karpenter/secrets": [
            helm_secret({"settings": {"clusterName": "prod"}, "aws": {"secretAccessKey": "wJalrXUtnFEMIK7MDENG"}})
        ],
    }
    colls.update(extra)
    return FakeApi(colls, page=page), objs


PARAMS = dict(
    cluster_name="prod",
    namespace="karpenter",
    helm_release="karpenter",
    label_selector=None,
    include_configmaps=True,
    include_helm=True,
    include_inventory=True,
    secret_policy="redact",
    keep_last=None,
    max_age_days=None,
)


def take(tmp_path, api, **over):
    p = dict(PARAMS, dest=str(tmp_path / "out"), **over)
    return backup_run.do_backup(api, None, p), p


# ------------------------------------------------------------------------------------------------ backup


def test_backup_is_clean_ordered_checksummed_and_paginated(tmp_path):
    api, objs = cluster(n_claims=1200, page=500)
    res, p = take(tmp_path, api)
    path = res["archive"]["path"]
    assert os.path.basename(path) == res["archive"]["name"] and bk.parse_archive_name(path)[0] == "prod"
    arc = bk.open_archive(path)
    # clean manifests: exactly what was applied, no server fields, in apply order
    assert arc.objects["EC2NodeClass"] == [objs[0]]
    assert arc.objects["NodePool"] == sorted(objs[1:], key=lambda o: o["metadata"]["name"])
    assert arc.manifest["restore_order"] == ["ConfigMap", "EC2NodeClass", "NodePool", "NodeOverlay"]
    assert arc.manifest["counts"]["NodeClaim (inventory)"] == 1200
    # version: the chart release the fake cluster runs; pinned_crd_version: the CRDs this collection validates
    # against (karpenter crds.KARPENTER_VERSION, v1.15.0 since the sandbox moved to it)
    assert arc.manifest["karpenter"] == dict(
        arc.manifest["karpenter"], version="1.14.1", version_source="helm", pinned_crd_version="v1.15.0"
    )
    assert arc.manifest["karpenter"]["crds"]["kwoknodeclasses.karpenter.kwok.sh"] == {"present": False}
    # the ConfigMap's secret-ish key and the helm secret value are redacted; kube-root-ca.crt is skipped
    assert [c["metadata"]["name"] for c in arc.objects["ConfigMap"]] == ["settings"]
    assert arc.objects["ConfigMap"][0]["data"] == {"batchMaxDuration": "10s", "webhook_token": bk.REDACTED}
    assert {(r["object"], r["path"]) for r in arc.manifest["redactions"]} == {
        ("ConfigMap/settings", "data.webhook_token"),
        ("HelmRelease/karpenter", "values.aws.secretAccessKey"),
    }
    with tarfile.open(path, "r:gz") as tar:
        names = tar.getnames()
        assert names[0] == "manifest.json"
        blob = b"".join(tar.extractfile(m).read() for m in tar if m.isfile())
    assert b"wJalrXUtnFEMIK7MDENG" not in blob and b"abcdef123456" not in blob and b"kind: Secret" not in blob
    assert b"managedFields" not in blob and b'"images"' not in blob
    # O(kinds) requests: 1200 NodeClaims in 3 pages, not 1200 requests; no write
    assert api.counts["list"] == 3 + 3 + 1 + 1 + 1  # ConfigMaps, EC2NodeClasses, NodePools, NodeOverlays,
    assert api.writes == 0  # (cont.) 3 NodeClaim pages, nodes, helm secrets -> 9 LISTs


def test_check_mode_backup_writes_no_file(tmp_path):
    api, unused = cluster()
    p = dict(PARAMS, dest=str(tmp_path / "out"))
    res = backup_run.do_backup(api, None, p, check_mode=True)
    assert res["manifest"]["counts"]["NodePool"] == 2 and "path" not in res["archive"]
    assert not os.path.exists(p["dest"])


def test_secret_policy_fail_writes_nothing(tmp_path):
    api, unused = cluster()
    with pytest.raises(bk.BackupError, match="credential-looking"):
        take(tmp_path, api, secret_policy="fail")
    assert not os.path.exists(str(tmp_path / "out"))


def test_missing_karpenter_crd_is_a_clear_error(tmp_path):
    api, unused = cluster()
    api.CRDS = {k: v for k, v in FakeApi.CRDS.items() if k != "nodepools.karpenter.sh"}
    with pytest.raises(bk.BackupError, match="CRD nodepools.karpenter.sh is not installed"):
        take(tmp_path, api)


# ------------------------------------------------------------------------------------------------ redaction


@pytest.mark.parametrize(
    "value,reason",
    [
        ("key AKIAIOSFODNN7EXAMPLE here", "aws-access-key-id"),
        ("-----BEGIN RSA PRIVATE KEY-----\nabc", "private-key"),
        ("export AWS_SECRET_ACCESS_KEY=abcdefghijkl", "credential-assignment"),
        ("password: hunter2hunter2", "credential-assignment"),
    ],
)
def test_redact_values(value, reason):
    out, found = bk.redact({"spec": {"userData": value}})
    assert out == {"spec": {"userData": bk.REDACTED}} and found == [("spec.userData", reason)]


def test_redact_keeps_ordinary_values_and_keys_only_when_asked():
    obj = {
        "data": {"token": "abc", "region": "us-east-1", "password": ""},
        "env": [{"name": "API_TOKEN", "value": "v"}, {"name": "REGION", "value": "x"}],
        "tolerations": [{"key": "gpu"}],
    }
    same, found = bk.redact(obj)
    assert same == obj and found == []
    out, found = bk.redact(obj, by_key=True)
    assert out["data"] == {"token": bk.REDACTED, "region": "us-east-1", "password": ""}
    assert out["env"] == [{"name": "API_TOKEN", "value": bk.REDACTED}, {"name": "REGION", "value": "x"}]
    assert out["tolerations"] == [{"key": "gpu"}]
    assert sorted(p for p, unused in found) == ["data.token", "env[0].value"]


SECRET = "Zx9/kQ2+wEr7tYu1iOp3aSd5fGh8jKl0mNb4vCx6"  # shaped like an AWS secret access key


@pytest.mark.parametrize(
    "text,reason",
    [
        ("aws configure set aws_secret_access_key %s" % SECRET, "credential-argument"),
        ("aws configure set profile.prod.aws_session_token %s --profile prod" % SECRET, "credential-argument"),
        ('{"AccessKeyId": "id", "SecretAccessKey": "%s"}' % SECRET, "credential-assignment"),
        ('{"Credentials": {"SessionToken": "%s"}}' % SECRET, "credential-assignment"),
        ("[default]\naws_secret_access_key = %s\n" % SECRET, "credential-assignment"),
        ("curl -H 'Authorization: Bearer k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8' https://x", "eks-token"),
        ("kubectl --token k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdz get pods", "eks-token"),
        ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA==' https://x", "authorization-header"),
        ("curl -H 'X: Bearer 0123abcdEFGH.ijkl' https://x", "bearer-token"),
        ("mysql -h db -u app -p%s mydb" % "s3cr", "credential-argument"),
        ("mysqldump -uroot -p'pa ss' db > out.sql", "credential-argument"),
        ("mysql --host=db --password=%s" % SECRET, "credential-assignment"),
        ("PGPASSWORD=pw psql -h db", "credential-assignment"),
        ("export MYSQL_PWD=abc", "credential-assignment"),
        ("helm repo add x https://x --password %s" % SECRET, "credential-argument"),
        ("git clone https://deploy:%s@git.example.com/r.git" % "hunter22", "url-credentials"),
        ("GH=ghp_%s" % ("a1" * 18), "api-token"),
    ],
)
def test_redact_credential_forms(text, reason):
    obj = {"spec": {"userData": "#!/bin/bash\nset -e\n%s\necho done\n" % text, "role": "KarpenterNodeRole"}}
    out, found = bk.redact(obj)
    assert out == {"spec": {"userData": bk.REDACTED, "role": "KarpenterNodeRole"}}
    assert [p for p, unused in found] == ["spec.userData"] and found[0][1] == reason
    assert SECRET not in repr(found)


@pytest.mark.parametrize(
    "text",
    [
        "aws configure set region us-east-1",
        "aws configure set aws_access_key_id AKIDEXAMPLE",
        "mysql -h db -u app -P3306 mydb",
        "mysql -h db -u app -p mydb",  # prompts for the password
        "mkdir -p /var/lib/app && docker run -p 8080:80 app",
        "PGPASSWORD=$DB_PASSWORD psql -h db",
        'password: "{{ vault_db_password }}"',
        "password_file=/etc/app/pw --token-file /var/run/token",
        "the API needs a bearer token; see docs",
        "Authorization is done by the IAM role",
        "https://example.com:8443/path",
        '{"AccessKeyId": "AKIDEXAMPLE", "Expiration": "2026-01-01"}',
    ],
)
def test_redact_keeps_non_secrets(text):
    obj = {"spec": {"userData": "#!/bin/bash\n%s\n" % text}}
    assert bk.redact(obj) == (obj, [])


# ------------------------------------------------------------------------------------------------ archive integrity


def _members(path):
    with tarfile.open(path, "r:gz") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]


def _repack(members, dst):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open(dst, "wb") as f:
        f.write(gzip.compress(buf.getvalue()))


def test_tampering_truncation_and_format_are_refused(tmp_path):
    api, unused = cluster()
    res, unused = take(tmp_path, api)
    good = res["archive"]["path"]
    members = _members(good)

    tampered = [(n, d.replace(b'cpu: "100"', b'cpu: "999"') if n.endswith("nodepools.yaml") else d) for n, d in members]
    assert tampered != members
    _repack(tampered, str(tmp_path / "t.tar.gz"))
    with pytest.raises(bk.BackupError, match=r"resources/30-nodepools.yaml: sha256 \w+ \(size \d+\) != manifest"):
        bk.open_archive(str(tmp_path / "t.tar.gz"))

    _repack([m for m in members if not m[0].startswith("inventory/nodes")], str(tmp_path / "m.tar.gz"))
    with pytest.raises(bk.BackupError, match="inventory/nodes.jsonl: missing from the archive"):
        bk.open_archive(str(tmp_path / "m.tar.gz"))

    _repack(members + [("extra.yaml", b"x")], str(tmp_path / "x.tar.gz"))
    with pytest.raises(bk.BackupError, match="extra.yaml: not listed in the manifest"):
        bk.open_archive(str(tmp_path / "x.tar.gz"))

    manifest = json.loads(members[0][1])
    _repack(
        [("manifest.json", json.dumps(dict(manifest, format_version=99)).encode())] + members[1:],
        str(tmp_path / "v.tar.gz"),
    )
    with pytest.raises(bk.BackupError, match="unsupported format_version 99"):
        bk.open_archive(str(tmp_path / "v.tar.gz"))

    data = open(good, "rb").read()
    open(str(tmp_path / "trunc.tar.gz"), "wb").write(data[: len(data) // 2])
    with pytest.raises(bk.BackupError, match="truncated or corrupted|not a readable"):
        bk.open_archive(str(tmp_path / "trunc.tar.gz"))

    with pytest.raises(bk.BackupError, match="does not exist"):
        bk.open_archive(str(tmp_path / "nope.tar.gz"))


def test_interrupted_backup_leaves_no_archive(tmp_path):
    api, unused = cluster()
    staging = bk.stage_dir()
    try:
        manifest = bk.collect(api, staging, "prod")
        out = str(tmp_path / "out")
        name = bk.archive_name("prod", bk.utcnow())
        with pytest.raises(bk.BackupError, match="interrupted"):
            bk.write_archive(staging, manifest, out, name, fail_after=2)
        assert os.listdir(out) == []  # the temporary file is removed on error
    finally:
        bk.remove_dir(staging)


def test_killed_backup_leaves_only_a_hidden_partial_file(tmp_path):
    """A SIGKILL-like death mid-write: only ``.karpenter-backup.*.partial-*`` remains, never listed or restorable."""
    out = str(tmp_path / "out")
    script = (
        "import os, tarfile, sys\n"
        "from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import core as bk\n"
        "staging = bk.stage_dir()\n"
        "open(os.path.join(staging, 'a'), 'wb').write(os.urandom(1 << 20))\n"
        "manifest = dict(format=bk.FORMAT, format_version=1, files=[dict(path='a'), dict(path='a')])\n"
        "real = tarfile.TarFile.addfile\n"
        "calls = []\n"
        "def addfile(self, *a, **k):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 3: os._exit(9)\n"
        "    return real(self, *a, **k)\n"
        "tarfile.TarFile.addfile = addfile\n"
        "bk.write_archive(staging, manifest, sys.argv[1], bk.archive_name('prod', bk.utcnow()))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    res = subprocess.run([sys.executable, "-c", script, out], env=env, capture_output=True, check=False)
    assert res.returncode == 9, res.stderr
    left = os.listdir(out)
    assert len(left) == 1 and bk.PARTIAL_RE.match(left[0]) and bk.parse_archive_name(left[0]) is None
    assert bk.list_local(out) == []
    with pytest.raises(bk.BackupError):
        bk.open_archive(os.path.join(out, left[0]))


def _leftovers(tmp):
    return sorted(n for n in os.listdir(tmp) if n.startswith("karpenter-"))


def test_later_run_removes_leftovers_of_a_killed_run_not_of_a_live_one(tmp_path):
    """Killed writer: its partial file and staging directory go; a live writer's stay, however old."""
    out, tmp = str(tmp_path / "out"), str(tmp_path / "tmp")
    os.makedirs(tmp)
    script = (
        "import os, sys, time\n"
        "from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import core as bk\n"
        "staging = bk.stage_dir()\n"
        "open(os.path.join(staging, 'a'), 'wb').write(b'x')\n"
        "os.makedirs(sys.argv[1], exist_ok=True)\n"
        "name = '.' + bk.archive_name(sys.argv[2], bk.utcnow()) + '.partial-' + bk.writer_tag() + 'abc'\n"
        "open(os.path.join(sys.argv[1], name), 'wb').write(b'half')\n"
        "print('ready', flush=True)\n"
        "if sys.argv[3] == 'kill': os._exit(9)\n"
        "sys.stdin.read()\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), TMPDIR=tmp)
    dead = subprocess.run(
        [sys.executable, "-c", script, out, "dead", "kill"], env=env, capture_output=True, check=False
    )
    assert dead.returncode == 9, dead.stderr
    live = subprocess.Popen(
        [sys.executable, "-c", script, out, "live", "wait"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert live.stdout.readline().strip() == b"ready"
        assert len(_leftovers(tmp)) == 2 and len(os.listdir(out)) == 2
        week_ago = time.time() - 7 * 86400
        for d in (out, tmp):
            for n in os.listdir(d):
                os.utime(os.path.join(d, n), (week_ago, week_ago))
                if os.path.isdir(os.path.join(d, n)):
                    os.utime(os.path.join(d, n, "a"), (week_ago, week_ago))
        # not ours: an archive, an unrelated hidden file, someone's directory named otherwise
        open(os.path.join(out, bk.archive_name("prod", bk.utcnow())), "wb").write(b"x")
        open(os.path.join(out, ".keep"), "wb").write(b"x")
        os.makedirs(os.path.join(tmp, "other-dir"))

        assert bk.remove_stale(out, tmp, check_mode=True) != []  # check mode: told, nothing removed
        assert len(_leftovers(tmp)) == 2 and len(os.listdir(out)) == 4

        removed = bk.remove_stale(out, tmp)
        assert len(removed) == 2 and all(r["reason"].startswith("its writer (process ") for r in removed)
        assert any(".partial-" in r["path"] and "dead" in r["path"] for r in removed)
        left_out = sorted(os.listdir(out))
        assert ".keep" in left_out and bk.archive_name("prod", bk.utcnow())[:20] in "".join(left_out)
        assert [n for n in left_out if ".partial-" in n and "live" in n] and not [n for n in left_out if "dead" in n]
        assert len(_leftovers(tmp)) == 1 and os.path.isdir(os.path.join(tmp, "other-dir"))
        assert os.path.exists(os.path.join(tmp, _leftovers(tmp)[0], "a"))  # the live writer's staging is intact
    finally:
        live.communicate(b"")
    assert live.returncode == 0
    # once the live writer is gone too, its leftovers go
    assert (
        len(bk.remove_stale(out, tmp)) == 2
        and _leftovers(tmp) == []
        and [n for n in os.listdir(out) if ".partial-" in n] == []
    )


def test_leftovers_of_other_hosts_and_older_runs_go_by_age(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    other = ".karpenter-backup.prod.20260101T000000.000Z.tar.gz.partial-00000000_1_xyz"
    untagged = ".karpenter-backup.prod.20260101T000000.000Z.tar.gz.partial-k2j_9a"
    for n in (other, untagged):
        (out / n).write_bytes(b"x")
    empty = str(tmp_path / "empty-tmp")
    os.makedirs(empty)
    assert bk.remove_stale(str(out), empty) == []  # fresh: a writer elsewhere may be busy with it
    old = time.time() - bk.STALE_AGE.total_seconds() - 60
    os.utime(out / other, (old, old))
    removed = bk.remove_stale(str(out), empty)
    assert [os.path.basename(r["path"]) for r in removed] == [other] and "on another host" in removed[0]["reason"]
    os.utime(out / untagged, (old, old))
    removed = bk.remove_stale(str(out), empty)
    assert [os.path.basename(r["path"]) for r in removed] == [untagged] and "older run" in removed[0]["reason"]
    assert os.listdir(out) == []


# ------------------------------------------------------------------------------------------------ retention


def _arch(name, days_ago, now):
    return {"name": name, "created": now - datetime.timedelta(days=days_ago)}


def test_select_expired():
    now = datetime.datetime(2026, 6, 1, tzinfo=UTC)
    arcs = [_arch("a%d" % i, i * 10, now) for i in range(5)]  # newest first: 0, 10, 20, 30, 40 days old

    def names(xs):
        return [x["name"] for x in xs]

    assert names(bk.select_expired(arcs, keep_last=2, now=now)) == ["a2", "a3", "a4"]
    assert names(bk.select_expired(arcs, max_age_days=25, now=now)) == ["a3", "a4"]
    assert names(bk.select_expired(arcs, keep_last=4, max_age_days=15, now=now)) == ["a4"]
    assert names(bk.select_expired(arcs, keep_last=1, now=now, protect=("a1",))) == ["a2", "a3", "a4"]
    assert bk.select_expired(arcs, now=now) == []


def test_local_retention_only_touches_our_archives(tmp_path):
    api, unused = cluster(n_claims=0)
    dest = tmp_path / "out"
    dest.mkdir()
    t0 = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    foreign = dest / bk.archive_name("prod", t0 - datetime.timedelta(days=1))
    foreign.write_bytes(gzip.compress(b"not ours"))
    other_cluster = dest / bk.archive_name("staging", t0)
    other_cluster.write_bytes(b"x")
    (dest / "notes.txt").write_text("x")
    p = dict(PARAMS, dest=str(dest), keep_last=2)
    made = []
    for i in range(4):
        res = backup_run.do_backup(api, None, p, now=t0 + datetime.timedelta(hours=i))
        made.append(res["archive"]["path"])
    assert sorted(os.listdir(dest)) == sorted(
        [os.path.basename(x) for x in made[2:]] + [foreign.name, other_cluster.name, "notes.txt"]
    )
    assert res["retention"]["deleted"] == [made[1]]
    # check mode: reports what retention would delete, deletes and writes nothing
    before = sorted(os.listdir(dest))
    res = backup_run.do_backup(api, None, dict(p, keep_last=1), check_mode=True, now=t0 + datetime.timedelta(hours=9))
    assert res["retention"]["deleted"] == [made[2]] and sorted(os.listdir(dest)) == before


# ------------------------------------------------------------------------------------------------ restore (offline part)


def restore_api(extra_live=None):
    api, unused = cluster()
    api.collections = {
        resource.EC2NODECLASS.path(): [],
        resource.NODEPOOL.path(): [],
        resource.KWOKNODECLASS.path(): [],
    }
    api.collections.update(extra_live or {})
    return api


def archive_of(tmp_path, objs, cluster_name="prod"):
    src = FakeApi(
        {
            resource.EC2NODECLASS.path(): [o for o in objs if o["kind"] == "EC2NodeClass"],
            resource.NODEPOOL.path(): [o for o in objs if o["kind"] == "NodePool"],
        }
    )
    res, unused = take(
        tmp_path, src, cluster_name=cluster_name, include_inventory=False, include_helm=False, include_configmaps=False
    )
    return bk.open_archive(res["archive"]["path"])


def test_restore_check_mode_plans_in_order_without_writes(tmp_path):
    arc = archive_of(tmp_path, [ec2nodeclass("default"), nodepool("general")])
    api = restore_api()
    res = bk.restore(api, arc, cluster_name="prod", check_mode=True)
    assert [(r["kind"], r["action"]) for r in res["results"]] == [("EC2NodeClass", "create"), ("NodePool", "create")]
    assert res["changed"] and api.writes == 0 and api.applied == []
    np_after = [d["after"] for d in res["diff"] if d["after_header"] == "NodePool/general"][0]
    assert np_after["spec"]["disruption"]["consolidateAfter"] == "0s"  # defaulted like the apiserver would


def test_restore_applies_nodeclasses_before_nodepools(tmp_path):
    arc = archive_of(tmp_path, [ec2nodeclass("default"), nodepool("general")])
    api = restore_api()
    bk.restore(api, arc, cluster_name="prod")
    # every object dry-run first (nothing stored), then written in dependency order
    assert [(path.split("/")[-2], dry) for path, dry, unused in api.applied] == [
        ("ec2nodeclasses", True),
        ("nodepools", True),
        ("ec2nodeclasses", False),
        ("nodepools", False),
    ]


@pytest.mark.parametrize("stored_pools", [0, 1])
def test_a_restore_failing_after_writes_reports_changed_and_what_was_written(tmp_path, stored_pools):
    """The apiserver goes away after the EC2NodeClass (and ``stored_pools`` NodePools) were written: the error
    carries changed=true and exactly those objects, whether or not the failing kind wrote anything itself."""
    arc = archive_of(tmp_path, [ec2nodeclass("default"), nodepool("batch"), nodepool("general")])
    api = restore_api()
    apply = api.apply

    def dying(path, obj, field_manager, force=True, dry_run=False):
        if not dry_run and api.counts.get("patch", 0) >= 1 + stored_pools:
            raise KubeError("cannot reach the Kubernetes API: connection refused")
        return apply(path, obj, field_manager, force=force, dry_run=dry_run)

    api.apply = dying
    with pytest.raises(KubeError, match="cannot reach") as e:
        bk.restore(api, arc, cluster_name="prod")
    stored = [path.rsplit("/", 2)[-2:] for path, dry, unused in api.applied if not dry]
    result = e.value.result
    assert result is not None and result["changed"] is True and len(stored) == 1 + stored_pools
    assert result["written"] == [
        "%s/%s" % ({"ec2nodeclasses": "EC2NodeClass"}.get(p, "NodePool"), n) for p, n in stored
    ]
    # the failing kind's objects are listed when some of them were written (marked failed / not attempted)
    failed = sorted(r["name"] for r in result["results"] if r.get("error"))
    assert failed == (sorted({"batch", "general"} - {n for unused, n in stored}) if stored_pools else [])
    assert e.value.fail_kwargs()["changed"] is True


def test_restore_invalid_object_writes_nothing(tmp_path):
    arc = archive_of(tmp_path, [ec2nodeclass("default"), nodepool("general", operator="Within")])
    api = restore_api()
    with pytest.raises(bk.BackupError, match=r"NodePool/general: spec.template.spec.requirements\[0\].operator") as e:
        bk.restore(api, arc, cluster_name="prod")
    assert "nothing was restored" in str(e.value) and api.writes == 0


def test_restore_unknown_nodeclass_reference_writes_nothing(tmp_path):
    arc = archive_of(tmp_path, [nodepool("general", nodeclass="missing")])
    api = restore_api()
    with pytest.raises(bk.BackupError, match="KPL004"):
        bk.restore(api, arc, cluster_name="prod")
    assert api.writes == 0


def test_restore_into_another_cluster_needs_an_explicit_rewrite(tmp_path):
    arc = archive_of(tmp_path, [ec2nodeclass("default"), nodepool("general")])
    with pytest.raises(bk.BackupError, match="taken from cluster 'prod', not 'dr'"):
        bk.restore(restore_api(), arc, cluster_name="dr", check_mode=True)
    mapping = {
        "KarpenterNodeRole-prod": "KarpenterNodeRole-dr",
        "prod": "dr",
        "kubernetes.io/cluster/prod": "kubernetes.io/cluster/dr",
        "unused": "x",
    }
    res = bk.restore(restore_api(), arc, cluster_name="dr", rewrites=mapping, check_mode=True)
    nc = [d["after"] for d in res["diff"] if d["after_header"] == "EC2NodeClass/default"][0]["spec"]
    assert nc["role"] == "KarpenterNodeRole-dr"
    assert nc["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "dr"}}]
    assert nc["securityGroupSelectorTerms"] == [
        {"tags": {"karpenter.sh/discovery": "dr", "kubernetes.io/cluster/dr": "owned"}}
    ]
    assert nc["tags"] == {"cluster": "dr", "team": "platform"}
    assert ("spec.role", "KarpenterNodeRole-prod", "KarpenterNodeRole-dr") in [
        (c["path"], c["from"], c["to"]) for c in res["rewrites"]
    ]
    assert any("'unused' matched nothing" in w for w in res["warnings"])
    # NodePools are not rewritten
    np = [d["after"] for d in res["diff"] if d["after_header"] == "NodePool/general"][0]
    assert np["metadata"]["labels"]["team"] == "a"


def test_restore_conflict_skip_and_overwrite(tmp_path):
    arc = archive_of(tmp_path, [ec2nodeclass("default"), nodepool("general")])
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import default

    changed = live(default(nodepool("general")))  # stored objects are defaulted by the apiserver
    changed["spec"]["limits"]["cpu"] = "5"
    same = live(default(ec2nodeclass("default")))
    extra = {resource.NODEPOOL.path(): [changed], resource.EC2NODECLASS.path(): [same]}
    res = bk.restore(restore_api(extra), arc, cluster_name="prod", conflict="skip", check_mode=True)
    assert res["conflicts"] == [{"kind": "NodePool", "name": "general", "reason": "exists and differs (conflict=skip)"}]
    assert [(r["kind"], r["action"]) for r in res["results"]] == [("EC2NodeClass", "update")]  # only our label differs
    res = bk.restore(restore_api(extra), arc, cluster_name="prod", conflict="overwrite", check_mode=True)
    assert res["conflicts"] == [] and ("NodePool", "update") in [(r["kind"], r["action"]) for r in res["results"]]


def test_restore_refuses_redacted_objects_unless_excluded(tmp_path):
    secret = ec2nodeclass("default", userData="export AWS_SECRET_ACCESS_KEY=abcdefghijklmnop\n")
    arc = archive_of(tmp_path, [secret, ec2nodeclass("other")])
    api = restore_api()
    with pytest.raises(
        bk.BackupError, match=r"EC2NodeClass/default: values were redacted at backup time \(spec.userData\)"
    ):
        bk.restore(api, arc, cluster_name="prod")
    assert api.writes == 0
    res = bk.restore(restore_api(), arc, cluster_name="prod", exclude=["EC2NodeClass/default"], check_mode=True)
    assert [r["name"] for r in res["results"]] == ["other"]


def test_restore_needs_the_served_api_version(tmp_path):
    arc = archive_of(tmp_path, [ec2nodeclass("default")])
    api = restore_api()
    api.CRDS = dict(
        FakeApi.CRDS, **{"ec2nodeclasses.karpenter.k8s.aws": ("karpenter.k8s.aws", "EC2NodeClass", "v1beta1")}
    )
    with pytest.raises(bk.BackupError, match=r"serves ec2nodeclasses.karpenter.k8s.aws \['v1beta1'\]"):
        bk.restore(api, arc, cluster_name="prod")
    assert api.writes == 0


def _forged_archive(tmp_path, objs_by_file):
    """An archive whose resources files hold ``objs_by_file`` (raw YAML text), with a consistent manifest:
    what a hand-edited or foreign archive looks like - the checksums pass, the content is wrong."""
    path = archive_of(tmp_path, [ec2nodeclass("default")]).name
    path = os.path.join(str(tmp_path / "out"), path)
    members = dict(_members(path))
    manifest = json.loads(members["manifest.json"])
    for rel, text in objs_by_file.items():
        members[rel] = text.encode()
        for f in manifest["files"]:
            if f["path"] == rel:
                f["sha256"] = bk.hashlib.sha256(members[rel]).hexdigest()
                f["size"] = len(members[rel])
    members["manifest.json"] = json.dumps(manifest).encode()
    forged = str(tmp_path / ("forged-%d.tar.gz" % len(os.listdir(str(tmp_path)))))
    _repack(list(members.items()), forged)
    return forged


@pytest.mark.parametrize("spec", ["spec: null\n", ""])
def test_restore_refuses_an_ec2nodeclass_without_spec(tmp_path, spec):
    text = "---\napiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: default\n" + spec
    arc = bk.open_archive(_forged_archive(tmp_path, {"resources/20-ec2nodeclasses.yaml": text}))
    nc = default(ec2nodeclass("default"))
    api = restore_api({resource.EC2NODECLASS.path(): [live(nc)]})
    with pytest.raises(bk.BackupError, match=r"EC2NodeClass/default: spec\b") as exc:
        bk.restore(api, arc, cluster_name="prod", conflict="overwrite")
    assert "nothing was restored" in str(exc.value) and api.writes == 0


def test_restore_of_a_huge_name_gives_a_bounded_error(tmp_path):
    huge = "a" * (1 << 20)
    text = "---\napiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: %s\nspec: {}\n" % huge
    arc = bk.open_archive(_forged_archive(tmp_path, {"resources/20-ec2nodeclasses.yaml": text}))
    api = restore_api()
    with pytest.raises(bk.BackupError, match=r"is not a valid DNS subdomain") as exc:
        bk.restore(api, arc, cluster_name="prod")
    assert len(str(exc.value)) < 2000 and len(json.dumps(exc.value.details)) < 2000
    assert "... (1048576 characters)" in str(exc.value) and api.writes == 0


# ------------------------------------------------------------------------------------------------ parameters
# Every numeric and enum parameter is checked before anything is read or written (the module calls
# backup_run.check_params before it connects; do_backup/do_restore/do_verify/do_list call it too).


def _old_archive(dest, days_ago):
    """An archive of ours, ``days_ago`` old, in ``dest``."""
    api, unused = cluster(n_claims=0)
    when = bk.utcnow() - datetime.timedelta(days=days_ago)
    res = backup_run.do_backup(api, None, dict(PARAMS, dest=str(dest)), now=when)
    return res["archive"]["path"]


@pytest.mark.parametrize(
    "param,value,needle",
    [
        ("max_age_days", -1, "max_age_days must be at least 1, got -1"),
        ("max_age_days", 0, "max_age_days must be at least 1, got 0"),
        ("keep_last", 0, "keep_last must be at least 1, got 0"),
        ("keep_last", -2, "keep_last must be at least 1, got -2"),
        ("request_timeout", 0, "request_timeout must be a positive number of seconds, got 0"),
        ("request_timeout", -5, "request_timeout must be a positive number of seconds, got -5"),
        ("namespace", "Karpenter_NS", "namespace 'Karpenter_NS' is not a valid namespace name"),
        ("namespace", "k" * 64, "is not a valid namespace name"),
        ("namespace", "", "namespace '' is not a valid namespace name"),
        ("helm_release", "karpenter,status=x", "helm_release 'karpenter,status=x' is not a valid Helm release name"),
        ("secret_policy", "ignore", "secret_policy must be one of redact, fail, got 'ignore'"),
        ("state", "gone", "state must be one of present, restored, verified, listed, got 'gone'"),
        ("conflict", "merge", "conflict must be one of skip, overwrite, got 'merge'"),
        ("cluster_name", "prod.eu", "cluster_name 'prod.eu' is not a valid EKS cluster name"),
    ],
)
def test_bad_parameters_are_refused_before_the_cluster_is_read(tmp_path, param, value, needle):
    dest = tmp_path / "out"
    kept = _old_archive(dest, days_ago=3)
    api, unused = cluster()
    with pytest.raises(bk.BackupError) as exc:
        backup_run.do_backup(api, None, dict(PARAMS, dest=str(dest), **{param: value}))
    assert needle in str(exc.value)
    assert api.counts == {} and not exc.value.written
    assert sorted(os.listdir(dest)) == [os.path.basename(kept)]  # nothing written, nothing deleted
    with pytest.raises(bk.BackupError, match=needle.split(",")[0]):
        backup_run.check_params(dict(PARAMS, dest=str(dest), **{param: value}))


def test_retention_values_say_what_they_mean(tmp_path):
    with pytest.raises(bk.BackupError) as exc:
        backup_run.check_params(dict(PARAMS, keep_last=0, max_age_days=-1))
    text = str(exc.value)
    assert "2 invalid parameters" in text and len(exc.value.details) == 2
    assert "keep_last must be at least 1, got 0: the number of newest archives kept" in text
    assert "max_age_days must be at least 1, got -1: archives older than this many days are deleted" in text


def test_good_parameters_pass():
    backup_run.check_params(dict(PARAMS, keep_last=1, max_age_days=1, request_timeout=1, state="present"))
    backup_run.check_params(
        dict(PARAMS, state="restored", conflict="overwrite", kinds=["NodePool", "EC2NodeClass"], exclude=["NodePool/a"])
    )


@pytest.mark.parametrize(
    "param,value,needle",
    [
        ("kinds", ["NodePools"], "kinds: unknown kind 'NodePools'"),
        ("kinds", ["NodePool", "Secret"], "kinds: unknown kind 'Secret'"),
        ("exclude", ["nodepool/general"], "exclude: 'nodepool/general' is not Kind/name with a restorable kind"),
        ("exclude", ["general"], "exclude: 'general' is not Kind/name"),
        ("request_timeout", 0, "request_timeout must be a positive number of seconds"),
    ],
)
def test_bad_restore_parameters_are_refused_before_the_cluster_is_read(tmp_path, param, value, needle):
    archive_of(tmp_path, [ec2nodeclass("default"), nodepool("general")])
    api = restore_api()
    p = dict(PARAMS, state="restored", dest=str(tmp_path / "out"), conflict="skip", **{param: value})
    with pytest.raises(bk.BackupError) as exc:
        backup_run.do_restore(api, None, p)
    assert needle in str(exc.value) and api.counts == {}
    if param == "kinds":  # names the allowed ones
        assert "ConfigMap, EC2NodeClass, KWOKNodeClass, NodePool, NodeOverlay" in str(exc.value)


@pytest.mark.parametrize("check_mode", [False, True], ids=["real", "check"])
@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_an_unwritable_dest_is_refused_before_the_cluster_is_read(tmp_path, where, check_mode):
    """Was a raw OSError after the whole cluster (inventory included) had been read."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    dest = blocker / "backups" if where == "under-a-file" else blocker
    api, unused = cluster()
    with pytest.raises(bk.BackupError, match=r"dest %s" % re.escape(str(dest))) as exc:
        backup_run.do_backup(api, None, dict(PARAMS, dest=str(dest)), check_mode=check_mode)
    assert api.counts == {} and not exc.value.written
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_dest_is_refused_before_the_cluster_is_read(tmp_path):
    dest = tmp_path / "ro"
    dest.mkdir()
    dest.chmod(0o500)
    try:
        api, unused = cluster()
        with pytest.raises(bk.BackupError, match="is not writable"):
            backup_run.do_backup(api, None, dict(PARAMS, dest=str(dest)))
        assert api.counts == {}
    finally:
        dest.chmod(0o700)


def test_a_dest_the_probe_cannot_write_to_is_refused_before_the_cluster_is_read(tmp_path, monkeypatch):
    """What counts is whether a file can be created (read-only file systems, ACLs), not the mode bits."""
    dest = tmp_path / "out"
    dest.mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(bk.tempfile, "mkstemp", refuse)
    api, unused = cluster()
    with pytest.raises(bk.BackupError, match=r"dest .*/out is not writable: Permission denied"):
        backup_run.do_backup(api, None, dict(PARAMS, dest=str(dest)))
    assert api.counts == {}


def test_check_mode_creates_no_dest(tmp_path):
    dest = tmp_path / "new" / "dir"
    api, unused = cluster()
    backup_run.do_backup(api, None, dict(PARAMS, dest=str(dest)), check_mode=True)
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------------------------------------ malformed archives


@pytest.mark.parametrize(
    "text,what",
    [
        ("--- just a string\n", "a string"),
        ("---\n- a\n- list\n", "a list"),
        ("--- 42\n", "an integer"),
    ],
)
def test_an_archive_document_that_is_not_an_object_is_a_clear_error(tmp_path, text, what):
    """Was "'str' object has no attribute 'get'" from the restore."""
    path = _forged_archive(tmp_path, {"resources/30-nodepools.yaml": text})
    message = r"resources/30-nodepools.yaml: document 1 is %s, not a Kubernetes object \(a mapping\)" % what
    with pytest.raises(bk.BackupError, match=message):
        bk.open_archive(path)
    with pytest.raises(bk.BackupError, match=message):
        backup_run.do_restore(restore_api(), None, dict(PARAMS, archive=path, conflict="skip", dest=None))


@pytest.mark.parametrize("metadata", ["x", None, ["a"]])
def test_restore_of_an_object_with_bad_metadata_is_a_clear_error(tmp_path, metadata):
    doc = dict(ec2nodeclass("default"), metadata=metadata)
    text = "---\n" + json.dumps(doc) + "\n"
    arc = bk.open_archive(_forged_archive(tmp_path, {"resources/20-ec2nodeclasses.yaml": text}))
    api = restore_api()
    with pytest.raises(bk.BackupError, match=r"EC2NodeClass/#0: metadata.name None is not a valid DNS subdomain"):
        bk.restore(api, arc, cluster_name="prod", rewrites={"prod": "dr"})
    assert api.writes == 0
