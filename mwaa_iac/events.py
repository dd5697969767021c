"""The event contract: every progress event a workflow emits, named ``<area>.<what>``.

Workflows call their ``emit`` callback with ``event(EventKind.X, field=...)``: a plain dict
``{"event": "<area>.<what>", **fields}`` (the ``--json`` JSON-lines form; field names are part of
the contract). Each kind is declared in :data:`DECLARED`: what it says, the fields it always
carries, the ones it may carry. :func:`event` checks every event against its declaration: with
``MWAA_IAC_STRICT_EVENTS`` set (the test suites set it) a drift raises :class:`EventDrift`;
otherwise it is logged at debug level and the event goes out as it is (a drift never stops a run).

How the CLI shows an event to people is ``mwaa_iac.cli.event_text``. This module is pure: it prints
nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]  # a workflow's progress callback: takes each event

STRICT_ENV = "MWAA_IAC_STRICT_EVENTS"  # set (non-empty): an event that drifts from its declaration raises


class EventKind(StrEnum):
    # preflight and steps
    PREFLIGHT_CHECK = "preflight.check"
    PREFLIGHT_HAZARDS = "preflight.hazards"
    STEP_STARTED = "step.started"
    STEP_DONE = "step.done"
    # cutover
    CUTOVER_RESUME = "cutover.resume"
    CUTOVER_PLAN = "cutover.plan"
    CUTOVER_LIVE = "cutover.live"
    CUTOVER_SUMMARY = "cutover.summary"
    CUTOVER_RECORD_SYNCED = "cutover.record_synced"
    # the live-colour guard
    LIVE_OVERRIDE = "live.override"
    # in-place upgrade
    UPGRADE_RESUME = "upgrade.resume"
    UPGRADE_SUMMARY = "upgrade.summary"
    HOP_STARTED = "hop.started"
    HOP_RESUMED = "hop.resumed"
    HOP_UPDATE_ENVIRONMENT = "hop.update_environment"
    HOP_REQUIREMENTS = "hop.requirements"
    HOP_DONE = "hop.done"
    HEALTH_POLL = "health.poll"
    HEALTH_OK = "health.ok"
    # watching an environment's status
    WATCH_STATUS = "watch.status"
    WATCH_POLL = "watch.poll"
    WATCH_POLL_ERROR = "watch.poll_error"
    # terraform
    TERRAFORM_OUTPUT = "terraform.output"
    TERRAFORM_IMPORTED = "terraform.imported"
    TERRAFORM_PLAN = "terraform.plan"
    TERRAFORM_APPLY_FAILED = "terraform.apply_failed"
    TERRAFORM_REFRESHED = "terraform.refreshed"
    # the cutover's target environment
    TARGET_CREATE_ENVIRONMENT = "target.create_environment"
    TARGET_PENDING_ENDPOINTS = "target.pending_endpoints"
    TARGET_PARSING = "target.parsing"
    TARGET_CHECKED = "target.checked"
    TARGET_IMPORT_ERRORS_ACCEPTED = "target.import_errors_accepted"
    TARGET_ROLE_CREATED = "target.role_created"
    # the freeze
    FREEZE_RECORDED = "freeze.recorded"
    FREEZE_PAUSED = "freeze.paused"
    FREEZE_DRAINING = "freeze.draining"
    FREEZE_DRAINED = "freeze.drained"
    FREEZE_DRAIN_FORCED = "freeze.drain_forced"
    FREEZE_HELD = "freeze.held"
    FREEZE_ESTIMATE = "freeze.estimate"
    COPIER_ARMED = "copier.armed"
    COPIER_NOT_ARMED = "copier.not_armed"
    COPIER_FALLBACK = "copier.fallback"
    REHEARSAL_CREATING = "rehearsal.creating"
    REHEARSAL_HOP = "rehearsal.hop"
    REHEARSAL_HOP_DONE = "rehearsal.hop_done"
    REHEARSAL_CHECKED = "rehearsal.checked"
    REHEARSAL_KEPT = "rehearsal.kept"
    REHEARSAL_DELETED = "rehearsal.deleted"
    FREEZE_ABORTED = "freeze.aborted"
    FREEZE_ABORT_FAILED = "freeze.abort_failed"
    FREEZE_TARGET_DRAINED = "freeze.target_drained"
    IN_FLIGHT_WAITING = "in_flight.waiting"
    IN_FLIGHT_RESUMED = "in_flight.resumed"
    IN_FLIGHT_NOT_RESUMED = "in_flight.not_resumed"
    # mwaa-dr: DAG files, runs, copies
    DR_VENDOR = "dr.vendor"
    DR_DEPLOYED = "dr.deployed"
    DR_WAITING_FOR_DAG = "dr.waiting_for_dag"
    DR_TRIGGERED = "dr.triggered"
    DR_RUN = "dr.run"
    DR_BACKUP_VERIFIED = "dr.backup_verified"
    DR_RESTORE_VERIFIED = "dr.restore_verified"
    DR_DELTA = "dr.delta"
    DR_DELTA_FALLBACK = "dr.delta_fallback"
    DR_RESET_ON_TARGET = "dr.reset_on_target"
    DR_RECORD_KEPT = "dr.record_kept"
    PROBE_HEALTH = "probe.health"
    PROBE_STARTED = "probe.started"
    PROBE_WARNING = "probe.warning"
    PROBE_DONE = "probe.done"
    # backup, restore, rollback, cleanup
    BACKUP_STARTED = "backup.started"
    BACKUP_SKIPPED = "backup.skipped"
    BACKUP_DONE = "backup.done"
    BACKUP_SUMMARY = "backup.summary"
    RESTORE_SUMMARY = "restore.summary"
    ROLLBACK_SUMMARY = "rollback.summary"
    CLEANUP_DELETING = "cleanup.deleting"
    CLEANUP_SUMMARY = "cleanup.summary"
    # terraform apply
    APPLY_SUMMARY = "apply.summary"


K = EventKind


@dataclass(frozen=True)
class Declared:
    """What a kind says and the fields it carries: ``required`` in every event of the kind,
    ``optional`` in some; ``notes`` says a word about a field (the documentation shows it); ``instead``:
    another shape, exactly these fields (e.g. a summary of a run that did nothing); ``summary``: a
    long-running command's JSON lines end with it."""

    description: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)
    instead: tuple[str, ...] = ()
    summary: bool = False

    def __post_init__(self) -> None:
        names = [*self.required, *self.optional]
        if (
            len(set(names)) != len(names)
            or "event" in names
            or not set(self.notes) <= {*names, *self.instead}
        ):
            raise ValueError(f"{self.description!r}: a field is declared twice, named 'event' or unknown")

    def fields_text(self) -> str:
        """The fields as the documentation lists them: ``a, b (note); optional: c; or instead: d``."""

        def names(group: tuple[str, ...]) -> str:
            return ", ".join(f"{n} ({self.notes[n]})" if n in self.notes else n for n in group)

        parts = [names(self.required)] if self.required else []
        if self.optional:
            parts.append(f"optional: {names(self.optional)}")
        if self.instead:
            parts.append(f"or instead: {names(self.instead)}")
        return "; ".join(parts)

    def drift(self, fields: Mapping[str, Any]) -> list[str]:
        """How ``fields`` differ from the declaration: missing required ones, undeclared ones."""
        present = set(fields)
        if self.instead and present == set(self.instead):
            return []
        problems = [f"missing required field {n!r}" for n in self.required if n not in present]
        declared = {*self.required, *self.optional}
        problems += [f"undeclared field {n!r}" for n in sorted(present - declared)]
        return problems


