"""Row counts of a live source environment for the sizing estimate (``mwaa_iac.core.sizing``), through
MWAA's InvokeRestApi: one request per count, ``limit=1``, reading Airflow's ``total_entries``.

A handful of requests (:data:`COUNTS` plus one for the DAGs), spaced at least
:data:`MIN_INTERVAL_S` apart (MWAA allows about 10 requests per second), with no retry storm. Tables
without a list endpoint are estimated from the others (and marked so) or left out (and named). An
unreachable environment gives ``available`` False and the reason: the dry run and the report carry
on without the estimate, they never fail because of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.core import bulk_pause, dr, sizing
from mwaa_iac.core.sizing import TableCount

MIN_INTERVAL_S = 0.1  # MWAA: about 10 InvokeRestApi requests per second
RETRIES = 1  # an estimate is not worth minutes of back-off

# (table, REST path, query): Airflow 2's stable REST API, ``~`` for "every DAG / run / task".
COUNTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("dag_run", "/dags/~/dagRuns", {}),
    ("task_instance", "/dags/~/dagRuns/~/taskInstances", {}),
    ("xcom", "/dags/~/dagRuns/~/taskInstances/~/xcomEntries", {}),
    ("log", "/eventLogs", {}),
    ("variable", "/variables", {}),
    ("connection", "/connections", {}),
    ("slot_pool", "/pools", {}),
)
# Failed task instances: the basis of task_fail's estimate (one task_fail row per failed try).
FAILED = ("/dags/~/dagRuns/~/taskInstances", {"state": "failed"})
# The DAGs the freeze pauses and unpauses: the unpaused ones.
UNPAUSED = ("/dags", {"paused": False})
# Copied tables no list endpoint counts (usually small next to task_instance, xcom and log): the copy
# module's registry less what is counted above.
NOT_COUNTED = sizing.uncounted([table for table, _, _ in COUNTS] + ["task_fail"])


@dataclass
class SourceCounts:
    """What the live source answered: the counts, the unpaused DAGs, the errors."""

    environment: str
    tables: list[TableCount] = field(default_factory=list)
    dags: int | None = None
    errors: list[str] = field(default_factory=list)
    unavailable: str | None = None  # why there is no estimate at all
    requests: int = 0
    # REST requests the freeze's bulk pause and the go-live's bulk unpause would take (planned from the
    # DAG ids, as core.bulk_pause plans them for the cutover); None when the DAGs could not be listed
    pause_calls: int | None = None
    unpause_calls: int | None = None

    @property
    def available(self) -> bool:
        return self.unavailable is None


class _Unreachable(Exception):
    pass


def count_source(
    api: AirflowApi,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SourceCounts:
    """Count the source's rows through ``api`` (see the module docstring). Never raises."""
    counts = SourceCounts(api.environment)
    last: list[float] = []

    def pace() -> None:
        """At most one request every MIN_INTERVAL_S."""
        if last and (wait := MIN_INTERVAL_S - (clock() - last[0])) > 0:
            sleep(wait)
        last[:] = [clock()]

    def total(path: str, query: dict[str, Any]) -> int | None:
        """``total_entries`` of one list request; None when Airflow refused it (recorded)."""
        pace()
        counts.requests += 1
        try:
            page = api.request("GET", path, query={**query, "limit": 1})
        except AirflowApiError as exc:  # Airflow answered (403, 404...): this count only
            counts.errors.append(exc.message)
            return None
        except Exception as exc:  # the environment cannot be reached: no estimate at all
            raise _Unreachable(_reason(exc)) from exc
        value = page.get("total_entries") if isinstance(page, dict) else None
        if not isinstance(value, int):
            counts.errors.append(f"GET {path}: no total_entries in Airflow's answer")
            return None
        return value

    try:
        counts.dags = total(*UNPAUSED)
        for table, path, query in COUNTS:
            rows = total(path, query)
            how = f"GET {path} (total_entries)" if rows is not None else f"GET {path} failed"
            counts.tables.append(TableCount(table, rows, False, how))
        failed = total(*FAILED)
        counts.tables.append(
            TableCount(
                "task_fail",
                failed,
                True,
                "estimated: one row per failed task instance (retried failures add more)"
                if failed is not None
                else "not counted: the failed task instances could not be listed",
            )
        )
    except _Unreachable as exc:
        counts.unavailable = str(exc)
        return counts
    pace()
    _plan_pause(api, counts)
    counts.tables += [
        TableCount(t, None, False, "not counted: no REST endpoint lists it") for t in NOT_COUNTED
    ]
    if all(t.rows is None for t in counts.tables):
        counts.unavailable = "Airflow answered no count: " + "; ".join(counts.errors[:3])
    return counts


