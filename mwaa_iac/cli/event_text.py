"""How an event reads for people: the rich-markup line printed for its kind (:func:`format_event`)
and the live status (a spinner on a terminal) it sets (:func:`status_text`).

The kinds whose line only puts fields into a sentence are templates (:data:`TEMPLATES`, with
``{x:duration}`` and ``{x:escaped}`` for :func:`duration` and rich-escaped text); the others have a
formatter function. Every kind has a line, a status, or is explicitly :data:`SILENT`."""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from rich.markup import escape

from mwaa_iac.events import EventKind

K = EventKind
Formatter = Callable[[dict], str | None]

# Lines that only put the event's fields into a sentence.
TEMPLATES: dict[EventKind, str] = {
    K.STEP_DONE: "[success]✓[/] {step} ({elapsed_s:duration})",
    K.WATCH_STATUS: "[progress]{status}[/] after {elapsed_s:duration}",
    K.HOP_DONE: "[success]hop to {to} done in {elapsed_s:duration}[/]",
    K.DR_DELTA_FALLBACK: "[warning]pass 2 copies everything: {reason:escaped}[/]",
    K.UPGRADE_RESUME: "resuming run {run_id}",
    K.CUTOVER_RESUME: "resuming run {run_id}",
    K.CUTOVER_LIVE: "[success]{environment} is live[/]: {unpaused} DAG(s) unpaused",
    K.HOP_STARTED: "[key]hop {index}[/]: {from} → {to} ({reason})",
    K.HOP_RESUMED: "resuming: the update to {to} was already issued; watching it",
    K.HOP_UPDATE_ENVIRONMENT: "UpdateEnvironment AirflowVersion={to} ({why})",
    K.HOP_REQUIREMENTS: "requirements for {to}: {path} (its --constraint line names {to})",
    K.HEALTH_OK: "[success]scheduler heartbeat present for {minutes} consecutive minutes[/]",
    K.TERRAFORM_IMPORTED: "[warning]{name} existed but was not in Terraform's state: imported[/]",
    K.TARGET_CREATE_ENVIRONMENT: "CreateEnvironment {name} at Airflow {version}",
    K.TARGET_ROLE_CREATED: "created execution role {role} for {environment}",
    K.FREEZE_ESTIMATE: (
        "[key]freeze estimate[/]: about {seconds:duration} (the rehearsal's upgrade {upgrade_s} s and parse "
        "{parse_s} s; pass 2 and the drain come on top)"
    ),
    K.REHEARSAL_CREATING: "creating the rehearsal {environment} at Airflow {version}",
    K.REHEARSAL_HOP: "rehearsal: upgrading {environment} to {to} in place, as the freeze will",
    K.REHEARSAL_HOP_DONE: "[success]the rehearsal's upgrade took {seconds:duration}[/]",
    K.REHEARSAL_KEPT: "[warning]the rehearsal {environment} is kept; cleanup deletes it[/]",
    K.REHEARSAL_DELETED: "the rehearsal {environment} is being deleted",
    K.TARGET_CHECKED: "[success]{environment} parses all {dags} recorded DAG(s)[/] (waited {waited_s} s)",
    K.FREEZE_HELD: (
        "[warning]the freeze holds: {target} was upgraded inside it; {environment}'s DAGs stay paused "
        "(--resume continues, cleanup gives scheduling back)[/]"
    ),
    K.FREEZE_PAUSED: "[warning]freeze started[/]: {count} DAG(s) paused on {environment}",
    K.FREEZE_DRAINED: "no task instance executing on {environment} (waited {waited_s} s)",
    K.CUTOVER_RECORD_SYNCED: (
        "[warning]the deployment record said {was}; written again from cutover {run_id}: "
        "{active_color} is active[/]"
    ),
    K.PROBE_WARNING: "[warning]probe: {detail}[/]",
}
# Live statuses that only put the event's fields into a few words.
STATUS_TEMPLATES: dict[EventKind, str] = {
    K.STEP_STARTED: "{step}",
    K.HEALTH_POLL: "heartbeat {minutes_with_heartbeat}/{required} min",
    K.PROBE_STARTED: "probe: {dag_id} on {environment}",
    K.TARGET_PARSING: "{environment} parsing: {count} recorded DAG(s) to go ({waited_s} s)",
}

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
        K.IN_FLIGHT_WAITING,
        K.DR_DEPLOYED,
        K.DR_WAITING_FOR_DAG,
        K.DR_TRIGGERED,
        K.DR_RUN,
        K.DR_BACKUP_VERIFIED,
        K.DR_RESTORE_VERIFIED,
        K.DR_RESET_ON_TARGET,
        K.DR_RECORD_KEPT,
        K.PROBE_STARTED,
        K.TARGET_PARSING,
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


