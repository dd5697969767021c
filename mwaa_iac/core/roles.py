"""Can an execution role serve an MWAA environment? A small, pure IAM evaluator.

MWAA assumes the execution role as ``airflow.amazonaws.com`` and ``airflow-env.amazonaws.com`` with
the environment as ``aws:SourceArn``; roles made per environment (``modules/mwaa-environment``) trust
only their own environment and grant logs, metrics and objects of that environment only, so the
other colour cannot use them. This module answers, from the role's trust policy and permission
policies:

- which trust statement admits the environment, or which condition blocks it (named, with the values);
- which of the actions the environment needs (metrics, logs, DAG folder, requirements, the DR prefix
  and its KMS key) the permission policies do not allow, and why.

It evaluates Allow/Deny, Action/NotAction, Resource/NotResource with wildcards and the condition
operators execution roles use (String*, Arn*, Bool, ``...IfExists``, ``ForAnyValue:``/``ForAllValues:``).
It does not see SCPs, permission boundaries or resource policies: a role it passes may still be
refused by those (the caller says so). It also builds the per-environment role the api engine creates,
the same one the Terraform module declares. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MWAA_PRINCIPALS = ("airflow.amazonaws.com", "airflow-env.amazonaws.com")


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    why: str
    context: tuple[tuple[str, str], ...] = ()


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str | bool | int) else list(value)


def _wild(pattern: str, value: str, *, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _match_values(operator: str, values: list[str], actual: str) -> bool:
    base = operator
    for tail in ("IfExists",):
        base = base.removesuffix(tail)
    if base in ("StringEquals", "ArnEquals"):
        return actual in values
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in [v.lower() for v in values]
    if base in ("StringLike", "ArnLike"):
        return any(_wild(v, actual) for v in values)
    if base in ("StringNotEquals", "ArnNotEquals"):
        return actual not in values
    if base in ("StringNotLike", "ArnNotLike"):
        return not any(_wild(v, actual) for v in values)
    if base == "Bool":
        return actual.lower() in [str(v).lower() for v in values]
    raise KeyError(base)


def condition_blockers(condition: Mapping[str, Any] | None, context: Mapping[str, str]) -> list[str]:
    """Each condition (operator, key, values) that does not hold for ``context``, as text; an
    operator or key that cannot be evaluated here counts as not holding."""
    blockers = []
    for raw_operator, pairs in (condition or {}).items():
        operator = raw_operator.split(":", 1)[-1]  # ForAnyValue:/ForAllValues: on one value each
        for key, raw_values in (pairs or {}).items():
            values = [str(v) for v in _list(raw_values)]
            actual = context.get(key) if key in context else context.get(key.lower())
            if actual is None:
                if operator.endswith("IfExists") or operator.startswith(("StringNot", "ArnNot")):
                    continue
                blockers.append(f"{raw_operator} {key} {values}: {key} is not known here")
                continue
            try:
                holds = _match_values(operator, values, actual)
            except KeyError:
                blockers.append(f"{raw_operator} {key}: operator not evaluated here")
                continue
            if not holds:
                blockers.append(f"{raw_operator} {key} {values} does not match {actual}")
    return blockers


def _statements(document: Mapping[str, Any] | str | None) -> list[dict[str, Any]]:
    if document is None:
        return []
    parsed: Mapping[str, Any] = json.loads(document) if isinstance(document, str) else document
    return [dict(s) for s in _list(parsed.get("Statement"))]


def _covers(statement: Mapping[str, Any], key: str, value: str, *, case: bool) -> bool:
    if key in statement:
        return any(_wild(p, value, case=case) for p in _list(statement[key]))
    negated = "Not" + key
    if negated in statement:
        return not any(_wild(p, value, case=case) for p in _list(statement[negated]))
    return False


def trust_blockers(trust: Mapping[str, Any] | str | None, environment_arn: str, account: str) -> list[str]:
    """Why the trust policy does not let MWAA assume the role for ``environment_arn`` (empty: it
    does). Both MWAA service principals must be admitted."""
    context = {"aws:SourceArn": environment_arn, "aws:SourceAccount": account}
    statements = _statements(trust)
    problems: list[str] = []
    for principal in MWAA_PRINCIPALS:
        reasons = []
        admitted = False
        for index, statement in enumerate(statements):
            sid = statement.get("Sid") or f"#{index + 1}"
            services = (
                _list((statement.get("Principal") or {}).get("Service"))
                if isinstance(statement.get("Principal"), dict)
                else []
            )
            if not _covers(statement, "Action", "sts:AssumeRole", case=False) or principal not in services:
                continue
            blockers = condition_blockers(statement.get("Condition"), context)
            if statement.get("Effect") == "Deny" and not blockers:
                problems.append(f"trust statement {sid} denies {principal}")
                admitted = False
                break
            if statement.get("Effect") == "Allow":
                if blockers:
                    reasons.append(f"trust statement {sid}: " + "; ".join(blockers))
                else:
                    admitted = True
        if not admitted and not any(p.endswith(f"denies {principal}") for p in problems):
            problems.append(
                f"{principal} may not assume it: " + ("; ".join(reasons) if reasons else "no trust statement")
            )
    return problems


def permission_blockers(policies: Mapping[str, Mapping[str, Any]], needs: Iterable[Need]) -> list[str]:
    """Each need the permission policies (name -> document) do not allow, with the reason."""
    problems = []
    for need in needs:
        context = dict(need.context)
        allowed_by = None
        denied_by = None
        conditional = []
        for name, document in policies.items():
            for index, statement in enumerate(_statements(document)):
                if not _covers(statement, "Action", need.action, case=False):
                    continue
                if not _covers(statement, "Resource", need.resource, case=True):
                    continue
                sid = f"{name}/{statement.get('Sid') or '#' + str(index + 1)}"
                blockers = condition_blockers(statement.get("Condition"), context)
                if statement.get("Effect") == "Deny" and not blockers:
                    denied_by = sid
                elif statement.get("Effect") == "Allow":
                    if blockers:
                        conditional.append(f"{sid} only if " + "; ".join(blockers))
                    else:
                        allowed_by = sid
        if denied_by:
            problems.append(f"{need.action} on {need.resource} ({need.why}): denied by {denied_by}")
        elif not allowed_by:
            detail = "; ".join(conditional) if conditional else "no statement allows it"
            problems.append(f"{need.action} on {need.resource} ({need.why}): {detail}")
    return problems


# -- what an environment needs, and the role that grants it --------------------------------------


@dataclass(frozen=True)
class RoleScope:
    """What one environment's execution role must reach."""

    partition: str
    region: str
    account: str
    environment: str  # the MWAA environment name
    source_bucket: str
    dag_s3_path: str
    object_paths: tuple[str, ...] = ()  # requirements, plugins, startup script
    dr_bucket: str | None = None
    dr_prefix: str | None = None  # <dr.path_prefix>/<name>
    dr_kms_key: str | None = None
    kms_key: str | None = None  # the environment's customer managed key (CreateEnvironment KmsKey)

    @property
    def environment_arn(self) -> str:
        return f"arn:{self.partition}:airflow:{self.region}:{self.account}:environment/{self.environment}"

    @property
    def log_groups_arn(self) -> str:
        return (
            f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:airflow-{self.environment}-*"
        )


