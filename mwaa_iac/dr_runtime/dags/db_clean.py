"""Airflow DAG file written by mwaa-iac (`--write-db-clean-dag`): trims run history with Airflow's
own `airflow db clean` before a 2 → 3 upgrade, whose migration rewrites every task instance (its time
grows faster than the rows). Upload it to the DAG folder yourself; mwaa-iac never runs it.

A run is a DRY RUN (it only counts what it would delete) unless its conf says ``{"dry_run": false}``.
``{"clean_before": "YYYY-MM-DD"}`` moves the cutoff (default: CLEAN_BEFORE below). Rows older than the
cutoff are deleted from TABLES without an archive copy; Airflow keeps each DAG's latest run.
Take a backup first (`mwaa-iac backup`).
"""

from datetime import datetime

from airflow import DAG
from airflow.operators.python import PythonOperator

# -- mwaa-iac: constants (filled in when the file is uploaded) --
DAG_ID = "mwaa_iac_db_clean"
CLEAN_BEFORE = "2024-01-01"  # rows older than this day (UTC) are deleted
TABLES = ("task_instance", "dag_run", "xcom", "log", "job")
# -- mwaa-iac: end of constants --


def clean(**context):
    import pendulum
    from airflow.utils import db_cleanup

    conf = context["dag_run"].conf or {}
    dry_run = conf.get("dry_run", True) is not False
    cutoff = pendulum.parse(str(conf.get("clean_before", CLEAN_BEFORE)), tz="UTC")
    known = set(getattr(db_cleanup, "config_dict", {}) or TABLES)
    tables = [t for t in TABLES if t in known]  # a table this Airflow version does not have is left out
    print(f"mwaa-iac db clean: before {cutoff.isoformat()}, tables {tables}, dry_run={dry_run}")
    kwargs = {"clean_before_timestamp": cutoff, "table_names": tables, "dry_run": dry_run, "confirm": False}
    try:
        db_cleanup.run_cleanup(**kwargs, skip_archive=True, verbose=True)
    except TypeError:  # an Airflow without skip_archive
        db_cleanup.run_cleanup(**kwargs, verbose=True)


with DAG(DAG_ID, schedule=None, start_date=datetime(2024, 1, 1), catchup=False, description=DAG_ID) as dag:
    PythonOperator(task_id="db_clean", python_callable=clean)
