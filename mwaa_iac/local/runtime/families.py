"""What differs between Airflow majors, as data: one :class:`AirflowFamily` per major version.

The runtime never tests ``major >= 3``: it looks the family up with :func:`family_of` and reads it.
A major with no family here (4.x, say) is refused by name instead of being run as if it were the last
one known. A family holds the processes an environment runs and their commands, where the REST API
lives and how calls authenticate, how the admin user comes to exist, which settings it gets on top of
the shared defaults and the names it gives settings that moved, and the wiring of its processes
(ports, keys, log folders).

Airflow 3 splits the web server into the API server (REST API v2, the UI and the execution API that
tasks talk to) and the DAG processor, authenticates REST calls with JWTs from its auth manager, moved
the web server's settings to ``[api]`` and the parsing ones to ``[dag_processor]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mwaa_iac.core.catalog import parse_version

Version = tuple[int, int, int]

API_AUTH_BACKENDS = "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
PASSWORDS_FILE = "simple_auth_manager_passwords.json"
HOST = "127.0.0.1"

# Settings an environment always gets, before its airflow_configuration_options. Scheduling and
# parsing use Apache Airflow's defaults, which MWAA keeps unless AirflowConfigurationOptions change
# them (docs/local-stack.md lists the numbers): a new DAG file is listed within
# dag_dir_list_interval (300 s), a changed one re-parsed within min_file_process_interval (30 s).
# Written with 2.x names; a family that moved a setting translates it (AirflowFamily.renamed).
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


class UnsupportedAirflowVersion(ValueError):
    """A version of an Airflow major the runtime has no family for (or not a version at all)."""


@dataclass(frozen=True)
class Wiring:
    """What an environment's processes must agree on, for :attr:`AirflowFamily.wiring`."""

    home: Path  # AIRFLOW_HOME
    port: int  # where the web server / API server listens
    admin_user: str
    secret_key: str

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass(frozen=True)
class Component:
    """One process of an environment: ``airflow <args>`` plus, for the one serving HTTP, where."""

    name: str
    args: tuple[str, ...]
    host_flag: str | None = None  # the process that serves HTTP: its host option (port and workers too)
    skip_serve_logs_from: Version | None = None  # the first version taking --skip-serve-logs

    def command(self, airflow: list[str], version: str, port: int) -> list[str]:
        cmd = [*airflow, *self.args]
        if self.host_flag:
            cmd += ["--port", str(port), self.host_flag, HOST, "--workers", "1"]
        if self.skip_serve_logs_from and parse_version(version) >= self.skip_serve_logs_from:
            cmd.append("--skip-serve-logs")
        return cmd


@dataclass(frozen=True)
class AirflowFamily:
    """The facts the runtime needs about one Airflow major."""

    major: int
    components: tuple[Component, ...]
    api_prefix: str  # where MWAA's InvokeRestApi sends a path
    auth: Literal["basic", "jwt"]  # basic: the admin's password on each call; jwt: a token from token_path
    admin: Literal["users-create", "password-file"]  # how the admin user is made
    wiring: Callable[[Wiring], dict[str, str]]  # family-specific settings (dotted names)
    config_defaults: Mapping[str, str] = field(default_factory=dict)  # on top of DEFAULT_AIRFLOW_CONFIG
    renamed: Mapping[str, str] = field(default_factory=dict)  # 2.x name -> this family's name
    token_path: str | None = None
    scheduler_runs_tasks: bool = False  # tasks are children of the scheduler (and load its DAG folder)
    legacy_migrate: tuple[Version, tuple[str, ...]] | None = None  # (before this version, that command)

    @property
    def component_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.components)

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(f"Airflow {self.major}.x runs no {name}")

    def options(self, options: Mapping[str, str]) -> dict[str, str]:
        """``options`` with the names of moved settings given this family's names."""
        return {self.renamed.get(key, key): value for key, value in options.items()}

    def defaults(self) -> dict[str, str]:
        """The settings every environment of this family gets before its own options."""
        return self.options({**DEFAULT_AIRFLOW_CONFIG, **self.config_defaults})

    def migrate_command(self, version: str) -> list[str]:
        if self.legacy_migrate is not None and parse_version(version) < self.legacy_migrate[0]:
            return list(self.legacy_migrate[1])
        return ["db", "migrate"]


