"""`mwaa-iac status`: the deployment at a glance, decided from what was read. Pure.

What it decides, from the sources :mod:`mwaa_iac.workflows.overview` reads:

- which colour is live as each source says it (the deployment record, routing, the last cutover's
  journal: :mod:`mwaa_iac.core.live`'s claims) and whether they agree;
- each colour's MWAA status and version beside the version the record holds for it;
- a cutover or in-place upgrade in progress: whether it is running (its lock is held) or was
  interrupted, the step it is in, how long the source has been frozen (its DAGs paused), and what
  ``--resume`` would do next (the journal's steps are walked in ``core.cutover_steps.flow()``'s
  order for the plan the journal recorded);
- one :class:`Verdict` (the CLI maps it to an exit code) and the next command to run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mwaa_iac.core.config import Color
from mwaa_iac.core.cutover_steps import PARENT, Step, flow_for_plan, redone_after_abort, stage_of
from mwaa_iac.core.live import Claim, Role, agreed_live, refusal

CUTOVER, UPGRADE = "cutover", "upgrade"


class Verdict(StrEnum):
    """Where the deployment stands, most urgent first (the first that applies wins)."""

    NEEDS_HUMAN = "needs-human"  # a colour is UNAVAILABLE: its rollback failed
    RUNNING = "running"  # a cutover or upgrade holds the lock and its process is not known to be gone
    INTERRUPTED = "interrupted"  # a cutover or upgrade stopped part-way: --resume continues it
    DISAGREE = "disagree"  # the sources do not agree which colour is live (or one cannot say)
    SETTLED = "settled"  # every source agrees and nothing is in progress


@dataclass(frozen=True)
class ColourView:
    """One colour's environment as GetEnvironment and the deployment record say it."""

    color: Color
    name: str
    recorded_version: str | None  # the deployment record's version for this colour
    exists: bool
    status: str | None = None  # MWAA status (AVAILABLE, UPDATING, ...); None when it does not exist
    version: str | None = None  # AirflowVersion
    last_update: str | None = None  # LastUpdate.Status
    last_update_error: str | None = None
    error: str | None = None  # GetEnvironment failed (other than not found): why

    def to_dict(self) -> dict[str, Any]:
        return {
            "color": str(self.color),
            "environment": self.name,
            "exists": self.exists,
            "status": self.status,
            "airflow_version": self.version,
            "recorded_version": self.recorded_version,
            "last_update": self.last_update,
            "last_update_error": self.last_update_error,
            "error": self.error,
        }


@dataclass(frozen=True)
class JournalRecord:
    """A workflow's journal as read from the state store (its entries as written)."""

    workflow: str
    run_id: str
    params: Mapping[str, Any]
    entries: Sequence[Mapping[str, Any]]
    where: str = ""


@dataclass(frozen=True)
class LockView:
    """The environment's lock: who holds it, and whether its process is known to be gone."""

    holder: Mapping[str, Any]
    stale: bool


@dataclass(frozen=True)
class WorkflowView:
    """The last cutover or upgrade: where it is and what ``--resume`` would do."""

    workflow: str
    run_id: str
    to: str | None
    state: str  # "running" | "interrupted" | "finished"
    outcome: str | None  # the end record's outcome when finished
    started_at: float | None
    current_step: str | None  # the step that was started and is not done (None when between steps)
    next_step: str | None  # the step --resume runs first (None: nothing left)
    stage: str | None  # the next step's stage (before-freeze, freeze, after) for a cutover
    frozen_since: float | None  # the source's DAGs have been paused since (None: not frozen)
    frozen_s: float | None
    resume: str  # what --resume would do, in words
    aborted: bool = False  # an aborted freeze gave scheduling back; --resume freezes again
    where: str = ""
    rolled_back: bool = False  # a cutover that went live and was rolled back (`mwaa-iac rollback`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "run_id": self.run_id,
            "to": self.to,
            "state": self.state,
            "outcome": self.outcome,
            "started_at": self.started_at,
            "current_step": self.current_step,
            "next_step": self.next_step,
            "stage": self.stage,
            "frozen_since": self.frozen_since,
            "frozen_s": None if self.frozen_s is None else round(self.frozen_s, 1),
            "freeze_aborted": self.aborted,
            "rolled_back": self.rolled_back,
            "resume": self.resume,
            "journal": self.where,
        }


