"""The capturing half of ``bench/query_plans.py``: runs INSIDE an Airflow 2.x venv (as the DR DAGs'
tasks do), against the database of ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``, and records every SQL
statement it sends with the plan PostgreSQL ran it with.

Modes:

- ``backup``: the copy module's ``backup()`` (``--since``: a delta against that backup, as pass 2);
- ``restore``: the copy module's ``restore()`` of ``--prefix`` (the target holds ``--since``);
- ``drain``: Airflow's own ``get_task_instances`` endpoint function (``GET
  /dags/~/dagRuns/~/taskInstances?state=queued&state=running&state=restarting&limit=100``, what the
  freeze's drain asks), its access check replaced by "every DAG" (an Admin's view).

The copy module is loaded from its file (as the generated DAG files load it from ``vendor/``); its
storage (``s3://<bucket>/<key>``) is mapped to ``--store``/<bucket>/<key>; the run's note is kept in
the output instead of a DagRun row. With ``--capture``, each statement (SQLAlchemy's, and the COPYs
of the raw cursor) is first run under ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` inside a savepoint
that is rolled back (a DELETE or an INSERT changes nothing there), then for real, and timed. The
stack tells which function of the copy module (or Airflow's endpoint) sent it. Output: one JSON
document on ``--out``.

Not for direct use: ``bench/query_plans.py`` runs it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import re
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

EXPLAINED = ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")
STAGE = re.compile(r"\bmwaa_iac_stage_[a-z_]+")
CATALOG = ("pg_catalog.", "information_schema.", "pg_trigger", "pg_namespace", "pg_class")


def seq_scans_beyond(plan: dict, skipped) -> bool:
    """Whether the plan reads a table other than ``skipped`` by a sequential scan."""
    stack = [plan.get("Plan", {})]
    while stack:
        node = stack.pop()
        name = str(node.get("Relation Name", ""))
        small = name.startswith(("log_template", "dataset")) or name in skipped
        if node.get("Node Type") == "Seq Scan" and not small:
            return True
        stack += node.get("Plans", [])
    return False


class Recorder:
    """Every statement on one engine: its text (parameters in, as psycopg2 sends it), the caller,
    its time, its rows and (``explain``) its plan."""

    def __init__(self, module_file: str, explain: bool) -> None:
        self.module_file = str(Path(module_file).resolve())
        self.explain = explain
        self.statements: list[dict] = []
        self._pending: list[tuple[dict, float]] = []
        self.tag: str | None = None  # a what-if statement's name (not the copy module's SQL)

    def caller(self) -> list[str]:
        """The functions of the copy module (or Airflow's endpoints) on the stack, outermost first."""
        if self.tag:
            return [self.tag]
        chain = []
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if name == self.module_file or "api_connexion/endpoints" in name:
                chain.append(frame.f_code.co_name)
            frame = frame.f_back
        return list(reversed(chain))

    def _plan(self, connection, sql: str, entry: dict) -> None:
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if not self.explain or head not in EXPLAINED or any(c in sql for c in CATALOG):
            return
        cursor = connection.cursor()
        try:
            cursor.execute("SAVEPOINT mwaa_iac_qp")
            try:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
                entry["plan"] = cursor.fetchone()[0][0]
            except Exception as exc:
                entry["plan_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            cursor.execute("ROLLBACK TO SAVEPOINT mwaa_iac_qp")
            stages = sorted(set(STAGE.findall(sql)))
            if head == "INSERT" and stages and seq_scans_beyond(entry.get("plan", {}), stages):
                # what if the staged rows had statistics (ANALYZE of the staging tables first)
                cursor.execute("SAVEPOINT mwaa_iac_qp_analyzed")
                for stage in stages:
                    cursor.execute(f"ANALYZE {stage}")
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
                entry["plan_if_analyzed"] = cursor.fetchone()[0][0]
                cursor.execute("ROLLBACK TO SAVEPOINT mwaa_iac_qp_analyzed")
            cursor.execute("RELEASE SAVEPOINT mwaa_iac_qp")
        finally:
            cursor.close()

    def before(self, conn, cursor, statement, parameters, context, executemany):
        try:
            sql = cursor.mogrify(statement, parameters).decode() if parameters else statement
        except Exception:
            sql = statement
        entry = {"seq": len(self.statements) + 1, "caller": self.caller(), "sql": sql}
        if not executemany:
            self._plan(cursor.connection, sql, entry)
        self._pending.append((entry, time.perf_counter()))

    def after(self, conn, cursor, statement, parameters, context, executemany):
        entry, start = self._pending.pop()
        entry["ms"] = round((time.perf_counter() - start) * 1000, 2)
        entry["rowcount"] = cursor.rowcount
        self.statements.append(entry)

    def copy(self, cursor, sql: str, handle) -> None:
        """A raw cursor's ``copy_expert``, recorded (COPY (select) TO: the select's plan)."""
        if isinstance(sql, bytes):
            sql = sql.decode()
        entry = {"seq": len(self.statements) + 1, "caller": self.caller(), "sql": sql}
        inner = sql.strip()
        if inner.startswith("COPY (") and ") TO STDOUT" in inner:
            self._plan(cursor.connection, inner[len("COPY (") : inner.rindex(") TO STDOUT")], entry)
        start = time.perf_counter()
        cursor.copy_expert(sql, handle)
        entry["ms"] = round((time.perf_counter() - start) * 1000, 2)
        entry["rowcount"] = cursor.rowcount
        self.statements.append(entry)


class RecordedCursor:
    def __init__(self, cursor, recorder: Recorder) -> None:
        self._cursor = cursor
        self._recorder = recorder

    def copy_expert(self, sql, handle, *args, **kwargs):
        return self._recorder.copy(self._cursor, sql, handle)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


def load_copy_module(path: str):
    spec = importlib.util.spec_from_file_location("mwaa_iac_copy", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mwaa_iac_copy"] = module
    spec.loader.exec_module(module)
    return module


def local_storage(store: Path):
    def _open(uri, mode):
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3 URI: {uri}")
        path = store / uri[len("s3://") :]
        if "w" in mode:
            path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, mode)

    return _open


def context_for(dag_id: str, conf: dict) -> dict:
    return {
        "dag_run": SimpleNamespace(conf=conf),
        "run_id": f"qp__{int(time.time())}",
        "dag": SimpleNamespace(dag_id=dag_id),
    }


def drain(readable: list[str]):
    """Airflow's ``GET /dags/~/dagRuns/~/taskInstances`` with the freeze's drain's query."""
    from airflow.api_connexion.endpoints import task_instance_endpoint as endpoint
    from airflow.utils.session import create_session

    endpoint.get_readable_dags = lambda: set(readable)
    function = inspect.unwrap(endpoint.get_task_instances)
    with create_session() as session:
        page = function(
            limit=100,
            dag_id="~",
            dag_run_id="~",
            state=["queued", "running", "restarting"],
            offset=0,
            session=session,
        )
    return {"total_entries": page.get("total_entries"), "listed": len(page.get("task_instances", []))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("backup", "restore", "drain"))
    parser.add_argument("--copy-module", required=True)
    parser.add_argument("--factory", default="")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--bucket", default="qp-bucket")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--since", default="")
    parser.add_argument("--own-dags", default="")
    parser.add_argument("--capture", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from airflow import settings
    from sqlalchemy import event

    copy = load_copy_module(args.copy_module)
    copy._open = local_storage(args.store)
    notes: list[dict] = []
    copy._note = lambda context, result: notes.append(result)
    recorder = Recorder(args.copy_module, explain=args.capture)
    if args.capture:
        event.listen(settings.engine, "before_cursor_execute", recorder.before)
        event.listen(settings.engine, "after_cursor_execute", recorder.after)
        raw_cursor = copy._raw_cursor
        copy._raw_cursor = lambda session: RecordedCursor(raw_cursor(session), recorder)
    own = tuple(d for d in args.own_dags.split(",") if d)
    conf = {"bucket": args.bucket, "prefix": args.prefix}
    if args.since:
        conf["since"] = args.since
    started = time.perf_counter()
    result: dict = {}
    try:
        if args.mode == "drain":
            from sqlalchemy import text

            with settings.Session() as session:
                readable = [r[0] for r in session.execute(text("SELECT dag_id FROM dag"))]
            recorder.statements.clear()
            result = drain(readable)
        else:
            module, name = args.factory.split(":")
            factory = getattr(importlib.import_module(module), name)(
                dag_id=f"{args.mode}_metadata", path_prefix=args.prefix, storage_type="S3"
            )
            action = copy.backup if args.mode == "backup" else copy.restore
            result = action(factory, context_for(f"{args.mode}_metadata", conf), own)
        ok = True
    except Exception as exc:
        ok = False
        result = {"error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": traceback.format_exc()[-4000:]}
    seconds = round(time.perf_counter() - started, 2)
    out = {
        "mode": args.mode,
        "ok": ok,
        "seconds": seconds,
        "result": result,
        "notes": notes,
        "statements": recorder.statements,
    }
    args.out.write_text(json.dumps(out, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
