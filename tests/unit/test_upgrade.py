"""The upgrade workflow against a scripted MWAA (no network): steps, journal, resume, outcomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mwaa_iac.adapters.mwaa import EnvironmentNotFoundError, MwaaApiError
from mwaa_iac.core.status import Observation
from mwaa_iac.errors import EnvironmentUnavailableError, ExitCode
from mwaa_iac.events import SUMMARY_KINDS
from mwaa_iac.workflows.journal import Journal
from mwaa_iac.workflows.state import LocalStore
from mwaa_iac.workflows.upgrade import PreflightError, UpdateFailedError, Upgrade, UpgradeOptions
from mwaa_iac.workspace import open_workspace


class FakeMwaa:
    """Behaves like MWAA for one environment: an update walks through AWS's statuses."""

    def __init__(
        self,
        version: str = "2.9.2",
        fail_with: str | None = None,
        rollback_fails: bool = False,
        status: str = "AVAILABLE",
        reject: str | None = None,
    ) -> None:
        self.reject = reject
        self.version = version
        self.updates: list[str] = []
        self.queue: list[Observation] = []
        self.fail_with = fail_with
        self.rollback_fails = rollback_fails
        self.status = status
        self.exists = True
        self.client = self  # InvokeRestApi: the environment's Airflow (after a hop into 3.x)
        # runs in flight during the upgrade: their task instances (dag_version None as migrated)
        self.in_flight: dict[tuple[str, str], list[dict]] = {}
        self.cleared: list[tuple[str, str, list]] = []

    def invoke_rest_api(self, Name, Path, Method, QueryParameters=None, Body=None) -> dict:
        """Airflow 3.3.1's REST API as the upgrade's resume-in-flight uses it; its scheduler gives the
        latest version to the unfinished task instances with a state, once, when a run is listed."""
        if Path == "/dags":
            dags = [
                {"dag_id": d, "is_paused": False} for d in sorted({k[0] for k in self.in_flight} | {"etl"})
            ]
            return {"RestApiResponse": {"dags": dags, "total_entries": len(dags)}}
        if Path == "/dags/~/dagRuns":
            runs = [{"dag_id": d, "dag_run_id": r, "state": "running"} for d, r in self.in_flight]
            return {"RestApiResponse": {"dag_runs": runs, "total_entries": len(runs)}}
        dag_id, rest = Path.removeprefix("/dags/").split("/", 1)
        if rest == "clearTaskInstances":
            assert Body["run_on_latest_version"] is True
            self.cleared.append((dag_id, Body["dag_run_id"], Body["task_ids"]))
            for ti in self.in_flight[(dag_id, Body["dag_run_id"])]:
                if ti["task_id"] in Body["task_ids"]:
                    ti.update(state=None, dag_version={"version_number": 1})
            return {"RestApiResponse": {"task_instances": []}}
        tis = self.in_flight[(dag_id, rest.split("/")[1])]
        if not any(t.get("dag_version") for t in tis):
            for ti in tis:
                if ti["state"] not in (None, "success", "failed"):
                    ti["dag_version"] = {"version_number": 1}
        return {"RestApiResponse": {"task_instances": [dict(t) for t in tis], "total_entries": len(tis)}}

    def observe(self, name: str) -> Observation:
        if not self.exists:
            raise EnvironmentNotFoundError(
                f"MWAA environment {name} not found", code="ResourceNotFoundException", retryable=False
            )
        if self.queue:
            obs = self.queue.pop(0)
            self.version = obs.airflow_version or self.version
            return obs
        return Observation(self.status, self.version, "SUCCESS")

    def get_environment(self, name: str) -> dict:
        return {"Name": name, "AirflowVersion": self.version, "Status": self.status, "Tags": self.tags}

    tags: dict = {}  # noqa: RUF012 - read-only default

    def update_environment(self, name: str, **fields) -> str:
        target = fields["AirflowVersion"]
        if target == self.reject:
            raise MwaaApiError(
                f"UpdateEnvironment: ValidationException: Invalid AirflowVersion {target}",
                code="ValidationException",
                retryable=False,
            )
        self.updates.append(target)
        old = self.version
        pending = [Observation(s, old, "PENDING") for s in ("UPDATING", "CREATING_SNAPSHOT", "UPDATING")]
        if self.fail_with is None:
            self.queue = [*pending, Observation("AVAILABLE", target, "SUCCESS")]
        elif self.rollback_fails:
            self.queue = [
                *pending,
                Observation("ROLLING_BACK", old, "PENDING"),
                Observation("UNAVAILABLE", old, "FAILED", self.fail_with),
            ]
        else:
            self.queue = [
                *pending,
                Observation("ROLLING_BACK", old, "PENDING"),
                Observation("UPDATE_FAILED", old, "FAILED", self.fail_with),
            ]
        return "arn"


