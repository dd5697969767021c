"""Benchmark: the freeze of a 2 → 3 cutover, single pass beside two passes, on the local stack.

For each mode (``single``: ``--single-pass``; ``two``: the default two passes via 2.11.2 with the
rehearsal), one run on this machine, the same day: a blue 2.9.2 environment seeded like the demo
(the busy workload with ``--runs`` runs per example DAG), then ``mwaa-iac cutover --to 3.3.1`` through
the CLI (api engine, ``--health-minutes 0`` so that the health gate's whole minutes do not hide the
difference, ``--accept-import-errors``: the busy workload's dataset DAGs do not import on 3.x). It
reports the freeze window (DAGs paused on blue → unpaused on green) with each step inside it, the
steps before it, and for two passes the rehearsal's upgrade and parse (the freeze estimate).

``--task-instances N`` adds about N task instances of history to blue besides the busy workload (which
stays: its DAGs, runs and in-flight DAGs are all there): ``SeedPlan.bulk_dags`` (``--bulk-dags`` DAG
files of seed.py's benchmark kind, schedule None, unpaused) and ``bulk_task_instances`` N spread over
them, each with its XCom and log row, one run seeded through the models and the rest copied by SQL
(``mwaa_iac/local/seed.py``, as ``bench/freeze_bench.py`` seeds its sizes).

Usage: ``python bench/major_bench.py [--modes single,two] [--runs 20] [--task-instances 100000]``.
Prints a Markdown table and writes ``bench/out/major.json``. The environments of a mode are deleted
before the next one starts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from freeze_bench import delete_environments  # noqa: E402  (bench/ is the script's directory)

from mwaa_iac.local import stack  # noqa: E402
from mwaa_iac.local.busy import BusyProfile  # noqa: E402
from mwaa_iac.local.demo import prepare  # noqa: E402
from mwaa_iac.local.seed import SeedPlan  # noqa: E402

TO = "3.3.1"
MODES = {"single": ("--single-pass",), "two": ()}


def basic_plan(runs: int, task_instances: int = 0, bulk_dags: int = 10) -> SeedPlan:
    """The busy workload's synthetic history: ``runs`` per example DAG and, with ``task_instances``,
    that many more over ``bulk_dags`` benchmark DAGs (seed.py's bulk kind)."""
    if not task_instances:
        return SeedPlan(runs=runs)
    return SeedPlan(
        runs=runs,
        bulk_dags=tuple(f"bench_2to3_{i:02d}" for i in range(bulk_dags)),
        bulk_task_instances=task_instances,
    )


def run_mode(
    state_dir: Path, mode: str, runs: int, task_instances: int = 0, bulk_dags: int = 10
) -> dict[str, Any]:
    name = f"m{mode}"
    root = state_dir / f"bench-{mode}"
    admin = stack.admin(state_dir)
    start = time.perf_counter()
    plan = basic_plan(runs, task_instances, bulk_dags)
    setup = prepare(
        root,
        name=name,
        from_version="2.9.2",
        to_version=TO,
        plan=plan,
        busy=BusyProfile(basic=plan),
        poll=1.0,
        sync=lambda env: admin.sync(env),
        progress=lambda t: print(f"  {t}", flush=True),
    )
    prepared = time.perf_counter() - start
    seeded = (setup.seeded or {}).get("basic", {})
    print(f"  prepared in {prepared:.0f} s; blue's tables: {seeded}", flush=True)
    command = [
        sys.executable, "-m", "mwaa_iac.cli", "--no-color", "cutover", "--env", name, "--root", str(root),
        "--to", TO, "--engine", "api", "--yes", "--json", "--poll-interval", "1", "--run-poll", "1",
        "--health-minutes", "0", "--accept-import-errors", *MODES[mode],
    ]  # fmt: skip
    began = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=os.environ.copy())
        if done.returncode != 0:
            raise SystemExit(f"{mode}: the cutover failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        report = events[-1]
        estimate = next((e for e in events if e.get("event") == "freeze.estimate"), None)
        return {
            "mode": mode,
            "runs_per_dag": runs,
            "bulk_task_instances": task_instances,
            "bulk_dags": len(plan.bulk_dags),
            "prepare_s": round(prepared, 1),
            "blue_counts": seeded,
            "cutover_s": round(time.perf_counter() - began, 1),
            "freeze_window_s": report["freeze_window_s"],
            "freeze_steps_s": report["freeze_steps_s"],
            "steps_s": report["steps_s"],
            "rehearsal": {"upgrade_s": estimate["upgrade_s"], "parse_s": estimate["parse_s"]}
            if estimate
            else None,
            "pass2": report.get("pass2"),
        }
    finally:
        delete_environments([setup.source, f"{name}-green", f"{name}-rehearsal"])


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| cutover 2.9.2 → 3.3.1 | task instances | freeze window | steps inside the freeze (s) "
             "| before the freeze |", "|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        tis = r.get("blue_counts", {}).get("task_instance")
        size = f"{tis:,}" if tis else "?"
        inside = ", ".join(f"{k} {v:.1f}" for k, v in r["freeze_steps_s"].items())
        before = {k: v for k, v in r["steps_s"].items() if k not in r["freeze_steps_s"]}
        outside = ", ".join(f"{k} {v:.1f}" for k, v in before.items() if v >= 1)
        label = "single pass" if r["mode"] == "single" else "two passes via 2.11.2"
        lines.append(f"| {label} | {size} | **{r['freeze_window_s']} s** | {inside} | {outside} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="single,two")
    parser.add_argument("--runs", type=int, default=20, help="seeded runs per example DAG (the demo: 100)")
    parser.add_argument(
        "--task-instances",
        type=int,
        default=0,
        help="task instances of bulk history besides the busy workload",
    )
    parser.add_argument("--bulk-dags", type=int, default=10, help="DAGs the bulk history is spread over")
    parser.add_argument("--state-dir", default=str(REPO / "bench" / "out" / "stack-major"))
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "major.json"))
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    stack.down(state_dir, remove_state=True)
    stack.up(state_dir)
    os.environ.update(stack.load_env(state_dir))
    started = datetime.now(UTC)
    results = []
    try:
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            print(f"{mode}:", flush=True)
            results.append(run_mode(state_dir, mode, args.runs, args.task_instances, args.bulk_dags))
            print(json.dumps(results[-1], indent=2), flush=True)
    finally:
        stack.down(state_dir, remove_state=True)
    document = {
        "date": started.date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
