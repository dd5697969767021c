"""What MWAA checks in the customer's account before it accepts CreateEnvironment/UpdateEnvironment.

MWAA refuses, with a ValidationException and nothing changed, a request whose execution role does not
exist, whose source bucket does not exist or has no versioning (MWAA user guide, "Working with DAGs":
the bucket must have Versioning Enabled), or whose requirements.txt, plugins.zip or startup script
object (or named object version) does not exist. An object named without a version runs at the
version that is the latest when the request is accepted, and keeps running that version, whatever is
uploaded later, until an UpdateEnvironment names another (``resolve_versions``).

The checks go to the local stack's own IAM and S3 (moto) through boto3; a backend built without an
:class:`AwsResources` (unit tests with a fake runtime) skips them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mwaa_iac.local.emulator.exceptions import ValidationException

# (path member, version member, what MWAA calls the file)
OBJECTS = (
    ("RequirementsS3Path", "RequirementsS3ObjectVersion", "requirements.txt"),
    ("PluginsS3Path", "PluginsS3ObjectVersion", "plugins.zip"),
    ("StartupScriptS3Path", "StartupScriptS3ObjectVersion", "startup script"),
)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class AwsResources:
    """IAM and S3 lookups for the emulator's request validation."""

    def __init__(self, client_factory: Callable[[str], Any]) -> None:
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}

    @classmethod
    def for_endpoint(cls, endpoint_url: str, region: str) -> AwsResources:
        def factory(service: str) -> Any:
            import boto3
            from botocore.config import Config

            return boto3.client(
                service,
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
            )

        return cls(factory)

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._client_factory(service)
        return self._clients[service]

    def check_role(self, arn: str) -> None:
        """The execution role must exist in IAM."""
        name = arn.rsplit("/", 1)[-1] if ":role/" in arn else ""
        if not name:
            raise ValidationException(f"ExecutionRoleArn {arn} is not an IAM role ARN")
        try:
            self._client("iam").get_role(RoleName=name)
        except Exception as exc:
            if _error_code(exc) in ("NoSuchEntity", "NoSuchEntityException"):
                raise ValidationException(
                    f"Unable to access the execution role {arn}: the role does not exist. Create it (with a "
                    "trust policy for airflow.amazonaws.com and airflow-env.amazonaws.com) or name another"
                ) from exc
            raise

    def check_bucket(self, bucket_arn: str) -> str:
        """The source bucket must exist and have versioning enabled; returns its name."""
        bucket = bucket_arn.rsplit(":", 1)[-1]
        s3 = self._client("s3")
        try:
            status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        except Exception as exc:
            if _error_code(exc) in ("NoSuchBucket", "404"):
                raise ValidationException(
                    f"Unable to access SourceBucketArn {bucket_arn}: the bucket does not exist"
                ) from exc
            raise
        if status != "Enabled":
            raise ValidationException(
                f"The Amazon S3 bucket {bucket} must have versioning enabled (its versioning is "
                f"{status or 'not configured'}): enable it with put-bucket-versioning "
                "--versioning-configuration Status=Enabled"
            )
        return bucket

    def object_version(self, bucket: str, key: str, version: str | None, member: str, what: str) -> str:
        """The version to run: ``version`` if it exists, else the object's latest version."""
        extra = {"VersionId": version} if version else {}
        try:
            head = self._client("s3").head_object(Bucket=bucket, Key=key, **extra)
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NoSuchVersion", "400", "InvalidArgument"):
                if version:
                    raise ValidationException(
                        f"Unable to read version {version} of the {what} s3://{bucket}/{key} "
                        f"({member[:-4]}ObjectVersion): no such object version"
                    ) from exc
                raise ValidationException(
                    f"Unable to read the {what} s3://{bucket}/{key} ({member}): no such object"
                ) from exc
            raise
        resolved = head.get("VersionId")
        if not resolved or resolved == "null":
            raise ValidationException(
                f"The {what} s3://{bucket}/{key} has no object version: enable versioning on the bucket "
                "and upload it again"
            )
        return str(resolved)

    def resolve_versions(self, config: dict[str, Any], changes: dict[str, Any] | None = None) -> None:
        """Check the config's bucket and objects; fill in the object versions it will run.

        ``changes`` (UpdateEnvironment's members) decides which objects are looked at again: an object
        whose path or version the update names; the others keep the version they run."""
        bucket = self.check_bucket(config["SourceBucketArn"])
        for path_member, version_member, what in OBJECTS:
            path = config.get(path_member)
            if not path:
                config.pop(version_member, None)
                continue
            if changes is not None:
                path_changed = path_member in changes
                version_named = version_member in changes
                if not path_changed and not version_named and config.get(version_member):
                    continue
                if path_changed and not version_named:
                    config.pop(version_member, None)  # a new path runs its latest version
            config[version_member] = self.object_version(
                bucket, path.lstrip("/"), config.get(version_member), version_member, what
            )
