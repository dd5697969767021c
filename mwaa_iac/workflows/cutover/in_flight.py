"""After go-live into Airflow 3 with work carried from 2.x: the runs that were in flight at the
freeze finish on the target.

Airflow's 2 → 3 migration (run by MWAA's in-place hop inside the freeze) leaves every copied task
instance without a ``dag_version_id``. Airflow 3's scheduler (3.2.1, 3.3.1:
``SchedulerJobRunner._verify_integrity_if_dag_changed``) gives the DAG's latest version to a run's
unfinished task instances when it examines the run, but only to those with a state (its
``state IN (...)`` never matches NULL) and only while no task instance of the run has that version.
A task instance of such a run that had no state yet at the freeze is then scheduled and queued, and
never enqueued ("does not have a dag_version_id set, cannot be enqueued"): the run never finishes.

So, once the target schedules (after go-live), for each running run of the DAGs go-live unpaused
that still has task instances without a version: wait until the scheduler has examined it (one of
its task instances has a version) or there is nothing it would give a version to (no unfinished task
instance with a state), then clear the ones still without a version and not started (no state,
scheduled, queued) onto the DAG's latest version (``POST /dags/{dag_id}/clearTaskInstances`` with
``run_on_latest_version``, Airflow 3.2 and later). Clearing a task that never ran changes nothing
else of it: its try number stays, Airflow records the cleared try in its task history (as the UI's
Clear does). Runs of DAGs left paused are listed, not touched: they stay as they are until their
owner unpauses them (``mwaa-iac cutover --resume`` is not needed for them; the guide says what to do).
"""

from __future__ import annotations

from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError
from mwaa_iac.core.catalog import parse_version
from mwaa_iac.core.cutover_steps import Step
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.cutover.context import Context
from mwaa_iac.workflows.cutover.freeze import ti_name

IN_FLIGHT_RUN_STATES = ("running", "queued")
FINISHED = ("success", "failed", "skipped", "upstream_failed", "removed")
NOT_STARTED = (None, "scheduled", "queued")  # cleared onto the latest version when they have none
# run_on_latest_version in clearTaskInstances (and the scheduler's behaviour read above): 3.2 and later
CLEAR_ONTO_LATEST_SINCE = "3.2.0"


def needs_version(ti: dict[str, Any]) -> bool:
    """A task instance the scheduler cannot enqueue: no version, not started."""
    return not ti.get("dag_version") and ti.get("state") in NOT_STARTED


def examined(tis: list[dict[str, Any]]) -> bool:
    """Whether clearing a run's task instances now leaves none stuck: Airflow 3's scheduler has
    given its task instances with a state the latest version (one has a version), or there is none
    it would give one to."""
    if any(ti.get("dag_version") for ti in tis):
        return True
    return not any(ti.get("state") is not None and ti.get("state") not in FINISHED for ti in tis)


class InFlight:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def resume(self) -> dict[str, Any]:
        ctx = self.ctx
        api = ctx.api(ctx.target)
        version = ctx.mwaa.get_environment(ctx.target).get("AirflowVersion", ctx.to_version)
        unpaused = set(ctx.result(Step.GO_LIVE).get("unpaused", []))
        runs = {
            (r["dag_id"], r["dag_run_id"]): r
            for r in api.runs_in_states(IN_FLIGHT_RUN_STATES)
            if r.get("dag_id") in unpaused
        }
        stuck = {key: [ti for ti in api.run_task_instances(*key) if needs_version(ti)] for key in runs}
        stuck = {key: tis for key, tis in stuck.items() if tis}
        result: dict[str, Any] = {
            "runs": [f"{d}/{r}" for d, r in sorted(stuck)],
            "cleared": [],
            "version": version,
        }
        if not stuck:
            return result
        if parse_version(version) < parse_version(CLEAR_ONTO_LATEST_SINCE):
            reason = (
                f"Airflow {version} cannot clear task instances onto the DAG's latest version "
                f"({CLEAR_ONTO_LATEST_SINCE} and later can)"
            )
            self._not_resumed(list(stuck), reason)
            return {**result, "not_resumed": result["runs"], "reason": reason}
        start = ctx.clock()
        waiting = dict(stuck)
        while waiting:
            for key in list(waiting):
                tis = api.run_task_instances(*key)
                if not any(needs_version(ti) for ti in tis):
                    del waiting[key]  # resumed meanwhile, or the run ended
                elif examined(tis):
                    result["cleared"] += self._clear(api, key, [ti for ti in tis if needs_version(ti)])
                    del waiting[key]
            waited = round(ctx.clock() - start, 2)
            if not waiting or waited > ctx.options.drain_timeout_seconds:
                break
            ctx.emit(
                event(
                    EventKind.IN_FLIGHT_WAITING,
                    environment=ctx.target,
                    runs=[f"{d}/{r}" for d, r in sorted(waiting)],
                    waited_s=waited,
                )
            )
            ctx.sleep(ctx.options.run_poll_seconds)
        if waiting:
            reason = (
                f"the scheduler of {ctx.target} did not examine them within "
                f"{ctx.options.drain_timeout_seconds:.0f} s"
            )
            self._not_resumed(list(waiting), reason)
            result["not_resumed"] = [f"{d}/{r}" for d, r in sorted(waiting)]
            result["reason"] = reason
        return result

    def _clear(self, api: AirflowApi, key: tuple[str, str], tis: list[dict[str, Any]]) -> list[str]:
        dag_id, run_id = key
        tasks = sorted({(str(ti["task_id"]), int(ti.get("map_index", -1))) for ti in tis})
        names = [ti_name({**ti, "dag_run_id": run_id}) for ti in tis]
        try:
            api.clear_onto_latest_version(dag_id, run_id, tasks)
        except AirflowApiError as exc:
            if exc.status != 404:  # 404: the DAG does not import on the target (check-target said so)
                raise
            self._not_resumed([key], f"{dag_id} has no parsed version on {self.ctx.target}")
            return []
        self.ctx.emit(
            event(
                EventKind.IN_FLIGHT_RESUMED,
                environment=self.ctx.target,
                dag_id=dag_id,
                run_id=run_id,
                task_instances=sorted(names),
            )
        )
        return sorted(names)

    def _not_resumed(self, keys: list[tuple[str, str]], reason: str) -> None:
        runs = [f"{d}/{r}" for d, r in sorted(keys)]
        self.ctx.emit(
            event(EventKind.IN_FLIGHT_NOT_RESUMED, environment=self.ctx.target, runs=runs, reason=reason)
        )
