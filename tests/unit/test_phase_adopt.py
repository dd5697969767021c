"""A target that exists in AWS but not in Terraform's state is imported before the phase is applied."""

from __future__ import annotations

import json
from pathlib import Path

from mwaa_iac.core.config import Color
from mwaa_iac.core.phase_layout import Phase, PhaseKind
from mwaa_iac.core.plan_guard import summarize_plan
from mwaa_iac.workflows import phase as phase_module
from mwaa_iac.workflows.phase import environments_to_adopt, plan_phase_adopting
from mwaa_iac.workspace import open_workspace

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "plans" / "create_green.json"


class FakeRunner:
    def __init__(self) -> None:
        self.imports: list[tuple[str, str]] = []
        self.plans = 0

    def init(self) -> None:
        pass

    def plan(self, plan_file, var_files) -> bool:
        self.plans += 1
        return True

    def show_json(self, plan_file) -> dict:
        data = json.loads(FIXTURE.read_text())
        if self.imports:  # after the import, nothing is created any more
            for change in data["resource_changes"]:
                change["change"]["actions"] = (
                    ["no-op"] if change["change"]["actions"] == ["create"] else change["change"]["actions"]
                )
        return data

    def import_resource(self, address, resource_id, var_files) -> None:
        self.imports.append((address, resource_id))


def test_an_environment_created_but_not_in_state_is_imported_then_planned_again(workspace_root) -> None:
    ws = open_workspace("demo", workspace_root)
    runner = FakeRunner()
    imported: list[str] = []
    plan = plan_phase_adopting(
        ws, ws.load(), Phase(PhaseKind.CLONE, Color.GREEN), runner, lambda name: name == "analytics-green",
        lambda address, name: imported.append(address),
    )  # fmt: skip
    assert runner.imports == [("module.green.aws_mwaa_environment.this[0]", "analytics-green")]
    assert imported == ["module.green.aws_mwaa_environment.this[0]"] and runner.plans == 2
    assert not [r for r in plan.summary.resources if str(r.action) == "create"]


def test_nothing_is_imported_when_the_environment_does_not_exist(workspace_root) -> None:
    summary = summarize_plan(json.loads(FIXTURE.read_text()))
    fake_plan = type("P", (), {"summary": summary})()
    assert environments_to_adopt(fake_plan, lambda name: False) == []  # type: ignore[arg-type]
    assert phase_module.environments_to_adopt(fake_plan, lambda name: True) == [  # type: ignore[arg-type]
        ("module.green.aws_mwaa_environment.this[0]", "analytics-green")
    ]
