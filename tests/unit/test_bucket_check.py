"""The backup-bucket check against moto (in process) and botocore's Stubber for AccessDenied."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mwaa_iac.adapters.bucket_check import PAB_FLAGS, check_backup_bucket
from mwaa_iac.adapters.storage import S3

BUCKET = "dr-backups"
ALL_ON = {flag: True for flag in PAB_FLAGS}


@pytest.fixture
def aws(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_MWAA"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _by_name(findings):
    return {f.name.split(" (")[0]: f for f in findings}


def _private(client, algorithm="aws:kms"):
    client.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=ALL_ON)
    client.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}]
        },
    )


def test_private_kms_bucket_passes_and_names_the_algorithm(aws) -> None:
    _private(aws)
    findings = _by_name(S3(client=aws, region="us-east-1").bucket_findings(BUCKET, require_kms=True))
    assert not [f for f in findings.values() if f.failed]
    assert "SSE-KMS (aws:kms)" in findings["default encryption"].detail
    assert findings["versioning"].ok is False and findings["versioning"].blocking is False


def test_sse_s3_passes_but_not_when_kms_is_required(aws) -> None:
    _private(aws, "AES256")
    s3 = S3(client=aws, region="us-east-1")
    assert s3.bucket_problems(BUCKET) == []
    problems = s3.bucket_problems(BUCKET, require_kms=True)
    assert len(problems) == 1 and "SSE-S3 (AES256)" in problems[0] and "dr.require_kms" in problems[0]


def test_missing_public_access_block_is_reported_with_its_fix(aws) -> None:
    aws.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    finding = _by_name(S3(client=aws, region="us-east-1").bucket_findings(BUCKET))["public access blocked"]
    assert finding.failed
    assert "neither the bucket nor the account" in finding.detail
    assert f"put-public-access-block --bucket {BUCKET}" in (finding.fix or "")


def test_the_accounts_public_access_block_counts(aws) -> None:
    _private(aws)
    aws.delete_public_access_block(Bucket=BUCKET)
    account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    boto3.client("s3control", region_name="us-east-1").put_public_access_block(
        AccountId=account, PublicAccessBlockConfiguration=ALL_ON
    )
    finding = _by_name(S3(client=aws, region="us-east-1").bucket_findings(BUCKET))["public access blocked"]
    assert finding.ok and "account" in finding.detail


def test_a_public_bucket_policy_fails_even_without_a_block(aws) -> None:
    aws.put_bucket_policy(
        Bucket=BUCKET,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{BUCKET}/*",
                    }
                ],
            }
        ),
    )
    finding = _by_name(S3(client=aws, region="us-east-1").bucket_findings(BUCKET))["bucket policy not public"]
    assert finding.failed and "PUBLIC" in finding.detail


def test_no_encryption_and_versioning_enabled(aws) -> None:
    aws.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=ALL_ON)
    aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    findings = _by_name(S3(client=aws, region="us-east-1").bucket_findings(BUCKET))
    assert findings["default encryption"].failed
    assert findings["versioning"].ok


def test_missing_bucket(aws) -> None:
    problems = S3(client=aws, region="us-east-1").bucket_problems("no-such-bucket-here")
    assert problems and "does not exist" in problems[0]


def test_access_denied_is_reported_as_such_never_as_missing() -> None:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("head_bucket", {}, {"Bucket": BUCKET})
    stub.add_client_error("get_public_access_block", "AccessDenied", "Access Denied", 403)
    stub.add_client_error("get_bucket_policy_status", "AccessDenied", "Access Denied", 403)
    stub.add_client_error("get_bucket_encryption", "AccessDenied", "Access Denied", 403)
    stub.add_client_error("get_bucket_versioning", "AccessDenied", "Access Denied", 403)
    with stub:
        findings = _by_name(check_backup_bucket(client, BUCKET))
    for name, permission in [
        ("public access blocked", "s3:GetBucketPublicAccessBlock"),
        ("bucket policy not public", "s3:GetBucketPolicyStatus"),
        ("default encryption", "s3:GetEncryptionConfiguration"),
        ("versioning", "s3:GetBucketVersioning"),
    ]:
        finding = findings[name]
        assert not finding.ok
        assert "cannot be checked: AccessDenied" in finding.detail and permission in finding.detail
        assert "not configured" not in finding.detail and "no public access block" not in finding.detail
    assert findings["versioning"].blocking is False
