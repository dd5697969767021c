"""Render a phase, plan it with Terraform, guard the plan, apply the saved plan.

The glue between the core (layout, render, plan summary, guard) and the Terraform runner. It prints
nothing; progress lines go to ``on_output``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mwaa_iac.adapters.terraform import TerraformRunner, resolve_executor
from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.phase_layout import Phase, PhaseLayout, layout_for
from mwaa_iac.core.plan_guard import (
    Action,
    GuardVerdict,
    PlanSummary,
    enforce_guard,
    guard_plan,
    summarize_plan,
)
from mwaa_iac.core.tfvars import render_tfvars
from mwaa_iac.workspace import Workspace


@dataclass(frozen=True)
class PhasePlan:
    """A saved Terraform plan for one phase, with its summary and the guard's verdict."""

    env: str
    phase: Phase
    layout: PhaseLayout
    tfvars_file: Path
    plan_file: Path
    has_changes: bool
    summary: PlanSummary
    verdict: GuardVerdict

    def to_dict(self) -> dict:
        return {
            "env": self.env,
            "phase": str(self.phase),
            "active_color": str(self.layout.active_color),
            "tfvars_file": str(self.tfvars_file),
            "plan_file": str(self.plan_file),
            "has_changes": self.has_changes,
            "summary": self.summary.to_dict(),
            "guard": self.verdict.to_dict(),
        }


def runner_for(
    ws: Workspace, terraform_bin: str | None = None, on_output: Callable[[str], None] | None = None
) -> TerraformRunner:
    return TerraformRunner(ws.directory, executor=resolve_executor(terraform_bin), on_output=on_output)


def write_phase_tfvars(
    ws: Workspace,
    config: EnvironmentConfig,
    phase: Phase,
    *,
    version: str | None = None,
    requirements: dict[Color, str] | None = None,
    object_versions: dict[Color, dict[str, str]] | None = None,
) -> tuple[PhaseLayout, Path]:
    """Render the phase's tfvars into the workspace's scratch directory."""
    layout = layout_for(
        config, phase, version=version, requirements=requirements, object_versions=object_versions
    )
    template, source = ws.template()
    text = render_tfvars(config, layout, template, source=source)
    ws.work_dir.mkdir(parents=True, exist_ok=True)
    path = (ws.work_dir / f"{phase}.tfvars.json").resolve()
    path.write_text(text, "utf-8")
    return layout, path


def plan_phase(
    ws: Workspace,
    config: EnvironmentConfig,
    phase: Phase,
    runner: TerraformRunner,
    *,
    version: str | None = None,
    requirements: dict[Color, str] | None = None,
    object_versions: dict[Color, dict[str, str]] | None = None,
) -> PhasePlan:
    """init + plan (saved) + show -json + summary + guard verdict. Changes nothing in AWS."""
    layout, tfvars = write_phase_tfvars(
        ws, config, phase, version=version, requirements=requirements, object_versions=object_versions
    )
    plan_file = (ws.work_dir / f"{phase}.tfplan").resolve()
    runner.init()
    has_changes = runner.plan(plan_file, var_files=[tfvars])
    summary = summarize_plan(runner.show_json(plan_file))
    verdict = guard_plan(summary, retiring=layout.retiring(config))
    return PhasePlan(ws.env, phase, layout, tfvars, plan_file, has_changes, summary, verdict)


def apply_phase(plan: PhasePlan, runner: TerraformRunner) -> None:
    """Apply exactly the saved plan, after the guard allows it (raises PlanGuardError otherwise)."""
    enforce_guard(plan.verdict)
    runner.apply(plan.plan_file)


_LIVE_VERSIONS = {
    "requirements_s3_object_version": "RequirementsS3ObjectVersion",
    "plugins_s3_object_version": "PluginsS3ObjectVersion",
    "startup_script_s3_object_version": "StartupScriptS3ObjectVersion",
}


def files_of(environment: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """(requirements path, pinned object versions) an environment runs, from its GetEnvironment."""
    versions = {key: str(environment[live]) for key, live in _LIVE_VERSIONS.items() if environment.get(live)}
    return environment.get("RequirementsS3Path"), versions


def live_slot_files(
    mwaa: Any, config: EnvironmentConfig
) -> tuple[dict[Color, str], dict[Color, dict[str, str]]]:
    """For every colour whose environment exists: the requirements path and the object versions it
    runs (GetEnvironment), so that a phase's plan keeps them instead of falling back to mwaa.yaml's
    path and the latest object (which would restart the environment with other requirements)."""
    from mwaa_iac.adapters.mwaa import EnvironmentNotFoundError

    requirements: dict[Color, str] = {}
    versions: dict[Color, dict[str, str]] = {}
    for color in Color:
        try:
            environment = mwaa.get_environment(config.environment_name(color))
        except EnvironmentNotFoundError:
            continue
        path, pins = files_of(environment)
        if path:
            requirements[color] = path
        if pins:
            versions[color] = pins
    return requirements, versions


def environments_to_adopt(plan: PhasePlan, exists: Callable[[str], bool]) -> list[tuple[str, str]]:
    """(address, name) of each MWAA environment the plan would *create* although it exists in AWS:
    an apply created it and its state write was lost (a crash, a killed runner). Creating it again
    fails after a long wait; importing it is the fix."""
    found = []
    for change in plan.summary.resources:
        if (
            change.type != "aws_mwaa_environment"
            or change.action is not Action.CREATE
            or not change.name_after
        ):
            continue
        if exists(change.name_after):
            found.append((change.address, change.name_after))
    return found


def plan_phase_adopting(
    ws: Workspace,
    config: EnvironmentConfig,
    phase: Phase,
    runner: TerraformRunner,
    exists: Callable[[str], bool],
    on_import: Callable[[str, str], None] = lambda address, name: None,
    **kwargs: Any,
) -> PhasePlan:
    """:func:`plan_phase`, importing first any environment that exists in AWS but not in the state
    (then planning again), so that the next phase never tries to create it twice."""
    plan = plan_phase(ws, config, phase, runner, **kwargs)
    adopt = environments_to_adopt(plan, exists)
    if not adopt:
        return plan
    for address, name in adopt:
        runner.import_resource(address, name, [plan.tfvars_file])
        on_import(address, name)
    return plan_phase(ws, config, phase, runner, **kwargs)


def live_files_or_note(config: EnvironmentConfig) -> tuple[dict[str, Any], str | None]:
    """``plan_phase`` keyword arguments pinning each existing colour to the requirements path and
    object versions it runs (GetEnvironment), or ({}, why) when MWAA cannot be read: the plan then
    uses mwaa.yaml's path and the latest objects, and the caller says so."""
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.errors import MwaaIacError

    try:
        requirements, versions = live_slot_files(MwaaClient(config.region), config)
    except MwaaIacError as exc:
        return {}, f"object versions not pinned (GetEnvironment: {exc.message})"
    return {"requirements": requirements, "object_versions": versions}, None
