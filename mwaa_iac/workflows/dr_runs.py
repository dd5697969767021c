"""Run one mwaa-dr (or mwaa-iac fix-up) DAG in an environment through the REST API: wait until the
right version of the file is parsed, unpause, trigger with a short run id (idempotent), poll with
backoff until it succeeds or fails, pause again.

Also: deploying the DR DAG files with the vendored mwaa-dr (and removing them), and the preflight
probe that proves an environment can import mwaa-dr and write to the DR bucket before anything is
changed.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError, dag_is_active
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
            if self.clock() - start > self.options.dag_timeout_seconds:
                raise CutoverError(
                    f"{self.api.environment} did not show the {dag_id} DAG within "
                    f"{self.options.dag_timeout_seconds:.0f} s",
                    hint="check the DAG folder sync and the environment's DAG processor; then --resume",
                )
            self.emit(event(EventKind.DR_WAITING_FOR_DAG, environment=self.api.environment, dag_id=dag_id))
            self.sleep(self.options.run_poll_seconds)

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
        frozen time: a steady poll costs at most one interval per run)."""
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
        start = self.clock()
        delay = self.options.run_poll_seconds
        while True:
            state = self.api.get_run(dag_id, run_id).get("state")
            if state == "success":
                self.api.set_paused(dag_id, True)
                return {"run_id": run_id, "elapsed_s": round(self.clock() - start, 2)}
            if state == "failed":
                failed = self.api.failed_tasks(dag_id, run_id)
                raise CutoverError(
                    f"{dag_id} run {run_id} failed on {name}; failed tasks: {', '.join(failed) or 'unknown'}",
                    hint="see the task logs in the environment; fix the cause, then rerun with --resume",
                )
            if self.clock() - start > self.options.run_timeout_seconds:
                raise CutoverError(f"{dag_id} run {run_id} on {name} did not finish in time (state {state})")
            self.emit(
                event(
                    EventKind.DR_RUN,
                    environment=name,
                    dag_id=dag_id,
                    state=state,
                    elapsed_s=round(self.clock() - start, 1),
                )
            )
            self.sleep(delay)
            if backoff:
                delay = min(delay * 1.5, 5 * self.options.run_poll_seconds, 30.0)


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


# -- the preflight probe ----------------------------------------------------------------------------


def run_probe(
    runner: DagRunner,
    probe: dr.DagFile,
    run_id: str,
    conf: dict[str, str],
    *,
    role: str,
) -> dict[str, Any]:
    """Trigger the probe DAG (already deployed) and wait for it; ``role`` says what the environment
    is about to do ("the backups", "the restores"). Raises :class:`ProbeError` saying what to fix:
    Airflow's import error when the DAG file did not import, the S3 error when the write failed.
    Only the probe DAG is unpaused (to run) and paused again, whatever the outcome."""
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
        note = _probe_note(api, probe.dag_id, run_id)
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
    note = _probe_note(api, probe.dag_id, run_id)
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
    return result


def _probe_note(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, Any]:
    try:
        note = api.get_run(dag_id, run_id).get("note")
        value = json.loads(note) if note else {}
    except (AirflowApiError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
