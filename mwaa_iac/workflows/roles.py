"""Which execution role the target colour gets, and whether a role can serve an environment.

The rule (api engine; the terraform engine's module makes the same choice):

1. ``execution_role_arn`` in mwaa.yaml: that role, shared by both colours: it must serve the target;
2. else the source's role, when it can serve the target too (a shared role made by hand);
3. else the target's own role ``mwaa-<target>`` (the name ``modules/mwaa-environment`` uses): reused
   when it exists and serves the target, created (trust and permissions scoped to the target, the
   DR prefix and its KMS key included) when it does not exist.

A role that cannot serve the target is refused before anything is created, naming the trust
condition or the missing permission that blocks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mwaa_iac.adapters.iam import Iam, RoleDocuments
from mwaa_iac.core import roles
from mwaa_iac.core.config import EnvironmentConfig
from mwaa_iac.core.findings import Finding


def scope_for(
    config: EnvironmentConfig,
    environment: str,
    source_environment: dict[str, Any],
    *,
    dr_kms_key: str | None = None,
) -> roles.RoleScope:
    """What ``environment``'s role must reach; account, region and partition from the source's ARN
    (``arn:<partition>:airflow:<region>:<account>:environment/<name>``)."""
    arn = str(source_environment.get("Arn") or "")
    parts = arn.split(":")
    partition, region, account = (
        (parts[1], parts[3], parts[4]) if len(parts) > 5 else ("aws", config.region, "")
    )
    objects = tuple(
        str(source_environment[key])
        for key in ("RequirementsS3Path", "PluginsS3Path", "StartupScriptS3Path")
        if source_environment.get(key)
    )
    bucket = str(source_environment.get("SourceBucketArn") or config.source.bucket_arn).rsplit(":", 1)[-1]
    if dr_kms_key and not dr_kms_key.startswith("arn:") and not dr_kms_key.startswith("alias/"):
        dr_kms_key = f"arn:{partition}:kms:{region}:{account}:key/{dr_kms_key}"
    elif dr_kms_key and dr_kms_key.startswith("alias/"):
        dr_kms_key = None  # an alias cannot be matched against key ARNs without kms:DescribeKey
    return roles.RoleScope(
        partition=partition,
        region=region,
        account=account,
        environment=environment,
        source_bucket=bucket,
        dag_s3_path=str(source_environment.get("DagS3Path") or config.source.dag_s3_path),
        object_paths=objects,
        dr_bucket=config.dr.backup_bucket,
        dr_prefix=f"{config.dr.path_prefix.strip('/')}/{config.name}",
        dr_kms_key=dr_kms_key,
        kms_key=source_environment.get("KmsKey") or config.kms_key,
    )


def blockers(documents: RoleDocuments, scope: roles.RoleScope) -> list[str]:
    found = [
        f"trust: {b}" for b in roles.trust_blockers(documents.trust, scope.environment_arn, scope.account)
    ]
    found += [
        f"permissions: {b}"
        for b in roles.permission_blockers(documents.policies, roles.environment_needs(scope))
    ]
    return found


def summary(found: list[str], limit: int = 3) -> str:
    """The blocking conditions, trust first, at most ``limit`` of them and how many more."""
    more = len(found) - limit
    return "; ".join(found[:limit]) + (f"; and {more} more" if more > 0 else "")


def role_finding(iam: Iam, role_arn: str, scope: roles.RoleScope) -> Finding:
    """Does ``role_arn`` serve ``scope.environment``? (doctor's check of a role)."""
    name = f"execution role serves {scope.environment}"
    documents = iam.role(role_arn)
    if documents is None:
        return Finding(name, False, f"{role_arn} does not exist", fix="create it (modules/mwaa-environment)")
    found = blockers(documents, scope)
    if found:
        return Finding(name, False, f"{documents.name}: {summary(found)}", fix=_widen(documents, scope))
    extra = " (a permissions boundary is attached and not evaluated)" if documents.boundary else ""
    return Finding(name, True, f"{documents.name}: trust and permissions admit {scope.environment}{extra}")


def _widen(documents: RoleDocuments, scope: roles.RoleScope) -> str:
    return (
        f"widen {documents.name}'s trust (aws:SourceArn {scope.environment_arn}) and its policy to "
        f"{scope.environment}'s resources"
    )


def _fix_configured(documents: RoleDocuments, scope: roles.RoleScope) -> str:
    own = roles.role_name_for(scope.environment)
    return (
        f"remove execution_role_arn from mwaa.yaml (then {scope.environment} gets a role of its own, "
        f"{own}, as the module makes it), or {_widen(documents, scope)}"
    )


def _fix_own(documents: RoleDocuments, scope: roles.RoleScope) -> str:
    return (
        f"delete {documents.name} (the api engine then creates it scoped to {scope.environment}), or "
        + _widen(documents, scope)
    )


@dataclass(frozen=True)
class RoleChoice:
    arn: str | None  # None: to be created
    name: str
    action: str  # "reuse" | "create" | "refuse"
    detail: str
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.action != "refuse"

    def finding(self, environment: str) -> Finding:
        return Finding(f"execution role for {environment}", self.ok, self.detail, fix=self.fix)

    def text(self) -> str:
        return self.detail + (f" (fix: {self.fix})" if self.fix else "")


def choose_target_role(
    iam: Iam, config: EnvironmentConfig, source_environment: dict[str, Any], scope: roles.RoleScope
) -> RoleChoice:
    target = scope.environment
    if config.execution_role_arn:
        documents = iam.role(config.execution_role_arn)
        if documents is None:
            return RoleChoice(
                None,
                config.execution_role_arn,
                "refuse",
                f"execution_role_arn {config.execution_role_arn} does not exist",
                fix="create it, or remove execution_role_arn from mwaa.yaml",
            )
        found = blockers(documents, scope)
        if found:
            return RoleChoice(
                documents.arn,
                documents.name,
                "refuse",
                f"{documents.name} (mwaa.yaml's execution_role_arn) cannot serve {target}: {summary(found)}",
                fix=_fix_configured(documents, scope),
            )
        return RoleChoice(
            documents.arn, documents.name, "reuse", f"{documents.name} (execution_role_arn) serves {target}"
        )
    source_role = source_environment.get("ExecutionRoleArn")
    source_blockers: list[str] = []
    if source_role:
        documents = iam.role(source_role)
        if documents is not None:
            source_blockers = blockers(documents, scope)
            if not source_blockers:
                return RoleChoice(
                    documents.arn,
                    documents.name,
                    "reuse",
                    f"the source's role {documents.name} serves {target} too",
                )
    own = roles.role_name_for(target)
    documents = iam.role(own)
    if documents is None:
        why = f" (the source's role cannot: {source_blockers[0]})" if source_blockers else ""
        return RoleChoice(
            None,
            own,
            "create",
            f"{own} will be created, trusting only {target}, with its logs, metrics, DAG folder and "
            f"s3://{scope.dr_bucket}/{scope.dr_prefix}/"
            + (" and the DR key" if scope.dr_kms_key else "")
            + why,
        )
    found = blockers(documents, scope)
    if found:
        return RoleChoice(
            documents.arn,
            documents.name,
            "refuse",
            f"{documents.name} exists but cannot serve {target}: {summary(found)}",
            fix=_fix_own(documents, scope),
        )
    return RoleChoice(documents.arn, documents.name, "reuse", f"{documents.name} serves {target}")


def create_target_role(iam: Iam, choice: RoleChoice, scope: roles.RoleScope, tags: dict[str, str]) -> str:
    """Create the role ``choose_target_role`` decided to create; returns its ARN."""
    return iam.create_role(
        choice.name,
        roles.trust_policy(scope),
        roles.execution_policy(scope),
        description=f"Execution role of MWAA environment {scope.environment} (mwaa-iac)",
        tags=tags,
    )
