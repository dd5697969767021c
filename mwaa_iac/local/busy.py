"""The "busy" seeding profile: an environment that looks like production at mid-day.

Made through the doors a user's data goes through: DAG files uploaded to the environment's S3 DAG
folder, runs triggered through InvokeRestApi and executed by the environment's own scheduler, workers
and triggerer, variables, connections and pools created through the REST API; plus the ``basic``
profile's synthetic history (:mod:`mwaa_iac.local.seed`) in bulk. What it leaves:

* TaskFlow XComs whose values hold ``|``, ``,``, quotes, unicode and newlines, under awkward keys;
* dynamic task mapping (``.expand``: ``task_map`` rows, mapped task instances);
* a task that fails once and succeeds on its retry (``try_number`` 2, a ``task_fail`` row);
* failed runs (a failed and an upstream_failed task instance each);
* a ``catchup=True`` @daily DAG with a few intervals behind it and ``max_active_runs`` 2;
* a dataset producer and a consumer that needs two datasets: one consumer run made by the scheduler,
  then only one dataset produced again, so a ``dataset_dag_run_queue`` row stays pending;
* a DAG its owner unpaused, ran and paused again;
* a DAG id longer than 60 characters (``/dags/<id>`` does not fit InvokeRestApi's 64-character path:
  it is unpaused with ``PATCH /dags?dag_id_pattern=`` and runs on its schedule);
* variables with multi-line JSON, CRLF, tabs, unicode, an empty string and a 10 KB value, some with
  descriptions; connections with NULL and empty fields, special-character passwords and multi-line
  extras; pools with ``include_deferred``.

On demand, :func:`start_in_flight` and :func:`wait_in_flight` add work caught mid-flight (a test calls
them right before it pauses the source): a deferrable sensor waiting in the triggerer, a long task
running and a task waiting for its retry.

Timing: new DAG files reach Airflow only when its DAG processor lists the folder again
(``dag_dir_list_interval``, 300 s by default, as on MWAA). Upload the files before the environment is
created (:func:`upload_busy_dags`; the scheduler lists them when it starts) or create it with a shorter
``scheduler.dag_dir_list_interval``; :func:`seed_busy` waits for every DAG with a timeout either way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mwaa_iac.adapters.airflow_api import MAX_PATH, AirflowApi, AirflowApiError
from mwaa_iac.adapters.storage import S3
from mwaa_iac.errors import MwaaIacError, UsageError
from mwaa_iac.local import airflow_side
from mwaa_iac.local.seed import SEED_DAG_ID, SeedPlan, seed_conf, upload_dags

BUSY_FOLDER = "busy"
BUSY_MARKER = "mwaa_iac_busy"  # a variable holding the summary of a finished busy seed

ETL_DAG = "busy_etl_xcom"
FLAKY_DAG = "busy_flaky_retry"
FAILING_DAG = "busy_always_fails"
CATCHUP_DAG = "busy_catchup_daily"
OWNER_PAUSED_DAG = "busy_owner_paused"
PRODUCER_DAG = "busy_dataset_producer"
CONSUMER_DAG = "busy_dataset_consumer"
LONG_DAG = "busy_finance_emea_ledger_reconciliation_with_intercompany_eliminations_v2"
DEFERRED_DAG = "busy_inflight_deferred"
LONG_TASK_DAG = "busy_inflight_long_task"
RETRY_WAIT_DAG = "busy_inflight_retry_wait"
IN_FLIGHT_DAGS = (DEFERRED_DAG, LONG_TASK_DAG, RETRY_WAIT_DAG)
DEFERRED_POOL = "busy_pool_deferred"
ORDERS_DATASET = "s3://busy-lake/orders/orders.parquet"
CUSTOMERS_DATASET = "s3://busy-lake/customers/customers.parquet"

ACTIVE = ("queued", "running")
TERMINAL = ("success", "failed")

# -- DAG files ----------------------------------------------------------------------------------------
# Airflow 2.9 and 2.10 alike; core operators only. Real files in mwaa_iac/local/airflow_side/, each
# with a constants block (the DAG ids, dataset URIs, sizes) that :meth:`BusyProfile.dag_files` fills in.
DAG_FILES = ("busy_etl.py", "busy_schedules.py", "busy_datasets.py", "busy_in_flight.py")


@dataclass
class BusyProfile:
    """Sizes of the busy profile. ``basic`` adds seed.py's synthetic bulk history (None: none)."""

    basic: SeedPlan | None = field(
        default_factory=lambda: SeedPlan(runs=50, tasks=3, variables=10, connections=5, pools=2)
    )
    etl_runs: int = 2  # runs of the TaskFlow/XCom/mapping DAG
    mapped_items: int = 3  # mapped task instances per run
    failed_runs: int = 2
    catchup_days: int = 3  # @daily intervals behind today
    large_variable_bytes: int = 10 * 1024
    long_dag_id: bool = True  # the DAG whose id does not fit InvokeRestApi's path
    retry_delay_seconds: int = 600  # the in-flight task waiting for its retry
    parse_timeout: float = 420.0  # DAG files listed within dag_dir_list_interval (300 s) and parsed

    def dag_files(self) -> dict[str, str]:
        """``{file name: source}`` of the busy DAG files."""
        values: dict[str, object] = {
            "ETL_DAG": ETL_DAG,
            "FLAKY_DAG": FLAKY_DAG,
            "FAILING_DAG": FAILING_DAG,
            "CATCHUP_DAG": CATCHUP_DAG,
            "CATCHUP_DAYS": int(self.catchup_days),
            "OWNER_PAUSED_DAG": OWNER_PAUSED_DAG,
            "LONG_DAG": LONG_DAG if self.long_dag_id else None,
            "PRODUCER_DAG": PRODUCER_DAG,
            "CONSUMER_DAG": CONSUMER_DAG,
            "ORDERS_URI": ORDERS_DATASET,
            "CUSTOMERS_URI": CUSTOMERS_DATASET,
            "DEFERRED_DAG": DEFERRED_DAG,
            "LONG_TASK_DAG": LONG_TASK_DAG,
            "RETRY_WAIT_DAG": RETRY_WAIT_DAG,
            "DEFERRED_POOL": DEFERRED_POOL,
            "RETRY_DELAY": int(self.retry_delay_seconds),
        }
        files = {}
        for name in DAG_FILES:
            text = airflow_side.source(name)
            constants = airflow_side.names(text)
            files[name] = airflow_side.render(text, {k: v for k, v in values.items() if k in constants})
        return files

    def dag_ids(self) -> list[str]:
        """Every DAG the profile uploads (the busy ones, then the basic profile's)."""
        ids = [ETL_DAG, FLAKY_DAG, FAILING_DAG, CATCHUP_DAG, OWNER_PAUSED_DAG, PRODUCER_DAG, CONSUMER_DAG]
        if self.long_dag_id:
            ids.append(LONG_DAG)
        ids += IN_FLIGHT_DAGS
        if self.basic is not None:
            ids += [*self.basic.dags, *self.basic.bulk_dags, SEED_DAG_ID]
        return ids


