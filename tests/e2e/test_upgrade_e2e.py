"""`mwaa-iac upgrade` on the local stack: real Airflow, real in-place upgrades, on one busy environment.

The tests share one deployment whose blue 2.9.2 environment carries the busy workload (mwaa-dr is not
in its requirements.txt) and run in file order, each starting from the state the previous one left:
a refused path and a dry run change nothing; an injected failure is rolled back; the upgrade with its
safety backup keeps the history; a kill while UPDATING is resumed without a second update (a
downgrade back to 2.9.2); a failed rollback leaves it UNAVAILABLE (exit 3).
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from mwaa_iac.local.demo import DemoSetup
from mwaa_iac.workspace import load_config
from tests.conftest import LocalStack
from tests.e2e.conftest import api, make_deployment, requirements_version, run_ids, total

pytestmark = pytest.mark.local
NAME = "upg"
FAST = ("--engine", "api", "--yes", "--poll-interval", "1", "--health-minutes", "0")


@pytest.fixture(scope="module")
def deployment(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> DemoSetup:
    return make_deployment(local_stack, tmp_path_factory.mktemp(NAME), NAME, runs=5)


def _deployed(root: Path):
    return load_config(root / "environments" / NAME / "mwaa.yaml").deployment


def _upgrade(stack: LocalStack, setup: DemoSetup, *args: str):  # type: ignore[no-untyped-def]
    return stack.cli("upgrade", "--env", NAME, "--root", str(setup.root), *args)


def _history(name: str) -> dict[str, object]:
    # Scheduled DAGs are unpaused: a new run may appear during the test, so runs are compared as sets
    # (none may be lost) and the rest by count.
    counts: dict[str, object] = {f"runs:{d}": run_ids(name, d) for d in ("etl_orders", "report_daily")}
    counts["variables"] = total(name, "/variables")
    counts["connections"] = total(name, "/connections")
    counts["pools"] = total(name, "/pools")
    return counts


def test_refused_path_and_dry_run_change_nothing(local_stack: LocalStack, deployment: DemoSetup) -> None:
    result = _upgrade(local_stack, deployment, "--to", "2.6.3", *FAST)
    assert result.returncode == 1 and "end of support" in result.stderr
    assert "nothing was changed" in result.stderr
    env = local_stack.environment(deployment.source)
    assert env["update_requests"] == 0 and env["airflow_version"] == "2.9.2"
    dry = _upgrade(local_stack, deployment, "--to", "2.10.3", "--dry-run", "--engine", "api", "--json")
    assert dry.returncode == 0
    summary = next(json.loads(line) for line in dry.stdout.splitlines() if '"upgrade.summary"' in line)
    assert (
        summary["outcome"] == "dry-run" and local_stack.environment(deployment.source)["update_requests"] == 0
    )


def test_injected_failure_is_rolled_back_and_reported(local_stack: LocalStack, deployment: DemoSetup) -> None:
    local_stack.admin.fail_next_update(deployment.source, "requirements failed to install (injected)")
    result = _upgrade(local_stack, deployment, "--to", "2.10.3", "--no-backup", *FAST)
    assert result.returncode == 1
    assert "failed and was rolled back" in result.stderr and "requirements failed to install" in result.stderr
    env = local_stack.environment(deployment.source)
    assert env["status"] == "UPDATE_FAILED" and env["airflow_version"] == "2.9.2"
    assert env["update_requests"] == 1
    assert api(deployment.source).get_dag("etl_orders") is not None  # still serving
    assert _deployed(deployment.root).blue == "2.9.2"


def test_upgrade_with_a_safety_backup_keeps_history_and_passes_the_health_gate(
    local_stack: LocalStack, deployment: DemoSetup
) -> None:
    """From UPDATE_FAILED (MWAA allows a new update). The safety backup runs mwaa-dr on the source
    although its requirements.txt does not list it: no UpdateEnvironment beyond the version hop."""
    source = deployment.source
    before = _history(source)
    requirements = requirements_version(local_stack, source)
    updates = local_stack.environment(source)["update_requests"]
    result = _upgrade(
        local_stack, deployment, "--to", "2.10.3", "--engine", "api", "--yes", "--poll-interval", "1",
        "--health-minutes", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "upgraded 2.9.2 → 2.10.3" in result.stdout
    assert f"safety backup: s3://{NAME}-mwaa-dr-backups/" in result.stdout
    assert "scheduler heartbeat present for 1 consecutive minutes" in result.stderr
    env = local_stack.environment(source)
    assert env["airflow_version"] == "2.10.3"
    assert env["update_requests"] == updates + 1  # the hop only: mwaa-dr needed no requirements update
    assert requirements_version(local_stack, source) == requirements
    after = _history(source)
    for key, value in before.items():
        assert value <= after[key] if isinstance(value, set) else value == after[key], key
    seeded = sorted(r for r in before["runs:etl_orders"] if r.startswith("seed__"))
    listed = api(source).request(
        "POST",
        "/dags/~/dagRuns/~/taskInstances/list",
        body={"dag_ids": ["etl_orders"], "dag_run_ids": seeded, "page_limit": 1},
    )
    assert len(seeded) == 5 and listed["total_entries"] == 10 * len(seeded)
    assert _deployed(deployment.root).blue == "2.10.3"


def test_kill_while_updating_then_resume_issues_no_second_update(
    local_stack: LocalStack, deployment: DemoSetup
) -> None:
    """A downgrade back to 2.9.2, killed while UPDATING, with the journal and lock in S3 (mwaa.yaml
    `state`), as CI runners on different machines use it."""
    config = deployment.root / "environments" / NAME / "mwaa.yaml"
    state_bucket = f"{NAME}-mwaa-dr-backups"  # private and encrypted (made by the demo's setup)
    config.write_text(config.read_text() + f"state:\n  s3_bucket: {state_bucket}\n")
    updates = local_stack.environment(deployment.source)["update_requests"]
    local_journal = deployment.root / ".mwaa-iac" / NAME / "upgrade.journal.jsonl"
    local_before = local_journal.read_bytes() if local_journal.exists() else None  # earlier tests'
    local_stack.admin.stretch(3, deployment.source)
    args = ("upgrade", "--env", NAME, "--root", str(deployment.root), "--to", "2.9.2", "--no-backup", *FAST)
    code, _ = local_stack.cli_until(
        *args, stop_when=lambda e: e.get("event") == "watch.status" and e.get("status") == "CREATING_SNAPSHOT"
    )
    assert code == -9 and local_stack.environment(deployment.source)["update_requests"] == updates + 1
    s3 = boto3.client("s3")
    prefix = f"mwaa-iac/state/{NAME}/"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=state_bucket, Prefix=prefix).get("Contents", [])}
    assert keys == {prefix + "lock", prefix + "upgrade.journal.jsonl"}
    assert (local_journal.read_bytes() if local_journal.exists() else None) == local_before
    # The killed process left its lock behind: a resume says so and needs --break-lock.
    locked = local_stack.cli(*args, "--resume")
    assert locked.returncode == 5 and "--break-lock" in locked.stderr
    assert f"s3://{state_bucket}/{prefix}lock" in locked.stderr
    result = local_stack.cli(*args, "--resume", "--break-lock")
    assert result.returncode == 0, result.stderr
    assert "already issued" in result.stderr
    local_stack.admin.stretch(0, deployment.source)
    env = local_stack.environment(deployment.source)
    assert env["update_requests"] == updates + 1 and env["airflow_version"] == "2.9.2"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=state_bucket, Prefix=prefix).get("Contents", [])}
    assert keys == {prefix + "upgrade.journal.jsonl"}  # lock released, journal finished


def test_failed_rollback_exits_3(local_stack: LocalStack, deployment: DemoSetup) -> None:
    local_stack.admin.fail_next_update(deployment.source, "migration broke (injected)", fail_rollback=True)
    result = _upgrade(local_stack, deployment, "--to", "2.10.3", "--no-backup", *FAST)
    assert result.returncode == 3
    assert "UNAVAILABLE" in result.stderr and "human" in result.stderr
    assert local_stack.environment(deployment.source)["status"] == "UNAVAILABLE"
