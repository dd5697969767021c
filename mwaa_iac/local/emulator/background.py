"""Background loops: the SchedulerHeartbeat metric (each runtime syncs its own DAG folders)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mwaa_iac.local.emulator.models import DEFAULT_ACCOUNT, MwaaBackend

log = logging.getLogger(__name__)

NAMESPACE = "AmazonMWAA"
METRIC = "SchedulerHeartbeat"


class PeriodicTask:
    """Run ``fn`` every ``interval`` seconds in a daemon thread until stopped."""

    def __init__(self, name: str, interval: float, fn: Callable[[], Any]) -> None:
        self.name = name
        self.interval = interval
        self.fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.fn()
            except Exception:
                log.exception("%s failed", self.name)

    def start(self) -> PeriodicTask:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


class HeartbeatPublisher:
    """Publishes ``AmazonMWAA/SchedulerHeartbeat`` (Environment=<name>, Function=Scheduler, value 1)
    to CloudWatch (moto) for every serving environment whose scheduler is alive, as MWAA does."""

    def __init__(
        self,
        backend: MwaaBackend,
        endpoint_url: str,
        *,
        interval: float = 15.0,
        client_factory: Callable[[str, str], Any] | None = None,
    ) -> None:
        self.backend = backend
        self.endpoint_url = endpoint_url
        self.interval = interval
        self._client_factory = client_factory or self._default_client
        self._clients: dict[tuple[str, str], Any] = {}
        self._task: PeriodicTask | None = None

    def _default_client(self, account: str, region: str) -> Any:
        import boto3

        key = account if account != DEFAULT_ACCOUNT else "testing"
        return boto3.client(
            "cloudwatch",
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key="testing",
        )

    def publish_once(self) -> list[str]:
        """Publish one datapoint per live scheduler; return the environment names published."""
        published: list[str] = []
        for env in self.backend.serving_environments():
            try:
                alive = self.backend.runtime.scheduler_alive(env.name)
            except Exception as exc:
                log.warning("scheduler_alive(%s) failed: %s", env.name, exc)
                continue
            if not alive:
                continue
            key = (env.account, env.region)
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._client_factory(env.account, env.region)
            try:
                client.put_metric_data(
                    Namespace=NAMESPACE,
                    MetricData=[
                        {
                            "MetricName": METRIC,
                            "Dimensions": [
                                {"Name": "Environment", "Value": env.name},
                                {"Name": "Function", "Value": "Scheduler"},
                            ],
                            "Timestamp": datetime.now(UTC),
                            "Value": 1.0,
                            "Unit": "Count",
                        }
                    ],
                )
                published.append(env.name)
            except Exception as exc:
                log.warning("could not publish %s for %s: %s", METRIC, env.name, exc)
        return published

    def start(self) -> HeartbeatPublisher:
        self._task = PeriodicTask("mwaa-heartbeat", self.interval, self.publish_once).start()
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.stop()
