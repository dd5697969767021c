"""mwaa-iac's copy of Airflow metadata, on top of mwaa-dr's factory. Runs INSIDE an Airflow 2.x
environment: the generated DR DAG files import it from ``mwaa_iac_dr/vendor/`` (mwaa-iac uploads it
there with mwaa-dr). It is never imported by mwaa-iac itself (it imports Airflow).

mwaa-dr's factory says which tables a version has and their columns (mwaa-dr stays the source of
that knowledge); this module replaces mwaa-dr's per-table export and import, which lose data:

* mwaa-dr writes rows with Python's csv module: NULL and '' both become an empty field (NULL
  connection fields come back as '', '' task fields as NULL), JSON columns become Python reprs (a
  deferred task's ``next_kwargs`` breaks the restore), and its restore reads the file as text in
  batches of lines (CR becomes LF, a multi-line value split across batches breaks COPY) and skips a
  whole batch on a duplicate key. Here PostgreSQL's own ``COPY ... TO/FROM`` (CSV, ``|``) writes and
  reads the bytes: NULL vs '', CR, tabs, unicode, JSON and bytea survive byte for byte.
* mwaa-dr exports each table in its own transaction, with filters that leave running or up_for_retry
  task instances out while their XComs and failures are exported (broken foreign keys on restore).
  Here the backup reads every table in ONE repeatable-read snapshot and exports every task instance
  of every exported run: rows are consistent with each other.
* Variables, connections and triggers hold values encrypted with the environment's Fernet key: they
  are exported decrypted through Airflow's models (JSON lines: NULL stays null, CR stays CR) and
  written through the target's models (encrypted with the target's key). A deferred task instance
  keeps its trigger (same id): the target's triggerer runs it again.
* Tables mwaa-dr does not copy: task_map (mapped tasks' expansion), task_reschedule, dataset events,
  the dataset-triggered DAG queue and which events a run consumed, and each DAG's next scheduled
  interval (``dag.next_dagrun*``). ``job`` is not copied (process heartbeats of the source).
* The restore runs in ONE transaction on the target: it replaces the copied tables (the tool's own
  DAGs' rows stay), re-maps surrogate ids (dag_run ids, log templates, dataset ids), pauses every DAG
  (mwaa-iac unpauses the recorded ones at go-live), then compares per-table row counts and content
  hashes with the backup's manifest and commits only if they match: a failed restore changes nothing.
  Task instances still executing in the backup (a forced drain) are reset afterwards, so the target's
  scheduler runs them.

The backup writes ``manifest.json`` beside the files: per table its columns, row count and content
hash (per group: a DAG id, a variable key...), hashes of values only, never values, and the
snapshot it read (``txid_current_snapshot()``).

Delta (pass 2, docs/design.md §7): a backup whose conf names ``since`` (the backup the target holds)
exports, of the history tables grouped by DAG (DELTA_TABLES), only the rows written after that
backup's snapshot (``xmin`` not visible in it) — unless a DAG's rows cannot be accounted for that way
(a row updated or deleted since: its count is not the base's plus the new rows), then every row of
that DAG. The other tables are small and copied whole. The restore applies it on top of what the
target holds (checked with the marker variable the restores write), replaces those DAGs' rows, and
verifies every DAG's count and the changed DAGs' content hashes; it refuses (``delta_refused``) when
it cannot, and mwaa-iac then copies everything. A backup that cannot compute the delta safely
(another Airflow version, transaction ids that went backwards, no usable base) is a full one that
says why (``fallback``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time

FORMAT = 1
RESTORE_MARKER = "mwaa_iac_restore"  # on a target: which backup its copied tables hold, and since when
OWN_VARIABLES = ("mwaa_iac_fixup", RESTORE_MARKER)
EXECUTING = ("queued", "running", "restarting")
NOTE_LIMIT = 1000  # dag_run_note.content

# Tables whose factory columns come from mwaa-dr (restore order: parents first). log_template is read
# for re-mapping only; dataset rows are created by the target's own parsing (missing ones added).
FACTORY_TABLES = ("slot_pool", "log", "dag_run", "task_instance", "task_fail", "xcom")
OWN_TABLES = (
    "log_template",
    "task_map",
    "task_reschedule",
    "dataset",
    "dataset_event",
    "dagrun_dataset_event",
    "dataset_dag_run_queue",
    "dag_schedule",
)
ORM_TABLES = ("variable", "connection", "trigger")
# Dropped from the factory's column lists: surrogate ids the target assigns itself.
NOT_COPIED = {"task_fail": {"id"}, "log": {"id"}, "task_reschedule": {"id"}}
# The history tables a delta backup copies in part, each grouped by DAG id (log: '' for no DAG).
DELTA_TABLES = ("log", "dag_run", "task_instance", "task_fail", "task_map", "task_reschedule", "xcom")
XID_WRAP = 4294967296  # 2**32: xmin is a 32-bit transaction id, snapshots hold 64-bit ones


class DeltaRefused(RuntimeError):
    """The target cannot take this delta (it holds another backup, or the result would differ from
    the source): nothing was changed; mwaa-iac copies everything instead."""


def _q(name):
    return '"' + name.replace('"', '""') + '"'


class Spec:
    """One CSV table: the SELECT that gives its logical rows (the same on both sides: surrogate ids
    replaced by natural keys where the target re-maps them), the columns hashed, the grouping."""

    def __init__(self, name, select, columns, hashed, group="''", verify=True):
        self.name = name
        self.select = select
        self.columns = columns
        self.hashed = hashed
        self.group = group
        self.verify = verify


def _own(own_dags):
    return ", ".join("'" + d.replace("'", "''") + "'" for d in own_dags)


def build_specs(columns, own_dags):
    """The CSV tables' specs from ``{table: [column, ...]}`` (the backup's, from the manifest)."""
    own = _own(own_dags)
    specs = {}

    def cols(table, alias="t"):
        return ", ".join(f"{alias}.{_q(c)}" for c in columns[table])

    if "slot_pool" in columns:
        specs["slot_pool"] = Spec(
            "slot_pool",
            f"SELECT {cols('slot_pool')} FROM slot_pool t",
            columns["slot_pool"],
            columns["slot_pool"],
            group="t.pool",
        )
    if "log" in columns:
        specs["log"] = Spec(
            "log",
            f"SELECT {cols('log')} FROM log t WHERE t.dag_id IS NULL OR t.dag_id NOT IN ({own})",
            columns["log"],
            columns["log"],
            group="COALESCE(t.dag_id, '')",
        )
    if "log_template" in columns:
        specs["log_template"] = Spec(
            "log_template",
            f"SELECT {cols('log_template')} FROM log_template t",
            columns["log_template"],
            [],
            verify=False,
        )
    if "dag_run" in columns:
        run_cols = [c for c in columns["dag_run"] if c not in ("id", "src_id")]
        selected = ", ".join(f"t.{_q(c)}" for c in run_cols)
        specs["dag_run"] = Spec(
            "dag_run",
            f"SELECT t.id AS src_id, {selected} FROM dag_run t WHERE t.dag_id NOT IN ({own})",
            ["src_id", *run_cols],
            [c for c in run_cols if c != "log_template_id"],
            group="t.dag_id",
        )
    for table in ("task_instance", "task_fail", "task_map", "task_reschedule"):
        if table in columns:
            specs[table] = Spec(
                table,
                f"SELECT {cols(table)} FROM {table} t WHERE t.dag_id NOT IN ({own})",
                columns[table],
                columns[table],
                group="t.dag_id",
            )
    if "xcom" in columns:
        specs["xcom"] = Spec(
            "xcom",
            f"SELECT {cols('xcom')} FROM xcom t WHERE t.dag_id NOT IN ({own})",
            columns["xcom"],
            [c for c in columns["xcom"] if c != "dag_run_id"],
            group="t.dag_id",
        )
    if "dataset" in columns:
        specs["dataset"] = Spec(
            "dataset", f"SELECT {cols('dataset')} FROM dataset t", columns["dataset"], [], verify=False
        )
    if "dataset_event" in columns:
        event_cols = [c for c in columns["dataset_event"] if c != "dataset_uri"]
        specs["dataset_event"] = Spec(
            "dataset_event",
            f"SELECT d.uri AS dataset_uri, {', '.join('t.' + _q(c) for c in event_cols)} "
            "FROM dataset_event t JOIN dataset d ON d.id = t.dataset_id",
            columns["dataset_event"],
            columns["dataset_event"],
            group="d.uri",
        )
    if "dagrun_dataset_event" in columns:
        specs["dagrun_dataset_event"] = Spec(
            "dagrun_dataset_event",
            "SELECT r.dag_id, r.run_id, t.event_id FROM dagrun_dataset_event t "
            f"JOIN dag_run r ON r.id = t.dag_run_id WHERE r.dag_id NOT IN ({own})",
            ["dag_id", "run_id", "event_id"],
            ["dag_id", "run_id", "event_id"],
            group="r.dag_id",
        )
    if "dataset_dag_run_queue" in columns:
        specs["dataset_dag_run_queue"] = Spec(
            "dataset_dag_run_queue",
            "SELECT d.uri AS dataset_uri, t.target_dag_id, t.created_at FROM dataset_dag_run_queue t "
            "JOIN dataset d ON d.id = t.dataset_id",
            ["dataset_uri", "target_dag_id", "created_at"],
            ["dataset_uri", "target_dag_id", "created_at"],
            group="t.target_dag_id",
        )
    if "dag_schedule" in columns:
        specs["dag_schedule"] = Spec(
            "dag_schedule",
            f"SELECT {cols('dag_schedule')} FROM dag t WHERE t.dag_id NOT IN ({own})",
            columns["dag_schedule"],
            [],
            verify=False,
        )
    return specs


def source_columns(session, factory):
    """``{table: [column, ...]}`` to back up: mwaa-dr's factory columns for its tables, the live
    columns for the tables it does not copy (each only where the table and column exist)."""
    from sqlalchemy import inspect

    inspector = inspect(session.connection())
    existing = set(inspector.get_table_names())
    live = {}

    def live_columns(table):
        if table not in live:
            live[table] = [c["name"] for c in inspector.get_columns(table)] if table in existing else []
        return live[table]

    factory_tables = {t.name: t for t in factory.tables()}
    columns = {}
    for table in FACTORY_TABLES:
        present = live_columns(table)
        if not present:
            continue
        wanted = list(factory_tables[table].columns) if table in factory_tables else present
        wanted = [c for c in wanted if c in present and c not in NOT_COPIED.get(table, set())]
        if table == "dag_run":
            wanted = ["id", *[c for c in wanted if c != "id"]]
        columns[table] = wanted
    for table in ("task_map", "task_reschedule", "log_template", "dataset"):
        present = [c for c in live_columns(table) if c not in NOT_COPIED.get(table, set())]
        if table == "dataset":
            present = [c for c in present if c != "id"]
        if present:
            columns[table] = present
    if live_columns("dataset_event"):
        columns["dataset_event"] = [
            "dataset_uri",
            *[c for c in live_columns("dataset_event") if c != "dataset_id"],
        ]
    if live_columns("dagrun_dataset_event"):
        columns["dagrun_dataset_event"] = ["dag_id", "run_id", "event_id"]
    if live_columns("dataset_dag_run_queue"):
        columns["dataset_dag_run_queue"] = ["dataset_uri", "target_dag_id", "created_at"]
    schedule = [
        "dag_id",
        "next_dagrun",
        "next_dagrun_data_interval_start",
        "next_dagrun_data_interval_end",
        "next_dagrun_create_after",
    ]
    columns["dag_schedule"] = [c for c in schedule if c in live_columns("dag")]
    return columns


# -- hashing ----------------------------------------------------------------------------------------


def _literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def _in_groups(groups):
    """SQL condition: the row's group is one of ``groups`` (false for none)."""
    if not groups:
        return "false"
    return f"q.mwaa_iac_group IN ({', '.join(_literal(g) for g in sorted(groups))})"


