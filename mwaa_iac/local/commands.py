"""``mwaa-iac local ...``: thin Typer commands over :mod:`mwaa_iac.local.stack`.

The lead's CLI mounts :data:`local_app` as ``mwaa-iac local``; user errors are raised as
:class:`~mwaa_iac.errors.MwaaIacError` for the main CLI to map to messages and exit codes.
``python -m mwaa_iac.local.commands`` runs the sub-app on its own (with the same mapping).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mwaa_iac.errors import MwaaIacError, UsageError
from mwaa_iac.local import stack

local_app = typer.Typer(
    name="local",
    help="Run the local stack: moto (S3, SSM, Route 53, CloudWatch, IAM, STS, Logs) plus an MWAA emulator.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
fault_app = typer.Typer(
    name="fault",
    help="Inject faults into the MWAA emulator (fail a create/update/rollback, throttle, kill a scheduler).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
local_app.add_typer(fault_app, name="fault")

console = Console(soft_wrap=True)
STYLE = {"ok": "green", "fail": "red", "warn": "yellow", "progress": "cyan"}
STATUS_STYLE = {
    "AVAILABLE": STYLE["ok"],
    "CREATE_FAILED": STYLE["fail"],
    "UPDATE_FAILED": STYLE["fail"],
    "UNAVAILABLE": STYLE["fail"],
}

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help=f"State directory (default: ${stack.ENV_DIR_VAR} or ./.mwaa-iac/local)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@local_app.command("up")
def up_command(
    port_moto: Annotated[
        int | None, typer.Option("--port-moto", help="Port for moto (default: a free one).")
    ] = None,
    port_mwaa: Annotated[
        int | None, typer.Option("--port-mwaa", help="Port for the MWAA emulator (default: a free one).")
    ] = None,
    state_dir: StateDirOption = None,
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
    as_json: JsonOption = False,
) -> None:
    """Start the local stack (or report that it is already up) and print the variables to export."""
    if stretch < 0:
        raise UsageError("--stretch must not be negative")
    info = stack.up(
        state_dir,
        stack.Ports(moto=port_moto, mwaa=port_mwaa),
        runtime=runtime,
        persist_aws=persist_aws,
        venv_cache=venv_cache,
        stretch=stretch,
    )
    if as_json:
        _print_json(info.to_dict())
        return
    err = Console(stderr=True, soft_wrap=True)
    if info.already_running:
        err.print(f"[{STYLE['warn']}]The local stack is already up[/] ({escape(str(info.state_dir))}).")
    else:
        err.print(
            f"[{STYLE['ok']}]Local stack up[/]: moto {info.moto_endpoint}, "
            f"MWAA emulator {info.mwaa_endpoint}."
        )
    err.print(f"Run [bold]. {escape(str(info.env_file))}[/] or export:")
    for key, value in info.env.items():
        typer.echo(f"export {key}={value}")


@local_app.command("down")
def down_command(
    remove_state: Annotated[
        bool, typer.Option("--remove-state", help="Also delete the state directory (environments, data).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before removing state.")] = False,
    state_dir: StateDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop everything the stack started; keep its state unless --remove-state."""
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
        console.print(f"[{STYLE['ok']}]Stopped[/] {', '.join(result.stopped)}.")
    else:
        console.print("Nothing was running.")
    for warning in result.warnings:
        console.print(f"[{STYLE['warn']}]warning:[/] {escape(warning)}")
    if result.removed_state:
        console.print(f"Removed {escape(str(result.state_dir))}.")
    else:
        console.print(f"State kept in {escape(str(result.state_dir))}.")


