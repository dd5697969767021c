"""Terraform commands: `render` (tfvars of a phase), `plan`, `apply`, and `tf fmt` / `tf test`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.options import (
    EnvOpt,
    JsonLinesOpt,
    JsonOpt,
    LiveObjectsOpt,
    PhaseOpt,
    RootOpt,
    TfBinOpt,
    VersionOpt,
    YesOpt,
)
from mwaa_iac.cli.root import confirm, exit_on_error
from mwaa_iac.errors import ExitCode, MwaaIacError, UsageError

tf_app = typer.Typer(
    rich_markup_mode=None,
    help="Terraform helpers run through the same Terraform as plan/apply.",
    no_args_is_help=True,
)


def render(
    env: EnvOpt,
    phase: PhaseOpt = "steady",
    version: VersionOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write to this file instead of stdout.", show_default=False),
    ] = None,
    root: RootOpt = None,
) -> None:
    """Render terraform.tfvars.json for a deployment phase (deterministic: same input, same bytes)."""
    from mwaa_iac.core.catalog import load_catalog
    from mwaa_iac.core.phase_layout import layout_for, parse_phase
    from mwaa_iac.core.tfvars import render_tfvars
    from mwaa_iac.workspace import open_workspace

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


def plan(
    env: EnvOpt,
    phase: PhaseOpt = "steady",
    version: VersionOpt = None,
    json_out: JsonOpt = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 no changes, 2 changes planned, 1 error.")
    ] = False,
    terraform_bin: TfBinOpt = None,
    live_objects: LiveObjectsOpt = True,
    root: RootOpt = None,
) -> None:
    """Render the phase's tfvars, run terraform plan (saved), summarise it and run the plan guard."""
    try:
        result, _ = _plan(env, root, phase, version, terraform_bin, live_objects, quiet=json_out)
    except MwaaIacError as exc:
        if detailed_exitcode:
            raise exit_on_error(exc) from None
        raise
    if json_out:
        ui.emit_json(result.to_dict())
    else:
        _print_phase_plan(result)
    if not result.verdict.allowed:
        raise typer.Exit(ExitCode.FAILED)
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(ExitCode.CHANGES)


def apply(
    env: EnvOpt,
    phase: PhaseOpt = "steady",
    version: VersionOpt = None,
    yes: YesOpt = False,
    json_out: JsonLinesOpt = False,
    terraform_bin: TfBinOpt = None,
    live_objects: LiveObjectsOpt = True,
    root: RootOpt = None,
) -> None:
    """Plan the phase, show the summary, then apply exactly that saved plan (asks first unless --yes)."""
    from mwaa_iac.cli.progress import Progress
    from mwaa_iac.workflows.apply import apply_plan

    result, runner = _plan(env, root, phase, version, terraform_bin, live_objects, quiet=json_out)
    if not json_out:
        _print_phase_plan(result)
    ask = (lambda: None) if yes else (lambda: confirm("apply", f"Apply this plan to {env}?"))
    with Progress(json_out) as progress:
        applied = apply_plan(result, runner, progress, confirm=ask)
    if not result.verdict.allowed:
        raise typer.Exit(ExitCode.FAILED)
    if applied and not json_out:
        ui.out.print(f"[success]applied {result.phase} to {env}[/]")


def _plan(
    env: str,
    root: Path | None,
    phase: str,
    version: str | None,
    terraform_bin: str | None,
    live_objects: bool,
    *,
    quiet: bool,
):
    """Render and plan the phase (each existing colour pinned to what it runs unless told not to);
    the saved plan's summary and the runner that made it. ``quiet``: no Terraform output, no notes."""
    from mwaa_iac.core.catalog import load_catalog
    from mwaa_iac.core.phase_layout import parse_phase
    from mwaa_iac.workflows.phase import live_files_or_note, plan_phase, runner_for
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    if version is not None:
        load_catalog().require(version)
    runner = runner_for(ws, terraform_bin, None if quiet else _terraform_line)
    pins, note = live_files_or_note(config) if live_objects else ({}, None)
    if note and not quiet:
        ui.err.print(f"[warning]{note}[/]")
    return plan_phase(ws, config, parse_phase(phase, config), runner, version=version, **pins), runner


@tf_app.command("fmt")
def tf_fmt(
    paths: Annotated[list[Path], typer.Argument(help="Directories or files to format.")],
    check: Annotated[
        bool, typer.Option("--check", help="Only list files that need formatting (exit 1).")
    ] = False,
    terraform_bin: TfBinOpt = None,
) -> None:
    """terraform fmt -recursive over PATHS (with --check: list unformatted files and exit 1)."""
    from mwaa_iac.adapters.terraform import TerraformRunner, resolve_executor

    runner = TerraformRunner(Path.cwd(), executor=resolve_executor(terraform_bin))
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
    from mwaa_iac.adapters.terraform import TerraformRunner, resolve_executor

    executor = resolve_executor(terraform_bin)
    failed = 0
    for directory in module:
        runner = TerraformRunner(directory, executor=executor)
        runner.init(backend=False)
        result = runner.test()
        ui.out.print(result.output.rstrip(), markup=False)
        if not result.ok:
            failed += 1
    if failed:
        raise typer.Exit(ExitCode.FAILED)