@pytest.fixture
def ws(workspace_root: Path):
    return open_workspace("demo", workspace_root)


def _upgrade(ws, mwaa, events=None, **options) -> Upgrade:
    opts = UpgradeOptions(
        engine="api", poll_interval=1, backup=False, health_minutes=0, today=date(2026, 11, 23), **options
    )
    return Upgrade(
        ws,
        ws.load(),
        opts,
        mwaa,
        emit=(events.append if events is not None else lambda e: None),
        sleep=lambda s: None,
    )


def test_two_hop_major_upgrade_records_versions(ws) -> None:
    mwaa = FakeMwaa("2.10.3")
    events: list[dict] = []
    summary = _upgrade(ws, mwaa, events, to="3.3.1").run()
    assert mwaa.updates == ["2.11.2", "3.3.1"]
    assert summary.outcome == "succeeded" and [h["to"] for h in summary.hops] == ["2.11.2", "3.3.1"]
    assert "CREATING_SNAPSHOT" in summary.hops[0]["durations_s"]
    assert ws.load().deployment.blue == "3.3.1"
    assert Journal.load(LocalStore(ws.work_dir), "upgrade.journal.jsonl").finished
    checks = [e for e in events if e["event"] == "preflight.check"]
    # 6 checks, and what a 2 → 3 move changes beyond DAG code (warnings that do not block)
    assert [c["check"] for c in checks if not c["check"].startswith("2 → 3")] == [
        "environment exists", "path allowed", "environment ready", "engine", "requirements", "lock"
    ]  # fmt: skip
    changes = {c["check"]: c for c in checks if c["check"].startswith("2 → 3")}
    assert {"2 → 3: python", "2 → 3: rest-api", "2 → 3: metadata-database"} <= set(changes)
    assert all(c["ok"] and c["detail"].startswith("warning: ") for c in changes.values())
    assert "Python 3.11 → 3.12" in changes["2 → 3: python"]["detail"]
    assert events[-1]["event"] == "upgrade.summary" and events[-1]["event"] in SUMMARY_KINDS  # JSON lines end


def test_runs_in_flight_during_the_upgrade_into_3_finish(ws) -> None:
    """Airflow's migration leaves their task instances without a DAG version; the scheduler gives one
    to those with a state: the one without (load) is cleared onto the latest version, once, also
    after a resume."""
    mwaa = FakeMwaa("2.11.2")
    mwaa.in_flight[("etl", "scheduled__1")] = [
        {"task_id": "wait", "state": "deferred", "dag_version": None},
        {"task_id": "load", "state": None, "dag_version": None},
        {"task_id": "done_before", "state": "success", "dag_version": None},
    ]
    events: list[dict] = []
    summary = _upgrade(ws, mwaa, events, to="3.3.1").run()
    assert mwaa.cleared == [("etl", "scheduled__1", ["load"])]
    assert summary.to_dict()["in_flight"]["cleared"] == ["etl/scheduled__1/load"]
    assert [e["task_instances"] for e in events if e["event"] == "in_flight.resumed"] == [
        ["etl/scheduled__1/load"]
    ]
    journal = Journal.load(LocalStore(ws.work_dir), "upgrade.journal.jsonl")
    assert journal.state("resume-in-flight") == "done"


def test_an_upgrade_within_2_has_no_in_flight_step(ws) -> None:
    mwaa = FakeMwaa("2.9.2")
    mwaa.in_flight[("etl", "scheduled__1")] = [{"task_id": "load", "state": None, "dag_version": None}]
    summary = _upgrade(ws, mwaa, to="2.10.3").run()
    assert "in_flight" not in summary.to_dict() and mwaa.cleared == []


def test_dry_run_changes_nothing(ws) -> None:
    mwaa = FakeMwaa()
    summary = _upgrade(ws, mwaa, to="2.10.3", dry_run=True).run()
    assert summary.outcome == "dry-run" and mwaa.updates == [] and summary.hops[0]["to_version"] == "2.10.3"
    assert not (ws.work_dir / "upgrade.journal.jsonl").exists()


@pytest.mark.parametrize(
    ("version", "status", "to", "message"),
    [
        ("2.9.2", "AVAILABLE", "2.6.3", "end of support"),
        ("1.10.12", "AVAILABLE", "2.10.3", "cannot be upgraded in place"),
        ("2.9.2", "MAINTENANCE", "2.10.3", "maintenance window"),
        ("2.9.2", "UPDATING", "2.10.3", "not AVAILABLE"),
    ],
)
def test_refused_preflight_changes_nothing(ws, version, status, to, message) -> None:
    mwaa = FakeMwaa(version, status=status)
    with pytest.raises(PreflightError) as info:
        _upgrade(ws, mwaa, to=to).run()
    assert message in info.value.message and mwaa.updates == []
    assert ws.load().deployment.blue == "2.9.2"


