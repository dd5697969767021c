"""The real-Airflow runtime behind the MWAA emulator: each environment is Apache Airflow of its version.

Per runtime (one ``state_dir``):

* one PostgreSQL cluster (``postgres.py``; data in ``state_dir/pg``), one database per environment;
* a cached virtualenv per Airflow version (``venvs.py``), shared by all environments and runs;
* process records in ``state_dir/pids`` so :func:`kill_recorded_processes` (``local down``) can stop
  everything from another process.

Per environment (``state_dir/envs/<name>/``, which is also its ``AIRFLOW_HOME``):

* ``env.json``: what survives a restart: the committed version and spec, the database name, a
  generated Fernet key (so connection passwords decrypt after a restart or an upgrade), the web
  server's secret key and port, and the generated admin user the REST API calls authenticate as
  (``[api] auth_backends`` = basic auth);
* ``dags/`` mirrored from ``s3://<source_bucket>/<dag_s3_path>/`` on create, on :meth:`sync`, and
  every few seconds by a background thread (files deleted from S3 are deleted here; files that tasks
  write themselves, such as mwaa-dr's local backups, are left alone);
* ``requirements/<version>-<hash>/``: ``requirements.txt`` from S3 installed with ``--target`` and
  constrained to the version venv's own packages (as MWAA constrains them), put on ``PYTHONPATH``;
* a scheduler (LocalExecutor, small parallelism) and a web server (one gunicorn worker) on
  127.0.0.1, each in its own process group, logging to ``scheduler.log`` / ``webserver.log``.

An update first prepares what it can while the old version serves (the target's venv and
requirements: a failure there changes nothing), then stops the processes, snapshots the database with
``pg_dump`` (after stopping, so no write is lost on rollback), runs the target's ``airflow db migrate``
(for a downgrade, the current version's ``airflow db downgrade --to-version`` first) and starts the
target; any failure restores the snapshot and restarts the old version (:class:`RuntimeFailure` with
``rolled_back=True``). A startup script from S3 is sourced before the processes start and what it
exports reaches them, as on MWAA.

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
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwaa_iac.adapters.airflow_venvs import (
    Venv,
    VenvBuildError,
    ensure_venv,
    installer_env,
    pip_install_command,
)
from mwaa_iac.core.catalog import major_of, parse_version
from mwaa_iac.local.runtime import procs
from mwaa_iac.local.runtime.base import MWAA_SYNC_INTERVAL, ApiResponse, EnvSpec, RuntimeFailure
from mwaa_iac.local.runtime.postgres import PostgresCluster, PostgresError, database_name, socket_dir_for

log = logging.getLogger(__name__)

# The processes of an environment, by Airflow major version: Airflow 3 splits the web server into the
# API server (REST API v2, the UI and the execution API tasks talk to) and the DAG processor.
COMPONENTS_BY_MAJOR = {
    2: ("scheduler", "webserver", "triggerer"),
    3: ("scheduler", "api-server", "dag-processor", "triggerer"),
}
ALL_COMPONENTS = ("scheduler", "webserver", "api-server", "dag-processor", "triggerer")
# The two copies of the S3 DAG folder each environment keeps, synced independently (as MWAA's
# scheduler and worker containers each sync their own): ``dags/`` is what the scheduler, DAG
# processor, web server and triggerer read; ``worker/dags/`` is what task processes run.
DAG_COPIES = ("scheduler", "worker")
ADMIN_USER = "mwaa-emulator"
INVOKE_TIMEOUT = 10.0
SCHEDULER_HEARTBEAT_THRESHOLD = 30.0
STOP_GRACE = 10.0
# MWAA runs each Airflow component in a container of its own (AWS Fargate) and replaces one whose
# process exits; the replacement is provisioned and started before the component runs again, so the
# environment stays AVAILABLE with, for the scheduler, a gap in its heartbeat of a minute or more.
# 60 s stands for that: longer than the 30 s after which Airflow's /health (and mwaa-iac's check
# before a probe) calls a heartbeat stale, so the gap is visible to both, and short enough for tests.
# $MWAA_IAC_LOCAL_RESTART_DELAY overrides it (seconds, or "off": a crashed component stays down).
RESTART_DELAY = 60.0
RESTART_DELAY_VAR = "MWAA_IAC_LOCAL_RESTART_DELAY"
SUPERVISE_INTERVAL = 1.0
API_AUTH_BACKENDS = "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
PASSWORDS_FILE = "simple_auth_manager_passwords.json"


def migrate_command(version: str) -> list[str]:
    """``airflow db migrate`` (2.7 and later); before 2.7 it was ``airflow db upgrade``."""
    return ["db", "migrate"] if parse_version(version) >= (2, 7, 0) else ["db", "upgrade"]


def major(version: str) -> int:
    """2 or 3 (the runtime's two families)."""
    return parse_version(version)[0]


def components(version: str) -> tuple[str, ...]:
    """The processes an environment of Airflow ``version`` runs."""
    return COMPONENTS_BY_MAJOR[major(version)]


def api_prefix(version: str) -> str:
    """Where MWAA's InvokeRestApi sends a path: ``/api/v1`` on Airflow 2, ``/api/v2`` on Airflow 3."""
    return "/api/v2" if major(version) >= 3 else "/api/v1"


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

# Variables a startup script may not change (as on MWAA, which reserves its own set).
_RESERVED_VARIABLES = frozenset(
    {
        "AIRFLOW_HOME",
        "AIRFLOW_CONFIG",
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW_ENV_NAME",
    }
)
_SHELL_VARIABLES = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})
_RESERVED_PREFIXES = (
    "MWAA_IAC_",
    "AIRFLOW__DATABASE__",
    "AIRFLOW__WEBSERVER__WEB_SERVER",
    # Airflow 3's wiring: the API server's address and keys, the auth manager, the execution API.
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
)


