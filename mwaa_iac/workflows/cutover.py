"""`mwaa-iac cutover`: move a deployment to a new Airflow version on the other colour, carrying
history with mwaa-dr, in two passes so that scheduling pauses only for a short freeze.

Steps (each a journal entry, each idempotent; their names, order and phases are data in
:mod:`mwaa_iac.core.cutover_steps`; see docs/design.md §2):

1. preflight;
2. pass 1 while the source keeps running: deploy DR DAGs, create the target at the source's version,
   back up the source, restore into the target, fix up, verify, upgrade the target in place, health;
3. pass 2, the freeze: record the source's unpaused DAGs, pause them, drain running runs, back up
   again, clean the target, restore with the source version's factory, fix up, verify;
4. go live: unpause exactly the recorded DAGs on the target, flip routing, record the new colour;
5. report: freeze window, rows per table, durations per step.

Single pass (3.x targets, or ``--single-pass``): the freeze starts before pass 1 and there is no
pass 2. Without history (``--no-history``): no backup or restore at all.

mwaa-dr is delivered with the DR DAG files in the DAG folder (``mwaa_iac_dr/vendor/``), so neither
colour needs it in requirements.txt: the source is never updated (restarted) for it and the target
uses the source's requirements unchanged. The preflight step proves with a probe DAG on the source
that it imports mwaa-dr and can write to the DR bucket; the target's side is proven by pass 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import botocore.session

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError, has_schedule, logical_date
from mwaa_iac.adapters.cloudwatch import CloudWatch
from mwaa_iac.adapters.dr_bundle import load_bundle
from mwaa_iac.adapters.mwaa import MwaaApiError, MwaaClient
from mwaa_iac.adapters.routing import Routing
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr
from mwaa_iac.core.catalog import load_catalog
from mwaa_iac.core.config import Color, Deployment, EnvironmentConfig
from mwaa_iac.core.cutover_steps import (
    COPY_STEPS,
    DEPLOY_STEP,
    FREEZE_STEPS,
    HOP_PREFIX,
    PASS_1,
    PASS_2,
    Step,
    redone_after_abort,
)
from mwaa_iac.core.findings import Finding
from mwaa_iac.core.live import Role
from mwaa_iac.core.planner import HopKind, PathPlan, Strategy, plan_path
from mwaa_iac.core.status import Outcome, ready_for_update
from mwaa_iac.errors import MwaaIacError, UsageError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows import live
from mwaa_iac.workflows.backup import probe, probe_runner, read_manifest, run_restore, verify_restore
from mwaa_iac.workflows.dr_runs import (
    CutoverError,
    DagRunner,
    DeltaRefused,
    deploy_dr_files,
    remove_dr_files,
)
from mwaa_iac.workflows.journal import LOCK_NAME, Journal, holding_lock, open_journal
from mwaa_iac.workflows.state import StateStore, open_state
from mwaa_iac.workflows.upgrade import Check, PreflightError, Upgrade, UpgradeOptions
from mwaa_iac.workflows.watch import Watcher
from mwaa_iac.workspace import Workspace, commit_deployment, prepare_deployment, write_deployment

Emit = Callable[[dict[str, Any]], None]


COPY_FIELDS = ("mode", "base", "copied", "whole", "fallback")  # how pass 2 copied (the report's pass2)


@dataclass
class CutoverOptions(UpgradeOptions):
    single_pass: bool = False
    no_history: bool = False
    force_drain: bool = False
    drain_timeout_seconds: float = 600.0
    dag_timeout_seconds: float = 900.0
    run_timeout_seconds: float = 3 * 3600.0
    run_poll_seconds: float = 5.0
    import_error_grace_seconds: float = 60.0
    probe_timeout_seconds: float = 900.0
    # After go-live: how long no DR DAG record may come back on the new live colour (its DAG folder
    # sync, 30 s on MWAA, and a parse in progress) before retire-dr-dags is done.
    retire_settle_seconds: float = 60.0


JOURNAL = "cutover.journal.jsonl"


@dataclass
class Cutover:
    ws: Workspace
    config: EnvironmentConfig
    options: CutoverOptions
    mwaa: MwaaClient
    s3: S3
    routing: Routing
    cloudwatch: CloudWatch | None = None
    emit: Emit = lambda event: None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)  # wall clock (the health gate's minutes)
    state: StateStore | None = None  # journal and lock: mwaa.yaml's state setting unless given
    iam: Any = None  # execution roles (adapters.iam.Iam): created from the region unless given
    # (requirements path, Airflow version, object version) -> Check; None: no requirements check
    requirements_check: Callable[..., Check] | None = None
    journal: Journal | None = field(default=None, init=False)
    timings: dict[str, float] = field(default_factory=dict, init=False)
    # the source's DAG listing that recorded the freeze's DAGs (in this process), reused to pause them
    _listing: list[dict[str, Any]] | None = field(default=None, init=False, repr=False)

    # -- names -------------------------------------------------------------------------------------

    @property
    def source_color(self) -> Color:
        return self.config.active_color

    @property
    def target_color(self) -> Color:
        return self.config.active_color.other

    @property
    def source(self) -> str:
        return self.config.environment_name(self.source_color)

    @property
    def target(self) -> str:
        return self.config.environment_name(self.target_color)

    @property
    def to_version(self) -> str:
        return self.options.to or self.config.airflow_version

    @property
    def log(self) -> Journal:
        """The journal of the running cutover (opened by :meth:`run`)."""
        if self.journal is None:
            raise RuntimeError("the cutover's journal is not open")
        return self.journal

    @property
    def store(self) -> StateStore:
        if self.state is None:
            self.state = open_state(self.ws, self.config, self.s3)
        return self.state

    def api(self, name: str) -> AirflowApi:
        return AirflowApi(self.mwaa, name, sleep=self.sleep)

    # -- entry point -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        load_catalog().require(self.to_version)
        with holding_lock(self.store, "cutover", break_lock=self.options.break_lock):
            if self.options.resume:
                synced = self._sync_finished()
                if synced is not None:
                    self.emit(event(EventKind.CUTOVER_SUMMARY, **synced))
                    return synced
            else:
                self._require_live_source()
            if self.options.dry_run:
                plan, checks = self.preflight()
                if not all(c.ok for c in checks):
                    raise PreflightError(checks)
                return self._dry_run_report(plan)
            self.journal = self._open_journal()
            try:
                report = self._run()
            except Exception as exc:
                self._abort_freeze(exc)
                raise
            self.log.end("succeeded", report=report)
            self.emit(event(EventKind.CUTOVER_SUMMARY, **report))
            return report

    def _open_journal(self) -> Journal:
        journal = open_journal(
            self.store,
            JOURNAL,
            "cutover",
            {
                "to": self.to_version,
                "env": self.ws.env,
                "engine": self.options.engine,
                "source_color": str(self.source_color),
                "single_pass": self.options.single_pass,
                "no_history": self.options.no_history,
            },
            resume=self.options.resume,
        )
        if self.options.resume:
            # A resume continues the interrupted run as it was started, whatever flags were retyped.
            params = journal.params
            self.options = replace(
                self.options,
                engine=params.get("engine", self.options.engine),
                single_pass=bool(params.get("single_pass", self.options.single_pass)),
                no_history=bool(params.get("no_history", self.options.no_history)),
            )
            # The deployment record may have moved on (go-live done): use the journal's colours.
            source_color = Color(journal.params["source_color"])
            if source_color is not self.config.active_color:
                deployment = self.config.deployment.model_copy(update={"active_color": source_color})
                self.config = self.config.model_copy(update={"deployment": deployment})
            self.emit(event(EventKind.CUTOVER_RESUME, run_id=journal.run_id))
            self.journal = journal
            self._sync_record(journal)
        return journal

    # -- the live colour ---------------------------------------------------------------------------

    def _require_live_source(self) -> None:
        """Before anything (the dry run included): every source of truth must agree that the
        source serves and the target does not (a stale deployment record would otherwise make the
        cutover pause and overwrite the live colour)."""
        claims = live.read_claims(self.config, self.routing, self.store, live.describer(self.mwaa))
        live.require("cut over from", self.source_color, Role.LIVE, claims, self.config, self.ws.env)
        live.require(
            "create or overwrite", self.target_color, Role.NOT_LIVE, claims, self.config, self.ws.env
        )

    def _sync_record(self, journal: Journal) -> dict[str, Any] | None:
        """Make the deployment record say what the journal says (go-live done: the target is active,
        at the version go-live found; rolled back or never live: the source). Idempotent: written
        only when they disagree; returns what was written."""
        claim = live.cutover_claim(journal)
        recorded = self.ws.load().deployment
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
        write_deployment(self.ws.config_file, updated)
        synced = {
            "run_id": journal.run_id,
            "active_color": str(claim.color),
            "was": str(recorded.active_color),
            "versions": {"blue": updated.blue, "green": updated.green},
        }
        self.emit(event(EventKind.CUTOVER_RECORD_SYNCED, **synced))
        return synced

    def _sync_finished(self) -> dict[str, Any] | None:
        """``--resume`` of a cutover whose journal finished: when the deployment record disagrees
        with it (the record written by go-live was lost), write it again and return the cutover's
        report with ``record_synced``; None otherwise (open_journal then says nothing is left)."""
        journal = Journal.load(self.store, JOURNAL)
        if journal is None or not journal.finished:
            return None
        synced = self._sync_record(journal)
        if synced is None:
            return None
        end = next(e for e in reversed(journal.entries) if e.get("event") == "end")
        return {**end.get("data", {}).get("report", {}), "record_synced": synced}

    # -- the flow ----------------------------------------------------------------------------------

    def _run(self) -> dict[str, Any]:
        """The steps in the order of ``core.cutover_steps.flow()`` (done ones are skipped)."""
        plan_data = self._step(Step.PREFLIGHT, self._preflight_step)
        history = plan_data["history"]
        two_pass = plan_data["two_pass"]
        hops = [tuple(h) for h in plan_data["hops"]]
        source_version = plan_data["source_version"]
        factory = dr.factory_for(source_version) if history else None

        if history:
            self._step(Step.DEPLOY_DR, lambda: self._deploy_dr_dags(factory, PASS_1))
        self._step(Step.TARGET_REQUIREMENTS, self._target_requirements)
        if not two_pass and history:
            self._freeze()  # single pass: the freeze covers the whole copy and the upgrade
        create_version = source_version if history else self.to_version
        self._step(Step.CREATE_TARGET, lambda: self._create_target(create_version))
        rows: dict[str, Any] = {}
        if history:
            rows = self._copy_pass(PASS_1)
        in_place = [h for h in hops if h[0] == str(HopKind.IN_PLACE)]
        if in_place:
            self._upgrade_target(in_place)
        self._step(Step.HEALTH_TARGET, self._health_target)
        if two_pass and history:
            # Deploy pass 2's DAG files before the freeze so that their parsing is not frozen time.
            self._step(Step.DEPLOY_DR_P2, lambda: self._deploy_dr_dags(factory, PASS_2))
            self._step(Step.PARSE_DR_P2, self._wait_for_p2_dags)
            # Pass 1's rows stay on the target (not live, its DAGs paused): pass 2 copies only what
            # changed on the source since (docs/design.md §7).
            self._freeze()
            rows = self._copy_pass(PASS_2)
        self._freeze()  # without history nothing froze yet: pause the source right before go-live
        self._step(Step.GO_LIVE, self._go_live)
        self._step(Step.RETIRE_DR_DAGS, self._remove_dr_dags)
        return self._report(rows, history, two_pass)

    def _step(self, name: str, action: Callable[[], Any]) -> Any:
        """Run ``action`` as journal step ``name`` unless it is done; its result is recorded."""
        journal = self.log
        if journal.state(name) == "done":
            return journal.data(name).get("result")
        self.emit(event(EventKind.STEP_STARTED, step=name))
        journal.started(name)
        start = self.clock()
        result = action()
        elapsed = self.clock() - start
        journal.done(name, result=result, elapsed_s=round(elapsed, 3), ended=time.time())
        self.emit(event(EventKind.STEP_DONE, step=name, elapsed_s=round(elapsed, 1)))
        return result

    # -- preflight ---------------------------------------------------------------------------------

    def preflight(self) -> tuple[PathPlan, list[Check]]:
        checks: list[Check] = []

        def check(name: str, ok: bool, detail: str) -> None:
            item = Check(name, ok, detail)
            checks.append(item)
            self.emit(event(EventKind.PREFLIGHT_CHECK, **item.to_dict()))

        history = not self.options.no_history
        try:
            observation = self.mwaa.observe(self.source)
        except MwaaApiError as exc:
            check("source exists", False, exc.message)
            return plan_path(self.config.active_version, self.to_version, Strategy.CUTOVER), checks
        current = observation.airflow_version or self.config.active_version
        check("source exists", True, f"{self.source} runs Airflow {current}")
        plan = plan_path(current, self.to_version, Strategy.CUTOVER, self._today(), history=history)
        if plan.allowed:
            check("path allowed", True, " → ".join([current] + [h.to_version for h in plan.hops[1:]]))
        else:
            check(
                "path allowed", False, "; ".join(plan.refusals) + "".join(f" (hint: {h})" for h in plan.hints)
            )
        why = ready_for_update(observation)
        check("source ready", why is None, why or observation.status)
        check("engine", *self._engine_check())
        if plan.allowed:
            for item in self._requirements_checks(plan):
                check(item.name, item.ok, item.detail)
        target_free = not self.mwaa.exists(self.target)
        check(
            "target colour free",
            target_free,
            f"{self.target} does not exist"
            if target_free
            else f"{self.target} already exists and is not live (routing, the deployment record and the "
            f"last cutover agree): if it is left over from an abandoned cutover, check it, then "
            f"`mwaa-iac cleanup --env {self.ws.env}` deletes it",
        )
        if target_free:
            role = self._role_preflight()
            check(
                role.name,
                not role.failed,
                role.detail if role.ok else role.text().removeprefix(f"{role.name}: "),
            )
        if history:
            dr_config = self.config.dr
            findings = self.s3.bucket_findings(dr_config.backup_bucket, require_kms=dr_config.require_kms)
            for finding in findings:
                detail = finding.detail
                if not finding.ok:
                    warning = "" if finding.blocking else "warning: "
                    detail = warning + finding.text().removeprefix(f"{finding.name}: ")
                check(
                    f"backup bucket: {finding.name.removeprefix('backup bucket ')}",
                    not finding.failed,
                    detail,
                )
        check("lock", True, f"held by this cutover ({self.store.where(LOCK_NAME)})")
        return plan, checks

    def _preflight_step(self) -> dict[str, Any]:
        plan, checks = self.preflight()
        if not all(c.ok for c in checks):
            self.log.end("preflight-failed", checks=[c.to_dict() for c in checks])
            raise PreflightError(checks)
        two_pass = bool(plan.two_pass) and not self.options.single_pass
        result: dict[str, Any] = {
            "source_version": plan.from_version,
            "hops": [[str(h.kind), h.from_version, h.to_version, h.reason] for h in plan.hops],
            "history": bool(plan.history_carried),
            "two_pass": two_pass,
        }
        if plan.history_carried:
            result["probe"] = self._probe_source(dr.factory_for(plan.from_version))
        return result

    def _probe_source(self, factory: str) -> dict[str, Any]:
        """Before anything is created or changed: the source imports the delivered mwaa-dr and can
        write to the DR bucket (the target does not exist yet: pass 1 proves its side)."""
        vendor = deploy_dr_files(
            self.s3,
            self.config.source.bucket_name,
            self.config.source.dag_s3_path,
            [dr.render_probe_dag(factory, self.config.name)],
        )
        self.emit(event(EventKind.DR_VENDOR, **vendor))
        runner = DagRunner(self.api(self.source), self.options, self.emit, self.sleep, self.clock)
        try:
            result = probe(
                probe_runner(runner, self.options),
                self.config,
                factory,
                role="the cutover's backups",
                cloudwatch=self.cloudwatch,
            )
        except CutoverError as exc:
            self.log.end("preflight-failed", probe=exc.message)
            raise
        return {**result, "versions": vendor["versions"]}

    def catchup_without_history(self) -> list[dict[str, Any]]:
        """With ``--no-history``: the source's unpaused scheduled DAGs that catch up. The target has
        none of their runs, so after go-live each runs every interval since its start_date."""
        if not self.options.no_history:
            return []
        api = self.api(self.source)
        found = []
        try:
            for dag in api.list_dags():
                if dag.get("is_paused") or dag["dag_id"] in dr.MWAA_IAC_DAG_IDS:
                    continue
                details = api.dag_details(dag["dag_id"]) or {}
                if details.get("catchup") and has_schedule(details):
                    found.append({"dag_id": dag["dag_id"], "start_date": details.get("start_date")})
        except MwaaIacError:
            return []  # the source is not reachable: the preflight says so
        return found

    def _dry_run_report(self, plan: PathPlan) -> dict[str, Any]:
        two_pass = bool(plan.two_pass) and not self.options.single_pass
        return {
            "dry_run": True,
            "source": self.source,
            "target": self.target,
            "from": plan.from_version,
            "to": self.to_version,
            "history_carried": plan.history_carried,
            "passes": 2 if two_pass else 1,
            "freeze": "pass 2 only (minutes)" if two_pass else "from before the clone until go-live",
            "hops": [h.to_dict() for h in plan.hops],
            "notes": list(plan.notes),
            "mwaa_dr_delivery": self._delivery_text(plan) if plan.history_carried else None,
            "in_flight_policy": self._in_flight_policy(bool(plan.history_carried)),
            "catchup_without_history": self.catchup_without_history(),
            "sizing": self._sizing(plan, two_pass),
        }

    def _sizing(self, plan: PathPlan, two_pass: bool) -> dict[str, Any]:
        """The sizing estimate from the live source's row counts (never fails the dry run)."""
        from mwaa_iac.workflows import sizing as sizing_workflow  # here: keeps the imports unchanged

        if not plan.history_carried:
            return sizing_workflow.unavailable(
                "no history is carried: nothing is copied", self.source, skipped=True
            )
        return sizing_workflow.read_sizing(
            self.mwaa,
            self.source,
            passes=2 if two_pass else 1,
            drain_timeout_s=self.options.drain_timeout_seconds,
            sleep=self.sleep,
            clock=self.clock,
        )

    def _in_flight_policy(self, history: bool) -> list[str]:
        """What the freeze does with work in flight on the source (README: In-flight work during the
        freeze)."""
        minutes = self.options.drain_timeout_seconds / 60
        source, target = self.source, self.target
        lines = [
            f"after pausing, the freeze waits up to {minutes:g} min (--drain-minutes) for the task "
            f"instances executing on {source} (queued, running, restarting); runs are not waited for: "
            "the scheduler queues no task of a paused DAG, so a run in flight stays 'running' until its "
            "last executing task ends (then the scheduler's check of paused DAGs, about once a minute, "
            "may mark it finished and run its DAG-level callback)",
        ]
        if history:
            lines += [
                f"runs still 'running' are copied as they are and continue on {target} after go-live: "
                f"their task instances left queued, running or restarting are reset so that {target}'s "
                "scheduler runs them; deferred, up_for_retry and scheduled ones are copied as they are "
                f"(a deferred one starts its trigger again on {target})",
                f"a task instance that finished on {source} never runs again on {target}",
                "a run copied 'running' whose tasks all finished may be marked finished on both colours: "
                f"its DAG-level on_success/on_failure callback can then run on {source} and again on "
                f"{target}",
            ]
        else:
            lines.append(
                f"without history nothing is copied: runs in flight stay on {source}, unfinished; "
                f"{target} starts without them"
            )
        if self.options.force_drain:
            lines.append(
                "--force-drain: at the timeout the cutover continues; the task instances still executing "
                "are listed by name as 'may run twice' in the report and the journal"
                + (f" ({target} runs them again)" if history else "")
            )
        else:
            lines.append(
                f"at the timeout the cutover stops and gives scheduling back to {source} (wait, then "
                "--resume; or --resume --force-drain: the task instances still executing are then listed "
                "as 'may run twice' in the report and the journal)"
            )
        return lines

    def _delivery_text(self, plan: PathPlan) -> list[str]:
        bundle = load_bundle()
        folder = f"s3://{self.config.source.bucket_name}/{self.config.source.dag_s3_path.strip('/')}"
        return [
            f"{bundle.describe()} delivered in the DAG folder ({folder}/{dr.VENDOR_FOLDER}/, hidden from "
            f"parsing by {dr.AIRFLOWIGNORE}): {self.source}'s requirements are not changed and it is not "
            "restarted (no UpdateEnvironment on the source); the target uses the source's requirements",
            f"before anything is changed, a probe DAG ({dr.PROBE_DAG_ID}) on {self.source} proves that it "
            f"imports {dr.factory_for(plan.from_version)} and can write to s3://{self.config.dr.backup_bucket}/",
        ]

    # -- DR DAGs ----------------------------------------------------------------------------------------

    def _prefix(self, label: str) -> str:
        return dr.backup_prefix(self.config.dr.path_prefix, self.config.name, self.log.run_id, label)

    def _deploy_dr_dags(self, factory: str | None, label: str) -> dict[str, Any]:
        """The DR DAG files of a pass, with the vendored mwaa-dr (uploaded where it changed)."""
        assert factory is not None
        prefix = self._prefix(label)
        files = [
            dr.render_backup_dag(factory, prefix, self.config.name, label),
            dr.render_restore_dag(factory, prefix, self.config.name, label),
        ]
        source = self.config.source
        vendor = deploy_dr_files(self.s3, source.bucket_name, source.dag_s3_path, files)
        self.emit(event(EventKind.DR_VENDOR, **vendor))
        self.emit(event(EventKind.DR_DEPLOYED, prefix=prefix, files=[f.relative_path for f in files]))
        return {"prefix": prefix, "markers": {f.dag_id: f.marker for f in files}, "vendor": vendor}

    def _remove_dr_dags(self) -> dict[str, Any]:
        """Remove the DR DAG files, then everything of the tool from the new live colour: its DAG
        records (their runs) and its variables (the restore marker: no resume needs it after
        go-live), so that the live colour holds only the user's DAGs and variables."""
        source = self.config.source
        removed = remove_dr_files(self.s3, source.bucket_name, source.dag_s3_path)
        api = self.api(self.target)
        result = remove_tool_records(api, self.emit)
        # The target's copy of the DAG folder keeps the files until its next sync (MWAA: every 30 s),
        # and a parse meanwhile writes their DAG records again: delete what comes back until none
        # has for retire_settle_seconds.
        quiet_since, again = self.clock(), 0
        while self.clock() - quiet_since < self.options.retire_settle_seconds:
            self.sleep(min(10.0, self.options.retire_settle_seconds))
            if [d for d in dr.MWAA_IAC_DAG_IDS if api.has_dag(d)]:
                remove_tool_records(api, self.emit)
                quiet_since, again = self.clock(), again + 1
        return {"removed": removed, **result, "deleted_again": again}

    def _markers(self, label: str) -> dict[str, str]:
        return self.log.data(DEPLOY_STEP[label]).get("result", {}).get("markers", {})

    def _frozen(self) -> bool:
        return self.log.state(Step.PAUSE_SOURCE) == "done" and self.log.state(Step.GO_LIVE) != "done"

    def _dr_run_id(self, dag_id: str, label: str, attempt: int) -> str:
        return dr.run_id(dag_id, self.log.run_id, label if attempt <= 0 else f"{label}a{attempt}")

    def _run_dag(
        self,
        name: str,
        dag_id: str,
        label: str,
        conf: dict[str, Any] | None = None,
        *,
        attempt: int = 0,
    ) -> dict[str, Any]:
        """Run ``dag_id`` of pass ``label``; each ``attempt`` after the first has a run id of its own
        (a retried step must never be handed back the run of an earlier attempt)."""
        runner = DagRunner(self.api(name), self.options, self.emit, self.sleep, self.clock)
        return runner.run(
            dag_id,
            self._dr_run_id(dag_id, label, attempt),
            self._markers(label)[dag_id],
            conf,
            backoff=not self._frozen(),
        )

    # -- pass steps --------------------------------------------------------------------------------

    def _copy_pass(self, label: str) -> dict[str, Any]:
        """Back up the source and restore into the target. Each attempt of a step (a retry after a
        failure, a resume after an aborted freeze) runs the DAG with a run id of its own, and each
        backup attempt writes a prefix of its own: a retried step never gets an earlier run back,
        and a fresh backup never mixes with an older one. A restore replaces the target's copied
        tables in one transaction, so a failed one leaves nothing to clean."""
        backup_step, verify_backup_step, restore_step, verify_restore_step = COPY_STEPS[label]
        backup = self._step(backup_step, lambda: self._backup(label))
        counts = self._step(verify_backup_step, lambda: self._backup_counts(backup["prefix"]))
        try:
            outcome = self._step(restore_step, lambda: self._restore(label, backup["prefix"]))
        except DeltaRefused as exc:
            if counts.get("mode") != "delta":
                raise
            # The target could not take the delta (nothing changed on it): copy everything, at once
            # (still frozen), and on any resume of this cutover.
            self.emit(
                event(EventKind.DR_DELTA_FALLBACK, reason=f"the target refused the delta: {exc.reason}")
            )
            for step in (backup_step, verify_backup_step, restore_step):
                self.log.note(step, redo=True, full=True, refused=exc.reason)
            return self._copy_pass(label)
        try:
            return self._step(verify_restore_step, lambda: self._verify_restore(counts, outcome))
        except Exception:
            # The recorded restore is what failed verification: --resume restores again (an attempt
            # of its own; the restore replaces the target's copied tables, so nothing doubles).
            self.log.note(restore_step, redo=True)
            raise

    def _backup(self, label: str) -> dict[str, Any]:
        attempt = self._attempt(COPY_STEPS[label][0]) - 1  # this attempt's "started" is recorded
        prefix = self._prefix(label) + (f"-a{attempt}" if attempt > 0 else "")
        since = self._delta_base() if label == PASS_2 else None
        conf = dr.copy_conf(self.config.dr.backup_bucket, prefix, since)
        run = self._run_dag(self.source, dr.BACKUP_DAG_ID, label, conf, attempt=attempt)
        return {**run, "prefix": prefix, "since": since}

    def _delta_base(self) -> str | None:
        """The backup the target holds (its restore marker), which pass 2's backup is a delta
        against; None for a full backup (the delta was refused before, or no marker is readable)."""
        backup = self.log.data(COPY_STEPS[PASS_2][0])
        if backup.get("full"):
            if backup.get("full_reason") and not backup.get("refused"):
                self.emit(event(EventKind.DR_DELTA_FALLBACK, reason=backup["full_reason"]))
            return None
        try:
            value = self.api(self.target).get_variable_value(dr.RESTORE_MARKER_VARIABLE)
        except AirflowApiError as exc:
            reason = f"the target's restore marker could not be read ({exc.message})"
        else:
            held = dr.restore_marker(value)
            if held:
                return held
            reason = f"{self.target} has no readable restore marker ({dr.RESTORE_MARKER_VARIABLE})"
        self.emit(event(EventKind.DR_DELTA_FALLBACK, reason=reason))
        return None

    def _restore(self, label: str, prefix: str) -> dict[str, Any]:
        attempt = self._attempt(COPY_STEPS[label][2]) - 1
        conf = dr.copy_conf(self.config.dr.backup_bucket, prefix)
        run_id = self._dr_run_id(dr.RESTORE_DAG_ID, label, attempt)
        runner = DagRunner(self.api(self.target), self.options, self.emit, self.sleep, self.clock)
        outcome = run_restore(
            runner, run_id, self._markers(label)[dr.RESTORE_DAG_ID], conf, backoff=not self._frozen()
        )
        hold = str(outcome.get("hold") or "")
        if hold.startswith("not installed"):
            self.emit(
                event(
                    EventKind.PROBE_WARNING,
                    environment=self.target,
                    detail=f"the hold is {hold}: until go-live, a DAG created unpaused in the shared DAG "
                    f"folder is scheduled on {self.target} too",
                )
            )
        return {**outcome, "run_id": run_id}

    def _wait_for_p2_dags(self) -> dict[str, Any]:
        markers = self._markers(PASS_2)
        DagRunner(self.api(self.source), self.options, self.emit, self.sleep, self.clock).wait_for_dag(
            dr.BACKUP_DAG_ID, markers[dr.BACKUP_DAG_ID]
        )
        target = DagRunner(self.api(self.target), self.options, self.emit, self.sleep, self.clock)
        target.wait_for_dag(dr.RESTORE_DAG_ID, markers[dr.RESTORE_DAG_ID])
        return {"parsed": sorted(markers)}

    def _attempt(self, step: str) -> int:
        """How many times ``step`` was started (its notes — aborted, redo — are not attempts)."""
        return self.log.attempts(step)

    def _backup_counts(self, prefix: str) -> dict[str, Any]:
        bucket = self.config.dr.backup_bucket
        result = read_manifest(self.s3, bucket, prefix)
        self.emit(event(EventKind.DR_BACKUP_VERIFIED, prefix=prefix, tables=len(result["rows"])))
        copy = dr.manifest_copy(result["manifest"])
        if copy["mode"] == "delta":
            rows = sum(result["rows"].values())
            self.emit(
                event(
                    EventKind.DR_DELTA,
                    prefix=prefix,
                    base=copy["base"],
                    copied=sum(copy["copied"].values()),
                    rows=rows,
                    whole=copy["whole"],
                )
            )
        elif copy["fallback"]:
            self.emit(event(EventKind.DR_DELTA_FALLBACK, reason=copy["fallback"]))
        return {"prefix": prefix, "rows": result["rows"], **copy}

    def _verify_restore(self, backup: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
        verified = verify_restore(self.target, backup["rows"], outcome)
        self.emit(event(EventKind.DR_RESTORE_VERIFIED, tables=verified["tables"]))
        if verified["reset"]:
            self.emit(event(EventKind.DR_RESET_ON_TARGET, task_instances=verified["reset"]))
        return verified

    # -- target environment ------------------------------------------------------------------------

    def _target_requirements(self) -> dict[str, Any] | None:
        """The target's requirements are the source's, unchanged (mwaa-dr comes in the DAG folder):
        recorded here (path and object version, as the source runs them), or None without any."""
        source = self.mwaa.get_environment(self.source)
        path = source.get("RequirementsS3Path") or self.config.source.requirements_s3_path
        if not path:
            return None
        return {"path": path, "object_version": source.get("RequirementsS3ObjectVersion")}

    def _create_target(self, version: str) -> dict[str, Any]:
        if self.options.engine == "terraform":
            # Also when the target exists: a lost state write is repaired by importing it.
            self._terraform_phase("clone", version, None)
        elif not self.mwaa.exists(self.target):
            source = self.mwaa.get_environment(self.source)
            fields = create_fields_from(source)  # the source's requirements, as they are
            fields.update(AirflowVersion=version, ExecutionRoleArn=self._target_role(source))
            fields["Tags"] = clone_tags(source, self.target_color)
            self.mwaa.create_environment(self.target, **fields)
            self.emit(event(EventKind.TARGET_CREATE_ENVIRONMENT, name=self.target, version=version))
        result = Watcher(
            self._observe_target_creation(),
            interval=self.options.poll_interval,
            max_interval=max(self.options.max_poll_interval, self.options.poll_interval),
            budget=self.options.budget_seconds,
            on_event=lambda watched: self.emit(watched.to_dict()),
            sleep=self.sleep,
            clock=self.clock,
        ).run()
        if result.outcome is not Outcome.SUCCEEDED:
            raise CutoverError(
                f"creating {self.target} ended {result.observation.status}: "
                f"{result.observation.last_update_error or 'no detail'}",
                hint=f"{self.source} is untouched and keeps serving",
            )
        self._record(**{str(self.target_color): version})
        return {"version": version, **result.to_dict()}

    def _observe_target_creation(self) -> Callable[[], Any]:
        """GetEnvironment of the target while it is created. In endpoint mode CUSTOMER, MWAA waits in
        PENDING until the customer creates the environment's VPC endpoints: say once which ones
        (their service names are known only now) and how, instead of waiting silently."""
        from mwaa_iac.adapters.mwaa import observe
        from mwaa_iac.adapters.network import endpoint_fix, endpoint_services

        told = False

        def read() -> Any:
            nonlocal told
            environment = self.mwaa.get_environment(self.target)
            if environment.get("Status") == "PENDING" and not told:
                services = endpoint_services(environment)
                told = True
                self.emit(
                    event(
                        EventKind.TARGET_PENDING_ENDPOINTS,
                        environment=self.target,
                        services=services,
                        fix=endpoint_fix(environment, services)
                        if services
                        else "see the environment in the MWAA console (endpoint mode CUSTOMER)",
                    )
                )
            return observe(environment)

        return read

    def _iam(self) -> Any:
        if self.iam is None:
            from mwaa_iac.adapters.iam import Iam

            self.iam = Iam(self.config.region)
        return self.iam

    def _role_scope(self, source: dict[str, Any]) -> Any:
        from mwaa_iac.adapters.bucket_check import default_kms_key
        from mwaa_iac.workflows.roles import scope_for

        key = default_kms_key(self.s3.client, self.config.dr.backup_bucket)
        return scope_for(self.config, self.target, source, dr_kms_key=key)

    def _requirements_checks(self, plan: PathPlan) -> list[Check]:
        """The source's requirements.txt, at the object version the source runs (what the target is
        created with), against the constraints of every version the target is upgraded to (as
        `upgrade` does; AWS: each version's constraints apply to its install)."""
        if self.options.skip_requirements_check:
            return [Check("requirements", True, "skipped (--skip-requirements-check)")]
        source = self.mwaa.get_environment(self.source)
        path = source.get("RequirementsS3Path") or self.config.source.requirements_s3_path
        if not path:
            return [Check("requirements", True, "no requirements file")]
        if self.requirements_check is None:
            return [Check("requirements", True, "not checked here (no check available)")]
        versions = [h.to_version for h in plan.hops if h.kind is HopKind.IN_PLACE]
        if self.options.constraints:  # one offline file: it is the target's
            versions = [self.to_version]
        object_version = source.get("RequirementsS3ObjectVersion")
        checks = []
        for version in versions or [plan.from_version]:
            result = self.requirements_check(path, version, object_version)
            checks.append(Check(f"requirements for {version}", result.ok, result.detail))
        return checks

    def _engine_check(self) -> tuple[bool, str]:
        """The deployment's engine (the ``mwaa-iac:engine`` tag) is the one asked for."""
        from mwaa_iac.core.engines import engine_conflict

        tags = self.mwaa.get_environment(self.source).get("Tags")
        conflict = engine_conflict(tags, self.options.engine, self.source, self.ws.env)
        return conflict is None, conflict or f"{self.options.engine}"

    def _role_preflight(self) -> Finding:
        """Which execution role the target gets, and whether it can serve the target (trust
        aws:SourceArn/aws:SourceAccount, logs, metrics, DAG folder, DR prefix and key)."""
        from mwaa_iac.workflows.roles import choose_target_role

        name = f"execution role for {self.target}"
        if self.options.engine == "terraform" and not self.config.execution_role_arn:
            return Finding(name, True, f"modules/mwaa-environment creates {self.target}'s own role")
        try:
            source = self.mwaa.get_environment(self.source)
            choice = choose_target_role(self._iam(), self.config, source, self._role_scope(source))
        except MwaaIacError as exc:
            return Finding(name, False, exc.message, fix=exc.hint)
        return choice.finding(self.target)

    def _target_role(self, source: dict[str, Any]) -> str:
        """The target's execution role ARN (api engine): reused, or created like the module's."""
        from mwaa_iac.workflows.roles import choose_target_role, create_target_role

        scope = self._role_scope(source)
        choice = choose_target_role(self._iam(), self.config, source, scope)
        if not choice.ok:
            raise CutoverError(choice.text(), hint=f"{self.source} is untouched and keeps serving")
        if choice.arn is not None:
            return choice.arn
        tags = {"mwaa-iac:deployment": self.config.name, "mwaa-iac:color": str(self.target_color)}
        arn = create_target_role(self._iam(), choice, scope, tags)
        self.emit(event(EventKind.TARGET_ROLE_CREATED, role=arn, environment=self.target))
        return arn

    def _terraform_phase(self, kind: str, version: str, requirements: str | None) -> None:
        """Plan, guard and apply phase ``<kind>-<target>``. Both colours keep the requirements path
        and object versions they run (GetEnvironment); the target, before it exists, gets what the
        source runs (recorded by ``target-requirements``). A target that exists in AWS but not in
        the state (an apply whose state write was lost) is imported first."""
        from mwaa_iac.core.phase_layout import Phase, PhaseKind
        from mwaa_iac.workflows.phase import (
            apply_phase,
            files_of,
            live_slot_files,
            plan_phase_adopting,
            runner_for,
        )

        runner = runner_for(
            self.ws,
            self.options.terraform_bin,
            lambda line: self.emit(event(EventKind.TERRAFORM_OUTPUT, line=line)),
        )
        phase = Phase(PhaseKind(kind), self.target_color)
        reqs, versions = live_slot_files(self.mwaa, self.config)
        if self.target_color not in reqs and self.target_color not in versions:
            recorded = self._recorded_requirements()
            _, source_pins = files_of(self.mwaa.get_environment(self.source))
            pins = {k: v for k, v in source_pins.items() if k != "requirements_s3_object_version"}
            if recorded:
                reqs[self.target_color] = recorded["path"]
                if recorded.get("object_version"):
                    pins["requirements_s3_object_version"] = recorded["object_version"]
            if pins:
                versions[self.target_color] = pins
        if requirements:
            reqs[self.target_color] = requirements
        result = plan_phase_adopting(
            self.ws,
            self.config,
            phase,
            runner,
            self.mwaa.exists,
            lambda address, name: self.emit(event(EventKind.TERRAFORM_IMPORTED, address=address, name=name)),
            version=version,
            requirements=reqs,
            object_versions=versions,
        )
        self.emit(event(EventKind.TERRAFORM_PLAN, **result.summary.to_dict(), guard=result.verdict.to_dict()))
        apply_phase(result, runner)

    def _recorded_requirements(self) -> dict[str, Any] | None:
        if self.journal is None:
            return None
        return self.log.data(Step.TARGET_REQUIREMENTS).get("result")

    def _target_upgrade(self) -> Upgrade:
        """The in-place upgrade machinery, aimed at the target colour, writing into this journal."""
        return Upgrade(
            self.ws,
            self.config,
            self.options,
            self.mwaa,
            self.cloudwatch,
            emit=self.emit,
            sleep=self.sleep,
            clock=self.clock,
            color=self.target_color,
            now=self.now,
            owns_journal=False,
        )

    def _upgrade_target(self, hops: list[tuple]) -> None:
        from mwaa_iac.core.planner import Hop

        upgrade = self._target_upgrade()
        upgrade.run_hops(self.log, [Hop(HopKind(k), f, t, r) for k, f, t, r in hops], prefix=HOP_PREFIX)
        self.config = upgrade.config

    def _health_target(self) -> dict[str, Any]:
        self._target_upgrade().health_gate(self.log, step=Step.HEALTH_GATE_TARGET)
        return {"minutes": self.options.health_minutes}

    # -- freeze and go-live ------------------------------------------------------------------------

    def _freeze(self) -> None:
        recorded = self._step(Step.RECORD_DAGS, self._record_unpaused)
        self._step(Step.PAUSE_SOURCE, lambda: self._pause_source(recorded["dags"]))
        self._step(Step.DRAIN_SOURCE, self._drain)

    def _abort_freeze(self, error: BaseException | None = None) -> None:
        """A step failed. Inside the freeze (pause-source started, go-live not done) give scheduling
        back to the source: a half-done go-live is undone first (the recorded DAGs paused again on
        the target, routing pointed back), then the recorded DAGs are unpaused on the source; the
        freeze's steps and pass 2's copy steps that ran are marked aborted, so that --resume pauses
        again and takes a fresh backup (runs made on the source meanwhile reach the target). In every
        case the error's hint is completed with the state each colour is in."""
        journal = self.journal
        if journal is None:
            return
        # A journal may already be closed here (by an older release's failed hop): scheduling is
        # given back all the same, and the hint says that the cutover cannot be resumed.
        live = journal.state(Step.GO_LIVE) == "done"
        if not _frozen(journal) or live:
            _explain(error, self._state_text(live))
            return
        half_done_go_live = _go_live_half_done(journal)
        undo = _give_back(
            journal, self.api(self.source), self.api(self.target), self._route_back, self._drain_target
        )
        if undo.get("failed_on") == self.target:
            # The source stays paused so that the two colours never run the same DAGs: --resume
            # continues from the failed step (the journal is left as it is).
            self.emit(event(EventKind.FREEZE_ABORT_FAILED, **undo))
            _explain(
                error,
                f"state: the half-done go-live could not be undone on {self.target} ({undo['error']}): "
                f"{self.target} may schedule some of the recorded DAGs; {self.source}'s DAGs stay paused. "
                + self._next_text("finishes the go-live")
                + f"; to give up instead, pause {', '.join(undo['dags'])} on {self.target} and unpause them "
                f"on {self.source}",
            )
            return
        steps = _aborted_steps(journal, keep_recorded=bool(undo.get("failed_on")))
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
                full_reason=f"the undone go-live let {self.target} schedule: pass 2 copies everything",
            )
        if undo.get("failed_on"):
            self.emit(event(EventKind.FREEZE_ABORT_FAILED, **undo))
            _explain(
                error,
                f"state: {self.source}'s DAGs could not all be unpaused ({undo['error']}): "
                f"{undo['unpaused_on_source']} of {len(undo['dags'])} are scheduling again there; "
                f"{self.target} is not live and schedules nothing. "
                + self._next_text(f"pauses {self.source} again and takes a fresh backup")
                + f" (to schedule meanwhile, unpause {', '.join(undo['dags'])} on {self.source})",
            )
            return
        self.emit(
            event(
                EventKind.FREEZE_ABORTED,
                environment=self.source,
                unpaused=undo["unpaused_on_source"],
                target=self.target,
                repaused_on_target=undo["repaused_on_target"],
                routed_back=undo["routed_back"],
                may_run_twice=undo["may_run_twice"],
                redo=steps,
            )
        )
        _explain(error, self._state_text(False, aborted=undo))

    def _state_text(self, live: bool, aborted: dict[str, Any] | None = None) -> str:
        """What state each colour is in after a failure, and what --resume does."""
        journal = self.log
        if live:
            return (
                f"state: {self.target} is live (routing points at it) and schedules the recorded DAGs; "
                f"{self.source}'s stay paused. `mwaa-iac cutover --resume` finishes the last steps"
            )
        if journal.state(Step.CREATE_TARGET) is None:
            target = f"{self.target} was not created"
        else:
            target = f"{self.target} is not live: routing points at {self.source} and its DAGs are paused"
        if aborted is None:
            next_text = self._next_text("continues from the failed step")
            return f"state: {self.source} is untouched and keeps scheduling; {target}. {next_text}"
        undone = ""
        if aborted["repaused_on_target"]:
            undone = (
                f" (the half-done go-live was undone: {aborted['repaused_on_target']} DAG(s) paused again on "
                f"{self.target}{', routing pointed back' if aborted['routed_back'] else ''})"
            )
        two_pass = journal.data(Step.PREFLIGHT).get("result", {}).get("two_pass")
        if two_pass:
            resume = "pauses it again and takes a fresh backup (runs made meanwhile reach the target)"
        elif journal.state(Step.BACKUP_P1) == "done":
            resume = (
                "pauses it again and continues; single pass: the copy is not taken again, so runs made on "
                f"{self.source} until then do not reach {self.target}"
            )
        else:
            resume = "pauses it again and continues"
        return (
            f"state: the freeze was aborted: {self.source} schedules again ({aborted['unpaused_on_source']} "
            f"DAG(s) unpaused){undone}; {target}. " + self._next_text(resume)
        )

    def _next_text(self, resume: str) -> str:
        """What the user can do next: resume (saying what that does) or abandon."""
        end = next((e for e in reversed(self.log.entries) if e.get("event") == "end"), None)
        if end is not None:
            return (
                f"This cutover cannot be resumed (its journal ended: {end.get('outcome')}): `mwaa-iac "
                f"cleanup` deletes {self.target}, then run the cutover again"
            )
        return (
            f"`mwaa-iac cutover --resume` {resume}; `mwaa-iac cleanup` abandons the cutover and deletes "
            f"{self.target}"
        )

    def _route_back(self) -> None:
        """Routing and the deployment record back on the source (undoing a half-done go-live)."""
        point_routing(
            self.routing, self.config, self.source, self.source_color, self.mwaa.get_environment(self.source)
        )
        self._record(active_color=str(self.source_color))

    def _record_unpaused(self) -> dict[str, Any]:
        self._listing = self.api(self.source).list_dags()
        dags = [
            d["dag_id"]
            for d in self._listing
            if not d.get("is_paused") and d["dag_id"] not in dr.MWAA_IAC_DAG_IDS
        ]
        self.emit(event(EventKind.FREEZE_RECORDED, dags=dags))
        return {"dags": sorted(dags)}

    def _pause_source(self, dags: list[str]) -> dict[str, Any]:
        """Pause the recorded DAGs in a few calls (AirflowApi.set_paused_many: patterns that select
        only them, verified per DAG); the listing that recorded them is reused when it was taken in
        this process, else (a resume) the source is listed again and only DAGs still unpaused are
        touched."""
        api = self.api(self.source)
        started = time.time()
        listing, self._listing = self._listing, None
        done = api.set_paused_many(dags, True, known=listing)
        self.emit(event(EventKind.FREEZE_PAUSED, environment=self.source, count=len(dags), calls=done.calls))
        return {"paused": dags, "freeze_started": started, "calls": done.calls}

    def _drain(self) -> dict[str, Any]:
        """Wait (up to --drain-minutes) for the task instances executing on the source (queued,
        running, restarting) in the user's DAGs. Runs are not waited for: the scheduler queues no
        task instance of a paused DAG, so a run in flight stays `running`; it is copied as it is and
        continues on the target (its unfinished task instances are reset there, deferred, scheduled
        and up_for_retry ones are copied as they are). With --force-drain, the task instances still
        executing at the timeout are recorded as ``may_run_twice`` (the target runs them again)."""

        def draining(names: list[str], waited: float) -> None:
            self.emit(
                event(
                    EventKind.FREEZE_DRAINING,
                    environment=self.source,
                    count=len(names),
                    task_instances=names[:5],
                    waited_s=waited,
                )
            )

        names, waited = wait_for_executing(
            self.api(self.source),
            self.options.drain_timeout_seconds,
            self.options.run_poll_seconds,
            self.sleep,
            self.clock,
            draining,
        )
        if not names:
            self.emit(event(EventKind.FREEZE_DRAINED, environment=self.source, waited_s=waited))
            return {"drained_after_s": waited, "may_run_twice": []}
        if self.options.force_drain:
            self.emit(event(EventKind.FREEZE_DRAIN_FORCED, environment=self.source, may_run_twice=names))
            return {"drained_after_s": None, "waited_s": waited, "may_run_twice": names}
        more = f" and {len(names) - 20} more" if len(names) > 20 else ""
        raise CutoverError(
            f"{len(names)} task instance(s) still executing (queued, running or restarting) on "
            f"{self.source} after {self.options.drain_timeout_seconds:.0f} s: "
            + ", ".join(names[:20])
            + more,
            hint="wait for them to finish and rerun with --resume, or rerun with --resume "
            "--force-drain to copy without waiting (they are reset on the target, whose scheduler "
            "runs them again: they may run twice)",
        )

    def _drain_target(self, api: AirflowApi) -> dict[str, Any]:
        """An undone go-live: wait (up to --drain-minutes) for what the target started before the
        source schedules again; what still executes then may run twice (it is reported)."""
        names, waited = wait_for_executing(
            api, self.options.drain_timeout_seconds, self.options.run_poll_seconds, self.sleep, self.clock
        )
        self.emit(
            event(
                EventKind.FREEZE_TARGET_DRAINED,
                environment=api.environment,
                waited_s=waited,
                may_run_twice=names,
            )
        )
        return {"waited_s": waited, "may_run_twice": names}

    def _go_live(self) -> dict[str, Any]:
        """Point routing at the target, unpause the recorded DAGs there, record it as the active
        colour. Everything that can fail runs before the unpause (the target described, the new
        record rendered and validated, routing written); after it only the record's file is renamed
        into place. Every action is idempotent: a go-live interrupted mid-way is run again whole by
        --resume. A failure of it is undone by _abort_freeze (the journal notes when routing may
        have been flipped; the target's executing task instances are waited for)."""
        dags = self.log.data(Step.RECORD_DAGS).get("result", {}).get("dags", [])
        target_env = self.mwaa.get_environment(self.target)
        version = target_env.get("AirflowVersion", self.to_version)
        record = self._prepare_record(
            active_color=str(self.target_color), **{str(self.target_color): version}
        )
        # From now on the source holds every DAG that appears in the shared folder paused, and the
        # target no longer does: a DAG created unpaused runs on the new live colour only.
        self.log.note(Step.GO_LIVE, hold_moved=True)
        hold(self.api(self.source), self.api(self.target))
        self.log.note(Step.GO_LIVE, routed=True)  # before: a half-written routing is pointed back too
        point_routing(self.routing, self.config, self.target, self.target_color, target_env)
        self.log.note(Step.GO_LIVE, unpausing=True)  # from here the target may schedule
        done = self.api(self.target).set_paused_many(dags, False)
        unpaused_at = time.time()
        self._commit_record(record)
        self.emit(
            event(EventKind.CUTOVER_LIVE, environment=self.target, unpaused=len(dags), calls=done.calls)
        )
        return {"unpaused": dags, "unpaused_at": unpaused_at, "version": version, "calls": done.calls}

    def _record(self, active_color: str | None = None, **versions: str) -> None:
        self._commit_record(self._prepare_record(active_color, **versions))

    def _prepare_record(self, active_color: str | None = None, **versions: str) -> tuple[Any, Deployment]:
        current = self.config.deployment
        updated = Deployment(
            active_color=Color(active_color) if active_color else current.active_color,
            blue=versions.get("blue", current.blue),
            green=versions.get("green", current.green),
        )
        return prepare_deployment(self.ws.config_file, updated), updated

    def _commit_record(self, prepared: tuple[Any, Deployment]) -> None:
        path, updated = prepared
        commit_deployment(path, self.ws.config_file)
        # Keep the source/target orientation of this run: only the versions change in memory.
        self.config = self.config.model_copy(
            update={"deployment": updated.model_copy(update={"active_color": self.source_color})}
        )

    # -- report ------------------------------------------------------------------------------------

    def _report(self, rows: dict[str, Any], history: bool, two_pass: bool) -> dict[str, Any]:
        steps = {}
        for entry in self.log.entries:
            if entry.get("event") == "done" and "elapsed_s" in entry.get("data", {}):
                steps[entry["step"]] = entry["data"]["elapsed_s"]
        paused = self.log.data(Step.PAUSE_SOURCE).get("result", {}).get("freeze_started")
        unpaused = self.log.data(Step.GO_LIVE).get("result", {}).get("unpaused_at")
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
        return {
            "source": self.source,
            "target": self.target,
            "to": self.to_version,
            "history_carried": history,
            "passes": 2 if two_pass else 1,
            "freeze_window_s": freeze,
            "freeze_steps_s": freeze_steps,
            "rows_copied": rows.get("tables", {}),
            "pass2": self._pass2_copy() if two_pass and history else None,
            "may_run_twice": sorted(
                set(self.log.data(Step.DRAIN_SOURCE).get("result", {}).get("may_run_twice", []))
                | set(self.log.data(Step.GO_LIVE).get("may_run_twice", []))
            ),
            "steps_s": steps,
            "routing": self.config.routing.ssm_parameter_name,
        }

    def _pass2_copy(self) -> dict[str, Any]:
        """What pass 2 copied: delta or full (and why), rows per table in its backup."""
        backup_step, verify_step = COPY_STEPS[PASS_2][:2]
        copy = {k: self.log.data(verify_step).get("result", {}).get(k) for k in COPY_FIELDS}
        recorded = self.log.data(backup_step)
        refused = recorded.get("refused")
        if refused and copy["mode"] == "full":
            copy["fallback"] = f"the target refused the delta: {refused}"
        elif recorded.get("full_reason") and copy["mode"] == "full":
            copy["fallback"] = recorded["full_reason"]
        return copy

    def _today(self) -> date:
        return self.options.today or date.today()


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


