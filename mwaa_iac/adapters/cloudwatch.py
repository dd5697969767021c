"""CloudWatch: the scheduler heartbeat metric MWAA publishes (``AmazonMWAA/SchedulerHeartbeat``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions

from mwaa_iac.adapters import aws
from mwaa_iac.adapters.aws import aws_error

NAMESPACE = "AmazonMWAA"
METRIC = "SchedulerHeartbeat"
# How many whole minutes back a heartbeat must show for the scheduler to count as running: MWAA
# publishes the metric every minute, and CloudWatch may show the newest minutes a few minutes late.
HEARTBEAT_WINDOW_MINUTES = 5


def heartbeat_problem(minutes: list[bool]) -> str | None:
    """What :meth:`CloudWatch.heartbeat_minutes` over the last minutes says is wrong (None: a
    heartbeat was published in at least one of them)."""
    if any(minutes):
        return None
    return f"no {NAMESPACE}/{METRIC} datapoint in the last {len(minutes)} minutes"


@dataclass
class CloudWatch:
    region: str | None = None
    client: Any = None

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = aws.client("cloudwatch", self.region)

    def heartbeat_minutes(self, environment: str, minutes: int, now: datetime | None = None) -> list[bool]:
        """For each of the last ``minutes`` whole minutes (oldest first): was a heartbeat published?"""
        now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
        start = now - timedelta(minutes=minutes)
        try:
            response = self.client.get_metric_statistics(
                Namespace=NAMESPACE,
                MetricName=METRIC,
                Dimensions=[
                    {"Name": "Environment", "Value": environment},
                    {"Name": "Function", "Value": "Scheduler"},
                ],
                StartTime=start,
                EndTime=now,
                Period=60,
                Statistics=["SampleCount"],
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot read the {NAMESPACE}/{METRIC} metric of {environment}", exc) from exc
        seen = set()
        for point in response.get("Datapoints", []):
            stamp = point["Timestamp"]
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
            if point.get("SampleCount", 0) > 0:
                seen.add(stamp.replace(second=0, microsecond=0))
        return [(start + timedelta(minutes=i)) in seen for i in range(minutes)]
