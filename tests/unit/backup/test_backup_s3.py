"""S3 store on moto (in-process): SSE-KMS, checksums, retention of our archives only, errors, throttling retries."""

import datetime
import os
import types

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils import cloud as aws_cloud
from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import core as bk
from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import s3 as backup_s3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError

moto = pytest.importorskip("moto")

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture
def aws(monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bkt-unit")
        s3.put_bucket_versioning(Bucket="bkt-unit", VersioningConfiguration={"Status": "Enabled"})
        key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]
        yield s3, key


def archive(tmp_path, when, cluster="prod"):
    name = bk.archive_name(cluster, when)
    path = tmp_path / name
    path.write_bytes(os.urandom(64))
    return str(path), name, bk.sha256_file(str(path))


def test_upload_sse_kms_metadata_and_download_verified(aws, tmp_path):
    s3, key = aws
    store = backup_s3.S3Store("bkt-unit", kms_key_id=key["KeyId"], region="us-east-1")
    assert store.check_bucket() == "Enabled"
    assert store.check_kms_key() == (key["Arn"], None)
    path, name, digest = archive(tmp_path, T0)
    up = store.upload(path, name, digest, "prod")
    head = s3.head_object(Bucket="bkt-unit", Key="karpenter-backups/" + name)
    assert head["ServerSideEncryption"] == "aws:kms" and up["sse"] == "aws:kms"
    assert head["Metadata"] == {
        "created-by": bk.CREATED_BY,
        "archive-sha256": digest,
        "format-version": "1",
        "cluster-name": "prod",
    }
    got = store.download("karpenter-backups/" + name, str(tmp_path / "dl"), expected_kms_key=key["Arn"])
    assert got["sha256"] == digest and open(str(tmp_path / "dl"), "rb").read() == open(path, "rb").read()


def test_download_refuses_wrong_kms_key_and_corruption(aws, tmp_path):
    s3, key = aws
    other = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]
    path, name, digest = archive(tmp_path, T0)
    backup_s3.S3Store("bkt-unit", kms_key_id=key["KeyId"]).upload(path, name, digest, "prod")
    wrong = backup_s3.S3Store("bkt-unit", kms_key_id=other["KeyId"])
    with pytest.raises(bk.BackupError, match="not the expected KMS key"):
        wrong.download("karpenter-backups/" + name, str(tmp_path / "dl"), expected_kms_key=other["KeyId"])
    # the object replaced behind our back (same metadata, other bytes): sha256 mismatch
    s3.put_object(Bucket="bkt-unit", Key="karpenter-backups/" + name, Body=b"evil", Metadata={"archive-sha256": digest})
    with pytest.raises(bk.BackupError, match="archive sha256 .* != .* recorded at upload"):
        backup_s3.S3Store("bkt-unit").download("karpenter-backups/" + name, str(tmp_path / "dl"))


def test_missing_bucket_missing_key_and_bad_kms_key_are_clear(aws):
    with pytest.raises(bk.BackupError, match="s3://nope: the bucket does not exist"):
        backup_s3.S3Store("nope").check_bucket()
    with pytest.raises(bk.BackupError, match="KMS key alias/none"):
        backup_s3.S3Store("bkt-unit", kms_key_id="alias/none").check_kms_key()
    with pytest.raises(bk.BackupError, match="no such object"):
        backup_s3.S3Store("bkt-unit").download("karpenter-backups/x.tar.gz", "/dev/null")


def test_retention_deletes_only_our_old_archives(aws, tmp_path):
    s3, key = aws
    store = backup_s3.S3Store("bkt-unit", kms_key_id=key["KeyId"])
    names = []
    for i in range(4):
        path, name, digest = archive(tmp_path, T0 + datetime.timedelta(days=i))
        store.upload(path, name, digest, "prod")
        names.append(name)
    foreign = bk.archive_name("prod", T0 - datetime.timedelta(days=9))
    s3.put_object(Bucket="bkt-unit", Key="karpenter-backups/" + foreign, Body=b"x")  # our name, not our metadata
    path, other, digest = archive(tmp_path, T0, cluster="staging")
    store.upload(path, other, digest, "staging")
    s3.put_object(Bucket="bkt-unit", Key="karpenter-backups/readme.txt", Body=b"x")

    assert store.retention("prod", keep_last=2, check_mode=True) == [
        "s3://bkt-unit/karpenter-backups/" + n for n in names[1::-1]
    ]
    assert len(s3.list_objects_v2(Bucket="bkt-unit")["Contents"]) == 7  # check mode deleted nothing
    deleted = store.retention("prod", keep_last=2, now=T0 + datetime.timedelta(days=4))
    assert deleted == ["s3://bkt-unit/karpenter-backups/" + n for n in names[1::-1]]
    left = sorted(o["Key"][len("karpenter-backups/") :] for o in s3.list_objects_v2(Bucket="bkt-unit")["Contents"])
    assert left == sorted(names[2:] + [foreign, other, "readme.txt"])
    assert [a["name"] for a in store.list("prod")] == [names[3], names[2], foreign]


def test_throttling_is_retried_with_backoff(aws, tmp_path, monkeypatch):
    """S3 throttling is retried by the collection's one retry policy (aws.api.retry_policy: amazon.aws's
    AWSRetry, whose loop sleeps here), not by botocore's retry mode, which is off."""
    sleeps, loops = [], []
    real_loop = aws_cloud._retry_func

    def loop(**kwargs):
        loops.append(kwargs["retries"])
        return real_loop(**kwargs)

    monkeypatch.setattr(aws_cloud, "time", types.SimpleNamespace(sleep=sleeps.append))
    monkeypatch.setattr(aws_cloud, "random", types.SimpleNamespace(uniform=lambda low, high: high))
    monkeypatch.setattr(aws_cloud, "_retry_func", loop)
    store = backup_s3.S3Store("bkt-unit")
    assert store.s3.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    calls = []

    def throttle(request, **kwargs):
        calls.append(1)
        if len(calls) <= 2:
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            return AWSResponse(request.url, 503, {}, _Raw(body))
        return None

    store.s3.meta.events.register("before-send.s3.PutObject", throttle)
    path, name, digest = archive(tmp_path, T0)
    store.upload(path, name, digest, "prod")
    assert len(calls) == 3
    assert sleeps == [1, 2]  # jittered waits at their cap: 1 s doubling
    assert loops[0] == 10  # PutObject: max_attempts attempts at most
    assert store.list("prod")[0]["name"] == name


@pytest.mark.parametrize(
    "error, retried",
    [
        (ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"), True),
        (ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "X"), True),
        (ClientError({"Error": {}, "ResponseMetadata": {"HTTPStatusCode": 502}}, "X"), True),
        (EndpointConnectionError(endpoint_url="https://s3.example"), True),
        (ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "X"), False),
        (ClientError({"Error": {"Code": "404"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "HeadObject"), False),
    ],
)
def test_what_the_s3_policy_retries(monkeypatch, error, retried):
    monkeypatch.setattr(aws_cloud, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
    policy = backup_s3.S3Store("bkt-unit", max_attempts=3, session=session).retry
    calls = []

    @policy
    def call():
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        call()
    assert len(calls) == (3 if retried else 1)


class _Raw:
    def __init__(self, body):
        self.body = body

    def stream(self, **kwargs):
        yield self.body

    def read(self, *args):
        body, self.body = self.body, b""
        return body
