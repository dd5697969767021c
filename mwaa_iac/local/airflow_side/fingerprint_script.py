"""The fingerprint of an environment's metadata (mwaa_iac/local/fingerprint.py runs it with the
environment's own Airflow virtualenv, 2.x or 3.x; the standard library and Airflow only).

Reads its options as JSON on stdin (``exclude_dags``, ``exclude_variables``, ``fields``, ``tables``:
which of :data:`READERS` to read, ``output``) and writes the fingerprint as JSON to the file named
there; prints nothing of the data. Tables and columns have the same names on both majors where
Airflow 3 renamed them (dataset -> asset, execution_date -> logical_date, is_active -> not
is_stale), so a fingerprint taken before an upgrade to 3.x compares with one taken after; what 3.x no
longer has (task_fail, dag_run.external_trigger, dataset.is_orphaned) is simply absent on that side.
"""

import datetime
import decimal
import enum
import hashlib
import json
import sys
import types
from typing import Any

DATASET_CLASSES = ("Dataset", "Asset")


def norm(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    # A dataset in an XCom (Airflow's own pipeline_outlets): 2.x loads a Dataset object, 3.x leaves
    # the serialized form it cannot load (airflow.datasets is gone): both are the same URI and extra.
    if type(value).__name__ in DATASET_CLASSES and hasattr(value, "uri"):
        return {"dataset": value.uri, "extra": norm(getattr(value, "extra", None) or None)}
    if (
        isinstance(value, dict)
        and str(value.get("__classname__", "")).rsplit(".", 1)[-1] in DATASET_CLASSES
        and isinstance(value.get("__data__"), dict)
    ):
        data = value["__data__"]
        return {"dataset": data.get("uri"), "extra": norm(data.get("extra") or None)}
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)  # noqa: UP017 (runs on Python 3.10 too)
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
    """One table's fingerprint: per row a key (never a value) and a hash per column."""

    def __init__(self, columns, with_fields):
        self.columns = list(columns)
        self.with_fields = with_fields
        self.rows = []
        self.states = {}  # a run's or task instance's state, in the clear (not a value of the user's)

    def add(self, key, values):
        name = " | ".join(str(norm(k)) for k in key)
        self.rows.append((name, {c: digest(values[c]) for c in self.columns}))
        if "state" in values:
            self.states[name] = norm(values["state"])

    def result(self):
        rows: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        seen: dict[Any, Any] = {}
        for key, hashed in sorted(self.rows, key=lambda r: (r[0], digest(r[1]))):
            seen[key] = seen.get(key, 0) + 1
            name = key if seen[key] == 1 else f"{key} #{seen[key]}"  # no unique key (log, task_fail)
            rows[name] = digest(hashed)[:32]
            if self.with_fields:
                fields[name] = {c: h[:16] for c, h in hashed.items()}
        body = "\n".join(f"{k}\t{h}" for k, h in rows.items())
        out = {
            "count": len(rows),
            "sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
            "columns": self.columns,
            "rows": rows,
        }
        if self.with_fields:
            out["fields"] = fields
        if self.states:
            out["states"] = self.states
        return out


def column(table, *names):
    """The first of ``names`` this version's table has (Airflow 3 renamed dataset_id to asset_id)."""
    return next(table.c[n] for n in names if n in table.c)


