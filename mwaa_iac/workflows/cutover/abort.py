"""Giving scheduling back: a cutover that fails inside its freeze (and `cleanup` abandoning one)
undoes a half-done go-live on the target, then unpauses the recorded DAGs on the source, and marks
the freeze's steps to run again; every failure's hint says what state each colour is in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.core.cutover_steps import (
    COPY_STEPS,
    FREEZE_STEPS,
    PASS_2,
    Step,
    is_freeze_hop,
    redone_after_abort,
)
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.cutover.context import Context
from mwaa_iac.workflows.cutover.copy import Copy
from mwaa_iac.workflows.cutover.db_pause import (
    pause_signalled,
    recorded_dags,
    settle_pause_record,
    wait_out_unpause,
)
from mwaa_iac.workflows.cutover.freeze import Freeze, hold
from mwaa_iac.workflows.journal import Journal
from mwaa_iac.workflows.preflight import PreflightError


class Abort:
    def __init__(self, ctx: Context, freeze: Freeze) -> None:
        self.ctx = ctx
        self.freeze = freeze

    def __call__(self, error: BaseException | None = None) -> None:
        """A step failed. Inside the freeze (pause-source started, go-live not done) give scheduling
        back to the source: a half-done go-live is undone first (the recorded DAGs paused again on
        the target, routing pointed back), then the recorded DAGs are unpaused on the source; the
        freeze's steps and pass 2's copy steps that ran are marked aborted, so that --resume pauses
        again and takes a fresh backup (runs made on the source meanwhile reach the target). In
        every case the error's hint is completed with the state each colour is in."""
        ctx = self.ctx
        journal = ctx.opened
        if journal is None:
            return
        # A journal may already be closed here (by an older release's failed hop): scheduling is
        # given back all the same, and the hint says that the cutover cannot be resumed.
        live = journal.state(Step.GO_LIVE) == "done"
        if not freeze_begun(journal) or live:
            explain(error, self.state_text(live))
            return
        if upgraded_in_freeze(journal):
            # The target is past an upgrade inside the freeze (into 3.x): pass 2 cannot be taken into
            # it again, so giving scheduling back would strand it. The freeze holds for --resume.
            ctx.emit(event(EventKind.FREEZE_HELD, environment=ctx.source, target=ctx.target))
            explain(error, self.held_text())
            return
        half_done_go_live = go_live_half_done(journal)
        settle_pause_record(journal, ctx.s3, ctx.config.dr.backup_bucket, ctx.sleep, ctx.clock)
        if half_done_go_live:
            wait_out_unpause(journal, ctx.sleep)
        undo = give_back(
            journal,
            ctx.api(ctx.source),
            ctx.api(ctx.target),
            self.freeze.route_back,
            self.freeze.drain_target,
        )
        if undo.get("failed_on") == ctx.target:
            # The source stays paused so that the two colours never run the same DAGs: --resume
            # continues from the failed step (the journal is left as it is).
            ctx.emit(event(EventKind.FREEZE_ABORT_FAILED, **undo))
            explain(
                error,
                f"state: the half-done go-live could not be undone on {ctx.target} ({undo['error']}): "
                f"{ctx.target} may schedule some of the recorded DAGs; {ctx.source}'s DAGs stay paused. "
                + self.next_text("finishes the go-live")
                + f"; to give up instead, pause {', '.join(undo['dags'])} on {ctx.target} and unpause them "
                f"on {ctx.source}",
            )
            return
        Copy(ctx).cancel_armed()  # copiers that have not gone do nothing; --resume arms again
        steps = aborted_steps(journal, keep_recorded=bool(undo.get("failed_on")))
        for step in steps:
            journal.note(step, aborted=True)
        if half_done_go_live:
            journal.note(
                Step.GO_LIVE,
                aborted=True,
                routed=False,
                unpausing=False,
                may_run_twice=sorted(
                    set(journal.data(Step.GO_LIVE).get("may_run_twice", [])) | set(undo["may_run_twice"])
                ),
            )
        if undo["target_scheduled"]:
            # The target scheduled for a while: its rows of those DAGs changed under the delta's
            # feet. The next pass 2 copies everything (never counts only).
            journal.note(
                COPY_STEPS[PASS_2][0],
                full=True,
                full_reason=f"the undone go-live let {ctx.target} schedule: pass 2 copies everything",
            )
        if undo.get("failed_on"):
            ctx.emit(event(EventKind.FREEZE_ABORT_FAILED, **undo))
            explain(
                error,
                f"state: {ctx.source}'s DAGs could not all be unpaused ({undo['error']}): "
                f"{undo['unpaused_on_source']} of {len(undo['dags'])} are scheduling again there; "
                f"{ctx.target} is not live and schedules nothing. "
                + self.next_text(f"pauses {ctx.source} again and takes a fresh backup")
                + f" (to schedule meanwhile, unpause {', '.join(undo['dags'])} on {ctx.source})",
            )
            return
        ctx.emit(
            event(
                EventKind.FREEZE_ABORTED,
                environment=ctx.source,
                unpaused=undo["unpaused_on_source"],
                target=ctx.target,
                repaused_on_target=undo["repaused_on_target"],
                routed_back=undo["routed_back"],
                may_run_twice=undo["may_run_twice"],
                redo=steps,
            )
        )
        explain(error, self.state_text(False, aborted=undo))

    def state_text(self, live: bool, aborted: dict[str, Any] | None = None) -> str:
        """What state each colour is in after a failure, and what --resume does."""
        ctx = self.ctx
        journal = ctx.journal
        if live:
            return (
                f"state: {ctx.target} is live (routing points at it) and schedules the recorded DAGs; "
                f"{ctx.source}'s stay paused. `mwaa-iac cutover --resume` finishes the last steps"
            )
        if journal.state(Step.CREATE_TARGET) is None:
            target = f"{ctx.target} was not created"
        else:
            target = f"{ctx.target} is not live: routing points at {ctx.source} and its DAGs are paused"
        if aborted is None:
            return f"state: {ctx.source} is untouched and keeps scheduling; {target}. " + self.next_text(
                "continues from the failed step"
            )
        undone = ""
        if aborted["repaused_on_target"]:
            undone = (
                f" (the half-done go-live was undone: {aborted['repaused_on_target']} DAG(s) paused again on "
                f"{ctx.target}{', routing pointed back' if aborted['routed_back'] else ''})"
            )
        if ctx.result(Step.PREFLIGHT).get("two_pass"):
            resume = "pauses it again and takes a fresh backup (runs made meanwhile reach the target)"
        elif journal.state(Step.BACKUP_P1) == "done":
            resume = (
                "pauses it again and continues; single pass: the copy is not taken again, so runs made on "
                f"{ctx.source} until then do not reach {ctx.target}"
            )
        else:
            resume = "pauses it again and continues"
        return (
            f"state: the freeze was aborted: {ctx.source} schedules again ({aborted['unpaused_on_source']} "
            f"DAG(s) unpaused){undone}; {target}. " + self.next_text(resume)
        )

    def held_text(self) -> str:
        """A failure after the target's upgrade inside the freeze: the freeze holds."""
        ctx = self.ctx
        try:  # the hint must not fail in its turn (the original error is what the user needs)
            version = ctx.mwaa.get_environment(ctx.target).get("AirflowVersion", ctx.to_version)
        except MwaaIacError:
            version = ctx.to_version
        return (
            f"state: the freeze holds: {ctx.source}'s DAGs stay paused; {ctx.target} runs Airflow {version} "
            f"with {ctx.source}'s history up to the freeze and is not live (a copy cannot be taken into "
            f"{version} again, so scheduling is not given back on its own). Fix the cause and "
            f"`mwaa-iac cutover --resume` continues to go-live; `mwaa-iac cleanup` gives scheduling back "
            f"to {ctx.source} and deletes {ctx.target} (a cutover then starts over)"
        )

    def next_text(self, resume: str) -> str:
        """What the user can do next: resume (saying what that does) or abandon."""
        ctx = self.ctx
        end = next((e for e in reversed(ctx.journal.entries) if e.get("event") == "end"), None)
        if end is not None:
            return (
                f"This cutover cannot be resumed (its journal ended: {end.get('outcome')}): `mwaa-iac "
                f"cleanup` deletes {ctx.target}, then run the cutover again"
            )
        return (
            f"`mwaa-iac cutover --resume` {resume}; `mwaa-iac cleanup` abandons the cutover and deletes "
            f"{ctx.target}"
        )