def create_fields_from(environment: dict[str, Any]) -> dict[str, Any]:
    """CreateEnvironment arguments that reproduce ``environment`` (a GetEnvironment answer), derived
    from botocore's MWAA model so that no input member is forgotten or invented."""
    model = botocore.session.get_session().get_service_model("mwaa")
    shape = model.operation_model("CreateEnvironment").input_shape
    fields = _project(environment, shape)
    fields.pop("Name", None)
    return fields


def clone_tags(source: dict[str, Any], color: Color) -> dict[str, str]:
    """The source's tags for the clone, without the ``aws:`` ones (AWS sets those; CreateEnvironment
    rejects them) and with the clone's colour."""
    tags = {k: v for k, v in (source.get("Tags") or {}).items() if not k.lower().startswith("aws:")}
    return {**tags, "mwaa-iac:color": str(color), "mwaa-iac:engine": "api"}


def _project(value: Any, shape: Any) -> Any:
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return None
        out = {}
        for member, member_shape in shape.members.items():
            if member in value and value[member] is not None:
                projected = _project(value[member], member_shape)
                if projected is not None:
                    out[member] = projected
        return out
    if shape.type_name == "list":
        return [_project(v, shape.member) for v in value] if isinstance(value, list) else None
    return value


# -- the freeze's in-flight policy and its undoing ----------------------------------------------------

