"""The busy seeding profile and the metadata fingerprint on the local stack (real Airflow 2.9.2).

One environment for the module: its DAG files are uploaded before it is created (as a user's DAG
folder exists before the environment), then :func:`seed_busy` runs; the tests check each feature of
the profile through the REST API and the fingerprint, that a fingerprint is stable and names a
change, and finally start in-flight work and watch the triggerer resume a deferred sensor.
Assertions read values inside the environment and return booleans: no value is printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core.status import Outcome
from mwaa_iac.local import busy
from mwaa_iac.local.demo import ensure_bucket, ensure_role
from mwaa_iac.local.fingerprint import changed_tables, compare, fingerprint, run_in_environment
from mwaa_iac.workflows.watch import Watcher
from tests.conftest import LocalStack

pytestmark = [pytest.mark.local, pytest.mark.slow]

NAME = "busy-blue"
BUCKET = "busy-airflow-source"
ROLE = "mwaa-busy-execution"


@dataclass
class Seeded:
    stack: LocalStack
    api: AirflowApi
    summary: dict[str, Any]
    seconds: float


def _create_environment(stack: LocalStack, profile: busy.BusyProfile) -> None:
    s3_client = boto3.client("s3")
    ensure_bucket(s3_client, BUCKET, private_encrypted=False)
    ensure_role(boto3.client("iam"), ROLE)
    s3 = S3("us-east-1", client=s3_client)
    s3.put_text(BUCKET, "requirements/requirements.txt", "# busy\n")
    busy.upload_busy_dags(s3, BUCKET, "dags", profile)  # before the environment: parsed at start
    mwaa = MwaaClient("us-east-1")
    mwaa.create_environment(
        NAME,
        AirflowVersion="2.9.2",
        ExecutionRoleArn=f"arn:aws:iam::123456789012:role/{ROLE}",
        SourceBucketArn=f"arn:aws:s3:::{BUCKET}",
        DagS3Path="dags",
        RequirementsS3Path="requirements/requirements.txt",
        NetworkConfiguration={
            "SubnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
            "SecurityGroupIds": ["sg-0123456789abcdef0"],
        },
        EnvironmentClass="mw1.small",
        MaxWorkers=2,
    )
    result = Watcher(lambda: mwaa.observe(NAME), interval=1.0, max_interval=1.0, budget=900).run()
    assert result.outcome is Outcome.SUCCEEDED, result.observation.last_update_error


@pytest.fixture(scope="module")
def seeded(local_stack: LocalStack) -> Iterator[Seeded]:
    profile = busy.BusyProfile()
    _create_environment(local_stack, profile)
    api = AirflowApi(MwaaClient("us-east-1"), NAME)
    started = time.monotonic()
    summary = busy.seed_busy(
        api,
        S3("us-east-1"),
        BUCKET,
        "dags",
        profile,
        sync=lambda: local_stack.admin.sync(NAME),
        progress=lambda text: print(f"{time.monotonic() - started:6.1f} s  {text}"),
    )
    yield Seeded(local_stack, api, summary, time.monotonic() - started)
    # The session's stack runs on: free its processes for the next module.
    MwaaClient("us-east-1").client.delete_environment(Name=NAME)


def _inside(stack: LocalStack, code: str) -> dict[str, Any]:
    """Run ``code`` in the environment; it must print one JSON object of booleans/counts last."""
    result = run_in_environment(stack.state_dir, NAME, code)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


XCOM_CHECK = """
import json
from collections.abc import Iterator
from airflow.models import XCom
from airflow.models.taskmap import TaskMap
from airflow.settings import Session

def leaves(value):
    if isinstance(value, dict):
        return "".join(leaves(v) for v in value.values())
    if isinstance(value, list):
        return "".join(leaves(v) for v in value)
    return value if isinstance(value, str) else ""

def chars(value):
    text = leaves(value)
    return {"pipe": "|" in text, "comma": "," in text, "quote": '"' in text, "newline": "\\n" in text,
            "unicode": any(ord(c) > 127 for c in text)}

extract = XCom.get_one(run_id="busy-1", dag_id="busy_etl_xcom", task_id="extract", key="return_value")
report = XCom.get_one(run_id="busy-1", dag_id="busy_etl_xcom", task_id="load", key="report|csv")
mapped = [XCom.get_one(run_id="busy-1", dag_id="busy_etl_xcom", task_id="process", key="return_value",
                       map_index=i) for i in range(3)]