def test_missing_environment_fails_preflight(ws) -> None:
    mwaa = FakeMwaa()
    mwaa.exists = False
    with pytest.raises(PreflightError, match="not found"):
        _upgrade(ws, mwaa, to="2.10.3").run()


def test_update_failed_is_reported_with_error(ws) -> None:
    mwaa = FakeMwaa(fail_with="UPDATE_FAILED: requirements could not be installed")
    with pytest.raises(UpdateFailedError) as info:
        _upgrade(ws, mwaa, to="2.10.3").run()
    assert "rolled back" in info.value.message and "requirements could not be installed" in info.value.message
    assert "keeps serving Airflow 2.9.2" in info.value.message
    assert info.value.exit_code == ExitCode.FAILED
    assert ws.load().deployment.blue == "2.9.2"


def test_failed_rollback_needs_a_human(ws) -> None:
    mwaa = FakeMwaa(fail_with="UNAVAILABLE: restore failed", rollback_fails=True)
    with pytest.raises(EnvironmentUnavailableError) as info:
        _upgrade(ws, mwaa, to="2.10.3").run()
    assert info.value.exit_code == ExitCode.NEEDS_HUMAN and "human" in info.value.hint


def test_validation_exception_is_shown_verbatim(ws) -> None:
    mwaa = FakeMwaa(reject="2.10.3")
    with pytest.raises(UpdateFailedError) as info:
        _upgrade(ws, mwaa, to="2.10.3").run()
    assert "MWAA refused" in info.value.message and "Invalid AirflowVersion 2.10.3" in info.value.message
    assert ws.load().deployment.blue == "2.9.2"


def test_resume_after_kill_does_not_issue_the_update_again(ws) -> None:
    mwaa = FakeMwaa()

    class Killed(BaseException):
        pass

    def die_while_updating(event: dict) -> None:
        if event.get("event") == "watch.status" and event["status"] == "CREATING_SNAPSHOT":
            raise Killed

    with pytest.raises(Killed):
        _upgrade(ws, mwaa, events=None, to="2.10.3").__class__(
            ws,
            ws.load(),
            UpgradeOptions(engine="api", poll_interval=1, backup=False, health_minutes=0, to="2.10.3"),
            mwaa,
            emit=die_while_updating,
            sleep=lambda s: None,
        ).run()
    assert mwaa.updates == ["2.10.3"]
    assert not (ws.work_dir / "lock").exists()  # released even when killed by an exception
    summary = _upgrade(ws, mwaa, to="2.10.3", resume=True).run()
    assert mwaa.updates == ["2.10.3"]  # still one UpdateEnvironment
    assert summary.outcome == "succeeded" and ws.load().deployment.blue == "2.10.3"


def test_resume_when_killed_before_the_update_was_recorded(ws) -> None:
    """The journal says the hop started but not that the update was issued; MWAA says it is
    UPDATING: watch it, do not issue again."""
    mwaa = FakeMwaa()
    journal = Journal.start(LocalStore(ws.work_dir), "upgrade.journal.jsonl", "upgrade", {"to": "2.10.3"})
    journal.done("preflight", **{"from": "2.9.2"})
    journal.done("backup", skipped="test")
    journal.started("hop-1-2.10.3")
    mwaa.update_environment("analytics-blue", AirflowVersion="2.10.3")
    _upgrade(ws, mwaa, to="2.10.3", resume=True).run()
    assert mwaa.updates == ["2.10.3"]


def test_second_upgrade_while_one_is_unfinished_is_refused(ws) -> None:
    Journal.start(LocalStore(ws.work_dir), "upgrade.journal.jsonl", "upgrade", {"to": "2.10.3"})
    with pytest.raises(Exception, match="unfinished upgrade"):
        _upgrade(ws, FakeMwaa(), to="2.10.3").run()


