"""The shared Airflow facts (core/airflow_env.py): one home for the Python of a version, the constraints
URL and the cache folders, used by both the checks and the local runtime."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mwaa_iac
from mwaa_iac.core.airflow_env import (
    cache_dir,
    constraints_cache_dir,
    constraints_url,
    python_for,
    venv_cache_dir,
)
from mwaa_iac.core.catalog import major_minor, major_of
from mwaa_iac.errors import UsageError

PACKAGE = Path(mwaa_iac.__file__).parent


def test_python_for_reads_the_catalog() -> None:
    assert python_for("2.10.3") == "3.11"
    assert python_for("2.11.0") == "3.12"


def test_python_for_an_unknown_version_is_refused_unless_guessed() -> None:
    with pytest.raises(UsageError):
        python_for("2.12.0")
    assert python_for("2.12.0", guess=True) == "3.12"
    assert python_for("2.6.9", guess=True) == "3.11"
    with pytest.raises(ValueError):
        python_for("two", guess=True)


def test_constraints_url() -> None:
    assert constraints_url("2.10.3", "3.11").endswith("/constraints-2.10.3/constraints-3.11.txt")


def test_cache_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MWAA_IAC_CONSTRAINTS_CACHE", raising=False)
    monkeypatch.delenv("MWAA_IAC_VENV_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert constraints_cache_dir() == tmp_path / "mwaa-iac" / "constraints"
    assert venv_cache_dir() == tmp_path / "mwaa-iac" / "venvs"
    monkeypatch.setenv("MWAA_IAC_VENV_CACHE", str(tmp_path / "mine"))
    assert venv_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir("x", "MWAA_IAC_UNSET_FOR_TEST") == Path.home() / ".cache" / "mwaa-iac" / "x"


def test_version_parts() -> None:
    assert major_of("3.0.6") == 3
    assert major_minor("2.10.3") == (2, 10)
    with pytest.raises(ValueError):
        major_of("2.10")


def test_the_local_stack_does_not_import_the_checks() -> None:
    offenders = []
    for path in (PACKAGE / "local").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            where = path.relative_to(PACKAGE)
            offenders += [f"{where}: {n}" for n in names if n.startswith("mwaa_iac.checks")]
    assert offenders == []
