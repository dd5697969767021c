# ruff: noqa: F811  (the fast suite's fixtures ws and world are imported and used as arguments)
"""Never act on the live colour by mistake (issue 22 §1, §3): with the deployment record reverted
after go-live — as a lost runner or a rejected GitOps push leaves it — every command that would
delete, overwrite, pause or upgrade a colour refuses, naming what routing, the journal and the record
say, and changes nothing; ``cutover --resume`` writes the record again. A go-live runs everything
that can fail before the unpause; an undone go-live waits for what the target started and the next
pass 2 copies everything.

Runs on the fast suite's fake world (tests/unit/test_cutover_fast.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mwaa_iac.core.config import Color, Deployment
from mwaa_iac.core.cutover_steps import COPY_STEPS, PASS_2, Step
from mwaa_iac.core.live import JOURNAL as JOURNAL_SOURCE
from mwaa_iac.core.live import RECORD, ROUTING, Claim, Role, journal_claim, refusal
from mwaa_iac.errors import ExitCode, LiveColourError
from mwaa_iac.workflows.backup import restore_backup
from mwaa_iac.workflows.cutover import cleanup, rollback
from mwaa_iac.workflows.state import LocalStore
from mwaa_iac.workflows.upgrade import Upgrade, UpgradeOptions
from mwaa_iac.workspace import write_deployment
from tests.unit.test_cutover_fast import (  # noqa: F401  (ws and world are fixtures)
    SOURCE,
    TARGET,
    USER_DAGS,
    FakeMwaa,
    FakeRouting,
    FakeS3,
    FakeS3Client,
    Injected,
    Killed,
    World,
    _assert_live_on_target,
    _backup_confs,
    _cutover,
    _journal,
    _run,
    half_done_unpause,
    world,
    ws,
)

BLUE_ONLY = Deployment(active_color=Color.BLUE, blue="2.9.2", green=None)


def _revert_record(ws) -> None:
    """mwaa.yaml as it was before go-live (the runner that wrote it was lost)."""
    write_deployment(ws.config_file, BLUE_ONLY)


def _live_after_go_live_with_the_record_reverted(ws, world: World) -> None:
    """Killed after go-live (in retire-dr-dags), resumed by a runner whose checkout holds the old
    record: on the old code the resume finished "succeeded" with the record still naming blue."""
    world.fail_in, world.kill = Step.RETIRE_DR_DAGS, True
    with pytest.raises(Killed):
        _run(ws, world)
    _revert_record(ws)


def _cleanup(ws, world: World, **kwargs: Any) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    s3 = FakeS3(client=FakeS3Client(world))
    store = LocalStore(ws.work_dir)
    result = cleanup(
        ws, ws.load(), FakeMwaa(world), s3, events.append, store, routing=FakeRouting(world), **kwargs
    )  # type: ignore[arg-type]
    return {**result, "events": events}


def _assert_refusal_names_every_source(error: LiveColourError) -> None:
    text = error.message
    assert "routing (SSM parameter): green" in text
    assert "last cutover (journal): green" in text
    assert "deployment record (mwaa.yaml): blue" in text
    assert error.exit_code == ExitCode.REFUSED == 6
    assert "cutover --resume" in (error.hint or "") and "nothing was changed" in (error.hint or "")


# -- the decision -----------------------------------------------------------------------------------


def test_the_decision_refuses_a_colour_any_source_names_live() -> None:
    record = Claim(RECORD, Color.BLUE, "record")
    routed_green = Claim(ROUTING, Color.GREEN, "ssm")
    went_live = journal_claim(
        run_id="r1", source_color=Color.BLUE, go_live="done", go_live_aborted=False, rollback=None
    )
    assert went_live.color is Color.GREEN
    claims = [record, routed_green, went_live]
    # delete the record's inactive colour (green): routing and the journal say it is live
    assert refusal("delete", Color.GREEN, Role.NOT_LIVE, claims, "demo") is not None
    # act on the record's active colour (blue) as the live one: the others disagree
    assert refusal("upgrade", Color.BLUE, Role.LIVE, claims, "demo") is not None
    # the same with every source agreeing on green: green may be upgraded, blue deleted
    agreed = [Claim(RECORD, Color.GREEN, "record"), routed_green, went_live]
    assert refusal("upgrade", Color.GREEN, Role.LIVE, agreed, "demo") is None
    assert refusal("delete", Color.BLUE, Role.NOT_LIVE, agreed, "demo") is None
    # no opinion (no cutover, routing never set) is no objection
    quiet = [
        Claim(RECORD, Color.BLUE, "r"),
        Claim(ROUTING, None, "unset"),
        journal_claim(run_id=None, source_color=None, go_live=None, go_live_aborted=False, rollback=None),
    ]
    assert refusal("delete", Color.GREEN, Role.NOT_LIVE, quiet, "demo") is None


def test_a_half_done_go_live_or_rollback_is_uncertain_and_refuses_everything() -> None:
    half = journal_claim(
        run_id="r1", source_color=Color.BLUE, go_live="started", go_live_aborted=False, rollback=None
    )
    assert half.uncertain and half.source == JOURNAL_SOURCE
    undone = journal_claim(
        run_id="r1", source_color=Color.BLUE, go_live="started", go_live_aborted=True, rollback=None
    )
    assert undone.color is Color.BLUE and not undone.uncertain
    rolled = journal_claim(
        run_id="r1", source_color=Color.BLUE, go_live="done", go_live_aborted=False, rollback="done"
    )
    assert rolled.color is Color.BLUE
    for color in Color:
        assert (
            refusal("delete", color, Role.NOT_LIVE, [Claim(RECORD, Color.BLUE, "r"), half], "demo")
            is not None
        )


# -- each command, with the record reverted after go-live ----------------------------------------


def test_cleanup_refuses_to_delete_the_live_colour_and_deletes_nothing(ws, world) -> None:
    _live_after_go_live_with_the_record_reverted(ws, world)
    changes = len(world.changes)
    with pytest.raises(LiveColourError) as caught:
        _cleanup(ws, world)
    _assert_refusal_names_every_source(caught.value)
    assert TARGET in world.envs and SOURCE in world.envs
    assert world.changes[changes:] == []
    assert _journal(ws).finished is False  # the cutover can still be resumed


def test_restore_refuses_to_overwrite_the_live_colour(ws, world) -> None:
    _live_after_go_live_with_the_record_reverted(ws, world)
    changes = len(world.changes)
    with pytest.raises(LiveColourError) as caught:
        restore_backup(
            ws.load(),
            "s3://analytics-mwaa-dr-backups/mwaa-dr/analytics/x/p1",
            mwaa=FakeMwaa(world),  # type: ignore[arg-type]
            s3=FakeS3(client=FakeS3Client(world)),
            emit=lambda e: None,
            routing=FakeRouting(world),
            store=LocalStore(ws.work_dir),
            env="demo",
        )
    _assert_refusal_names_every_source(caught.value)
    assert world.changes[changes:] == []


def test_rollback_refuses_when_the_record_disagrees(ws, world) -> None:
    _live_after_go_live_with_the_record_reverted(ws, world)
    changes = len(world.changes)
    with pytest.raises(LiveColourError) as caught:
        rollback(ws, ws.load(), FakeMwaa(world), FakeRouting(world), lambda e: None, LocalStore(ws.work_dir))  # type: ignore[arg-type]
    assert "the sources disagree" in caught.value.message
    assert world.changes[changes:] == []


def test_upgrade_refuses_to_upgrade_a_colour_that_is_not_live(ws, world) -> None:
    _live_after_go_live_with_the_record_reverted(ws, world)
    changes = len(world.changes)
    upgrade = Upgrade(
        ws,
        ws.load(),
        UpgradeOptions(to="2.10.3", engine="api"),
        FakeMwaa(world),  # type: ignore[arg-type]
        state=LocalStore(ws.work_dir),
        routing=FakeRouting(world),
    )
    with pytest.raises(LiveColourError) as caught:
        upgrade.run()
    _assert_refusal_names_every_source(caught.value)
    assert world.changes[changes:] == [] and world.envs[SOURCE].updates == []


def test_a_new_cutover_refuses_and_its_dry_run_says_why(ws, world) -> None:
    _run(ws, world)
    _revert_record(ws)
    changes = len(world.changes)
    for dry_run in (True, False):
        with pytest.raises(LiveColourError) as caught:
            _run(ws, world, dry_run=dry_run)
        _assert_refusal_names_every_source(caught.value)
    assert world.changes[changes:] == []


# -- the fix: --resume writes the record again -------------------------------------------------------


def test_resume_after_go_live_writes_the_reverted_record_again(ws, world) -> None:
    _live_after_go_live_with_the_record_reverted(ws, world)
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)  # the record says green at 2.10.3 again
    result = _cleanup(ws, world)
    assert result["retired"] == SOURCE and TARGET in world.envs


def test_resume_of_a_finished_cutover_writes_the_record_again_and_cleanup_then_retires_the_old_colour(
    ws, world
) -> None:
    _run(ws, world)
    _revert_record(ws)  # the GitOps push of the record was rejected
    report = _run(ws, world, resume=True)
    assert report["record_synced"] == {
        "run_id": _journal(ws).run_id,
        "active_color": "green",
        "was": "blue",
        "versions": {"blue": "2.9.2", "green": "2.10.3"},
    }
    assert ws.load().deployment.active_color is Color.GREEN
    with pytest.raises(Exception, match="nothing to resume"):
        _run(ws, world, resume=True)  # agrees now: nothing left to do
    assert _cleanup(ws, world)["retired"] == SOURCE


def test_after_a_rollback_cleanup_retires_the_new_colour(ws, world) -> None:
    _run(ws, world)
    rollback(ws, ws.load(), FakeMwaa(world), FakeRouting(world), lambda e: None, LocalStore(ws.work_dir))  # type: ignore[arg-type]
    assert _journal(ws).state(Step.ROLLBACK) == "done"
    result = _cleanup(ws, world)
    assert result["retired"] == TARGET and SOURCE in world.envs


def test_break_glass_goes_on_and_says_so_loudly(ws, world) -> None:
    _live_after_go_live_with_the_record_reverted(ws, world)
    result = _cleanup(ws, world, break_glass=True)
    assert result["retired"] == TARGET
    override = [e for e in result["events"] if e["event"] == "live.override"]
    assert override and override[0]["environment"] == TARGET
    assert {c["source"] for c in override[0]["claims"]} == {"record", "routing", "journal"}


# -- go-live: nothing that can fail after the unpause; an undone go-live leaves nothing twice --------


def test_go_live_fails_before_any_dag_is_unpaused_on_the_target(ws, world) -> None:
    """Routing cannot be written: the target never scheduled anything (the old go-live unpaused
    first and failed after)."""

    class NoWrite(FakeRouting):
        def point(self, parameter: str, **kwargs: Any) -> None:
            if kwargs["name"] == TARGET:
                raise Injected("AccessDenied: ssm:PutParameter")
            super().point(parameter, **kwargs)

    cutover = _cutover(ws, world)
    cutover.routing = NoWrite(world)  # type: ignore[assignment]
    with pytest.raises(Injected):
        cutover.run()
    target = world.envs[TARGET].airflow
    assert [flip for flip in target.flips if flip[0] in USER_DAGS and flip[1] is False] == []
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS  # given back


def test_an_undone_go_live_waits_for_the_target_lists_what_may_run_twice_and_copies_pass_2_in_full(
    ws, world, monkeypatch
) -> None:
    started = {"dag_id": "etl_orders", "dag_run_id": "scheduled__x", "task_id": "load", "state": "running"}
    half_done_unpause(monkeypatch, world, then=lambda airflow: airflow.tis.append(dict(started)))
    events: list[dict[str, Any]] = []
    world_emit = world.emit
    world.emit = lambda e: (events.append(e), world_emit(e))[1]  # type: ignore[method-assign]
    with pytest.raises(Injected):
        _run(ws, world, drain_timeout_seconds=30)
    name = "etl_orders/scheduled__x/load"
    drained = [e for e in events if e["event"] == "freeze.target_drained"]
    assert drained and drained[0]["may_run_twice"] == [name] and drained[0]["waited_s"] > 30
    aborted = [e for e in events if e["event"] == "freeze.aborted"]
    assert aborted[0]["may_run_twice"] == [name]
    journal = _journal(ws)
    assert journal.data(Step.GO_LIVE)["may_run_twice"] == [name]
    assert journal.data(COPY_STEPS[PASS_2][0])["full"] is True
    world.envs[TARGET].airflow.tis.clear()
    report = _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)
    assert report["may_run_twice"] == [name]
    assert _backup_confs(world)[-1].get("since") is None  # the fresh pass-2 backup is full
    assert report["pass2"]["mode"] == "full" and "undone go-live" in report["pass2"]["fallback"]


def test_go_live_prepares_the_record_before_the_unpause(ws, world, monkeypatch, tmp_path: Path) -> None:
    """A record that cannot be written fails the go-live before any DAG is unpaused."""
    import mwaa_iac.workflows.cutover.context as cutover_module

    def unwritable(path: Path, deployment: Deployment) -> Path:
        raise Injected(f"cannot write {path.name}")

    real = cutover_module.prepare_deployment
    monkeypatch.setattr(
        cutover_module,
        "prepare_deployment",
        lambda p, d: unwritable(p, d) if d.active_color is Color.GREEN else real(p, d),
    )
    with pytest.raises(Injected):
        _run(ws, world)
    target = world.envs[TARGET].airflow
    assert [f for f in target.flips if f[0] in USER_DAGS and f[1] is False] == []
    assert world.routing[-1:] in ([], [SOURCE])


def test_a_dr_dag_record_parsed_again_after_go_live_is_deleted_again(ws, world, monkeypatch) -> None:
    """The target's copy of the DAG folder still holds the DR DAG files for a while after they are
    removed from S3: a parse writes a record again, and retire-dr-dags deletes it again."""
    from mwaa_iac.core import dr
    from tests.unit.test_cutover_fast import FakeAirflow

    handle = FakeAirflow.handle
    parsed_again: list[str] = []

    def reparsing(
        self: FakeAirflow, method: str, path: str, query: dict[str, Any], body: Any
    ) -> tuple[int, Any]:
        answer = handle(self, method, path, query, body)
        if (
            self.name == TARGET
            and method == "DELETE"
            and path == f"/dags/{dr.BACKUP_DAG_ID}"
            and not parsed_again
        ):
            parsed_again.append(path)
            self.dags[dr.BACKUP_DAG_ID] = {"dag_id": dr.BACKUP_DAG_ID, "is_paused": False, "is_active": True}
        return answer

    monkeypatch.setattr(FakeAirflow, "handle", reparsing)
    _run(ws, world)
    _assert_live_on_target(ws, world)  # no record of the tool's DAGs on the live colour
    assert parsed_again and _journal(ws).data(Step.RETIRE_DR_DAGS)["result"]["deleted_again"] == 1
