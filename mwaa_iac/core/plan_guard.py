"""Read a Terraform plan, and refuse the plans that would destroy a live MWAA environment.

Pure: takes the plan as ``terraform show -json`` prints it (Terraform's documented JSON plan format,
``format_version`` 1.x) and returns dataclasses. No I/O.

Why a guard at all: the AWS provider replaces an ``aws_mwaa_environment`` (delete, then create) for a
major ``airflow_version`` change (2.x → 3.x) and for changes to ``name``, ``kms_key``,
``endpoint_management`` or the subnets. A replacement or a delete throws away the environment's
metadata database, with its DAG run history, task instances, variables and connections. A major
upgrade has to go through UpdateEnvironment instead (``mwaa-iac upgrade``, which then runs
``terraform apply -refresh-only`` so the state matches), or blue/green (``mwaa-iac cutover``). A
plan may delete an environment only when the workflow retires that slot, and says so through
``retiring``.

Routing parameters (our call): the SSM parameter that publishes the active environment's name is the
contract callers read. Deleting it, or replacing it (which deletes it first; only a change of name
forces that), leaves them with nothing to read. The guard therefore also refuses the replacement or
deletion of the ``aws_ssm_parameter`` objects whose names the caller passes in
``routing_parameters``, unless that name is in ``retiring`` too (a teardown). The parameters are
named explicitly rather than guessed from resource addresses; without names this rule does nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mwaa_iac.errors import MwaaIacError, PlanGuardError

MWAA_ENVIRONMENT = "aws_mwaa_environment"
SSM_PARAMETER = "aws_ssm_parameter"
SUPPORTED_FORMAT_MAJOR = 1

SENSITIVE = "(sensitive)"
"""Shown instead of a sensitive output value."""


class PlanFormatError(MwaaIacError):
    """The input is not a Terraform JSON plan this version understands."""


class Action(StrEnum):
    """What a plan does to one resource instance (or output)."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NO_OP = "no-op"
    READ = "read"
    FORGET = "forget"  # removed from state, left running (a `removed` block with destroy = false)


CHANGING_ACTIONS = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.FORGET})
DESTRUCTIVE_ACTIONS = frozenset({Action.REPLACE, Action.DELETE})

# Attributes whose change makes the AWS provider replace an MWAA environment (besides a major version).
_CREATE_ONLY_ATTRIBUTES = ("name", "kms_key", "endpoint_management", "network_configuration")

_KNOWN_ACTIONS: dict[tuple[str, ...], Action] = {
    (): Action.NO_OP,
    ("no-op",): Action.NO_OP,
    ("create",): Action.CREATE,
    ("read",): Action.READ,
    ("update",): Action.UPDATE,
    ("delete", "create"): Action.REPLACE,
    ("create", "delete"): Action.REPLACE,
    ("delete",): Action.DELETE,
    ("forget",): Action.FORGET,
    # Replaced, but the old object is only forgotten (destroy = false): for MWAA the new
    # environment starts empty, which is what the guard cares about.
    ("create", "forget"): Action.REPLACE,
}


