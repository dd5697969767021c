"""`mwaa-iac apply`: apply a phase's saved plan and say what happened in ``apply.summary``.

The plan is made first (:func:`mwaa_iac.workflows.phase.plan_phase`); this applies it only when the
plan guard allows it and it changes something, after the caller's confirmation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mwaa_iac.adapters.terraform import TerraformRunner
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows import phase
from mwaa_iac.workflows.phase import PhasePlan


def apply_plan(
    plan: PhasePlan,
    runner: TerraformRunner,
    emit: Callable[[dict[str, Any]], None],
    *,
    confirm: Callable[[], None] = lambda: None,
) -> bool:
    """Apply exactly the saved plan when the guard allows it and it has changes (``confirm`` runs
    first and raises to stop); ``apply.summary`` is the last event either way. Whether it applied."""
    applied = plan.verdict.allowed and plan.has_changes
    if applied:
        confirm()
        phase.apply_phase(plan, runner)
    emit(event(EventKind.APPLY_SUMMARY, plan.to_dict(), applied=applied))
    return applied
