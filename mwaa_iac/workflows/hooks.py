"""Pieces the CLI hands to the workflows: the safety backup `Upgrade` takes before its first hop, and
the wait `cleanup` runs until a deleted environment is gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mwaa_iac.events import Emit

if TYPE_CHECKING:
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.core.config import EnvironmentConfig
    from mwaa_iac.workflows.upgrade import BackupHook


def safety_backup_hook(
    config: EnvironmentConfig, mwaa: MwaaClient, emit: Emit, *, poll_interval: float
) -> BackupHook:
    """``hook(environment name, version) -> backup location``: an mwaa-dr backup into the DR bucket,
    its DAG runs polled at most every 5 seconds (or ``poll_interval`` when shorter)."""

    def safety_backup(name: str, version: str) -> str:
        from mwaa_iac.adapters.storage import S3
        from mwaa_iac.workflows.backup import DrTiming, take_backup

        timing = DrTiming(run_poll_seconds=min(5.0, poll_interval))
        result = take_backup(config, name, mwaa=mwaa, s3=S3(config.region), emit=emit, timing=timing)
        return result["location"]

    return safety_backup


def wait_gone(mwaa: MwaaClient, name: str, *, poll_interval: float, emit: Emit) -> None:
    """Watch environment ``name`` until it is deleted (not found counts as DELETED)."""
    from mwaa_iac.adapters.mwaa import EnvironmentNotFoundError
    from mwaa_iac.core.status import Observation
    from mwaa_iac.workflows.watch import Watcher

    def observe() -> Observation:
        try:
            return mwaa.observe(name)
        except EnvironmentNotFoundError:
            return Observation("DELETED")

    Watcher(
        observe,
        interval=poll_interval,
        max_interval=max(60.0, poll_interval),
        on_event=lambda event: emit(event.to_dict()),
    ).run()


def gone_waiter(mwaa: MwaaClient, *, poll_interval: float, emit: Emit) -> Callable[[str], None]:
    """``wait_gone`` bound to a client, as `cleanup` takes it (``watch(name)``)."""
    return lambda name: wait_gone(mwaa, name, poll_interval=poll_interval, emit=emit)
