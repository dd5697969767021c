"""mwaa-iac local stack: rows Airflow 3's migration trips over, written into an Airflow 2 database for
the migration-hazard preflight's tests (not for production).

Uploaded as it is by mwaa_iac/local/seed.py (``seed_hazards``) and triggered once; each hazard is one
row on its own run of the first seeded business DAG, and the (dag_id, run_id) of each is left in the
Variable ``mwaa_iac_hazards``. A NaN JSON XCom, a JSON XCom holding a \\u0000 escape, a pickled XCom,
a JSON XCom of 4 KB (over the limit a test lowers the scan's to), and a pickled run conf that JSON
cannot represent (a datetime)."""

import json
import pickle
from datetime import datetime

from airflow import DAG
from airflow.models import Variable
from airflow.operators.python import PythonOperator
from airflow.settings import Session
from sqlalchemy import text

VARIABLE = "mwaa_iac_hazards"
XCOMS = {
    "nan-json-xcom": b'{"ratio": NaN, "rows": 3}',
    "nul-json-xcom": b'{"name": "a\\u0000b"}',
    "pickled-xcom": pickle.dumps({"rows": 3}),
    "xcom-over-256mb": b'"' + b"x" * 4096 + b'"',
}


def seed(**context):
    dag_id = (context["dag_run"].conf or {}).get("dag_id", "etl_orders")
    placed = {}
    with Session() as session:
        runs = [
            r[0]
            for r in session.execute(
                text("SELECT run_id FROM dag_run WHERE dag_id = :d ORDER BY run_id LIMIT 5"), {"d": dag_id}
            )
        ]
        if len(runs) < 5:
            raise RuntimeError(f"{dag_id} has {len(runs)} runs: seed at least 5 first")
        for (name, value), run_id in zip(XCOMS.items(), runs, strict=False):
            session.execute(
                text(
                    "INSERT INTO xcom "
                    "(dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp) "
                    "SELECT r.id, ti.task_id, ti.map_index, :key, ti.dag_id, ti.run_id, :value, now() "
                    "FROM task_instance ti JOIN dag_run r ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id "
                    "WHERE ti.dag_id = :d AND ti.run_id = :r ORDER BY ti.task_id LIMIT 1"
                ),
                {"key": f"hazard_{name}", "value": value, "d": dag_id, "r": run_id},
            )
            placed[name] = [dag_id, run_id]
        conf = pickle.dumps({"when": datetime(2024, 1, 1)})
        session.execute(
            text("UPDATE dag_run SET conf = :c WHERE dag_id = :d AND run_id = :r"),
            {"c": conf, "d": dag_id, "r": runs[4]},
        )
        placed["pickled-dag-run-conf"] = [dag_id, runs[4]]
        session.commit()
    Variable.set(VARIABLE, json.dumps(placed))


with DAG("mwaa_iac_hazards", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    PythonOperator(task_id="seed", python_callable=seed)