def _last(journal: Journal, step: str) -> dict[str, Any] | None:
    return next((e for e in reversed(journal.entries) if e.get("step") == step), None)


def freeze_begun(journal: Journal) -> bool:
    """The source's DAGs are (being) paused: pause-source started or done, and not undone since,
    or the armed backup copier was signalled to pause them (record-dags)."""
    last = _last(journal, Step.PAUSE_SOURCE)
    if last is not None and not last.get("data", {}).get("aborted"):
        return True
    return pause_signalled(journal) is not None


def upgraded_in_freeze(journal: Journal) -> bool:
    """Whether the target was (or may have been) upgraded inside the freeze: a freeze hop done, or
    issued and not known to have failed (MWAA rolled a failed update back: it may be taken again)."""
    for step in dict.fromkeys(e.get("step", "") for e in journal.entries):
        if not is_freeze_hop(step):
            continue
        if journal.state(step) == "done" or journal.data(step).get("update_issued"):
            return True
    return False


def go_live_half_done(journal: Journal) -> bool:
    """go-live started (some DAGs may be unpaused on the target) and neither finished nor undone."""
    last = _last(journal, Step.GO_LIVE)
    return last is not None and last.get("event") == "started" and not last.get("data", {}).get("aborted")


def target_scheduled(journal: Journal) -> bool:
    """Whether the go-live in progress had begun to unpause DAGs on the target (it may have run
    task instances and changed their DAGs' rows there)."""
    return go_live_half_done(journal) and bool(journal.data(Step.GO_LIVE).get("unpausing"))


