"""Upgrade-path planner: which hops take an environment from one Airflow version to another.

Pure: the catalog and ``today`` come in, a :class:`PathPlan` comes out. The rules are AWS's (see
docs/design.md §2-3): 2.x minor upgrades and downgrades in place; 2.x → 3.x in place only from the latest
2.11.x; 3.x → 2.11.x in place; 1.10 never in place; nothing *to* an end-of-support version; a cutover
clones the source at its own version, restores its metadata with mwaa-dr, then upgrades the clone in
place (so history is carried only when mwaa-dr supports the source version).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from mwaa_iac.core.catalog import AirflowVersion, Catalog, load_catalog, parse_version


class Strategy(StrEnum):
    AUTO = "auto"
    IN_PLACE = "in-place"
    CUTOVER = "cutover"


class HopKind(StrEnum):
    IN_PLACE = "in-place"
    NEW_ENVIRONMENT = "new-environment"


@dataclass(frozen=True)
class Hop:
    kind: HopKind
    from_version: str | None
    to_version: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        return data


@dataclass(frozen=True)
class PathPlan:
    """The planner's answer. ``allowed`` is False when ``refusals`` is not empty."""

    from_version: str
    to_version: str
    requested_strategy: Strategy
    strategy: Strategy | None
    hops: tuple[Hop, ...] = ()
    refusals: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    history_carried: bool | None = None
    two_pass: bool | None = None
    # Two passes into a major upgrade (2 → 3): the last ``freeze_hops`` in-place hops of the target
    # run inside the freeze, after pass 2 (the copy restores only into a 2.x target).
    freeze_hops: int = 0

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def is_noop(self) -> bool:
        return self.allowed and not self.hops

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_version,
            "to": self.to_version,
            "requested_strategy": str(self.requested_strategy),
            "strategy": str(self.strategy) if self.strategy else None,
            "allowed": self.allowed,
            "hops": [h.to_dict() for h in self.hops],
            "refusals": list(self.refusals),
            "hints": list(self.hints),
            "notes": list(self.notes),
            "history_carried": self.history_carried,
            "two_pass": self.two_pass,
            "freeze_hops": self.freeze_hops,
        }

    def freeze_hop_texts(self) -> tuple[str, ...]:
        """The target's in-place upgrades inside the freeze, as ``"2.11.2 → 3.3.1"``."""
        hops = self.hops[len(self.hops) - self.freeze_hops :] if self.freeze_hops else ()
        return tuple(f"{h.from_version} → {h.to_version}" for h in hops)

    @property
    def pass2_version(self) -> str | None:
        """The target's version when pass 2 restores into it (two passes only)."""
        if not self.two_pass or not self.hops:
            return None
        before = self.hops[: len(self.hops) - self.freeze_hops]
        return before[-1].to_version


@dataclass
class _Attempt:
    hops: list[Hop] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    history_carried: bool | None = None
    two_pass: bool | None = None
    freeze_hops: int = 0


def in_place_refusal(
    source: AirflowVersion, target: AirflowVersion, catalog: Catalog, today: date
) -> str | None:
    """Why MWAA would reject an in-place change ``source`` → ``target`` in one step, or None."""
    if source.version == target.version:
        return None
    if not target.is_supported(today):
        return f"Airflow {target.version} reached end of support on {target.end_of_support}"
    if source.major == 1:
        return "Airflow 1.10 environments cannot be upgraded in place; create a new environment"
    if source.major == target.major:
        return None
    if source.major == 2 and target.major == 3:
        latest = catalog.latest_in_series(2, today, minor=11)
        if latest is not None and source.version == latest.version:
            return None
        stone = latest.version if latest else "the latest 2.11.x"
        return f"an in-place upgrade from 2.x to 3.x must start from the latest 2.11.x ({stone})"
    if source.major == 3 and target.major == 2:
        if target.key[1] == 11:
            return None
        return "an in-place downgrade from 3.x can only go to 2.11.x"
    return f"MWAA does not change Airflow {source.version} to {target.version} in place"


