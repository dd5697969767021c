"""Seed an emulated environment with real-looking history, for the demo, tests and benchmarks.

Everything goes through the same doors a user's data does: DAG files uploaded to the environment's
S3 DAG folder, and a seeding DAG triggered through InvokeRestApi that writes runs, task instances,
XComs, log rows, variables, connections (with passwords) and pools through Airflow's own models.

Benchmarks need more: ``SeedPlan.bulk_dags`` adds DAG files of a second kind (schedule None, one
Python task returning an XCom, then empty tasks side by side: a triggered run starts one task process
and takes two scheduling loops) and
``bulk_task_instances`` spreads that many task instances of history over them, round robin, each with
its XCom and log row. One run is seeded through the models as above; the others are copied from it
in the database (``INSERT ... SELECT``), so a million task instances take minutes, not hours.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.storage import S3

SEED_DAG_ID = "mwaa_iac_seed"
BUSINESS_DAGS = ("etl_orders", "report_daily", "sync_customers")
SEED_FOLDER = "seed"

BUSINESS_DAG_TEMPLATE = '''"""Example business DAG {dag_id} (seeded by mwaa-iac's local stack)."""
from datetime import datetime

from airflow import DAG
from airflow.operators.python import PythonOperator


def step(ti=None, **context):
    return {{"task": ti.task_id, "rows": 42}}


with DAG({dag_id!r}, schedule={schedule!r}, start_date=datetime(2024, 1, 1), catchup=False,
         description="seeded example") as dag:
    previous = None
    for index in range({tasks}):
        task = PythonOperator(task_id=f"t{{index:02d}}", python_callable=step)
        if previous is not None:
            previous >> task
        previous = task
'''

BULK_DAG_TEMPLATE = '''"""Benchmark DAG {dag_id} (seeded by mwaa-iac's local stack)."""
from datetime import datetime

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator


def step(ti=None, **context):
    return {{"task": ti.task_id, "rows": 42}}


with DAG({dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         description="seeded benchmark DAG", tags=["mwaa_iac_bench"]) as dag:
    first = PythonOperator(task_id="t00", python_callable=step)
    first >> [EmptyOperator(task_id=f"t{{index:02d}}") for index in range(1, {tasks})]
'''

SEED_DAG = '''"""mwaa-iac local stack: synthetic history through Airflow's models (not for production)."""
import json
from datetime import datetime, timedelta, timezone

from airflow import DAG
from airflow.models import Connection, DagBag, Log, Pool, Variable, XCom
from airflow.operators.python import PythonOperator
from airflow.settings import Session
from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunType
from sqlalchemy import text


DATES = ("execution_date", "logical_date", "data_interval_start", "data_interval_end", "start_date",
         "end_date", "queued_at", "queued_dttm", "updated_at", "last_scheduling_decision", "dttm",
         "timestamp")


def columns(session, table):
    rows = session.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                                "ORDER BY ordinal_position"), {"t": table})
    return [r[0] for r in rows]


def clone_runs(session, dag_id, template, count):
    """Bulk history for benchmarks: ``count`` copies of one seeded run (its task instances, XComs and
    log rows), hours before it, written with INSERT ... SELECT in the database."""
    def select(table, skip=()):
        out = []
        for c in columns(session, table):
            if c in skip:
                continue
            if c == "run_id":
                out.append((c, "'bulk__' || g"))
            elif c in DATES:
                out.append((c, f"t.{c} - (g || ' hours')::interval"))
            else:
                out.append((c, f"t.{c}"))
        return out

    params = {"d": dag_id, "r": template, "n": count}
    cols = select("dag_run", skip=("id",))
    session.execute(text(
        f"INSERT INTO dag_run ({', '.join(c for c, _ in cols)}) SELECT {', '.join(e for _, e in cols)} "
        "FROM dag_run t, generate_series(1, :n) g WHERE t.dag_id = :d AND t.run_id = :r"), params)
    cols = select("task_instance", skip=("id",))
    session.execute(text(
        f"INSERT INTO task_instance ({', '.join(c for c, _ in cols)}) SELECT {', '.join(e for _, e in cols)} "
        "FROM task_instance t, generate_series(1, :n) g WHERE t.dag_id = :d AND t.run_id = :r"), params)
    cols = select("xcom", skip=("dag_run_id",))
    session.execute(text(
        f"INSERT INTO xcom (dag_run_id, {', '.join(c for c, _ in cols)}) "
        f"SELECT dr.id, {', '.join(e for _, e in cols)} FROM xcom t CROSS JOIN generate_series(1, :n) g "
        "JOIN dag_run dr ON dr.dag_id = t.dag_id AND dr.run_id = 'bulk__' || g "
        "WHERE t.dag_id = :d AND t.run_id = :r"), params)
    cols = select("log", skip=("id",))
    session.execute(text(
        f"INSERT INTO log ({', '.join(c for c, _ in cols)}) SELECT {', '.join(e for _, e in cols)} "
        "FROM log t, generate_series(1, :n) g WHERE t.dag_id = :d AND t.run_id = :r"), params)


