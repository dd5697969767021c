"""Fingerprints of an emulated environment's metadata, to compare two environments table by table.

The fingerprint is computed inside the environment: a script run with the environment's own Airflow
virtualenv, database and Fernet key reads each table through that version's models (variables and
connections decrypted, XComs deserialized, pickled run conf loaded) and returns only hashes. Per table:
``count``, ``sha256`` and, per row, a key that names it (dag_id, run_id, task_id, map_index, a
variable's key, a pool's name: never a value) with a hash of each field, so :func:`compare` can say
which row and which field differ without printing any value.

The local stack keeps an environment's runtime state in ``<state_dir>/runtime/envs/<name>/env.json``
(its database and Fernet key) and its virtualenv in the venv cache (:func:`venvs.ensure_venv`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mwaa_iac.adapters.airflow_venvs import ensure_venv
from mwaa_iac.core import dr
from mwaa_iac.local.runtime.postgres import PostgresCluster
from mwaa_iac.local.seed import SEED_DAG_ID

# mwaa-iac's and mwaa-dr's own DAGs and variables: not the user's data.
TOOL_DAGS = (*dr.DR_DAG_IDS, "mwaa_iac_probe", SEED_DAG_ID)
TOOL_VARIABLES = dr.TOOL_VARIABLES

# The script run inside the environment (Airflow 2.x or 3.x; stdlib and Airflow only). Reads its
# options as JSON on stdin, writes the fingerprint as JSON to the file named there; prints nothing of
# the data. Tables and columns have the same names on both majors where Airflow 3 renamed them
# (dataset → asset, execution_date → logical_date, is_active → not is_stale), so a fingerprint taken
# before an upgrade to 3.x compares with one taken after; what 3.x no longer has (task_fail,
# dag_run.external_trigger, dataset.is_orphaned) is simply absent on that side.
SCRIPT = r'''
import datetime
import decimal
import enum
import hashlib
import json
import sys
import types

options = json.load(sys.stdin)
exclude_dags = set(options["exclude_dags"])
exclude_variables = set(options["exclude_variables"])
with_fields = options["fields"]

import airflow  # noqa: E402  (configures the ORM from the environment's variables)

AIRFLOW3 = int(airflow.__version__.split(".")[0]) >= 3
if AIRFLOW3:
    from airflow.models import Connection, DagModel, DagRun, Log, Pool, TaskInstance, Variable
    from airflow.models.asset import AssetDagRunQueue as DatasetDagRunQueue
    from airflow.models.asset import AssetEvent as DatasetEvent
    from airflow.models.asset import AssetModel as DatasetModel
    from airflow.models.xcom import XComModel as XCom
    TaskFail = None  # Airflow 3.0 dropped the task_fail table
else:
    from airflow.models import (Connection, DagModel, DagRun, Log, Pool, TaskFail, TaskInstance, Variable,
                                XCom)
    from airflow.models.dataset import DatasetDagRunQueue, DatasetEvent, DatasetModel
from airflow.models.taskmap import TaskMap
from airflow.models.trigger import Trigger
from airflow.settings import Session
from sqlalchemy import select


DATASET_CLASSES = ("Dataset", "Asset")


def norm(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    # A dataset in an XCom (Airflow's own pipeline_outlets): 2.x loads a Dataset object, 3.x leaves
    # the serialized form it cannot load (airflow.datasets is gone): both are the same URI and extra.
    if type(value).__name__ in DATASET_CLASSES and hasattr(value, "uri"):
        return {"dataset": value.uri, "extra": norm(getattr(value, "extra", None) or None)}
    if (isinstance(value, dict) and str(value.get("__classname__", "")).rsplit(".", 1)[-1] in DATASET_CLASSES
            and isinstance(value.get("__data__"), dict)):
        data = value["__data__"]
        return {"dataset": data.get("uri"), "extra": norm(data.get("extra") or None)}
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.timedelta, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return norm(value.value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, dict):
        return {str(k): norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [norm(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    return {"repr": repr(value)}


def digest(value):
    text = json.dumps(norm(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Table:
    def __init__(self, columns):
        self.columns = list(columns)
        self.rows = []
        self.states = {}  # a run's or task instance's state, in the clear (not a value of the user's)

    def add(self, key, values):
        name = " | ".join(str(norm(k)) for k in key)
        self.rows.append((name, {c: digest(values[c]) for c in self.columns}))
        if "state" in values:
            self.states[name] = norm(values["state"])

    def result(self):
        rows, fields, seen = {}, {}, {}
        for key, hashed in sorted(self.rows, key=lambda r: (r[0], digest(r[1]))):
            seen[key] = seen.get(key, 0) + 1
            name = key if seen[key] == 1 else f"{key} #{seen[key]}"  # no unique key (log, task_fail)
            rows[name] = digest(hashed)[:32]
            if with_fields:
                fields[name] = {c: h[:16] for c, h in hashed.items()}
        body = "\n".join(f"{k}\t{h}" for k, h in rows.items())
        out = {"count": len(rows), "sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
               "columns": self.columns, "rows": rows}
        if with_fields:
            out["fields"] = fields
        if self.states:
            out["states"] = self.states
        return out


def table_rows(session, model, key, columns, dag_column="dag_id"):
    """Raw stored values (the column types still apply: pickles are loaded, dates are aware). A
    column named ``a|b`` is column ``a``, or ``b`` where this version calls it so, reported as ``a``."""
    table = model.__table__
    present = []
    for spec in columns:
        names = spec.split("|")
        found = next((n for n in names if n in table.c), None)
        if found is not None:
            present.append((names[0], found))
    query = select(*[table.c[c] for c in key], *[table.c[c] for _, c in present])
    if dag_column and exclude_dags:
        query = query.where(table.c[dag_column].notin_(sorted(exclude_dags)))
    result = Table([name for name, _ in present])
    for row in session.execute(query):
        values = dict(zip([*key, *[name for name, _ in present]], row))
        if "conf" in values and values["conf"] is None:
            values["conf"] = {}
        if values.get("run_type") is not None and norm(values["run_type"]) == "dataset_triggered":
            values["run_type"] = "asset_triggered"  # Airflow 3.0's migration renames the run type
        result.add([values[c] for c in key], values)
    return result


def column(table, *names):
    """The first of ``names`` this version's table has (Airflow 3 renamed dataset_id to asset_id)."""
    return next(table.c[n] for n in names if n in table.c)


