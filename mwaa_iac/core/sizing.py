"""The sizing estimate of a cutover: from the source's row counts per table and its number of DAGs,
how long pass 1's copy takes (the source keeps running) and how long the pass-2 freeze window is,
step by step, from the rates ``make bench`` measured.

Pure: the rates come from ONE place, the packaged ``mwaa_iac/data/sizing_rates.json`` (the shape of
``bench/results-<date>.json`` plus its date, machine and notes: a new ``make bench`` result replaces
it), and the counts from the caller (``mwaa_iac.workflows.sizing`` reads them from the live source).

Where the two measured sizes disagree the estimate is a range, never one falsely precise number:

* the copy steps (backup, restore): the low end is a fixed cost plus the marginal rate between the
  small and the large size (a straight line through the two measurements); the high end charges every
  row at the large size's average rate (as if none of its time were fixed); the larger of the two is
  the high end, the smaller the low end;
* pausing and unpausing go one DAG at a time through InvokeRestApi: per DAG, between the fastest
  measured cost (never below MWAA's ~10 requests per second) and the slowest (or the p95 latency);
* the drain is unknown: it waits for the task instances executing when the DAGs pause.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

# The copy module's table registry: pure (the standard library only at import; it runs inside Airflow
# alone and imports nothing of mwaa-iac), so core reads the copied tables' names from it directly.
from mwaa_iac.dr_runtime import mwaa_iac_copy as _registry

MWAA_REQUESTS_PER_S = 10.0  # InvokeRestApi's documented rate, about
LIST_PAGE = 100  # DAGs per page when the freeze records which DAGs to pause

# The freeze steps of a bench result, by the estimate's step they belong to (anything else: restore).
_PAUSE, _DRAIN, _GO_LIVE = "pause-source", "drain-source", "go-live"
_BACKUP_PREFIXES = ("backup", "verify-backup")
# The tables a copy fills from the backup (the registry's copied ones), in the registry's order.
# (The registry runs inside Airflow on Python 3.10 and is not annotated: its answer is a tuple of names.)
COPIED_TABLES: tuple[str, ...] = tuple(_registry.copied_tables())  # type: ignore[no-untyped-call]


def uncounted(counted: Iterable[str]) -> tuple[str, ...]:
    """The copied tables (:data:`COPIED_TABLES`) that ``counted`` does not name."""
    named = set(counted)
    return tuple(t for t in COPIED_TABLES if t not in named)


# --------------------------------------------------------------------------------------------------
# Rates
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One size of one ``make bench`` run."""

    size: str
    task_instances: int
    rows: int  # rows copied in the freeze (all tables)
    backup_s: float  # backup DAG run + its verification
    restore_s: float  # restore (+ fix-up) DAG run + its verification
    pause_s: float
    go_live_s: float
    dag_run_floor_s: float | None
    invoke_median_s: float | None
    invoke_p95_s: float | None


@dataclass(frozen=True)
class Rates:
    """The measured rates the estimate uses, with where and when they were measured."""

    date: str
    source: str
    machine: str
    dags_paused: int  # DAGs the bench's freeze paused and unpaused
    measurements: tuple[Measurement, ...]  # sorted by rows
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        sizes = ", ".join(f"{m.size} {m.task_instances:,} task instances" for m in self.measurements)
        return f"make bench of {self.date} ({self.source}; {sizes}) on {self.machine}"


def parse_rates(data: Mapping[str, Any], *, date: str | None = None, source: str | None = None) -> Rates:
    """Rates from a bench results document (``bench/results-<date>.json``, or the packaged
    ``sizing_rates.json`` which has the same shape plus ``date``, ``source``, ``machine``, ``notes``)."""
    measurements = []
    for result in data["results"]:
        steps: Mapping[str, float] = result["freeze_steps_s"]
        backup = sum(v for k, v in steps.items() if k.startswith(_BACKUP_PREFIXES))
        restore = sum(
            v
            for k, v in steps.items()
            if k not in (_PAUSE, _DRAIN, _GO_LIVE) and not k.startswith(_BACKUP_PREFIXES)
        )
        invoke = result.get("invoke_rest_api") or {}
        measurements.append(
            Measurement(
                size=str(result["size"]),
                task_instances=int(result["task_instances"]),
                rows=int(sum(result["rows_copied"].values())),
                backup_s=float(backup),
                restore_s=float(restore),
                pause_s=float(steps.get(_PAUSE, 0.0)),
                go_live_s=float(steps.get(_GO_LIVE, 0.0)),
                dag_run_floor_s=result.get("dag_run_floor_s"),
                invoke_median_s=invoke["median_ms"] / 1000 if "median_ms" in invoke else None,
                invoke_p95_s=invoke["p95_ms"] / 1000 if "p95_ms" in invoke else None,
            )
        )
    if not measurements:
        raise ValueError("the rates hold no measurement")
    return Rates(
        date=str(date or data.get("date") or "unknown date"),
        source=str(source or data.get("source") or "bench results"),
        machine=str(data.get("machine") or "unknown machine"),
        dags_paused=int(data.get("dags_paused") or 1),
        measurements=tuple(sorted(measurements, key=lambda m: m.rows)),
        notes=tuple(data.get("notes") or ()),
    )


