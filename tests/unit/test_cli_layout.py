"""The command line's layout: literals in cli/options.py match the facts they copy, and start-up
imports only what --help and `versions path` use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mwaa_iac.cli import options

REPO = Path(__file__).resolve().parents[2]
HEAVY = (
    "boto3",
    "botocore",
    "jinja2",
    "yaml",
    "mwaa_iac.local",
    "mwaa_iac.core.config",
    "mwaa_iac.workflows",
)
"""Never imported by `--help` or `versions path`. (pydantic itself is: Typer converts parameter
values with it when a command runs; --help does not import it.)"""


def test_phase_help_names_every_phase() -> None:
    from mwaa_iac.core.phase_layout import PHASE_NAMES

    assert f"One of: {', '.join(PHASE_NAMES)}, flip." == options.PHASES_HELP


def test_local_dir_variable_is_the_stacks() -> None:
    from mwaa_iac.local import stack

    assert options.LOCAL_DIR_VAR == stack.ENV_DIR_VAR


def test_engine_choices_are_the_workflows() -> None:
    assert [e.value for e in options.Engine] == ["terraform", "api"]


_PROBE = """
import json, sys
from mwaa_iac.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {h for h in HEAVY if "." not in h}
               or any(m == h or m.startswith(h + ".") for h in HEAVY if "." in h))
sys.stderr.write("\\nHEAVY " + json.dumps(heavy) + "\\n")
sys.exit(code)
"""


def _heavy_modules(*args: str, extra: tuple[str, ...] = ()) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {(*HEAVY, *extra)!r}\n{_PROBE}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    line = [x for x in result.stderr.splitlines() if x.startswith("HEAVY ")][-1]
    return json.loads(line[len("HEAVY ") :])


def test_help_and_versions_path_import_no_heavy_module() -> None:
    assert _heavy_modules("--help", extra=("pydantic",)) == []
    assert _heavy_modules("versions", "path", "--from", "2.9.2", "--to", "2.10.3") == []
