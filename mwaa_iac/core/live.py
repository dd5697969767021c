"""Which colour is live, as each source of truth says it, and whether a command may act on a colour.

Three sources say which colour serves a deployment, and they can disagree: the deployment record
(``mwaa.yaml``'s ``deployment:``, written by go-live and by rollback, and lost when the runner dies
or the GitOps commit is rejected), the routing that callers follow (the SSM parameter and, when
configured, the Route 53 record) and the last cutover's journal (go-live done, or a rollback after
it). A stale record once made ``cleanup`` delete the live colour. So before a command deletes,
overwrites, pauses or upgrades a colour, it collects a :class:`Claim` from every source and asks
:func:`refusal`; a refusal names what each source says and the fix.

Pure: the adapters that read the sources live in ``workflows/live.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mwaa_iac.core.config import Color


class Role(StrEnum):
    """What a command needs the colour it acts on to be."""

    LIVE = "live"  # it acts on the serving colour (in-place upgrade, the cutover's source, rollback)
    NOT_LIVE = "not-live"  # it deletes or overwrites the colour (cleanup, restore, a cutover's target)


RECORD, ROUTING, DNS, JOURNAL = "record", "routing", "dns", "journal"
SOURCE_NAMES = {
    RECORD: "deployment record (mwaa.yaml)",
    ROUTING: "routing (SSM parameter)",
    DNS: "routing (Route 53 record)",
    JOURNAL: "last cutover (journal)",
}


@dataclass(frozen=True)
class Claim:
    """What one source says. ``color`` None: the source has no opinion (not configured, not set,
    no cutover recorded). ``uncertain``: the source says that either colour may be serving (a
    go-live or rollback stopped half-way); commands then refuse until it is finished."""

    source: str
    color: Color | None
    detail: str
    uncertain: bool = False

    def text(self) -> str:
        if self.uncertain:
            said = "uncertain"
        elif self.color is None:
            said = "no opinion"
        else:
            said = str(self.color)
        return f"{SOURCE_NAMES.get(self.source, self.source)}: {said} ({self.detail})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "color": None if self.color is None else str(self.color),
            "uncertain": self.uncertain,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Refusal:
    """Why a command may not act on ``color``, and how to fix it."""

    action: str
    color: Color
    reason: str
    claims: tuple[Claim, ...]
    fix: str

    def message(self, environment: str) -> str:
        said = "; ".join(c.text() for c in self.claims)
        return f"refused to {self.action} {environment} ({self.color}): {self.reason}. {said}"


def journal_claim(
    *,
    run_id: str | None,
    source_color: Color | None,
    go_live: str | None,
    go_live_aborted: bool,
    rollback: str | None,
) -> Claim:
    """The last cutover journal's view. ``go_live``/``rollback``: the state of those steps (None,
    "started", "done"); ``go_live_aborted``: an aborted freeze undid the go-live that had started."""
    if run_id is None or source_color is None:
        return Claim(JOURNAL, None, "no cutover recorded")
    target = source_color.other
    if rollback == "done":
        return Claim(JOURNAL, source_color, f"cutover {run_id} went live on {target}, then was rolled back")
    if rollback == "started":
        return Claim(
            JOURNAL,
            None,
            f"the rollback of cutover {run_id} stopped half-way: rerun `mwaa-iac rollback`",
            True,
        )
    if go_live == "done":
        return Claim(JOURNAL, target, f"cutover {run_id} went live on {target}")
    if go_live == "started" and not go_live_aborted:
        return Claim(
            JOURNAL,
            None,
            f"the go-live of cutover {run_id} stopped half-way: `mwaa-iac cutover --resume` finishes it",
            True,
        )
    return Claim(JOURNAL, source_color, f"cutover {run_id} has not gone live: {source_color} serves")


def routing_claim(source: str, value: dict[str, Any] | None, names: dict[Color, str], where: str) -> Claim:
    """The routing parameter's (or record's) view from what it holds: an environment name (the
    parameter's ``name``, or the host the DNS record points at, already mapped to a name)."""
    if value is None:
        return Claim(source, None, f"{where} is not set")
    name = value.get("name")
    for color, env_name in names.items():
        if name == env_name:
            return Claim(source, color, f"{where} → {name}")
    return Claim(source, None, f"{where} → {name!r}, which is neither colour of this deployment", True)


def refusal(action: str, color: Color, role: Role, claims: list[Claim], env: str) -> Refusal | None:
    """None when ``action`` may act on ``color`` given every source's claim; else why not."""
    uncertain = [c for c in claims if c.uncertain]
    if uncertain:
        return Refusal(
            action,
            color,
            "a source cannot say which colour serves",
            tuple(claims),
            uncertain[0].detail if uncertain[0].source == JOURNAL else _fix_routing(env),
        )
    opinions = [c for c in claims if c.color is not None]
    if role is Role.NOT_LIVE:
        live = [c for c in opinions if c.color is color]
        if not live:
            return None
        return Refusal(
            action,
            color,
            f"{color} is live according to the " + " and the ".join(SOURCE_NAMES[c.source] for c in live),
            tuple(claims),
            _fix(claims, env),
        )
    others = [c for c in opinions if c.color is not color]
    if not others:
        return None
    return Refusal(
        action,
        color,
        f"the sources disagree: {color} is not live according to the "
        + " and the ".join(SOURCE_NAMES[c.source] for c in others),
        tuple(claims),
        _fix(claims, env),
    )


def agreed_live(claims: list[Claim]) -> Color | None:
    """The colour every source with an opinion names, or None when they disagree or none has one."""
    if any(c.uncertain for c in claims):
        return None
    colors = {c.color for c in claims if c.color is not None}
    return colors.pop() if len(colors) == 1 else None


def _fix(claims: list[Claim], env: str) -> str:
    by = {c.source: c for c in claims}
    record, journal = by.get(RECORD), by.get(JOURNAL)
    routed = [c for c in claims if c.source in (ROUTING, DNS) and c.color is not None]
    if (
        record is not None
        and journal is not None
        and journal.color is not None
        and record.color is not journal.color
        and all(c.color is journal.color for c in routed)
    ):
        return (
            f"the deployment record is stale (the last cutover's own record of go-live or rollback was "
            f"lost): `mwaa-iac cutover --resume --env {env}` writes it again from the journal; commit "
            "mwaa.yaml, then rerun this command"
        )
    return _fix_routing(env)


def _fix_routing(env: str) -> str:
    return (
        "find out which colour really serves (`mwaa-iac status`-style checks: the SSM parameter, the "
        "Route 53 record, `mwaa.yaml`, the cutover journal), make routing and mwaa.yaml say it, "
        "then rerun this command; nothing was changed"
    )