def load_rates() -> Rates:
    """The packaged rates (``mwaa_iac/data/sizing_rates.json``)."""
    text = resources.files("mwaa_iac.data").joinpath("sizing_rates.json").read_text("utf-8")
    return parse_rates(json.loads(text))


# --------------------------------------------------------------------------------------------------
# Inputs and results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableCount:
    """Rows of one source table: counted, estimated from other counts (``estimated``), or unknown
    (``rows`` None); ``how`` says which."""

    table: str
    rows: int | None
    estimated: bool = False
    how: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "estimated": self.estimated, "how": self.how}


@dataclass(frozen=True)
class Span:
    """A duration range in seconds."""

    low: float
    high: float

    def __add__(self, other: Span) -> Span:
        return Span(self.low + other.low, self.high + other.high)

    def scaled(self, factor: float) -> Span:
        return Span(self.low * factor, self.high * factor)

    def text(self) -> str:
        return format_span(self.low, self.high)

    def to_dict(self) -> dict[str, float]:
        return {"low_s": round(self.low, 1), "high_s": round(self.high, 1)}


def _unit(seconds: float) -> tuple[float, str, int]:
    """(divisor, unit, decimals) to show durations up to ``seconds`` in."""
    if seconds < 10:
        return 1, "s", 1
    if seconds < 120:
        return 1, "s", 0
    if seconds < 600:
        return 60, "min", 1
    if seconds < 7200:
        return 60, "min", 0
    return 3600, "h", 1


def format_seconds(seconds: float) -> str:
    divisor, unit, decimals = _unit(seconds)
    return f"{seconds / divisor:.{decimals}f} {unit}"


def format_span(low: float, high: float) -> str:
    """``4.0-4.2 s``, ``1.6-2.4 min`` (with an en dash): both ends in the high end's unit."""
    divisor, unit, decimals = _unit(high)
    a, b = f"{low / divisor:.{decimals}f}", f"{high / divisor:.{decimals}f}"
    return f"{b} {unit}" if a == b else f"{a}\u2013{b} {unit}"


@dataclass(frozen=True)
class StepEstimate:
    """One step of the freeze window; ``span`` None: unknown (``note`` says why)."""

    name: str
    span: Span | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "low_s": round(self.span.low, 1) if self.span else None,
            "high_s": round(self.span.high, 1) if self.span else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class SizingEstimate:
    tables: tuple[TableCount, ...]
    dags: int
    rows: int  # rows the copy carries (counted and estimated tables)
    estimated_rows: int  # of which estimated
    passes: int
    pass1_copy: Span | None  # None in a single pass (the copy is inside the freeze)
    freeze_steps: tuple[StepEstimate, ...]
    freeze: Span  # every step but the drain
    assumptions: tuple[str, ...]
    rates: Rates = field(repr=False)
    freeze_hops: tuple[str, ...] = ()  # in-place upgrades inside the freeze ("2.11.2 → 3.3.1")

    def _hops_text(self) -> str:
        return "".join(f" + the in-place upgrade {hop}" for hop in self.freeze_hops)

    def summary(self) -> str:
        if self.pass1_copy is None:
            return (
                f"{self.rows:,} rows, {self.dags} DAG(s): single pass: copy, pause and unpause "
                f"{self.freeze.text()} + drain, inside a freeze that also holds the clone and the hops"
            )
        return (
            f"{self.rows:,} rows, {self.dags} DAG(s): pass-1 copy {self.pass1_copy.text()}; "
            f"freeze window {self.freeze.text()} + drain{self._hops_text()}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": [t.to_dict() for t in self.tables],
            "dags": self.dags,
            "rows": self.rows,
            "estimated_rows": self.estimated_rows,
            "passes": self.passes,
            "pass1_copy": self.pass1_copy.to_dict() if self.pass1_copy else None,
            "freeze_steps": [s.to_dict() for s in self.freeze_steps],
            "freeze": self.freeze.to_dict(),
            "summary": self.summary(),
            "assumptions": list(self.assumptions),
            "rates": {"date": self.rates.date, "source": self.rates.source, "machine": self.rates.machine},
        }


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


