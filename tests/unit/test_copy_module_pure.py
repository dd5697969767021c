"""The copy module's pure parts, with nothing but the standard library and the module's own file:
these tests also run on the oldest Python a source environment runs (MWAA: Airflow 2.4.3-2.6.3 on
Python 3.10; tests/unit/test_copy_module_oldest_python.py runs them there). No pytest, no mwaa_iac.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
COPY_FILE = ROOT / "mwaa_iac" / "dr_runtime" / "mwaa_iac_copy.py"
_spec = importlib.util.spec_from_file_location("mwaa_iac_copy_pure", COPY_FILE)
copy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(copy)

ODD_DAGS = (":dag_id", "o'brien", "100%_x", "a|b", "back\\slash")
COLUMNS = {
    "slot_pool": ["pool", "slots"],
    "log": ["dttm", "dag_id", "event", "extra"],
    "log_template": ["id", "filename", "elasticsearch_id"],
    "dataset": ["uri", "extra"],
    "dataset_alias": ["name"],
    "dataset_alias_dataset": ["alias_name", "dataset_uri"],
    "dag_run": ["src_id", "dag_id", "run_id", "log_template_id", "conf", "state"],
    "task_instance": ["dag_id", "run_id", "task_id", "map_index", "state"],
    "task_instance_history": ["dag_id", "run_id", "task_id", "map_index", "try_number", "state"],
    "task_fail": ["dag_id", "run_id", "task_id", "map_index"],
    "xcom": ["dag_run_id", "dag_id", "run_id", "task_id", "map_index", "key", "value"],
    "dataset_event": ["dataset_uri", "id", "extra", "timestamp"],
    "dataset_alias_dataset_event": ["alias_name", "event_id"],
    "dagrun_dataset_event": ["dag_id", "run_id", "event_id"],
    "dataset_dag_run_queue": ["dataset_uri", "target_dag_id", "created_at"],
    "dag_schedule": ["dag_id", "next_dagrun"],
}


def test_every_table_has_one_fate_and_every_table_left_out_says_why() -> None:
    names = [t.name for t in copy.TABLES]
    assert len(names) == len(set(names))
    for table in copy.TABLES:
        assert table.fate in (copy.COPIED, copy.REBUILT, copy.NOT_COPIED), table.name
        assert table.fate == copy.COPIED or len(table.why) > 20, table.name
        assert table.fate != copy.COPIED or table.source in ("factory", "live", "keyed", "orm"), table.name


def test_the_copy_modules_lists_derive_from_the_registry() -> None:
    assert "task_instance_history" in copy.DELTA_TABLES and "task_instance_history" in copy.HISTORY
    assert set(copy.DELTA_TABLES) <= {t.name for t in copy.TABLES if t.fate == copy.COPIED}
    assert copy.ORM_TABLES == ("variable", "connection", "trigger")
    order = list(copy.RESTORE_ORDER)
    for parent, child in [
        ("dataset", "dataset_alias_dataset"),
        ("dataset_alias", "dataset_alias_dataset"),
        ("dag_run", "task_instance"),
        ("trigger", "task_instance"),
        ("task_instance", "task_instance_history"),
        ("dataset_event", "dataset_alias_dataset_event"),
        ("dataset_event", "dagrun_dataset_event"),
    ]:
        assert order.index(parent) < order.index(child), (parent, child)
    cleared = list(copy.HISTORY)  # children first
    for child, parent in [
        ("task_instance_history", "task_instance"),
        ("dagrun_dataset_event", "dag_run"),
        ("xcom", "task_instance"),
    ]:
        assert cleared.index(child) < cleared.index(parent), (child, parent)


def test_no_dag_id_or_group_ever_reaches_sql_text() -> None:
    specs = copy.build_specs(COLUMNS, ODD_DAGS)
    statements = [s.select for s in specs.values()] + [copy.delta_select(specs["log"]), copy._new_since()]
    statements += [copy._insert_sql(name, spec.columns) or "" for name, spec in specs.items()]
    for sql in statements:
        for odd in ODD_DAGS:
            assert odd not in sql
        assert "%" not in sql  # nothing a driver's parameter syntax could misread
    assert all(":own_dags" in specs[n].select for n in ("log", "dag_run", "task_instance", "xcom"))
    source = COPY_FILE.read_text("utf-8")
    assert "_literal(" not in source and "_in_groups(" not in source


def test_the_new_tables_are_re_linked_by_names_on_the_target() -> None:
    specs = copy.build_specs(COLUMNS)
    links = copy._insert_sql("dataset_alias_dataset", specs["dataset_alias_dataset"].columns)
    assert "JOIN dataset_alias a ON a.name = s.alias_name" in links and "d.uri = s.dataset_uri" in links
    events = copy._insert_sql("dataset_alias_dataset_event", specs["dataset_alias_dataset_event"].columns)
    assert 'a.id, s."event_id"' in events
    history = copy._insert_sql("task_instance_history", specs["task_instance_history"].columns)
    assert history.startswith("INSERT INTO task_instance_history") and '"id"' not in history
    assert specs["task_instance_history"].group == "t.dag_id" and not specs["dataset_alias"].verify


class _Diag:
    table_name = "task_instance"
    column_name = "hostname"
    constraint_name = None
    message_detail = "Failing row contains (etl, AKIA-SECRET)."
    context = 'COPY mwaa_iac_stage_task_instance, line 1, column hostname: "AKIA-SECRET"'


class NotNullViolation(Exception):
    pgcode = "23502"
    diag = _Diag()


class IntegrityError(Exception):
    """As SQLAlchemy's wrapper: its text holds the statement and the parameters."""

    statement = "INSERT INTO task_instance ..."

    def __init__(self, orig: Exception) -> None:
        super().__init__(f"{orig}\n[SQL: INSERT ...]\n[parameters: {{'hostname': 'AKIA-SECRET'}}]")
        self.orig = orig