tables = {}
with Session() as session:
    variables = Table(["val", "description"])
    for var in session.query(Variable):
        if var.key in exclude_variables:
            continue
        value = var.get_val()
        variables.add([var.key], {"val": None if value is None else value.encode("utf-8"),
                                  "description": var.description})
    tables["variable"] = variables

    conn_fields = ["conn_type", "description", "host", "schema", "login", "password", "port", "extra"]
    connections = Table(conn_fields)
    for conn in session.query(Connection):
        connections.add([conn.conn_id], {f: getattr(conn, f) for f in conn_fields})
    tables["connection"] = connections

    pool_fields = ["slots", "description", "include_deferred"]
    pools = Table([f for f in pool_fields if hasattr(Pool, f)])
    for pool in session.query(Pool):
        pools.add([pool.pool], {f: getattr(pool, f) for f in pools.columns})
    tables["slot_pool"] = pools

    # A run without conf: Airflow 2 stores an empty dict, Airflow 3.0's migration NULL (reported as
    # the empty dict on both); a dataset-triggered run is asset_triggered in 3.x (reported so on both).
    tables["dag_run"] = table_rows(session, DagRun, ["dag_id", "run_id"], [
        "state", "run_type", "external_trigger", "conf", "logical_date|execution_date", "data_interval_start",
        "data_interval_end", "start_date", "end_date", "queued_at", "clear_number"])
    ti_key = ["dag_id", "run_id", "task_id", "map_index"]
    tables["task_instance"] = table_rows(session, TaskInstance, ti_key, [
        "state", "try_number", "max_tries", "start_date", "end_date", "duration", "operator", "pool",
        "pool_slots", "queue", "priority_weight", "next_method", "next_kwargs", "rendered_map_index"])
    if TaskFail is not None:
        tables["task_fail"] = table_rows(session, TaskFail, ["dag_id", "run_id", "task_id", "map_index"], [
            "start_date", "end_date", "duration"])
    tables["task_map"] = table_rows(session, TaskMap, ["dag_id", "run_id", "task_id", "map_index"], [
        "length", "keys"])

    xcoms = Table(["value", "value_raw", "timestamp"])
    table = XCom.__table__
    query = select(table.c.dag_id, table.c.run_id, table.c.task_id, table.c.map_index, table.c.key,
                   table.c.value, table.c.timestamp)
    if exclude_dags:
        query = query.where(table.c.dag_id.notin_(sorted(exclude_dags)))
    for dag_id, run_id, task_id, map_index, key, raw, timestamp in session.execute(query):
        try:
            value = XCom.deserialize_value(types.SimpleNamespace(value=raw))
        except Exception as exc:  # the value's type, not its content
            value = {"undeserializable": type(exc).__name__}
        xcoms.add([dag_id, run_id, task_id, map_index, key],
                  {"value": value, "value_raw": raw, "timestamp": timestamp})
    tables["xcom"] = xcoms

    logs = {}
    table = Log.__table__
    for dag_id, event in session.execute(select(table.c.dag_id, table.c.event)):
        if dag_id in exclude_dags:
            continue
        logs[(dag_id or "", event or "")] = logs.get((dag_id or "", event or ""), 0) + 1
    log_table = Table(["count"])
    for key, count in logs.items():
        log_table.add(list(key), {"count": count})
    tables["log"] = log_table

    datasets = DatasetModel.__table__
    uris = dict(session.execute(select(datasets.c.id, datasets.c.uri)).all())
    tables["dataset"] = table_rows(session, DatasetModel, ["uri"], ["extra", "is_orphaned"], dag_column=None)
    events = Table(["extra"])
    table = DatasetEvent.__table__
    for row in session.execute(select(column(table, "dataset_id", "asset_id"), table.c.source_dag_id,
                                      table.c.source_run_id,
                                      table.c.source_task_id, table.c.source_map_index, table.c.timestamp,
                                      table.c.extra)):
        if row[1] in exclude_dags:
            continue
        events.add([uris.get(row[0], row[0]), *row[1:6]], {"extra": row[6]})
    tables["dataset_event"] = events
    queue = Table(["created_at"])
    table = DatasetDagRunQueue.__table__
    for dataset_id, target, created in session.execute(select(column(table, "dataset_id", "asset_id"),
                                                               table.c.target_dag_id, table.c.created_at)):
        if target not in exclude_dags:
            queue.add([uris.get(dataset_id, dataset_id), target], {"created_at": created})
    tables["dataset_dag_run_queue"] = queue

    dag_columns = ["is_paused", "is_active", "next_dagrun", "next_dagrun_data_interval_start",
                   "next_dagrun_data_interval_end", "next_dagrun_create_after"]
    dags = Table(dag_columns)
    table = DagModel.__table__
    stale = "is_stale" in table.c  # Airflow 3: is_stale, the opposite of 2.x's is_active
    wanted = [c for c in dag_columns if c != "is_active"] + ["is_stale" if stale else "is_active"]
    for row in session.execute(select(table.c.dag_id, *[table.c[c] for c in wanted])):
        if row[0] in exclude_dags:
            continue
        values = dict(zip(wanted, row[1:]))
        if stale:
            values["is_active"] = not values.pop("is_stale")
        dags.add([row[0]], values)
    tables["dag"] = dags

    run_ids = {}
    table = DagRun.__table__
    for dag_id, run_id in session.execute(select(table.c.dag_id, table.c.run_id)):
        if dag_id not in exclude_dags:
            run_ids.setdefault(dag_id, []).append(run_id)
    per_dag = Table(["count", "run_ids"])
    for dag_id, ids in run_ids.items():
        per_dag.add([dag_id], {"count": len(ids), "run_ids": sorted(ids)})
    tables["dag_run_ids"] = per_dag

    triggers = {}
    for (classpath,) in session.execute(select(Trigger.__table__.c.classpath)):
        triggers[classpath] = triggers.get(classpath, 0) + 1
    trigger_table = Table(["count"])
    for classpath, count in triggers.items():
        trigger_table.add([classpath], {"count": count})
    tables["trigger"] = trigger_table

