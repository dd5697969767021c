"""How the long-running commands show workflow events: JSON lines with --json, else readable lines on
stderr plus a live status on a terminal. What each kind prints is ``mwaa_iac.cli.event_text``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.event_text import duration, format_event, status_text, stops_status

if TYPE_CHECKING:
    from rich.status import Status

__all__ = ["Progress", "duration"]


class Progress:
    """Renders workflow events: JSON lines with --json, else readable lines plus a live status."""

    def __init__(self, json_lines: bool) -> None:
        self.json_lines = json_lines
        self.status: Status | None = None

    def __call__(self, event: dict) -> None:
        if self.json_lines:
            ui.emit_json_line(event)
            return
        if stops_status(event):
            self._stop()
        line = format_event(event)
        if line is not None:
            ui.err.print(line)
        status = status_text(event)
        if status is not None:
            self._live(status)

    def _live(self, text: str) -> None:
        if not ui.err.is_terminal:  # no spinner in logs: status changes are printed as lines
            return
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

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
