"""`mwaa-iac backup`, `cutover`, `rollback` and `cleanup` on the local stack, on a busy environment. One
deployment per module: blue 2.9.2 carries the busy workload (real runs with retries, failed runs, mapped
tasks, datasets, a catch-up DAG, an owner-paused DAG, a DAG id too long for InvokeRestApi's path,
multi-line/CRLF/unicode variables, connections with NULL fields) plus synthetic runs; mwaa-dr is not in
its requirements.txt; each colour has its own execution role (as modules/mwaa-environment makes them). The
tests run in file order: a dry run, a backup, a green role that cannot serve green refused in preflight
(and by doctor), two failure paths (each cleaned up with `mwaa-iac cleanup`), a cutover killed at every
step boundary and resumed, the fingerprints of both colours at the freeze point, nothing of the tool
left on the live colour, a DAG created unpaused during the soak (it runs on the live colour only), a
deployment record reverted after go-live (cleanup refuses, `cutover --resume` writes it again),
rollback, cleanup, and a cutover with work in flight at pause time. Through all of it blue gets no
UpdateEnvironment and its scheduler is never restarted.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from datetime import UTC, datetime

import boto3
import pytest

from mwaa_iac.adapters.airflow_api import AirflowApiError
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr, roles
from mwaa_iac.core.cutover_steps import Step, flow, is_hop_step
from mwaa_iac.local import busy
from mwaa_iac.local.demo import DemoSetup
from mwaa_iac.local.fingerprint import compare, fingerprint, run_in_environment
from mwaa_iac.workspace import load_config
from tests.conftest import LocalStack
from tests.e2e.conftest import (
    api,
    changed_task_instances,
    heartbeat_gaps,
    in_flight_unfinished,
    make_deployment,
    retried_task_instances,
    run_ids,
    scheduler_job,
    total,
    wait_run,
)

pytestmark = pytest.mark.local
NAME = "cut"
BUSINESS = ("etl_orders", "report_daily", "sync_customers")
CHECK_DAG = '''"""mwaa-iac e2e check (airflow DAG): reads a restored connection and XCom, prints neither."""
import json
from datetime import datetime

from airflow import DAG
from airflow.hooks.base import BaseHook
from airflow.models import Variable, XCom
from airflow.operators.python import PythonOperator


def check(**context):
    password_ok = BaseHook.get_connection("seed_conn_03").password == "pw-3-s3cr3t"
    value = XCom.get_one(run_id="seed__2025-01-01T05:00:00+00:00", dag_id="etl_orders", task_id="t00",
                         key="return_value")
    Variable.set("e2e_check", json.dumps({"password_ok": password_ok, "xcom": value}))


with DAG("e2e_check", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    PythonOperator(task_id="check", python_callable=check)
'''


STATE_BUCKET = f"{NAME}-mwaa-dr-backups"  # journals and the lock in S3 (mwaa.yaml `state`)
JOURNAL_KEY = f"mwaa-iac/state/{NAME}/cutover.journal.jsonl"
# Every step of a two-pass cutover 2.9.2 → 2.10.3 with history, in order, as the events show them
# ("hop:V": the target's in-place upgrade to V, reported by hop.done; the health gate inside
# health-target has no event of its own).
FLOW = [
    f"hop:{step.rsplit('-', 1)[-1]}" if is_hop_step(step) else step
    for step in flow(history=True, two_pass=True, hops=["2.10.3"])
    if step != Step.HEALTH_GATE_TARGET
]


# What the kill test saw at the freeze point, for the fingerprint test.
FREEZE_POINT: dict[str, dict] = {}


@pytest.fixture(scope="module")
def deployment(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> DemoSetup:
    # The in-flight test's retrying task must still wait at pause time (seconds after it starts) and
    # retry on green soon after go-live.
    # Execution roles as modules/mwaa-environment makes them: blue's serves blue only, the cutover
    # gives green a role of its own.
    setup = make_deployment(
        local_stack,
        tmp_path_factory.mktemp("cut"),
        NAME,
        runs=100,
        retry_delay_seconds=90,
        per_colour_roles=True,
    )
    config = setup.root / "environments" / NAME / "mwaa.yaml"
    config.write_text(config.read_text() + f"state:\n  s3_bucket: {STATE_BUCKET}\n")
    BLUE_SCHEDULER.update(job=scheduler_job(local_stack, setup.source), since=datetime.now(UTC))
    return setup


BLUE_SCHEDULER: dict = {}


def _blue_never_restarted(stack: LocalStack, setup: DemoSetup) -> None:
    """No UpdateEnvironment on blue, the same scheduler job since the module began, and its heartbeat
    metric without a gap a restart would leave (generous: the machine is busy)."""
    assert stack.environment(setup.source)["update_requests"] == 0
    assert scheduler_job(stack, setup.source) == BLUE_SCHEDULER["job"]
    gaps = heartbeat_gaps(setup.source, BLUE_SCHEDULER["since"], datetime.now(UTC))
    assert max(gaps) < 30, f"blue's heartbeat stopped: gaps {sorted(gaps)[-3:]}"


def _tool_dag(dag_id: str) -> bool:
    return dag_id in dr.DR_DAG_IDS or dag_id.startswith("mwaa_iac")


def _cutover(stack: LocalStack, setup: DemoSetup, *extra: str, stop_when=None):
    args = (
        "cutover",
        "--env",
        NAME,
        "--root",
        str(setup.root),
        "--engine",
        "api",
        "--yes",
        "--poll-interval",
        "1",
        "--run-poll",
        "1",
        "--health-minutes",
        "0",
        *extra,
    )
    if stop_when is None:
        return stack.cli(*args)
    return stack.cli_until(*args, stop_when=stop_when)


def _step_done(name: str):
    return lambda e: e.get("event") == "step.done" and e.get("step") == name


def _boundary(event: dict) -> bool:
    """A step was recorded as done (the journal is written before the event)."""
    return event.get("event") in ("step.done", "hop.done")


def _went_live_at() -> datetime:
    """When go-live unpaused the recorded DAGs on green (the cutover journal in the state bucket)."""
    text = S3("us-east-1").get_text(STATE_BUCKET, JOURNAL_KEY) or ""
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    done = [e for e in entries if e.get("step") == Step.GO_LIVE and e.get("event") == "done"]
    return datetime.fromtimestamp(done[-1]["data"]["result"]["unpaused_at"], UTC)


def _log_rows_before(env: str, dag_id: str, moment: datetime) -> int:
    """``dag_id``'s audit-log rows on ``env`` dated at or before ``moment`` (paged)."""
    count, offset = 0, 0
    while True:
        page = api(env).request("GET", "/eventLogs", query={"dag_id": dag_id, "limit": 100, "offset": offset})
        rows = page["event_logs"]
        count += sum(1 for r in rows if datetime.fromisoformat(r["when"]) <= moment)
        offset += len(rows)
        if not rows or offset >= page["total_entries"]:
            return count


