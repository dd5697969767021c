"""Terminal output: the only consoles of mwaa-iac. Colours are named by meaning and switch off with
--no-color / NO_COLOR; --json output goes to stdout as one JSON document or JSON lines, never through
rich, so that it stays machine-readable."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.theme import Theme

THEME = Theme(
    {
        "success": "bold green",
        "failure": "bold red",
        "warning": "yellow",
        "progress": "cyan",
        "muted": "dim",
        "key": "bold",
    }
)

out = Console(theme=THEME, highlight=False, soft_wrap=True)
err = Console(theme=THEME, highlight=False, stderr=True, soft_wrap=True)


def set_color(enabled: bool) -> None:
    global out, err
    out = Console(theme=THEME, highlight=False, soft_wrap=True, no_color=not enabled)
    err = Console(theme=THEME, highlight=False, stderr=True, soft_wrap=True, no_color=not enabled)


def plain(file: Any, width: int = 120) -> Console:
    """A console without colours writing to ``file`` (e.g. a report also written to a file)."""
    return Console(file=file, theme=THEME, no_color=True, width=width, soft_wrap=True)


def emit_json(data: Any, *, sort_keys: bool = False) -> None:
    """One JSON document on stdout (for the short commands)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n")
    sys.stdout.flush()


def emit_json_line(data: Any) -> None:
    """One JSON object on one line of stdout (the events of the long-running commands)."""
    sys.stdout.write(json.dumps(data, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()
