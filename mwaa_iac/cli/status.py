"""`mwaa-iac status --env E`: the deployment at a glance (read-only) and the next command to run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.event_text import duration
from mwaa_iac.cli.options import EnvOpt, JsonOpt, RootOpt
from mwaa_iac.errors import ExitCode

if TYPE_CHECKING:  # the config models (pydantic) load only when the command runs
    from mwaa_iac.core.overview import Overview

# The exit code of each verdict (core.overview.Verdict, by value; the README's exit-code table): CI
# can wait, resume or page.
EXIT_CODES: dict[str, ExitCode] = {
    "settled": ExitCode.OK,
    "needs-human": ExitCode.NEEDS_HUMAN,
    "disagree": ExitCode.REFUSED,
    "running": ExitCode.RUNNING,
    "interrupted": ExitCode.INTERRUPTED,
}
_STYLE = {
    "settled": "success",
    "needs-human": "failure",
    "disagree": "failure",
    "running": "progress",
    "interrupted": "warning",
}


def status(env: EnvOpt, json_out: JsonOpt = False, root: RootOpt = None) -> None:
    """The deployment at a glance: which colour is live as the deployment record (mwaa.yaml), routing
    and the last cutover's journal each say it, and whether they agree; each colour's version and
    MWAA status; a cutover or upgrade in progress (its step, how long the source has been frozen, what
    --resume would do next); and the next command to run. Changes nothing. Exit 0 settled, 3 a colour
    is UNAVAILABLE, 6 the sources disagree, 7 a workflow is running, 8 one was interrupted."""
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.workflows.overview import read_overview
    from mwaa_iac.workflows.state import open_state
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    found = read_overview(
        ws.env, config, MwaaClient(config.region), Routing(config.region), open_state(ws, config)
    )
    code = EXIT_CODES[found.verdict]
    if json_out:
        ui.emit_json({**found.to_dict(), "exit_code": int(code)})
    else:
        render(found)
    raise typer.Exit(int(code))


def render(found: Overview) -> None:
    """The overview for people: sources, colours, the workflow in progress, the verdict, the next command."""
    out = ui.out
    live = f"[success]{found.live}[/]" if found.live is not None else "[failure]the sources disagree[/]"
    out.print(f"[key]{escape(found.env)}[/]: live colour {live}")
    for claim in found.claims:
        mark = "?" if claim.uncertain else ("·" if claim.color is None else "✓")
        if found.live is not None and claim.color is not None and claim.color is not found.live:
            mark = "✗"
        if found.live is None and claim.color is not None:
            mark = "•"
        out.print(f"  {mark} {escape(claim.text())}")
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="key")
    for column in ("colour", "environment", "status", "airflow", "record", "last update"):
        table.add_column(column)
    for colour in found.colours:
        status = colour.status or ("not found" if not colour.exists else "unreadable")
        style = {"AVAILABLE": "success", "UNAVAILABLE": "failure"}.get(status, "progress")
        if not colour.exists:
            style = "muted"
        last = colour.last_update or "-"
        if colour.last_update_error:
            last += f" ({colour.last_update_error})"
        if colour.error:
            last = colour.error
        name = colour.name + (" (live)" if colour.color is found.live else "")
        table.add_row(
            str(colour.color),
            escape(name),
            f"[{style}]{escape(status)}[/]",
            colour.version or "-",
            colour.recorded_version or "-",
            escape(last),
        )
    out.print(table)
    for view in found.workflows:
        head = f"{view.workflow} {view.run_id} to {view.to}: {view.state}"
        if view.started_at is not None:
            head += f", begun {datetime.fromtimestamp(view.started_at, UTC):%Y-%m-%d %H:%M:%S} UTC"
        if view.state == "finished":
            out.print(f"[muted]last {escape(head)} ({escape(str(view.outcome))})[/]")
            continue
        out.print(f"[warning]{escape(head)}[/]")
        if view.current_step:
            out.print(f"  in step: {escape(view.current_step)}" + (f" ({view.stage})" if view.stage else ""))
        if view.frozen_s is not None:
            since = datetime.fromtimestamp(view.frozen_since or 0, UTC)
            out.print(
                f"  [warning]frozen for {duration(view.frozen_s)}[/] (the source's DAGs paused since "
                f"{since:%H:%M:%S} UTC)"
            )
        if view.aborted:
            out.print("  the freeze was aborted: scheduling was given back to the source")
        out.print(f"  --resume: {escape(view.resume)}")
    for note in found.notes:
        out.print(f"[muted]note: {escape(note)}[/]")
    style = _STYLE[found.verdict]
    out.print(f"[{style}]{found.verdict}[/]: {escape(found.reason)}")
    out.print(f"next: [key]{escape(found.next_command)}[/]")