EXECUTING_STATES = ("queued", "running", "restarting")  # what the drain waits for


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


def remove_tool_records(api: AirflowApi, emit: Emit) -> dict[str, Any]:
    """Delete the tool's DAG records (with their runs) and variables from ``api``'s environment (the
    live colour); a record that cannot be deleted is reported (dr.record_kept), not fatal."""
    deleted, variables = [], []
    for dag_id in dr.MWAA_IAC_DAG_IDS:
        try:
            api.request("DELETE", f"/dags/{dag_id}")
            deleted.append(dag_id)
        except AirflowApiError as exc:
            if exc.status != 404:
                emit(event(EventKind.DR_RECORD_KEPT, dag_id=dag_id, error=exc.message))
    for key in dr.TOOL_VARIABLES:
        try:
            if api.delete_variable(key):
                variables.append(key)
        except AirflowApiError as exc:
            emit(event(EventKind.DR_RECORD_KEPT, dag_id=f"variable {key}", error=exc.message))
    return {"records_deleted": deleted, "variables_deleted": variables}


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


def _last(journal: Journal, step: str) -> dict[str, Any] | None:
    return next((e for e in reversed(journal.entries) if e.get("step") == step), None)


def _frozen(journal: Journal) -> bool:
    """The source's DAGs are (being) paused: pause-source started or done, and not undone since."""
    last = _last(journal, Step.PAUSE_SOURCE)
    return last is not None and not last.get("data", {}).get("aborted")


