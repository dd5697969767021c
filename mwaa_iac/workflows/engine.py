"""The deployment-engine seam: how `upgrade` and `cutover` create an environment and change its
Airflow version, with the ``api`` engine (MWAA's API directly) or the ``terraform`` engine (render
the phase's tfvars, plan, guard, apply the saved plan). Nothing outside this module asks which
engine it is (docs/design.md §4).

Both engines issue a major-version hop with UpdateEnvironment: Terraform would replace the
environment (``airflow_version`` of a new major forces a new resource), so the Terraform engine
calls the API and refreshes its state afterwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import botocore.session

from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.core.catalog import load_catalog, major_of
from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.engines import ENGINE_TAG, Engine, engine_conflict
from mwaa_iac.core.phase_layout import Phase, PhaseKind
from mwaa_iac.core.planner import Hop
from mwaa_iac.errors import UsageError
from mwaa_iac.events import Emit, EventKind, event
from mwaa_iac.workspace import Workspace

# CreateEnvironment/UpdateEnvironment fields for requirements.txt (RequirementsS3Path[, ...ObjectVersion])
RequirementsFields = Mapping[str, str]


@dataclass
class DeploymentEngine(ABC):
    """One deployment's engine. ``config`` is passed per call: a workflow's in-memory record moves."""

    ws: Workspace
    mwaa: MwaaClient
    emit: Emit
    terraform_bin: str | None = None
    name: ClassVar[Engine]

    def refusal(self, tags: Mapping[str, str] | None, environment: str) -> str | None:
        """Why this engine must not drive ``environment`` (its ENGINE_TAG names the other), with the
        fix; None when it may."""
        return engine_conflict(tags, self.name, environment, self.ws.env)

    def makes_role(self, config: EnvironmentConfig) -> bool:
        """Whether the engine itself makes the new colour's execution role (no role to choose)."""
        return False

    @abstractmethod
    def create(
        self,
        config: EnvironmentConfig,
        color: Color,
        version: str,
        *,
        like: dict[str, Any],
        role: Callable[[], str],
        requirements: dict[str, Any] | None,
    ) -> None:
        """Create colour ``color`` at ``version`` like the GetEnvironment answer ``like`` (the
        source), with ``requirements`` ({path, object_version} the source runs, or None) and the
        execution role ``role()`` returns when one must be named. Idempotent: an environment that
        exists is not created again."""

    @abstractmethod
    def change_version(
        self, config: EnvironmentConfig, color: Color, hop: Hop, requirements: RequirementsFields
    ) -> None:
        """Issue the in-place update of colour ``color`` for ``hop`` (UpdateEnvironment or a
        Terraform apply), with the hop's ``requirements`` fields ({} to keep what it runs)."""

    @abstractmethod
    def after_hop(self, config: EnvironmentConfig, color: Color, hop: Hop) -> None:
        """After a hop succeeded (the engine's own bookkeeping)."""

    def _update_environment(self, name: str, hop: Hop, requirements: RequirementsFields, why: str) -> None:
        self.emit(event(EventKind.HOP_UPDATE_ENVIRONMENT, to=hop.to_version, why=why))
        self.mwaa.update_environment(name, AirflowVersion=hop.to_version, **requirements)


class ApiEngine(DeploymentEngine):
    name = Engine.API

    def create(self, config, color, version, *, like, role, requirements) -> None:
        target = config.environment_name(color)
        if self.mwaa.exists(target):
            return
        fields = create_fields_from(like)  # the source's requirements, as they are
        fields.update(AirflowVersion=version, ExecutionRoleArn=role())
        fields["Tags"] = clone_tags(like, color)
        self.mwaa.create_environment(target, **fields)
        self.emit(event(EventKind.TARGET_CREATE_ENVIRONMENT, name=target, version=version))

    def change_version(self, config, color, hop, requirements) -> None:
        self._update_environment(config.environment_name(color), hop, requirements, "api engine")

    def after_hop(self, config, color, hop) -> None:
        return None  # MWAA's answer is the whole state