IntegrityError.__module__ = "sqlalchemy.exc"


def test_a_database_error_is_described_without_its_message_detail_context_or_parameters() -> None:
    orig = NotNullViolation('null value in column "x"\nDETAIL: Failing row contains (etl, AKIA-SECRET).')
    for exc in (orig, IntegrityError(orig)):
        said = copy.describe_error(exc)
        assert "AKIA-SECRET" not in said and "Failing row" not in said
        assert said.startswith("NotNullViolation, SQLSTATE 23502")
        assert said.endswith("table task_instance, column hostname")
        reduced = copy._reduced(exc)
        assert isinstance(reduced, copy.CopyError) and "AKIA-SECRET" not in str(reduced)
    refused = copy.DeltaRefused("log [etl]: backup 3 rows, target 2 rows")
    assert copy.describe_error(refused) == str(refused) and copy._reduced(refused) is refused
    assert copy.describe_error(ValueError("the base is odd")) == "ValueError: the base is odd"


def test_the_copy_module_uses_no_python_newer_than_3_10() -> None:
    source = COPY_FILE.read_text("utf-8")
    for newer in (
        r"datetime\.UTC\b",
        r"\bimport tomllib\b",
        r"\bexcept\*",
        r"typing\.Self\b",
        r"\bTaskGroup\(",
    ):
        assert not re.search(newer, source), newer
    compile(source, str(COPY_FILE), "exec")


def test_the_restore_order_is_topological_over_the_registrys_parents() -> None:
    names = {t.name for t in copy.TABLES}
    for table in copy.TABLES:
        assert set(table.parents) <= names, table.name
        assert table.name not in table.parents, table.name
    position = {name: i for i, name in enumerate(copy.ORDER)}
    assert sorted(position) == sorted(names)
    for table in copy.TABLES:
        for parent in table.parents:
            assert position[parent] < position[table.name], (parent, table.name)
    restore = {name: i for i, name in enumerate(copy.RESTORE_ORDER)}
    emptied = {name: i for i, name in enumerate(copy.EMPTIED)}
    history = {name: i for i, name in enumerate(copy.HISTORY)}
    for table in copy.TABLES:
        for parent in table.parents:
            if table.name in restore and parent in restore:
                assert restore[parent] < restore[table.name], (parent, table.name)
            for children_first in (emptied, history):
                if table.name in children_first and parent in children_first:
                    assert children_first[table.name] < children_first[parent], (table.name, parent)


