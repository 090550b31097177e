"""karpenter_backup through playbooks/backup.yml and playbooks/restore.yml on the sandbox (apiserver + moto).

Every test scopes its objects with a label (``label_selector``), so it backs up, deletes and restores only
what it created, next to other tests using the same sandbox. The apiserver's audit log is the witness for
"no write request".
"""

import gzip
import io
import json
import os
import subprocess
import tarfile
import uuid

import boto3
import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BACKUP = os.path.join(ROOT, "playbooks", "backup.yml")
RESTORE = os.path.join(ROOT, "playbooks", "restore.yml")
UA = "karpenter-eks-platform/"
HOST = "sandbox"  # inventories/local
LABEL = "it.karpenter-eks/backup"
MANAGED = {engine.MANAGED_BY_LABEL: engine.MANAGED_BY_VALUE}
KINDS = {
    "EC2NodeClass": ("karpenter.k8s.aws", "v1", "ec2nodeclasses"),
    "NodePool": ("karpenter.sh", "v1", "nodepools"),
    "NodeOverlay": ("karpenter.sh", "v1alpha1", "nodeoverlays"),
}

pytestmark = pytest.mark.sandbox


def mine(sandbox, mark, uid):
    """Our module's write requests since ``mark`` on this test's objects (the sandbox is shared)."""
    return [
        (e["verb"], e["objectRef"].get("resource"), e["objectRef"].get("name"))
        for e in sandbox.writes_since(mark, UA)
        if uid in (e["objectRef"].get("name") or "") or uid in (e["objectRef"].get("namespace") or "")
    ]


def task(out, name):
    for play in out["plays"]:
        for t in play["tasks"]:
            if t["task"]["name"] == name:
                return t["hosts"][HOST]
    raise KeyError(name)


def objects(uid, user_data=None):
    labels = {LABEL: uid}
    nc = {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": f"bk-{uid}", "labels": dict(labels)},
        "spec": {
            "role": f"KarpenterNodeRole-{uid}",
            "amiSelectorTerms": [{"alias": "al2023@v20250505"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
            "tags": {"team": "platform"},
        },
    }
    if user_data:
        nc["spec"]["userData"] = user_data

    def pool(name, ref, cpu):
        return {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {
                "template": {
                    "metadata": {"labels": {"example.com/pool": name}},
                    "spec": {
                        "nodeClassRef": ref,
                        "requirements": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                        ],
                    },
                },
                "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "5s"},
                "limits": {"cpu": cpu},
            },
        }

    sandbox_class = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sandbox"}  # Ready in the sandbox
    ec2 = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": f"bk-{uid}"}
    overlay = {
        "apiVersion": "karpenter.sh/v1alpha1",
        "kind": "NodeOverlay",
        "metadata": {"name": f"bk-{uid}", "labels": dict(labels)},
        "spec": {
            "requirements": [{"key": "karpenter.sh/nodepool", "operator": "In", "values": [f"bk-{uid}-a"]}],
            "priceAdjustment": "-10%",
            "weight": 10,
        },
    }
    return [nc, pool(f"bk-{uid}-a", sandbox_class, "64"), pool(f"bk-{uid}-b", ec2, "32"), overlay]


def deployment(name, replicas, pool):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"example.com/pool": pool},
                    "containers": [
                        {"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "1"}}}
                    ],
                },
            },
        },
    }


def live_objects(sandbox, uid):
    out = {}
    for kind, (group, version, plural) in KINDS.items():
        items = sandbox.custom.list_cluster_custom_object(group, version, plural, label_selector=f"{LABEL}={uid}")
        for i in items["items"]:
            out[f"{kind}/{i['metadata']['name']}"] = engine.normalize(i)
    return out


def delete_all(sandbox, uid):
    for kind in ("NodeOverlay", "NodePool", "EC2NodeClass"):
        sandbox.kubectl(
            "delete",
            KINDS[kind][2] + "." + KINDS[kind][0],
            "-l",
            f"{LABEL}={uid}",
            "--wait=true",
            "--timeout=60s",
            check=False,
        )
    sandbox.wait_until("objects deleted", lambda: live_objects(sandbox, uid) == {}, 60)


