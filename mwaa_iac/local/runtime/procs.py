"""Process records for the local runtime, so that any process (e.g. ``mwaa-iac local down``) can stop
what a runtime started.

Each long-running process is started as the leader of its own session and recorded as
``<pid_dir>/<role>.json`` with its pid and start time (so a recycled pid is never signalled). Its
descendants keep that session even when they start process groups of their own (Airflow's task
runners and DAG processor do). They also inherit two environment variables, ``MWAA_IAC_RUNTIME``
(which runtime) and ``MWAA_IAC_ROLE`` (which process), which find the few that start a session of
their own (a BashOperator's command). Stopping a role signals its recorded process, waits, then kills
whatever is left of its tree, its session and its tagged processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import psutil

RUNTIME_TAG_VAR = "MWAA_IAC_RUNTIME"
ROLE_TAG_VAR = "MWAA_IAC_ROLE"


@dataclass(frozen=True)
class ProcessRecord:
    role: str
    pid: int
    create_time: float
    runtime_tag: str


def runtime_tag(pid_dir: Path) -> str:
    return hashlib.sha256(str(pid_dir.resolve()).encode()).hexdigest()[:16]


def tagged_env(env: dict[str, str], pid_dir: Path, role: str) -> dict[str, str]:
    """``env`` plus the tags that let :func:`kill_tagged` find the process and its descendants."""
    return {**env, RUNTIME_TAG_VAR: runtime_tag(pid_dir), ROLE_TAG_VAR: role}


def _record_path(pid_dir: Path, role: str) -> Path:
    return pid_dir / f"{role}.json"


def write_record(pid_dir: Path, role: str, pid: int) -> ProcessRecord:
    pid_dir.mkdir(parents=True, exist_ok=True)
    try:
        create_time = psutil.Process(pid).create_time()
    except psutil.Error:
        create_time = 0.0
    record = ProcessRecord(role, pid, create_time, runtime_tag(pid_dir))
    path = _record_path(pid_dir, role)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.__dict__))
    os.replace(tmp, path)
    return record


def read_record(pid_dir: Path, role: str) -> ProcessRecord | None:
    try:
        data = json.loads(_record_path(pid_dir, role).read_text())
        return ProcessRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def remove_record(pid_dir: Path, role: str) -> None:
    _record_path(pid_dir, role).unlink(missing_ok=True)


def list_records(pid_dir: Path) -> list[ProcessRecord]:
    if not pid_dir.is_dir():
        return []
    records = []
    for path in sorted(pid_dir.glob("*.json")):
        record = read_record(pid_dir, path.stem)
        if record is not None:
            records.append(record)
    return records


def _process(record: ProcessRecord) -> psutil.Process | None:
    try:
        proc = psutil.Process(record.pid)
        if record.create_time and abs(proc.create_time() - record.create_time) > 1.0:
            return None  # the pid was recycled
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def record_alive(record: ProcessRecord) -> bool:
    return _process(record) is not None


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def find_processes(
    tag: str,
    *,
    sessions: set[int] | frozenset[int] = frozenset(),
    role: str | None = None,
    role_prefix: str | None = None,
) -> list[psutil.Process]:
    """Live processes that belong to a runtime: members of one of ``sessions`` (every recorded process
    leads its own session, which its descendants keep unless they call setsid), or carrying the runtime
    ``tag`` in their environment (with exactly ``role``, or a role starting with ``role_prefix``).
    Both are needed: Airflow's setproctitle overwrites the environment as /proc shows it, and a
    BashOperator's command starts a session of its own."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        if sessions and _session_of(proc.pid) in sessions:
            if _still_running(proc):
                found.append(proc)
            continue
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get(RUNTIME_TAG_VAR) != tag:
            continue
        proc_role = env.get(ROLE_TAG_VAR, "")
        if role is not None and proc_role != role:
            continue
        if role_prefix is not None and not proc_role.startswith(role_prefix):
            continue
        if _still_running(proc):
            found.append(proc)
    return found


def runtime_processes(pid_dir: Path, *, role_prefix: str | None = None) -> list[psutil.Process]:
    """Every live process of the runtime whose records are in ``pid_dir`` (optionally only the roles
    starting with ``role_prefix``, e.g. ``"blue."`` for one environment)."""
    records = [r for r in list_records(pid_dir) if role_prefix is None or r.role.startswith(role_prefix)]
    return find_processes(runtime_tag(pid_dir), sessions={r.pid for r in records}, role_prefix=role_prefix)


def _signal_all(processes: list[psutil.Process], sig: int) -> None:
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def _kill_and_wait(processes: list[psutil.Process], sig: int, grace: float) -> list[psutil.Process]:
    _signal_all(processes, sig)
    _gone, alive = psutil.wait_procs(processes, timeout=grace)
    return [p for p in alive if _still_running(p)]


def _still_running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def terminate_record(
    record: ProcessRecord,
    *,
    first_signal: int = signal.SIGTERM,
    grace: float = 10.0,
) -> None:
    """Stop a recorded process and everything it started: ``first_signal`` to the process alone (it
    stops its own children in order: a scheduler ends its executor first), up to ``grace`` seconds,
    then SIGKILL to whatever is left of its tree, its session and the processes tagged with its role."""
    root = _process(record)
    tree: list[psutil.Process] = []
    if root is not None:
        with contextlib.suppress(psutil.Error):
            tree = [root, *root.children(recursive=True)]
        with contextlib.suppress(psutil.Error):
            root.send_signal(first_signal)
        if first_signal != signal.SIGKILL:
            psutil.wait_procs([root], timeout=grace)
        with contextlib.suppress(psutil.Error):
            if root.is_running():
                tree += root.children(recursive=True)
    leftovers = [p for p in tree if _still_running(p)]
    sessions = {record.pid} if record.pid > 0 else set()
    leftovers += find_processes(record.runtime_tag, sessions=sessions, role=record.role)
    if leftovers:
        _kill_and_wait(list({p.pid: p for p in leftovers}.values()), signal.SIGKILL, 5.0)


def terminate_pid(pid: int, sig: int, grace: float) -> None:
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return
    alive = _kill_and_wait([proc], sig, grace)
    if alive:
        _kill_and_wait(alive, signal.SIGKILL, 5.0)


def kill_all(pid_dir: Path) -> None:
    """Stop every recorded process (Airflow first, PostgreSQL last) and anything left of them."""
    records = list_records(pid_dir)
    others = [r for r in records if r.role != "postgres"]
    for record in others:  # SIGTERM them all at once, then wait: faster than one by one
        proc = _process(record)
        if proc is not None:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
    for record in others:
        terminate_record(record, grace=10.0)
        remove_record(pid_dir, record.role)
    tag = runtime_tag(pid_dir)
    postgres = read_record(pid_dir, "postgres")
    leftovers = [p for p in find_processes(tag) if _role_of(p) != "postgres"]
    if postgres is not None:  # the server's own backends share its session
        leftovers = [p for p in leftovers if _session_of(p.pid) != postgres.pid]
    if leftovers:
        _kill_and_wait(leftovers, signal.SIGKILL, 5.0)
    if postgres is not None:
        terminate_record(postgres, first_signal=signal.SIGINT, grace=30.0)
        remove_record(pid_dir, "postgres")
    leftovers = find_processes(tag)
    if leftovers:
        _kill_and_wait(leftovers, signal.SIGKILL, 5.0)


def _role_of(proc: psutil.Process) -> str:
    try:
        return proc.environ().get(ROLE_TAG_VAR, "")
    except (psutil.Error, OSError):
        return ""


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text.splitlines()[-lines:])