def classify_actions(actions: Sequence[str]) -> Action:
    """Map a ``change.actions`` list of the JSON plan format to one :class:`Action`.

    Lists this version does not know are read conservatively: anything that deletes and creates is a
    replacement, anything that deletes is a delete. A list with no word we know is an error.
    """
    key = tuple(str(action) for action in actions)
    if key in _KNOWN_ACTIONS:
        return _KNOWN_ACTIONS[key]
    words = set(key)
    if "delete" in words:
        return Action.REPLACE if words & {"create", "update"} else Action.DELETE
    for word, action in (("create", Action.CREATE), ("update", Action.UPDATE), ("forget", Action.FORGET)):
        if word in words:
            return action
    if "read" in words:
        return Action.READ
    if words <= {"no-op"}:  # e.g. a repeated "no-op": nothing happens
        return Action.NO_OP
    raise PlanFormatError(f"unknown Terraform plan actions {list(key)!r}")


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceChange:
    """The planned change of one resource instance."""

    address: str
    type: str
    mode: str  # "managed" or "data"
    action: Action
    actions: tuple[str, ...]  # as Terraform wrote them
    action_reason: str | None = None
    replace_paths: tuple[tuple[str | int, ...], ...] = ()
    previous_address: str | None = None  # set when the resource was moved
    deposed: str | None = None  # set for a deposed object (left over from create_before_destroy)
    importing: bool = False
    name_before: str | None = None  # the resource's `name` attribute, when it has one
    name_after: str | None = None  # None also when known only after apply
    airflow_version_before: str | None = None  # aws_mwaa_environment only
    airflow_version_after: str | None = None  # aws_mwaa_environment only; None also when unknown

    @property
    def key(self) -> str:
        """The address, plus the deposed key for a deposed object (unique within a plan)."""
        return f"{self.address} (deposed {self.deposed})" if self.deposed else self.address

    @property
    def changes_state(self) -> bool:
        moved = self.previous_address is not None and self.previous_address != self.address
        return self.action in CHANGING_ACTIONS or self.importing or moved

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "type": self.type,
            "mode": self.mode,
            "action": str(self.action),
            "actions": list(self.actions),
            "action_reason": self.action_reason,
            "replace_paths": [list(path) for path in self.replace_paths],
            "previous_address": self.previous_address,
            "deposed": self.deposed,
            "importing": self.importing,
            "name_before": self.name_before,
            "name_after": self.name_after,
            "airflow_version_before": self.airflow_version_before,
            "airflow_version_after": self.airflow_version_after,
        }


@dataclass(frozen=True)
class EnvironmentChange:
    """The planned change of one ``aws_mwaa_environment``: its name and Airflow version, old → new.

    A ``None`` value means "no value" (nothing before a create, nothing after a delete) or "not known
    until apply"; ``unknown_after`` names the attributes in the second case.
    """

    address: str
    action: Action
    name_before: str | None
    name_after: str | None
    airflow_version_before: str | None
    airflow_version_after: str | None
    unknown_after: tuple[str, ...] = ()
    action_reason: str | None = None
    replace_paths: tuple[tuple[str | int, ...], ...] = ()
    deposed: str | None = None

    @property
    def name(self) -> str | None:
        """The environment's name: the existing one's, else the one to be created."""
        return self.name_before if self.name_before is not None else self.name_after

    @property
    def version_changed(self) -> bool:
        if "airflow_version" in self.unknown_after:
            return True
        return (
            self.airflow_version_before is not None
            and self.airflow_version_after is not None
            and self.airflow_version_before != self.airflow_version_after
        )

    @property
    def major_version_change(self) -> bool:
        """Whether the Airflow major version changes (2.x ↔ 3.x)."""
        before, after = _major(self.airflow_version_before), _major(self.airflow_version_after)
        return before is not None and after is not None and before != after

    def describe_version(self) -> str:
        before = self.airflow_version_before or "(none)"
        after = (
            "(known after apply)" if "airflow_version" in self.unknown_after else self.airflow_version_after
        )
        return f"{before} → {after or '(none)'}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "action": str(self.action),
            "name": self.name,
            "name_before": self.name_before,
            "name_after": self.name_after,
            "airflow_version_before": self.airflow_version_before,
            "airflow_version_after": self.airflow_version_after,
            "unknown_after": list(self.unknown_after),
            "major_version_change": self.major_version_change,
            "action_reason": self.action_reason,
            "replace_paths": [list(path) for path in self.replace_paths],
            "deposed": self.deposed,
        }


@dataclass(frozen=True)
class OutputChange:
    """The planned change of one root module output. Sensitive values are never kept."""

    name: str
    action: Action
    before: Any = None
    after: Any = None
    after_known: bool = True
    sensitive: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": str(self.action),
            "before": self.before,
            "after": self.after,
            "after_known": self.after_known,
            "sensitive": self.sensitive,
        }