@local_app.command("status")
def status_command(state_dir: StateDirOption = None, as_json: JsonOption = False) -> None:
    """Show the services' health and the emulated environments."""
    result = stack.status(state_dir)
    if as_json:
        _print_json(result.to_dict())
        return
    if not result.services:
        console.print(f"The local stack is not running ({escape(str(result.state_dir))}).")
        return
    services = Table(title="Services")
    for column in ("service", "endpoint", "pid", "health"):
        services.add_column(column)
    for service in result.services.values():
        health = (
            f"[{STYLE['ok']}]healthy[/]"
            if service.healthy
            else (f"[{STYLE['warn']}]not answering[/]" if service.alive else f"[{STYLE['fail']}]stopped[/]")
        )
        services.add_row(service.name, service.endpoint or "", str(service.pid or ""), health)
    console.print(services)
    if not result.environments:
        console.print("No emulated environments.")
        return
    table = Table(title="Environments")
    for column in ("name", "status", "airflow", "region", "webserver"):
        table.add_column(column)
    for env in result.environments:
        style = STATUS_STYLE.get(env["status"], STYLE["progress"])
        table.add_row(
            env["name"],
            f"[{style}]{env['status']}[/]",
            env.get("airflow_version") or "",
            env["region"],
            env.get("webserver_url") or "",
        )
    console.print(table)


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
    state_dir: StateDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Seed an emulated environment with history made through S3, the REST API and its scheduler."""
    from mwaa_iac.local.busy import PROFILES, seed_environment

    if profile not in PROFILES:
        raise UsageError(f"--profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    err = Console(stderr=True, soft_wrap=True)
    say = (
        (lambda text: None)
        if as_json
        else (lambda text: err.print(f"[{STYLE['progress']}]{escape(text)}[/]"))
    )
    summary = seed_environment(env, profile, state_dir=state_dir, runs=runs, timeout=timeout, progress=say)
    if as_json:
        _print_json(summary)
        return
    console.print(f"[{STYLE['ok']}]Seeded[/] {escape(env)} ({profile}).")
    for key, value in sorted(summary.items()):
        console.print(f"  {escape(str(key))}: {escape(json.dumps(value, sort_keys=True, default=str))}")


# ---------------------------------------------------------------------- faults

EnvArgument = Annotated[str, typer.Argument(help="Environment name.")]
MessageOption = Annotated[str | None, typer.Option("--message", "-m", help="Error message to report.")]


def _fault(state_dir: Path | None, as_json: bool, fault: str, **params: Any) -> None:
    faults = stack.admin(state_dir).inject(fault, **params)
    if as_json:
        _print_json(faults)
    else:
        target = params.get("environment")
        console.print(f"[{STYLE['ok']}]Armed[/] {fault}" + (f" for {target}" if target else "") + ".")


@fault_app.command("fail-create")
def fault_fail_create(
    environment: EnvArgument,
    message: MessageOption = None,
    state_dir: StateDirOption = None,
    as_json: JsonOption = False,
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
    state_dir: StateDirOption = None,
    as_json: JsonOption = False,
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
    state_dir: StateDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make the next UpdateEnvironment of ENVIRONMENT fail and its rollback fail (→ UNAVAILABLE)."""
    _fault(state_dir, as_json, "fail_rollback", environment=environment, message=message)


@fault_app.command("throttle")
def fault_throttle(
    environment: EnvArgument,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, help="How many InvokeRestApi calls to throttle.")
    ] = 1,
    state_dir: StateDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer the next COUNT InvokeRestApi calls to ENVIRONMENT with ThrottlingException."""
    _fault(state_dir, as_json, "throttle", environment=environment, count=count)


@fault_app.command("kill-scheduler")
def fault_kill_scheduler(
    environment: EnvArgument, state_dir: StateDirOption = None, as_json: JsonOption = False
) -> None:
    """Kill ENVIRONMENT's scheduler (its SchedulerHeartbeat metric stops)."""
    _fault(state_dir, as_json, "kill_scheduler", environment=environment)


@fault_app.command("stretch")
def fault_stretch(
    seconds: Annotated[float, typer.Argument(min=0, help="Minimum seconds in each transitional status.")],
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="Only this environment.")
    ] = None,
    state_dir: StateDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stretch transition times so intermediate statuses (UPDATING, ROLLING_BACK, ...) can be seen."""
    _fault(state_dir, as_json, "stretch", seconds=seconds, environment=environment)


@fault_app.command("list")
def fault_list(state_dir: StateDirOption = None) -> None:
    """Show the armed faults (JSON)."""
    _print_json(stack.admin(state_dir).faults())


@fault_app.command("clear")
def fault_clear(
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="Only this environment.")
    ] = None,
    state_dir: StateDirOption = None,
) -> None:
    """Disarm faults (all, or one environment's)."""
    stack.admin(state_dir).clear_faults(environment)
    console.print(f"[{STYLE['ok']}]Cleared[/] faults" + (f" of {environment}" if environment else "") + ".")


def run(argv: list[str] | None = None) -> int:
    """Run ``local_app`` standalone, mapping user errors to a message and exit code (usage errors
    are Typer's own: message and exit code 2)."""
    try:
        local_app(args=argv, prog_name="mwaa-iac local")
    except MwaaIacError as exc:
        err = Console(stderr=True, soft_wrap=True)
        err.print(Text.assemble(("error: ", STYLE["fail"]), exc.message))
        if exc.hint:
            err.print(Text(f"hint: {exc.hint}"))
        return int(exc.exit_code)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
