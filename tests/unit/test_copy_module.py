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
    scans = {
        "task_instance": {
            "new_only": (13, 3, 0),  # three new rows: 10 + 3, none in the base's window
            "updated": (12, 3, 0),  # one row changed (a new xmin) and two new: 12 != 10 + 3
            "deleted": (9, 0, 0),  # a run deleted (airflow db clean)
            "quiet": (7, 0, 0),
            "brand_new": (4, 4, 0),  # a DAG that did not exist at the base
        }  # "gone": every row deleted since
    }
    whole, check = copy.plan_delta(scans, base, executing=["was_running"])
    assert whole == {"updated", "deleted", "gone", "was_running"}
    assert check == {}  # "quiet" and "new_only" are neither copied whole nor hashed


def test_a_delete_and_an_insert_in_the_same_dag_do_not_cancel_out() -> None:
    # One old row deleted and one new row added: the count is the base's, but new != 0.
    whole, _ = copy.plan_delta({"log": {"d": (10, 1, 0)}}, {"log": {"d": 10}}, [])
    assert whole == {"d"}


def test_a_dag_with_rows_written_inside_the_base_window_is_hashed_even_when_counts_balance() -> None:
    # A row written by a subtransaction that was running when the base was taken looks old (its xid
    # is in no snapshot's list) but lies in the base snapshot's window; one base row deleted beside it
    # balances the count: only the hash of the rows that look old tells. DAG "e" has no row there.
    scans = {"task_instance": {"d": (10, 0, 1), "e": (10, 0, 0)}, "xcom": {"d": (3, 1, 2)}}
    whole, check = copy.plan_delta(scans, {"task_instance": {"d": 10, "e": 10}, "xcom": {"d": 1}}, [])
    assert whole == {"d"}
    assert check == {}  # "d" is whole already (its xcom counts do not add up): nothing left to hash
    whole, check = copy.plan_delta(
        {"task_instance": {"d": (10, 0, 1), "e": (10, 0, 0)}}, {"task_instance": {"d": 10, "e": 10}}, []
    )
    assert whole == set() and check == {"task_instance": {"d"}}


def test_digests_add_up_and_name_their_row_count() -> None:
    assert copy.add_digests("3:10:20", "2:1:2") == "5:11:22"
    assert copy.add_digests(None, "2:1:2") == "2:1:2"
    assert copy.add_digests("7:5:6", None) == "7:5:6"
    assert copy.base_counts({"groups": {"a": copy.add_digests("3:10:20", "2:1:2")}}) == {"a": 5}


def test_the_base_counts_come_from_a_full_or_a_delta_manifest() -> None:
    assert copy.base_counts({"groups": {"a": "3:abc", "": "2:def"}}) == {"a": 3, "": 2}
    assert copy.base_counts({"counts": {"a": 5}, "groups": {"a": "1:x"}}) == {"a": 5}


def test_the_delta_export_selects_whole_dags_by_index_and_new_rows_by_ctid_against_bound_parameters() -> None:
    specs = copy.build_specs(COLUMNS, ("backup_metadata",))
    sql = copy.delta_select(specs["task_instance"])
    assert "WHERE (t.dag_id <> ALL(:own_dags)) AND (t.dag_id = ANY(:groups))" in sql  # ti_dag_state serves it
    assert "AND (t.ctid = ANY(CAST(:ctids AS tid[])))" in sql  # the new rows: a TID scan
    assert "q.mwaa_iac_group <> ALL(:groups)" in sql  # a DAG copied whole is not exported twice
    assert sql.startswith('SELECT q."dag_id", q."run_id"')  # exactly the spec's columns, in order
    log = copy.delta_select(
        copy.build_specs({"log": ["dag_id", "event"]})["log"]
    )  # rows of no DAG are the group '': still through idx_log_dag
    assert "(t.dag_id = ANY(:groups) OR (t.dag_id IS NULL AND '' = ANY(:groups)))" in log
    for statement in (sql, log, copy._new_since(), copy._writer()):
        assert "%" not in statement  # mod(): nothing for the driver's parameter syntax to misread
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


def test_the_tool_reads_the_manifest_format_the_copy_module_writes() -> None:
    assert dr.MANIFEST_FORMAT == copy.FORMAT


def _stubbed_s3(monkeypatch):
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )  # fmt: skip
    monkeypatch.setattr(copy, "_shared_s3_client", lambda: client)
    return Stubber(client)


class _Holds:
    """Equal to a request body (bytes, or the buffer smart_open reuses) that holds ``data``, read when
    the stubbed request is made."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, bytes):
            return other == self.data
        at = other.tell()  # type: ignore[attr-defined]
        other.seek(0)  # type: ignore[attr-defined]
        held = other.read()  # type: ignore[attr-defined]
        other.seek(at)  # type: ignore[attr-defined]
        return bool(held == self.data)

    __hash__ = None  # type: ignore[assignment]


def test_an_object_is_one_put_below_the_threshold_and_a_multipart_upload_past_it(monkeypatch) -> None:
    """In the freeze a delta backup writes ~30 small objects: one PutObject each on the task's one
    client (a multipart upload is three requests; a client per object costs more than the request).
    An object past the threshold (a full backup's large table) streams as a multipart upload."""
    from botocore.stub import ANY

    stub = _stubbed_s3(monkeypatch)
    monkeypatch.setattr(copy, "SINGLE_PUT_BYTES", 64)
    whole = b"x|y|z|\r|\n" * 20  # every byte written, the first 64 (buffered before the switch) too
    stub.add_response("put_object", {}, {"Bucket": "b", "Key": "p/log.csv", "Body": b"a|b\r\n" * 3})
    upload = {"Bucket": "b", "Key": "p/full.csv"}
    stub.add_response("create_multipart_upload", {"UploadId": "u1"}, upload)
    stub.add_response(
        "upload_part", {"ETag": '"e1"'}, {**upload, "UploadId": "u1", "PartNumber": 1, "Body": _Holds(whole)}
    )
    stub.add_response("complete_multipart_upload", {}, {**upload, "UploadId": "u1", "MultipartUpload": ANY})
    with stub:
        with copy._open("s3://b/p/log.csv", "wb") as out:
            out.write(b"a|b\r\n" * 3)
        with copy._open("s3://b/p/full.csv", "wb") as out:
            for _ in range(10):
                out.write(b"x|y|z|\r|\n" * 2)
        stub.assert_no_pending_responses()


def test_an_object_whose_writing_fails_is_not_written(monkeypatch) -> None:
    """A backup that fails half-way leaves no object behind (below the threshold nothing was sent;
    past it the multipart upload is aborted)."""
    stub = _stubbed_s3(monkeypatch)
    monkeypatch.setattr(copy, "SINGLE_PUT_BYTES", 8)
    upload = {"Bucket": "b", "Key": "p/big.csv"}
    stub.add_response("create_multipart_upload", {"UploadId": "u2"}, upload)
    stub.add_response("abort_multipart_upload", {}, {**upload, "UploadId": "u2"})
    with stub:
        for key, size in (("p/small.csv", 4), ("p/big.csv", 16)):
            try:
                with copy._open(f"s3://b/{key}", "wb") as out:
                    out.write(b"x" * size)
                    raise RuntimeError("the export failed")
            except RuntimeError:
                pass
        stub.assert_no_pending_responses()