result = {"airflow_version": airflow.__version__, "tables": {n: t.result() for n, t in tables.items()}}
with open(options["output"], "w", encoding="utf-8") as out:
    json.dump(result, out)
'''


class FingerprintError(RuntimeError):
    """The fingerprint script could not run in the environment."""


def environment_process_env(
    state_dir: Path, name: str, home: Path, *, venv_cache: Path | None = None
) -> tuple[Path, dict[str, str]]:
    """The venv python and the variables that give a process the environment's Airflow: its
    database and its Fernet key (``home`` is a scratch AIRFLOW_HOME; nothing of the environment's
    own folder is written)."""
    runtime = Path(state_dir) / "runtime"
    env_file = runtime / "envs" / name / "env.json"
    try:
        state = json.loads(env_file.read_text())
    except (OSError, ValueError) as exc:
        raise FingerprintError(f"no runtime state for {name} ({env_file}): {exc}") from exc
    venv = ensure_venv(state["airflow_version"], venv_cache)
    url = PostgresCluster(runtime / "pg", runtime / "pids").sqlalchemy_url(state["database"])
    env = {
        "PATH": f"{venv.bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__FERNET_KEY": state["fernet_key"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "utc",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "true",
    }
    return venv.python, env


def run_in_environment(
    state_dir: Path,
    name: str,
    code: str,
    stdin: str = "",
    *,
    timeout: float = 300.0,
    venv_cache: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` with environment ``name``'s Airflow (its venv, database, Fernet key).
    The caller must not print what the code may write: it can read secrets."""
    with tempfile.TemporaryDirectory(prefix="mwaa-iac-inside-") as scratch:
        python, env = environment_process_env(Path(state_dir), name, Path(scratch), venv_cache=venv_cache)
        return subprocess.run(
            [str(python), "-c", code],
            input=stdin,
            env=env,
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def fingerprint(
    state_dir: Path,
    name: str,
    *,
    exclude_dags: Iterable[str] = TOOL_DAGS,
    exclude_variables: Iterable[str] = TOOL_VARIABLES,
    fields: bool = True,
    timeout: float = 600.0,
    venv_cache: Path | None = None,
) -> dict[str, Any]:
    """The fingerprint of environment ``name`` of the local stack in ``state_dir``:
    ``{"airflow_version": ..., "tables": {table: {"count", "sha256", "columns", "rows", "fields"}}}``.

    ``rows`` maps a row's key (dag_id | run_id | ...; never a value) to its hash, ``fields`` (unless
    ``fields=False``) to a hash per column. Tables: variable, connection, slot_pool, dag_run,
    task_instance, task_fail, task_map, xcom (deserialized ``value``, stored ``value_raw``), log
    (counts per dag_id and event), dataset, dataset_event, dataset_dag_run_queue, dag (paused,
    next_dagrun), dag_run_ids (the run-id set per DAG), trigger (counts per classpath)."""
    with tempfile.TemporaryDirectory(prefix="mwaa-iac-fingerprint-") as scratch:
        output = Path(scratch) / "fingerprint.json"
        options = {
            "exclude_dags": sorted(set(exclude_dags)),
            "exclude_variables": sorted(set(exclude_variables)),
            "fields": fields,
            "output": str(output),
        }
        result = run_in_environment(
            state_dir, name, SCRIPT, json.dumps(options), timeout=timeout, venv_cache=venv_cache
        )
        if result.returncode != 0 or not output.is_file():
            # Airflow's own messages (tracebacks name files and lines, not values).
            tail = "\n".join((result.stderr or result.stdout or "").splitlines()[-15:])
            raise FingerprintError(f"the fingerprint of {name} failed (exit {result.returncode}):\n{tail}")
        return json.loads(output.read_text("utf-8"))


def _ignored(ignore: Iterable[str]) -> tuple[set[str], dict[str, set[str]]]:
    tables: set[str] = set()
    columns: dict[str, set[str]] = {}
    for item in ignore:
        table, _, column = item.partition(".")
        if column:
            columns.setdefault(table, set()).add(column)
        else:
            tables.add(table)
    return tables, columns


def compare(a: dict[str, Any], b: dict[str, Any], *, ignore: Iterable[str] = (), limit: int = 3) -> list[str]:
    """Differences between two fingerprints, table by table: ``[]`` when equal.

    ``ignore`` names tables (``"log"``) or columns (``"xcom.value_raw"``, ``"task_instance.try_number"``)
    to leave out; column-level comparison needs fingerprints taken with ``fields=True``. Each message
    names the table, the keys (at most ``limit`` of them) and the columns that differ."""
    skip_tables, skip_columns = _ignored(ignore)
    tables_a, tables_b = a.get("tables", {}), b.get("tables", {})
    out: list[str] = []
    for table in sorted(set(tables_a) | set(tables_b)):
        if table in skip_tables:
            continue
        ta, tb = tables_a.get(table), tables_b.get(table)
        if ta is None or tb is None:
            out.append(f"{table}: only in {'a' if tb is None else 'b'}")
            continue
        skipped = skip_columns.get(table, set())
        if not skipped and ta["sha256"] == tb["sha256"]:
            continue
        columns_a = [c for c in ta.get("columns", []) if c not in skipped]
        columns_b = [c for c in tb.get("columns", []) if c not in skipped]
        problems: list[str] = []
        if ta["count"] != tb["count"]:
            problems.append(f"{ta['count']} rows in a, {tb['count']} in b")
        if columns_a != columns_b:
            problems.append(f"columns differ ({', '.join(sorted(set(columns_a) ^ set(columns_b)))})")
        rows_a, rows_b = ta.get("rows", {}), tb.get("rows", {})
        only_a = sorted(set(rows_a) - set(rows_b))
        only_b = sorted(set(rows_b) - set(rows_a))
        if only_a:
            problems.append(f"{len(only_a)} only in a: {_names(only_a, limit)}")
        if only_b:
            problems.append(f"{len(only_b)} only in b: {_names(only_b, limit)}")
        differing: list[str] = []
        for key in sorted(set(rows_a) & set(rows_b)):
            change = _row_change(ta, tb, key, skipped, set(columns_a) & set(columns_b))
            if change:
                differing.append(change)
        if differing:
            problems.append(f"{len(differing)} differ: {'; '.join(differing[:limit])}")
        if problems:
            out.append(f"{table}: " + "; ".join(problems))
    return out


def _row_change(
    ta: dict[str, Any], tb: dict[str, Any], key: str, skipped: set[str], common: set[str]
) -> str | None:
    """``[key] (columns that differ)`` for a row both tables have, or None when it is equal."""
    changed = _changed_columns(ta, tb, key, skipped, common)
    if changed is None and ta["rows"][key] != tb["rows"][key]:
        changed = ["?"]  # no per-column hashes
    return f"[{key}] ({', '.join(changed)})" if changed else None


def _changed_columns(
    ta: dict[str, Any], tb: dict[str, Any], key: str, skipped: set[str], common: set[str]
) -> list[str] | None:
    fields_a, fields_b = ta.get("fields"), tb.get("fields")
    if fields_a is None or fields_b is None:
        return None if not skipped else []
    fa, fb = fields_a.get(key, {}), fields_b.get(key, {})
    return [c for c in sorted(common) if c not in skipped and fa.get(c) != fb.get(c)]


def _names(keys: list[str], limit: int) -> str:
    shown = ", ".join(f"[{k}]" for k in keys[:limit])
    return shown + (", ..." if len(keys) > limit else "")


# States after which Airflow changes a run or a task instance no more (unless a user clears it).
FINAL_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def carried(
    before: dict[str, Any], after: dict[str, Any], *, ignore: Iterable[str] = (), limit: int = 3
) -> list[str]:
    """What of ``before`` is not in ``after`` unchanged: ``[]`` when every row is carried.

    For an environment that kept running between the two fingerprints (an in-place upgrade of a busy
    environment, a colour that went live): rows ``after`` has in addition are fine; a run or task
    instance that was not final in ``before`` (running, queued, up for retry...) only has to exist
    in ``after``, with any values; every other row must have the same hash per column (``ignore``
    as in :func:`compare`; fingerprints taken with ``fields=True``)."""
    skip_tables, skip_columns = _ignored(ignore)
    tables_after = after.get("tables", {})
    out: list[str] = []
    for table, ta in sorted(before.get("tables", {}).items()):
        if table in skip_tables:
            continue
        tb = tables_after.get(table)
        if tb is None:
            out.append(f"{table}: not in the second fingerprint")
            continue
        skipped = skip_columns.get(table, set())
        states = ta.get("states", {})
        common = (set(ta.get("columns", [])) & set(tb.get("columns", []))) - skipped
        missing = sorted(set(ta.get("rows", {})) - set(tb.get("rows", {})))
        differing: list[str] = []
        for key in sorted(set(ta.get("rows", {})) & set(tb.get("rows", {}))):
            if key in states and states[key] not in FINAL_STATES:
                continue
            change = _row_change(ta, tb, key, skipped, common)
            if change:
                differing.append(change)
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing: {_names(missing, limit)}")
        if differing:
            problems.append(f"{len(differing)} changed: {'; '.join(differing[:limit])}")
        if problems:
            out.append(f"{table}: " + "; ".join(problems))
    return out


def changed_tables(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    """Names of the tables whose hash differs (or that only one fingerprint has)."""
    tables_a, tables_b = a.get("tables", {}), b.get("tables", {})
    return {
        t
        for t in set(tables_a) | set(tables_b)
        if (tables_a.get(t) or {}).get("sha256") != (tables_b.get(t) or {}).get("sha256")
    }
