"""The freeze of a cutover on a busy environment, against fake Airflow REST APIs (no servers): the
drain waits only for executing task instances, --force-drain records what may run twice, an abort
undoes a half-done pause or go-live and makes --resume take a fresh backup, a go-live resumes, and
rollback aligns the old colour's scheduling with the new one's."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.core.config import Color
from mwaa_iac.core.cutover_steps import Step
from mwaa_iac.events import SUMMARY_KINDS
from mwaa_iac.workflows.cutover import JOURNAL, Cutover, CutoverOptions, cleanup, rollback
from mwaa_iac.workflows.dr_runs import CutoverError
from mwaa_iac.workflows.journal import Journal
from mwaa_iac.workflows.state import LocalStore
from mwaa_iac.workspace import open_workspace, write_deployment

SOURCE, TARGET = "analytics-blue", "analytics-green"


# -- fakes ---------------------------------------------------------------------------------------------


class FakeAirflow:
    """A tiny Airflow 2 REST API: DAGs (paused, catchup), runs, task instances."""

    def __init__(self, name: str, log: list[tuple]) -> None:
        self.name = name
        self.log = log
        self.variables: dict[str, str] = {}
        self.dags: dict[str, dict[str, Any]] = {}
        self.runs: list[dict[str, Any]] = []
        self.tis: list[dict[str, Any]] = []
        self.refuse_state_lists = False
        self.forbid_patch = False
        self.on_ti_poll: list[Any] = []  # callables run at each first page of a task-instance listing

    def dag(self, dag_id: str, *, paused: bool = False, catchup: bool = True) -> None:
        self.dags[dag_id] = {
            "dag_id": dag_id,
            "is_paused": paused,
            "catchup": catchup,
            "schedule_interval": {"__type": "CronExpression", "value": "0 * * * *"},
            "start_date": "2024-01-01T00:00:00+00:00",
        }

    def run(self, dag_id: str, run_type: str, logical_date: str, state: str = "success") -> None:
        run_id = f"{run_type}__{logical_date}"
        self.runs.append(
            {
                "dag_id": dag_id,
                "dag_run_id": run_id,
                "run_type": run_type,
                "logical_date": logical_date,
                "execution_date": logical_date,
                "state": state,
            }
        )

    def ti(self, dag_id: str, run_id: str, task_id: str, state: str, map_index: int = -1) -> dict:
        ti = {
            "dag_id": dag_id,
            "dag_run_id": run_id,
            "task_id": task_id,
            "map_index": map_index,
            "state": state,
        }
        self.tis.append(ti)
        return ti

    def paused(self) -> dict[str, bool]:
        return {d: v["is_paused"] for d, v in self.dags.items()}

    def handle(self, method: str, path: str, query: dict[str, Any], body: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/variables":
            self.variables[body["key"]] = body["value"]
            return 200, body
        if method == "DELETE" and (match := re.fullmatch(r"/variables/([^/]+)", path)):
            found = self.variables.pop(match.group(1), None)
            return (204, None) if found is not None else (404, {"detail": "not found"})
        if method == "GET" and path == "/dags/~/dagRuns/~/taskInstances":
            states = query.get("state")
            if isinstance(states, list) and self.refuse_state_lists:
                return 400, {"detail": f"'{states}' is not one of [...]"}
            offset = int(query.get("offset", 0))
            if offset == 0:
                for hook in self.on_ti_poll:
                    hook()
            wanted = states if isinstance(states, list) else [states]
            found = [t for t in self.tis if t["state"] in wanted]
            limit = int(query.get("limit", 100))
            return 200, {"task_instances": found[offset : offset + limit], "total_entries": len(found)}
        if method == "GET" and path == "/dags":
            dags = [d for d in self.dags.values() if _ilike(query.get("dag_id_pattern", "%"), d["dag_id"])]
            if "paused" in query:
                dags = [d for d in dags if d["is_paused"] == query["paused"]]
            return 200, {"dags": dags, "total_entries": len(dags)}
        if method == "PATCH" and path == "/dags":  # every match fits in one page here
            if self.forbid_patch:
                return 403, {"detail": "forbidden"}
            dags = sorted(
                (d for d in self.dags.values() if _ilike(query["dag_id_pattern"], d["dag_id"])),
                key=lambda d: d["dag_id"],
            )
            for dag in dags:
                self.log.append((self.name, dag["dag_id"], body["is_paused"]))
                dag["is_paused"] = body["is_paused"]
            return 200, {"dags": dags, "total_entries": len(dags)}
        match = re.fullmatch(r"/dags/([^/~]+)", path)
        if match and method == "GET":
            dag = self.dags.get(match.group(1))
            return (200, dag) if dag else (404, {"detail": "not found"})
        if match and method == "DELETE":
            return (204, None) if self.dags.pop(match.group(1), None) else (404, {"detail": "not found"})
        if match and method == "PATCH":
            dag_id = match.group(1)
            self.log.append((self.name, dag_id, body["is_paused"]))
            if self.forbid_patch:
                return 403, {"detail": "forbidden"}
            if dag_id not in self.dags:
                return 404, {"detail": "not found"}
            self.dags[dag_id]["is_paused"] = body["is_paused"]
            return 200, self.dags[dag_id]
        match = re.fullmatch(r"/dags/([^/~]+)/details", path)
        if match and method == "GET":
            dag = self.dags.get(match.group(1))
            return (200, dag) if dag else (404, {"detail": "not found"})
        match = re.fullmatch(r"/dags/([^/~]+)/dagRuns", path)
        if match and method == "GET":
            assert query["order_by"] == "-execution_date"
            runs = sorted(
                (r for r in self.runs if r["dag_id"] == match.group(1)),
                key=lambda r: r["logical_date"],
                reverse=True,
            )
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
            return 200, {"dag_runs": runs[offset : offset + limit], "total_entries": len(runs)}
        raise AssertionError(f"unexpected {method} {path} on {self.name}")


def _ilike(pattern: str, dag_id: str) -> bool:
    """``dag_id ILIKE '%<pattern>%'``: SQL's ``_`` is any one character, ``%`` any run."""
    rx = "".join("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.search(rx, dag_id, re.IGNORECASE) is not None


class FakeMwaa:
    """MwaaClient's surface the freeze uses; its ``client`` answers InvokeRestApi."""

    def __init__(self, *names: str) -> None:
        self.log: list[tuple] = []  # (environment, dag_id, is_paused) for every PATCH, in order
        self.requests: list[tuple] = []
        self.envs = {name: FakeAirflow(name, self.log) for name in names}
        self.client = self

    def invoke_rest_api(self, Name: str, Path: str, Method: str, QueryParameters=None, Body=None) -> dict:
        self.requests.append((Name, Method, Path, QueryParameters))
        status, body = self.envs[Name].handle(Method, Path, QueryParameters or {}, Body)
        if status >= 400:
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "RestApiClientException", "Message": str(body)},
                    "RestApiStatusCode": status,
                    "RestApiResponse": body,
                },
                "InvokeRestApi",
            )
        return {"RestApiStatusCode": status, "RestApiResponse": body}

    def get_environment(self, name: str) -> dict:
        return {"Name": name, "WebserverUrl": f"{name}.example.com", "AirflowVersion": "2.10.3"}

    def exists(self, name: str) -> bool:
        return name in self.envs


