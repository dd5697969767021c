"""The freeze and go-live: record the source's unpaused DAGs, pause them, drain what executes, then
move the hold, point routing at the target, unpause exactly the recorded DAGs there and put the new
deployment record in place (docs/design.md §2, §8)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.routing import Routing
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr
from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.cutover_steps import Step
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.cutover.context import Context
from mwaa_iac.workflows.cutover.copy import Copy
from mwaa_iac.workflows.dr_runs import CutoverError
from mwaa_iac.workflows.journal import Journal

EXECUTING_STATES = ("queued", "running", "restarting")  # what the drain waits for
PAUSE_POLL_SECONDS = 0.1  # how often the freeze reads the copier's answer to its pause signal
LISTING_MAX_AGE_SECONDS = 300.0  # go-live plans with check-target's listing when it is this recent


class Freeze:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # the source's DAG listing that recorded the freeze's DAGs (in this process), reused to pause
        self._listing: list[dict[str, Any]] | None = None

    def record_unpaused(self) -> dict[str, Any]:
        """Record the source's unpaused DAGs (and their files). With an armed backup copier, it
        pauses them too, in the source's database (one transaction: select, pause, a ``log`` row
        per DAG; dr.pause_signal) and its record is the freeze's: nothing can be unpaused between
        recording and pausing. Without one, or when it does not answer in time, they are listed
        over REST (today's path; pause-source then pauses them), and any DAG the copier selected
        is added to the record, so that a late pause can never leave a DAG paused unrecorded."""
        ctx = self.ctx
        answer = self._record_by_copier()
        if answer is not None and answer.get("state") == "paused":
            dags = sorted(answer.get("dags", []))
            ctx.emit(event(EventKind.FREEZE_RECORDED, dags=dags, paused_by="copier"))
            return {
                "dags": dags,
                "files": {d: f for d, f in (answer.get("files") or {}).items() if d in dags},
                "paused_by": "copier",
                "paused_at": answer.get("paused_at"),
                "copier": answer.get("run_id"),
            }
        selected = answer.get("dags", []) if answer is not None else []
        self._listing = ctx.api(ctx.source).list_dags()
        unpaused = {
            d["dag_id"]
            for d in self._listing
            if not d.get("is_paused") and d["dag_id"] not in dr.MWAA_IAC_DAG_IDS
        }
        dags = sorted(unpaused | {d for d in selected if d not in dr.MWAA_IAC_DAG_IDS})
        ctx.emit(event(EventKind.FREEZE_RECORDED, dags=dags))
        # Each DAG's file: go-live's gate finds the target's import errors by it.
        files = {d: f for d, f in ((answer or {}).get("files") or {}).items() if d in dags}
        files |= {
            d["dag_id"]: d["fileloc"] for d in self._listing if d["dag_id"] in dags and d.get("fileloc")
        }
        return {"dags": dags, "files": files}

    def _record_by_copier(self) -> dict[str, Any] | None:
        """The armed backup copier's answer to the pause signal (signalled now, or found again on
        a resume: the journal notes the signal before it is written): ``state`` ``paused`` with the
        DAGs it paused, else what it selected if anything (``selected``: its commit not confirmed;
        ``failed``, ``late``, ``none``: nothing paused). None when there is no copier to ask."""
        ctx = self.ctx
        journal = ctx.journal
        bucket = ctx.config.dr.backup_bucket
        signalled = pause_signalled(journal)
        if signalled is None:
            copier = Copy(ctx).armed_backup()
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
            reason = {
                "failed": f"it could not pause: {answer.get('error', '')}",
                "late": "its pause came too late and was rolled back",
            }.get(answer["state"], f"no answer to the pause signal within {dr.PAUSE_ANSWER_SECONDS:.0f} s")
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

    def pause_source(self) -> dict[str, Any]:
        """Pause the recorded DAGs in a few calls (AirflowApi.set_paused_many: patterns that select
        only them, verified per DAG); the listing that recorded them is reused when it was taken in
        this process, else (a resume) the source is listed again and only DAGs still unpaused are
        touched. When the armed copier paused them (record-dags), it is verified over REST only:
        the unpaused DAGs are listed and a recorded DAG among them is paused again."""
        ctx = self.ctx
        recorded = ctx.result(Step.RECORD_DAGS)
        dags = recorded["dags"]
        if recorded.get("paused_by") == "copier":
            api = ctx.api(ctx.source)
            start = api.calls
            unpaused = {d["dag_id"] for d in api.list_dags_in_state(False)}
            again = [d for d in dags if d in unpaused]
            for dag_id in again:
                api.set_paused(dag_id, True)
            calls = api.calls - start
            ctx.emit(
                event(
                    EventKind.FREEZE_PAUSED,
                    environment=ctx.source,
                    count=len(dags),
                    calls=calls,
                    paused_by="copier",
                    paused_again=again,
                )
            )
            return {
                "paused": dags,
                "freeze_started": recorded.get("paused_at") or time.time(),
                "calls": calls,
                "paused_by": "copier",
                "paused_again": again,
            }
        started = time.time()
        listing, self._listing = self._listing, None
        done = ctx.api(ctx.source).set_paused_many(dags, True, known=listing)
        ctx.emit(event(EventKind.FREEZE_PAUSED, environment=ctx.source, count=len(dags), calls=done.calls))
        return {"paused": dags, "freeze_started": started, "calls": done.calls}

    def drain(self) -> dict[str, Any]:
        """Wait (up to --drain-minutes) for the task instances executing on the source (queued,
        running, restarting) in the user's DAGs. Runs are not waited for: the scheduler queues no
        task instance of a paused DAG, so a run in flight stays `running`; it is copied as it is and
        continues on the target (its unfinished task instances are reset there, deferred, scheduled
        and up_for_retry ones are copied as they are). With --force-drain, the task instances still
        executing at the timeout are recorded as ``may_run_twice`` (the target runs them again)."""
        ctx = self.ctx

        def draining(names: list[str], waited: float) -> None:
            ctx.emit(
                event(
                    EventKind.FREEZE_DRAINING,
                    environment=ctx.source,
                    count=len(names),
                    task_instances=names[:5],
                    waited_s=waited,
                )
            )

        options = ctx.options
        names, waited = wait_for_executing(
            ctx.api(ctx.source),
            options.drain_timeout_seconds,
            options.run_poll_seconds,
            ctx.sleep,
            ctx.clock,
            draining,
        )
        if not names:
            ctx.emit(event(EventKind.FREEZE_DRAINED, environment=ctx.source, waited_s=waited))
            return {"drained_after_s": waited, "may_run_twice": []}
        if options.force_drain:
            ctx.emit(event(EventKind.FREEZE_DRAIN_FORCED, environment=ctx.source, may_run_twice=names))
            return {"drained_after_s": None, "waited_s": waited, "may_run_twice": names}
        more = f" and {len(names) - 20} more" if len(names) > 20 else ""
        raise CutoverError(
            f"{len(names)} task instance(s) still executing (queued, running or restarting) on "
            f"{ctx.source} after {options.drain_timeout_seconds:.0f} s: " + ", ".join(names[:20]) + more,
            hint="wait for them to finish and rerun with --resume, or rerun with --resume "
            "--force-drain to copy without waiting (they are reset on the target, whose scheduler "
            "runs them again: they may run twice)",
        )

    def drain_target(self, api: AirflowApi) -> dict[str, Any]:
        """An undone go-live: wait (up to --drain-minutes) for what the target started before the
        source schedules again; what still executes then may run twice (it is reported)."""
        ctx = self.ctx
        names, waited = wait_for_executing(
            api, ctx.options.drain_timeout_seconds, ctx.options.run_poll_seconds, ctx.sleep, ctx.clock
        )
        ctx.emit(
            event(
                EventKind.FREEZE_TARGET_DRAINED,
                environment=api.environment,
                waited_s=waited,
                may_run_twice=names,
            )
        )
        return {"waited_s": waited, "may_run_twice": names}

    def go_live(self) -> dict[str, Any]:
        """Point routing at the target, unpause the recorded DAGs there, record it as the active
        colour. Everything that can fail runs before the unpause (the target described, the new
        record rendered and validated, routing written); after it only the record's file is renamed
        into place. Every action is idempotent: a go-live interrupted mid-way is run again whole by
        --resume. A failure of it is undone by the abort (the journal notes when routing may have
        been flipped; the target's executing task instances are waited for). The unpause is planned
        with check-target's listing of the target when this process took it moments before (its
        patterns never select a DAG listed outside the set, and one that appeared since is put back
        to paused from the PATCH answers), else with a listing of its own."""
        ctx = self.ctx
        journal = ctx.journal
        dags = ctx.result(Step.RECORD_DAGS).get("dags", [])
        target_env = ctx.mwaa.get_environment(ctx.target)
        version = target_env.get("AirflowVersion", ctx.to_version)
        record = ctx.prepare_record(active_color=str(ctx.target_color), **{str(ctx.target_color): version})
        # From now on the source holds every DAG that appears in the shared folder paused, and the
        # target no longer does: a DAG created unpaused runs on the new live colour only.
        journal.note(Step.GO_LIVE, hold_moved=True)
        hold(ctx.api(ctx.source), ctx.api(ctx.target))
        journal.note(Step.GO_LIVE, routed=True)  # before: a half-written routing is pointed back too
        point_routing(ctx.routing, ctx.config, ctx.target, ctx.target_color, target_env)
        journal.note(Step.GO_LIVE, unpausing=True)  # from here the target may schedule
        done = ctx.api(ctx.target).set_paused_many(dags, False, known=self._recent_listing(ctx.target))
        unpaused_at = time.time()
        ctx.commit_record(record)
        ctx.emit(event(EventKind.CUTOVER_LIVE, environment=ctx.target, unpaused=len(dags), calls=done.calls))
        return {"unpaused": dags, "unpaused_at": unpaused_at, "version": version, "calls": done.calls}

    def _recent_listing(self, environment: str) -> list[dict[str, Any]] | None:
        taken = self.ctx.listings.pop(environment, None)
        if taken is None or self.ctx.clock() - taken[0] > LISTING_MAX_AGE_SECONDS:
            return None
        return taken[1]

    def route_back(self) -> None:
        """Routing and the deployment record back on the source (undoing a half-done go-live)."""
        ctx = self.ctx
        point_routing(
            ctx.routing, ctx.config, ctx.source, ctx.source_color, ctx.mwaa.get_environment(ctx.source)
        )
        ctx.record(active_color=str(ctx.source_color))


def point_routing(
    routing: Routing, config: EnvironmentConfig, name: str, color: Color, environment: dict[str, Any]
) -> None:
    """Point the deployment's routing (SSM parameter, optional Route 53 record) at ``name``, described
    by ``environment`` (its GetEnvironment answer)."""
    routing.point(
        config.routing.ssm_parameter_name,
        name=name,
        color=str(color),
        webserver_url=environment.get("WebserverUrl"),
        airflow_version=environment.get("AirflowVersion", ""),
        zone_id=config.routing.route53_zone_id,
        record_name=config.routing.route53_record_name,
    )


def ti_name(ti: dict[str, Any]) -> str:
    """``dag_id/run_id/task_id``, with ``[map_index]`` for a mapped task instance."""
    index = ti.get("map_index", -1)
    suffix = f"[{index}]" if isinstance(index, int) and index >= 0 else ""
    return f"{ti.get('dag_id')}/{ti.get('dag_run_id')}/{ti.get('task_id')}{suffix}"


def hold(retired: AirflowApi, live_api: AirflowApi) -> None:
    """``retired`` holds new DAGs paused from now on, ``live_api`` no longer does (dr.HOLD_VARIABLE;
    idempotent)."""
    retired.set_variable(
        dr.HOLD_VARIABLE,
        live_api.environment,
        description=f"mwaa-iac: {live_api.environment} is live; DAGs that appear here stay paused",
    )
    live_api.delete_variable(dr.HOLD_VARIABLE)


def wait_for_executing(
    api: AirflowApi,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    waiting: Callable[[list[str], float], None] = lambda names, waited: None,
) -> tuple[list[str], float]:
    """Poll until no task instance of the user's DAGs executes on ``api``'s environment (queued,
    running, restarting) or ``timeout_s`` passed: ``(names still executing, seconds waited)``."""
    start = clock()
    while True:
        names = [
            ti_name(ti)
            for ti in api.task_instances(EXECUTING_STATES)
            if ti.get("dag_id") not in dr.MWAA_IAC_DAG_IDS
        ]
        waited = round(clock() - start, 2)
        if not names or waited > timeout_s:
            return names, waited
        waiting(names, waited)
        sleep(poll_s)


# -- the pause by the armed backup copier (dr.pause_signal) -----------------------------------------


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
) -> dict[str, Any]:
    """The copier's answer at ``signalled["key"]``: once it says ``paused``, ``failed`` or ``late``;
    else, when the signal's ``until`` plus the clock margin has passed (the copier no longer
    commits), what it wrote (``selected``) or ``{"state": "none"}``."""
    remaining = float(signalled["until"]) + dr.PAUSE_CLOCK_MARGIN_SECONDS - time.time()
    start = clock()
    while True:
        text = s3.get_text(bucket, signalled["key"])
        answer = json.loads(text) if text else None
        if isinstance(answer, dict) and answer.get("state") in ("paused", "failed", "late"):
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