def _grouped(spec, xmin=False):
    """``spec``'s SELECT with its group (and the row's xmin) as extra leading columns."""
    extra = f"{spec.group} AS mwaa_iac_group, " + ("t.xmin AS mwaa_iac_xmin, " if xmin else "")
    return spec.select.replace("SELECT ", f"SELECT {extra}", 1)


def table_hash(session, spec, only=None):
    """``{"rows": n, "sha256": ..., "groups": {group: md5}}`` of ``spec``'s rows in this snapshot
    (of the groups in ``only``, when given)."""
    from sqlalchemy import text

    hashed = ", ".join(f"q.{_q(c)}" for c in spec.hashed) or "1"
    where = "" if only is None else f" WHERE {_in_groups(only)}"
    sql = (
        f"SELECT g, count(*), md5(string_agg(h, '' ORDER BY h)) FROM ("
        f"SELECT q.mwaa_iac_group AS g, md5(ROW({hashed})::text) AS h FROM ({_grouped(spec)}) q{where}"
        f") z GROUP BY g"
    )
    groups = {}
    total = 0
    for group, count, digest in session.execute(text(sql)):
        groups[str(group)] = f"{count}:{digest}"
        total += count
    return _summary(total, groups)


def group_counts(session, spec):
    """``{group: rows}`` of ``spec``'s rows in this snapshot (every group)."""
    from sqlalchemy import text

    sql = f"SELECT q.mwaa_iac_group, count(*) FROM ({_grouped(spec)}) q GROUP BY 1"
    return {str(group): count for group, count in session.execute(text(sql))}


