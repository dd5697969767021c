"""Busy profile (mwaa-iac local stack): work caught in flight, started on demand
through run conf."""

import time
from datetime import datetime, timedelta

from airflow import DAG
from airflow.decorators import task
from airflow.sensors.date_time import DateTimeSensorAsync

# -- mwaa-iac: constants (filled in when the file is uploaded) --
DEFERRED_DAG = "busy_inflight_deferred"
LONG_TASK_DAG = "busy_inflight_long_task"
RETRY_WAIT_DAG = "busy_inflight_retry_wait"
DEFERRED_POOL = "busy_pool_deferred"
RETRY_DELAY = 600  # seconds
# -- mwaa-iac: end of constants --

DEFAULTS = {"owner": "platform"}

with DAG(
    DEFERRED_DAG,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    tags=["busy", "in-flight"],
):
    # Deferred to the triggerer until defer_seconds after the run's logical date.
    waiting = DateTimeSensorAsync(
        task_id="wait_for_window",
        target_time="{{ (data_interval_end + macros.timedelta("
        "seconds=dag_run.conf.get('defer_seconds', 600))).isoformat() }}",
        pool=DEFERRED_POOL,
    )

    @task
    def after_window():
        return "window reached"

    waiting >> after_window()

with DAG(
    LONG_TASK_DAG,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    tags=["busy", "in-flight"],
):

    @task
    def crunch(**context):
        time.sleep(int(context["dag_run"].conf.get("sleep_seconds", 600)))
        return "crunched"

    crunch()

with DAG(
    RETRY_WAIT_DAG,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    tags=["busy", "in-flight"],
):

    @task(retries=1, retry_delay=timedelta(seconds=RETRY_DELAY))
    def call_flaky_service():
        raise RuntimeError("service unavailable (retried later by design)")

    call_flaky_service()
