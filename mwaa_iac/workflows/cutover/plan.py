"""The cutover's plan: the preflight checks (nothing is changed until all pass), the probe of the
source, and the dry run's report (path, passes, freeze, in-flight policy, sizing)."""

from __future__ import annotations

from typing import Any

from mwaa_iac.adapters.airflow_api import has_schedule
from mwaa_iac.adapters.dr_bundle import load_bundle
from mwaa_iac.adapters.mwaa import MwaaApiError
from mwaa_iac.core import dr
from mwaa_iac.core.choices import choices
from mwaa_iac.core.major_changes import major_changes
from mwaa_iac.core.planner import HopKind, PathPlan, Strategy, plan_path
from mwaa_iac.core.status import ready_for_update
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows import sizing as sizing_workflow
from mwaa_iac.workflows.backup import probe, probe_runner
from mwaa_iac.workflows.cutover.context import Context
from mwaa_iac.workflows.cutover.target import Target
from mwaa_iac.workflows.dr_runs import CutoverError, deploy_dr_files
from mwaa_iac.workflows.hazards import scan_hazards
from mwaa_iac.workflows.journal import LOCK_NAME
from mwaa_iac.workflows.preflight import Check, PreflightError


class Planning:
    def __init__(self, ctx: Context, target: Target) -> None:
        self.ctx = ctx
        self.target = target

    def preflight(self) -> tuple[PathPlan, list[Check]]:
        checks: list[Check] = []

        def check(name: str, ok: bool, detail: str) -> None:
            item = Check(name, ok, detail)
            checks.append(item)
            self.ctx.emit(event(EventKind.PREFLIGHT_CHECK, **item.to_dict()))

        history = not self.ctx.options.no_history
        try:
            observation = self.ctx.mwaa.observe(self.ctx.source)
        except MwaaApiError as exc:
            check("source exists", False, exc.message)
            return plan_path(self.ctx.config.active_version, self.ctx.to_version, Strategy.CUTOVER), checks
        current = observation.airflow_version or self.ctx.config.active_version
        check("source exists", True, f"{self.ctx.source} runs Airflow {current}")
        plan = plan_path(current, self.ctx.to_version, Strategy.CUTOVER, self.ctx.today(), history=history)
        if plan.allowed:
            check("path allowed", True, " → ".join([current] + [h.to_version for h in plan.hops[1:]]))
        else:
            check(
                "path allowed", False, "; ".join(plan.refusals) + "".join(f" (hint: {h})" for h in plan.hints)
            )
        why = ready_for_update(observation)
        check("source ready", why is None, why or observation.status)
        for change in major_changes(
            current, self.ctx.to_version, self.ctx.mwaa.get_environment(self.ctx.source)
        ):
            check(f"2 → 3: {change.name}", True, f"warning: {change.detail}")
        check("engine", *self.engine_check())
        if plan.allowed:
            for item in self.requirements_checks(plan):
                check(item.name, item.ok, item.detail)
        target_free = not self.ctx.mwaa.exists(self.ctx.target)
        check(
            "target colour free",
            target_free,
            f"{self.ctx.target} does not exist"
            if target_free
            else f"{self.ctx.target} already exists and is not live (routing, the deployment record and the "
            f"last cutover agree): if it is left over from an abandoned cutover, check it, then "
            f"`mwaa-iac cleanup --env {self.ctx.ws.env}` deletes it",
        )
        if target_free:
            role = self.target.role_preflight()
            check(
                role.name,
                not role.failed,
                role.detail if role.ok else role.text().removeprefix(f"{role.name}: "),
            )
        if history:
            dr_config = self.ctx.config.dr
            findings = self.ctx.s3.bucket_findings(dr_config.backup_bucket, require_kms=dr_config.require_kms)
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
        # 2 → 3: what Airflow 3's migration trips over, scanned on the source (workflows/hazards.py)
        self.hazards = scan_hazards(
            plan,
            environment=self.ctx.source,
            config=self.ctx.config,
            runner=probe_runner(self.ctx.runner(self.ctx.source), self.ctx.options),
            s3=self.ctx.s3,
            emit=self.ctx.emit,
            accepted=self.ctx.options.accept_hazards,
            db_clean_dag=self.ctx.options.db_clean_dag,
            today=self.ctx.today(),
            cloudwatch=self.ctx.cloudwatch,
            run=all(c.ok for c in checks),
        )
        for item in self.hazards.checks:
            check(item.name, item.ok, item.detail)
        check("lock", True, f"held by this cutover ({self.ctx.store.where(LOCK_NAME)})")
        return plan, checks

    def preflight_step(self) -> dict[str, Any]:
        plan, checks = self.preflight()
        if not all(c.ok for c in checks):
            self.ctx.journal.end("preflight-failed", checks=[c.to_dict() for c in checks])
            raise PreflightError(checks)
        two_pass = bool(plan.two_pass) and not self.ctx.options.single_pass
        result: dict[str, Any] = {
            "source_version": plan.from_version,
            "hops": [[str(h.kind), h.from_version, h.to_version, h.reason] for h in plan.hops],
            "history": bool(plan.history_carried),
            "two_pass": two_pass,
            "freeze_hops": plan.freeze_hops if two_pass else 0,
            "rehearsal": bool(two_pass and plan.freeze_hops and not self.ctx.options.no_rehearsal),
        }
        if plan.history_carried:
            result["probe"] = self.probe_source(dr.factory_for(plan.from_version))
        return result

    def probe_source(self, factory: str) -> dict[str, Any]:
        """Before anything is created or changed: the source imports the delivered mwaa-dr and can
        write to the DR bucket (the target does not exist yet: pass 1 proves its side)."""
        vendor = deploy_dr_files(
            self.ctx.s3,
            self.ctx.config.source.bucket_name,
            self.ctx.config.source.dag_s3_path,
            [dr.render_probe_dag(factory, self.ctx.config.name)],
        )
        self.ctx.emit(event(EventKind.DR_VENDOR, **vendor))
        runner = self.ctx.runner(self.ctx.source)
        try:
            result = probe(
                probe_runner(runner, self.ctx.options),
                self.ctx.config,
                factory,
                role="the cutover's backups",
                cloudwatch=self.ctx.cloudwatch,
            )
        except CutoverError as exc:
            self.ctx.journal.end("preflight-failed", probe=exc.message)
            raise
        return {**result, "versions": vendor["versions"]}

    def catchup_without_history(self) -> list[dict[str, Any]]:
        """With ``--no-history``: the source's unpaused scheduled DAGs that catch up. The target has
        none of their runs, so after go-live each runs every interval since its start_date."""
        if not self.ctx.options.no_history:
            return []
        api = self.ctx.api(self.ctx.source)
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

    def dry_run_report(self, plan: PathPlan) -> dict[str, Any]:
        two_pass = bool(plan.two_pass) and not self.ctx.options.single_pass
        if not plan.history_carried:
            passes, freeze = (
                0,
                (
                    "only around go-live: the source's DAGs are paused and drained right before the target's "
                    "are unpaused (seconds to minutes); nothing is copied"
                ),
            )
        elif two_pass and plan.freeze_hops:
            passes, freeze = (
                2,
                (
                    f"pass 2 (what changed) and the in-place upgrade {', '.join(plan.freeze_hop_texts())} "
                    "(on AWS up to about two hours; the rehearsal measures it)"
                ),
            )
        elif two_pass:
            passes, freeze = 2, "pass 2 only (minutes)"
        else:
            passes, freeze = 1, "from before the clone until go-live"
        return {
            "dry_run": True,
            "source": self.ctx.source,
            "target": self.ctx.target,
            "from": plan.from_version,
            "to": self.ctx.to_version,
            "history_carried": plan.history_carried,
            "passes": passes,
            "freeze": freeze,
            "hops": [h.to_dict() for h in plan.hops],
            "notes": list(plan.notes),
            "mwaa_dr_delivery": self.delivery_text(plan) if plan.history_carried else None,
            "in_flight_policy": self.in_flight_policy(bool(plan.history_carried)),
            "catchup_without_history": self.catchup_without_history(),
            "sizing": self.sizing(plan, two_pass),
            "rehearsal": bool(two_pass and plan.freeze_hops and not self.ctx.options.no_rehearsal),
            "choices": [
                c.to_dict() for c in choices(plan.from_version, self.ctx.to_version, self.ctx.today())
            ],
            "migration_hazards": self.hazards.report() if getattr(self, "hazards", None) else None,
        }

    def sizing(self, plan: PathPlan, two_pass: bool) -> dict[str, Any]:
        """The sizing estimate from the live source's row counts (never fails the dry run)."""
        if not plan.history_carried:
            return sizing_workflow.unavailable(
                "no history is carried: nothing is copied", self.ctx.source, skipped=True
            )
        return sizing_workflow.read_sizing(
            self.ctx.mwaa,
            self.ctx.source,
            passes=2 if two_pass else 1,
            drain_timeout_s=self.ctx.options.drain_timeout_seconds,
            freeze_hops=plan.freeze_hop_texts() if two_pass else (),
            sleep=self.ctx.sleep,
            clock=self.ctx.clock,
        )

    def in_flight_policy(self, history: bool) -> list[str]:
        """What the freeze does with work in flight on the source (docs/guides/cutover.md: In-flight
        work during the freeze)."""
        minutes = self.ctx.options.drain_timeout_seconds / 60
        source, target = self.ctx.source, self.ctx.target
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
        if self.ctx.options.force_drain:
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

    def delivery_text(self, plan: PathPlan) -> list[str]:
        bundle, ctx = load_bundle(), self.ctx
        folder = f"s3://{ctx.config.source.bucket_name}/{ctx.config.source.dag_s3_path.strip('/')}"
        return [
            f"{bundle.describe()} delivered in the DAG folder ({folder}/{dr.VENDOR_FOLDER}/, hidden from "
            f"parsing by {dr.AIRFLOWIGNORE}): {ctx.source}'s requirements are not changed and it is not "
            "restarted (no UpdateEnvironment on the source); the target uses the source's requirements",
            f"before anything is changed, a probe DAG ({dr.PROBE_DAG_ID}) on {ctx.source} proves that it "
            f"imports {dr.factory_for(plan.from_version)} and can write to s3://{ctx.config.dr.backup_bucket}/",
        ]

    def requirements_checks(self, plan: PathPlan) -> list[Check]:
        """The source's requirements.txt, at the object version the source runs (what the target is
        created with), against the constraints of every version the target is upgraded to (as
        `upgrade` does; AWS: each version's constraints apply to its install)."""
        if self.ctx.options.skip_requirements_check:
            return [Check("requirements", True, "skipped (--skip-requirements-check)")]
        source = self.ctx.mwaa.get_environment(self.ctx.source)
        path = source.get("RequirementsS3Path") or self.ctx.config.source.requirements_s3_path
        if not path:
            return [Check("requirements", True, "no requirements file")]
        if self.ctx.requirements_check is None:
            return [Check("requirements", True, "not checked here (no check available)")]
        versions = [h.to_version for h in plan.hops if h.kind is HopKind.IN_PLACE]
        if self.ctx.options.constraints:  # one offline file: it is the target's
            versions = [self.ctx.to_version]
        object_version = source.get("RequirementsS3ObjectVersion")
        checks = []
        for version in versions or [plan.from_version]:
            result = self.ctx.requirements_check(path, version, object_version)
            checks.append(Check(f"requirements for {version}", result.ok, result.detail))
        return checks

    def engine_check(self) -> tuple[bool, str]:
        """The deployment's engine (the ``mwaa-iac:engine`` tag) is the one asked for."""
        ctx = self.ctx
        refusal = ctx.engine.refusal(ctx.mwaa.get_environment(ctx.source).get("Tags"), ctx.source)
        return refusal is None, refusal or str(ctx.options.engine)
