"""Command-line options shared by the CLI's command modules (one definition each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EnvOpt = Annotated[str, typer.Option("--env", "-e", help="Environment directory name under environments/.")]
RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Repository root holding environments/ (default: $MWAA_IAC_ROOT or the cwd).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
ToOpt = Annotated[
    str | None,
    typer.Option(
        "--to", help="Target Airflow version (default: airflow_version in mwaa.yaml).", show_default=False
    ),
]
