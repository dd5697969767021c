"""Benchmark: the cutover's freeze window on the local stack against history size (issue 14).

For each size (``3k``, ``100k``, ``1m``: task instances of history, each with its XCom and log row),
one run on this machine:

- seeds a blue 2.9.2 environment with 500 DAG files (schedule None, unpaused: the freeze pauses and
  unpauses all of them) and the history spread over those DAGs round robin (one run through Airflow's
  models, the rest copied from it by SQL: ``mwaa_iac/local/seed.py``, ``SeedPlan.bulk_*``);
- runs a two-pass cutover to 2.10.3 with the api engine. Between pass 1 and the freeze (when the
  ``health-target`` step is done, before pass 2's DAG files are deployed) a fixed amount of activity
  runs on blue and completes: 50 triggered runs over 10 DAGs, one old task instance cleared and run
  again (an update of old history) and one old run deleted. It blocks the cutover while it runs, so it
  is not in the freeze window;
- reports the freeze window (DAGs paused on blue -> unpaused on green) with its steps, the rows pass 2
  copied and its mode (``report["pass2"]`` once pass 2 copies only the changes since pass 1; before
  that, the whole copy), the 500 DAGs' pause + unpause (the freeze's ``pause-source`` and ``go-live``
  steps; go-live also flips routing);
- in the same run, a raw ``pg_dump | pg_restore`` of the copied tables (the full history) from blue's
  database into a scratch database, as a ratio to the freeze; the cost of one run of a one-task no-op
  DAG triggered the way the freeze triggers its DR DAGs (median of three: the floor of a DAG-based
  copy); the local in-place upgrade of green (2.9.2 -> 2.10.3, same data); the time to create an
  environment; InvokeRestApi latency (median, p95).

The environments of a size are deleted before the next size starts. ``--seed-only`` times the seeding
alone (no cutover). Usage: ``python bench/freeze_bench.py [--sizes 3k,100k,1m]`` (``small`` and
``large`` are the old names of 3k and 100k). Prints a Markdown table and the goals of issue 14, and
writes ``bench/out/freeze.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.pause_bench import bench_dags  # noqa: E402
from mwaa_iac.adapters.airflow_api import AirflowApi  # noqa: E402
from mwaa_iac.adapters.mwaa import MwaaClient  # noqa: E402
from mwaa_iac.adapters.routing import Routing  # noqa: E402
from mwaa_iac.adapters.storage import S3  # noqa: E402
from mwaa_iac.local import busy, stack  # noqa: E402
from mwaa_iac.local.demo import observation_or_deleted, prepare  # noqa: E402
from mwaa_iac.local.runtime.launch import MWAA_LATENCY, TASK_START_VAR  # noqa: E402
from mwaa_iac.local.runtime.postgres import PostgresCluster, database_name  # noqa: E402
from mwaa_iac.local.seed import SEED_DAG_ID, SeedPlan  # noqa: E402
from mwaa_iac.workflows.cutover import Cutover, CutoverOptions  # noqa: E402
from mwaa_iac.workflows.dr_runs import DagRunner  # noqa: E402
from mwaa_iac.workspace import open_workspace  # noqa: E402

# Task instances of history per size (10 tasks a run: 300, 10,000 and 100,000 runs).
SIZES = {"3k": 3_000, "100k": 100_000, "1m": 1_000_000}
ALIASES = {"small": "3k", "large": "100k"}
DEFAULT_SIZES = "3k,100k,1m"
DAG_COUNT = 500
TASKS = 10
ACTIVITY_RUNS = 50
ACTIVITY_DAGS = 10

# Issue 14's goals.
GOAL_FREEZE_S = 12.0  # freeze window at 1,000,000 task instances
GOAL_FLAT_S = 2.0  # ... within this of the freeze at 3,000
GOAL_RATIO = 1.0  # freeze / raw full copy at 1,000,000, below this
GOAL_PAUSE_S = 3.0  # pause + unpause of the 500 DAGs
# Issue 25's: with MWAA's task start latency modelled, the freeze grows by at most one queue-to-start
# delay over the same size without it (--baseline: that run's freeze.json).
GOAL_LATENCY_DELAYS = 1

# The tables the cutover's copy carries (mwaa_iac/dr_runtime/mwaa_iac_copy.py).
COPIED_TABLES = (
    "variable",
    "connection",
    "slot_pool",
    "log",
    "dag_run",
    "trigger",
    "task_instance",
    "task_fail",
    "task_map",
    "task_reschedule",
    "xcom",
    "dataset_event",
    "dagrun_dataset_event",
    "dataset_dag_run_queue",
)
AWS_IN_PLACE = "about 20-30 min for a forced update, up to 2 h for a version change (AWS documentation)"


def canonical(size: str) -> str:
    size = ALIASES.get(size.strip().lower(), size.strip().lower())
    if size not in SIZES:
        raise SystemExit(f"unknown size {size!r}: one of {', '.join([*SIZES, *ALIASES])}")
    return size


def plan_for(size: str) -> SeedPlan:
    """500 benchmark DAGs (the pause bench's names: team prefixes, ``_`` everywhere), all live, and
    the size's history over them; no hourly business DAGs (they would add activity of their own)."""
    return SeedPlan(
        dags=(),
        tasks=TASKS,
        bulk_dags=tuple(bench_dags(DAG_COUNT)),
        bulk_task_instances=SIZES[size],
    )


# -- the activity between pass 1 and the freeze ---------------------------------------------------


class Activity:
    """An ``emit`` callback: when the cutover's ``health-target`` step is done (pass 1 copied, green
    upgraded and checked; pass 2's DAG files not yet deployed), runs the fixed activity on the source
    and waits until it has completed, which holds the cutover before its freeze.

    The activity: ``runs`` triggered runs over ``spread`` DAGs, one task instance of an old seeded run
    cleared and run again, one old seeded run deleted."""

    def __init__(self, api: AirflowApi, dag_ids: list[str], *, runs: int, spread: int) -> None:
        self.api = api
        self.events: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None
        # DAGs whose REST paths fit InvokeRestApi's 64 characters with the bench's run ids
        short = [(i, d) for i, d in enumerate(dag_ids) if len(d) <= 32]
        step = max(1, len(short) // spread)
        self.dags = [d for _, d in short[::step][:spread]]
        self.runs = runs
        # Old runs that exist at every size: bulk__<i> is run 0 of DAG i (seed.bulk_runs), i < 300.
        old = [(i, d) for i, d in short if 0 < i < 300 and d not in self.dags]
        self.cleared = (old[0][1], f"bulk__{old[0][0]}", "t00")
        self.deleted = (old[1][1], f"bulk__{old[1][0]}")

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if event.get("event") == "step.done":
            print(f"    {event.get('step')}: {event.get('elapsed_s')} s", flush=True)
        if event.get("event") == "step.done" and event.get("step") == "health-target" and self.result is None:
            self.result = self.run()  # an error fails the cutover before its freeze

    def run(self, timeout: float = 1800.0) -> dict[str, Any]:
        start = time.perf_counter()
        print(f"  activity: {self.runs} runs over {len(self.dags)} DAGs, one clear, one delete", flush=True)
        waiting = []
        for index in range(self.runs):
            dag_id, run_id = self.dags[index % len(self.dags)], f"act_{index:03d}"
            self.api.trigger(dag_id, run_id)
            waiting.append((dag_id, run_id))
        dag_id, run_id, task_id = self.cleared
        busy.clear_task(self.api, dag_id, run_id, task_id)
        waiting.append((dag_id, run_id))
        self.api.request("DELETE", f"/dags/{self.deleted[0]}/dagRuns/{self.deleted[1]}")
        states: dict[tuple[str, str], str] = {}
        deadline = time.monotonic() + timeout
        while waiting:
            time.sleep(3.0)
            still = []
            for key in waiting:
                state = self.api.get_run(*key).get("state")
                if state in ("success", "failed"):
                    states[key] = state
                else:
                    still.append(key)
            waiting = still
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"activity: {len(waiting)} run(s) not done after {timeout:.0f} s")
        failed = sorted(f"{d}/{r}" for (d, r), s in states.items() if s != "success")
        if failed:
            raise RuntimeError(f"activity: runs failed: {', '.join(failed)}")
        elapsed = round(time.perf_counter() - start, 1)
        print(f"  activity done in {elapsed} s", flush=True)
        return {
            "triggered_runs": self.runs,
            "dags": self.dags,
            "cleared": "/".join(self.cleared),
            "deleted": "/".join(self.deleted),
            "seconds": elapsed,
        }


# -- the other figures ----------------------------------------------------------------------------


def raw_copy_seconds(state_dir: Path, source_env: str) -> tuple[float, int]:
    """``pg_dump | pg_restore`` of the copied tables from ``source_env``'s database to a scratch one
    (measured after the cutover: the full history, with the activity)."""
    cluster = PostgresCluster(state_dir / "runtime" / "pg", state_dir / "runtime" / "pids")
    scratch = "bench_raw_copy"
    cluster.recreate_database(scratch)
    tables = list(COPIED_TABLES)
    base = ["-h", str(cluster.socket_dir), "-U", "postgres"]
    dump = [
        cluster.tool("pg_dump"),
        *base,
        "-Fc",
        *(f"--table={t}" for t in tables),
        database_name(source_env),
    ]
    # Rows and table definitions; no constraints or indexes (they point at tables mwaa-dr does not
    # copy): the floor of a full copy.
    restore = [
        cluster.tool("pg_restore"),
        *base,
        "--no-owner",
        "--section=pre-data",
        "--section=data",
        "-d",
        scratch,
    ]
    start = time.perf_counter()
    producer = subprocess.Popen(dump, stdout=subprocess.PIPE)
    consumer = subprocess.run(restore, stdin=producer.stdout, capture_output=True, check=False)
    producer.wait()
    elapsed = time.perf_counter() - start
    if producer.returncode or consumer.returncode:
        raise RuntimeError(f"raw copy failed: {consumer.stderr.decode()[-500:]}")
    rows = sum(int(cluster.psql(f"SELECT count(*) FROM {t}", database=scratch).strip() or 0) for t in tables)
    cluster.drop_database(scratch)
    return elapsed, rows


def invoke_latency(name: str, calls: int = 40) -> dict[str, float]:
    client = AirflowApi(MwaaClient("us-east-1"), name)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        client.request("GET", "/dags", query={"limit": 5})
        samples.append((time.perf_counter() - start) * 1000)
        time.sleep(0.12)  # stay under MWAA's ~10 requests per second
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * len(samples)) - 1], 1),
    }


