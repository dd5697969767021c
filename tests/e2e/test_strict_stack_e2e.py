"""The local stack is never kinder than MWAA for what mwaa-iac relies on (real Airflow 2.9.2 behind
the emulator, moto for S3/IAM):

- an environment has MWAA's packages only: a DAG importing ``mwaa_dr`` fails to import when
  requirements.txt does not ask for it;
- requirements.txt runs at the S3 object version the environment was created (or last updated) with:
  uploading a new one changes nothing until UpdateEnvironment names its version, and that update
  restarts the environment (the scheduler heartbeat stops meanwhile);
- a requirements.txt that cannot install ends the update in UPDATE_FAILED with the old packages running;
- MWAA's refusals: a missing execution role, an unversioned bucket, an object version that does not
  exist;
- deferred tasks resume through the triggerer; tasks run from the worker's own copy of the DAG folder.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import boto3
import botocore.exceptions
import pytest

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.local.demo import ensure_role
from tests.conftest import LocalStack
from tests.e2e.conftest import heartbeat_gaps, scheduler_jobs

pytestmark = [pytest.mark.local, pytest.mark.slow]

NAME = "strict"
BUCKET = "strict-airflow-source"
ROLE = "strict-execution"
USES_MWAA_DR = b'''"""An airflow DAG that needs mwaa-dr (importable when requirements.txt installs it)."""
from datetime import datetime

import mwaa_dr
from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("uses_mwaa_dr", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    EmptyOperator(task_id="noop")
'''
DEFERRING = b'''"""An airflow DAG with a deferrable sensor (resumed by the triggerer) and a task that
reports which copy of the DAG folder it ran from."""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.sensors.time_delta import TimeDeltaSensorAsync


def where(**context):
    return __file__


with DAG("dfr", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    TimeDeltaSensorAsync(task_id="wait", delta=timedelta(seconds=25)) >> PythonOperator(
        task_id="w", python_callable=where
    )
'''
FAST_PARSING = {"scheduler.dag_dir_list_interval": "15", "scheduler.min_file_process_interval": "5"}


def _wait(predicate, timeout: float, what: str, interval: float = 1.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _status(client, name: str) -> dict:  # type: ignore[no-untyped-def]
    return client.get_environment(Name=name)["Environment"]


def _wait_status(client, name: str, *wanted: str, timeout: float = 600) -> dict:  # type: ignore[no-untyped-def]
    return _wait(
        lambda: (env := _status(client, name))["Status"] in wanted and env,
        timeout,
        f"{name} to reach {wanted}",
        interval=2.0,
    )


def _import_errors(api: AirflowApi) -> dict[str, str]:
    body = api.request("GET", "/importErrors", query={"limit": 100})
    return {e["filename"].rsplit("/", 1)[-1]: e["stack_trace"] for e in body["import_errors"]}


def _params(**overrides):  # type: ignore[no-untyped-def]
    params = {
        "Name": NAME,
        "AirflowVersion": "2.9.2",
        "ExecutionRoleArn": f"arn:aws:iam::123456789012:role/{ROLE}",
        "SourceBucketArn": f"arn:aws:s3:::{BUCKET}",
        "DagS3Path": "dags",
        "RequirementsS3Path": "requirements.txt",
        "NetworkConfiguration": {
            "SubnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
            "SecurityGroupIds": ["sg-0123456789abcdef0"],
        },
        "AirflowConfigurationOptions": dict(FAST_PARSING),
        "MaxWorkers": 2,
    }
    params.update(overrides)
    return params


def _refused(call, **params) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**params)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return caught.value.response["Error"]["Message"]


def test_requirements_object_versions_imports_restart_and_refusals(local_stack: LocalStack) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    client = boto3.client("mwaa", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)

    # MWAA's refusals change nothing: unversioned bucket, missing role, unknown object version
    s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"# nothing\n")
    assert "role does not exist" in _refused(client.create_environment, **_params())
    ensure_role(boto3.client("iam", region_name="us-east-1"), ROLE)
    assert "must have versioning enabled" in _refused(client.create_environment, **_params())
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    assert "no such object version" in _refused(
        client.create_environment, **_params(RequirementsS3ObjectVersion="does-not-exist")
    )
    assert NAME not in client.list_environments()["Environments"]

    first = s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"# nothing but MWAA's image\n")
    s3.put_object(Bucket=BUCKET, Key="dags/uses_mwaa_dr.py", Body=USES_MWAA_DR)
    s3.put_object(Bucket=BUCKET, Key="dags/deferring.py", Body=DEFERRING)
    client.create_environment(**_params())
    env = _wait_status(client, NAME, "AVAILABLE", "CREATE_FAILED")
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    assert env["RequirementsS3ObjectVersion"] == first["VersionId"]
    api = AirflowApi(MwaaClient("us-east-1"), NAME)

    # MWAA's image has no mwaa-dr
    errors = _wait(lambda: _import_errors(api), 120, "the import error of uses_mwaa_dr.py")
    assert "No module named 'mwaa_dr'" in errors["uses_mwaa_dr.py"]

    # a deferrable sensor defers, the triggerer resumes it; the task ran from the worker's DAG copy
    _wait(lambda: api.get_dag("dfr"), 120, "the DAG dfr")
    api.set_paused("dfr", False)
    api.trigger("dfr", "d1")
    states: set[str] = set()

    def finished() -> str | None:
        tis = api.request("GET", "/dags/dfr/dagRuns/d1/taskInstances")["task_instances"]
        states.update(t["state"] for t in tis if t["task_id"] == "wait" and t["state"])
        run = api.get_run("dfr", "d1")["state"]
        return run if run in ("success", "failed") else None

    assert _wait(finished, 240, "the run of dfr", interval=1.0) == "success"
    assert "deferred" in states
    where = api.request("GET", "/dags/dfr/dagRuns/d1/taskInstances/w/xcomEntries/return_value")["value"]
    assert "/worker/dags/deferring.py" in where

    # a new requirements.txt changes nothing until UpdateEnvironment names its version
    second = s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"mwaa-dr==2.2.0\n")
    local_stack.admin.sync(NAME)
    time.sleep(12)  # more than one re-parse interval of the file (min_file_process_interval 5 s)
    assert "No module named 'mwaa_dr'" in _import_errors(api).get("uses_mwaa_dr.py", "")
    assert _status(client, NAME)["RequirementsS3ObjectVersion"] == first["VersionId"]

    # a requirements.txt that cannot install: UPDATE_FAILED, the previous packages keep running
    bad = s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"apache-airflow==2.9.3\n")
    client.update_environment(Name=NAME, RequirementsS3ObjectVersion=bad["VersionId"])
    failed = _wait_status(client, NAME, "UPDATE_FAILED", "AVAILABLE")
    assert failed["Status"] == "UPDATE_FAILED"
    assert "requirements.txt did not install" in failed["LastUpdate"]["Error"]["ErrorMessage"]
    assert failed["RequirementsS3ObjectVersion"] == first["VersionId"]
    assert api.get_run("dfr", "d1")["state"] == "success"  # still serving

    # the update naming the good version installs it, and restarts: the scheduler stops meanwhile
    jobs_before = scheduler_jobs(local_stack, NAME)
    started = datetime.now(UTC)
    client.update_environment(Name=NAME, RequirementsS3ObjectVersion=second["VersionId"])
    updated = _wait_status(client, NAME, "AVAILABLE", "UPDATE_FAILED")
    assert updated["Status"] == "AVAILABLE", updated.get("LastUpdate")
    assert updated["RequirementsS3ObjectVersion"] == second["VersionId"]
    jobs_after = scheduler_jobs(local_stack, NAME)
    new_jobs = [job for job in jobs_after if job[0] not in {j[0] for j in jobs_before}]
    assert len(new_jobs) == 1, f"the update did not restart the scheduler: {jobs_before} -> {jobs_after}"
    last_beat = max(j[2] or j[1] for j in jobs_before)
    gap = new_jobs[0][1] - last_beat  # no scheduler heartbeat from the old job's last to the new start
    assert gap > 0, f"no heartbeat gap: {gap:.1f} s"
    time.sleep(6)  # the metric too: published every 5 s for a live scheduler only
    metric_gaps = heartbeat_gaps(NAME, started, datetime.now(UTC))
    print(f"scheduler heartbeat gap {gap:.1f} s; metric gaps {metric_gaps}")
    _wait(lambda: "uses_mwaa_dr.py" not in _import_errors(api), 120, "uses_mwaa_dr.py to import")
    assert _wait(lambda: api.get_dag("uses_mwaa_dr"), 60, "the DAG uses_mwaa_dr")

    client.delete_environment(Name=NAME)
    _wait(lambda: NAME not in client.list_environments()["Environments"], 300, f"{NAME} to be deleted", 2.0)