@dataclass(frozen=True)
class PlanSummary:
    """What a plan would do, per resource instance, per MWAA environment and per output."""

    resources: tuple[ResourceChange, ...] = ()
    environments: tuple[EnvironmentChange, ...] = ()
    outputs: tuple[OutputChange, ...] = ()
    drifted: tuple[str, ...] = ()
    """Addresses Terraform found changed outside Terraform (``resource_drift``). Informational:
    drift alone is not a change this plan makes."""
    format_version: str | None = None
    terraform_version: str | None = None
    errored: bool = False

    @property
    def has_changes(self) -> bool:
        """Whether applying the plan would change anything: a resource created, updated, replaced,
        deleted, forgotten, imported or moved, or an output changed. Data source reads do not count."""
        return any(r.changes_state for r in self.resources) or any(
            o.action != Action.NO_OP for o in self.outputs
        )

    @property
    def counts(self) -> dict[str, int]:
        """Number of resource instances per action, every action present."""
        counts = {str(action): 0 for action in Action}
        for resource in self.resources:
            counts[str(resource.action)] += 1
        return counts

    @property
    def changes(self) -> tuple[ResourceChange, ...]:
        """The resource instances the plan changes (no no-ops, no reads)."""
        return tuple(r for r in self.resources if r.changes_state)

    def resource(self, address: str) -> ResourceChange | None:
        return next((r for r in self.resources if r.address == address and r.deposed is None), None)

    def environment(self, name_or_address: str) -> EnvironmentChange | None:
        """The change of the environment with this name (before or after) or address."""
        for env in self.environments:
            if name_or_address in (env.address, env.name_before, env.name_after):
                return env
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "has_changes": self.has_changes,
            "counts": self.counts,
            "format_version": self.format_version,
            "terraform_version": self.terraform_version,
            "errored": self.errored,
            "resources": [r.to_dict() for r in self.resources],
            "environments": [e.to_dict() for e in self.environments],
            "outputs": [o.to_dict() for o in self.outputs],
            "drifted": list(self.drifted),
        }


def summarize_plan(plan_json: Mapping[str, Any]) -> PlanSummary:
    """Summarise a plan in Terraform's JSON plan format (``terraform show -json PLANFILE``).

    Tolerates missing keys (hand-written or trimmed plans) and values known only after apply.
    Raises :class:`PlanFormatError` for input that is not a JSON plan or has an unsupported
    ``format_version`` major.
    """
    if not isinstance(plan_json, Mapping):
        raise PlanFormatError(f"a Terraform JSON plan is an object, not {type(plan_json).__name__}")
    format_version = _text(plan_json.get("format_version"))
    if format_version is not None and _major(format_version) != SUPPORTED_FORMAT_MAJOR:
        raise PlanFormatError(
            f"unsupported Terraform JSON plan format_version {format_version!r} "
            f"(this version of mwaa-iac reads {SUPPORTED_FORMAT_MAJOR}.x)",
            hint="upgrade mwaa-iac, or use a Terraform version whose `show -json` prints format 1.x",
        )

    resources: list[ResourceChange] = []
    environments: list[EnvironmentChange] = []
    for raw in _list(plan_json.get("resource_changes")):
        if not isinstance(raw, Mapping):
            continue
        resource = _resource_change(raw)
        resources.append(resource)
        if resource.type == MWAA_ENVIRONMENT and resource.mode == "managed":
            environments.append(_environment_change(resource, _mapping(raw.get("change"))))

    drifted = tuple(
        _text(raw.get("address")) or "?"
        for raw in _list(plan_json.get("resource_drift"))
        if isinstance(raw, Mapping)
    )
    outputs = tuple(
        _output_change(str(name), raw)
        for name, raw in sorted(_mapping(plan_json.get("output_changes")).items())
        if isinstance(raw, Mapping)
    )
    return PlanSummary(
        resources=tuple(resources),
        environments=tuple(environments),
        outputs=outputs,
        drifted=drifted,
        format_version=format_version,
        terraform_version=_text(plan_json.get("terraform_version")),
        errored=bool(plan_json.get("errored", False)),
    )