# -- delta ----------------------------------------------------------------------------------------


def current_snapshot(session):
    """This transaction's snapshot (``xmin:xmax:xip,...``) and its xmax (the next transaction id)."""
    from sqlalchemy import text

    snapshot = session.execute(text("SELECT txid_current_snapshot()::text")).scalar()
    return snapshot, int(snapshot.split(":")[1])


def _valid_snapshot(value):
    import re

    return isinstance(value, str) and re.fullmatch(r"\d+:\d+:[\d,]*", value) is not None


def _new_since(base_snapshot, now_xmax):
    """SQL condition: the row (``q.mwaa_iac_xmin``) was written after ``base_snapshot`` was taken.
    xmin is the low 32 bits of a transaction id: widened against this transaction's xmax (rows are
    never older than 2**31 transactions unless frozen; a frozen one misread as new only makes its DAG
    copied whole)."""
    low = f"({now_xmax} % {XID_WRAP})"
    widened = f"({now_xmax} - (({low} - q.mwaa_iac_xmin::text::bigint + {XID_WRAP}) % {XID_WRAP}))"
    return f"NOT txid_visible_in_snapshot({widened}, {_literal(base_snapshot)}::txid_snapshot)"


def delta_scan(session, spec, base_snapshot, now_xmax):
    """``{group: (rows now, rows new since the base)}`` in one pass over the table."""
    from sqlalchemy import text

    new = _new_since(base_snapshot, now_xmax)
    sql = (
        f"SELECT q.mwaa_iac_group, count(*), count(*) FILTER (WHERE {new}) "
        f"FROM ({_grouped(spec, xmin=True)}) q GROUP BY 1"
    )
    return {str(group): (total, changed) for group, total, changed in session.execute(text(sql))}


def base_counts(entry):
    """``{group: rows}`` a manifest's table entry recorded (a delta backup: ``counts``)."""
    if "counts" in entry:
        return {str(k): int(v) for k, v in entry["counts"].items()}
    return {str(k): int(str(v).split(":")[0]) for k, v in entry.get("groups", {}).items()}


def plan_delta(scans, base, executing):
    """Which DAGs (groups) to copy whole: those whose rows now are not the base's plus the new ones
    (a row was updated or deleted since the base), and those with task instances that were executing
    in the base (the restore reset them on the target). ``scans``: ``{table: {group: (now, new)}}``;
    ``base``: ``{table: {group: rows}}``. Returns (whole, changed): changed = whole + groups with
    new rows."""
    whole = set(executing)
    changed = set()
    for table, groups in scans.items():
        before = base.get(table, {})
        for group in set(groups) | set(before):
            now, new = groups.get(group, (0, 0))
            if now != before.get(group, 0) + new:
                whole.add(group)
            if new:
                changed.add(group)
    return whole, changed | whole


def delta_select(spec, base_snapshot, now_xmax, whole):
    """The rows a delta backup exports of ``spec``: new since the base, or of a DAG copied whole."""
    columns = ", ".join(f"q.{_q(c)}" for c in spec.columns)
    new = _new_since(base_snapshot, now_xmax)
    return f"SELECT {columns} FROM ({_grouped(spec, xmin=True)}) q WHERE {_in_groups(whole)} OR {new}"


