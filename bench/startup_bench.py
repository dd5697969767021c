"""Start-up time of the command line: wall time of whole processes, several runs, median quoted.

    python bench/startup_bench.py [--runs 9]

Times `mwaa-iac --help`, `mwaa-iac versions path --from 2.9.2 --to 2.10.3`, a bare `python -c pass`
(the interpreter's floor) and a one-command Typer app (Typer's floor) as separate processes, after
one warm-up run each, and prints min / median / max in seconds. Writes
bench/out/startup-<date>.json. Goal (issue 10): the two commands under 0.3 s wall at the median on
the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

# Typer's own floor: an app with one command taking one option (Typer >= 0.2x builds pydantic
# adapters for its options, so importing pydantic is part of any command's start-up).
TYPER_FLOOR = """
import typer
app = typer.Typer()
@app.command()
def hello(name: str = typer.Option("x", "--name")) -> None:
    pass
@app.command()
def other() -> None:
    pass
app()
"""

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "typer one-command app": [sys.executable, "-c", TYPER_FLOOR, "hello", "--name", "a"],
    "mwaa-iac --help": [sys.executable, "-m", "mwaa_iac.cli", "--help"],
    "mwaa-iac versions path": [
        sys.executable,
        "-m",
        "mwaa_iac.cli",
        "versions",
        "path",
        "--from",
        "2.9.2",
        "--to",
        "2.10.3",
        "--today",
        "2026-12-02",
    ],
}


def time_runs(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, check=True, capture_output=True)  # warm-up (file cache, .pyc)
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - begin)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    results = {}
    print(f"{'command':<26} {'min':>7} {'median':>7} {'max':>7}  (wall seconds, {args.runs} runs)")
    for name, argv in COMMANDS.items():
        times = time_runs(argv, args.runs)
        results[name] = {"min": min(times), "median": statistics.median(times), "max": max(times)}
        row = results[name]
        print(f"{name:<26} {row['min']:7.3f} {row['median']:7.3f} {row['max']:7.3f}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    target = out / f"startup-{date.today().isoformat()}.json"
    target.write_text(json.dumps({"runs": args.runs, "results": results}, indent=2) + "\n")
    print(f"written: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
