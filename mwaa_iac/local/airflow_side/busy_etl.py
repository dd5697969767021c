"""Busy profile (mwaa-iac local stack): TaskFlow XComs with awkward values, dynamic
task mapping, a task that succeeds on its second try and a DAG whose runs fail."""

from datetime import datetime, timedelta

from airflow.decorators import dag, task
from airflow.exceptions import AirflowFailException

# -- mwaa-iac: constants (filled in when the file is uploaded) --
ETL_DAG = "busy_etl_xcom"
FLAKY_DAG = "busy_flaky_retry"
FAILING_DAG = "busy_always_fails"
# -- mwaa-iac: end of constants --

AWKWARD = {
    "pipe": "a|b||c|",
    "comma": "x,y,,z",
    "quotes": "he said \"hi\" and 'bye'",
    "unicode": "Gr\u00fc\u00dfe \u2013 \u6771\u4eac \u2013 \U0001f680 \u2013 \u05e2\u05d1\u05e8\u05d9\u05ea",
    "newlines": "line 1\nline 2\r\nline 3\n",
    "backslash": "C:\\temp\\new",
    "nested": {"list": [1, "2,3", None, True, 4.5], "empty": ""},
}
DEFAULTS = {"owner": "data-eng", "retries": 2, "retry_delay": timedelta(seconds=5)}


@dag(
    dag_id=ETL_DAG,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    max_active_runs=4,
    tags=["busy", "xcom"],
)
def etl():
    @task
    def extract(**context):
        return {**AWKWARD, "run": context["dag_run"].conf.get("n", 0)}

    @task
    def make_items(payload, **context):
        count = int(context["dag_run"].conf.get("items", 3))
        return [f'item {i} | {payload["comma"]}\n"{i}" \u2713' for i in range(count)]

    @task
    def process(item):
        return {"item": item, "length": len(item)}

    @task
    def summarize(results):
        return "\n".join(f"{r['item']!r},{r['length']}" for r in results)

    @task
    def load(payload, summary, ti=None):
        ti.xcom_push(key="report|csv", value='a,b\r\n"c|d",e\n')
        ti.xcom_push(
            key="unicode \u043a\u043b\u044e\u0447",
            value="\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435 \u2713",
        )
        return summary + "\n" + payload["unicode"]

    payload = extract()
    load(payload, summarize(process.expand(item=make_items(payload))))


@dag(
    dag_id=FLAKY_DAG,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"owner": "data-eng"},
    tags=["busy"],
)
def flaky():
    @task(retries=2, retry_delay=timedelta(seconds=2))
    def call_partner_api(ti=None):
        if ti.try_number <= 1:
            raise RuntimeError("partner API timed out (the first try fails by design)")
        return {"try": ti.try_number, "status": "ok"}

    @task
    def store(response):
        return response["status"]

    store(call_partner_api())


@dag(
    dag_id=FAILING_DAG,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"owner": "data-eng"},
    max_active_runs=4,
    tags=["busy"],
)
def always_fails():
    @task(retries=0)
    def validate_input():
        raise AirflowFailException("input file is malformed (fails by design)")

    @task
    def publish(value):
        return value

    publish(validate_input())


etl()
flaky()
always_fails()
