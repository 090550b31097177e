"""runbook_common's artifacts.yml with the optional S3 upload, against a private moto that logs every request.

tests/unit/roles/playbooks/artifacts_s3.yml writes artifacts the way the collection's playbooks do (two hosts, a
bundle per host, a file both hosts list, a file outside the artifacts folder, a second play of the same run) and ends
each play with artifacts.yml. Checked on what moto stored and on its access log: every listed file is in the bucket
under one prefix per run, byte for byte, SSE-KMS with the given key (or no key id: the AWS-managed one); each file is
sent once; the URIs are printed and handed to AWX (set_stats); the pre-signed URLs of s3_object stay out of the
output; --check and a run without a bucket send no request at all; a failed upload fails the play naming the bucket,
after the local files were listed.
"""

import json
import os
import re

import pytest
from awslib import AWS_ENV, aws_client, emulator_process, run_playbook, task_results

PLAYBOOK = "tests/unit/roles/playbooks/artifacts_s3.yml"
BUCKET = "karpenter-artifacts"
REQUEST = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})')
UPLOAD_TASK = "Upload to S3 with SSE-KMS (output hidden, the result holds a pre-signed URL)"
RUN_PREFIX = re.compile(r"^karpenter-eks/tests/artifacts_s3/(\d{8}T\d{6}Z-[a-z0-9]{6})/")


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """A private moto with its access log (--verbose); yields (endpoint, log path, KMS key id)."""
    workdir = str(tmp_path_factory.mktemp("moto"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | AWS_ENV
    with emulator_process(workdir, extra_args=["--verbose"], env=env) as (unused_proc, info):
        endpoint = info["endpoint"]
        aws_client(endpoint, "s3").create_bucket(Bucket=BUCKET)
        key_id = aws_client(endpoint, "kms").create_key(Description="artifacts")["KeyMetadata"]["KeyId"]
        yield endpoint, os.path.join(workdir, "emulator.log"), key_id


def _run(moto, tmp_path, *args, hosts="c1,c2,", **extra_vars):
    """The test playbook with artifacts under tmp_path; returns (JSON output, requests moto logged during the run)."""
    endpoint, log, unused_key = moto
    (tmp_path / "ext").mkdir(exist_ok=True)
    evars = {
        "karpenter_eks_artifacts_dir": str(tmp_path / "artifacts"),
        "artifacts_s3_external": str(tmp_path / "ext" / "outside.txt"),
        "karpenter_eks_aws_endpoint_url": endpoint,
        "karpenter_eks_region": "us-east-1",
        **extra_vars,
    }
    start = os.path.getsize(log)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANSIBLE_SHOW_CUSTOM_STATS", "true")
        out = run_playbook([PLAYBOOK, "-i", hosts, "-c", "local", *args], endpoint, extra_vars=evars)
    with open(log) as f:
        f.seek(start)
        requests = [m.groups() for m in map(REQUEST.search, f) if m]
    return out, requests


def _listed(out):
    """Every file the runs' 'Files written by this run' tasks printed (all hosts, both plays)."""
    return {path for res in task_results(out, "Files written by this run") for path in res["msg"] if path != "(none)"}


def _uploaded_uris(out):
    return [uri for res in task_results(out, "Files uploaded to S3 by this run") for uri in res.get("msg", [])]


def _objects(endpoint, bucket=BUCKET, prefix=""):
    s3 = aws_client(endpoint, "s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _expected_key(prefix, artifacts_dir, path):
    real, root = os.path.realpath(path), os.path.realpath(artifacts_dir)
    if real.startswith(root + os.sep):
        return prefix + os.path.relpath(real, root)
    return prefix + "external/" + real.lstrip("/")


@pytest.fixture(scope="module")
def uploaded(moto, tmp_path_factory):
    """One run with the bucket and the KMS key: (output, requests, artifacts folder, the run's prefix)."""
    tmp = tmp_path_factory.mktemp("upload")
    out, requests = _run(
        moto, tmp, karpenter_eks_artifacts_s3_bucket=BUCKET, karpenter_eks_artifacts_s3_kms_key_id=moto[2]
    )
    assert out["rc"] == 0, json.dumps(out)[-4000:]
    prefixes = {RUN_PREFIX.match(k).group(0) for k in _objects(moto[0])}
    assert len(prefixes) == 1, prefixes  # one prefix for the whole run: both hosts, both plays
    return out, requests, str(tmp / "artifacts"), prefixes.pop()


def test_every_listed_file_is_in_s3_with_the_same_bytes_and_sse_kms(moto, uploaded):
    endpoint, unused_log, key_id = moto
    out, unused_requests, artifacts_dir, prefix = uploaded
    listed = _listed(out)
    # 2 hosts x (2 bundle files + late file) + shared + external
    assert len(listed) == 8
    assert any(not os.path.realpath(p).startswith(os.path.realpath(artifacts_dir)) for p in listed)
    expected = {_expected_key(prefix, artifacts_dir, p): p for p in listed}
    assert sorted(_objects(endpoint)) == sorted(expected)
    s3 = aws_client(endpoint, "s3")
    for key, path in expected.items():
        obj = s3.get_object(Bucket=BUCKET, Key=key)
        with open(path, "rb") as f:
            assert obj["Body"].read() == f.read(), key
        assert obj["ServerSideEncryption"] == "aws:kms", key
        assert obj["SSEKMSKeyId"] in (key_id, f"arn:aws:kms:us-east-1:123456789012:key/{key_id}"), key


def test_uris_are_printed_and_handed_to_awx(uploaded):
    out, unused_requests, unused_dir, prefix = uploaded
    uris = _uploaded_uris(out)
    assert sorted(uris) == sorted({f"s3://{BUCKET}/{k}" for k in _objects_keys(uploaded)})
    assert len(uris) == len(set(uris)) == 8
    stats = out["global_custom_stats"]
    assert sorted(stats["karpenter_eks_artifacts_s3"]) == sorted(uris)
    assert set(stats["karpenter_eks_artifacts"]) == _listed(out)  # per host and play, so some twice
    plans = [line for res in task_results(out, "S3 upload plan") for line in res["msg"]]
    assert any(line.startswith(f"Uploading 4 file(s) to s3://{BUCKET}/{prefix} with SSE-KMS (key ") for line in plans)


def _objects_keys(uploaded):
    out, unused_requests, artifacts_dir, prefix = uploaded
    return {_expected_key(prefix, artifacts_dir, p) for p in _listed(out)}


def test_each_file_is_sent_once_and_no_presigned_url_is_printed(uploaded):
    out, requests, unused_dir, unused_prefix = uploaded
    puts = [path for method, path, status in requests if method == "PUT"]
    assert sorted(puts) == sorted(f"/{BUCKET}/{k}" for k in _objects_keys(uploaded))
    # s3_object returns a pre-signed URL (access key id, signature): the task's output is censored
    text = json.dumps(out)
    assert "X-Amz-" not in text and "Signature=" not in text
    results = task_results(out, UPLOAD_TASK)
    assert len(results) == 4 and all(r.get("changed") for r in results)  # 2 hosts x 2 plays
    assert "url" not in json.dumps(results)


def test_a_new_run_gets_a_new_prefix_and_the_aws_managed_key(moto, uploaded, tmp_path):
    endpoint = moto[0]
    before = set(_objects(endpoint))
    out, unused_requests = _run(moto, tmp_path, hosts="c1,", karpenter_eks_artifacts_s3_bucket=BUCKET)
    assert out["rc"] == 0, json.dumps(out)[-4000:]
    new = sorted(set(_objects(endpoint)) - before)
    assert len(new) == len(_listed(out)) == 5  # c1: 2 bundle files, shared, external; late file (second play)
    (prefix,) = {RUN_PREFIX.match(k).group(0) for k in new}
    assert prefix != uploaded[3]
    s3 = aws_client(endpoint, "s3")
    for key in new:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head.get("SSEKMSKeyId") is None  # no key id sent: S3 uses its AWS-managed key


def test_check_mode_uploads_nothing_and_prints_the_plan(moto, tmp_path):
    endpoint = moto[0]
    aws_client(endpoint, "s3").create_bucket(Bucket="check-bucket")
    out, requests = _run(moto, tmp_path, "--check", karpenter_eks_artifacts_s3_bucket="check-bucket", awx_job_id=4242)
    assert out["rc"] == 0, json.dumps(out)[-4000:]
    assert requests == []  # not even a read: --check sends nothing anywhere
    assert _objects(endpoint, "check-bucket") == []
    plans = [line for res in task_results(out, "S3 upload plan") for line in res["msg"]]
    prefix = "karpenter-eks/tests/artifacts_s3/awx-job-4242/"
    assert any(
        line.startswith(f"--check: nothing is uploaded; a run would upload 4 file(s) to s3://check-bucket/{prefix}")
        for line in plans
    )
    assert f"s3://check-bucket/{prefix}shared.txt" in plans
    assert all(r.get("skipped") for r in task_results(out, UPLOAD_TASK))
    assert "karpenter_eks_artifacts_s3" not in out["global_custom_stats"]
    assert len(set(out["global_custom_stats"]["karpenter_eks_artifacts"])) == 8


def test_without_a_bucket_there_is_no_s3_request(moto, tmp_path):
    out, requests = _run(moto, tmp_path)
    assert out["rc"] == 0, json.dumps(out)[-4000:]
    assert requests == []
    skipped = task_results(out, "S3 upload plan") + task_results(out, UPLOAD_TASK)
    assert len(skipped) == 8 and all(r.get("skipped") for r in skipped)
    assert len(_listed(out)) == 8


def test_a_failed_upload_fails_the_play_naming_the_bucket(moto, tmp_path):
    out, requests = _run(moto, tmp_path, hosts="c1,", karpenter_eks_artifacts_s3_bucket="no-such-bucket")
    assert out["rc"] != 0
    assert not [r for r in requests if r[0] in ("PUT", "POST")]
    listed = _listed(out)
    assert len(listed) == 4 and all(os.path.isfile(p) for p in listed)  # listed before the upload, and kept
    (failure,) = task_results(out, "Fail when an upload failed")
    assert failure["failed"] is True
    assert "S3 bucket no-such-bucket failed for 4 of 4 file(s)" in failure["msg"]
    assert "s3://no-such-bucket/karpenter-eks/tests/artifacts_s3/" in failure["msg"]
    assert "not found" in failure["msg"]
    assert "The files are still on the controller" in failure["msg"]