def test_topological_keeps_the_given_order_and_refuses_a_cycle() -> None:
    a = copy.Table("a", copy.COPIED, "", parents=("c",))
    b = copy.Table("b", copy.COPIED, "")
    c = copy.Table("c", copy.COPIED, "", parents=("elsewhere",))
    assert [t.name for t in copy.topological([a, b, c])] == ["b", "c", "a"]
    loop = copy.Table("c", copy.COPIED, "", parents=("a",))
    try:
        copy.topological([a, loop])
    except ValueError as exc:
        assert "cycle" in str(exc)
    else:
        raise AssertionError("a cycle was accepted")


def test_every_copied_table_says_how_it_is_read_written_and_named() -> None:
    for table in copy.TABLES:
        if table.fate != copy.COPIED:
            assert table.source is None or table.insert == copy.READ, table.name
            continue
        assert table.key, table.name  # a natural key: what names a row, never a surrogate id
        assert table.insert in (copy.APPEND, copy.MISSING, copy.IGNORE, copy.UPDATE, copy.MODELS), table.name
        assert table.replace in (copy.KEEP, copy.DAG_ROWS, copy.ALL_ROWS), table.name
        assert (table.source == copy.ORM) == (table.insert == copy.MODELS), table.name
        assert not table.delta or (table.group == "t.dag_id" or table.dagless), table.name
        assert not set(table.key) & table.dropped, table.name
    assert copy.copied_tables()[:3] == ("variable", "connection", "slot_pool")
    assert "dag_schedule" not in copy.copied_tables() and "dag" not in copy.RESTORE_ORDER


def test_a_table_added_to_the_registry_is_backed_up_cleared_and_restored_from_its_entry() -> None:
    added = copy.Table(
        "task_instance_history",
        copy.COPIED,
        "earlier tries",
        copy.LIVE,
        parents=("task_instance",),
        key=("dag_id", "run_id", "task_id", "map_index", "try_number"),
        dropped=("id",),
        where=copy.USER_DAGS,
        group="t.dag_id",
        delta=True,
        replace=copy.DAG_ROWS,
    )
    assert vars(added) == vars(copy.BY_NAME["task_instance_history"]) | {"why": "earlier tries"}
    spec = copy.build_specs(COLUMNS)["task_instance_history"]
    assert spec.select.startswith('SELECT t."dag_id", t."run_id"') and spec.select.endswith(
        "FROM task_instance_history t WHERE (t.dag_id <> ALL(:own_dags))"
    )
    assert spec.hashed == COLUMNS["task_instance_history"] and spec.group == "t.dag_id"
    assert "task_instance_history" in copy.DELTA_TABLES and "task_instance_history" in copy.HISTORY
    assert copy._insert_sql("task_instance_history", spec.columns) == (
        'INSERT INTO task_instance_history ("dag_id", "run_id", "task_id", "map_index", "try_number", '
        '"state") SELECT s."dag_id", s."run_id", s."task_id", s."map_index", s."try_number", s."state" '
        "FROM mwaa_iac_stage_task_instance_history s"
    )


class _Run:
    def __init__(self, conf):
        self.conf = conf


class _NoKey(Exception):
    def __init__(self):
        super().__init__("NoSuchKey")
        self.response = {"Error": {"Code": "NoSuchKey"}}


