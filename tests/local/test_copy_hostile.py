"""The copy module on real Airflow 2.10.3 and PostgreSQL (no MWAA emulator): ids and text that SQL,
CSV and bind-parameter parsing can trip over, through backup -> restore -> verify, full and delta,
with identical fingerprints and identical rows; a delta whose path fails falls back to a full copy;
a database error of the restore is reduced to names and codes (no value of a row reaches a note or
the task's log)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mwaa_iac.local.fingerprint import compare, fingerprint
from tests.local.copy_stack import BUCKET, CopyStack, TaskRun

pytestmark = pytest.mark.local

VERSION = "2.10.3"  # task_instance_history and the dataset-alias tables exist from 2.10
ODD = [
    'quote\'d "double"',
    ":dag_id",
    "/api/v1/dags/:dag_id/dagRuns/:run_id",
    "100%_done %s %(x)s",
    "pipe|pipe",
    "back\\slash\\",
    "cr\rlf\n crlf\r\n",
    "tab\tx",
    "ctl\u0001\u001fx",
    "ünïcødé ✓ ‮rtl",
    "emoji 🚀🧪",
    "x" * 250,
]
SECRET = "AKIA-HUNTER2-do-not-print-7f3a"

SEED = r"""
import json, sys
from datetime import datetime, timedelta, timezone

opts = json.load(sys.stdin)
values, rnd, secret = opts["values"], opts["round"], opts["secret"]
from airflow.models import Connection, Variable
from airflow.models.dagrun import DagRun
from airflow.models.dataset import (DagScheduleDatasetReference, DatasetAliasModel, DatasetEvent,
                                    DatasetModel)
from airflow.models.log import Log
from airflow.models.pool import Pool
from airflow.models.taskfail import TaskFail
from airflow.models.taskinstance import TaskInstance
from airflow.models.taskinstancehistory import TaskInstanceHistory
from airflow.models.xcom import XCom
from airflow.settings import Session
from sqlalchemy import insert, select, text, update

base = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(hours=rnd)


def row(model, **values):
    cols = model.__table__.c
    return {k: v for k, v in values.items() if k in cols}


def add(session, model, **values):
    return session.execute(insert(model.__table__).values(**row(model, **values)))


with Session() as s:
    alias_ids, event_ids = {}, []
    for i, v in enumerate(values):
        run = v if rnd == 0 else v[:240] + f"~r{rnd}"
        when = base + timedelta(days=i)
        add(s, DagRun, dag_id=v, run_id=run, execution_date=when, run_type="manual", state="success",
            external_trigger=True, conf={"v": v}, start_date=when, end_date=when, queued_at=when,
            data_interval_start=when, data_interval_end=when, clear_number=0)
        run_pk = s.execute(select(DagRun.id).where(DagRun.dag_id == v, DagRun.run_id == run)).scalar()
        ti = dict(dag_id=v, task_id=v, run_id=run, map_index=-1, state="success", try_number=1, max_tries=1,
                  pool=v, pool_slots=1, queue="default", priority_weight=1, operator="PythonOperator",
                  custom_operator_name=v, hostname=(secret if i == 0 else v), unixname=v, start_date=when,
                  end_date=when, duration=1.5, rendered_map_index=v, task_display_name=v, executor_config={})
        add(s, TaskInstance, **ti)
        add(s, TaskInstanceHistory, **ti)
        add(s, TaskFail, dag_id=v, task_id=v, run_id=run, map_index=-1, start_date=when, end_date=when,
            duration=2)
        add(s, XCom, dag_run_id=run_pk, task_id=v, key=v, dag_id=v, run_id=run, map_index=-1,
            value=json.dumps(v).encode("utf-8"), timestamp=when)
        add(s, Log, dttm=when, dag_id=v, task_id=v, map_index=-1, event=v[:60], execution_date=when,
            run_id=run, owner=v, owner_display_name=v, extra=v, try_number=1)
        if rnd == 0:
            add(s, Pool, pool=v, slots=i, description=v, include_deferred=False)
            s.add(Variable(key=v, val=v, description=v))
            s.add(Connection(conn_id=f"odd{i}", conn_type="http", host=v, login=v, password=v,
                             extra=json.dumps({"v": v})))
        uri = f"s3://bucket/odd-{i}-{rnd}"
        add(s, DatasetModel, uri=uri, extra={"v": v}, created_at=when, updated_at=when, is_orphaned=False)
        dataset_id = s.execute(select(DatasetModel.id).where(DatasetModel.uri == uri)).scalar()
        name = f"{v[:200]}~{rnd}"
        add(s, DatasetAliasModel, name=name)
        alias_id = s.execute(select(DatasetAliasModel.id).where(DatasetAliasModel.name == name)).scalar()
        s.execute(text("INSERT INTO dataset_alias_dataset (alias_id, dataset_id) VALUES (:a, :d)"),
                  {"a": alias_id, "d": dataset_id})
        add(s, DatasetEvent, dataset_id=dataset_id, extra={"v": v}, source_task_id=v, source_dag_id=v,
            source_run_id=run, source_map_index=-1, timestamp=when)
        event_id = s.execute(select(DatasetEvent.id).where(DatasetEvent.dataset_id == dataset_id)).scalar()
        s.execute(text("INSERT INTO dataset_alias_dataset_event (alias_id, event_id) VALUES (:a, :e)"),
                  {"a": alias_id, "e": event_id})
        s.execute(text("INSERT INTO dagrun_dataset_event (dag_run_id, event_id) VALUES (:r, :e)"),
                  {"r": run_pk, "e": event_id})
    if rnd > 0:
        # An update (the DAG is then copied whole) and audit-log rows of no DAG and of a ':word' DAG id.
        ti = TaskInstance.__table__
        s.execute(update(ti).where(ti.c.dag_id == values[2], ti.c.run_id == values[2]).values(state="failed"))
        add(s, Log, dttm=base, dag_id=None, event="cli", extra="a :word and 100% odd\\", owner="x")
        add(s, Log, dttm=base, dag_id=":word", event="get", extra="/dags/:word", owner="y")
    s.commit()
