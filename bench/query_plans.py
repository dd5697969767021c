"""Benchmark: the query plans of the freeze's SQL at 3,000 and 1,000,000 task instances (issue 25, item 3).

What the freeze asks the databases, with ``EXPLAIN (ANALYZE, BUFFERS)``, on a scratch PostgreSQL with
Airflow 2.10.3's schema (``airflow db migrate``) filled by SQL (``generate_series``) in the freeze
benchmark's proportions: 500 DAGs of ten tasks, N task instances (N / 10 runs, round robin), one XCom
and one log row per task instance; plus what that benchmark's seeding lacks and a real environment
has: 1 % of the task instances on their second try (a ``task_instance_history`` and a ``task_fail``
row each), and ``rendered_task_instance_fields`` for the last 30 runs of every task (Airflow keeps
``max_num_rendered_ti_fields_per_task`` = 30).

For each size (``--rows``):

1. **pass 1**: the copy module's own ``backup()`` (``mwaa_iac/dr_runtime/mwaa_iac_copy.py``, run by the
   Airflow 2.10.3 venv's Python as the DR DAGs run it; files go to a local folder instead of S3) takes
   the full backup the target then holds. The target is a copy of the source database made at that
   moment (``CREATE DATABASE ... TEMPLATE``) with the restore marker naming pass 1;
2. **activity** on the source, as in ``bench/freeze_bench.py``: 50 runs over 10 DAGs, one old task
   instance cleared and run again, one old run deleted, and a log row per DAG for the freeze's pause;
3. **the freeze**, every statement captured as it runs (``bench/query_plans_capture.py``): the
   drain's ``GET /dags/~/dagRuns/~/taskInstances?state=queued&state=running&state=restarting``
   (Airflow 2.10.3's endpoint function, its own SQL), pass 2's ``backup()`` with ``since`` = pass 1 (a
   delta) on the source, and ``restore()`` of it on the target. Each statement is run once under
   ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` (DML inside a savepoint rolled back), then for real.

Then, clearly apart (``what-if``: NOT the module's SQL): each restore INSERT that reads a history
table whole, planned again after ``ANALYZE`` of its staging table.

It writes ``bench/out/query-plans-<size>.md`` (per statement: where in the copy module it comes
from, its plan trimmed to the nodes, a summary table), ``bench/out/query-plans.json`` (every
statement) and, with ``--results``, a smaller results file beside the other benchmarks' (the
statements that matter, the plans of those of 100 ms or more). The scratch server listens on 127.0.0.1 on
a free port (and a socket in a private temp folder); it and its data are removed at the end (``--keep``
leaves them for a look).

Usage: ``python bench/query_plans.py [--rows 3000,1000000] [--results bench/results-query-plans-<date>.json]``
(run it under the heavy lock: ``flock /work/heavy.lock ...``; 3,000 and 1,000,000 take about 3.5
minutes on a 2-core machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mwaa_iac.core.dr import MWAA_IAC_DAG_IDS  # noqa: E402
from mwaa_iac.local.runtime.postgres import PostgresCluster  # noqa: E402

AIRFLOW_VERSION = "2.10.3"
FACTORY = "mwaa_dr.v_2_10.dr_factory:DRFactory_2_10"
CAPTURE = REPO / "bench" / "query_plans_capture.py"
DAG_COUNT = 500
TASKS = 10
RETRIED_PERCENT = 1  # task instances on their second try
RENDERED_KEPT = 30  # Airflow's max_num_rendered_ti_fields_per_task
ACTIVITY_RUNS = 50
ACTIVITY_DAGS = 10
# Airflow's tables that grow with history (a sequential scan of one of these grows with it).
HISTORY_TABLES = (
    "task_instance",
    "task_instance_history",
    "dag_run",
    "xcom",
    "log",
    "task_fail",
    "task_reschedule",
    "task_map",
    "rendered_task_instance_fields",
    "sla_miss",
    "dataset_event",
    "dagrun_dataset_event",
    "job",
    "dag_run_note",
    "task_instance_note",
)


def size_name(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows >= 1000 and rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


# -- a scratch PostgreSQL server -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ScratchServer:
    """A PostgreSQL server of the local stack's binaries (``mwaa_iac.local.runtime.postgres``) with its
    data in a temp folder, listening on 127.0.0.1:<free port> only, with the local stack's settings
    (``--shared-buffers``: the local stack's 64MB by default)."""

    def __init__(self, shared_buffers: str, work_mem: str | None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mwaa-iac-qp-"))
        os.chmod(self.root, 0o755)  # the server may run as an unprivileged user
        self.cluster = PostgresCluster(self.root / "data", self.root / "pids", log_file=self.root / "pg.log")
        self.cluster.socket_dir = self.root / "sock"
        self.port = free_port()
        self.shared_buffers = shared_buffers
        self.work_mem = work_mem
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.cluster.init()
        self.cluster.socket_dir.mkdir(mode=0o700, exist_ok=True)
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "max_connections": "50",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": self.shared_buffers,
            "autovacuum": "off",  # the bench ANALYZEs itself; no background work in the timings
            "log_min_messages": "warning",
        }
        if self.work_mem:
            settings["work_mem"] = self.work_mem
        args = [self.cluster.tool("postgres"), "-D", str(self.cluster.data_dir)]
        args += ["-k", str(self.cluster.socket_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        cmd, preexec = self.cluster._server_command(args)
        with open(self.cluster.log_file, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=preexec
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.cluster.log_file.read_text()[-2000:]}")
            ready = subprocess.run(
                [self.cluster.tool("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("postgres did not become ready in 60 s")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres", timeout: float = 1800) -> str:
        result = subprocess.run(
            [self.cluster.tool("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", database, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"],
            input=sql,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()[-2000:]}\n(SQL: {sql[:300]}...)")
        return result.stdout.strip()

    def version(self) -> str:
        return self.psql("SHOW server_version")

    def stop(self, keep: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if keep:
            print(f"kept the scratch cluster's data in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# -- the history, by SQL ---------------------------------------------------------------------------

PICKLED_EMPTY_DICT = "decode('80057d942e', 'hex')"  # pickle.dumps({}): dag_run.conf, executor_config


def bench_dag(index: int) -> str:
    return f"bench_dag_{index:03d}"


def seed_sql(task_instances: int, dags: int = DAG_COUNT) -> str:
    """The history of ``task_instances`` task instances (``TASKS`` per run, runs round robin over
    ``dags`` DAGs, one a minute, in time order as an environment writes them): runs, task instances
    (1 % on their second try: a task_instance_history and a task_fail row each), one XCom and one log
    row per task instance, rendered fields of the last 30 runs of each task."""
    runs = max(1, task_instances // TASKS)
    kept = RENDERED_KEPT * dags  # the newest runs whose rendered fields Airflow keeps
    t0 = "TIMESTAMPTZ '2025-01-01 00:00:00+00'"
    when = f"{t0} + make_interval(mins => g)"
    retried = f"(g * {TASKS} + k) % {100 // RETRIED_PERCENT} = 0"
    own = ", ".join(f"'{d}'" for d in MWAA_IAC_DAG_IDS)
    return f"""
SET work_mem = '256MB';
INSERT INTO dag (dag_id, is_paused, is_subdag, is_active, last_parsed_time, fileloc, owners,
                 schedule_interval, max_active_tasks, max_active_runs, max_consecutive_failed_dag_runs,
                 has_task_concurrency_limits, has_import_errors, timetable_description, default_view)
SELECT d, d = ANY(ARRAY[{own}]) AND d <> 'backup_metadata', false, true, now(),
       '/usr/local/airflow/dags/' || d || '.py', 'airflow', 'null', 16, 16, 0, false, false, 'Never', 'grid'
FROM (SELECT 'bench_dag_' || lpad(i::text, 3, '0') AS d FROM generate_series(0, {dags - 1}) i
      UNION ALL SELECT unnest(ARRAY[{own}])) s;

CREATE TEMP TABLE qp_runs AS
SELECT g, 'bench_dag_' || lpad((g % {dags})::text, 3, '0') AS dag_id, 'bulk__' || g AS run_id, {when} AS at
FROM generate_series(1, {runs}) g;

INSERT INTO dag_run (dag_id, queued_at, execution_date, start_date, end_date, state, run_id,
                     creating_job_id, external_trigger, run_type, conf, data_interval_start,
                     data_interval_end, last_scheduling_decision, dag_hash, log_template_id, updated_at,
                     clear_number)
SELECT dag_id, at, at, at, at + interval '5 minutes', 'success', run_id, NULL, true, 'manual',
       {PICKLED_EMPTY_DICT}, at, at, at + interval '5 minutes', md5(dag_id), 1,
       at + interval '5 minutes', 0
FROM qp_runs ORDER BY g;

INSERT INTO task_instance (task_id, dag_id, run_id, map_index, start_date, end_date, duration, state,
                           try_number, max_tries, hostname, unixname, job_id, pool, pool_slots, queue,
                           priority_weight, operator, custom_operator_name, queued_dttm,
                           queued_by_job_id, pid, executor_config, updated_at, external_executor_id)
SELECT 't' || lpad(k::text, 2, '0'), dag_id, run_id, -1, at, at + interval '1 minute', 60.0, 'success',
       CASE WHEN {retried} THEN 2 ELSE 1 END, CASE WHEN {retried} THEN 1 ELSE 0 END,
       'worker-' || (g % 4), 'airflow', g * {TASKS} + k, 'default_pool', 1, 'default', 1,
       CASE WHEN k = 0 THEN 'PythonOperator' ELSE 'EmptyOperator' END,
       CASE WHEN k = 0 THEN 'PythonOperator' ELSE 'EmptyOperator' END, at, 1, 1000 + k,
       {PICKLED_EMPTY_DICT}, at + interval '1 minute', md5(run_id || k)::uuid::text
FROM qp_runs CROSS JOIN generate_series(0, {TASKS - 1}) k ORDER BY g, k;

INSERT INTO task_instance_history (task_id, dag_id, run_id, map_index, try_number, start_date, end_date,
                                   duration, state, max_tries, hostname, unixname, job_id, pool,
                                   pool_slots, queue, priority_weight, operator, custom_operator_name,
                                   queued_dttm, queued_by_job_id, pid, executor_config, updated_at)
SELECT 't' || lpad(k::text, 2, '0'), dag_id, run_id, -1, 1, at, at + interval '30 seconds', 30.0, 'failed',
       1, 'worker-0', 'airflow', g, 'default_pool', 1, 'default', 1, 'PythonOperator', 'PythonOperator',
       at, 1, 999, {PICKLED_EMPTY_DICT}, at + interval '30 seconds'
FROM qp_runs CROSS JOIN generate_series(0, {TASKS - 1}) k WHERE {retried} ORDER BY g, k;

INSERT INTO task_fail (task_id, dag_id, run_id, map_index, start_date, end_date, duration)
SELECT 't' || lpad(k::text, 2, '0'), dag_id, run_id, -1, at, at + interval '30 seconds', 30
FROM qp_runs CROSS JOIN generate_series(0, {TASKS - 1}) k WHERE {retried} ORDER BY g, k;

INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp)
SELECT r.id, 't' || lpad(k::text, 2, '0'), -1, 'return_value', q.dag_id, q.run_id,
       convert_to('{{"task": "t' || lpad(k::text, 2, '0') || '", "run": ' || q.g || '}}', 'UTF8'),
       q.at + interval '1 minute'
FROM qp_runs q JOIN dag_run r ON r.dag_id = q.dag_id AND r.run_id = q.run_id
CROSS JOIN generate_series(0, {TASKS - 1}) k ORDER BY q.g, k;

INSERT INTO log (dttm, dag_id, task_id, map_index, event, execution_date, run_id, owner, try_number)
SELECT at + interval '1 minute', dag_id, 't' || lpad(k::text, 2, '0'), -1, 'success', at, run_id,
       'airflow', 1
FROM qp_runs CROSS JOIN generate_series(0, {TASKS - 1}) k ORDER BY g, k;

INSERT INTO rendered_task_instance_fields (dag_id, task_id, run_id, map_index, rendered_fields)
SELECT dag_id, 't' || lpad(k::text, 2, '0'), run_id, -1,
       '{{"templates_dict": null, "op_args": [], "op_kwargs": {{}}}}'::json
FROM qp_runs CROSS JOIN generate_series(0, {TASKS - 1}) k WHERE g > {runs - kept} ORDER BY g, k;
"""


def activity_sql(task_instances: int, dags: int = DAG_COUNT) -> str:
    """What happens on the source between pass 1 and pass 2 (``bench/freeze_bench.py``'s activity):
    50 new runs over 10 DAGs (task instances, XComs, log rows), one old task instance cleared and run
    again (its first try to task_instance_history), one old run deleted (cascading to its task
    instances, XComs, rendered fields); then the freeze's pause writes a log row per DAG."""
    runs = max(1, task_instances // TASKS)
    step = dags // ACTIVITY_DAGS
    cleared_g, deleted_g = min(3, runs), min(4, runs)  # old runs of two other DAGs
    cleared = (bench_dag(cleared_g % dags), f"bulk__{cleared_g}")
    deleted = (bench_dag(deleted_g % dags), f"bulk__{deleted_g}")
    t1 = f"TIMESTAMPTZ '2025-01-01 00:00:00+00' + make_interval(mins => {runs + 60})"
    return f"""
CREATE TEMP TABLE qp_act AS
SELECT a, 'bench_dag_' || lpad((((a % {ACTIVITY_DAGS}) * {step}) + 1)::text, 3, '0') AS dag_id,
       'act_' || lpad(a::text, 3, '0') AS run_id, {t1} + make_interval(secs => a) AS at
FROM generate_series(0, {ACTIVITY_RUNS - 1}) a;

INSERT INTO dag_run (dag_id, queued_at, execution_date, start_date, end_date, state, run_id, external_trigger,
                     run_type, conf, data_interval_start, data_interval_end, log_template_id, updated_at,
                     clear_number)
SELECT dag_id, at, at, at, at + interval '20 seconds', 'success', run_id, true, 'manual',
       {PICKLED_EMPTY_DICT}, at, at, 1, at + interval '20 seconds', 0 FROM qp_act ORDER BY a;
INSERT INTO task_instance (task_id, dag_id, run_id, map_index, start_date, end_date, duration, state,
                           try_number, max_tries, hostname, unixname, pool, pool_slots, queue,
                           priority_weight, operator, queued_dttm, executor_config, updated_at)
SELECT 't' || lpad(k::text, 2, '0'), dag_id, run_id, -1, at, at + interval '5 seconds', 5.0, 'success', 1,
       0, 'worker-0', 'airflow', 'default_pool', 1, 'default', 1, 'EmptyOperator', at,
       {PICKLED_EMPTY_DICT}, at + interval '5 seconds'
FROM qp_act CROSS JOIN generate_series(0, {TASKS - 1}) k ORDER BY a, k;
INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp)
SELECT r.id, 't' || lpad(k::text, 2, '0'), -1, 'return_value', q.dag_id, q.run_id,
       convert_to('{{"act": ' || q.a || '}}', 'UTF8'), q.at
FROM qp_act q JOIN dag_run r ON r.dag_id = q.dag_id AND r.run_id = q.run_id
CROSS JOIN generate_series(0, {TASKS - 1}) k;
INSERT INTO log (dttm, dag_id, task_id, map_index, event, execution_date, run_id, owner, try_number)
SELECT at + interval '5 seconds', dag_id, 't' || lpad(k::text, 2, '0'), -1, 'success', at, run_id,
       'airflow', 1
FROM qp_act CROSS JOIN generate_series(0, {TASKS - 1}) k;

INSERT INTO task_instance_history (task_id, dag_id, run_id, map_index, try_number, start_date, end_date,
                                   duration, state, max_tries, pool, pool_slots, queue, priority_weight,
                                   operator, executor_config, updated_at)
SELECT task_id, dag_id, run_id, map_index, try_number, start_date, end_date, duration, state, max_tries,
       pool, pool_slots, queue, priority_weight, operator, executor_config, updated_at
FROM task_instance WHERE dag_id = '{cleared[0]}' AND run_id = '{cleared[1]}' AND task_id = 't00';
UPDATE task_instance SET try_number = try_number + 1, max_tries = max_tries + 1, start_date = {t1},
       end_date = {t1} + interval '1 minute', updated_at = {t1} + interval '1 minute'
WHERE dag_id = '{cleared[0]}' AND run_id = '{cleared[1]}' AND task_id = 't00';
UPDATE dag_run SET clear_number = clear_number + 1, updated_at = {t1} + interval '1 minute'
WHERE dag_id = '{cleared[0]}' AND run_id = '{cleared[1]}';
INSERT INTO log (dttm, dag_id, event, run_id, owner)
VALUES ({t1}, '{cleared[0]}', 'clear', '{cleared[1]}', 'admin');

DELETE FROM dag_run WHERE dag_id = '{deleted[0]}' AND run_id = '{deleted[1]}';
INSERT INTO log (dttm, dag_id, event, owner)
SELECT now(), dag_id, 'paused', 'mwaa-iac' FROM dag WHERE dag_id LIKE 'bench\\_dag\\_%';
"""


# -- one size ---------------------------------------------------------------------------------------


class Runner:
    """The Airflow venv's Python running ``bench/query_plans_capture.py`` (or ``airflow``) against a
    database of the scratch server."""

    def __init__(self, server: ScratchServer, venv: Path, work: Path) -> None:
        self.server = server
        self.venv = venv
        self.work = work
        self.home = work / "airflow_home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.store = work / "store"
        self.vendor = work / "vendor"
        self.vendor.mkdir(exist_ok=True)
        # mwaa-dr and smart_open beside the copy module, as mwaa-iac delivers them (mwaa_iac_dr/vendor/)
        import mwaa_dr
        import smart_open

        for module in (mwaa_dr, smart_open):
            source = Path(module.__file__).parent
            link = self.vendor / source.name
            if not link.exists():
                link.symlink_to(source)

    def env(self, database: str) -> dict[str, str]:
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.server.url(database),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__CORE__FERNET_KEY": "0" * 43 + "=",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PYTHONPATH": str(self.vendor),
        }

    def migrate(self, database: str) -> None:
        result = subprocess.run(
            [str(self.venv / "bin" / "airflow"), "db", "migrate"],
            env=self.env(database),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed: {result.stderr[-2000:]}")

    def capture(self, database: str, mode: str, *, prefix: str = "", since: str = "", capture: bool) -> dict:
        out = self.work / f"{database}-{mode}-{prefix.replace('/', '_')}.json"
        cmd = [
            str(self.venv / "bin" / "python"),
            str(CAPTURE),
            mode,
            "--copy-module",
            str(REPO / "mwaa_iac" / "dr_runtime" / "mwaa_iac_copy.py"),
            "--factory",
            FACTORY,
            "--store",
            str(self.store),
            "--prefix",
            prefix,
            "--since",
            since,
            "--own-dags",
            ",".join(MWAA_IAC_DAG_IDS),
            "--out",
            str(out),
        ]
        if capture:
            cmd.append("--capture")
        result = subprocess.run(
            cmd, env=self.env(database), capture_output=True, text=True, timeout=3600, check=False
        )
        if not out.is_file():
            raise RuntimeError(f"{mode} wrote nothing: {result.stderr[-3000:]}")
        document = json.loads(out.read_text())
        if not document["ok"]:
            raise RuntimeError(f"{mode} failed: {json.dumps(document['result'])[:3000]}")
        return document


def table_sizes(server: ScratchServer, database: str) -> dict[str, dict[str, int]]:
    names = ", ".join(f"'{t}'" for t in HISTORY_TABLES)
    rows = server.psql(
        f"SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c "
        f"WHERE c.relkind = 'r' AND c.relname IN ({names}) ORDER BY 1",
        database,
    )
    sizes = {}
    for line in rows.splitlines():
        name, tuples, size = line.split("|")
        sizes[name] = {"rows": max(0, int(tuples)), "bytes": int(size)}
    return sizes


def run_size(server: ScratchServer, runner: Runner, rows: int) -> dict[str, Any]:
    """One size: seed, pass 1, target copy, activity, then the freeze's statements captured."""
    name = size_name(rows)
    source, target = f"qp_{name}_source", f"qp_{name}_target"
    timings: dict[str, float] = {}

    def timed(label: str, action):
        start = time.perf_counter()
        value = action()
        timings[label] = round(time.perf_counter() - start, 1)
        print(f"  {name}: {label} {timings[label]} s", flush=True)
        return value

    for database in (source, target):
        server.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    server.psql(f'CREATE DATABASE "{source}" TEMPLATE qp_schema')
    timed("seed", lambda: server.psql(seed_sql(rows), source))
    timed("vacuum analyze", lambda: server.psql("VACUUM ANALYZE", source))
    sizes = table_sizes(server, source)
    pass1 = timed(
        "pass 1 backup (full)", lambda: runner.capture(source, "backup", prefix="qp/pass1", capture=False)
    )
    timed("target copy", lambda: server.psql(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))
    server.psql(
        "INSERT INTO variable (key, val, is_encrypted) VALUES ('mwaa_iac_restore', "
        "json_build_object('backup', 'qp/pass1', 'restored_at', now(), 'xid', txid_current(), "
        "'snapshot', txid_current_snapshot()::text)::text, false)",
        target,
    )
    timed("activity", lambda: server.psql(activity_sql(rows), source))
    drain = timed("drain (captured)", lambda: runner.capture(source, "drain", capture=True))
    backup = timed(
        "pass 2 backup (captured)",
        lambda: runner.capture(source, "backup", prefix="qp/pass2", since="qp/pass1", capture=True),
    )
    if backup["result"].get("mode") != "delta" or backup["result"].get("fallback"):
        raise RuntimeError(f"pass 2 was not a delta: {json.dumps(backup['result'])[:2000]}")
    restore = timed(
        "pass 2 restore (captured)",
        lambda: runner.capture(target, "restore", prefix="qp/pass2", capture=True),
    )
    if restore["result"].get("mode") != "delta":
        raise RuntimeError(f"pass 2's restore was not a delta: {json.dumps(restore['result'])[:2000]}")
    return {
        "rows": rows,
        "size": name,
        "pass2": {k: backup["result"].get(k) for k in ("mode", "fallback", "manifest_rows", "seconds")},
        "restore": {k: restore["result"].get(k) for k in ("mode", "copied", "deleted_before", "seconds")},
        "tables": sizes,
        "timings_s": timings,
        "pass1": {"seconds": pass1["seconds"], "result": pass1["result"]},
        "phases": {"drain": drain, "backup": backup, "restore": restore},
        "databases": (source, target),
    }


# -- reading the plans ------------------------------------------------------------------------------

SCANS = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Bitmap Index Scan")


def nodes(plan: dict, depth: int = 0):
    yield depth, plan
    for child in plan.get("Plans", []):
        yield from nodes(child, depth + 1)


def main_table(sql: str) -> str:
    """The first real table a statement names (``FROM x``, ``INTO x``, ``UPDATE x``)."""
    import re

    copy_from = re.match(r"\s*COPY\s+mwaa_iac_stage_([a-z_]+)", sql)
    if copy_from:
        return copy_from.group(1)
    for match in re.finditer(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+([a-z_][a-z0-9_]*)", sql, re.IGNORECASE):
        name = match.group(1).lower()
        if name not in ("stdin", "stdout", "only", "lateral", "unnest"):
            return name
    return ""


def scanned(plan: dict) -> list[dict]:
    """Every scan node: table, how, rows it read (returned + removed by its filter, over its loops)."""
    found = []
    for _, node in nodes(plan):
        kind = node.get("Node Type")
        if kind not in SCANS or kind == "Bitmap Index Scan":
            continue
        loops = node.get("Actual Loops", 1) or 1
        read = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
        whole = kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node)
        found.append(
            {
                "table": node.get("Relation Name", ""),
                "scan": kind,
                "whole_table": whole,
                "index": node.get("Index Name") or _bitmap_index(node),
                "rows_read": int(read),
                "ms": round(node.get("Actual Total Time", 0.0) * loops, 2),
            }
        )
    return found


def _bitmap_index(node: dict) -> str:
    names = [n.get("Index Name") for _, n in nodes(node) if n.get("Node Type") == "Bitmap Index Scan"]
    return "+".join(n for n in names if n)


def label_of(statement: dict) -> str:
    chain = [c for c in statement["caller"] if c not in ("backup", "restore", "_retrying", "<lambda>")]
    if not chain:
        return "?"
    if chain[-1] in ("_run", "_copy_out", "execute"):
        chain = chain[:-1] or chain
    return " > ".join(chain[-2:])


def summarise(document: dict, phase: str) -> list[dict]:
    """One row per statement of a captured phase."""
    rows = []
    seen: dict[tuple, int] = {}
    for statement in document["statements"]:
        sql = statement["sql"]
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        plan = statement.get("plan")
        table = main_table(sql)
        label = label_of(statement)
        key = (phase, label, table)
        seen[key] = seen.get(key, 0) + 1
        scans = scanned(plan["Plan"]) if plan else []
        # a sequential scan, or an index scan without an index condition (every row, in index order)
        history_seq = [s for s in scans if s["whole_table"] and s["table"] in HISTORY_TABLES]
        rows.append(
            {
                "phase": phase,
                "key": f"{phase}|{label}|{table}|{seen[key]}",
                "label": label,
                "table": table,
                "kind": head,
                "ms": statement.get("ms"),
                "plan_ms": round(plan["Execution Time"] + plan.get("Planning Time", 0.0), 2)
                if plan
                else None,
                "planning_ms": round(plan.get("Planning Time", 0.0), 2) if plan else None,
                "rows": statement.get("rowcount"),
                "scans": scans,
                "history_seq_scan": sorted({s["table"] for s in history_seq}),
                "history_rows_read": sum(s["rows_read"] for s in history_seq),
                "catalog": head in ("SELECT", "WITH") and plan is None and "plan_error" not in statement,
                "plan_error": statement.get("plan_error"),
                "sql": sql,
                "plan": plan,
                "plan_if_analyzed": statement.get("plan_if_analyzed"),
            }
        )
        analyzed = statement.get("plan_if_analyzed")
        if analyzed:
            rows[-1]["if_analyzed"] = {
                "plan_ms": round(analyzed["Execution Time"] + analyzed.get("Planning Time", 0.0), 2),
                "scans": scanned(analyzed["Plan"]),
            }
    return rows


def render_plan(plan: dict, width: int = 150) -> list[str]:
    """A plan trimmed to its nodes: kind, table and index, actual rows x loops, time, buffers, and its
    condition or filter (shortened)."""
    lines = []
    for depth, node in nodes(plan["Plan"]):
        kind = node.get("Node Type", "?")
        if node.get("Strategy") and kind == "Aggregate":
            kind = f"{node['Strategy'].title()}Aggregate"
        where = ""
        if node.get("Relation Name"):
            where = f" on {node['Relation Name']}"
        if node.get("Index Name"):
            where += f" using {node['Index Name']}"
        buffers = node.get("Shared Hit Blocks", 0), node.get("Shared Read Blocks", 0)
        temp = node.get("Temp Read Blocks", 0) + node.get("Temp Written Blocks", 0)
        text = (
            f"{'  ' * depth}-> {kind}{where} (rows={node.get('Actual Rows')} loops={node.get('Actual Loops')}"
            f" {node.get('Actual Total Time', 0):.1f} ms; buffers hit={buffers[0]} read={buffers[1]}"
            + (f" temp={temp}" if temp else "")
            + ")"
        )
        lines.append(text)
        for field in ("Index Cond", "Hash Cond", "Recheck Cond", "Filter", "Join Filter", "Sort Key"):
            if field in node:
                value = node[field] if isinstance(node[field], str) else ", ".join(map(str, node[field]))
                if len(value) > width:
                    value = value[: width - 3] + "..."
                lines.append(f"{'  ' * depth}     {field}: {value}")
        if node.get("Rows Removed by Filter"):
            lines.append(f"{'  ' * depth}     Rows Removed by Filter: {node['Rows Removed by Filter']}")
        if node.get("Sort Method"):
            method = f"{node['Sort Method']} {node.get('Sort Space Used')} kB"
            lines.append(f"{'  ' * depth}     Sort Method: {method}")
    timing = plan.get("Planning Time", 0), plan["Execution Time"]
    lines.append(f"Planning Time: {timing[0]:.1f} ms; Execution Time: {timing[1]:.1f} ms")
    return lines


def short_sql(sql: str, limit: int = 600) -> str:
    import re

    sql = re.sub(r"\s+", " ", sql).strip()
    # long IN / ARRAY lists of DAG ids (the drain's readable DAGs, a delta's DAGs): first ones only
    sql = re.sub(r"((?:'[^']*', ){3})(?:'[^']*', )+('[^']*')", r"\1... \2", sql)
    return sql if len(sql) <= limit else sql[: limit - 3] + "..."


# -- the report -----------------------------------------------------------------------------------

PHASES = ("drain", "backup", "restore")
FREEZE_PHASES = PHASES
PHASE_NAMES = {
    "drain": "drain: GET /dags/~/dagRuns/~/taskInstances (source)",
    "backup": "pass 2 backup, a delta (source)",
    "restore": "pass 2 restore (target)",
}


def scan_text(row: dict) -> str:
    if not row["scans"]:
        return "-" if row["plan_ms"] is not None else "(not planned)"
    parts = []
    for scan in row["scans"]:
        how = {"Seq Scan": "Seq", "Index Scan": "Index", "Index Only Scan": "Index Only"}.get(
            scan["scan"], "Bitmap"
        )
        table = scan["table"] if not scan["table"].startswith("mwaa_iac_stage_") else "stage"
        text = f"{how} {table}"
        if scan["whole_table"] and scan["table"] in HISTORY_TABLES:
            text = f"**{text}**"
        if scan["whole_table"] and scan["scan"] != "Seq Scan":
            text += " whole"
        if scan["index"]:
            text += f" ({scan['index']})"
        parts.append(text)
    return ", ".join(dict.fromkeys(parts))


def planned(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["plan_ms"] is not None or r["kind"] == "COPY"]


def markdown(result: dict, baseline: dict | None, meta: dict) -> str:
    rows = result["statements"]
    base_ms = {r["key"]: r for r in (baseline or {}).get("statements", [])}
    base_name = baseline["size"] if baseline else None
    out = [
        f"# The freeze's SQL at {result['rows']:,} task instances ({meta['date']})",
        "",
        f"`python bench/query_plans.py` on {meta['machine']}; PostgreSQL {meta['postgres']} "
        f"(shared_buffers {meta['shared_buffers']}, the local stack's settings), Airflow "
        f"{AIRFLOW_VERSION}'s schema, {DAG_COUNT} DAGs. Every statement the freeze sends to the two "
        "databases, run once under `EXPLAIN (ANALYZE, BUFFERS)` and once for real (`ms run`; the "
        "second run finds the pages the first read in memory). **Bold**: a scan of every row of a "
        "table that grows with history (a sequential scan, or an index scan without an index condition: "
        "`whole`).",
        "",
        "| table | rows | size |",
        "|---|---:|---:|",
    ]
    for name, info in sorted(result["tables"].items(), key=lambda kv: -kv[1]["rows"]):
        if info["rows"]:
            out.append(f"| {name} | {info['rows']:,} | {info['bytes'] / 1e6:.0f} MB |")
    out += ["", "## Summary", ""]
    for phase in PHASES:
        phase_rows = [r for r in rows if r["phase"] == phase]
        shown = planned(phase_rows)
        other = [r for r in phase_rows if r not in shown]
        total = sum(r["ms"] or 0 for r in phase_rows)
        out += [f"### {PHASE_NAMES[phase]}: {total / 1000:.2f} s of SQL", ""]
        header = (
            "| # | statement | table | scans | history rows read by whole-table scans | rows "
            "| ms plan + exec (EXPLAIN ANALYZE) | ms run |"
        )
        rule = "|---:|---|---|---|---:|---:|---:|---:|"
        if baseline:
            header += f" ms run at {base_name} |"
            rule += "---:|"
        out += [header, rule]
        for index, row in enumerate(shown, 1):
            line = (
                f"| {index} | {row['label']} | {row['table']} | {scan_text(row)} | "
                f"{row['history_rows_read']:,} | {row['rows'] if row['rows'] is not None else ''} | "
                f"{row['plan_ms'] if row['plan_ms'] is not None else ''} | {row['ms']} |"
            )
            if baseline:
                then = base_ms.get(row["key"])
                line += f" {then['ms'] if then else 'n/a'} |"
            out.append(line)
        other_ms = sum(r["ms"] or 0 for r in other)
        out += ["", f"Other statements: {len(other)} (catalog lookups, SET, SAVEPOINT, COPY FROM "
                f"into the staging tables...), {other_ms:.0f} ms.", ""]  # fmt: skip
    out += [
        "## Plans",
        "",
        "Statements whose plan ran 1 ms or more, or read 1,000 rows or more of a history table whole.",
        "",
    ]
    for phase in PHASES:
        for index, row in enumerate(planned([r for r in rows if r["phase"] == phase]), 1):
            if row["plan"] is None or (row["plan_ms"] < 1 and row["history_rows_read"] < 1000):
                continue
            out += [
                f"### {phase} #{index}: {row['label']} ({row['table']}), {row['plan_ms']} ms",
                "",
                f"`{short_sql(row['sql']).replace('`', chr(39))}`",
                "",
                "```",
                *render_plan(row["plan"]),
                "```",
                "",
            ]
            if row.get("plan_if_analyzed"):
                out += [
                    "The same statement after `ANALYZE` of its staging table (a what-if, rolled back):",
                    "",
                    "```",
                    *render_plan(row["plan_if_analyzed"]),
                    "```",
                    "",
                ]
    return "\n".join(out) + "\n"


def compact(result: dict) -> dict:
    """A size's result for the JSON file: statements without their JSON plans (the trimmed text of
    the ones that matter instead)."""
    statements = []
    for row in result["statements"]:
        entry = {k: v for k, v in row.items() if k not in ("plan", "sql", "plan_if_analyzed")}
        entry["sql"] = short_sql(row["sql"], 400)
        if row["plan"] is not None and (row["plan_ms"] >= 1 or row["history_rows_read"] >= 1000):
            entry["plan_text"] = render_plan(row["plan"])
        if row.get("plan_if_analyzed"):
            entry["plan_if_analyzed_text"] = render_plan(row["plan_if_analyzed"])
        statements.append(entry)
    totals = {
        phase: round(sum(r["ms"] or 0 for r in result["statements"] if r["phase"] == phase) / 1000, 3)
        for phase in PHASES
    }
    return {**{k: v for k, v in result.items() if k not in ("statements", "phases")}, "sql_seconds": totals,
            "statements": statements}  # fmt: skip


def slim(result: dict, baseline: dict | None = None) -> dict:
    """A size's result for the results file beside the other benchmarks': per phase the seconds of
    SQL, the statements that planned 1 ms or more or read a history table whole (scans in words),
    the plan text of those of 100 ms or more, and the rest as a count and a total."""
    statements, others = [], {}
    for row in result["statements"]:
        significant = (row["plan_ms"] or 0) >= 1 or row["history_rows_read"] >= 1000 or (row["ms"] or 0) >= 10
        if not significant:
            count, ms = others.get(row["phase"], (0, 0.0))
            others[row["phase"]] = (count + 1, round(ms + (row["ms"] or 0), 2))
            continue
        entry = {
            k: row[k]
            for k in ("phase", "key", "label", "table", "rows", "ms", "plan_ms", "history_rows_read")
        }
        entry["scans"] = scan_text(row).replace("**", "")
        if baseline is not None:
            then = next((r for r in baseline["statements"] if r["key"] == row["key"]), None)
            entry[f"ms_at_{baseline['size']}"] = then["ms"] if then else None
        if (row["plan_ms"] or 0) >= 100 and row["plan"] is not None:
            entry["plan"] = render_plan(row["plan"], width=100)
        if row.get("if_analyzed"):
            entry["if_stage_analyzed"] = row["if_analyzed"]["plan_ms"]
        statements.append(entry)
    kept = ("rows", "size", "tables", "timings_s", "pass2", "restore")
    return {
        **{k: result[k] for k in kept if k in result},
        "sql_seconds": {
            phase: round(sum(r["ms"] or 0 for r in result["statements"] if r["phase"] == phase) / 1000, 3)
            for phase in PHASES
        },
        "statements": statements,
        "other_statements": {phase: {"count": c, "ms": ms} for phase, (c, ms) in others.items()},
    }


# -- main -----------------------------------------------------------------------------------------


def parse_rows(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        factor = 1_000_000 if part.endswith("m") else 1000 if part.endswith("k") else 1
        sizes.append(int(float(part.rstrip("mk")) * factor))
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="EXPLAIN (ANALYZE, BUFFERS) of every statement the freeze sends (drain, pass 2 "
        "backup and restore) on a scratch PostgreSQL with Airflow 2.10.3's schema and a seeded history.",
    )
    parser.add_argument("--rows", default="3000,1000000", help="task instances per size (3000,1m...)")
    parser.add_argument(
        "--airflow-venv",
        type=Path,
        default=None,
        help="an Airflow 2.10.3 venv (default: the local stack's, built if missing)",
    )
    parser.add_argument("--shared-buffers", default="64MB", help="the scratch server's shared_buffers")
    parser.add_argument("--work-mem", default=None, help="the scratch server's work_mem (default: 4MB)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--results", type=Path, default=None, help="also write the results JSON here")
    parser.add_argument("--keep", action="store_true", help="leave the scratch server's data folder")
    args = parser.parse_args(argv)
    sizes = sorted(parse_rows(args.rows))
    if args.airflow_venv is None:
        from mwaa_iac.adapters.airflow_venvs import ensure_venv

        print("the local stack's Airflow 2.10.3 venv (built the first time: several minutes)", flush=True)
        args.airflow_venv = ensure_venv("2.10.3").path
    if not (args.airflow_venv / "bin" / "airflow").is_file():
        raise SystemExit(f"no Airflow venv at {args.airflow_venv} (mwaa-iac local up builds it)")
    server = ScratchServer(args.shared_buffers, args.work_mem)
    work = Path(tempfile.mkdtemp(prefix="mwaa-iac-qp-work-"))
    results: list[dict] = []
    meta = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "shared_buffers": args.shared_buffers,
        "work_mem": args.work_mem or "4MB",
        "airflow": AIRFLOW_VERSION,
        "dags": DAG_COUNT,
    }
    try:
        server.start()
        meta["postgres"] = server.version()
        print(f"scratch PostgreSQL {meta['postgres']} on 127.0.0.1:{server.port}", flush=True)
        runner = Runner(server, args.airflow_venv, work)
        server.psql("CREATE DATABASE qp_schema")
        start = time.perf_counter()
        runner.migrate("qp_schema")
        print(f"  airflow db migrate: {time.perf_counter() - start:.1f} s", flush=True)
        for rows in sizes:
            result = run_size(server, runner, rows)
            statements = []
            phases = result.pop("phases")
            for phase in PHASES:
                statements += summarise(phases[phase], phase)
            result["statements"] = statements
            if not args.keep:
                for database in result["databases"]:
                    server.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                shutil.rmtree(runner.store, ignore_errors=True)
            results.append(result)
    finally:
        server.stop(keep=args.keep)
        shutil.rmtree(work, ignore_errors=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    baseline = results[0] if len(results) > 1 else None
    for result in results:
        page = markdown(result, baseline if result is not baseline else None, meta)
        (args.out_dir / f"query-plans-{result['size']}.md").write_text(page)
        print(f"wrote {args.out_dir / ('query-plans-' + result['size'] + '.md')}")
        for phase in PHASES:
            total = sum(r["ms"] or 0 for r in result["statements"] if r["phase"] == phase)
            print(f"  {result['size']} {phase}: {total / 1000:.2f} s of SQL")
    document = {**meta, "sizes": [compact(r) for r in results]}
    (args.out_dir / "query-plans.json").write_text(json.dumps(document, indent=1, default=str))
    if args.results:
        slimmed = {**meta, "sizes": [slim(r, baseline if r is not baseline else None) for r in results]}
        args.results.write_text(json.dumps(slimmed, indent=1, default=str) + "\n")
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
