"""`mwaa-iac versions list|path`: the Airflow versions MWAA offers and the paths between them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.options import JsonOpt, TodayOpt, parse_today
from mwaa_iac.core.planner import Strategy
from mwaa_iac.errors import ExitCode

if TYPE_CHECKING:
    from mwaa_iac.core.planner import PathPlan

versions_app = typer.Typer(
    rich_markup_mode=None,
    help="The Airflow versions MWAA offers and the paths between them.",
    no_args_is_help=True,
)


@versions_app.command("list")
def versions_list(json_out: JsonOpt = False, today: TodayOpt = None) -> None:
    """List every Airflow version MWAA has offered, with Python, dates and mwaa-dr support."""
    from mwaa_iac.core.catalog import load_catalog

    day = parse_today(today)
    catalog = load_catalog()
    if json_out:
        ui.emit_json(
            {
                "checked": catalog.checked,
                "mwaa_dr_version": catalog.mwaa_dr_version,
                "versions": [v.to_dict(day) for v in catalog.versions],
            }
        )
        return
    from rich.table import Table

    table = Table(title=f"Airflow on Amazon MWAA (catalog checked {catalog.checked}; as of {day})")
    for column in ("version", "python", "available", "end of support", "mwaa-dr", "status"):
        table.add_column(column)
    for v in catalog.versions:
        supported = v.is_supported(day)
        table.add_row(
            v.version,
            v.python,
            v.available.isoformat() + (" ~" if v.available_approximate else ""),
            v.end_of_support.isoformat() if v.end_of_support else "-",
            v.dr_factory or "no",
            "[success]supported[/]" if supported else "[failure]end of support[/]",
        )
    ui.out.print(table)
    ui.out.print("[muted]~ availability date approximate[/]")


def _print_path(plan: PathPlan) -> None:
    if plan.allowed:
        ui.out.print(f"[success]{plan.from_version} → {plan.to_version}: {plan.strategy}[/]")
        for number, hop in enumerate(plan.hops, 1):
            ui.out.print(
                f"  {number}. [key]{hop.kind}[/] {hop.from_version} → {hop.to_version}: {hop.reason}"
            )
        if plan.history_carried is not None:
            ui.out.print(f"  history carried: {'yes' if plan.history_carried else 'NO'}")
        for note in plan.notes:
            ui.out.print(f"  [muted]{note}[/]")
    else:
        ui.err.print(
            f"[failure]refused: {plan.from_version} → {plan.to_version} ({plan.requested_strategy})[/]"
        )
        for reason in plan.refusals:
            ui.err.print(f"  - {reason}")
        for hint in plan.hints:
            ui.err.print(f"  [warning]hint:[/] {hint}")


def print_choices(ways: list) -> None:
    """The ways side by side (core.choices), the recommended one marked, the figure's source once."""
    from mwaa_iac.core.choices import SOURCE_NOTE

    if not ways:
        return
    ui.out.print("  [key]ways[/] (scheduling stop on MWAA):")
    for way in ways:
        mark = "[success]★[/]" if way.recommended else ("·" if way.allowed else "[muted]✗[/]")
        text = way.scheduling_stop if way.allowed else f"not possible: {way.detail}"
        ui.out.print(f"   {mark} [key]{way.name}[/]: {text}")
        if way.recommended:
            ui.out.print(f"      [muted]recommended: {way.why}[/]")
    ui.out.print(f"  [muted]{SOURCE_NOTE}[/]")


@versions_app.command("path")
def versions_path(
    from_version: Annotated[str, typer.Option("--from", help="Current Airflow version.")],
    to_version: Annotated[str, typer.Option("--to", help="Target Airflow version.")],
    strategy: Annotated[
        Strategy, typer.Option("--strategy", help="auto, in-place or cutover.")
    ] = Strategy.AUTO,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Accept a cutover that does not carry run history.")
    ] = False,
    json_out: JsonOpt = False,
    today: TodayOpt = None,
) -> None:
    """Plan the hops from one Airflow version to another, and show every way side by side (in place,
    one pass, two passes, no history) with the scheduling stop each costs on MWAA (exit 1 when the
    path is refused)."""
    from mwaa_iac.core.choices import choices
    from mwaa_iac.core.planner import plan_path

    day = parse_today(today)
    plan = plan_path(from_version, to_version, strategy, day, history=not no_history)
    ways = choices(from_version, to_version, day) if plan.allowed else []
    if json_out:
        ui.emit_json({**plan.to_dict(), "choices": [c.to_dict() for c in ways]})
    else:
        _print_path(plan)
        print_choices(ways)
    if not plan.allowed:
        raise typer.Exit(ExitCode.FAILED)
