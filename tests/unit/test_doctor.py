"""`mwaa-iac doctor` against moto in process (S3, IAM, SSM, STS) with a fake MWAA control plane."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from mwaa_iac.adapters.iam import Iam
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.routing import Routing
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import roles
from mwaa_iac.workflows.doctor import Doctor, doctor_exit_code
from mwaa_iac.workspace import open_workspace

ACCOUNT = "123456789012"
REGION = "us-east-1"
ALL_ON = dict.fromkeys(
    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
)


class FakeMwaa:
    """GetEnvironment answers from a dict; unknown names are ResourceNotFoundException."""

    def __init__(self, environments: dict[str, dict]) -> None:
        self.environments = environments

    def get_environment(self, Name: str) -> dict:
        if Name not in self.environments:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}}, "GetEnvironment"
            )
        return {"Environment": self.environments[Name]}


@pytest.fixture
def aws(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_MWAA"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def _account(
    config, *, role_for: str = "analytics-blue", versioned: bool = True, private: bool = True
) -> dict:
    """Buckets, objects, the source's module-style role and routing; returns the source's GetEnvironment."""
    s3 = boto3.client("s3", region_name=REGION)
    source_bucket = config.source.bucket_name
    s3.create_bucket(Bucket=source_bucket)
    if versioned:
        s3.put_bucket_versioning(Bucket=source_bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=source_bucket, Key="requirements/requirements.txt", Body=b"").get(
        "VersionId", "null"
    )
    dr = config.dr.backup_bucket
    s3.create_bucket(Bucket=dr)
    if private:
        s3.put_public_access_block(Bucket=dr, PublicAccessBlockConfiguration=ALL_ON)
    s3.put_bucket_encryption(
        Bucket=dr,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    scope = roles.RoleScope(
        "aws", REGION, ACCOUNT, role_for, source_bucket, "dags", ("requirements/requirements.txt",),
        dr, f"mwaa-dr/{config.name}",
    )  # fmt: skip
    iam = boto3.client("iam", region_name=REGION)
    name = roles.role_name_for(role_for)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(roles.trust_policy(scope)))[
        "Role"
    ]["Arn"]
    iam.put_role_policy(
        RoleName=name, PolicyName="mwaa-execution", PolicyDocument=json.dumps(roles.execution_policy(scope))
    )
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=config.routing.ssm_parameter_name, Value=json.dumps({"name": "analytics-blue"}), Type="String"
    )
    return {
        "Name": "analytics-blue",
        "Arn": f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/analytics-blue",
        "Status": "AVAILABLE",
        "AirflowVersion": "2.9.2",
        "ExecutionRoleArn": arn,
        "SourceBucketArn": config.source.bucket_arn,
        "DagS3Path": "dags",
        "RequirementsS3Path": "requirements/requirements.txt",
        "RequirementsS3ObjectVersion": version,
        "EndpointManagement": "SERVICE",
        "NetworkConfiguration": {"SubnetIds": list(config.network.subnet_ids)},
        "LastUpdate": {"Status": "SUCCESS"},
    }


def _doctor(ws, config, environments) -> Doctor:
    return Doctor(
        ws,
        config,
        MwaaClient(client=FakeMwaa(environments)),
        S3(REGION),
        Iam(REGION),
        Routing(REGION),
        environ={},
    )


def _by_name(findings):
    return {f.name: f for f in findings}


def test_a_healthy_account_passes_and_plans_the_green_role(aws, workspace_root: Path) -> None:
    ws = open_workspace("demo", workspace_root)
    config = ws.load()
    blue = _account(config)
    findings = _doctor(ws, config, {"analytics-blue": blue}).run()
    assert doctor_exit_code(findings) == 0, [f.text() for f in findings if f.failed]
    found = _by_name(findings)
    assert found["execution role serves analytics-blue"].ok
    assert "mwaa-analytics-green will be created" in found["execution role for analytics-green"].detail
    assert found["requirements object version"].ok
    assert "SSE-S3 (AES256)" in found["backup bucket: default encryption"].detail
    assert found["lock store"].ok and "local files" in found["lock store"].detail
    assert found["routing"].ok


def test_every_problem_is_named_with_its_fix(aws, workspace_root: Path) -> None:
    ws = open_workspace("demo", workspace_root)
    config = ws.load()
    blue = _account(config, versioned=False, private=False)
    # a role named like green's own, but made for blue: it cannot serve green
    scope = roles.RoleScope("aws", REGION, ACCOUNT, "analytics-blue", config.source.bucket_name, "dags")
    boto3.client("iam").create_role(
        RoleName="mwaa-analytics-green", AssumeRolePolicyDocument=json.dumps(roles.trust_policy(scope))
    )
    blue["RequirementsS3ObjectVersion"] = "gone-version"
    blue["EndpointManagement"] = "CUSTOMER"
    doctor = _doctor(ws, config, {"analytics-blue": blue})
    doctor.environ = {"CI": "true"}
    findings = doctor.run()
    assert doctor_exit_code(findings) == 1
    found = _by_name(findings)
    green_role = found["execution role for analytics-green"]
    assert green_role.failed and "ArnLike aws:SourceArn" in green_role.detail
    assert (
        found["source bucket versioning"].failed
        and "put-bucket-versioning" in found["source bucket versioning"].fix
    )
    assert (
        found["requirements object version"].failed
        and "gone-version" in found["requirements object version"].detail
    )
    assert found["backup bucket: public access blocked"].failed
    assert found["endpoint mode"].failed and "CUSTOMER" in found["endpoint mode"].detail
    assert found["lock store"].failed and "state.s3_bucket" in found["lock store"].detail
    assert all(f.fix for f in findings if f.failed), [f.name for f in findings if f.failed and not f.fix]


def test_cli_prints_marks_and_exits_1(aws, workspace_root: Path, monkeypatch) -> None:
    from mwaa_iac.cli import app

    ws = open_workspace("demo", workspace_root)
    blue = _account(ws.load(), private=False)
    monkeypatch.setattr(
        MwaaClient, "__post_init__", lambda self: setattr(self, "client", FakeMwaa({"analytics-blue": blue}))
    )
    runner = CliRunner()
    result = runner.invoke(app, ["doctor", "--env", "demo", "--root", str(workspace_root)])
    assert result.exit_code == 1, result.output
    assert "✓ source environment: analytics-blue: AVAILABLE, Airflow 2.9.2" in result.output
    assert "✗ backup bucket: public access blocked" in result.output
    assert "fix: aws s3api put-public-access-block" in result.output
    result = runner.invoke(app, ["doctor", "--env", "demo", "--root", str(workspace_root), "--json"])
    data = json.loads(result.output)
    assert result.exit_code == 1 and data["ok"] is False and data["failed"] >= 1
    assert {"check", "ok", "blocking", "detail", "fix"} <= set(data["findings"][0])
