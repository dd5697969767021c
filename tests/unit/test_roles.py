"""Execution roles: the pure evaluator (trust, permissions) and the target-role choice against moto's IAM."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from mwaa_iac.adapters.iam import Iam
from mwaa_iac.core import roles
from mwaa_iac.core.config import parse_config_text
from mwaa_iac.workflows.roles import choose_target_role, create_target_role, role_finding, scope_for

ACCOUNT = "123456789012"


def _scope(env: str, **kw) -> roles.RoleScope:
    base = dict(
        partition="aws", region="us-east-1", account=ACCOUNT, environment=env, source_bucket="src",
        dag_s3_path="dags", object_paths=("requirements/requirements.txt",), dr_bucket="dr",
        dr_prefix="mwaa-dr/analytics",
    )  # fmt: skip
    return roles.RoleScope(**{**base, **kw})


def test_a_role_made_for_blue_cannot_serve_green_and_says_why() -> None:
    blue, green = _scope("analytics-blue"), _scope("analytics-green")
    trust = roles.trust_policy(blue)
    assert roles.trust_blockers(trust, blue.environment_arn, ACCOUNT) == []
    problems = roles.trust_blockers(trust, green.environment_arn, ACCOUNT)
    assert len(problems) == 2  # both MWAA principals
    assert "ArnLike aws:SourceArn" in problems[0] and "environment/analytics-blue" in problems[0]
    assert "does not match arn:aws:airflow:us-east-1:123456789012:environment/analytics-green" in problems[0]
    policy = {"mwaa-execution": roles.execution_policy(blue)}
    assert roles.permission_blockers(policy, roles.environment_needs(blue)) == []
    missing = roles.permission_blockers(policy, roles.environment_needs(green))
    assert any(m.startswith("airflow:PublishMetrics on arn:aws:airflow:") for m in missing)
    assert any("logs:PutLogEvents" in m and "airflow-analytics-green-" in m for m in missing)
    # the DR prefix is the deployment's, shared by both colours
    assert not any("mwaa-dr/analytics" in m for m in missing)


def test_trust_without_conditions_serves_any_environment_and_deny_wins() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": list(roles.MWAA_PRINCIPALS)},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    assert roles.trust_blockers(trust, _scope("x").environment_arn, ACCOUNT) == []
    only_one = {"Statement": [{**trust["Statement"][0], "Principal": {"Service": "airflow.amazonaws.com"}}]}
    assert roles.trust_blockers(only_one, _scope("x").environment_arn, ACCOUNT) == [
        "airflow-env.amazonaws.com may not assume it: no trust statement"
    ]
    scope = _scope("x")
    deny = {
        "p": roles.execution_policy(scope),
        "deny": {"Statement": [{"Effect": "Deny", "Action": "s3:Put*", "Resource": "*", "Sid": "NoWrites"}]},
    }
    missing = roles.permission_blockers(deny, roles.environment_needs(scope))
    assert missing and "denied by deny/NoWrites" in missing[0]


def test_missing_dr_grants_and_kms_condition_are_named() -> None:
    scope = _scope("analytics-green", dr_kms_key="arn:aws:kms:us-east-1:123456789012:key/k")
    without_dr = roles.execution_policy(_scope("analytics-green", dr_bucket=None))
    missing = roles.permission_blockers({"p": without_dr}, roles.environment_needs(scope))
    assert any(m.startswith("s3:PutObject on arn:aws:s3:::dr/mwaa-dr/analytics/") for m in missing)
    assert any(m.startswith("kms:GenerateDataKey on arn:aws:kms:") for m in missing)
    assert (
        roles.permission_blockers({"p": roles.execution_policy(scope)}, roles.environment_needs(scope)) == []
    )


def test_conditions() -> None:
    context = {"aws:SourceArn": "arn:aws:airflow:us-east-1:1:environment/a-green", "aws:SourceAccount": "1"}
    assert roles.condition_blockers({"StringEquals": {"aws:SourceAccount": "1"}}, context) == []
    assert (
        roles.condition_blockers(
            {"ArnLike": {"aws:SourceArn": "arn:aws:airflow:*:1:environment/a-*"}}, context
        )
        == []
    )
    assert roles.condition_blockers({"StringEqualsIfExists": {"aws:PrincipalTag/x": "y"}}, context) == []
    assert (
        "is not known here"
        in roles.condition_blockers({"StringEquals": {"aws:PrincipalOrgID": "o"}}, context)[0]
    )


@pytest.fixture
def iam(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_MWAA"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield Iam(client=boto3.client("iam", region_name="us-east-1"))


def _source(role_arn: str) -> dict:
    return {
        "Arn": f"arn:aws:airflow:us-east-1:{ACCOUNT}:environment/analytics-blue",
        "ExecutionRoleArn": role_arn,
        "SourceBucketArn": "arn:aws:s3:::analytics-airflow-source",
        "DagS3Path": "dags",
        "RequirementsS3Path": "requirements/requirements.txt",
    }


def test_choice_creates_the_targets_own_role_when_the_source_role_is_scoped(iam, example_text) -> None:
    config = parse_config_text(example_text, "mwaa.yaml")
    blue_scope = scope_for(config, "analytics-blue", _source(""))
    blue_arn = create_target_role(
        iam, choose_target_role(iam, config, _source(""), blue_scope), blue_scope, {"mwaa-iac:color": "blue"}
    )
    assert blue_arn.endswith(":role/service-role/mwaa-analytics-blue")
    source = _source(blue_arn)
    green_scope = scope_for(config, "analytics-green", source)
    assert role_finding(iam, blue_arn, blue_scope).ok
    finding = role_finding(iam, blue_arn, green_scope)
    assert not finding.ok and "aws:SourceArn" in finding.detail and "analytics-green" in finding.detail
    choice = choose_target_role(iam, config, source, green_scope)
    assert choice.action == "create" and choice.name == "mwaa-analytics-green"
    assert "the source's role cannot" in choice.detail
    green_arn = create_target_role(iam, choice, green_scope, {})
    again = choose_target_role(iam, config, source, green_scope)
    assert again.action == "reuse" and again.arn == green_arn


def test_choice_refuses_a_configured_role_that_cannot_serve_the_target(iam, example_text) -> None:
    blue = _scope(
        "analytics-blue", source_bucket="analytics-airflow-source", dr_bucket="analytics-mwaa-dr-backups"
    )
    iam.client.create_role(RoleName="shared", AssumeRolePolicyDocument=json.dumps(roles.trust_policy(blue)))
    iam.client.put_role_policy(
        RoleName="shared", PolicyName="p", PolicyDocument=json.dumps(roles.execution_policy(blue))
    )
    arn = iam.role("shared").arn
    config = parse_config_text(example_text + f"execution_role_arn: {arn}\n", "mwaa.yaml")
    scope = scope_for(config, "analytics-green", _source(arn))
    choice = choose_target_role(iam, config, _source(arn), scope)
    assert choice.action == "refuse"
    assert "execution_role_arn" in choice.detail and "ArnLike aws:SourceArn" in choice.detail
    assert choice.fix and "remove execution_role_arn" in choice.fix and "fix:" in choice.text()


def test_the_local_demos_shared_role_serves_both_colours() -> None:
    from mwaa_iac.local.demo import shared_role_policy

    policy = {
        "mwaa-execution": shared_role_policy("demo", "us-east-1", ACCOUNT, "demo-airflow-source", "demo-dr")
    }
    for color in ("blue", "green"):
        scope = roles.RoleScope(
            "aws", "us-east-1", ACCOUNT, f"demo-{color}", "demo-airflow-source", "dags",
            ("requirements/requirements.txt",), "demo-dr", "mwaa-dr/demo",
        )  # fmt: skip
        assert roles.permission_blockers(policy, roles.environment_needs(scope)) == []


def test_the_api_engines_role_grants_what_the_module_grants() -> None:
    """roles.execution_policy mirrors modules/mwaa-environment's policy document, statement by statement."""
    import re
    from pathlib import Path

    main_tf = (Path(__file__).resolve().parents[2] / "modules/mwaa-environment/main.tf").read_text()
    module_sids = set(re.findall(r'^\s*sid\s*=\s*"([A-Za-z]+)"', main_tf, flags=re.MULTILINE)) - {
        "MwaaAssumeRole"
    }
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    python_sids = {s["Sid"] for s in roles.execution_policy(_scope("g", dr_kms_key=key))["Statement"]}
    python_sids |= {
        s["Sid"] for s in roles.execution_policy(_scope("g", dr_kms_key=key, kms_key=key))["Statement"]
    }
    assert module_sids == python_sids
