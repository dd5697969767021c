"""mwaa-iac local stack: synthetic history through Airflow's models (not for production).

The seeding DAG mwaa_iac/local/seed.py uploads as it is and triggers with a run conf
(``seed.seed_conf``); it runs in the emulated environment's Airflow, not in mwaa-iac."""

import json
from datetime import datetime, timedelta, timezone

from airflow import DAG
from airflow.models import Connection, DagBag, Log, Pool, Variable, XCom
from airflow.operators.python import PythonOperator
from airflow.settings import Session
from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunType
from sqlalchemy import text

DATES = (
    "execution_date",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "start_date",
    "end_date",
    "queued_at",
    "queued_dttm",
    "updated_at",
    "last_scheduling_decision",
    "dttm",
    "timestamp",
)


def columns(session, table):
    rows = session.execute(
        text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
            "ORDER BY ordinal_position"
        ),
        {"t": table},
    )
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
    session.execute(
        text(
            f"INSERT INTO dag_run ({', '.join(c for c, _ in cols)}) SELECT {', '.join(e for _, e in cols)} "
            "FROM dag_run t, generate_series(1, :n) g WHERE t.dag_id = :d AND t.run_id = :r"
        ),
        params,
    )
    cols = select("task_instance", skip=("id",))
    session.execute(
        text(
            f"INSERT INTO task_instance ({', '.join(c for c, _ in cols)}) "
            f"SELECT {', '.join(e for _, e in cols)} "
            "FROM task_instance t, generate_series(1, :n) g WHERE t.dag_id = :d AND t.run_id = :r"
        ),
        params,
    )
    cols = select("xcom", skip=("dag_run_id",))
    session.execute(
        text(
            f"INSERT INTO xcom (dag_run_id, {', '.join(c for c, _ in cols)}) "
            f"SELECT dr.id, {', '.join(e for _, e in cols)} FROM xcom t CROSS JOIN generate_series(1, :n) g "
            "JOIN dag_run dr ON dr.dag_id = t.dag_id AND dr.run_id = 'bulk__' || g "
            "WHERE t.dag_id = :d AND t.run_id = :r"
        ),
        params,
    )
    cols = select("log", skip=("id",))
    session.execute(
        text(
            f"INSERT INTO log ({', '.join(c for c, _ in cols)}) SELECT {', '.join(e for _, e in cols)} "
            "FROM log t, generate_series(1, :n) g WHERE t.dag_id = :d AND t.run_id = :r"
        ),
        params,
    )


def seed_run(session, dag, n, when, run_type=DagRunType.SCHEDULED):
    """One successful run of ``dag`` at ``when`` through Airflow's models: its task instances, an XCom
    and a log row each. Returns its run id."""
    run_id = f"seed__{when.isoformat()}"
    dag_run = dag.create_dagrun(
        run_id=run_id,
        execution_date=when,
        data_interval=(when, when + timedelta(hours=1)),
        state=DagRunState.SUCCESS,
        run_type=run_type,
        external_trigger=run_type == DagRunType.MANUAL,
        start_date=when,
        session=session,
    )
    dag_run.end_date = when + timedelta(minutes=5)
    for ti in dag_run.get_task_instances(session=session):
        ti.state = "success"
        ti.start_date = when
        ti.end_date = when + timedelta(minutes=1)
        ti.duration = 60.0
        ti.try_number = 1
        XCom.set(
            key="return_value",
            value={"task": ti.task_id, "run": n},
            task_id=ti.task_id,
            dag_id=dag.dag_id,
            run_id=run_id,
            session=session,
        )
        session.add(Log(event="success", task_instance=ti, owner="airflow"))
    return run_id


def bulk_runs(session, dag_ids, template, count):
    """Bulk history over many DAGs (benchmarks): ``count`` copies of run ``template`` of
    ``dag_ids[0]`` (its task instances, XComs and log rows), copy ``g`` (1..count) going to
    ``dag_ids[g % len(dag_ids)]`` as run ``bulk__<g>``, ``g // len(dag_ids)`` hours before the template;
    written with INSERT ... SELECT in the database. The DAGs must have the template's task ids."""
    series = (
        "(SELECT g, (CAST(:dags AS text[]))[1 + g % :nd] AS dag_id, 'bulk__' || g AS run_id, "
        "make_interval(hours => g / :nd) AS shift FROM generate_series(1, :n) g) s"
    )

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
        session.execute(
            text(
                f"INSERT INTO {table} ({', '.join(c for c, _ in cols)}) "
                f"SELECT {', '.join(e for _, e in cols)} "
                f"FROM {table} t CROSS JOIN {series} {where} {order[table]}"
            ),
            params,
        )
    # the new runs' ids by copy number (a hash join for the XComs' dag_run_id)
    session.execute(text("CREATE TEMP TABLE mwaa_iac_bulk_ids (g int PRIMARY KEY, id int) ON COMMIT DROP"))
    session.execute(
        text(
            "INSERT INTO mwaa_iac_bulk_ids SELECT substr(run_id, 7)::int, id FROM dag_run "
            "WHERE left(run_id, 6) = 'bulk__' AND dag_id = ANY(CAST(:dags AS text[]))"
        ),
        params,
    )
    session.execute(text("ANALYZE mwaa_iac_bulk_ids"))
    cols = select("xcom", skip=("dag_run_id",))
    session.execute(
        text(
            f"INSERT INTO xcom (dag_run_id, {', '.join(c for c, _ in cols)}) "
            f"SELECT b.id, {', '.join(e for _, e in cols)} FROM xcom t CROSS JOIN {series} "
            f"JOIN mwaa_iac_bulk_ids b ON b.g = s.g {where} "
            "ORDER BY s.dag_id, t.task_id, s.run_id, t.map_index, t.key"
        ),
        params,
    )


def seed(**context):
    conf = context["dag_run"].conf or {}
    runs = int(conf.get("runs", 100))
    dags = conf.get("dags", [])
    bag = DagBag(read_dags_from_db=True)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)  # noqa: UP017 (Python 3.10 venvs)
    made = {"dag_runs": 0}
    with Session() as session:
        for i in range(int(conf.get("variables", 0))):
            value = json.dumps({"index": i, "secret": f"value-{i}"})
            Variable.set(f"seed_var_{i:02d}", value, session=session)
        for i in range(int(conf.get("connections", 0))):
            conn_id = f"seed_conn_{i:02d}"
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
            session.add(
                Connection(
                    conn_id=conn_id,
                    conn_type="postgres",
                    host=f"db{i}.example.internal",
                    login=f"user{i}",
                    password=f"pw-{i}-s3cr3t",
                    port=5432,
                    schema="app",
                )
            )
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
        counts = {
            t: session.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("dag_run", "task_instance", "xcom", "log", "variable", "connection", "slot_pool")
        }
    Variable.set("mwaa_iac_seed", json.dumps(counts))
    return counts


with DAG(
    "mwaa_iac_seed",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    description="mwaa-iac local stack seeding",
) as dag:
    PythonOperator(task_id="seed", python_callable=seed, execution_timeout=timedelta(hours=2))