def _paused(env: str) -> dict[str, bool]:
    return {d["dag_id"]: d["is_paused"] for d in api(env).list_dags()}


def _cleanup(stack: LocalStack, setup: DemoSetup, *extra: str) -> None:
    result = stack.cli(
        "cleanup", "--env", NAME, "--root", str(setup.root), "--yes", "--poll-interval", "1", *extra
    )
    assert result.returncode == 0, result.stderr


# What blue changes between the passes (pass 2 must carry each: a delta with updates and deletions).
OLD_RUN = "seed__2025-01-01T{hour:02d}:00:00+00:00"
CLEARED = ("report_daily", OLD_RUN.format(hour=10), "t01")
MARKED_FAILED = ("sync_customers", OLD_RUN.format(hour=11), "t02")
DELETED = ("etl_orders", OLD_RUN.format(hour=20))


def _change_history_between_passes(env: str) -> None:
    """New runs, a cleared task run again (its try number grows), a task marked failed, a deleted
    old run, a changed variable and a changed pool: rows added, updated and deleted on blue."""
    client = api(env)
    _run_dag(env, "etl_orders", "between-passes")
    dag_id, run_id, task_id = CLEARED
    busy.clear_task(client, dag_id, run_id, task_id)
    for _ in range(180):
        if client.get_run(dag_id, run_id)["state"] in ("success", "failed"):
            break
        time.sleep(1)
    assert client.get_run(dag_id, run_id)["state"] == "success"
    dag_id, run_id, task_id = MARKED_FAILED
    client.request(
        "POST",
        f"/dags/{dag_id}/updateTaskInstancesState",
        body={
            "dry_run": False,
            "dag_run_id": run_id,
            "task_id": task_id,
            "new_state": "failed",
            **dict.fromkeys(
                ("include_upstream", "include_downstream", "include_future", "include_past"), False
            ),
        },
    )
    client.request("DELETE", f"/dags/{DELETED[0]}/dagRuns/{DELETED[1]}")
    client.request("PATCH", "/variables/seed_var_03", body={"key": "seed_var_03", "value": "changed"})
    client.request("PATCH", "/pools/seed_pool_1", body={"name": "seed_pool_1", "slots": 9})


def _run_dag(env: str, dag_id: str, run_id: str) -> None:
    client = api(env)
    client.set_paused(dag_id, False)
    client.trigger(dag_id, run_id)
    for _ in range(180):
        if client.get_run(dag_id, run_id)["state"] in ("success", "failed"):
            break
        time.sleep(1)
    assert client.get_run(dag_id, run_id)["state"] == "success"


def test_dry_run_plans_two_passes_and_changes_nothing(local_stack: LocalStack, deployment: DemoSetup) -> None:
    result = local_stack.cli(
        "cutover", "--env", NAME, "--root", str(deployment.root), "--engine", "api", "--dry-run", "--json"
    )
    assert result.returncode == 0, result.stderr
    plan = next(json.loads(line) for line in result.stdout.splitlines() if '"cutover.plan"' in line)
    assert plan["passes"] == 2 and plan["history_carried"] is True
    assert [h["to_version"] for h in plan["hops"]] == ["2.9.2", "2.10.3"]
    assert "not restarted" in " ".join(plan["mwaa_dr_delivery"])
    assert f"{NAME}-green" not in {e["name"] for e in local_stack.admin.environments()}
    listed = boto3.client("s3").list_objects_v2(Bucket=STATE_BUCKET, Prefix=f"mwaa-iac/state/{NAME}/")
    assert listed.get("KeyCount", 0) == 0  # no journal; the lock was released


