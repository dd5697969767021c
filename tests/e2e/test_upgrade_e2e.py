"""`mwaa-iac upgrade` on the local stack: real Airflow environments, real in-place upgrades."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from mwaa_iac.workspace import load_config
from tests.conftest import LocalStack
from tests.e2e.conftest import api, make_deployment, run_ids, total

pytestmark = pytest.mark.local
FAST = ("--engine", "api", "--yes", "--poll-interval", "1", "--health-minutes", "0")


def _deployed(root: Path, env: str):
    return load_config(root / "environments" / env / "mwaa.yaml").deployment


def _history(name: str) -> dict[str, object]:
    # The example DAGs are hourly and unpaused: a new run may appear during the test, so runs are
    # compared as sets (none may be lost) and the rest by count.
    counts: dict[str, object] = {f"runs:{d}": run_ids(name, d) for d in ("etl_orders", "report_daily")}
    counts["variables"] = total(name, "/variables")
    counts["connections"] = total(name, "/connections")
    counts["pools"] = total(name, "/pools")
    return counts


def test_in_place_upgrade_keeps_history_and_passes_the_health_gate(local_stack: LocalStack, tmp_path: Path):
    setup = make_deployment(tmp_path, "upgok", runs=5)
    before = _history(setup.source)
    result = local_stack.cli(
        "upgrade",
        "--env",
        "upgok",
        "--root",
        str(tmp_path),
        "--to",
        "2.10.3",
        "--engine",
        "api",
        "--yes",
        "--poll-interval",
        "1",
        "--health-minutes",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "upgraded 2.9.2 → 2.10.3" in result.stdout
        and "safety backup: s3://upgok-mwaa-dr-backups/" in result.stdout
    )
    assert "scheduler heartbeat present for 1 consecutive minutes" in result.stderr
    assert local_stack.environment(setup.source)["airflow_version"] == "2.10.3"
    after = _history(setup.source)
    for key, value in before.items():
        assert value <= after[key] if isinstance(value, set) else value == after[key], key
    seeded = sorted(r for r in before["runs:etl_orders"] if r.startswith("seed__"))
    listed = api(setup.source).request(
        "POST",
        "/dags/~/dagRuns/~/taskInstances/list",
        body={"dag_ids": ["etl_orders"], "dag_run_ids": seeded, "page_limit": 1},
    )
    assert len(seeded) == 5 and listed["total_entries"] == 10 * len(seeded)
    assert _deployed(tmp_path, "upgok").blue == "2.10.3"


def test_injected_failure_is_rolled_back_and_reported(local_stack: LocalStack, tmp_path: Path) -> None:
    setup = make_deployment(tmp_path, "upgfail", runs=2)
    local_stack.admin.fail_next_update(setup.source, "requirements failed to install (injected)")
    result = local_stack.cli(
        "upgrade", "--env", "upgfail", "--root", str(tmp_path), "--to", "2.10.3", "--no-backup", *FAST
    )
    assert result.returncode == 1
    assert "failed and was rolled back" in result.stderr and "requirements failed to install" in result.stderr
    env = local_stack.environment(setup.source)
    assert env["status"] == "UPDATE_FAILED" and env["airflow_version"] == "2.9.2"
    assert api(setup.source).get_dag("etl_orders") is not None  # still serving
    assert _deployed(tmp_path, "upgfail").blue == "2.9.2"


def test_failed_rollback_exits_3(local_stack: LocalStack, tmp_path: Path) -> None:
    setup = make_deployment(tmp_path, "upgdead", runs=1)
    local_stack.admin.fail_next_update(setup.source, "migration broke (injected)", fail_rollback=True)
    result = local_stack.cli(
        "upgrade", "--env", "upgdead", "--root", str(tmp_path), "--to", "2.10.3", "--no-backup", *FAST
    )
    assert result.returncode == 3
    assert "UNAVAILABLE" in result.stderr and "human" in result.stderr
    assert local_stack.environment(setup.source)["status"] == "UNAVAILABLE"


def test_kill_while_updating_then_resume_issues_no_second_update(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """With the journal and lock in S3 (mwaa.yaml `state`), as CI runners on different machines use it."""
    setup = make_deployment(tmp_path, "upgkill", runs=1)
    config = tmp_path / "environments" / "upgkill" / "mwaa.yaml"
    state_bucket = "upgkill-mwaa-dr-backups"  # private and encrypted (made by the demo's setup)
    config.write_text(config.read_text() + f"state:\n  s3_bucket: {state_bucket}\n")
    local_stack.admin.stretch(3, setup.source)
    args = ("upgrade", "--env", "upgkill", "--root", str(tmp_path), "--to", "2.10.3", "--no-backup", *FAST)
    code, _ = local_stack.cli_until(
        *args, stop_when=lambda e: e.get("event") == "watch.status" and e.get("status") == "CREATING_SNAPSHOT"
    )
    assert code == -9 and local_stack.environment(setup.source)["update_requests"] == 1
    s3 = boto3.client("s3")
    prefix = "mwaa-iac/state/upgkill/"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=state_bucket, Prefix=prefix).get("Contents", [])}
    assert keys == {prefix + "lock", prefix + "upgrade.journal.jsonl"}
    assert not (tmp_path / ".mwaa-iac" / "upgkill" / "upgrade.journal.jsonl").exists()
    # The killed process left its lock behind: a resume says so and needs --break-lock.
    locked = local_stack.cli(*args, "--resume")
    assert locked.returncode == 5 and "--break-lock" in locked.stderr
    assert f"s3://{state_bucket}/{prefix}lock" in locked.stderr
    result = local_stack.cli(*args, "--resume", "--break-lock")
    assert result.returncode == 0, result.stderr
    assert "already issued" in result.stderr
    env = local_stack.environment(setup.source)
    assert env["update_requests"] == 1 and env["airflow_version"] == "2.10.3"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=state_bucket, Prefix=prefix).get("Contents", [])}
    assert keys == {prefix + "upgrade.journal.jsonl"}  # lock released, journal finished


def test_refused_path_changes_nothing(local_stack: LocalStack, tmp_path: Path) -> None:
    setup = make_deployment(tmp_path, "upgno", runs=1)
    result = local_stack.cli("upgrade", "--env", "upgno", "--root", str(tmp_path), "--to", "2.6.3", *FAST)
    assert result.returncode == 1 and "end of support" in result.stderr
    assert "nothing was changed" in result.stderr
    env = local_stack.environment(setup.source)
    assert env["update_requests"] == 0 and env["airflow_version"] == "2.9.2"
    dry = local_stack.cli(
        "upgrade",
        "--env",
        "upgno",
        "--root",
        str(tmp_path),
        "--to",
        "2.10.3",
        "--dry-run",
        "--engine",
        "api",
        "--json",
    )
    assert dry.returncode == 0
    summary = next(json.loads(line) for line in dry.stdout.splitlines() if '"upgrade.summary"' in line)
    assert summary["outcome"] == "dry-run" and local_stack.environment(setup.source)["update_requests"] == 0
