"""IAM for execution roles: read a role's trust and permission policies, create a per-environment role.

Reads only (GetRole, ListRolePolicies/GetRolePolicy, ListAttachedRolePolicies/GetPolicy/
GetPolicyVersion) except :meth:`Iam.create_role`, which the api engine calls when the target colour
needs a role of its own (the same role ``modules/mwaa-environment`` declares).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from mwaa_iac.adapters import aws
from mwaa_iac.adapters.aws import aws_error
from mwaa_iac.errors import AwsError


@dataclass
class RoleDocuments:
    arn: str
    name: str
    trust: dict[str, Any]
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> document
    boundary: str | None = None


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return json.loads(urllib.parse.unquote(str(value)))


def role_name(arn_or_name: str) -> str:
    return arn_or_name.rsplit("/", 1)[-1]


DENIED_HINT = "these credentials lack the IAM read permissions of examples/iam/operator-policy.json"


def _fail(action: str, exc: Exception) -> AwsError:
    return aws_error(action, exc, denied_hint=DENIED_HINT)


@dataclass
class Iam:
    region: str | None = None
    client: Any = None

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = aws.client("iam", self.region)

    def role(self, arn_or_name: str) -> RoleDocuments | None:
        """The role's documents, or None when it does not exist."""
        name = role_name(arn_or_name)
        try:
            role = self.client.get_role(RoleName=name)["Role"]
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return None
            raise _fail(f"cannot read role {name}", exc) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise _fail(f"cannot read role {name}", exc) from exc
        documents = RoleDocuments(
            arn=role["Arn"],
            name=name,
            trust=_document(role.get("AssumeRolePolicyDocument") or {}),
            boundary=(role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
        )
        try:
            for page in self.client.get_paginator("list_role_policies").paginate(RoleName=name):
                for policy_name in page.get("PolicyNames", []):
                    got = self.client.get_role_policy(RoleName=name, PolicyName=policy_name)
                    documents.policies[policy_name] = _document(got["PolicyDocument"])
            for page in self.client.get_paginator("list_attached_role_policies").paginate(RoleName=name):
                for attached in page.get("AttachedPolicies", []):
                    arn = attached["PolicyArn"]
                    version = self.client.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                    got = self.client.get_policy_version(PolicyArn=arn, VersionId=version)
                    documents.policies[arn] = _document(got["PolicyVersion"]["Document"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise _fail(f"cannot read the policies of role {name}", exc) from exc
        return documents

    def create_role(
        self,
        name: str,
        trust: dict[str, Any],
        policy: dict[str, Any],
        *,
        description: str,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Create ``name`` with its trust and inline policy ``mwaa-execution``; returns its ARN.
        An existing role of that name is left as it is (the caller checks it)."""
        try:
            arn = self.client.create_role(
                RoleName=name,
                Path="/service-role/",  # as modules/mwaa-environment (execution_role_path)
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=description,
                Tags=[{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())],
            )["Role"]["Arn"]
            self.client.put_role_policy(
                RoleName=name, PolicyName="mwaa-execution", PolicyDocument=json.dumps(policy)
            )
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "EntityAlreadyExists":
                existing = self.role(name)
                assert existing is not None
                return existing.arn
            raise _fail(f"cannot create role {name}", exc) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise _fail(f"cannot create role {name}", exc) from exc
        return str(arn)