class _Fields(string.Formatter):
    """A template's fields: ``{x:duration}`` is :func:`duration`, ``{x:escaped}`` rich-escaped text."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "duration":
            return duration(value)
        if format_spec == "escaped":
            return escape(str(value))
        return super().format_field(value, format_spec)


_FIELDS = _Fields()


def _template(text: str) -> Callable[[dict], str]:
    return lambda e: _FIELDS.vformat(text, (), e)


for _k, _text in TEMPLATES.items():
    FORMATTERS[_k] = _template(_text)
for _k, _text in STATUS_TEMPLATES.items():
    STATUS[_k] = _template(_text)


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


@_line(K.PREFLIGHT_CHECK)
def _preflight_check(e: dict) -> str:
    mark = "[success]✓[/]" if e["ok"] else "[failure]✗[/]"
    return f"{mark} {e['check']}: {e['detail']}"


@_line(K.PREFLIGHT_HAZARDS)
def _preflight_hazards(e: dict) -> str:
    rows = e["rows"].get("task_instance", 0)
    text = (
        f"[muted]migration-hazard scan of {e['environment']}: {len(e['findings'])} finding(s) in "
        f"{rows:,} task instances; Airflow 3's UUID step about {e['estimate_minutes']} min[/]"
    )
    if e.get("db_clean_dag"):
        where = escape(e["db_clean_dag"])
        text += f"\n  `airflow db clean` DAG written to {where}: upload it, run it, then retry"
    return text


@_status(K.WATCH_STATUS, K.WATCH_POLL, K.WATCH_POLL_ERROR)
def _watch_live(e: dict) -> str:
    return _live(e.get("status"), e)


@_line(K.TERRAFORM_OUTPUT)
def _terraform_output(e: dict) -> str:
    return f"[muted]{escape('  ' + e['line'].rstrip())}[/]"


@_line(K.BACKUP_STARTED, K.BACKUP_DONE, K.BACKUP_SKIPPED)
def _backup(e: dict) -> str:
    detail = e.get("location") or e.get("reason") or e.get("environment")
    return f"{e['event'].replace('.', ' ')}: {detail}"


@_line(K.REHEARSAL_CHECKED)
def _rehearsal_checked(e: dict) -> str:
    failing = sorted([*e["failing"], *e["unparsed"]])
    lines = [
        f"rehearsal checked: {len(failing)} unpaused DAG(s) fail on it"
        + (f" ({escape(', '.join(failing[:10]))})" if failing else "")
        + f"; {e['import_errors']} import error(s) in all"
    ]
    lines += [f"  history: {escape(h)}" for h in e["history"]]
    if e.get("dag_run"):
        lines.append(f"  {escape(e['dag_run']['dag_id'])}: {e['dag_run']['state']}")
    return "\n".join(lines)


@_line(K.TARGET_IMPORT_ERRORS_ACCEPTED)
def _import_errors_accepted(e: dict) -> str:
    names = sorted([*e["failing"], *e["unparsed"]])
    return (
        f"[warning]--accept-import-errors: going live on {escape(e['environment'])} although "
        f"{len(e['failing']) + len(e['unparsed'])} recorded DAG(s) fail there: "
        f"{escape(', '.join(names[:10]))}[/]"
    )


@_line(K.TARGET_PENDING_ENDPOINTS)
def _pending_endpoints(e: dict) -> str:
    return (
        f"[warning]{e['environment']} is PENDING: endpoint mode CUSTOMER, MWAA waits until you "
        f"create its VPC endpoints ({', '.join(e['services']) or 'see the console'}): "
        f"{e['fix']}[/]"
    )


@_line(K.COPIER_ARMED)
def _copier_armed(e: dict) -> str:
    return (
        f"armed {e['dag_id']} on {e['environment']} (running after {duration(e['started_after_s'])}; "
        "it copies when the freeze tells it to)"
    )


@_line(K.COPIER_NOT_ARMED)
def _copier_not_armed(e: dict) -> str:
    return f"[warning]pass 2's copiers are not armed ({e['reason']}): the freeze triggers its runs[/]"


@_line(K.COPIER_FALLBACK)
def _copier_fallback(e: dict) -> str:
    return (
        f"[warning]the armed {e['dag_id']} on {e['environment']} did nothing ({e['reason']}): "
        "triggering it[/]"
    )


@_line(K.FREEZE_RECORDED)
def _freeze_recorded(e: dict) -> str:
    return f"recorded {len(e['dags'])} unpaused DAG(s) on the source"


@_status(K.FREEZE_DRAINING)
def _freeze_draining(e: dict) -> str:
    shown = ", ".join(e["task_instances"])
    more = ", ..." if e["count"] > len(e["task_instances"]) else ""
    return _live(
        escape(
            f"draining: {e['count']} task instance(s) executing on {e['environment']} "
            f"({shown}{more}), waited {duration(e['waited_s'])}"
        )
    )


@_line(K.FREEZE_DRAIN_FORCED)
def _freeze_drain_forced(e: dict) -> str:
    names = e["may_run_twice"]
    return (
        f"[warning]--force-drain: continuing with {len(names)} task instance(s) still executing on "
        f"{e['environment']}; they may run twice: {escape(', '.join(names))}[/]"
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
        names = escape(", ".join(e["may_run_twice"]))
        return f"[warning]{e['environment']} still executes (may run twice): {names}[/]"
    return f"{e['environment']}: the task instances it started finished ({e['waited_s']} s)"


@_status(K.IN_FLIGHT_WAITING)
def _in_flight_waiting(e: dict) -> str:
    return (
        f"{len(e['runs'])} run(s) in flight at the freeze wait for {e['environment']}'s scheduler "
        f"({duration(e['waited_s'])})"
    )


@_line(K.IN_FLIGHT_RESUMED)
def _in_flight_resumed(e: dict) -> str:
    names = escape(", ".join(e["task_instances"]))
    return f"{e['dag_id']}/{e['run_id']}: put on the DAG's latest version so that it runs on: {names}"


@_line(K.IN_FLIGHT_NOT_RESUMED)
def _in_flight_not_resumed(e: dict) -> str:
    return (
        f"[warning]{len(e['runs'])} run(s) in flight at the freeze will not finish on {e['environment']} "
        f"({e['reason']}): clear their unfinished tasks there: {escape(', '.join(e['runs'][:10]))}[/]"
    )


@_line(K.LIVE_OVERRIDE)
def _live_override(e: dict) -> str:
    said = "; ".join(
        f"{c['source']}: {'uncertain' if c.get('uncertain') else c.get('color') or 'no opinion'}"
        for c in e.get("claims", [])
    )
    return (
        f"[failure]BREAK GLASS: {escape(e['action'])} {e['environment']} although {escape(e['reason'])} "
        f"({escape(said)})[/]"
    )


@_line(K.FREEZE_ABORT_FAILED)
def _freeze_abort_failed(e: dict) -> str:
    return (
        f"[failure]could not give scheduling back: {e['failed_on']}: {e['error']} "
        f"(recorded DAGs: {', '.join(e['dags'])})[/]"
    )


@_line(K.DR_DELTA)
def _dr_delta(e: dict) -> str:
    whole = f"; {len(e['whole'])} DAG(s) copied whole" if e.get("whole") else ""
    return f"pass 2 copies what changed since pass 1: {e['copied']:,} of {e['rows']:,} rows{whole}"


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
    return text + (f" ({escape(e['detail'])})" if e.get("detail") else "")


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
    return _live(escape(text))


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


@_line(K.PROBE_DONE)
def _probe_done(e: dict) -> str:
    where = "the DAG folder" if e["vendored"] else "its own installation"
    return (
        f"[success]✓[/] probe: {e['environment']} imports mwaa-dr (from {where}) and can write "
        f"to s3://{e['uri'][5:].split('/')[0]}/"
    )
