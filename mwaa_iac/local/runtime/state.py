"""What the runtime keeps about an environment: on disk (``env.json``, :class:`EnvState`) and in memory
(:class:`Env`: its processes, DAG-sync threads and supervision), plus the small helpers around them
(step timings, ports, the restart delay) and the error a failed step raises, with its code."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwaa_iac.local.runtime.base import EnvSpec

ADMIN_USER = "mwaa-emulator"
# MWAA runs each Airflow component in a container of its own (AWS Fargate) and replaces one whose
# process exits; the replacement is provisioned and started before the component runs again, so the
# environment stays AVAILABLE with, for the scheduler, a gap in its heartbeat of a minute or more.
# 60 s stands for that: longer than the 30 s after which Airflow's /health (and mwaa-iac's check
# before a probe) calls a heartbeat stale, so the gap is visible to both, and short enough for tests.
# $MWAA_IAC_LOCAL_RESTART_DELAY overrides it (seconds, or "off": a crashed component stays down).
RESTART_DELAY = 60.0
RESTART_DELAY_VAR = "MWAA_IAC_LOCAL_RESTART_DELAY"


@dataclass
class EnvState:
    """``env.json``: the committed state of one environment."""

    name: str
    airflow_version: str
    database: str
    fernet_key: str
    secret_key: str
    admin_password: str
    port: int
    spec: dict[str, Any]
    requirements_dir: str | None = None
    admin_user: str = ADMIN_USER

    def env_spec(self) -> EnvSpec:
        return EnvSpec(**self.spec)


@dataclass
class Env:
    """What the runtime holds in memory for one environment."""

    name: str
    spec: EnvSpec
    state: EnvState | None = None
    popens: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    sync_lock: threading.Lock = field(default_factory=threading.Lock)
    sync_stop: threading.Event = field(default_factory=threading.Event)
    sync_threads: dict[str, threading.Thread] = field(default_factory=dict)
    # Supervision (see AirflowRuntime.supervise): ``supervised`` while the environment serves;
    # ``proc_lock`` orders a restart against stop/start; how each component was last launched.
    supervised: bool = False
    proc_lock: threading.RLock = field(default_factory=threading.RLock)
    launch: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    down_since: dict[str, float] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)


def restart_delay_from_env() -> float:
    """``$MWAA_IAC_LOCAL_RESTART_DELAY`` (seconds; ``off``: never), else :data:`RESTART_DELAY`."""
    raw = os.environ.get(RESTART_DELAY_VAR, "").strip().lower()
    if not raw:
        return RESTART_DELAY
    if raw in ("off", "never", "none"):
        return float("inf")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{RESTART_DELAY_VAR}={raw!r} is neither a number of seconds nor 'off'") from None
    if value < 0:
        raise ValueError(f"{RESTART_DELAY_VAR} must not be negative, not {value:g}")
    return value


class Timer:
    """Durations of the named steps of one operation, reported to ``on_done`` when it ends."""

    def __init__(self, on_done: Any) -> None:
        self.steps: dict[str, float] = {}
        self._on_done = on_done
        self._started = time.monotonic()
        self._marks: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Any:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = round(self.steps.get(name, 0.0) + time.monotonic() - started, 3)

    def mark(self, name: str) -> None:
        self._marks[name] = time.monotonic()

    def end_mark(self, name: str) -> None:
        if name in self._marks:
            self.steps[name] = round(time.monotonic() - self._marks.pop(name), 3)

    def done(self) -> None:
        self.steps["total"] = round(time.monotonic() - self._started, 3)
        self._on_done(self.steps)


def spec_to_dict(spec: EnvSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def free_port(exclude: set[int]) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in exclude:
            return port
    raise RuntimeError("no free port")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def write_private_json(path: Path, data: object) -> None:
    """``data`` as JSON in ``path``, readable by this user only, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2, sort_keys=True)
    os.replace(tmp, path)


# LastUpdate.Error codes the runtime reports (the emulator copies them).
CODE_VENV = "AIRFLOW_INSTALL_FAILED"
CODE_REQUIREMENTS = "REQUIREMENTS_INSTALL_FAILED"
CODE_DAG_SYNC = "S3_SYNC_FAILED"
CODE_DATABASE = "DATABASE_FAILED"
CODE_MIGRATION = "MIGRATION_FAILED"
CODE_START = "STARTUP_FAILED"
CODE_INJECTED = "INJECTED_FAILURE"
CODE_UNSUPPORTED = "UNSUPPORTED_VERSION"
CODE_STARTUP_SCRIPT = "STARTUP_SCRIPT_FAILED"
CODE_NOT_RUNNING = "ENVIRONMENT_NOT_RUNNING"
CODE_API_UNREACHABLE = "WEBSERVER_UNREACHABLE"


class StepError(Exception):
    """A failed step of create/update, carrying the error code to report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def timestamp() -> str:
    """Now, for the lines that open each entry of an environment's logs."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")
