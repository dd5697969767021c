"""Airflow 3 on the local stack: the 2 → 3 upgrade every MWAA user now faces, end to end on real
Airflow, each on a busy environment (real runs with retries, failures, mapping, datasets, awkward
values; the busy workload's dataset DAGs do not import in 3.x, as a user's would not).

- ``upg3``: blue at 2.11.2 (the only 2.x MWAA lets go to 3.x in place); ``mwaa-iac upgrade --to
  3.3.1`` runs the target's ``airflow db migrate`` on its database. A fingerprint before (read through
  2.11.2's models) and after (3.3.1's) shows every run, task instance and XCom carried; a run
  triggered through InvokeRestApi (``/api/v2``, with ``logical_date``) after the upgrade succeeds.
  Then ``mwaa-iac upgrade --to 2.11.2`` downgrades it in place (as MWAA allows from 3.x): the 3.x
  run and the history before it stay.
- 3.0.6 and 3.2.1 environments are created through CreateEnvironment beside it and run a DAG.
- ``cut3``: blue at 2.9.2; ``mwaa-iac cutover --to 3.3.1`` in two passes: green created at 2.9.2,
  pass 1, green upgraded to 2.11.2 while blue runs; the rehearsal (a third environment from pass 1,
  upgraded to 3.3.1) names the dataset DAGs that do not import on 3.x and the freeze gate stops with
  nothing paused; ``--max-freeze-minutes`` below its estimate refuses; ``--accept-import-errors``:
  the freeze: pass 2 into 2.11.2, green's hop to 3.3.1 (killed before it and inside it, resumed),
  go-live; green carries blue's frozen history; ``rollback`` gives scheduling back to blue.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.core.cutover_steps import Step, flow
from mwaa_iac.local import busy
from mwaa_iac.local.busy import BusyProfile
from mwaa_iac.local.demo import DemoSetup, prepare
from mwaa_iac.local.fingerprint import FINAL_STATES, carried, fingerprint, run_in_environment
from mwaa_iac.local.seed import BUSINESS_DAGS, SeedPlan
from mwaa_iac.workspace import load_config
from tests.conftest import LocalStack
from tests.e2e.conftest import (
    api,
    changed_task_instances,
    in_flight_unfinished,
    retried_task_instances,
    wait_run,
)

pytestmark = [pytest.mark.local, pytest.mark.slow]

TO = "3.3.1"
# What a fingerprint of a running environment may show differently after a 2 → 3 migration, and why:
# Airflow 3.0 dropped task_fail and dag_run.external_trigger and re-encodes every XCom value as JSON
# (the deserialized value is compared); log rows, next_dagrun, the run-id sets, the dataset queue and
# the triggers change whenever the scheduler runs (runs themselves are compared row by row).
ACROSS_MAJOR = (
    "task_fail",
    "dag_run.external_trigger",
    "xcom.value_raw",
    "dataset.is_orphaned",
    "log",
    "dag",
    "dag_run_ids",
    "dataset_dag_run_queue",
    "trigger",
)


def _deployment(
    stack: LocalStack, root: Path, name: str, version: str, *, retry_delay_seconds: int = 600
) -> DemoSetup:
    return prepare(
        root,
        name=name,
        from_version=version,
        to_version=TO,
        plan=SeedPlan(runs=20),
        busy=BusyProfile(basic=SeedPlan(runs=20), retry_delay_seconds=retry_delay_seconds),
        poll=1.0,
        sync=stack.admin.sync,
    )


def _wait_run(env: str, dag_id: str, run_id: str, timeout: float = 300) -> str:
    return wait_run(env, dag_id, run_id, timeout=timeout, poll=2.0)


def _events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _paused(env: str) -> dict[str, bool]:
    return {d["dag_id"]: d["is_paused"] for d in api(env).list_dags()}


UPGRADED: dict[str, object] = {}  # what the upgrade test leaves for the downgrade test


def _wait_status(name: str, timeout: float = 600) -> dict:
    client = boto3.client("mwaa")
    deadline = time.monotonic() + timeout
    while True:
        env = client.get_environment(Name=name)["Environment"]
        if env["Status"] not in ("CREATING", "UPDATING", "CREATING_SNAPSHOT", "ROLLING_BACK"):
            return env
        assert time.monotonic() < deadline, f"{name} still {env['Status']}"
        time.sleep(2)


def test_upgrade_2_11_to_3_3_carries_every_run_task_instance_and_xcom(
    local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    setup = _deployment(local_stack, tmp_path_factory.mktemp("upg3"), "upg3", "2.11.2")
    source = setup.source
    before = fingerprint(local_stack.state_dir, source)
    assert before["airflow_version"] == "2.11.2"
    assert before["tables"]["xcom"]["count"] > 0 and before["tables"]["task_instance"]["count"] > 0
    result = local_stack.cli(
        "upgrade", "--env", "upg3", "--root", str(setup.root), "--to", TO, "--engine", "api", "--yes",
        "--poll-interval", "1", "--health-minutes", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"upgraded 2.11.2 → {TO}" in result.stdout
    assert "scheduler heartbeat present for 1 consecutive minutes" in result.stderr
    env = local_stack.environment(source)
    assert env["airflow_version"] == TO and env["status"] == "AVAILABLE"
    assert load_config(setup.root / "environments" / "upg3" / "mwaa.yaml").deployment.blue == TO
    after = fingerprint(local_stack.state_dir, source)
    assert after["airflow_version"] == TO
    assert "task_fail" not in after["tables"]
    (tmp_path_factory.getbasetemp() / "upg3-fingerprints.json").write_text(json.dumps([before, after]))
    problems = carried(before, after, ignore=ACROSS_MAJOR)
    assert problems == [], "\n".join(problems)
    # Scheduling works on 3.3.1: a run triggered through InvokeRestApi (/api/v2) succeeds.
    client = api(source)
    client.set_paused("etl_orders", False)
    client.trigger("etl_orders", "after-upgrade")
    assert client.api_v2 is True
    assert _wait_run(source, "etl_orders", "after-upgrade") == "success"
    assert api(source).request("GET", "/version")["version"] == TO
    UPGRADED.update(setup=setup, after=fingerprint(local_stack.state_dir, source))


def test_each_airflow_3_version_is_created_through_the_mwaa_api_and_runs_a_dag(
    local_stack: LocalStack,
) -> None:
    """CreateEnvironment at 3.0.6 and 3.2.1 (3.3.1: above) with upg3's settings and DAG folder: the
    API server, scheduler, DAG processor and triggerer start, InvokeRestApi reaches /api/v2, a
    triggered run succeeds, the scheduler's heartbeat reaches CloudWatch; then DeleteEnvironment."""
    setup = UPGRADED["setup"]
    assert isinstance(setup, DemoSetup)
    client = boto3.client("mwaa")
    template = client.get_environment(Name=setup.source)["Environment"]
    for version in ("3.0.6", "3.2.1"):
        name = f"af-{version.replace('.', '-')}"
        started = time.monotonic()
        client.create_environment(
            Name=name,
            AirflowVersion=version,
            ExecutionRoleArn=template["ExecutionRoleArn"],
            SourceBucketArn=template["SourceBucketArn"],
            DagS3Path=template["DagS3Path"],
            NetworkConfiguration={
                "SubnetIds": template["NetworkConfiguration"]["SubnetIds"],
                "SecurityGroupIds": template["NetworkConfiguration"]["SecurityGroupIds"],
            },
            EnvironmentClass="mw1.small",
            AirflowConfigurationOptions=template.get("AirflowConfigurationOptions", {}),
        )
        env = _wait_status(name)
        assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
        print(f"\n{version}: created in {time.monotonic() - started:.0f} s")
        assert api(name).request("GET", "/version")["version"] == version
        local_stack.admin.sync(name)
        deadline = time.monotonic() + 240
        while api(name).get_dag("etl_orders") is None:
            assert time.monotonic() < deadline, f"{name} never parsed etl_orders"
            time.sleep(3)
        api(name).set_paused("etl_orders", False)
        api(name).trigger("etl_orders", "on-3x")
        assert _wait_run(name, "etl_orders", "on-3x") == "success"
        assert MwaaClient("us-east-1").get_environment(name)["AirflowVersion"] == version
        client.delete_environment(Name=name)
        deadline = time.monotonic() + 300
        while name in {e["name"] for e in local_stack.admin.environments()}:
            assert time.monotonic() < deadline, f"{name} was not deleted"
            time.sleep(2)


