"""The event contract: every progress event a workflow emits, named ``<area>.<what>``.

Workflows call their ``emit`` callback with ``event(EventKind.X, field=...)``: a plain dict
``{"event": "<area>.<what>", **fields}`` (the ``--json`` JSON-lines form; field names are part of
the contract). The CLI prints each event either as that JSON line or, for people, as the rich-markup
line of :func:`format_event` plus the live status text of :func:`status_text`.

This module is pure: it prints nothing and builds no console (rich is imported only to escape markup,
and only when a formatter needs it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    # preflight and steps
    PREFLIGHT_CHECK = "preflight.check"
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
    TARGET_ROLE_CREATED = "target.role_created"
    # the freeze
    FREEZE_RECORDED = "freeze.recorded"
    FREEZE_PAUSED = "freeze.paused"
    FREEZE_DRAINING = "freeze.draining"
    FREEZE_DRAINED = "freeze.drained"
    FREEZE_DRAIN_FORCED = "freeze.drain_forced"
    FREEZE_ABORTED = "freeze.aborted"
    FREEZE_ABORT_FAILED = "freeze.abort_failed"
    FREEZE_TARGET_DRAINED = "freeze.target_drained"
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

# kind: (one-line description, its fields). The README's event table is made from this.
_CATALOG: dict[EventKind, tuple[str, str]] = {
    K.PREFLIGHT_CHECK: ("one preflight check passed or failed", "check, ok, detail"),
    K.STEP_STARTED: ("a cutover step started", "step"),
    K.STEP_DONE: ("a cutover step finished (recorded in the journal)", "step, elapsed_s"),
    K.CUTOVER_RESUME: ("`cutover --resume` continues a recorded run", "run_id"),
    K.CUTOVER_PLAN: (
        "`cutover --dry-run`'s plan (its last event)",
        "dry_run, source, target, from, to, history_carried, passes, freeze, hops, notes, "
        "mwaa_dr_delivery, in_flight_policy, catchup_without_history, sizing",
    ),
    K.CUTOVER_LIVE: (
        "go-live: the target schedules the recorded DAGs",
        "environment, unpaused, calls (REST requests the unpause took)",
    ),
    K.CUTOVER_SUMMARY: (
        "the cutover succeeded (last event)",
        "source, target, to, history_carried, passes, freeze_window_s, freeze_steps_s, rows_copied, "
        "pass2, may_run_twice, steps_s, routing, record_synced (only when --resume wrote the record again)",
    ),
    K.CUTOVER_RECORD_SYNCED: (
        "`cutover --resume` wrote the deployment record again from the journal (it disagreed)",
        "run_id, active_color, was, versions",
    ),
    K.LIVE_OVERRIDE: (
        "--break-glass: the live-colour guard refused, and the command goes on",
        "action, environment, reason, claims (what each source of truth said)",
    ),
    K.UPGRADE_RESUME: ("`upgrade --resume` continues a recorded run", "run_id"),
    K.UPGRADE_SUMMARY: (
        "the in-place upgrade ended (last event)",
        "environment, from, to, outcome, dry_run, hops, backup, elapsed_s, notes",
    ),
    K.HOP_STARTED: ("an in-place hop to the next version started", "index, from, to, reason"),
    K.HOP_RESUMED: ("a hop's update was already issued: it is watched again", "to"),
    K.HOP_UPDATE_ENVIRONMENT: ("UpdateEnvironment is called for a hop", "to, why"),
    K.HOP_REQUIREMENTS: (
        "a requirements.txt naming the hop's constraints was written",
        "to, path, object_version",
    ),
    K.HOP_DONE: (
        "a hop reached a terminal status",
        "from, to, outcome, final, elapsed_s, durations_s",
    ),
    K.HEALTH_POLL: ("the scheduler-heartbeat health gate polled", "minutes_with_heartbeat, required"),
    K.HEALTH_OK: ("the health gate passed", "minutes"),
    K.WATCH_STATUS: (
        "the watched environment has a new status",
        "elapsed_s, status, time_in_status_s, observation",
    ),
    K.WATCH_POLL: (
        "the watched environment's status is unchanged",
        "elapsed_s, status, time_in_status_s, observation",
    ),
    K.WATCH_POLL_ERROR: (
        "GetEnvironment failed transiently: retrying",
        "elapsed_s, status, time_in_status_s, error",
    ),
    K.TERRAFORM_OUTPUT: ("one line of Terraform's output", "line"),
    K.TERRAFORM_IMPORTED: ("an environment missing from Terraform's state was imported", "address, name"),
    K.TERRAFORM_PLAN: (
        "a Terraform plan and the plan guard's verdict",
        "has_changes, counts, format_version, terraform_version, errored, resources, environments, "
        "outputs, drifted, guard",
    ),
    K.TERRAFORM_APPLY_FAILED: (
        "terraform apply failed after MWAA accepted the update: the update is watched",
        "message",
    ),
    K.TERRAFORM_REFRESHED: ("Terraform's state was refreshed after a major-version hop", "to"),
    K.TARGET_CREATE_ENVIRONMENT: ("CreateEnvironment is called for the new colour", "name, version"),
    K.TARGET_PENDING_ENDPOINTS: (
        "the new colour waits for VPC endpoints the user must create",
        "environment, services, fix",
    ),
    K.TARGET_ROLE_CREATED: ("an execution role was created for the new colour", "role, environment"),
    K.FREEZE_RECORDED: ("the source's unpaused DAGs were recorded", "dags"),
    K.FREEZE_PAUSED: (
        "the freeze started: the recorded DAGs are paused on the source",
        "environment, count, calls (REST requests the pause took)",
    ),
    K.FREEZE_DRAINING: (
        "task instances are still executing on the source",
        "environment, count, task_instances, waited_s",
    ),
    K.FREEZE_DRAINED: ("no task instance executes on the source any more", "environment, waited_s"),
    K.FREEZE_DRAIN_FORCED: (
        "--force-drain: continuing with task instances still executing",
        "environment, may_run_twice",
    ),
    K.FREEZE_ABORTED: (
        "the cutover failed during the freeze: scheduling was given back to the source",
        "environment, unpaused, target, repaused_on_target, routed_back, may_run_twice, redo",
    ),
    K.FREEZE_ABORT_FAILED: (
        "scheduling could not be given back after a failure",
        "dags, repaused_on_target, routed_back, unpaused_on_source, failed_on, error",
    ),
    K.FREEZE_TARGET_DRAINED: (
        "an undone go-live waited for the task instances the target had started",
        "environment, waited_s, may_run_twice (still executing at the timeout)",
    ),
    K.DR_VENDOR: (
        "mwaa-dr was delivered in the DAG folder",
        "vendor, versions, uploaded, unchanged, removed",
    ),
    K.DR_DEPLOYED: ("the DR DAG files were uploaded", "prefix, files"),
    K.DR_WAITING_FOR_DAG: (
        "waiting for an environment to parse a DR DAG, and what for",
        "environment, dag_id, waiting_for (file_not_listed, new_version, dag_inactive, import_error), "
        "detail, scheduler (when Airflow's health shows the scheduler down)",
    ),
    K.DR_TRIGGERED: ("a DR DAG run was triggered", "environment, dag_id, run_id"),
    K.DR_RUN: (
        "a DR DAG run is in progress",
        "environment, dag_id, state, elapsed_s, waiting_for and detail (a queued run while the scheduler "
        "is down)",
    ),
    K.DR_BACKUP_VERIFIED: ("a backup's manifest was read and checked", "prefix, tables"),
    K.DR_RESTORE_VERIFIED: ("the restored rows match the backup", "tables"),
    K.DR_DELTA: (
        "pass 2's backup holds only what changed since the backup the target holds",
        "prefix, base, copied (rows in the backup), rows (rows on the source), whole (DAGs copied whole)",
    ),
    K.DR_DELTA_FALLBACK: (
        "pass 2 copies everything: the delta could not be taken or applied safely",
        "reason",
    ),
    K.DR_RESET_ON_TARGET: ("unfinished task instances were reset on the target", "task_instances"),
    K.DR_RECORD_KEPT: ("a DR DAG's record could not be deleted from the new colour", "dag_id, error"),
    K.PROBE_HEALTH: (
        "the environment's scheduler health, read before the probe (a down scheduler stops it)",
        "environment, scheduler (Airflow's status), latest_heartbeat, heartbeat_age_s, metric_minutes "
        "(minutes with a SchedulerHeartbeat datapoint), metric_window, problem",
    ),
    K.PROBE_STARTED: ("the mwaa-dr probe DAG runs", "environment, dag_id, run_id"),
    K.PROBE_WARNING: ("the probe passed with a warning", "environment, detail"),
    K.PROBE_DONE: (
        "the environment imports mwaa-dr and can write to the DR bucket",
        "environment, run_id, uri, mwaa_dr, vendored, deleted",
    ),
    K.BACKUP_STARTED: ("a backup started", "environment, location (not in upgrade's safety backup)"),
    K.BACKUP_SKIPPED: ("the upgrade's safety backup was skipped", "reason"),
    K.BACKUP_DONE: ("a backup finished (also the upgrade's safety backup)", "location"),
    K.BACKUP_SUMMARY: (
        "`backup`'s result (last event)",
        "location, environment, deployment, airflow_version, factory, created, records, mwaa_dr_delivery",
    ),
    K.RESTORE_SUMMARY: ("`restore`'s result (last event)", "environment, from, tables"),
    K.ROLLBACK_SUMMARY: (
        "`rollback`'s result (last event)",
        "active, paused_on, history_copied_back, unpaused, unpaused_latest_only, left_paused, dags, "
        "policies, warning, hint",
    ),
    K.CLEANUP_DELETING: ("the inactive colour's environment is being deleted", "environment"),
    K.APPLY_SUMMARY: (
        "`apply`'s result (last event): the plan summary, the guard's verdict, whether it was applied",
        "has_changes, counts, resources, environments, guard, applied, ...",
    ),
    K.CLEANUP_SUMMARY: (
        "`cleanup`'s result (last event)",
        "retired, dag_files_removed, backups_deleted, unpaused_on_source, repaused_on_target, "
        "may_run_twice, abandoned_cutover",
    ),
}

DESCRIPTIONS: dict[EventKind, str] = {kind: text for kind, (text, _) in _CATALOG.items()}
FIELDS: dict[EventKind, str] = {kind: fields for kind, (_, fields) in _CATALOG.items()}

# The kinds a long-running command's JSON lines end with.
SUMMARY_KINDS: frozenset[EventKind] = frozenset(
    {
        K.UPGRADE_SUMMARY,
        K.CUTOVER_SUMMARY,
        K.CUTOVER_PLAN,
        K.ROLLBACK_SUMMARY,
        K.CLEANUP_SUMMARY,
        K.BACKUP_SUMMARY,
        K.RESTORE_SUMMARY,
        K.APPLY_SUMMARY,
    }
)


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


def event(kind: EventKind, fields: Mapping[str, Any] | None = None, /, **more: Any) -> dict[str, Any]:
    """The dict a workflow emits: ``event(EventKind.FREEZE_PAUSED, environment=name, count=3)``.
    ``fields`` is for fields spread from a dict or not valid as keywords (``from``)."""
    return Event(kind, {**(fields or {}), **more}).to_dict()


# -- rendering for people ---------------------------------------------------------------------------

Formatter = Callable[[dict], str | None]

FORMATTERS: dict[EventKind, Formatter] = {}  # the rich-markup line printed for a kind
STATUS: dict[EventKind, Callable[[dict], str]] = {}  # the live status (spinner) text of a kind
# Kinds that stop the live status before their line is printed.
STOPS_STATUS: frozenset[EventKind] = frozenset({K.HOP_DONE, K.HEALTH_OK, K.STEP_DONE, K.PROBE_DONE})
# Kinds that print no line (some of them update the live status, see STATUS).
SILENT: frozenset[EventKind] = frozenset(
    {
        K.STEP_STARTED,
        K.CUTOVER_PLAN,
        K.CUTOVER_SUMMARY,
        K.UPGRADE_SUMMARY,
        K.HEALTH_POLL,
        K.WATCH_POLL,
        K.WATCH_POLL_ERROR,
        K.TERRAFORM_PLAN,
        K.TERRAFORM_APPLY_FAILED,
        K.TERRAFORM_REFRESHED,
        K.FREEZE_DRAINING,
        K.DR_DEPLOYED,
        K.DR_WAITING_FOR_DAG,
        K.DR_TRIGGERED,
        K.DR_RUN,
        K.DR_BACKUP_VERIFIED,
        K.DR_RESTORE_VERIFIED,
        K.DR_RESET_ON_TARGET,
        K.DR_RECORD_KEPT,
        K.PROBE_STARTED,
        K.RESTORE_SUMMARY,
        K.ROLLBACK_SUMMARY,
        K.CLEANUP_DELETING,
        K.CLEANUP_SUMMARY,
        K.BACKUP_SUMMARY,
        K.APPLY_SUMMARY,
    }
)


def _kind(data: Mapping[str, Any]) -> EventKind | None:
    try:
        return EventKind(data.get("event", ""))
    except ValueError:
        return None


def format_event(data: Mapping[str, Any]) -> str | None:
    """The rich-markup line(s) printed for an event dict, or None (silent or unknown kinds)."""
    kind = _kind(data)
    formatter = FORMATTERS.get(kind) if kind is not None else None
    return formatter(dict(data)) if formatter is not None else None


def status_text(data: Mapping[str, Any]) -> str | None:
    """The live status text (a spinner on a terminal, nothing in logs) an event sets, or None."""
    kind = _kind(data)
    make = STATUS.get(kind) if kind is not None else None
    return make(dict(data)) if make is not None else None


def stops_status(data: Mapping[str, Any]) -> bool:
    return _kind(data) in STOPS_STATUS


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _line(*kinds: EventKind) -> Callable[[Formatter], Formatter]:
    def register(formatter: Formatter) -> Formatter:
        for kind in kinds:
            FORMATTERS[kind] = formatter
        return formatter

    return register


def _status(*kinds: EventKind) -> Callable[[Callable[[dict], str]], Callable[[dict], str]]:
    def register(make: Callable[[dict], str]) -> Callable[[dict], str]:
        for kind in kinds:
            STATUS[kind] = make
        return make

    return register


def _live(status: Any, e: Mapping[str, Any] | None = None) -> str:
    """A status text; with an event carrying ``time_in_status_s``, how long, and a retried error."""
    text = f"{status}"
    if e is not None and "time_in_status_s" in e:
        text += f" for {duration(e['time_in_status_s'])}, total {duration(e['elapsed_s'])}"
    if e is not None and e.get("error"):
        text += f" (retrying: {e['error']})"
    return text


# preflight, steps, resumes


@_line(K.PREFLIGHT_CHECK)
def _preflight_check(e: dict) -> str:
    mark = "[success]✓[/]" if e["ok"] else "[failure]✗[/]"
    return f"{mark} {e['check']}: {e['detail']}"


@_status(K.STEP_STARTED)
def _step_started(e: dict) -> str:
    return _live(e["step"])


@_line(K.STEP_DONE)
def _step_done(e: dict) -> str:
    return f"[success]✓[/] {e['step']} ({duration(e['elapsed_s'])})"


@_line(K.UPGRADE_RESUME, K.CUTOVER_RESUME)
def _resume(e: dict) -> str:
    return f"resuming run {e['run_id']}"


@_line(K.CUTOVER_LIVE)
def _live_line(e: dict) -> str:
    return f"[success]{e['environment']} is live[/]: {e['unpaused']} DAG(s) unpaused"


# watching


@_line(K.WATCH_STATUS)
def _watch_status(e: dict) -> str:
    return f"[progress]{e['status']}[/] after {duration(e['elapsed_s'])}"


@_status(K.WATCH_STATUS, K.WATCH_POLL, K.WATCH_POLL_ERROR)
def _watch_live(e: dict) -> str:
    return _live(e.get("status"), e)


# hops and the health gate


@_line(K.HOP_STARTED)
def _hop_started(e: dict) -> str:
    return f"[key]hop {e['index']}[/]: {e['from']} → {e['to']} ({e['reason']})"


@_line(K.HOP_DONE)
def _hop_done(e: dict) -> str:
    return f"[success]hop to {e['to']} done in {duration(e['elapsed_s'])}[/]"


@_line(K.HOP_RESUMED)
def _hop_resumed(e: dict) -> str:
    return f"resuming: the update to {e['to']} was already issued; watching it"


@_line(K.HOP_UPDATE_ENVIRONMENT)
def _hop_update(e: dict) -> str:
    return f"UpdateEnvironment AirflowVersion={e['to']} ({e['why']})"


@_line(K.HOP_REQUIREMENTS)
def _hop_requirements(e: dict) -> str:
    return f"requirements for {e['to']}: {e['path']} (its --constraint line names {e['to']})"


@_status(K.HEALTH_POLL)
def _health_poll(e: dict) -> str:
    return _live(f"heartbeat {e['minutes_with_heartbeat']}/{e['required']} min")


@_line(K.HEALTH_OK)
def _health_ok(e: dict) -> str:
    return f"[success]scheduler heartbeat present for {e['minutes']} consecutive minutes[/]"


# terraform


@_line(K.TERRAFORM_OUTPUT)
def _terraform_output(e: dict) -> str:
    return f"[muted]{_escape('  ' + e['line'].rstrip())}[/]"


@_line(K.TERRAFORM_IMPORTED)
def _terraform_imported(e: dict) -> str:
    return f"[warning]{e['name']} existed but was not in Terraform's state: imported[/]"


# backups


@_line(K.BACKUP_STARTED, K.BACKUP_DONE, K.BACKUP_SKIPPED)
def _backup(e: dict) -> str:
    detail = e.get("location") or e.get("reason") or e.get("environment")
    return f"{e['event'].replace('.', ' ')}: {detail}"


# the target


@_line(K.TARGET_CREATE_ENVIRONMENT)
def _create_environment(e: dict) -> str:
    return f"CreateEnvironment {e['name']} at Airflow {e['version']}"


@_line(K.TARGET_ROLE_CREATED)
def _role_created(e: dict) -> str:
    return f"created execution role {e['role']} for {e['environment']}"


@_line(K.TARGET_PENDING_ENDPOINTS)
def _pending_endpoints(e: dict) -> str:
    return (
        f"[warning]{e['environment']} is PENDING: endpoint mode CUSTOMER, MWAA waits until you "
        f"create its VPC endpoints ({', '.join(e['services']) or 'see the console'}): "
        f"{e['fix']}[/]"
    )


# the freeze


@_line(K.FREEZE_RECORDED)
def _freeze_recorded(e: dict) -> str:
    return f"recorded {len(e['dags'])} unpaused DAG(s) on the source"


@_line(K.FREEZE_PAUSED)
def _freeze_paused(e: dict) -> str:
    return f"[warning]freeze started[/]: {e['count']} DAG(s) paused on {e['environment']}"


@_status(K.FREEZE_DRAINING)
def _freeze_draining(e: dict) -> str:
    shown = ", ".join(e["task_instances"])
    more = ", ..." if e["count"] > len(e["task_instances"]) else ""
    return _live(
        _escape(
            f"draining: {e['count']} task instance(s) executing on {e['environment']} "
            f"({shown}{more}), waited {duration(e['waited_s'])}"
        )
    )


@_line(K.FREEZE_DRAINED)
def _freeze_drained(e: dict) -> str:
    return f"no task instance executing on {e['environment']} (waited {e['waited_s']} s)"


@_line(K.FREEZE_DRAIN_FORCED)
def _freeze_drain_forced(e: dict) -> str:
    names = e["may_run_twice"]
    return (
        f"[warning]--force-drain: continuing with {len(names)} task instance(s) still executing on "
        f"{e['environment']}; they may run twice: {_escape(', '.join(names))}[/]"
    )


@_line(K.FREEZE_ABORTED)
def _freeze_aborted(e: dict) -> str:
    undone = (
        f"{e['repaused_on_target']} DAG(s) paused again on {e['target']}"
        + (", routing pointed back" if e["routed_back"] else "")
        + "; "
        if e["repaused_on_target"]
        else ""
    )
    return (
        f"[warning]freeze aborted: {undone}{e['unpaused']} DAG(s) unpaused again on "
        f"{e['environment']}; --resume takes a fresh backup[/]"
    )


@_line(K.FREEZE_TARGET_DRAINED)
def _freeze_target_drained(e: dict) -> str:
    if e.get("may_run_twice"):
        names = _escape(", ".join(e["may_run_twice"]))
        return f"[warning]{e['environment']} still executes (may run twice): {names}[/]"
    return f"{e['environment']}: the task instances it started finished ({e['waited_s']} s)"


@_line(K.LIVE_OVERRIDE)
def _live_override(e: dict) -> str:
    said = "; ".join(
        f"{c['source']}: {'uncertain' if c.get('uncertain') else c.get('color') or 'no opinion'}"
        for c in e.get("claims", [])
    )
    return (
        f"[failure]BREAK GLASS: {_escape(e['action'])} {e['environment']} although {_escape(e['reason'])} "
        f"({_escape(said)})[/]"
    )


@_line(K.CUTOVER_RECORD_SYNCED)
def _record_synced(e: dict) -> str:
    return (
        f"[warning]the deployment record said {e['was']}; written again from cutover {e['run_id']}: "
        f"{e['active_color']} is active[/]"
    )


@_line(K.FREEZE_ABORT_FAILED)
def _freeze_abort_failed(e: dict) -> str:
    return (
        f"[failure]could not give scheduling back: {e['failed_on']}: {e['error']} "
        f"(recorded DAGs: {', '.join(e['dags'])})[/]"
    )


# mwaa-dr and the probe


@_line(K.DR_DELTA)
def _dr_delta(e: dict) -> str:
    whole = f"; {len(e['whole'])} DAG(s) copied whole" if e.get("whole") else ""
    return f"pass 2 copies what changed since pass 1: {e['copied']:,} of {e['rows']:,} rows{whole}"


@_line(K.DR_DELTA_FALLBACK)
def _dr_delta_fallback(e: dict) -> str:
    return f"[warning]pass 2 copies everything: {_escape(str(e['reason']))}[/]"


@_line(K.DR_VENDOR)
def _dr_vendor(e: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in e["versions"].items())
    return (
        f"mwaa-dr delivered in the DAG folder ({versions}): {e['uploaded']} object(s) uploaded, "
        f"{e['unchanged']} unchanged"
    )


@_status(K.DR_RUN)
def _dr_run(e: dict) -> str:
    status = f"{e['dag_id']} on {e['environment']}: {e['state']}"
    text = _live(status, {"elapsed_s": e["elapsed_s"], "time_in_status_s": e["elapsed_s"]})
    return text + (f" ({_escape(e['detail'])})" if e.get("detail") else "")


# What a DAG wait is waiting for, in the live status (the event's detail says it in full).
_WAITING_FOR = {
    "file_not_listed": "file not listed yet",
    "new_version": "an earlier version is parsed",
    "dag_inactive": "DAG inactive",
    "import_error": "import error, waiting for a re-parse",
}


@_status(K.DR_WAITING_FOR_DAG)
def _dr_waiting(e: dict) -> str:
    text = f"waiting for {e['environment']} to parse {e['dag_id']}"
    reason = _WAITING_FOR.get(e.get("waiting_for") or "")
    if reason:
        text += f": {reason}"
    if e.get("scheduler"):
        text += f"; {e['scheduler']}"
    return _live(_escape(text))


@_line(K.PROBE_HEALTH)
def _probe_health(e: dict) -> str | None:
    if e.get("problem"):
        return None  # the error that follows says it
    if e.get("heartbeat_age_s") is not None:
        return f"[success]✓[/] scheduler of {e['environment']}: heartbeat {e['heartbeat_age_s']:.0f} s ago"
    if e.get("metric_minutes"):
        return (
            f"[success]✓[/] scheduler of {e['environment']}: SchedulerHeartbeat in "
            f"{e['metric_minutes']} of the last {e['metric_window']} minutes"
        )
    return None


@_status(K.PROBE_STARTED)
def _probe_started(e: dict) -> str:
    return _live(f"probe: {e['dag_id']} on {e['environment']}")


@_line(K.PROBE_DONE)
def _probe_done(e: dict) -> str:
    where = "the DAG folder" if e["vendored"] else "its own installation"
    return (
        f"[success]✓[/] probe: {e['environment']} imports mwaa-dr (from {where}) and can write "
        f"to s3://{e['uri'][5:].split('/')[0]}/"
    )


@_line(K.PROBE_WARNING)
def _probe_warning(e: dict) -> str:
    return f"[warning]probe: {e['detail']}[/]"


def markdown_table() -> str:
    """The README's event table: kind, description, fields."""
    rows = ["| event | what it says | fields |", "|---|---|---|"]
    for kind in EventKind:
        summary = " (summary)" if kind in SUMMARY_KINDS else ""
        rows.append(f"| `{kind}` | {DESCRIPTIONS[kind]}{summary} | {FIELDS[kind]} |")
    return "\n".join(rows)