class _Bucket:
    """An S3 client's get_object/head_object over a dict; ``appear``: keys written at a poll."""

    def __init__(self, objects, appear=None):
        self.objects, self.appear, self.polls = dict(objects), dict(appear or {}), 0

    def get_object(self, Bucket, Key):
        self.polls += 1
        self.objects.update(self.appear.pop(self.polls, {}))
        if (Bucket, Key) not in self.objects:
            raise _NoKey()
        data = self.objects[(Bucket, Key)]
        return {"Body": type("Body", (), {"read": lambda self: data})()}

    def head_object(self, Bucket, Key):
        if (Bucket, Key) not in self.objects:
            raise _NoKey()


def _armed(conf, bucket, now=1000.0):
    clock = [now]
    original = copy._s3_client
    copy._s3_client = lambda: bucket
    try:
        context = {"dag_run": _Run(conf)}
        result = copy._armed(
            context, sleep=lambda s: clock.__setitem__(0, clock[0] + s), clock=lambda: clock[0]
        )
    finally:
        copy._s3_client = original
    return result, context


def test_an_armed_copier_goes_with_its_signals_prefix_and_a_restore_waits_for_that_manifest() -> None:
    conf = {"bucket": "b", "prefix": "p/armed", "go": "p-go/r.json", "deadline": 2000, "go_poll": 0.5}
    go = {("b", "p-go/r.json"): b'{"prefix": "p/p2", "since": "p/p1"}'}
    result, context = _armed(conf, _Bucket({}, appear={3: go}))
    assert result["prefix"] == "p/p2" and result["waited_s"] == 1.0  # two polls of 0.5 s before it
    assert copy._conf(context)["prefix"] == "p/p2" and copy._conf(context)["since"] == "p/p1"
    assert copy._location(type("F", (), {"path_prefix": "x"})(), context) == "s3://b/p/p2"
    # A restore also waits until the backup it is told of wrote its manifest.
    waiting = {**conf, "wait_for_manifest": True}
    bucket = _Bucket(go, appear={4: {("b", "p/p2/manifest.json"): b"{}"}})
    result, context = _armed(waiting, bucket)
    assert result["waited_s"] == 1.5 and copy._conf(context)["prefix"] == "p/p2"
    assert "since" not in copy._conf({"dag_run": _Run(conf)})  # an unarmed read: its own conf


def test_an_armed_copier_cancelled_or_past_its_deadline_does_nothing() -> None:
    conf = {"bucket": "b", "go": "p-go/r.json", "deadline": 1010, "go_poll": 1}
    result, context = _armed(conf, _Bucket({}))
    assert result == {"skipped": "expired", "waited_s": 11.0} and copy.ARMED not in context
    cancel = {("b", "p-go/r.json"): b'{"cancel": true}'}
    assert _armed(conf, _Bucket(cancel))[0] == {"skipped": "cancelled", "waited_s": 0.0}
    # A manifest that never comes: the restore gives up at its deadline too.
    waiting = {**conf, "wait_for_manifest": True}
    assert _armed(waiting, _Bucket({("b", "p-go/r.json"): b'{"prefix": "p/p2"}'}))[0]["skipped"] == "expired"
    assert _armed({"bucket": "b", "prefix": "p"}, _Bucket({}))[0] is None  # not armed: runs at once


def test_an_armed_backup_pauses_once_on_its_pause_signal_then_waits_for_its_go() -> None:
    conf = {"bucket": "b", "go": "p-go/r.json", "deadline": 2000, "go_poll": 0.5}
    pause = {("b", "p-go/r.json"): b'{"pause": {"key": "p-go/r.paused.json", "until": 1010}}'}
    go = {("b", "p-go/r.json"): b'{"prefix": "p/p2"}'}
    bucket = _Bucket(pause, appear={4: go})
    calls = []
    clock = [1000.0]
    original = copy._s3_client
    copy._s3_client = lambda: bucket
    try:
        context = {"dag_run": _Run(conf)}
        result = copy._armed(
            context,
            sleep=lambda s: clock.__setitem__(0, clock[0] + s),
            clock=lambda: clock[0],
            on_pause=lambda client, b, p: calls.append((b, p)) or {"ok": True, "count": 2},
        )
    finally:
        copy._s3_client = original
    assert calls == [("b", {"key": "p-go/r.paused.json", "until": 1010})]  # once, though read again
    assert result["prefix"] == "p/p2" and result["paused"] == {"ok": True, "count": 2}
    # A restore (no on_pause) ignores a pause signal and keeps waiting.
    assert _armed({**conf, "deadline": 1002}, _Bucket(pause))[0]["skipped"] == "expired"


