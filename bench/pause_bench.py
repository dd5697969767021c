"""Benchmark: pausing and unpausing many DAGs through InvokeRestApi, bulk against one call a DAG.

Given a running local stack (``mwaa-iac local up``) and one of its AVAILABLE environments, it puts N
tiny DAG files (default 500; schedule None, one EmptyOperator each) in the environment's DAG folder,
named like a shared environment's DAGs (team prefixes, ``_`` everywhere) with some paused by their
owners interleaved in id order, syncs the folder and waits until Airflow has parsed them. Then, on
the DAGs that are live (the owners' paused ones must stay paused throughout):

- bulk pause and bulk unpause (``AirflowApi.set_paused_many``: a few ``PATCH /dags?dag_id_pattern``,
  verified per DAG), as the cutover's freeze and go-live do them;
- for comparison, the same pause and unpause one ``PATCH /dags/<id>`` a DAG (before issue 14).

Calls go through the emulator's real InvokeRestApi, throttled to MWAA's rate (``--rate``, 10 requests
a second; 0: unthrottled). Prints a Markdown table and writes ``bench/out/pause.json``. The DAG files
are removed at the end unless ``--keep``.

Usage: ``python bench/pause_bench.py --environment demo-blue [--state-dir DIR] [--count 500]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mwaa_iac.adapters.airflow_api import AirflowApi  # noqa: E402
from mwaa_iac.adapters.mwaa import MwaaClient  # noqa: E402
from mwaa_iac.adapters.storage import S3  # noqa: E402

FOLDER = "pause_bench"  # sub-folder of the environment's DAG folder holding the bench's files

DAG_FILE = '''"""pause bench: a DAG that does nothing (airflow DAG)."""
from datetime import datetime

from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG(
    {dag_id!r},
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation={paused},
    tags=["pause_bench"],
) as dag:
    EmptyOperator(task_id="noop")
'''


def bench_dags(count: int = 500) -> dict[str, bool]:
    """``count`` DAG ids -> paused by its owner. For 500: 462 live, 38 owner-paused (a team's legacy
    DAGs, the ad-hoc DAGs of someone who left, last year's backfills), as in the unit tests."""
    teams = ["finance", "marketing_ops", "data_platform", "team_a", "team_b", "risk", "sales", "ml_platform"]
    kinds = ["ingest", "transform", "export", "report", "sync", "quality"]
    objects = ["orders", "customers", "invoices", "events", "payments", "ledger", "sessions", "users"]
    live = [f"{t}_{k}_{o}" for t in teams for k in kinds for o in objects]
    live += [f"adhoc_{p}_{o}" for p in ("alice", "bob", "chen", "dana") for o in objects]
    live += [f"{t}_backfill_{o}_2025" for t in teams for o in objects[:5]]
    live += [f"data_platform_heartbeat_{region}" for region in ("eu", "us", "ap", "sa", "af", "me")]
    paused = [f"team_b_legacy_{o}_{n}" for o in objects[:6] for n in (1, 2)]
    paused += [f"adhoc_eve_{o}" for o in objects]
    paused += [f"{t}_backfill_{o}_2024" for t in teams[:3] for o in objects[:6]]
    base = sorted(dict.fromkeys(live, False) | dict.fromkeys(paused, True))
    flags = dict.fromkeys(live, False) | dict.fromkeys(paused, True)
    if count <= len(base):
        picked = [base[i * len(base) // count] for i in range(count)]
        return {d: flags[d] for d in picked}
    out = dict(flags)
    copy = 2
    while len(out) < count:
        for dag_id in base:
            if len(out) == count:
                break
            out[f"{dag_id}_{copy}"] = flags[dag_id]
        copy += 1
    return out


class Throttled:
    """An MWAA client whose InvokeRestApi calls are spaced to ``rate`` a second (MWAA's limit)."""

    def __init__(self, client: Any, rate: float) -> None:
        self._client = client
        self._gap = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def invoke_rest_api(self, **kwargs: Any) -> Any:
        with self._lock:
            now = time.perf_counter()
            if now < self._next:
                time.sleep(self._next - now)
            self._next = max(now, self._next) + self._gap
        return self._client.invoke_rest_api(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def timed(api: AirflowApi, action: Callable[[], Any]) -> tuple[float, int, Any]:
    calls, start = api.calls, time.perf_counter()
    result = action()
    return time.perf_counter() - start, api.calls - calls, result


def one_by_one(api: AirflowApi, dag_ids: list[str], paused: bool) -> None:
    for dag_id in dag_ids:
        api.set_paused(dag_id, paused)


def states(api: AirflowApi, dag_ids: list[str]) -> dict[str, bool]:
    wanted = set(dag_ids)
    return {d["dag_id"]: bool(d.get("is_paused")) for d in api.list_dags() if d["dag_id"] in wanted}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--environment", required=True, help="an AVAILABLE environment of the local stack")
    parser.add_argument("--state-dir", default=None, help="the local stack's state dir (default: its own)")
    parser.add_argument("--count", type=int, default=500, help="DAG files to create (default 500)")
    parser.add_argument("--rate", type=float, default=10.0, help="InvokeRestApi calls a second (0: no limit)")
    parser.add_argument("--parse-timeout", type=float, default=900.0, help="seconds to wait for parsing")
    parser.add_argument("--keep", action="store_true", help="leave the DAG files in the DAG folder")
    args = parser.parse_args()

    from mwaa_iac.local import stack
    from mwaa_iac.local.busy import wait_for_dag_ids

    os.environ.update(stack.load_env(args.state_dir))
    admin = stack.admin(args.state_dir)
    mwaa = MwaaClient(os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    environment = mwaa.get_environment(args.environment)
    if environment.get("Status") != "AVAILABLE":
        print(f"{args.environment} is {environment.get('Status')}, not AVAILABLE", file=sys.stderr)
        return 2
    bucket = str(environment["SourceBucketArn"]).rsplit(":", 1)[-1]
    dag_path = str(environment.get("DagS3Path") or "dags").strip("/")
    mwaa.client = Throttled(mwaa.client, args.rate)
    api = AirflowApi(mwaa, args.environment)
    s3 = S3(mwaa.region)

    dags = bench_dags(args.count)
    live = sorted(d for d, paused in dags.items() if not paused)
    owner_paused = sorted(d for d, paused in dags.items() if paused)
    keys = [f"{dag_path}/{FOLDER}/{dag_id}.py" for dag_id in dags]
    print(f"putting {len(dags)} DAG files in s3://{bucket}/{dag_path}/{FOLDER}/", flush=True)
    for dag_id, key in zip(dags, keys, strict=True):
        s3.put_text(bucket, key, DAG_FILE.format(dag_id=dag_id, paused=dags[dag_id]))
    admin.sync(args.environment)
    start = time.perf_counter()
    wait_for_dag_ids(api, dags, timeout=args.parse_timeout)
    parsed_s = time.perf_counter() - start
    print(f"parsed in {parsed_s:.0f} s", flush=True)

    rows: list[dict[str, Any]] = []
    try:
        setup = api.set_paused_many(live, False)  # from whatever state a previous run left
        print(f"live DAGs unpaused before timing ({setup.calls} calls)", flush=True)
        for method, paused in (("bulk", True), ("bulk", False), ("one a DAG", True), ("one a DAG", False)):
            if method == "bulk":
                seconds, calls, result = timed(api, lambda p=paused: api.set_paused_many(live, p))
                detail = {"patterns": len(result.patterns), "singles": len(result.singles)}
                detail |= {"retried": len(result.retried), "put_back": len(result.put_back)}
            else:
                seconds, calls, _ = timed(api, lambda p=paused: one_by_one(api, live, p))
                detail = {}
            now = states(api, live + owner_paused)
            assert all(now[d] is paused for d in live), (
                f"{method} {'pause' if paused else 'unpause'} missed DAGs"
            )
            assert all(now[d] for d in owner_paused), "an owner-paused DAG was unpaused"
            rows.append(
                {
                    "method": method,
                    "action": "pause" if paused else "unpause",
                    "dags": len(live),
                    "calls": calls,
                    "seconds": round(seconds, 2),
                    **detail,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if not args.keep:
            for key in keys:
                s3.delete(bucket, key)
            admin.sync(args.environment)

    out = REPO / "bench" / "out" / "pause.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "machine": f"{os.cpu_count()} cores",
        "environment": args.environment,
        "dags": len(dags),
        "owner_paused": len(owner_paused),
        "rate_per_s": args.rate,
        "parse_s": round(parsed_s, 1),
        "results": rows,
    }
    out.write_text(json.dumps(summary, indent=2))
    rate = f"{args.rate:g} requests/s" if args.rate > 0 else "unthrottled"
    print(f"\n{len(dags)} DAGs ({len(owner_paused)} paused by their owners), InvokeRestApi at {rate}:\n")
    print("| method | action | DAGs changed | calls | seconds |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['action']} | {r['dags']} | {r['calls']} | {r['seconds']} |")
    bulk = sum(r["seconds"] for r in rows if r["method"] == "bulk")
    each = sum(r["seconds"] for r in rows if r["method"] != "bulk")
    print(f"\npause + unpause: bulk {bulk:.1f} s, one a DAG {each:.1f} s (goal of issue 14: <= 3 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