def give_back(
    journal: Journal,
    source: AirflowApi,
    target: AirflowApi,
    route_back: Callable[[], None],
    drain_target: Callable[[AirflowApi], dict[str, Any]],
) -> dict[str, Any]:
    """Give scheduling back to the source of an unfinished freeze. A half-done go-live is undone
    first (the recorded DAGs paused again on the target, routing pointed back if it may have been
    flipped, and — when the unpause had begun — the task instances the target started waited for
    with ``drain_target``; those still executing are listed as ``may_run_twice``), so that the two
    colours never schedule the same DAGs; then the recorded DAGs, and only they, are unpaused on
    the source (those paused before the freeze stay paused). Stops at the first failure:
    ``failed_on`` names the environment and ``error`` says why."""
    dags = recorded_dags(journal)
    result: dict[str, Any] = {
        "dags": dags,
        "repaused_on_target": 0,
        "routed_back": False,
        "unpaused_on_source": 0,
        "target_scheduled": False,
        "may_run_twice": [],
    }
    # A DAG that is not there schedules nothing (missing_ok); a failure part-way counts the DAGs
    # known to be done (the error's bulk_done).
    if go_live_half_done(journal):
        try:
            target.set_paused_many(dags, True, missing_ok=True)
            result["repaused_on_target"] = len(dags)
            if journal.data(Step.GO_LIVE).get("hold_moved"):
                hold(target, source)
            if journal.data(Step.GO_LIVE).get("routed"):
                route_back()
                result["routed_back"] = True
            if target_scheduled(journal):
                result["target_scheduled"] = True
                result["may_run_twice"] = drain_target(target)["may_run_twice"]
        except MwaaIacError as exc:
            result["repaused_on_target"] = _done_before(exc)
            return {**result, "failed_on": target.environment, "error": exc.message}
    try:
        source.set_paused_many(dags, False, missing_ok=True)
        result["unpaused_on_source"] = len(dags)
    except MwaaIacError as exc:
        result["unpaused_on_source"] = _done_before(exc)
        return {**result, "failed_on": source.environment, "error": exc.message}
    return result


def _done_before(exc: MwaaIacError) -> int:
    """How many DAGs a failed AirflowApi.set_paused_many had set (or found set) before it failed."""
    done = getattr(exc, "bulk_done", None)
    return len(done) if done is not None else 0


def aborted_steps(journal: Journal, *, keep_recorded: bool = False) -> list[str]:
    """The steps an aborted freeze must run again: the freeze's own and pass 2's copy steps that ran
    inside it (so that the resume takes a fresh backup). Pass 1's are kept: in a single pass the
    target may have been upgraded with them. ``keep_recorded``: the source is (partly) still paused,
    so its unpaused DAGs cannot be recorded again."""
    present: list[str] = []
    for entry in journal.entries:
        step = entry.get("step")
        if step and step not in present:
            present.append(step)
    redo = [s for s in FREEZE_STEPS if s in present and not (keep_recorded and s == Step.RECORD_DAGS)]
    return redo + [s for s in present if s not in FREEZE_STEPS and redone_after_abort(s)]


def explain(error: BaseException | None, state: str) -> None:
    """Complete a user error's hint with the state each colour is in."""
    if isinstance(error, MwaaIacError) and not isinstance(error, PreflightError):
        error.hint = f"{error.hint}. {state}" if error.hint else state
