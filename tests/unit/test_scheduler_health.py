"""Issue 22 part 10: a source whose scheduler is down is diagnosed, not waited on.

The health decision (Airflow's ``/health`` answer at a given time; the SchedulerHeartbeat metric's
minutes), the check the probe runs first, and what the DR DAG waits say they wait for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import botocore.exceptions
import pytest

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError, scheduler_health
from mwaa_iac.adapters.aws import AwsError
from mwaa_iac.adapters.cloudwatch import HEARTBEAT_WINDOW_MINUTES, heartbeat_problem
from mwaa_iac.cli.event_text import format_event, status_text
from mwaa_iac.core import dr
from mwaa_iac.events import EventKind
from mwaa_iac.workflows.dr_probe import check_scheduler
from mwaa_iac.workflows.dr_runs import HEALTH_EVERY_SECONDS, CutoverError, DagRunner, SchedulerDownError

NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


def answer(status: str | None, age_s: float | None) -> dict[str, Any]:
    beat = None if age_s is None else (NOW - timedelta(seconds=age_s)).isoformat()
    return {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": status, "latest_scheduler_heartbeat": beat},
    }


# -- the decision -----------------------------------------------------------------------------------


def test_a_fresh_heartbeat_is_healthy() -> None:
    health = scheduler_health(answer("healthy", 4), NOW)
    assert health is not None and health.ok
    assert (health.status, health.age_s) == ("healthy", 4.0)


@pytest.mark.parametrize(("age", "ok"), [(29.9, True), (30.0, True), (30.1, False), (600, False)])
def test_a_heartbeat_older_than_the_threshold_is_stale(age: float, ok: bool) -> None:
    health = scheduler_health(answer("healthy", age), NOW)  # Airflow's verdict lags or uses another threshold
    assert health is not None and health.ok is ok
    if not ok:
        assert health.problem is not None
        assert health.problem.startswith(f"its latest heartbeat was {age:.0f} s ago")


def test_the_threshold_is_a_parameter() -> None:
    assert scheduler_health(answer("healthy", 45), NOW, stale_after=60).ok  # type: ignore[union-attr]
    assert not scheduler_health(answer("healthy", 45), NOW, stale_after=40).ok  # type: ignore[union-attr]


def test_airflow_calling_it_unhealthy_is_a_problem_even_with_a_recent_heartbeat() -> None:
    # The environment's own scheduler_health_check_threshold may be shorter than ours.
    health = scheduler_health(answer("unhealthy", 12), NOW)
    assert health is not None
    beat = (NOW - timedelta(seconds=12)).isoformat()
    assert health.problem == f"Airflow reports it unhealthy (latest heartbeat 12 s ago, {beat})"


def test_no_scheduler_ever_is_a_problem() -> None:
    health = scheduler_health(answer(None, None), NOW)  # Airflow: no SchedulerJob row at all
    assert health is not None and health.problem == "no scheduler has heartbeated yet"
    bad = {"scheduler": {"status": "healthy", "latest_scheduler_heartbeat": "yesterday"}}
    assert scheduler_health(bad, NOW).problem == "its latest heartbeat 'yesterday' is not a time"  # type: ignore[union-attr]


def test_a_heartbeat_ahead_of_our_clock_counts_as_fresh() -> None:
    health = scheduler_health(answer("healthy", -3), NOW)
    assert health is not None and health.ok and health.age_s == 0.0


def test_an_answer_without_a_scheduler_part_decides_nothing() -> None:
    assert scheduler_health({"metadatabase": {"status": "healthy"}}, NOW) is None
    assert scheduler_health("<html>", NOW) is None


def test_airflow_3s_answer_with_a_z_suffix() -> None:
    three = {"scheduler": {"status": "healthy", "latest_scheduler_heartbeat": "2026-12-03T09:59:58Z"}}
    assert scheduler_health(three, NOW).age_s == 2.0  # type: ignore[union-attr]


def test_the_metric_needs_one_minute_with_a_heartbeat_in_its_window() -> None:
    assert heartbeat_problem([False, False, True, False, False]) is None
    assert (
        heartbeat_problem([False] * 5) == "no AmazonMWAA/SchedulerHeartbeat datapoint in the last 5 minutes"
    )


# -- reading /health through InvokeRestApi ----------------------------------------------------------


class _Mwaa:
    """InvokeRestApi answering from ``routes`` ({path: (status, body)}), 404 elsewhere."""

    def __init__(self, routes: dict[str, tuple[int, Any]]) -> None:
        self.routes = routes
        self.paths: list[str] = []
        self.client = self

    def invoke_rest_api(self, Name: str, Path: str, Method: str, **_: Any) -> dict:
        self.paths.append(Path)
        status, body = self.routes.get(Path, (404, {"detail": "not found"}))
        if status >= 400:
            code = "RestApiServerException" if status >= 500 else "RestApiClientException"
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": code, "Message": "x"},
                    "RestApiStatusCode": status,
                    "RestApiResponse": body,
                },
                "InvokeRestApi",
            )
        return {"RestApiStatusCode": status, "RestApiResponse": body}


def test_health_reads_airflow_2s_path() -> None:
    mwaa = _Mwaa({"/health": (200, answer("healthy", 1))})
    api = AirflowApi(mwaa, "a-blue")  # type: ignore[arg-type]
    assert api.health() == answer("healthy", 1)
    assert mwaa.paths == ["/health"] and api.api_v2 is None


def test_health_falls_back_to_airflow_3s_path_and_remembers_it() -> None:
    mwaa = _Mwaa({"/monitor/health": (200, answer("healthy", 1))})
    api = AirflowApi(mwaa, "a-green")  # type: ignore[arg-type]
    assert api.health() == answer("healthy", 1)
    assert api.api_v2 is True
    api.health()
    assert mwaa.paths == ["/health", "/monitor/health", "/monitor/health"]


def test_health_is_none_when_neither_path_is_served_and_raises_on_a_server_error() -> None:
    assert AirflowApi(_Mwaa({}), "a-blue").health() is None  # type: ignore[arg-type]
    failing = AirflowApi(_Mwaa({"/health": (500, {"detail": "boom"})}), "a-blue", retries=0)  # type: ignore[arg-type]
    with pytest.raises(AirflowApiError) as caught:
        failing.health()
    assert caught.value.status == 500


# -- the check before the probe ---------------------------------------------------------------------


class _HealthApi:
    environment = "a-blue"

    def __init__(self, answer: Any = None, error: Exception | None = None) -> None:
        self.answer, self.error, self.calls = answer, error, 0

    def health(self) -> Any:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.answer


class _CloudWatch:
    def __init__(self, minutes: list[bool] | None = None, error: Exception | None = None) -> None:
        self.minutes, self.error = minutes, error
        self.asked: list[tuple[str, int, datetime | None]] = []

    def heartbeat_minutes(self, environment: str, minutes: int, now: datetime | None = None) -> list[bool]:
        self.asked.append((environment, minutes, now))
        if self.error is not None:
            raise self.error
        assert self.minutes is not None
        return self.minutes


def _check(api: _HealthApi, cloudwatch: _CloudWatch | None = None) -> tuple[dict, list[dict]]:
    events: list[dict] = []
    seen = check_scheduler(api, events.append, role="the backup", cloudwatch=cloudwatch, now=lambda: NOW)  # type: ignore[arg-type]
    return seen, events


def test_a_stale_heartbeat_stops_the_probe_at_once_naming_the_scheduler() -> None:
    events: list[dict] = []
    with pytest.raises(SchedulerDownError) as caught:
        check_scheduler(
            _HealthApi(answer("unhealthy", 300)),
            events.append,
            role="the backup",
            now=lambda: NOW,  # type: ignore[arg-type]
        )
    assert str(caught.value) == (
        "the scheduler of a-blue is down: its latest heartbeat was 300 s ago "
        f"({(NOW - timedelta(seconds=300)).isoformat()}); a running scheduler heartbeats every few seconds "
        "(stale after 30 s) (Airflow's /health); no DAG runs there, so the probe and the backup would "
        "only wait"
    )
    assert "airflow-a-blue-Scheduler" in (caught.value.hint or "")
    assert "nothing was changed" in (caught.value.hint or "")
    assert isinstance(caught.value, CutoverError)  # the cutover's preflight reports it as it reports a probe
    assert [e["event"] for e in events] == ["probe.health"]
    assert events[0]["scheduler"] == "unhealthy" and events[0]["heartbeat_age_s"] == 300.0


def test_the_metric_is_named_beside_airflows_verdict() -> None:
    cloudwatch = _CloudWatch([False] * HEARTBEAT_WINDOW_MINUTES)
    with pytest.raises(
        SchedulerDownError, match="; no AmazonMWAA/SchedulerHeartbeat datapoint in the last 5"
    ):
        _check(_HealthApi(answer(None, None)), cloudwatch)
    assert cloudwatch.asked == [("a-blue", HEARTBEAT_WINDOW_MINUTES, NOW)]


def test_a_healthy_scheduler_lets_the_probe_run() -> None:
    seen, events = _check(_HealthApi(answer("healthy", 3)), _CloudWatch([True] * 5))
    assert seen["problem"] is None and seen["metric_minutes"] == 5
    assert [e["event"] for e in events] == ["probe.health"]
    assert format_event(events[0]) == "[success]✓[/] scheduler of a-blue: heartbeat 3 s ago"


def test_airflows_fresh_heartbeat_wins_over_a_lagging_metric_with_a_warning() -> None:
    seen, events = _check(_HealthApi(answer("healthy", 3)), _CloudWatch([False] * 5))
    assert seen["problem"] is None
    warning = events[-1]
    assert warning["event"] == "probe.warning"
    assert warning["detail"] == (
        "no AmazonMWAA/SchedulerHeartbeat datapoint in the last 5 minutes, although Airflow reports a "
        "heartbeat 3 s ago: running the probe"
    )


def test_without_airflows_health_the_metric_decides() -> None:
    with pytest.raises(SchedulerDownError) as caught:
        _check(_HealthApi(None), _CloudWatch([False] * 5))
    assert str(caught.value).startswith(
        "the scheduler of a-blue is down: no AmazonMWAA/SchedulerHeartbeat datapoint in the last 5 minutes "
        "(Airflow's health could not be read)"
    )
    seen, events = _check(
        _HealthApi(error=AirflowApiError("GET /health: 503", status=503)), _CloudWatch([True] * 5)
    )
    assert seen["metric_minutes"] == 5 and [e["event"] for e in events] == ["probe.health"]
    assert (
        format_event(events[0])
        == "[success]✓[/] scheduler of a-blue: SchedulerHeartbeat in 5 of the last 5 minutes"
    )


def test_when_nothing_can_be_read_the_probe_runs_with_a_warning() -> None:
    denied = AwsError("cannot read the AmazonMWAA/SchedulerHeartbeat metric of a-blue: AccessDenied: no")
    seen, events = _check(_HealthApi(None), _CloudWatch(error=denied))
    assert seen["problem"] is None
    assert events[-1]["event"] == "probe.warning"
    assert "the SchedulerHeartbeat metric: cannot read" in events[-1]["detail"]
    assert "Airflow's health: the environment serves no health endpoint" in events[-1]["detail"]
    _, events = _check(_HealthApi(None))  # no CloudWatch client given (the local stack's backup)
    assert events[-1]["event"] == "probe.warning"


# -- what a wait says it waits for ------------------------------------------------------------------

MARKER = "mwaa-iac probe v1"


class _WaitApi:
    """A DR DAG that is not there yet (``dag``), or there, and a run that stays ``run_state``."""

    environment = "a-blue"

    def __init__(
        self, dag: dict | None = None, error: str | None = None, health: Any = None, run_state: str = "queued"
    ) -> None:
        self.dag, self.error, self.answer, self.run_state = dag, error, health, run_state
        self.health_calls = 0

    def get_dag(self, dag_id: str) -> dict | None:
        return self.dag

    def request(self, method: str, path: str, **_: Any) -> dict:
        assert path == "/importErrors"
        errors = []
        if self.error:
            errors = [{"filename": f"/dags/mwaa_iac_dr/{dr.PROBE_DAG_ID}.py", "stack_trace": self.error}]
        return {"import_errors": errors}

    def health(self) -> Any:
        self.health_calls += 1
        return self.answer

    def set_paused(self, dag_id: str, paused: bool) -> None:
        pass

    def trigger(self, dag_id: str, run_id: str, conf: Any = None) -> dict:
        return {"state": "queued"}

    def get_run(self, dag_id: str, run_id: str) -> dict:
        return {"state": self.run_state}


class _Time:
    def __init__(self) -> None:
        self.t = 0.0

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def _runner(api: _WaitApi, events: list[dict], **options: float) -> DagRunner:
    time = _Time()
    opts = SimpleNamespace(
        **{
            "dag_timeout_seconds": 200,
            "run_timeout_seconds": 200,
            "run_poll_seconds": 10.0,
            "import_error_grace_seconds": 1000,
            **options,
        }
    )
    return DagRunner(api, opts, events.append, time.sleep, time.clock, lambda: NOW)  # type: ignore[arg-type]


def _waits(api: _WaitApi, **options: float) -> tuple[list[dict], CutoverError]:
    events: list[dict] = []
    with pytest.raises(CutoverError) as caught:
        _runner(api, events, **options).wait_for_dag(dr.PROBE_DAG_ID, MARKER)
    return [e for e in events if e["event"] == "dr.waiting_for_dag"], caught.value


def test_a_file_not_listed_yet_is_said() -> None:
    waits, error = _waits(_WaitApi(health=answer("healthy", 2)))
    assert {e["waiting_for"] for e in waits} == {"file_not_listed"}
    assert waits[0]["detail"] == (
        f"a-blue has not listed mwaa_iac_dr/{dr.PROBE_DAG_ID}.py yet (Airflow lists new DAG files every "
        "[scheduler] dag_dir_list_interval, 5 minutes by default)"
    )
    assert "scheduler" not in waits[-1]  # it heartbeats: nothing to say of it
    assert str(error).startswith(
        f"a-blue did not show the {dr.PROBE_DAG_ID} DAG within 200 s: a-blue has not listed"
    )
    assert status_text(waits[0]) == f"waiting for a-blue to parse {dr.PROBE_DAG_ID}: file not listed yet"


def test_an_earlier_version_an_inactive_dag_and_an_import_error_are_said() -> None:
    earlier = {"dag_id": dr.PROBE_DAG_ID, "description": "older", "is_active": True}
    waits, _ = _waits(_WaitApi(dag=earlier))
    assert waits[0]["waiting_for"] == "new_version" and "min_file_process_interval" in waits[0]["detail"]
    inactive = {"dag_id": dr.PROBE_DAG_ID, "description": MARKER, "is_active": False}
    waits, _ = _waits(_WaitApi(dag=inactive))
    assert waits[0]["waiting_for"] == "dag_inactive"
    assert status_text(waits[0]) == f"waiting for a-blue to parse {dr.PROBE_DAG_ID}: DAG inactive"
    waits, _ = _waits(_WaitApi(error="Traceback\nModuleNotFoundError: No module named 'smart_open'"))
    assert waits[0]["waiting_for"] == "import_error"
    assert "ModuleNotFoundError: No module named 'smart_open'" in waits[0]["detail"]


def test_a_long_wait_reads_the_health_and_names_a_down_scheduler_at_most_once_a_minute() -> None:
    api = _WaitApi(health=answer("unhealthy", 400))
    waits, error = _waits(api)
    early = [e for e in waits if "scheduler" not in e]
    assert len(early) == 3  # 0, 10, 20 s: too early to ask
    assert waits[3]["scheduler"].startswith(
        "the scheduler of a-blue is down: its latest heartbeat was 400 s ago"
    )
    # read at 30, 90 and 150 s, and at 210 s for the timeout's message: once per HEALTH_EVERY_SECONDS
    assert HEALTH_EVERY_SECONDS == 60 and api.health_calls == 4
    assert status_text(waits[3]).startswith(
        f"waiting for a-blue to parse {dr.PROBE_DAG_ID}: file not listed yet; the scheduler of a-blue is down"
    )
    assert "; the scheduler of a-blue is down" in str(error)


def test_a_run_queued_while_the_scheduler_is_down_says_so() -> None:
    listed = {"dag_id": dr.PROBE_DAG_ID, "description": MARKER, "is_active": True}
    api = _WaitApi(dag=listed, health=answer("unhealthy", 90))
    events: list[dict] = []
    with pytest.raises(CutoverError) as caught:
        _runner(api, events).run(dr.PROBE_DAG_ID, "probe_1", MARKER, backoff=False)
    runs = [e for e in events if e["event"] == "dr.run"]
    assert all(e["state"] == "queued" for e in runs)
    assert "detail" not in runs[0]  # queued for a moment: normal
    said = [e for e in runs if e.get("waiting_for") == "scheduler"]
    assert said and said[0]["detail"].startswith(
        "queued: the scheduler of a-blue is down: its latest heartbeat"
    )
    assert status_text(said[0]).startswith(f"{dr.PROBE_DAG_ID} on a-blue: queued for ")
    assert "(queued: the scheduler of a-blue is down" in status_text(said[0])  # type: ignore[operator]
    assert "(state queued; the scheduler of a-blue is down" in str(caught.value)


def test_a_run_queued_with_a_heartbeating_scheduler_says_nothing_more() -> None:
    listed = {"dag_id": dr.PROBE_DAG_ID, "description": MARKER, "is_active": True}
    api = _WaitApi(dag=listed, health=answer("healthy", 1))
    events: list[dict] = []
    with pytest.raises(CutoverError):
        _runner(api, events).run(dr.PROBE_DAG_ID, "probe_1", MARKER, backoff=False)
    assert api.health_calls > 0
    assert not [e for e in events if e.get("waiting_for") == "scheduler"]


def test_the_new_event_kind_is_declared() -> None:
    assert EventKind("probe.health") is EventKind.PROBE_HEALTH
