"""`check dags`: ruff's Airflow 3 rules over fixture DAGs, and the optional import check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mwaa_iac.checks.dags import check_dags, find_ruff

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "tests" / "fixtures" / "dags"

pytestmark = pytest.mark.skipif(find_ruff() is None, reason="ruff is not installed")


def test_airflow2_dag_reports_breaking_rules_with_lines() -> None:
    result = check_dags(DAGS / "airflow2_style", "3.3.1")
    found = {(f.file, f.line, f.rule, f.breaking) for f in result.findings}
    assert ("legacy_etl.py", 16, "AIR301", True) in found  # schedule_interval
    assert ("legacy_etl.py", 20, "AIR302", True) in found  # airflow.operators.dummy.DummyOperator
    assert ("legacy_etl.py", 21, "AIR302", True) in found  # airflow.operators.python_operator.PythonOperator
    assert all(f.file == "legacy_etl.py" for f in result.findings)  # helpers.py is clean
    schedule = next(f for f in result.findings if f.rule == "AIR301")
    assert "schedule_interval" in schedule.message and "schedule" in (schedule.fix or "")
    assert result.ok is False and result.status == "failed"
    assert result.files == 2


def test_airflow3_dag_passes() -> None:
    result = check_dags(DAGS / "airflow3_ready", "3.3.1")
    assert result.findings == ()
    assert result.ok and result.status == "passed"


def test_rules_are_not_run_for_2x_targets() -> None:
    result = check_dags(DAGS / "airflow2_style", "2.10.3")
    assert result.findings == () and result.ok
    assert result.lint_skipped is not None and "2.10.3" in result.lint_skipped


def test_import_without_cached_venv_degrades(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MWAA_IAC_VENV_CACHE", str(tmp_path / "empty"))
    result = check_dags(DAGS / "airflow3_ready", "3.3.1", import_files=True)
    assert result.imports is None
    assert result.import_skipped is not None
    assert "no cached virtualenv with Airflow 3.3.1" in result.import_skipped or "not available" in (
        result.import_skipped
    )
    assert result.ok  # a check that could not run does not fail the DAGs


# A stand-in for Airflow's DagBag, enough to exercise the import plumbing without installing Airflow.
_STUB_DAGBAG = """
import runpy, traceback

class DagBag:
    def __init__(self, dag_folder=None, include_examples=False, collect_dags=True, **kwargs):
        self.import_errors = {}

    def process_file(self, path, only_if_updated=True, safe_mode=True):
        try:
            namespace = runpy.run_path(path)
        except Exception:
            self.import_errors[path] = traceback.format_exc()
            return []
        return [v for v in namespace.values() if hasattr(v, "dag_id") and not isinstance(v, type)]
"""


def test_import_reports_errors_per_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("mwaa_iac.adapters.airflow_venvs")
    stub = tmp_path / "stub"
    (stub / "airflow" / "models").mkdir(parents=True)
    (stub / "airflow" / "__init__.py").write_text("", "utf-8")
    (stub / "airflow" / "models" / "__init__.py").write_text("", "utf-8")
    (stub / "airflow" / "models" / "dagbag.py").write_text(_STUB_DAGBAG, "utf-8")
    venv = tmp_path / "cache" / "3.3.1-py3.12"
    (venv / "bin").mkdir(parents=True)
    (venv / ".mwaa-iac-complete").write_text("airflow 3.3.1\n", "utf-8")
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{stub}:$PYTHONPATH" exec "{sys.executable}" "$@"\n', "utf-8")
    python.chmod(0o755)
    monkeypatch.setenv("MWAA_IAC_VENV_CACHE", str(tmp_path / "cache"))
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "good.py").write_text("class Dag:\n    dag_id = 'good'\n\n\ngood = Dag()\n", "utf-8")
    (dags / "broken.py").write_text("import module_that_does_not_exist  # noqa: F401\n", "utf-8")

    result = check_dags(dags, "3.3.1", import_files=True)
    assert result.import_skipped is None, result.import_skipped
    by_file = {item.file: item for item in result.imports or ()}
    assert by_file["good.py"].ok and by_file["good.py"].dag_ids == ("good",)
    assert not by_file["broken.py"].ok
    assert "module_that_does_not_exist" in (by_file["broken.py"].error or "")
    assert result.ok is False and result.status == "failed"


_RUN_CLI = """
import sys
from mwaa_iac import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", _RUN_CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_check_dags_exit_codes(workspace_root: Path) -> None:
    bad = run_cli(
        "check",
        "dags",
        "--env",
        "demo",
        "--to",
        "3.3.1",
        "--path",
        str(DAGS / "airflow2_style"),
        cwd=workspace_root,
    )
    assert bad.returncode == 1, bad.stderr
    assert "legacy_etl.py:16" in bad.stdout and "AIR301" in bad.stdout and "fix:" in bad.stdout
    good = run_cli(
        "check",
        "dags",
        "--env",
        "demo",
        "--to",
        "3.3.1",
        "--path",
        str(DAGS / "airflow3_ready"),
        cwd=workspace_root,
    )
    assert good.returncode == 0, good.stdout + good.stderr
