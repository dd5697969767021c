from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mwaa_iac.adapters.storage import S3
from mwaa_iac.workflows.engine import create_fields_from


def test_create_fields_copy_the_source_configuration_and_nothing_else() -> None:
    source = {
        "Name": "analytics-blue",
        "Arn": "arn:aws:airflow:us-east-1:123456789012:environment/analytics-blue",
        "Status": "AVAILABLE",
        "AirflowVersion": "2.9.2",
        "EnvironmentClass": "mw1.medium",
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r",
        "SourceBucketArn": "arn:aws:s3:::b",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
        "LoggingConfiguration": {
            "TaskLogs": {"Enabled": True, "LogLevel": "INFO", "CloudWatchLogGroupArn": "arn:aws:logs:..."}
        },
        "AirflowConfigurationOptions": {"core.default_timezone": "utc"},
        "Tags": {"team": "data"},
        "WebserverUrl": "abc.airflow.amazonaws.com",
        "LastUpdate": {"Status": "SUCCESS"},
        "Schedulers": 2,
    }
    fields = create_fields_from(source)
    assert "Name" not in fields and "Status" not in fields and "Arn" not in fields
    assert "WebserverUrl" not in fields and "LastUpdate" not in fields
    assert fields["LoggingConfiguration"] == {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}}
    assert fields["NetworkConfiguration"]["SubnetIds"] == ["subnet-1", "subnet-2"]
    assert fields["EnvironmentClass"] == "mw1.medium" and fields["Schedulers"] == 2
    assert fields["Tags"] == {"team": "data"}


class _FakeS3:
    def __init__(self, objects: dict[str, datetime]) -> None:
        self.objects = objects

    def get_paginator(self, name: str):
        objects = self.objects

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str):
                yield {
                    "Contents": [
                        {"Key": k, "LastModified": t} for k, t in objects.items() if k.startswith(Prefix)
                    ]
                }

        return Paginator()


def test_old_backups_are_those_past_retention() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    s3 = S3(
        client=_FakeS3(
            {
                "mwaa-dr/a/old/dag_run.csv": now - timedelta(days=40),
                "mwaa-dr/a/new/dag_run.csv": now - timedelta(days=2),
                "other/x.csv": now - timedelta(days=400),
            }
        )
    )
    assert s3.old_keys("bucket", "mwaa-dr/a/", 30, now=now) == ["mwaa-dr/a/old/dag_run.csv"]


class _FakeApi:
    """A DAG that runs for ``polls`` polls, then succeeds."""

    environment = "x-green"

    def __init__(self, polls: int) -> None:
        self.polls = polls
        self.paused: list[bool] = []

    def get_dag(self, dag_id: str) -> dict:
        return {"dag_id": dag_id, "description": "m"}

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.paused.append(paused)

    def trigger(self, dag_id: str, run_id: str, conf=None) -> dict:
        return {"state": "queued"}

    def get_run(self, dag_id: str, run_id: str) -> dict:
        self.polls -= 1
        return {"state": "success" if self.polls < 0 else "running"}


def _sleeps(backoff: bool, every: float = 1.0) -> list[float]:
    from types import SimpleNamespace

    from mwaa_iac.workflows.dr_runs import DagRunner

    options = SimpleNamespace(dag_timeout_seconds=60, run_timeout_seconds=600, run_poll_seconds=every)
    sleeps: list[float] = []
    api = _FakeApi(polls=8)
    result = DagRunner(api, options, lambda e: None, sleep=sleeps.append).run(
        "restore_metadata", "r1", "m", backoff=backoff
    )
    assert result["run_id"] == "r1" and api.paused == [False, True]  # unpaused to run, paused after
    return sleeps


def test_dag_run_polls_back_off_outside_the_freeze_and_stay_steady_inside() -> None:
    assert _sleeps(backoff=True) == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0, 5.0, 5.0]
    assert _sleeps(backoff=False) == [1.0] * 8  # a run noticed late would be frozen time


def test_inside_the_freeze_dag_runs_are_polled_every_second_whatever_run_poll_says() -> None:
    assert _sleeps(backoff=True, every=5.0)[:3] == [5.0, 7.5, 11.25]
    assert _sleeps(backoff=False, every=5.0) == [1.0] * 8  # --run-poll 5 (the default): frozen time
    assert _sleeps(backoff=False, every=0.5) == [0.5] * 8  # a shorter --run-poll is kept


def test_target_uses_the_source_requirements_unchanged() -> None:
    """mwaa-dr comes in the DAG folder: no requirements.<colour>.txt, nothing added for mwaa-dr."""
    from types import SimpleNamespace

    from mwaa_iac.workflows.cutover.target import Target

    class Mwaa:
        def __init__(self, env: dict) -> None:
            self.env = env

        def get_environment(self, name: str) -> dict:
            return self.env

    config = SimpleNamespace(source=SimpleNamespace(requirements_s3_path="requirements/requirements.txt"))
    env = {"RequirementsS3Path": "requirements/requirements.txt", "RequirementsS3ObjectVersion": "v7"}
    self = SimpleNamespace(mwaa=Mwaa(env), source="a-blue", config=config)
    assert Target(self).requirements() == {  # type: ignore[arg-type]
        "path": "requirements/requirements.txt",
        "object_version": "v7",
    }
    none = SimpleNamespace(
        mwaa=Mwaa({}),
        source="a-blue",
        config=SimpleNamespace(source=SimpleNamespace(requirements_s3_path=None)),
    )
    assert Target(none).requirements() is None  # type: ignore[arg-type]