def _resource_change(raw: Mapping[str, Any]) -> ResourceChange:
    address = _text(raw.get("address")) or "?"
    change = _mapping(raw.get("change"))
    actions = tuple(str(a) for a in _list(change.get("actions")))
    try:
        action = classify_actions(actions)
    except PlanFormatError as exc:
        raise PlanFormatError(f"{address}: {exc}") from None
    mode = _text(raw.get("mode")) or ("data" if _resource_part(address).startswith("data.") else "managed")
    resource_type = _text(raw.get("type")) or _type_from_address(address)
    before, after = _mapping(change.get("before")), _mapping(change.get("after"))
    unknown = _unknown_after(change, action)
    versioned = resource_type == MWAA_ENVIRONMENT
    return ResourceChange(
        address=address,
        type=resource_type,
        mode=mode,
        action=action,
        actions=actions,
        action_reason=_text(raw.get("action_reason")),
        replace_paths=tuple(tuple(p) for p in _list(change.get("replace_paths")) if isinstance(p, list)),
        previous_address=_text(raw.get("previous_address")),
        deposed=_text(raw.get("deposed")),
        importing=bool(change.get("importing")),
        name_before=_text(before.get("name")),
        name_after=None if "name" in unknown else _text(after.get("name")),
        airflow_version_before=_text(before.get("airflow_version")) if versioned else None,
        airflow_version_after=(
            _text(after.get("airflow_version")) if versioned and "airflow_version" not in unknown else None
        ),
    )


def _unknown_after(change: Mapping[str, Any], action: Action) -> frozenset[str]:
    """Which of the attributes we read are known only after apply."""
    if action in (Action.DELETE, Action.FORGET):
        return frozenset()
    after_unknown = change.get("after_unknown")
    return frozenset(attr for attr in ("name", "airflow_version") if _is_unknown(after_unknown, attr))


def _environment_change(resource: ResourceChange, change: Mapping[str, Any]) -> EnvironmentChange:
    return EnvironmentChange(
        address=resource.address,
        action=resource.action,
        name_before=resource.name_before,
        name_after=resource.name_after,
        airflow_version_before=resource.airflow_version_before,
        airflow_version_after=resource.airflow_version_after,
        unknown_after=tuple(sorted(_unknown_after(change, resource.action))),
        action_reason=resource.action_reason,
        replace_paths=resource.replace_paths,
        deposed=resource.deposed,
    )


def _output_change(name: str, raw: Mapping[str, Any]) -> OutputChange:
    try:
        action = classify_actions(tuple(str(a) for a in _list(raw.get("actions"))))
    except PlanFormatError as exc:
        raise PlanFormatError(f"output {name}: {exc}") from None
    # Any sensitive part makes the whole value secret; only a wholly unknown value is "unknown".
    sensitive = _marks_any(raw.get("before_sensitive")) or _marks_any(raw.get("after_sensitive"))
    after_known = raw.get("after_unknown") is not True
    before = raw.get("before")
    after = raw.get("after") if after_known else None
    if sensitive:
        before = SENSITIVE if before is not None else None
        after = SENSITIVE if after is not None else None
    return OutputChange(name, action, before, after, after_known, sensitive)


# --------------------------------------------------------------------------------------------------
# Guard
# --------------------------------------------------------------------------------------------------

_UPGRADE_INSTEAD = (
    "keep airflow_version unchanged in this plan and run `mwaa-iac upgrade` (it upgrades the environment "
    "in place through UpdateEnvironment, then runs `terraform apply -refresh-only` so the state matches), "
    "or move to a new environment with `mwaa-iac cutover`"
)
_CUTOVER_INSTEAD = (
    "an existing environment cannot change this: create a new environment with the new setting and "
    "move to it with `mwaa-iac cutover`; otherwise revert the change"
)
_RETIRE_INSTEAD = (
    "to remove an old slot after a cutover, run `mwaa-iac cleanup`, which retires it explicitly; "
    "otherwise restore the environment's configuration"
)
_HISTORY = "its metadata database (DAG run history, task instances, variables, connections) would be lost"


@dataclass(frozen=True)
class Violation:
    """One change the guard refuses: where, why, and what to run instead."""

    address: str
    action: Action
    name: str | None
    reason: str
    instead: str

    def __str__(self) -> str:
        return f"{self.address}: {self.reason}. Instead: {self.instead}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "action": str(self.action),
            "name": self.name,
            "reason": self.reason,
            "instead": self.instead,
        }


