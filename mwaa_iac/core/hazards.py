"""The migration-hazard preflight of a 2 → 3 path, the pure part: what the scan of the source asks
for, and what its answer (counts and ids only, never values) means.

Airflow 3's own ``airflow db migrate`` (MWAA runs the target version's, in place, from 2.11.x) moves
an Airflow 2 database to 3.x; some of the data it finds there makes it fail or is dropped on the way.
Facts (the 3.0 migrations, and upstream issues in apache/airflow):

- ``xcom.value`` (bytea in 2.x) becomes JSONB. Values that start with the pickle protocol header
  (byte 0x80: ``get_byte(value, 0) = 128``, the migration's own test) are moved to
  ``_xcom_archive`` and are NOT migrated: task code on 3.x cannot read them.
- A JSON XCom holding NaN or Infinity (Python's ``json.dumps`` writes them bare) is not JSON that
  PostgreSQL's jsonb takes: the migration fails (#51178, #57234, #71964; later releases rewrite some
  of them, changing the data). A ``\\u0000`` escape is refused by jsonb in the same way.
- One XCom over 256 MB aborts the migration (#73248).
- A pickled ``dag_run.conf`` that JSON cannot represent becomes NULL, silently.
- Task instances get new UUID primary keys; historic ones have a NULL ``dag_version_id``, which
  crashes components on 3.x before 3.2.1 (#60179, #61813, #68248; fixed in 3.2.1).
- The migration's time grows with task instances: the UUID step alone measured about 1 min at 0.75 M
  rows, 10 min at 3.7 M and 45 to 56 min at 10 M on a 4-CPU database (#49015).

Blocking: what makes the migration fail (NaN/Infinity or NUL in JSON XComs, an XCom over 256 MB) and
what leaves the target's components crashing (historic task instances before 3.2.1). Warnings: data
dropped on the way (pickled XComs, pickled run conf), and a long migration. ``--accept-hazard NAME``
goes on knowingly. No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from mwaa_iac.core import constants_block
from mwaa_iac.core.catalog import parse_version

XCOM_LIMIT = 256 * 1024 * 1024  # bytes: a larger XCom aborts the migration (#73248)
MAX_IDS = 10  # (dag_id, run_id) pairs per finding that travel back from the source
NULL_DAG_VERSION_FIXED = (3, 2, 1)
LONG_MIGRATION_MINUTES = 10.0
SCAN_VERSION = 1  # the probe's scan answer format
SCAN_FAILED = "hazard-scan"  # the name of "the scan did not answer" (acceptable like any other)
DB_CLEAN_DAG_ID = "mwaa_iac_db_clean"
DB_CLEAN_FILE = "db_clean.py"  # in mwaa_iac/dr_runtime/dags/
DB_CLEAN_DEFAULT_DAYS = 90
# The tables `airflow db clean` trims that the migration rewrites (run history and its children).
DB_CLEAN_TABLES = ("task_instance", "task_instance_history", "dag_run", "xcom", "log", "job", "task_fail")

# (million task instances, minutes of the UUID step) measured in apache/airflow#49015 on a 4-CPU
# PostgreSQL; 10 M is the middle of the 45 to 56 min reported.
MIGRATION_MEASURED: tuple[tuple[float, float], ...] = ((0.75, 1.0), (3.7, 10.0), (10.0, 50.5))
# Rows the UUID step rewrites: task instances and their earlier tries.
UUID_TABLES = ("task_instance", "task_instance_history")


@dataclass(frozen=True)
class Hazard:
    """One thing the migration trips over: its stable ``name`` (for ``--accept-hazard``), whether it
    blocks, what happens, and the fix."""

    name: str
    blocking: bool
    what: str
    fix: str


DB_CLEAN_FIX = (
    "trim the history before the upgrade with `airflow db clean` and a cutoff: `--write-db-clean-dag PATH` "
    'writes a DAG that runs it (a dry run unless its run conf says {"dry_run": false}); upload it, '
    "run it, then run this command again"
)

HAZARDS: tuple[Hazard, ...] = (
    Hazard(
        "nan-json-xcom",
        True,
        "JSON XComs holding NaN or Infinity: the migration to jsonb fails on them (apache/airflow "
        "#51178, #57234, #71964)",
        "delete those XComs (or clear their task instances so they run again and push JSON without NaN), "
        "e.g. `airflow db clean --tables xcom` with a cutoff after their runs",
    ),
    Hazard(
        "nul-json-xcom",
        True,
        "JSON XComs holding a \\u0000 escape: jsonb refuses it, the migration fails",
        "delete those XComs (or clear their task instances)",
    ),
    Hazard(
        "xcom-over-256mb",
        True,
        "XComs over 256 MB: the migration aborts (apache/airflow #73248)",
        "delete those XComs; keep large values in object storage (an XCom backend) instead",
    ),
    Hazard(
        "null-dag-version-before-3.2.1",
        True,
        "historic task instances get a NULL dag_version_id, which crashes components on Airflow 3 before "
        "3.2.1 (apache/airflow #60179, #61813, #68248)",
        "upgrade to 3.2.1 or later (--to), or " + DB_CLEAN_FIX,
    ),
    Hazard(
        "pickled-xcom",
        False,
        "pickled XComs (enable_xcom_pickling): moved to _xcom_archive, NOT migrated; tasks on 3.x cannot "
        "read them",
        "if a task still reads them, push them again as JSON before the upgrade; otherwise accept",
    ),
    Hazard(
        "pickled-dag-run-conf",
        False,
        "run confs JSON cannot represent: they become NULL in the migration, silently",
        "if they matter, note them now (the runs stay, without conf); otherwise accept",
    ),
    Hazard(
        "long-migration",
        False,
        "the migration rewrites every task instance (new UUID keys): its time grows faster than the rows "
        "(apache/airflow #49015); a cutover runs it inside the freeze, an in-place upgrade while the "
        "environment is down",
        DB_CLEAN_FIX,
    ),
    Hazard(
        SCAN_FAILED,
        True,
        "the scan of the source did not answer (a worker may still run an older probe file)",
        "run the command again in a minute (the DAG folder syncs every 30 s)",
    ),
)
BY_NAME: dict[str, Hazard] = {h.name: h for h in HAZARDS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


@dataclass(frozen=True)
class HazardFinding:
    """A hazard found on the source: how many rows, which runs (at most :data:`MAX_IDS` pairs of
    ``(dag_id, run_id)``; ``run_id`` None for a whole DAG), and whether ``--accept-hazard`` names it."""

    hazard: Hazard
    count: int  # rows
    ids: tuple[tuple[str, str | None], ...] = ()
    detail: str = ""
    accepted: bool = False
    runs: int = 0  # distinct (dag_id, run_id) pairs, of which ``ids`` shows the first

    @property
    def name(self) -> str:
        return self.hazard.name

    @property
    def failed(self) -> bool:
        """It stops the preflight: blocking and not accepted."""
        return self.hazard.blocking and not self.accepted

    def ids_text(self) -> str:
        shown = ", ".join(f"{d}/{r}" if r is not None else d for d, r in self.ids)
        more = max(0, self.runs - len(self.ids))
        return shown + (f" and {more} more" if more else "")

    def text(self) -> str:
        """One line: what, how many, which, the fix (or that it was accepted)."""
        unit = "DAG(s)" if all(r is None for _, r in self.ids) else "run(s)"
        where = f" in {self.runs} {unit}: {self.ids_text()}" if self.ids else ""
        tail = "accepted (--accept-hazard)" if self.accepted else f"fix: {self.hazard.fix}"
        detail = f"; {self.detail}" if self.detail else ""
        return f"{self.count} rows: {self.hazard.what}{where}{detail}; {tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "blocking": self.hazard.blocking,
            "accepted": self.accepted,
            "count": self.count,
            "runs": self.runs,
            "ids": [list(pair) for pair in self.ids],
            "detail": self.detail,
            "fix": self.hazard.fix,
        }


@dataclass(frozen=True)
class Assessment:
    """What the scan means for the path to ``target``: the findings and the estimated minutes of the
    migration's UUID step."""

    target: str
    rows: Mapping[str, int]
    findings: tuple[HazardFinding, ...] = ()
    estimate_minutes: float = 0.0
    unknown: tuple[str, ...] = field(default=())  # --accept-hazard names that name no hazard

    @property
    def failed(self) -> tuple[HazardFinding, ...]:
        return tuple(f for f in self.findings if f.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "rows": dict(self.rows),
            "estimate_minutes": round(self.estimate_minutes, 1),
            "findings": [f.to_dict() for f in self.findings],
            "blocking": [f.name for f in self.failed],
        }