class FakeRouting:
    def __init__(self) -> None:
        self.pointed: list[str] = []

    def point(self, parameter: str, **kwargs: Any) -> None:
        self.pointed.append(kwargs["name"])

    def read(self, parameter: str) -> dict[str, Any] | None:
        return {"name": self.pointed[-1]} if self.pointed else None

    def read_record(self, zone_id: str, record_name: str) -> str | None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def ws(workspace_root: Path):
    return open_workspace("demo", workspace_root)


def _cutover(ws, mwaa: FakeMwaa, *, two_pass: bool = True, **options: Any) -> tuple[Cutover, list[dict]]:
    events: list[dict] = []
    clock = Clock()
    opts = CutoverOptions(
        to="2.10.3",
        engine="api",
        health_minutes=0,
        today=date(2026, 11, 23),
        run_poll_seconds=5.0,
        **options,
    )
    cutover = Cutover(
        ws,
        ws.load(),
        opts,
        mwaa,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        FakeRouting(),  # type: ignore[arg-type]
        emit=events.append,
        sleep=clock.sleep,
        clock=clock,
        state=LocalStore(ws.work_dir),
    )
    journal = Journal.start(cutover.store, JOURNAL, "cutover", {"to": "2.10.3", "source_color": "blue"})
    _done(
        journal,
        Step.PREFLIGHT,
        {"source_version": "2.9.2", "hops": [], "history": True, "two_pass": two_pass},
    )
    cutover.journal = journal
    return cutover, events