with Session() as session:
    task_map = session.query(TaskMap).filter_by(dag_id="busy_etl_xcom", run_id="busy-1").all()
print(json.dumps({"extract": chars(extract), "newlines": "\\n" in extract["newlines"],
                  "report": chars(report), "mapped": [m is not None for m in mapped],
                  "task_map": [(t.task_id, t.length) for t in task_map]}))
"""

METADATA_CHECK = """
import json
from collections.abc import Iterator
from airflow.models import Connection, Pool, Variable
from airflow.settings import Session

large = Variable.get("busy_large")
with Session() as session:
    nulls = session.query(Connection).filter_by(conn_id="busy_conn_nulls").one()
    empty = session.query(Connection).filter_by(conn_id="busy_conn_empty").one()
    special = session.query(Connection).filter_by(conn_id="busy_conn_special").one()
    aws = session.query(Connection).filter_by(conn_id="busy_conn_aws").one()
    pool = session.query(Pool).filter_by(pool="busy_pool_deferred").one()
    described = session.query(Variable).filter_by(key="busy_json_multiline").one().description
print(json.dumps({
    "large": len(large.encode()), "crlf": "\\r\\n" in Variable.get("busy_crlf"),
    "tabs": "\\t" in Variable.get("busy_tabs"), "empty": Variable.get("busy_empty") == "",
    "multiline_json": "\\n" in Variable.get("busy_json_multiline")
                      and json.loads(Variable.get("busy_json_multiline"))["source"] == "orders",
    "unicode": any(ord(c) > 127 for c in Variable.get("busy_unicode")), "described": bool(described),
    "nulls": [nulls.host, nulls.login, nulls.schema, nulls.password, nulls.extra, nulls.port],
    "empty_conn": [empty.host, empty.login, empty.schema, empty.password, empty.extra],
    "special": all(c in special.password for c in "@:/?#&=%|,;\\"' \\\\"),
    "multiline_extra": "\\n" in aws.extra and json.loads(aws.extra)["note"] == "line1\\nline2",
    "pool_include_deferred": pool.include_deferred,
}))
"""


def test_busy_seeding_is_quick_and_summarised(seeded: Seeded) -> None:
    print(f"busy seeding took {seeded.seconds:.0f} s: {seeded.summary['runs']}")
    assert seeded.summary["profile"] == "busy"
    assert seeded.summary["pending_dataset_events"] == [busy.ORDERS_DATASET]
    assert seeded.api.get_variable_value(busy.BUSY_MARKER)  # a second seed is a no-op
    again = busy.seed_busy(seeded.api, S3("us-east-1"), BUCKET, "dags")
    assert again["runs"] == seeded.summary["runs"]


def test_runs_retries_failures_catchup_datasets_pauses(seeded: Seeded) -> None:
    api = seeded.api
    runs = busy.list_runs(api, busy.BusyProfile().dag_ids())
    by_dag: dict[str, list[dict]] = {}
    for run in runs:
        by_dag.setdefault(run["dag_id"], []).append(run)
    assert [r["state"] for r in by_dag[busy.FAILING_DAG]] == ["failed", "failed"]
    catchup = by_dag[busy.CATCHUP_DAG]
    assert len(catchup) == 3 and {r["run_type"] for r in catchup} == {"scheduled"}
    assert {r["run_type"] for r in by_dag[busy.CONSUMER_DAG]} == {"dataset_triggered"}
    assert len(by_dag[busy.LONG_DAG]) >= 1 and len(busy.LONG_DAG) >= 60
    assert {r["state"] for r in by_dag[busy.ETL_DAG]} == {"success"}

    tis = busy.list_task_instances(api, [busy.FLAKY_DAG, busy.ETL_DAG, busy.FAILING_DAG])
    flaky = next(t for t in tis if t["task_id"] == "call_partner_api")
    assert flaky["state"] == "success" and flaky["try_number"] == 2
    mapped = sorted(t["map_index"] for t in tis if t["task_id"] == "process" and t["dag_run_id"] == "busy-1")
    assert mapped == [0, 1, 2]
    assert {t["state"] for t in tis if t["dag_id"] == busy.FAILING_DAG} == {"failed", "upstream_failed"}

    dags = busy.list_dag_ids(api, "busy_")
    assert dags[busy.OWNER_PAUSED_DAG]["is_paused"] is True
    assert dags[busy.CATCHUP_DAG]["is_paused"] is False
    assert dags[busy.LONG_DAG]["is_paused"] is False
    assert len(by_dag[busy.OWNER_PAUSED_DAG]) >= 2

    queued = api.request("GET", f"/dags/{busy.CONSUMER_DAG}/datasets/queuedEvent")["queued_events"]
    assert [q["uri"] for q in queued] == [busy.ORDERS_DATASET]
    pool = api.request("GET", f"/pools/{busy.DEFERRED_POOL}")
    assert pool["include_deferred"] is True


def test_xcoms_mapping_and_awkward_metadata(seeded: Seeded) -> None:
    xcoms = _inside(seeded.stack, XCOM_CHECK)
    assert all(xcoms["extract"].values()) and xcoms["newlines"]
    assert all(xcoms["report"][k] for k in ("pipe", "comma", "quote", "newline"))
    assert xcoms["mapped"] == [True, True, True]
    assert ["make_items", 3] in xcoms["task_map"]
    meta = _inside(seeded.stack, METADATA_CHECK)
    assert meta["large"] == 10 * 1024
    assert meta["crlf"] and meta["tabs"] and meta["empty"] and meta["multiline_json"] and meta["unicode"]
    assert meta["described"]
    assert meta["nulls"] == [None, None, None, None, None, None]
    # Airflow's Connection.set_password ignores "": an empty password is stored as NULL.
    assert meta["empty_conn"] == ["", "", "", None, ""]
    assert meta["special"] and meta["multiline_extra"] and meta["pool_include_deferred"] is True


def test_fingerprint_is_stable_and_names_a_changed_variable(seeded: Seeded) -> None:
    state_dir: Path = seeded.stack.state_dir
    first = fingerprint(state_dir, NAME)
    second = fingerprint(state_dir, NAME)
    assert compare(first, second) == []
    tables = first["tables"]
    assert first["airflow_version"] == "2.9.2"
    assert tables["task_fail"]["count"] >= 2  # the flaky task's first try, the failing task
    assert any(k.startswith(f"{busy.ETL_DAG} | busy-1 | make_items") for k in tables["task_map"]["rows"])
    assert any("report|csv" in k for k in tables["xcom"]["rows"])
    assert f"{busy.ORDERS_DATASET} | {busy.CONSUMER_DAG}" in tables["dataset_dag_run_queue"]["rows"]
    assert "busy_empty" in tables["variable"]["rows"] and "mwaa_iac_busy" in tables["variable"]["rows"]
    assert "busy_pool_deferred" in tables["slot_pool"]["rows"]
    assert busy.LONG_DAG in tables["dag"]["rows"] and "mwaa_iac_seed" not in tables["dag"]["rows"]
    assert tables["dag_run"]["count"] >= 150 + 15  # the basic bulk plus the busy runs

    change = (
        "from airflow.models import Variable\nVariable.set('busy_tabs', Variable.get('busy_tabs') + 'x')\n"
    )
    assert run_in_environment(state_dir, NAME, change).returncode == 0
    try:
        third = fingerprint(state_dir, NAME)
    finally:
        restore = (
            "from airflow.models import Variable\nVariable.set('busy_tabs', Variable.get('busy_tabs')[:-1])\n"
        )
        run_in_environment(state_dir, NAME, restore)
    assert changed_tables(second, third) == {"variable"}
    differences = compare(second, third)
    assert differences == ["variable: 1 differ: [busy_tabs] (val)"]
    assert compare(second, third, ignore={"variable.val"}) == []


def test_in_flight_work_and_the_triggerer_resumes_the_sensor(seeded: Seeded) -> None:
    api = seeded.api
    started = busy.start_in_flight(api, label="t1", defer_seconds=45, sleep_seconds=180)
    caught = busy.wait_in_flight(api, started, timeout=240)
    assert {(c["dag_id"], c["state"]) for c in caught} == {
        (busy.DEFERRED_DAG, "deferred"),
        (busy.LONG_TASK_DAG, "running"),
        (busy.RETRY_WAIT_DAG, "up_for_retry"),
    }
    assert api.request("GET", f"/pools/{busy.DEFERRED_POOL}")["deferred_slots"] == 1
    deadline = time.monotonic() + 240
    state = None
    while time.monotonic() < deadline:
        sensor = next(
            t
            for t in busy.list_task_instances(api, [busy.DEFERRED_DAG], ["t1-defer"])
            if t["task_id"] == "wait_for_window"
        )
        state = sensor["state"]
        if state in ("success", "failed"):
            break
        time.sleep(3)
    assert state == "success"  # resumed by the triggerer after its 45 s
