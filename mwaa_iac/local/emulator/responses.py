"""Turn an HTTP request into a backend call and the result into an HTTP response (rest-json).

Parsing and serialisation are driven by the operation's shapes in botocore's model: URI labels,
querystring and JSON body members in; output members out, timestamps as epoch seconds (numbers), as
rest-json does. Errors carry ``x-amzn-ErrorType`` and a JSON body with the error shape's members.
Signatures (SigV4) are not verified; the account and region come from the credential scope.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from botocore.model import Shape

from mwaa_iac.local.emulator.exceptions import (
    InternalServerException,
    MwaaError,
    UnknownOperationException,
    ValidationException,
)
from mwaa_iac.local.emulator.models import DEFAULT_ACCOUNT, AdminError, MwaaBackend, RequestContext
from mwaa_iac.local.emulator.routes import Route, find_route
from mwaa_iac.local.emulator.validation import validate_input

log = logging.getLogger(__name__)

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/")
ADMIN_PREFIX = "/_emulator/"


@dataclass
class HttpRequest:
    method: str
    raw_path: str  # percent-encoded, without the query string
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> HttpResponse:
        return cls(
            status,
            json.dumps(data, separators=(",", ":")).encode("utf-8"),
            {"Content-Type": "application/json", **(headers or {})},
        )


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def request_context(headers: dict[str, str], default_region: str) -> RequestContext:
    """Account and region from the SigV4 credential scope (a 12-digit access key id is taken as the
    account, as moto does); defaults otherwise."""
    found = _CREDENTIAL_RE.search(headers.get("authorization", ""))
    if not found:
        return RequestContext(DEFAULT_ACCOUNT, default_region)
    key, region = found.groups()
    account = key if key.isdigit() and len(key) == 12 else DEFAULT_ACCOUNT
    return RequestContext(account, region)


# ---------------------------------------------------------------------- parsing


def _scalar(shape: Shape, text: str, location_name: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
    except ValueError:
        raise ValidationException(
            f"1 validation error detected: Value '{text}' at '{location_name}' failed to satisfy constraint: "
            f"Member must be of type {kind}"
        ) from None
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValidationException(
                f"1 validation error detected: Value '{text}' at '{location_name}' failed to satisfy "
                "constraint: Member must be of type boolean"
            )
        return text.lower() == "true"
    return text


def parse_params(route: Route, labels: dict[str, str], request: HttpRequest) -> dict[str, Any]:
    shape = route.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    if route.body_members or request.body.strip():
        text = request.body.decode("utf-8", errors="replace").strip()
        if text:
            try:
                body = json.loads(text)
            except ValueError:
                raise ValidationException("Could not parse the request body as JSON") from None
            if not isinstance(body, dict):
                raise ValidationException("The request body must be a JSON object")
            params.update({k: v for k, v in body.items() if k not in route.uri_members.values()})
    for label, member in route.uri_members.items():
        if label in labels:
            params[member] = _scalar(shape.members[member], labels[label], label)
    query = parse_qs(request.query, keep_blank_values=True)
    for key, member in route.query_members.items():
        if key not in query:
            continue
        member_shape = shape.members[member]
        if member_shape.type_name == "list":
            params[member] = [_scalar(member_shape.member, v, key) for v in query[key]]
        else:
            params[member] = _scalar(member_shape, query[key][0], key)
    for header, member in route.header_members.items():
        if header in request.headers:
            params[member] = _scalar(shape.members[member], request.headers[header], header)
    return params


# ---------------------------------------------------------------------- serialisation


def serialize(shape: Shape | None, value: Any) -> Any:
    """Shape-directed JSON: unknown members dropped, timestamps as epoch seconds."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        if getattr(shape, "is_document_type", False):
            return value
        out = {}
        for name, member in shape.members.items():
            if member.serialization.get("location") in ("header", "headers", "statusCode"):
                continue
            if name in value and value[name] is not None:
                out[member.serialization.get("name", name)] = serialize(member, value[name])
        return out
    if kind == "list":
        return [serialize(shape.member, item) for item in value]
    if kind == "map":
        return {key: serialize(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        if isinstance(value, datetime):
            stamp = value.timestamp()
            return int(stamp) if stamp.is_integer() else round(stamp, 3)
        return value
    return value


def error_response(error: MwaaError, request_id: str) -> HttpResponse:
    return HttpResponse.json(
        error.status,
        error.body(),
        {"x-amzn-ErrorType": error.code, "x-amzn-RequestId": request_id},
    )


# ---------------------------------------------------------------------- MWAA API


class MwaaResponses:
    """The MWAA API: route → parse → validate → backend → serialise."""

    def __init__(self, backend: MwaaBackend, *, default_region: str = "us-east-1") -> None:
        self.backend = backend
        self.default_region = default_region

    def dispatch(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        try:
            route, labels = find_route(request.method, request.raw_path)
            if route is None:
                raise UnknownOperationException(
                    f"No MWAA operation answers {request.method} {request.raw_path}"
                    + (" (wrong HTTP method)" if labels else "")
                )
            assert isinstance(labels, dict)
            params = parse_params(route, labels, request)
            operation = snake_case(route.operation)
            prevalidate = getattr(self.backend, f"prevalidate_{operation}", None)
            if prevalidate is not None:
                prevalidate(params)
            validate_input(route.input_shape, params)
            handler = getattr(self.backend, operation, None)
            if handler is None:
                raise InternalServerException(
                    f"{route.operation} is not implemented by the local MWAA emulator"
                )
            context = request_context(request.headers, self.default_region)
            result = handler(context, params) or {}
            return HttpResponse.json(
                route.success_code, serialize(route.output_shape, result), {"x-amzn-RequestId": request_id}
            )
        except MwaaError as exc:
            if exc.status >= 500:
                log.error("%s %s: %s", request.method, request.raw_path, exc)
            return error_response(exc, request_id)
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.raw_path)
            return error_response(InternalServerException("An internal error has occurred"), request_id)


# ---------------------------------------------------------------------- admin API


class AdminResponses:
    """``/_emulator/*``: health, environment listing, fault injection, DAG sync. JSON in and out.

    - ``GET  /_emulator/health`` → ``{"status": "ok", "environments": N, "runtime": "..."}``
    - ``GET  /_emulator/environments`` → ``{"environments": [{name, status, airflow_version, ...}]}``
    - ``GET  /_emulator/faults`` → armed faults
    - ``POST /_emulator/faults`` ``{"fault": KIND, "environment": NAME, "message": ..., "count": N,
      "seconds": S, "fail_rollback": bool}`` → armed faults; KIND is fail_create, fail_update,
      fail_rollback, throttle, kill_scheduler or stretch
    - ``DELETE /_emulator/faults[?environment=NAME]`` → armed faults after clearing
    - ``POST /_emulator/sync`` ``{"environment": NAME}`` (optional) → ``{"synced": [...], "errors": {...}}``
    """

    def __init__(self, backend: MwaaBackend, *, runtime_name: str = "") -> None:
        self.backend = backend
        self.runtime_name = runtime_name or type(backend.runtime).__qualname__

    def dispatch(self, request: HttpRequest) -> HttpResponse:
        path = request.raw_path[len(ADMIN_PREFIX) :].strip("/")
        try:
            body = json.loads(request.body.decode("utf-8") or "{}") if request.body.strip() else {}
            if not isinstance(body, dict):
                raise AdminError("the request body must be a JSON object")
            query = {k: v[0] for k, v in parse_qs(request.query).items()}
            key = (request.method.upper(), path)
            if key == ("GET", "health"):
                return HttpResponse.json(
                    200,
                    {
                        "status": "ok",
                        "service": "mwaa-emulator",
                        "environments": len(self.backend.environments()),
                        "runtime": self.runtime_name,
                    },
                )
            if key == ("GET", "environments"):
                return HttpResponse.json(200, {"environments": self.backend.environments()})
            if key == ("GET", "faults"):
                return HttpResponse.json(200, self.backend.faults.snapshot())
            if key == ("POST", "faults"):
                fault = body.pop("fault", None)
                if not isinstance(fault, str):
                    raise AdminError(
                        'the body needs "fault": one of fail_create, fail_update, fail_rollback, '
                        "throttle, kill_scheduler, stretch"
                    )
                allowed = {"environment", "message", "count", "seconds", "fail_rollback"}
                unknown = sorted(set(body) - allowed)
                if unknown:
                    raise AdminError(
                        f"unknown fields {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
                    )
                return HttpResponse.json(200, self.backend.inject_fault(fault, **body))
            if key == ("DELETE", "faults"):
                return HttpResponse.json(200, self.backend.clear_faults(query.get("environment")))
            if key == ("POST", "sync"):
                return HttpResponse.json(200, self.backend.sync_environments(body.get("environment")))
            return HttpResponse.json(404, {"error": f"no admin endpoint {request.method} {request.raw_path}"})
        except (AdminError, ValueError, TypeError) as exc:
            return HttpResponse.json(400, {"error": str(exc)})
        except Exception as exc:
            log.exception("admin request %s %s failed", request.method, request.raw_path)
            return HttpResponse.json(500, {"error": f"{type(exc).__name__}: {exc}"})