def _plan_pause(api: AirflowApi, counts: SourceCounts) -> None:
    """The requests the bulk pause and unpause would take on these DAG ids (one listing, paged: one
    request per 100 DAGs, the only pages not paced)."""
    try:
        listing = api.list_dags()
    except Exception as exc:  # the estimate falls back to one request per DAG
        counts.errors.append(
            f"the DAGs could not be listed ({_reason(exc)}): pause and unpause counted per DAG"
        )
        return
    counts.requests += max(1, -(-len(listing) // bulk_pause.PAGE))
    state = {d["dag_id"]: bool(d.get("is_paused")) for d in listing}
    live = [d for d, paused in state.items() if not paused and d not in dr.MWAA_IAC_DAG_IDS]
    verify = max(1, -(-len(live) // bulk_pause.PAGE))  # the per-DAG check afterwards: one listing
    counts.pause_calls = bulk_pause.plan_for(state, live, True).calls + verify
    counts.unpause_calls = bulk_pause.plan_for(state, live, False).calls + verify


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message.strip().splitlines()[0]


def sizing_section(
    counts: SourceCounts,
    *,
    passes: int = 2,
    drain_timeout_s: float | None = None,
    rates: sizing.Rates | None = None,
    freeze_hops: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``sizing`` section of the dry run and the report: ``status`` estimated or unavailable."""
    if not counts.available:
        return unavailable(counts.unavailable or "unknown", counts.environment, counts.errors)
    try:
        estimate = sizing.estimate(
            counts.tables,
            counts.dags or 0,
            rates,
            passes=passes,
            drain_timeout_s=drain_timeout_s,
            pause_calls=counts.pause_calls,
            unpause_calls=counts.unpause_calls,
            freeze_hops=freeze_hops,
        )
    except (OSError, ValueError, KeyError) as exc:  # the packaged rates are broken
        return unavailable(f"the measured rates could not be read: {exc}", counts.environment, counts.errors)
    errors = list(counts.errors)
    if counts.dags is None:
        errors.append("the unpaused DAGs could not be counted: pause and unpause are left at 0 DAGs")
    return {
        "status": "estimated",
        "reason": None,
        "environment": counts.environment,
        "errors": errors,
        **estimate.to_dict(),
    }


def unavailable(
    reason: str, environment: str | None = None, errors: list[str] | None = None, *, skipped: bool = False
) -> dict[str, Any]:
    """A ``sizing`` section without an estimate; ``skipped``: not attempted (nothing to estimate)."""
    return {
        "status": "skipped" if skipped else "unavailable",
        "reason": reason,
        "environment": environment,
        "errors": list(errors or []),
        "summary": f"sizing {'not estimated' if skipped else 'not available'}: {reason}",
    }


def read_sizing(
    mwaa: MwaaClient,
    environment: str,
    *,
    passes: int = 2,
    drain_timeout_s: float | None = None,
    freeze_hops: Sequence[str] = (),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Count ``environment``'s rows and estimate: the ``sizing`` section. Never raises."""
    api = AirflowApi(mwaa, environment, retries=RETRIES, sleep=sleep)
    counts = count_source(api, sleep=sleep, clock=clock)
    return sizing_section(counts, passes=passes, drain_timeout_s=drain_timeout_s, freeze_hops=freeze_hops)
