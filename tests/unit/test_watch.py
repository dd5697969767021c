from __future__ import annotations

import pytest

from mwaa_iac.adapters.mwaa import MwaaApiError
from mwaa_iac.core.status import Observation, Outcome, ready_for_update
from mwaa_iac.events import EventKind
from mwaa_iac.workflows.watch import Watcher, WatchTimeoutError


class Script:
    """A scripted GetEnvironment: each poll returns the next item (an Observation or an exception)
    and advances a fake clock by the watcher's sleeps."""

    def __init__(self, items: list) -> None:
        self.items = list(items)
        self.now = 0.0
        self.sleeps: list[float] = []
        self.polls = 0

    def observe(self) -> Observation:
        self.polls += 1
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, Exception):
            raise item
        return item

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def watcher(self, **kwargs) -> Watcher:
        events: list = []
        w = Watcher(self.observe, clock=lambda: self.now, sleep=self.sleep, on_event=events.append, **kwargs)
        w.events = events  # type: ignore[attr-defined]
        return w


def obs(status: str, version: str = "2.10.3", last: str | None = "SUCCESS", error: str | None = None):
    return Observation(status, version, last, error)


THROTTLED = MwaaApiError(
    "GetEnvironment: ThrottlingException: Rate exceeded", code="ThrottlingException", retryable=True
)


def test_success_sequence_with_durations() -> None:
    script = Script(
        [
            obs("UPDATING", "2.9.2", "PENDING"),
            obs("CREATING_SNAPSHOT", "2.9.2", "PENDING"),
            obs("UPDATING", "2.9.2", "PENDING"),
            obs("AVAILABLE"),
        ]
    )
    result = script.watcher(interval=15, expect_version="2.10.3").run()
    assert result.outcome is Outcome.SUCCEEDED and result.observation.airflow_version == "2.10.3"
    assert set(result.durations) == {"UPDATING", "CREATING_SNAPSHOT", "AVAILABLE"}
    assert all(s >= 15 for s in script.sleeps)


def test_never_polls_faster_than_interval_and_backs_off_while_unchanged() -> None:
    script = Script([obs("UPDATING", "2.9.2", "PENDING")] * 6 + [obs("AVAILABLE")])
    script.watcher(interval=15, max_interval=40, expect_version="2.10.3").run()
    assert min(script.sleeps) >= 15 and max(script.sleeps) == 40
    assert script.sleeps == sorted(script.sleeps)


def test_throttling_and_transient_errors_are_tolerated() -> None:
    script = Script([THROTTLED, obs("UPDATING", "2.9.2", "PENDING"), THROTTLED, THROTTLED, obs("AVAILABLE")])
    w = script.watcher(interval=15, expect_version="2.10.3")
    result = w.run()
    assert result.outcome is Outcome.SUCCEEDED
    assert [e.kind for e in w.events].count(EventKind.WATCH_POLL_ERROR) == 3


def test_non_retryable_error_is_raised() -> None:
    script = Script([MwaaApiError("denied", code="AccessDeniedException", retryable=False)])
    with pytest.raises(MwaaApiError, match="denied"):
        script.watcher(interval=15).run()


def test_failed_update_rolls_back_with_error() -> None:
    script = Script(
        [
            obs("UPDATING", "2.9.2", "PENDING"),
            obs("ROLLING_BACK", "2.9.2", "PENDING"),
            obs("UPDATE_FAILED", "2.9.2", "FAILED", "UPDATE_FAILED: requirements did not install"),
        ]
    )
    result = script.watcher(interval=15, expect_version="2.10.3").run()
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.observation.last_update_error == "UPDATE_FAILED: requirements did not install"
    assert "ROLLING_BACK" in result.durations


def test_failed_rollback_is_unavailable() -> None:
    script = Script([obs("ROLLING_BACK", "2.9.2", "PENDING"), obs("UNAVAILABLE", "2.9.2", "FAILED")])
    assert script.watcher(interval=1).run().outcome is Outcome.NEEDS_HUMAN


def test_stale_available_before_update_shows_is_not_success() -> None:
    script = Script([obs("AVAILABLE", "2.9.2"), obs("UPDATING", "2.9.2", "PENDING"), obs("AVAILABLE")])
    result = script.watcher(interval=15, expect_version="2.10.3").run()
    assert result.outcome is Outcome.SUCCEEDED and script.polls == 3


def test_available_on_old_version_after_work_is_not_success() -> None:
    script = Script([obs("UPDATING", "2.9.2", "PENDING"), obs("AVAILABLE", "2.9.2", "FAILED")])
    assert script.watcher(interval=15, expect_version="2.10.3").run().outcome is Outcome.ROLLED_BACK


def test_maintenance_keeps_waiting() -> None:
    script = Script([obs("MAINTENANCE", "2.9.2"), obs("UPDATING", "2.9.2", "PENDING"), obs("AVAILABLE")])
    assert script.watcher(interval=15, expect_version="2.10.3").run().outcome is Outcome.SUCCEEDED


def test_budget_exhausted_says_how_to_resume() -> None:
    script = Script([obs("UPDATING", "2.9.2", "PENDING")])
    with pytest.raises(WatchTimeoutError) as info:
        script.watcher(interval=15, max_interval=60, budget=600, expect_version="2.10.3").run()
    assert "still UPDATING" in info.value.message and "--resume" in info.value.hint
    assert script.now <= 600


@pytest.mark.parametrize(
    ("observation", "reason"),
    [
        (obs("AVAILABLE"), None),
        (obs("UPDATE_FAILED", last="FAILED"), None),
        (obs("MAINTENANCE"), "maintenance window"),
        (obs("PENDING"), "VPC endpoints"),
        (obs("UPDATING", last="PENDING"), "not AVAILABLE"),
        (obs("AVAILABLE", last="PENDING"), "still PENDING"),
    ],
)
def test_ready_for_update(observation: Observation, reason: str | None) -> None:
    result = ready_for_update(observation)
    assert (result is None) if reason is None else (reason in result)


def test_the_previous_updates_failure_read_right_after_update_environment_is_not_this_ones() -> None:
    """A hop issued again after UPDATE_FAILED: the first read can still be the old failure."""
    old = Observation("UPDATE_FAILED", "2.9.2", "FAILED", "PIP_FAILED: old", last_update_created_at=100.0)
    new = [
        Observation("UPDATING", "2.9.2", "PENDING", None, last_update_created_at=1000.0),
        Observation("AVAILABLE", "2.10.3", "SUCCESS", None, last_update_created_at=1000.0),
    ]
    script = Script([old, *new])
    result = script.watcher(interval=15, expect_version="2.10.3", not_before=999.0).run()
    assert result.outcome is Outcome.SUCCEEDED and script.polls == 3
    # without knowing when the update was issued (a resumed watch), the read is taken as it is
    assert Script([old]).watcher(interval=15).run().outcome is Outcome.ROLLED_BACK