def _go_live_half_done(journal: Journal) -> bool:
    """go-live started (some DAGs may be unpaused on the target) and neither finished nor undone."""
    last = _last(journal, Step.GO_LIVE)
    return last is not None and last.get("event") == "started" and not last.get("data", {}).get("aborted")


def _give_back(
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
    dags = journal.data(Step.RECORD_DAGS).get("result", {}).get("dags", [])
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
    if _go_live_half_done(journal):
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


def target_scheduled(journal: Journal) -> bool:
    """Whether the go-live in progress had begun to unpause DAGs on the target (it may have run
    task instances and changed their DAGs' rows there)."""
    return _go_live_half_done(journal) and bool(journal.data(Step.GO_LIVE).get("unpausing"))


def _done_before(exc: MwaaIacError) -> int:
    """How many DAGs a failed AirflowApi.set_paused_many had set (or found set) before it failed."""
    done = getattr(exc, "bulk_done", None)
    return len(done) if done is not None else 0


def _aborted_steps(journal: Journal, *, keep_recorded: bool = False) -> list[str]:
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


def _explain(error: BaseException | None, state: str) -> None:
    """Complete a user error's hint with the state each colour is in."""
    if isinstance(error, MwaaIacError) and not isinstance(error, PreflightError):
        error.hint = f"{error.hint}. {state}" if error.hint else state


class RollbackError(MwaaIacError):
    pass


def rollback(
    ws: Workspace,
    config: EnvironmentConfig,
    mwaa: MwaaClient,
    routing: Routing,
    emit: Emit,
    store: StateStore,
    *,
    break_lock: bool = False,
) -> dict[str, Any]:
    """During the soak: pause the recorded DAGs on the new colour, unpause them on the old one, flip
    routing back. Runs made on the new colour are not copied back: the old colour's database is the
    one frozen at go-live. So that the old colour does not run again the intervals the new one ran
    since go-live (catch-up DAGs would), the scheduling is aligned per DAG (see ROLLBACK_POLICIES):
    a DAG whose latest scheduled run on the new colour is later than its latest on the old one is
    left paused on the old colour (reported with that date), unless it does not catch up
    (``catchup=False``: it runs only the latest interval); every other DAG is unpaused."""
    with holding_lock(store, "rollback", break_lock=break_lock):
        journal = Journal.load(store, JOURNAL)
        if journal is None:
            raise UsageError("no cutover is recorded for this environment: nothing to roll back")
        if journal.state(Step.GO_LIVE) != "done":
            raise UsageError(
                "the last cutover did not go live: the old colour still serves",
                hint="resume it with `mwaa-iac cutover --resume`, or clean up the new colour",
            )
        old = Color(journal.params["source_color"])
        new = old.other
        resuming = journal.state(Step.ROLLBACK) == "started"  # a rollback stopped half-way: finish it
        if journal.state(Step.ROLLBACK) == "done":
            raise UsageError(
                f"cutover {journal.run_id} was already rolled back: {config.environment_name(old)} serves"
            )
        if not resuming:
            # The colour it pauses must be the live one by every source (a stale record, routing
            # pointed elsewhere by hand: refuse before changing anything).
            claims = live.read_claims(config, routing, store, live.describer(mwaa), journal=journal)
            live.require("roll back (pause)", new, Role.LIVE, claims, config, ws.env)
        journal.started(Step.ROLLBACK)
        dags = journal.data(Step.RECORD_DAGS).get("result", {}).get("dags", [])
        new_name, old_name = config.environment_name(new), config.environment_name(old)
        if not mwaa.exists(old_name):
            raise UsageError(f"{old_name} no longer exists (cleaned up): a rollback is not possible")
        new_api, old_api = AirflowApi(mwaa, new_name), AirflowApi(mwaa, old_name)
        # first: the new colour stops scheduling, so its latest runs are final
        new_api.set_paused_many(dags, True)
        hold(new_api, old_api)  # the new colour holds DAGs that appear from now on; the old one no longer
        decisions = {dag_id: rollback_policy(dag_id, new_api, old_api) for dag_id in dags}
        old_api.set_paused_many([d for d, v in decisions.items() if v["policy"] != "left_paused"], False)
        env = mwaa.get_environment(old_name)
        point_routing(routing, config, old_name, old, env)
        deployment = ws.load().deployment.model_copy(update={"active_color": old})
        write_deployment(ws.config_file, deployment)
        removed = remove_tool_records(old_api, emit)
        journal.done(Step.ROLLBACK, active=str(old), **removed)
        if not journal.finished:
            journal.end("rolled-back", by="rollback")
        left = {d: v["new_latest"] for d, v in decisions.items() if v["policy"] == "left_paused"}
        result: dict[str, Any] = {
            "active": old_name,
            "paused_on": new_name,
            "history_copied_back": False,
            "unpaused": [d for d, v in decisions.items() if v["policy"] != "left_paused"],
            "unpaused_latest_only": [
                d for d, v in decisions.items() if v["policy"] == "unpaused_latest_only"
            ],
            "left_paused": left,
            "dags": decisions,
            "policies": {
                "unpaused": f"no scheduled run on {new_name} later than {old_name}'s latest: unpaused, "
                "it continues where it stopped",
                "unpaused_latest_only": f"catchup=False: unpaused, it runs only the latest interval (which "
                f"{new_name} may have run already)",
                "left_paused": f"{new_name} ran scheduled intervals after {old_name}'s latest: unpausing "
                f"would run them again on {old_name}",
            },
            "warning": f"runs made on {new_name} since the cutover are not copied back",
        }
        if left:
            result["hint"] = (
                f"{len(left)} DAG(s) left paused on {old_name} ({', '.join(left)}): their runs since go-live "
                f"exist only on {new_name}; unpause them after deciding, or roll forward"
            )
        emit(event(EventKind.ROLLBACK_SUMMARY, **result))
        return result


ROLLBACK_POLICIES = ("unpaused", "unpaused_latest_only", "left_paused")


def rollback_policy(dag_id: str, new_api: AirflowApi, old_api: AirflowApi) -> dict[str, Any]:
    """How ``dag_id`` is given back to the old colour (one of ROLLBACK_POLICIES), with the latest
    scheduled logical date on each colour. The old colour's scheduler continues from its own latest
    scheduled run: the intervals the new colour ran after it would run again there, unless the DAG
    does not catch up (``catchup`` from ``GET /dags/{dag_id}/details``; unknown counts as catching
    up). Manual runs do not move Airflow's next_dagrun, so they cannot be used to skip intervals."""
    old_run = old_api.latest_scheduled_run(dag_id)
    old_latest = logical_date(old_run) if old_run else None
    newer = new_api.latest_scheduled_run(dag_id, after=old_latest)
    if newer is None:
        return {"policy": "unpaused", "old_latest": old_latest, "new_latest": None}
    new_latest = logical_date(newer)
    details = old_api.dag_details(dag_id)
    catchup = None if details is None else details.get("catchup")
    policy = "unpaused_latest_only" if catchup is False else "left_paused"
    return {"policy": policy, "old_latest": old_latest, "new_latest": new_latest}


def cleanup(
    ws: Workspace,
    config: EnvironmentConfig,
    mwaa: MwaaClient,
    s3: S3,
    emit: Emit,
    store: StateStore,
    *,
    routing: Routing,
    backups: bool = False,
    watch: Callable[[str], None] | None = None,
    break_lock: bool = False,
    break_glass: bool = False,
    drain_seconds: float = 600.0,
) -> dict[str, Any]:
    """After the soak: delete the inactive colour, remove DR DAG files, optionally old backups.

    An unfinished cutover that did not go live is abandoned first: inside its freeze, scheduling is
    given back to the source as the cutover's own abort does (a half-done go-live undone on the
    target first, then the recorded DAGs unpaused on the source). The colour to delete is the
    abandoned cutover's target, else the deployment record's inactive colour; before anything is
    deleted, routing, the record and the last cutover must all say that it is not live
    (``workflows.live``; ``break_glass`` reports a refusal loudly and goes on)."""
    with holding_lock(store, "cleanup", break_lock=break_lock):
        result: dict[str, Any] = {"retired": None, "dag_files_removed": [], "backups_deleted": 0}
        journal = Journal.load(store, JOURNAL)
        abandon = journal is not None and not journal.finished and journal.state(Step.GO_LIVE) != "done"
        if journal is not None and abandon and _frozen(journal):
            source_color = Color(journal.params["source_color"])
            source_name = config.environment_name(source_color)

            def route_back() -> None:
                env = mwaa.get_environment(source_name)
                point_routing(routing, config, source_name, source_color, env)
                write_deployment(
                    ws.config_file, ws.load().deployment.model_copy(update={"active_color": source_color})
                )

            undo = _give_back(
                journal,
                AirflowApi(mwaa, source_name),
                AirflowApi(mwaa, config.environment_name(source_color.other)),
                route_back,
                lambda api: {
                    "may_run_twice": wait_for_executing(api, drain_seconds, 5.0, time.sleep, time.monotonic)[
                        0
                    ]
                },
            )
            if undo.get("failed_on"):
                raise CutoverError(
                    f"cannot give scheduling back to {source_name} before the cleanup: "
                    f"{undo['failed_on']}: {undo['error']}",
                    hint="nothing was deleted; rerun `mwaa-iac cleanup` once the cause is gone",
                )
            if _go_live_half_done(journal):
                journal.note(Step.GO_LIVE, aborted=True, routed=False)
            for step in _aborted_steps(journal):
                journal.note(step, aborted=True)
            result["unpaused_on_source"] = undo["unpaused_on_source"]
            result["repaused_on_target"] = undo["repaused_on_target"]
            result["may_run_twice"] = undo["may_run_twice"]
            config = ws.load()
        if journal is not None and abandon:
            old = Color(journal.params["source_color"]).other
        else:
            old = config.active_color.other
        old_name = config.environment_name(old)
        claims = live.read_claims(config, routing, store, live.describer(mwaa), journal=journal)
        live.require("delete", old, Role.NOT_LIVE, claims, config, ws.env, break_glass=break_glass, emit=emit)
        if journal is not None and not journal.finished:
            journal.end("abandoned", by="cleanup")
            result["abandoned_cutover"] = journal.run_id
        if mwaa.exists(old_name):
            mwaa.delete_environment(old_name)
            emit(event(EventKind.CLEANUP_DELETING, environment=old_name))
            if watch is not None:
                watch(old_name)
            result["retired"] = old_name
        result["dag_files_removed"] = remove_dr_files(
            s3, config.source.bucket_name, config.source.dag_s3_path
        )
        if backups:
            prefix = dr.backup_prefix(config.dr.path_prefix, config.name, "", "") + "/"
            old_keys = s3.old_keys(config.dr.backup_bucket, prefix, config.dr.retention_days)
            for key in old_keys:
                s3.delete(config.dr.backup_bucket, key)
            result["backups_deleted"] = len(old_keys)
        deployment = ws.load().deployment.model_copy(update={str(old): None})
        write_deployment(ws.config_file, deployment)
        emit(event(EventKind.CLEANUP_SUMMARY, **result))
        return result