def backup_vars(uid, **extra):
    return dict(
        {"karpenter_backup_label_selector": f"{LABEL}={uid}", "karpenter_backup_include_inventory": True}, **extra
    )


def with_managed_by(obj):
    obj = json.loads(json.dumps(obj))
    obj["metadata"].setdefault("labels", {}).update(MANAGED)
    return obj


def test_backup_wipe_restore_is_equal_idempotent_and_karpenter_provisions_again(sandbox, uid, tmp_path):
    dest = str(tmp_path / "backups")
    sandbox.apply(objects(uid))  # kubectl as field manager: the restore must take the objects over cleanly
    originals = live_objects(sandbox, uid)
    assert len(originals) == 4
    app = f"bk-inflate-{uid}"
    try:
        _, out = sandbox.playbook(BACKUP, extra_vars=backup_vars(uid, karpenter_backup_dest=dest))
        res = task(out, "Take the backup")
        assert res["changed"] and os.path.isfile(res["archive"]["path"])
        assert res["manifest"]["counts"]["EC2NodeClass"] == 1
        assert res["manifest"]["counts"]["NodePool"] == 2
        assert res["manifest"]["counts"]["NodeOverlay"] == 1
        assert res["manifest"]["kubernetes_version"].startswith("v1.36.")
        assert res["manifest"]["cluster_name"] == "sandbox"
        assert res["manifest"]["restore_order"].index("EC2NodeClass") < res["manifest"]["restore_order"].index(
            "NodePool"
        )
        assert res["requests"]["writes"] == 0
        # O(kinds) requests, whatever the number of objects
        assert res["requests"]["total"] <= 20

        # wipe
        delete_all(sandbox, uid)

        # check mode: a plan and a diff, no write request at all
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(RESTORE, "--check", "--diff", extra_vars={"karpenter_backup_dest": dest})
        res = task(out, "Restore the configuration")
        assert res["changed"]
        assert sorted((r["kind"], r["action"]) for r in res["results"]) == sorted(
            [("EC2NodeClass", "create"), ("NodePool", "create"), ("NodePool", "create"), ("NodeOverlay", "create")]
        )
        assert {d["after_header"] for d in res["diff"]} == set(originals)
        assert mine(sandbox, mark, uid) == [], "check mode must send no write request"
        assert live_objects(sandbox, uid) == {}

        # real restore: every object back, field by field (plus our managed-by label)
        _, out = sandbox.playbook(RESTORE, "--diff", extra_vars={"karpenter_backup_dest": dest})
        res = task(out, "Restore the configuration")
        assert res["changed"]
        restored = live_objects(sandbox, uid)
        assert restored == {k: with_managed_by(v) for k, v in originals.items()}
        order = [r["kind"] for r in res["results"]]
        assert order.index("EC2NodeClass") < order.index("NodePool") < order.index("NodeOverlay")

        # second restore: no change, no write request
        mark = sandbox.audit_mark()
        _, out = sandbox.playbook(RESTORE, extra_vars={"karpenter_backup_dest": dest})
        res = task(out, "Restore the configuration")
        assert not res["changed"] and res["requests"]["writes"] == 0
        assert {r["action"] for r in res["results"]} == {"unchanged"}
        assert mine(sandbox, mark, uid) == [], "a second restore must send no write request"

        # the cluster converges back: Karpenter provisions for the restored NodePool
        sandbox.apply([deployment(app, 2, f"bk-{uid}-a")])

        def claimed():
            claims = sandbox.custom.list_cluster_custom_object(
                "karpenter.sh", "v1", "nodeclaims", label_selector=f"karpenter.sh/nodepool=bk-{uid}-a"
            )["items"]
            return len(claims) >= 1

        sandbox.wait_until("a NodeClaim for the restored NodePool", claimed, 90)
    finally:
        sandbox.kubectl("delete", "deployment", app, "-n", "default", "--ignore-not-found", check=False)
        delete_all(sandbox, uid)


