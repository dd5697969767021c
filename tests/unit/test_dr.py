from __future__ import annotations

import ast
import runpy
import sys
import types

import pytest

from mwaa_iac.core import dr
from mwaa_iac.core.dr import (
    BACKUP_DAG_ID,
    DR_DAG_IDS,
    MWAA_IAC_DAG_IDS,
    PROBE_DAG_ID,
    ManifestError,
    backup_prefix,
    copy_conf,
    factory_for,
    manifest_counts,
    probe_conf,
    render_backup_dag,
    render_cleanup_dag,
    render_prepare_dag,
    render_probe_dag,
    render_restore_dag,
    restore_problems,
    run_id,
)
from mwaa_iac.errors import UsageError


def test_factory_follows_the_source_minor_version() -> None:
    assert factory_for("2.9.2") == "DRFactory_2_9"
    assert factory_for("2.11.2") == "DRFactory_2_11"
    with pytest.raises(UsageError, match=r"does not support Airflow 3\.0\.6"):
        factory_for("3.0.6")


@pytest.mark.parametrize(
    "render",
    [
        lambda: render_backup_dag("DRFactory_2_9", "mwaa-dr/a/c1/pass1", "a", "pass 1"),
        lambda: render_restore_dag("DRFactory_2_9", "mwaa-dr/a/c1/pass1", "a", "pass 1"),
        lambda: render_cleanup_dag("DRFactory_2_9", "a", "pass 2"),
    ],
)
def test_rendered_dag_files_are_valid_python_with_their_marker(render) -> None:
    dag_file = render()
    ast.parse(dag_file.text)
    assert dag_file.marker in dag_file.text and dag_file.relative_path.startswith("mwaa_iac_dr/")


def _load_dag_file(text: str, tmp_path, monkeypatch) -> tuple[dict, list]:
    """Run a rendered DAG file against stand-ins for Airflow, mwaa-dr and the copy module: returns
    what it declared (``dag``: DAG's arguments, ``task``: PythonOperator's, ``factory``: the factory's)
    and the list the copy module's calls are recorded in."""
    calls: list = []
    declared: dict = {}

    class Dag:
        def __init__(self, dag_id, **kwargs):
            declared["dag"] = {"dag_id": dag_id, **kwargs}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class Factory:
        def __init__(self, **kwargs):
            declared["factory"] = kwargs

    def fake(name: str, **attrs) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
        return module

    fake("airflow", DAG=Dag)
    fake("airflow.exceptions", AirflowFailException=type("AirflowFailException", (Exception,), {}))
    fake("airflow.operators.python", PythonOperator=lambda **kw: declared.__setitem__("task", kw))
    fake(
        "mwaa_iac_copy",
        **{
            a: (lambda *args, _a=a: calls.append((_a, args)) or "done")
            for a in ("backup", "restore", "prepare")
        },
    )
    for version in ("2_9", "2_10"):
        fake(f"mwaa_dr.v_{version}.dr_factory", **{f"DRFactory_{version}": Factory})
    path = tmp_path / "dag.py"
    path.write_text(text, "utf-8")
    monkeypatch.setattr(sys, "path", list(sys.path))
    runpy.run_path(str(path))
    return declared, calls


def test_backup_and_restore_use_the_given_factory_and_the_copy_module(tmp_path, monkeypatch) -> None:
    backup = render_backup_dag("DRFactory_2_9", "mwaa-dr/a/c1/pass2", "a", "pass 2")
    declared, calls = _load_dag_file(backup.text, tmp_path, monkeypatch)
    assert declared["dag"]["dag_id"] == BACKUP_DAG_ID and declared["dag"]["description"] == backup.marker
    assert declared["factory"] == {
        "dag_id": BACKUP_DAG_ID,
        "path_prefix": "mwaa-dr/a/c1/pass2",
        "storage_type": "S3",
    }
    task = declared["task"]
    assert task["task_id"] == "backup_all_tables" and task["retries"] == 4
    context = {"dag_run": types.SimpleNamespace(conf={dr.MARKER_CONF: backup.marker})}
    assert task["python_callable"](**context) == "done"
    assert calls == [("backup", (calls[0][1][0], context, MWAA_IAC_DAG_IDS))]
    assert type(calls[0][1][0]).__name__ == "Factory"
    restore = render_restore_dag("DRFactory_2_10", "p", "a", "pass 1")
    declared, calls = _load_dag_file(restore.text, tmp_path, monkeypatch)
    assert declared["dag"]["dag_id"] == dr.RESTORE_DAG_ID
    assert declared["task"]["task_id"] == "restore_all_tables"
    declared["task"]["python_callable"](dag_run=types.SimpleNamespace(conf={}))
    assert [c[0] for c in calls] == ["restore"]
    # The tool's own DAGs (the probe too) are never copied.
    assert f"OWN_DAGS = {MWAA_IAC_DAG_IDS!r}" in restore.text
    # A file of an earlier release that finds this one synced calls the task's function by its name.
    assert "globals()[TASK_ID] = all_tables" in restore.text


def test_the_dag_files_are_the_packaged_files_with_only_their_constants_filled_in() -> None:
    backup = render_backup_dag("DRFactory_2_9", "mwaa-dr/a/c1/pass2", "deployment's", "pass 2")
    template = dr.dag_template(dr.COPY_TASK_FILE)
    outside = [line for line in template.split("\n") if " = " not in line or line.startswith(" ")]
    assert [line for line in backup.text.split("\n") if " = " not in line or line.startswith(" ")] == outside
    assert 'DEPLOYMENT = "deployment\'s"' in backup.text and "{" + "action" + "}" not in backup.text


