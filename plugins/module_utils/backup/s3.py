# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""S3 destination of karpenter_backup (boto3, the amazon.aws way: profile/env chain, endpoint_url).

* Uploads are atomic by S3's nature (an object appears only when complete), carry a SHA-256 checksum
  S3 verifies, and metadata marking them as ours (retention only ever deletes marked objects).
* SSE-KMS with a given key: the key is checked before the upload and the stored object's encryption is
  checked after it. Restores compare the object's key with the expected one before downloading.
* Throttling and transient errors: the collection's one retry policy (``aws.api.retry_policy``, amazon.aws's
  ``AWSRetry.jittered_backoff``, as the AWS modules' clients), with what botocore's ``standard`` retry mode retried
  here before: throttling and transient codes, HTTP 429/500/502/503/504, connection errors; ``max_attempts``
  attempts of every call. botocore's own retries are off (``total_max_attempts=1``), so they do not multiply.
"""

from __future__ import annotations

import base64
import hashlib

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_BOTO3 = False

    class ClientError(Exception):
        pass

    class BotoCoreError(Exception):
        pass


from ..aws import api, credentials
from .core import CREATED_BY, FORMAT_VERSION, BackupError, parse_archive_name

META_CREATED_BY = "created-by"
META_SHA256 = "archive-sha256"
META_FORMAT = "format-version"
META_CLUSTER = "cluster-name"
# What is retried besides the throttling/transient codes (botocore's standard retry mode's statuses)
RETRY_STATUS = (429, 500, 502, 503, 504)


def _code(exc):
    return ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code") or ""


def explain(exc, what):
    """A one-line, actionable message for an S3/KMS error."""
    code = _code(exc)
    if code in ("NoSuchBucket",):
        return "%s: the bucket does not exist" % what
    if code in ("AccessDenied", "AccessDeniedException", "403", "Forbidden", "AllAccessDisabled"):
        return (
            "%s: access denied (check the IAM policy of the credentials in use, and the bucket/KMS key policy)" % what
        )
    if code in ("NoSuchKey", "404", "NotFound"):
        return "%s: no such object" % what
    if code.startswith("KMS.") or code in ("KMSInvalidStateException", "NotFoundException", "DisabledException"):
        return "%s: KMS error %s: %s" % (what, code, exc)
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
        return "%s: invalid AWS credentials (%s)" % (what, code)
    return "%s: %s" % (what, exc)


class S3Store:
    def __init__(
        self,
        bucket,
        prefix="karpenter-backups/",
        kms_key_id=None,
        max_attempts=10,
        session=None,
        **aws,
    ):
        """``aws``: the credential options by their primary names (aws.credentials: access_key, secret_key,
        session_token, profile, region, endpoint_url); unset ones fall back to boto3's chain."""
        unknown = set(aws) - set(credentials.AWS_CREDENTIALS_SPEC)
        if unknown:
            raise TypeError("S3Store: unknown AWS option(s) %s" % ", ".join(sorted(unknown)))
        self.bucket = bucket
        self.prefix = prefix or ""
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        self.kms_key_id = kms_key_id
        if session is None:
            session = boto3.session.Session(**credentials.session_kwargs(aws))
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1},  # retried by self.retry instead
            user_agent_extra="karpenter_eks.platform/karpenter_backup",
        )
        self.retry = api.retry_policy(
            api.THROTTLING_CODES | api.TRANSIENT_CODES,
            attempts=max_attempts,
            delay=1,
            max_delay=20,
            transient_status=RETRY_STATUS,
            connection_errors=True,
        )
        # calls made with aws_retry=True go through self.retry (amazon.aws's RetryingBotoClientWrapper)
        self.s3 = api.retrying_client(session.client("s3", config=config, **credentials.client_kwargs(aws)), self.retry)
        self.kms = api.retrying_client(
            session.client("kms", config=config, **credentials.client_kwargs(aws)), self.retry
        )
        self._kms_arn = None

    def uri(self, key):
        return "s3://%s/%s" % (self.bucket, key)

    def key_for(self, name):
        return self.prefix + name

    # ------------------------------------------------------------------ checks (read-only)
    def check_bucket(self):
        """Raise BackupError when the bucket is missing/forbidden; return its versioning status."""
        try:
            self.s3.head_bucket(aws_retry=True, Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise BackupError("s3://%s: the bucket does not exist" % self.bucket)
            raise BackupError(explain(exc, "s3://%s" % self.bucket))
        except BotoCoreError as exc:
            raise BackupError("s3://%s: %s" % (self.bucket, exc))
        try:
            return self.s3.get_bucket_versioning(aws_retry=True, Bucket=self.bucket).get("Status") or "Disabled"
        except ClientError:
            return "Unknown"

    def check_kms_key(self):
        """The KMS key must exist and be enabled; returns (arn, warning or None)."""
        if not self.kms_key_id:
            return None, None
        try:
            meta = self.kms.describe_key(aws_retry=True, KeyId=self.kms_key_id)["KeyMetadata"]
        except ClientError as exc:
            if _code(exc) in ("AccessDeniedException", "AccessDenied"):
                return None, "cannot describe KMS key %s (access denied); the upload will tell" % self.kms_key_id
            raise BackupError(explain(exc, "KMS key %s" % self.kms_key_id))
        if meta.get("KeyState") != "Enabled":
            raise BackupError("KMS key %s is %s, not Enabled" % (self.kms_key_id, meta.get("KeyState")))
        self._kms_arn = meta.get("Arn")
        return self._kms_arn, None

    def _same_key(self, stored):
        want = set(x for x in (self.kms_key_id, self._kms_arn) if x)
        if not stored:
            return False
        return stored in want or any(stored.endswith("/" + w) or w.endswith("/" + stored) for w in want)

    # ------------------------------------------------------------------ writes
    def upload(self, path, name, sha256_hex, cluster_name):
        key = self.key_for(name)
        with open(path, "rb") as f:
            body = f.read()
        extra = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ChecksumSHA256": base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii"),
            "ContentType": "application/gzip",
            "Metadata": {
                META_CREATED_BY: CREATED_BY,
                META_SHA256: sha256_hex,
                META_FORMAT: str(FORMAT_VERSION),
                META_CLUSTER: cluster_name,
            },
        }
        if self.kms_key_id:
            extra["ServerSideEncryption"] = "aws:kms"
            extra["SSEKMSKeyId"] = self.kms_key_id
        try:
            resp = self.s3.put_object(aws_retry=True, **extra)
            head = self.s3.head_object(aws_retry=True, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise BackupError(explain(exc, "upload to %s" % self.uri(key)))
        except BotoCoreError as exc:
            raise BackupError("upload to %s: %s" % (self.uri(key), exc))
        if self.kms_key_id and (
            head.get("ServerSideEncryption") != "aws:kms" or not self._same_key(head.get("SSEKMSKeyId"))
        ):
            raise BackupError(
                "%s was stored with encryption %s/%s, not SSE-KMS with %s"
                % (self.uri(key), head.get("ServerSideEncryption"), head.get("SSEKMSKeyId"), self.kms_key_id),
                written=True,
            )
        return {
            "uri": self.uri(key),
            "key": key,
            "version_id": resp.get("VersionId"),
            "sse": head.get("ServerSideEncryption"),
            "kms_key_id": head.get("SSEKMSKeyId"),
        }

    def delete(self, key):
        try:
            self.s3.delete_object(aws_retry=True, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise BackupError(explain(exc, "delete %s" % self.uri(key)))

    # ------------------------------------------------------------------ reads
    def list(self, cluster_name=None):
        """Archives under the prefix named by this module (newest first); metadata is checked on delete."""
        out = []
        try:
            paginator = self.s3.get_paginator("list_objects_v2")
            pages = self.retry(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)))()
            for page in pages:
                for o in page.get("Contents") or []:
                    name = o["Key"][len(self.prefix) :]
                    if "/" in name:
                        continue
                    parsed = parse_archive_name(name)
                    if not parsed or (cluster_name and parsed[0] != cluster_name):
                        continue
                    out.append(
                        {
                            "name": name,
                            "key": o["Key"],
                            "uri": self.uri(o["Key"]),
                            "cluster_name": parsed[0],
                            "created": parsed[1],
                            "size": o.get("Size"),
                        }
                    )
        except ClientError as exc:
            raise BackupError(explain(exc, "list s3://%s/%s" % (self.bucket, self.prefix)))
        out.sort(key=lambda a: a["created"], reverse=True)
        return out

    def is_ours(self, key):
        try:
            head = self.s3.head_object(aws_retry=True, Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return (head.get("Metadata") or {}).get(META_CREATED_BY) == CREATED_BY

    def download(self, key, path, expected_kms_key=None):
        """Download ``key`` to ``path``; verifies the SSE-KMS key (when given) and the archive sha256."""
        what = self.uri(key)
        try:
            head = self.s3.head_object(aws_retry=True, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise BackupError(explain(exc, what))
        except BotoCoreError as exc:
            raise BackupError("%s: %s" % (what, exc))
        if expected_kms_key:
            if self._kms_arn is None:
                self.check_kms_key()  # resolves an alias/id to the key ARN S3 reports
            if head.get("ServerSideEncryption") != "aws:kms" or not self._same_key(head.get("SSEKMSKeyId")):
                raise BackupError(
                    "%s is encrypted with %s %s, not the expected KMS key %s; nothing was restored"
                    % (
                        what,
                        head.get("ServerSideEncryption") or "no SSE",
                        head.get("SSEKMSKeyId") or "",
                        expected_kms_key,
                    )
                )
        try:
            body = self.s3.get_object(aws_retry=True, Bucket=self.bucket, Key=key)["Body"]
            h = hashlib.sha256()
            with open(path, "wb") as f:
                for chunk in iter(lambda: body.read(1 << 20), b""):
                    h.update(chunk)
                    f.write(chunk)
        except ClientError as exc:
            raise BackupError(explain(exc, what))
        except BotoCoreError as exc:
            raise BackupError("%s: %s" % (what, exc))
        want = (head.get("Metadata") or {}).get(META_SHA256)
        if want and want != h.hexdigest():
            raise BackupError(
                "%s: archive sha256 %s != %s recorded at upload; nothing was restored" % (what, h.hexdigest(), want)
            )
        return {
            "uri": what,
            "sha256": h.hexdigest(),
            "sse": head.get("ServerSideEncryption"),
            "kms_key_id": head.get("SSEKMSKeyId"),
            "version_id": head.get("VersionId"),
        }

    def retention(self, cluster_name, keep_last=None, max_age_days=None, check_mode=False, protect=(), now=None):
        from .core import select_expired

        deleted = []
        for a in select_expired(self.list(cluster_name), keep_last, max_age_days, now=now, protect=protect):
            if not self.is_ours(a["key"]):
                continue  # same name pattern, but not made by this module
            if not check_mode:
                self.delete(a["key"])
            deleted.append(a["uri"])
        return deleted
