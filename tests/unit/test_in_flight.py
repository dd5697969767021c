"""Which task instances of a run in flight across Airflow's 2 → 3 migration are cleared onto the
DAG's latest version, and when (mwaa_iac/workflows/in_flight.py)."""

from __future__ import annotations

from mwaa_iac.core.cutover_steps import Step, flow_for_plan
from mwaa_iac.workflows.in_flight import examined, needs_version

V = {"version_number": 3}


def test_only_unstarted_task_instances_without_a_version_need_one() -> None:
    assert needs_version({"state": None, "dag_version": None})
    assert needs_version({"state": "queued", "dag_version": None})  # queued, never enqueued
    assert not needs_version({"state": None, "dag_version": V})
    assert not needs_version({"state": "deferred", "dag_version": None})  # the scheduler gives it one
    assert not needs_version({"state": "success", "dag_version": None})  # history stays as it is


def test_a_run_is_cleared_only_once_the_scheduler_cannot_skip_its_own_backfill() -> None:
    # not examined yet: the deferred sensor would lose the scheduler's backfill if one got a version now
    waiting = [{"state": "deferred", "dag_version": None}, {"state": None, "dag_version": None}]
    assert not examined(waiting)
    # examined: the sensor has the latest version; the one without a state does not
    assert examined([{"state": "deferred", "dag_version": V}, {"state": "queued", "dag_version": None}])
    # nothing the scheduler would give a version to: clear at once
    assert examined([{"state": "success", "dag_version": None}, {"state": None, "dag_version": None}])


def test_the_step_is_in_the_flow_of_a_cutover_that_carries_2_x_work_into_3_only() -> None:
    into_3 = {
        "history": True,
        "two_pass": True,
        "source_version": "2.9.2",
        "hops": [["in-place", "2.9.2", "2.11.2", ""], ["in-place", "2.11.2", "3.3.1", ""]],
        "freeze_hops": 1,
        "rehearsal": True,
    }
    steps = flow_for_plan(into_3)
    assert steps.index(Step.GO_LIVE) + 1 == steps.index(Step.RESUME_IN_FLIGHT)
    assert "freeze-hop-2-3.3.1" in steps and Step.REHEARSAL_HOP in steps
    assert Step.RESUME_IN_FLIGHT in flow_for_plan({**into_3, "two_pass": False, "freeze_hops": 0})
    assert Step.RESUME_IN_FLIGHT not in flow_for_plan({**into_3, "history": False})
    within_2 = {**into_3, "hops": [["in-place", "2.9.2", "2.11.2", ""]], "freeze_hops": 0, "rehearsal": False}
    assert Step.RESUME_IN_FLIGHT not in flow_for_plan(within_2)