_REST_CALLS = "REST requests it took"

DECLARED: dict[EventKind, Declared] = {
    K.PREFLIGHT_CHECK: Declared("one preflight check passed or failed", ("check", "ok", "detail")),
    K.PREFLIGHT_HAZARDS: Declared(
        "a 2 → 3 path's migration hazards, scanned on the source (counts and ids, never values)",
        ("environment", "target", "rows", "estimate_minutes", "findings", "blocking"),
        ("db_clean_dag",),
        notes={
            "rows": "per table",
            "estimate_minutes": "the migration's UUID step",
            "findings": "name, blocking, accepted, count, runs, ids, detail, fix",
            "blocking": "names that fail the preflight",
            "db_clean_dag": "--write-db-clean-dag's file",
        },
    ),
    K.STEP_STARTED: Declared("a cutover step started", ("step",)),
    K.STEP_DONE: Declared("a cutover step finished (recorded in the journal)", ("step", "elapsed_s")),
    K.CUTOVER_RESUME: Declared("`cutover --resume` continues a recorded run", ("run_id",)),
    K.CUTOVER_PLAN: Declared(
        "`cutover --dry-run`'s plan (its last event)",
        (
            "dry_run",
            "source",
            "target",
            "from",
            "to",
            "history_carried",
            "passes",
            "freeze",
            "hops",
            "notes",
            "mwaa_dr_delivery",
            "in_flight_policy",
            "catchup_without_history",
            "sizing",
            "rehearsal",
            "choices",
            "migration_hazards",
        ),
        notes={
            "rehearsal": "whether a rehearsal runs before the freeze (2 → 3)",
            "choices": "every way side by side: in place, single pass, two passes, no history",
            "migration_hazards": "2 → 3: the preflight's scan of the source (preflight.hazards)",
        },
        summary=True,
    ),
    K.CUTOVER_LIVE: Declared(
        "go-live: the target schedules the recorded DAGs",
        ("environment", "unpaused", "calls"),
        notes={"calls": "REST requests the unpause took"},
    ),
    K.CUTOVER_SUMMARY: Declared(
        "the cutover succeeded (last event)",
        (
            "source",
            "target",
            "to",
            "history_carried",
            "passes",
            "freeze_window_s",
            "freeze_steps_s",
            "rows_copied",
            "pass2",
            "may_run_twice",
            "steps_s",
            "routing",
        ),
        ("record_synced", "timeline", "armed_copy", "in_flight"),
        notes={
            "record_synced": "when --resume wrote the record again",
            "in_flight": "into 3.x with history: the runs in flight at the freeze that Airflow's 2 → 3 "
            "migration left unable to finish (runs), the task instances put on the latest version "
            "(cleared), and any not resumed (not_resumed, reason)",
            "armed_copy": "whether pass 2's copiers were armed before the freeze and which copied "
            "(armed, reason, backup, restore, went_after_s: go signal written → the backup going)",
            "timeline": "where the timeline (an SVG, the freeze shaded) was written, beside the journal",
            "skipped": "`local demo`: why nothing ran",
        },
        instead=("skipped",),
        summary=True,
    ),
    K.CUTOVER_RECORD_SYNCED: Declared(
        "`cutover --resume` wrote the deployment record again from the journal (it disagreed)",
        ("run_id", "active_color", "was", "versions"),
    ),
    K.LIVE_OVERRIDE: Declared(
        "--break-glass: the live-colour guard refused, and the command goes on",
        ("action", "environment", "reason", "claims"),
        notes={"claims": "what each source of truth said"},
    ),
    K.UPGRADE_RESUME: Declared("`upgrade --resume` continues a recorded run", ("run_id",)),
    K.UPGRADE_SUMMARY: Declared(
        "the in-place upgrade ended (last event)",
        ("environment", "from", "to", "outcome", "dry_run", "hops", "backup", "elapsed_s", "notes"),
        ("in_flight",),
        notes={
            "in_flight": "into 3.x: the runs in flight during the migration that could not finish "
            "(runs), the task instances put on the latest version (cleared), any not resumed"
        },
        summary=True,
    ),
    K.HOP_STARTED: Declared("an in-place hop to the next version started", ("index", "from", "to", "reason")),
    K.HOP_RESUMED: Declared("a hop's update was already issued: it is watched again", ("to",)),
    K.HOP_UPDATE_ENVIRONMENT: Declared("UpdateEnvironment is called for a hop", ("to", "why")),
    K.HOP_REQUIREMENTS: Declared(
        "a requirements.txt naming the hop's constraints was written", ("to", "path", "object_version")
    ),
    K.HOP_DONE: Declared(
        "a hop reached a terminal status", ("from", "to", "outcome", "final", "elapsed_s", "durations_s")
    ),
    K.HEALTH_POLL: Declared(
        "the scheduler-heartbeat health gate polled", ("minutes_with_heartbeat", "required")
    ),
    K.HEALTH_OK: Declared("the health gate passed", ("minutes",)),
    K.WATCH_STATUS: Declared(
        "the watched environment has a new status",
        ("elapsed_s", "status", "time_in_status_s"),
        ("observation",),
    ),
    K.WATCH_POLL: Declared(
        "the watched environment's status is unchanged",
        ("elapsed_s", "status", "time_in_status_s"),
        ("observation",),
    ),
    K.WATCH_POLL_ERROR: Declared(
        "GetEnvironment failed transiently: retrying",
        ("elapsed_s", "status", "time_in_status_s", "error"),
        ("observation",),
    ),
    K.TERRAFORM_OUTPUT: Declared("one line of Terraform's output", ("line",)),
    K.TERRAFORM_IMPORTED: Declared(
        "an environment missing from Terraform's state was imported", ("address", "name")
    ),
    K.TERRAFORM_PLAN: Declared(
        "a Terraform plan and the plan guard's verdict",
        (
            "has_changes",
            "counts",
            "format_version",
            "terraform_version",
            "errored",
            "resources",
            "environments",
            "outputs",
            "drifted",
            "guard",
        ),
    ),
    K.TERRAFORM_APPLY_FAILED: Declared(
        "terraform apply failed after MWAA accepted the update: the update is watched", ("message",)
    ),
    K.TERRAFORM_REFRESHED: Declared("Terraform's state was refreshed after a major-version hop", ("to",)),
    K.TARGET_CREATE_ENVIRONMENT: Declared(
        "CreateEnvironment is called for the new colour", ("name", "version")
    ),
    K.TARGET_PENDING_ENDPOINTS: Declared(
        "the new colour waits for VPC endpoints the user must create", ("environment", "services", "fix")
    ),
    K.TARGET_PARSING: Declared(
        "go-live's gate waits for the target to parse the recorded DAGs",
        ("environment", "waiting_for", "count", "waited_s"),
    ),
    K.TARGET_CHECKED: Declared(
        "go-live's gate: every recorded DAG parses on the target without import errors",
        ("environment", "dags", "waited_s"),
    ),
    K.TARGET_IMPORT_ERRORS_ACCEPTED: Declared(
        "--accept-import-errors: going live although recorded DAGs fail to import on the target",
        ("environment", "failing", "unparsed"),
        notes={"failing": "DAG id: the import error's last line"},
    ),
    K.TARGET_ROLE_CREATED: Declared(
        "an execution role was created for the new colour", ("role", "environment")
    ),
    K.COPIER_ARMED: Declared(
        "a copier of pass 2 runs before the freeze, waiting for its go signal",
        ("environment", "dag_id", "run_id", "go", "started_after_s"),
        notes={"started_after_s": "seconds from its trigger to a worker running it"},
    ),
    K.COPIER_NOT_ARMED: Declared(
        "pass 2's copiers are not armed (told to cancel): the freeze triggers its runs", ("reason",)
    ),
    K.COPIER_FALLBACK: Declared(
        "an armed copier did nothing (its deadline passed, or it was cancelled): its run is triggered; "
        "or the backup's did not pause the source's DAGs: they are recorded and paused over REST",
        ("dag_id", "environment", "reason"),
    ),
    K.FREEZE_RECORDED: Declared(
        "the source's unpaused DAGs were recorded",
        ("dags",),
        ("paused_by",),
        notes={"paused_by": "copier: the armed backup copier recorded and paused them in one transaction"},
    ),
    K.FREEZE_PAUSED: Declared(
        "the freeze started: the recorded DAGs are paused on the source",
        ("environment", "count", "calls"),
        ("paused_by", "paused_again"),
        notes={
            "calls": "REST requests the pause took",
            "paused_again": "paused by the copier, found unpaused by the REST check and paused again",
        },
    ),
    K.FREEZE_DRAINING: Declared(
        "task instances are still executing on the source",
        ("environment", "count", "task_instances", "waited_s"),
    ),
    K.FREEZE_DRAINED: Declared(
        "no task instance executes on the source any more", ("environment", "waited_s")
    ),
    K.FREEZE_DRAIN_FORCED: Declared(
        "--force-drain: continuing with task instances still executing", ("environment", "may_run_twice")
    ),
    K.FREEZE_ESTIMATE: Declared(
        "before the freeze: its estimate from the rehearsal (upgrade and parse; pass 2 comes on top)",
        ("seconds", "upgrade_s", "parse_s", "max_freeze_minutes"),
    ),
    K.REHEARSAL_CREATING: Declared(
        "the rehearsal environment is being created like the target", ("environment", "version")
    ),
    K.REHEARSAL_HOP: Declared(
        "the rehearsal is upgraded in place as the freeze will do it", ("environment", "to")
    ),
    K.REHEARSAL_HOP_DONE: Declared(
        "the rehearsal's upgrade finished",
        ("environment", "seconds", "hops"),
        notes={"hops": "each with from, to, seconds and statuses_s (seconds in each MWAA status)"},
    ),
    K.REHEARSAL_CHECKED: Declared(
        "the upgraded rehearsal was checked: DAG import errors and the history per table",
        ("environment", "failing", "unparsed", "import_errors", "history"),
        ("dag_run",),
        notes={"failing": "DAGs unpaused on the source that fail to import: their error's last line"},
    ),
    K.REHEARSAL_KEPT: Declared(
        "--keep-rehearsal: the rehearsal stays (cleanup deletes it)", ("environment",)
    ),
    K.REHEARSAL_DELETED: Declared("the rehearsal environment's deletion was requested", ("environment",)),
    K.FREEZE_HELD: Declared(
        "a step failed after the target's upgrade inside the freeze: the source stays paused for --resume",
        ("environment", "target"),
    ),
    K.FREEZE_ABORTED: Declared(
        "the cutover failed during the freeze: scheduling was given back to the source",
        ("environment", "unpaused", "target", "repaused_on_target", "routed_back", "may_run_twice", "redo"),
    ),
    K.FREEZE_ABORT_FAILED: Declared(
        "scheduling could not be given back after a failure",
        (
            "dags",
            "repaused_on_target",
            "routed_back",
            "unpaused_on_source",
            "target_scheduled",
            "may_run_twice",
            "failed_on",
            "error",
        ),
        notes={"target_scheduled": "the undone go-live had let the target schedule"},
    ),
    K.FREEZE_TARGET_DRAINED: Declared(
        "an undone go-live waited for the task instances the target had started",
        ("environment", "waited_s", "may_run_twice"),
        notes={"may_run_twice": "still executing at the timeout"},
    ),
    K.IN_FLIGHT_WAITING: Declared(
        "runs in flight at the freeze wait for the 3.x target's scheduler to examine them",
        ("environment", "runs", "waited_s"),
    ),
    K.IN_FLIGHT_RESUMED: Declared(
        "task instances of a run in flight at the freeze, left without a DAG version by Airflow's "
        "2 → 3 migration, were cleared onto the latest version: the run finishes on the target",
        ("environment", "dag_id", "run_id", "task_instances"),
    ),
    K.IN_FLIGHT_NOT_RESUMED: Declared(
        "runs in flight at the freeze that cannot finish on the 3.x target without a hand (clear "
        "their tasks there)",
        ("environment", "runs", "reason"),
    ),
    K.DR_VENDOR: Declared(
        "mwaa-dr was delivered in the DAG folder", ("vendor", "versions", "uploaded", "unchanged", "removed")
    ),
    K.DR_DEPLOYED: Declared("the DR DAG files were uploaded", ("prefix", "files")),
    K.DR_WAITING_FOR_DAG: Declared(
        "waiting for an environment to parse a DR DAG, and what for",
        ("environment", "dag_id", "waiting_for", "detail"),
        ("scheduler",),
        notes={
            "waiting_for": "file_not_listed, new_version, dag_inactive, import_error",
            "scheduler": "when Airflow's health shows the scheduler down",
        },
    ),
    K.DR_TRIGGERED: Declared("a DR DAG run was triggered", ("environment", "dag_id", "run_id")),
    K.DR_RUN: Declared(
        "a DR DAG run is in progress",
        ("environment", "dag_id", "state", "elapsed_s"),
        ("waiting_for", "detail"),
        notes={"waiting_for": "a queued run while the scheduler is down", "detail": "what it waits for"},
    ),
    K.DR_BACKUP_VERIFIED: Declared("a backup's manifest was read and checked", ("prefix", "tables")),
    K.DR_RESTORE_VERIFIED: Declared("the restored rows match the backup", ("tables",)),
    K.DR_DELTA: Declared(
        "pass 2's backup holds only what changed since the backup the target holds",
        ("prefix", "base", "copied", "rows", "whole"),
        notes={"copied": "rows in the backup", "rows": "rows on the source", "whole": "DAGs copied whole"},
    ),
    K.DR_DELTA_FALLBACK: Declared(
        "pass 2 copies everything: the delta could not be taken or applied safely", ("reason",)
    ),
    K.DR_RESET_ON_TARGET: Declared("unfinished task instances were reset on the target", ("task_instances",)),
    K.DR_RECORD_KEPT: Declared(
        "a DR DAG's record could not be deleted from the new colour", ("dag_id", "error")
    ),
    K.PROBE_HEALTH: Declared(
        "the environment's scheduler health, read before the probe (a down scheduler stops it)",
        (
            "environment",
            "scheduler",
            "latest_heartbeat",
            "heartbeat_age_s",
            "metric_minutes",
            "metric_window",
            "problem",
        ),
        notes={
            "scheduler": "Airflow's status",
            "metric_minutes": "minutes with a SchedulerHeartbeat datapoint",
        },
    ),
    K.PROBE_STARTED: Declared("the mwaa-dr probe DAG runs", ("environment", "dag_id", "run_id")),
    K.PROBE_WARNING: Declared("the probe passed with a warning", ("environment", "detail")),
    K.PROBE_DONE: Declared(
        "the environment imports mwaa-dr and can write to the DR bucket",
        ("environment", "run_id", "uri", "mwaa_dr", "vendored", "deleted"),
    ),
    K.BACKUP_STARTED: Declared(
        "a backup started",
        ("environment",),
        ("location",),
        notes={"location": "not in upgrade's safety backup"},
    ),
    K.BACKUP_SKIPPED: Declared("the upgrade's safety backup was skipped", ("reason",)),
    K.BACKUP_DONE: Declared("a backup finished (also the upgrade's safety backup)", ("location",)),
    K.BACKUP_SUMMARY: Declared(
        "`backup`'s result (last event)",
        (
            "location",
            "environment",
            "deployment",
            "airflow_version",
            "factory",
            "created",
            "records",
            "mwaa_dr_delivery",
        ),
        summary=True,
    ),
    K.RESTORE_SUMMARY: Declared(
        "`restore`'s result (last event)", ("environment", "from", "tables"), summary=True
    ),
    K.ROLLBACK_SUMMARY: Declared(
        "`rollback`'s result (last event)",
        (
            "active",
            "paused_on",
            "history_copied_back",
            "unpaused",
            "unpaused_latest_only",
            "left_paused",
            "dags",
            "policies",
            "warning",
            "runs_not_copied_back",
        ),
        ("hint",),
        notes={
            "hint": "when DAGs were left paused",
            "runs_not_copied_back": "dag_id/run_id of runs the new colour made since go-live (up to 200)",
        },
        summary=True,
    ),
    K.CLEANUP_DELETING: Declared("the inactive colour's environment is being deleted", ("environment",)),
    K.CLEANUP_SUMMARY: Declared(
        "`cleanup`'s result (last event)",
        (
            "retired",
            "dag_files_removed",
            "backups_deleted",
        ),
        (
            "abandoned_cutover",
            "unpaused_on_source",
            "repaused_on_target",
            "may_run_twice",
            "rehearsal_deleted",
        ),
        notes={
            "abandoned_cutover": "the run id of an unfinished cutover it ended",
            "rehearsal_deleted": "a cutover's rehearsal environment left behind (--keep-rehearsal, a stop)",
            "unpaused_on_source": "when that cutover's freeze was undone first",
        },
        summary=True,
    ),
    K.APPLY_SUMMARY: Declared(
        "`apply`'s result (last event): the saved plan, its summary, the guard's verdict, whether it was "
        "applied",
        (
            "env",
            "phase",
            "active_color",
            "tfvars_file",
            "plan_file",
            "has_changes",
            "summary",
            "guard",
            "applied",
        ),
        notes={"summary": "as terraform.plan's fields"},
        summary=True,
    ),
}