def _done(journal: Journal, step: str, result: Any = None) -> None:
    journal.started(step)
    journal.done(step, result=result, elapsed_s=0.1)


def _states(journal: Journal, *steps: str) -> dict[str, str | None]:
    return {step: journal.state(step) for step in steps}


def _aborted(journal: Journal, step: str) -> bool:
    last = [e for e in journal.entries if e.get("step") == step][-1]
    return last["event"] == "started" and last["data"].get("aborted") is True


# -- the drain -----------------------------------------------------------------------------------------


def test_drain_waits_only_for_executing_task_instances_not_for_running_runs(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    source = mwaa.envs[SOURCE]
    source.run("etl", "scheduled", "2026-12-01T10:00:00+00:00", state="running")  # stays running
    run_id = "scheduled__2026-12-01T10:00:00+00:00"
    long_task = source.ti("etl", run_id, "load", "running")
    source.ti("etl", run_id, "wait_for_partner", "deferred")
    source.ti("etl", run_id, "flaky", "up_for_retry")
    source.ti("etl", run_id, "report", "scheduled")
    source.ti("backup_metadata", "bkp-x-p2", "backup", "running")  # the tool's own: not waited for
    polls = iter(range(100))

    def finish_after_two_polls() -> None:
        if next(polls) == 2:
            long_task["state"] = "success"

    source.on_ti_poll.append(finish_after_two_polls)
    cutover, events = _cutover(ws, mwaa)
    result = cutover.freeze.drain()

    assert result["may_run_twice"] == [] and result["drained_after_s"] == 10.0
    draining = [e for e in events if e["event"] == "freeze.draining"]
    assert [e["count"] for e in draining] == [1, 1]
    assert draining[0]["task_instances"] == [f"etl/{run_id}/load"]
    assert events[-1]["event"] == "freeze.drained"
    # One listing per poll, the states as a repeated query parameter, paged.
    listing = [r for r in mwaa.requests if r[2] == "/dags/~/dagRuns/~/taskInstances"]
    assert listing[0][3] == {"state": ["queued", "running", "restarting"], "limit": 100, "offset": 0}
    assert not any(r[2] == "/dags/~/dagRuns" for r in mwaa.requests)  # runs are not looked at


def test_drain_timeout_names_the_executing_task_instances(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    source = mwaa.envs[SOURCE]
    source.ti("etl", "r1", "load", "running", map_index=3)
    source.ti("etl", "r1", "extract", "queued")
    for n in range(148):  # 150 in all: three pages
        source.ti("wide", "r2", f"t{n}", "restarting")
    cutover, _ = _cutover(ws, mwaa, drain_timeout_seconds=12)
    with pytest.raises(CutoverError) as info:
        cutover.freeze.drain()
    message = info.value.message
    assert "150 task instance(s) still executing" in message and "after 12 s" in message
    assert "etl/r1/load[3]" in message and "etl/r1/extract" in message and "and 130 more" in message
    assert "--resume --force-drain" in (info.value.hint or "")
    offsets = [r[3]["offset"] for r in mwaa.requests if r[2] == "/dags/~/dagRuns/~/taskInstances"][:2]
    assert offsets == [0, 100]


def test_a_refused_state_list_is_asked_one_state_at_a_time(ws) -> None:
    mwaa = FakeMwaa(SOURCE)
    source = mwaa.envs[SOURCE]
    source.refuse_state_lists = True
    source.ti("etl", "r1", "load", "running")
    source.ti("etl", "r1", "extract", "queued")
    source.ti("etl", "r1", "done", "success")
    found = AirflowApi(mwaa, SOURCE, sleep=lambda s: None).task_instances(("queued", "running", "restarting"))  # type: ignore[arg-type]
    assert sorted(t["task_id"] for t in found) == ["extract", "load"]


def test_force_drain_records_what_may_run_twice_in_the_journal_and_the_report(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    mwaa.envs[SOURCE].ti("etl", "r1", "load", "running")
    cutover, events = _cutover(ws, mwaa, force_drain=True, drain_timeout_seconds=0)
    cutover.ctx.step(Step.DRAIN_SOURCE, cutover.freeze.drain)
    assert cutover.journal is not None
    recorded = cutover.journal.data(Step.DRAIN_SOURCE)["result"]
    assert recorded["may_run_twice"] == ["etl/r1/load"]
    assert next(e for e in events if e["event"] == "freeze.drain_forced")["may_run_twice"] == ["etl/r1/load"]
    assert cutover.report(True, True)["may_run_twice"] == ["etl/r1/load"]


def test_dry_run_explains_the_in_flight_policy(ws) -> None:
    cutover, _ = _cutover(ws, FakeMwaa(SOURCE, TARGET), drain_timeout_seconds=180)
    policy = " ".join(cutover.planning.in_flight_policy(True))
    assert "3 min" in policy and "queued, running, restarting" in policy
    assert "copied as they are" in policy and "--force-drain" in policy and "may run twice" in policy


# -- the abort -----------------------------------------------------------------------------------------

P1_STEPS = (
    Step.DEPLOY_DR,
    Step.CREATE_TARGET,
    Step.BACKUP_P1,
    Step.VERIFY_BACKUP_P1,
    Step.RESTORE_P1,
    Step.VERIFY_RESTORE_P1,
)
PRE_FREEZE_P2 = (Step.HEALTH_TARGET, Step.DEPLOY_DR_P2, Step.PARSE_DR_P2, Step.CLEANUP_TARGET_P2)


def test_abort_after_a_half_done_go_live_repauses_the_target_then_unpauses_the_source(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    source, target = mwaa.envs[SOURCE], mwaa.envs[TARGET]
    for dag_id in ("a", "b"):
        source.dag(dag_id, paused=True)
    source.dag("user_paused", paused=True)
    target.dag("a", paused=False)  # the go-live unpaused a, then failed
    target.dag("b", paused=True)
    cutover, events = _cutover(ws, mwaa)
    journal = cutover.journal
    assert journal is not None
    for step in P1_STEPS + PRE_FREEZE_P2:
        _done(journal, step)
    _done(journal, Step.RECORD_DAGS, {"dags": ["a", "b"]})
    _done(journal, Step.PAUSE_SOURCE, {"paused": ["a", "b"], "freeze_started": 1.0})
    _done(journal, Step.DRAIN_SOURCE, {"drained_after_s": 0.0, "may_run_twice": []})
    _done(journal, Step.BACKUP_P2)
    _done(journal, Step.VERIFY_BACKUP_P2)
    journal.started(Step.RESTORE_P2)  # failed once, then succeeded after a retry
    _done(journal, "cleanup-target-p2-retry1")
    _done(journal, Step.RESTORE_P2)
    _done(journal, Step.VERIFY_RESTORE_P2)
    journal.started(Step.GO_LIVE)
    journal.note(Step.GO_LIVE, routed=True)
    error = CutoverError("go-live failed", hint="see the error")

    cutover.abort(error)

    # only the DAGs in the wrong state are touched: b was still paused on the target
    assert mwaa.log == [(TARGET, "a", True), (SOURCE, "a", False), (SOURCE, "b", False)]
    assert target.paused() == {"a": True, "b": True}
    assert source.paused() == {"a": False, "b": False, "user_paused": True}
    assert cutover.routing.pointed == [SOURCE]  # type: ignore[attr-defined]
    assert ws.load().deployment.active_color is Color.BLUE
    redo = (
        Step.RECORD_DAGS,
        Step.PAUSE_SOURCE,
        Step.DRAIN_SOURCE,
        Step.BACKUP_P2,
        Step.VERIFY_BACKUP_P2,
        "cleanup-target-p2-retry1",
        Step.RESTORE_P2,
        Step.VERIFY_RESTORE_P2,
    )
    assert all(_aborted(journal, step) for step in redo)
    assert all(journal.state(step) == "done" for step in P1_STEPS + PRE_FREEZE_P2)
    # one backup started so far (the abort's note is not an attempt): the resume's is attempt 1 (`-a1`)
    assert cutover.ctx.journal.attempts(Step.BACKUP_P2) == 1
    assert journal.state(Step.GO_LIVE) == "started" and journal.data(Step.GO_LIVE)["routed"] is False
    aborted = next(e for e in events if e["event"] == "freeze.aborted")
    assert aborted["repaused_on_target"] == 2 and aborted["unpaused"] == 2 and aborted["routed_back"]
    assert error.hint is not None and error.hint.startswith("see the error. state: the freeze was aborted")
    assert "fresh backup" in error.hint and f"{SOURCE} schedules again" in error.hint


def test_abort_after_a_half_done_pause_unpauses_only_the_recorded_dags(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    source = mwaa.envs[SOURCE]
    source.dag("a", paused=True)  # paused by the freeze
    source.dag("b", paused=False)  # the pause failed before it
    source.dag("c", paused=True)  # paused by its owner before the freeze: not recorded
    cutover, events = _cutover(ws, mwaa)
    journal = cutover.journal
    assert journal is not None
    for step in P1_STEPS + PRE_FREEZE_P2:
        _done(journal, step)
    _done(journal, Step.RECORD_DAGS, {"dags": ["a", "b"]})
    journal.started(Step.PAUSE_SOURCE)

    cutover.abort(CutoverError("throttled"))

    assert mwaa.log == [(SOURCE, "a", False)]  # nothing on the target; b was still unpaused
    assert source.paused() == {"a": False, "b": False, "c": True}
    assert _aborted(journal, Step.RECORD_DAGS) and _aborted(journal, Step.PAUSE_SOURCE)
    assert journal.state(Step.DRAIN_SOURCE) is None and journal.state(Step.BACKUP_P2) is None
    assert [e["event"] for e in events] == ["freeze.aborted"]


def test_a_second_failure_after_an_abort_does_not_abort_again(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    mwaa.envs[SOURCE].dag("a", paused=True)
    cutover, events = _cutover(ws, mwaa)
    journal = cutover.journal
    assert journal is not None
    _done(journal, Step.RECORD_DAGS, {"dags": ["a"]})
    _done(journal, Step.PAUSE_SOURCE)
    cutover.abort(CutoverError("first"))
    error = CutoverError("second")  # e.g. the resume fails before it pauses again
    cutover.abort(error)
    assert len(mwaa.log) == 1 and [e["event"] for e in events] == ["freeze.aborted"]
    assert "untouched and keeps scheduling" in (error.hint or "")


def test_abort_keeps_the_source_paused_when_the_target_cannot_be_paused_again(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    mwaa.envs[SOURCE].dag("a", paused=True)
    mwaa.envs[TARGET].dag("a", paused=False)
    mwaa.envs[TARGET].forbid_patch = True
    cutover, events = _cutover(ws, mwaa)
    journal = cutover.journal
    assert journal is not None
    _done(journal, Step.RECORD_DAGS, {"dags": ["a"]})
    _done(journal, Step.PAUSE_SOURCE)
    _done(journal, Step.DRAIN_SOURCE)
    journal.started(Step.GO_LIVE)
    error = CutoverError("go-live failed")
    cutover.abort(error)
    assert mwaa.envs[SOURCE].paused() == {"a": True}  # never both colours scheduling
    assert journal.state(Step.PAUSE_SOURCE) == "done" and not _aborted(journal, Step.PAUSE_SOURCE)
    assert events[-1]["event"] == "freeze.abort_failed" and events[-1]["failed_on"] == TARGET
    assert "could not be undone" in (error.hint or "") and "--resume" in (error.hint or "")


def test_a_single_pass_abort_keeps_pass_one(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    mwaa.envs[SOURCE].dag("a", paused=True)
    cutover, _ = _cutover(ws, mwaa, two_pass=False)
    journal = cutover.journal
    assert journal is not None
    _done(journal, Step.DEPLOY_DR)
    _done(journal, Step.RECORD_DAGS, {"dags": ["a"]})
    _done(journal, Step.PAUSE_SOURCE)
    _done(journal, Step.DRAIN_SOURCE)
    _done(journal, Step.CREATE_TARGET)
    _done(journal, Step.BACKUP_P1)
    _done(journal, Step.VERIFY_BACKUP_P1)
    journal.started(Step.RESTORE_P1)
    error = CutoverError("restore failed")
    cutover.abort(error)
    assert all(_aborted(journal, s) for s in (Step.RECORD_DAGS, Step.PAUSE_SOURCE, Step.DRAIN_SOURCE))
    assert _states(journal, Step.BACKUP_P1, Step.VERIFY_BACKUP_P1, Step.RESTORE_P1) == {
        Step.BACKUP_P1: "done",
        Step.VERIFY_BACKUP_P1: "done",
        Step.RESTORE_P1: "started",
    }
    assert not _aborted(journal, Step.RESTORE_P1)
    assert "the copy is not taken again" in (error.hint or "")


def test_a_failure_before_the_freeze_says_the_source_is_untouched(ws) -> None:
    cutover, events = _cutover(ws, FakeMwaa(SOURCE, TARGET))
    assert cutover.journal is not None
    _done(cutover.journal, Step.CREATE_TARGET)
    error = CutoverError("restore failed", hint="fix it")
    cutover.abort(error)
    assert events == []
    assert error.hint is not None and error.hint.startswith("fix it. state: analytics-blue is untouched")
    assert f"{TARGET} is not live" in error.hint


# -- go-live -------------------------------------------------------------------------------------------


def test_a_go_live_killed_midway_is_finished_by_the_resume(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    target = mwaa.envs[TARGET]
    target.dag("a", paused=False)  # unpaused before the kill
    target.dag("b", paused=True)
    cutover, events = _cutover(ws, mwaa)
    journal = cutover.journal
    assert journal is not None
    _done(journal, Step.RECORD_DAGS, {"dags": ["a", "b"]})
    _done(journal, Step.PAUSE_SOURCE, {"freeze_started": 1.0})
    journal.started(Step.GO_LIVE)  # killed here: no abort ran
    result = cutover.ctx.step(Step.GO_LIVE, cutover.freeze.go_live)
    assert target.paused() == {"a": False, "b": False} and result["unpaused"] == ["a", "b"]
    assert cutover.routing.pointed == [TARGET]  # type: ignore[attr-defined]
    assert ws.load().deployment.active_color is Color.GREEN
    assert journal.state(Step.GO_LIVE) == "done" and events[-1]["event"] == "step.done"


# -- rollback ------------------------------------------------------------------------------------------


def _went_live(ws, dags: list[str]) -> None:
    store = LocalStore(ws.work_dir)
    journal = Journal.start(store, JOURNAL, "cutover", {"to": "2.10.3", "source_color": "blue"})
    _done(journal, Step.RECORD_DAGS, {"dags": dags})
    _done(journal, Step.GO_LIVE, {"unpaused": dags})
    journal.end("succeeded")
    config = ws.load()
    write_deployment(
        ws.config_file, config.deployment.model_copy(update={"active_color": Color.GREEN, "green": "2.10.3"})
    )


def test_rollback_leaves_paused_the_dags_whose_intervals_the_new_colour_ran(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    old, new = mwaa.envs[SOURCE], mwaa.envs[TARGET]
    dags = ["hourly", "hourly_no_catchup", "quiet", "manual_only", "never_ran"]
    for dag_id in dags:
        old.dag(dag_id, paused=True, catchup=dag_id != "hourly_no_catchup")
        new.dag(dag_id, paused=False)
    frozen = "2026-12-01T10:00:00+00:00"  # the latest interval copied at go-live
    for dag_id in ("hourly", "hourly_no_catchup", "quiet", "manual_only"):
        for env in (old, new):
            env.run(dag_id, "scheduled", "2026-12-01T09:00:00+00:00")
            env.run(dag_id, "scheduled", frozen)
    for dag_id in ("hourly", "hourly_no_catchup"):
        new.run(dag_id, "scheduled", "2026-12-01T11:00:00+00:00")
        new.run(dag_id, "scheduled", "2026-12-01T12:00:00+00:00")
    new.run("hourly", "manual", "2026-12-01T12:30:00+00:00")  # newest, but manual
    new.run("manual_only", "manual", "2026-12-01T11:30:00+00:00")
    _went_live(ws, dags)
    events: list[dict] = []

    result = rollback(ws, ws.load(), mwaa, FakeRouting(), events.append, LocalStore(ws.work_dir))  # type: ignore[arg-type]
    assert events[-1]["event"] == "rollback.summary" and events[-1]["event"] in SUMMARY_KINDS

    assert {d: v["policy"] for d, v in result["dags"].items()} == {
        "hourly": "left_paused",
        "hourly_no_catchup": "unpaused_latest_only",
        "quiet": "unpaused",
        "manual_only": "unpaused",
        "never_ran": "unpaused",
    }
    assert result["left_paused"] == {"hourly": "2026-12-01T12:00:00+00:00"}
    assert result["unpaused_latest_only"] == ["hourly_no_catchup"]
    assert sorted(result["unpaused"]) == ["hourly_no_catchup", "manual_only", "never_ran", "quiet"]
    assert result["dags"]["hourly"]["old_latest"] == frozen
    assert result["history_copied_back"] is False and "not copied back" in result["warning"]
    assert "hourly" in result["hint"] and f"exist only on {TARGET}" in result["hint"]
    assert old.paused() == {
        "hourly": True,
        "hourly_no_catchup": False,
        "quiet": False,
        "manual_only": False,
        "never_ran": False,
    }
    assert all(new.paused().values())
    first_unpause = next(i for i, (env, _, paused) in enumerate(mwaa.log) if env == SOURCE)
    assert all(env == TARGET for env, _, _ in mwaa.log[:first_unpause])  # the new colour stops first
    assert ws.load().deployment.active_color is Color.BLUE


def test_rollback_without_runs_on_the_new_colour_unpauses_everything(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    for dag_id in ("a", "b"):
        mwaa.envs[SOURCE].dag(dag_id, paused=True)
        mwaa.envs[TARGET].dag(dag_id, paused=False)
    _went_live(ws, ["a", "b"])
    result = rollback(ws, ws.load(), mwaa, FakeRouting(), lambda e: None, LocalStore(ws.work_dir))  # type: ignore[arg-type]
    assert result["unpaused"] == ["a", "b"] and result["left_paused"] == {} and "hint" not in result
    assert mwaa.envs[SOURCE].paused() == {"a": False, "b": False}


# -- cleanup -------------------------------------------------------------------------------------------


class _FakeS3:
    def list_keys(self, bucket: str, prefix: str) -> list:
        return []


def test_cleanup_of_a_half_done_go_live_repauses_the_target_before_unpausing_the_source(
    ws, monkeypatch
) -> None:
    import mwaa_iac.workflows.cutover.soak as module

    monkeypatch.setattr(module, "remove_dr_files", lambda s3, bucket, path: [])
    mwaa = FakeMwaa(SOURCE, TARGET)
    mwaa.envs[SOURCE].dag("a", paused=True)
    mwaa.envs[TARGET].dag("a", paused=False)
    deleted: list[str] = []
    mwaa.delete_environment = deleted.append  # type: ignore[attr-defined]
    store = LocalStore(ws.work_dir)
    journal = Journal.start(store, JOURNAL, "cutover", {"to": "2.10.3", "source_color": "blue"})
    _done(journal, Step.RECORD_DAGS, {"dags": ["a"]})
    _done(journal, Step.PAUSE_SOURCE)
    journal.started(Step.GO_LIVE)
    journal.note(Step.GO_LIVE, routed=True)
    routing = FakeRouting()
    result = cleanup(ws, ws.load(), mwaa, _FakeS3(), lambda e: None, store, routing=routing)  # type: ignore[arg-type]
    assert mwaa.log == [(TARGET, "a", True), (SOURCE, "a", False)]
    assert routing.pointed == [SOURCE] and deleted == [TARGET]
    assert result["unpaused_on_source"] == 1 and result["repaused_on_target"] == 1


def test_the_cli_renders_the_freeze_events(capsys) -> None:
    from mwaa_iac.cli.progress import Progress as _Progress

    progress = _Progress(False)
    progress(
        {
            "event": "freeze.draining",
            "environment": SOURCE,
            "count": 7,
            "task_instances": ["a/r/t[0]"],
            "waited_s": 5,
        }
    )
    progress({"event": "freeze.drained", "environment": SOURCE, "waited_s": 10.0})
    progress({"event": "freeze.drain_forced", "environment": SOURCE, "may_run_twice": ["etl/r1/load[3]"]})
    progress(
        {
            "event": "freeze.aborted",
            "environment": SOURCE,
            "unpaused": 2,
            "target": TARGET,
            "repaused_on_target": 2,
            "routed_back": True,
            "redo": [Step.RECORD_DAGS],
        }
    )
    progress(
        {
            "event": "freeze.abort_failed",
            "dags": ["a"],
            "failed_on": TARGET,
            "error": "403",
            "unpaused_on_source": 0,
        }
    )
    progress.close()
    err = capsys.readouterr().err
    assert "etl/r1/load[3]" in err and "2 DAG(s) paused again on analytics-green" in err
    assert "could not give scheduling back: analytics-green: 403" in err


def test_a_failed_target_hop_in_a_single_pass_freeze_gives_scheduling_back(ws) -> None:
    """The hop's failure ends the journal (rolled-back): the source is unpaused all the same."""
    mwaa = FakeMwaa(SOURCE, TARGET)
    mwaa.envs[SOURCE].dag("a", paused=True)
    cutover, _ = _cutover(ws, mwaa, two_pass=False)
    journal = cutover.journal
    assert journal is not None
    _done(journal, Step.RECORD_DAGS, {"dags": ["a"]})
    _done(journal, Step.PAUSE_SOURCE)
    _done(journal, Step.DRAIN_SOURCE)
    journal.started("target-hop-1-2.10.3")
    journal.end("rolled-back")
    error = CutoverError("the update failed and was rolled back", hint="fix the cause")
    cutover.abort(error)
    assert mwaa.envs[SOURCE].paused() == {"a": False}
    assert "cannot be resumed (its journal ended: rolled-back)" in (error.hint or "")


def test_no_history_lists_the_catch_up_dags_that_would_run_every_interval(ws) -> None:
    mwaa = FakeMwaa(SOURCE, TARGET)
    source = mwaa.envs[SOURCE]
    source.dag("hourly_catchup", catchup=True)
    source.dag("latest_only", catchup=False)
    source.dag("paused_catchup", paused=True, catchup=True)
    source.dag("mwaa_iac_probe", catchup=True)
    cutover, _ = _cutover(ws, mwaa, no_history=True)
    assert [d["dag_id"] for d in cutover.catchup_without_history()] == ["hourly_catchup"]
    cutover.options.no_history = False
    assert cutover.catchup_without_history() == []
