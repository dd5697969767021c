"""Commands for pull requests and CI: ``report`` (the pull-request report), ``cost``, and the ``check``
group (``check dags``, ``check requirements``)."""

from __future__ import annotations

import io
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.options import (
    ConstraintsFileOpt,
    EnvOpt,
    JsonOpt,
    OfflineOpt,
    RootOpt,
    SourceDirOpt,
    TfBinOpt,
    TodayOpt,
    ToOpt,
    parse_today,
)
from mwaa_iac.cli.root import exit_on_error
from mwaa_iac.errors import ExitCode, MwaaIacError, UsageError

check_app = typer.Typer(
    rich_markup_mode=None,
    help="Offline compatibility checks for an upgrade: DAG code and requirements.",
    no_args_is_help=True,
)


class ReportFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


class Resolver(StrEnum):
    AUTO = "auto"
    UV = "uv"
    PIP = "pip"
    NONE = "none"


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


def report(
    env: EnvOpt,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Git ref to compare with (the pull request's base, e.g. origin/main); without it, no "
            "'what changed' section.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[ReportFormat, typer.Option("--format", "-f", help="text, markdown or json.")] = (
        ReportFormat.TEXT
    ),
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0 no change, 2 change planned, 1 error, refusal or failed check (like Terraform).",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the report to FILE too.", show_default=False)
    ] = None,
    terraform: Annotated[
        bool,
        typer.Option(
            "--terraform/--no-terraform", help="Plan the next phase with Terraform (reported, never fatal)."
        ),
    ] = True,
    terraform_bin: TfBinOpt = None,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="Read both colours with GetEnvironment (never fatal).")
    ] = True,
    source_dir: SourceDirOpt = None,
    requirements: Annotated[
        Path | None,
        typer.Option(
            "--requirements", help="requirements.txt to check against the target.", show_default=False
        ),
    ] = None,
    constraints: ConstraintsFileOpt = None,
    dags: Annotated[
        Path | None,
        typer.Option("--dags", help="DAG folder to check against the target.", show_default=False),
    ] = None,
    offline: OfflineOpt = False,
    hours: Annotated[
        float | None,
        typer.Option(
            "--hours", help="Parallel-run hours for the cost (default: soak_hours).", show_default=False
        ),
    ] = None,
    today: TodayOpt = None,
    root: RootOpt = None,
) -> None:
    """The pull-request report: what changed, what is live, the upgrade decision, the Terraform plan
    of the next phase, preflight checks and the extra cost."""
    from mwaa_iac.report import ReportOptions, build_report, render_json, render_markdown, render_text
    from mwaa_iac.workspace import open_workspace

    try:
        ws = open_workspace(env, root)
        options = ReportOptions(
            base=base,
            today=parse_today(today),
            live=live,
            terraform=terraform,
            terraform_bin=terraform_bin,
            source_dir=source_dir,
            requirements_file=requirements,
            constraints_file=constraints,
            dag_dir=dags,
            offline=offline,
            hours=hours,
        )
        result = build_report(ws, options)
    except MwaaIacError as exc:
        if detailed_exitcode:
            raise exit_on_error(exc) from None
        raise
    data = result.to_dict()
    if output_format is ReportFormat.JSON:
        text = render_json(data)
        sys.stdout.write(text)
    elif output_format is ReportFormat.MARKDOWN:
        text = render_markdown(data)
        sys.stdout.write(text)
    else:
        renderables = render_text(data)
        for item in renderables:
            ui.out.print(item)
        text = ""
        if out is not None:  # the file gets the same report without colours
            buffer = io.StringIO()
            plain = ui.plain(buffer)
            for item in renderables:
                plain.print(item)
            text = buffer.getvalue()
    sys.stdout.flush()
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, "utf-8")
        except OSError as exc:
            error = UsageError(f"cannot write {out}: {exc.strerror or exc}")
            if detailed_exitcode:
                raise exit_on_error(error) from None
            raise error from None
        ui.err.print(f"[muted]wrote {escape(str(out))}[/]")
    code = result.exit_code(detailed_exitcode)
    if code:
        raise typer.Exit(code)