@dataclass(frozen=True)
class GuardVerdict:
    """The guard's decision on a plan. ``notes`` point out allowed changes worth knowing about."""

    violations: tuple[Violation, ...] = ()
    notes: tuple[str, ...] = ()
    retiring: frozenset[str] = field(default_factory=frozenset)

    @property
    def allowed(self) -> bool:
        return not self.violations

    def message(self) -> str:
        if self.allowed:
            return "plan guard: no live MWAA environment would be replaced or deleted"
        count = len(self.violations)
        changes = f"{count} change{'s' if count != 1 else ''}"
        return f"plan guard refused the plan: {changes} would replace or delete what must stay live"

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "message": self.message(),
            "violations": [v.to_dict() for v in self.violations],
            "notes": list(self.notes),
            "retiring": sorted(self.retiring),
        }


def guard_plan(
    summary: PlanSummary,
    *,
    retiring: frozenset[str] = frozenset(),
    routing_parameters: frozenset[str] = frozenset(),
) -> GuardVerdict:
    """Refuse the replacement or deletion of an MWAA environment whose name is not in ``retiring``,
    and of a routing parameter (by SSM name, see the module docstring) not in ``retiring``."""
    retiring = frozenset(retiring)
    violations: list[Violation] = []
    notes: list[str] = []
    for env in summary.environments:
        label = f"{env.address} ({env.name or 'name unknown'})"
        if env.action in DESTRUCTIVE_ACTIONS:
            if env.name_before is not None and env.name_before in retiring:
                verb = "deleted" if env.action == Action.DELETE else "replaced"
                notes.append(f"{label} will be {verb}: its slot is being retired")
            else:
                violations.append(_environment_violation(env))
        elif env.action == Action.UPDATE and env.version_changed:
            notes.append(
                f"{label}: in-place Airflow version change {env.describe_version()}; MWAA terminates "
                "running tasks and the environment can be unavailable for up to two hours"
            )
        elif env.action == Action.FORGET:
            notes.append(f"{label} will be removed from Terraform's state but keeps running")

    if routing_parameters:
        for resource in summary.resources:
            violation = _routing_violation(resource, routing_parameters, retiring)
            if violation is not None:
                violations.append(violation)
    return GuardVerdict(tuple(violations), tuple(notes), retiring)


def enforce_guard(
    plan: PlanSummary | GuardVerdict,
    *,
    retiring: frozenset[str] = frozenset(),
    routing_parameters: frozenset[str] = frozenset(),
) -> GuardVerdict:
    """:func:`guard_plan`, raising :class:`PlanGuardError` when the plan is refused.

    Takes a summary (guarded here with ``retiring`` / ``routing_parameters``) or a verdict already
    reached by :func:`guard_plan` (the keyword arguments are then not used).
    """
    if isinstance(plan, GuardVerdict):
        verdict = plan
    else:
        verdict = guard_plan(plan, retiring=retiring, routing_parameters=routing_parameters)
    if not verdict.allowed:
        instead = list(dict.fromkeys(v.instead for v in verdict.violations))
        raise PlanGuardError(
            verdict.message() + ":\n" + "\n".join(f"  - {v}" for v in verdict.violations),
            violations=[str(v) for v in verdict.violations],
            hint=instead[0] if len(instead) == 1 else "; or ".join(instead),
        )
    return verdict