class FakeClock:
    """Wall and monotonic time that advance only when the workflow sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def monotonic(self) -> float:
        return self.now.timestamp()


class FakeCloudWatch:
    """Heartbeats published every minute before ``stopped`` and from ``resumed`` on."""

    def __init__(self, stopped: datetime, resumed: datetime) -> None:
        self.stopped, self.resumed = stopped, resumed

    def heartbeat_minutes(self, environment: str, minutes: int, now: datetime | None = None) -> list[bool]:
        assert now is not None
        start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes)
        out = []
        for i in range(minutes):
            minute = start + timedelta(minutes=i)
            out.append(minute < self.stopped or minute >= self.resumed)
        return out


def test_health_gate_counts_only_heartbeats_after_the_environment_came_back(ws) -> None:
    """Heartbeats from before the update must not pass the gate at once: minutes count from when the
    gate started (the environment AVAILABLE again), and a resumed gate keeps that start."""
    available = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)
    clock = FakeClock(available)
    cloudwatch = FakeCloudWatch(stopped=available - timedelta(minutes=20), resumed=available)
    opts = UpgradeOptions(engine="api", poll_interval=15, health_minutes=2, today=date(2026, 11, 23))
    upgrade = Upgrade(
        ws, ws.load(), opts, FakeMwaa(), cloudwatch, sleep=clock.sleep, clock=clock.monotonic,
        now=lambda: clock.now,
    )  # fmt: skip
    journal = Journal.start(LocalStore(ws.work_dir), "health.journal.jsonl", "upgrade", {})
    upgrade.health_gate(journal)
    # minutes 10:01 and 10:02 must be complete and not the still-filling one: not before 10:04
    assert clock.now >= datetime(2026, 11, 23, 10, 4, tzinfo=UTC)
    assert journal.data("health")["since"] == available.isoformat()

    # heartbeats all along (the update never stopped them) still wait for minutes after the start
    clock = FakeClock(available)
    upgrade.sleep, upgrade.clock, upgrade.now = clock.sleep, clock.monotonic, lambda: clock.now
    upgrade.cloudwatch = FakeCloudWatch(stopped=available, resumed=available)
    journal = Journal.start(LocalStore(ws.work_dir), "health2.journal.jsonl", "upgrade", {})
    upgrade.health_gate(journal)
    assert clock.now >= datetime(2026, 11, 23, 10, 4, tzinfo=UTC)


class _HopS3:
    def __init__(self, text: str) -> None:
        self.text = text
        self.reads: list[tuple] = []
        self.written: dict[str, str] = {}

    def get_text(self, bucket, key, version=None):
        self.reads.append((bucket, key, version))
        return self.written.get(key, self.text)

    def put_text_versioned(self, bucket, key, text):
        self.written[key] = text
        return f"v-{len(self.written)}"


def test_each_hop_gets_a_requirements_file_with_its_constraint_url(ws) -> None:
    constraint = "--constraint https://example.invalid/constraints-{v}/constraints-{p}.txt\n"
    s3 = _HopS3(constraint.format(v="2.10.3", p="3.11") + "pandas\n")

    class Mwaa(FakeMwaa):
        def __init__(self, version: str) -> None:
            super().__init__(version)
            self.sent: list[dict] = []

        def get_environment(self, name):
            return {
                "Name": name,
                "AirflowVersion": self.version,
                "RequirementsS3Path": "requirements/requirements.txt",
                "RequirementsS3ObjectVersion": "v0",
                "SourceBucketArn": "arn:aws:s3:::src",
            }

        def update_environment(self, name, **fields):
            self.sent.append(fields)
            return super().update_environment(name, **fields)

    mwaa = Mwaa("2.10.3")
    events: list[dict] = []
    upgrade = _upgrade(ws, mwaa, events, to="3.3.1")
    upgrade.s3 = s3
    upgrade.run()
    assert [f["AirflowVersion"] for f in mwaa.sent] == ["2.11.2", "3.3.1"]
    assert [f["RequirementsS3Path"] for f in mwaa.sent] == [
        "requirements/requirements-airflow-2.11.2.txt",
        "requirements/requirements-airflow-3.3.1.txt",
    ]
    assert s3.reads[0] == ("src", "requirements/requirements.txt", "v0")  # what the environment runs
    assert (
        "constraints-2.11.2/constraints-3.12.txt"
        in s3.written["requirements/requirements-airflow-2.11.2.txt"]
    )
    assert (
        "constraints-3.3.1/constraints-3.12.txt" in s3.written["requirements/requirements-airflow-3.3.1.txt"]
    )
    assert [e["path"] for e in events if e["event"] == "hop.requirements"] == list(s3.written)


def test_an_environment_terraform_manages_is_not_upgraded_with_the_api_engine(ws) -> None:
    mwaa = FakeMwaa()
    mwaa.tags = {"mwaa-iac:engine": "terraform"}
    with pytest.raises(PreflightError) as caught:
        _upgrade(ws, mwaa).run()
    assert (
        "tag mwaa-iac:engine=terraform" in caught.value.message
        and "--engine terraform" in caught.value.message
    )
    assert mwaa.updates == []
