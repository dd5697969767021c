"""End-to-end tests: the real CLI against the local stack (moto + the MWAA emulator backed by real
Airflow). One stack per test session, on free loopback ports, stopped at the end."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.local.busy import DEFERRED_DAG, RETRY_WAIT_DAG, BusyProfile
from mwaa_iac.local.demo import DemoSetup, prepare
from mwaa_iac.local.fingerprint import run_in_environment
from mwaa_iac.local.seed import SeedPlan
from tests.conftest import LocalStack

pytestmark = pytest.mark.local


def make_deployment(
    stack: LocalStack,
    root: Path,
    name: str,
    runs: int,
    *,
    retry_delay_seconds: int = 600,
    per_colour_roles: bool = False,
) -> DemoSetup:
    """A deployment whose blue 2.9.2 environment carries the busy workload (real runs with retries,
    failures, mapping, datasets, awkward values) plus ``runs`` synthetic runs per example DAG;
    ``retry_delay_seconds`` is the in-flight retrying task's wait. ``per_colour_roles``: execution
    roles as modules/mwaa-environment makes them (one per colour, trusting its own environment only;
    mwaa.yaml names none), else one role both colours share."""
    return prepare(
        root,
        name=name,
        plan=SeedPlan(runs=runs),
        busy=BusyProfile(basic=SeedPlan(runs=runs), retry_delay_seconds=retry_delay_seconds),
        poll=1.0,
        sync=stack.admin.sync,
        per_colour_roles=per_colour_roles,
    )


def requirements_version(stack: LocalStack, name: str) -> str | None:
    """The requirements.txt object version ``name`` runs (GetEnvironment)."""
    return MwaaClient("us-east-1").get_environment(name).get("RequirementsS3ObjectVersion")


def api(name: str) -> AirflowApi:
    return AirflowApi(MwaaClient("us-east-1"), name)


def total(name: str, path: str, **query) -> int:
    return api(name).request("GET", path, query={"limit": 1, **query})["total_entries"]


def run_ids(name: str, dag_id: str) -> set[str]:
    """Every dag_run_id of ``dag_id`` (paged: the REST API returns at most 100 per call)."""
    ids: set[str] = set()
    offset = 0
    while True:
        page = api(name).request("GET", f"/dags/{dag_id}/dagRuns", query={"limit": 100, "offset": offset})
        batch = [r["dag_run_id"] for r in page["dag_runs"]]
        ids.update(batch)
        offset += len(batch)
        if not batch or offset >= page["total_entries"]:
            return ids


def heartbeat_times(name: str, start: datetime, end: datetime) -> list[datetime]:
    """When the ``AmazonMWAA/SchedulerHeartbeat`` metric of ``name`` was published (to the second)."""
    client = boto3.client("cloudwatch", region_name="us-east-1")
    response = client.get_metric_statistics(
        Namespace="AmazonMWAA",
        MetricName="SchedulerHeartbeat",
        Dimensions=[{"Name": "Environment", "Value": name}, {"Name": "Function", "Value": "Scheduler"}],
        StartTime=start,
        EndTime=end,
        Period=1,
        Statistics=["SampleCount"],
    )
    stamps = []
    for point in response.get("Datapoints", []):
        stamp = point["Timestamp"]
        stamps.append(stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC))
    return sorted(stamps)


def heartbeat_gaps(name: str, start: datetime, end: datetime) -> list[float]:
    """Seconds between consecutive heartbeats of ``name`` from ``start`` to ``end`` (both ends count)."""
    points = [start, *heartbeat_times(name, start, end), end]
    return [round((b - a).total_seconds(), 1) for a, b in itertools.pairwise(points)]


_SCHEDULER_JOB = """
import airflow
from airflow.settings import Session
from sqlalchemy import text

with Session() as session:
    row = session.execute(text(
        "SELECT id, start_date FROM job WHERE job_type = 'SchedulerJob' AND state = 'running' "
        "ORDER BY latest_heartbeat DESC LIMIT 1"
    )).first()
print(f"{row[0]} {row[1].isoformat()}" if row else "none")
"""


def scheduler_job(stack: LocalStack, name: str) -> str:
    """The running SchedulerJob of ``name`` (id and start): unchanged means never restarted."""
    result = run_in_environment(stack.state_dir, name, _SCHEDULER_JOB)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


_SCHEDULER_JOBS = """
import json
import airflow
from airflow.settings import Session
from sqlalchemy import text

with Session() as session:
    rows = session.execute(text(
        "SELECT id, start_date, latest_heartbeat FROM job WHERE job_type = 'SchedulerJob' ORDER BY id"
    )).all()
print(json.dumps([[r[0], r[1].timestamp(), r[2].timestamp() if r[2] else None] for r in rows]))
"""


def scheduler_jobs(stack: LocalStack, name: str) -> list[tuple[int, float, float | None]]:
    """Every SchedulerJob of ``name``: (id, start, latest heartbeat), oldest first. A restart adds one."""
    result = run_in_environment(stack.state_dir, name, _SCHEDULER_JOBS)
    assert result.returncode == 0, result.stderr[-2000:]
    return [tuple(row) for row in json.loads(result.stdout.strip().splitlines()[-1])]


def wait_run(
    name: str,
    dag_id: str,
    run_id: str,
    states: tuple[str, ...] = ("success", "failed"),
    timeout: float = 420.0,
    poll: float = 3.0,
) -> str:
    """The state of run ``dag_id``/``run_id`` on ``name`` once it is one of ``states`` (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        state = api(name).get_run(dag_id, run_id)["state"]
        if state in states or time.monotonic() > deadline:
            return state
        time.sleep(poll)


# -- work in flight at the freeze (busy.start_in_flight): nothing runs twice ------------------------


def in_flight_unfinished(label: str) -> set[str]:
    """Fingerprint keys of the task instances of ``busy.start_in_flight(label=label)`` that have not
    finished when the source pauses (the deferred sensor, the task after it, the task waiting for its
    retry); the long task finishes on the source during the drain."""
    return {
        f"{DEFERRED_DAG} | {label}-defer | wait_for_window | -1",
        f"{DEFERRED_DAG} | {label}-defer | after_window | -1",
        f"{RETRY_WAIT_DAG} | {label}-retry | call_flaky_service | -1",
    }


def task_fields(fp: dict) -> dict[str, dict]:
    """A fingerprint's task instances: key → hash per column."""
    return fp["tables"]["task_instance"]["fields"]


def changed_task_instances(before: dict, after: dict) -> set[str]:
    """Keys of ``before``'s task instances that ``after`` lacks or holds with another value in a
    column both fingerprints have (a fingerprint across Airflow 2 → 3 compares the same columns)."""
    old, new = task_fields(before), task_fields(after)
    changed = set()
    for key, fields in old.items():
        other = new.get(key)
        if other is None or any(other[c] != v for c, v in fields.items() if c in other):
            changed.add(key)
    return changed


def retried_task_instances(before: dict, after: dict) -> set[str]:
    """Keys of ``before``'s task instances whose try number is not the same in ``after`` (ran again)."""
    old, new = task_fields(before), task_fields(after)
    return {k for k, fields in old.items() if new.get(k, {}).get("try_number") != fields.get("try_number")}