def test_backup_runs_mwaa_dr_on_the_source_without_touching_its_requirements(
    local_stack: LocalStack, deployment: DemoSetup
) -> None:
    """`mwaa-iac backup` on blue, whose requirements.txt does not list mwaa-dr: the probe and the
    backup import it from the DAG folder; blue gets no UpdateEnvironment and keeps scheduling."""
    result = local_stack.cli("backup", "--env", NAME, "--root", str(deployment.root), "--json")
    assert result.returncode == 0, result.stderr
    summary = [json.loads(line) for line in result.stdout.splitlines()][-1]  # JSON lines: the summary last
    bucket, _, prefix = summary["location"].removeprefix("s3://").partition("/")
    manifest = json.loads(S3("us-east-1").get_text(bucket, f"{prefix}/manifest.json") or "{}")
    info = json.loads(S3("us-east-1").get_text(bucket, f"{prefix}/mwaa-iac-backup.json") or "{}")
    assert {t: e["rows"] for t, e in manifest["tables"].items()} == summary["records"] == info["records"]
    # multi-line variables are one row each (the busy profile has 10 of its own, the basic 20)
    assert manifest["tables"]["variable"]["rows"] == total(deployment.source, "/variables")
    assert manifest["tables"]["dag_run"]["rows"] >= 300
    assert {"task_map", "dataset_event", "trigger"} <= set(manifest["tables"])
    assert info["mwaa_dr_delivery"]["versions"]["mwaa-dr"] == "2.2.0"
    _blue_never_restarted(local_stack, deployment)


def test_a_green_role_that_cannot_serve_green_is_refused_in_preflight_and_by_doctor(
    local_stack: LocalStack, deployment: DemoSetup
) -> None:
    """Green's own role exists but was made with blue's trust (MWAA could not assume it for green):
    the cutover is refused in preflight, naming the blocking condition, before anything is created;
    `mwaa-iac doctor` says the same. Without that role, the cutovers below create green's own."""
    mwaa = MwaaClient("us-east-1")
    blue_role = mwaa.get_environment(deployment.source)["ExecutionRoleArn"]
    assert blue_role.endswith(f":role/service-role/mwaa-{NAME}-blue")
    blue_scope = roles.RoleScope(
        "aws", "us-east-1", blue_role.split(":")[4], deployment.source, f"{NAME}-airflow-source", "dags"
    )
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(
        RoleName=f"mwaa-{NAME}-green",
        Path="/service-role/",
        AssumeRolePolicyDocument=json.dumps(roles.trust_policy(blue_scope)),
    )
    try:
        refused = _cutover(local_stack, deployment)
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert "preflight failed, nothing was changed" in refused.stderr
        assert f"mwaa-{NAME}-green exists but cannot serve {NAME}-green" in refused.stderr
        assert "ArnLike aws:SourceArn" in refused.stderr and f"environment/{NAME}-blue" in refused.stderr
        assert not mwaa.exists(f"{NAME}-green")
        doctor = local_stack.cli("doctor", "--env", NAME, "--root", str(deployment.root))
        assert doctor.returncode == 1, doctor.stdout + doctor.stderr
        assert f"✓ execution role serves {NAME}-blue" in doctor.stdout
        assert f"✗ execution role for {NAME}-green" in doctor.stdout and "fix:" in doctor.stdout
    finally:
        iam.delete_role(RoleName=f"mwaa-{NAME}-green")
    _blue_never_restarted(local_stack, deployment)


def _green_has_a_role_of_its_own(deployment: DemoSetup) -> None:
    """The cutover gave green the role modules/mwaa-environment would: its own, trusting green only."""
    mwaa = MwaaClient("us-east-1")
    green = mwaa.get_environment(f"{NAME}-green")
    assert green["ExecutionRoleArn"].endswith(f":role/service-role/mwaa-{NAME}-green")
    assert green["Tags"].get("mwaa-iac:engine") == "api"
    iam = boto3.client("iam", region_name="us-east-1")
    trust = iam.get_role(RoleName=f"mwaa-{NAME}-green")["Role"]["AssumeRolePolicyDocument"]
    assert json.dumps(trust).count(f"environment/{NAME}-green") == 1
    assert mwaa.get_environment(deployment.source)["ExecutionRoleArn"].endswith(f"mwaa-{NAME}-blue")


