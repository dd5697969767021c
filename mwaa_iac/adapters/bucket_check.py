"""Is a bucket fit to hold mwaa-dr backups (plaintext connection passwords and variables)?

Read-only calls, each reported as a finding with what was seen and how to fix it:

- the public access block, the bucket's and the account's (S3 applies the stricter of the two,
  flag by flag);
- ``GetBucketPolicyStatus``: a bucket policy that makes the bucket public;
- default encryption, with the algorithm named (S3 encrypts new objects with SSE-S3 by default since
  January 2023, so "encrypted" alone says little): SSE-KMS or DSSE-KMS is required when
  ``dr.require_kms`` is true;
- versioning (a warning only: it protects backups from deletion by mistake, and keeps the secrets of
  deleted backups until a lifecycle rule expires the noncurrent versions).

An AccessDenied is reported as such, naming the permission the credentials lack, never as "not
configured".
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from mwaa_iac.adapters import aws
from mwaa_iac.core.findings import Finding

PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
ALGORITHMS = {
    "AES256": "SSE-S3 (AES256)",
    "aws:kms": "SSE-KMS (aws:kms)",
    "aws:kms:dsse": "DSSE-KMS (aws:kms:dsse)",
}
DENIED = ("AccessDenied", "AccessDeniedException", "403", "Forbidden", "AllAccessDisabled")
NOT_FOUND = ("NoSuchBucket", "404", "NotFound")


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(aws.error_code(exc) or "")


def _denied(
    name: str, exc: botocore.exceptions.ClientError, permission: str, blocking: bool = True
) -> Finding:
    return Finding(
        name,
        False,
        f"cannot be checked: {_code(exc)} (these credentials lack {permission})",
        fix=f"allow {permission} to the identity that runs mwaa-iac (examples/iam/operator-policy.json)",
        blocking=blocking,
    )


def _pab_fix(bucket: str) -> str:
    return (
        f"aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration "
        + ",".join(f"{flag}=true" for flag in PAB_FLAGS)
    )


def check_backup_bucket(
    s3: Any,
    bucket: str,
    *,
    require_kms: bool = False,
    s3control: Any = None,
    sts: Any = None,
    region: str | None = None,
) -> list[Finding]:
    """Findings for ``bucket``; ``s3control``/``sts`` are created when the account's public access
    block must be read (the bucket's own block is not complete)."""
    try:
        s3.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        code = _code(exc)
        if code in NOT_FOUND:
            return [
                Finding(
                    "backup bucket exists",
                    False,
                    f"{bucket} does not exist",
                    fix=f"create it (private, encrypted), e.g. aws s3api create-bucket --bucket {bucket}",
                )
            ]
        if code in DENIED:
            return [_denied("backup bucket exists", exc, f"s3:ListBucket on arn:aws:s3:::{bucket}")]
        return [Finding("backup bucket exists", False, f"{bucket}: {code}")]
    except botocore.exceptions.BotoCoreError as exc:  # no credentials, no network
        return [Finding("backup bucket exists", False, f"{bucket} cannot be checked: {exc}")]
    findings = [Finding("backup bucket exists", True, bucket)]
    findings.append(_public_access_block(s3, bucket, s3control, sts, region))
    findings.append(_policy_status(s3, bucket))
    findings.append(_encryption(s3, bucket, require_kms))
    findings.append(_versioning(s3, bucket))
    return findings


def _public_access_block(s3: Any, bucket: str, s3control: Any, sts: Any, region: str | None) -> Finding:
    name = "public access blocked"
    try:
        config = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except botocore.exceptions.ClientError as exc:
        if _code(exc) != "NoSuchPublicAccessBlockConfiguration":
            return _denied(name, exc, f"s3:GetBucketPublicAccessBlock on arn:aws:s3:::{bucket}")
        config = {}
    bucket_on = {flag for flag in PAB_FLAGS if config.get(flag)}
    if bucket_on == set(PAB_FLAGS):
        return Finding(name, True, "the bucket's public access block has all four settings on")
    try:
        sts = sts or aws.client("sts", region)
        account = sts.get_caller_identity()["Account"]
        s3control = s3control or aws.client("s3control", region)
        account_config = s3control.get_public_access_block(AccountId=account)[
            "PublicAccessBlockConfiguration"
        ]
    except botocore.exceptions.ClientError as exc:
        if _code(exc) != "NoSuchPublicAccessBlockConfiguration":
            return _denied(name, exc, "s3:GetAccountPublicAccessBlock (and sts:GetCallerIdentity)")
        account_config = {}
    except botocore.exceptions.BotoCoreError as exc:
        return Finding(name, False, f"the account's public access block cannot be read: {exc}")
    account_on = {flag for flag in PAB_FLAGS if account_config.get(flag)}
    missing = [flag for flag in PAB_FLAGS if flag not in bucket_on | account_on]
    if not missing:
        return Finding(
            name, True, "all four settings on (the account's public access block covers the bucket's)"
        )
    where = (
        "neither the bucket nor the account has a public access block"
        if not (config or account_config)
        else f"off on both the bucket and the account: {', '.join(missing)}"
    )
    return Finding(name, False, where, fix=_pab_fix(bucket))


def _policy_status(s3: Any, bucket: str) -> Finding:
    name = "bucket policy not public"
    try:
        public = s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"].get("IsPublic", False)
    except botocore.exceptions.ClientError as exc:
        if _code(exc) == "NoSuchBucketPolicy":
            return Finding(name, True, "the bucket has no bucket policy")
        return _denied(name, exc, f"s3:GetBucketPolicyStatus on arn:aws:s3:::{bucket}")
    if public:
        return Finding(
            name,
            False,
            "S3 evaluates the bucket policy as PUBLIC (GetBucketPolicyStatus IsPublic=true)",
            fix=f"remove the statements granting access to '*' from {bucket}'s policy "
            f"(aws s3api get-bucket-policy --bucket {bucket}), then turn BlockPublicPolicy and "
            "RestrictPublicBuckets on",
        )
    return Finding(name, True, "the bucket policy is not public")


def _encryption(s3: Any, bucket: str, require_kms: bool) -> Finding:
    name = "default encryption" + (" (SSE-KMS required: dr.require_kms)" if require_kms else "")
    kms_fix = (
        f"aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
        '\'{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms",'
        '"KMSMasterKeyID":"<key arn>"},"BucketKeyEnabled":true}]}\''
    )
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except botocore.exceptions.ClientError as exc:
        if _code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return Finding(name, False, "no default encryption rule", fix=kms_fix)
        return _denied(name, exc, f"s3:GetEncryptionConfiguration on arn:aws:s3:::{bucket}")
    default = next((r.get("ApplyServerSideEncryptionByDefault") for r in rules if r), None) or {}
    algorithm = default.get("SSEAlgorithm")
    if not algorithm:
        return Finding(name, False, "no default encryption rule", fix=kms_fix)
    described = ALGORITHMS.get(algorithm, algorithm)
    key = default.get("KMSMasterKeyID")
    if key:
        described += f", key {key}"
    elif algorithm != "AES256":
        described += ", the AWS managed key aws/s3"
    if require_kms and algorithm == "AES256":
        return Finding(
            name, False, f"{described}: S3's default, not a KMS key (dr.require_kms is true)", fix=kms_fix
        )
    return Finding(name, True, described)


def _versioning(s3: Any, bucket: str) -> Finding:
    name = "versioning"
    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except botocore.exceptions.ClientError as exc:
        return _denied(name, exc, f"s3:GetBucketVersioning on arn:aws:s3:::{bucket}", blocking=False)
    if status == "Enabled":
        return Finding(
            name,
            True,
            "enabled (deleted backups stay as noncurrent versions, with their secrets, until a lifecycle "
            "rule expires them)",
        )
    return Finding(
        name,
        False,
        f"{status or 'never enabled'}: a backup deleted or overwritten by mistake cannot be recovered",
        fix=f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled "
        "(and a lifecycle rule that expires noncurrent versions)",
        blocking=False,
    )


def default_kms_key(s3: Any, bucket: str) -> str | None:
    """The KMS key of the bucket's default encryption (id, ARN or alias), None for SSE-S3, none, or
    when it cannot be read (the bucket check reports that)."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return None
    default = next((r.get("ApplyServerSideEncryptionByDefault") for r in rules if r), None) or {}
    return default.get("KMSMasterKeyID") if default.get("SSEAlgorithm", "").startswith("aws:kms") else None
