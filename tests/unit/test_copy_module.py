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
    "dag_run": ["src_id", "dag_id", "run_id", "log_template_id", "conf", "state"],
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
    assert "t.dag_id <> ALL(:own_dags)" in run.select  # the tool's runs never copied (a bound list)
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


# -- the delta (docs/design.md §7) ------------------------------------------------------------------


def test_a_dag_with_only_new_rows_is_copied_in_part_and_one_with_updates_or_deletions_whole() -> None:
    base = {"task_instance": {"new_only": 10, "updated": 10, "deleted": 10, "gone": 5, "quiet": 7}}
    hashes = {"task_instance": {g: f"{n}:h-{g}" for g, n in base["task_instance"].items()}}
    scans = {
        "task_instance": {
            "new_only": (13, 3, "10:h-new_only"),  # three new rows: 10 + 3, the old ones unchanged
            "updated": (12, 3, "9:other"),  # one row changed and two new: 12 != 10 + 3
            "deleted": (9, 0, "9:other"),  # a run deleted (airflow db clean)
            "quiet": (7, 0, "7:h-quiet"),
            "brand_new": (4, 4, None),  # a DAG that did not exist at the base
        }  # "gone": every row deleted since
    }
    whole, changed = copy.plan_delta(scans, base, hashes, executing=["was_running"])
    assert whole == {"updated", "deleted", "gone", "was_running"}
    assert changed == whole | {"new_only", "brand_new"}  # "quiet" is neither copied nor re-hashed


def test_a_delete_and_an_insert_in_the_same_dag_do_not_cancel_out() -> None:
    # One old row deleted and one new row added: the count is the base's, but new != 0.
    whole, _ = copy.plan_delta({"log": {"d": (10, 1, "9:x")}}, {"log": {"d": 10}}, {"log": {"d": "10:y"}}, [])
    assert whole == {"d"}


def test_a_row_that_looks_old_but_is_not_the_bases_makes_its_dag_whole_even_when_counts_balance() -> None:
    # A row written by a subtransaction that was running when the base was taken looks old (its xid
    # is in no snapshot's list); one base row deleted beside it: 10 = 10 + 0, only the hash tells.
    scans = {"task_instance": {"d": (10, 0, "10:not-the-base"), "e": (10, 0, "10:base-e")}}
    whole, changed = copy.plan_delta(
        scans,
        {"task_instance": {"d": 10, "e": 10}},
        {"task_instance": {"d": "10:base-d", "e": "10:base-e"}},
        [],
    )
    assert whole == changed == {"d"}


def test_a_base_that_did_not_hash_every_dag_cannot_be_a_delta_base() -> None:
    assert copy.base_hashes({"groups": {"a": "3:x"}}) == {"a": "3:x"}  # a full backup hashes every DAG
    assert copy.base_hashes({"delta": True, "counts": {"a": 3}, "groups": {}}) is None  # an older delta
    assert copy.base_hashes({"delta": True, "all_groups": True, "groups": {"a": "3:x"}}) == {"a": "3:x"}


def test_the_base_counts_come_from_a_full_or_a_delta_manifest() -> None:
    assert copy.base_counts({"groups": {"a": "3:abc", "": "2:def"}}) == {"a": 3, "": 2}
    assert copy.base_counts({"counts": {"a": 5}, "groups": {"a": "1:x"}}) == {"a": 5}


def test_the_delta_export_selects_new_rows_and_whole_dags_by_xmin_against_bound_parameters() -> None:
    specs = copy.build_specs(COLUMNS, ("backup_metadata",))
    sql = copy.delta_select(specs["task_instance"])
    assert "t.xmin AS mwaa_iac_xmin" in sql and "CAST(:base_snapshot AS txid_snapshot)" in sql
    assert "q.mwaa_iac_group = ANY(:whole)" in sql and ":now_xmax" in sql  # values are parameters
    assert sql.startswith('SELECT q."dag_id", q."run_id"')  # exactly the spec's columns, in order
    assert "%" not in sql  # mod(): nothing for the driver's parameter syntax to misread
    assert copy._valid_snapshot("100:120:105,110") and copy._valid_snapshot("7:7:")
    assert not copy._valid_snapshot("1:2:3'; DROP TABLE x; --") and not copy._valid_snapshot(None)


def test_a_delta_manifest_says_how_it_copied_and_an_old_one_is_full() -> None:
    manifest = {
        "format": dr.MANIFEST_FORMAT,
        "mode": "delta",
        "base": "p/r1/p1",
        "whole": ["etl"],
        "tables": {"dag_run": {"rows": 100, "copied": 4}, "variable": {"rows": 20}},
    }
    assert dr.manifest_copy(manifest) == {
        "mode": "delta",
        "base": "p/r1/p1",
        "whole": ["etl"],
        "copied": {"dag_run": 4, "variable": 20},
        "fallback": None,
    }
    old = {"format": dr.MANIFEST_FORMAT, "tables": {"dag_run": {"rows": 100}}}
    assert dr.manifest_copy(old)["mode"] == "full" and dr.manifest_copy(old)["copied"] == {"dag_run": 100}
    assert dr.restore_marker('{"backup": "p/r1/p1", "restored_at": "x"}') == "p/r1/p1"
    assert dr.restore_marker(None) is None and dr.restore_marker("not json") is None
    assert dr.restore_marker('{"backup": ""}') is None and dr.restore_marker("[1]") is None


def test_the_restore_marker_has_one_name_on_both_sides_and_is_never_copied() -> None:
    assert copy.RESTORE_MARKER == dr.RESTORE_MARKER_VARIABLE and copy.RESTORE_MARKER in copy.OWN_VARIABLES