def test_downgrade_from_3_3_to_2_11_in_place_keeps_the_history(local_stack: LocalStack) -> None:
    """MWAA lets a 3.x environment go back to the latest 2.11 in place: 3.3.1's own
    ``airflow db downgrade`` runs, then 2.11.2 starts on the data, the 3.x run included."""
    setup = UPGRADED["setup"]
    assert isinstance(setup, DemoSetup)
    source = setup.source
    before = fingerprint(local_stack.state_dir, source)
    result = local_stack.cli(
        "upgrade", "--env", "upg3", "--root", str(setup.root), "--to", "2.11.2", "--engine", "api", "--yes",
        "--poll-interval", "1", "--health-minutes", "0", "--no-backup",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert local_stack.environment(source)["airflow_version"] == "2.11.2"
    after = fingerprint(local_stack.state_dir, source)
    assert after["airflow_version"] == "2.11.2"
    assert "etl_orders | after-upgrade" in after["tables"]["dag_run"]["rows"]
    problems = carried(before, after, ignore=(*ACROSS_MAJOR, "task_fail"))
    assert problems == [], "\n".join(problems)


def _flight_states(env: str, flight: busy.InFlight) -> dict[tuple[str, str, str], str]:
    return {
        (t["dag_id"], t["dag_run_id"], t["task_id"]): t["state"]
        for t in busy.list_task_instances(api(env), [d for d, *_ in flight.tasks], flight.run_ids)
    }


def _wait_ti(env: str, flight: busy.InFlight, key: tuple[str, str, str], timeout: float = 420.0) -> str:
    """The state of one in-flight task instance once it is final (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while (state := _flight_states(env, flight).get(key)) not in ("success", "failed", "upstream_failed"):
        if time.monotonic() > deadline:
            return str(state)
        time.sleep(3)
    return state


_FLIGHT_DETAIL = """
import airflow
from airflow.settings import Session
from sqlalchemy import text

with Session() as session:
    versioned = session.execute(text(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'task_instance' AND column_name = 'dag_version_id'"
    )).scalar()
    version = "ti.dag_version_id IS NOT NULL" if versioned else "'(2.x)'"
    for row in session.execute(text(
        "SELECT ti.dag_id, ti.run_id, ti.task_id, ti.state, ti.try_number, ti.next_method, ti.trigger_id, "
        f"t.classpath, {version} AS has_dag_version "
        "FROM task_instance ti LEFT JOIN trigger t ON t.id = ti.trigger_id "
        "WHERE ti.run_id LIKE 'fl-%' ORDER BY 1, 2, 3"
    )):
        print(" | ".join(str(v) for v in row))
"""


def _flight_detail(stack: LocalStack, env: str) -> str:
    """The in-flight task instances of ``env`` as its database holds them (state, try number, next
    method, trigger, and on 3.x whether the task instance has a dag_version_id)."""
    result = run_in_environment(stack.state_dir, env, _FLIGHT_DETAIL)
    return result.stdout.strip() or result.stderr[-1500:]


def test_two_pass_cutover_2_9_to_3_3_freezes_for_the_delta_and_one_hop_then_rollback(
    local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The in-flight task waiting for its retry must still wait when blue pauses (a minute or two after
    # it failed) and retry on green soon after go-live.
    setup = _deployment(
        local_stack, tmp_path_factory.mktemp("cut3"), "cut3", "2.9.2", retry_delay_seconds=150
    )
    blue, green = setup.source, "cut3-green"
    unpaused_before = {d for d, paused in _paused(blue).items() if not paused}
    args = (
        "cutover", "--env", "cut3", "--root", str(setup.root), "--to", TO, "--engine", "api", "--yes",
        "--poll-interval", "1", "--run-poll", "1", "--health-minutes", "0",
    )  # fmt: skip
    # The rehearsal (a third environment restored from pass 1 at 2.11.2 and upgraded to 3.3.1 before
    # the freeze) finds the busy workload's dataset DAGs failing on 3.x: the freeze gate stops with
    # nothing paused, the estimate printed. On the way there the cutover is killed after every step
    # in turn (the rehearsal's too) and resumed: each step runs once.
    before_gate = flow(
        history=True, two_pass=True, hops=["2.11.2", TO], freeze_hops=1, rehearsal=True, into_3=True
    )
    before_gate = before_gate[: before_gate.index(Step.FREEZE_GATE)]
    killed_after: list[str] = []
    events = []
    code, extra = -9, ()
    while code == -9:
        assert len(killed_after) <= len(before_gate), killed_after
        code, seen = local_stack.cli_until(
            *args, *extra, stop_when=lambda e: e.get("event") == "step.done"
        )  # fmt: skip
        events += seen
        if code == -9:
            killed_after.append(seen[-1]["step"])
        extra = ("--resume", "--break-lock")
    gate_stderr = local_stack.last_stderr
    assert code == 1, gate_stderr[-3000:]
    # A kill lands a moment after the event that asked for it: a quick next step may be done by then
    # (each kill then falls inside the step after). Every step up to the gate is done, once.
    assert len(killed_after) >= len(before_gate) // 2, killed_after
    assert killed_after == [s for s in before_gate if s in killed_after], killed_after
    journal = setup.root / ".mwaa-iac" / "cut3" / "cutover.journal.jsonl"
    entries = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    done = [e["step"] for e in entries if e.get("event") == "done"]
    assert sorted(done) == sorted(before_gate), done  # none ran twice
    assert busy.PRODUCER_DAG in gate_stderr and busy.CONSUMER_DAG in gate_stderr, gate_stderr[-3000:]
    assert "nothing is paused" in gate_stderr
    checked = next(e for e in events if e.get("event") == "rehearsal.checked")
    assert {busy.PRODUCER_DAG, busy.CONSUMER_DAG} <= set(checked["failing"]), checked
    assert not [h for h in checked["history"] if not h.startswith(("xcom", "log", "task_fail"))], checked
    estimate = next(e for e in events if e.get("event") == "freeze.estimate")
    assert estimate["upgrade_s"] > 0, estimate
    print(f"\nrehearsal: upgrade {estimate['upgrade_s']} s, parse {estimate['parse_s']} s")
    assert {d for d, p in _paused(blue).items() if not p} == unpaused_before  # nothing paused
    assert [e["to"] for e in events if e.get("event") == "hop.done"] == ["2.11.2"]  # green, before
    # A limit below the estimate refuses the freeze, still with nothing paused.
    limit = local_stack.cli(
        *args, "--resume", "--accept-import-errors", "--max-freeze-minutes", str(estimate["seconds"] / 120)
    )
    assert limit.returncode == 1 and "more than --max-freeze-minutes" in limit.stderr, limit.stderr[-2000:]
    assert {d for d, p in _paused(blue).items() if not p} == unpaused_before
    accept = ("--resume", "--break-lock", "--accept-import-errors")
    # Work in flight on blue when it pauses (as in test_cutover_e2e's in-flight test): a deferred
    # sensor whose moment comes after pass 2's backup, a task running through the drain, a task
    # waiting for its retry.
    flight = busy.start_in_flight(api(blue), label="fl", defer_seconds=150, sleep_seconds=30)
    flown = time.monotonic()
    busy.wait_in_flight(api(blue), flight)
    # Killed between the delta (pass 2 verified, into green at 2.11.2) and the freeze's hop into 3.x.
    code, events = local_stack.cli_until(
        *args, *accept,
        stop_when=lambda e: e.get("event") == "step.done" and e.get("step") == "verify-restore-p2",
    )  # fmt: skip
    assert code == -9, local_stack.last_stderr
    assert any(e.get("event") == "rehearsal.deleted" for e in events)
    assert local_stack.environment(green)["airflow_version"] == "2.11.2"
    drained = next(e for e in events if e.get("event") == "step.done" and e.get("step") == "drain-source")
    print(f"\ndrain: {drained['elapsed_s']} s")
    frozen = fingerprint(local_stack.state_dir, blue)  # blue is paused and drained from here on
    # The delta carried the in-flight work into green at 2.11.2 as it was: the sensor deferred, the
    # retry waiting, the long task finished on blue during the drain.
    states = _flight_states(green, flight)
    assert states[(busy.DEFERRED_DAG, "fl-defer", "wait_for_window")] == "deferred", states
    assert states[(busy.RETRY_WAIT_DAG, "fl-retry", "call_flaky_service")] == "up_for_retry", states
    assert states[(busy.LONG_TASK_DAG, "fl-long", "crunch")] == "success", states
    # The sensor's moment is 150 s after its start: still deferred when green's hop begins (~50 s).
    print(f"\n{time.monotonic() - flown:.0f} s after the in-flight start, on green at 2.11.2:")
    print(_flight_detail(local_stack, green))
    # Killed again while MWAA works on the hop into 3.x (the update issued): resumed, it is watched,
    # never issued twice.
    started = []
    code, events = local_stack.cli_until(
        *args, *accept,
        stop_when=lambda e: (started.append(e) if e.get("event") == "hop.started" else False)
        or (bool(started) and str(e.get("event")).startswith("watch.")),
    )  # fmt: skip
    assert code == -9 and started and started[0]["to"] == TO, local_stack.last_stderr
    print(f"\n{time.monotonic() - flown:.0f} s after the in-flight start: green's hop into {TO} started")
    # Killed once more right after go-live, before the runs in flight are resumed on 3.3.1.
    code, went_live = local_stack.cli_until(
        *args, *accept, stop_when=lambda e: e.get("event") == "step.done" and e.get("step") == "go-live"
    )  # fmt: skip
    assert code == -9, local_stack.last_stderr
    result = local_stack.cli(*args, *accept, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    finished = went_live + _events(result.stdout)
    assert any(e.get("event") == "hop.resumed" for e in finished)
    accepted = next(e for e in finished if e.get("event") == "target.import_errors_accepted")
    assert {busy.PRODUCER_DAG, busy.CONSUMER_DAG} <= set(accepted["failing"]), accepted
    report = _events(result.stdout)[-1]
    assert report["passes"] == 2 and report["history_carried"] is True
    # The freeze: pass 2 and the hop into 3.x — not the clone, pass 1 or the hop to 2.11.
    freeze_steps = report["freeze_steps_s"]
    assert "freeze-hop-2-3.3.1" in freeze_steps and "restore-p2" in freeze_steps, freeze_steps
    assert not {"create-target", "backup-p1", "restore-p1", "target-hop-1-2.11.2"} & set(freeze_steps)
    print(f"\ntwo-pass 2 → 3 freeze window: {report['freeze_window_s']} s; steps: {json.dumps(freeze_steps)}")
    assert local_stack.environment(green)["airflow_version"] == TO
    # In-flight work on green at 3.3.1: the long task's run is finished by green's scheduler, the retry
    # happens there (and fails again, by design), and the deferred sensor (copied deferred into
    # 2.11.2, migrated in place with its trigger) resumes on 3.3.1's triggerer and succeeds.
    assert wait_run(green, busy.LONG_TASK_DAG, "fl-long") == "success"
    assert wait_run(green, busy.RETRY_WAIT_DAG, "fl-retry") == "failed"
    sensor = _wait_ti(green, flight, (busy.DEFERRED_DAG, "fl-defer", "wait_for_window"))
    assert sensor == "success", _flight_detail(local_stack, green)
    # The task after the sensor had no state yet when blue paused: a task instance made by 2.9.2,
    # left without a dag_version_id by Airflow's migration, which 3.3.1's scheduler would queue and
    # never enqueue (apache/airflow#61813). After go-live the cutover cleared it onto the DAG's latest
    # version (resume-in-flight): the run finishes on green.
    resumed = report.get("in_flight") or {}
    assert f"{busy.DEFERRED_DAG}/fl-defer/after_window" in resumed.get("cleared", []), resumed
    assert not resumed.get("not_resumed"), resumed
    deferred_run = wait_run(green, busy.DEFERRED_DAG, "fl-defer", timeout=240)
    detail = _flight_detail(local_stack, green)
    print(f"\n{time.monotonic() - flown:.0f} s after the in-flight start, on {TO}: fl-defer {deferred_run}")
    print(detail)
    assert deferred_run == "success", detail
    after = [line for line in detail.splitlines() if "| fl-defer | after_window |" in line]
    assert after and after[0].split(" | ")[3] == "success" and after[0].endswith("True"), detail
    # Blue is frozen since the pause: green must carry every row of it (green has run since).
    live = fingerprint(local_stack.state_dir, green)
    (tmp_path_factory.getbasetemp() / "cut3-fingerprints.json").write_text(json.dumps([frozen, live]))
    problems = carried(frozen, live, ignore=ACROSS_MAJOR)
    # About once a minute blue's scheduler finishes a paused DAG's run whose task instances all ended
    # (docs/guides/cutover.md, In-flight work): when that came after pass 2's backup, blue holds the
    # long task's run finished and green finished it again itself; nothing else may differ.
    long_run = f"[{busy.LONG_TASK_DAG} | fl-long]"
    if problems == [f"dag_run: 1 changed: {long_run} (end_date)"]:
        assert frozen["tables"]["dag_run"]["states"][long_run[1:-1]] in FINAL_STATES
        problems = []
    assert problems == [], "\n".join(problems)
    # Nothing ran twice: every task instance of blue's frozen history is unchanged on green except
    # the in-flight ones that had not finished; blue ran nothing after the freeze.
    changed = changed_task_instances(frozen, live)
    assert changed <= in_flight_unfinished("fl"), sorted(changed - in_flight_unfinished("fl"))[:5]
    assert retried_task_instances(frozen, fingerprint(local_stack.state_dir, blue)) == set()
    assert {d for d, paused in _paused(green).items() if not paused} >= unpaused_before - {
        busy.CONSUMER_DAG,
        busy.PRODUCER_DAG,
    }
    routing = json.loads(boto3.client("ssm").get_parameter(Name="/mwaa/cut3/active")["Parameter"]["Value"])
    assert routing["name"] == green
    client = api(green)
    client.trigger("etl_orders", "on-green")
    assert _wait_run(green, "etl_orders", "on-green") == "success"

    back = local_stack.cli("rollback", "--env", "cut3", "--root", str(setup.root), "--yes", "--json")
    assert back.returncode == 0, back.stderr[-3000:]
    summary = _events(back.stdout)[-1]
    assert summary["history_copied_back"] is False
    assert "etl_orders/on-green" in summary["runs_not_copied_back"], summary  # made on 3.3.1: listed
    assert all(_paused(green)[d] for d in BUSINESS_DAGS)
    assert not any(_paused(blue)[d] for d in BUSINESS_DAGS if d in unpaused_before)
    routing = json.loads(boto3.client("ssm").get_parameter(Name="/mwaa/cut3/active")["Parameter"]["Value"])
    assert routing["name"] == blue
    # Blue (2.9.2) cannot jump to 3.x in place: MWAA's rule (only from the latest 2.11), the emulator's too.
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        boto3.client("mwaa").update_environment(Name="cut3-blue", AirflowVersion=TO)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    # After the rollback the 3.3.1 colour is the inactive one: cleanup deletes it.
    gone = local_stack.cli(
        "cleanup", "--env", "cut3", "--root", str(setup.root), "--yes", "--poll-interval", "1", "--json"
    )
    assert gone.returncode == 0, gone.stderr[-3000:]
    assert _events(gone.stdout)[-1]["retired"] == green
    assert green not in {e["name"] for e in local_stack.admin.environments()}