# --------------------------------------------------------------------------------------------------
# check dags / check requirements
# --------------------------------------------------------------------------------------------------


def _target(config_version: str, to: str | None) -> str:
    from mwaa_iac.core.catalog import load_catalog

    version = to or config_version
    load_catalog().require(version)
    return version


@check_app.command("dags")
def check_dags_command(
    env: EnvOpt,
    to: ToOpt = None,
    path: Annotated[
        Path | None,
        typer.Option("--path", help="DAG folder (default: <source-dir>/<dag_s3_path>).", show_default=False),
    ] = None,
    import_files: Annotated[
        bool,
        typer.Option(
            "--import",
            help="Also import every DAG file with the target Airflow in the local stack's cached virtualenv.",
        ),
    ] = False,
    build_venv: Annotated[
        bool, typer.Option("--build-venv", help="With --import: build the virtualenv when it is not cached.")
    ] = False,
    source_dir: SourceDirOpt = None,
    json_out: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """Check DAG files against the target: ruff's Airflow 3 rules (AIR3xx) with file:line and the fix;
    optionally import them with the target Airflow. Exit 1 on breaking findings or import errors."""
    from mwaa_iac.checks.dags import check_dags
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    target = _target(config.airflow_version, to)
    if path is None:
        if source_dir is None:
            raise UsageError(
                "no DAG folder given",
                hint="pass --path DIR, or --source-dir DIR (a local copy of the bucket)",
            )
        path = source_dir / config.source.dag_s3_path
    result = check_dags(
        path, target, import_files=import_files, build_venv=build_venv, display=_display(path)
    )
    if json_out:
        ui.emit_json(result.to_dict())
    else:
        ruff = f" (ruff {result.ruff_version}, rules AIR3xx)" if result.ruff_version else ""
        ui.out.print(f"[key]DAGs in {escape(result.path)} for Airflow {target}[/]{ruff}")
        for finding in result.findings:
            style = "failure" if finding.breaking else "warning"
            kind = "breaking" if finding.breaking else "warning"
            ui.out.print(
                f"  {escape(finding.where)} [{style}]{finding.rule} {kind}[/] {escape(finding.message)}"
            )
            if finding.fix:
                ui.out.print(f"      [muted]fix:[/] {escape(finding.fix)}")
        for item in result.imports or ():
            ids = ", ".join(item.dag_ids) or "no DAGs"
            if not item.ok:
                ui.out.print(f"  [failure]import error[/] {escape(item.where)}: {escape(item.error or '')}")
            elif item.warnings:
                ui.out.print(
                    f"  [warning]imports with deprecation warnings[/] {escape(item.file)} ({escape(ids)})"
                )
                for warning in item.warnings:
                    ui.out.print(
                        f"      [muted]{escape(warning.where)}[/] {escape(warning.category_name)}: "
                        f"{escape(warning.message)}"
                    )
            else:
                ui.out.print(f"  [success]imports[/] {escape(item.file)} ({escape(ids)})")
        ui.out.print(("[success]" if result.ok else "[failure]") + escape(result.summary()) + "[/]")
        if result.import_skipped:
            ui.err.print(f"[warning]import check not run:[/] {escape(result.import_skipped)}")
    if not result.ok:
        raise typer.Exit(ExitCode.FAILED)


@check_app.command("requirements")
def check_requirements_command(
    env: EnvOpt,
    to: ToOpt = None,
    requirements: Annotated[
        Path | None,
        typer.Option(
            "--requirements",
            help="requirements.txt (default: <source-dir>/<requirements_s3_path>).",
            show_default=False,
        ),
    ] = None,
    source_dir: SourceDirOpt = None,
    constraints: ConstraintsFileOpt = None,
    python: Annotated[
        str | None,
        typer.Option("--python", help="Python version (default: MWAA's for the target).", show_default=False),
    ] = None,
    resolver: Annotated[
        Resolver, typer.Option("--resolver", help="auto (uv, else pip), uv, pip or none (static check only).")
    ] = Resolver.AUTO,
    find_links: Annotated[
        Path | None,
        typer.Option(
            "--find-links",
            help="Resolve from this directory of wheels only (no package index).",
            show_default=False,
        ),
    ] = None,
    offline: OfflineOpt = False,
    json_out: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """Check requirements.txt against the target version's Airflow constraints file; report conflicts
    by package. Exit 1 on conflicts or when the constraints cannot be had."""
    from mwaa_iac.checks.requirements import RequirementsOptions, check_requirements
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    target = _target(config.airflow_version, to)
    if requirements is None:
        if config.source.requirements_s3_path is None:
            message = (
                f"{env} has no requirements file (source.requirements_s3_path is not set): nothing to check"
            )
            if json_out:
                ui.emit_json({"status": "skipped", "summary": message})
            else:
                ui.out.print(f"[muted]{escape(message)}[/]")
            return
        if source_dir is None:
            raise UsageError(
                "no requirements file given",
                hint="pass --requirements FILE, or --source-dir DIR (a local copy of the source bucket, "
                f"where {config.source.requirements_s3_path} is read)",
            )
        requirements = source_dir / config.source.requirements_s3_path
    options = RequirementsOptions(
        constraints_file=constraints,
        python_version=python,
        offline=offline,
        resolver=str(resolver),
        find_links=find_links,
    )
    result = check_requirements(requirements, target, options, display=_display(requirements))
    if json_out:
        ui.emit_json(result.to_dict())
    else:
        assert result.constraints is not None
        against = escape(result.constraints.describe())
        ui.out.print(f"[key]{escape(result.requirements_file or '')}[/] against {against}")
        for conflict in result.conflicts:
            where = f" ({conflict.where})" if conflict.where else ""
            ui.out.print(
                f"  [failure]{escape(conflict.package)}[/]{escape(where)}: {escape(conflict.reason)}"
            )
        if result.resolver is not None:
            style = {True: "success", False: "failure", None: "muted"}[result.resolver.ok]
            first, _, rest = result.resolver.message.partition("\n")
            ui.out.print(f"  [{style}]resolver:[/] {escape(first)}")
            if rest and result.resolver.ok is False:
                ui.out.print(escape(rest), style="muted")
        for note in result.notes:
            ui.out.print(f"  [muted]{escape(note)}[/]")
        ui.out.print(("[success]" if result.ok else "[failure]") + escape(result.summary()) + "[/]")
    if not result.ok:
        raise typer.Exit(ExitCode.FAILED)


# --------------------------------------------------------------------------------------------------
# cost
# --------------------------------------------------------------------------------------------------


def cost(
    env: EnvOpt,
    hours: Annotated[
        float | None,
        typer.Option("--hours", help="Hours both colours run (default: soak_hours).", show_default=False),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="Region to price (default: the config's).", show_default=False),
    ] = None,
    metadata_gb: Annotated[
        float, typer.Option("--metadata-gb", help="Metadata database size to price, in GB.")
    ] = 10.0,
    live_prices: Annotated[
        bool,
        typer.Option("--live", help="Read current prices from the AWS Price List API (pricing:GetProducts)."),
    ] = False,
    json_out: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """Estimate the extra cost of running both colours (a second environment) for the soak period.
    A figure missing from the price data is named, never guessed (exit 1)."""
    from mwaa_iac.core.cost import estimate_parallel_run, load_price_book
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    if hours is not None and hours < 0:
        raise UsageError("--hours must not be negative")
    book = load_price_book()
    if live_prices:
        from mwaa_iac.report.aws import fetch_price_figures

        book = book.with_figures(fetch_price_figures(region or config.region))
    estimate = estimate_parallel_run(config, book, hours=hours, region=region, metadata_gb=metadata_gb)
    if json_out:
        ui.emit_json(estimate.to_dict())
        return
    _print_estimate(estimate.to_dict())


def _print_estimate(data: dict) -> None:
    from mwaa_iac.report.render import cost_table

    ui.out.print(cost_table(data, title=data["summary"]))
    for assumption in data["assumptions"]:
        ui.out.print(f"[muted]- {escape(assumption)}[/]")
    if data["uncertain_figures"]:
        ui.out.print("[warning]uncertain figures:[/] " + escape("; ".join(data["uncertain_figures"])))
    for key, text in data["sources"].items():
        ui.out.print(f"[muted]source {escape(key)}: {escape(text)}[/]")