class Reader:
    """Reads each table through this Airflow version's models (variables and connections decrypted,
    XComs deserialized, pickled run conf loaded)."""

    def __init__(self, session, models, options):
        self.session = session
        self.m = models
        self.exclude_dags = set(options["exclude_dags"])
        self.exclude_variables = set(options["exclude_variables"])
        self.with_fields = options["fields"]

    def table(self, columns):
        return Table(columns, self.with_fields)

    def rows(self, model, key, columns, dag_column="dag_id"):
        """Raw stored values (the column types still apply: pickles are loaded, dates are aware). A
        column named ``a|b`` is column ``a``, or ``b`` where this version calls it so, reported as
        ``a``."""
        from sqlalchemy import select

        table = model.__table__
        present = []
        for spec in columns:
            names = spec.split("|")
            found = next((n for n in names if n in table.c), None)
            if found is not None:
                present.append((names[0], found))
        query = select(*[table.c[c] for c in key], *[table.c[c] for _, c in present])
        if dag_column and self.exclude_dags:
            query = query.where(table.c[dag_column].notin_(sorted(self.exclude_dags)))
        result = self.table([name for name, _ in present])
        for row in self.session.execute(query):
            values = dict(zip([*key, *[name for name, _ in present]], row, strict=True))
            if "conf" in values and values["conf"] is None:
                values["conf"] = {}
            if values.get("run_type") is not None and norm(values["run_type"]) == "dataset_triggered":
                values["run_type"] = "asset_triggered"  # Airflow 3.0's migration renames the run type
            result.add([values[c] for c in key], values)
        return result

    def variable(self):
        variables = self.table(["val", "description"])
        for var in self.session.query(self.m.Variable):
            if var.key in self.exclude_variables:
                continue
            value = var.get_val()
            variables.add(
                [var.key],
                {"val": None if value is None else value.encode("utf-8"), "description": var.description},
            )
        return variables

    def connection(self):
        conn_fields = ["conn_type", "description", "host", "schema", "login", "password", "port", "extra"]
        connections = self.table(conn_fields)
        for conn in self.session.query(self.m.Connection):
            connections.add([conn.conn_id], {f: getattr(conn, f) for f in conn_fields})
        return connections

    def slot_pool(self):
        pool_fields = ["slots", "description", "include_deferred"]
        pools = self.table([f for f in pool_fields if hasattr(self.m.Pool, f)])
        for pool in self.session.query(self.m.Pool):
            pools.add([pool.pool], {f: getattr(pool, f) for f in pools.columns})
        return pools

    def dag_run(self):
        # A run without conf: Airflow 2 stores an empty dict, Airflow 3.0's migration NULL (reported as
        # the empty dict on both); a dataset-triggered run is asset_triggered in 3.x (reported so on
        # both).
        columns = [
            "state", "run_type", "external_trigger", "conf", "logical_date|execution_date",
            "data_interval_start", "data_interval_end", "start_date", "end_date", "queued_at",
            "clear_number",
        ]  # fmt: skip
        return self.rows(self.m.DagRun, ["dag_id", "run_id"], columns)

    def task_instance(self):
        columns = [
            "state", "try_number", "max_tries", "start_date", "end_date", "duration", "operator", "pool",
            "pool_slots", "queue", "priority_weight", "next_method", "next_kwargs", "rendered_map_index",
        ]  # fmt: skip
        return self.rows(self.m.TaskInstance, ["dag_id", "run_id", "task_id", "map_index"], columns)

    def task_fail(self):
        if self.m.TaskFail is None:
            return None  # Airflow 3.0 dropped the task_fail table
        key = ["dag_id", "run_id", "task_id", "map_index"]
        return self.rows(self.m.TaskFail, key, ["start_date", "end_date", "duration"])

    def task_map(self):
        return self.rows(self.m.TaskMap, ["dag_id", "run_id", "task_id", "map_index"], ["length", "keys"])

    def xcom(self):
        from sqlalchemy import select

        xcom = self.m.XCom
        xcoms = self.table(["value", "value_raw", "timestamp"])
        table = xcom.__table__
        query = select(
            table.c.dag_id, table.c.run_id, table.c.task_id, table.c.map_index, table.c.key,
            table.c.value, table.c.timestamp,
        )  # fmt: skip
        if self.exclude_dags:
            query = query.where(table.c.dag_id.notin_(sorted(self.exclude_dags)))
        for dag_id, run_id, task_id, map_index, key, raw, timestamp in self.session.execute(query):
            try:
                value = xcom.deserialize_value(types.SimpleNamespace(value=raw))
            except Exception as exc:  # the value's type, not its content
                value = {"undeserializable": type(exc).__name__}
            xcoms.add(
                [dag_id, run_id, task_id, map_index, key],
                {"value": value, "value_raw": raw, "timestamp": timestamp},
            )
        return xcoms

    def log(self):
        from sqlalchemy import select

        logs: dict[Any, Any] = {}
        table = self.m.Log.__table__
        for dag_id, event in self.session.execute(select(table.c.dag_id, table.c.event)):
            if dag_id in self.exclude_dags:
                continue
            logs[(dag_id or "", event or "")] = logs.get((dag_id or "", event or ""), 0) + 1
        log_table = self.table(["count"])
        for key, count in logs.items():
            log_table.add(list(key), {"count": count})
        return log_table

    def _uris(self):
        from sqlalchemy import select

        datasets = self.m.DatasetModel.__table__
        return dict(self.session.execute(select(datasets.c.id, datasets.c.uri)).all())

    def dataset(self):
        return self.rows(self.m.DatasetModel, ["uri"], ["extra", "is_orphaned"], dag_column=None)

    def dataset_event(self):
        from sqlalchemy import select

        uris = self._uris()
        events = self.table(["extra"])
        table = self.m.DatasetEvent.__table__
        query = select(
            column(table, "dataset_id", "asset_id"), table.c.source_dag_id, table.c.source_run_id,
            table.c.source_task_id, table.c.source_map_index, table.c.timestamp, table.c.extra,
        )  # fmt: skip
        for row in self.session.execute(query):
            if row[1] in self.exclude_dags:
                continue
            events.add([uris.get(row[0], row[0]), *row[1:6]], {"extra": row[6]})
        return events

    def dataset_dag_run_queue(self):
        from sqlalchemy import select

        uris = self._uris()
        queue = self.table(["created_at"])
        table = self.m.DatasetDagRunQueue.__table__
        query = select(column(table, "dataset_id", "asset_id"), table.c.target_dag_id, table.c.created_at)
        for dataset_id, target, created in self.session.execute(query):
            if target not in self.exclude_dags:
                queue.add([uris.get(dataset_id, dataset_id), target], {"created_at": created})
        return queue

    def dag(self):
        from sqlalchemy import select

        dag_columns = [
            "is_paused", "is_active", "next_dagrun", "next_dagrun_data_interval_start",
            "next_dagrun_data_interval_end", "next_dagrun_create_after",
        ]  # fmt: skip
        dags = self.table(dag_columns)
        table = self.m.DagModel.__table__
        stale = "is_stale" in table.c  # Airflow 3: is_stale, the opposite of 2.x's is_active
        wanted = [c for c in dag_columns if c != "is_active"] + ["is_stale" if stale else "is_active"]
        for row in self.session.execute(select(table.c.dag_id, *[table.c[c] for c in wanted])):
            if row[0] in self.exclude_dags:
                continue
            values = dict(zip(wanted, row[1:], strict=True))
            if stale:
                values["is_active"] = not values.pop("is_stale")
            dags.add([row[0]], values)
        return dags

    def dag_run_ids(self):
        from sqlalchemy import select

        run_ids: dict[Any, Any] = {}
        table = self.m.DagRun.__table__
        for dag_id, run_id in self.session.execute(select(table.c.dag_id, table.c.run_id)):
            if dag_id not in self.exclude_dags:
                run_ids.setdefault(dag_id, []).append(run_id)
        per_dag = self.table(["count", "run_ids"])
        for dag_id, ids in run_ids.items():
            per_dag.add([dag_id], {"count": len(ids), "run_ids": sorted(ids)})
        return per_dag

    def trigger(self):
        from sqlalchemy import select

        triggers: dict[Any, Any] = {}
        for (classpath,) in self.session.execute(select(self.m.Trigger.__table__.c.classpath)):
            triggers[classpath] = triggers.get(classpath, 0) + 1
        trigger_table = self.table(["count"])
        for classpath, count in triggers.items():
            trigger_table.add([classpath], {"count": count})
        return trigger_table