def test_target_upgrade_failure_stops_before_the_freeze(
    local_stack: LocalStack, deployment: DemoSetup
) -> None:
    local_stack.admin.fail_next_update(f"{NAME}-green", "plugins did not load (injected)")
    result = _cutover(local_stack, deployment)
    assert result.returncode == 1 and "plugins did not load" in result.stderr
    assert "freeze started" not in result.stderr  # (the hop's reason says "before the freeze")
    assert all(not _paused(deployment.source)[d] for d in BUSINESS)  # blue keeps scheduling
    # The cause is gone (the injected failure was for one update): --resume issues the hop again
    # without repeating pass 1.
    code, events = _cutover(local_stack, deployment, "--resume", stop_when=_step_done(Step.HEALTH_TARGET))
    assert code == -9, local_stack.last_stderr
    done = [e.get("step") for e in events if e.get("event") == "step.done"]
    assert Step.RESTORE_P1 not in done and done[-1] == Step.HEALTH_TARGET
    assert MwaaClient("us-east-1").get_environment(f"{NAME}-green")["AirflowVersion"] == "2.10.3"
    _cleanup(local_stack, deployment, "--break-lock")


def test_restore_failure_stops_before_pausing_anything_and_resume_gets_past_it(
    local_stack: LocalStack, deployment: DemoSetup
) -> None:
    """A pass-1 restore fails (a table's CSV is missing): nothing is paused, and the restore, one
    transaction, changed nothing. Once the cause is gone, `--resume` restores again with a run id of
    its own (the failed run is not handed back), and the restore verifies counts and content hashes
    against the backup's manifest: no row duplicated or lost."""
    code, events = _cutover(local_stack, deployment, stop_when=_step_done(Step.VERIFY_BACKUP_P1))
    assert code == -9, local_stack.last_stderr
    prefix = next(e for e in events if e.get("event") == "dr.backup_verified")["prefix"]
    s3, bucket, key = boto3.client("s3"), f"{NAME}-mwaa-dr-backups", f"{prefix}/dag_run.csv"
    saved = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.delete_object(Bucket=bucket, Key=key)
    result = _cutover(local_stack, deployment, "--resume", "--break-lock")
    assert result.returncode == 1 and "restore_metadata" in result.stderr and "failed tasks" in result.stderr
    assert "dag_run.csv" in result.stderr  # the restore's own error, from its run's note
    assert all(not _paused(deployment.source)[d] for d in BUSINESS)
    assert total(f"{NAME}-green", "/dags/etl_orders/dagRuns") == 0  # rolled back: nothing half-copied

    s3.put_object(Bucket=bucket, Key=key, Body=saved)  # the cause is gone
    code, events = _cutover(
        local_stack, deployment, "--resume", "--break-lock", stop_when=_step_done(Step.VERIFY_RESTORE_P1)
    )
    assert code == -9, local_stack.last_stderr
    triggered = {e["dag_id"]: e["run_id"] for e in events if e.get("event") == "dr.triggered"}
    assert triggered[dr.RESTORE_DAG_ID].endswith("-p1a1")
    assert [e["step"] for e in events if e.get("event") == "step.done"] == [
        Step.RESTORE_P1,
        Step.VERIFY_RESTORE_P1,  # counts and hashes equal the backup's: nothing duplicated or lost
    ]
    assert total(f"{NAME}-green", "/dags/etl_orders/dagRuns") >= 100
    assert all(not _paused(deployment.source)[d] for d in BUSINESS)
    _cleanup(local_stack, deployment, "--break-lock")  # the killed run left its lock


