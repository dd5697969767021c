"""The contract between the MWAA emulator (control plane) and what runs an environment.

The emulator owns the environment records, statuses and faults; a runtime owns processes and data.
Every method blocks until done and raises :class:`RuntimeFailure` when it cannot do its job; the
emulator calls them from a worker thread per environment, never two at once for one environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class RuntimeFailure(Exception):
    """A runtime operation failed. ``rolled_back`` is False when restoring the old state failed too
    (the emulator then reports UNAVAILABLE instead of UPDATE_FAILED)."""

    def __init__(self, message: str, *, code: str = "RuntimeFailure", rolled_back: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.rolled_back = rolled_back


# MWAA syncs the S3 DAG folder into its containers every 30 seconds (MWAA user guide, "Working with
# DAGs"): the local stack's default for each environment's DAG-folder syncs (tests compress it).
MWAA_SYNC_INTERVAL = 30.0


@dataclass(frozen=True)
class EnvSpec:
    """What a runtime needs to know about one environment (derived from the emulator's record)."""

    name: str
    airflow_version: str
    source_bucket: str  # bucket name, from SourceBucketArn
    dag_s3_path: str
    requirements_s3_path: str | None = None
    plugins_s3_path: str | None = None
    startup_script_s3_path: str | None = None
    airflow_configuration_options: dict[str, str] = field(default_factory=dict)
    # The S3 object versions the environment runs (MWAA keeps running these, whatever is uploaded
    # later, until an UpdateEnvironment names other ones). None: the object is not versioned.
    requirements_s3_object_version: str | None = None
    plugins_s3_object_version: str | None = None
    startup_script_s3_object_version: str | None = None


@dataclass(frozen=True)
class ApiResponse:
    """An Airflow REST API answer, as InvokeRestApi relays it."""

    status: int
    body: object  # parsed JSON (dict/list) or a string when the body is not JSON


class Runtime(Protocol):
    """Runs environments. ``state_dir`` (given at construction) holds everything that must survive
    a restart of the emulator: databases, DAG folders, logs."""

    def create(self, spec: EnvSpec) -> str:
        """Provision and start the environment; return its web server URL (http://127.0.0.1:PORT)."""
        ...

    def update(
        self, old: EnvSpec, new: EnvSpec, *, fail: str | None = None, fail_rollback: bool = False
    ) -> str:
        """Apply a change (a version change snapshots the DB, switches venv, migrates, restarts).
        ``fail`` injects a failure after the snapshot with that message; ``fail_rollback`` makes the
        restore fail too. On failure the old version must be serving again, else rolled_back=False.
        Returns the web server URL."""
        ...

    def resume(self, spec: EnvSpec) -> str:
        """Start an environment that existed before the emulator restarted; return its URL."""
        ...

    def delete(self, name: str) -> None:
        """Stop the environment's processes and remove its data."""
        ...

    def invoke(
        self, name: str, method: str, path: str, query: dict[str, str] | None, body: object | None
    ) -> ApiResponse:
        """Call the environment's Airflow REST API (``path`` relative to /api/v1 on 2.x, /api/v2 on 3.x)."""
        ...

    def scheduler_alive(self, name: str) -> bool:
        """Whether the scheduler is heartbeating (used for the SchedulerHeartbeat metric)."""
        ...

    def kill_scheduler(self, name: str) -> None:
        """Fault injection: kill the environment's scheduler process."""
        ...

    def sync(self, spec: EnvSpec) -> None:
        """Sync DAGs (and plugins) from S3 into the environment, as MWAA does continuously."""
        ...

    def shutdown(self) -> None:
        """Stop every process this runtime started (keep data)."""
        ...