def _reserved(name: str) -> bool:
    return name in _SHELL_VARIABLES or name in _RESERVED_VARIABLES or name.startswith(_RESERVED_PREFIXES)


# Settings an environment always gets, before its airflow_configuration_options. Scheduling and
# parsing use Apache Airflow's defaults, which MWAA keeps unless AirflowConfigurationOptions change
# them (README "Local stack" lists the numbers): a new DAG file is listed within
# dag_dir_list_interval (300 s), a changed one re-parsed within min_file_process_interval (30 s).
DEFAULT_AIRFLOW_CONFIG = {
    "core.load_examples": "False",
    "core.dags_are_paused_at_creation": "True",
    "core.parallelism": "4",
    "core.max_active_tasks_per_dag": "4",
    "core.dagbag_import_timeout": "30",
    "core.default_timezone": "utc",
    "database.load_default_connections": "False",
    "database.sql_alchemy_pool_size": "2",
    "database.sql_alchemy_max_overflow": "8",
    "scheduler.dag_dir_list_interval": "300",
    "scheduler.min_file_process_interval": "30",
    "scheduler.parsing_processes": "1",
    "scheduler.scheduler_heartbeat_sec": "5",
    "scheduler.enable_health_check": "False",
    "webserver.workers": "1",
    "webserver.worker_refresh_batch_size": "0",
    "webserver.web_server_worker_timeout": "120",
    "webserver.warn_deployment_exposure": "False",
    "webserver.expose_config": "False",
    "usage_data_collection.enabled": "False",
}


# Airflow 3 moved the web server's settings to [api] (the parsing ones to [dag_processor]: the
# defaults above reach 3.x through AIRFLOW3_RENAMED).
AIRFLOW3_CONFIG = {"api.workers": "1", "api.expose_config": "False"}
# 2.x names whose 3.x counterpart the defaults and an environment's AirflowConfigurationOptions may
# use (Airflow 3 reads the old names with a deprecation warning; here they are translated).
AIRFLOW3_RENAMED = {
    "scheduler.dag_dir_list_interval": "dag_processor.refresh_interval",
    "scheduler.min_file_process_interval": "dag_processor.min_file_process_interval",
    "scheduler.parsing_processes": "dag_processor.parsing_processes",
}


def airflow3_options(options: dict[str, str]) -> dict[str, str]:
    """``options`` with 2.x names of moved settings given their 3.x names."""
    return {AIRFLOW3_RENAMED.get(key, key): value for key, value in options.items()}