def _wiring_2(w: Wiring) -> dict[str, str]:
    """The web server on the environment's port; the REST API takes basic auth (and sessions)."""
    return {
        "logging.dag_processor_manager_log_location": str(w.home / "logs" / "dag_processor_manager.log"),
        "scheduler.child_process_log_directory": str(w.home / "logs" / "scheduler"),
        "webserver.web_server_host": HOST,
        "webserver.web_server_port": str(w.port),
        "webserver.base_url": w.url,
        "webserver.secret_key": w.secret_key,
        "api.auth_backends": API_AUTH_BACKENDS,
    }


def _wiring_3(w: Wiring) -> dict[str, str]:
    """The API server authenticates REST calls with JWTs from the simple auth manager (one admin user,
    its password in a file only this runtime reads); tasks reach the execution API with tokens signed
    by the same secret."""
    return {
        "core.auth_manager": SIMPLE_AUTH_MANAGER,
        "core.simple_auth_manager_users": f"{w.admin_user}:admin",
        "core.simple_auth_manager_passwords_file": str(w.home / PASSWORDS_FILE),
        "core.execution_api_server_url": f"{w.url}/execution/",
        "api.host": HOST,
        "api.port": str(w.port),
        "api.base_url": w.url,
        "api.secret_key": w.secret_key,
        "api_auth.jwt_secret": w.secret_key,
        "logging.dag_processor_child_process_log_directory": str(w.home / "logs" / "dag_processor"),
    }


_SCHEDULER = Component("scheduler", ("scheduler", "--skip-serve-logs"))
# The triggerer serves its logs from 2.6 on (and takes the option to not serve them).
_TRIGGERER = Component("triggerer", ("triggerer",), skip_serve_logs_from=(2, 6, 0))

FAMILIES: dict[int, AirflowFamily] = {
    2: AirflowFamily(
        major=2,
        components=(_SCHEDULER, Component("webserver", ("webserver",), host_flag="--hostname"), _TRIGGERER),
        api_prefix="/api/v1",
        auth="basic",
        admin="users-create",
        wiring=_wiring_2,
        # `airflow db migrate` came with 2.7; before, it was `airflow db upgrade`.
        legacy_migrate=((2, 7, 0), ("db", "upgrade")),
    ),
    3: AirflowFamily(
        major=3,
        components=(
            _SCHEDULER,
            Component("api-server", ("api-server",), host_flag="--host"),
            Component("dag-processor", ("dag-processor",)),
            _TRIGGERER,
        ),
        api_prefix="/api/v2",
        auth="jwt",
        token_path="/auth/token",
        admin="password-file",
        wiring=_wiring_3,
        config_defaults={"api.workers": "1", "api.expose_config": "False"},
        # Airflow 3 reads the old names with a deprecation warning; here they are translated.
        renamed={
            "scheduler.dag_dir_list_interval": "dag_processor.refresh_interval",
            "scheduler.min_file_process_interval": "dag_processor.min_file_process_interval",
            "scheduler.parsing_processes": "dag_processor.parsing_processes",
        },
        # Airflow 3's LocalExecutor runs each task in a child of the scheduler, which loads the DAG
        # file from the bundle at the scheduler's dags_folder; the scheduler parses nothing itself.
        scheduler_runs_tasks=True,
    ),
}

# Every process name any family uses (to stop whatever an environment of any version left running).
ALL_COMPONENTS = tuple(dict.fromkeys(name for f in FAMILIES.values() for name in f.component_names))


def family_of(version: str) -> AirflowFamily:
    """The family of Airflow ``version``; :class:`UnsupportedAirflowVersion` for a major with none."""
    try:
        major = parse_version(version)[0]
    except (ValueError, TypeError):
        raise UnsupportedAirflowVersion(f"{version!r} is not an Apache Airflow version") from None
    family = FAMILIES.get(major)
    if family is None:
        known = " and ".join(f"{m}.x" for m in sorted(FAMILIES))
        raise UnsupportedAirflowVersion(
            f"Apache Airflow {version} is of major version {major}, which the local runtime does not "
            f"know (it runs Airflow {known}); add an AirflowFamily for {major}.x to run it"
        )
    return family


def migrate_command(version: str) -> list[str]:
    """``airflow db migrate`` (2.7 and later); before 2.7 it was ``airflow db upgrade``."""
    return family_of(version).migrate_command(version)


def config_env_vars(options: Mapping[str, str]) -> dict[str, str]:
    """``{"core.parallelism": "8"}`` → ``{"AIRFLOW__CORE__PARALLELISM": "8"}``."""
    env = {}
    for key, value in options.items():
        section, sep, option = key.partition(".")
        if not sep or not section or not option:
            continue
        env[f"AIRFLOW__{section.upper()}__{option.upper().replace('.', '_')}"] = str(value)
    return env