# The tables this script reads, in the order it reads them (mwaa_iac/local/fingerprint.py names
# which: the copy module's copied tables it reads, and the two of its own, dag and dag_run_ids).
READERS = (
    "variable",
    "connection",
    "slot_pool",
    "dag_run",
    "task_instance",
    "task_fail",
    "task_map",
    "xcom",
    "log",
    "dataset",
    "dataset_event",
    "dataset_dag_run_queue",
    "dag",
    "dag_run_ids",
    "trigger",
)


def models():
    """This Airflow version's models, under Airflow 2's names."""
    import airflow  # configures the ORM from the environment's variables

    TaskFail: Any = None  # Airflow 3.0 dropped the task_fail table
    if int(airflow.__version__.split(".")[0]) >= 3:
        from airflow.models import Connection, DagModel, DagRun, Log, Pool, TaskInstance, Variable
        from airflow.models.asset import AssetDagRunQueue as DatasetDagRunQueue
        from airflow.models.asset import AssetEvent as DatasetEvent
        from airflow.models.asset import AssetModel as DatasetModel
        from airflow.models.xcom import XComModel as XCom
    else:
        from airflow.models import (
            Connection,
            DagModel,
            DagRun,
            Log,
            Pool,
            TaskInstance,
            Variable,
            XCom,
        )
        from airflow.models import TaskFail as TaskFail2
        from airflow.models.dataset import DatasetDagRunQueue, DatasetEvent, DatasetModel

        TaskFail = TaskFail2
    from airflow.models.taskmap import TaskMap
    from airflow.models.trigger import Trigger

    return types.SimpleNamespace(
        airflow_version=airflow.__version__,
        Connection=Connection,
        DagModel=DagModel,
        DagRun=DagRun,
        Log=Log,
        Pool=Pool,
        TaskFail=TaskFail,
        TaskInstance=TaskInstance,
        Variable=Variable,
        XCom=XCom,
        DatasetDagRunQueue=DatasetDagRunQueue,
        DatasetEvent=DatasetEvent,
        DatasetModel=DatasetModel,
        TaskMap=TaskMap,
        Trigger=Trigger,
    )


def main():
    options = json.load(sys.stdin)
    wanted = options.get("tables") or READERS
    unknown = sorted(set(wanted) - set(READERS))
    if unknown:
        raise SystemExit(f"the fingerprint script reads no table(s) {', '.join(unknown)}")
    found = models()
    from airflow.settings import Session

    tables = {}
    with Session() as session:
        reader = Reader(session, found, options)
        for name in READERS:
            if name in wanted:
                table = getattr(reader, name)()
                if table is not None:
                    tables[name] = table
    result = {
        "airflow_version": found.airflow_version,
        "tables": {n: t.result() for n, t in tables.items()},
    }
    with open(options["output"], "w", encoding="utf-8") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