def seed_run(session, dag, n, when, run_type=DagRunType.SCHEDULED):
    """One successful run of ``dag`` at ``when`` through Airflow's models: its task instances, an XCom
    and a log row each. Returns its run id."""
    run_id = f"seed__{when.isoformat()}"
    dag_run = dag.create_dagrun(
        run_id=run_id, execution_date=when, data_interval=(when, when + timedelta(hours=1)),
        state=DagRunState.SUCCESS, run_type=run_type, external_trigger=run_type == DagRunType.MANUAL,
        start_date=when, session=session,
    )
    dag_run.end_date = when + timedelta(minutes=5)
    for ti in dag_run.get_task_instances(session=session):
        ti.state = "success"
        ti.start_date = when
        ti.end_date = when + timedelta(minutes=1)
        ti.duration = 60.0
        ti.try_number = 1
        XCom.set(key="return_value", value={"task": ti.task_id, "run": n}, task_id=ti.task_id,
                 dag_id=dag.dag_id, run_id=run_id, session=session)
        session.add(Log(event="success", task_instance=ti, owner="airflow"))
    return run_id


def bulk_runs(session, dag_ids, template, count):
    """Bulk history over many DAGs (benchmarks): ``count`` copies of run ``template`` of
    ``dag_ids[0]`` (its task instances, XComs and log rows), copy ``g`` (1..count) going to
    ``dag_ids[g % len(dag_ids)]`` as run ``bulk__<g>``, ``g // len(dag_ids)`` hours before the template;
    written with INSERT ... SELECT in the database. The DAGs must have the template's task ids."""
    series = ("(SELECT g, (CAST(:dags AS text[]))[1 + g % :nd] AS dag_id, 'bulk__' || g AS run_id, "
              "make_interval(hours => g / :nd) AS shift FROM generate_series(1, :n) g) s")

    def select(table, skip=()):
        out = []
        for c in columns(session, table):
            if c in skip:
                continue
            if c in ("dag_id", "run_id"):
                out.append((c, f"s.{c}"))
            elif c in DATES:
                out.append((c, f"t.{c} - s.shift"))
            else:
                out.append((c, f"t.{c}"))
        return out

    params = {"d": dag_ids[0], "r": template, "n": count, "dags": list(dag_ids), "nd": len(dag_ids)}
    where = "WHERE t.dag_id = :d AND t.run_id = :r"
    # Rows go in in the order of the keys their foreign keys check (task instances by their primary
    # key, XComs likewise): PostgreSQL checks each row's foreign key at the end of the statement, and
    # in random order a million checks read (and lock) pages all over a table larger than the buffers.
    order = {
        "dag_run": "ORDER BY s.dag_id, s.run_id",
        "task_instance": "ORDER BY s.dag_id, t.task_id, s.run_id, t.map_index",
        "log": "",
    }
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    for table in ("dag_run", "task_instance", "log"):
        cols = select(table, skip=("id",))
        session.execute(text(
            f"INSERT INTO {table} ({', '.join(c for c, _ in cols)}) SELECT {', '.join(e for _, e in cols)} "
            f"FROM {table} t CROSS JOIN {series} {where} {order[table]}"), params)
    # the new runs' ids by copy number (a hash join for the XComs' dag_run_id)
    session.execute(text("CREATE TEMP TABLE mwaa_iac_bulk_ids (g int PRIMARY KEY, id int) ON COMMIT DROP"))
    session.execute(text(
        "INSERT INTO mwaa_iac_bulk_ids SELECT substr(run_id, 7)::int, id FROM dag_run "
        "WHERE left(run_id, 6) = 'bulk__' AND dag_id = ANY(CAST(:dags AS text[]))"), params)
    session.execute(text("ANALYZE mwaa_iac_bulk_ids"))
    cols = select("xcom", skip=("dag_run_id",))
    session.execute(text(
        f"INSERT INTO xcom (dag_run_id, {', '.join(c for c, _ in cols)}) "
        f"SELECT b.id, {', '.join(e for _, e in cols)} FROM xcom t CROSS JOIN {series} "
        f"JOIN mwaa_iac_bulk_ids b ON b.g = s.g {where} "
        "ORDER BY s.dag_id, t.task_id, s.run_id, t.map_index, t.key"), params)


