"""The real-Airflow runtime behind the MWAA emulator: each environment is Apache Airflow of its version.

Per runtime (one ``state_dir``):

* one PostgreSQL cluster (``postgres.py``; data in ``state_dir/pg``), one database per environment;
* a cached virtualenv per Airflow version (``adapters/airflow_venvs.py``), shared by all
  environments and runs;
* process records in ``state_dir/pids`` so :func:`kill_recorded_processes` (``local down``) can stop
  everything from another process.

Per environment (``state_dir/envs/<name>/``, which is also its ``AIRFLOW_HOME``):

* ``env.json``: what survives a restart: the committed version and spec, the database name, a
  generated Fernet key (so connection passwords decrypt after a restart or an upgrade), the web
  server's secret key and port, and the generated admin user the REST API calls authenticate as
  (``[api] auth_backends`` = basic auth);
* ``dags/`` and ``worker/dags/`` mirrored from ``s3://<source_bucket>/<dag_s3_path>/`` on create, on
  :meth:`sync`, and every few seconds by background threads (``s3_mirror.py``);
* ``requirements/<version>-<hash>/``: ``requirements.txt`` from S3 (``requirements.py``);
* the processes of its Airflow family (``families.py``: on 2.x a scheduler, a web server and a
  triggerer; on 3.x the web server's place is the API server's, beside a DAG processor), LocalExecutor,
  on 127.0.0.1, each in its own process group, logging to ``<component>.log``; REST calls go through
  ``rest.py``.

An update first prepares what it can while the old version serves (the target's venv and
requirements: a failure there changes nothing), then stops the processes, snapshots the database with
``pg_dump`` (after stopping, so no write is lost on rollback), runs the target's ``airflow db migrate``
(for a downgrade, the current version's ``airflow db downgrade --to-version`` first) and starts the
target; any failure restores the snapshot and restarts the old version (:class:`RuntimeFailure` with
``rolled_back=True``). A startup script from S3 is sourced before the processes start and what it
exports reaches them, as on MWAA (``startup.py``).

While an environment serves, a supervisor thread restarts any of its components whose process exits
(a crash, or the ``kill_scheduler`` fault), after ``restart_delay`` seconds, as MWAA replaces a failed
container: the environment stays AVAILABLE meanwhile and the gap shows in the scheduler's heartbeat
(Airflow's ``/health``, the SchedulerHeartbeat metric). Stopping, updating and deleting an environment
take it out of supervision first.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import subprocess
import threading
import urllib.error
from pathlib import Path
from typing import Any

from mwaa_iac.adapters.airflow_venvs import Venv, VenvBuildError, ensure_venv
from mwaa_iac.core.catalog import parse_version
from mwaa_iac.local.runtime import procs
from mwaa_iac.local.runtime.base import MWAA_SYNC_INTERVAL, ApiResponse, EnvSpec, RuntimeFailure
from mwaa_iac.local.runtime.families import (
    PASSWORDS_FILE,
    UnsupportedAirflowVersion,
    config_env_vars,
    family_of,
    migrate_command,
)
from mwaa_iac.local.runtime.launch import aws_config_file, process_env, task_latency, write_worker_launcher
from mwaa_iac.local.runtime.postgres import PostgresCluster, PostgresError, database_name, socket_dir_for
from mwaa_iac.local.runtime.requirements import RequirementsFailed, install_requirements, prune_requirements
from mwaa_iac.local.runtime.rest import INVOKE_TIMEOUT, RestClient
from mwaa_iac.local.runtime.s3_mirror import S3Mirror, UnsafeArchive
from mwaa_iac.local.runtime.startup import StartupScriptFailed, run_startup_script
from mwaa_iac.local.runtime.state import (
    CODE_API_UNREACHABLE,
    CODE_DAG_SYNC,
    CODE_DATABASE,
    CODE_INJECTED,
    CODE_MIGRATION,
    CODE_NOT_RUNNING,
    CODE_REQUIREMENTS,
    CODE_START,
    CODE_STARTUP_SCRIPT,
    CODE_UNSUPPORTED,
    CODE_VENV,
    RESTART_DELAY,
    RESTART_DELAY_VAR,
    Env,
    EnvState,
    StepError,
    Timer,
    free_port,
    port_free,
    restart_delay_from_env,
    spec_to_dict,
    timestamp,
    write_private_json,
)
from mwaa_iac.local.runtime.supervision import ComponentSupervision

# Importable from here, with the error codes of ``state.py``.
__all__ = [
    "RESTART_DELAY",
    "RESTART_DELAY_VAR",
    "AirflowRuntime",
    "EnvState",
    "config_env_vars",
    "kill_recorded_processes",
    "migrate_command",
    "restart_delay_from_env",
]

# The in-memory record of an environment, by the name older code and tests use.
_Env = Env

log = logging.getLogger(__name__)

# The two copies of the S3 DAG folder each environment keeps, synced independently (as MWAA's
# scheduler and worker containers each sync their own): ``dags/`` is what the scheduler, DAG
# processor, web server and triggerer read; ``worker/dags/`` is what task processes run.
DAG_COPIES = ("scheduler", "worker")
SUPERVISE_INTERVAL = 1.0


def kill_recorded_processes(state_dir: Path) -> None:
    """Stop every process a runtime on ``state_dir`` started (Airflow first, PostgreSQL last), from
    any process: this is what ``mwaa-iac local down`` calls. Data is kept."""
    procs.kill_all(Path(state_dir) / "pids")
    with contextlib.suppress(OSError):  # the server's socket directory, empty once it is gone
        socket_dir_for(Path(state_dir) / "pg").rmdir()


class AirflowRuntime(ComponentSupervision):
    """A :class:`~mwaa_iac.local.runtime.base.Runtime` whose environments are real Apache Airflow 2.x or 3.x.

    ``aws_env`` are the variables (endpoint, dummy credentials, region) Airflow's processes need to
    reach the local AWS endpoints; the runtime's own S3 client for DAG sync uses them too.
    ``venv_cache`` overrides where version venvs are cached; ``sync_interval`` is the period of each
    environment's background DAG syncs (one per copy of the DAG folder, the worker's half a period
    after the scheduler's; 0: none, rely on :meth:`sync`); ``start_timeout`` bounds the wait for a
    started environment to be healthy; ``restart_delay`` is how long a crashed component of a serving
    environment stays down before it is started again (default: :func:`restart_delay_from_env`;
    ``math.inf``: never).
    """

    def __init__(
        self,
        state_dir: Path,
        aws_env: dict[str, str],
        *,
        venv_cache: Path | None = None,
        sync_interval: float = MWAA_SYNC_INTERVAL,
        start_timeout: float = 240.0,
        restart_delay: float | None = None,
        supervise_interval: float = SUPERVISE_INTERVAL,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.restart_delay = restart_delay_from_env() if restart_delay is None else float(restart_delay)
        self.supervise_interval = supervise_interval
        self._supervisor: threading.Thread | None = None
        self._supervisor_stop = threading.Event()
        self.aws_env = dict(aws_env)
        self.venv_cache = venv_cache
        self.sync_interval = sync_interval
        self.start_timeout = start_timeout
        self.pid_dir = self.state_dir / "pids"
        self.postgres = PostgresCluster(
            self.state_dir / "pg", self.pid_dir, log_file=self.state_dir / "postgres.log"
        )
        self._lock = threading.RLock()
        self._envs: dict[str, _Env] = {}
        self._ports: set[int] = set()
        self.mirror = S3Mirror(self.aws_env)
        self.rest = RestClient()
        self._timings: dict[str, dict[str, float]] = {}

    # ------------------------------------------------------------------ paths and state
    def env_dir(self, name: str) -> Path:
        return self.state_dir / "envs" / name

    def _state_file(self, name: str) -> Path:
        return self.env_dir(name) / "env.json"

    def _load_state(self, name: str) -> EnvState | None:
        try:
            data = json.loads(self._state_file(name).read_text())
        except (OSError, ValueError):
            return None
        known = {f.name for f in dataclasses.fields(EnvState)}
        return EnvState(**{k: v for k, v in data.items() if k in known})

    def _save_state(self, state: EnvState) -> None:
        write_private_json(self._state_file(state.name), dataclasses.asdict(state))

    def _env(self, spec: EnvSpec) -> _Env:
        with self._lock:
            env = self._envs.get(spec.name)
            if env is None:
                env = _Env(spec.name, spec)
                self._envs[spec.name] = env
            return env

    def _known(self, name: str) -> _Env:
        with self._lock:
            env = self._envs.get(name)
        if env is not None and env.state is not None:
            return env
        state = self._load_state(name)
        if state is None:
            raise RuntimeFailure(f"environment {name} does not exist in this runtime", code=CODE_NOT_RUNNING)
        env = self._env(state.env_spec())
        env.state = state
        return env

    def url(self, name: str) -> str:
        state = self._known(name).state
        assert state is not None
        return f"http://127.0.0.1:{state.port}"

    def _allocate_port(self, wanted: int | None = None) -> int:
        with self._lock:
            if wanted and wanted not in self._ports and port_free(wanted):
                port = wanted
            else:
                port = free_port(self._ports)
            self._ports.add(port)
            return port

    # ------------------------------------------------------------------ building blocks
    def _venv(self, version: str) -> Venv:
        try:
            return ensure_venv(version, self.venv_cache)
        except VenvBuildError as exc:
            raise StepError(CODE_VENV, f"could not install Airflow {version}: {exc}") from exc

    def ensure_venv(self, version: str) -> Venv:
        """Build (or find) the cached venv for ``version`` ahead of time (``local up`` may prebuild)."""
        return ensure_venv(version, self.venv_cache)

    def _ensure_postgres(self) -> None:
        with self._lock:
            try:
                self.postgres.start()
            except PostgresError as exc:
                raise StepError(CODE_DATABASE, f"PostgreSQL did not start: {exc}") from exc

    def _process_env(
        self, state: EnvState, spec: EnvSpec, venv: Venv, requirements_dir: str | None
    ) -> dict[str, str]:
        return process_env(
            self.env_dir(state.name),
            state,
            spec,
            venv,
            requirements_dir,
            aws_env=self.aws_env,
            aws_config=aws_config_file(self.state_dir, self.aws_env),
            database_url=self.postgres.sqlalchemy_url(state.database),
        )

    def _run_airflow(
        self,
        state: EnvState,
        spec: EnvSpec,
        venv: Venv,
        req_dir: str | None,
        args: list[str],
        log_name: str,
        timeout: float = 600.0,
    ) -> None:
        log_file = self.env_dir(state.name) / log_name
        env = procs.tagged_env(
            self._process_env(state, spec, venv, req_dir), self.pid_dir, f"{state.name}.cli"
        )
        with open(log_file, "a") as out:
            out.write(f"\n=== {timestamp()} airflow {' '.join(args[:2])} ({venv.airflow_version})\n")
            out.flush()
            try:
                result = subprocess.run(
                    [str(venv.python), "-m", "airflow", *args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=self.env_dir(state.name),
                    timeout=timeout,
                    start_new_session=True,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise StepError(CODE_MIGRATION, f"`airflow {' '.join(args[:2])}` timed out") from exc
        if result.returncode != 0:
            raise StepError(
                CODE_MIGRATION,
                f"`airflow {' '.join(args[:2])}` ({venv.airflow_version}) failed with exit code "
                f"{result.returncode}:\n{procs.tail(log_file, 15)}",
            )

    def _migrate(self, state: EnvState, spec: EnvSpec, venv: Venv, req_dir: str | None) -> None:
        self._run_airflow(state, spec, venv, req_dir, migrate_command(venv.airflow_version), "migrate.log")

    def _create_admin(self, state: EnvState, spec: EnvSpec, venv: Venv, req_dir: str | None) -> None:
        if family_of(venv.airflow_version).admin != "users-create":
            return  # Airflow 3's simple auth manager reads the password file _launch_plan writes
        self._run_airflow(
            state, spec, venv, req_dir,
            ["users", "create", "--username", state.admin_user, f"--password={state.admin_password}",
             "--role", "Admin", "--firstname", "MWAA", "--lastname", "Emulator",
             "--email", "mwaa-emulator@localhost.localdomain"],
            "migrate.log",
        )  # fmt: skip

    def _start(self, env: _Env, state: EnvState, spec: EnvSpec, venv: Venv) -> None:
        home = self.env_dir(state.name)
        # Airflow refuses to start when its pid file names a live pid (which may be recycled).
        for stale in home.glob("airflow-*.pid"):
            stale.unlink(missing_ok=True)
        plan = self._launch_plan(state, spec, venv)
        with env.proc_lock:
            env.launch = plan
            for component, (cmd, process_env) in plan.items():
                banner = f"starting {component} ({venv.airflow_version})"
                self._launch(env, component, cmd, process_env, banner)

    def _launch_plan(
        self, state: EnvState, spec: EnvSpec, venv: Venv
    ) -> dict[str, tuple[list[str], dict[str, str]]]:
        """Each component's command and environment (the startup script is run here, as MWAA runs
        it before its components start)."""
        home = self.env_dir(state.name)
        (home / "logs").mkdir(parents=True, exist_ok=True)
        airflow = [str(venv.python), "-m", "airflow"]
        family = family_of(venv.airflow_version)
        write_worker_launcher(home, venv, task_latency())
        if family.admin == "password-file":  # the admin user's password for the auth manager (this user only)
            write_private_json(home / PASSWORDS_FILE, {state.admin_user: state.admin_password})
        base_env = self._startup_env(spec, self._process_env(state, spec, venv, state.requirements_dir))
        plan: dict[str, tuple[list[str], dict[str, str]]] = {}
        for component in family.components:
            process_env = dict(base_env)
            if family.scheduler_runs_tasks and component.name == "scheduler":
                # Tasks are children of the scheduler, loading DAG files from its dags_folder (the
                # DAG processor parses): the scheduler gets the workers' copy.
                process_env["AIRFLOW__CORE__DAGS_FOLDER"] = str(home / "worker" / "dags")
            plan[component.name] = (component.command(airflow, venv.airflow_version, state.port), process_env)
        return plan

    def _startup_env(self, spec: EnvSpec, env: dict[str, str]) -> dict[str, str]:
        """``env`` plus what the environment's startup script exports (MWAA runs the script before
        each component starts; its output goes to ``startup.log``). A failing script fails the start."""
        if not spec.startup_script_s3_path:
            return env
        home = self.env_dir(spec.name)
        script = home / "startup.sh"
        key = spec.startup_script_s3_path.lstrip("/")
        try:
            version = spec.startup_script_s3_object_version
            script.write_bytes(self.mirror.read_object(spec.source_bucket, key, version))
        except Exception as exc:
            raise StepError(
                CODE_STARTUP_SCRIPT, f"cannot read s3://{spec.source_bucket}/{key}: {exc}"
            ) from exc
        try:
            return run_startup_script(script, env, home, key)
        except StartupScriptFailed as exc:
            raise StepError(CODE_STARTUP_SCRIPT, str(exc)) from exc

    def _start_and_wait(self, env: _Env, state: EnvState, spec: EnvSpec, venv: Venv) -> None:
        since = self._db_now(state)
        self._start(env, state, spec, venv)
        self._wait_healthy(env, state, venv.airflow_version, since)

    # ------------------------------------------------------------------ S3: DAGs, plugins, requirements
    def s3_client(self) -> Any:
        return self.mirror.client()

    def dag_folder(self, name: str, copy: str = "scheduler") -> Path:
        """The environment's ``scheduler`` or ``worker`` copy of its DAG folder."""
        home = self.env_dir(name)
        return home / "dags" if copy == "scheduler" else home / "worker" / "dags"

    def _sync_dags(self, spec: EnvSpec, copy: str = "scheduler") -> None:
        manifest = ".dag-manifest.json" if copy == "scheduler" else ".worker-dag-manifest.json"
        self.mirror.mirror_folder(
            spec.source_bucket,
            spec.dag_s3_path,
            self.dag_folder(spec.name, copy),
            self.env_dir(spec.name) / manifest,
        )

    def sync(self, spec: EnvSpec) -> None:
        """Mirror the DAG folder into both copies now. plugins.zip is installed at create/update
        only, at the object version the environment runs (as on MWAA)."""
        env = self._env(spec)
        with env.sync_lock:
            for copy in DAG_COPIES:
                self._sync_dags(spec, copy)
            try:
                self.mirror.install_plugins(spec, self.env_dir(spec.name))
            except UnsafeArchive as exc:
                raise StepError(CODE_DAG_SYNC, str(exc)) from exc

    def _sync_loop(self, env: _Env, copy: str, stop: threading.Event, offset: float) -> None:
        if offset and stop.wait(offset):
            return
        while not stop.wait(self.sync_interval):
            try:
                with env.sync_lock:
                    self._sync_dags(env.spec, copy)
            except Exception as exc:  # keep syncing; the bucket may come back
                log.debug("DAG sync of %s (%s copy) failed: %s", env.name, copy, exc)

    def _start_sync_thread(self, env: _Env) -> None:
        if self.sync_interval <= 0 or any(t.is_alive() for t in env.sync_threads.values()):
            return
        env.sync_stop = threading.Event()
        env.sync_threads = {}
        for index, copy in enumerate(DAG_COPIES):
            thread = threading.Thread(
                target=self._sync_loop,
                args=(env, copy, env.sync_stop, index * self.sync_interval / 2),
                name=f"dag-sync-{env.name}-{copy}",
                daemon=True,
            )
            env.sync_threads[copy] = thread
            thread.start()

    def _stop_sync_thread(self, env: _Env) -> None:
        env.sync_stop.set()
        for thread in env.sync_threads.values():
            if thread is not threading.current_thread():
                thread.join(timeout=30)
        env.sync_threads = {}

    def _prepare_requirements(self, spec: EnvSpec, venv: Venv) -> str | None:
        """Install the environment's requirements.txt for ``venv``'s version (None when it has none);
        returns the directory to put on PYTHONPATH. Reuses an identical earlier install."""
        if not spec.requirements_s3_path:
            return None
        key = spec.requirements_s3_path.lstrip("/")
        try:
            body = self.mirror.read_object(spec.source_bucket, key, spec.requirements_s3_object_version)
        except Exception as exc:
            raise StepError(CODE_REQUIREMENTS, f"cannot read s3://{spec.source_bucket}/{key}: {exc}") from exc
        try:
            return install_requirements(body, self.env_dir(spec.name), venv)
        except RequirementsFailed as exc:
            raise StepError(CODE_REQUIREMENTS, str(exc)) from exc

    # ------------------------------------------------------------------ the Runtime protocol
    def create(self, spec: EnvSpec) -> str:
        _check_version(spec.airflow_version)
        env = self._env(spec)
        env.spec = spec
        timer = self._timer(spec.name, "create")
        try:
            with timer.step("venv"):
                venv = self._venv(spec.airflow_version)
            with timer.step("postgres"):
                self._ensure_postgres()
            home = self.env_dir(spec.name)
            for sub in ("dags", "worker/dags", "plugins", "logs"):
                (home / sub).mkdir(parents=True, exist_ok=True)
            previous = self._load_state(spec.name)
            state = EnvState(
                name=spec.name,
                airflow_version=spec.airflow_version,
                database=database_name(spec.name),
                fernet_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
                secret_key=secrets.token_urlsafe(32),
                admin_password=secrets.token_hex(24),  # never starts with "-" (argparse)
                port=self._allocate_port(previous.port if previous else None),
                spec=spec_to_dict(spec),
            )
            env.state = state
            self._save_state(state)
            with timer.step("database"):
                try:
                    self.postgres.recreate_database(state.database)
                except PostgresError as exc:
                    raise StepError(CODE_DATABASE, str(exc)) from exc
            with timer.step("sync"):
                self._sync_or_fail(spec)
            with timer.step("requirements"):
                state.requirements_dir = self._prepare_requirements(spec, venv)
            self._save_state(state)
            with timer.step("migrate"):
                self._migrate(state, spec, venv, state.requirements_dir)
            with timer.step("admin_user"):
                self._create_admin(state, spec, venv, state.requirements_dir)
            with timer.step("start"):
                self._start_and_wait(env, state, spec, venv)
        except StepError as exc:
            self._stop(env)
            raise RuntimeFailure(exc.message, code=exc.code) from exc
        except Exception as exc:
            self._stop(env)
            raise RuntimeFailure(f"creating {spec.name} failed: {exc}", code=CODE_START) from exc
        finally:
            timer.done()
        self._now_serving(env)
        log.info("created %s (Airflow %s): %s", spec.name, spec.airflow_version, timer.steps)
        return self.url(spec.name)

    def _sync_or_fail(self, spec: EnvSpec) -> None:
        try:
            self.sync(spec)
        except StepError:
            raise
        except Exception as exc:
            raise StepError(
                CODE_DAG_SYNC, f"cannot sync DAGs from s3://{spec.source_bucket}/{spec.dag_s3_path}: {exc}"
            ) from exc

    def update(
        self, old: EnvSpec, new: EnvSpec, *, fail: str | None = None, fail_rollback: bool = False
    ) -> str:
        _check_version(new.airflow_version)
        env = self._known(old.name)
        old_state = env.state
        assert old_state is not None
        old_spec = old_state.env_spec()
        timer = self._timer(old.name, "update")
        try:
            # Everything that can be prepared while the old version keeps serving: nothing is touched
            # yet, so a failure here leaves the environment as it was.
            try:
                with timer.step("venv"):
                    old_venv = self._venv(old_state.airflow_version)
                    new_venv = self._venv(new.airflow_version)
                self._ensure_postgres()
                with timer.step("requirements"):
                    new_req = self._prepare_requirements(new, new_venv)
            except StepError as exc:
                raise RuntimeFailure(exc.message, code=exc.code, rolled_back=True) from exc
            new_state = dataclasses.replace(
                old_state,
                airflow_version=new.airflow_version,
                spec=spec_to_dict(new),
                requirements_dir=new_req,
            )
            snapshot = self.env_dir(old.name) / "snapshots" / "pre-update.dump"
            version_change = new.airflow_version != old_state.airflow_version
            self._stop_sync_thread(env)
            timer.mark("downtime")
            try:
                with timer.step("stop"):
                    self._stop(env)
                with timer.step("snapshot"):
                    snapshot.unlink(missing_ok=True)  # never roll back to an older update's snapshot
                    try:
                        self.postgres.dump(old_state.database, snapshot)
                    except PostgresError as exc:
                        raise StepError(CODE_DATABASE, f"snapshot failed: {exc}") from exc
                if fail:
                    raise StepError(CODE_INJECTED, fail)
                env.spec = new
                env.state = new_state
                with timer.step("sync"):
                    self._sync_or_fail(new)
                if version_change and parse_version(new.airflow_version) < parse_version(
                    old_state.airflow_version
                ):
                    with timer.step("downgrade"):  # only the newer version knows how to undo its migrations
                        self._run_airflow(
                            old_state, old_spec, old_venv, old_state.requirements_dir,
                            ["db", "downgrade", "--to-version", new.airflow_version, "--yes"], "migrate.log",
                        )  # fmt: skip
                if version_change:
                    with timer.step("migrate"):
                        self._migrate(new_state, new, new_venv, new_req)
                with timer.step("start"):
                    self._start_and_wait(env, new_state, new, new_venv)
            except Exception as exc:
                failure = (
                    exc if isinstance(exc, StepError) else StepError(CODE_START, f"update failed: {exc}")
                )
                with timer.step("rollback"):
                    self._rollback(env, old_state, old_spec, old_venv, snapshot, failure, fail_rollback)
                raise AssertionError("unreachable") from exc  # _rollback always raises
            timer.end_mark("downtime")
        finally:
            timer.done()
        self._save_state(new_state)
        prune_requirements(self.env_dir(new.name), new_req)
        self._now_serving(env)
        log.info("updated %s to Airflow %s: %s", new.name, new.airflow_version, timer.steps)
        return self.url(new.name)

    def _rollback(
        self,
        env: _Env,
        old_state: EnvState,
        old_spec: EnvSpec,
        old_venv: Venv,
        snapshot: Path,
        failure: StepError,
        fail_rollback: bool,
    ) -> None:
        """Restore the snapshot and restart the old version; always raises RuntimeFailure."""
        self._stop(env)
        env.spec = old_spec
        env.state = old_state
        try:
            if fail_rollback:
                raise StepError(CODE_INJECTED, "rollback failure injected")
            if snapshot.is_file():
                self.postgres.restore(old_state.database, snapshot)
            with contextlib.suppress(Exception):
                self.sync(old_spec)
            self._start_and_wait(env, old_state, old_spec, old_venv)
        except Exception as exc:
            self._stop(env)
            reason = exc.message if isinstance(exc, StepError) else str(exc)
            raise RuntimeFailure(
                f"{failure.message}; the rollback failed too ({reason}); {env.name} is stopped",
                code=failure.code,
                rolled_back=False,
            ) from exc
        self._now_serving(env)
        raise RuntimeFailure(failure.message, code=failure.code, rolled_back=True)

    def resume(self, spec: EnvSpec) -> str:
        state = self._load_state(spec.name)
        if state is None:
            return self.create(spec)
        env = self._env(state.env_spec())
        env.state = state
        env.spec = state.env_spec()
        if state.airflow_version != spec.airflow_version:
            log.warning(
                "%s: resuming the committed Airflow %s, not %s",
                spec.name,
                state.airflow_version,
                spec.airflow_version,
            )
        timer = self._timer(spec.name, "resume")
        try:
            with timer.step("venv"):
                venv = self._venv(state.airflow_version)
            with timer.step("postgres"):
                self._ensure_postgres()
            if all(self._component_alive(env, c) for c in family_of(state.airflow_version).component_names):
                with contextlib.suppress(Exception):
                    if self._call(state, "GET", "version", None, None, timeout=5).status == 200:
                        self._now_serving(env)
                        return self.url(spec.name)
            self._stop(env)
            if state.requirements_dir and not (Path(state.requirements_dir) / ".complete").is_file():
                with timer.step("requirements"):
                    state.requirements_dir = self._prepare_requirements(env.spec, venv)
            with self._lock:
                self._ports.discard(state.port)
            state.port = self._allocate_port(state.port)
            self._save_state(state)
            with timer.step("sync"), contextlib.suppress(Exception):
                self.sync(env.spec)
            with timer.step("start"):
                self._start_and_wait(env, state, env.spec, venv)
        except StepError as exc:
            self._stop(env)
            raise RuntimeFailure(exc.message, code=exc.code, rolled_back=False) from exc
        finally:
            timer.done()
        self._now_serving(env)
        return self.url(spec.name)

    def timings(self, name: str) -> dict[str, float]:
        """Seconds per step of the environment's last create/update/resume (for benchmarks), e.g.
        ``{"stop": 2.1, "snapshot": 0.3, "migrate": 4.8, "start": 9.6, "downtime": 17.0, "total": ...}``."""
        with self._lock:
            return dict(self._timings.get(name, {}))

    def _timer(self, name: str, operation: str) -> Timer:
        return Timer(lambda steps: self._record_timings(name, operation, steps))

    def _record_timings(self, name: str, operation: str, steps: dict[str, float]) -> None:
        with self._lock:
            self._timings[name] = {**steps}
        log.debug("%s %s timings: %s", operation, name, steps)

    def delete(self, name: str) -> None:
        with self._lock:
            env = self._envs.pop(name, None)
        self.rest.forget(name)
        state = self._load_state(name)
        if env is None:
            env = _Env(name, EnvSpec(name=name, airflow_version="", source_bucket="", dag_s3_path=""))
        self._stop_sync_thread(env)
        self._stop(env)
        if state is not None:
            try:
                self._ensure_postgres()
                self.postgres.drop_database(state.database)
            except (StepError, PostgresError) as exc:
                raise RuntimeFailure(
                    f"could not drop the database of {name}: {exc}", code=CODE_DATABASE
                ) from exc
            with self._lock:
                self._ports.discard(state.port)
        shutil.rmtree(self.env_dir(name), ignore_errors=True)

    def _call(
        self,
        state: EnvState,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: object | None,
        timeout: float = INVOKE_TIMEOUT,
    ) -> ApiResponse:
        """One REST call as MWAA's InvokeRestApi makes it (see ``rest.py``)."""
        return self.rest.call(state, method, path, query, body, timeout)

    def invoke(
        self, name: str, method: str, path: str, query: dict[str, str] | None, body: object | None
    ) -> ApiResponse:
        env = self._known(name)
        assert env.state is not None
        try:
            return self._call(env.state, method, path, query, body)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise RuntimeFailure(
                f"the web server of {name} did not answer: {exc}", code=CODE_API_UNREACHABLE
            ) from exc

    def shutdown(self) -> None:
        self._supervisor_stop.set()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout=30)
        with self._lock:
            envs = list(self._envs.values())
        for env in envs:
            with env.proc_lock:
                env.supervised = False
            env.sync_stop.set()
        for env in envs:
            self._stop_sync_thread(env)
        kill_recorded_processes(self.state_dir)
        for env in envs:
            for popen in env.popens.values():
                with contextlib.suppress(Exception):
                    popen.wait(timeout=5)
            env.popens.clear()
        with self._lock:
            self._ports.clear()


def _check_version(version: str) -> None:
    """Refuse a version no Airflow family covers (a 4.x is not run as if it were a 3.x)."""
    try:
        family_of(version)
    except UnsupportedAirflowVersion as exc:
        raise RuntimeFailure(str(exc), code=CODE_UNSUPPORTED) from exc