def environment_needs(scope: RoleScope) -> list[Need]:
    bucket = f"arn:{scope.partition}:s3:::{scope.source_bucket}"
    logs = scope.log_groups_arn.replace("-*", "-Scheduler")
    needs = [
        Need("airflow:PublishMetrics", scope.environment_arn, "the environment's own metrics"),
        Need("logs:PutLogEvents", logs + ":log-stream:x", "the environment's log groups"),
        Need("s3:ListBucket", bucket, "the source bucket"),
        Need("s3:GetObject", f"{bucket}/{scope.dag_s3_path.strip('/')}/x.py", "the DAG folder"),
    ]
    needs += [
        Need("s3:GetObject", f"{bucket}/{p.lstrip('/')}", "a file MWAA installs") for p in scope.object_paths
    ]
    if scope.dr_bucket and scope.dr_prefix:
        dr_object = (
            f"arn:{scope.partition}:s3:::{scope.dr_bucket}/{scope.dr_prefix.strip('/')}/x/manifest.json"
        )
        needs += [
            Need("s3:PutObject", dr_object, "writing backups (the DR bucket prefix)"),
            Need("s3:GetObject", dr_object, "reading backups for a restore"),
        ]
        if scope.dr_kms_key:
            via = (("kms:ViaService", f"s3.{scope.region}.amazonaws.com"),)
            needs += [
                Need("kms:GenerateDataKey", scope.dr_kms_key, "the DR bucket's KMS key", via),
                Need("kms:Decrypt", scope.dr_kms_key, "the DR bucket's KMS key", via),
            ]
    return needs