NOOP_DAG = '''"""bench: a one-task airflow DAG that does nothing (the cost of any DAG run)."""
from datetime import datetime

from airflow import DAG
from airflow.operators.python import PythonOperator

with DAG("bench_noop", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         description="bench noop") as dag:
    PythonOperator(task_id="noop", python_callable=lambda: None)
'''


def dag_run_floor(name: str, bucket: str, options: CutoverOptions, runs: int = 3) -> float:
    """Median seconds for one run of a one-task no-op DAG in ``name``, run the way the freeze runs
    its DR DAGs (unpause, trigger through InvokeRestApi, steady polling, pause): what any DAG run
    costs before it copies a row."""
    S3("us-east-1").put_text(bucket, "dags/bench_noop.py", NOOP_DAG)
    runner = DagRunner(AirflowApi(MwaaClient("us-east-1"), name), options, lambda e: None)
    runner.wait_for_dag("bench_noop", "bench noop")
    samples = []
    for index in range(runs):
        start = time.perf_counter()
        runner.run("bench_noop", f"noop-{index}", "bench noop", backoff=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def seed_task_seconds(name: str) -> float | None:
    """How long the seeding DAG's task ran (Airflow's own duration of the task instance)."""
    api = AirflowApi(MwaaClient("us-east-1"), name)
    try:
        ti = api.request("GET", f"/dags/{SEED_DAG_ID}/dagRuns/seed-1/taskInstances/seed")
    except Exception:  # a figure, not a check
        return None
    duration = ti.get("duration")
    return round(float(duration), 1) if duration is not None else None


def unpause_seconds(entries: list[dict[str, Any]]) -> float | None:
    """The go-live step up to the unpause (its start to the journal's ``unpaused_at``: the hold
    moved, routing pointed at green and the DAGs unpaused; the step then records the deployment)."""
    started = next(
        (
            e["at"]
            for e in entries
            if e.get("step") == "go-live" and e.get("event") == "started" and not e.get("note")
        ),
        None,
    )
    done = next((e for e in entries if e.get("step") == "go-live" and e.get("event") == "done"), None)
    unpaused = ((done or {}).get("data") or {}).get("result", {}).get("unpaused_at")
    if started is None or unpaused is None:
        return None
    return round(unpaused - started, 2)


def delete_environments(names: list[str], timeout: float = 600.0) -> None:
    mwaa = MwaaClient("us-east-1")
    for name in names:
        if mwaa.exists(name):
            mwaa.delete_environment(name)
    deadline = time.monotonic() + timeout
    for name in names:
        while observation_or_deleted(mwaa, name).status != "DELETED":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not deleted after {timeout:.0f} s")
            time.sleep(2.0)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# -- one size ---------------------------------------------------------------------------------------


def seed_size(state_dir: Path, size: str) -> tuple[Any, str, dict[str, Any]]:
    root = state_dir / f"bench-{size}"
    name = f"b{size}"
    start = time.perf_counter()
    setup = prepare(
        root, name=name, plan=plan_for(size), poll=1.0, progress=lambda t: print(f"  {t}", flush=True)
    )
    prepared = time.perf_counter() - start
    print(f"  prepared in {prepared:.0f} s", flush=True)
    seeding = {
        "prepare_s": round(prepared, 1),
        "seed_task_s": seed_task_seconds(setup.source),
        "seeded_counts": setup.seeded,
    }
    return setup, name, seeding


def run_size(state_dir: Path, size: str, *, seed_only: bool = False, armed: bool = True) -> dict[str, Any]:
    load_before = load_average()
    setup, name, seeding = seed_size(state_dir, size)
    green = f"{name}-green"
    try:
        if seed_only:
            return {"size": size, "task_instances": SIZES[size], "dags": DAG_COUNT, **seeding}
        return measure(state_dir, size, setup, name, seeding, load_before, armed=armed)
    finally:
        delete_environments([setup.source, green])


def measure(
    state_dir: Path,
    size: str,
    setup: Any,
    name: str,
    seeding: dict[str, Any],
    load_before: float,
    *,
    armed: bool = True,
) -> dict[str, Any]:
    ws = open_workspace(name, setup.root)
    config = ws.load()
    options = CutoverOptions(
        engine="api",
        poll_interval=1.0,
        max_poll_interval=2.0,
        run_poll_seconds=1.0,
        health_minutes=0,
        dag_timeout_seconds=900,
        armed_copy=armed,
    )
    activity = Activity(
        AirflowApi(MwaaClient("us-east-1"), setup.source),
        list(plan_for(size).bulk_dags),
        runs=ACTIVITY_RUNS,
        spread=ACTIVITY_DAGS,
    )
    start = time.perf_counter()
    cutover = Cutover(
        ws,
        config,
        options,
        MwaaClient("us-east-1"),
        S3("us-east-1"),
        Routing("us-east-1"),
        emit=activity,
    )
    report = cutover.run()
    cutover_s = time.perf_counter() - start
    unpause_s = unpause_seconds(cutover.journal.entries)
    if activity.result is None:
        raise RuntimeError("the activity did not run: no health-target step.done event")
    events = activity.events
    raw_s, raw_rows = raw_copy_seconds(state_dir, setup.source)
    floor = dag_run_floor(f"{name}-green", config.source.bucket_name, options)
    steps: dict[str, float] = report["freeze_steps_s"]
    dr_steps = ("backup", "cleanup", "restore")
    armed_copy = report.get("armed_copy") or {}
    # DR runs triggered inside the freeze (an armed copier was running before it)
    dr_runs = sum(
        1 for step in steps if step.split("-")[0] in dr_steps and not armed_copy.get(step.split("-")[0])
    )
    hop = next((e for e in events if e.get("event") == "hop.done"), {})
    in_place_s = hop.get("elapsed_s")
    create = next(
        (e for e in events if e.get("event") == "step.done" and e.get("step") == "create-target"), {}
    )
    recorded = next((e for e in events if e.get("event") == "freeze.recorded"), {})
    freeze = report["freeze_window_s"]
    pass2 = report.get("pass2") or {}
    copied = pass2.get("copied") or report["rows_copied"]
    rows_p2 = sum(int(v or 0) for v in copied.values())
    # The pause: the pause-source step; when the armed backup copier paused the DAGs in its database
    # (issue 25), that happened inside record-dags (signal, transaction, its answer read back), and
    # pause-source only checks it over REST: both steps count then.
    paused_by = recorded.get("paused_by") or "rest"
    record_s = report.get("steps_s", {}).get("record-dags")
    pause_s = round(steps.get("pause-source", 0.0) + ((record_s or 0.0) if paused_by == "copier" else 0.0), 3)
    pause_unpause = round(pause_s + (unpause_s if unpause_s is not None else steps.get("go-live", 0.0)), 2)
    return {
        "size": size,
        "task_instances": SIZES[size],
        "dags": DAG_COUNT,
        "dags_paused": len(recorded.get("dags", [])) or None,
        **seeding,
        "activity": activity.result,
        "freeze_window_s": freeze,
        "freeze_steps_s": steps,
        "pass2_mode": pass2.get("mode", "unknown (whole copy)"),
        "pass2_fallback": pass2.get("fallback"),
        "pass2_rows_copied": rows_p2,
        "pass2_copied": copied,
        # the restore's own seconds per phase (delete, stage, write, verify, commit) and the DAGs it
        # hashed whole because something had written to them on the target since pass 1
        "pass2_restore": pass2.get("restore"),
        # pass 1's restore vacuumed the history tables it rewrote (outside the freeze)
        "pass1_vacuum": (cutover.journal.data("restore-p1").get("result") or {}).get("vacuum"),
        "rows_copied": report["rows_copied"],
        "rows_per_s": round(rows_p2 / freeze) if freeze else None,
        "pause_s": pause_s,
        "paused_by": paused_by,
        "record_s": record_s,
        "unpause_s": unpause_s,
        "pause_unpause_s": pause_unpause,
        "raw_copy_s": round(raw_s, 2),
        "raw_copy_rows": raw_rows,
        "freeze_over_raw": round(freeze / raw_s, 2) if freeze and raw_s else None,
        "dag_run_floor_s": round(floor, 2),
        "dr_dag_runs_in_freeze": dr_runs,
        "armed_copy": armed_copy,
        "freeze_floor_s": round(dr_runs * floor, 1),
        "in_place_upgrade_s": in_place_s,
        "in_place_over_freeze": round(in_place_s / freeze, 2) if freeze and in_place_s else None,
        "create_environment_s": create.get("elapsed_s"),
        "invoke_rest_api": invoke_latency(f"{name}-green"),
        "cutover_s": round(cutover_s, 1),
        "steps_s": report.get("steps_s", {}),
        "load_average_1m": {"before": load_before, "after": load_average()},
    }


# -- output ---------------------------------------------------------------------------------------

STEP_LABELS = {
    "pause-source": "pause",
    "drain-source": "drain",
    "backup-p2": "backup",
    "verify-backup-p2": "verify backup",
    "restore-p2": "restore",
    "verify-restore-p2": "verify restore",
    "go-live": "go-live",
}


def steps_text(steps: dict[str, float]) -> str:
    return ", ".join(f"{STEP_LABELS.get(k, k)} {v:.1f}" for k, v in steps.items())


def latency_goal(document: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """Issue 25: with the latency model on, the freeze grows by at most one queue-to-start delay
    over the same size measured without it (``baseline``: that run's document)."""
    latency = document.get("mwaa_latency")
    if not latency:
        return []
    delay = float(latency[TASK_START_VAR])
    if baseline is None:
        goal = f"the freeze grows by <= {GOAL_LATENCY_DELAYS} queue-to-start delay ({delay:g} s)"
        return [f"with MWAA's latency model, {goal}: not measured (no --baseline run without the model)"]
    runs = baseline.get("results", [])
    before = {r["size"]: r["freeze_window_s"] for r in runs if r.get("freeze_window_s")}
    out = []
    for r in document["results"]:
        if r.get("freeze_window_s") is None or r["size"] not in before:
            continue
        growth = round(r["freeze_window_s"] - before[r["size"]], 1)
        met = growth <= GOAL_LATENCY_DELAYS * delay
        out.append(
            f"{r['size']}: with MWAA's latency model the freeze grows by <= {GOAL_LATENCY_DELAYS} "
            f"queue-to-start delay ({delay:g} s): {'met' if met else 'not met'} ({before[r['size']]} s "
            f"-> {r['freeze_window_s']} s: {growth:+} s; baseline {baseline.get('date')})"
        )
    return out


def goals(results: list[dict[str, Any]]) -> list[str]:
    by_size = {r["size"]: r for r in results if r.get("freeze_window_s") is not None}
    small, big = by_size.get("3k"), by_size.get("1m")
    out = []
    if big is None:
        out.append(
            f"freeze at 1,000,000 task instances <= {GOAL_FREEZE_S:g} s: not measured (size 1m not run)"
        )
    else:
        freeze = big["freeze_window_s"]
        out.append(
            f"freeze at 1,000,000 task instances <= {GOAL_FREEZE_S:g} s: "
            f"{'met' if freeze <= GOAL_FREEZE_S else 'not met'} ({freeze} s)"
        )
    if big is None or small is None:
        out.append(
            f"freeze at 1m within {GOAL_FLAT_S:g} s of the freeze at 3k: not measured (needs 3k and 1m)"
        )
    else:
        gap = round(big["freeze_window_s"] - small["freeze_window_s"], 1)
        out.append(
            f"freeze at 1m within {GOAL_FLAT_S:g} s of the freeze at 3k: "
            f"{'met' if abs(gap) <= GOAL_FLAT_S else 'not met'} ({big['freeze_window_s']} s vs "
            f"{small['freeze_window_s']} s: {gap:+} s)"
        )
    if big is None:
        out.append(f"freeze / raw full copy < {GOAL_RATIO:g} at 1m: not measured (size 1m not run)")
    else:
        ratio = big["freeze_over_raw"]
        out.append(
            f"freeze / raw full copy < {GOAL_RATIO:g} at 1m: "
            f"{'met' if ratio is not None and ratio < GOAL_RATIO else 'not met'} ({ratio}x: "
            f"{big['freeze_window_s']} s vs {big['raw_copy_s']} s)"
        )
    if by_size:
        worst = max(r["pause_unpause_s"] for r in by_size.values())
        each = ", ".join(f"{s} {r['pause_unpause_s']} s" for s, r in by_size.items())
        out.append(
            f"{DAG_COUNT} DAGs pause + unpause <= {GOAL_PAUSE_S:g} s: "
            f"{'met' if worst <= GOAL_PAUSE_S else 'not met'} ({each}: the pause-source step and go-live's "
            "unpause)"
        )
    return out


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| size | task instances | freeze window | freeze steps (s) | pass 2 | rows copied in pass 2 "
        "| raw `pg_dump \\| pg_restore` (full) | freeze / raw | no-op DAG run x DR runs | "
        f"pause + unpause ({DAG_COUNT} DAGs) | local in-place upgrade | create env | "
        "InvokeRestApi median / p95 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['size']} | {r['task_instances']:,} | **{r['freeze_window_s']} s** "
            f"| {steps_text(r['freeze_steps_s'])} | {r['pass2_mode']} | {r['pass2_rows_copied']:,} "
            f"| {r['raw_copy_s']} s ({r['raw_copy_rows']:,} rows) | {r['freeze_over_raw']}x "
            f"| {r['dag_run_floor_s']} s x {r['dr_dag_runs_in_freeze']} = {r['freeze_floor_s']} s "
            f"| {r['pause_unpause_s']} s | {r['in_place_upgrade_s']} s | {r['create_environment_s']} s "
            f"| {r['invoke_rest_api']['median_ms']} / {r['invoke_rest_api']['p95_ms']} ms |"
        )
    return lines


def restore_lines(results: list[dict[str, Any]]) -> list[str]:
    """Where pass 2's restore spent its time (its own clock, inside the restore step), and pass 1's
    vacuum of the rewritten history tables (before the freeze)."""
    lines = []
    for r in results:
        restore = r.get("pass2_restore") or {}
        phases = ", ".join(f"{k} {v:g}" for k, v in (restore.get("phases") or {}).items())
        rehashed = restore.get("rehashed") or {}
        vacuum = r.get("pass1_vacuum") or {}
        lines.append(
            f"- {r['size']}: pass 2's restore {restore.get('seconds', '?')} s "
            f"({phases + ' s' if phases else 'no phases recorded'}); "
            f"DAGs hashed whole because the target had written to them: "
            f"{', '.join(f'{t} {n}' for t, n in rehashed.items()) or 'none'}; "
            f"pass 1's vacuum {vacuum.get('seconds', vacuum.get('error', '?'))} s"
        )
    return ["", *lines] if lines else []


def machine() -> str:
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB memory"
    except (ValueError, OSError):
        pass
    return f"{os.cpu_count()} cores{memory}, {platform.system()} {platform.machine()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"comma list of {', '.join(SIZES)} (aliases: small = 3k, large = 100k); default {DEFAULT_SIZES}",
    )
    parser.add_argument("--state-dir", default=str(REPO / "bench" / "out" / "stack"))
    parser.add_argument("--seed-only", action="store_true", help="time the seeding alone (no cutover)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "freeze.json"))
    parser.add_argument(
        "--mwaa-latency",
        action="store_true",
        help="model MWAA's wait before a queued task starts (mwaa-iac local up --mwaa-latency)",
    )
    parser.add_argument(
        "--no-armed-copy", action="store_true", help="trigger pass 2's runs inside the freeze (as before)"
    )
    parser.add_argument("--baseline", default=None, help="freeze.json of the same sizes without the model")
    args = parser.parse_args(argv)
    sizes = [canonical(s) for s in args.sizes.split(",") if s.strip()]
    state_dir = Path(args.state_dir)
    # a SIGTERM stops the stack too (the finally below), as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    stack.down(state_dir, remove_state=True)
    latency = dict(MWAA_LATENCY) if args.mwaa_latency else None
    stack.up(state_dir, heartbeat_interval=15, task_latency=latency)
    os.environ.update(stack.load_env(state_dir))
    started = datetime.now(UTC)
    results = []
    try:
        for size in sizes:
            print(f"{size}:", flush=True)
            results.append(run_size(state_dir, size, seed_only=args.seed_only, armed=not args.no_armed_copy))
            print(json.dumps(results[-1], indent=2), flush=True)
    finally:
        stack.down(state_dir, remove_state=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "date": started.date().isoformat(),
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "dags_paused": next((r["dags_paused"] for r in results if r.get("dags_paused")), DAG_COUNT),
        "seed_only": args.seed_only,
        "mwaa_latency": latency,
        "armed_copy": not args.no_armed_copy,
        "results": results,
    }
    if args.seed_only:
        out.write_text(json.dumps(document, indent=2))
        print("\n| size | task instances | DAGs | prepare (create + parse + seed) | seeding task |")
        print("|---|---|---|---|---|")
        for r in results:
            print(
                f"| {r['size']} | {r['task_instances']:,} | {r['dags']} | {r['prepare_s']} s "
                f"| {r['seed_task_s']} s |"
            )
        return 0
    baseline = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    document["goals"] = goals(results) + latency_goal(document, baseline)
    out.write_text(json.dumps(document, indent=2))
    print(
        f"\n{started.date()}, {machine()}, one run per size; activity between the passes: "
        f"{ACTIVITY_RUNS} runs over {ACTIVITY_DAGS} DAGs, one old task instance cleared and run again, "
        "one old run deleted\n"
    )
    print("\n".join(table(results)))
    for line in restore_lines(results):
        print(line)
    print(
        f"\nMWAA's task start latency model: {latency or 'off'}; pass 2's copiers "
        f"{'armed before the freeze' if not args.no_armed_copy else 'triggered inside the freeze'}"
    )
    print("\nGoals (issues 14 and 25):")
    for line in document["goals"]:
        print(f"- {line}")
    print(f"AWS in-place unavailability for context: {AWS_IN_PLACE}")
    from charts import write_charts  # bench/ is the script's directory

    for path in write_charts(document, out.parent, out.stem):
        print(f"chart: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