def _in_place_path(
    source: AirflowVersion, target: AirflowVersion, catalog: Catalog, today: date
) -> list[AirflowVersion] | None:
    """Shortest chain of allowed in-place steps (excluding ``source``), or None."""
    if source.version == target.version:
        return []
    nodes = [v for v in catalog.versions if v.is_supported(today)]
    previous: dict[str, AirflowVersion | None] = {source.version: None}
    queue: deque[AirflowVersion] = deque([source])
    while queue:
        current = queue.popleft()
        # Try the target first so a direct hop always wins, then newer-first stepping stones.
        ordered = sorted(nodes, key=lambda v: (v.version != target.version, tuple(-k for k in v.key)))
        for nxt in ordered:
            if nxt.version in previous or in_place_refusal(current, nxt, catalog, today) is not None:
                continue
            previous[nxt.version] = current
            if nxt.version == target.version:
                chain = [nxt]
                back: AirflowVersion | None = current
                while back is not None and back.version != source.version:
                    chain.append(back)
                    back = previous[back.version]
                return list(reversed(chain))
            queue.append(nxt)
    return None


def _hop_reason(a: AirflowVersion, b: AirflowVersion, target: AirflowVersion) -> str:
    direction = "upgrade" if b.key > a.key else "downgrade"
    if a.major == 2 and b.major == 3:
        return (
            f"major upgrade {a.version} → {b.version} through UpdateEnvironment (allowed from latest 2.11.x)"
        )
    if a.major == 3 and b.major == 2:
        return f"major downgrade {a.version} → {b.version} (3.x may go back to 2.11.x in place)"
    if b.version != target.version and b.major == 2 and b.key[1] == 11 and target.major == 3:
        return f"stepping stone: in-place {direction} to {b.version}, the latest 2.11.x, before going to 3.x"
    return f"in-place minor {direction} {a.version} → {b.version}"


def _plan_in_place(source: AirflowVersion, target: AirflowVersion, catalog: Catalog, today: date) -> _Attempt:
    attempt = _Attempt(history_carried=True)
    if source.major == 1:
        attempt.refusals.append(
            f"Airflow {source.version} cannot be upgraded in place (MWAA does not upgrade 1.10 environments)"
        )
        attempt.hints.append("use --strategy cutover --no-history: a new environment, history not carried")
        return attempt
    chain = _in_place_path(source, target, catalog, today)
    if chain is None:
        direct = in_place_refusal(source, target, catalog, today) or "no allowed chain of in-place steps"
        attempt.refusals.append(f"in place {source.version} → {target.version} is not allowed: {direct}")
        latest = catalog.latest_in_series(2, today, minor=11)
        if source.major == 2 and target.major == 3 and latest is not None:
            attempt.hints.append(f"upgrade to {latest.version} first, or use --strategy cutover")
        return attempt
    current = source
    for step in chain:
        attempt.hops.append(
            Hop(HopKind.IN_PLACE, current.version, step.version, _hop_reason(current, step, target))
        )
        current = step
    attempt.notes.append(
        "in place: scheduling stops for the whole update and running tasks are terminated "
        "(up to about two hours on AWS for a version change)"
    )
    return attempt


# The copy's DR DAG runs report their results (counts, hashes, errors) in the run's note, which the
# REST API has from Airflow 2.5.0: an older source cannot be verified, so history is not carried.
RUN_NOTES_SINCE = (2, 5, 0)


