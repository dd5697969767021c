"""A small Python client for the emulator's admin API (``/_emulator/*``): health, environments,
fault injection and DAG sync. Standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mwaa_iac.errors import MwaaIacError

FAULTS = ("fail_create", "fail_update", "fail_rollback", "throttle", "kill_scheduler", "stretch")


class EmulatorAdminError(MwaaIacError):
    """The emulator refused an admin request or could not be reached."""


class EmulatorAdmin:
    """``EmulatorAdmin("http://127.0.0.1:PORT").fail_next_update("blue", "boom")``."""

    def __init__(self, endpoint: str, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(
            f"{self.endpoint}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"{}").get("error") or exc.reason
            except ValueError:
                detail = exc.reason
            raise EmulatorAdminError(f"the MWAA emulator refused {method} {path}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise EmulatorAdminError(
                f"cannot reach the MWAA emulator at {self.endpoint}: {exc}",
                hint="start the local stack with `mwaa-iac local up`",
            ) from exc

    # -- reading
    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def environments(self) -> list[dict[str, Any]]:
        return self._call("GET", "environments")["environments"]

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")

    # -- faults
    def inject(self, fault: str, **params: Any) -> dict[str, Any]:
        """Arm any fault (see :data:`FAULTS`); ``params`` are environment, message, count, seconds,
        fail_rollback."""
        body = {"fault": fault, **{k: v for k, v in params.items() if v is not None}}
        return self._call("POST", "faults", body)

    def fail_next_create(self, environment: str, message: str | None = None) -> dict[str, Any]:
        return self.inject("fail_create", environment=environment, message=message)

    def fail_next_update(
        self, environment: str, message: str | None = None, *, fail_rollback: bool = False
    ) -> dict[str, Any]:
        return self.inject(
            "fail_update", environment=environment, message=message, fail_rollback=fail_rollback
        )

    def fail_rollback(self, environment: str, message: str | None = None) -> dict[str, Any]:
        return self.inject("fail_rollback", environment=environment, message=message)

    def throttle(self, environment: str, count: int = 1) -> dict[str, Any]:
        return self.inject("throttle", environment=environment, count=count)

    def kill_scheduler(self, environment: str) -> dict[str, Any]:
        return self.inject("kill_scheduler", environment=environment)

    def stretch(self, seconds: float, environment: str | None = None) -> dict[str, Any]:
        return self.inject("stretch", seconds=seconds, environment=environment)

    def clear_faults(self, environment: str | None = None) -> dict[str, Any]:
        suffix = f"?environment={urllib.parse.quote(environment)}" if environment else ""
        return self._call("DELETE", f"faults{suffix}")

    # -- sync
    def sync(self, environment: str | None = None) -> dict[str, Any]:
        return self._call("POST", "sync", {"environment": environment} if environment else {})


def inject_fault(endpoint: str, fault: str, **params: Any) -> dict[str, Any]:
    """One-call form: ``inject_fault(url, "fail_update", environment="blue", message="boom")``."""
    return EmulatorAdmin(endpoint).inject(fault, **params)
