"""The ways from one Airflow version to another, side by side: in place, a cutover in one pass, in
two passes, and without history — each with the scheduling stop it costs on MWAA, and which one is
recommended and why (`versions path`, the cutover's dry run and its confirmation). Pure.

The only duration AWS documents for these operations is that an environment "can be unavailable
for up to two hours" during an in-place version update (docs/design.md §2): that is the figure used
per in-place hop. Creating an environment and copying the metadata are not bounded by AWS; they are
named, not estimated, and local-stack figures are never mixed in here (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from mwaa_iac.core.catalog import Catalog
from mwaa_iac.core.planner import HopKind, PathPlan, Strategy, plan_path

AWS_HOP = "up to ~2 h on AWS"
# Printed once under the choices: where the figure comes from.
SOURCE_NOTE = (
    "~2 h: AWS documents that an environment can be unavailable for up to two hours during an in-place "
    "version update; creation and copy times are not documented by AWS (the rehearsal measures a 2 → 3 "
    "upgrade on your data before the freeze)"
)


@dataclass(frozen=True)
class Choice:
    name: str  # in-place | single-pass | two-pass | no-history
    allowed: bool
    history: bool
    scheduling_stop: str  # what stops scheduling, and for how long on MWAA
    detail: str  # the path, or why it is refused
    recommended: bool = False
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hops(plan: PathPlan) -> list[str]:
    return [f"{h.from_version} → {h.to_version}" for h in plan.hops if h.kind == HopKind.IN_PLACE]


def _hop_cost(count: int) -> str:
    if count == 0:
        return "no in-place upgrade"
    each = " each" if count > 1 else ""
    return f"{count} in-place upgrade{'s' if count > 1 else ''} ({AWS_HOP}{each})"


def choices(
    from_version: str, to_version: str, today: date | None = None, *, catalog: Catalog | None = None
) -> list[Choice]:
    """Every way from ``from_version`` to ``to_version``, the recommended one marked."""
    in_place = plan_path(from_version, to_version, Strategy.IN_PLACE, today, catalog=catalog)
    cutover = plan_path(from_version, to_version, Strategy.CUTOVER, today, catalog=catalog)
    bare = plan_path(from_version, to_version, Strategy.CUTOVER, today, history=False, catalog=catalog)

    def refused(plan: PathPlan) -> str:
        return "; ".join(plan.refusals) or "refused"

    items: list[Choice] = []
    hops = _hops(in_place)
    items.append(
        Choice(
            "in-place",
            in_place.allowed,
            True,
            f"the whole update, running tasks terminated: {_hop_cost(len(hops))}"
            if in_place.allowed
            else "—",
            " → ".join([from_version, *(h.to_version for h in in_place.hops)])
            if in_place.allowed
            else refused(in_place),
        )
    )
    all_hops = _hops(cutover)
    items.append(
        Choice(
            "single-pass",
            cutover.allowed,
            True,
            "from before the clone until go-live: the new environment's creation, the full copy and "
            + _hop_cost(len(all_hops))
            if cutover.allowed
            else "—",
            "clone at the source's version, copy, " + ", ".join(all_hops)
            if cutover.allowed
            else refused(cutover),
        )
    )
    two_pass = cutover.allowed and bool(cutover.two_pass)
    frozen = list(cutover.freeze_hop_texts()) if two_pass else []
    items.append(
        Choice(
            "two-pass",
            two_pass,
            True,
            (
                f"pass 2 (what changed since pass 1) and {_hop_cost(len(frozen))}: {', '.join(frozen)}, "
                "measured beforehand by the rehearsal"
                if frozen
                else "pass 2 only: what changed since pass 1, minutes (no upgrade inside the freeze)"
            )
            if two_pass
            else "—",
            (
                f"pass 1 and {', '.join(h for h in all_hops if h not in frozen) or 'no upgrade'} while the "
                "source runs; then the freeze"
            )
            if two_pass
            else (
                refused(cutover) if not cutover.allowed else "; ".join(cutover.notes[-1:]) or "not possible"
            ),
        )
    )
    items.append(
        Choice(
            "no-history",
            bare.allowed,
            False,
            "only around go-live (pause, drain, unpause: seconds to minutes); run history is NOT carried"
            if bare.allowed
            else "—",
            "new environment at the target version" if bare.allowed else refused(bare),
        )
    )
    return _recommend(items)


def _recommend(items: list[Choice]) -> list[Choice]:
    by_name = {c.name: c for c in items}
    pick, why = None, ""
    if by_name["two-pass"].allowed:
        pick = "two-pass"
        why = (
            "history carried, and the shortest stop that carries it: the rest runs while the source schedules"
        )
    elif by_name["in-place"].allowed:
        pick = "in-place"
        why = "history kept; no second environment (a cutover is not possible here)"
    elif by_name["single-pass"].allowed:
        pick = "single-pass"
        why = "the only way that carries history here"
    elif by_name["no-history"].allowed:
        pick = "no-history"
        why = "the only way here; history is lost"
    return [
        Choice(**{**c.to_dict(), "recommended": c.name == pick, "why": why if c.name == pick else ""})
        for c in items
    ]