def test_the_pause_selects_what_the_rest_listing_of_unpaused_dags_selects_and_logs_each() -> None:
    sql = copy.pause_select_sql({"dag_id", "is_paused", "is_active", "is_subdag", "fileloc"})
    assert "is_active" in sql and "NOT is_paused" in sql and "NOT is_subdag" in sql
    assert "dag_id <> ALL(:own_dags)" in sql and sql.endswith("FOR UPDATE")
    assert "is_subdag" not in copy.pause_select_sql({"dag_id", "is_paused", "is_active", "fileloc"})
    every = {"id", "dttm", "dag_id", "task_id", "event", "owner", "owner_display_name", "extra", "run_id"}
    log = copy.pause_log_sql(every)
    assert log.startswith("INSERT INTO log (dttm, dag_id, event, owner, owner_display_name, extra)")
    assert ":dag_id" in log and "now()" in log
    # an older Airflow's log without owner_display_name: the columns it has
    assert "owner_display_name" not in copy.pause_log_sql(every - {"owner_display_name"})
    assert copy.PAUSE_LOG_EVENT == "api.patch_dag"
    assert '"is_paused": true' in copy.PAUSE_LOG_EXTRA
    record = copy.pause_record("paused", [("a", "/dags/a.py"), ("b", None)], paused_at=5.0)
    assert record == {"state": "paused", "dags": ["a", "b"], "files": {"a": "/dags/a.py"}, "paused_at": 5.0}


DAG_COLUMNS = ["dag_id", "is_paused", "is_active", "is_subdag", "fileloc"]
LOG_COLUMNS = ["dttm", "dag_id", "event", "owner", "owner_display_name", "extra"]


class _PauseSession:
    """A session whose statements are recorded; ``rows``: what the selection returns."""

    def __init__(self, rows, fail_on=None):
        self.rows, self.fail_on, self.statements, self.committed, self.rolled_back = rows, fail_on, [], 0, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, statement, params=None):
        text = str(statement)
        self.statements.append((text, params))
        if self.fail_on and self.fail_on in text:
            raise RuntimeError("boom")
        if "information_schema" in text:
            table = params["table"]
            names = DAG_COLUMNS if table == "dag" else LOG_COLUMNS
            return type("R", (), {"fetchall": lambda self: [(n,) for n in names]})()
        if text.startswith("SELECT dag_id"):
            return iter(self.rows)
        return None

    def commit(self):
        self.committed += 1

    def rollback(self):
        self.rolled_back += 1


class _Puts:
    def __init__(self):
        self.objects = {}

    def put_object(self, Bucket, Key, Body):
        self.objects[(Bucket, Key)] = __import__("json").loads(Body)


def _pause(session, until=1010.0, now=1000.0):
    import sys
    import types

    airflow = types.ModuleType("airflow")
    settings = types.ModuleType("airflow.settings")
    settings.Session = lambda: session
    saved = {k: sys.modules.get(k) for k in ("airflow", "airflow.settings")}
    sys.modules.update({"airflow": airflow, "airflow.settings": settings})
    original = copy._run
    copy._run = lambda s, sql, params=None: s.execute(sql, params)
    puts = _Puts()
    try:
        result = copy.pause_dags(
            ("backup_metadata",), puts, "b", {"key": "k", "until": until}, clock=lambda: now
        )
    finally:
        copy._run = original
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return result, puts.objects[("b", "k")]


