"""The generated DR DAG files, loaded by real Airflow with mwaa-dr 2.2.0 installed (the local
stack's version venvs): they import; the backup is one task; the restore is one task followed by
the fix-up; the restore's levels keep every dependency mwaa-dr's own restore DAG declares."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mwaa_iac.core import dr
from mwaa_iac.local.runtime.venvs import ensure_venv

pytestmark = pytest.mark.local

PROBE = r"""
import importlib.util, json, sys
from airflow.models import DagBag

folder = sys.argv[1]
bag = DagBag(folder, include_examples=False)
spec = importlib.util.spec_from_file_location("restore", f"{folder}/restore_metadata.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
mine = bag.dags["restore_metadata"]
own = module.factory.create_restore_dag()  # mwaa-dr's per-table DAG from the same factory
edges = [[t.task_id, d] for t in own.tasks for d in t.downstream_task_ids]
print(json.dumps({
    "errors": {k: str(v)[-300:] for k, v in bag.import_errors.items()},
    "dags": {d.dag_id: {"description": d.description, "tasks": [t.task_id for t in d.tasks]}
             for d in bag.dags.values()},
    "levels": [[t.name for t in level] for level in module._levels(module.factory)],
    "edges": edges,
    "mine": [[t.task_id, d] for t in mine.tasks for d in t.downstream_task_ids],
}))
"""


@pytest.mark.parametrize("version", ["2.9.2", "2.10.3"])
def test_one_task_dr_dags_load_and_keep_mwaa_drs_restore_order(version: str, tmp_path: Path) -> None:
    factory = dr.factory_for(version)
    folder = tmp_path / "dags"
    folder.mkdir()
    files = [
        dr.render_backup_dag(factory, "mwaa-dr/t/c1/p1", "t", "p1"),
        dr.render_restore_dag(factory, "mwaa-dr/t/c1/p1", "t", "p1"),
    ]
    for item in files:
        (folder / f"{item.dag_id}.py").write_text(item.text)
    venv = ensure_venv(version)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
    }
    probe = subprocess.run(
        [str(venv.python), "-c", PROBE, str(folder)], capture_output=True, text=True, env=env, timeout=300
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    backup, restore = files
    assert result["dags"] == {
        backup.dag_id: {"description": backup.marker, "tasks": ["backup_all_tables"]},
        restore.dag_id: {"description": restore.marker, "tasks": ["restore_all_tables", "fixup"]},
    }
    assert ["restore_all_tables", "fixup"] in result["mine"]  # the fix-up runs after the restore
    level_of = {table: n for n, level in enumerate(result["levels"]) for table in level}
    assert set(level_of) == set(dr.TABLES) and len(level_of) == len(dr.TABLES)
    for upstream, downstream in result["edges"]:
        a, b = upstream.removeprefix("restore_"), downstream.removeprefix("restore_")
        if a in level_of and b in level_of:
            assert level_of[a] < level_of[b], f"{a} must be restored before {b}"
    assert level_of["dag_run"] < level_of["task_instance"] < level_of["xcom"]