def seed(**context):
    conf = context["dag_run"].conf or {}
    runs = int(conf.get("runs", 100))
    dags = conf.get("dags", [])
    bag = DagBag(read_dags_from_db=True)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    made = {"dag_runs": 0}
    with Session() as session:
        for i in range(int(conf.get("variables", 0))):
            value = json.dumps({"index": i, "secret": f"value-{i}"})
            Variable.set(f"seed_var_{i:02d}", value, session=session)
        for i in range(int(conf.get("connections", 0))):
            conn_id = f"seed_conn_{i:02d}"
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
            session.add(Connection(conn_id=conn_id, conn_type="postgres", host=f"db{i}.example.internal",
                                   login=f"user{i}", password=f"pw-{i}-s3cr3t", port=5432, schema="app"))
        for i in range(int(conf.get("pools", 0))):
            name = f"seed_pool_{i}"
            session.query(Pool).filter(Pool.pool == name).delete()
            session.add(Pool(pool=name, slots=4 + i, description="seeded", include_deferred=False))
        session.commit()
        offset = int(conf.get("offset", 0))
        for dag_id in dags:
            dag = bag.get_dag(dag_id, session=session)
            for n in range(offset, offset + runs):
                seed_run(session, dag, n, start + timedelta(hours=n))
                made["dag_runs"] += 1
                if made["dag_runs"] % 50 == 0:
                    session.commit()
        session.commit()
        clones = int(conf.get("clone_runs", 0))
        if clones:
            for dag_id in dags:
                clone_runs(session, dag_id, f"seed__{start.isoformat()}", clones)
            session.commit()
        bulk_dags = conf.get("bulk_dags", [])
        bulk = int(conf.get("bulk_task_instances", 0))
        if bulk_dags and bulk:
            dag = bag.get_dag(bulk_dags[0], session=session)
            template = seed_run(session, dag, 0, start, DagRunType.MANUAL)
            session.commit()
            per_run = len(dag.task_ids)
            bulk_runs(session, bulk_dags, template, -(-bulk // per_run) - 1)
            for table in ("dag_run", "task_instance", "xcom", "log"):
                session.execute(text(f"ANALYZE {table}"))
            session.commit()
        counts = {t: session.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in ("dag_run", "task_instance", "xcom", "log", "variable", "connection", "slot_pool")}
    Variable.set("mwaa_iac_seed", json.dumps(counts))
    return counts


with DAG("mwaa_iac_seed", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         description="mwaa-iac local stack seeding") as dag:
    PythonOperator(task_id="seed", python_callable=seed, execution_timeout=timedelta(hours=2))
'''


@dataclass
class SeedPlan:
    runs: int = 100  # per business DAG
    tasks: int = 10
    variables: int = 20
    connections: int = 10
    pools: int = 5
    dags: tuple[str, ...] = BUSINESS_DAGS
    clone_runs: int = 0  # extra runs per DAG copied in bulk by SQL (benchmarks at 100,000+ task instances)
    # Benchmarks: DAG files of BULK_DAG_TEMPLATE (schedule None; unpaused once seeded) and task instances
    # of history spread over them round robin (one run through the models, the rest copied by SQL).
    bulk_dags: tuple[str, ...] = ()
    bulk_task_instances: int = 0


def upload_dags(s3: S3, bucket: str, dag_path: str, plan: SeedPlan) -> list[str]:
    keys = []
    base = dag_path.strip("/")
    for dag_id in plan.dags:
        key = f"{base}/{SEED_FOLDER}/{dag_id}.py"
        s3.put_text(
            bucket, key, BUSINESS_DAG_TEMPLATE.format(dag_id=dag_id, schedule="@hourly", tasks=plan.tasks)
        )
        keys.append(key)
    for dag_id in plan.bulk_dags:
        key = f"{base}/{SEED_FOLDER}/{dag_id}.py"
        s3.put_text(bucket, key, BULK_DAG_TEMPLATE.format(dag_id=dag_id, tasks=plan.tasks))
        keys.append(key)
    key = f"{base}/{SEED_FOLDER}/{SEED_DAG_ID}.py"
    s3.put_text(bucket, key, SEED_DAG)
    keys.append(key)
    return keys


def wait_for_dags(
    api: AirflowApi, dag_ids: list[str], timeout: float = 300.0, sleep: Callable[[float], None] = time.sleep
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        missing = [d for d in dag_ids if api.get_dag(d) is None]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"DAGs not visible in {api.environment}: {', '.join(missing)}")
        sleep(2.0)


def wait_for_listed(
    api: AirflowApi,
    dag_ids: list[str],
    timeout: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until every DAG of ``dag_ids`` is in the DAG listing (a few requests for hundreds of DAGs)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = {d["dag_id"] for d in api.list_dags()}
        missing = [d for d in dag_ids if d not in listed]
        if not missing:
            return
        if time.monotonic() > deadline:
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise TimeoutError(f"DAGs not visible in {api.environment}: {', '.join(missing[:10])}{more}")
        sleep(5.0)


def seed_conf(plan: SeedPlan, offset: int = 0) -> dict[str, Any]:
    """The seeding DAG's run conf for ``plan``."""
    conf: dict[str, Any] = {
        "runs": plan.runs,
        "clone_runs": plan.clone_runs,
        "dags": list(plan.dags),
        "variables": plan.variables,
        "connections": plan.connections,
        "pools": plan.pools,
        "offset": offset,
    }
    if plan.bulk_dags and plan.bulk_task_instances:
        conf |= {"bulk_dags": list(plan.bulk_dags), "bulk_task_instances": plan.bulk_task_instances}
    return conf


def run_seed(
    api: AirflowApi,
    plan: SeedPlan,
    *,
    run_id: str = "seed-1",
    offset: int = 0,
    timeout: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Trigger the seeding DAG and wait; returns the table counts it left in a Variable."""
    if plan.bulk_dags:
        wait_for_listed(api, list(plan.bulk_dags), sleep=sleep)
    wait_for_dags(api, [*plan.dags, SEED_DAG_ID], sleep=sleep)
    api.set_paused(SEED_DAG_ID, False)
    api.trigger(SEED_DAG_ID, run_id, seed_conf(plan, offset))
    deadline = time.monotonic() + timeout
    while True:
        state = api.get_run(SEED_DAG_ID, run_id).get("state")
        if state == "success":
            break
        if state == "failed" or time.monotonic() > deadline:
            raise RuntimeError(
                f"seeding DAG run {run_id} ended {state}: {api.failed_tasks(SEED_DAG_ID, run_id)}"
            )
        sleep(2.0)
    api.set_paused(SEED_DAG_ID, True)
    for dag_id in plan.dags:
        api.set_paused(dag_id, False)  # business DAGs are live on the source
    if plan.bulk_dags:
        api.set_paused_many(list(plan.bulk_dags), False)
    return json.loads(api.get_variable_value("mwaa_iac_seed") or "{}")
