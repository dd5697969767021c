"""The freeze's pause and go-live's unpause in the colours' databases, by armed copiers (docs/design.md
§11): the backup copier, told by a pause signal, records and pauses the source's unpaused DAGs in one
transaction; a third copier on a 2.x target unpauses the recorded DAGs at go-live. Each signal is
noted in the journal before it is written, answered in an S3 object beside the go object, and has a
deadline after which the copier no longer commits: past it (plus a margin for the clocks) the
freeze falls back to REST, and an abort gives back exactly what the copier may have changed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr
from mwaa_iac.core.cutover_steps import COPY_STEPS, PASS_2, Step
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.cutover.context import Context
from mwaa_iac.workflows.cutover.copy import UNPAUSE, Copy
from mwaa_iac.workflows.journal import Journal

PAUSE_POLL_SECONDS = 0.1  # how often the freeze reads a copier's answer to its signal
PAUSE_ANSWERS = ("paused", "failed", "late")  # the backup copier's final answers to a pause signal
UNPAUSE_ANSWERS = ("unpaused", "failed", "late")  # the unpause copier's


def armed_backup(ctx: Context) -> dict[str, Any] | None:
    """The armed backup copier the freeze may still tell to go (and, before that, to pause the
    source's DAGs): None when the cutover is not armed, pass 2's backup already used it, or its
    deadline is too close for a pause signal to be answered."""
    return _in_time(ctx, Copy(ctx).armed_role("backup", COPY_STEPS[PASS_2][0], "armed_go"))


def armed_unpause(ctx: Context) -> dict[str, Any] | None:
    """The armed unpause copier go-live may tell to unpause (a 2.x target), or None."""
    return _in_time(ctx, Copy(ctx).armed_role(UNPAUSE, Step.GO_LIVE, "unpause_go"))


def _in_time(ctx: Context, copier: dict[str, Any] | None) -> dict[str, Any] | None:
    """``copier`` unless its deadline is too close for a signal to be answered."""
    deadline = float(ctx.result(Step.ARM_COPIERS).get("deadline") or 0)
    if copier is None or time.time() + dr.PAUSE_ANSWER_SECONDS + dr.PAUSE_CLOCK_MARGIN_SECONDS > deadline:
        return None
    return copier


def record_by_copier(ctx: Context) -> dict[str, Any] | None:
    """The armed backup copier's answer to the pause signal (signalled now, or found again on
    a resume: the journal notes the signal before it is written): ``state`` ``paused`` with the
    DAGs it paused, else what it selected if anything (``selected``: its commit not confirmed;
    ``failed``, ``late``, ``none``: nothing paused). None when there is no copier to ask."""
    journal = ctx.journal
    bucket = ctx.config.dr.backup_bucket
    signalled = pause_signalled(journal)
    if signalled is None:
        copier = armed_backup(ctx)
        if copier is None:
            if journal.data(Step.RECORD_DAGS).get("pause_signalled"):
                journal.note(Step.RECORD_DAGS, pause_signalled=None, copier_record=None)
            return None
        until = time.time() + dr.PAUSE_ANSWER_SECONDS
        signalled = {
            "run_id": copier["run_id"],
            "go": copier["go"],
            "key": dr.paused_key(copier["go"]),
            "until": round(until, 3),
        }
        journal.note(Step.RECORD_DAGS, pause_signalled=signalled, copier_record=None)
        ctx.s3.put_text(bucket, copier["go"], json.dumps(dr.pause_signal(signalled["key"], until)))
    answer = await_pause_record(ctx.s3, bucket, signalled, ctx.sleep, ctx.clock)
    journal.note(Step.RECORD_DAGS, copier_record=copier_record(signalled, answer))
    if answer["state"] != "paused":
        reason = _unanswered("pause", answer)
        ctx.emit(
            event(
                EventKind.COPIER_FALLBACK,
                dag_id=dr.BACKUP_DAG_ID,
                environment=ctx.source,
                reason=f"pause over REST: {reason}",
            )
        )
        if answer["state"] in ("none", "selected"):
            # A copier that does not answer is not told to go either: pass 2 triggers its runs.
            copy = Copy(ctx)
            journal.note(Step.RECORD_DAGS, copiers_cancelled=copy.armed_run_ids())
            copy.cancel_armed()
    return {**answer, "run_id": signalled["run_id"]}


def unpause_by_copier(ctx: Context, dags: list[str], api: AirflowApi) -> dict[str, Any] | None:
    """Unpause ``dags`` on the target by its armed unpause copier (a 2.x target; the signal noted
    before it is written, found again by a go-live run again), then check over REST: the paused
    DAGs are listed and a recorded one among them, or one the copier did not find, is unpaused
    with a call of its own. None when there is no copier to use or it did not unpause (then
    nothing was unpaused by it: the signal's deadline has passed): go-live unpauses over REST."""
    journal = ctx.journal
    copy = Copy(ctx)
    signalled = unpause_signalled(journal)
    current = copy.armed_copier(UNPAUSE)
    if signalled is None or current is None or signalled["run_id"] != current["run_id"]:
        copier = armed_unpause(ctx)
        if copier is None or not dags:
            return None
        if "started_after_s" not in copier:  # no worker ran it when the copiers were armed
            state = ctx.runner(ctx.target).task_state(copier["dag_id"], copier["run_id"])
            if state != "running":
                copy.cancel_armed()
                return None
        until = time.time() + dr.PAUSE_ANSWER_SECONDS
        signalled = {
            "run_id": copier["run_id"],
            "key": dr.unpaused_key(copier["go"]),
            "until": round(until, 3),
        }
        journal.note(Step.GO_LIVE, unpause_signalled=signalled, unpause_go=copier["run_id"])
        signal = dr.unpause_signal(signalled["key"], until, dags)
        ctx.s3.put_text(ctx.config.dr.backup_bucket, copier["go"], json.dumps(signal))
    answer = await_pause_record(
        ctx.s3, ctx.config.dr.backup_bucket, signalled, ctx.sleep, ctx.clock, final=UNPAUSE_ANSWERS
    )
    if answer["state"] != "unpaused":
        reason = _unanswered("unpause", answer)
        ctx.emit(
            event(
                EventKind.COPIER_FALLBACK,
                dag_id=dr.RESTORE_DAG_ID,
                environment=ctx.target,
                reason=f"unpause over REST: {reason}",
            )
        )
        if answer["state"] == "none":
            copy.cancel_armed()  # it does nothing should it read its signal now (the deadline passed)
        return None
    found = set(answer.get("dags", [])) | set(answer.get("already", []))
    still = {d["dag_id"] for d in api.list_dags_in_state(True)}
    again = [d for d in dags if d in still or d not in found]
    for dag_id in again:
        api.set_paused(dag_id, False)
    return {
        "unpaused_by": "copier",
        "unpaused_again": again,
        "copier_unpaused_at": answer.get("unpaused_at"),
    }


def _unanswered(verb: str, answer: dict[str, Any]) -> str:
    """Why a copier's ``verb`` (pause, unpause) is done over REST instead, from its answer."""
    return {
        "failed": f"it could not {verb}: {answer.get('error', '')}",
        "late": f"its {verb} came too late and was rolled back",
    }.get(answer["state"], f"no answer to the {verb} signal within {dr.PAUSE_ANSWER_SECONDS:.0f} s")


def pause_signalled(journal: Journal) -> dict[str, Any] | None:
    """The pause signal the running freeze gave the armed backup copier (noted before it was
    written), or None: none given, or given to the copier of an earlier arming (an aborted freeze)."""
    last = next((e for e in reversed(journal.entries) if e.get("step") == Step.RECORD_DAGS), None)
    if last is None or last.get("data", {}).get("aborted"):
        return None
    signalled = journal.data(Step.RECORD_DAGS).get("pause_signalled")
    armed = journal.data(Step.ARM_COPIERS).get("result") or {}
    backup = armed.get("backup") if armed.get("armed") else None
    if not signalled or not backup or backup.get("run_id") != signalled.get("run_id"):
        return None
    return dict(signalled)


def await_pause_record(
    s3: S3,
    bucket: str,
    signalled: dict[str, Any],
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    final: tuple[str, ...] = PAUSE_ANSWERS,
) -> dict[str, Any]:
    """The copier's answer at ``signalled["key"]``: once it is final (``paused``, ``failed`` or
    ``late``; for an unpause: ``unpaused``...); else, when the signal's ``until`` plus the clock
    margin has passed (the copier no longer commits), what it wrote (``selected``) or ``{"state":
    "none"}``."""
    remaining = float(signalled["until"]) + dr.PAUSE_CLOCK_MARGIN_SECONDS - time.time()
    start = clock()
    while True:
        text = s3.get_text(bucket, signalled["key"])
        answer = json.loads(text) if text else None
        if isinstance(answer, dict) and answer.get("state") in final:
            return {**answer, "dags": list(answer.get("dags") or [])}
        if clock() - start >= remaining:
            if isinstance(answer, dict) and answer.get("state") == "selected":
                return {**answer, "dags": list(answer.get("dags") or [])}
            return {"state": "none", "dags": []}
        sleep(PAUSE_POLL_SECONDS)


def copier_record(signalled: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of the copier's answer: the DAGs that may be paused by it."""
    return {
        "run_id": signalled["run_id"],
        "state": answer.get("state"),
        "dags": sorted(answer.get("dags", [])),
    }


def settle_pause_record(
    journal: Journal,
    s3: S3,
    bucket: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Before scheduling is given back: when the freeze signalled the copier to pause and its
    answer is not in the journal (killed while waiting for it), wait for it (until the signal's
    deadline) and note it, so that exactly the DAGs it paused are unpaused."""
    signalled = pause_signalled(journal)
    if signalled is None or journal.state(Step.RECORD_DAGS) == "done":
        return
    noted = journal.data(Step.RECORD_DAGS).get("copier_record") or {}
    if noted.get("run_id") == signalled["run_id"]:
        return
    answer = await_pause_record(s3, bucket, signalled, sleep, clock)
    journal.note(Step.RECORD_DAGS, copier_record=copier_record(signalled, answer))


def recorded_dags(journal: Journal) -> list[str]:
    """The DAGs the freeze recorded on the source (to unpause when scheduling is given back):
    record-dags' result, or, while it is unfinished after the copier was signalled to pause, the
    DAGs the copier paused or may have paused (settle_pause_record notes them)."""
    data = journal.data(Step.RECORD_DAGS)
    if journal.state(Step.RECORD_DAGS) != "done" and pause_signalled(journal) is not None:
        return list((data.get("copier_record") or {}).get("dags", []))
    return list((data.get("result") or {}).get("dags", []))


def unpause_signalled(journal: Journal) -> dict[str, Any] | None:
    """The unpause signal go-live gave the armed unpause copier (noted before it was written), or
    None: none given, or a go-live undone since."""
    last = next((e for e in reversed(journal.entries) if e.get("step") == Step.GO_LIVE), None)
    if last is None or last.get("data", {}).get("aborted"):
        return None
    signalled = journal.data(Step.GO_LIVE).get("unpause_signalled")
    return dict(signalled) if signalled else None


def wait_out_unpause(journal: Journal, sleep: Callable[[float], None] = time.sleep) -> None:
    """Before a half-done go-live is undone: wait until the unpause copier can no longer commit
    (its signal's ``until`` plus the clock margin), so that nothing it unpauses comes after the
    pause again."""
    signalled = unpause_signalled(journal)
    if signalled is None:
        return
    remaining = float(signalled["until"]) + dr.PAUSE_CLOCK_MARGIN_SECONDS - time.time()
    if remaining > 0:
        sleep(remaining)
