"""`mwaa-iac local ...`: the local stack (moto plus an MWAA emulator backed by real Airflow), its
faults, and `local demo` (the main job end to end). Thin commands over :mod:`mwaa_iac.local.stack`,
imported inside each command (the stack's modules are heavy)."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.options import LOCAL_DIR_VAR, LocalJsonOpt, StateDirOpt
from mwaa_iac.cli.progress import Progress
from mwaa_iac.errors import UsageError

local_app = typer.Typer(
    rich_markup_mode=None,
    name="local",
    help="Run the local stack: moto (S3, SSM, Route 53, CloudWatch, IAM, STS, Logs) plus an MWAA emulator.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
fault_app = typer.Typer(
    rich_markup_mode=None,
    name="fault",
    help="Inject faults into the MWAA emulator (fail a create/update/rollback, throttle, kill a scheduler).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
local_app.add_typer(fault_app, name="fault")

STATUS_STYLE = {
    "AVAILABLE": "success",
    "CREATE_FAILED": "failure",
    "UPDATE_FAILED": "failure",
    "UNAVAILABLE": "failure",
}


def _print_json(data: Any) -> None:
    ui.emit_json(data, sort_keys=True)


@local_app.command("up")
def up_command(
    port_moto: Annotated[
        int | None, typer.Option("--port-moto", help="Port for moto (default: a free one).")
    ] = None,
    port_mwaa: Annotated[
        int | None, typer.Option("--port-mwaa", help="Port for the MWAA emulator (default: a free one).")
    ] = None,
    state_dir: StateDirOpt = None,
    runtime: Annotated[
        str, typer.Option("--runtime", help="Environment runtime: 'airflow' or module:Class.", hidden=True)
    ] = "airflow",
    persist_aws: Annotated[
        bool, typer.Option("--persist-aws/--no-persist-aws", help="Keep moto's data across restarts.")
    ] = True,
    venv_cache: Annotated[
        Path | None, typer.Option("--venv-cache", help="Where Airflow venvs are cached.")
    ] = None,
    stretch: Annotated[
        float, typer.Option("--stretch", help="Minimum seconds in each transitional status.")
    ] = 0.0,
    mwaa_latency: Annotated[
        bool,
        typer.Option(
            "--mwaa-latency",
            help="Model MWAA's wait before a queued task starts on Airflow 2.x environments: 5 s with a "
            "free worker slot, 90 s more beyond one mw1.small worker's 5 tasks (a worker added); "
            "MWAA_IAC_LOCAL_TASK_START_S, _SCALE_UP_S and _WARM_SLOTS set other figures.",
        ),
    ] = False,
    as_json: LocalJsonOpt = False,
) -> None:
    """Start the local stack (or report that it is already up) and print the variables to export."""
    from mwaa_iac.local import stack
    from mwaa_iac.local.runtime.launch import MWAA_LATENCY

    if stretch < 0:
        raise UsageError("--stretch must not be negative")
    info = stack.up(
        state_dir,
        stack.Ports(moto=port_moto, mwaa=port_mwaa),
        runtime=runtime,
        persist_aws=persist_aws,
        venv_cache=venv_cache,
        stretch=stretch,
        task_latency=dict(MWAA_LATENCY) if mwaa_latency else None,
    )
    if as_json:
        _print_json(info.to_dict())
        return
    if info.already_running:
        ui.err.print(f"[warning]The local stack is already up[/] ({escape(str(info.state_dir))}).")
    else:
        ui.err.print(
            f"[success]Local stack up[/]: moto {info.moto_endpoint}, MWAA emulator {info.mwaa_endpoint}."
        )
    ui.err.print(f"Run [bold]. {escape(str(info.env_file))}[/] or export:")
    for key, value in info.env.items():
        ui.out.print(f"export {key}={value}", markup=False, emoji=False)


@local_app.command("down")
def down_command(
    remove_state: Annotated[
        bool, typer.Option("--remove-state", help="Also delete the state directory (environments, data).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before removing state.")] = False,
    state_dir: StateDirOpt = None,
    as_json: LocalJsonOpt = False,
) -> None:
    """Stop everything the stack started; keep its state unless --remove-state."""
    from mwaa_iac.local import stack

    directory = stack.resolve_state_dir(state_dir)
    if remove_state and not yes:
        if not sys.stdin.isatty():
            raise UsageError("--remove-state deletes every emulated environment's data; add --yes to confirm")
        typer.confirm(f"Delete {directory} and every emulated environment's data?", abort=True)
    result = stack.down(directory, remove_state=remove_state)
    if as_json:
        _print_json(result.to_dict())
        return
    if result.stopped:
        ui.out.print(f"[success]Stopped[/] {', '.join(result.stopped)}.")
    else:
        ui.out.print("Nothing was running.")
    for warning in result.warnings:
        ui.out.print(f"[warning]warning:[/] {escape(warning)}")
    if result.removed_state:
        ui.out.print(f"Removed {escape(str(result.state_dir))}.")
    elif not Path(result.state_dir).exists():
        ui.out.print(f"No state in {escape(str(result.state_dir))}.")
    else:
        ui.out.print(f"State kept in {escape(str(result.state_dir))}.")


@local_app.command("status")
def status_command(state_dir: StateDirOpt = None, as_json: LocalJsonOpt = False) -> None:
    """Show the services' health and the emulated environments."""
    from mwaa_iac.local import stack

    result = stack.status(state_dir)
    if as_json:
        _print_json(result.to_dict())
        return
    if not result.services:
        ui.out.print(f"The local stack is not running ({escape(str(result.state_dir))}).")
        return
    services = Table(title="Services")
    for column in ("service", "endpoint", "pid", "health"):
        services.add_column(column)
    for service in result.services.values():
        health = (
            "[success]healthy[/]"
            if service.healthy
            else ("[warning]not answering[/]" if service.alive else "[failure]stopped[/]")
        )
        services.add_row(service.name, service.endpoint or "", str(service.pid or ""), health)
    ui.out.print(services)
    if not result.environments:
        ui.out.print("No emulated environments.")
        return
    table = Table(title="Environments")
    for column in ("name", "status", "airflow", "region", "webserver"):
        table.add_column(column)
    for env in result.environments:
        style = STATUS_STYLE.get(env["status"], "progress")
        table.add_row(
            env["name"],
            f"[{style}]{env['status']}[/]",
            env.get("airflow_version") or "",
            env["region"],
            env.get("webserver_url") or "",
        )
    ui.out.print(table)


