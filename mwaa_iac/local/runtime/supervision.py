"""Starting, stopping and supervising the processes of the runtime's environments.

Each component of an environment runs in a session of its own, recorded in the pid directory (so
``local down`` can stop it from another process). While an environment serves, a supervisor thread
starts again any component whose process exits (a crash, or the ``kill_scheduler`` fault) after
``restart_delay`` seconds, as MWAA replaces a failed container; stopping an environment takes it out
of supervision first. :class:`ComponentSupervision` is the part of ``AirflowRuntime`` that does this.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.error
from pathlib import Path

from mwaa_iac.adapters.airflow_venvs import Venv, VenvBuildError
from mwaa_iac.local.runtime import procs
from mwaa_iac.local.runtime.base import ApiResponse, EnvSpec
from mwaa_iac.local.runtime.families import ALL_COMPONENTS, family_of
from mwaa_iac.local.runtime.postgres import PostgresCluster, PostgresError
from mwaa_iac.local.runtime.rest import INVOKE_TIMEOUT
from mwaa_iac.local.runtime.state import CODE_START, Env, EnvState, StepError, timestamp

log = logging.getLogger(__name__)
STOP_GRACE = 10.0
SCHEDULER_HEARTBEAT_THRESHOLD = 30.0


class ComponentSupervision:
    """Mixed into ``AirflowRuntime``: the process side of an environment (see the module docstring)."""

    pid_dir: Path
    restart_delay: float
    supervise_interval: float
    _lock: threading.RLock
    _envs: dict[str, Env]
    _supervisor: threading.Thread | None
    _supervisor_stop: threading.Event
    postgres: PostgresCluster
    start_timeout: float

    # What AirflowRuntime provides (the components' folders, state, venvs, commands, DAG syncs).
    def env_dir(self, name: str) -> Path:
        raise NotImplementedError

    def _known(self, name: str) -> Env:
        raise NotImplementedError

    def _venv(self, version: str) -> Venv:
        raise NotImplementedError

    def _launch_plan(
        self, state: EnvState, spec: EnvSpec, venv: Venv
    ) -> dict[str, tuple[list[str], dict[str, str]]]:
        raise NotImplementedError

    def _start_sync_thread(self, env: Env) -> None:
        raise NotImplementedError

    def _call(
        self,
        state: EnvState,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: object | None,
        timeout: float = INVOKE_TIMEOUT,
    ) -> ApiResponse:
        raise NotImplementedError

    def _launch(
        self, env: Env, component: str, cmd: list[str], process_env: dict[str, str], banner: str
    ) -> None:
        """Start one component (a session of its own, recorded in the pid directory)."""
        home = self.env_dir(env.name)
        role = f"{env.name}.{component}"
        log_file = home / f"{component}.log"
        with open(log_file, "a") as out:
            out.write(f"\n=== {timestamp()} {banner}\n")
            out.flush()
            popen = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=procs.tagged_env(process_env, self.pid_dir, role),
                cwd=home,
                start_new_session=True,
            )
        env.popens[component] = popen
        procs.write_record(self.pid_dir, role, popen.pid)

    def _stop(self, env: Env) -> None:
        """Stop the environment's Airflow processes (and everything they started), after taking it
        out of supervision (a pending restart is dropped; one under way finishes first)."""
        with env.proc_lock:
            env.supervised = False
            env.down_since.clear()
            self._stop_processes(env)

    def _stop_processes(self, env: Env) -> None:
        roles = [f"{env.name}.{c}" for c in ALL_COMPONENTS]
        records = [r for r in (procs.read_record(self.pid_dir, role) for role in roles) if r is not None]
        for record in records:  # signal both at once, then wait for each
            if procs.record_alive(record):
                with contextlib.suppress(OSError):
                    os.kill(record.pid, signal.SIGTERM)
        for record in records:
            procs.terminate_record(record, grace=STOP_GRACE)
        leftovers = procs.find_processes(
            procs.runtime_tag(self.pid_dir), sessions={r.pid for r in records}, role_prefix=f"{env.name}."
        )
        for proc in leftovers:
            with contextlib.suppress(Exception):
                proc.kill()
        for record in records:
            procs.remove_record(self.pid_dir, record.role)
        for popen in env.popens.values():
            with contextlib.suppress(Exception):
                popen.wait(timeout=5)
        env.popens.clear()

    def _component_alive(self, env: Env, component: str) -> bool:
        popen = env.popens.get(component)
        if popen is not None:
            return popen.poll() is None
        record = procs.read_record(self.pid_dir, f"{env.name}.{component}")
        return record is not None and procs.record_alive(record)

    def _now_serving(self, env: Env) -> None:
        """The environment serves: keep its DAG folders synced and its components running."""
        with env.proc_lock:
            env.supervised = True
            env.down_since.clear()
        self._start_sync_thread(env)
        with self._lock:
            if self._supervisor is None or not self._supervisor.is_alive():
                self._supervisor_stop = threading.Event()
                self._supervisor = threading.Thread(
                    target=self._supervise_loop,
                    args=(self._supervisor_stop,),
                    name="airflow-supervisor",
                    daemon=True,
                )
                self._supervisor.start()

    def _supervise_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.supervise_interval):
            with self._lock:
                envs = list(self._envs.values())
            for env in envs:
                try:
                    self.supervise(env.name)
                except Exception:  # keep supervising the others
                    log.exception("supervising %s failed", env.name)

    def supervise(self, name: str) -> list[str]:
        """One supervision pass over a serving environment: note each component found exited, and
        start again each one down for ``restart_delay`` seconds. Returns the components started."""
        with self._lock:
            env = self._envs.get(name)
        if env is None or not env.supervised or env.state is None:
            return []
        started: list[str] = []
        with env.proc_lock:
            if not env.supervised or env.state is None:
                return []
            state = env.state
            now = time.monotonic()
            for component in family_of(state.airflow_version).component_names:
                if self._component_alive(env, component):
                    env.down_since.pop(component, None)
                    continue
                since = env.down_since.get(component)
                if since is None:
                    env.down_since[component] = now
                    self._note_exit(env, component)
                elif now - since >= self.restart_delay:
                    self._restart(env, state, component)
                    started.append(component)
        return started

    def _note_exit(self, env: Env, component: str) -> None:
        popen = env.popens.get(component)
        code = popen.poll() if popen is not None else None
        how = f"exited with code {code}" if code is not None else "is not running"
        when = (
            "it stays down (restarts are off)"
            if self.restart_delay == float("inf")
            else f"starting it again in {self.restart_delay:g} s, as MWAA replaces a failed container"
        )
        log.warning("the %s of %s %s; %s", component, env.name, how, when)
        with contextlib.suppress(OSError), open(self.env_dir(env.name) / f"{component}.log", "a") as out:
            out.write(f"\n=== {timestamp()} the {component} {how}; {when}\n")

    def _restart(self, env: Env, state: EnvState, component: str) -> None:
        """Start a crashed component again, as it was started (its descendants killed first)."""
        role = f"{env.name}.{component}"
        record = procs.read_record(self.pid_dir, role)
        if record is not None:
            procs.terminate_record(record, first_signal=signal.SIGKILL, grace=1.0)
        popen = env.popens.pop(component, None)
        if popen is not None:
            with contextlib.suppress(Exception):
                popen.wait(timeout=5)
        procs.remove_record(self.pid_dir, role)
        home = self.env_dir(env.name)
        for stale in home.glob(f"airflow-{component}*.pid"):
            stale.unlink(missing_ok=True)
        if component not in env.launch:  # started by an earlier runtime process (resumed while alive)
            try:
                env.launch = self._launch_plan(state, env.spec, self._venv(state.airflow_version))
            except (StepError, VenvBuildError, OSError) as exc:
                env.down_since[component] = time.monotonic()  # try again after another delay
                log.warning("cannot start the %s of %s again: %s", component, env.name, exc)
                return
        cmd, process_env = env.launch[component]
        env.down_since.pop(component, None)
        count = env.restarts.get(component, 0) + 1
        log.warning("starting the %s of %s again (restart %d)", component, env.name, count)
        self._launch(env, component, cmd, process_env, f"starting {component} again after it exited")
        env.restarts[component] = count  # counted once it runs (its pid recorded)

    def restarts(self, name: str) -> dict[str, int]:
        """How many times each component of ``name`` was started again after it exited."""
        with self._lock:
            env = self._envs.get(name)
        return dict(env.restarts) if env is not None else {}

    def kill_scheduler(self, name: str) -> None:
        """Fault injection: SIGKILL the scheduler (and its children), as a crash would. A serving
        environment gets it back after ``restart_delay`` seconds (see :meth:`supervise`)."""
        env = self._known(name)
        role = f"{name}.scheduler"
        with env.proc_lock:
            popen = env.popens.get("scheduler")  # kept: its exit code (-9) says how it ended
            if popen is not None:
                with contextlib.suppress(Exception):
                    popen.kill()
                    popen.wait(timeout=5)
            record = procs.read_record(self.pid_dir, role)
            if record is not None:  # what is left of its session (executor, DAG processor)
                procs.terminate_record(record, first_signal=signal.SIGKILL, grace=5.0)
            procs.remove_record(self.pid_dir, role)

    # ------------------------------------------------------------------ health
    def scheduler_alive(self, name: str) -> bool:
        try:
            env = self._known(name)
            assert env.state is not None
            if not self._component_alive(env, "scheduler"):
                return False
            age = self._scheduler_heartbeat_age(env.state)
        except Exception:
            return False
        return age is not None and age < SCHEDULER_HEARTBEAT_THRESHOLD

    def _db_now(self, state: EnvState) -> float:
        return float(self.postgres.psql("SELECT EXTRACT(EPOCH FROM now())", state.database))

    def _scheduler_heartbeat_age(self, state: EnvState, since: float | None = None) -> float | None:
        """Seconds since the newest running SchedulerJob heartbeat (started after ``since``), or None."""
        where = "job_type = 'SchedulerJob' AND state = 'running'"
        if since is not None:
            where += f" AND start_date >= to_timestamp({since:.3f})"
        out = self.postgres.psql(
            f"SELECT EXTRACT(EPOCH FROM (now() - max(latest_heartbeat))) FROM job WHERE {where}",
            state.database,
            timeout=10,
        )
        return float(out) if out else None

    def _wait_healthy(self, env: Env, state: EnvState, version: str, since: float) -> None:
        """Until the REST API answers (authenticated, with ``version``) and a scheduler started after
        ``since`` heartbeats; fails fast if a process dies."""
        deadline = time.monotonic() + self.start_timeout
        home = self.env_dir(state.name)
        api_ok = scheduler_ok = False
        while time.monotonic() < deadline:
            for component in family_of(version).component_names:
                if not self._component_alive(env, component):
                    raise StepError(
                        CODE_START,
                        f"the {component} of {state.name} exited during startup:\n"
                        f"{procs.tail(home / f'{component}.log', 20)}",
                    )
            if not api_ok:
                try:
                    response = self._call(state, "GET", "version", None, None, timeout=5)
                except (urllib.error.URLError, OSError, TimeoutError):
                    response = None
                if response is not None and response.status == 200 and isinstance(response.body, dict):
                    served = response.body.get("version")
                    if served != version:
                        raise StepError(CODE_START, f"the web server reports Airflow {served}, not {version}")
                    api_ok = True
            if not scheduler_ok:
                with contextlib.suppress(PostgresError, ValueError, subprocess.SubprocessError):
                    age = self._scheduler_heartbeat_age(state, since)
                    scheduler_ok = age is not None and age < SCHEDULER_HEARTBEAT_THRESHOLD
            if api_ok and scheduler_ok:
                return
            time.sleep(0.5)
        raise StepError(
            CODE_START,
            f"{state.name} was not healthy after {self.start_timeout:.0f}s "
            f"(api={api_ok}, scheduler={scheduler_ok}):\n"
            + "\n".join(procs.tail(home / f"{c}.log", 10) for c in family_of(version).component_names),
        )