def test_cutover_killed_at_step_boundaries_resumes_to_a_complete_copy(
    local_stack: LocalStack, deployment: DemoSetup
) -> None:
    """SIGKILL after every step of the flow up to go-live in turn (each resume runs until the next
    step is recorded, then dies), with a run made on blue between the passes, and a restore failure
    inside the freeze: the abort gives scheduling back to blue, blue makes a run, and the resume
    freezes again and takes a fresh backup that carries it. The last resume runs the final step;
    then everything must be there exactly once."""
    blue, green = f"{NAME}-blue", f"{NAME}-green"
    live_before = {d for d, paused in _paused(blue).items() if not paused and not _tool_dag(d)}
    assert set(BUSINESS) <= live_before and busy.LONG_DAG in live_before
    S3("us-east-1").put_text(f"{NAME}-airflow-source", "dags/e2e_check.py", CHECK_DAG)
    killed_after: list[str] = []
    seen: list[dict] = []  # every event of every run
    extra: tuple[str, ...] = ()
    aborted = False
    # The last boundary (after retire-dr-dags) is followed within milliseconds by the journal's end
    # record, too close for a kill from outside: the final resume below runs that step instead.
    while not killed_after or killed_after[-1] != FLOW[-2]:
        assert len(killed_after) < 2 * len(FLOW), f"steps repeated or unknown: {killed_after}"
        code, events = _cutover(local_stack, deployment, *extra, stop_when=_boundary)
        assert code == -9, f"the cutover ended (exit {code}) after {killed_after}: {local_stack.last_stderr}"
        last = events[-1]
        killed_after.append(last["step"] if last["event"] == "step.done" else f"hop:{last['to']}")
        seen += events
        if killed_after[-1] == Step.HEALTH_TARGET:
            # Between the passes blue keeps scheduling, and its history changes: pass 2 carries it.
            _change_history_between_passes(blue)
        if killed_after[-1] == Step.DRAIN_SOURCE and not aborted:
            # Inside the freeze, before the go: pass 2's armed copiers are told to cancel (as an
            # aborted freeze tells them). Each does nothing, and the freeze triggers its runs instead.
            bucket = f"{NAME}-mwaa-dr-backups"
            s3 = boto3.client("s3")
            listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            go_keys = [o["Key"] for o in listed if "-go/" in o["Key"]]
            # No go signal is written before the freeze reaches backup-p2: only the backup copier's
            # pause signal (record-dags) and its answer (it paused the DAGs in blue's database).
            said = {k: json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in go_keys}
            assert sorted(k for k, v in said.items() if "pause" in v) == [
                k.removesuffix(".paused.json") + ".json" for k in go_keys if k.endswith(".paused.json")
            ], said
            assert all(v.get("state") == "paused" for k, v in said.items() if k.endswith(".paused.json"))
            armed = [e["go"] for e in seen if e["event"] == "copier.armed"]
            cancel = json.dumps(dr.CANCEL_SIGNAL).encode()
            for key in armed:
                s3.put_object(Bucket=bucket, Key=key, Body=cancel)
            time.sleep(3)  # each polls its signal every 0.25 s
        if killed_after[-1] == Step.VERIFY_BACKUP_P2 and not aborted:
            # Inside the freeze, pass 2's backup loses its manifest: the restore (triggered: its armed
            # copier was cancelled) fails before it knows it holds a delta (a delta's own failures fall
            # back to a full copy in the same freeze instead), changes nothing on green, and the
            # abort unpauses the recorded DAGs on blue, which goes on scheduling.
            aborted = True
            prefix = next(e for e in events if e.get("event") == "dr.backup_verified")["prefix"]
            boto3.client("s3").delete_object(Bucket=f"{NAME}-mwaa-dr-backups", Key=f"{prefix}/{dr.MANIFEST}")
            failed = _cutover(local_stack, deployment, "--resume", "--break-lock")
            assert failed.returncode == 1 and "restore_metadata" in failed.stderr, failed.stderr[-2000:]
            assert "did nothing (cancelled)" in failed.stdout + failed.stderr
            assert {
                d for d, paused in _paused(blue).items() if not paused and not _tool_dag(d)
            } == live_before
            _run_dag(blue, "etl_orders", "after-abort")  # must reach green through a fresh backup
        if killed_after[-1] == Step.VERIFY_RESTORE_P2:
            # The freeze point: blue paused and drained, green restored and verified, not yet live.
            FREEZE_POINT["blue"] = fingerprint(local_stack.state_dir, blue)
            FREEZE_POINT["green"] = fingerprint(local_stack.state_dir, green)
        extra = ("--resume", "--break-lock")
    # Every boundary up to go-live was hit, each step ran once; after the abort, the freeze and pass
    # 2's copy ran again from the start.
    freeze = FLOW.index(Step.ARM_COPIERS)  # an aborted freeze arms pass 2's copiers again
    assert killed_after == FLOW[: FLOW.index(Step.VERIFY_BACKUP_P2) + 1] + FLOW[freeze:-1]
    # Pass 2's backup and restore ran as copiers armed before the freeze; the cancelled ones fell
    # back to triggered runs (the backup's in a killed run, the restore's in the failed one).
    copiers = [e for e in seen if e["event"] == "copier.armed" and not re.search(r"p2u\d+$", e["run_id"])]
    assert [e["environment"] for e in copiers] == [blue, green] * 2
    fallbacks = [(e["environment"], e["reason"]) for e in seen if e["event"] == "copier.fallback"]
    assert fallbacks == [(blue, "cancelled")], fallbacks
    assert JOURNAL_KEY in {
        o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=STATE_BUCKET)["Contents"]
    }
    result = _cutover(local_stack, deployment, "--resume", "--break-lock")
    assert result.returncode == 0, result.stderr
    assert "is live on Airflow 2.10.3" in result.stdout and "freeze window" in result.stdout

    # History: the same runs, task instances, variables, connections and pools on both colours.
    # (green schedules after go-live, so it may already hold a newer hourly run than blue)
    for dag_id in BUSINESS:
        blue_runs, green_runs = run_ids(blue, dag_id), run_ids(green, dag_id)
        assert blue_runs <= green_runs and len(green_runs - blue_runs) <= 1
        assert total(green, f"/dags/{dag_id}/dagRuns/~/taskInstances") >= total(
            blue, f"/dags/{dag_id}/dagRuns/~/taskInstances"
        )
    assert api(green).get_run("etl_orders", "between-passes")["state"] == "success"
    assert api(green).get_run("etl_orders", "after-abort")["state"] == "success"
    # Pass 2 was a delta against the backup green held, and carried the changes: the deleted run is
    # gone, the changed variable and pool are changed (row by row: the fingerprint test below).
    deltas = [e for e in seen if e["event"] == "dr.delta"]
    assert deltas and all(0 < e["copied"] < e["rows"] for e in deltas), deltas
    assert {"report_daily", "sync_customers", "etl_orders"} <= set(deltas[-1]["whole"]), deltas
    assert not [e for e in seen if e["event"] == "dr.delta_fallback"]
    assert DELETED[1] not in run_ids(green, DELETED[0]) and DELETED[1] not in run_ids(blue, DELETED[0])
    assert api(green).get_variable_value("seed_var_03") == "changed"
    assert api(green).request("GET", "/pools/seed_pool_1")["slots"] == 9
    assert total(green, "/connections") == total(blue, "/connections") >= 10
    assert total(green, "/pools") == total(blue, "/pools")
    blue_vars = {
        v["key"] for v in api(blue).request("GET", "/variables", query={"limit": 100})["variables"]
    } - set(dr.TOOL_VARIABLES)  # blue, no longer live, holds new DAGs paused (mwaa_iac_hold)
    green_vars = {
        v["key"] for v in api(green).request("GET", "/variables", query={"limit": 100})["variables"]
    }
    assert blue_vars <= green_vars and len(blue_vars) >= 20
    # Restored twice (pass 1 and pass 2) and killed mid-restore: no duplicated log rows.
    # (green schedules etl_orders after go-live and logs its own events then: only rows dated before
    # the unpause are copies)
    blue_log = total(blue, "/eventLogs", dag_id="etl_orders")
    assert blue_log <= total(green, "/eventLogs", dag_id="etl_orders")
    assert _log_rows_before(green, "etl_orders", _went_live_at()) <= blue_log + 3

    # Scheduling moved: exactly the recorded DAGs paused on blue and live on green.
    assert all(_paused(blue)[d] for d in BUSINESS) and not any(_paused(green)[d] for d in BUSINESS)
    assert {d for d, paused in _paused(green).items() if not paused} == live_before
    assert not any(_paused(blue)[d] is False for d in live_before)

    # Secrets decrypt with green's own key, and XComs of restored runs are found.
    _run_dag(green, "e2e_check", "check-1")
    check = json.loads(api(green).get_variable_value("e2e_check"))
    assert check == {"password_ok": True, "xcom": {"task": "t00", "run": 5}}
    api(green).set_paused("e2e_check", True)
    routing = json.loads(boto3.client("ssm").get_parameter(Name=f"/mwaa/{NAME}/active")["Parameter"]["Value"])
    assert routing["name"] == green and routing["airflow_version"] == "2.10.3"
    recorded = load_config(deployment.root / "environments" / NAME / "mwaa.yaml").deployment
    assert recorded.active_color.value == "green" and recorded.green == "2.10.3"
    _green_has_a_role_of_its_own(deployment)
    _blue_never_restarted(local_stack, deployment)