class TerraformEngine(DeploymentEngine):
    name = Engine.TERRAFORM

    def makes_role(self, config: EnvironmentConfig) -> bool:
        return not config.execution_role_arn  # modules/mwaa-environment makes the colour's own

    def create(self, config, color, version, *, like, role, requirements) -> None:
        # Also when the target exists: a lost state write is repaired by importing it.
        from mwaa_iac.workflows.phase import files_of, live_slot_files

        paths, pins = live_slot_files(self.mwaa, config)
        if color not in paths and color not in pins:
            # Before it exists the new colour gets what the source runs.
            _, source_pins = files_of(like)
            wanted = {k: v for k, v in source_pins.items() if k != "requirements_s3_object_version"}
            if requirements:
                paths[color] = requirements["path"]
                if requirements.get("object_version"):
                    wanted["requirements_s3_object_version"] = requirements["object_version"]
            if wanted:
                pins[color] = wanted
        self.plan_and_apply(config, Phase(PhaseKind.CLONE, color), version, paths, pins)

    def change_version(self, config, color, hop, requirements) -> None:
        name = config.environment_name(color)
        if major_of(hop.from_version) != major_of(hop.to_version):
            why = "major version change: Terraform would replace the environment"
            self._update_environment(name, hop, requirements, why)
            return
        from mwaa_iac.workflows.phase import live_slot_files

        # Each colour keeps the requirements path and object versions it runs (a cutover's target
        # runs its source's, not mwaa.yaml's path at the latest upload); the hop may bring a
        # requirements file with the hop's constraint URL.
        paths, pins = live_slot_files(self.mwaa, config)
        if requirements:
            paths[color] = requirements["RequirementsS3Path"]
            kept = dict(pins.get(color, {}))
            kept.pop("requirements_s3_object_version", None)
            if requirements.get("RequirementsS3ObjectVersion"):
                kept["requirements_s3_object_version"] = requirements["RequirementsS3ObjectVersion"]
            pins[color] = kept
        self.plan_and_apply(config, self._phase(config, color), hop.to_version, paths, pins)

    def after_hop(self, config, color, hop) -> None:
        if major_of(hop.from_version) == major_of(hop.to_version):
            return
        # The update went round Terraform: its state learns the new version (refresh only).
        from mwaa_iac.workflows.phase import live_slot_files, runner_for, write_phase_tfvars

        paths, pins = live_slot_files(self.mwaa, config)
        _, tfvars = write_phase_tfvars(
            self.ws,
            config,
            self._phase(config, color),
            version=hop.to_version,
            requirements=paths,
            object_versions=pins,
        )
        runner = runner_for(self.ws, self.terraform_bin)
        runner.init()
        runner.apply_refresh_only([tfvars])
        self.emit(event(EventKind.TERRAFORM_REFRESHED, to=hop.to_version))

    def plan_and_apply(
        self,
        config: EnvironmentConfig,
        phase: Phase,
        version: str,
        requirements: dict[Color, str],
        object_versions: dict[Color, dict[str, str]],
    ) -> None:
        """Plan, guard and apply ``phase``; an environment that exists in AWS but not in the state
        (an apply whose state write was lost) is imported first."""
        from mwaa_iac.workflows.phase import apply_phase, plan_phase_adopting, runner_for

        runner = runner_for(
            self.ws, self.terraform_bin, lambda line: self.emit(event(EventKind.TERRAFORM_OUTPUT, line=line))
        )
        result = plan_phase_adopting(
            self.ws,
            config,
            phase,
            runner,
            self.mwaa.exists,
            lambda address, name: self.emit(event(EventKind.TERRAFORM_IMPORTED, address=address, name=name)),
            version=version,
            requirements=requirements,
            object_versions=object_versions,
        )
        self.emit(event(EventKind.TERRAFORM_PLAN, **result.summary.to_dict(), guard=result.verdict.to_dict()))
        apply_phase(result, runner)

    @staticmethod
    def _phase(config: EnvironmentConfig, color: Color) -> Phase:
        if color is config.active_color:
            return Phase(PhaseKind.STEADY)
        return Phase(PhaseKind.UPGRADE, color)


