"""The REST calls the runtime makes to an environment's Airflow, as MWAA's InvokeRestApi makes them.

The path goes under the family's API prefix (``/api/v1`` on Airflow 2, ``/api/v2`` on Airflow 3).
A ``basic`` family is called with the admin user's password each time; a ``jwt`` family with a bearer
token its API server issued to the admin user (``POST /auth/token``), cached per environment, port
and secret key, and fetched again once when a call is refused with it (401: none or expired; 403: a
token this API server does not accept, issued before a restart with other keys).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

from mwaa_iac.local.runtime.base import ApiResponse
from mwaa_iac.local.runtime.families import HOST, family_of

INVOKE_TIMEOUT = 10.0


class RestTarget(Protocol):
    """What a call needs to know about an environment (the runtime's ``EnvState`` has it)."""

    name: str
    airflow_version: str
    port: int
    admin_user: str
    admin_password: str
    secret_key: str


class RestClient:
    """REST calls to the environments of one runtime, with a cache of their JWTs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, int, str], str] = {}

    def call(
        self,
        target: RestTarget,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: object | None,
        timeout: float = INVOKE_TIMEOUT,
    ) -> ApiResponse:
        """One call; connection failures raise (``URLError``, ``OSError``, ``TimeoutError``)."""
        family = family_of(target.airflow_version)
        url = f"http://{HOST}:{target.port}{family.api_prefix}/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        jwt = family.auth == "jwt"
        for attempt in range(2):
            if jwt:
                authorization = f"Bearer {self._token(target, fresh=attempt > 0, timeout=timeout)}"
            else:
                basic = base64.b64encode(f"{target.admin_user}:{target.admin_password}".encode()).decode()
                authorization = f"Basic {basic}"
            status, raw = http_request(method, url, data, authorization, timeout)
            if not (jwt and status in (401, 403)):
                break
        return ApiResponse(status=status, body=parse_body(raw))

    def forget(self, name: str) -> None:
        """Drop the tokens of environment ``name`` (deleted)."""
        with self._lock:
            self._tokens = {k: v for k, v in self._tokens.items() if k[0] != name}

    def _token(self, target: RestTarget, *, fresh: bool, timeout: float) -> str:
        """The admin user's JWT, from the cache unless ``fresh``."""
        key = (target.name, target.port, target.secret_key)
        with self._lock:
            token = None if fresh else self._tokens.get(key)
        if token:
            return token
        token_path = family_of(target.airflow_version).token_path
        if token_path is None:
            raise OSError(f"Airflow {target.airflow_version} issues no tokens")
        body = json.dumps({"username": target.admin_user, "password": target.admin_password}).encode()
        status, raw = http_request("POST", f"http://{HOST}:{target.port}{token_path}", body, None, timeout)
        answer = parse_body(raw)
        if status not in (200, 201) or not isinstance(answer, dict) or "access_token" not in answer:
            raise OSError(f"the API server of {target.name} issued no token (HTTP {status})")
        token = str(answer["access_token"])
        with self._lock:
            self._tokens[key] = token
        return token


def http_request(
    method: str, url: str, data: bytes | None, authorization: str | None, timeout: float
) -> tuple[int, bytes]:
    """``(status, body)`` of one JSON request, bypassing any proxy (an HTTP error is an answer)."""
    request = urllib.request.Request(url, data=data, method=method.upper())
    if authorization:
        request.add_header("Authorization", authorization)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def parse_body(raw: bytes) -> object:
    """JSON when the body is JSON, else its text ("" when empty)."""
    text = raw.decode("utf-8", errors="replace")
    if not text:
        return ""
    try:
        return json.loads(text)
    except ValueError:
        return text