# -- variables, connections, pools ------------------------------------------------------------------


def large_value(size: int) -> str:
    """An ASCII value of exactly ``size`` bytes with quotes, delimiters and newlines in every line."""
    lines = []
    total = 0
    index = 0
    while total < size:
        line = f"{index:05d},\"quoted, value\"|pipe|tab\there|'single'\n"
        lines.append(line)
        total += len(line)
        index += 1
    return "".join(lines)[:size]


def variables(profile: BusyProfile) -> list[dict[str, str]]:
    """REST bodies of the busy variables (the values are test data, not secrets)."""
    settings = {
        "source": "orders",
        "thresholds": {"warn": 0.8, "fail": 0.95},
        "recipients": ["ops@example.com", "data-eng@example.com"],
        "note": "multi-line JSON, with unicode: Zürich",
    }
    return [
        {"key": "busy_json_multiline", "value": json.dumps(settings, indent=2, ensure_ascii=False),
         "description": "pipeline settings (multi-line JSON)"},
        {"key": "busy_crlf", "value": "first line\r\nsecond line\r\n"},
        {"key": "busy_tabs", "value": "col_a\tcol_b\t|pipe|,comma,\t\"quoted\""},
        {"key": "busy_unicode", "value": "Grüße \u2013 東京 \u2013 🚀 \u2013 עברית \u2013 naïve café",
         "description": "unicode — with a dash in the description"},
        {"key": "busy_empty", "value": ""},
        {"key": "busy_large", "value": large_value(profile.large_variable_bytes),
         "description": f"a {profile.large_variable_bytes // 1024} KB value"},
        {"key": "busy_quotes", "value": 'he said "it\'s | fine, really"\nsecond line'},
        {"key": "busy_api_key_secret", "value": "sk-busy-0123456789abcdef",
         "description": "a value Airflow masks in logs (its key says secret)"},
    ]  # fmt: skip


