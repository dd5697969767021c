"""Read which colour is live from every source of truth, and refuse a command that would act on the
wrong one (the decision is :mod:`mwaa_iac.core.live`'s).

Every command that deletes, overwrites, pauses or upgrades a colour calls :func:`require` first:
``cleanup`` (delete the inactive colour), ``restore`` (overwrite it), ``rollback`` (pause the live
one), ``upgrade`` (the live one in place) and ``cutover`` (pause the source, create the target).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.cutover_steps import Step
from mwaa_iac.core.live import DNS, RECORD, ROUTING, Claim, Role, journal_claim, refusal, routing_claim
from mwaa_iac.errors import LiveColourError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.journal import Journal
from mwaa_iac.workflows.state import StateStore

CUTOVER_JOURNAL = "cutover.journal.jsonl"


def cutover_claim(journal: Journal | None, *, resuming_rollback: bool = False) -> Claim:
    """The last cutover journal's claim (a rollback recorded in it included)."""
    if journal is None:
        return journal_claim(
            run_id=None, source_color=None, go_live=None, go_live_aborted=False, rollback=None
        )
    last_go_live = next((e for e in reversed(journal.entries) if e.get("step") == Step.GO_LIVE), None)
    rollback = journal.state(Step.ROLLBACK)
    return journal_claim(
        run_id=journal.run_id,
        source_color=Color(journal.params["source_color"]),
        go_live=journal.state(Step.GO_LIVE),
        go_live_aborted=bool(last_go_live and last_go_live.get("data", {}).get("aborted")),
        rollback=None if (resuming_rollback and rollback == "started") else rollback,
    )


def read_claims(
    config: EnvironmentConfig,
    routing: Any,
    store: StateStore,
    describe: Callable[[str], dict[str, Any] | None] | None = None,
    *,
    journal: Journal | None = None,
    resuming_rollback: bool = False,
) -> list[Claim]:
    """Every source's claim: the record, the SSM parameter, the Route 53 record when configured
    (its host matched against each colour's web server, read with ``describe``), the journal."""
    names = {color: config.environment_name(color) for color in Color}
    claims = [
        Claim(RECORD, config.active_color, f"deployment.active_color is {config.active_color}"),
    ]
    parameter = config.routing.ssm_parameter_name
    claims.append(routing_claim(ROUTING, routing.read(parameter), names, f"SSM {parameter}"))
    zone, record = config.routing.route53_zone_id, config.routing.route53_record_name
    if zone and record:
        host = routing.read_record(zone, record)
        value = None
        if host is not None:
            value = {"name": host}
            for name in names.values():
                environment = describe(name) if describe is not None else None
                url = (environment or {}).get("WebserverUrl") or ""
                if url and url.removeprefix("https://").removeprefix("http://").split("/")[0] == host:
                    value = {"name": name}
        claims.append(routing_claim(DNS, value, names, f"Route 53 {record}"))
    if journal is None:
        journal = Journal.load(store, CUTOVER_JOURNAL)
    claims.append(cutover_claim(journal, resuming_rollback=resuming_rollback))
    return claims


def require(
    action: str,
    color: Color,
    role: Role,
    claims: list[Claim],
    config: EnvironmentConfig,
    env: str,
    *,
    break_glass: bool = False,
    emit: Callable[[dict[str, Any]], None] = lambda e: None,
) -> None:
    """Raise :class:`LiveColourError` when ``action`` may not act on ``color``. With
    ``break_glass`` the refusal is reported (event ``live.override``) and the command goes on."""
    found = refusal(action, color, role, claims, env)
    if found is None:
        return
    environment = config.environment_name(color)
    message = found.message(environment)
    if break_glass:
        emit(
            event(
                EventKind.LIVE_OVERRIDE,
                action=action,
                environment=environment,
                reason=found.reason,
                claims=[c.to_dict() for c in claims],
            )
        )
        return
    raise LiveColourError(
        message,
        claims=[c.to_dict() for c in claims],
        hint=found.fix + "; nothing was changed",
    )


def describer(mwaa: Any) -> Callable[[str], dict[str, Any] | None]:
    """GetEnvironment, None when the environment does not exist."""

    def describe(name: str) -> dict[str, Any] | None:
        return mwaa.get_environment(name) if mwaa.exists(name) else None

    return describe