def _rewrite_archive(src, dst, edit, fix_manifest):
    """Copy an archive, passing resources/30-nodepools.yaml through ``edit``; optionally fix its checksum."""
    import hashlib

    with tarfile.open(src, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile()]
    files = dict((m.name, data) for m, data in members)
    before = files["resources/30-nodepools.yaml"].decode()
    after = edit(before)
    assert after != before, "the edit must change the file"
    files["resources/30-nodepools.yaml"] = after.encode()
    manifest = json.loads(files["manifest.json"])
    if fix_manifest:
        for f in manifest["files"]:
            if f["path"] == "resources/30-nodepools.yaml":
                f["sha256"] = hashlib.sha256(files[f["path"]]).hexdigest()
                f["size"] = len(files[f["path"]])
    files["manifest.json"] = json.dumps(manifest).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ["manifest.json"] + [n for n in files if n != "manifest.json"]:
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
    with open(dst, "wb") as f:
        f.write(gzip.compress(buf.getvalue()))


def test_tampered_or_invalid_archive_writes_nothing(sandbox, uid, tmp_path):
    dest = str(tmp_path / "backups")
    sandbox.apply(objects(uid))
    try:
        _, out = sandbox.playbook(
            BACKUP, extra_vars=backup_vars(uid, karpenter_backup_dest=dest, karpenter_backup_include_inventory=False)
        )
        good = task(out, "Take the backup")["archive"]["path"]
        delete_all(sandbox, uid)
        name = os.path.basename(good)

        tampered = str(tmp_path / "tampered" / name)
        os.makedirs(os.path.dirname(tampered))
        _rewrite_archive(good, tampered, lambda t: t.replace('cpu: "64"', 'cpu: "6400"'), fix_manifest=False)
        mark = sandbox.audit_mark()
        rc, out = sandbox.playbook(
            RESTORE, extra_vars={"karpenter_restore_archive": tampered, "karpenter_backup_dest": dest}, check=False
        )
        assert rc != 0
        res = task(out, "Verify the archive")
        assert res["failed"] and "resources/30-nodepools.yaml: sha256" in res["msg"] and "Traceback" not in res["msg"]

        # consistent checksums but an invalid NodePool: refused by the offline validation, nothing written at all
        invalid = str(tmp_path / "invalid" / name)
        os.makedirs(os.path.dirname(invalid))
        _rewrite_archive(good, invalid, lambda t: t.replace("operator: In", "operator: Within", 1), fix_manifest=True)
        rc, out = sandbox.playbook(
            RESTORE, extra_vars={"karpenter_restore_archive": invalid, "karpenter_backup_dest": dest}, check=False
        )
        assert rc != 0
        res = task(out, "Restore the configuration")
        assert "nothing was restored" in res["msg"]
        assert f"NodePool/bk-{uid}-a: spec.template.spec.requirements[0].operator" in res["msg"]
        assert mine(sandbox, mark, uid) == []
        assert live_objects(sandbox, uid) == {}, "the valid EC2NodeClass must not be applied either"
    finally:
        delete_all(sandbox, uid)


def test_conflict_skip_and_overwrite(sandbox, uid, tmp_path):
    dest = str(tmp_path / "backups")
    sandbox.apply(objects(uid))
    try:
        sandbox.playbook(
            BACKUP, extra_vars=backup_vars(uid, karpenter_backup_dest=dest, karpenter_backup_include_inventory=False)
        )
        changed = objects(uid)[1]
        changed["spec"]["limits"]["cpu"] = "8"
        sandbox.apply([changed])
        _, out = sandbox.playbook(RESTORE, extra_vars={"karpenter_backup_dest": dest})
        res = task(out, "Restore the configuration")
        assert [(s["kind"], s["name"]) for s in res["conflicts"]] == [("NodePool", f"bk-{uid}-a")]
        live = live_objects(sandbox, uid)
        assert live[f"NodePool/bk-{uid}-a"]["spec"]["limits"]["cpu"] == "8"

        _, out = sandbox.playbook(
            RESTORE, "--diff", extra_vars={"karpenter_backup_dest": dest, "karpenter_restore_conflict": "overwrite"}
        )
        res = task(out, "Restore the configuration")
        assert res["conflicts"] == []
        assert live_objects(sandbox, uid)[f"NodePool/bk-{uid}-a"]["spec"]["limits"]["cpu"] == "64"
        (d,) = [d for d in res["diff"] if d["after_header"] == f"NodePool/bk-{uid}-a"]
        assert (d["before"]["spec"]["limits"]["cpu"], d["after"]["spec"]["limits"]["cpu"]) == ("8", "64")
    finally:
        delete_all(sandbox, uid)


