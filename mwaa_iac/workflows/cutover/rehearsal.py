"""The rehearsal of a freeze that holds an upgrade into 3.x (docs/design.md §9): before the freeze,
a temporary third environment is created like the target, at the target's version (the latest
2.11), pass 1's backup is restored into it and it is upgraded in place exactly as the freeze will
upgrade the target. It measures the upgrade (each MWAA status), checks that the history arrived
(rows per table before and after), lists the import errors of the real 3.x environment, runs one
DAG if asked, and is deleted. The freeze gate then refuses to start a freeze whose DAGs would fail
on 3.x or that would last longer than --max-freeze-minutes: nothing is paused yet.

The rehearsal is named ``<deployment>-rehearsal``, tagged ``mwaa-iac:rehearsal`` with the cutover's
run id, journaled step by step (a kill anywhere resumes), and deleted by `mwaa-iac cleanup` when a
cutover is abandoned. It is created through the MWAA API whatever the engine: it is temporary and
never part of the Terraform state.
"""

from __future__ import annotations

import time
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApiError
from mwaa_iac.adapters.mwaa import observe
from mwaa_iac.core import dr
from mwaa_iac.core.config import EnvironmentConfig
from mwaa_iac.core.cutover_steps import COPY_STEPS, DEPLOY_STEP, PASS_1, PASS_2, Step
from mwaa_iac.core.engines import ENGINE_TAG
from mwaa_iac.core.planner import Hop
from mwaa_iac.core.status import Outcome
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.backup import run_restore
from mwaa_iac.workflows.cutover.context import Context
from mwaa_iac.workflows.cutover.target import wait_for_parse
from mwaa_iac.workflows.dr_runs import CutoverError
from mwaa_iac.workflows.engine import create_fields_from, hop_requirements
from mwaa_iac.workflows.sizing import count_source
from mwaa_iac.workflows.watch import Watcher

REHEARSAL_TAG = "mwaa-iac:rehearsal"  # its value: the cutover's run id
# Tables whose rows the migration into 3.x keeps one for one (a difference is a finding); the
# others change by design: task_fail is dropped by 3.0, pickled XComs move to _xcom_archive, the
# upgrade itself writes log rows.
KEPT_BY_MIGRATION = ("dag_run", "task_instance", "variable", "connection", "slot_pool")
CHANGED_BY_MIGRATION = {
    "xcom": "pickled XComs move to _xcom_archive (not migrated)",
    "log": "the upgrade and the scheduler write log rows",
    "task_fail": "dropped by Airflow 3.0",
}


def rehearsal_name(config: EnvironmentConfig) -> str:
    return f"{config.name}-rehearsal"


