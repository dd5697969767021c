"""MWAA environment statuses and what they mean for a workflow waiting on an update. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    WAITING = "waiting"  # still working: keep polling
    SUCCEEDED = "succeeded"  # AVAILABLE and the last update succeeded
    ROLLED_BACK = "rolled-back"  # UPDATE_FAILED: the update failed, the old version serves again
    NEEDS_HUMAN = "needs-human"  # UNAVAILABLE: the rollback failed too
    CREATE_FAILED = "create-failed"
    DELETED = "deleted"


IN_PROGRESS = frozenset({"CREATING", "UPDATING", "CREATING_SNAPSHOT", "ROLLING_BACK", "DELETING", "PENDING"})
# MAINTENANCE is AWS working on the environment during its window: wait, never start an update in it.
WAIT_STATUSES = IN_PROGRESS | {"MAINTENANCE"}


@dataclass(frozen=True)
class Observation:
    """One GetEnvironment reading reduced to what the watcher needs."""

    status: str
    airflow_version: str | None = None
    last_update_status: str | None = None  # SUCCESS | PENDING | FAILED
    last_update_error: str | None = None  # "ErrorCode: ErrorMessage"
    last_update_created_at: float | None = None  # LastUpdate.CreatedAt, epoch seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "airflow_version": self.airflow_version,
            "last_update_status": self.last_update_status,
            "last_update_error": self.last_update_error,
        }


def classify(obs: Observation) -> Outcome:
    """Where an update stands, from one observation."""
    status = obs.status
    if status in WAIT_STATUSES:
        return Outcome.WAITING
    if status == "AVAILABLE":
        # AVAILABLE with a last update still PENDING happens briefly at the start: keep waiting.
        if obs.last_update_status == "PENDING":
            return Outcome.WAITING
        if obs.last_update_status == "FAILED":
            return Outcome.ROLLED_BACK
        return Outcome.SUCCEEDED
    if status == "UPDATE_FAILED":
        return Outcome.ROLLED_BACK
    if status == "UNAVAILABLE":
        return Outcome.NEEDS_HUMAN
    if status == "CREATE_FAILED":
        return Outcome.CREATE_FAILED
    if status == "DELETED":
        return Outcome.DELETED
    return Outcome.WAITING  # an unknown, newer status: keep watching rather than guess


def ready_for_update(obs: Observation) -> str | None:
    """Why an update must not start now, or None when it may."""
    if obs.status == "MAINTENANCE":
        return "the environment is in its weekly maintenance window (MAINTENANCE); try after it ends"
    if obs.status == "PENDING":
        return "the environment is PENDING (waiting for VPC endpoints); create them first"
    if obs.status not in ("AVAILABLE", "UPDATE_FAILED"):
        return f"the environment is {obs.status}, not AVAILABLE"
    if obs.last_update_status == "PENDING":
        return "an update of the environment is still PENDING"
    return None
