"""Busy profile (mwaa-iac local stack): a dataset producer and a consumer that
needs two datasets."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.datasets import Dataset
from airflow.decorators import task
from airflow.exceptions import AirflowSkipException

# -- mwaa-iac: constants (filled in when the file is uploaded) --
PRODUCER_DAG = "busy_dataset_producer"
CONSUMER_DAG = "busy_dataset_consumer"
ORDERS_URI = "s3://busy-lake/orders/orders.parquet"
CUSTOMERS_URI = "s3://busy-lake/customers/customers.parquet"
# -- mwaa-iac: end of constants --

ORDERS = Dataset(ORDERS_URI)
CUSTOMERS = Dataset(CUSTOMERS_URI)
DEFAULTS = {"owner": "platform", "retries": 2, "retry_delay": timedelta(seconds=5)}

with DAG(
    PRODUCER_DAG,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    tags=["busy", "datasets"],
):

    @task(outlets=[ORDERS])
    def publish_orders():
        return "orders published"

    @task(outlets=[CUSTOMERS])
    def publish_customers(**context):
        if context["dag_run"].conf.get("only_orders"):
            raise AirflowSkipException("customers are not published in this run")
        return "customers published"

    publish_orders()
    publish_customers()

with DAG(
    CONSUMER_DAG,
    schedule=[ORDERS, CUSTOMERS],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    tags=["busy", "datasets"],
):

    @task
    def join(triggering_dataset_events=None):
        return sorted(str(uri) for uri in (triggering_dataset_events or {}))

    join()
