"""App factory and a loopback HTTP server (standard library only).

``create_app(backend)`` returns a WSGI application that serves the MWAA API and the admin API
(``/_emulator/*``); ``serve(app, port)`` runs it on 127.0.0.1 in a background thread. The app reads
the raw (percent-encoded) request path from ``RAW_URI``/``REQUEST_URI`` when the server provides it,
so it also runs under other WSGI servers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from mwaa_iac.local.emulator.models import MwaaBackend
from mwaa_iac.local.emulator.responses import ADMIN_PREFIX, AdminResponses, HttpRequest, MwaaResponses

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


class EmulatorApp:
    """WSGI application: MWAA API plus admin API."""

    def __init__(
        self, backend: MwaaBackend, *, default_region: str = "us-east-1", runtime_name: str = ""
    ) -> None:
        self.backend = backend
        self.mwaa = MwaaResponses(backend, default_region=default_region)
        self.admin = AdminResponses(backend, runtime_name=runtime_name)

    @staticmethod
    def _request(environ: dict[str, Any]) -> HttpRequest:
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if raw:
            raw_path, _, query = raw.partition("?")
            if "://" in raw_path:  # absolute-form request target
                raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
        else:
            raw_path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/~")
            query = environ.get("QUERY_STRING", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        return HttpRequest(environ["REQUEST_METHOD"], raw_path or "/", query, headers, body)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = self._request(environ)
        if request.raw_path.startswith(ADMIN_PREFIX):
            response = self.admin.dispatch(request)
        else:
            response = self.mwaa.dispatch(request)
        headers = [*response.headers.items(), ("Content-Length", str(len(response.body)))]
        start_response(f"{response.status} {_REASONS.get(response.status, 'Status')}", headers)
        return [response.body]


def create_app(
    backend: MwaaBackend, *, default_region: str = "us-east-1", runtime_name: str = ""
) -> EmulatorApp:
    """The emulator's WSGI application, handed its state (no module-level singletons)."""
    return EmulatorApp(backend, default_region=default_region, runtime_name=runtime_name)


class _Handler(WSGIRequestHandler):
    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["RAW_URI"] = self.path  # wsgiref percent-decodes PATH_INFO; keep the raw target
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class EmulatorServer:
    """A running server on 127.0.0.1 (``port=0`` picks a free port)."""

    def __init__(self, app: Callable[..., Any], port: int = 0) -> None:
        self._httpd = make_server(HOST, port, app, server_class=_Server, handler_class=_Handler)
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="mwaa-emulator-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(app: Callable[..., Any], port: int = 0) -> EmulatorServer:
    """Start ``app`` on 127.0.0.1:``port`` in a background thread."""
    return EmulatorServer(app, port).start()
