from __future__ import annotations

import ast
import io

import pytest

from mwaa_iac.core.dr import (
    BACKUP_DAG_ID,
    DR_DAG_IDS,
    MWAA_IAC_DAG_IDS,
    PROBE_DAG_ID,
    backup_prefix,
    count_csv_records,
    csv_delimiter,
    factory_for,
    probe_conf,
    render_backup_dag,
    render_cleanup_dag,
    render_prepare_dag,
    render_probe_dag,
    render_restore_dag,
    run_id,
    verify_counts,
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


def test_backup_and_restore_use_the_given_factory_and_prefix() -> None:
    backup = render_backup_dag("DRFactory_2_9", "mwaa-dr/a/c1/pass2", "a", "pass 2")
    assert "from mwaa_dr.v_2_9.dr_factory import DRFactory_2_9" in backup.text
    assert "path_prefix='mwaa-dr/a/c1/pass2'" in backup.text and f"dag_id={BACKUP_DAG_ID!r}" in backup.text
    restore = render_restore_dag("DRFactory_2_10", "p", "a", "pass 1")
    assert "class Factory(DRFactory_2_10)" in restore.text and "KeepDagsPaused" in restore.text


def test_prefixes_and_run_ids_are_unique_and_short() -> None:
    assert backup_prefix("mwaa-dr/", "analytics", "c1a2b3c4", "pass1") == "mwaa-dr/analytics/c1a2b3c4/pass1"
    rid = run_id("restore", "c1a2b3c4d5", "p2")
    assert rid == "res-c1a2b3c4-p2" and len(f"/dags/restore_metadata/dagRuns/{rid}") <= 64


def test_csv_records_count_multiline_values_once_and_the_backup_run() -> None:
    text = 'a|1|"two\nlines"\nbackup_metadata|2|x\nb|3|"q|uoted"\n'
    assert count_csv_records(text) == (3, 1)
    assert count_csv_records("") == (0, 0)


def test_variable_and_connection_csvs_are_counted_with_their_comma_dialect() -> None:
    """mwaa-dr writes variable.csv/connection.csv with csv's default dialect: a multi-line JSON value,
    a CRLF and a '|' inside values are one record each (counting them with '|' found 227 for 20)."""
    import csv as csv_module

    buffer = io.StringIO(newline="")
    writer = csv_module.writer(buffer)
    writer.writerow(["multi", '{\n  "a": "x|y",\n  "b": [1, 2]\n}', "described"])
    writer.writerow(["crlf", "one\r\ntwo", ""])
    writer.writerow(["plain", "v", None])
    text = buffer.getvalue()
    assert csv_delimiter("variable") == csv_delimiter("connection") == ","
    assert csv_delimiter("dag_run") == "|"
    assert count_csv_records(text, delimiter=",") == (3, 0)
    assert count_csv_records(text, delimiter="|") != (3, 0)  # the old count was wrong


def test_verify_counts_rules() -> None:
    backup = {"variable": 20, "dag_run": 301, "log": 50, "job": 5, "active_dag": 3}
    target = {"variable": 20, "dag_run": 300, "log": 75, "job": 9}
    checks = {c.table: c for c in verify_counts(backup, target, excluded_backup_rows={"dag_run": 1})}
    assert all(c.ok for c in checks.values()) and "active_dag" not in checks
    bad = {c.table: c.ok for c in verify_counts(backup, {**target, "variable": 19}, excluded_backup_rows={})}
    assert bad["variable"] is False and bad["dag_run"] is False


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
def test_mwaa_dr_is_imported_from_the_vendor_folder_only_when_not_installed(render) -> None:
    text = render().text
    bootstrap = text.index("sys.path.append(_VENDOR)")
    assert bootstrap < text.index("from mwaa_dr.v_2_9.dr_factory import DRFactory_2_9")
    assert '"vendor")' in text and "importlib.util.find_spec(m) is None" in text
    assert "sys.path.insert" not in text  # appended: an installed mwaa-dr and the user's imports win
    ast.parse(text)


def test_prepare_dag_needs_no_mwaa_dr() -> None:
    assert "mwaa_dr" not in render_prepare_dag("a", "p1").text.replace("mwaa_iac_dr", "")


def test_probe_dag_takes_its_target_from_the_run_conf() -> None:
    probe = render_probe_dag("DRFactory_2_10", "a")
    assert probe.dag_id == PROBE_DAG_ID and probe.relative_path == "mwaa_iac_dr/mwaa_iac_probe.py"
    assert probe.marker == "mwaa-iac probe DRFactory_2_10" and probe.marker in probe.text
    assert 'conf["bucket"]' in probe.text and "smart_open.open(uri" in probe.text
    conf = probe_conf("dr-bucket", "mwaa-dr/", "analytics", "1a2b3c4d")
    assert conf == {"bucket": "dr-bucket", "key": "mwaa-dr/analytics/probe/1a2b3c4d/probe.txt"}
    assert len(f"/dags/{PROBE_DAG_ID}/dagRuns/{run_id('probe', '1a2b3c4d', 'x')}") <= 64


def test_the_probe_is_not_left_out_of_copied_history_but_never_treated_as_a_user_dag() -> None:
    assert PROBE_DAG_ID not in DR_DAG_IDS  # its runs on the source are copied and counted
    assert PROBE_DAG_ID in MWAA_IAC_DAG_IDS  # never recorded, paused, drained or unpaused