def _environment_violation(env: EnvironmentChange) -> Violation:
    name = env.name_before
    subject = f"environment {name}" if name else "the environment (name unknown)"
    paths = {str(path[0]) for path in env.replace_paths if path}
    if env.action == Action.DELETE:
        why = {
            "delete_because_no_resource_config": " (its configuration was removed)",
            "delete_because_count_index": " (its slot was switched off)",
            "delete_because_each_key": " (its slot was switched off)",
            "delete_because_no_module": " (its module was removed)",
        }.get(env.action_reason or "", "")
        reason = f"the plan deletes {subject}{why}; {_HISTORY}"
        if name:
            reason += f" (the phase does not retire {name})"
        return Violation(env.address, env.action, name, reason, _RETIRE_INSTEAD)

    # Replacement: say why when we can tell.
    if env.major_version_change:
        kind = "upgrade"
        before, after = _major(env.airflow_version_before), _major(env.airflow_version_after)
        if before is not None and after is not None and after < before:
            kind = "downgrade"
        reason = (
            f"airflow_version {env.describe_version()} is a major {kind}, which the AWS provider "
            f"performs by replacing the environment: {subject} would be deleted and created again "
            f"and {_HISTORY}"
        )
        return Violation(env.address, env.action, name, reason, _UPGRADE_INSTEAD)
    if env.action_reason == "replace_because_tainted":
        reason = (
            f"{subject} is tainted (an earlier create or update failed), so Terraform would delete "
            f"and recreate it; {_HISTORY}"
        )
        instead = (
            "check the environment's status; if it is usable, remove the taint "
            f"(`terraform untaint '{env.address}'`) and plan again"
        )
        return Violation(env.address, env.action, name, reason, instead)
    if env.action_reason == "replace_by_request":
        reason = f"-replace was requested for {subject}; {_HISTORY}"
        return Violation(env.address, env.action, name, reason, "plan without -replace")
    forcing = sorted(paths & set(_CREATE_ONLY_ATTRIBUTES)) or sorted(paths)
    cause = f"changing {', '.join(forcing)} forces" if forcing else "the plan requires"
    renamed = ""
    if env.name_after and name and env.name_after != name:
        renamed = f" (as {env.name_after})"
    reason = f"{cause} replacing {subject}: it would be deleted and created again{renamed} and {_HISTORY}"
    instead = _UPGRADE_INSTEAD if forcing == ["airflow_version"] else _CUTOVER_INSTEAD
    return Violation(env.address, env.action, name, reason, instead)


def _routing_violation(
    resource: ResourceChange,
    routing_parameters: frozenset[str],
    retiring: frozenset[str],
) -> Violation | None:
    if resource.type != SSM_PARAMETER or resource.mode != "managed":
        return None
    if resource.action not in DESTRUCTIVE_ACTIONS:
        return None
    name = resource.name_before
    if name is None or name not in routing_parameters or name in retiring:
        return None
    if resource.action == Action.DELETE:
        reason = (
            f"the plan deletes the routing parameter {name}: callers that read it to find the "
            "active environment would find nothing"
        )
        instead = "keep the routing parameter; routing moves by changing its value (cutover, rollback)"
    else:
        reason = (
            f"the plan replaces the routing parameter {name} (deleting it first): callers that read "
            "it to find the active environment would fail meanwhile"
        )
        instead = (
            "keep the parameter's name (a new name is a new contract: create it beside the old one), "
            "and move routing by changing its value (cutover, rollback)"
        )
    return Violation(resource.address, resource.action, name, reason, instead)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

_MAJOR = re.compile(r"^\s*v?(\d+)(?:\.|$)")


def _major(version: str | None) -> int | None:
    if not version:
        return None
    match = _MAJOR.match(version)
    return int(match.group(1)) if match else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _marks_any(marker: Any) -> bool:
    """Whether a ``*_sensitive`` marker (``true`` or a structure of them) marks any part of a value."""
    if marker is True:
        return True
    if isinstance(marker, Mapping):
        return any(_marks_any(v) for v in marker.values())
    if isinstance(marker, list):
        return any(_marks_any(v) for v in marker)
    return False


def _is_unknown(after_unknown: Any, attribute: str) -> bool:
    if after_unknown is True:
        return True
    return isinstance(after_unknown, Mapping) and after_unknown.get(attribute) is True


def _resource_part(address: str) -> str:
    """The address without its module path: ``module.a.aws_x.y[0]`` → ``aws_x.y[0]``."""
    parts = _split_address(address)
    while len(parts) >= 2 and parts[0] == "module":
        parts = parts[2:]
    return ".".join(parts)


def _type_from_address(address: str) -> str:
    parts = _resource_part(address).split(".")
    if parts and parts[0] == "data":
        parts = parts[1:]
    return parts[0] if parts else ""


def _split_address(address: str) -> list[str]:
    """Split on dots outside brackets (for_each keys may contain dots)."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in address:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "[":
            depth += 1
        elif not quoted and char == "]":
            depth -= 1
        if char == "." and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts
