"""The health gate after an in-place change: the scheduler heartbeat (CloudWatch
``AmazonMWAA/SchedulerHeartbeat``) present in each of N consecutive whole minutes that began after
the environment came back (docs/design.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mwaa_iac.adapters.cloudwatch import CloudWatch
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.journal import Journal


class HealthGateError(MwaaIacError):
    """The scheduler heartbeat did not show up for the required minutes after the upgrade."""


@dataclass
class HealthGate:
    environment: str
    minutes: int
    timeout_seconds: float | None
    poll_interval: float
    cloudwatch: CloudWatch | None
    emit: Callable[[dict[str, Any]], None]
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    now: Callable[[], datetime]

    def run(self, journal: Journal, step: str, failed: Callable[[], None]) -> None:
        """Journal step ``step``: done when healthy (skipped with 0 minutes or no CloudWatch);
        ``failed()`` is called before HealthGateError is raised at the timeout."""
        minutes = self.minutes
        if journal.state(step) == "done":
            return
        if minutes <= 0 or self.cloudwatch is None:
            journal.done(step, skipped=True)
            return
        # Only heartbeats after the environment reached AVAILABLE count (those from before the update
        # say nothing about the new version): minutes that begin at or after the gate first started
        # (kept in the journal, so a resumed gate does not move it).
        recorded = journal.data(step).get("since")
        since = datetime.fromisoformat(recorded) if recorded else self.now()
        if not recorded:
            journal.started(step, since=since.isoformat())
        first_minute = since.replace(second=0, microsecond=0)
        if first_minute < since:
            first_minute += timedelta(minutes=1)
        timeout = self.timeout_seconds or (minutes + 5) * 60
        start = self.clock()
        while True:
            now = self.now()
            buckets = self.cloudwatch.heartbeat_minutes(self.environment, minutes + 1, now=now)
            # The current, still-filling minute does not count; the N before it must all have data
            # and all begin after `since`.
            recent = buckets[:-1] if len(buckets) > minutes else buckets
            oldest = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes + 1)
            healthy = len(recent) == minutes and all(recent) and oldest >= first_minute
            self.emit(event(EventKind.HEALTH_POLL, minutes_with_heartbeat=sum(recent), required=minutes))
            if healthy:
                journal.done(step, minutes=minutes)
                self.emit(event(EventKind.HEALTH_OK, minutes=minutes))
                return
            if self.clock() - start > timeout:
                failed()
                raise HealthGateError(
                    f"{self.environment}: the scheduler heartbeat was not present for {minutes} consecutive "
                    f"minutes within {timeout / 60:.0f} min after the upgrade",
                    hint="check the scheduler logs in CloudWatch; the upgrade itself completed",
                )
            self.sleep(min(30.0, max(self.poll_interval, 5.0)))
