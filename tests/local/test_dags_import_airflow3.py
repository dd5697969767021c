"""`check dags --import --to 3.3.1` with real Airflow 3.3.1 (the local stack's cached virtualenv, built
with ensure_venv when missing; skipped when it cannot be had): the Airflow 2 style fixtures fail to
import with the file, the line and the error, the files Airflow 3 still imports through deprecation
shims are listed with their warnings, the Airflow 3 fixture imports clean. Runs the CLI, text and
--json; no metadata database is involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mwaa_iac.checks.dags import find_ruff, find_target_python

pytestmark = pytest.mark.local

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "tests" / "fixtures" / "dags"
TARGET = "3.3.1"


@pytest.fixture(scope="module")
def airflow_331() -> Path:
    if find_ruff() is None:
        pytest.skip("ruff is not installed (check dags lints Airflow 3 targets before importing)")
    python, why_not = find_target_python(TARGET, build=True)
    if python is None:
        pytest.skip(f"no Airflow {TARGET} virtualenv: {why_not}")
    return python


def _cli(workspace: Path, folder: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mwaa_iac.cli",
            "check",
            "dags",
            "--env",
            "demo",
            "--to",
            TARGET,
            "--path",
            str(DAGS / folder),
            "--import",
            *extra,
        ],
        cwd=workspace,
        env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _json(workspace: Path, folder: str) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    proc = _cli(workspace, folder, "--json")
    data = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert data["import_skipped"] is None, data["import_skipped"]
    return proc.returncode, data, {item["file"]: item for item in data["imports"]}


def test_airflow2_style_fails_to_import_with_file_line_and_error(
    airflow_331: Path, workspace_root: Path
) -> None:
    code, data, by_file = _json(workspace_root, "airflow2_style")
    assert code == 1 and data["status"] == "failed"
    assert by_file["legacy_etl.py"] == {
        "file": "legacy_etl.py",
        "ok": False,
        "error": "ModuleNotFoundError: No module named 'airflow.operators.dummy'",
        "line": 6,
        "dag_ids": [],
        "warnings": [],
    }
    assert by_file["helpers.py"]["ok"] and by_file["helpers.py"]["dag_ids"] == []
    assert data["summary"].endswith("1 of 2 file(s) failed to import")

    text = _cli(workspace_root, "airflow2_style")
    assert text.returncode == 1
    assert (
        "  import error legacy_etl.py:6: ModuleNotFoundError: No module named 'airflow.operators.dummy'"
        in text.stdout.splitlines()
    )
    assert "  imports helpers.py (no DAGs)" in text.stdout.splitlines()


def test_airflow2_mixed_errors_and_deprecation_warnings(airflow_331: Path, workspace_root: Path) -> None:
    code, data, by_file = _json(workspace_root, "airflow2_mixed")
    assert code == 1 and data["status"] == "failed"
    datasets = by_file["datasets_dag.py"]
    assert not datasets["ok"] and datasets["line"] == 6
    assert datasets["error"] == "ModuleNotFoundError: No module named 'airflow.datasets'"
    schedule = by_file["schedule_interval_dag.py"]
    assert not schedule["ok"] and schedule["line"] == 9  # the `with DAG(` line
    assert (
        schedule["error"]
        == "TypeError: DAG.__init__() got an unexpected keyword argument 'schedule_interval'"
    )
    # Imports through a deprecation shim, and its ORM use is in task code: not an import error.
    deprecated = by_file["deprecated_operators.py"]
    assert deprecated["ok"] and deprecated["dag_ids"] == ["deprecated_operators"]
    assert [(w["file"], w["line"], w["category"].rpartition(".")[2]) for w in deprecated["warnings"]] == [
        ("deprecated_operators.py", 8, "DeprecatedImportWarning")
    ]
    assert "airflow.operators.python.PythonOperator" in deprecated["warnings"][0]["message"]
    assert data["summary"].endswith("2 of 3 file(s) failed to import, 1 imported with deprecation warnings")

    lines = _cli(workspace_root, "airflow2_mixed").stdout.splitlines()
    assert "  imports with deprecation warnings deprecated_operators.py (deprecated_operators)" in lines
    assert any(
        line.startswith(
            "      deprecated_operators.py:8 DeprecatedImportWarning: The `airflow.operators.python"
        )
        for line in lines
    )
    assert (
        "  import error datasets_dag.py:6: ModuleNotFoundError: No module named 'airflow.datasets'" in lines
    )


def test_airflow3_ready_imports_clean(airflow_331: Path, workspace_root: Path) -> None:
    code, data, by_file = _json(workspace_root, "airflow3_ready")
    assert code == 0 and data["status"] == "passed"
    assert by_file == {
        "modern_etl.py": {
            "file": "modern_etl.py",
            "ok": True,
            "error": None,
            "line": None,
            "dag_ids": ["modern_etl"],
            "warnings": [],
        }
    }
    assert data["findings"] == []

    text = _cli(workspace_root, "airflow3_ready")
    assert text.returncode == 0, text.stdout + text.stderr
    assert "  imports modern_etl.py (modern_etl)" in text.stdout.splitlines()
    assert "import check not run" not in text.stderr
