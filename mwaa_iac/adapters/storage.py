"""S3: DAG files, requirements, mwaa-dr backups, journals and locks (routing is in :mod:`.routing`).

Backups hold plaintext connection passwords and variable values: this module checks the backup
bucket is private and encrypted before anything is written to it, and never returns object
contents to callers except for counting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions

from mwaa_iac.adapters import aws
from mwaa_iac.adapters.aws import aws_error
from mwaa_iac.adapters.bucket_check import check_backup_bucket
from mwaa_iac.core.findings import Finding

_STATE_HINT = (
    "check that the bucket exists in this region and that these credentials may read and write it "
    "(for journals and locks: mwaa.yaml's state.s3_bucket)"
)


@dataclass
class S3:
    region: str | None = None
    client: Any = None

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = aws.client("s3", self.region)

    def put_text(self, bucket: str, key: str, text: str) -> None:
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot write s3://{bucket}/{key}", exc) from exc

    def put_text_versioned(self, bucket: str, key: str, text: str) -> str | None:
        """Write ``key``; returns its new object version (None in an unversioned bucket)."""
        try:
            response = self.client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot write s3://{bucket}/{key}", exc) from exc
        return response.get("VersionId")

    def get_text(self, bucket: str, key: str, version: str | None = None) -> str | None:
        """The object's text (at ``version`` when given), or None when it does not exist."""
        try:
            extra = {"VersionId": version} if version else {}
            body = self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise aws_error(f"cannot read s3://{bucket}/{key}", exc) from exc
        return body.decode("utf-8", errors="replace")

    def get_text_etag(self, bucket: str, key: str) -> tuple[str, str] | None:
        """(text, ETag) of an object, or None when it does not exist."""
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
            body = response["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise aws_error(f"cannot read s3://{bucket}/{key}", exc, hint=_STATE_HINT) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise aws_error(f"cannot read s3://{bucket}/{key}", exc) from exc
        return body.decode("utf-8", errors="replace"), response["ETag"]

    def put_text_if(
        self, bucket: str, key: str, text: str, *, etag: str | None, attempts: int = 5
    ) -> str | None:
        """Write ``key`` only if it is still at ``etag`` (``etag=None``: only if it does not exist).
        Returns the new ETag, or None when the condition failed (412). S3 answers 409
        ConditionalRequestConflict while another conditional write to the key is in flight: retried."""
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        for attempt in range(attempts):
            try:
                response = self.client.put_object(
                    Bucket=bucket, Key=key, Body=text.encode("utf-8"), **condition
                )
                return response["ETag"]
            except botocore.exceptions.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "PreconditionFailed" or (code == "NoSuchKey" and etag is not None):
                    return None
                if code == "ConditionalRequestConflict" and attempt + 1 < attempts:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise aws_error(f"cannot write s3://{bucket}/{key}", exc, hint=_STATE_HINT) from exc
            except botocore.exceptions.BotoCoreError as exc:
                raise aws_error(f"cannot write s3://{bucket}/{key}", exc) from exc
        return None

    def delete(self, bucket: str, key: str) -> None:
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot delete s3://{bucket}/{key}", exc) from exc

    def list_keys(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys += page.get("Contents", [])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot list s3://{bucket}/{prefix}", exc) from exc
        return keys

    def versioning(self, bucket: str) -> str | None:
        """The bucket's versioning status ("Enabled", "Suspended"), None when never enabled."""
        try:
            return self.client.get_bucket_versioning(Bucket=bucket).get("Status")
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot read the versioning of s3://{bucket}", exc) from exc

    def object_version(self, bucket: str, key: str, version: str | None = None) -> str | None:
        """The version id of ``key`` (the latest, or ``version`` when it exists); None when the object
        (or that version) does not exist. Unversioned objects answer "null"."""
        kwargs = {"VersionId": version} if version else {}
        try:
            head = self.client.head_object(Bucket=bucket, Key=key, **kwargs)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchVersion", "400"):
                return None
            raise aws_error(f"cannot read s3://{bucket}/{key}", exc) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise aws_error(f"cannot read s3://{bucket}/{key}", exc) from exc
        return str(head.get("VersionId") or "null")

    def bucket_findings(self, bucket: str, *, require_kms: bool = False) -> list[Finding]:
        """Every finding on ``bucket`` as a store for secrets (see :mod:`.bucket_check`)."""
        return check_backup_bucket(self.client, bucket, require_kms=require_kms, region=self.region)

    def bucket_problems(self, bucket: str, *, require_kms: bool = False) -> list[str]:
        """Why ``bucket`` is not fit to hold secrets (empty list: it is private and encrypted), each
        with its fix; warnings (versioning) are not problems."""
        return [f.text() for f in self.bucket_findings(bucket, require_kms=require_kms) if f.failed]

    def old_keys(
        self, bucket: str, prefix: str, older_than_days: int, now: datetime | None = None
    ) -> list[str]:
        cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
        return [o["Key"] for o in self.list_keys(bucket, prefix) if o["LastModified"] < cutoff]


BUCKET_FIX = (
    "make the backup bucket private and encrypted, e.g. "
    "aws s3api put-public-access-block --bucket B --public-access-block-configuration "
    "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true; "
    "aws s3api put-bucket-encryption --bucket B --server-side-encryption-configuration "
    '\'{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}\''
)
