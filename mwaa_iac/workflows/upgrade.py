"""`mwaa-iac upgrade`: change the active environment's Airflow version in place, hop by hop.

An explicit step list over a journal: preflight → safety backup → one step per hop (issue the update
once, then watch it to a terminal status) → health gate → summary. Every step is recorded before and
after it runs; ``resume=True`` continues an interrupted run without issuing an update twice. The
workflow prints nothing: it calls ``emit`` with event dicts that the CLI renders.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.cloudwatch import CloudWatch
from mwaa_iac.adapters.mwaa import MwaaApiError, MwaaClient
from mwaa_iac.core import dr
from mwaa_iac.core.catalog import load_catalog
from mwaa_iac.core.config import Color, Deployment, EnvironmentConfig
from mwaa_iac.core.major_changes import major_changes
from mwaa_iac.core.planner import Hop, PathPlan, Strategy, plan_path
from mwaa_iac.core.status import Observation, Outcome, ready_for_update
from mwaa_iac.errors import EnvironmentUnavailableError, MwaaIacError, UsageError
from mwaa_iac.events import Emit, EventKind, event
from mwaa_iac.workflows.engine import DeploymentEngine, engine_for, hop_requirements
from mwaa_iac.workflows.health import HealthGate
from mwaa_iac.workflows.in_flight import InFlight, crosses_into_3
from mwaa_iac.workflows.journal import LOCK_NAME, Journal, holding_lock, open_journal
from mwaa_iac.workflows.preflight import Check, PreflightError
from mwaa_iac.workflows.state import StateStore, open_state
from mwaa_iac.workflows.upgrade_options import UpgradeOptions as UpgradeOptions
from mwaa_iac.workflows.upgrade_options import UpgradeSummary as UpgradeSummary
from mwaa_iac.workflows.watch import Watcher
from mwaa_iac.workspace import Workspace, write_deployment


class UpdateFailedError(MwaaIacError):
    """MWAA rolled the update back (UPDATE_FAILED): the environment serves its old version."""


JOURNAL = "upgrade.journal.jsonl"
RESUME_IN_FLIGHT = "resume-in-flight"  # the journal step after a hop into 3.x
BackupHook = Callable[[str, str], str]  # (environment name, version) -> backup location


@dataclass
class Upgrade:
    ws: Workspace
    config: EnvironmentConfig
    options: UpgradeOptions
    mwaa: MwaaClient
    cloudwatch: CloudWatch | None = None
    emit: Emit = lambda event: None
    backup_hook: BackupHook | None = None
    requirements_check: Callable[[str, str], Check] | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    color: Color | None = None  # the slot to change: the active one unless a cutover says otherwise
    state: StateStore | None = None  # journal and lock: mwaa.yaml's state setting unless given
    now: Callable[[], datetime] = lambda: datetime.now(UTC)  # wall clock (metric minutes)
    # A failed hop or health gate ends the journal (an upgrade starts again), unless the journal is a
    # cutover's: then the step is left to retry, and `cutover --resume` runs it again.
    owns_journal: bool = True
    s3: Any = None  # adapters.storage.S3 for per-hop requirements files; from the region when needed
    # adapters.routing.Routing: with it, an upgrade of the active colour first checks that routing
    # and the last cutover agree that it is the live one (workflows.live); the CLI always passes it
    routing: Any = None
    hazard_scan: Callable[..., Any] | None = None  # workflows.hazards.scanner (2 → 3 paths)

    @property
    def slot(self) -> Color:
        return self.color or self.config.active_color

    @property
    def name(self) -> str:
        return self.config.environment_name(self.slot)

    @property
    def target(self) -> str:
        return self.options.to or self.config.airflow_version

    @property
    def store(self) -> StateStore:
        if self.state is None:
            self.state = open_state(self.ws, self.config)
        return self.state

    @property
    def engine(self) -> DeploymentEngine:
        return engine_for(self.options.engine, self.ws, self.mwaa, self.emit, self.options.terraform_bin)

    def run(self) -> UpgradeSummary:
        load_catalog().require(self.target)
        engine_for(self.options.engine, self.ws, self.mwaa, self.emit)  # an unknown one is refused first
        started = self.clock()
        with holding_lock(self.store, "upgrade", break_lock=self.options.break_lock):
            if self.color is None and self.routing is not None and not self.options.resume:
                self._require_live()
            journal = self._open_journal()
            summary = self._run(journal)
            summary.elapsed_s = self.clock() - started
            if journal is not None:
                journal.end(summary.outcome, summary=summary.to_dict())
            self.emit(event(EventKind.UPGRADE_SUMMARY, **summary.to_dict()))
            return summary

    def _require_live(self) -> None:
        """The colour upgraded in place must be the live one by every source of truth: a stale
        deployment record would otherwise upgrade (and restart) the other colour."""
        from mwaa_iac.core.live import Role
        from mwaa_iac.workflows import live

        claims = live.read_claims(self.config, self.routing, self.store, live.describer(self.mwaa))
        live.require("upgrade in place", self.slot, Role.LIVE, claims, self.config, self.ws.env)

    # -- steps ------------------------------------------------------------------------------------

    def _open_journal(self) -> Journal | None:
        if self.options.dry_run:
            return None
        journal = open_journal(
            self.store,
            JOURNAL,
            "upgrade",
            {"to": self.target, "env": self.ws.env, "engine": self.options.engine},
            resume=self.options.resume,
        )
        if self.options.resume:
            self.emit(event(EventKind.UPGRADE_RESUME, run_id=journal.run_id))
        return journal

    def _run(self, journal: Journal | None) -> UpgradeSummary:
        if journal is not None and journal.state("preflight") == "done":
            data = journal.data("preflight")
            plan = plan_path(data["from"], self.target, Strategy.IN_PLACE, self._today())
        else:
            if journal is not None:
                journal.started("preflight")
            plan, checks = self.preflight()
            if not all(c.ok for c in checks):
                if journal is not None:
                    journal.end("preflight-failed", checks=[c.to_dict() for c in checks])
                raise PreflightError(checks)
            if journal is not None:
                journal.done(
                    "preflight", **{"from": plan.from_version, "hops": [h.to_version for h in plan.hops]}
                )
        summary = UpgradeSummary(self.name, plan.from_version, self.target, dry_run=self.options.dry_run)
        if self.options.dry_run:
            summary.outcome = "dry-run"
            summary.hops = [h.to_dict() for h in plan.hops]
            if plan.hops:
                summary.notes.append(self._backup_note(plan.from_version))
            return summary
        assert journal is not None
        summary.backup = self._backup(journal, plan.from_version)
        summary.hops = self.run_hops(journal, plan.hops)
        self.health_gate(journal)
        if plan.hops and crosses_into_3(plan.from_version, plan.hops[-1].to_version):
            summary.in_flight = self.resume_in_flight(journal)
        return summary

    def resume_in_flight(self, journal: Journal) -> dict[str, Any]:
        """After the hop into 3.x: the unpaused DAGs' runs in flight during the migration finish."""
        timeout, poll = self.options.health_timeout_seconds or 600.0, min(5.0, self.options.poll_interval)
        flight = InFlight(AirflowApi(self.mwaa, self.name), self.emit, self.sleep, self.clock, timeout, poll)
        return flight.journaled(journal, RESUME_IN_FLIGHT, lambda: self.mwaa.get_environment(self.name))

    def run_hops(
        self, journal: Journal, hops: tuple[Hop, ...] | list[Hop], prefix: str = "hop"
    ) -> list[dict]:
        """Each in-place hop as a journal step ``<prefix>-<n>-<version>`` (done ones are skipped)."""
        return [self.run_hop(journal, index, hop, prefix) for index, hop in enumerate(hops, 1)]

    def preflight(self) -> tuple[PathPlan, list[Check]]:
        checks: list[Check] = []

        def check(name: str, ok: bool, detail: str) -> None:
            item = Check(name, ok, detail)
            checks.append(item)
            self.emit(event(EventKind.PREFLIGHT_CHECK, **item.to_dict()))

        try:
            observation = self.mwaa.observe(self.name)
        except MwaaApiError as exc:
            check("environment exists", False, exc.message)
            return plan_path(
                self.config.active_version, self.target, Strategy.IN_PLACE, self._today()
            ), checks
        current = observation.airflow_version or self.config.active_version
        check("environment exists", True, f"{self.name} runs Airflow {current}")
        plan = plan_path(current, self.target, Strategy.IN_PLACE, self._today())
        if plan.allowed:
            hops = " → ".join([current] + [h.to_version for h in plan.hops])
            check("path allowed", True, hops if plan.hops else f"already at {self.target}")
        else:
            check(
                "path allowed", False, "; ".join(plan.refusals) + "".join(f" (hint: {h})" for h in plan.hints)
            )
        why = ready_for_update(observation)
        check(
            "environment ready",
            why is None,
            why or f"{observation.status}, last update {observation.last_update_status}",
        )
        for change in major_changes(current, self.target, self.mwaa.get_environment(self.name)):
            check(f"2 → 3: {change.name}", True, f"warning: {change.detail}")
        check("engine", *self._engine_check())
        check("requirements", *self._requirements_check(plan))
        if self.hazard_scan is not None and all(c.ok for c in checks):  # nothing scanned unless 2 → 3
            self.hazard_scan(plan, self.name, check)
        check("lock", True, f"held by this upgrade ({self.store.where(LOCK_NAME)})")
        return plan, checks

    def _engine_check(self) -> tuple[bool, str]:
        """The environment's engine (tag ``mwaa-iac:engine``) is the one asked for."""
        refusal = self.engine.refusal(self.mwaa.get_environment(self.name).get("Tags"), self.name)
        return refusal is None, refusal or self.options.engine

    def _requirements_check(self, plan: PathPlan) -> tuple[bool, str]:
        path = self.config.source.requirements_s3_path
        if not path:
            return True, "no requirements file configured"
        if self.options.skip_requirements_check:
            return True, "skipped (--skip-requirements-check)"
        if self.requirements_check is None or not plan.hops:
            return True, "nothing to check"
        result = self.requirements_check(path, self.target)
        return result.ok, result.detail

    def _backup_note(self, version: str) -> str:
        """What the safety backup will do (for --dry-run)."""
        if not self.options.backup:
            return "safety backup: none (--no-backup)"
        item = load_catalog().get(version)
        if item is None or not item.dr_factory:
            return f"safety backup: none (mwaa-dr does not support Airflow {version})"
        from mwaa_iac.adapters.dr_bundle import load_bundle

        return (
            f"safety backup with {load_bundle().describe()} delivered in the DAG folder "
            f"({dr.VENDOR_FOLDER}/): {self.name}'s requirements are not changed and it is not restarted "
            f"for it (no UpdateEnvironment before the upgrade's own); a probe DAG first proves that "
            f"{self.name} imports {item.dr_factory} and can write to s3://{self.config.dr.backup_bucket}/"
        )

    def _backup(self, journal: Journal, version: str) -> str | None:
        if journal.state("backup") == "done":
            return journal.data("backup").get("location")
        if not self.options.backup:
            journal.done("backup", skipped="--no-backup")
            self.emit(event(EventKind.BACKUP_SKIPPED, reason="--no-backup"))
            return None
        catalog_version = load_catalog().get(version)
        if catalog_version is None or not catalog_version.mwaa_dr:
            journal.done("backup", skipped=f"mwaa-dr does not support {version}")
            self.emit(event(EventKind.BACKUP_SKIPPED, reason=f"mwaa-dr does not support Airflow {version}"))
            return None
        if self.backup_hook is None:
            raise UsageError(
                "a safety backup was asked for but no backup method is available",
                hint="pass --no-backup to upgrade without one",
            )
        journal.started("backup")
        self.emit(event(EventKind.BACKUP_STARTED, environment=self.name))
        location = self.backup_hook(self.name, version)
        journal.done("backup", location=location)
        self.emit(event(EventKind.BACKUP_DONE, location=location))
        return location

    def run_hop(self, journal: Journal, index: int, hop: Hop, prefix: str = "hop") -> dict[str, Any]:
        """Hop ``index`` (1-based) as journal step ``<prefix>-<n>-<version>``: issued once, watched to a
        terminal status (a done one is skipped)."""
        step = f"{prefix}-{index}-{hop.to_version}"
        if journal.state(step) == "done":
            return journal.data(step)
        self.emit(
            event(
                EventKind.HOP_STARTED,
                {"index": index, "from": hop.from_version, "to": hop.to_version, "reason": hop.reason},
            )
        )
        issued = journal.data(step).get("update_issued", False)
        if journal.state(step) == "started" and not issued:
            # Interrupted between recording the step and recording the update: ask MWAA whether it
            # is already working on it instead of issuing it twice.
            issued = self._already_issued(self.mwaa.observe(self.name), hop)
        issued_at = None
        if not issued:
            journal.started(step, from_version=hop.from_version)
            issued_at = time.time()
            self._issue(hop)
            journal.note(step, update_issued=True)
        else:
            self.emit(event(EventKind.HOP_RESUMED, to=hop.to_version))
        watcher = Watcher(
            lambda: self.mwaa.observe(self.name),
            interval=self.options.poll_interval,
            max_interval=max(self.options.max_poll_interval, self.options.poll_interval),
            budget=self.options.budget_seconds,
            expect_version=hop.to_version,
            not_before=issued_at,
            on_event=lambda watched: self.emit(watched.to_dict()),
            sleep=self.sleep,
            clock=self.clock,
        )
        result = watcher.run()
        record = {
            "from": hop.from_version,
            "to": hop.to_version,
            "outcome": str(result.outcome),
            **result.to_dict(),
        }
        if result.outcome is Outcome.SUCCEEDED:
            self._record_version(hop.to_version)
            self.engine.after_hop(self.config, self.slot, hop)
            journal.done(step, **record)
            self.emit(event(EventKind.HOP_DONE, **record))
            return record
        error = result.observation.last_update_error or "no error detail from MWAA"
        if result.outcome is Outcome.NEEDS_HUMAN:
            self._failed(journal, step, "unavailable", hop=record)
            raise EnvironmentUnavailableError(
                f"the update to {hop.to_version} failed and so did MWAA's rollback: "
                f"{self.name} is UNAVAILABLE ({error})",
                hint="a human is needed: check the environment in the MWAA console and contact AWS Support",
            )
        self._failed(journal, step, "rolled-back", hop=record)
        raise UpdateFailedError(
            f"the update of {self.name} to {hop.to_version} failed and was rolled back; it keeps serving "
            f"Airflow {result.observation.airflow_version or hop.from_version}. MWAA said: {error}",
            hint="fix the cause (often requirements or plugins that do not install on the new version), "
            "then run the upgrade again",
        )

    @staticmethod
    def _already_issued(observation: Observation, hop: Hop) -> bool:
        if observation.airflow_version == hop.to_version:
            return True
        return (
            observation.status not in ("AVAILABLE", "UPDATE_FAILED")
            or observation.last_update_status == "PENDING"
        )

    def _issue(self, hop: Hop) -> None:
        from mwaa_iac.errors import TerraformError

        try:
            self.engine.change_version(self.config, self.slot, hop, self._hop_requirements(hop))
        except MwaaApiError as exc:
            if exc.code == "ValidationException":
                raise UpdateFailedError(
                    f"MWAA refused the update of {self.name} to {hop.to_version}: {exc.message}",
                    hint="nothing was changed; choose a target MWAA accepts (mwaa-iac versions path)",
                ) from exc
            raise
        except TerraformError as exc:
            # The provider's waiter gives up on ROLLING_BACK/MAINTENANCE while AWS keeps working:
            # then the watcher that follows decides the outcome. If MWAA never started an update,
            # the failure is Terraform's own and is reported as such.
            if not self._already_issued(self.mwaa.observe(self.name), hop):
                raise
            self.emit(event(EventKind.TERRAFORM_APPLY_FAILED, message=exc.message))

    def _hop_requirements(self, hop: Hop) -> dict[str, str]:
        def s3() -> Any:
            if self.s3 is None:
                from mwaa_iac.adapters.storage import S3

                self.s3 = S3(self.config.region)
            return self.s3

        return hop_requirements(self.mwaa, s3, self.config, self.name, hop, self.emit)

    def _record_version(self, version: str) -> None:
        deployment = self.config.deployment
        color = self.slot
        updated = Deployment(
            active_color=deployment.active_color,
            blue=version if color.value == "blue" else deployment.blue,
            green=version if color.value == "green" else deployment.green,
        )
        write_deployment(self.ws.config_file, updated)
        self.config = self.config.model_copy(update={"deployment": updated})

    def health_gate(self, journal: Journal, step: str = "health") -> None:
        """The scheduler-heartbeat gate of this slot (workflows.health), as journal step ``step``."""
        gate = HealthGate(
            self.name,
            self.options.health_minutes,
            self.options.health_timeout_seconds,
            self.options.poll_interval,
            self.cloudwatch,
            self.emit,
            self.sleep,
            self.clock,
            self.now,
        )
        gate.run(journal, step, lambda: self._failed(journal, step, "unhealthy"))

    def _failed(self, journal: Journal, step: str, outcome: str, **data: Any) -> None:
        if self.owns_journal:
            journal.end(outcome, **data)
        else:
            # The update must be issued again on resume (MWAA rolled it back or it never finished).
            journal.note(step, failed=outcome, update_issued=False, **data)

    def _today(self) -> date:
        return self.options.today or date.today()