@local_app.command("seed")
def seed_command(
    env: Annotated[str, typer.Option("--env", help="The emulated environment to seed (AVAILABLE).")],
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="busy: a production-like mid-day environment (XComs, mapping, retries, failures, "
            "catchup, datasets, paused DAGs, awkward variables and connections) over basic's bulk "
            "history; basic: synthetic history through one seeding DAG.",
        ),
    ] = "busy",
    runs: Annotated[int | None, typer.Option("--runs", min=1, help="Synthetic runs per example DAG.")] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for the seeded runs.")
    ] = 900.0,
    state_dir: StateDirOpt = None,
    as_json: LocalJsonOpt = False,
) -> None:
    """Seed an emulated environment with history made through S3, the REST API and its scheduler."""
    from mwaa_iac.local.busy import PROFILES, seed_environment

    if profile not in PROFILES:
        raise UsageError(f"--profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    say = (lambda text: None) if as_json else (lambda text: ui.err.print(f"[progress]{escape(text)}[/]"))
    summary = seed_environment(env, profile, state_dir=state_dir, runs=runs, timeout=timeout, progress=say)
    if as_json:
        _print_json(summary)
        return
    ui.out.print(f"[success]Seeded[/] {escape(env)} ({profile}).")
    for key, value in sorted(summary.items()):
        ui.out.print(f"  {escape(str(key))}: {escape(json.dumps(value, sort_keys=True, default=str))}")


# ---------------------------------------------------------------------- faults

EnvArgument = Annotated[str, typer.Argument(help="Environment name.")]
MessageOption = Annotated[str | None, typer.Option("--message", "-m", help="Error message to report.")]


def _fault(state_dir: Path | None, as_json: bool, fault: str, **params: Any) -> None:
    from mwaa_iac.local import stack

    faults = stack.admin(state_dir).inject(fault, **params)
    if as_json:
        _print_json(faults)
    else:
        target = params.get("environment")
        ui.out.print(f"[success]Armed[/] {fault}" + (f" for {target}" if target else "") + ".")


@fault_app.command("fail-create")
def fault_fail_create(
    environment: EnvArgument,
    message: MessageOption = None,
    state_dir: StateDirOpt = None,
    as_json: LocalJsonOpt = False,
) -> None:
    """Make the next CreateEnvironment of ENVIRONMENT end CREATE_FAILED."""
    _fault(state_dir, as_json, "fail_create", environment=environment, message=message)


@fault_app.command("fail-update")
def fault_fail_update(
    environment: EnvArgument,
    message: MessageOption = None,
    rollback_fails: Annotated[
        bool, typer.Option("--rollback-fails", help="Make the rollback fail too (ends UNAVAILABLE).")
    ] = False,
    state_dir: StateDirOpt = None,
    as_json: LocalJsonOpt = False,
) -> None:
    """Make the next UpdateEnvironment of ENVIRONMENT fail (ROLLING_BACK → UPDATE_FAILED)."""
    _fault(
        state_dir,
        as_json,
        "fail_update",
        environment=environment,
        message=message,
        fail_rollback=rollback_fails,
    )


@fault_app.command("fail-rollback")
def fault_fail_rollback(
    environment: EnvArgument,
    message: MessageOption = None,
    state_dir: StateDirOpt = None,
    as_json: LocalJsonOpt = False,
) -> None:
    """Make the next UpdateEnvironment of ENVIRONMENT fail and its rollback fail (→ UNAVAILABLE)."""
    _fault(state_dir, as_json, "fail_rollback", environment=environment, message=message)


@fault_app.command("throttle")
def fault_throttle(
    environment: EnvArgument,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, help="How many InvokeRestApi calls to throttle.")
    ] = 1,
    state_dir: StateDirOpt = None,
    as_json: LocalJsonOpt = False,
) -> None:
    """Answer the next COUNT InvokeRestApi calls to ENVIRONMENT with ThrottlingException."""
    _fault(state_dir, as_json, "throttle", environment=environment, count=count)


