"""`mwaa-iac upgrade`: the in-place upgrade of the active environment, hop by hop."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.options import (
    AcceptHazardOpt,
    BreakLockOpt,
    ConstraintsOpt,
    DbCleanDagOpt,
    EngineOpt,
    EnvOpt,
    HealthMinutesOpt,
    JsonLinesOpt,
    PollOpt,
    RootOpt,
    SkipRequirementsOpt,
    TfBinOpt,
    ToOpt,
    YesOpt,
)
from mwaa_iac.cli.progress import Progress, duration
from mwaa_iac.cli.root import confirm
from mwaa_iac.core.engines import DEFAULT_ENGINE


def upgrade(
    env: EnvOpt,
    to: ToOpt = None,
    engine: EngineOpt = DEFAULT_ENGINE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run the preflight and show the hops; change nothing.")
    ] = False,
    yes: YesOpt = False,
    json_out: JsonLinesOpt = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted upgrade from its journal.")
    ] = False,
    no_backup: Annotated[bool, typer.Option("--no-backup", help="Skip the mwaa-dr safety backup.")] = False,
    constraints: ConstraintsOpt = None,
    skip_requirements_check: SkipRequirementsOpt = False,
    accept_hazard: AcceptHazardOpt = None,
    write_db_clean_dag: DbCleanDagOpt = None,
    poll_interval: PollOpt = 15.0,
    budget_minutes: Annotated[
        float,
        typer.Option(
            "--budget-minutes",
            help="Give up watching a hop after this long (MWAA keeps working; --resume continues).",
        ),
    ] = 180.0,
    health_minutes: HealthMinutesOpt = 3,
    break_lock: BreakLockOpt = False,
    terraform_bin: TfBinOpt = None,
    root: RootOpt = None,
) -> None:
    """Upgrade (or downgrade) the active environment in place, hop by hop, watching each update."""
    from mwaa_iac.adapters.cloudwatch import CloudWatch
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.hazards import scanner
    from mwaa_iac.workflows.hooks import safety_backup_hook
    from mwaa_iac.workflows.preflight import requirements_check_for
    from mwaa_iac.workflows.upgrade import Upgrade, UpgradeOptions
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    options = UpgradeOptions(
        to=to,
        engine=engine.value,
        dry_run=dry_run,
        resume=resume,
        backup=not no_backup,
        constraints=constraints,
        skip_requirements_check=skip_requirements_check,
        poll_interval=poll_interval,
        max_poll_interval=max(60.0, poll_interval),
        budget_seconds=budget_minutes * 60,
        health_minutes=health_minutes,
        break_lock=break_lock,
        terraform_bin=terraform_bin,
    )
    if not (dry_run or yes or resume):
        name = config.environment_name(config.active_color)
        confirm(
            "upgrade",
            "Continue?",
            warning=f"In-place upgrade of {name} to {to or config.airflow_version}: scheduling stops and "
            "running tasks are terminated during the update (up to about two hours on AWS).",
            hint="rerun with --yes (or --dry-run first)",
        )
    progress = Progress(json_out)
    mwaa = MwaaClient(config.region)
    cloudwatch = CloudWatch(config.region)

    workflow = Upgrade(
        ws,
        config,
        options,
        mwaa,
        cloudwatch,
        emit=progress,
        backup_hook=safety_backup_hook(config, mwaa, progress, poll_interval=poll_interval),
        requirements_check=requirements_check_for(config, options.constraints),
        routing=Routing(config.region),
        hazard_scan=scanner(config, mwaa, S3(config.region), progress, options, cloudwatch=cloudwatch),
    )
    with progress:
        summary = workflow.run()
    if json_out:
        return
    if summary.dry_run:
        ui.out.print(
            f"[success]dry run: {summary.environment} {summary.from_version} → {summary.to_version}[/]"
        )
        for hop in summary.hops:
            ui.out.print(f"  {hop['kind']} {hop['from_version']} → {hop['to_version']}: {hop['reason']}")
        for note in summary.notes:
            ui.out.print(f"  {escape(note)}")
        return
    ui.out.print(
        f"[success]{summary.environment} upgraded {summary.from_version} → {summary.to_version}[/] "
        f"in {duration(summary.elapsed_s)}"
    )
    for hop in summary.hops:
        spent = ", ".join(f"{k} {duration(v)}" for k, v in hop.get("durations_s", {}).items())
        ui.out.print(f"  {hop['from']} → {hop['to']}: {spent}")
    ui.out.print(f"  safety backup: {summary.backup or 'none'}")
