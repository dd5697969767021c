"""Run one mwaa-dr (or mwaa-iac fix-up) DAG in an environment through the REST API: wait until the
right version of the file is parsed, unpause, trigger with a short run id (idempotent), poll with
backoff until it succeeds or fails, pause again."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError
from mwaa_iac.core import dr
from mwaa_iac.errors import MwaaIacError


class CutoverError(MwaaIacError):
    """A cutover, backup or restore step failed; the message says what state each colour is in."""


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
        while True:
            dag = self.api.get_dag(dag_id)
            if dag is not None and dag.get("description") == marker:
                return
            errors = self._import_errors(dag_id)
            if errors:
                missing_dr = "mwaa_dr" in errors
                raise CutoverError(
                    f"{self.api.environment} cannot import the {dag_id} DAG: {errors}",
                    hint=f"mwaa-dr must be installed: add {dr.MWAA_DR_REQUIREMENT} to the environment's "
                    "requirements and update it"
                    if missing_dr
                    else "the generated DAG file does not import on this Airflow version: a bug in mwaa-iac",
                )
            if self.clock() - start > self.options.dag_timeout_seconds:
                raise CutoverError(
                    f"{self.api.environment} did not show the {dag_id} DAG within "
                    f"{self.options.dag_timeout_seconds:.0f} s",
                    hint="check the DAG folder sync and the environment's DAG processor; then --resume",
                )
            self.emit({"event": "dr.waiting_for_dag", "environment": self.api.environment, "dag_id": dag_id})
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
        self.api.set_paused(dag_id, False)
        existing = self.api.trigger(dag_id, run_id, conf)
        if existing.get("state") == "failed":
            # A resumed workflow retries a run that failed before: replace it, same id.
            self.api.request("DELETE", f"/dags/{dag_id}/dagRuns/{run_id}")
            self.api.trigger(dag_id, run_id, conf)
        self.emit({"event": "dr.triggered", "environment": name, "dag_id": dag_id, "run_id": run_id})
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
                {
                    "event": "dr.run",
                    "environment": name,
                    "dag_id": dag_id,
                    "state": state,
                    "elapsed_s": round(self.clock() - start, 1),
                }
            )
            self.sleep(delay)
            if backoff:
                delay = min(delay * 1.5, 5 * self.options.run_poll_seconds, 30.0)
