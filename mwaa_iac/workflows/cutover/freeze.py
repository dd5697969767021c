"""The freeze and go-live: record the source's unpaused DAGs, pause them, drain what executes, then
move the hold, point routing at the target, unpause exactly the recorded DAGs there and put the new
deployment record in place (docs/design.md §2, §8)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, ti_name
from mwaa_iac.adapters.routing import Routing
from mwaa_iac.core import dr
from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.cutover_steps import Step
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.cutover.context import Context
from mwaa_iac.workflows.cutover.copy import Copy
from mwaa_iac.workflows.cutover.db_pause import record_by_copier, unpause_by_copier
from mwaa_iac.workflows.cutover.target import recent_listing
from mwaa_iac.workflows.dr_runs import CutoverError

EXECUTING_STATES = ("queued", "running", "restarting")  # what the drain waits for


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
        answer = record_by_copier(ctx)
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
            ctx.poll_seconds(),
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
        to paused from the PATCH answers), else with a listing of its own. On a 2.x target with an
        armed unpause copier, the unpause is done in the target's database instead, in one
        transaction, in the same place of the order (after routing; the signal noted first), and
        checked over REST; it falls back to REST when the copier does not answer by its deadline
        (db_pause.unpause_by_copier)."""
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
        api = ctx.api(ctx.target)
        calls = api.calls
        by_copier = unpause_by_copier(ctx, dags, api)
        if by_copier is None:
            api.set_paused_many(dags, False, known=recent_listing(ctx, ctx.target))
        unpaused_at = time.time()
        calls = api.calls - calls
        if by_copier is None and ctx.result(Step.ARM_COPIERS).get("armed"):
            Copy(ctx).cancel_armed()  # an unpause copier not used ends now, not at its deadline
        ctx.commit_record(record)
        ctx.emit(event(EventKind.CUTOVER_LIVE, environment=ctx.target, unpaused=len(dags), calls=calls))
        result = {"unpaused": dags, "unpaused_at": unpaused_at, "version": version, "calls": calls}
        return result | (by_copier or {})

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