# Rows each environment writes on its own: its audit log (REST calls, its scheduler's events).
OWN_ROWS = ("log",)


def test_fingerprints_of_both_colours_are_equal_at_the_freeze_point() -> None:
    """Blue paused and drained, green restored and verified, not yet live: every table equal, value
    by value (CR, NULL vs '', unicode, JSON, XCom bytes, task_map, dataset events, next_dagrun)."""
    if not FREEZE_POINT:
        pytest.fail("the kill test did not reach the freeze point")
    differences = compare(FREEZE_POINT["blue"], FREEZE_POINT["green"], ignore=OWN_ROWS)
    assert differences == [], "\n".join(differences)


def test_the_live_colour_holds_nothing_of_the_tool(deployment: DemoSetup) -> None:
    """After go-live green lists none of the tool's variables, DAGs or runs (the restore marker, the
    DR DAG records and their runs are gone); blue, the old colour, holds new DAGs paused."""
    green, blue = f"{NAME}-green", f"{NAME}-blue"
    keys = {v["key"] for v in api(green).request("GET", "/variables", query={"limit": 100})["variables"]}
    assert not keys & set(dr.TOOL_VARIABLES), keys & set(dr.TOOL_VARIABLES)
    # (the local stack's own seeding DAG, mwaa_iac_seed, is the test's workload, not the cutover's)
    assert not [d["dag_id"] for d in api(green).list_dags() if d["dag_id"] in dr.MWAA_IAC_DAG_IDS]
    assert not [d for d in dr.MWAA_IAC_DAG_IDS if api(green).has_dag(d)]  # inactive records neither
    for dag_id in dr.MWAA_IAC_DAG_IDS:
        assert total(green, f"/dags/{dag_id}/dagRuns") == 0, dag_id
    assert api(blue).get_variable_value(dr.HOLD_VARIABLE) == green


SOAK_DAG = '''"""mwaa-iac e2e: a DAG file that first appears during the soak, created unpaused."""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("soak_new_dag", schedule=timedelta(minutes=5), start_date=datetime(2025, 1, 1), catchup=False,
         is_paused_upon_creation=False) as dag:
    EmptyOperator(task_id="noop")
'''


def test_a_dag_created_unpaused_during_the_soak_runs_on_the_live_colour_only(deployment: DemoSetup) -> None:
    """Both colours parse the shared DAG folder: a new DAG with is_paused_upon_creation=False is
    scheduled by green (live) and held paused on blue (the hold), which never runs it."""
    green, blue = f"{NAME}-green", f"{NAME}-blue"
    S3("us-east-1").put_text(f"{NAME}-airflow-source", "dags/soak_new_dag.py", SOAK_DAG)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if total(green, "/dags/soak_new_dag/dagRuns") and "soak_new_dag" in _paused(blue):
                break
            time.sleep(3)
        assert _paused(green).get("soak_new_dag") is False and total(green, "/dags/soak_new_dag/dagRuns") >= 1
        time.sleep(10)  # blue's scheduler had every chance to create a run
        assert _paused(blue).get("soak_new_dag") is True
        assert total(blue, "/dags/soak_new_dag/dagRuns") == 0
    finally:
        S3("us-east-1").delete(f"{NAME}-airflow-source", "dags/soak_new_dag.py")
        _forget_dag("soak_new_dag", green, blue)


