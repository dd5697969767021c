"""Execution roles on the strict local stack: with module-style roles (one per colour, trust
``aws:SourceArn`` of its own environment), a cutover whose target would get a role that cannot serve
it is refused in preflight, naming the blocking condition, before anything is created; without that
role, the cutover gives green a role of its own and succeeds. `mwaa-iac doctor` reports the same."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.core import roles
from mwaa_iac.local.demo import prepare
from mwaa_iac.local.seed import SeedPlan
from tests.conftest import LocalStack

pytestmark = pytest.mark.local

NAME = "roles"
REPO = Path(__file__).resolve().parents[2]


def _cutover(stack: LocalStack, root: Path):
    return stack.cli(
        "cutover", "--env", NAME, "--root", str(root), "--engine", "api", "--yes",
        "--poll-interval", "1", "--run-poll", "1", "--health-minutes", "0",
    )  # fmt: skip


def test_per_colour_roles(local_stack: LocalStack, tmp_path: Path) -> None:
    setup = prepare(
        tmp_path,
        name=NAME,
        plan=SeedPlan(runs=5),
        poll=1.0,
        sync=local_stack.admin.sync,
        per_colour_roles=True,
    )
    mwaa = MwaaClient("us-east-1")
    blue_role = mwaa.get_environment(setup.source)["ExecutionRoleArn"]
    assert blue_role.endswith(":role/service-role/mwaa-roles-blue")
    iam = boto3.client("iam", region_name="us-east-1")

    # green's own role exists but was made with blue's trust: MWAA could not assume it for green
    blue_scope = roles.RoleScope(
        "aws", "us-east-1", blue_role.split(":")[4], setup.source, "roles-airflow-source", "dags"
    )
    iam.create_role(
        RoleName="mwaa-roles-green",
        Path="/service-role/",
        AssumeRolePolicyDocument=json.dumps(roles.trust_policy(blue_scope)),
    )
    refused = _cutover(local_stack, setup.root)
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert "preflight failed, nothing was changed" in refused.stderr
    assert "mwaa-roles-green exists but cannot serve roles-green" in refused.stderr
    assert "ArnLike aws:SourceArn" in refused.stderr and "environment/roles-blue" in refused.stderr
    assert not mwaa.exists("roles-green")

    doctor = local_stack.cli("doctor", "--env", NAME, "--root", str(setup.root))
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "✓ execution role serves roles-blue" in doctor.stdout
    assert "✗ execution role for roles-green" in doctor.stdout and "fix:" in doctor.stdout
    print(doctor.stdout)

    # without it, the cutover creates green's role (scoped to green) and succeeds
    iam.delete_role(RoleName="mwaa-roles-green")
    done = _cutover(local_stack, setup.root)
    assert done.returncode == 0, done.stderr[-4000:]
    green = mwaa.get_environment("roles-green")
    assert green["ExecutionRoleArn"].endswith(":role/service-role/mwaa-roles-green")
    assert green["Tags"].get("mwaa-iac:engine") == "api"
    trust = iam.get_role(RoleName="mwaa-roles-green")["Role"]["AssumeRolePolicyDocument"]
    assert json.dumps(trust).count("environment/roles-green") == 1
    assert mwaa.get_environment(setup.source)["ExecutionRoleArn"] == blue_role


def test_doctor_on_the_example_names_each_problem_and_exits_1(local_stack: LocalStack) -> None:
    result = local_stack.cli("doctor", "--env", "example", "--root", str(REPO))
    assert result.returncode == 1, result.stderr
    assert "✗ source environment: analytics-blue (the active colour, blue) does not exist" in result.stdout
    assert "✗ backup bucket: exists: analytics-mwaa-dr-backups does not exist" in result.stdout
    assert "fix:" in result.stdout
    print(result.stdout)
