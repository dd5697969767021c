"""What `mwaa-iac upgrade` is asked to do (its options) and what it reports (its summary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mwaa_iac.core.engines import DEFAULT_ENGINE
from mwaa_iac.workflows.watch import DEFAULT_BUDGET, DEFAULT_INTERVAL, DEFAULT_MAX_INTERVAL


@dataclass
class UpgradeOptions:
    to: str | None = None
    engine: str = DEFAULT_ENGINE  # core.engines.Engine
    dry_run: bool = False
    resume: bool = False
    backup: bool = True
    constraints: str | None = None  # offline constraints file: workflows.preflight.requirements_check_for
    skip_requirements_check: bool = False
    poll_interval: float = DEFAULT_INTERVAL
    max_poll_interval: float = DEFAULT_MAX_INTERVAL
    budget_seconds: float = DEFAULT_BUDGET
    health_minutes: int = 3
    health_timeout_seconds: float | None = None
    accept_hazards: tuple[str, ...] = ()  # --accept-hazard: core.hazards names that do not block
    db_clean_dag: str | None = None  # --write-db-clean-dag: where the `airflow db clean` DAG is written
    break_lock: bool = False
    terraform_bin: str | None = None
    today: date | None = None


@dataclass
class UpgradeSummary:
    environment: str
    from_version: str
    to_version: str
    hops: list[dict[str, Any]] = field(default_factory=list)
    backup: str | None = None
    outcome: str = "succeeded"
    dry_run: bool = False
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    # into 3.x: runs in flight during the migration put back on their way (workflows/in_flight.py)
    in_flight: dict[str, Any] | None = None

    def to_dict(self) -> dict:
        extra = {} if self.in_flight is None else {"in_flight": self.in_flight}
        return {
            **extra,
            "environment": self.environment,
            "from": self.from_version,
            "to": self.to_version,
            "outcome": self.outcome,
            "dry_run": self.dry_run,
            "hops": self.hops,
            "backup": self.backup,
            "elapsed_s": round(self.elapsed_s, 1),
            "notes": self.notes,
        }
