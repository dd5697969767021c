"""Terminal output: the only place (with cli.py) that prints. Colours are named by meaning and
switch off with --no-color / NO_COLOR; --json output goes to stdout as one JSON document or JSON lines."""

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


def emit_json(data: Any) -> None:
    """One JSON document on stdout (never through rich, so it stays machine-readable)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def emit_json_line(data: Any) -> None:
    sys.stdout.write(json.dumps(data, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()