def _summary(total, groups):
    body = "\n".join(f"{k}\t{v}" for k, v in sorted(groups.items()))
    return {"rows": total, "sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(), "groups": groups}


def _row_digest(values):
    text = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _orm_rows(session, table, own_dags):
    """Rows of an encrypted table as plain values (decrypted with this environment's key)."""
    from airflow.models import Connection, Variable

    if table == "variable":
        for var in session.query(Variable).order_by(Variable.key):
            if var.key not in OWN_VARIABLES:
                yield var.key, {"key": var.key, "val": var.get_val(), "description": var.description}
    elif table == "connection":
        fields = (
            "conn_id",
            "conn_type",
            "description",
            "host",
            "schema",
            "login",
            "password",
            "port",
            "extra",
        )
        for conn in session.query(Connection).order_by(Connection.conn_id):
            yield conn.conn_id, {f: getattr(conn, f) for f in fields}
    elif table == "trigger":
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import Trigger
        from airflow.serialization.serialized_objects import BaseSerialization

        used = (
            session.query(TaskInstance.trigger_id)
            .filter(TaskInstance.trigger_id.isnot(None), TaskInstance.dag_id.notin_(list(own_dags)))
            .distinct()
        )
        for trigger in session.query(Trigger).filter(Trigger.id.in_(used)).order_by(Trigger.id):
            yield (
                str(trigger.id),
                {
                    "id": trigger.id,
                    "classpath": trigger.classpath,
                    "kwargs": BaseSerialization.serialize(trigger.kwargs),
                    "created_date": trigger.created_date.isoformat() if trigger.created_date else None,
                },
            )


def orm_hash(session, table, own_dags):
    groups = {}
    for key, row in _orm_rows(session, table, own_dags):
        groups[key] = f"1:{_row_digest(row)}"
    return _summary(len(groups), groups)


# -- storage ------------------------------------------------------------------------------------------


def _open(uri, mode):
    import smart_open

    return smart_open.open(uri, mode)


def _location(factory, context):
    conf = context["dag_run"].conf or {}
    bucket = conf.get("bucket")
    if not bucket:
        raise ValueError("the run's conf names no bucket")
    prefix = str(conf.get("prefix") or factory.path_prefix).strip("/")
    return f"s3://{bucket}/{prefix}"


def _note(context, result):
    """The result in the run's note (read by mwaa-iac over the REST API)."""
    from airflow.models.dagrun import DagRun
    from airflow.settings import Session

    text = json.dumps(result, sort_keys=True, default=str)
    print(f"mwaa-iac: {text}")
    if len(text) > NOTE_LIMIT:
        short = {k: result[k] for k in ("ok", "error", "mode", "fallback", "delta_refused") if k in result}
        short["truncated"] = True
        text = json.dumps(short, sort_keys=True, default=str)[:NOTE_LIMIT]
    with Session() as session:
        run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == context["dag"].dag_id, DagRun.run_id == context["run_id"])
            .one()
        )
        run.note = text
        session.commit()


def _settings(session):
    from sqlalchemy import text

    for setting in (
        "TIME ZONE 'UTC'",
        "bytea_output = 'hex'",
        "extra_float_digits = 3",
        "DateStyle = 'ISO, YMD'",
    ):
        session.execute(text(f"SET LOCAL {setting}"))


def _raw_cursor(session):
    return session.connection().connection.cursor()


# -- backup -------------------------------------------------------------------------------------------


def _bucket_root(context):
    conf = context["dag_run"].conf or {}
    return f"s3://{conf.get('bucket')}"


def _plan_from_base(session, specs, own_dags, since_uri, now_xmax):
    """The delta against the backup at ``since_uri``: ``(plan, None)``, or ``(None, why not)`` when
    it cannot be computed safely (the backup is then a full one)."""
    import airflow

    try:
        previous = _read_manifest(since_uri)
    except Exception as exc:
        return None, f"the base backup is not usable ({exc})"
    snapshot = previous.get("snapshot")
    if not _valid_snapshot(snapshot):
        return None, "the base backup recorded no snapshot (an older mwaa-iac made it)"
    if previous.get("airflow_version") != airflow.__version__:
        return (
            None,
            f"the base backup is of Airflow {previous.get('airflow_version')}, this is {airflow.__version__}",
        )
    if sorted(previous.get("own_dags", [])) != sorted(own_dags):
        return None, "the base backup left out other DAGs"
    base_xmax = int(snapshot.split(":")[1])
    if now_xmax < base_xmax:
        return None, (
            f"transaction ids went backwards since the base backup ({base_xmax} then, {now_xmax} now): "
            "the database was restored or replaced"
        )
    scans, base = {}, {}
    for table in DELTA_TABLES:
        if table not in specs:
            continue
        entry = previous["tables"].get(table)
        if entry is None or entry.get("columns") != specs[table].columns:
            return None, f"the {table} table's columns differ from the base backup's"
        scans[table] = delta_scan(session, specs[table], snapshot, now_xmax)
        base[table] = base_counts(entry)
    whole, changed = plan_delta(scans, base, previous.get("executing", []))
    return {"snapshot": snapshot, "scans": scans, "whole": whole, "changed": changed}, None


