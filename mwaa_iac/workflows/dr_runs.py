"""Run one mwaa-dr (or mwaa-iac fix-up) DAG in an environment through the REST API: wait until the
right version of the file is parsed, unpause, trigger with a short run id (idempotent), poll with
backoff until it succeeds or fails, pause again.

While it waits, its progress events say what for: the file not listed yet, an earlier version still
parsed, the DAG inactive, an import error waiting for a re-parse, a run queued while the scheduler
does not heartbeat (Airflow's health is read when a wait drags on).

Also: deploying the DR DAG files with the vendored mwaa-dr (and removing them). The preflight probe
and the scheduler check before it are in ``workflows/dr_probe.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mwaa_iac.adapters.airflow_api import (
    AirflowApi,
    AirflowApiError,
    dag_is_active,
    scheduler_health,
)
from mwaa_iac.adapters.dr_bundle import remove_dr_folder, sync_bundle
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr
from mwaa_iac.core.catalog import load_catalog
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event


class CutoverError(MwaaIacError):
    """A cutover, backup or restore step failed; the message says what state each colour is in."""


class DeltaRefused(CutoverError):
    """The target refused pass 2's delta (it holds another backup, or the result would differ from
    the source); the restore changed nothing. ``reason``: what the restore said."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DagImportError(CutoverError):
    """The environment parsed the DAG file and could not import it (Airflow's importErrors)."""

    def __init__(self, message: str, *, detail: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.detail = detail


class ProbeError(CutoverError):
    """The preflight probe failed: nothing was changed; the message says what to fix."""


class SchedulerDownError(ProbeError):
    """The environment's scheduler is not running (Airflow's health answer, or the SchedulerHeartbeat
    metric when Airflow's cannot be read): no DAG would run there. Nothing was changed."""


# How long a wait goes on before Airflow's health is read, and how often it is read again (each
# read is one InvokeRestApi call; MWAA allows about 10 a second per environment).
HEALTH_AFTER_SECONDS = 30.0
# Inside the freeze (the source paused, go-live not done) a wait polls at least this often, whatever
# --run-poll says: frozen time is the users' downtime, and a poll is one REST call.
FREEZE_POLL_SECONDS = 1.0
HEALTH_EVERY_SECONDS = 60.0


def import_hint(error: str) -> str:
    """What to do about an import error of a generated DR DAG file."""
    if "mwaa_dr" in error or "smart_open" in error:
        return (
            f"mwaa-iac delivers mwaa-dr {load_catalog().mwaa_dr_version} and smart_open in the DAG folder "
            f"under {dr.VENDOR_FOLDER}/: check that those objects are in the DAG bucket and that the "
            "environment syncs its DAG folder (the folder must not be excluded); no requirements change "
            "is needed"
        )
    if "wrapt" in error:
        return (
            "smart_open needs wrapt (Airflow normally brings it): add wrapt to the environment's requirements"
        )
    return "the generated DAG file does not import on this Airflow version: a bug in mwaa-iac (report it)"


@dataclass
class DagRunner:
    api: AirflowApi
    options: Any  # dag_timeout_seconds, run_timeout_seconds, run_poll_seconds
    emit: Callable[[dict[str, Any]], None]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = lambda: datetime.now(UTC)  # for heartbeat ages
    _health_read_at: float | None = field(default=None, init=False, repr=False)
    _health_problem: str | None = field(default=None, init=False, repr=False)

    def wait_for_dag(self, dag_id: str, marker: str) -> None:
        """Wait until the environment has parsed this version of the DAG file (its description)."""
        start = self.clock()
        # An import error may be stale (an earlier version of the file, or the file synced before the
        # vendored packages): it counts once it outlasts the grace period (Airflow re-parses every
        # file every 30 s by default).
        grace = float(getattr(self.options, "import_error_grace_seconds", 0.0))
        first_error: float | None = None
        while True:
            dag = self.api.get_dag(dag_id)
            # Active too: a DAG whose file was removed (an earlier cleanup) keeps its row and its
            # last description, inactive, until the new file is parsed; triggering it then is a 404.
            if dag is not None and dag.get("description") == marker and dag_is_active(dag):
                return
            errors = self._import_errors(dag_id)
            if errors:
                first_error = self.clock() if first_error is None else first_error
                if self.clock() - first_error >= grace:
                    raise DagImportError(
                        f"{self.api.environment} cannot import the {dag_id} DAG: {errors}",
                        detail=errors,
                        hint=import_hint(errors),
                    )
            else:
                first_error = None
            waited = self.clock() - start
            reason, detail = self._dag_wait(dag_id, dag, marker, errors)
            scheduler = self._scheduler_problem(waited)
            if waited > self.options.dag_timeout_seconds:
                why = f"{detail}; {scheduler}" if scheduler else detail
                raise CutoverError(
                    f"{self.api.environment} did not show the {dag_id} DAG within "
                    f"{self.options.dag_timeout_seconds:.0f} s: {why}",
                    hint="check the DAG folder sync and the environment's DAG processor; then --resume",
                )
            fields: dict[str, Any] = {"waiting_for": reason, "detail": detail}
            if scheduler:
                fields["scheduler"] = scheduler
            self.emit(
                event(EventKind.DR_WAITING_FOR_DAG, environment=self.api.environment, dag_id=dag_id, **fields)
            )
            self.sleep(self.options.run_poll_seconds)

    def _dag_wait(self, dag_id: str, dag: dict | None, marker: str, errors: str | None) -> tuple[str, str]:
        """(reason, detail): what a wait for ``dag_id`` is waiting for, as its event says it."""
        file = f"{dr.DR_DAG_FOLDER}/{dag_id}.py"
        if errors:
            grace = float(getattr(self.options, "import_error_grace_seconds", 0.0))
            return "import_error", (
                f"{file} has an import error ({errors}); it counts once it outlasts {grace:.0f} s "
                "(it may be from before the vendored packages arrived)"
            )
        if dag is None:
            return "file_not_listed", (
                f"{self.api.environment} has not listed {file} yet (Airflow lists new DAG files every "
                "[scheduler] dag_dir_list_interval, 5 minutes by default)"
            )
        if dag.get("description") != marker:
            return "new_version", (
                f"{self.api.environment} still has an earlier version of {file}; it re-parses it every "
                "[scheduler] min_file_process_interval (30 s by default)"
            )
        return "dag_inactive", (
            f"{dag_id} is inactive on {self.api.environment}: its file is not parsed (yet, or any more)"
        )

    def _scheduler_problem(self, waited: float) -> str | None:
        """Once a wait has lasted HEALTH_AFTER_SECONDS: what Airflow's health says is wrong with the
        scheduler (None: heartbeating, or unknown), read at most every HEALTH_EVERY_SECONDS."""
        if waited < HEALTH_AFTER_SECONDS:
            return None
        now = self.clock()
        if self._health_read_at is not None and now - self._health_read_at < HEALTH_EVERY_SECONDS:
            return self._health_problem
        self._health_read_at = now
        try:
            answer = self.api.health()
        except MwaaIacError:
            answer = None
        health = scheduler_health(answer, self.wall()) if answer is not None else None
        self._health_problem = (
            f"the scheduler of {self.api.environment} is down: {health.problem}"
            if health is not None and health.problem
            else None
        )
        return self._health_problem

    def _import_errors(self, dag_id: str) -> str | None:
        try:
            page = self.api.request("GET", "/importErrors")
        except AirflowApiError:
            return None
        for item in page.get("import_errors", []):
            if f"{dr.DR_DAG_FOLDER}/{dag_id}.py" in str(item.get("filename", "")):
                lines = str(item.get("stack_trace", "")).strip().splitlines()
                return (lines[-1] if lines else "import error")[:300]
        return None

    def run(
        self,
        dag_id: str,
        run_id: str,
        marker: str,
        conf: dict[str, Any] | None = None,
        *,
        backoff: bool = True,
    ) -> dict[str, Any]:
        """Trigger ``dag_id`` and wait for its run. Polls back off from ``run_poll_seconds`` up to 5x
        it, except with ``backoff=False`` (inside the freeze window, where a run noticed late is
        frozen time: a steady poll, at most FREEZE_POLL_SECONDS apart, costs at most one interval per
        run). A run that stays queued
        has Airflow's health read: its events then say when the scheduler is down."""
        self.start(dag_id, run_id, marker, conf)
        return self.wait(dag_id, run_id, backoff=backoff)

    def start(self, dag_id: str, run_id: str, marker: str, conf: dict[str, Any] | None = None) -> None:
        """Wait until this version of ``dag_id`` is parsed, unpause it and trigger ``run_id`` (a run
        of that id that failed before is replaced; one that exists otherwise is kept)."""
        name = self.api.environment
        self.wait_for_dag(dag_id, marker)
        # The scheduler parsed this version; a worker's copy of the DAG folder may lag: the run names
        # the version, and the generated task waits for it (see core/dr.py).
        conf = {**(conf or {}), dr.MARKER_CONF: marker}
        self.api.set_paused(dag_id, False)
        existing = self.api.trigger(dag_id, run_id, conf)
        if existing.get("state") == "failed":
            # A resumed workflow retries a run that failed before: replace it, same id.
            self.api.request("DELETE", f"/dags/{dag_id}/dagRuns/{run_id}")
            self.api.trigger(dag_id, run_id, conf)
        self.emit(event(EventKind.DR_TRIGGERED, environment=name, dag_id=dag_id, run_id=run_id))

    def task_state(self, dag_id: str, run_id: str) -> str | None:
        """The state of the run's (only) task instance: ``running`` once a worker started it."""
        try:
            page = self.api.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        except AirflowApiError:
            return None
        states = [t.get("state") for t in page.get("task_instances", [])]
        return states[0] if states else None

    def wait(
        self, dag_id: str, run_id: str, *, backoff: bool = True, by_task: bool = False
    ) -> dict[str, Any]:
        """Poll the run ``run_id`` of ``dag_id`` (started) until it succeeds (the DAG is then paused
        again) or fails (CutoverError naming its failed tasks). ``by_task``: done when its task
        instance succeeded (its worker says so at once; the run's state waits for a scheduler loop),
        and the DAG is left unpaused for the scheduler to finish the run."""
        name = self.api.environment
        start = self.clock()
        delay = self.options.run_poll_seconds
        if not backoff:  # inside the freeze
            delay = min(delay, FREEZE_POLL_SECONDS)
        queued_since: float | None = None
        while True:
            task = self.task_state(dag_id, run_id) if by_task else None
            if task == "success":
                return {"run_id": run_id, "elapsed_s": round(self.clock() - start, 2)}
            # A task still at work says the run's state (one call a poll); otherwise the run's.
            working = task in ("running", "queued", "scheduled", "up_for_retry", "up_for_reschedule")
            state: str | None
            if working:
                state = "running"
            elif task in ("failed", "upstream_failed"):
                state = "failed"  # its worker says so; the run's state waits for a scheduler loop
            else:
                state = self.api.get_run(dag_id, run_id).get("state")
            if state == "success":
                if not by_task:
                    self.api.set_paused(dag_id, True)
                return {"run_id": run_id, "elapsed_s": round(self.clock() - start, 2)}
            if state == "failed":
                failed = self.api.failed_tasks(dag_id, run_id)
                raise CutoverError(
                    f"{dag_id} run {run_id} failed on {name}; failed tasks: {', '.join(failed) or 'unknown'}",
                    hint="see the task logs in the environment; fix the cause, then rerun with --resume",
                )
            scheduler = None
            if state == "queued":
                queued_since = self.clock() if queued_since is None else queued_since
                scheduler = self._scheduler_problem(self.clock() - queued_since)
            else:
                queued_since = None
            if self.clock() - start > self.options.run_timeout_seconds:
                why = f"; {scheduler}" if scheduler else ""
                raise CutoverError(
                    f"{dag_id} run {run_id} on {name} did not finish in time (state {state}{why})"
                )
            fields: dict[str, Any] = {}
            if scheduler:
                fields = {"waiting_for": "scheduler", "detail": f"queued: {scheduler}"}
            self.emit(
                event(
                    EventKind.DR_RUN,
                    environment=name,
                    dag_id=dag_id,
                    state=state,
                    elapsed_s=round(self.clock() - start, 1),
                    **fields,
                )
            )
            self.sleep(delay)
            if backoff:
                delay = min(delay * 1.5, 5 * self.options.run_poll_seconds, 30.0)


def run_note(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, Any]:
    """What a DR run recorded in its note ({} when none can be read)."""
    try:
        note = api.get_run(dag_id, run_id).get("note")
        value = json.loads(note) if note else {}
    except (AirflowApiError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# -- the DAG folder ---------------------------------------------------------------------------------


def deploy_dr_files(s3: S3, bucket: str, dag_path: str, files: list[dr.DagFile]) -> dict[str, Any]:
    """Upload the vendored mwaa-dr (changed objects only) and ``.airflowignore``, then the DAG files:
    in that order, so the first parse of a new DAG file finds the packages it imports."""
    vendor = sync_bundle(s3, bucket, dag_path)
    for item in files:
        s3.put_text(bucket, dr.dag_key(dag_path, item.relative_path), item.text)
    return vendor


def remove_dr_files(s3: S3, bucket: str, dag_path: str) -> list[str]:
    """Remove mwaa-iac's DR DAG files, the vendored packages and the ignore file (the whole
    ``mwaa_iac_dr/`` folder; each known DAG file is deleted even when not listed)."""
    known = [dr.dag_key(dag_path, f"{dr.DR_DAG_FOLDER}/{d}.py") for d in dr.MWAA_IAC_DAG_IDS]
    for key in known:
        s3.delete(bucket, key)
    listed = remove_dr_folder(s3, bucket, dag_path)
    return known + sorted(set(listed) - set(known))
