"""The Typer app, its global options, and the one place that maps errors to messages and exit codes
(for every command, the `local` group included)."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated

import typer
from rich.markup import escape

from mwaa_iac import __version__
from mwaa_iac.cli import console as ui
from mwaa_iac.errors import ExitCode, MwaaIacError, PathRefusedError, TerraformError, UsageError

app = typer.Typer(
    rich_markup_mode=None,
    name="mwaa-iac",
    help="Upgrade Apache Airflow on Amazon MWAA: blue/green cutovers with mwaa-dr, in-place upgrades, "
    "Terraform phases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

_state = {"debug": False}


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


def confirm(
    command: str, question: str, *, warning: str | None = None, hint: str = "rerun with --yes"
) -> None:
    """Ask before a change; in non-interactive use the command needs --yes (exit 2 otherwise)."""
    if not sys.stdin.isatty():
        raise UsageError(f"{command} needs confirmation", hint=hint)
    if warning:
        ui.err.print(warning)
    if not typer.confirm(question, default=False):
        raise typer.Abort()


def report_error(exc: MwaaIacError) -> None:
    """The message (and hint) of a user-facing error, on stderr (plain text: never read as markup)."""
    ui.err.print(f"[failure]error:[/] {escape(exc.message)}")
    if isinstance(exc, PathRefusedError):
        for reason in exc.reasons:
            ui.err.print(f"  - {escape(reason)}")
    if isinstance(exc, TerraformError) and exc.diagnostics.strip():
        ui.err.print(exc.diagnostics.rstrip(), markup=False, highlight=False)
    if exc.hint:
        ui.err.print(f"[warning]hint:[/] {escape(exc.hint)}")


def exit_on_error(exc: MwaaIacError) -> typer.Exit:
    """For --detailed-exitcode: report ``exc`` and exit 1 (whatever its own exit code)."""
    report_error(exc)
    return typer.Exit(ExitCode.FAILED)


AWS_HINT = (
    "check the credentials, region and endpoint settings (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL; "
    "for the local stack: `. .mwaa-iac/local/env.sh`)"
)


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
        report_error(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        ui.err.print("[warning]interrupted[/]")
        return 130
    except Exception as exc:
        if type(exc).__module__.startswith("botocore."):
            # An AWS problem no adapter turned into an error of ours (no credentials, no region, an
            # unreachable endpoint): the user's to fix, not a bug.
            from mwaa_iac.adapters.aws import explain

            report_error(MwaaIacError(f"AWS: {explain(exc)}", hint=AWS_HINT))
            return int(ExitCode.FAILED)
        if _state["debug"]:
            traceback.print_exc()
        else:
            ui.err.print(f"[failure]internal error:[/] {type(exc).__name__}: {exc}", markup=True)
            ui.err.print("This is a bug in mwaa-iac; rerun with --debug for the traceback and report it.")
        return int(ExitCode.BUG)
    return 0


def run() -> None:  # pragma: no cover - console script wrapper
    sys.exit(main())