def backup(factory, context, own_dags):
    """Export every copied table in one snapshot to ``s3://<bucket>/<prefix>/`` and write the
    manifest last (its presence means the backup is complete). With ``since`` in the run's conf,
    a delta against that backup where it can be computed safely."""
    import airflow
    from airflow.settings import Session
    from sqlalchemy import text

    started = time.monotonic()
    base = _location(factory, context)
    since = (context["dag_run"].conf or {}).get("since")
    with Session() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        _settings(session)
        snapshot, now_xmax = current_snapshot(session)
        columns = source_columns(session, factory)
        specs = build_specs(columns, own_dags)
        delta, fallback = None, None
        if since:
            since_uri = f"{_bucket_root(context)}/{str(since).strip('/')}"
            delta, fallback = _plan_from_base(session, specs, own_dags, since_uri, now_xmax)
            if fallback:
                print(f"mwaa-iac: full backup instead of a delta: {fallback}")
        tables = {}
        cursor = _raw_cursor(session)
        for name, spec in specs.items():
            begin = time.monotonic()
            partial = delta is not None and name in delta["scans"]
            select = (
                delta_select(spec, delta["snapshot"], now_xmax, delta["whole"]) if partial else spec.select
            )
            with _open(f"{base}/{name}.csv", "wb") as out:
                cursor.copy_expert(
                    f"COPY ({select}) TO STDOUT WITH (FORMAT csv, DELIMITER '|', HEADER false)", out
                )
            entry = {"columns": spec.columns, "file": f"{name}.csv"}
            if partial:
                scan = delta["scans"][name]
                hashed = table_hash(session, spec, only=delta["changed"])
                entry.update(
                    delta=True,
                    rows=sum(now for now, _ in scan.values()),
                    copied=sum(now if g in delta["whole"] else new for g, (now, new) in scan.items()),
                    counts={g: now for g, (now, _) in scan.items()},
                    groups=hashed["groups"],
                    sha256=hashed["sha256"],
                )
            elif spec.verify:
                entry.update(table_hash(session, spec))
            else:
                entry["rows"] = session.execute(text(f"SELECT count(*) FROM ({spec.select}) q")).scalar()
            entry.setdefault("copied", entry["rows"])
            tables[name] = entry
            print(
                f"mwaa-iac: exported {name}: {entry['copied']} of {entry['rows']} rows "
                f"in {time.monotonic() - begin:.1f} s"
            )
        for name in ORM_TABLES:
            groups = {}
            with _open(f"{base}/{name}.jsonl", "wb") as out:
                for key, row in _orm_rows(session, name, own_dags):
                    out.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
                    groups[key] = f"1:{_row_digest(row)}"
            tables[name] = {"file": f"{name}.jsonl", **_summary(len(groups), groups)}
            tables[name]["copied"] = tables[name]["rows"]
        executing = [
            row[0]
            for row in session.execute(
                text(
                    "SELECT DISTINCT dag_id FROM task_instance WHERE state IN ('queued', 'running', "
                    f"'restarting') AND dag_id NOT IN ({_own(own_dags)}) ORDER BY 1"
                )
            )
        ]
        session.rollback()
    manifest = {
        "format": FORMAT,
        "airflow_version": airflow.__version__,
        "factory": type(factory).__name__,
        "run_id": context["run_id"],
        "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "own_dags": list(own_dags),
        "snapshot": snapshot,
        "executing": executing,
        "mode": "delta" if delta is not None else "full",
        "base": str(since).strip("/") if delta is not None else None,
        "whole": sorted(delta["whole"]) if delta is not None else None,
        "fallback": fallback,
        "tables": tables,
    }
    with _open(f"{base}/manifest.json", "wb") as out:
        out.write(json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
    result = {
        "ok": True,
        "mode": manifest["mode"],
        "fallback": fallback,
        "manifest_rows": {name: entry["rows"] for name, entry in tables.items()},
        "seconds": round(time.monotonic() - started, 1),
    }
    _note(context, result)
    return result


# -- restore ------------------------------------------------------------------------------------------

# Rows the restore replaces, children before parents (tables a version lacks are skipped). The tool's
# own DAGs' rows stay (the restore's own run is one of them).
HISTORY = (
    "xcom",
    "task_map",
    "rendered_task_instance_fields",
    "task_fail",
    "task_reschedule",
    "task_instance_note",
    "task_instance_history",
    "task_instance",
    "dag_run_note",
    "sla_miss",
    "dag_run",
    "log",
)


def clear_history(session, own_dags, only=None):
    """Delete the history rows of every DAG but the tool's own (the pre-restore cleanup, and the
    restore's first step), or of the DAGs in ``only`` ('' for log rows of no DAG: a delta's DAGs
    copied whole). Returns the rows deleted per table."""
    from sqlalchemy import inspect, text

    if only is None:
        dags = f"dag_id NOT IN ({_own(own_dags)})"
        any_dag = f"dag_id IS NULL OR {dags}"
    else:
        named = sorted(g for g in only if g and g not in own_dags)
        dags = f"dag_id IN ({', '.join(_literal(d) for d in named)})" if named else "false"
        any_dag = f"dag_id IS NULL OR {dags}" if "" in only else dags
    inspector = inspect(session.connection())
    existing = set(inspector.get_table_names())
    deleted = {}
    if "dagrun_dataset_event" in existing:
        deleted["dagrun_dataset_event"] = session.execute(
            text(
                f"DELETE FROM dagrun_dataset_event WHERE dag_run_id IN (SELECT id FROM dag_run WHERE {dags})"
            )
        ).rowcount
    for table in HISTORY:
        if table not in existing:
            continue
        names = {c["name"] for c in inspector.get_columns(table)}
        if "dag_id" in names:
            where = f" WHERE {any_dag}" if table == "log" else f" WHERE dag_id IS NULL OR {dags}"
        elif "dag_run_id" in names:
            where = f" WHERE dag_run_id IN (SELECT id FROM dag_run WHERE {dags})"
        elif only is None:
            where = ""
        else:
            continue
        deleted[table] = session.execute(text(f"DELETE FROM {table}{where}")).rowcount
    if only is None:
        deleted["trigger"] = _drop_unused_triggers(session)
        session.execute(text("DELETE FROM variable WHERE key = :k"), {"k": RESTORE_MARKER})
    return deleted


def _drop_unused_triggers(session, keep=()):
    from sqlalchemy import text

    kept = f" AND id NOT IN ({', '.join(str(int(i)) for i in keep)})" if keep else ""
    return session.execute(
        text(
            "DELETE FROM trigger WHERE id NOT IN "
            f"(SELECT trigger_id FROM task_instance WHERE trigger_id IS NOT NULL){kept}"
        )
    ).rowcount


def _marker(session):
    """What the restore marker on this environment says: ``{"backup": prefix, "restored_at": iso}``
    ({} when there is none or it is not readable)."""
    from airflow.models import Variable

    variable = session.query(Variable).filter(Variable.key == RESTORE_MARKER).one_or_none()
    try:
        value = json.loads(variable.val) if variable is not None else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_marker(session, prefix):
    from sqlalchemy import text

    restored_at = session.execute(text("SELECT transaction_timestamp()")).scalar()
    value = json.dumps({"backup": prefix, "restored_at": restored_at.isoformat()})
    session.execute(text("DELETE FROM variable WHERE key = :k"), {"k": RESTORE_MARKER})
    session.execute(
        text("INSERT INTO variable (key, val, is_encrypted) VALUES (:k, :v, false)"),
        {"k": RESTORE_MARKER, "v": value},
    )


def prepare(context, own_dags):
    """The pre-restore cleanup (before the freeze): empty the history the restore will replace."""
    from airflow.settings import Session

    with Session() as session:
        deleted = clear_history(session, own_dags)
        session.commit()
    print(f"mwaa-iac: deleted {deleted}")
    return deleted


def _read_manifest(base):
    try:
        with _open(f"{base}/manifest.json", "rb") as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except Exception as exc:
        raise RuntimeError(
            f"no complete backup at {base}/ (manifest.json unreadable: {type(exc).__name__}: {exc})"
        ) from exc
    if manifest.get("format") != FORMAT:
        raise RuntimeError(f"the backup at {base}/ has format {manifest.get('format')}, expected {FORMAT}")
    return manifest


def _restore_orm(session, name, rows):
    from airflow.models import Connection, Variable

    if name == "variable":
        session.query(Variable).filter(Variable.key.notin_(list(OWN_VARIABLES))).delete(
            synchronize_session=False
        )
        for row in rows:
            session.add(Variable(key=row["key"], val=row["val"], description=row["description"]))
    elif name == "connection":
        session.query(Connection).delete(synchronize_session=False)
        for row in rows:
            session.add(Connection(**row))
    elif name == "trigger":
        from airflow.models.trigger import Trigger
        from airflow.serialization.serialized_objects import BaseSerialization

        for row in rows:
            created = datetime.datetime.fromisoformat(row["created_date"]) if row["created_date"] else None
            trigger = Trigger(row["classpath"], BaseSerialization.deserialize(row["kwargs"]), created)
            trigger.id = row["id"]
            session.add(trigger)
    session.flush()


def _jsonl(base, name):
    with _open(f"{base}/{name}.jsonl", "rb") as handle:
        return [json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line.strip()]


def _check_target_columns(session, columns):
    from sqlalchemy import inspect

    inspector = inspect(session.connection())
    existing = set(inspector.get_table_names())
    mapping = {"dag_schedule": "dag"}
    natural = {
        "dataset_event": {"dataset_uri"},
        "dagrun_dataset_event": {"dag_id", "run_id"},
        "dataset_dag_run_queue": {"dataset_uri"},
        "dag_run": {"src_id"},
    }
    for table, wanted in columns.items():
        real = mapping.get(table, table)
        if real not in existing:
            raise RuntimeError(f"the target has no table {real} (the backup has it)")
        present = {c["name"] for c in inspector.get_columns(real)}
        missing = [c for c in wanted if c not in present and c not in natural.get(table, set())]
        if missing:
            raise RuntimeError(f"the target's {real} table has no column(s) {', '.join(missing)}")


def _insert_sql(name, columns):
    """The INSERT that moves a staged table into place (surrogate ids re-mapped)."""
    stage = f"mwaa_iac_stage_{name}"
    plain = ", ".join(_q(c) for c in columns)
    from_stage = ", ".join(f"s.{_q(c)}" for c in columns)
    if name in ("slot_pool", "log", "task_instance", "task_fail", "task_map", "task_reschedule"):
        return f"INSERT INTO {name} ({plain}) SELECT {from_stage} FROM {stage} s"
    if name == "dag_run":
        run_cols = [c for c in columns if c != "src_id"]
        values = [
            "(SELECT lt.id FROM log_template lt JOIN mwaa_iac_stage_log_template sl "
            "ON sl.filename = lt.filename AND sl.elasticsearch_id = lt.elasticsearch_id "
            "WHERE sl.id = s.log_template_id ORDER BY lt.id DESC LIMIT 1)"
            if c == "log_template_id"
            else f"s.{_q(c)}"
            for c in run_cols
        ]
        names = ", ".join(_q(c) for c in run_cols)
        return f"INSERT INTO dag_run ({names}) SELECT {', '.join(values)} FROM {stage} s"
    if name == "xcom":
        values = ["r.id" if c == "dag_run_id" else f"s.{_q(c)}" for c in columns]
        return (
            f"INSERT INTO xcom ({plain}) SELECT {', '.join(values)} FROM {stage} s "
            "JOIN dag_run r ON r.dag_id = s.dag_id AND r.run_id = s.run_id"
        )
    if name == "dataset":
        return (
            f"INSERT INTO dataset ({plain}) SELECT {from_stage} FROM {stage} s "
            "WHERE NOT EXISTS (SELECT 1 FROM dataset d WHERE d.uri = s.uri)"
        )
    if name == "dataset_event":
        cols = [c for c in columns if c != "dataset_uri"]
        return (
            f"INSERT INTO dataset_event (dataset_id, {', '.join(_q(c) for c in cols)}) "
            f"SELECT d.id, {', '.join('s.' + _q(c) for c in cols)} FROM {stage} s "
            "JOIN dataset d ON d.uri = s.dataset_uri"
        )
    if name == "dagrun_dataset_event":
        return (
            f"INSERT INTO dagrun_dataset_event (dag_run_id, event_id) SELECT r.id, s.event_id FROM {stage} s "
            "JOIN dag_run r ON r.dag_id = s.dag_id AND r.run_id = s.run_id"
        )
    if name == "dataset_dag_run_queue":
        return (
            f"INSERT INTO dataset_dag_run_queue (dataset_id, target_dag_id, created_at) "
            f"SELECT d.id, s.target_dag_id, s.created_at FROM {stage} s "
            "JOIN dataset d ON d.uri = s.dataset_uri "
            "ON CONFLICT DO NOTHING"
        )
    if name == "dag_schedule":
        sets = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in columns if c != "dag_id")
        return f"UPDATE dag SET {sets} FROM {stage} s WHERE dag.dag_id = s.dag_id" if sets else None
    return None  # log_template: read for re-mapping only