@pytest.fixture
def s3(sandbox):
    endpoint = sandbox.env["AWS_ENDPOINT_URL"]
    assert endpoint.startswith("http://127.0.0.1:")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
    bucket = f"bk-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = kms.create_key(Description="karpenter backups")["KeyMetadata"]
    other = kms.create_key(Description="another key")["KeyMetadata"]
    yield s3, bucket, key, other
    versions = s3.list_object_versions(Bucket=bucket)
    for v in (versions.get("Versions") or []) + (versions.get("DeleteMarkers") or []):
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    s3.delete_bucket(Bucket=bucket)


def _keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents") or [])


def test_s3_sse_kms_retention_check_mode_and_restore(sandbox, uid, s3):
    client, bucket, key, other = s3
    sandbox.apply(objects(uid))
    # same name pattern but not made by the module (no metadata), and an unrelated object: never deleted
    foreign = "karpenter-backups/karpenter-backup.sandbox.20200101T000000.000Z.tar.gz"
    client.put_object(Bucket=bucket, Key=foreign, Body=b"not ours")
    client.put_object(Bucket=bucket, Key="karpenter-backups/notes.txt", Body=b"x")
    ev = backup_vars(
        uid, karpenter_backup_s3_bucket=bucket, karpenter_backup_kms_key_id=key["KeyId"], karpenter_backup_keep_last=2
    )
    try:
        # check mode: reads the cluster, writes nothing to S3
        _, out = sandbox.playbook(BACKUP, "--check", extra_vars=ev)
        assert task(out, "Take the backup")["manifest"]["counts"]["NodePool"] == 2
        assert _keys(client, bucket) == sorted([foreign, "karpenter-backups/notes.txt"])

        uris = []
        for _ in range(3):
            _, out = sandbox.playbook(BACKUP, extra_vars=ev)
            res = task(out, "Take the backup")
            uris.append(res["archive"]["s3"]["uri"])
            head = client.head_object(Bucket=bucket, Key=res["archive"]["s3"]["key"])
            assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] in (key["KeyId"], key["Arn"])
            assert head["Metadata"]["archive-sha256"] == res["archive"]["sha256"]
        assert res["retention"]["deleted"] == [uris[0]]
        ours = [u.split("/", 3)[3] for u in uris[1:]]
        assert _keys(client, bucket) == sorted(ours + [foreign, "karpenter-backups/notes.txt"])

        # wrong KMS key on restore, missing bucket, bad KMS key on backup: clear errors, nothing written
        delete_all(sandbox, uid)
        mark = sandbox.audit_mark()
        rc, out = sandbox.playbook(
            RESTORE,
            extra_vars={"karpenter_backup_s3_bucket": bucket, "karpenter_backup_kms_key_id": other["KeyId"]},
            check=False,
        )
        assert rc != 0 and "not the expected KMS key" in task(out, "Verify the archive")["msg"]
        rc, out = sandbox.playbook(RESTORE, extra_vars={"karpenter_backup_s3_bucket": bucket + "-missing"}, check=False)
        assert rc != 0 and "does not exist" in task(out, "Verify the archive")["msg"]
        rc, out = sandbox.playbook(BACKUP, extra_vars=dict(ev, karpenter_backup_kms_key_id="no-such-key"), check=False)
        assert rc != 0 and "KMS key no-such-key" in task(out, "Take the backup")["msg"]
        assert len(_keys(client, bucket)) == 4
        assert mine(sandbox, mark, uid) == []

        # restore the latest archive from S3
        _, out = sandbox.playbook(
            RESTORE, extra_vars={"karpenter_backup_s3_bucket": bucket, "karpenter_backup_kms_key_id": key["Arn"]}
        )
        res = task(out, "Restore the configuration")
        assert res["archive"]["source"]["uri"] == uris[-1]
        assert len(live_objects(sandbox, uid)) == 4
    finally:
        delete_all(sandbox, uid)