@fault_app.command("kill-scheduler")
def fault_kill_scheduler(
    environment: EnvArgument, state_dir: StateDirOpt = None, as_json: LocalJsonOpt = False
) -> None:
    """Kill ENVIRONMENT's scheduler (its SchedulerHeartbeat metric stops)."""
    _fault(state_dir, as_json, "kill_scheduler", environment=environment)


@fault_app.command("stretch")
def fault_stretch(
    seconds: Annotated[float, typer.Argument(min=0, help="Minimum seconds in each transitional status.")],
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="Only this environment.")
    ] = None,
    state_dir: StateDirOpt = None,
    as_json: LocalJsonOpt = False,
) -> None:
    """Stretch transition times so intermediate statuses (UPDATING, ROLLING_BACK, ...) can be seen."""
    _fault(state_dir, as_json, "stretch", seconds=seconds, environment=environment)


@fault_app.command("list")
def fault_list(state_dir: StateDirOpt = None) -> None:
    """Show the armed faults (JSON)."""
    from mwaa_iac.local import stack

    _print_json(stack.admin(state_dir).faults())


@fault_app.command("clear")
def fault_clear(
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="Only this environment.")
    ] = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Disarm faults (all, or one environment's)."""
    from mwaa_iac.local import stack

    stack.admin(state_dir).clear_faults(environment)
    ui.out.print("[success]Cleared[/] faults" + (f" of {environment}" if environment else "") + ".")


class DemoWorkload(StrEnum):
    """What `local demo` seeds the blue environment with."""

    BUSY = "busy"
    BASIC = "basic"


DEMO_FROM, DEMO_TO = "2.9.2", "2.10.3"


def check_demo_target(version: str) -> None:
    """The demo's --to: a version MWAA offers today, newer than blue's 2.9.2 (UsageError otherwise)."""
    from mwaa_iac.core.catalog import load_catalog, parse_version

    newer = [v for v in load_catalog().supported(date.today()) if v.key > parse_version(DEMO_FROM)]
    offered = [v.version for v in newer]
    if version not in offered:
        raise UsageError(
            f"--to {version}: the demo cuts blue {DEMO_FROM} over to a newer version MWAA offers today",
            hint=f"use one of {', '.join(offered)}",
        )


@local_app.command("demo")
def local_demo(
    runs: Annotated[
        int, typer.Option("--runs", help="Seeded runs per example DAG (3 DAGs x 10 tasks each).")
    ] = 100,
    workload: Annotated[
        DemoWorkload,
        typer.Option(
            "--workload",
            help="busy: the example history plus real runs like mid-day production (retries, failures, "
            "mapped tasks, datasets, awkward variables and connections); basic: the example history only.",
        ),
    ] = DemoWorkload.BUSY,
    health_minutes: Annotated[
        int, typer.Option("--health-minutes", help="Heartbeat minutes required on green.")
    ] = 1,
    to_version: Annotated[
        str,
        typer.Option(
            "--to",
            help="Green's Airflow version: 2.10.3, or a 3.x MWAA offers, e.g. 3.3.1 (two passes via 2.11.2: "
            "green goes to 2.11.2 before the freeze, a rehearsal upgrades a copy to 3.x, and the freeze "
            "holds pass 2 and green's upgrade to 3.x; the busy workload's dataset DAGs do not import on "
            "3.x, so the demo goes on past them as --accept-import-errors would).",
        ),
    ] = DEMO_TO,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help=f"Local stack state (default: ${LOCAL_DIR_VAR} or ./.mwaa-iac/local).",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON-lines events on stdout.")] = False,
) -> None:
    """The main job: start the local stack, seed blue 2.9.2 with history, cut it over to 2.10.3
    (or to --to)."""
    from mwaa_iac.adapters.cloudwatch import CloudWatch
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.cli.cutover import print_cutover_report
    from mwaa_iac.local import stack
    from mwaa_iac.local.busy import BusyProfile
    from mwaa_iac.local.demo import already_cut_over_summary, prepare
    from mwaa_iac.local.seed import SeedPlan
    from mwaa_iac.workflows.cutover import JOURNAL, Cutover, CutoverOptions
    from mwaa_iac.workflows.journal import Journal
    from mwaa_iac.workflows.state import open_state
    from mwaa_iac.workspace import open_workspace

    say = (lambda text: None) if json_out else (lambda text: ui.err.print(f"[progress]{text}[/]"))
    check_demo_target(to_version)
    info = stack.up(state_dir)
    state = "already up" if info.already_running else "up"
    say(f"local stack {state}: moto {info.moto_endpoint}, MWAA {info.mwaa_endpoint}")
    os.environ.update(stack.load_env(state_dir))
    root = stack.resolve_state_dir(state_dir) / "demo"
    busy = BusyProfile(basic=SeedPlan(runs=runs)) if workload is DemoWorkload.BUSY else None
    admin = stack.admin(state_dir)
    setup = prepare(
        root,
        from_version=DEMO_FROM,
        to_version=to_version,
        plan=SeedPlan(runs=runs),
        busy=busy,
        progress=say,
        poll=1.0,
        sync=lambda name: admin.sync(name),
    )
    ws = open_workspace(setup.env, root)
    config = ws.load()
    if config.active_color.value == "green":
        message = (
            "[warning]the demo already cut over to green[/]: see `mwaa-iac local status`; for a fresh run: "
            "mwaa-iac local down --remove-state --yes && make demo"
        )
        if json_out:  # stdout holds JSON lines only; the summary says why nothing ran
            ui.err.print(message)
            ui.emit_json_line(already_cut_over_summary())
        else:
            ui.out.print(message)
        return
    recorded = Journal.load(open_state(ws, config), JOURNAL)
    major = to_version.split(".")[0] != DEMO_FROM.split(".")[0]
    if major and busy is not None:
        say(
            "the busy workload's dataset DAGs do not import on Airflow 3 (as a user's would not): the "
            "rehearsal lists them, and the demo goes on with them failing (--accept-import-errors)"
        )
    options = CutoverOptions(
        accept_import_errors=major,
        engine="api",
        poll_interval=1.0,
        max_poll_interval=2.0,
        run_poll_seconds=1.0,
        health_minutes=health_minutes,
        resume=recorded is not None and not recorded.finished,
        dag_timeout_seconds=300,
    )
    say(f"cutover {setup.source} (Airflow {DEMO_FROM}) -> {setup.env}-green (Airflow {to_version})")
    progress = Progress(json_out)
    region = config.region
    workflow = Cutover(
        ws,
        config,
        options,
        MwaaClient(region),
        S3(region),
        Routing(region),
        CloudWatch(region),
        emit=progress,
    )
    with progress:
        report = workflow.run()
    if not json_out:
        print_cutover_report(report, setup.env)
        ui.out.print(f"  deployment files: {ws.directory}; stop the stack: mwaa-iac local down")
