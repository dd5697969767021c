"""One class per AWS error code the emulator returns, carrying AWS's code, HTTP status and body.

The HTTP status of every modelled error comes from botocore's own MWAA model (``error.httpStatusCode``),
so botocore raises ``client.exceptions.<Code>`` exactly as it does against AWS. Errors that are not in
the MWAA model (``ThrottlingException``, ``UnknownOperationException``) use AWS's common-error statuses.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mwaa_iac.local.emulator.routes import load_service_model


def _model_status(code: str, default: int) -> int:
    model = load_service_model()
    try:
        shape = model.shape_for(code)
    except Exception:  # not modelled
        return default
    return int(shape.metadata.get("error", {}).get("httpStatusCode", default))


class MwaaError(Exception):
    """An AWS error response. ``fields`` are extra modelled members of the error shape."""

    code: ClassVar[str] = "InternalServerException"
    status: ClassVar[int] = 500
    message_key: ClassVar[str] = "message"

    def __init__(self, message: str = "", **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {self.message_key: self.message} if self.message else {}
        data.update({k: v for k, v in self.fields.items() if v is not None})
        return data

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ValidationException(MwaaError):
    code = "ValidationException"
    status = _model_status(code, 400)


class ResourceNotFoundException(MwaaError):
    code = "ResourceNotFoundException"
    status = _model_status(code, 404)


class InternalServerException(MwaaError):
    code = "InternalServerException"
    status = _model_status(code, 500)


class AccessDeniedException(MwaaError):
    code = "AccessDeniedException"
    status = _model_status(code, 403)
    message_key = "Message"  # the model spells this member with a capital M


class _RestApiError(MwaaError):
    """An Airflow REST API error relayed by InvokeRestApi: carries Airflow's status and body."""

    def __init__(self, rest_api_status: int, rest_api_response: Any, message: str = "") -> None:
        super().__init__(
            message or f"Apache Airflow REST API returned HTTP {rest_api_status}",
            RestApiStatusCode=rest_api_status,
            RestApiResponse=rest_api_response,
        )
        self.rest_api_status = rest_api_status
        self.rest_api_response = rest_api_response


class RestApiClientException(_RestApiError):
    code = "RestApiClientException"
    status = _model_status(code, 400)


class RestApiServerException(_RestApiError):
    code = "RestApiServerException"
    status = _model_status(code, 400)


class ThrottlingException(MwaaError):
    """Not in the MWAA model; AWS's common errors document it as HTTP 400. botocore retries it by
    default (it is in its throttling error codes), as it would against AWS."""

    code = "ThrottlingException"
    status = 400


class UnknownOperationException(MwaaError):
    """No MWAA operation matches the request's method and path."""

    code = "UnknownOperationException"
    status = 404


ERRORS: dict[str, type[MwaaError]] = {
    cls.code: cls
    for cls in (
        ValidationException,
        ResourceNotFoundException,
        InternalServerException,
        AccessDeniedException,
        RestApiClientException,
        RestApiServerException,
        ThrottlingException,
        UnknownOperationException,
    )
}