def _plan_cutover(
    source: AirflowVersion, target: AirflowVersion, catalog: Catalog, today: date, history: bool
) -> _Attempt:
    attempt = _Attempt()
    if not target.is_supported(today):
        attempt.refusals.append(f"Airflow {target.version} reached end of support on {target.end_of_support}")
        return attempt
    notes = source.key >= RUN_NOTES_SINCE
    can_copy = source.mwaa_dr and notes and source.is_supported(today)
    if not can_copy:
        if not source.mwaa_dr:
            why = f"mwaa-dr {catalog.mwaa_dr_version} does not support Airflow {source.version}"
        elif not notes:
            why = (
                f"Airflow {source.version} has no DAG run notes (added in 2.5.0), where mwaa-iac's copy "
                "reports its counts, hashes and errors: a copy could not be verified"
            )
        else:
            why = (
                f"Airflow {source.version} reached end of support on {source.end_of_support}, so no new "
                "environment can be created at it to restore its metadata into"
            )
        if history:
            attempt.refusals.append(f"a cutover cannot carry run history: {why}")
            attempt.hints.append("pass --no-history to create the new environment without history")
            if source.major != 1 and not source.is_supported(today):
                attempt.hints.append("or upgrade in place to a supported version first, then cut over")
            return attempt
        attempt.history_carried = False
        attempt.two_pass = False
        attempt.hops.append(
            Hop(
                HopKind.NEW_ENVIRONMENT,
                source.version,
                target.version,
                f"new environment at {target.version}; history is NOT carried ({why})",
            )
        )
        return attempt
    chain = _in_place_path(source, target, catalog, today)
    if chain is None:
        direct = in_place_refusal(source, target, catalog, today) or "no allowed chain of in-place steps"
        attempt.refusals.append(
            f"the new environment cannot be upgraded from {source.version} to {target.version}: {direct}"
        )
        return attempt
    attempt.history_carried = history
    attempt.hops.append(
        Hop(
            HopKind.NEW_ENVIRONMENT,
            source.version,
            source.version,
            f"clone at the source version {source.version} and restore its metadata with "
            f"{source.dr_factory} (mwaa-dr needs matching versions)"
            if history
            else f"new environment at {source.version} without history (--no-history)",
        )
    )
    # Pass 2 restores a fresh backup with mwaa-iac's copy module into the target as it is before the
    # freeze: only into a version the copy supports (2.x: mwaa-dr's factories) that is not older than
    # the source. A major upgrade stops at the last such version (the latest 2.11.x) before the
    # freeze; its hops into 3.x run inside the freeze, after pass 2.
    pre_freeze = len(chain)
    while pre_freeze and not chain[pre_freeze - 1].mwaa_dr:
        pre_freeze -= 1
    pass2 = chain[pre_freeze - 1] if pre_freeze else source
    attempt.two_pass = history and pass2.mwaa_dr and pass2.key >= source.key
    attempt.freeze_hops = len(chain) - pre_freeze if attempt.two_pass else 0
    current = source
    for index, step in enumerate(chain):
        reason = _hop_reason(current, step, target)
        if attempt.two_pass and index >= pre_freeze:
            reason += "; inside the freeze, after pass 2 (the copy restores only into 2.x)"
        elif history and not attempt.two_pass:
            reason += "; inside the freeze (single pass)"
        else:
            reason += "; before the freeze, while the source keeps running"
        attempt.hops.append(Hop(HopKind.IN_PLACE, current.version, step.version, reason))
        current = step
    if history and not attempt.two_pass:
        why = (
            f"mwaa-dr cannot restore into Airflow {pass2.version}"
            if not pass2.mwaa_dr
            else "a downgrade cannot take a second restore from the newer schema"
        )
        attempt.notes.append(
            f"single pass: {why}, so the freeze (DAGs paused on the source) starts before the clone "
            "and lasts through the target's upgrade"
        )
    elif history and attempt.freeze_hops:
        hops = " → ".join([pass2.version, *(v.version for v in chain[pre_freeze:])])
        attempt.notes.append(
            f"two passes via {pass2.version}: pass 1, the upgrade to {pass2.version} and the health gate "
            f"while the source keeps running; the freeze is pass 2 (what changed) into {pass2.version} "
            f"and the in-place upgrade {hops} (the copy restores only into 2.x; --single-pass freezes "
            "before the clone instead)"
        )
    elif history:
        attempt.notes.append(
            "two passes: a rehearsal while the source keeps running, then a short freeze for the final copy"
        )
    return attempt