def crosses_major(from_version: str, hops: Iterable[tuple[str | None, str]]) -> bool:
    """Whether one of ``hops`` (from, to) is an in-place move from Airflow 2 to 3 (the one that runs
    Airflow 3's migration over 2.x data)."""
    for start, end in hops:
        start = start or from_version
        if parse_version(start)[0] == 2 and parse_version(end)[0] == 3:
            return True
    return False


def scan_conf(*, max_ids: int = MAX_IDS, xcom_limit: int = XCOM_LIMIT, key: str = "") -> dict[str, Any]:
    """What the probe's run conf asks of the scan (``scan`` key); ``key``: where in the DR bucket it
    writes its answer when that does not fit the run's note."""
    return {"version": SCAN_VERSION, "max_ids": max_ids, "xcom_limit": xcom_limit, "key": key}


def estimate_minutes(rows: Mapping[str, int]) -> float:
    """Minutes of the migration's UUID step for ``rows`` (per table): a power law ``a·n^b`` (n in
    millions of task instances and earlier tries) fitted by least squares in log space to
    :data:`MIGRATION_MEASURED` — about 1.5·n^1.5. Other steps of the migration are not modelled, and
    the database's size class differs from the 4-CPU one measured: read it as an order of magnitude."""
    millions = sum(int(rows.get(t, 0) or 0) for t in UUID_TABLES) / 1e6
    if millions <= 0:
        return 0.0
    a, b = _fit()
    return float(a * millions**b)


