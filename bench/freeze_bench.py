"""Benchmark: the cutover's freeze window on the local stack, beside a raw copy and an in-place upgrade.

For each size (small: 300 dag runs / 3,000 task instances; large: >= 100,000 task instances) it
seeds a blue 2.9.2 environment, runs a two-pass cutover to 2.10.3 with the api engine and reports:

- the freeze window (DAGs paused on blue -> unpaused on green) with its per-step breakdown and the
  rows copied per second;
- in the same run, a raw ``pg_dump | pg_restore`` of the same tables from blue's database into a
  scratch database (the floor for a full copy), as a ratio to the freeze window;
- the local in-place upgrade's downtime (green's 2.9.2 -> 2.10.3 hop, same data), as a ratio.

Also the control-plane numbers of issue 3: time to create an environment, and InvokeRestApi
round-trip latency (median, p95). Usage: ``python bench/freeze_bench.py [--sizes small,large]``.
Writes ``bench/out/freeze.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mwaa_iac.adapters.airflow_api import AirflowApi  # noqa: E402
from mwaa_iac.adapters.mwaa import MwaaClient  # noqa: E402
from mwaa_iac.adapters.routing import Routing  # noqa: E402
from mwaa_iac.adapters.storage import S3  # noqa: E402
from mwaa_iac.local import stack  # noqa: E402
from mwaa_iac.local.demo import prepare  # noqa: E402
from mwaa_iac.local.runtime.postgres import PostgresCluster, database_name  # noqa: E402
from mwaa_iac.local.seed import SeedPlan  # noqa: E402
from mwaa_iac.workflows.cutover import Cutover, CutoverOptions  # noqa: E402
from mwaa_iac.workflows.dr_runs import DagRunner  # noqa: E402
from mwaa_iac.workspace import open_workspace  # noqa: E402

SIZES = {
    "small": SeedPlan(runs=100),  # 3 DAGs x 100 runs x 10 tasks = 3,000 task instances
    "large": SeedPlan(runs=100, clone_runs=3400),  # + 3 x 3,400 x 10 = 105,000 task instances
}
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


def raw_copy_seconds(state_dir: Path, source_env: str) -> tuple[float, int]:
    """``pg_dump | pg_restore`` of the copied tables from ``source_env``'s database to a scratch one
    (measured after the cutover, so it copies at least as many rows as the freeze did)."""
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


def run_size(state_dir: Path, size: str) -> dict:
    plan = SIZES[size]
    root = state_dir / f"bench-{size}"
    name = f"b{size}"
    start = time.perf_counter()
    setup = prepare(root, name=name, plan=plan, poll=1.0, progress=lambda t: print(f"  {t}", flush=True))
    print(f"  prepared in {time.perf_counter() - start:.0f} s", flush=True)
    ws = open_workspace(name, root)
    config = ws.load()
    options = CutoverOptions(
        engine="api",
        poll_interval=1.0,
        max_poll_interval=2.0,
        run_poll_seconds=1.0,
        health_minutes=0,
        dag_timeout_seconds=600,
    )
    events: list[dict] = []
    report = Cutover(
        ws,
        config,
        options,
        MwaaClient("us-east-1"),
        S3("us-east-1"),
        Routing("us-east-1"),
        emit=events.append,
    ).run()
    raw_s, raw_rows = raw_copy_seconds(state_dir, setup.source)
    floor = dag_run_floor(f"{name}-green", config.source.bucket_name, options)
    dr_steps = ("backup", "cleanup", "restore")
    dr_runs = sum(1 for step in report["freeze_steps_s"] if step.split("-")[0] in dr_steps)
    hop = next((e for e in events if e.get("event") == "hop.done"), {})
    in_place_s = hop.get("elapsed_s")
    freeze = report["freeze_window_s"]
    rows = sum(report["rows_copied"].values())
    create = next(e for e in events if e.get("event") == "step.done" and e["step"] == "create-target")
    return {
        "size": size,
        "task_instances": report["rows_copied"].get("task_instance"),
        "rows_copied": report["rows_copied"],
        "freeze_window_s": freeze,
        "freeze_steps_s": report["freeze_steps_s"],
        "rows_per_s": round(rows / freeze) if freeze else None,
        "raw_copy_s": round(raw_s, 2),
        "raw_copy_rows": raw_rows,
        "freeze_over_raw": round(freeze / raw_s, 1) if freeze and raw_s else None,
        "dag_run_floor_s": round(floor, 2),
        "dr_dag_runs_in_freeze": dr_runs,
        "freeze_floor_s": round(dr_runs * floor, 1),
        "floor_over_raw": round(dr_runs * floor / raw_s, 1) if raw_s else None,
        "in_place_upgrade_s": in_place_s,
        "in_place_over_freeze": round(in_place_s / freeze, 2) if freeze and in_place_s else None,
        "create_environment_s": create["elapsed_s"],
        "invoke_rest_api": invoke_latency(f"{name}-green"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,large")
    parser.add_argument("--state-dir", default=str(REPO / "bench" / "out" / "stack"))
    args = parser.parse_args()
    state_dir = Path(args.state_dir)
    stack.down(state_dir, remove_state=True)
    stack.up(state_dir, heartbeat_interval=15)
    os.environ.update(stack.load_env(state_dir))
    results = []
    try:
        for size in args.sizes.split(","):
            print(f"{size}:", flush=True)
            results.append(run_size(state_dir, size))
            print(json.dumps(results[-1], indent=2), flush=True)
    finally:
        stack.down(state_dir, remove_state=True)
    out = REPO / "bench" / "out" / "freeze.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "results": results}, indent=2))
    print(
        "\n| size | task instances | freeze window | rows/s | raw pg_dump\\|pg_restore | freeze / raw "
        "| local in-place upgrade | create env | InvokeRestApi median / p95 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['size']} | {r['task_instances']:,} | {r['freeze_window_s']} s | {r['rows_per_s']:,} "
            f"| {r['raw_copy_s']} s | {r['freeze_over_raw']}x | {r['in_place_upgrade_s']} s "
            f"| {r['create_environment_s']} s | {r['invoke_rest_api']['median_ms']} / "
            f"{r['invoke_rest_api']['p95_ms']} ms |"
        )
    for r in results:
        print(
            f"{r['size']}: one no-op DAG run {r['dag_run_floor_s']} s x {r['dr_dag_runs_in_freeze']} DR runs "
            f"in the freeze = {r['freeze_floor_s']} s before any row is copied ({r['floor_over_raw']}x raw)"
        )
        print(f"{r['size']} freeze steps: " + ", ".join(f"{k} {v}s" for k, v in r["freeze_steps_s"].items()))
    print(f"AWS in-place unavailability for context: {AWS_IN_PLACE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
