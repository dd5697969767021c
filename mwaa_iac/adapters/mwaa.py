"""The MWAA API through boto3, with botocore errors turned into messages a user can act on.

Endpoints and credentials come from the standard settings (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL_MWAA, ...): the same code talks to AWS and to the local stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.exceptions

from mwaa_iac.adapters import aws
from mwaa_iac.core.status import Observation
from mwaa_iac.errors import AwsError

RETRYABLE = {"ThrottlingException", "InternalServerException", "ServiceUnavailable", "RequestTimeout"}


class MwaaApiError(AwsError):
    """An MWAA call failed. ``message`` carries AWS's own message verbatim."""

    def __init__(self, message: str, *, code: str | None, retryable: bool, hint: str | None = None) -> None:
        super().__init__(message, code=code, hint=hint)
        self.retryable = retryable


class EnvironmentNotFoundError(MwaaApiError):
    pass


def translate(exc: Exception, operation: str, name: str | None = None) -> MwaaApiError:
    """A botocore exception → our error, keeping AWS's message."""
    target = f" {name}" if name else ""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = aws.error_code(exc)
        message = aws.error_message(exc) or str(exc)
        if code == "ResourceNotFoundException":
            return EnvironmentNotFoundError(
                f"MWAA environment{target} not found: {message}",
                code=code,
                retryable=False,
                hint="check the name and region (mwaa.yaml `region`, AWS_REGION)",
            )
        if code in ("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"):
            return MwaaApiError(
                f"{operation}{target}: access denied: {message}",
                code=code,
                retryable=False,
                hint="check the AWS credentials and that the role may call airflow:" + operation,
            )
        return MwaaApiError(f"{operation}{target}: {code}: {message}", code=code, retryable=code in RETRYABLE)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return MwaaApiError(
            f"{operation}: no AWS credentials found",
            code="NoCredentials",
            retryable=False,
            hint="set AWS_PROFILE or AWS credentials (for the local stack: source .mwaa-iac/local/env.sh)",
        )
    if isinstance(
        exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectionClosedError
    ):
        return MwaaApiError(
            f"{operation}{target}: cannot reach MWAA: {exc}", code="Connection", retryable=True
        )
    if isinstance(exc, botocore.exceptions.ReadTimeoutError):
        return MwaaApiError(f"{operation}{target}: timed out: {exc}", code="Timeout", retryable=True)
    return MwaaApiError(f"{operation}{target}: {exc}", code=type(exc).__name__, retryable=False)


def observe(environment: dict[str, Any]) -> Observation:
    """GetEnvironment's Environment → Observation."""
    last = environment.get("LastUpdate") or {}
    error = last.get("Error") or {}
    error_text = None
    if error:
        error_text = ": ".join(x for x in (error.get("ErrorCode"), error.get("ErrorMessage")) if x) or None
    created = last.get("CreatedAt")
    return Observation(
        status=str(environment.get("Status", "UNKNOWN")),
        airflow_version=environment.get("AirflowVersion"),
        last_update_status=last.get("Status"),
        last_update_error=error_text,
        last_update_created_at=created.timestamp() if isinstance(created, datetime) else None,
    )


@dataclass
class MwaaClient:
    """Thin wrapper over boto3's ``mwaa`` client: one method per operation we use."""

    region: str | None = None
    client: Any = None

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = aws.client("mwaa", self.region, max_attempts=3)

    def _call(self, operation: str, name: str | None, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self.client, _snake(operation))
        try:
            return method(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise translate(exc, operation, name) from exc

    def get_environment(self, name: str) -> dict[str, Any]:
        return self._call("GetEnvironment", name, Name=name)["Environment"]

    def observe(self, name: str) -> Observation:
        return observe(self.get_environment(name))

    def exists(self, name: str) -> bool:
        try:
            self.get_environment(name)
        except EnvironmentNotFoundError:
            return False
        return True

    def update_environment(self, name: str, **fields: Any) -> str:
        return self._call("UpdateEnvironment", name, Name=name, **fields).get("Arn", "")

    def create_environment(self, name: str, **fields: Any) -> str:
        return self._call("CreateEnvironment", name, Name=name, **fields).get("Arn", "")

    def delete_environment(self, name: str) -> None:
        self._call("DeleteEnvironment", name, Name=name)

    def list_environments(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs = {"NextToken": token} if token else {}
            page = self._call("ListEnvironments", None, **kwargs)
            names += page.get("Environments", [])
            token = page.get("NextToken")
            if not token:
                return names


def _snake(operation: str) -> str:
    out = []
    for i, ch in enumerate(operation):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
