"""After Airflow's 2 → 3 migration (a cutover's go-live into 3.x; an in-place upgrade to 3.x): the
runs that were in flight during it finish.

The migration (MWAA runs it in place: the hop inside a cutover's freeze, or `upgrade`) leaves every
task instance made by 2.x without a ``dag_version_id``. Airflow 3's scheduler (3.2.1, 3.3.1:
``SchedulerJobRunner._verify_integrity_if_dag_changed``) gives the DAG's latest version to a run's
unfinished task instances when it examines the run, but only to those with a state (its
``state IN (...)`` never matches NULL) and only while no task instance of the run has that version.
A task instance of such a run that had no state yet is then scheduled and queued, and never
enqueued ("does not have a dag_version_id set, cannot be enqueued"): the run never finishes.

So, once the environment schedules the DAGs (after go-live; after the upgrade), for each running run
of those DAGs that still has task instances without a version: wait until the scheduler has examined
it (one of its task instances has a version) or there is nothing it would give a version to (no
unfinished task instance with a state), then clear the ones still without a version and not started
(no state, scheduled, queued) onto the DAG's latest version (``POST /dags/{dag_id}/clearTaskInstances``
with ``run_on_latest_version``, Airflow 3.2 and later). Clearing a task that never ran changes
nothing else of it: its try number stays, Airflow records the cleared try in its task history (as
the UI's Clear does). Runs of paused DAGs are not touched: the scheduler does not examine them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError, ti_name
from mwaa_iac.core import dr
from mwaa_iac.core.catalog import parse_version
from mwaa_iac.events import Emit, EventKind, event
from mwaa_iac.workflows.journal import Journal

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


def crosses_into_3(from_version: str, to_version: str) -> bool:
    """Whether Airflow's 2 → 3 migration runs on the way (the history it carries needs this step)."""
    return from_version.startswith("2.") and to_version.startswith("3.")


@dataclass
class InFlight:
    """Resume the runs in flight of ``api``'s environment (Airflow 3) that its migration from 2.x
    left unable to finish: see the module's docstring."""

    api: AirflowApi
    emit: Emit
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    timeout_s: float
    poll_s: float

    def resume(self, dag_ids: set[str], version: str) -> dict[str, Any]:
        """The running runs of ``dag_ids`` (DAGs that schedule) on an environment at ``version``."""
        api = self.api
        runs = [(r["dag_id"], r["dag_run_id"]) for r in api.runs_in_states(IN_FLIGHT_RUN_STATES)]
        listed = {key: api.run_task_instances(*key) for key in sorted(runs) if key[0] in dag_ids}
        stuck = {key: tis for key, tis in listed.items() if any(needs_version(ti) for ti in tis)}
        result: dict[str, Any] = {"runs": _names(stuck), "cleared": [], "version": version}
        if not stuck:
            return result
        if parse_version(version) < parse_version(CLEAR_ONTO_LATEST_SINCE):
            reason = (
                f"Airflow {version} cannot clear task instances onto the DAG's latest version "
                f"({CLEAR_ONTO_LATEST_SINCE} and later can)"
            )
            self._not_resumed(list(stuck), reason)
            return {**result, "not_resumed": _names(stuck), "reason": reason}
        start = self.clock()
        waiting = dict(stuck)  # each run's task instances as last listed
        while waiting:
            for key, tis in list(waiting.items()):
                if not any(needs_version(ti) for ti in tis):
                    del waiting[key]  # resumed meanwhile, or the run ended
                elif examined(tis):
                    result["cleared"] += self._clear(key, [ti for ti in tis if needs_version(ti)])
                    del waiting[key]
            waited = round(self.clock() - start, 2)
            if not waiting or waited > self.timeout_s:
                break
            self.emit(
                event(
                    EventKind.IN_FLIGHT_WAITING,
                    environment=api.environment,
                    runs=_names(waiting),
                    waited_s=waited,
                )
            )
            self.sleep(self.poll_s)
            waiting = {key: api.run_task_instances(*key) for key in waiting}
        if waiting:
            reason = f"the scheduler of {api.environment} did not examine them within {self.timeout_s:.0f} s"
            self._not_resumed(list(waiting), reason)
            result["not_resumed"] = _names(waiting)
            result["reason"] = reason
        return result

    def journaled(
        self, journal: Journal, step: str, describe: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """:meth:`resume` of the environment's unpaused DAGs (not the tool's own) as journal step
        ``step`` (done: its result again); ``describe`` gives its GetEnvironment answer."""
        if journal.state(step) == "done":
            return dict(journal.data(step).get("result") or {})
        journal.started(step)
        dags = {
            d["dag_id"] for d in self.api.list_dags_in_state(False) if d["dag_id"] not in dr.MWAA_IAC_DAG_IDS
        }
        result = self.resume(dags, str(describe().get("AirflowVersion", "")))
        journal.done(step, result=result)
        return result

    def _clear(self, key: tuple[str, str], tis: list[dict[str, Any]]) -> list[str]:
        dag_id, run_id = key
        tasks = sorted({(str(ti["task_id"]), int(ti.get("map_index", -1))) for ti in tis})
        names = sorted(ti_name({**ti, "dag_id": dag_id, "dag_run_id": run_id}) for ti in tis)
        try:
            self.api.clear_onto_latest_version(dag_id, run_id, tasks)
        except AirflowApiError as exc:
            if exc.status != 404:  # 404: the DAG does not import there (check-target said so)
                raise
            self._not_resumed([key], f"{dag_id} has no parsed version on {self.api.environment}")
            return []
        environment = self.api.environment
        self.emit(
            event(
                EventKind.IN_FLIGHT_RESUMED,
                environment=environment,
                dag_id=dag_id,
                run_id=run_id,
                task_instances=names,
            )
        )
        return names

    def _not_resumed(self, keys: list[tuple[str, str]], reason: str) -> None:
        self.emit(
            event(
                EventKind.IN_FLIGHT_NOT_RESUMED,
                environment=self.api.environment,
                runs=_names(keys),
                reason=reason,
            )
        )


def _names(keys: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{dag_id}/{run_id}" for dag_id, run_id in sorted(keys)]
