"""Every table of the metadata schema of every Airflow 2.x version the local stack runs has a fate in
the copy module's registry (copied, rebuilt by Airflow, not copied: each with why). The schema is the
real one: ``airflow db migrate`` of the version's own venv into an empty SQLite database (the same
tables as on PostgreSQL). A table a new version adds fails here until the registry says what the
copy does with it; README's "Not copied" table is checked against the same registry
(tests/unit/test_copy_registry.py)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from mwaa_iac.adapters.airflow_venvs import ensure_venv
from tests.unit.test_copy_module_pure import copy

pytestmark = pytest.mark.local

VERSIONS = ("2.9.2", "2.10.3", "2.11.2")  # the 2.x versions the local stack runs


def schema_tables(version: str, home: Path) -> set[str]:
    venv = ensure_venv(version)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    migrated = subprocess.run(
        [str(venv.python), "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows if not name.startswith("sqlite_")}


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    return {v: schema_tables(v, tmp_path_factory.mktemp(f"schema-{v}")) for v in VERSIONS}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_table_of_the_schema_has_a_fate_in_the_registry(
    schemas: dict[str, set[str]], version: str
) -> None:
    unknown = sorted(schemas[version] - set(copy.BY_NAME))
    assert not unknown, f"Airflow {version}: tables the copy registry does not name: {unknown}"


def test_every_table_of_the_registry_is_in_some_version(schemas: dict[str, set[str]]) -> None:
    everywhere = set().union(*schemas.values())
    real = {t.table for t in copy.TABLES}  # dag_schedule: columns of dag
    assert sorted(real - everywhere) == []  # no typo, no table of another major
    assert {"task_instance_history", "dataset_alias", "dataset_alias_dataset_event"} <= schemas["2.10.3"]