def _fit() -> tuple[float, float]:
    xs = [math.log(n) for n, _ in MIGRATION_MEASURED]
    ys = [math.log(m) for _, m in MIGRATION_MEASURED]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - b * mx), b


def assess(
    scan: Mapping[str, Any] | None,
    target: str,
    *,
    accepted: Iterable[str] = (),
    long_minutes: float = LONG_MIGRATION_MINUTES,
    error: str | None = None,
) -> Assessment:
    """The findings of ``scan`` (the probe's answer: ``rows`` per table and ``found`` per scanned
    category, each ``{"count", "runs", "ids"}``) for a migration to ``target``. ``scan`` None: the
    scan did not answer (finding :data:`SCAN_FAILED`, ``error`` saying why)."""
    accepted = set(accepted)
    unknown = tuple(sorted(accepted - set(BY_NAME)))

    def finding(name: str, item: Mapping[str, Any], detail: str = "") -> HazardFinding:
        ids = item.get("ids") or ()
        pairs = tuple((str(p[0]), None if p[1] is None else str(p[1])) for p in ids)[:MAX_IDS]
        runs = int(item.get("runs", len(pairs)) or 0)
        return HazardFinding(BY_NAME[name], int(item.get("count", 0)), pairs, detail, name in accepted, runs)

    if not scan or scan.get("version") != SCAN_VERSION:
        why = error or ("no answer" if not scan else f"an answer of format {scan.get('version')!r}")
        return Assessment(target, {}, (finding(SCAN_FAILED, {"count": 1}, why),), unknown=unknown)
    rows = {str(k): int(v) for k, v in (scan.get("rows") or {}).items()}
    found = scan.get("found") or {}
    findings: list[HazardFinding] = []
    for name in ("nan-json-xcom", "nul-json-xcom", "xcom-over-256mb", "pickled-xcom", "pickled-dag-run-conf"):
        item = found.get(name) or {}
        if int(item.get("count", 0) or 0) > 0:
            detail = ""
            if name == "xcom-over-256mb" and scan.get("xcom_limit") not in (None, XCOM_LIMIT):
                detail = f"measured against {scan['xcom_limit']} bytes"
            findings.append(finding(name, item, detail))
    historic = found.get("task-instances") or {}
    if parse_version(target) < NULL_DAG_VERSION_FIXED and int(historic.get("count", 0) or 0) > 0:
        findings.append(
            finding("null-dag-version-before-3.2.1", historic, f"Airflow {target} is before 3.2.1")
        )
    minutes = estimate_minutes(rows)
    if minutes >= long_minutes:
        ti = sum(rows.get(t, 0) for t in UUID_TABLES)
        findings.append(
            finding(
                "long-migration",
                {"count": ti},
                f"about {minutes:.0f} min estimated for {ti:,} task instances (tries included)",
            )
        )
    return Assessment(target, rows, tuple(findings), minutes, unknown)


def summary_text(assessment: Assessment) -> str:
    """The preflight line when nothing blocks or warns."""
    ti = sum(assessment.rows.get(t, 0) for t in UUID_TABLES)
    return (
        f"none found ({ti:,} task instances, {assessment.rows.get('xcom', 0):,} XComs, "
        f"{assessment.rows.get('dag_run', 0):,} runs); migration's UUID step about "
        f"{assessment.estimate_minutes:.1f} min"
    )


def render_db_clean_dag(template: str, today: date, *, days: int = DB_CLEAN_DEFAULT_DAYS) -> str:
    """The DAG file (text of ``template``, mwaa_iac/dr_runtime/dags/db_clean.py) that runs Airflow's
    ``airflow db clean`` over :data:`DB_CLEAN_TABLES` with a cutoff ``days`` before ``today`` (its
    run conf may set ``clean_before`` and must set ``dry_run`` false to delete anything)."""
    cutoff = (today - timedelta(days=days)).isoformat()
    return constants_block.fill(
        template,
        {"DAG_ID": DB_CLEAN_DAG_ID, "CLEAN_BEFORE": cutoff, "TABLES": DB_CLEAN_TABLES},
    )