# The ``dag`` table is rewritten by the target's DAG processor at every parse: a repeatable-read
# transaction that updates its rows fails ("could not serialize access due to concurrent update").
# So the DAGs are paused, and their next scheduled intervals written, in short read-committed
# transactions of their own (before and after the copy); a conflict or deadlock is tried again.
RETRYABLE = ("40001", "40P01")  # serialization failure, deadlock detected
ATTEMPTS = 3


def _retrying(what, action):
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except Exception as exc:
            code = getattr(getattr(exc, "orig", None), "pgcode", None)
            if code not in RETRYABLE or attempt == ATTEMPTS:
                raise
            print(f"mwaa-iac: {what}: concurrent update ({code}), attempt {attempt + 1} of {ATTEMPTS}")
            time.sleep(2 * attempt)
    return None


def _pause_all(own_dags):
    """Pause every DAG but the tool's own (only go-live unpauses, whatever the copied configuration
    or a DAG's is_paused_upon_creation say)."""
    from airflow.settings import Session
    from sqlalchemy import text

    with Session() as session:
        paused = session.execute(
            text(f"UPDATE dag SET is_paused = true WHERE dag_id NOT IN ({_own(own_dags)}) AND NOT is_paused")
        ).rowcount
        session.commit()
    return paused


def _apply_schedule(base, entry, spec):
    """Each DAG's next scheduled interval as the source had it (DAGs the target has)."""
    from airflow.settings import Session
    from sqlalchemy import text

    with Session() as session:
        _settings(session)
        stage = "mwaa_iac_stage_dag_schedule"
        session.execute(text(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS {spec.select} LIMIT 0"))
        with _open(f"{base}/{entry['file']}", "rb") as handle:
            _raw_cursor(session).copy_expert(
                f"COPY {stage} ({', '.join(_q(c) for c in spec.columns)}) FROM STDIN "
                "WITH (FORMAT csv, DELIMITER '|', HEADER false)",
                handle,
            )
        sql = _insert_sql("dag_schedule", spec.columns)
        updated = session.execute(text(sql)).rowcount if sql else 0
        session.commit()
    return updated


def restore(factory, context, own_dags):
    """Replace the target's copied tables with the backup's (a delta backup: apply it on top of the
    backup the target holds), in one transaction that commits only when every table's count and
    content hash equal the manifest's (tried again on a concurrent update); the DAGs are paused
    before it and their next intervals written after it."""
    started = time.monotonic()
    try:
        base = _location(factory, context)
        manifest = _read_manifest(base)
        prefix = base.split("/", 3)[3]
        paused = _retrying("pausing the DAGs", lambda: _pause_all(own_dags))
        result = _retrying("the restore", lambda: _restore_once(base, prefix, manifest, own_dags))
        schedule = manifest["tables"].get("dag_schedule")
        if schedule is not None:
            spec = build_specs({"dag_schedule": schedule["columns"]}, own_dags)["dag_schedule"]
            result["schedules"] = _retrying("next intervals", lambda: _apply_schedule(base, schedule, spec))
    except DeltaRefused as exc:
        _note(context, {"ok": False, "error": f"delta refused: {exc}"[:800], "delta_refused": True})
        raise
    except Exception as exc:
        _note(context, {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:800]})
        raise
    result.update(paused=paused, seconds=round(time.monotonic() - started, 1))
    _note(context, result)
    return result


def _stage(session, cursor, base, name, spec, entry):
    from sqlalchemy import text

    stage = f"mwaa_iac_stage_{name}"
    session.execute(text(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS {spec.select} LIMIT 0"))
    with _open(f"{base}/{entry['file']}", "rb") as handle:
        cursor.copy_expert(
            f"COPY {stage} ({', '.join(_q(c) for c in spec.columns)}) FROM STDIN "
            "WITH (FORMAT csv, DELIMITER '|', HEADER false)",
            handle,
        )


RESTORE_ORDER = (
    "slot_pool",
    "log",
    "dataset",
    "dag_run",
    "trigger",
    "task_instance",
    "task_fail",
    "task_reschedule",
    "task_map",
    "xcom",
    "dataset_event",
    "dagrun_dataset_event",
    "dataset_dag_run_queue",
    "dag_schedule",
)


def _restore_once(base, prefix, manifest, own_dags):
    from airflow.settings import Session
    from sqlalchemy import text

    tables = manifest["tables"]
    delta = manifest.get("mode") == "delta"
    csv_columns = {
        name: entry["columns"]
        for name, entry in tables.items()
        if "columns" in entry and name != "dag_schedule"
    }
    specs = build_specs(csv_columns, own_dags)
    own = _own(own_dags)
    with Session() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        _settings(session)
        _check_target_columns(session, csv_columns)
        marker = _marker(session)
        held = marker.get("backup")
        if delta and held == prefix:
            # Applied already (a resumed cutover runs the same restore again): verify only.
            counts = _verify(session, tables, specs, own_dags, delta)
            session.rollback()
            return {"ok": True, "mode": "delta", "tables": counts, "already": True, "reset": []}
        if delta and held != manifest.get("base"):
            raise DeltaRefused(
                f"the target holds backup {held or 'none (no marker)'}, "
                f"the delta is against {manifest.get('base')}"
            )
        if delta:
            # History the target wrote itself since its last restore (its audit log of REST calls,
            # migrations), then the DAGs the delta carries whole.
            restored_at = marker.get("restored_at")
            deleted = {
                "log_since_restore": session.execute(
                    text(
                        f"DELETE FROM log WHERE (dag_id IS NULL OR dag_id NOT IN ({own})) "
                        "AND dttm > CAST(:at AS timestamptz)"
                    ),
                    {"at": restored_at},
                ).rowcount
            }
            deleted.update(clear_history(session, own_dags, only=set(manifest.get("whole") or ())))
            if "dagrun_dataset_event" in specs:
                session.execute(
                    text(
                        "DELETE FROM dagrun_dataset_event WHERE dag_run_id IN "
                        f"(SELECT id FROM dag_run WHERE dag_id NOT IN ({own}))"
                    )
                )
        else:
            deleted = clear_history(session, own_dags)
        if "slot_pool" in specs:
            session.execute(text("DELETE FROM slot_pool"))
        if "dataset_event" in specs:
            session.execute(text("DELETE FROM dataset_dag_run_queue"))
            session.execute(text("DELETE FROM dataset_event"))
        for name in ("variable", "connection"):
            if name in tables:
                _restore_orm(session, name, _jsonl(base, name))
        cursor = _raw_cursor(session)
        for name, spec in specs.items():
            _stage(session, cursor, base, name, spec, tables[name])
        backup_triggers = _jsonl(base, "trigger") if "trigger" in tables else []
        for name in RESTORE_ORDER:
            if name == "trigger":
                present = {row[0] for row in session.execute(text("SELECT id FROM trigger"))} if delta else ()
                _restore_orm(session, "trigger", [row for row in backup_triggers if row["id"] not in present])
                continue
            if name not in specs:
                continue
            sql = _insert_sql(name, specs[name].columns)
            if sql:
                try:
                    session.execute(text(sql))
                except Exception as exc:
                    code = getattr(getattr(exc, "orig", None), "pgcode", None)
                    if delta and code == "23505":  # unique violation: the delta is not new rows only
                        raise DeltaRefused(
                            f"{name}: a new row of the delta is already on the target"
                        ) from exc
                    raise
        if delta and "trigger" in tables:
            _drop_unused_triggers(session, keep=[row["id"] for row in backup_triggers])
        for sequence_table in ("trigger", "dataset_event"):
            session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{sequence_table}', 'id'), "
                    f"GREATEST((SELECT COALESCE(max(id), 0) FROM {sequence_table}), 1))"
                )
            )
        session.flush()
        counts = _verify(session, tables, specs, own_dags, delta)
        reset = [
            f"{dag_id}/{run_id}/{task_id}[{map_index}]"
            for dag_id, run_id, task_id, map_index in session.execute(
                text(
                    "UPDATE task_instance SET state = NULL "
                    "WHERE state IN ('queued', 'running', 'restarting') "
                    f"AND dag_id NOT IN ({own}) RETURNING dag_id, run_id, task_id, map_index"
                )
            )
        ]
        _write_marker(session, prefix)
        session.commit()
    copied = {name: entry.get("copied", entry.get("rows")) for name, entry in tables.items()}
    return {
        "ok": True,
        "mode": "delta" if delta else "full",
        "tables": counts,
        "copied": sum(v for v in copied.values() if isinstance(v, int)),
        "deleted_before": sum(deleted.values()),
        "reset": reset,
    }


def _verify(session, tables, specs, own_dags, delta):
    """Every table's rows on the target against the manifest: counts and content hashes (a delta's
    history tables: every DAG's count, the changed DAGs' hashes). Returns rows per table; raises
    (DeltaRefused for a delta) naming the first group that differs."""
    mismatches = []
    counts = {}
    for name, entry in tables.items():
        if name in ORM_TABLES:
            got = orm_hash(session, name, own_dags)
        elif name in specs and entry.get("delta"):
            have = group_counts(session, specs[name])
            want = {str(k): int(v) for k, v in entry["counts"].items()}
            counts[name] = sum(have.values())
            if have != want:
                group = sorted(g for g in set(have) | set(want) if have.get(g) != want.get(g))[0]
                mismatches.append(
                    f"{name} [{group}]: backup {want.get(group, 0)} rows, target {have.get(group, 0)} rows"
                )
                continue
            got = table_hash(session, specs[name], only=set(entry["groups"]))
            if got["sha256"] != entry["sha256"]:
                mismatches.append(_first_difference(name, entry, got))
            continue
        elif name in specs and specs[name].verify:
            got = table_hash(session, specs[name])
        else:
            continue
        counts[name] = got["rows"]
        if got["sha256"] != entry["sha256"]:
            mismatches.append(_first_difference(name, entry, got))
    if mismatches:
        message = "the restored rows differ from the backup: " + "; ".join(mismatches)
        raise DeltaRefused(message) if delta else RuntimeError(message)
    return counts


def _first_difference(name, expected, got):
    """Which group (DAG id, variable key, pool...) differs first: names, counts, never values."""
    want, have = expected.get("groups", {}), got.get("groups", {})
    for group in sorted(set(want) | set(have)):
        if want.get(group) != have.get(group):
            rows_want = want.get(group, "0:").split(":")[0]
            rows_have = have.get(group, "0:").split(":")[0]
            return (
                f"{name} [{group}]: backup {rows_want} rows, target {rows_have} rows (content hash differs)"
            )
    return f"{name}: backup {expected.get('rows')} rows, target {got.get('rows')} rows"