def role_name_for(environment: str) -> str:
    """The execution role name ``modules/mwaa-environment`` gives an environment (IAM: ≤ 64)."""
    return f"mwaa-{environment}"[:64]


def trust_policy(scope: RoleScope) -> dict[str, Any]:
    """Trust for one environment only (confused-deputy protection), as the module writes it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "MwaaAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": list(MWAA_PRINCIPALS)},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": scope.account},
                    "ArnLike": {"aws:SourceArn": scope.environment_arn},
                },
            }
        ],
    }


def execution_policy(scope: RoleScope) -> dict[str, Any]:
    """The permission policy of one environment's role: what ``modules/mwaa-environment`` grants."""
    p, region = scope.partition, scope.region
    bucket = f"arn:{p}:s3:::{scope.source_bucket}"
    objects = [f"{bucket}/{scope.dag_s3_path.strip('/')}/*"] + [
        f"{bucket}/{o.lstrip('/')}" for o in scope.object_paths
    ]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "PublishEnvironmentMetrics",
            "Effect": "Allow",
            "Action": "airflow:PublishMetrics",
            "Resource": scope.environment_arn,
        },
        {
            "Sid": "ReadSourceBucket",
            "Effect": "Allow",
            "Action": [
                "s3:GetBucketLocation",
                "s3:GetBucketPublicAccessBlock",
                "s3:GetBucketVersioning",
                "s3:GetEncryptionConfiguration",
                "s3:ListBucket",
                "s3:ListBucketVersions",
            ],
            "Resource": bucket,
        },
        {
            "Sid": "ReadSourceObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": objects,
        },
        {
            "Sid": "CheckAccountPublicAccessBlock",
            "Effect": "Allow",
            "Action": "s3:GetAccountPublicAccessBlock",
            "Resource": "*",
        },
        {
            "Sid": "WriteEnvironmentLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:GetLogEvents",
                "logs:GetLogGroupFields",
                "logs:GetLogRecord",
                "logs:GetQueryResults",
                "logs:PutLogEvents",
            ],
            "Resource": scope.log_groups_arn,
        },
        {"Sid": "DescribeLogGroups", "Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
        {
            "Sid": "PublishCloudWatchMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
        },
        {
            "Sid": "UseCeleryQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
            ],
            "Resource": f"arn:{p}:sqs:{region}:*:airflow-celery-*",
        },
    ]
    if scope.kms_key:  # customer managed key: only that key, only through SQS and S3
        statements.append(
            {
                "Sid": "UseCustomerManagedKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"],
                "Resource": scope.kms_key,
                "Condition": {
                    "StringLike": {
                        "kms:ViaService": [f"sqs.{region}.amazonaws.com", f"s3.{region}.amazonaws.com"]
                    }
                },
            }
        )
    else:  # the Celery queue's AWS owned key lives outside the account
        statements.append(
            {
                "Sid": "UseAwsOwnedQueueKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"],
                "NotResource": f"arn:{p}:kms:*:{scope.account}:key/*",
                "Condition": {"StringLike": {"kms:ViaService": [f"sqs.{region}.amazonaws.com"]}},
            }
        )
    if scope.dr_bucket and scope.dr_prefix:
        prefix = scope.dr_prefix.strip("/")
        dr_bucket = f"arn:{p}:s3:::{scope.dr_bucket}"
        statements += [
            {
                "Sid": "ListDrPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": dr_bucket,
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
            },
            {
                "Sid": "ReadWriteDrPrefix",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{dr_bucket}/{prefix}/*",
            },
        ]
        if scope.dr_kms_key:
            statements.append(
                {
                    "Sid": "UseDrBucketKey",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": scope.dr_kms_key,
                    "Condition": {"StringLike": {"kms:ViaService": [f"s3.{region}.amazonaws.com"]}},
                }
            )
    return {"Version": "2012-10-17", "Statement": statements}


def environment_arn_from(role_or_env_arn: str, environment: str) -> str:
    """``arn:<p>:airflow:<region>:<account>:environment/<environment>`` from another MWAA ARN."""
    head = role_or_env_arn.split(":environment/")[0]
    return f"{head}:environment/{environment}"
