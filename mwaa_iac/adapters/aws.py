"""boto3 clients and botocore errors, one home for every adapter (and the report).

:func:`client` builds every boto3 client the product uses, from the standard credential and endpoint
settings (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL_MWAA``, ...): the same code talks to
AWS and to the local stack. :func:`aws_error` turns a botocore exception into an :class:`AwsError`
that names the action; :func:`explain` gives the one-line reason (what to do) for code that must not
raise, such as the pull-request report. boto3 is imported when a client is first built, so importing
this module stays cheap.
"""

from __future__ import annotations

from typing import Any

from mwaa_iac.errors import AwsError

ACCESS_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
REJECTED_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidSignatureException",
    }
)
CREDENTIALS_HINT = "configure credentials: a profile, environment variables, or an OIDC role in CI"


def client(
    service: str,
    region: str | None = None,
    *,
    session: Any = None,
    fresh_session: bool = False,
    max_attempts: int | None = None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> Any:
    """A boto3 client for ``service`` from ``session``, else from a new session when
    ``fresh_session`` (credentials and endpoints read now, not remembered from an earlier client),
    else from boto3's default session. Retries (standard mode) and timeouts are set only when given;
    otherwise botocore's defaults apply."""
    import boto3

    if session is None and fresh_session:
        session = boto3.session.Session()

    settings: dict[str, Any] = {}
    if max_attempts is not None:
        settings["retries"] = {"max_attempts": max_attempts, "mode": "standard"}
    if connect_timeout is not None:
        settings["connect_timeout"] = connect_timeout
    if read_timeout is not None:
        settings["read_timeout"] = read_timeout
    kwargs: dict[str, Any] = {"region_name": region}
    if settings:
        from botocore.config import Config

        kwargs["config"] = Config(**settings)
    return (session or boto3).client(service, **kwargs)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ``ClientError`` (``NoSuchKey``, ``AccessDenied``, ...), else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return response.get("Error", {}).get("Code")


def error_message(exc: BaseException) -> str | None:
    """AWS's own message of a ``ClientError``, else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return response.get("Error", {}).get("Message")


def aws_error(
    action: str, exc: BaseException, *, hint: str | None = None, denied_hint: str | None = None
) -> AwsError:
    """``action: Code: Message`` for an AWS error answer, ``action: <exception>`` for anything else
    (no credentials, no network). ``denied_hint`` replaces ``hint`` when access was denied."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = error_code(exc)
        if denied_hint and code in ACCESS_DENIED:
            hint = denied_hint
        return AwsError(f"{action}: {code}: {error_message(exc)}", code=code, hint=hint)
    return AwsError(f"{action}: {exc}", hint=hint)


def explain(exc: BaseException, *, needs: str | None = None, otherwise: str | None = None) -> str:
    """A one-line reason for an AWS failure that says what to do. ``needs`` is the permission to name
    when access is denied; ``otherwise`` the way out to offer when there are no credentials."""
    from botocore import exceptions as bce

    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        way_out = f"; or {otherwise}" if otherwise else ""
        return f"no AWS credentials found ({CREDENTIALS_HINT}{way_out})"
    if isinstance(exc, bce.NoRegionError):
        return "no AWS region configured"
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError)):
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        return f"cannot reach the AWS endpoint {url}".rstrip() + " (network unreachable or timed out)"
    if isinstance(exc, bce.ReadTimeoutError):
        return "the AWS endpoint did not answer in time"
    if isinstance(exc, bce.ClientError):
        code = error_code(exc) or "ClientError"
        message = error_message(exc) or ""
        if code in ACCESS_DENIED:
            needed = f"; the role needs {needs}" if needs else ""
            return f"access denied ({code}: {message}){needed}"
        if code in REJECTED_CREDENTIALS:
            return f"the AWS credentials were rejected ({code}: {message})"
        return f"{code}: {message}".rstrip(": ")
    if isinstance(exc, bce.BotoCoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
