"""`mwaa-iac cutover`: the flow. It walks the step list of :func:`mwaa_iac.core.cutover_steps.flow`
(written once, in core) and runs each step's action from the rooms: plan, target, copy, freeze; a
failure inside the freeze gives scheduling back (abort). The live-colour guard runs before anything
(the dry run too); ``--resume`` continues the journal and keeps the deployment record in line with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from mwaa_iac.core import dr, timeline
from mwaa_iac.core.catalog import load_catalog
from mwaa_iac.core.config import Color, Deployment
from mwaa_iac.core.cutover_steps import (
    COPY_STEPS,
    FREEZE_HOP_PREFIX,
    HOP_PREFIX,
    PARENT,
    PASS_1,
    PASS_2,
    Step,
    flow_for_plan,
    hop_step,
)
from mwaa_iac.core.live import Role
from mwaa_iac.core.planner import Hop, HopKind
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows import live
from mwaa_iac.workflows.cutover.abort import Abort
from mwaa_iac.workflows.cutover.context import JOURNAL, Context
from mwaa_iac.workflows.cutover.copy import Copy, RunAgainFrom
from mwaa_iac.workflows.cutover.freeze import Freeze
from mwaa_iac.workflows.cutover.plan import Planning
from mwaa_iac.workflows.cutover.rehearsal import Rehearsal
from mwaa_iac.workflows.cutover.target import Target
from mwaa_iac.workflows.in_flight import InFlight
from mwaa_iac.workflows.journal import Journal, holding_lock, open_journal
from mwaa_iac.workflows.preflight import PreflightError
from mwaa_iac.workspace import write_deployment

TIMELINE = "cutover.timeline.svg"  # beside the journal, in the same store


class Cutover:
    """One cutover of one deployment: ``Cutover(ws, config, options, mwaa, s3, routing, ...).run()``
    (the keyword arguments are :class:`Context`'s)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ctx = Context(*args, **kwargs)
        self.target = Target(self.ctx)
        self.planning = Planning(self.ctx, self.target)
        self.copy = Copy(self.ctx)
        self.freeze = Freeze(self.ctx)
        self.abort = Abort(self.ctx, self.freeze)
        self.rehearsal = Rehearsal(self.ctx, [])  # the freeze's upgrades: set by the walk

    # What callers and tests set or read on a cutover: the context's.
    journal = property(lambda self: self.ctx.opened, lambda self, value: setattr(self.ctx, "opened", value))
    options = property(lambda self: self.ctx.options, lambda self, value: setattr(self.ctx, "options", value))
    config = property(lambda self: self.ctx.config, lambda self, value: setattr(self.ctx, "config", value))
    routing = property(lambda self: self.ctx.routing, lambda self, value: setattr(self.ctx, "routing", value))
    emit = property(lambda self: self.ctx.emit, lambda self, value: setattr(self.ctx, "emit", value))
    requirements_check = property(
        lambda self: self.ctx.requirements_check,
        lambda self, value: setattr(self.ctx, "requirements_check", value),
    )
    store = property(lambda self: self.ctx.store)

    def preflight(self):
        return self.planning.preflight()

    def catchup_without_history(self) -> list[dict[str, Any]]:
        return self.planning.catchup_without_history()

    # -- entry point -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        ctx = self.ctx
        load_catalog().require(ctx.to_version)
        with holding_lock(ctx.store, "cutover", break_lock=ctx.options.break_lock):
            if ctx.options.resume:
                synced = self._sync_finished()
                if synced is not None:
                    ctx.emit(event(EventKind.CUTOVER_SUMMARY, **synced))
                    return synced
            else:
                self._require_live_source()
            if ctx.options.dry_run:
                plan, checks = self.planning.preflight()
                if not all(c.ok for c in checks):
                    raise PreflightError(checks)
                report = self.planning.dry_run_report(plan)
                ctx.emit(event(EventKind.CUTOVER_PLAN, **report))
                return report
            ctx.opened = self._open_journal()
            try:
                report = self._walk()
            except Exception as exc:
                self.abort(exc)
                raise
            ctx.journal.end("succeeded", report=report)
            report = {**report, **self._write_timeline()}
            ctx.emit(event(EventKind.CUTOVER_SUMMARY, **report))
            return report

    def _open_journal(self) -> Journal:
        ctx = self.ctx
        journal = open_journal(
            ctx.store,
            JOURNAL,
            "cutover",
            {
                "to": ctx.to_version,
                "env": ctx.ws.env,
                "engine": str(ctx.options.engine),
                "source_color": str(ctx.source_color),
                "single_pass": ctx.options.single_pass,
                "no_history": ctx.options.no_history,
                "no_rehearsal": ctx.options.no_rehearsal,
            },
            resume=ctx.options.resume,
        )
        if ctx.options.resume:
            # A resume continues the interrupted run as it was started, whatever flags were retyped.
            params = journal.params
            ctx.options = replace(
                ctx.options,
                engine=params.get("engine", ctx.options.engine),
                single_pass=bool(params.get("single_pass", ctx.options.single_pass)),
                no_history=bool(params.get("no_history", ctx.options.no_history)),
                no_rehearsal=bool(params.get("no_rehearsal", ctx.options.no_rehearsal)),
            )
            # The deployment record may have moved on (go-live done): use the journal's colours.
            source_color = Color(journal.params["source_color"])
            if source_color is not ctx.config.active_color:
                deployment = ctx.config.deployment.model_copy(update={"active_color": source_color})
                ctx.config = ctx.config.model_copy(update={"deployment": deployment})
            ctx.emit(event(EventKind.CUTOVER_RESUME, run_id=journal.run_id))
            ctx.opened = journal
            self._sync_record(journal)
        return journal

    # -- the live colour ---------------------------------------------------------------------------

    def _require_live_source(self) -> None:
        """Before anything (the dry run included): every source of truth must agree that the
        source serves and the target does not (a stale deployment record would otherwise make the
        cutover pause and overwrite the live colour)."""
        ctx = self.ctx
        claims = live.read_claims(ctx.config, ctx.routing, ctx.store, live.describer(ctx.mwaa))
        live.require("cut over from", ctx.source_color, Role.LIVE, claims, ctx.config, ctx.ws.env)
        live.require("create or overwrite", ctx.target_color, Role.NOT_LIVE, claims, ctx.config, ctx.ws.env)

    def _sync_record(self, journal: Journal) -> dict[str, Any] | None:
        """Make the deployment record say what the journal says (go-live done: the target is active,
        at the version go-live found; rolled back or never live: the source). Idempotent: written
        only when they disagree; returns what was written."""
        ctx = self.ctx
        claim = live.cutover_claim(journal)
        recorded = ctx.ws.load().deployment
        if claim.color is None or claim.color is recorded.active_color:
            return None
        versions: dict[str, str] = {}
        target_color = Color(journal.params["source_color"]).other
        went_live = journal.data(Step.GO_LIVE).get("result", {})
        if claim.color is target_color and went_live.get("version"):
            versions[str(target_color)] = went_live["version"]
        updated = Deployment(
            active_color=claim.color,
            blue=versions.get("blue", recorded.blue),
            green=versions.get("green", recorded.green),
        )
        write_deployment(ctx.ws.config_file, updated)
        synced = {
            "run_id": journal.run_id,
            "active_color": str(claim.color),
            "was": str(recorded.active_color),
            "versions": {"blue": updated.blue, "green": updated.green},
        }
        ctx.emit(event(EventKind.CUTOVER_RECORD_SYNCED, **synced))
        return synced

    def _sync_finished(self) -> dict[str, Any] | None:
        """``--resume`` of a cutover whose journal finished: when the deployment record disagrees
        with it (the record written by go-live was lost), write it again and return the cutover's
        report with ``record_synced``; None otherwise (open_journal then says nothing is left)."""
        journal = Journal.load(self.ctx.store, JOURNAL)
        if journal is None or not journal.finished:
            return None
        synced = self._sync_record(journal)
        if synced is None:
            return None
        end = next(e for e in reversed(journal.entries) if e.get("event") == "end")
        return {**end.get("data", {}).get("report", {}), "record_synced": synced}

    # -- the flow ----------------------------------------------------------------------------------

    def _walk(self) -> dict[str, Any]:
        """The steps of ``core.cutover_steps.flow()`` for this cutover's plan, in order (done ones
        are skipped; a step journaled inside its parent runs there)."""
        ctx = self.ctx
        plan = ctx.step(Step.PREFLIGHT, self.planning.preflight_step)
        history, two_pass = plan["history"], plan["two_pass"]
        hops = [Hop(HopKind(k), f, t, r) for k, f, t, r in plan["hops"] if k == str(HopKind.IN_PLACE)]
        freeze_hops = plan.get("freeze_hops", 0) if two_pass else 0
        steps = flow_for_plan(plan)
        self.rehearsal = Rehearsal(self.ctx, hops[len(hops) - freeze_hops :] if freeze_hops else [])
        actions, own = self._actions(plan, hops), self._self_journaled(hops, freeze_hops)
        index = 0
        while index < len(steps):
            name = steps[index]
            try:
                if name in actions:
                    ctx.step(name, actions[name])
                elif name in own:
                    own[name]()
                elif name not in PARENT:
                    raise RuntimeError(f"no action for cutover step {name}")
            except RunAgainFrom as again:
                index = steps.index(again.step)
                continue
            except Exception:
                self.copy.failed(name)
                raise
            index += 1
        return self.report(history, two_pass)

    def _actions(self, plan: dict[str, Any], hops: list[Hop]) -> dict[str, Callable[[], Any]]:
        """Each step's action (journaled by ``Context.step``)."""
        factory = dr.factory_for(plan["source_version"]) if plan["history"] else ""
        create_version = plan["source_version"] if plan["history"] else self.ctx.to_version
        copy, freeze, target = self.copy, self.freeze, self.target
        actions: dict[str, Callable[[], Any]] = {
            Step.PREFLIGHT: self.planning.preflight_step,
            Step.DEPLOY_DR: lambda: copy.deploy_dr_dags(factory, PASS_1),
            Step.TARGET_REQUIREMENTS: target.requirements,
            Step.CREATE_TARGET: lambda: target.create(create_version),
            Step.HEALTH_TARGET: target.health,
            # Pass 2's DAG files are deployed and parsed before the freeze: parsing is not frozen time.
            Step.DEPLOY_DR_P2: lambda: copy.deploy_dr_dags(factory, PASS_2),
            Step.PARSE_DR_P2: copy.wait_for_p2_dags,
            Step.ARM_COPIERS: lambda: target.list_before_freeze(copy.arm()),
            Step.RECORD_DAGS: freeze.record_unpaused,
            Step.PAUSE_SOURCE: freeze.pause_source,
            Step.DRAIN_SOURCE: freeze.drain,
            Step.CHECK_TARGET: target.check_imports,
            Step.GO_LIVE: freeze.go_live,
            Step.RESUME_IN_FLIGHT: self._resume_in_flight,
            Step.RETIRE_DR_DAGS: copy.retire_dr_dags,
        }
        rehearsal = self.rehearsal
        actions.update(
            {
                Step.REHEARSAL_CREATE: rehearsal.create,
                Step.REHEARSAL_RESTORE: rehearsal.restore,
                Step.REHEARSAL_HOP: rehearsal.hop,
                Step.REHEARSAL_CHECK: rehearsal.check,
                Step.REHEARSAL_DELETE: rehearsal.delete,
                Step.FREEZE_GATE: rehearsal.gate,
            }
        )
        for label in (PASS_1, PASS_2):
            for step, act in zip(
                COPY_STEPS[label],
                (copy.backup, copy.verify_backup, copy.restore, copy.verify_restore),
                strict=True,
            ):
                actions[step] = partial(act, label)
        return actions

    def _resume_in_flight(self) -> dict[str, Any]:
        """``resume-in-flight``: the runs of the DAGs go-live unpaused on the 3.x target
        (workflows/in_flight.py)."""
        ctx = self.ctx
        version = ctx.mwaa.get_environment(ctx.target).get("AirflowVersion", ctx.to_version)
        options = ctx.options
        flight = InFlight(
            ctx.api(ctx.target),
            ctx.emit,
            ctx.sleep,
            ctx.clock,
            options.drain_timeout_seconds,
            options.run_poll_seconds,
        )
        return flight.resume(set(ctx.result(Step.GO_LIVE).get("unpaused", [])), version)

    def _self_journaled(self, hops: list[Hop], freeze_hops: int) -> dict[str, Callable[[], Any]]:
        """Steps that journal themselves: the target's in-place hops (the upgrade machinery); the
        last ``freeze_hops`` run inside the freeze."""
        own: dict[str, Callable[[], Any]] = {}
        for index, hop in enumerate(hops, 1):
            prefix = FREEZE_HOP_PREFIX if index > len(hops) - freeze_hops else HOP_PREFIX
            own[hop_step(index, hop.to_version, prefix)] = partial(self.target.hop, index, hop, prefix)
        return own

    # -- report ------------------------------------------------------------------------------------

    def _write_timeline(self) -> dict[str, Any]:
        """The journal's steps as an SVG beside it (the freeze shaded); {} when it cannot be written
        (the cutover succeeded all the same)."""
        ctx = self.ctx
        paused = ctx.result(Step.PAUSE_SOURCE).get("freeze_started")
        unpaused = ctx.result(Step.GO_LIVE).get("unpaused_at")
        picture = timeline.svg(
            timeline.bars(ctx.journal.entries),
            (paused, unpaused) if paused and unpaused else None,
            f"{ctx.source} → {ctx.target} (Airflow {ctx.to_version}), cutover {ctx.journal.run_id}",
        )
        try:
            ctx.store.delete(TIMELINE)
            ctx.store.create(TIMELINE, picture)
        except MwaaIacError:
            return {}
        return {"timeline": ctx.store.where(TIMELINE)}

    def report(self, history: bool, two_pass: bool) -> dict[str, Any]:
        ctx = self.ctx
        journal = ctx.journal
        steps = {}
        for entry in journal.entries:
            if entry.get("event") == "done" and "elapsed_s" in entry.get("data", {}):
                steps[entry["step"]] = entry["data"]["elapsed_s"]
        paused = ctx.result(Step.PAUSE_SOURCE).get("freeze_started")
        unpaused = ctx.result(Step.GO_LIVE).get("unpaused_at")
        freeze = round(unpaused - paused, 1) if paused and unpaused else None
        freeze_steps = {}
        if paused:
            in_freeze = False
            for name, seconds in steps.items():
                in_freeze = in_freeze or name == Step.PAUSE_SOURCE
                if in_freeze:
                    freeze_steps[name] = seconds
                if name == Step.GO_LIVE:
                    break
        last_copy = COPY_STEPS[PASS_2 if two_pass else PASS_1][3]
        return {
            "source": ctx.source,
            "target": ctx.target,
            "to": ctx.to_version,
            "history_carried": history,
            "passes": 2 if two_pass else 1,
            "freeze_window_s": freeze,
            "freeze_steps_s": freeze_steps,
            "rows_copied": ctx.result(last_copy).get("tables", {}) if history else {},
            "pass2": self.copy.pass2_copy() if two_pass and history else None,
            "armed_copy": self.copy.armed_report() if two_pass and history else None,
            **({"in_flight": in_flight} if (in_flight := ctx.result(Step.RESUME_IN_FLIGHT)) else {}),
            "may_run_twice": sorted(
                set(ctx.result(Step.DRAIN_SOURCE).get("may_run_twice", []))
                | set(journal.data(Step.GO_LIVE).get("may_run_twice", []))
            ),
            "steps_s": steps,
            "routing": ctx.config.routing.ssm_parameter_name,
        }
