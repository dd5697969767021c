"""End-to-end tests: the real CLI against the local stack (moto + the MWAA emulator backed by real
Airflow). One stack per test session, on free loopback ports, stopped at the end."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.local import stack
from mwaa_iac.local.demo import DemoSetup, prepare
from mwaa_iac.local.emulator.client import EmulatorAdmin
from mwaa_iac.local.seed import SeedPlan

pytestmark = pytest.mark.local


@dataclass
class LocalStack:
    state_dir: Path
    env: dict[str, str]
    admin: EmulatorAdmin

    def cli(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mwaa_iac.cli", *args],
            env={**os.environ, **self.env, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cli_until(self, *args: str, stop_when, timeout: float = 1200) -> tuple[int, list[dict]]:
        """Run the CLI with --json and SIGKILL it as soon as ``stop_when(event)`` is true (a crash
        at that point); returns (return code, events seen). Runs to the end if it never matches."""
        process = subprocess.Popen(
            [sys.executable, "-m", "mwaa_iac.cli", *args, "--json"],
            env={**os.environ, **self.env, "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        events: list[dict] = []
        deadline = time.monotonic() + timeout
        assert process.stdout is not None
        for line in process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            events.append(event)
            if stop_when(event):
                process.send_signal(signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"{args} did not reach the kill point")
        process.wait(timeout=60)
        process.stdout.close()
        assert process.stderr is not None
        process.stderr.close()
        return process.returncode, events

    def environment(self, name: str) -> dict:
        return next(e for e in self.admin.environments() if e["name"] == name)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("stack")
    info = stack.up(state, heartbeat_interval=5, sync_interval=10)
    env = stack.load_env(state)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield LocalStack(state, env, EmulatorAdmin(info.mwaa_endpoint))
    finally:
        result = stack.down(state, remove_state=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert result is not None


def make_deployment(root: Path, name: str, runs: int) -> DemoSetup:
    return prepare(root, name=name, plan=SeedPlan(runs=runs), poll=1.0)


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
