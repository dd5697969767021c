"""Disaster recovery with mwaa-dr: `backup` the active colour, `restore` into the inactive one."""

from __future__ import annotations

from typing import Annotated

import typer

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.options import BreakGlassOpt, EnvOpt, JsonLinesOpt, RootOpt, RunPollOpt, YesOpt
from mwaa_iac.cli.progress import Progress
from mwaa_iac.cli.root import confirm


def backup(
    env: EnvOpt,
    json_out: JsonLinesOpt = False,
    run_poll: RunPollOpt = 5.0,
    root: RootOpt = None,
) -> None:
    """Back up the active environment's metadata with mwaa-dr into the DR bucket (with a manifest)."""
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.backup import DrTiming, backup_with_summary
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    with Progress(json_out) as progress:
        result = backup_with_summary(
            config,
            config.environment_name(config.active_color),
            mwaa=MwaaClient(config.region),
            s3=S3(config.region),
            emit=progress,
            timing=DrTiming(run_poll_seconds=run_poll),
        )
    if json_out:  # the workflow's backup.summary was the last event
        return
    ui.out.print(
        f"[success]backup of {result['environment']} (Airflow {result['airflow_version']})[/]: "
        f"{result['location']}"
    )
    ui.out.print("  records: " + ", ".join(f"{k} {v}" for k, v in result["records"].items()))


def restore(
    env: EnvOpt,
    source: Annotated[
        str, typer.Option("--from", help="s3://BUCKET/PREFIX of a backup made by `mwaa-iac backup`.")
    ],
    yes: YesOpt = False,
    json_out: JsonLinesOpt = False,
    run_poll: RunPollOpt = 5.0,
    break_glass: BreakGlassOpt = False,
    root: RootOpt = None,
) -> None:
    """Restore a backup into the inactive colour's environment (its metadata is replaced)."""
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.backup import DrTiming, restore_backup
    from mwaa_iac.workflows.state import open_state
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    target = config.environment_name(config.active_color.other)
    if not yes:
        confirm("restore", f"Replace the metadata of {target} with {source}?")
    with Progress(json_out) as progress:
        result = restore_backup(
            config,
            source,
            mwaa=MwaaClient(config.region),
            s3=S3(config.region),
            emit=progress,
            timing=DrTiming(run_poll_seconds=run_poll),
            routing=Routing(config.region),
            store=open_state(ws, config),
            env=env,
            break_glass=break_glass,
        )
    if json_out:  # the workflow's restore.summary was the last event
        return
    ui.out.print(
        f"[success]restored into {result['environment']}[/]: "
        + ", ".join(f"{k} {v}" for k, v in result["tables"].items())
    )