def test_the_pause_commits_once_and_says_what_it_paused_or_rolls_back() -> None:
    rows = [("etl", "/d/etl.py"), ("report", "/d/report.py")]
    session = _PauseSession(rows)
    result, answer = _pause(session)
    assert result["ok"] and result["count"] == 2 and session.committed == 1
    assert answer["state"] == "paused" and answer["dags"] == ["etl", "report"]
    update = [p for t, p in session.statements if t.startswith("UPDATE dag")]
    assert update == [{"ids": ["etl", "report"]}]  # exactly the selected DAGs
    (logs,) = [p for t, p in session.statements if t.startswith("INSERT INTO log")]
    assert [r["dag_id"] for r in logs] == ["etl", "report"] and logs[0]["owner"] == "mwaa-iac"
    # past its deadline: rolled back, nothing paused, and it says so
    session = _PauseSession(rows)
    result, answer = _pause(session, until=999.0)
    assert result == {"ok": False, "late": True} and session.committed == 0 and session.rolled_back == 1
    assert answer["state"] == "late" and answer["dags"] == []
    # a failing statement: rolled back; the selection is in the answer (the freeze records it)
    session = _PauseSession(rows, fail_on="INSERT INTO log")
    result, answer = _pause(session)
    assert not result["ok"] and session.committed == 0 and session.rolled_back == 1
    assert answer["state"] == "failed" and answer["dags"] == ["etl", "report"]


def test_an_armed_unpause_run_goes_on_its_unpause_signal() -> None:
    conf = {"bucket": "b", "go": "p-go/u.json", "deadline": 2000, "go_poll": 0.5, "mode": "unpause"}
    signal = b'{"unpause": {"key": "p-go/u.unpaused.json", "until": 1010, "dags": ["a"]}}'
    result, context = _armed(conf, _Bucket({}, appear={2: {("b", "p-go/u.json"): signal}}))
    assert result["waited_s"] == 0.5 and "prefix" not in result
    assert copy._conf(context)["unpause"]["dags"] == ["a"]
    # a backup (no unpause mode) does not take an unpause signal for its go
    backup = {k: v for k, v in conf.items() if k != "mode"}
    assert (
        _armed({**backup, "deadline": 1001}, _Bucket({("b", "p-go/u.json"): signal}))[0]["skipped"]
        == "expired"
    )


def _unpause(session, until=1010.0, now=1000.0):
    import sys
    import types

    airflow = types.ModuleType("airflow")
    settings = types.ModuleType("airflow.settings")
    settings.Session = lambda: session
    saved = {k: sys.modules.get(k) for k in ("airflow", "airflow.settings")}
    sys.modules.update({"airflow": airflow, "airflow.settings": settings})
    original = copy._run
    copy._run = lambda s, sql, params=None: s.execute(sql, params)
    puts = _Puts()
    try:
        unpause = {"key": "k", "until": until, "dags": ["etl", "gone", "report"]}
        result = copy.unpause_dags(("backup_metadata",), puts, "b", unpause, clock=lambda: now)
    finally:
        copy._run = original
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return result, puts.objects[("b", "k")]


def test_the_unpause_changes_only_the_named_dags_that_are_paused_in_one_commit() -> None:
    session = _PauseSession([("etl", True), ("report", False)])  # "gone" is not in `dag`
    result, answer = _unpause(session)
    assert result["ok"] and result["count"] == 1 and session.committed == 1
    assert answer["state"] == "unpaused" and answer["dags"] == ["etl"] and answer["already"] == ["report"]
    (select, params) = next((t, p) for t, p in session.statements if t.startswith("SELECT dag_id, is_paused"))
    assert "dag_id <> ALL(:own_dags)" in select and params["ids"] == ["etl", "gone", "report"]
    assert [p for t, p in session.statements if t.startswith("UPDATE dag")] == [{"ids": ["etl"]}]
    (logs,) = [p for t, p in session.statements if t.startswith("INSERT INTO log")]
    assert [r["dag_id"] for r in logs] == ["etl"] and '"is_paused": false' in logs[0]["extra"]
    session = _PauseSession([("etl", True)])
    result, answer = _unpause(session, until=999.0)  # too late: rolled back
    assert result == {"ok": False, "late": True} and session.committed == 0 and answer["state"] == "late"