def copy_span(rows: int, points: Sequence[tuple[int, float]]) -> Span:
    """Seconds for one copy step over ``rows`` rows from measured ``(rows, seconds)`` points (sorted
    by rows): between a straight line through the smallest and largest point (a fixed cost plus a
    marginal rate) and the largest point's average rate, never below the fixed cost."""
    r_hi, t_hi = points[-1]
    proportional = t_hi * rows / r_hi if r_hi else t_hi
    r_lo, t_lo = points[0]
    if len(points) < 2 or r_hi <= r_lo or t_hi <= t_lo:
        fixed = 0.0  # one size, or no measurable marginal rate: no fixed part known
        line = max(t_lo, proportional)
    else:
        marginal = (t_hi - t_lo) / (r_hi - r_lo)  # seconds per row
        fixed = max(0.0, t_lo - r_lo * marginal)
        line = fixed + rows * marginal
    # A DAG run costs at least the line's fixed part, however few the rows.
    return Span(max(fixed, min(line, proportional)), max(line, proportional))


def per_dag_span(rates: Rates) -> Span:
    """Seconds to pause (or unpause) one DAG through InvokeRestApi, one request each."""
    floor = 1 / MWAA_REQUESTS_PER_S
    measured = [m.pause_s / rates.dags_paused for m in rates.measurements if m.pause_s]
    p95 = [m.invoke_p95_s for m in rates.measurements if m.invoke_p95_s]
    median = [m.invoke_median_s for m in rates.measurements if m.invoke_median_s]
    low = max(floor, min(measured or median or [floor]))
    high = max([low, *measured, *p95])
    return Span(low, high)


