"""The migration-hazard preflight of a 2 → 3 path (`cutover` and `upgrade`): the probe DAG scans the
source's database (counts and ids only) and :mod:`mwaa_iac.core.hazards` says what blocks.

One call per workflow: :func:`scan_hazards` returns the preflight's checks (a blocking finding not
named by ``--accept-hazard`` fails the preflight before anything changes) and the report of the
findings (the dry run shows it). Nothing is scanned for a path that stays on Airflow 2 or carries no
history. ``--write-db-clean-dag PATH`` writes the `airflow db clean` DAG for the user to upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from mwaa_iac.core import dr, hazards
from mwaa_iac.core.config import EnvironmentConfig
from mwaa_iac.core.planner import HopKind, PathPlan
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.backup import DrTiming, probe, probe_runner
from mwaa_iac.workflows.dr_runs import DagRunner, deploy_dr_files
from mwaa_iac.workflows.preflight import Check

CHECK_PREFIX = "migration hazard"


@dataclass
class HazardScan:
    """What the hazard preflight found: ``checks`` for the preflight, ``assessment`` (None when the
    path needs no scan), where the db-clean DAG was written."""

    checks: list[Check] = field(default_factory=list)
    assessment: hazards.Assessment | None = None
    environment: str | None = None
    db_clean_dag: str | None = None
    skipped: str | None = None  # why nothing was scanned

    def report(self) -> dict[str, Any]:
        """The dry run's ``migration_hazards``."""
        if self.assessment is None:
            return {"scanned": False, "reason": self.skipped, "db_clean_dag": self.db_clean_dag}
        return {
            "scanned": True,
            "environment": self.environment,
            **self.assessment.to_dict(),
            "db_clean_dag": self.db_clean_dag,
        }


def needs_scan(plan: PathPlan) -> bool:
    """A path whose in-place hops take Airflow 2 data through Airflow 3's migration."""
    if not plan.allowed or not plan.history_carried:
        return False
    hops = [(h.from_version, h.to_version) for h in plan.hops if h.kind is HopKind.IN_PLACE]
    return hazards.crosses_major(plan.from_version, hops)


def scan_hazards(
    plan: PathPlan,
    *,
    environment: str,
    config: EnvironmentConfig,
    runner: DagRunner,
    s3: Any,
    emit: Callable[[dict[str, Any]], None],
    accepted: Iterable[str] = (),
    db_clean_dag: str | None = None,
    today: date | None = None,
    cloudwatch: Any = None,
    run: bool = True,
    xcom_limit: int = hazards.XCOM_LIMIT,
) -> HazardScan:
    """Scan ``environment`` (the source, on ``plan.from_version``) for what Airflow 3's migration
    trips over, when ``plan`` needs it and ``run`` (False: an earlier check failed, nothing is
    scanned). Deploys the probe DAG (as the cutover's probe does) and runs it with a scan."""
    result = HazardScan(environment=environment)
    if db_clean_dag:
        text = hazards.render_db_clean_dag(dr.dag_template(hazards.DB_CLEAN_FILE), today or date.today())
        Path(db_clean_dag).write_text(text, encoding="utf-8")
        result.db_clean_dag = str(db_clean_dag)
    if not needs_scan(plan):
        result.skipped = "the path does not run Airflow 3's migration over Airflow 2 data"
        return result
    if not run:
        result.skipped = "an earlier preflight check failed"
        return result
    scan, error = _run_scan(plan, environment, config, runner, s3, emit, cloudwatch, xcom_limit)
    assessment = hazards.assess(scan, plan.to_version, accepted=accepted, error=error)
    result.assessment = assessment
    result.checks = _checks(assessment)
    emit(
        event(
            EventKind.PREFLIGHT_HAZARDS,
            environment=environment,
            **assessment.to_dict(),
            db_clean_dag=result.db_clean_dag,
        )
    )
    return result