print("seeded")
"""

# Every copied row, as text, with the surrogate ids the target assigns itself replaced by natural keys:
# compared between the two databases byte for byte (the fingerprint reads the tables through the ORM).
RAW = {
    "log": "SELECT md5(ROW(dttm, dag_id, task_id, map_index, event, execution_date, run_id, owner, "
    "owner_display_name, extra, try_number)::text) FROM log WHERE dag_id IS NULL OR dag_id NOT IN "
    "('backup_metadata', 'restore_metadata') ORDER BY 1",
    "task_instance": "SELECT md5(t::text) FROM task_instance t WHERE dag_id NOT LIKE '%_metadata' ORDER BY 1",
    "task_instance_history": "SELECT md5((t.task_id, t.dag_id, t.run_id, t.map_index, t.try_number, t.state, "
    "t.hostname, t.pool, t.custom_operator_name, t.rendered_map_index, t.task_display_name, t.start_date, "
    "t.executor_config)::text) FROM task_instance_history t ORDER BY 1",
    "dag_run": "SELECT md5((dag_id, run_id, execution_date, state, conf, run_type)::text) FROM dag_run "
    "WHERE dag_id NOT LIKE '%_metadata' ORDER BY 1",
    "xcom": "SELECT md5((dag_id, run_id, task_id, key, value, r.run_id)::text) FROM xcom x "
    "JOIN dag_run r USING (dag_id, run_id) WHERE x.dag_run_id = r.id ORDER BY 1",
    "dataset_alias": "SELECT md5(name) FROM dataset_alias ORDER BY 1",
    "dataset_alias_dataset": "SELECT md5((a.name, d.uri)::text) FROM dataset_alias_dataset t "
    "JOIN dataset_alias a ON a.id = t.alias_id JOIN dataset d ON d.id = t.dataset_id ORDER BY 1",
    "dataset_alias_dataset_event": "SELECT md5((a.name, e.id, e.source_dag_id)::text) "
    "FROM dataset_alias_dataset_event t JOIN dataset_alias a ON a.id = t.alias_id "
    "JOIN dataset_event e ON e.id = t.event_id ORDER BY 1",
    "dagrun_dataset_event": "SELECT md5((r.dag_id, r.run_id, t.event_id)::text) FROM dagrun_dataset_event t "
    "JOIN dag_run r ON r.id = t.dag_run_id ORDER BY 1",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CopyStack]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    aws = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    copy_stack = CopyStack(Path(tmp_path_factory.mktemp("copy")), VERSION, aws, s3)
    copy_stack.start()
    try:
        copy_stack.create("src")
        copy_stack.create("dst")
        yield copy_stack
    finally:
        copy_stack.stop()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=BUCKET, Key=item["Key"])
        s3.delete_bucket(Bucket=BUCKET)
        server.stop()


def _seed(stack: CopyStack, rnd: int) -> None:
    seeded = stack.python(
        "src", "-c", SEED, stdin=json.dumps({"values": ODD, "round": rnd, "secret": SECRET})
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]


def _same(stack: CopyStack) -> None:
    """Identical fingerprints (the ORM's view, values decrypted) and identical raw rows."""
    source, target = fingerprint(stack.state_dir, "src"), fingerprint(stack.state_dir, "dst")
    assert compare(source, target, ignore=["dag"]) == []  # dag rows: written by each side's parsing
    for table, sql in RAW.items():
        rows = stack.psql("src", sql)
        assert rows and rows == stack.psql("dst", sql), table


def test_hostile_ids_and_text_survive_a_full_then_a_delta_copy(stack: CopyStack) -> None:
    _seed(stack, 0)
    full = stack.backup("src", "p/full")
    assert full.outcome["ok"], full.outcome
    assert stack.manifest("p/full")["mode"] == "full"
    restored = stack.restore("dst", "p/full", vacuum=True)  # as pass 1's: a freeze comes later
    assert restored.outcome["ok"] and restored.note["ok"], restored.outcome
    _same(stack)
    # The full restore vacuumed what it rewrote (outside its transaction): nothing left for the
    # freeze's first read or autovacuum; where its time went is in the note.
    assert restored.note["vacuum"]["tables"] >= 5 and "failed" not in restored.note["vacuum"], restored.note
    vacuumed = stack.psql(
        "dst",
        "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'task_instance' "
        "AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL",
    )
    assert vacuumed == "1"
    assert set(restored.note["phases"]) == {"delete", "stage", "write", "verify", "commit"}

    _seed(stack, 1)  # new runs of every DAG, an updated task instance, ':word' log rows
    delta = stack.backup("src", "p/delta", since="p/full")
    assert delta.outcome["ok"], delta.outcome
    manifest = stack.manifest("p/delta")
    assert (manifest["mode"], manifest["fallback"]) == ("delta", None)
    assert ODD[2] in manifest["whole"] and ODD[0] not in manifest["whole"]  # updated vs only new rows
    assert (
        manifest["tables"]["task_instance_history"]["copied"]
        < manifest["tables"]["task_instance_history"]["rows"]
    )
    restored = stack.restore("dst", "p/delta")
    assert restored.outcome["ok"] and restored.note["mode"] == "delta", restored.outcome
    assert "vacuum" not in restored.note and restored.note["rehashed"] == {}  # nothing else wrote
    _same(stack)


def _assert_secret_free(run: TaskRun) -> None:
    for text in (run.stdout, run.stderr, run.outcome.get("note") or "", run.outcome.get("error") or ""):
        assert SECRET not in text and "Failing row" not in text and "CONTEXT" not in text


def test_a_restore_error_names_class_code_table_column_never_a_value(stack: CopyStack) -> None:
    """A NOT NULL the row violates (PostgreSQL's DETAIL quotes the whole row), then a type the value
    does not parse as (the message and COPY's CONTEXT quote the value): the note, the task's output
    and its traceback say the error class, SQLSTATE, table and column only."""
    stack.create("dst2")
    stack.psql("dst2", "ALTER TABLE task_instance ALTER COLUMN external_executor_id SET NOT NULL")
    run = stack.restore("dst2", "p/full")
    assert not run.outcome["ok"] and not run.note["ok"] and "delta_refused" not in run.note
    assert run.note["error"] == (
        "NotNullViolation, SQLSTATE 23502 (not_null_violation), "
        "table task_instance, column external_executor_id"
    )
    _assert_secret_free(run)
    stack.psql("dst2", "ALTER TABLE task_instance ALTER COLUMN external_executor_id DROP NOT NULL")
    stack.psql("dst2", "ALTER TABLE task_instance ALTER COLUMN hostname TYPE integer USING NULL")
    run = stack.restore("dst2", "p/full")
    assert not run.note["ok"] and run.note["error"].startswith("InvalidTextRepresentation, SQLSTATE 22P02")
    _assert_secret_free(run)
    assert stack.psql("dst2", "SELECT count(*) FROM task_instance") == "0"  # nothing committed


def test_an_unexpected_failure_of_the_delta_backup_takes_a_full_copy_in_the_same_run(
    stack: CopyStack,
) -> None:
    manifest = stack.manifest("p/full")
    manifest["tables"]["task_instance"]["groups"] = {"etl": "not-a-count:x"}
    stack.s3.put_object(Bucket=BUCKET, Key="p/odd-base/manifest.json", Body=json.dumps(manifest).encode())
    run = stack.backup("src", "p/after-odd-base", since="p/odd-base")
    assert run.outcome["ok"] and run.note["ok"], run.outcome
    written = stack.manifest("p/after-odd-base")
    assert written["mode"] == "full" and written["fallback"].startswith("the delta failed (ValueError")
    assert run.note["fallback"] == written["fallback"]


def test_an_unexpected_failure_of_a_delta_restore_is_refused_and_changes_nothing(stack: CopyStack) -> None:
    """The cutover takes a full copy when the target refuses the delta (delta_refused)."""
    delta = stack.backup("src", "p/delta2", since="p/delta")
    assert stack.manifest("p/delta2")["mode"] == "delta", delta.outcome
    before = stack.psql("dst", "SELECT count(*) FROM task_instance")
    stack.s3.put_object(Bucket=BUCKET, Key="p/delta2/task_instance.csv", Body=b"not|a|task|instance\n")
    run = stack.restore("dst", "p/delta2")
    assert not run.outcome["ok"] and run.note["delta_refused"] is True
    assert run.note["error"].startswith("delta refused: ") and "SQLSTATE" in run.note["error"]
    assert stack.psql("dst", "SELECT count(*) FROM task_instance") == before
    marker = stack.psql("dst", "SELECT val FROM variable WHERE key = 'mwaa_iac_restore'")
    assert json.loads(marker)["backup"] == "p/delta"


@contextlib.contextmanager
def open_transaction(stack: CopyStack, database: str, begin: str) -> Iterator[subprocess.Popen[str]]:
    """A psql session of ``database`` left idle inside a transaction that has an id (``begin`` runs
    first); write more SQL to its stdin. Killed if the test fails first."""
    args = [stack.cluster.tool("psql"), *stack.cluster._base_args(), "-d", database, "-X", "-q"]
    session = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert session.stdin is not None
        session.stdin.write(f"BEGIN; SELECT txid_current(); {begin}\n")
        session.stdin.flush()
        waiting = (
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' "
            "AND state = 'idle in transaction' AND backend_xid IS NOT NULL"
        )
        deadline = time.monotonic() + 30
        while stack.psql(database, waiting) != "1":
            assert time.monotonic() < deadline, "the open transaction did not start"
            time.sleep(0.2)
        yield session
    finally:
        if session.poll() is None:
            session.kill()


def _finish(session: subprocess.Popen[str], sql: str) -> None:
    assert session.stdin is not None
    session.stdin.write(f"{sql}\n")
    session.stdin.close()
    session.wait(timeout=30)


def test_a_row_a_subtransaction_wrote_during_the_base_backup_is_caught_by_the_hash(stack: CopyStack) -> None:
    """A row written in a subtransaction that was open while the base was taken looks older than the
    base (its xid is in no snapshot's list); with one base row of the same DAG deleted, the DAG's
    count balances: only the per-DAG hash of the rows that look old tells, and the DAG is copied
    whole."""
    insert = "INSERT INTO log (dttm, dag_id, event) VALUES (now(), 'sub_dag', 'e')"
    stack.psql("src", f"{insert}; {insert}")
    with open_transaction(stack, "src", f"SAVEPOINT s; {insert}; RELEASE SAVEPOINT s;") as session:
        base = stack.backup("src", "p/sub-base")
        assert base.outcome["ok"], base.outcome
        _finish(session, "COMMIT;")
    snapshot = stack.manifest("p/sub-base")["snapshot"]
    looks_old = (
        f"SELECT txid_visible_in_snapshot(xmin::text::bigint, '{snapshot}') FROM log "
        "WHERE dag_id = 'sub_dag' ORDER BY id DESC LIMIT 1"
    )
    assert stack.psql("src", looks_old) == "t"  # the subtransaction's row: not in the base, looks older
    stack.psql("src", "DELETE FROM log WHERE id = (SELECT min(id) FROM log WHERE dag_id = 'sub_dag')")
    assert stack.psql("src", "SELECT count(*) FROM log WHERE dag_id = 'sub_dag'") == "2"  # as in the base
    delta = stack.backup("src", "p/sub-delta", since="p/sub-base")
    manifest = stack.manifest("p/sub-delta")
    assert manifest["mode"] == "delta", delta.outcome
    assert "sub_dag" in manifest["whole"]


def test_the_delta_restore_catches_a_row_the_target_changed_and_checks_only_what_was_written(
    stack: CopyStack,
) -> None:
    """The delta restore verifies in proportion to what changed: every DAG's count, the rows it wrote,
    and every row of a DAG that something else wrote to on the target since the previous restore. A
    row changed there is caught (and nothing is committed); written back with the same values (a new
    xmin, the same content), the DAG is hashed and passes. A resumed restore only verifies."""
    first = "SELECT dag_id, run_id, task_id, map_index FROM task_instance ORDER BY 1, 2, 3, 4 LIMIT 1"
    stack.psql(
        "dst",
        "CREATE TABLE drift_keep AS SELECT t.* FROM task_instance t "
        f"WHERE (dag_id, run_id, task_id, map_index) = ({first})",
    )
    key = "(t.dag_id, t.run_id, t.task_id, t.map_index) = (k.dag_id, k.run_id, k.task_id, k.map_index)"
    stack.psql(
        "dst", f"UPDATE task_instance t SET hostname = 'changed-on-the-target' FROM drift_keep k WHERE {key}"
    )
    backup = stack.backup("src", "p/drift", since="p/delta")
    manifest = stack.manifest("p/drift")
    assert manifest["mode"] == "delta", backup.outcome
    assert stack.psql("dst", "SELECT dag_id FROM drift_keep") not in manifest["whole"]
    refused = stack.restore("dst", "p/drift")
    assert not refused.outcome["ok"] and refused.note["delta_refused"] is True
    error = refused.note["error"]
    assert "task_instance [" in error and "rows (content hash differs)" in error
    assert "the restore wrote" not in error  # caught as a DAG written since, by its hash
    marker = stack.psql("dst", "SELECT val FROM variable WHERE key = 'mwaa_iac_restore'")
    assert json.loads(marker)["backup"] == "p/delta"  # nothing committed

    stack.psql("dst", f"UPDATE task_instance t SET hostname = k.hostname FROM drift_keep k WHERE {key}")
    stack.psql("dst", "DROP TABLE drift_keep")
    restored = stack.restore("dst", "p/drift")
    assert restored.outcome["ok"] and restored.note["mode"] == "delta", restored.outcome
    assert restored.note["rehashed"] == {"task_instance": 1}  # the DAG written to, hashed whole
    _same(stack)
    again = stack.restore("dst", "p/drift")  # a resumed cutover runs the same restore again
    assert again.outcome["ok"] and again.note.get("already") is True, again.outcome


def test_a_row_a_transaction_open_across_a_restore_wrote_after_it_is_caught_by_the_next(
    stack: CopyStack,
) -> None:
    """A transaction on the target that got its id before a restore and writes after it (a UI clear
    that started earlier) has an id below that restore's: "written since" is "not seen by the previous
    restore" (its snapshot, in the marker), not "a higher transaction id"."""
    first = "SELECT dag_id, run_id, task_id, map_index FROM task_instance ORDER BY 1, 2, 3, 4 LIMIT 1"
    stack.psql(
        "dst",
        "CREATE TABLE late_keep AS SELECT t.* FROM task_instance t "
        f"WHERE (dag_id, run_id, task_id, map_index) = ({first})",
    )
    key = "(t.dag_id, t.run_id, t.task_id, t.map_index) = (k.dag_id, k.run_id, k.task_id, k.map_index)"
    with open_transaction(stack, "dst", "") as session:
        stack.backup("src", "p/late1", since="p/drift")
        restored = stack.restore("dst", "p/late1")  # the open transaction is in its snapshot's list
        assert restored.outcome["ok"] and restored.note["mode"] == "delta", restored.outcome
        _finish(
            session,
            f"UPDATE task_instance t SET hostname = 'written-late' FROM late_keep k WHERE {key}; COMMIT;",
        )
    assert stack.psql("dst", "SELECT count(*) FROM task_instance WHERE hostname = 'written-late'") == "1"
    stack.backup("src", "p/late2", since="p/late1")
    refused = stack.restore("dst", "p/late2")
    assert not refused.outcome["ok"] and refused.note["delta_refused"] is True
    assert "task_instance [" in refused.note["error"] and "content hash differs" in refused.note["error"]
    stack.psql("dst", f"UPDATE task_instance t SET hostname = k.hostname FROM late_keep k WHERE {key}")
    stack.psql("dst", "DROP TABLE late_keep")
    restored = stack.restore("dst", "p/late2")
    assert restored.outcome["ok"] and restored.note["mode"] == "delta", restored.outcome
    _same(stack)

    # A task instance still running in the backup (a forced drain) is reset on the target after the
    # verification; the same restore run again (a resumed cutover) verifies and accepts it.
    running = (
        f"UPDATE task_instance SET state = 'running' WHERE (dag_id, run_id, task_id, map_index) = ({first})"
    )
    stack.psql("src", running)
    stack.backup("src", "p/late3", since="p/late2")
    restored = stack.restore("dst", "p/late3")
    assert restored.outcome["ok"] and len(restored.note["reset"]) == 1, restored.outcome
    again = stack.restore("dst", "p/late3")
    assert again.outcome["ok"] and again.note.get("already") is True, again.outcome


NEW_DAG = r"""
import pathlib, sys, tempfile

from airflow.models import DagBag

# As the DAG processor writes a DAG it sees for the first time (its file says: unpaused).
folder = pathlib.Path(tempfile.mkdtemp())
(folder / f"{sys.argv[1]}.py").write_text(
    "from datetime import datetime\n"
    "from airflow import DAG\n"
    f"dag = DAG({sys.argv[1]!r}, schedule='@daily', start_date=datetime(2024, 1, 1), "
    "is_paused_upon_creation=False)\n"
)
bag = DagBag(str(folder), include_examples=False)
assert not bag.import_errors, bag.import_errors
bag.sync_to_db()
"""


def _new_dag_paused(stack: CopyStack, name: str, dag_id: str) -> str:
    made = stack.python(name, "-c", NEW_DAG, dag_id)
    assert made.returncode == 0, made.stderr[-3000:]
    paused = stack.psql(name, f"SELECT is_paused FROM dag WHERE dag_id = '{dag_id}'").strip()
    assert paused, (made.stdout[-2000:], made.stderr[-3000:])
    return paused


def test_the_hold_pauses_a_dag_created_unpaused_while_its_variable_is_set(stack: CopyStack) -> None:
    """The restore installs the hold trigger and sets mwaa_iac_hold on the target (not live): a DAG
    that appears there is paused whatever its file says; without the variable (the source, or the
    target after go-live) the DAG's own setting applies."""
    hold = "SELECT count(*) FROM variable WHERE key = 'mwaa_iac_hold'"
    assert stack.psql("dst", hold).strip() == "1" and stack.psql("src", hold).strip() == "0"
    for name in ("src", "dst"):  # the backup installed it on the source, the restore on the target
        trigger = "SELECT count(*) FROM pg_trigger WHERE tgname = 'mwaa_iac_hold_new_dags'"
        assert stack.psql(name, trigger).strip() == "1", name
    assert _new_dag_paused(stack, "dst", "appears_held") == "t"
    assert _new_dag_paused(stack, "src", "appears_free") == "f"
    stack.psql("dst", "DELETE FROM variable WHERE key = 'mwaa_iac_hold'")  # go-live moved it away
    assert _new_dag_paused(stack, "dst", "appears_after_go_live") == "f"