class Rehearsal:
    def __init__(self, ctx: Context, hops: list[Hop]) -> None:
        self.ctx = ctx
        self.hops = hops  # the upgrades the freeze will make (into 3.x)

    @property
    def name(self) -> str:
        return rehearsal_name(self.ctx.config)

    def create(self) -> dict[str, Any]:
        """CreateEnvironment like the target (its DAG folder, requirements, role, network), at the
        target's version, and wait for it (an existing one from an interrupted run is waited for)."""
        ctx = self.ctx
        like = ctx.mwaa.get_environment(ctx.target)
        version = like.get("AirflowVersion", "")
        if not ctx.mwaa.exists(self.name):
            fields = create_fields_from(like)
            tags = {k: v for k, v in (like.get("Tags") or {}).items() if not k.lower().startswith("aws:")}
            tags.pop("mwaa-iac:color", None)
            fields["Tags"] = {**tags, REHEARSAL_TAG: ctx.journal.run_id, ENGINE_TAG: "api"}
            ctx.mwaa.create_environment(self.name, **fields)
            ctx.emit(event(EventKind.REHEARSAL_CREATING, environment=self.name, version=version))
        result = self._watch(None)
        if result.outcome is not Outcome.SUCCEEDED:
            raise CutoverError(
                f"creating the rehearsal {self.name} ended {result.observation.status}: "
                f"{result.observation.last_update_error or 'no detail'}",
                hint=f"nothing is paused; {ctx.source} keeps serving. `mwaa-iac cutover --resume` tries "
                "again; --no-rehearsal skips it (the freeze estimate is then unknown)",
            )
        return {"environment": self.name, "version": version, "created_s": round(result.elapsed, 1)}

    def restore(self) -> dict[str, Any]:
        """Pass 1's backup restored into the rehearsal (the DR DAG files are in the shared folder);
        then its rows per table, read as the freeze's target will have them before the upgrade."""
        ctx = self.ctx
        attempt = ctx.journal.attempts(Step.REHEARSAL_RESTORE) - 1
        prefix = ctx.result(COPY_STEPS[PASS_1][0])["prefix"]
        run_id = dr.run_id(
            dr.RESTORE_DAG_ID, ctx.journal.run_id, "rh" + (f"a{attempt}" if attempt > 0 else "")
        )
        markers = ctx.result(DEPLOY_STEP[PASS_2]).get("markers") or ctx.result(DEPLOY_STEP[PASS_1])["markers"]
        outcome = run_restore(
            ctx.runner(self.name),
            run_id,
            markers[dr.RESTORE_DAG_ID],
            dr.copy_conf(ctx.config.dr.backup_bucket, prefix),
            backoff=True,
        )
        return {
            "run_id": run_id,
            "prefix": prefix,
            "rows_restored": outcome.get("tables", {}),
            "before": self._rows(),
        }

    def hop(self) -> dict[str, Any]:
        """The freeze's upgrades, made on the rehearsal: issued once (journaled), each watched with
        the time spent in each MWAA status. The measured time is the freeze's upgrade estimate."""
        ctx = self.ctx
        done: list[dict[str, Any]] = []
        for hop in self.hops:
            key = f"issued_{hop.to_version}"
            recorded = ctx.journal.data(Step.REHEARSAL_HOP)
            issued_at = recorded.get(key)
            if issued_at is None:
                fields = hop_requirements(ctx.mwaa, lambda: ctx.s3, ctx.config, self.name, hop, ctx.emit)
                issued_at = time.time()
                ctx.mwaa.update_environment(self.name, AirflowVersion=hop.to_version, **fields)
                ctx.journal.note(Step.REHEARSAL_HOP, **{key: issued_at})
                ctx.emit(event(EventKind.REHEARSAL_HOP, environment=self.name, to=hop.to_version))
            result = self._watch(hop.to_version, not_before=issued_at)
            if result.outcome is not Outcome.SUCCEEDED:
                raise CutoverError(
                    f"the rehearsal's upgrade {hop.from_version} → {hop.to_version} ended "
                    f"{result.observation.status}: {result.observation.last_update_error or 'no detail'}",
                    hint=f"the same upgrade of {ctx.target} inside the freeze would fail too; nothing is "
                    f"paused. Read the rehearsal's logs ({self.name}), fix the cause, then `mwaa-iac cutover "
                    "--resume` rehearses again",
                )
            done.append(
                {
                    "from": hop.from_version,
                    "to": hop.to_version,
                    # wall time since it was issued (across a resume), at least what was watched
                    "seconds": round(max(time.time() - issued_at, result.elapsed), 1),
                    "statuses_s": result.to_dict()["durations_s"],
                }
            )
        seconds = round(sum(d["seconds"] for d in done), 1)
        ctx.emit(event(EventKind.REHEARSAL_HOP_DONE, environment=self.name, seconds=seconds, hops=done))
        return {"hops": done, "seconds": seconds}

    def check(self) -> dict[str, Any]:
        """On the upgraded rehearsal: the DAGs unpaused on the source parse (or their import errors),
        every import error it lists, the rows per table against before the upgrade, and one DAG run
        if --rehearsal-dag asked for it."""
        ctx = self.ctx
        listing = ctx.api(ctx.source).list_dags()
        unpaused = {
            d["dag_id"]: d.get("fileloc", "")
            for d in listing
            if not d.get("is_paused") and d["dag_id"] not in dr.MWAA_IAC_DAG_IDS
        }
        since = _done_at(ctx, Step.REHEARSAL_HOP)
        api = ctx.api(self.name)
        failing, unparsed, waited = wait_for_parse(ctx, api, self.name, sorted(unpaused), unpaused, since)
        errors = sorted(
            {_last_line(e.get("stack_trace")) + f" ({e.get('filename')})" for e in api.import_errors()}
        )
        before = ctx.result(Step.REHEARSAL_RESTORE).get("before", {})
        after = self._rows()
        history = history_findings(before, after)
        run = self._run_dag(api) if ctx.options.rehearsal_dag else None
        ctx.emit(
            event(
                EventKind.REHEARSAL_CHECKED,
                environment=self.name,
                failing=failing,
                unparsed=unparsed,
                import_errors=len(errors),
                history=history,
                **({"dag_run": run} if run else {}),
            )
        )
        return {
            "failing": failing,
            "unparsed": unparsed,
            "import_errors": errors[:50],
            "parse_s": waited,
            "rows": {t: [before.get(t), after.get(t)] for t in sorted(set(before) | set(after))},
            "history": history,
            "dag_run": run,
        }

    def delete(self) -> dict[str, Any]:
        """DeleteEnvironment (not waited for: MWAA takes its time and nothing depends on it), unless
        --keep-rehearsal (then `mwaa-iac cleanup` deletes it)."""
        ctx = self.ctx
        if ctx.options.keep_rehearsal:
            ctx.emit(event(EventKind.REHEARSAL_KEPT, environment=self.name))
            return {"kept": self.name}
        if ctx.mwaa.exists(self.name):
            ctx.mwaa.delete_environment(self.name)
        ctx.emit(event(EventKind.REHEARSAL_DELETED, environment=self.name))
        return {"deleted": self.name}

    def gate(self) -> dict[str, Any]:
        """Before anything is paused: the freeze's estimate (the rehearsal's upgrade and parse) printed
        and journaled; refused when it is longer than --max-freeze-minutes, or when DAGs unpaused
        on the source fail on 3.x (unless --accept-import-errors). The rehearsal is deleted after
        the gate passes: a refused one stays to be checked again on --resume (or inspected)."""
        ctx = self.ctx
        hop = ctx.result(Step.REHEARSAL_HOP)
        checked = ctx.result(Step.REHEARSAL_CHECK)
        estimate = round(float(hop.get("seconds", 0)) + float(checked.get("parse_s", 0)), 1)
        limit = ctx.options.max_freeze_minutes
        ctx.emit(
            event(
                EventKind.FREEZE_ESTIMATE,
                seconds=estimate,
                upgrade_s=hop.get("seconds"),
                parse_s=checked.get("parse_s"),
                max_freeze_minutes=limit,
            )
        )
        if limit is not None and estimate > limit * 60:
            raise CutoverError(
                f"the freeze would last about {estimate / 60:.1f} min (the rehearsal's upgrade "
                f"{hop.get('seconds')} s and parse {checked.get('parse_s')} s, plus pass 2), more than "
                f"--max-freeze-minutes {limit:g}",
                hint=f"nothing is paused; {ctx.source} keeps serving. Rerun with --resume and a larger "
                "--max-freeze-minutes, or `mwaa-iac cleanup` to abandon the cutover",
            )
        failing: dict[str, str] = checked.get("failing", {})
        unparsed: list[str] = checked.get("unparsed", [])
        if (failing or unparsed) and not ctx.options.accept_import_errors:
            # --resume checks the rehearsal again (it is kept until the gate passes): a fixed DAG file
            # passes then.
            ctx.journal.note(Step.REHEARSAL_CHECK, redo=True)
            listed = "; ".join(
                [f"{d}: {why}" for d, why in sorted(failing.items())[:10]]
                + [f"{d}: not parsed" for d in unparsed[:10]]
            )
            raise CutoverError(
                f"{len(failing) + len(unparsed)} DAG(s) unpaused on {ctx.source} fail on Airflow "
                f"{ctx.to_version} in the rehearsal: {listed}",
                hint=f"nothing is paused; {ctx.source} keeps serving. Fix the DAG files and rerun with "
                f"--resume (the rehearsal {self.name} is checked again), or rerun with --resume "
                "--accept-import-errors to go on with them failing after go-live; `mwaa-iac cleanup` "
                "abandons the cutover and deletes the rehearsal",
            )
        return {
            "estimate_s": estimate,
            "max_freeze_minutes": limit,
            "accepted": sorted([*failing, *unparsed]),
        }

    # -- helpers -----------------------------------------------------------------------------------

    def _watch(self, version: str | None, not_before: float | None = None) -> Any:
        ctx = self.ctx
        return Watcher(
            lambda: observe(ctx.mwaa.get_environment(self.name)),
            interval=ctx.options.poll_interval,
            max_interval=max(ctx.options.max_poll_interval, ctx.options.poll_interval),
            budget=ctx.options.budget_seconds,
            expect_version=version,
            not_before=not_before,
            on_event=lambda watched: ctx.emit(watched.to_dict()),
            sleep=ctx.sleep,
            clock=ctx.clock,
        ).run()

    def _rows(self) -> dict[str, int | None]:
        counts = count_source(self.ctx.api(self.name), sleep=self.ctx.sleep, clock=self.ctx.clock)
        return {t.table: t.rows for t in counts.tables if not t.estimated}

    def _run_dag(self, api: Any) -> dict[str, Any]:
        """Trigger --rehearsal-dag on the rehearsal (unpaused for the run, paused again) and wait."""
        ctx = self.ctx
        dag_id = str(ctx.options.rehearsal_dag)
        run_id = f"mwaa_iac_rehearsal__{ctx.journal.run_id}"
        if api.get_dag(dag_id) is None:
            return {"dag_id": dag_id, "state": "missing"}
        try:
            api.get_run(dag_id, run_id)
        except AirflowApiError as exc:
            if exc.status != 404:
                raise
            api.trigger(dag_id, run_id)
        api.set_paused(dag_id, False)
        start = ctx.clock()
        state = "queued"
        try:
            while ctx.clock() - start < ctx.options.run_timeout_seconds:
                state = api.get_run(dag_id, run_id).get("state", state)
                if state in ("success", "failed"):
                    break
                ctx.sleep(ctx.options.run_poll_seconds)
        finally:
            api.set_paused(dag_id, True)
        return {"dag_id": dag_id, "run_id": run_id, "state": state, "seconds": round(ctx.clock() - start, 1)}


def history_findings(before: dict[str, int | None], after: dict[str, int | None]) -> list[str]:
    """What the upgrade changed in the rows per table: a kept table that lost or gained rows is a
    finding; the tables the migration changes by design are named with why."""
    findings = []
    for table in KEPT_BY_MIGRATION:
        old, new = before.get(table), after.get(table)
        if old is not None and new is not None and old != new:
            findings.append(f"{table}: {old} rows before the upgrade, {new} after")
    for table, why in CHANGED_BY_MIGRATION.items():
        old, new = before.get(table), after.get(table)
        if old is not None and old != new:
            findings.append(f"{table}: {old} → {new if new is not None else 'gone'} ({why})")
    return findings


def _done_at(ctx: Context, step: str) -> float | None:
    done = [e for e in ctx.journal.entries if e.get("step") == step and e.get("event") == "done"]
    return done[-1]["at"] if done else None


def _last_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return (lines[-1] if lines else "import error")[:300]
