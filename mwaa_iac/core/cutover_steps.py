"""The cutover's journal steps as data: their names, their order, the stage each belongs to (before
the freeze, in it, after), which are copy steps whose every attempt has ids of its own, and which an
aborted freeze runs again.

The cutover's flow (``workflows/cutover/flow.py``) walks ``flow()``; its fast suite and its
end-to-end kill test read the step list from here too. ``flow()`` is the order the journal records
the steps in for a given plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from mwaa_iac.core.planner import HopKind


class Step(StrEnum):
    """A journal step of the cutover (its value is the name in the journal and in events)."""

    PREFLIGHT = "preflight"
    DEPLOY_DR = "deploy-dr"
    TARGET_REQUIREMENTS = "target-requirements"
    CREATE_TARGET = "create-target"
    BACKUP_P1 = "backup-p1"
    VERIFY_BACKUP_P1 = "verify-backup-p1"
    RESTORE_P1 = "restore-p1"
    VERIFY_RESTORE_P1 = "verify-restore-p1"
    HEALTH_TARGET = "health-target"
    HEALTH_GATE_TARGET = "health-gate-target"  # journaled by Upgrade.health_gate inside health-target
    DEPLOY_DR_P2 = "deploy-dr-p2"
    PARSE_DR_P2 = "parse-dr-p2"
    CLEANUP_TARGET_P2 = "cleanup-target-p2"  # earlier releases: emptied the target before pass 2
    # The rehearsal of a freeze that holds an upgrade into 3.x, on a temporary third environment
    REHEARSAL_CREATE = "rehearsal-create"  # created like the target, at the target's version (2.11)
    REHEARSAL_RESTORE = "rehearsal-restore"  # pass 1's backup restored into it
    REHEARSAL_HOP = "rehearsal-hop"  # upgraded in place as the freeze will do it, each status timed
    REHEARSAL_CHECK = "rehearsal-check"  # the history arrived; the DAGs' import errors on 3.x
    FREEZE_GATE = "freeze-gate"  # refuses the freeze: import errors, or longer than --max-freeze-minutes
    REHEARSAL_DELETE = "rehearsal-delete"  # deleted once the gate passed (unless --keep-rehearsal)
    # Pass 2's backup and restore started before the freeze, waiting for their go signal (dr.go_key)
    ARM_COPIERS = "arm-copiers"
    RECORD_DAGS = "record-dags"
    PAUSE_SOURCE = "pause-source"
    DRAIN_SOURCE = "drain-source"
    BACKUP_P2 = "backup-p2"
    VERIFY_BACKUP_P2 = "verify-backup-p2"
    RESTORE_P2 = "restore-p2"
    VERIFY_RESTORE_P2 = "verify-restore-p2"
    CHECK_TARGET = "check-target"  # the recorded DAGs parsed on the target, none failing to import
    GO_LIVE = "go-live"
    # After go-live into 3.x with work carried from 2.x: task instances of the runs in flight at the
    # freeze that Airflow 3's scheduler cannot enqueue (no dag_version_id) are put on the latest version
    RESUME_IN_FLIGHT = "resume-in-flight"
    RETIRE_DR_DAGS = "retire-dr-dags"
    ROLLBACK = "rollback"  # journaled by `mwaa-iac rollback` after go-live (started, then done)


class Stage(StrEnum):
    """Where a step runs relative to the freeze (in the two-pass flow; a single pass freezes before
    pass 1, so its pass-1 steps and the target's upgrade run inside the freeze)."""

    BEFORE_FREEZE = "before-freeze"
    FREEZE = "freeze"
    AFTER = "after"


# The target's in-place upgrade hops: Upgrade.run_hop journals ``target-hop-<n>-<version>`` before
# the freeze and ``freeze-hop-<n>-<version>`` inside it (two passes into 3.x: after pass 2).
HOP_PREFIX = "target-hop"
FREEZE_HOP_PREFIX = "freeze-hop"

# The freeze itself: record the source's unpaused DAGs, pause them, drain what executes.
FREEZE_STEPS: tuple[Step, ...] = (Step.RECORD_DAGS, Step.PAUSE_SOURCE, Step.DRAIN_SOURCE)

# Pass labels and their copy steps (backup, verify the backup, restore, verify the restore).
PASS_1, PASS_2 = "p1", "p2"
COPY_STEPS: dict[str, tuple[Step, Step, Step, Step]] = {
    PASS_1: (Step.BACKUP_P1, Step.VERIFY_BACKUP_P1, Step.RESTORE_P1, Step.VERIFY_RESTORE_P1),
    PASS_2: (Step.BACKUP_P2, Step.VERIFY_BACKUP_P2, Step.RESTORE_P2, Step.VERIFY_RESTORE_P2),
}
# The step that deployed a pass's DR DAG files (their markers are in its result).
DEPLOY_STEP: dict[str, Step] = {PASS_1: Step.DEPLOY_DR, PASS_2: Step.DEPLOY_DR_P2}

# Steps whose every attempt (a retry, a resume after an aborted freeze) runs its DAG with a run id of
# its own (``<label>a<n>``); the backups also write a prefix of their own.
PER_ATTEMPT_STEPS: frozenset[Step] = frozenset(
    {Step.BACKUP_P1, Step.RESTORE_P1, Step.BACKUP_P2, Step.RESTORE_P2}
)

# Pass 2's copy runs inside the freeze: an aborted freeze runs it again (a fresh backup), with the
# freeze's own steps. Pass 1's copy is kept (a single pass may have upgraded the target with it).
P2_FREEZE_STEPS: tuple[Step, ...] = COPY_STEPS[PASS_2]
# Steps of earlier releases that also ran inside the freeze (journals written by them may be resumed).
LEGACY_FREEZE_PREFIXES: tuple[str, ...] = ("cleanup-target-p2-retry",)

# The rehearsal, in order (before the freeze), and the gate that reads it.
REHEARSAL_STEPS: tuple[Step, ...] = (
    Step.REHEARSAL_CREATE,
    Step.REHEARSAL_RESTORE,
    Step.REHEARSAL_HOP,
    Step.REHEARSAL_CHECK,
    Step.FREEZE_GATE,
    Step.REHEARSAL_DELETE,
)

# Steps journaled inside another step's action (the parent stays started while they run).
PARENT: dict[Step, Step] = {Step.HEALTH_GATE_TARGET: Step.HEALTH_TARGET}

STAGES: dict[Step, Stage] = {
    **{
        step: Stage.BEFORE_FREEZE
        for step in (
            Step.PREFLIGHT,
            Step.DEPLOY_DR,
            Step.TARGET_REQUIREMENTS,
            Step.CREATE_TARGET,
            *COPY_STEPS[PASS_1],
            Step.HEALTH_TARGET,
            Step.HEALTH_GATE_TARGET,
            Step.DEPLOY_DR_P2,
            Step.PARSE_DR_P2,
            Step.CLEANUP_TARGET_P2,
            *REHEARSAL_STEPS,
            Step.ARM_COPIERS,
        )
    },
    **{step: Stage.FREEZE for step in (*FREEZE_STEPS, *P2_FREEZE_STEPS, Step.CHECK_TARGET, Step.GO_LIVE)},
    Step.RESUME_IN_FLIGHT: Stage.AFTER,
    Step.RETIRE_DR_DAGS: Stage.AFTER,
    Step.ROLLBACK: Stage.AFTER,
}


def hop_step(index: int, version: str, prefix: str = HOP_PREFIX) -> str:
    """The journal step of the target's ``index``-th in-place upgrade hop (1-based), to ``version``."""
    return f"{prefix}-{index}-{version}"


def is_hop_step(name: str) -> bool:
    return name.startswith((f"{HOP_PREFIX}-", f"{FREEZE_HOP_PREFIX}-"))


def is_freeze_hop(name: str) -> bool:
    return name.startswith(f"{FREEZE_HOP_PREFIX}-")


def stage_of(name: str) -> Stage:
    """The stage of a step name (``target-hop-*`` run before the freeze in the two-pass flow, and
    ``freeze-hop-*`` inside it)."""
    if is_freeze_hop(name) or name.startswith(LEGACY_FREEZE_PREFIXES):
        return Stage.FREEZE
    if is_hop_step(name):
        return Stage.BEFORE_FREEZE
    return STAGES[Step(name)]


def redone_after_abort(name: str) -> bool:
    """Whether an aborted freeze marks this step to run again on --resume (a freeze hop only when
    the target did not move past it: see ``workflows/cutover/abort.py``)."""
    return (
        name in FREEZE_STEPS
        or name in P2_FREEZE_STEPS
        or name == Step.ARM_COPIERS
        or name == Step.CHECK_TARGET
        or is_freeze_hop(name)
        or name.startswith(LEGACY_FREEZE_PREFIXES)
    )


def flow(
    *,
    history: bool = True,
    two_pass: bool = True,
    hops: Sequence[str] = (),
    freeze_hops: int = 0,
    rehearsal: bool = False,
    into_3: bool = False,
) -> list[str]:
    """The steps of a cutover in the order its journal first records them. ``hops``: the versions
    the target is upgraded to in place, in order (none when it is created at the target version);
    the last ``freeze_hops`` of them run inside the freeze, after pass 2 (two passes into 3.x), and
    ``rehearsal`` rehearses them on a third environment before the freeze. ``into_3``: the copied
    history (runs in flight included) crosses Airflow's 2 → 3 migration on the target."""
    before = len(hops) - (freeze_hops if history and two_pass else 0)
    steps: list[str] = [Step.PREFLIGHT]
    if history:
        steps.append(Step.DEPLOY_DR)
    steps.append(Step.TARGET_REQUIREMENTS)
    if history and not two_pass:
        steps += FREEZE_STEPS  # single pass: the freeze covers the copy and the upgrade
    steps.append(Step.CREATE_TARGET)
    if history:
        steps += COPY_STEPS[PASS_1]
    steps += [hop_step(i, v) for i, v in enumerate(hops[:before], 1)]
    steps += [Step.HEALTH_TARGET, Step.HEALTH_GATE_TARGET]
    if history and two_pass:
        steps += [Step.DEPLOY_DR_P2, Step.PARSE_DR_P2]
        if rehearsal and freeze_hops:
            steps += REHEARSAL_STEPS
        steps += [Step.ARM_COPIERS, *FREEZE_STEPS, *COPY_STEPS[PASS_2]]
        steps += [hop_step(i, v, FREEZE_HOP_PREFIX) for i, v in enumerate(hops[before:], before + 1)]
    if not history:
        steps += FREEZE_STEPS  # nothing froze yet: pause the source right before go-live
    steps += [Step.CHECK_TARGET, Step.GO_LIVE]
    if history and into_3:
        steps.append(Step.RESUME_IN_FLIGHT)
    steps.append(Step.RETIRE_DR_DAGS)
    return [str(s) for s in steps]


def flow_for_plan(plan: Mapping[str, Any]) -> list[str]:
    """:func:`flow` for the plan a cutover's preflight journaled (its ``hops`` as ``[kind, from, to,
    reason]``; in-place hops are the target's)."""
    hops = [h[2] for h in plan.get("hops", []) if h and h[0] == HopKind.IN_PLACE]
    history, two_pass = bool(plan.get("history")), bool(plan.get("two_pass"))
    source = str(plan.get("source_version") or "")
    return flow(
        history=history,
        two_pass=two_pass,
        hops=hops,
        freeze_hops=int(plan.get("freeze_hops") or 0) if two_pass else 0,
        rehearsal=bool(plan.get("rehearsal")),
        into_3=bool(hops) and source.startswith("2.") and hops[-1].startswith("3."),
    )