# The kinds a long-running command's JSON lines end with.
SUMMARY_KINDS: frozenset[EventKind] = frozenset(k for k, d in DECLARED.items() if d.summary)


class EventDrift(Exception):
    """An event's fields differ from its kind's declaration (raised in strict mode only)."""


@dataclass(frozen=True)
class Event:
    """One event: its kind and its fields (JSON-serialisable)."""

    kind: EventKind
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EventKind(self.kind))  # an unknown kind raises ValueError
        if "event" in self.fields:
            raise ValueError("'event' is the kind's key, not a field")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-lines form: ``{"event": "<kind>", **fields}`` (the kind as a plain str)."""
        return {"event": self.kind.value, **self.fields}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        return cls(EventKind(data["event"]), {k: v for k, v in data.items() if k != "event"})

    def drift(self) -> list[str]:
        """How the fields differ from the kind's declaration (empty: they match)."""
        return DECLARED[self.kind].drift(self.fields)


DRIFTS: list[str] = []  # the drifts raised in strict mode (the test suites check none was swallowed)


def strict() -> bool:
    return bool(os.environ.get(STRICT_ENV))


def check(e: Event) -> None:
    """Compare an event with its declaration: raise :class:`EventDrift` in strict mode, else log
    the drift at debug level (a user's run never stops for it)."""
    problems = e.drift()
    if not problems:
        return
    message = f"{e.kind}: {'; '.join(problems)}"
    if strict():
        DRIFTS.append(message)
        raise EventDrift(message)
    log.debug("event drifts from its declaration: %s", message)


def event(kind: EventKind, fields: Mapping[str, Any] | None = None, /, **more: Any) -> dict[str, Any]:
    """The dict a workflow emits: ``event(EventKind.FREEZE_PAUSED, environment=name, count=3)``,
    checked against the kind's declaration (:func:`check`). ``fields`` is for fields spread from a
    dict or not valid as keywords (``from``)."""
    built = Event(kind, {**(fields or {}), **more})
    check(built)
    return built.to_dict()


def markdown_table() -> str:
    """The documentation site's event table (docs/reference/events.md): kind, description, fields."""
    rows = ["| event | what it says | fields |", "|---|---|---|"]
    for kind in EventKind:
        declared = DECLARED[kind]
        summary = " (summary)" if declared.summary else ""
        rows.append(f"| `{kind}` | {declared.description}{summary} | {declared.fields_text()} |")
    return "\n".join(rows)