def estimate(
    tables: Sequence[TableCount],
    dags: int,
    rates: Rates | None = None,
    *,
    passes: int = 2,
    drain_timeout_s: float | None = None,
    pass2_rows: int | None = None,
    pause_calls: int | None = None,
    unpause_calls: int | None = None,
    freeze_hops: Sequence[str] = (),
) -> SizingEstimate:
    """The estimate for a source with ``tables`` and ``dags`` DAGs to pause (unpaused ones).
    ``pass2_rows``: rows pass 2 copies (default: all of them — the worst case, a delta that cannot be
    taken or applied; a delta copies only what changed since pass 1).
    ``pause_calls``/``unpause_calls``: the REST requests the bulk pause and unpause take (planned from
    the DAG ids); unknown: one request per DAG, the worst case. ``freeze_hops``: the target's
    in-place upgrades inside the freeze (two passes into 3.x), not estimated here."""
    rates = rates or load_rates()
    rows = sum(t.rows or 0 for t in tables)
    estimated_rows = sum(t.rows or 0 for t in tables if t.estimated)
    copied_in_freeze = rows if pass2_rows is None else pass2_rows
    backup_points = [(m.rows, m.backup_s) for m in rates.measurements]
    restore_points = [(m.rows, m.restore_s) for m in rates.measurements]

    one_dag = per_dag_span(rates)
    latency = [m.invoke_median_s for m in rates.measurements if m.invoke_median_s] or [
        1 / MWAA_REQUESTS_PER_S
    ]
    pages = max(1, math.ceil(dags / LIST_PAGE))
    listing = Span(pages * min(latency), pages * max(latency))
    pause_requests = dags if pause_calls is None else pause_calls
    unpause_requests = dags if unpause_calls is None else unpause_calls
    pause = one_dag.scaled(pause_requests) + listing
    flips = [max(0.0, m.go_live_s - m.pause_s) for m in rates.measurements if m.go_live_s]
    go_live = one_dag.scaled(unpause_requests) + Span(min(flips or [0.0]), max(flips or [0.0]))

    def how(verb: str, requests: int, planned: int | None) -> str:
        if planned is None:
            return f"{verb} {dags} DAG(s), one InvokeRestApi request each ({one_dag.text()} per request)"
        return (
            f"{verb} {dags} DAG(s) in {requests} InvokeRestApi request(s): PATCH /dags patterns and a "
            "check of every DAG"
        )

    backup = copy_span(copied_in_freeze, backup_points)
    restore = copy_span(copied_in_freeze, restore_points)

    if drain_timeout_s is not None:
        drain_note = (
            f"waits for the task instances executing when the DAGs pause, "
            f"at most {format_seconds(drain_timeout_s)} (--drain-minutes)"
        )
    else:
        drain_note = "waits for the task instances executing when the DAGs pause"
    what = "all rows" if pass2_rows is None else f"{copied_in_freeze:,} rows"
    steps = (
        StepEstimate("pause", pause, how("pause", pause_requests, pause_calls)),
        StepEstimate("drain", None, drain_note),
        StepEstimate("backup", backup, f"backup DAG run on the source and its check, {what}"),
        StepEstimate(
            "restore", restore, f"restore DAG run (with its fix-up) on the target and its check, {what}"
        ),
        *(
            StepEstimate(
                "upgrade",
                None,
                f"the target's in-place upgrade {hop}: not estimated here (AWS: an environment may be "
                "unavailable for up to two hours during a version update; the rehearsal measures it)",
            )
            for hop in freeze_hops
        ),
        StepEstimate(
            "go-live", go_live, how("unpause", unpause_requests, unpause_calls) + ", then the routing flip"
        ),
    )
    freeze = Span(0.0, 0.0)
    for step in steps:
        if step.span is not None:
            freeze = freeze + step.span
    pass1 = copy_span(rows, backup_points) + copy_span(rows, restore_points) if passes == 2 else None

    largest = rates.measurements[-1]
    assumptions = [
        f"rates: {rates.describe()}",
        "MWAA's own copy rate is not known here: the rates were measured on the local stack, whose "
        "database and workers differ from an MWAA environment's; treat the figures as an order of size",
        "copy steps: low end = a fixed cost plus the marginal rate between the measured sizes; high end = "
        "every row at the largest size's average rate",
        (
            f"pause and unpause: one InvokeRestApi request per DAG ({one_dag.text()} each; MWAA allows "
            f"about {MWAA_REQUESTS_PER_S:g} requests per second): the DAGs could not be listed"
            if pause_calls is None
            else f"pause and unpause: the requests core.bulk_pause plans for these DAG ids "
            f"({pause_calls} and {unpause_calls}), {one_dag.text()} each (MWAA allows about "
            f"{MWAA_REQUESTS_PER_S:g} requests per second)"
        ),
        "the drain is not in the total: it depends on what is running when the DAGs pause",
    ]
    if freeze_hops:
        assumptions.append(
            "the in-place upgrade inside the freeze is not in the total: it is MWAA's own (the rehearsal "
            "measures it on a copy of this environment before the freeze)"
        )
    if pass2_rows is None and passes == 2:
        assumptions.append(
            "pass 2 is estimated as a full copy inside the freeze, its worst case (a delta that cannot be "
            "taken or applied falls back to it): a delta copies only what changed since pass 1, so the "
            "freeze is usually far shorter than this upper end"
        )
    if passes == 1:
        assumptions.append(
            "single pass: the freeze also holds the clone and the in-place hops (not estimated here)"
        )
    if rows > largest.rows:
        assumptions.append(
            f"extrapolated: {rows:,} rows is {rows / largest.rows:.0f}x the largest measured copy "
            f"({largest.rows:,} rows); the estimate assumes the rates stay linear"
        )
    if estimated_rows:
        names = ", ".join(t.table for t in tables if t.estimated)
        assumptions.append(f"{estimated_rows:,} of the rows are estimated, not counted ({names})")
    unknown = [t.table for t in tables if t.rows is None]
    if unknown:
        assumptions.append(f"not counted (left out of the rows): {', '.join(unknown)}")
    assumptions += list(rates.notes)
    return SizingEstimate(
        tables=tuple(tables),
        dags=dags,
        rows=rows,
        estimated_rows=estimated_rows,
        passes=passes,
        pass1_copy=pass1,
        freeze_steps=steps,
        freeze=freeze,
        assumptions=tuple(assumptions),
        rates=rates,
        freeze_hops=tuple(freeze_hops),
    )
