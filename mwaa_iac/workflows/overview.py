"""`mwaa-iac status`: read every source the overview needs — the deployment record, routing, the
journals of the last cutover and upgrade, the lock, GetEnvironment for each colour — and let
:mod:`mwaa_iac.core.overview` decide. Reads only: changes nothing."""

from __future__ import annotations

import time
from typing import Any

from mwaa_iac.adapters.mwaa import EnvironmentNotFoundError, MwaaApiError
from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.overview import ColourView, JournalRecord, LockView, Overview, overview
from mwaa_iac.workflows import live
from mwaa_iac.workflows.journal import LOCK_NAME, Journal, Lock, is_stale
from mwaa_iac.workflows.state import StateStore

UPGRADE_JOURNAL = "upgrade.journal.jsonl"  # mwaa_iac.workflows.upgrade.JOURNAL


def read_colour(
    mwaa: Any, config: EnvironmentConfig, color: Color
) -> tuple[ColourView, dict[str, Any] | None]:
    """One colour's GetEnvironment (None when it does not exist or cannot be read)."""
    name = config.environment_name(color)
    recorded = config.deployment.version_of(color)
    try:
        environment = mwaa.get_environment(name)
    except EnvironmentNotFoundError:
        return ColourView(color, name, recorded, exists=False), None
    except MwaaApiError as exc:
        return ColourView(color, name, recorded, exists=True, error=exc.message), None
    last = environment.get("LastUpdate") or {}
    error = last.get("Error") or {}
    error_text = ": ".join(x for x in (error.get("ErrorCode"), error.get("ErrorMessage")) if x) or None
    view = ColourView(
        color,
        name,
        recorded,
        exists=True,
        status=environment.get("Status"),
        version=environment.get("AirflowVersion"),
        last_update=last.get("Status"),
        last_update_error=error_text,
    )
    return view, environment


def read_journal(store: StateStore, name: str) -> JournalRecord | None:
    journal = Journal.load(store, name)
    if journal is None:
        return None
    return JournalRecord(journal.workflow, journal.run_id, journal.params, journal.entries, journal.where)


def read_lock(store: StateStore) -> LockView | None:
    if store.read(LOCK_NAME) is None:
        return None
    holder = Lock(store).holder()
    return LockView(holder, is_stale(holder))


def read_overview(
    env: str,
    config: EnvironmentConfig,
    mwaa: Any,
    routing: Any,
    store: StateStore,
    *,
    now: float | None = None,
) -> Overview:
    """The deployment at a glance (see :func:`mwaa_iac.core.overview.overview`)."""
    colours: list[ColourView] = []
    described: dict[str, dict[str, Any] | None] = {}
    for color in Color:
        view, environment = read_colour(mwaa, config, color)
        colours.append(view)
        described[view.name] = environment
    cutover = read_journal(store, live.CUTOVER_JOURNAL)
    upgrade = read_journal(store, UPGRADE_JOURNAL)
    claims = live.read_claims(config, routing, store, described.get, journal=None)
    journals = [j for j in (cutover, upgrade) if j is not None]
    return overview(
        env,
        claims,
        colours,
        journals,
        read_lock(store),
        now=time.time() if now is None else now,
        record_color=config.active_color,
    )
