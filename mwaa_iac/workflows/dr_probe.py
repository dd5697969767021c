"""The preflight probe that proves an environment can import mwaa-dr and write to the DR bucket
before anything is changed, and the scheduler check that runs before it (a DAG run on an
environment whose scheduler is down would only wait)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, SchedulerHealth, scheduler_health
from mwaa_iac.adapters.cloudwatch import HEARTBEAT_WINDOW_MINUTES, heartbeat_problem
from mwaa_iac.core import dr
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.dr_runs import (
    CutoverError,
    DagImportError,
    DagRunner,
    ProbeError,
    SchedulerDownError,
    run_note,
)


def check_scheduler(
    api: AirflowApi,
    emit: Callable[[dict[str, Any]], None],
    *,
    role: str,
    cloudwatch: Any = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Before a DAG is run for ``role``: is the environment's scheduler running? MWAA shows an
    environment AVAILABLE while its scheduler restarts or keeps failing, and a DAG run there only
    waits (the probe up to its timeout). Reads Airflow's health (``/health``: the scheduler's status
    and latest heartbeat) and, with ``cloudwatch`` (:class:`~mwaa_iac.adapters.cloudwatch.CloudWatch`),
    the ``AmazonMWAA/SchedulerHeartbeat`` metric of the last few minutes.

    Raises :class:`SchedulerDownError` when Airflow says the scheduler is down (never heartbeated,
    heartbeat stale, or unhealthy), or, when Airflow's health cannot be read, when the metric has no
    datapoint in its window. Airflow's answer wins over the metric's (which lags by minutes); when
    they disagree, or neither can be read, a ``probe.warning`` says so and the probe runs. Emits
    ``probe.health`` with what was read."""
    name = api.environment
    stamp = now()
    health: SchedulerHealth | None = None
    unread: list[str] = []
    try:
        answer = api.health()
    except MwaaIacError as exc:
        answer = None
        unread.append(f"Airflow's health: {exc.message}")
    else:
        health = scheduler_health(answer, stamp) if answer is not None else None
        if health is None and not unread:
            unread.append("Airflow's health: the environment serves no health endpoint with a scheduler part")
    metric: list[bool] | None = None
    if cloudwatch is not None:
        try:
            metric = cloudwatch.heartbeat_minutes(name, HEARTBEAT_WINDOW_MINUTES, now=stamp)
        except MwaaIacError as exc:
            unread.append(f"the SchedulerHeartbeat metric: {exc.message}")
    metric_problem = heartbeat_problem(metric) if metric is not None else None
    seen: dict[str, Any] = {
        "environment": name,
        "scheduler": health.status if health else None,
        "latest_heartbeat": health.latest_heartbeat if health else None,
        "heartbeat_age_s": health.age_s if health else None,
        "metric_minutes": sum(metric) if metric is not None else None,
        "metric_window": len(metric) if metric is not None else None,
        "problem": (health.problem if health else None) or (None if health else metric_problem),
    }
    emit(event(EventKind.PROBE_HEALTH, **seen))
    if health is not None and health.problem:
        also = f"; {metric_problem}" if metric_problem else ""
        raise SchedulerDownError(
            f"the scheduler of {name} is down: {health.problem} (Airflow's /health){also}; "
            f"no DAG runs there, so the probe and {role} would only wait",
            hint=_scheduler_hint(name),
        )
    if health is None and metric_problem:
        raise SchedulerDownError(
            f"the scheduler of {name} is down: {metric_problem} (Airflow's health could not be read); "
            f"no DAG runs there, so the probe and {role} would only wait",
            hint=_scheduler_hint(name),
        )
    if health is not None and metric_problem:
        emit(
            event(
                EventKind.PROBE_WARNING,
                environment=name,
                detail=f"{metric_problem}, although Airflow reports a heartbeat {health.age_s:.0f} s ago: "
                "running the probe",
            )
        )
    elif unread and health is None and metric is None:
        emit(
            event(
                EventKind.PROBE_WARNING,
                environment=name,
                detail=f"the scheduler's health could not be read ({'; '.join(unread)}): running the probe",
            )
        )
    return seen


def _scheduler_hint(name: str) -> str:
    return (
        "MWAA restarts a failed scheduler on its own: check the scheduler's log (CloudWatch log group "
        f"airflow-{name}-Scheduler) and the AmazonMWAA SchedulerHeartbeat metric, and run the command "
        "again once it heartbeats; nothing was changed"
    )


def run_probe(
    runner: DagRunner,
    probe: dr.DagFile,
    run_id: str,
    conf: dict[str, Any],
    *,
    role: str,
) -> dict[str, Any]:
    """Trigger the probe DAG (already deployed) and wait for it; ``role`` says what the environment
    is about to do ("the backups", "the restores"). Raises :class:`ProbeError` saying what to fix:
    Airflow's import error when the DAG file did not import, the S3 error when the write failed.
    With ``conf["scan"]`` the result also holds the scan's answer (``scan``, or ``scan_key`` and
    ``scan_sha256`` when the probe wrote it to the bucket, or ``scan_error``). Only the probe DAG is
    unpaused (to run) and paused again, whatever the outcome."""
    api = runner.api
    name = api.environment
    uri = f"s3://{conf['bucket']}/{conf['key']}"
    runner.emit(event(EventKind.PROBE_STARTED, environment=name, dag_id=probe.dag_id, run_id=run_id))
    try:
        runner.run(probe.dag_id, run_id, probe.marker, conf)  # waits for the parse; import errors raise
    except DagImportError as exc:
        raise ProbeError(
            f"preflight probe: {name} cannot import mwaa-dr for {role}: {exc.detail}",
            hint=f"{exc.hint}; nothing was changed",
        ) from exc
    except CutoverError as exc:
        note = run_note(api, probe.dag_id, run_id)
        if note.get("stage") == "s3":
            raise ProbeError(
                f"preflight probe: {name} cannot write {uri} (the DR bucket) for {role}: {note.get('error')}",
                hint=f"give {name}'s execution role s3:PutObject and s3:GetObject on "
                f"arn:aws:s3:::{conf['bucket']}/* (and kms:GenerateDataKey/kms:Decrypt on the bucket's "
                "KMS key, if any); check the bucket policy; nothing was changed",
            ) from exc
        raise ProbeError(
            f"preflight probe on {name} failed: {exc.message}",
            hint=f"see the log of the {probe.dag_id} run {run_id} in {name}; nothing was changed",
        ) from exc
    finally:
        with contextlib.suppress(MwaaIacError):
            api.set_paused(probe.dag_id, True)
    note = run_note(api, probe.dag_id, run_id)
    result = {
        "environment": name,
        "run_id": run_id,
        "uri": uri,
        "mwaa_dr": note.get("mwaa_dr"),
        "vendored": dr.VENDOR_FOLDER in str(note.get("mwaa_dr", "")),
        "deleted": note.get("deleted"),
    }
    if note.get("deleted") not in (True, None):
        runner.emit(
            event(EventKind.PROBE_WARNING, environment=name, detail=f"{uri} not deleted: {note['deleted']}")
        )
    runner.emit(event(EventKind.PROBE_DONE, **result))
    # the migration-hazard scan's answer (conf["scan"]), never in the event
    return {**result, **{k: note[k] for k in ("scan", "scan_key", "scan_sha256", "scan_error") if k in note}}