ENGINES: dict[Engine, type[DeploymentEngine]] = {Engine.API: ApiEngine, Engine.TERRAFORM: TerraformEngine}


def engine_for(
    name: str, ws: Workspace, mwaa: MwaaClient, emit: Emit, terraform_bin: str | None = None
) -> DeploymentEngine:
    """The engine called ``name`` (a UsageError names the known ones otherwise)."""
    try:
        kind = ENGINES[Engine(name)]
    except ValueError:
        known = " or ".join(str(e) for e in Engine)
        raise UsageError(f"unknown engine {name!r}", hint=f"use --engine {known}") from None
    return kind(ws, mwaa, emit, terraform_bin)


def hop_requirements(
    mwaa: MwaaClient, s3: Callable[[], Any], config: EnvironmentConfig, name: str, hop: Hop, emit: Emit
) -> dict[str, str]:
    """UpdateEnvironment fields for the hop's requirements: when the requirements.txt ``name`` runs
    pins Airflow's constraints with a --constraint line, a copy pointing at the hop's version is
    written beside it (``<name>-airflow-<version>.txt``) and named with its object version (AWS: use
    the constraints of the version you upgrade to). {} otherwise. ``s3()`` gives the S3 adapter."""
    from mwaa_iac.core.hop_requirements import hop_requirements_key, retarget_constraints

    environment = mwaa.get_environment(name)
    path = environment.get("RequirementsS3Path")
    item = load_catalog().get(hop.to_version)
    if not path or item is None:
        return {}
    bucket = str(environment.get("SourceBucketArn") or config.source.bucket_arn).rsplit(":", 1)[-1]
    text = s3().get_text(bucket, path, environment.get("RequirementsS3ObjectVersion"))
    moved = retarget_constraints(text, hop.to_version, item.python) if text else None
    if moved is None or moved == text:
        return {}
    key = hop_requirements_key(path, hop.to_version)
    version = s3().put_text_versioned(bucket, key, moved)
    emit(event(EventKind.HOP_REQUIREMENTS, to=hop.to_version, path=key, object_version=version))
    fields = {"RequirementsS3Path": key}
    if version:
        fields["RequirementsS3ObjectVersion"] = version
    return fields


def create_fields_from(environment: dict[str, Any]) -> dict[str, Any]:
    """CreateEnvironment arguments that reproduce ``environment`` (a GetEnvironment answer), derived
    from botocore's MWAA model so that no input member is forgotten or invented."""
    model = botocore.session.get_session().get_service_model("mwaa")
    shape = model.operation_model("CreateEnvironment").input_shape
    fields = _project(environment, shape)
    fields.pop("Name", None)
    return fields


def clone_tags(source: dict[str, Any], color: Color) -> dict[str, str]:
    """The source's tags for the clone, without the ``aws:`` ones (AWS sets those; CreateEnvironment
    rejects them), with the clone's colour and the engine that made it."""
    tags = {k: v for k, v in (source.get("Tags") or {}).items() if not k.lower().startswith("aws:")}
    return {**tags, "mwaa-iac:color": str(color), ENGINE_TAG: str(Engine.API)}


def _project(value: Any, shape: Any) -> Any:
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return None
        out = {}
        for member, member_shape in shape.members.items():
            if member in value and value[member] is not None:
                projected = _project(value[member], member_shape)
                if projected is not None:
                    out[member] = projected
        return out
    if shape.type_name == "list":
        return [_project(v, shape.member) for v in value] if isinstance(value, list) else None
    return value
