"""The cutover's execution-role choice (api engine): refused in preflight naming the blocking trust
condition, or the target's own role created like the module's. moto's IAM and S3 in process, a fake
MWAA control plane."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from mwaa_iac.adapters.iam import Iam
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.routing import Routing
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import roles
from mwaa_iac.workflows.cutover import Cutover, CutoverOptions
from mwaa_iac.workflows.journal import Journal
from mwaa_iac.workflows.state import LocalStore
from mwaa_iac.workspace import open_workspace

ACCOUNT, REGION = "123456789012", "us-east-1"
ALL_ON = dict.fromkeys(
    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
)


class FakeMwaa:
    def __init__(self, environments: dict[str, dict]) -> None:
        self.environments = environments
        self.created: dict[str, dict] = {}

    def get_environment(self, Name: str) -> dict:
        if Name not in self.environments:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}}, "GetEnvironment"
            )
        return {"Environment": self.environments[Name]}

    def create_environment(self, Name: str, **fields) -> dict:
        self.created[Name] = fields
        self.environments[Name] = {
            **fields,
            "Name": Name,
            "Status": "AVAILABLE",
            "LastUpdate": {"Status": "SUCCESS"},
        }
        return {"Arn": f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{Name}"}


@pytest.fixture
def aws(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_MWAA"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def _setup(config) -> dict:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=config.dr.backup_bucket)
    s3.put_public_access_block(Bucket=config.dr.backup_bucket, PublicAccessBlockConfiguration=ALL_ON)
    s3.put_bucket_encryption(
        Bucket=config.dr.backup_bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    blue = roles.RoleScope(
        "aws", REGION, ACCOUNT, "analytics-blue", config.source.bucket_name, "dags",
        ("requirements/requirements.txt",), config.dr.backup_bucket, f"mwaa-dr/{config.name}",
    )  # fmt: skip
    iam = boto3.client("iam", region_name=REGION)
    arn = iam.create_role(
        RoleName="mwaa-analytics-blue", AssumeRolePolicyDocument=json.dumps(roles.trust_policy(blue))
    )
    iam.put_role_policy(
        RoleName="mwaa-analytics-blue",
        PolicyName="p",
        PolicyDocument=json.dumps(roles.execution_policy(blue)),
    )
    return {
        "Name": "analytics-blue",
        "Arn": blue.environment_arn,
        "Status": "AVAILABLE",
        "AirflowVersion": "2.9.2",
        "ExecutionRoleArn": arn["Role"]["Arn"],
        "SourceBucketArn": config.source.bucket_arn,
        "DagS3Path": "dags",
        "RequirementsS3Path": "requirements/requirements.txt",
        "RequirementsS3ObjectVersion": "v1",
        "NetworkConfiguration": {"SubnetIds": list(config.network.subnet_ids), "SecurityGroupIds": ["sg-1"]},
        "Tags": {"team": "data", "aws:cloudformation:stack-name": "s"},
        "LastUpdate": {"Status": "SUCCESS"},
    }


def _cutover(workspace_root: Path, fake: FakeMwaa) -> Cutover:
    ws = open_workspace("demo", workspace_root)
    options = CutoverOptions(engine="api", to="2.10.3", poll_interval=0.01, max_poll_interval=0.01)
    return Cutover(
        ws, ws.load(), options, MwaaClient(client=fake), S3(REGION), Routing(REGION), sleep=lambda s: None,
        iam=Iam(REGION),
    )  # fmt: skip


def test_preflight_refuses_a_role_that_cannot_serve_the_target_naming_the_condition(
    aws, workspace_root
) -> None:
    config = open_workspace("demo", workspace_root).load()
    blue = _setup(config)
    # green's own role exists, but it was made with blue's trust: MWAA could not assume it for green
    scope = roles.RoleScope("aws", REGION, ACCOUNT, "analytics-blue", config.source.bucket_name, "dags")
    boto3.client("iam").create_role(
        RoleName="mwaa-analytics-green", AssumeRolePolicyDocument=json.dumps(roles.trust_policy(scope))
    )
    cutover = _cutover(workspace_root, FakeMwaa({"analytics-blue": blue}))
    _, checks = cutover.preflight()
    role = next(c for c in checks if c.name == "execution role for analytics-green")
    assert not role.ok
    assert "mwaa-analytics-green exists but cannot serve analytics-green" in role.detail
    assert "ArnLike aws:SourceArn" in role.detail and "environment/analytics-blue" in role.detail


def test_api_engine_creates_the_targets_own_role_and_drops_aws_tags(aws, workspace_root) -> None:
    config = open_workspace("demo", workspace_root).load()
    fake = FakeMwaa({"analytics-blue": _setup(config)})
    cutover = _cutover(workspace_root, fake)
    _, checks = cutover.preflight()
    role = next(c for c in checks if c.name == "execution role for analytics-green")
    assert role.ok and "mwaa-analytics-green will be created" in role.detail
    cutover.journal = Journal.start(LocalStore(workspace_root / "j"), "c.jsonl", "cutover", {})
    cutover.target.create("2.9.2")
    fields = fake.created["analytics-green"]
    assert fields["ExecutionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/service-role/mwaa-analytics-green"
    assert fields["Tags"] == {"team": "data", "mwaa-iac:color": "green", "mwaa-iac:engine": "api"}
    created = Iam(REGION).role("mwaa-analytics-green")
    target = cutover.target.role_scope(fake.environments["analytics-blue"])
    assert roles.trust_blockers(created.trust, target.environment_arn, ACCOUNT) == []
    assert roles.permission_blockers(created.policies, roles.environment_needs(target)) == []
    # the blue role still cannot serve green: the new role is green's only
    blue_role = Iam(REGION).role("mwaa-analytics-blue")
    assert roles.trust_blockers(blue_role.trust, target.environment_arn, ACCOUNT)


@pytest.mark.parametrize(
    ("tag", "engine", "refused"),
    [("terraform", "api", True), ("api", "terraform", True), ("api", "api", False), (None, "api", False)],
)
def test_mixing_engines_is_refused_with_the_fix(aws, workspace_root, tag, engine, refused) -> None:
    config = open_workspace("demo", workspace_root).load()
    blue = _setup(config)
    blue["Tags"] = {"mwaa-iac:engine": tag} if tag else {}
    cutover = _cutover(workspace_root, FakeMwaa({"analytics-blue": blue}))
    cutover.options.engine = engine
    _, checks = cutover.preflight()
    found = next(c for c in checks if c.name == "engine")
    assert found.ok is not refused
    if refused:
        assert f"--engine {tag}" in found.detail and f"tag mwaa-iac:engine={tag}" in found.detail


def test_preflight_checks_the_requirements_the_source_runs_for_every_hop(aws, workspace_root) -> None:
    from mwaa_iac.workflows.upgrade import Check

    config = open_workspace("demo", workspace_root).load()
    cutover = _cutover(workspace_root, FakeMwaa({"analytics-blue": _setup(config)}))
    cutover.options.to = "2.11.2"
    asked: list[tuple] = []

    def requirements_check(path, version, object_version=None):
        asked.append((path, version, object_version))
        return Check("requirements", version != "2.11.2", f"checked against {version}")

    cutover.requirements_check = requirements_check
    _, checks = cutover.preflight()
    assert asked == [("requirements/requirements.txt", "2.11.2", "v1")]  # the version the source runs
    failed = [c for c in checks if not c.ok]
    assert [c.name for c in failed] == ["requirements for 2.11.2"]


def test_a_customer_endpoint_clone_says_which_endpoints_to_create(aws, workspace_root) -> None:
    config = open_workspace("demo", workspace_root).load()
    fake = FakeMwaa({"analytics-blue": _setup(config)})
    reads = {"n": 0}
    original = fake.get_environment

    def get_environment(Name):
        answer = original(Name)
        if Name == "analytics-green":
            reads["n"] += 1
            services = {
                "DatabaseVpcEndpointService": "com.amazonaws.vpce.us-east-1.vpce-svc-db",
                "WebserverVpcEndpointService": "com.amazonaws.vpce.us-east-1.vpce-svc-web",
            }
            status = "PENDING" if reads["n"] < 4 else "AVAILABLE"
            answer = {"Environment": {**answer["Environment"], **services, "Status": status}}
        return answer

    fake.get_environment = get_environment
    events: list[dict] = []
    cutover = _cutover(workspace_root, fake)
    cutover.emit = events.append
    cutover.journal = Journal.start(LocalStore(workspace_root / "j"), "c.jsonl", "cutover", {})
    cutover.target.create("2.9.2")
    told = [e for e in events if e["event"] == "target.pending_endpoints"]
    assert len(told) == 1
    assert told[0]["services"] == [
        "com.amazonaws.vpce.us-east-1.vpce-svc-db",
        "com.amazonaws.vpce.us-east-1.vpce-svc-web",
    ]
    assert "aws ec2 create-vpc-endpoint" in told[0]["fix"] and "vpce-svc-web" in told[0]["fix"]
