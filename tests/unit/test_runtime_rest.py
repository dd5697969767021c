"""The runtime's REST client against a stand-in server: the family decides the prefix and the auth
(basic on 2.x; on 3.x a JWT from /auth/token, cached, fetched again once when refused)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mwaa_iac.local.runtime.rest import RestClient


class _Server(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str, str | None]] = []
        self.valid_token = "t1"
        self.issued = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.seen.append(("POST", self.path, self.headers.get("Authorization")))
        if self.path == "/auth/token" and body == {"username": "admin", "password": "pw"}:
            self.server.issued += 1
            self._answer(201, {"access_token": self.server.valid_token})
        else:
            self._answer(404, {"detail": "no"})

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        self.server.seen.append(("GET", self.path, auth))
        basic = "Basic " + base64.b64encode(b"admin:pw").decode()
        if auth in (basic, f"Bearer {self.server.valid_token}"):
            self._answer(200, {"version": "x", "path": self.path})
        else:
            self._answer(401, {"detail": "unauthorized"})


@dataclass
class _Target:
    name: str
    airflow_version: str
    port: int
    admin_user: str = "admin"
    admin_password: str = "pw"
    secret_key: str = "k"


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_airflow_2_is_called_under_api_v1_with_basic_auth(server: _Server) -> None:
    target = _Target("blue", "2.10.3", server.server_address[1])
    response = RestClient().call(target, "GET", "version", {"a": "1"}, None)
    assert response.status == 200
    assert isinstance(response.body, dict) and response.body["path"] == "/api/v1/version?a=1"
    assert [s[:2] for s in server.seen] == [("GET", "/api/v1/version?a=1")]


def test_airflow_3_gets_a_token_once_and_again_when_refused(server: _Server) -> None:
    target = _Target("green", "3.0.6", server.server_address[1])
    client = RestClient()
    assert client.call(target, "GET", "/dags", None, None).status == 200
    assert client.call(target, "GET", "/dags", None, None).status == 200
    assert server.issued == 1  # cached
    server.valid_token = "t2"  # the API server restarted with other keys
    response = client.call(target, "GET", "/dags", None, None)
    assert response.status == 200 and server.issued == 2
    assert [s[1] for s in server.seen if s[0] == "GET"] == ["/api/v2/dags"] * 4
    client.forget("green")
    assert client.call(target, "GET", "/dags", None, None).status == 200
    assert server.issued == 3


def test_a_login_the_api_server_refuses_is_an_error(server: _Server) -> None:
    target = _Target("green", "3.0.6", server.server_address[1], admin_password="wrong")
    with pytest.raises(OSError, match=r"issued no token \(HTTP 404\)"):
        RestClient().call(target, "GET", "/dags", None, None)