def test_prefixes_and_run_ids_are_unique_and_short() -> None:
    assert backup_prefix("mwaa-dr/", "analytics", "c1a2b3c4", "pass1") == "mwaa-dr/analytics/c1a2b3c4/pass1"
    rid = run_id("restore", "c1a2b3c4d5", "p2")
    assert rid == "res-c1a2b3c4-p2" and len(f"/dags/restore_metadata/dagRuns/{rid}") <= 64
    assert len(f"/dags/restore_metadata/dagRuns/{run_id('restore', 'c1a2b3c4d5', 'p2a12')}") <= 64
    assert copy_conf("b", "mwaa-dr/a/c1/p2-a1") == {"bucket": "b", "prefix": "mwaa-dr/a/c1/p2-a1"}


MANIFEST = {
    "format": dr.MANIFEST_FORMAT,
    "tables": {
        name: {"rows": rows, "sha256": "x"}
        for name, rows in {
            "variable": 20,
            "connection": 10,
            "slot_pool": 5,
            "dag_run": 300,
            "task_instance": 3000,
            "xcom": 40,
            "task_map": 2,
        }.items()
    },
}


def test_a_manifest_gives_rows_per_table_and_must_be_complete() -> None:
    assert manifest_counts(MANIFEST)["task_instance"] == 3000
    with pytest.raises(ManifestError, match="format 1, expected 2"):  # an older mwaa-iac's backup
        manifest_counts({**MANIFEST, "format": 1})
    broken = {
        "format": dr.MANIFEST_FORMAT,
        "tables": {k: v for k, v in MANIFEST["tables"].items() if k != "xcom"},
    }
    with pytest.raises(ManifestError, match="lacks table"):
        manifest_counts(broken)


def test_restore_problems_name_the_tables_or_the_restores_own_error() -> None:
    rows = manifest_counts(MANIFEST)
    assert restore_problems(rows, {"ok": True, "tables": dict(rows)}) == []
    short = {"ok": True, "tables": {**rows, "xcom": 39}}
    assert restore_problems(rows, short) == ["xcom: backup 40, target 39"]
    error = "RuntimeError: the restored rows differ: dag_run [etl]: backup 3 rows, target 2 rows"
    assert restore_problems(rows, {"ok": False, "error": error}) == [error]
    assert restore_problems(rows, {}) == ["the restore left no result (its run's note is empty)"]


@pytest.mark.parametrize(
    "render",
    [
        lambda: render_backup_dag("DRFactory_2_9", "p", "a", "p1"),
        lambda: render_restore_dag("DRFactory_2_9", "p", "a", "p1"),
        lambda: render_cleanup_dag("DRFactory_2_9", "a", "p2"),
        lambda: render_prepare_dag("a", "p1"),
    ],
)
def test_airflow_safe_mode_would_parse_the_files(render) -> None:
    text = render().text.lower()
    assert "airflow" in text and "dag" in text


@pytest.mark.parametrize(
    "render",
    [
        lambda: render_backup_dag("DRFactory_2_9", "p", "a", "p1"),
        lambda: render_restore_dag("DRFactory_2_9", "p", "a", "p1"),
        lambda: render_cleanup_dag("DRFactory_2_9", "a", "p2"),
        lambda: render_probe_dag("DRFactory_2_9", "a"),
    ],
)
def test_mwaa_dr_and_the_copy_module_are_imported_from_the_vendor_folder_appended(render) -> None:
    text = render().text
    bootstrap = text.index("sys.path.append(_VENDOR)")
    factory = "import_module(_module)" if "FACTORY = " in text else "from mwaa_dr.v_2_9.dr_factory import"
    assert bootstrap < text.index(factory) and "mwaa_dr.v_2_9.dr_factory" in text
    assert '"vendor")' in text
    assert "sys.path.insert" not in text  # appended: an installed mwaa-dr and the user's imports win
    ast.parse(text)


def test_prepare_dag_needs_no_mwaa_dr() -> None:
    text = render_prepare_dag("a", "p1").text
    assert "mwaa_dr" not in text.replace("mwaa_iac_dr", "")
    assert "ACTION = 'prepare'" in text and "FACTORY = ''" in text


def test_probe_dag_takes_its_target_from_the_run_conf() -> None:
    probe = render_probe_dag("DRFactory_2_10", "a")
    assert probe.dag_id == PROBE_DAG_ID and probe.relative_path == "mwaa_iac_dr/mwaa_iac_probe.py"
    assert probe.marker == "mwaa-iac probe DRFactory_2_10" and probe.marker in probe.text
    assert 'conf["bucket"]' in probe.text and "smart_open.open(uri" in probe.text
    conf = probe_conf("dr-bucket", "mwaa-dr/", "analytics", "1a2b3c4d")
    assert conf == {"bucket": "dr-bucket", "key": "mwaa-dr/analytics/probe/1a2b3c4d/probe.txt"}
    assert len(f"/dags/{PROBE_DAG_ID}/dagRuns/{run_id('probe', '1a2b3c4d', 'x')}") <= 64


def test_the_probe_is_the_tools_own_dag() -> None:
    assert PROBE_DAG_ID not in DR_DAG_IDS
    assert PROBE_DAG_ID in MWAA_IAC_DAG_IDS  # never copied, recorded, paused, drained or unpaused