def connections() -> list[dict[str, Any]]:
    """REST bodies of the busy connections: a field left out is NULL, "" is empty."""
    extra = json.dumps(
        {
            "region_name": "eu-west-1",
            "role_arn": "arn:aws:iam::123456789012:role/reader",
            "note": "line1\nline2",
        },
        indent=2,
    )
    return [
        {"connection_id": "busy_conn_nulls", "conn_type": "generic"},
        # Airflow stores an empty password as NULL (Connection.set_password ignores "").
        {"connection_id": "busy_conn_empty", "conn_type": "postgres", "host": "", "schema": "", "login": "",
         "password": "", "extra": "", "description": ""},
        {"connection_id": "busy_conn_special", "conn_type": "postgres", "host": "db.busy.internal",
         "schema": "analytics", "login": "svc@corp", "port": 5432,
         "password": "p@ss:w/rd?#&=%|,;\"q'uo te\\ü",
         "extra": json.dumps({"sslmode": "require", "options": "-c search_path=a,b"}, indent=2),
         "description": "special-character password"},
        {"connection_id": "busy_conn_aws", "conn_type": "aws", "extra": extra,
         "description": "multi-line extra\nand a multi-line description"},
        {"connection_id": "busy_conn_http", "conn_type": "http", "host": "https://api.example.com",
         "login": "user name", "password": "pa ss%2Fword+plus", "port": 443},
    ]  # fmt: skip


def pools() -> list[dict[str, Any]]:
    return [
        {"name": DEFERRED_POOL, "slots": 3, "include_deferred": True,
         "description": "counts deferred tasks too"},
        {"name": "busy_pool_plain", "slots": 2, "include_deferred": False, "description": "plain pool"},
    ]  # fmt: skip


def create_metadata(api: AirflowApi, profile: BusyProfile) -> dict[str, int]:
    """Variables, connections and pools through the REST API (existing ones are replaced)."""
    for body in variables(profile):
        api.request("POST", "/variables", body=body)  # Variable.set: creates or replaces
    for body in connections():
        try:
            api.request("POST", "/connections", body=body)
        except AirflowApiError as exc:
            if exc.status != 409:
                raise
            api.request("DELETE", f"/connections/{body['connection_id']}")
            api.request("POST", "/connections", body=body)
    for body in pools():
        try:
            api.request("POST", "/pools", body=body)
        except AirflowApiError as exc:
            if exc.status != 409:
                raise
            api.request("PATCH", f"/pools/{body['name']}", body=body)
    return {"variables": len(variables(profile)), "connections": len(connections()), "pools": len(pools())}


# -- DAG files, parsing ----------------------------------------------------------------------------


def upload_busy_dags(s3: S3, bucket: str, dag_prefix: str, profile: BusyProfile | None = None) -> list[str]:
    """Put the profile's DAG files (and the basic profile's) under ``s3://bucket/dag_prefix/``.

    Call it before CreateEnvironment to have them parsed when the scheduler starts."""
    profile = profile or BusyProfile()
    base = dag_prefix.strip("/")
    keys = []
    for name, text in profile.dag_files().items():
        key = f"{base}/{BUSY_FOLDER}/{name}" if base else f"{BUSY_FOLDER}/{name}"
        s3.put_text(bucket, key, text)
        keys.append(key)
    if profile.basic is not None:
        keys += upload_dags(s3, bucket, base, profile.basic)
    return keys


def list_dag_ids(api: AirflowApi, pattern: str | None = None) -> dict[str, dict]:
    """Active DAGs (``dag_id_pattern`` filtered), paged; works for ids too long for ``/dags/<id>``."""
    dags: dict[str, dict] = {}
    offset = 0
    while True:
        query: dict[str, Any] = {"limit": 100, "offset": offset, "only_active": True}
        if pattern:
            query["dag_id_pattern"] = pattern
        page = api.request("GET", "/dags", query=query)
        batch = page.get("dags", [])
        dags.update({d["dag_id"]: d for d in batch})
        offset += len(batch)
        if not batch or offset >= page.get("total_entries", 0):
            return dags