def _forget_dag(dag_id: str, *environments: str) -> None:
    """Remove a test DAG from every colour once its file is gone (later tests compare the colours'
    `dag` rows): deleted until the DAG processors, which may still hold the file, stop adding it."""
    deadline = time.monotonic() + 300
    while True:
        for env in environments:
            with contextlib.suppress(AirflowApiError):
                api(env).request("DELETE", f"/dags/{dag_id}")
        time.sleep(20)
        present = [env for env in environments if api(env).has_dag(dag_id)]
        if not present:
            return
        assert time.monotonic() < deadline, f"{dag_id} keeps coming back on {present}"


def test_a_record_reverted_after_go_live_is_refused_then_written_again_by_resume(
    local_stack: LocalStack, deployment: DemoSetup
) -> None:
    """The runner's record was lost (mwaa.yaml says blue again): cleanup refuses with exit code 6,
    naming routing, the journal and the record, and deletes nothing; `cutover --resume` writes the
    record again from the journal."""
    path = deployment.root / "environments" / NAME / "mwaa.yaml"
    written = path.read_text()
    reverted = written.replace("active_color: green", "active_color: blue")
    assert reverted != written
    path.write_text(reverted)
    refused = local_stack.cli("cleanup", "--env", NAME, "--root", str(deployment.root), "--yes", "--json")
    assert refused.returncode == 6, refused.stderr
    for said in ("routing (SSM parameter): green", "last cutover (journal): green", "mwaa.yaml): blue"):
        assert said in refused.stderr
    assert {f"{NAME}-green", f"{NAME}-blue"} <= {e["name"] for e in local_stack.admin.environments()}
    resumed = _cutover(local_stack, deployment, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "active again" in resumed.stdout
    recorded = load_config(path).deployment
    assert recorded.active_color.value == "green" and recorded.green == "2.10.3"


# A scheduled run of the catch-up DAG on green after go-live, as its scheduler makes once a day has
# passed (the test cannot wait a day): the interval after blue's latest.
NEXT_INTERVAL_ON_GREEN = r"""
import datetime
from sqlalchemy import text
from airflow.settings import Session

with Session() as session:
    latest = session.execute(text(
        "SELECT max(execution_date) FROM dag_run WHERE dag_id = :d AND run_type = 'scheduled'"
    ), {"d": DAG_ID}).scalar()
    start = latest + datetime.timedelta(days=1)
    session.execute(text(
        "INSERT INTO dag_run (dag_id, execution_date, run_id, run_type, state, external_trigger, "
        "data_interval_start, data_interval_end, clear_number, queued_at, start_date, end_date) "
        "VALUES (:d, :s, :r, 'scheduled', 'success', false, :s, :e, 0, now(), now(), now())"
    ), {"d": DAG_ID, "s": start, "e": start + datetime.timedelta(days=1),
        "r": f"scheduled__{start.isoformat()}"})
    session.commit()
"""


def test_rollback_returns_scheduling_to_blue(local_stack: LocalStack, deployment: DemoSetup) -> None:
    """Rollback after go-live: no interval runs twice. A catch-up DAG that ran an interval on green
    after blue's latest stays paused on blue (unpausing it would run that interval again there), and
    the report says so; the others continue on blue where they stopped."""
    made = run_in_environment(
        local_stack.state_dir, f"{NAME}-green", f"DAG_ID = {busy.CATCHUP_DAG!r}\n" + NEXT_INTERVAL_ON_GREEN
    )
    assert made.returncode == 0, made.stderr[-2000:]
    result = local_stack.cli("rollback", "--env", NAME, "--root", str(deployment.root), "--yes", "--json")
    assert result.returncode == 0, result.stderr
    report = [json.loads(line) for line in result.stdout.splitlines()][-1]
    assert "not copied back" in report["warning"] and report["history_copied_back"] is False
    # The catch-up DAG stays paused; so does the DAG whose id is too long for InvokeRestApi's path when
    # green ran an hourly interval after blue's latest (an hour began since go-live): its catchup
    # cannot be read, and unknown counts as catching up. Every DAG left paused ran such an interval.
    left = set(report["left_paused"])
    assert busy.CATCHUP_DAG in left and left - {busy.CATCHUP_DAG} <= {busy.LONG_DAG}, left
    assert all(report["dags"][d]["new_latest"] for d in left), report["dags"]
    assert _paused(f"{NAME}-blue")[busy.CATCHUP_DAG] is True
    assert not any(_paused(f"{NAME}-blue")[d] for d in BUSINESS)
    assert all(_paused(f"{NAME}-green")[d] for d in BUSINESS)
    routing = json.loads(boto3.client("ssm").get_parameter(Name=f"/mwaa/{NAME}/active")["Parameter"]["Value"])
    assert routing["name"] == f"{NAME}-blue"


def test_cleanup_retires_the_inactive_colour(local_stack: LocalStack, deployment: DemoSetup) -> None:
    result = local_stack.cli(
        "cleanup",
        "--env",
        NAME,
        "--root",
        str(deployment.root),
        "--yes",
        "--backups",
        "--poll-interval",
        "1",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = [json.loads(line) for line in result.stdout.splitlines()][-1]
    assert data["retired"] == f"{NAME}-green"
    assert f"{NAME}-green" not in {e["name"] for e in local_stack.admin.environments()}
    keys = [o["Key"] for o in S3("us-east-1").list_keys(f"{NAME}-airflow-source", "dags/mwaa_iac_dr/")]
    assert keys == []
    # Backups younger than dr.retention_days stay.
    assert S3("us-east-1").list_keys(f"{NAME}-mwaa-dr-backups", "mwaa-dr/") and data["backups_deleted"] == 0


def test_cutover_with_work_in_flight_completes(local_stack: LocalStack, deployment: DemoSetup) -> None:
    """After the cleanup, blue is the active colour again: a second cutover, with a deferrable
    sensor waiting, a long task running and a task waiting for its retry on blue when it pauses. The
    drain waits for the running task only; the fingerprints of blue (frozen) and green (restored) are
    equal table by table; after go-live the in-flight runs complete on green, and no task instance
    runs twice (blue runs nothing after the freeze, green re-runs nothing that had finished)."""
    blue, green = deployment.source, f"{NAME}-green"
    # Up to the freeze (pass 1, the target's upgrade, pass 2's DAG files parsed) first, so that
    # the in-flight work is in flight when the source pauses.
    code, _ = _cutover(local_stack, deployment, stop_when=_step_done(Step.PARSE_DR_P2))
    assert code == -9, local_stack.last_stderr
    flight = busy.start_in_flight(api(blue), label="fl", defer_seconds=240, sleep_seconds=45)
    busy.wait_in_flight(api(blue), flight)
    code, events = _cutover(
        local_stack,
        deployment,
        "--resume",
        "--break-lock",
        "--drain-minutes",
        "4",
        stop_when=_step_done(Step.VERIFY_RESTORE_P2),
    )
    assert code == -9, local_stack.last_stderr
    drained = next(e for e in events if e.get("event") == "step.done" and e.get("step") == Step.DRAIN_SOURCE)
    assert drained["elapsed_s"] < 240  # waited for the long task, not for the runs that stay running
    frozen = fingerprint(local_stack.state_dir, blue)
    restored = fingerprint(local_stack.state_dir, green)
    differences = compare(frozen, restored, ignore=OWN_ROWS)
    # About once a minute blue's scheduler finishes a paused DAG's run whose task instances all ended
    # (README: In-flight work): when that came after pass 2's backup, green holds the long task's run
    # still 'running' and finishes it itself after go-live (asserted below). Nothing else may differ.
    finished_after_backup = f"dag_run: 1 differ: [{busy.LONG_TASK_DAG} | fl-long] (end_date, state)"
    if differences == [finished_after_backup]:
        assert api(blue).get_run(busy.LONG_TASK_DAG, "fl-long")["state"] == "success"
        assert api(green).get_run(busy.LONG_TASK_DAG, "fl-long")["state"] == "running"
        differences = []
    assert differences == [], "\n".join(differences)
    states = {
        (t["dag_id"], t["dag_run_id"], t["task_id"]): t["state"]
        for t in busy.list_task_instances(api(green), [d for d, *_ in flight.tasks], flight.run_ids)
    }
    assert states[(busy.DEFERRED_DAG, "fl-defer", "wait_for_window")] == "deferred"
    assert states[(busy.RETRY_WAIT_DAG, "fl-retry", "call_flaky_service")] == "up_for_retry"
    assert states[(busy.LONG_TASK_DAG, "fl-long", "crunch")] == "success"  # finished on blue

    result = _cutover(local_stack, deployment, "--resume", "--break-lock")
    assert result.returncode == 0, result.stderr[-3000:]
    # Every in-flight run completes on green: the deferred sensor resumes there (its trigger runs on
    # green's triggerer), the retry happens there (and fails again, by design), the run whose task
    # finished during the drain is finished by green's scheduler.
    assert wait_run(green, busy.LONG_TASK_DAG, "fl-long") == "success"
    assert wait_run(green, busy.DEFERRED_DAG, "fl-defer") == "success"
    assert wait_run(green, busy.RETRY_WAIT_DAG, "fl-retry") == "failed"
    # Nothing ran twice: every task instance of blue's frozen history is unchanged on green except
    # the in-flight ones that had not finished; blue ran nothing after the freeze.
    in_flight = in_flight_unfinished("fl")
    changed = changed_task_instances(frozen, fingerprint(local_stack.state_dir, green))
    assert changed <= in_flight, sorted(changed - in_flight)[:5]
    assert retried_task_instances(frozen, fingerprint(local_stack.state_dir, blue)) == set()
    _blue_never_restarted(local_stack, deployment)
