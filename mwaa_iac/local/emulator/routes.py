"""The operation table, derived from botocore's own ``mwaa`` service model (data, not code).

Each :class:`Route` says how an operation is addressed (HTTP method + ``requestUri``) and where each
input member travels (URI label, querystring, header or JSON body). Paths are matched on the *raw*
(still percent-encoded) request path so that a label such as an environment ARN, which botocore
encodes with ``/`` as ``%2F``, stays one label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, StructureShape

SERVICE_NAME = "mwaa"
_LABEL_RE = re.compile(r"\{([^}]+)\}")


@lru_cache(maxsize=1)
def load_service_model() -> ServiceModel:
    """botocore's MWAA model (the one installed alongside boto3)."""
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    uri: str
    regex: re.Pattern[str]
    success_code: int
    input_shape: StructureShape | None
    output_shape: StructureShape | None
    uri_members: dict[str, str] = field(default_factory=dict)  # label -> member name
    query_members: dict[str, str] = field(default_factory=dict)  # query key -> member name
    header_members: dict[str, str] = field(default_factory=dict)  # header name -> member name
    body_members: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Label values (percent-decoded) when ``raw_path`` fits this route, else None."""
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        return {label: unquote(value) for label, value in found.groupdict().items()}

    @property
    def literal_weight(self) -> int:
        """Length of the literal part of the URI: longer literals are more specific."""
        return len(_LABEL_RE.sub("", self.uri))


def _uri_regex(uri_path: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    for found in _LABEL_RE.finditer(uri_path):
        parts.append(re.escape(uri_path[position : found.start()]))
        label = found.group(1)
        greedy = label.endswith("+")
        name = label.rstrip("+")
        parts.append(f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)")
        position = found.end()
    parts.append(re.escape(uri_path[position:]))
    return re.compile("".join(parts))


def build_route(operation: OperationModel) -> Route:
    http = operation.http
    uri = http["requestUri"]
    uri_path = uri.split("?", 1)[0]
    shape = operation.input_shape
    uri_members: dict[str, str] = {}
    query_members: dict[str, str] = {}
    header_members: dict[str, str] = {}
    body_members: list[str] = []
    if shape is not None:
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            where = member.serialization.get("name", name)
            if location == "uri":
                uri_members[where] = name
            elif location == "querystring":
                query_members[where] = name
            elif location == "header":
                header_members[where.lower()] = name
            else:
                body_members.append(name)
    return Route(
        operation=operation.name,
        method=http["method"].upper(),
        uri=uri_path,
        regex=_uri_regex(uri_path),
        success_code=int(http.get("responseCode", 200)),
        input_shape=shape,
        output_shape=operation.output_shape,
        uri_members=uri_members,
        query_members=query_members,
        header_members=header_members,
        body_members=tuple(body_members),
        error_codes=tuple(e.name for e in operation.error_shapes),
    )


@lru_cache(maxsize=1)
def build_routes() -> tuple[Route, ...]:
    """Every operation of the model, most specific URI first."""
    model = load_service_model()
    routes = [build_route(model.operation_model(name)) for name in model.operation_names]
    return tuple(sorted(routes, key=lambda r: (-r.literal_weight, r.uri)))


def find_route(method: str, raw_path: str) -> tuple[Route, dict[str, str]] | tuple[None, bool]:
    """``(route, labels)`` for a request, or ``(None, path_known)`` when nothing matches
    (``path_known`` tells a wrong method on a known path from an unknown path)."""
    path_known = False
    for route in build_routes():
        labels = route.match(raw_path)
        if labels is None:
            continue
        if route.method == method.upper():
            return route, labels
        path_known = True
    return None, path_known
