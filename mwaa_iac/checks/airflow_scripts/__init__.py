"""Programs run by another interpreter (a target Airflow's virtualenv), shipped as files so they are
linted and formatted like all code. Each reads its inputs from argv and reports on stdout; importing
one runs nothing. :func:`script_path` finds one by name."""

from __future__ import annotations

from pathlib import Path


def script_path(name: str) -> Path:
    """The file of the script ``name`` (``"import_dags"``) in this package."""
    path = Path(__file__).with_name(f"{name}.py")
    if not path.is_file():
        raise FileNotFoundError(f"no script {name!r} in {path.parent}")
    return path