CHART = {
    "Chart.yaml": "apiVersion: v2\nname: karpenter\nversion: 1.14.1\nappVersion: 1.14.1\n",
    "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  clusterName: {{ .Values.settings.clusterName | quote }}\n",
}
SECRET_VALUES = {
    "settings": {"clusterName": "sandbox", "interruptionQueue": "sandbox"},
    "aws": {"secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
    "controller": {"env": [{"name": "AWS_SESSION_TOKEN", "value": "FwoGZXIvYXdzEXAMPLESESSION"}]},
}


def _all_bytes(path):
    with tarfile.open(path, "r:gz") as tar:
        return b"".join(tar.extractfile(m).read() for m in tar if m.isfile())


def test_secrets_never_written_and_redacted_objects_not_restored(sandbox, uid, tmp_path):
    ns = f"bk-{uid}"
    chart = tmp_path / "chart"
    for rel, text in CHART.items():
        (chart / rel).parent.mkdir(parents=True, exist_ok=True)
        (chart / rel).write_text(text)
    (tmp_path / "values.json").write_text(json.dumps(SECRET_VALUES))
    helm = os.path.join(sandbox.env["SANDBOX_BIN"], "helm")
    subprocess.run(
        [helm, "install", ns, str(chart), "-n", ns, "--create-namespace", "-f", str(tmp_path / "values.json")],
        check=True,
        capture_output=True,
        env=dict(os.environ, KUBECONFIG=sandbox.env["KUBECONFIG"]),
    )
    sandbox.kubectl(
        "-n",
        ns,
        "create",
        "configmap",
        "extra",
        "--from-literal=db_password=hunter2hunter2",
        "--from-literal=region=us-east-1",
    )
    sandbox.kubectl("-n", ns, "label", "configmap", "extra", f"{LABEL}={uid}")
    sandbox.kubectl("-n", ns, "create", "secret", "generic", "creds", "--from-literal=token=s3cr3t-t0ken-value")
    user_data = "#!/bin/bash\nexport AWS_SECRET_ACCESS_KEY=abcdefghijklmnop1234\n"
    sandbox.apply(objects(uid, user_data=user_data)[:2])
    dest = str(tmp_path / "backups")
    ev = backup_vars(
        uid,
        karpenter_backup_dest=dest,
        karpenter_eks_namespace=ns,
        karpenter_backup_helm_release=ns,
        karpenter_backup_include_inventory=False,
    )
    try:
        # secret_policy=fail: nothing is written
        rc, out = sandbox.playbook(BACKUP, extra_vars=dict(ev, karpenter_backup_secret_policy="fail"), check=False)
        assert rc != 0 and "credential-looking" in task(out, "Take the backup")["msg"]
        assert not os.path.exists(dest) or os.listdir(dest) == []

        _, out = sandbox.playbook(BACKUP, extra_vars=ev)
        res = task(out, "Take the backup")
        data = _all_bytes(res["archive"]["path"])
        for secret in (
            b"wJalrXUtnFEMI",
            b"FwoGZXIvYXdzEXAMPLESESSION",
            b"hunter2hunter2",
            b"s3cr3t-t0ken-value",
            b"abcdefghijklmnop1234",
        ):
            assert secret not in data
        assert b"kind: Secret" not in data
        assert res["manifest"]["helm"]["found"] and res["manifest"]["helm"]["chart_version"] == "1.14.1"
        assert res["manifest"]["karpenter"]["version"] == "1.14.1"
        paths = {(r["object"], r["path"]) for r in res["manifest"]["redactions"]}
        assert (f"HelmRelease/{ns}", "values.aws.secretAccessKey") in paths
        assert (f"HelmRelease/{ns}", "values.controller.env[0].value") in paths
        assert ("ConfigMap/extra", "data.db_password") in paths
        assert (f"EC2NodeClass/bk-{uid}", "spec.userData") in paths
        assert b"us-east-1" in data  # the non-secret ConfigMap value is kept

        # a redacted EC2NodeClass is refused (with how to proceed); nothing is written
        delete_all(sandbox, uid)
        mark = sandbox.audit_mark()
        rc, out = sandbox.playbook(
            RESTORE, extra_vars={"karpenter_backup_dest": dest, "karpenter_eks_namespace": ns}, check=False
        )
        assert rc != 0
        msg = task(out, "Restore the configuration")["msg"]
        assert f"EC2NodeClass/bk-{uid}: values were redacted at backup time (spec.userData)" in msg
        assert mine(sandbox, mark, uid) == []
    finally:
        subprocess.run(
            [helm, "uninstall", ns, "-n", ns],
            capture_output=True,
            env=dict(os.environ, KUBECONFIG=sandbox.env["KUBECONFIG"]),
        )
        sandbox.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        delete_all(sandbox, uid)


# values a YAML writer must quote or escape (backups write YAML with module_utils/yaml_emit.py)
TRICKY_VALUES = [
    "yes", "No", "on", "OFF", "y", "null", "~", "", "1", "1.0", "0o17", "1e3", "- a", ": x", "#c", "a: b", " lead",
    "trail ", "é", "😀", "\u2028", "true", "<<", "!tag", "&a", "*a", "%x", "@x", "'q", '"q', "{a}", "[a]", "?x",
    "|x", ">x", "a\nb", "tab\there", "2024-01-01", "12:30", "v1.2.3", "back\\slash", "---",
]  # fmt: skip


def test_an_extracted_backup_is_read_by_kubectl_as_the_same_objects(sandbox, uid, tmp_path):
    """kubectl (Go YAML) reads the archive's YAML files as exactly what was backed up, and the apiserver accepts
    them (server-side dry run): an extracted backup can be applied by hand at 3 a.m."""
    dest = str(tmp_path / "backups")
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"bk-yaml-{uid}", "namespace": "karpenter", "labels": {LABEL: uid}},
        "data": {"v%02d" % i: v for i, v in enumerate(TRICKY_VALUES)},
    }
    sandbox.apply(objects(uid))
    # the ConfigMap's namespace exists on a cluster where the karpenter role ran; create it when this test runs first
    sandbox.kubectl("create", "namespace", "karpenter", check=False)
    # raw UTF-8: kubectl's YAML reader refuses JSON's surrogate-pair escapes of the emoji
    sandbox.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(cm, ensure_ascii=False))
    try:
        _, out = sandbox.playbook(BACKUP, extra_vars=backup_vars(uid, karpenter_backup_dest=dest))
        archive = task(out, "Take the backup")["archive"]["path"]
        extracted = tmp_path / "extracted"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(extracted, filter="data")
        files = sorted(str(p) for p in (extracted / "resources").glob("*.yaml") if p.stat().st_size)
        assert any(f.endswith("10-configmaps.yaml") for f in files)
        for f in files:
            res = sandbox.kubectl("create", "--dry-run=client", "--validate=false", "-o", "json", "-f", f)
            dec, text, pos, read = json.JSONDecoder(), res.stdout, 0, []
            while text[pos:].strip():
                obj, pos = dec.raw_decode(text, len(text) - len(text[pos:].lstrip()))
                read.append(obj)
            with open(f) as fh:
                assert read == [o for o in yaml.safe_load_all(fh) if o is not None], f  # Go YAML == PyYAML
            if f.endswith("10-configmaps.yaml"):
                (got,) = [o for o in read if o["metadata"]["name"] == cm["metadata"]["name"]]
                assert got["data"] == cm["data"]
        sandbox.kubectl("apply", "--dry-run=server", "-f", str(extracted / "resources"))
    finally:
        sandbox.kubectl(
            "delete", "configmap", cm["metadata"]["name"], "-n", "karpenter", "--ignore-not-found", check=False
        )
        delete_all(sandbox, uid)
