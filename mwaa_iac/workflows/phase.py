"""Render a phase, plan it with Terraform, guard the plan, apply the saved plan.

The glue between the core (layout, render, plan summary, guard) and the Terraform runner. It prints
nothing; progress lines go to ``on_output``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mwaa_iac.adapters.terraform import TerraformRunner, resolve_engine
from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.phases import Phase, PhaseLayout, layout_for
from mwaa_iac.core.plan import GuardVerdict, PlanSummary, enforce_guard, guard_plan, summarize_plan
from mwaa_iac.core.render import render_tfvars
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
    return TerraformRunner(ws.directory, engine=resolve_engine(terraform_bin), on_output=on_output)


def write_phase_tfvars(
    ws: Workspace,
    config: EnvironmentConfig,
    phase: Phase,
    *,
    version: str | None = None,
    requirements: dict[Color, str] | None = None,
) -> tuple[PhaseLayout, Path]:
    """Render the phase's tfvars into the workspace's scratch directory."""
    layout = layout_for(config, phase, version=version, requirements=requirements)
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
) -> PhasePlan:
    """init + plan (saved) + show -json + summary + guard verdict. Changes nothing in AWS."""
    layout, tfvars = write_phase_tfvars(ws, config, phase, version=version, requirements=requirements)
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