@dataclass(frozen=True)
class Overview:
    env: str
    claims: tuple[Claim, ...]
    live: Color | None  # the colour every source with an opinion names (None: they disagree)
    colours: tuple[ColourView, ...]
    workflows: tuple[WorkflowView, ...]
    lock: LockView | None
    verdict: Verdict
    reason: str
    next_command: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "verdict": str(self.verdict),
            "reason": self.reason,
            "live": None if self.live is None else str(self.live),
            "sources_agree": self.live is not None,
            "claims": [c.to_dict() for c in self.claims],
            "colours": [c.to_dict() for c in self.colours],
            "workflows": [w.to_dict() for w in self.workflows],
            "lock": None if self.lock is None else {**self.lock.holder, "stale": self.lock.stale},
            "next_command": self.next_command,
            "notes": list(self.notes),
        }


# -- the journal -------------------------------------------------------------------------------------


def step_state(entries: Sequence[Mapping[str, Any]], step: str) -> str | None:
    """None (never started), "started" or "done" — the last record of ``step`` (a note counts as
    started, as in :meth:`mwaa_iac.workflows.journal.Journal.state`)."""
    result = None
    for entry in entries:
        if entry.get("step") == step:
            result = entry.get("event")
    return result


def step_data(entries: Sequence[Mapping[str, Any]], step: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in entries:
        if entry.get("step") == step:
            merged.update(entry.get("data") or {})
    return merged


def _last(entries: Sequence[Mapping[str, Any]], step: str) -> Mapping[str, Any] | None:
    return next((e for e in reversed(entries) if e.get("step") == step), None)


def _end(entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((e for e in reversed(entries) if e.get("event") == "end"), None)


def cutover_steps(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The cutover's steps in the order it walks them, from the plan its preflight recorded (before
    the preflight is done: the preflight alone)."""
    plan = step_data(entries, Step.PREFLIGHT).get("result")
    if step_state(entries, Step.PREFLIGHT) != "done" or not isinstance(plan, dict):
        return [str(Step.PREFLIGHT)]
    steps = flow_for_plan(plan)
    return [s for s in steps if s not in PARENT]  # a child step runs inside its parent


def upgrade_steps(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The in-place upgrade's steps: preflight, backup, one ``hop-<n>-<version>`` per hop."""
    if step_state(entries, "preflight") != "done":
        return ["preflight"]
    hops = step_data(entries, "preflight").get("hops") or []
    return ["preflight", "backup", *(f"hop-{i}-{v}" for i, v in enumerate(hops, 1))]


def frozen_since(entries: Sequence[Mapping[str, Any]]) -> float | None:
    """When the source's DAGs were paused, while they are: pause-source started and not undone by
    an aborted freeze, go-live not done. The time of the last attempt of pause-source."""
    last = _last(entries, Step.PAUSE_SOURCE)
    if last is None or (last.get("data") or {}).get("aborted"):
        return None
    if step_state(entries, Step.GO_LIVE) == "done":
        return None
    attempts = [
        e
        for e in entries
        if e.get("step") == Step.PAUSE_SOURCE and e.get("event") == "started" and not e.get("note")
    ]
    at = attempts[-1].get("at") if attempts else last.get("at")
    return float(at) if isinstance(at, int | float) else None


def freeze_aborted(entries: Sequence[Mapping[str, Any]]) -> bool:
    """An aborted freeze gave scheduling back and marked its steps to run again."""
    last = _last(entries, Step.PAUSE_SOURCE)
    return last is not None and bool((last.get("data") or {}).get("aborted"))


def workflow_view(
    record: JournalRecord, *, lock: LockView | None, now: float, source: str = "", target: str = ""
) -> WorkflowView:
    """Where the journaled workflow stands. ``source``/``target``: the cutover's environments."""
    entries = record.entries
    end = _end(entries)
    steps = cutover_steps(entries) if record.workflow == CUTOVER else upgrade_steps(entries)
    pending = [s for s in steps if step_state(entries, s) != "done"]
    current = next((s for s in steps if step_state(entries, s) == "started"), None)
    nxt = pending[0] if pending else None
    begin_at = entries[0].get("at") if entries else None
    since = frozen_since(entries) if record.workflow == CUTOVER else None
    aborted = record.workflow == CUTOVER and freeze_aborted(entries)
    if end is not None:
        state = "finished"
    elif lock is not None and lock.holder.get("workflow") == record.workflow and not lock.stale:
        state = "running"
    else:
        state = "interrupted"
    stage = None
    if record.workflow == CUTOVER and nxt is not None:
        stage = str(stage_of(nxt))
    return WorkflowView(
        workflow=record.workflow,
        run_id=record.run_id,
        to=record.params.get("to"),
        state=state,
        outcome=None if end is None else end.get("outcome"),
        started_at=float(begin_at) if isinstance(begin_at, int | float) else None,
        current_step=None if end is not None else current,
        next_step=None if end is not None else nxt,
        stage=None if end is not None else stage,
        frozen_since=since if end is None else None,
        frozen_s=None if since is None or end is not None else max(0.0, now - since),
        resume=_resume_text(record, end, nxt, current, aborted, since, source, target),
        aborted=aborted and end is None,
        where=record.where,
        rolled_back=record.workflow == CUTOVER and step_state(entries, Step.ROLLBACK) == "done",
    )


def _resume_text(
    record: JournalRecord,
    end: Mapping[str, Any] | None,
    nxt: str | None,
    current: str | None,
    aborted: bool,
    since: float | None,
    source: str,
    target: str,
) -> str:
    if end is not None:
        return f"nothing: the {record.workflow} finished ({end.get('outcome')})"
    if nxt is None:
        return f"closes the {record.workflow}'s journal (every step is done)"
    if record.workflow == CUTOVER and aborted and redone_after_abort(nxt):
        return (
            f"pauses {source or 'the source'} again and takes a fresh backup (the aborted freeze "
            f"gave scheduling back), starting with {nxt}"
        )
    verb = f"continues {nxt}, which had started" if nxt == current else f"starts {nxt}"
    if record.workflow == CUTOVER:
        if nxt == Step.GO_LIVE and current == Step.GO_LIVE:
            return f"finishes the go-live on {target or 'the target'} (it stopped half-way)"
        if since is not None:
            return f"{verb}; {source or 'the source'}'s DAGs stay paused until go-live"
        if stage_of(nxt) == "freeze" or nxt in (Step.RECORD_DAGS, Step.PAUSE_SOURCE):
            return f"{verb}: the freeze begins ({source or 'the source'}'s DAGs are paused)"
    if nxt.startswith("hop-") or nxt.startswith("target-hop-"):
        return f"{verb} (an UpdateEnvironment already issued is watched, not issued again)"
    return verb


# -- the verdict -------------------------------------------------------------------------------------


def overview(
    env: str,
    claims: Sequence[Claim],
    colours: Sequence[ColourView],
    journals: Sequence[JournalRecord],
    lock: LockView | None,
    *,
    now: float,
    record_color: Color,
) -> Overview:
    """The deployment at a glance, and the next command to run."""
    names = {c.color: c.name for c in colours}
    source_color = record_color
    views: list[WorkflowView] = []
    for record in journals:
        if record.workflow == CUTOVER and record.params.get("source_color") in ("blue", "green"):
            source_color = Color(str(record.params["source_color"]))
            views.append(
                workflow_view(
                    record,
                    lock=lock,
                    now=now,
                    source=names.get(source_color, ""),
                    target=names.get(source_color.other, ""),
                )
            )
        else:
            views.append(workflow_view(record, lock=lock, now=now))
    live = agreed_live(list(claims))
    verdict, reason, command, notes = _decide(env, claims, colours, views, lock, live, record_color)
    return Overview(
        env=env,
        claims=tuple(claims),
        live=live,
        colours=tuple(colours),
        workflows=tuple(views),
        lock=lock,
        verdict=verdict,
        reason=reason,
        next_command=command,
        notes=tuple(notes),
    )


def _resume_command(view: WorkflowView, env: str) -> str:
    to = f" --to {view.to}" if view.to else ""
    return f"mwaa-iac {view.workflow} --resume --env {env}{to}"


def _decide(
    env: str,
    claims: Sequence[Claim],
    colours: Sequence[ColourView],
    views: Sequence[WorkflowView],
    lock: LockView | None,
    live: Color | None,
    record_color: Color,
) -> tuple[Verdict, str, str, list[str]]:
    notes: list[str] = []
    unfinished = [v for v in views if v.state != "finished"]
    if lock is not None and not any(v.state == "running" for v in views):
        holder = lock.holder
        notes.append(
            f"the lock is held by {holder.get('workflow', 'a workflow')} (pid {holder.get('pid')} on "
            f"{holder.get('host')})" + ("; its process is gone: --break-lock takes it" if lock.stale else "")
        )
    broken = [c for c in colours if c.status == "UNAVAILABLE"]
    if broken:
        names = ", ".join(c.name for c in broken)
        errors = "; ".join(f"{c.name}: {c.last_update_error}" for c in broken if c.last_update_error)
        return (
            Verdict.NEEDS_HUMAN,
            f"{names} is UNAVAILABLE: its update failed and so did MWAA's rollback"
            + (f" ({errors})" if errors else ""),
            f"aws mwaa get-environment --name {broken[0].name}  # read LastUpdate.Error, then "
            "open a case with AWS Support; no mwaa-iac command can repair it",
            notes,
        )
    running = [v for v in unfinished if v.state == "running"]
    if running:
        view = running[0]
        holder = lock.holder if lock is not None else {}
        where = f" (pid {holder.get('pid')} on {holder.get('host')})" if holder else ""
        frozen = (
            f"; the source has been frozen for {_span(view.frozen_s)}" if view.frozen_s is not None else ""
        )
        return (
            Verdict.RUNNING,
            f"the {view.workflow} to {view.to} (run {view.run_id}) is running{where}, in "
            f"{view.current_step or view.next_step}{frozen}",
            f"mwaa-iac status --env {env}  # again later: wait for it to finish",
            notes,
        )
    if unfinished:
        view = unfinished[0]
        frozen = (
            f"; the source has been frozen (DAGs paused) for {_span(view.frozen_s)}"
            if view.frozen_s is not None
            else ""
        )
        command = _resume_command(view, env)
        if view.workflow == CUTOVER:
            notes.append(f"to abandon the cutover instead: mwaa-iac cleanup --env {env}")
        return (
            Verdict.INTERRUPTED,
            f"the {view.workflow} to {view.to} (run {view.run_id}) stopped in "
            f"{view.current_step or view.next_step}{frozen}",
            command,
            notes,
        )
    if live is None:
        found = refusal("act on", record_color, Role.LIVE, list(claims), env)
        said = "; ".join(c.text() for c in claims)
        fix = found.fix if found is not None else "make the sources agree"
        uncertain = any(c.uncertain for c in claims)
        return (
            Verdict.DISAGREE,
            ("a source cannot say which colour serves" if uncertain else "the sources disagree")
            + f": {said}",
            _command_of(fix, env),
            notes,
        )
    active = next((c for c in colours if c.color is live), None)
    other = next((c for c in colours if c.color is live.other), None)
    for colour in colours:
        if (
            colour.exists
            and colour.recorded_version
            and colour.version
            and colour.version != colour.recorded_version
        ):
            notes.append(
                f"{colour.name} runs {colour.version}, the deployment record says {colour.recorded_version}"
            )
    if active is not None and not active.exists:
        notes.append(f"{active.name} (the live colour) does not exist")
    rolled_back = next((v for v in views if v.rolled_back), None)
    if other is not None and other.exists and rolled_back is not None and live is not other.color:
        return (
            Verdict.SETTLED,
            f"{live} is live on every source; {other.name} ({other.version}) is the target of cutover "
            f"{rolled_back.run_id}, rolled back",
            f"mwaa-iac cleanup --env {env}  # deletes {other.name}; then cut over again when ready",
            notes,
        )
    if other is not None and other.exists:
        return (
            Verdict.SETTLED,
            f"{live} is live on every source; {other.name} ({other.version}) is the inactive colour",
            f"mwaa-iac cleanup --env {env}  # after the soak period; "
            f"to go back: mwaa-iac rollback --env {env}",
            notes,
        )
    return (
        Verdict.SETTLED,
        f"{live} is live on every source; nothing is in progress",
        f"mwaa-iac cutover --env {env} --to VERSION --dry-run  # plans the next upgrade",
        notes,
    )


def _command_of(fix: str, env: str) -> str:
    """The command inside a live-colour refusal's fix (between backquotes), else the fix itself."""
    if "`" in fix:
        command = fix.split("`")[1]
        if command.startswith("mwaa-iac") and "status" not in command:
            return command
    return fix


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
