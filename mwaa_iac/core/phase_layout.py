"""Deployment phases of a blue/green pair and the Terraform variables each one implies.

Every phase except ``steady`` names the *inactive* colour, the one being built, promoted or retired:

- ``steady``: only the active slot (at its deployed version, or a hop version for an in-place upgrade);
- ``clone-<c>``: slot ``c`` created at the active slot's version (mwaa-dr restores need matching
  versions);
- ``upgrade-<c>``: slot ``c`` at the target version (in place), the active slot untouched;
- ``flip-<c>``: both slots, ``c`` becomes active (routing follows);
- ``retire-<c>``: after the flip, slot ``c`` (the old one) is deleted.

Pure: no file or network access.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.errors import UsageError


class PhaseKind(StrEnum):
    STEADY = "steady"
    CLONE = "clone"
    UPGRADE = "upgrade"
    FLIP = "flip"
    RETIRE = "retire"


@dataclass(frozen=True)
class Phase:
    kind: PhaseKind
    color: Color | None = None  # None only for steady

    def __str__(self) -> str:
        return str(self.kind) if self.color is None else f"{self.kind}-{self.color}"


PHASE_NAMES = ["steady"] + [f"{k}-{c}" for c in Color for k in list(PhaseKind)[1:]]


def parse_phase(text: str, config: EnvironmentConfig) -> Phase:
    """Parse ``steady``, ``clone-green``, ... (``flip`` alone means: towards the inactive colour)."""
    text = text.strip().lower()
    inactive = config.active_color.other
    if text == "steady":
        return Phase(PhaseKind.STEADY)
    kind_text, _, color_text = text.partition("-")
    try:
        kind = PhaseKind(kind_text)
    except ValueError:
        raise UsageError(
            f"unknown phase {text!r}", hint=f"phases: {', '.join(PHASE_NAMES)} (and 'flip')"
        ) from None
    if kind is PhaseKind.STEADY:
        raise UsageError("the steady phase takes no colour", hint="use --phase steady")
    if not color_text:
        if kind is PhaseKind.FLIP:
            return Phase(kind, inactive)
        raise UsageError(f"phase {text!r} needs a colour", hint=f"for example {kind}-{inactive}")
    try:
        color = Color(color_text)
    except ValueError:
        raise UsageError(
            f"unknown colour {color_text!r} in phase {text!r}", hint="colours: blue, green"
        ) from None
    if color is config.active_color:
        raise UsageError(
            f"phase {text!r} acts on {color}, which is the active colour",
            hint=f"{config.active_color} is active in {config.name}'s deployment record; "
            f"the phases that apply now name the inactive colour: {kind}-{inactive}",
        )
    return Phase(kind, color)


OBJECT_VERSION_KEYS = (
    "requirements_s3_object_version",
    "plugins_s3_object_version",
    "startup_script_s3_object_version",
)


@dataclass(frozen=True)
class Slot:
    enabled: bool
    airflow_version: str
    requirements_s3_path: str | None
    # The S3 object versions the slot's environment runs (None: the latest at apply time). The
    # workflows fill them from GetEnvironment so that a plan never moves an environment to another
    # requirements.txt/plugins.zip/startup script than the one it runs, and a clone runs its source's.
    object_versions: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "airflow_version": self.airflow_version,
            "requirements_s3_path": self.requirements_s3_path,
            **dict(self.object_versions),  # only those pinned: null means the latest at apply time
        }


@dataclass(frozen=True)
class PhaseLayout:
    """Which slots exist, at which versions, and which one is active, for one phase."""

    phase: Phase
    active_color: Color
    slots: dict[Color, Slot]

    def retiring(self, config: EnvironmentConfig) -> frozenset[str]:
        """Environment names the plan guard may let Terraform delete in this phase."""
        if self.phase.kind is PhaseKind.RETIRE and self.phase.color is not None:
            return frozenset({config.environment_name(self.phase.color)})
        return frozenset()


def layout_for(
    config: EnvironmentConfig,
    phase: Phase,
    *,
    version: str | None = None,
    requirements: dict[Color, str] | None = None,
    object_versions: dict[Color, dict[str, str]] | None = None,
) -> PhaseLayout:
    """The slots of ``phase``. ``version`` overrides the version the phase moves to (a hop of an
    in-place upgrade for steady, the target's version for upgrade/flip); ``requirements`` overrides
    a slot's requirements path; ``object_versions`` pins a slot's ``*_s3_object_version`` inputs."""
    requirements = requirements or {}
    object_versions = object_versions or {}
    active = config.active_color
    source_version = config.active_version
    default_req = config.source.requirements_s3_path

    def slot(color: Color, enabled: bool, airflow_version: str) -> Slot:
        pins = tuple(
            (k, v)
            for k, v in sorted((object_versions.get(color) or {}).items())
            if k in OBJECT_VERSION_KEYS and v
        )
        return Slot(enabled, airflow_version, requirements.get(color, default_req), pins)

    if phase.kind is PhaseKind.STEADY:
        steady_version = version or source_version
        other_version = config.deployment.version_of(active.other) or steady_version
        slots = {
            active: slot(active, True, steady_version),
            active.other: slot(active.other, False, other_version),
        }
        return PhaseLayout(phase, active, slots)

    target = phase.color
    assert target is not None and target is not active
    if phase.kind is PhaseKind.CLONE:
        target_version = source_version
    elif phase.kind is PhaseKind.UPGRADE:
        target_version = version or config.airflow_version
    elif phase.kind is PhaseKind.FLIP:
        target_version = version or config.deployment.version_of(target) or config.airflow_version
    else:  # retire: the target colour is the old one, the active colour keeps running
        old_version = config.deployment.version_of(target) or source_version
        slots = {active: slot(active, True, source_version), target: slot(target, False, old_version)}
        return PhaseLayout(phase, active, slots)
    new_active = target if phase.kind is PhaseKind.FLIP else active
    slots = {active: slot(active, True, source_version), target: slot(target, True, target_version)}
    return PhaseLayout(phase, new_active, slots)
