"""The blue/green commands: `cutover`, then `rollback` during the soak or `cleanup` after it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.options import (
    AcceptHazardOpt,
    BreakGlassOpt,
    BreakLockOpt,
    ConstraintsOpt,
    DbCleanDagOpt,
    EngineOpt,
    EnvOpt,
    HealthMinutesOpt,
    JsonLinesOpt,
    PollOpt,
    RootOpt,
    RunPollOpt,
    SkipRequirementsOpt,
    TfBinOpt,
    ToOpt,
    YesOpt,
)
from mwaa_iac.cli.progress import Progress
from mwaa_iac.cli.root import confirm
from mwaa_iac.core.engines import DEFAULT_ENGINE


def cutover(
    env: EnvOpt,
    to: ToOpt = None,
    engine: EngineOpt = DEFAULT_ENGINE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Preflight and the plan of passes; change nothing.")
    ] = False,
    yes: YesOpt = False,
    json_out: JsonLinesOpt = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted cutover from its journal.")
    ] = False,
    single_pass: Annotated[
        bool,
        typer.Option(
            "--single-pass",
            help="Freeze before the clone: one copy, and every in-place upgrade of the target inside the "
            "freeze (the default is two passes wherever the path allows: a 2 → 3 path freezes only for "
            "the last copy and the upgrade from 2.11).",
        ),
    ] = False,
    accept_import_errors: Annotated[
        bool,
        typer.Option(
            "--accept-import-errors",
            help="Go live although DAGs that were unpaused on the source fail to import (or are not "
            "parsed) on the target; without it go-live stops and lists them.",
        ),
    ] = False,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="New environment without run history.")
    ] = False,
    no_rehearsal: Annotated[
        bool,
        typer.Option(
            "--no-rehearsal",
            help="2 → 3: skip the rehearsal (a temporary third environment restored from pass 1 and "
            "upgraded to 3.x before the freeze, which measures the upgrade and lists the DAGs that fail "
            "on 3.x); the freeze's length is then not known in advance.",
        ),
    ] = False,
    keep_rehearsal: Annotated[
        bool,
        typer.Option(
            "--keep-rehearsal", help="Keep the rehearsal environment to inspect it (cleanup deletes it)."
        ),
    ] = False,
    rehearsal_dag: Annotated[
        str | None,
        typer.Option(
            "--rehearsal-dag",
            metavar="DAG_ID",
            help="Run this DAG once on the upgraded rehearsal (unpaused for the run; its tasks really run).",
        ),
    ] = None,
    max_freeze_minutes: Annotated[
        float | None,
        typer.Option(
            "--max-freeze-minutes",
            help="Refuse to start a freeze the rehearsal estimates longer than this (nothing is paused).",
        ),
    ] = None,
    force_drain: Annotated[
        bool,
        typer.Option(
            "--force-drain",
            help="At the drain timeout, continue although task instances are still executing on the "
            "source; they are listed as 'may run twice' (the target runs them again).",
        ),
    ] = False,
    drain_minutes: Annotated[
        float,
        typer.Option(
            "--drain-minutes",
            help="How long the freeze waits, after pausing, for task instances executing on the source "
            "(queued, running, restarting); runs still running are copied as they are.",
        ),
    ] = 10.0,
    no_armed_copy: Annotated[
        bool,
        typer.Option(
            "--no-armed-copy",
            help="Trigger pass 2's backup and restore inside the freeze (each then waits for a scheduler "
            "loop, a queue and a worker) instead of starting them before it, waiting for a go signal "
            "(each holds one worker slot per colour until the freeze).",
        ),
    ] = False,
    arm_minutes: Annotated[
        float,
        typer.Option(
            "--arm-minutes",
            help="How long pass 2's armed copiers may take to get a worker before the freeze; past it "
            "the freeze triggers its runs (slower, never wrong).",
        ),
    ] = 5.0,
    poll_interval: PollOpt = 15.0,
    run_poll: RunPollOpt = 5.0,
    health_minutes: HealthMinutesOpt = 3,
    constraints: ConstraintsOpt = None,
    skip_requirements_check: SkipRequirementsOpt = False,
    accept_hazard: AcceptHazardOpt = None,
    write_db_clean_dag: DbCleanDagOpt = None,
    break_lock: BreakLockOpt = False,
    terraform_bin: TfBinOpt = None,
    root: RootOpt = None,
) -> None:
    """Blue/green cutover to a new Airflow version on the other colour, carrying history: in two passes
    wherever the path allows, so DAGs pause only for the freeze (2.x: the last copy; 2 → 3: the last
    copy into 2.11 and the target's upgrade to 3.x); in one pass otherwise (--dry-run says which)."""
    from mwaa_iac.adapters.cloudwatch import CloudWatch
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.cutover import Cutover, CutoverOptions
    from mwaa_iac.workflows.preflight import requirements_check_for
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    options = CutoverOptions(
        to=to,
        engine=engine.value,
        dry_run=dry_run,
        resume=resume,
        poll_interval=poll_interval,
        max_poll_interval=max(60.0, poll_interval),
        health_minutes=health_minutes,
        break_lock=break_lock,
        terraform_bin=terraform_bin,
        single_pass=single_pass,
        accept_import_errors=accept_import_errors,
        no_history=no_history,
        no_rehearsal=no_rehearsal,
        keep_rehearsal=keep_rehearsal,
        rehearsal_dag=rehearsal_dag,
        max_freeze_minutes=max_freeze_minutes,
        force_drain=force_drain,
        drain_timeout_seconds=drain_minutes * 60,
        armed_copy=not no_armed_copy,
        arm_timeout_seconds=arm_minutes * 60,
        run_poll_seconds=run_poll,
        constraints=constraints,
        skip_requirements_check=skip_requirements_check,
        accept_hazards=tuple(accept_hazard or ()),
        db_clean_dag=str(write_db_clean_dag) if write_db_clean_dag else None,
    )
    progress = Progress(json_out)
    workflow = Cutover(
        ws,
        config,
        options,
        MwaaClient(config.region),
        S3(config.region),
        Routing(config.region),
        CloudWatch(config.region),
        emit=progress,
    )
    workflow.requirements_check = requirements_check_for(config, options.constraints)
    catchup = workflow.catchup_without_history() if (no_history and not (dry_run or resume)) else []
    if catchup:
        # Without history the target has none of their runs: each runs every interval since its start.
        listed = ", ".join(f"{d['dag_id']} (since {d['start_date']})" for d in catchup[:20])
        warning = (
            f"--no-history: {len(catchup)} catch-up DAG(s) will run every interval since their "
            f"start_date on the new colour after go-live: {listed}"
        )
        if yes:
            ui.err.print(f"[warning]{warning}[/]")
        else:
            confirm("cutover", "Run them all?", warning=warning, hint="rerun with --yes to accept")
    if not (dry_run or yes or resume):
        name = config.environment_name(config.active_color)
        confirm(
            "cutover",
            "Continue?",
            warning=f"Cutover of {name} to {to or config.airflow_version} on the "
            f"{config.active_color.other} colour; DAGs pause on {name} "
            + _freeze_text(config.active_version, to or config.airflow_version, options)
            + ".",
            hint="rerun with --yes (or --dry-run first: it shows every way side by side)",
        )
    try:
        report = workflow.run()
    finally:
        progress.close()
    if json_out:
        return
    if dry_run:
        ui.out.print(
            f"[success]dry run: {report['source']} → {report['target']} ({report['from']} → "
            f"{report['to']})[/]"
        )
        ui.out.print(
            f"  passes: {report['passes']}; freeze: {report['freeze']}; history carried: "
            f"{'yes' if report['history_carried'] else 'NO'}"
        )
        for hop in report["hops"]:
            ui.out.print(f"  {hop['kind']} {hop['from_version']} → {hop['to_version']}: {hop['reason']}")
        for note in report["notes"]:
            ui.out.print(f"  [muted]{note}[/]")
        if report.get("rehearsal"):
            ui.out.print(
                "  rehearsal: before the freeze, a temporary third environment is restored from pass 1 and "
                "upgraded as the freeze will upgrade the target; its time is the freeze estimate "
                "(--max-freeze-minutes), the DAGs failing on it stop the cutover with nothing paused"
            )
        from mwaa_iac.cli.versions import print_choices
        from mwaa_iac.core.choices import Choice

        print_choices([Choice(**c) for c in report.get("choices") or []])
        for line in report.get("mwaa_dr_delivery") or []:
            ui.out.print(f"  {line}")
        for item in report.get("catchup_without_history") or []:
            ui.out.print(
                f"  [warning]--no-history: {item['dag_id']} catches up: every interval since "
                f"{item['start_date']} runs on the new colour[/]"
            )
        if report.get("in_flight_policy"):
            ui.out.print("  in-flight work during the freeze:")
            for line in report["in_flight_policy"]:
                ui.out.print(f"    - {line}")
        hazards = report.get("migration_hazards") or {}
        if hazards.get("scanned"):
            ui.out.print(
                f"  migration hazards (2 → 3, scanned on {hazards['environment']}): "
                f"{len(hazards['findings']) or 'none'}; the migration's UUID step about "
                f"{hazards['estimate_minutes']} min"
            )
            for item in hazards["findings"]:
                style = "muted" if item["accepted"] else ("failure" if item["blocking"] else "warning")
                fix = escape(item["fix"])
                ui.out.print(f"    [{style}]{item['name']}: {item['count']} row(s)[/] (fix: {fix})")
        if hazards.get("db_clean_dag"):
            ui.out.print(f"  `airflow db clean` DAG written to {hazards['db_clean_dag']}")
        if report.get("sizing"):
            from mwaa_iac.report.render import sizing_text

            ui.out.print("  sizing:")
            for item in sizing_text(report["sizing"], indent=4):
                ui.out.print(item)
            from mwaa_iac.core.timeline import planned_gantt

            gantt = planned_gantt(report["sizing"], f"planned cutover of {report['source']}")
            if gantt:
                ui.out.print("  planned timeline (Mermaid; paste into a pull request or mermaid.live):")
                ui.out.print(escape(gantt), markup=False)
        return
    if "record_synced" in report:
        synced = report["record_synced"]
        ui.out.print(
            f"[success]the deployment record says {synced['active_color']} is active again[/] (it said "
            f"{synced['was']}; from cutover {synced['run_id']}'s journal): commit mwaa.yaml"
        )
        if "target" not in report:
            return
    print_cutover_report(report, env)


def _freeze_text(source: str, target: str, options) -> str:
    """How long the DAGs pause, for the confirmation (the plan from the recorded versions)."""
    from mwaa_iac.core.planner import Strategy, plan_path

    plan = plan_path(source, target, Strategy.CUTOVER, options.today, history=not options.no_history)
    if not plan.allowed:
        return "during the freeze"
    if not plan.history_carried:
        return "only around go-live"
    if not plan.two_pass or options.single_pass:
        return "from before the clone until go-live (the creation, the copy and every upgrade: hours on MWAA)"
    if plan.freeze_hops:
        return (
            f"for the freeze: pass 2 and the upgrade {', '.join(plan.freeze_hop_texts())} (up to ~2 h on "
            "AWS; the rehearsal measures it before anything pauses)"
        )
    return "only for the freeze: pass 2, what changed since pass 1 (minutes)"


def print_cutover_report(report: dict, env: str) -> None:
    ui.out.print(f"[success]{report['target']} is live on Airflow {report['to']}[/] (was {report['source']})")
    if report["freeze_window_s"] is not None:
        ui.out.print(
            f"  freeze window: {report['freeze_window_s']} s "
            + ", ".join(f"{k} {v:.1f}s" for k, v in report["freeze_steps_s"].items())
        )
    if report["rows_copied"]:
        ui.out.print("  rows copied: " + ", ".join(f"{k} {v}" for k, v in report["rows_copied"].items()))
    if report.get("may_run_twice"):
        names = escape(", ".join(report["may_run_twice"]))
        ui.out.print(f"  [warning]may run twice (--force-drain): {names}[/]")
    ui.out.print(f"  routing: {report['routing']} → {report['target']}")
    if report.get("timeline"):
        ui.out.print(f"  timeline: {report['timeline']}")
    ui.out.print(
        f"  after the soak period: mwaa-iac cleanup --env {env}; to go back: mwaa-iac rollback --env {env}"
    )


def rollback(
    env: EnvOpt,
    yes: YesOpt = False,
    json_out: JsonLinesOpt = False,
    break_lock: BreakLockOpt = False,
    root: RootOpt = None,
) -> None:
    """During the soak: scheduling back to the old colour and routing flipped back."""
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.workflows.cutover import rollback as do_rollback
    from mwaa_iac.workflows.state import open_state
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    old = config.environment_name(config.active_color.other)
    if not yes:
        new = config.environment_name(config.active_color)
        confirm(
            "rollback",
            f"Roll back to {old}?",
            warning=f"[warning]Runs made on {new} since the cutover are not copied back to {old}.[/]",
        )
    progress = Progress(True) if json_out else (lambda event: None)  # text: the result says it all
    result = do_rollback(
        ws,
        config,
        MwaaClient(config.region),
        Routing(config.region),
        progress,
        open_state(ws, config),
        break_lock=break_lock,
    )
    if json_out:  # the workflow's rollback.summary was the last event
        return
    ui.out.print(f"[success]{result['active']} is active again[/]; {len(result['unpaused'])} DAG(s) unpaused")
    for dag_id, decision in result["dags"].items():
        ui.out.print(f"  {dag_id}: {decision['policy']}")
    for policy in sorted({d["policy"] for d in result["dags"].values()}):
        ui.out.print(f"  [muted]{policy}: {result['policies'][policy]}[/]")
    if result["left_paused"]:
        ui.err.print(f"[warning]{result['hint']}[/]")
        for dag_id, latest in result["left_paused"].items():
            ui.err.print(f"  {dag_id}: latest scheduled run on {result['paused_on']}: {latest}")
    ui.err.print(f"[warning]{result['warning']}[/]")


def cleanup(
    env: EnvOpt,
    backups: Annotated[
        bool, typer.Option("--backups", help="Also delete backups older than dr.retention_days.")
    ] = False,
    yes: YesOpt = False,
    json_out: JsonLinesOpt = False,
    poll_interval: PollOpt = 15.0,
    break_lock: BreakLockOpt = False,
    break_glass: BreakGlassOpt = False,
    root: RootOpt = None,
) -> None:
    """After the soak: delete the inactive colour's environment, the DR DAG files, old backups."""
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.cutover import cleanup as do_cleanup
    from mwaa_iac.workflows.hooks import gone_waiter
    from mwaa_iac.workflows.state import open_state
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    old = config.environment_name(config.active_color.other)
    if not yes:
        confirm("cleanup", f"Delete {old} (the inactive colour) for good?")
    mwaa = MwaaClient(config.region)
    progress = Progress(json_out)
    try:
        s3 = S3(config.region)
        result = do_cleanup(
            ws,
            config,
            mwaa,
            s3,
            progress,
            open_state(ws, config, s3),
            backups=backups,
            watch=gone_waiter(mwaa, poll_interval=poll_interval, emit=progress),
            break_lock=break_lock,
            routing=Routing(config.region),
            break_glass=break_glass,
        )
    finally:
        progress.close()
    if json_out:  # the workflow's cleanup.summary was the last event
        return
    ui.out.print(
        f"[success]cleaned up[/]: retired {result['retired'] or 'nothing (already gone)'}, "
        f"{len(result['dag_files_removed'])} DR DAG file(s) removed, {result['backups_deleted']} old "
        "backup object(s) deleted"
    )
