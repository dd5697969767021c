"""Issue 22 part 10 on the local stack (real Airflow 2.9.2): a crashed scheduler.

MWAA shows an environment AVAILABLE while its scheduler restarts; a DAG triggered there waits. Here:
the scheduler of an environment that has the probe DAG listed is killed; once Airflow's ``/health``
calls its heartbeat stale, the probe refuses at once (naming the scheduler) instead of waiting up to
15 minutes for its run; the stack starts the scheduler again after its restart delay, as MWAA replaces
a failed container, with the gap visible in the SchedulerHeartbeat metric; then the same probe passes.
Bounded: about 30 s to a stale heartbeat, the restart delay (60 s by default), a minute for the probe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from mwaa_iac.adapters.airflow_api import AirflowApi, scheduler_health
from mwaa_iac.adapters.cloudwatch import CloudWatch
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr
from mwaa_iac.core.status import Outcome
from mwaa_iac.local.demo import ensure_bucket, ensure_role
from mwaa_iac.local.runtime.airflow import restart_delay_from_env
from mwaa_iac.workflows.backup import DrTiming, probe
from mwaa_iac.workflows.dr_runs import DagRunner, SchedulerDownError, deploy_dr_files
from mwaa_iac.workflows.watch import Watcher
from mwaa_iac.workspace import open_workspace
from tests.conftest import LocalStack

pytestmark = [pytest.mark.local, pytest.mark.slow]

DEPLOYMENT = "crash"
NAME = f"{DEPLOYMENT}-blue"
BUCKET = "crash-airflow-source"
DR_BUCKET = "crash-mwaa-dr"
ROLE = "mwaa-crash-execution"
CONFIG = f"""
name: {DEPLOYMENT}
region: us-east-1
airflow_version: "2.9.2"
environment_class: mw1.small
network:
  subnet_ids: [subnet-0a1b2c3d4e5f60718, subnet-0f1e2d3c4b5a69788]
  security_group_ids: [sg-0123456789abcdef0]
source:
  bucket_arn: arn:aws:s3:::{BUCKET}
  dag_s3_path: dags
dr:
  backup_bucket: {DR_BUCKET}
routing:
  ssm_parameter_name: /mwaa/{DEPLOYMENT}/active
deployment:
  active_color: blue
  blue: "2.9.2"
  green: null
