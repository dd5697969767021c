# ruff: noqa: F811  (the fast suite's fixtures ws and world are imported and used as arguments)
"""`mwaa-iac status` (issue 26 §5): before, during (killed mid-freeze, running, aborted) and after a
cutover it says what each source says, each colour's version and status, where a workflow stands
and the next command; with the record reverted after go-live it flags the disagreement. The
cutovers run on the fast suite's fake world (tests/unit/test_cutover_fast.py); the verdict's own
rules run on synthetic journals."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import pytest

from mwaa_iac.cli.root import main
from mwaa_iac.cli.status import EXIT_CODES
from mwaa_iac.core.config import Color, Deployment
from mwaa_iac.core.cutover_steps import Step
from mwaa_iac.core.live import JOURNAL, RECORD, ROUTING, Claim
from mwaa_iac.core.overview import (
    ColourView,
    JournalRecord,
    LockView,
    Verdict,
    cutover_steps,
    frozen_since,
    overview,
    workflow_view,
)
from mwaa_iac.errors import ExitCode
from mwaa_iac.workflows.cutover.context import JOURNAL as CUTOVER_JOURNAL
from mwaa_iac.workflows.dr_runs import CutoverError
from mwaa_iac.workflows.journal import LOCK_NAME
from mwaa_iac.workflows.overview import read_overview
from mwaa_iac.workflows.state import LocalStore
from mwaa_iac.workspace import write_deployment
from tests.unit.test_cutover_fast import (  # noqa: F401  (ws and world are fixtures)
    SOURCE,
    TARGET,
    FakeMwaa,
    FakeRouting,
    Killed,
    World,
    _run,
    world,
    ws,
)


def _status(ws, world: World, now: float | None = None):
    return read_overview(
        "demo", ws.load(), FakeMwaa(world), FakeRouting(world), LocalStore(ws.work_dir), now=now
    )


# -- before, during, after a cutover on the fake world -------------------------------------------------


def test_before_a_cutover_blue_is_live_and_nothing_is_in_progress(ws, world) -> None:
    found = _status(ws, world)
    assert found.verdict is Verdict.SETTLED and found.live is Color.BLUE
    blue, green = found.colours
    assert (blue.name, blue.status, blue.version) == (SOURCE, "AVAILABLE", "2.9.2")
    assert green.name == TARGET and not green.exists
    assert found.workflows == ()
    assert found.next_command.startswith("mwaa-iac cutover --env demo --to VERSION --dry-run")
    assert EXIT_CODES[found.verdict] == ExitCode.OK


def test_killed_mid_freeze_says_where_it_stopped_how_long_blue_is_frozen_and_how_to_resume(ws, world) -> None:
    world.fail_in, world.kill = Step.DRAIN_SOURCE, True
    with pytest.raises(Killed):
        _run(ws, world)
    paused_at = next(
        e["at"] for e in _entries(ws) if e.get("step") == Step.PAUSE_SOURCE and e["event"] == "started"
    )
    found = _status(ws, world, now=paused_at + 125)
    assert found.verdict is Verdict.INTERRUPTED
    assert EXIT_CODES[found.verdict] == ExitCode.INTERRUPTED == 8
    (view,) = found.workflows
    assert view.workflow == "cutover" and view.state == "interrupted" and view.to == "2.10.3"
    assert view.current_step == view.next_step == Step.DRAIN_SOURCE and view.stage == "freeze"
    assert view.frozen_since == paused_at and view.frozen_s == pytest.approx(125)
    assert view.resume.startswith("continues drain-source, which had started")
    assert f"{SOURCE}'s DAGs stay paused until go-live" in view.resume
    assert found.next_command == "mwaa-iac cutover --resume --env demo --to 2.10.3"
    assert "frozen (DAGs paused) for 2m05s" in found.reason
    assert any("mwaa-iac cleanup --env demo" in note for note in found.notes)
    # green exists (created at blue's version, upgraded by pass 1) and is not live
    green = found.colours[1]
    assert green.exists and green.version == "2.10.3" and found.live is Color.BLUE


def test_a_lock_held_by_a_live_process_means_running_and_a_dead_one_interrupted(ws, world) -> None:
    world.fail_in, world.kill = Step.BACKUP_P2, True
    with pytest.raises(Killed):
        _run(ws, world)
    store = LocalStore(ws.work_dir)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "workflow": "cutover", "since": time.time()}
    assert store.create(LOCK_NAME, json.dumps(holder))
    found = _status(ws, world)
    assert found.verdict is Verdict.RUNNING and EXIT_CODES[found.verdict] == ExitCode.RUNNING == 7
    assert found.workflows[0].state == "running" and "backup-p2" in found.reason
    assert found.next_command.startswith("mwaa-iac status --env demo")

    store.delete(LOCK_NAME)
    assert store.create(LOCK_NAME, json.dumps({**holder, "pid": _dead_pid()}))
    found = _status(ws, world)
    assert found.verdict is Verdict.INTERRUPTED
    assert any("its process is gone: --break-lock" in note for note in found.notes)


def test_an_aborted_freeze_says_resume_freezes_again(ws, world) -> None:
    source = world.envs[SOURCE].airflow
    source.tis.append({"dag_id": "etl_orders", "dag_run_id": "r1", "task_id": "load", "state": "running"})
    with pytest.raises(CutoverError):
        _run(ws, world, drain_timeout_seconds=20)
    found = _status(ws, world)
    (view,) = found.workflows
    assert found.verdict is Verdict.INTERRUPTED and view.aborted and view.frozen_s is None
    assert view.next_step == Step.ARM_COPIERS  # pass 2's copiers are armed again, then the freeze
    assert view.resume.startswith(f"pauses {SOURCE} again and takes a fresh backup")


def test_after_the_cutover_green_is_live_and_the_next_command_is_cleanup(ws, world) -> None:
    _run(ws, world)
    found = _status(ws, world)
    assert found.verdict is Verdict.SETTLED and found.live is Color.GREEN
    assert [c.color for c in found.claims if c.color is not None] == [Color.GREEN] * 3
    assert found.workflows[0].state == "finished" and found.workflows[0].outcome == "succeeded"
    assert found.next_command.startswith("mwaa-iac cleanup --env demo")
    assert "mwaa-iac rollback --env demo" in found.next_command


def test_after_a_rollback_blue_is_live_and_the_next_command_deletes_the_rolled_back_target(ws, world) -> None:
    from mwaa_iac.workflows.cutover import rollback

    _run(ws, world)
    rollback(ws, ws.load(), FakeMwaa(world), FakeRouting(world), lambda e: None, LocalStore(ws.work_dir))  # type: ignore[arg-type]
    found = _status(ws, world)
    assert found.verdict is Verdict.SETTLED and found.live is Color.BLUE
    assert found.workflows[0].rolled_back
    assert "rolled back" in found.reason
    assert found.next_command.startswith(f"mwaa-iac cleanup --env demo  # deletes {TARGET}")


def test_the_record_reverted_after_go_live_is_flagged_with_the_fix(ws, world) -> None:
    _run(ws, world)
    write_deployment(ws.config_file, Deployment(active_color=Color.BLUE, blue="2.9.2", green=None))
    found = _status(ws, world)
    assert found.verdict is Verdict.DISAGREE and found.live is None
    assert EXIT_CODES[found.verdict] == ExitCode.REFUSED
    assert "deployment record (mwaa.yaml): blue" in found.reason
    assert "routing (SSM parameter): green" in found.reason
    assert "last cutover (journal): green" in found.reason
    assert found.next_command == "mwaa-iac cutover --resume --env demo"


def test_an_unavailable_colour_needs_a_human(ws, world) -> None:
    world.envs[SOURCE].status = "UNAVAILABLE"
    found = _status(ws, world)
    assert found.verdict is Verdict.NEEDS_HUMAN and EXIT_CODES[found.verdict] == ExitCode.NEEDS_HUMAN
    assert found.next_command.startswith(f"aws mwaa get-environment --name {SOURCE}")


# -- through the CLI -----------------------------------------------------------------------------------


def test_the_cli_prints_one_json_object_and_exits_with_the_verdicts_code(
    ws, world, monkeypatch, capsys
) -> None:
    world.fail_in, world.kill = Step.PAUSE_SOURCE, True
    with pytest.raises(Killed):
        _run(ws, world)
    monkeypatch.setattr("mwaa_iac.adapters.mwaa.MwaaClient", lambda region=None: FakeMwaa(world))
    monkeypatch.setattr("mwaa_iac.adapters.routing.Routing", lambda region=None: FakeRouting(world))
    root = str(ws.root)
    code = main(["status", "--env", "demo", "--root", root, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == data["exit_code"] == 8
    assert data["verdict"] == "interrupted" and data["live"] == "blue" and data["sources_agree"]
    assert {c["source"] for c in data["claims"]} == {"record", "routing", "journal"}
    assert [c["environment"] for c in data["colours"]] == [SOURCE, TARGET]
    assert data["workflows"][0]["current_step"] == "pause-source"
    assert data["next_command"] == "mwaa-iac cutover --resume --env demo --to 2.10.3"

    code = main(["--no-color", "status", "--env", "demo", "--root", root])
    text = capsys.readouterr().out
    assert code == 8
    assert "deployment record (mwaa.yaml): blue" in text and "in step: pause-source (freeze)" in text
    assert "next: mwaa-iac cutover --resume --env demo --to 2.10.3" in text


# -- the rules on synthetic journals ---------------------------------------------------------------


def _entry(at: float, event: str, step: str | None = None, note: bool = False, **data: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": at, "event": event, "data": data}
    if step:
        entry["step"] = step
    if note:
        entry["note"] = True
    return entry


PLAN = {"history": True, "two_pass": True, "hops": [["in-place", "2.9.2", "2.10.3", "r"]]}
BEGIN = _entry(0, "begin", workflow="cutover")


def test_the_step_list_follows_the_plan_the_preflight_recorded() -> None:
    assert cutover_steps([BEGIN]) == ["preflight"]
    steps = cutover_steps([BEGIN, _entry(1, "done", "preflight", result=PLAN)])
    assert "target-hop-1-2.10.3" in steps and Step.HEALTH_GATE_TARGET not in steps
    single = cutover_steps([BEGIN, _entry(1, "done", "preflight", result={**PLAN, "two_pass": False})])
    assert single.index(Step.PAUSE_SOURCE) < single.index(Step.CREATE_TARGET)


def test_frozen_since_is_the_last_pause_attempt_until_go_live_or_an_abort() -> None:
    entries = [
        BEGIN,
        _entry(10, "started", Step.PAUSE_SOURCE),
        _entry(11, "started", Step.PAUSE_SOURCE, note=True),
        _entry(12, "done", Step.PAUSE_SOURCE),
    ]
    assert frozen_since(entries) == 10
    aborted = [*entries, _entry(20, "started", Step.PAUSE_SOURCE, note=True, aborted=True)]
    assert frozen_since(aborted) is None
    again = [*aborted, _entry(30, "started", Step.PAUSE_SOURCE)]
    assert frozen_since(again) == 30
    assert frozen_since([*again, _entry(40, "done", Step.GO_LIVE)]) is None


def test_a_half_done_go_live_is_finished_by_resume() -> None:
    entries = [
        BEGIN,
        _entry(1, "done", "preflight", result=PLAN),
        *(
            _entry(2, "done", s)
            for s in cutover_steps([BEGIN, _entry(1, "done", "preflight", result=PLAN)])[1:-2]
        ),
        _entry(3, "started", Step.GO_LIVE),
    ]
    record = JournalRecord("cutover", "r1", {"to": "2.10.3", "source_color": "blue"}, entries)
    view = workflow_view(record, lock=None, now=100, source="a-blue", target="a-green")
    assert (
        view.next_step == Step.GO_LIVE
        and view.resume == "finishes the go-live on a-green (it stopped half-way)"
    )


def test_a_finished_journal_is_not_in_progress_even_with_a_lock_of_another_workflow() -> None:
    record = JournalRecord("upgrade", "u1", {"to": "2.10.3"}, [BEGIN, _entry(5, "end", outcome="succeeded")])
    lock = LockView({"workflow": "cutover", "pid": 1, "host": "elsewhere"}, stale=False)
    claims = [Claim(RECORD, Color.BLUE, "x"), Claim(ROUTING, Color.BLUE, "y"), Claim(JOURNAL, None, "none")]
    colours = [ColourView(Color.BLUE, "a-blue", "2.10.3", True, "AVAILABLE", "2.10.3")]
    found = overview("a", claims, colours, [record], lock, now=10, record_color=Color.BLUE)
    assert found.verdict is Verdict.SETTLED and found.workflows[0].resume.startswith(
        "nothing: the upgrade finished"
    )
    assert any("the lock is held by cutover" in n for n in found.notes)


def test_every_verdict_has_an_exit_code_and_the_readme_lists_it() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    for verdict in Verdict:
        assert f"| {int(EXIT_CODES[verdict])} |" in readme, verdict


def _entries(ws) -> list[dict[str, Any]]:
    text = (ws.work_dir / CUTOVER_JOURNAL).read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_every_verdict_has_an_exit_code_and_a_style() -> None:
    from mwaa_iac.cli.status import _STYLE

    assert set(EXIT_CODES) == set(_STYLE) == {str(v) for v in Verdict}


def test_an_interrupted_upgrade_says_its_hop_and_the_resume_command() -> None:
    entries = [
        _entry(0, "begin", workflow="upgrade"),
        _entry(1, "started", "preflight"),
        _entry(2, "done", "preflight", **{"from": "2.9.2", "hops": ["2.10.3", "2.11.2"]}),
        _entry(3, "done", "backup", location="s3://b/p"),
        _entry(4, "started", "hop-1-2.10.3", from_version="2.9.2"),
        _entry(5, "started", "hop-1-2.10.3", note=True, update_issued=True),
    ]
    record = JournalRecord("upgrade", "u1", {"to": "2.11.2", "env": "a"}, entries)
    claims = [Claim(RECORD, Color.BLUE, "x"), Claim(ROUTING, Color.BLUE, "y"), Claim(JOURNAL, None, "none")]
    colours = [
        ColourView(Color.BLUE, "a-blue", "2.9.2", True, "UPDATING", "2.9.2"),
        ColourView(Color.GREEN, "a-green", None, False),
    ]
    found = overview("a", claims, colours, [record], None, now=10, record_color=Color.BLUE)
    (view,) = found.workflows
    assert found.verdict is Verdict.INTERRUPTED and view.current_step == "hop-1-2.10.3"
    assert view.resume == (
        "continues hop-1-2.10.3, which had started (an UpdateEnvironment already issued is watched, "
        "not issued again)"
    )
    assert view.frozen_s is None and view.stage is None
    assert found.next_command == "mwaa-iac upgrade --resume --env a --to 2.11.2"