def plan_path(
    from_version: str,
    to_version: str,
    strategy: Strategy | str = Strategy.AUTO,
    today: date | None = None,
    *,
    history: bool = True,
    catalog: Catalog | None = None,
) -> PathPlan:
    """Plan the hops from ``from_version`` to ``to_version``. Never raises for unknown versions:
    they come back as refusals, so callers can report them like any other refusal."""
    catalog = catalog or load_catalog()
    today = today or date.today()
    requested = Strategy(strategy)
    base: dict[str, Any] = {
        "from_version": from_version,
        "to_version": to_version,
        "requested_strategy": requested,
    }

    unknown: list[str] = []
    for label, text in (("source", from_version), ("target", to_version)):
        try:
            parse_version(text)
        except ValueError as exc:
            unknown.append(f"{label} version: {exc}")
            continue
        if catalog.get(text) is None:
            unknown.append(f"{label} version {text} is not a version Amazon MWAA offers")
    if unknown:
        return PathPlan(
            **base,
            strategy=None,
            refusals=tuple(unknown),
            hints=(f"known versions: {', '.join(catalog.names())}",),
        )
    source = catalog.get(from_version)
    target = catalog.get(to_version)
    assert source is not None and target is not None

    if source.version == target.version:
        return PathPlan(**base, strategy=requested, notes=(f"already at {target.version}: nothing to do",))
    if not target.is_supported(today):
        newer = catalog.latest_in_series(target.major, today) or catalog.supported(today)[-1]
        return PathPlan(
            **base,
            strategy=None,
            refusals=(
                f"Airflow {target.version} reached end of support on {target.end_of_support}: MWAA accepts "
                "no new environments and no upgrades to it",
            ),
            hints=(f"choose a supported version such as {newer.version}",),
        )

    if requested is Strategy.IN_PLACE:
        attempts = [(Strategy.IN_PLACE, _plan_in_place(source, target, catalog, today))]
    elif requested is Strategy.CUTOVER:
        attempts = [(Strategy.CUTOVER, _plan_cutover(source, target, catalog, today, history))]
    else:
        in_place = _plan_in_place(source, target, catalog, today)
        cutover = _plan_cutover(source, target, catalog, today, history)
        if not source.mwaa_dr and not in_place.refusals:
            in_place.notes.insert(
                0, f"auto chose in place: mwaa-dr cannot copy metadata from {source.version}"
            )
            attempts = [(Strategy.IN_PLACE, in_place)]
        elif not cutover.refusals:
            if cutover.two_pass and not cutover.freeze_hops:
                why = "history is copied and scheduling pauses only for the freeze window (minutes)"
            elif cutover.two_pass:
                why = (
                    "history is copied and scheduling pauses for the last copy and one in-place upgrade, "
                    "not for the whole path"
                )
            else:
                why = "history is copied; the freeze lasts from the clone until go-live"
            cutover.notes.insert(0, f"auto chose cutover: {why}")
            attempts = [(Strategy.CUTOVER, cutover)]
        elif not in_place.refusals:
            in_place.notes.insert(0, "auto chose in place: a cutover is not possible here")
            attempts = [(Strategy.IN_PLACE, in_place)]
        else:
            attempts = [(Strategy.IN_PLACE, in_place), (Strategy.CUTOVER, cutover)]

    if len(attempts) == 1 and not attempts[0][1].refusals:
        chosen, attempt = attempts[0]
        return PathPlan(
            **base,
            strategy=chosen,
            hops=tuple(attempt.hops),
            notes=tuple(attempt.notes),
            history_carried=attempt.history_carried,
            two_pass=attempt.two_pass if chosen is Strategy.CUTOVER else None,
            freeze_hops=attempt.freeze_hops if chosen is Strategy.CUTOVER else 0,
        )
    refusals = tuple(f"{name}: {r}" if len(attempts) > 1 else r for name, a in attempts for r in a.refusals)
    hints = tuple(h for _, a in attempts for h in a.hints)
    return PathPlan(**base, strategy=None, refusals=refusals, hints=hints)
