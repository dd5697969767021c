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
from mwaa_iac.local import airflow_side

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

# The migration-hazard seeding DAG (mwaa_iac/local/airflow_side/mwaa_iac_hazards.py): see seed_hazards.
HAZARDS_DAG_ID = "mwaa_iac_hazards"
HAZARDS_DAG_FILE = "mwaa_iac_hazards.py"

# The seeding DAG: mwaa_iac/local/airflow_side/mwaa_iac_seed.py, uploaded as it is (its run conf:
# :func:`seed_conf`).
SEED_DAG_FILE = "mwaa_iac_seed.py"


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
    s3.put_text(bucket, key, airflow_side.source(SEED_DAG_FILE))
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


def seed_hazards(
    api: AirflowApi,
    s3: S3,
    bucket: str,
    dag_path: str,
    *,
    dag_id: str = BUSINESS_DAGS[0],
    run_id: str = "hazards-1",
    sync: Callable[[], Any] | None = None,
    timeout: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, tuple[str, str]]:
    """Write one row of each migration hazard a test can seed (core/hazards.py: a NaN and a NUL JSON
    XCom, a pickled XCom, a 4 KB XCom, a pickled run conf JSON cannot hold) on runs of ``dag_id``
    (seeded, at least 5 runs) through the DAG mwaa_iac_hazards; returns each hazard's (dag_id,
    run_id). Over 256 MB is not seeded: a test lowers the scan's limit below 4 KB instead."""
    key = f"{dag_path.strip('/')}/{SEED_FOLDER}/{HAZARDS_DAG_FILE}"
    s3.put_text(bucket, key, airflow_side.source(HAZARDS_DAG_FILE))
    if sync is not None:
        sync()
    wait_for_dags(api, [HAZARDS_DAG_ID], sleep=sleep)
    api.set_paused(HAZARDS_DAG_ID, False)
    api.trigger(HAZARDS_DAG_ID, run_id, {"dag_id": dag_id})
    deadline = time.monotonic() + timeout
    while (state := api.get_run(HAZARDS_DAG_ID, run_id).get("state")) != "success":
        if state == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"{HAZARDS_DAG_ID} run {run_id} ended {state}")
        sleep(2.0)
    api.set_paused(HAZARDS_DAG_ID, True)
    placed = json.loads(api.get_variable_value("mwaa_iac_hazards") or "{}")
    return {name: (pair[0], pair[1]) for name, pair in placed.items()}
