"""Busy profile (mwaa-iac local stack): a catchup DAG, a DAG its owner paused
and a very long DAG id."""

from datetime import datetime, timedelta, timezone

from airflow import DAG
from airflow.decorators import task

# -- mwaa-iac: constants (filled in when the file is uploaded) --
CATCHUP_DAG = "busy_catchup_daily"
CATCHUP_DAYS = 3
OWNER_PAUSED_DAG = "busy_owner_paused"
LONG_DAG = "busy_finance_emea_ledger_reconciliation_with_intercompany_eliminations_v2"  # None: left out
# -- mwaa-iac: end of constants --

# A few @daily intervals behind "now", counted from midnight UTC (stable within a day).
TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)  # noqa: UP017
CATCHUP_START = TODAY - timedelta(days=CATCHUP_DAYS)
DEFAULTS = {"owner": "analytics", "retries": 2, "retry_delay": timedelta(seconds=5)}


@task
def partition(ds=None, data_interval_end=None):
    return {"partition": ds, "closed_at": str(data_interval_end)}


with DAG(
    CATCHUP_DAG,
    schedule="@daily",
    start_date=CATCHUP_START,
    catchup=True,
    max_active_runs=2,
    default_args=DEFAULTS,
    tags=["busy", "catchup"],
):
    partition()

with DAG(
    OWNER_PAUSED_DAG,
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    description="paused by its owner after a few runs",
    tags=["busy"],
):
    partition()

if LONG_DAG:  # a DAG id too long for InvokeRestApi's path
    with DAG(
        LONG_DAG,
        schedule="@hourly",
        start_date=datetime(2024, 1, 1),
        catchup=False,
        default_args=DEFAULTS,
        tags=["busy"],
    ):
        partition()
