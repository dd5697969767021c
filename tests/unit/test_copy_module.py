"""mwaa-iac's copy module (it runs inside Airflow environments; these are its pure parts): which
columns are hashed, how surrogate ids are re-mapped on the target, what a mismatch says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mwaa_iac.adapters.dr_bundle import COPY_MODULE_FILE, load_bundle
from mwaa_iac.core import dr

spec = importlib.util.spec_from_file_location("mwaa_iac_copy", COPY_MODULE_FILE)
copy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(copy)

COLUMNS = {
    "dag_run": ["id", "dag_id", "run_id", "log_template_id", "conf", "state"],
    "task_instance": ["dag_id", "run_id", "task_id", "map_index", "state", "trigger_id", "next_kwargs"],
    "xcom": ["dag_run_id", "dag_id", "run_id", "task_id", "map_index", "key", "value"],
    "dataset_event": ["dataset_uri", "id", "extra", "timestamp"],
    "log_template": ["id", "filename", "elasticsearch_id"],
    "dag_schedule": ["dag_id", "next_dagrun"],
}


def test_the_copy_module_is_delivered_beside_mwaa_dr_and_imports_no_airflow_at_load() -> None:
    paths = dict(load_bundle().files)
    assert paths[f"{dr.VENDOR_FOLDER}/{dr.COPY_MODULE}.py"] == Path(COPY_MODULE_FILE).read_bytes()
    assert "airflow" not in copy.__dict__  # imported inside functions, in the environment only


def test_surrogate_ids_are_neither_hashed_nor_copied_as_they_are() -> None:
    specs = copy.build_specs(COLUMNS, ("backup_metadata", "mwaa_iac_probe"))
    run = specs["dag_run"]
    assert run.columns[0] == "src_id" and "id" not in run.columns
    assert "src_id" not in run.hashed and "log_template_id" not in run.hashed and "conf" in run.hashed
    assert "dag_run_id" not in specs["xcom"].hashed and "value" in specs["xcom"].hashed
    assert specs["task_instance"].hashed == COLUMNS["task_instance"]  # trigger ids are kept
    assert "NOT IN ('backup_metadata', 'mwaa_iac_probe')" in run.select  # the tool's runs never copied
    assert not specs["log_template"].verify and not specs["dag_schedule"].verify


def test_the_target_re_maps_run_ids_log_templates_and_dataset_ids() -> None:
    specs = copy.build_specs(COLUMNS, ("backup_metadata",))
    run = copy._insert_sql("dag_run", specs["dag_run"].columns)
    assert "src_id" not in run.split("SELECT")[0] and "log_template lt" in run and "sl.filename" in run
    xcom = copy._insert_sql("xcom", specs["xcom"].columns)
    assert "r.id" in xcom and "JOIN dag_run r ON r.dag_id = s.dag_id AND r.run_id = s.run_id" in xcom
    event = copy._insert_sql("dataset_event", specs["dataset_event"].columns)
    assert "JOIN dataset d ON d.uri = s.dataset_uri" in event and '"id"' in event  # event ids kept
    assert copy._insert_sql("log_template", specs["log_template"].columns) is None  # mapping only


def test_a_mismatch_names_the_first_differing_group_never_a_value() -> None:
    expected = {"rows": 5, "groups": {"etl": "3:aaa", "report": "2:bbb"}}
    got = {"rows": 4, "groups": {"etl": "2:ccc", "report": "2:bbb"}}
    assert copy._first_difference("dag_run", expected, got) == (
        "dag_run [etl]: backup 3 rows, target 2 rows (content hash differs)"
    )