def wait_for_dag_ids(
    api: AirflowApi,
    dag_ids: Iterable[str],
    *,
    timeout: float = 420.0,
    poll: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Until every DAG is in the REST API; a TimeoutError names the missing ones and the import errors."""
    wanted = set(dag_ids)
    deadline = clock() + timeout
    while True:
        missing = sorted(wanted - set(list_dag_ids(api)))
        if not missing:
            return
        if clock() > deadline:
            errors = api.request("GET", "/importErrors", query={"limit": 20}).get("import_errors", [])
            detail = "; ".join(f"{e.get('filename')}: {str(e.get('stack_trace'))[-300:]}" for e in errors)
            raise TimeoutError(
                f"DAGs not visible in {api.environment} after {timeout:.0f} s: {', '.join(missing)}. "
                "A new DAG file is listed within scheduler.dag_dir_list_interval (Airflow's default: "
                "300 s): upload DAG files before creating the environment or lower that option"
                + (f". Import errors: {detail}" if detail else "")
            )
        sleep(poll)


# -- runs ---------------------------------------------------------------------------------------------


def list_runs(
    api: AirflowApi,
    dag_ids: Iterable[str],
    *,
    states: Iterable[str] | None = None,
    since: datetime | None = None,
) -> list[dict]:
    """DAG runs of ``dag_ids`` through the batch endpoint (any DAG id length), paged."""
    runs: list[dict] = []
    offset = 0
    body: dict[str, Any] = {"dag_ids": sorted(set(dag_ids)), "page_limit": 100, "order_by": "id"}
    if states is not None:
        body["states"] = list(states)
    if since is not None:
        body["execution_date_gte"] = since.isoformat()
    while True:
        page = api.request("POST", "/dags/~/dagRuns/list", body={**body, "page_offset": offset})
        batch = page.get("dag_runs", [])
        runs += batch
        offset += len(batch)
        if not batch or offset >= page.get("total_entries", 0):
            return runs


def list_task_instances(
    api: AirflowApi, dag_ids: Iterable[str], run_ids: Iterable[str] | None = None
) -> list[dict]:
    """Task instances of ``dag_ids`` (and ``run_ids``) through the batch endpoint, paged."""
    tis: list[dict] = []
    offset = 0
    body: dict[str, Any] = {"dag_ids": sorted(set(dag_ids)), "page_limit": 100}
    if run_ids is not None:
        body["dag_run_ids"] = sorted(set(run_ids))
    while True:
        page = api.request(
            "POST", "/dags/~/dagRuns/~/taskInstances/list", body={**body, "page_offset": offset}
        )
        batch = page.get("task_instances", [])
        tis += batch
        offset += len(batch)
        if not batch or offset >= page.get("total_entries", 0):
            return tis


def set_paused(api: AirflowApi, dag_id: str, paused: bool) -> None:
    """Pause or unpause one DAG, by pattern when ``/dags/<id>`` is longer than InvokeRestApi allows."""
    if len(f"/dags/{dag_id}") <= MAX_PATH:
        api.set_paused(dag_id, paused)
        return
    api.request(
        "PATCH",
        "/dags",
        query={"dag_id_pattern": dag_id, "update_mask": "is_paused"},
        body={"is_paused": paused},
    )


@dataclass
class _Expect:
    """What one DAG must reach: ``runs`` finished runs (beyond the synthetic ones) in ``state``."""

    dag_id: str
    runs: int
    state: str = "success"


def _finished(runs: list[dict], dag_id: str) -> tuple[list[dict], list[dict]]:
    mine = [r for r in runs if r["dag_id"] == dag_id]
    return [r for r in mine if r["state"] in TERMINAL], [r for r in mine if r["state"] in ACTIVE]


def seed_busy(
    api: AirflowApi,
    s3: S3,
    bucket: str,
    dag_prefix: str,
    profile: BusyProfile | None = None,
    *,
    sync: Callable[[], Any] | None = None,
    progress: Callable[[str], None] = lambda text: None,
    timeout: float = 900.0,
    poll: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Seed ``api.environment`` with the busy profile and wait until what it started has finished
    (scheduled DAGs then wait for their next interval). ``dag_prefix`` is the environment's DAG
    folder in ``bucket`` (its DagS3Path); ``sync`` is called after the upload (the local stack's
    ``EmulatorAdmin.sync`` makes both DAG-folder copies current at once).

    Returns a summary (also kept in the ``mwaa_iac_busy`` variable); an environment that has it
    already is left alone. Raises TimeoutError / RuntimeError naming what did not happen."""
    profile = profile or BusyProfile()
    started = clock()
    done = api.get_variable_value(BUSY_MARKER)
    if done:
        progress(f"{api.environment} already holds the busy profile")
        return json.loads(done)
    upload_busy_dags(s3, bucket, dag_prefix, profile)
    if sync is not None:
        sync()
    progress(f"waiting for {len(profile.dag_ids())} DAGs to be parsed in {api.environment}")
    wait_for_dag_ids(api, profile.dag_ids(), timeout=profile.parse_timeout, sleep=sleep, clock=clock)
    made = create_metadata(api, profile)
    progress(f"parsed after {clock() - started:.0f} s; triggering runs")
    since = datetime.now(UTC) - timedelta(days=profile.catchup_days + 1)

    expect = [
        _Expect(ETL_DAG, profile.etl_runs),
        _Expect(FLAKY_DAG, 1),
        _Expect(FAILING_DAG, profile.failed_runs, "failed"),
        _Expect(CATCHUP_DAG, profile.catchup_days),
        _Expect(OWNER_PAUSED_DAG, 2),  # one triggered, one scheduled when unpaused (catchup=False)
        _Expect(PRODUCER_DAG, 2),
        _Expect(CONSUMER_DAG, 1),  # made by the scheduler when both datasets were produced
    ]
    if profile.long_dag_id:
        expect.append(_Expect(LONG_DAG, 1))
    business = list(profile.basic.dags) if profile.basic is not None else []
    if profile.basic is not None:  # first: its one long task takes the first free worker slot
        api.set_paused(SEED_DAG_ID, False)
        api.trigger(SEED_DAG_ID, "busy-seed", seed_conf(profile.basic))
    for dag_id in [e.dag_id for e in expect if e.dag_id != LONG_DAG]:
        set_paused(api, dag_id, False)
    if profile.long_dag_id:
        set_paused(api, LONG_DAG, False)
    for n in range(1, profile.etl_runs + 1):
        api.trigger(ETL_DAG, f"busy-{n}", {"n": n, "items": profile.mapped_items})
    api.trigger(FLAKY_DAG, "busy-1")
    for n in range(1, profile.failed_runs + 1):
        api.trigger(FAILING_DAG, f"busy-{n}")
    api.trigger(OWNER_PAUSED_DAG, "busy-1")
    api.trigger(PRODUCER_DAG, "busy-1")  # both datasets: the consumer runs

    watched = [e.dag_id for e in expect] + business
    second_production = owner_paused = False
    business_live = profile.basic is None
    last_waiting: list[str] = []
    deadline = clock() + timeout
    while True:
        runs = [
            r
            for r in list_runs(api, watched, since=since)
            if not r["dag_run_id"].startswith(("seed__", "bulk__"))
        ]
        if profile.basic is not None and not business_live:
            state = api.get_run(SEED_DAG_ID, "busy-seed").get("state")
            if state == "failed":
                raise RuntimeError(f"the seeding DAG failed: {api.failed_tasks(SEED_DAG_ID, 'busy-seed')}")
            if state == "success":
                progress(f"synthetic history written after {clock() - started:.0f} s")
                api.set_paused(SEED_DAG_ID, True)
                for dag_id in business:  # business DAGs are live on the source; each runs its last hour
                    set_paused(api, dag_id, False)
                if profile.basic.bulk_dags:  # live too, as seed.run_seed leaves them (schedule None)
                    api.set_paused_many(list(profile.basic.bulk_dags), False)
                expect += [_Expect(dag_id, 1) for dag_id in business]
                business_live = True
        if not second_production and any(r["dag_id"] == CONSUMER_DAG for r in runs):
            # The consumer's run exists (its queue was emptied): orders alone leave a pending queue row.
            api.trigger(PRODUCER_DAG, "busy-2", {"only_orders": True})
            second_production = True
            progress(f"the dataset consumer ran after {clock() - started:.0f} s")
        waiting = []
        for item in expect:
            finished, active = _finished(runs, item.dag_id)
            wrong = [r["dag_run_id"] for r in finished if r["state"] != item.state]
            if wrong:
                raise RuntimeError(
                    f"{item.dag_id} runs ended other than {item.state}: {', '.join(wrong)} "
                    f"(failed tasks of {wrong[0]}: {_failed_tasks(api, item.dag_id, wrong[0])})"
                )
            if len(finished) < item.runs or active:
                waiting.append(f"{item.dag_id} ({len(finished)}/{item.runs} finished, {len(active)} active)")
            elif item.dag_id == OWNER_PAUSED_DAG and not owner_paused:
                set_paused(api, OWNER_PAUSED_DAG, True)  # its owner paused it after it ran
                owner_paused = True
        if waiting != last_waiting:
            progress(f"{clock() - started:.0f} s: waiting for {len(waiting)} DAGs")
            last_waiting = waiting
        if not waiting and second_production and business_live and owner_paused:
            break
        if clock() > deadline:
            raise TimeoutError(
                f"busy seeding of {api.environment} did not finish in {timeout:.0f} s: {waiting}"
            )
        sleep(poll)

    queued = api.request("GET", f"/dags/{CONSUMER_DAG}/datasets/queuedEvent").get("queued_events", [])
    summary: dict[str, Any] = {
        "profile": "busy",
        "environment": api.environment,
        **made,
        "runs": _run_counts(runs),
        "paused": [OWNER_PAUSED_DAG],
        "pending_dataset_events": sorted(e.get("uri", "") for e in queued),
        "seconds": round(clock() - started, 1),
    }
    if profile.basic is not None:
        summary["basic"] = json.loads(api.get_variable_value("mwaa_iac_seed") or "{}")
    api.request("POST", "/variables", body={"key": BUSY_MARKER, "value": json.dumps(summary, sort_keys=True)})
    progress(f"busy profile seeded in {summary['seconds']:.0f} s")
    return summary


def _failed_tasks(api: AirflowApi, dag_id: str, run_id: str) -> list[str]:
    try:
        return sorted(
            t["task_id"]
            for t in list_task_instances(api, [dag_id], [run_id])
            if t.get("state") in ("failed", "upstream_failed")
        )
    except AirflowApiError:
        return []


def _run_counts(runs: list[dict]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for run in runs:
        per_dag = counts.setdefault(run["dag_id"], {})
        per_dag[run["state"]] = per_dag.get(run["state"], 0) + 1
    return counts


# -- in flight ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InFlight:
    """Runs started by :func:`start_in_flight`: (dag_id, run_id, task_id, the state it must reach)."""

    tasks: tuple[tuple[str, str, str, str], ...]

    @property
    def run_ids(self) -> list[str]:
        return sorted({run_id for _, run_id, _, _ in self.tasks})


def start_in_flight(
    api: AirflowApi, *, label: str = "flight", defer_seconds: int = 600, sleep_seconds: int = 600
) -> InFlight:
    """Start work that will be in flight: a deferrable sensor deferred for ``defer_seconds`` (resumed
    by the triggerer), a task sleeping ``sleep_seconds``, a task failing into its retry wait. Call
    :func:`wait_in_flight` to wait until they are there. Run ids are ``<label>-defer`` etc."""
    tasks: tuple[tuple[str, str, str, str, dict[str, int]], ...] = (
        (
            DEFERRED_DAG,
            f"{label}-defer",
            "wait_for_window",
            "deferred",
            {"defer_seconds": int(defer_seconds)},
        ),
        (LONG_TASK_DAG, f"{label}-long", "crunch", "running", {"sleep_seconds": int(sleep_seconds)}),
        (RETRY_WAIT_DAG, f"{label}-retry", "call_flaky_service", "up_for_retry", {}),
    )
    for dag_id, run_id, _, _, conf in tasks:
        set_paused(api, dag_id, False)
        api.trigger(dag_id, run_id, conf)
    return InFlight(tuple((d, r, t, s) for d, r, t, s, _ in tasks))


def wait_in_flight(
    api: AirflowApi,
    started: InFlight,
    *,
    timeout: float = 300.0,
    poll: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """Until each in-flight task instance is in its state (deferred, running, up_for_retry); returns
    their identities: dag_id, run_id, task_id, map_index, state, try_number."""
    deadline = clock() + timeout
    dag_ids = [d for d, _, _, _ in started.tasks]
    while True:
        found = {
            (t["dag_id"], t["dag_run_id"], t["task_id"]): t
            for t in list_task_instances(api, dag_ids, started.run_ids)
        }
        missing = []
        for dag_id, run_id, task_id, wanted in started.tasks:
            state = (found.get((dag_id, run_id, task_id)) or {}).get("state")
            if state in ("failed", "upstream_failed", "success") and state != wanted:
                raise RuntimeError(f"{dag_id}/{run_id}/{task_id} ended {state} before it was seen {wanted}")
            if state != wanted:
                missing.append(f"{dag_id}/{task_id}: {state or 'not started'} (waiting for {wanted})")
        if not missing:
            return [
                {
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "task_id": task_id,
                    "map_index": found[(dag_id, run_id, task_id)].get("map_index", -1),
                    "state": wanted,
                    "try_number": found[(dag_id, run_id, task_id)].get("try_number"),
                }
                for dag_id, run_id, task_id, wanted in started.tasks
            ]
        if clock() > deadline:
            raise TimeoutError(
                f"in-flight work on {api.environment} not there after {timeout:.0f} s: {missing}"
            )
        sleep(poll)


# -- the `mwaa-iac local seed` command ---------------------------------------------------------------


class SeedError(MwaaIacError):
    """Seeding an emulated environment failed or timed out."""


def seed_environment(
    name: str,
    profile: str = "busy",
    *,
    state_dir: str | Path | None = None,
    runs: int | None = None,
    timeout: float = 900.0,
    progress: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    """Seed environment ``name`` of the running local stack with the ``busy`` or ``basic`` profile
    (``runs``: synthetic runs per example DAG). Returns the summary; user errors are MwaaIacError."""
    import os

    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.local import stack
    from mwaa_iac.local.seed import run_seed

    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    os.environ.update(stack.load_env(state_dir))
    admin = stack.admin(state_dir)
    mwaa = MwaaClient(os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    environment = mwaa.get_environment(name)
    if environment.get("Status") != "AVAILABLE":
        raise SeedError(f"{name} is {environment.get('Status')}, not AVAILABLE")
    bucket = str(environment["SourceBucketArn"]).rsplit(":", 1)[-1]
    dag_path = str(environment.get("DagS3Path") or "dags")
    api = AirflowApi(mwaa, name)
    s3 = S3(mwaa.region)
    try:
        if profile == "basic":
            plan = SeedPlan() if runs is None else SeedPlan(runs=runs)
            if api.get_variable_value("mwaa_iac_seed") is not None:
                progress(f"{name} already holds the basic profile")
                return json.loads(api.get_variable_value("mwaa_iac_seed") or "{}")
            upload_dags(s3, bucket, dag_path, plan)
            admin.sync(name)
            progress(f"seeding {name}: {plan.runs} runs x {len(plan.dags)} DAGs x {plan.tasks} tasks")
            return run_seed(api, plan, timeout=timeout)
        busy = BusyProfile()
        if runs is not None and busy.basic is not None:
            busy.basic.runs = runs
        return seed_busy(
            api, s3, bucket, dag_path, busy, sync=lambda: admin.sync(name), progress=progress, timeout=timeout
        )
    except (TimeoutError, RuntimeError) as exc:
        raise SeedError(
            f"seeding {name} ({profile}) failed: {exc}",
            hint="see the environment's scheduler.log under the stack's state directory",
        ) from exc


PROFILES = ("busy", "basic")


def clear_task(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> None:
    """Clear one task instance of a run (whatever its state) so that the scheduler runs it again: an
    update of old history, as a user's "Clear" in the UI (the benchmark's and the e2e's activity)."""
    api.request(
        "POST",
        f"/dags/{dag_id}/clearTaskInstances",
        body={
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [task_id],
            "only_failed": False,  # Airflow's default clears failed task instances only
            "reset_dag_runs": True,
            **dict.fromkeys(
                ("include_upstream", "include_downstream", "include_future", "include_past"), False
            ),
        },
    )