def _run_scan(
    plan: PathPlan,
    environment: str,
    config: EnvironmentConfig,
    runner: DagRunner,
    s3: Any,
    emit: Callable[[dict[str, Any]], None],
    cloudwatch: Any,
    xcom_limit: int,
) -> tuple[dict[str, Any] | None, str | None]:
    """The scan's answer, or None and why there is none."""
    factory = dr.factory_for(plan.from_version)
    bucket = config.dr.backup_bucket
    key = dr.backup_prefix(config.dr.path_prefix, config.name, "hazards", uuid.uuid4().hex[:8]) + "/scan.json"
    try:
        vendor = deploy_dr_files(
            s3,
            config.source.bucket_name,
            config.source.dag_s3_path,
            [dr.render_probe_dag(factory, config.name)],
        )
        emit(event(EventKind.DR_VENDOR, **vendor))
        answer = probe(
            runner,
            config,
            factory,
            role="the migration-hazard scan",
            cloudwatch=cloudwatch,
            scan=hazards.scan_conf(key=key, xcom_limit=xcom_limit),
        )
    except MwaaIacError as exc:
        return None, f"the probe of {environment} failed: {exc.message}"
    if answer.get("scan_error"):
        return None, f"the scan on {environment} failed: {answer['scan_error']}"
    if "scan" in answer:
        return answer["scan"], None
    if "scan_key" not in answer:
        return None, f"{environment}'s probe did not scan (a worker may still hold an older probe file)"
    text = s3.get_text(bucket, answer["scan_key"])
    with contextlib.suppress(MwaaIacError):  # ids only, in the private DR bucket: else left to its rules
        s3.delete(bucket, answer["scan_key"])
    if text is None:
        return None, f"the scan's answer s3://{bucket}/{answer['scan_key']} is missing"
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != answer.get("scan_sha256"):
        return None, f"the scan's answer s3://{bucket}/{answer['scan_key']} differs from what was written"
    return json.loads(text), None


def _checks(assessment: hazards.Assessment) -> list[Check]:
    checks = []
    if assessment.unknown:
        checks.append(
            Check(
                "accept-hazard",
                False,
                f"unknown hazard name(s) {', '.join(assessment.unknown)}; known: {', '.join(hazards.NAMES)}",
            )
        )
    for item in assessment.findings:
        warning = "" if item.failed else "warning: "
        checks.append(Check(f"{CHECK_PREFIX} {item.name}", not item.failed, warning + item.text()))
    if not assessment.findings:
        checks.append(Check(CHECK_PREFIX + "s", True, hazards.summary_text(assessment)))
    return checks


def scanner(
    config: EnvironmentConfig,
    mwaa: Any,
    s3: Any,
    emit: Callable[[dict[str, Any]], None],
    options: Any,
    *,
    cloudwatch: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Callable[[PathPlan, str, Callable[[str, bool, str], None]], HazardScan]:
    """``scan(plan, environment, check)`` for `upgrade`'s preflight: scans, and calls ``check(name,
    ok, detail)`` for each of its checks (``options``: UpgradeOptions, with ``accept_hazards``,
    ``db_clean_dag``, ``poll_interval``, ``today``)."""
    from mwaa_iac.adapters.airflow_api import AirflowApi

    def scan(plan: PathPlan, environment: str, check: Callable[[str, bool, str], None]) -> HazardScan:
        timing = DrTiming(run_poll_seconds=min(5.0, options.poll_interval))
        runner = DagRunner(AirflowApi(mwaa, environment, sleep=sleep), timing, emit, sleep)
        result = scan_hazards(
            plan,
            environment=environment,
            config=config,
            runner=probe_runner(runner, timing),
            s3=s3,
            emit=emit,
            accepted=options.accept_hazards,
            db_clean_dag=options.db_clean_dag,
            today=options.today,
            cloudwatch=cloudwatch,
        )
        for item in result.checks:
            check(item.name, item.ok, item.detail)
        return result

    return scan
