"""Watch an MWAA environment until an update (or create/delete) reaches a terminal status.

Polls GetEnvironment with backoff (never faster than ``interval``; AWS: 15 s), tolerates throttling
and transient errors, keeps going after Terraform's own waiter has given up, and reports every
change as a :class:`WatchEvent` for the CLI to render (rich for people, JSON lines for CI).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mwaa_iac.adapters.mwaa import MwaaApiError
from mwaa_iac.core.status import Observation, Outcome, classify
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event

DEFAULT_INTERVAL = 15.0
DEFAULT_MAX_INTERVAL = 60.0
DEFAULT_BUDGET = 3 * 3600.0


class WatchTimeoutError(MwaaIacError):
    """The budget ran out before the environment reached a terminal status."""


@dataclass(frozen=True)
class WatchEvent:
    kind: EventKind  # WATCH_STATUS (a new status), WATCH_POLL (same status), WATCH_POLL_ERROR (retrying)
    elapsed: float
    status: str | None
    time_in_status: float
    observation: Observation | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return event(
            self.kind,
            elapsed_s=round(self.elapsed, 1),
            status=self.status,
            time_in_status_s=round(self.time_in_status, 1),
            **({"observation": self.observation.to_dict()} if self.observation else {}),
            **({"error": self.error} if self.error else {}),
        )


@dataclass
class WatchResult:
    outcome: Outcome
    observation: Observation
    elapsed: float
    durations: dict[str, float] = field(default_factory=dict)  # seconds spent in each status

    def to_dict(self) -> dict:
        return {
            "outcome": str(self.outcome),
            "final": self.observation.to_dict(),
            "elapsed_s": round(self.elapsed, 1),
            "durations_s": {k: round(v, 1) for k, v in self.durations.items()},
        }


STALE_SKEW = 5.0  # seconds of clock difference tolerated between this machine and MWAA


@dataclass
class Watcher:
    observe: Callable[[], Observation]
    interval: float = DEFAULT_INTERVAL
    max_interval: float = DEFAULT_MAX_INTERVAL
    backoff: float = 1.5
    budget: float = DEFAULT_BUDGET
    expect_version: str | None = None
    # Epoch seconds at which the update being watched was issued: a terminal status whose
    # LastUpdate began earlier is the previous update's (GetEnvironment right after
    # UpdateEnvironment can still show it), so it is not this update's outcome.
    not_before: float | None = None
    on_event: Callable[[WatchEvent], None] | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> WatchResult:
        start = self.clock()
        delay = self.interval
        current: str | None = None
        entered = start
        durations: dict[str, float] = {}
        seen_work = False
        while True:
            now = self.clock()
            try:
                obs = self.observe()
            except MwaaApiError as exc:
                if not exc.retryable:
                    raise
                self._emit(
                    WatchEvent(
                        EventKind.WATCH_POLL_ERROR, now - start, current, now - entered, error=exc.message
                    )
                )
                delay = min(delay * self.backoff, self.max_interval)
                self._wait_or_give_up(start, delay, current)
                continue
            now = self.clock()
            if obs.status != current:
                if current is not None:
                    durations[current] = durations.get(current, 0.0) + (now - entered)
                current, entered = obs.status, now
                delay = self.interval
                self._emit(WatchEvent(EventKind.WATCH_STATUS, now - start, current, 0.0, obs))
            else:
                self._emit(WatchEvent(EventKind.WATCH_POLL, now - start, current, now - entered, obs))
                delay = min(delay * self.backoff, self.max_interval)
            outcome = classify(obs)
            if outcome is Outcome.WAITING:
                seen_work = True
            elif (
                outcome is Outcome.SUCCEEDED
                and self.expect_version
                and obs.airflow_version != self.expect_version
            ):
                # Right after UpdateEnvironment the old AVAILABLE can still be reported: wait for
                # the update to show. After work was seen, AVAILABLE on the old version means it
                # did not take.
                outcome = Outcome.ROLLED_BACK if seen_work else Outcome.WAITING
            if outcome is not Outcome.WAITING and not seen_work and self._stale(obs):
                outcome = Outcome.WAITING
            if outcome is not Outcome.WAITING:
                durations[current] = durations.get(current, 0.0) + (now - entered)
                return WatchResult(outcome, obs, now - start, durations)
            self._wait_or_give_up(start, delay, current)

    def _stale(self, obs: Observation) -> bool:
        created = obs.last_update_created_at
        return self.not_before is not None and created is not None and created < self.not_before - STALE_SKEW

    def _wait_or_give_up(
        self, start: float, delay: float, status: str | None, obs: Observation | None = None
    ) -> None:
        elapsed = self.clock() - start
        if elapsed + delay > self.budget:
            raise WatchTimeoutError(
                f"gave up waiting after {elapsed / 60:.0f} min; "
                f"the environment is still {status or 'unknown'}",
                hint="MWAA keeps working: rerun the command with --resume to keep watching "
                "(or raise --budget-minutes)",
            )
        self.sleep(delay)

    def _emit(self, event: WatchEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)