class _StepError(Exception):
    """A failed step of create/update, carrying the error code to report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
class _Env:
    """What the runtime holds in memory for one environment."""

    name: str
    spec: EnvSpec
    state: EnvState | None = None
    popens: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    sync_lock: threading.Lock = field(default_factory=threading.Lock)
    sync_stop: threading.Event = field(default_factory=threading.Event)
    sync_threads: dict[str, threading.Thread] = field(default_factory=dict)
    # Supervision (see AirflowRuntime._supervise): ``supervised`` while the environment serves;
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


class _Timer:
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


def kill_recorded_processes(state_dir: Path) -> None:
    """Stop every process a runtime on ``state_dir`` started (Airflow first, PostgreSQL last), from
    any process: this is what ``mwaa-iac local down`` calls. Data is kept."""
    procs.kill_all(Path(state_dir) / "pids")
    with contextlib.suppress(OSError):  # the server's socket directory, empty once it is gone
        socket_dir_for(Path(state_dir) / "pg").rmdir()


def spec_to_dict(spec: EnvSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def config_env_vars(options: dict[str, str]) -> dict[str, str]:
    """``{"core.parallelism": "8"}`` → ``{"AIRFLOW__CORE__PARALLELISM": "8"}``."""
    env = {}
    for key, value in options.items():
        section, sep, option = key.partition(".")
        if not sep or not section or not option:
            continue
        env[f"AIRFLOW__{section.upper()}__{option.upper().replace('.', '_')}"] = str(value)
    return env


def _free_port(exclude: set[int]) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in exclude:
            return port
    raise RuntimeError("no free port")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class AirflowRuntime:
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
        self._s3_client: Any = None
        self._timings: dict[str, dict[str, float]] = {}
        self._tokens: dict[tuple[str, int, str], str] = {}

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
        _write_private_json(self._state_file(state.name), dataclasses.asdict(state))

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
            if wanted and wanted not in self._ports and _port_free(wanted):
                port = wanted
            else:
                port = _free_port(self._ports)
            self._ports.add(port)
            return port

    # ------------------------------------------------------------------ building blocks
    def _venv(self, version: str) -> Venv:
        try:
            return ensure_venv(version, self.venv_cache)
        except VenvBuildError as exc:
            raise _StepError(CODE_VENV, f"could not install Airflow {version}: {exc}") from exc

    def ensure_venv(self, version: str) -> Venv:
        """Build (or find) the cached venv for ``version`` ahead of time (``local up`` may prebuild)."""
        return ensure_venv(version, self.venv_cache)

    def _ensure_postgres(self) -> None:
        with self._lock:
            try:
                self.postgres.start()
            except PostgresError as exc:
                raise _StepError(CODE_DATABASE, f"PostgreSQL did not start: {exc}") from exc

    def _aws_config_file(self) -> Path:
        """An AWS config that makes every S3 client use path-style addressing (the local endpoint
        is an IP address, so bucket.127.0.0.1 cannot resolve)."""
        path = self.state_dir / "aws-config"
        region = self.aws_env.get("AWS_DEFAULT_REGION") or self.aws_env.get("AWS_REGION") or "us-east-1"
        text = f"[default]\nregion = {region}\ns3 =\n    addressing_style = path\n"
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return path

    def _process_env(
        self, state: EnvState, spec: EnvSpec, venv: Venv, requirements_dir: str | None
    ) -> dict[str, str]:
        home = self.env_dir(state.name)
        path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        env: dict[str, str] = {
            # The worker launcher first: the executor starts every task as `airflow tasks run ...`.
            "PATH": os.pathsep.join([str(home / "worker" / "bin"), str(venv.bin_dir), path]),
            "HOME": os.environ.get("HOME", str(home)),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "AWS_CONFIG_FILE": str(self._aws_config_file()),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / ".no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "SCARF_ANALYTICS": "false",
            "DO_NOT_TRACK": "true",
            "AIRFLOW_HOME": str(home),
            # One config file per version: each writes its own defaults there on first use.
            "AIRFLOW_CONFIG": str(home / f"airflow-{venv.airflow_version}.cfg"),
            "AIRFLOW_ENV_NAME": state.name,
        }
        env.update(self.aws_env)
        if requirements_dir:
            env["PYTHONPATH"] = requirements_dir
        airflow3 = major(venv.airflow_version) >= 3
        if airflow3:
            env.update(config_env_vars(airflow3_options({**DEFAULT_AIRFLOW_CONFIG, **AIRFLOW3_CONFIG})))
            env.update(config_env_vars(airflow3_options(spec.airflow_configuration_options)))
        else:
            env.update(config_env_vars(DEFAULT_AIRFLOW_CONFIG))
            env.update(config_env_vars(spec.airflow_configuration_options))
        url = f"http://127.0.0.1:{state.port}"
        if airflow3:
            env.update(
                config_env_vars(
                    {
                        # The API server authenticates REST calls with JWTs from the simple auth
                        # manager (one admin user, its password in a file only this runtime reads);
                        # tasks reach the execution API with tokens signed by the same secret.
                        "core.auth_manager": SIMPLE_AUTH_MANAGER,
                        "core.simple_auth_manager_users": f"{state.admin_user}:admin",
                        "core.simple_auth_manager_passwords_file": str(home / PASSWORDS_FILE),
                        "core.execution_api_server_url": f"{url}/execution/",
                        "api.host": "127.0.0.1",
                        "api.port": str(state.port),
                        "api.base_url": url,
                        "api.secret_key": state.secret_key,
                        "api_auth.jwt_secret": state.secret_key,
                        "logging.dag_processor_child_process_log_directory": str(
                            home / "logs" / "dag_processor"
                        ),
                    }
                )
            )
        env.update(
            config_env_vars(
                {
                    "core.executor": "LocalExecutor",
                    # Each task in a process of its own, started through the worker launcher, which
                    # points it at the worker's copy of the DAG folder (MWAA's Celery workers read
                    # theirs, not the scheduler's).
                    "core.execute_tasks_new_python_interpreter": "True",
                    "core.dags_folder": str(home / "dags"),
                    "core.plugins_folder": str(home / "plugins"),
                    "core.fernet_key": state.fernet_key,
                    "core.hostname_callable": "socket.gethostname",
                    "database.sql_alchemy_conn": self.postgres.sqlalchemy_url(state.database),
                    "logging.base_log_folder": str(home / "logs"),
                }
            )
        )
        if not airflow3:
            env.update(
                config_env_vars(
                    {
                        "logging.dag_processor_manager_log_location": str(
                            home / "logs" / "dag_processor_manager.log"
                        ),
                        "scheduler.child_process_log_directory": str(home / "logs" / "scheduler"),
                        "webserver.web_server_host": "127.0.0.1",
                        "webserver.web_server_port": str(state.port),
                        "webserver.base_url": url,
                        "webserver.secret_key": state.secret_key,
                        "api.auth_backends": API_AUTH_BACKENDS,
                    }
                )
            )
        return env

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
            out.write(f"\n=== {_now()} airflow {' '.join(args[:2])} ({venv.airflow_version})\n")
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
                raise _StepError(CODE_MIGRATION, f"`airflow {' '.join(args[:2])}` timed out") from exc
        if result.returncode != 0:
            raise _StepError(
                CODE_MIGRATION,
                f"`airflow {' '.join(args[:2])}` ({venv.airflow_version}) failed with exit code "
                f"{result.returncode}:\n{procs.tail(log_file, 15)}",
            )

    def _migrate(self, state: EnvState, spec: EnvSpec, venv: Venv, req_dir: str | None) -> None:
        self._run_airflow(state, spec, venv, req_dir, migrate_command(venv.airflow_version), "migrate.log")

    def _create_admin(self, state: EnvState, spec: EnvSpec, venv: Venv, req_dir: str | None) -> None:
        if major(venv.airflow_version) >= 3:
            return  # Airflow 3's simple auth manager reads the password file _start writes
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
        commands = {
            "scheduler": [*airflow, "scheduler", "--skip-serve-logs"],
            "webserver": [
                *airflow, "webserver", "--port", str(state.port), "--hostname", "127.0.0.1", "--workers", "1",
            ],
            "api-server": [
                *airflow, "api-server", "--port", str(state.port), "--host", "127.0.0.1", "--workers", "1",
            ],
            "dag-processor": [*airflow, "dag-processor"],
            # The triggerer serves its logs from 2.6 on (and takes the option to not serve them).
            "triggerer": [*airflow, "triggerer"]
            + (["--skip-serve-logs"] if parse_version(venv.airflow_version) >= (2, 6, 0) else []),
        }  # fmt: skip
        self._write_worker_launcher(home, venv)
        airflow3 = major(venv.airflow_version) >= 3
        if airflow3:  # the admin user's password for the simple auth manager (this user only)
            _write_private_json(home / PASSWORDS_FILE, {state.admin_user: state.admin_password})
        base_env = self._startup_env(spec, self._process_env(state, spec, venv, state.requirements_dir))
        plan: dict[str, tuple[list[str], dict[str, str]]] = {}
        for component in components(venv.airflow_version):
            process_env = dict(base_env)
            if airflow3 and component == "scheduler":
                # Airflow 3's LocalExecutor runs each task in a child of the scheduler, which loads
                # the DAG file from the bundle at the scheduler's dags_folder; the scheduler itself
                # parses nothing (the DAG processor does). So the scheduler gets the workers' copy.
                process_env["AIRFLOW__CORE__DAGS_FOLDER"] = str(home / "worker" / "dags")
            plan[component] = (commands[component], process_env)
        return plan

    def _launch(
        self, env: _Env, component: str, cmd: list[str], process_env: dict[str, str], banner: str
    ) -> None:
        """Start one component (a session of its own, recorded in the pid directory)."""
        home = self.env_dir(env.name)
        role = f"{env.name}.{component}"
        log_file = home / f"{component}.log"
        with open(log_file, "a") as out:
            out.write(f"\n=== {_now()} {banner}\n")
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

    @staticmethod
    def _write_worker_launcher(home: Path, venv: Venv) -> None:
        """``worker/bin/airflow``: what the executor runs for each task. It sets the worker's copy of
        the DAG folder (``--subdir DAGS_FOLDER/...`` resolves against it) and runs this version's
        Airflow."""
        bin_dir = home / "worker" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        launcher = bin_dir / "airflow"
        dags = home / "worker" / "dags"
        text = (
            "#!/bin/sh\n# mwaa-iac local stack: a task runs on the worker's own copy of the DAG folder.\n"
            f"AIRFLOW__CORE__DAGS_FOLDER='{dags}'; export AIRFLOW__CORE__DAGS_FOLDER\n"
            f"exec '{venv.python}' -m airflow \"$@\"\n"
        )
        tmp = launcher.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, launcher)

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
            script.write_bytes(self._read_object(spec.source_bucket, key, version))
        except Exception as exc:
            raise _StepError(
                CODE_STARTUP_SCRIPT, f"cannot read s3://{spec.source_bucket}/{key}: {exc}"
            ) from exc
        marker = "__mwaa_iac_environment__"
        with open(home / "startup.log", "a") as log_out:
            log_out.write(f"\n=== {_now()} {key}\n")
            log_out.flush()
            try:
                result = subprocess.run(
                    ["bash", "-c", f'. "$1" >&2; status=$?; printf "\\0{marker}\\0"; env -0; exit $status',
                     "startup", str(script)],
                    env=env, cwd=home, stdout=subprocess.PIPE, stderr=log_out, stdin=subprocess.DEVNULL,
                    timeout=300, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                raise _StepError(
                    CODE_STARTUP_SCRIPT, "the startup script ran for more than 5 minutes"
                ) from exc
        if result.returncode != 0:
            raise _StepError(
                CODE_STARTUP_SCRIPT,
                f"the startup script exited with {result.returncode}:\n"
                f"{procs.tail(home / 'startup.log', 10)}",
            )
        exported = result.stdout.split(f"\0{marker}\0".encode(), 1)[-1]
        merged = dict(env)
        for item in exported.split(b"\0"):
            name, sep, value = item.decode(errors="replace").partition("=")
            if sep and not _reserved(name):
                merged[name] = value
        return merged

    def _stop(self, env: _Env) -> None:
        """Stop the environment's Airflow processes (and everything they started), after taking it
        out of supervision (a pending restart is dropped; one under way finishes first)."""
        with env.proc_lock:
            env.supervised = False
            env.down_since.clear()
            self._stop_processes(env)

    def _stop_processes(self, env: _Env) -> None:
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

    def _component_alive(self, env: _Env, component: str) -> bool:
        popen = env.popens.get(component)
        if popen is not None:
            return popen.poll() is None
        record = procs.read_record(self.pid_dir, f"{env.name}.{component}")
        return record is not None and procs.record_alive(record)

    # ------------------------------------------------------------------ supervision
    def _now_serving(self, env: _Env) -> None:
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
            for component in components(state.airflow_version):
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

    def _note_exit(self, env: _Env, component: str) -> None:
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
            out.write(f"\n=== {_now()} the {component} {how}; {when}\n")

    def _restart(self, env: _Env, state: EnvState, component: str) -> None:
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
            except (_StepError, VenvBuildError, OSError) as exc:
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

    def _wait_healthy(self, env: _Env, state: EnvState, version: str, since: float) -> None:
        """Until the REST API answers (authenticated, with ``version``) and a scheduler started after
        ``since`` heartbeats; fails fast if a process dies."""
        deadline = time.monotonic() + self.start_timeout
        home = self.env_dir(state.name)
        api_ok = scheduler_ok = False
        while time.monotonic() < deadline:
            for component in components(version):
                if not self._component_alive(env, component):
                    raise _StepError(
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
                        raise _StepError(
                            CODE_START, f"the web server reports Airflow {served}, not {version}"
                        )
                    api_ok = True
            if not scheduler_ok:
                with contextlib.suppress(PostgresError, ValueError, subprocess.SubprocessError):
                    age = self._scheduler_heartbeat_age(state, since)
                    scheduler_ok = age is not None and age < SCHEDULER_HEARTBEAT_THRESHOLD
            if api_ok and scheduler_ok:
                return
            time.sleep(0.5)
        raise _StepError(
            CODE_START,
            f"{state.name} was not healthy after {self.start_timeout:.0f}s "
            f"(api={api_ok}, scheduler={scheduler_ok}):\n"
            + "\n".join(procs.tail(home / f"{c}.log", 10) for c in components(version)),
        )

    def _start_and_wait(self, env: _Env, state: EnvState, spec: EnvSpec, venv: Venv) -> None:
        since = self._db_now(state)
        self._start(env, state, spec, venv)
        self._wait_healthy(env, state, venv.airflow_version, since)

    # ------------------------------------------------------------------ S3: DAGs, plugins, requirements
    def s3_client(self) -> Any:
        with self._lock:
            if self._s3_client is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(
                    aws_access_key_id=self.aws_env.get("AWS_ACCESS_KEY_ID", "testing"),
                    aws_secret_access_key=self.aws_env.get("AWS_SECRET_ACCESS_KEY", "testing"),
                    aws_session_token=self.aws_env.get("AWS_SESSION_TOKEN"),
                    region_name=self.aws_env.get("AWS_DEFAULT_REGION")
                    or self.aws_env.get("AWS_REGION")
                    or "us-east-1",
                )
                endpoint = self.aws_env.get("AWS_ENDPOINT_URL_S3") or self.aws_env.get("AWS_ENDPOINT_URL")
                self._s3_client = session.client(
                    "s3",
                    endpoint_url=endpoint,
                    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
                )
            return self._s3_client

    def _read_object(self, bucket: str, key: str, version: str | None) -> bytes:
        """An S3 object's bytes, of ``version`` when given (the one the environment runs)."""
        extra = {"VersionId": version} if version else {}
        return self.s3_client().get_object(Bucket=bucket, Key=key, **extra)["Body"].read()

    def dag_folder(self, name: str, copy: str = "scheduler") -> Path:
        """The environment's ``scheduler`` or ``worker`` copy of its DAG folder."""
        home = self.env_dir(name)
        return home / "dags" if copy == "scheduler" else home / "worker" / "dags"

    def _sync_dags(self, spec: EnvSpec, copy: str = "scheduler") -> None:
        home = self.env_dir(spec.name)
        dags = self.dag_folder(spec.name, copy)
        dags.mkdir(parents=True, exist_ok=True)
        manifest_path = home / (".dag-manifest.json" if copy == "scheduler" else ".worker-dag-manifest.json")
        try:
            manifest: dict[str, str] = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            manifest = {}
        prefix = spec.dag_s3_path.strip("/")
        prefix = f"{prefix}/" if prefix else ""
        client = self.s3_client()
        listing: dict[str, str] = {}
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=spec.source_bucket, Prefix=prefix
        ):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) :]
                parts = Path(rel).parts
                if not rel or rel.endswith("/") or ".." in parts or rel.startswith("/"):
                    continue
                listing[rel] = obj.get("ETag", "") + str(obj.get("Size", ""))
        for rel, tag in listing.items():
            dest = dags / rel
            if manifest.get(rel) == tag and dest.is_file():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.parent / f".{dest.name}.sync-tmp"
            client.download_file(spec.source_bucket, prefix + rel, str(tmp))
            os.replace(tmp, dest)
        for rel in set(manifest) - set(listing):
            path = dags / rel
            path.unlink(missing_ok=True)
            parent = path.parent
            while parent != dags and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        if listing != manifest:
            tmp_manifest = manifest_path.with_suffix(".tmp")
            tmp_manifest.write_text(json.dumps(listing, sort_keys=True))
            os.replace(tmp_manifest, manifest_path)

    def _sync_plugins(self, spec: EnvSpec) -> None:
        if not spec.plugins_s3_path:
            return
        home = self.env_dir(spec.name)
        marker = home / ".plugins-etag"
        key = spec.plugins_s3_path.lstrip("/")
        extra = {"VersionId": spec.plugins_s3_object_version} if spec.plugins_s3_object_version else {}
        head = self.s3_client().head_object(Bucket=spec.source_bucket, Key=key, **extra)
        tag = f"{spec.plugins_s3_path}:{spec.plugins_s3_object_version or ''}:{head.get('ETag', '')}"
        if marker.is_file() and marker.read_text() == tag:
            return
        archive = home / ".plugins.zip"
        archive.write_bytes(self._read_object(spec.source_bucket, key, spec.plugins_s3_object_version))
        plugins = home / "plugins"
        shutil.rmtree(plugins, ignore_errors=True)
        plugins.mkdir(parents=True)
        with zipfile.ZipFile(archive) as zf:
            base = plugins.resolve()
            for member in zf.namelist():
                if not (plugins / member).resolve().is_relative_to(base):
                    raise _StepError(CODE_DAG_SYNC, f"unsafe path {member!r} in {spec.plugins_s3_path}")
            zf.extractall(plugins)
        marker.write_text(tag)

    def sync(self, spec: EnvSpec) -> None:
        """Mirror the DAG folder into both copies now. plugins.zip is installed at create/update
        only, at the object version the environment runs (as on MWAA)."""
        env = self._env(spec)
        with env.sync_lock:
            for copy in DAG_COPIES:
                self._sync_dags(spec, copy)
            self._sync_plugins(spec)

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
        home = self.env_dir(spec.name)
        key = spec.requirements_s3_path.lstrip("/")
        try:
            body = self._read_object(spec.source_bucket, key, spec.requirements_s3_object_version)
        except Exception as exc:
            raise _StepError(
                CODE_REQUIREMENTS, f"cannot read s3://{spec.source_bucket}/{key}: {exc}"
            ) from exc
        digest = hashlib.sha256(body + venv.airflow_version.encode()).hexdigest()[:12]
        root = home / "requirements"
        final = root / f"{venv.airflow_version}-{digest}"
        if (final / ".complete").is_file():
            return str(final)
        tmp = root / f".{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        req_file = root / f"{final.name}.requirements.txt"
        req_file.write_bytes(body)
        log_file = home / "requirements.log"
        cmd = pip_install_command(
            venv.python, [], constraints=[venv.freeze_file], target=tmp, requirements_file=req_file
        )
        with open(log_file, "a") as out:
            out.write(f"\n=== {_now()} {' '.join(cmd)}\n")
            out.flush()
            try:
                result = subprocess.run(
                    cmd, stdout=out, stderr=subprocess.STDOUT, env=installer_env(), timeout=900, check=False
                )
            except subprocess.TimeoutExpired as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise _StepError(CODE_REQUIREMENTS, "installing requirements.txt timed out") from exc
        if result.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _StepError(
                CODE_REQUIREMENTS,
                f"requirements.txt did not install on Airflow {venv.airflow_version}:\n"
                f"{procs.tail(log_file, 12)}",
            )
        (tmp / ".complete").write_text(body.decode(errors="replace"))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return str(final)

    def _prune_requirements(self, name: str, keep: str | None) -> None:
        root = self.env_dir(name) / "requirements"
        if not root.is_dir():
            return
        for path in root.iterdir():
            if keep and (str(path) == keep or path.name == f"{Path(keep).name}.requirements.txt"):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

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
                    raise _StepError(CODE_DATABASE, str(exc)) from exc
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
        except _StepError as exc:
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
        except _StepError:
            raise
        except Exception as exc:
            raise _StepError(
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
            except _StepError as exc:
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
                        raise _StepError(CODE_DATABASE, f"snapshot failed: {exc}") from exc
                if fail:
                    raise _StepError(CODE_INJECTED, fail)
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
                    exc if isinstance(exc, _StepError) else _StepError(CODE_START, f"update failed: {exc}")
                )
                with timer.step("rollback"):
                    self._rollback(env, old_state, old_spec, old_venv, snapshot, failure, fail_rollback)
                raise AssertionError("unreachable") from exc  # _rollback always raises
            timer.end_mark("downtime")
        finally:
            timer.done()
        self._save_state(new_state)
        self._prune_requirements(new.name, new_req)
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
        failure: _StepError,
        fail_rollback: bool,
    ) -> None:
        """Restore the snapshot and restart the old version; always raises RuntimeFailure."""
        self._stop(env)
        env.spec = old_spec
        env.state = old_state
        try:
            if fail_rollback:
                raise _StepError(CODE_INJECTED, "rollback failure injected")
            if snapshot.is_file():
                self.postgres.restore(old_state.database, snapshot)
            with contextlib.suppress(Exception):
                self.sync(old_spec)
            self._start_and_wait(env, old_state, old_spec, old_venv)
        except Exception as exc:
            self._stop(env)
            reason = exc.message if isinstance(exc, _StepError) else str(exc)
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
            if all(self._component_alive(env, c) for c in components(state.airflow_version)):
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
        except _StepError as exc:
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

    def _timer(self, name: str, operation: str) -> _Timer:
        return _Timer(lambda steps: self._record_timings(name, operation, steps))

    def _record_timings(self, name: str, operation: str, steps: dict[str, float]) -> None:
        with self._lock:
            self._timings[name] = {**steps}
        log.debug("%s %s timings: %s", operation, name, steps)

    def delete(self, name: str) -> None:
        with self._lock:
            env = self._envs.pop(name, None)
            self._tokens = {k: v for k, v in self._tokens.items() if k[0] != name}
        state = self._load_state(name)
        if env is None:
            env = _Env(name, EnvSpec(name=name, airflow_version="", source_bucket="", dag_s3_path=""))
        self._stop_sync_thread(env)
        self._stop(env)
        if state is not None:
            try:
                self._ensure_postgres()
                self.postgres.drop_database(state.database)
            except (_StepError, PostgresError) as exc:
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
        """One REST call as MWAA's InvokeRestApi makes it: the path under ``/api/v1`` (Airflow 2,
        basic auth as the admin user) or ``/api/v2`` (Airflow 3, a bearer token the API server issued
        to the admin user, fetched again when it is refused)."""
        url = f"http://127.0.0.1:{state.port}{api_prefix(state.airflow_version)}/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        airflow3 = major(state.airflow_version) >= 3
        for attempt in range(2):
            if airflow3:
                authorization = f"Bearer {self._token(state, fresh=attempt > 0, timeout=timeout)}"
            else:
                basic = base64.b64encode(f"{state.admin_user}:{state.admin_password}".encode()).decode()
                authorization = f"Basic {basic}"
            status, raw = _http(method, url, data, authorization, timeout)
            # 401: no or an expired token; 403: a token this API server does not accept (issued
            # before a restart with other keys): fetch a new one, once.
            if not (airflow3 and status in (401, 403)):
                break
        return ApiResponse(status=status, body=_parse_body(raw))

    def _token(self, state: EnvState, *, fresh: bool, timeout: float) -> str:
        """The admin user's JWT for Airflow 3's API server (``POST /auth/token``), cached per port."""
        key = (state.name, state.port, state.secret_key)
        with self._lock:
            token = None if fresh else self._tokens.get(key)
        if token:
            return token
        body = json.dumps({"username": state.admin_user, "password": state.admin_password}).encode()
        status, raw = _http("POST", f"http://127.0.0.1:{state.port}/auth/token", body, None, timeout)
        answer = _parse_body(raw)
        if status not in (200, 201) or not isinstance(answer, dict) or "access_token" not in answer:
            raise OSError(f"the API server of {state.name} issued no token (HTTP {status})")
        token = str(answer["access_token"])
        with self._lock:
            self._tokens[key] = token
        return token

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
    try:
        family = major_of(version)
    except ValueError:
        family = None
    if family not in COMPONENTS_BY_MAJOR:
        raise RuntimeFailure(
            f"the local runtime runs Apache Airflow 2.x and 3.x environments only, not {version!r}",
            code=CODE_UNSUPPORTED,
        )


def _write_private_json(path: Path, data: object) -> None:
    """``data`` as JSON in ``path``, readable by this user only, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _http(
    method: str, url: str, data: bytes | None, authorization: str | None, timeout: float
) -> tuple[int, bytes]:
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


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _parse_body(raw: bytes) -> object:
    text = raw.decode("utf-8", errors="replace")
    if not text:
        return ""
    try:
        return json.loads(text)
    except ValueError:
        return text