"""


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1.0)


def heartbeat_times(start: datetime, end: datetime) -> list[datetime]:
    """When the emulator published SchedulerHeartbeat for NAME (to the second)."""
    response = boto3.client("cloudwatch", region_name="us-east-1").get_metric_statistics(
        Namespace="AmazonMWAA",
        MetricName="SchedulerHeartbeat",
        Dimensions=[{"Name": "Environment", "Value": NAME}, {"Name": "Function", "Value": "Scheduler"}],
        StartTime=start,
        EndTime=end,
        Period=1,
        Statistics=["SampleCount"],
    )
    stamps = [p["Timestamp"] for p in response.get("Datapoints", [])]
    return sorted(s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps)


@pytest.fixture(scope="module")
def environment(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("crash")
    (root / "environments" / DEPLOYMENT).mkdir(parents=True)
    (root / "environments" / DEPLOYMENT / "mwaa.yaml").write_text(CONFIG)
    s3_client = boto3.client("s3")
    ensure_bucket(s3_client, BUCKET, private_encrypted=False)
    ensure_bucket(s3_client, DR_BUCKET, private_encrypted=True)
    ensure_role(boto3.client("iam"), ROLE)
    config = open_workspace(DEPLOYMENT, root).load()
    # The probe DAG is in the DAG folder from the start: it is listed before the scheduler dies.
    deploy_dr_files(
        S3("us-east-1"), BUCKET, "dags", [dr.render_probe_dag(dr.factory_for("2.9.2"), config.name)]
    )
    mwaa = MwaaClient("us-east-1")
    mwaa.create_environment(
        NAME,
        AirflowVersion="2.9.2",
        ExecutionRoleArn=f"arn:aws:iam::123456789012:role/{ROLE}",
        SourceBucketArn=f"arn:aws:s3:::{BUCKET}",
        DagS3Path="dags",
        NetworkConfiguration={
            "SubnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
            "SecurityGroupIds": ["sg-0123456789abcdef0"],
        },
        AirflowConfigurationOptions={
            "scheduler.dag_dir_list_interval": "10",
            "scheduler.min_file_process_interval": "5",
        },
        EnvironmentClass="mw1.small",
        MaxWorkers=2,
    )
    result = Watcher(lambda: mwaa.observe(NAME), interval=1.0, max_interval=1.0, budget=900).run()
    assert result.outcome is Outcome.SUCCEEDED, result.observation.last_update_error
    try:
        yield root
    finally:  # the session's stack runs on: free this environment's processes
        mwaa.client.delete_environment(Name=NAME)


def test_a_crashed_scheduler_is_diagnosed_at_once_and_restarted_after_the_delay(
    local_stack: LocalStack, environment: Path
) -> None:
    config = open_workspace(DEPLOYMENT, environment).load()
    factory = dr.factory_for("2.9.2")
    api = AirflowApi(MwaaClient("us-east-1"), NAME)
    events: list[dict] = []
    timing = DrTiming(dag_timeout_seconds=180, run_timeout_seconds=900, run_poll_seconds=2.0)
    runner = DagRunner(api, timing, events.append)
    cloudwatch = CloudWatch("us-east-1")
    wait_until(lambda: api.get_dag(dr.PROBE_DAG_ID), 120, "the probe DAG to be listed")
    assert scheduler_health(api.health(), datetime.now(UTC)).ok  # type: ignore[union-attr]
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    wait_until(lambda: heartbeat_times(hour_ago, datetime.now(UTC)), 60, "a SchedulerHeartbeat datapoint")

    killed = datetime.now(UTC)
    local_stack.admin.kill_scheduler(NAME)
    # Airflow's /health calls a heartbeat stale after 30 s (its scheduler_health_check_threshold).
    wait_until(
        lambda: not scheduler_health(api.health(), datetime.now(UTC)).ok,  # type: ignore[union-attr]
        60,
        "Airflow's /health to call the scheduler down",
    )
    assert local_stack.environment(NAME)["status"] == "AVAILABLE"  # as MWAA shows it meanwhile
    started = time.monotonic()
    with pytest.raises(SchedulerDownError) as caught:
        probe(runner, config, factory, role="the backup", cloudwatch=cloudwatch)
    assert time.monotonic() - started < 20  # at once: no wait for a run (the probe's timeout is 15 min)
    message = str(caught.value)
    assert message.startswith(f"the scheduler of {NAME} is down: its latest heartbeat was ")
    assert "(Airflow's /health)" in message and "the probe and the backup would only wait" in message
    assert not [e for e in events if e["event"] in ("dr.triggered", "probe.started")]  # nothing ran
    assert api.request("GET", f"/dags/{dr.PROBE_DAG_ID}/dagRuns")["total_entries"] == 0

    # The stack starts the scheduler again after its restart delay, as MWAA replaces the container.
    delay = restart_delay_from_env()
    wait_until(
        lambda: scheduler_health(api.health(), datetime.now(UTC)).ok,  # type: ignore[union-attr]
        delay + 120,
        "the scheduler to heartbeat again",
    )
    back = datetime.now(UTC)
    assert (back - killed).total_seconds() >= delay
    assert local_stack.environment(NAME)["status"] == "AVAILABLE"
    # The gap shows in the SchedulerHeartbeat metric (published every 5 s while the scheduler lives).
    wait_until(
        lambda: heartbeat_times(back, back + timedelta(minutes=5)), 60, "a heartbeat after the restart"
    )
    gap = heartbeat_times(killed + timedelta(seconds=10), back - timedelta(seconds=5))
    assert gap == [], f"heartbeats published while the scheduler was down: {gap}"

    # The same probe now runs and passes on the restarted scheduler.
    events.clear()
    result = probe(runner, config, factory, role="the backup", cloudwatch=cloudwatch)
    assert result["environment"] == NAME and result["deleted"] is True
    assert events[0]["event"] == "probe.health"
