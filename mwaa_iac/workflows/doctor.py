"""`mwaa-iac doctor`: read-only checks of what a cutover or an upgrade will need in the account.

Each check is a :class:`~mwaa_iac.core.findings.Finding` (✓ holds, ✗ blocks, ! warns) with what was
seen and how to fix it. Nothing is created or changed: only Get/List/Head calls. A check that cannot
run (AccessDenied, a missing environment) is itself a finding, and the others still run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mwaa_iac.adapters.bucket_check import default_kms_key
from mwaa_iac.adapters.iam import Iam
from mwaa_iac.adapters.mwaa import EnvironmentNotFoundError, MwaaClient, observe
from mwaa_iac.adapters.network import Network, endpoint_fix, endpoint_services
from mwaa_iac.adapters.routing import Routing
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core.config import EnvironmentConfig
from mwaa_iac.core.findings import Finding
from mwaa_iac.core.status import ready_for_update
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.workflows.journal import LOCK_NAME, Lock, is_stale
from mwaa_iac.workflows.roles import choose_target_role, role_finding, scope_for
from mwaa_iac.workflows.state import open_state, require_shared_state_on_ci
from mwaa_iac.workspace import Workspace

OBJECTS = (
    ("requirements", "RequirementsS3Path", "RequirementsS3ObjectVersion"),
    ("plugins", "PluginsS3Path", "PluginsS3ObjectVersion"),
    ("startup script", "StartupScriptS3Path", "StartupScriptS3ObjectVersion"),
)


@dataclass
class Doctor:
    ws: Workspace
    config: EnvironmentConfig
    mwaa: MwaaClient
    s3: S3
    iam: Iam
    routing: Routing
    network: Network | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    emit: Callable[[Finding], None] = lambda finding: None
    findings: list[Finding] = field(default_factory=list, init=False)

    @property
    def source(self) -> str:
        return self.config.environment_name(self.config.active_color)

    @property
    def target(self) -> str:
        return self.config.environment_name(self.config.active_color.other)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)
        self.emit(finding)

    def guarded(self, name: str, check: Callable[[], None]) -> None:
        try:
            check()
        except MwaaIacError as exc:
            self.add(Finding(name, False, exc.message, fix=exc.hint))

    def run(self) -> list[Finding]:
        source = None
        try:
            source = self.mwaa.get_environment(self.source)
        except EnvironmentNotFoundError:
            self.add(
                Finding(
                    "source environment",
                    False,
                    f"{self.source} (the active colour, {self.config.active_color}) does not exist",
                    fix="check region and deployment.active_color in mwaa.yaml, or create it "
                    f"(mwaa-iac apply --env {self.ws.env} --phase steady)",
                )
            )
        except MwaaIacError as exc:
            self.add(Finding("source environment", False, exc.message, fix=exc.hint))
        if source is not None:
            self._source(source)
            self.guarded("target colour", self._target)
            self.guarded("execution roles", lambda: self._roles(source))
            self.guarded("endpoint mode", lambda: self._endpoints(source))
            self.guarded("source bucket", lambda: self._source_bucket(source))
            self.guarded("object versions", lambda: self._object_versions(source))
        self.guarded("backup bucket", self._backup_bucket)
        self.guarded("lock store", self._lock_store)
        self.guarded("routing", self._routing)
        return self.findings

    # -- checks ----------------------------------------------------------------------------------

    def _source(self, env: dict[str, Any]) -> None:
        version = env.get("AirflowVersion")
        recorded = self.config.deployment.version_of(self.config.active_color)
        why = ready_for_update(observe(env))
        self.add(
            Finding(
                "source environment",
                why is None,
                f"{self.source}: {env.get('Status')}, Airflow {version}" + (f" ({why})" if why else ""),
                fix=None
                if why is None
                else "wait until it is AVAILABLE (mwaa-iac watches MAINTENANCE/UPDATING)",
            )
        )
        engine = (env.get("Tags") or {}).get("mwaa-iac:engine")
        self.add(
            Finding(
                "engine",
                True,
                f"{engine} (tag mwaa-iac:engine): cutover and upgrade refuse the other engine"
                if engine
                else "not recorded (no mwaa-iac:engine tag): either engine is accepted",
            )
        )
        if recorded and version and recorded != version:
            self.add(
                Finding(
                    "deployment record",
                    False,
                    f"mwaa.yaml records {recorded} for {self.config.active_color}, "
                    f"{self.source} runs {version}",
                    fix=f'set deployment.{self.config.active_color}: "{version}" in mwaa.yaml',
                    blocking=False,
                )
            )

    def _target(self) -> None:
        if self.mwaa.exists(self.target):
            self.add(
                Finding(
                    "target colour free",
                    False,
                    f"{self.target} exists (normal during the soak after a cutover; "
                    "a new cutover needs it gone)",
                    fix=f"after the soak: mwaa-iac cleanup --env {self.ws.env}",
                    blocking=False,
                )
            )
        else:
            self.add(Finding("target colour free", True, f"{self.target} does not exist"))

    def _dr_kms_key(self) -> str | None:
        return default_kms_key(self.s3.client, self.config.dr.backup_bucket)

    def _roles(self, source: dict[str, Any]) -> None:
        key = self._dr_kms_key()
        role = source.get("ExecutionRoleArn")
        if role:
            self.add(
                role_finding(self.iam, role, scope_for(self.config, self.source, source, dr_kms_key=key))
            )
        scope = scope_for(self.config, self.target, source, dr_kms_key=key)
        self.add(choose_target_role(self.iam, self.config, source, scope).finding(self.target))

    def _endpoints(self, source: dict[str, Any]) -> None:
        live = source.get("EndpointManagement") or "SERVICE"
        wanted = self.config.endpoint_management
        if live != wanted:
            self.add(
                Finding(
                    "endpoint mode",
                    False,
                    f"{self.source} uses {live}, mwaa.yaml says {wanted} "
                    "(create-only: Terraform would replace it)",
                    fix=f"set endpoint_management: {live} in mwaa.yaml",
                )
            )
            return
        if live != "CUSTOMER":
            self.add(Finding("endpoint mode", True, "SERVICE: MWAA creates the VPC endpoints"))
            return
        services = endpoint_services(source)
        missing: list[str] = []
        network = self.network or Network(self.config.region)
        subnets = (source.get("NetworkConfiguration") or {}).get("SubnetIds") or []
        vpc = network.vpc_of(subnets[0]) if subnets else None
        if vpc and services:
            states = network.endpoint_states(vpc, services)
            missing = [s for s, state in states.items() if state is None or state.lower() != "available"]
        self.add(
            Finding(
                "endpoint mode",
                not missing,
                f"CUSTOMER: {self.source}'s endpoints "
                + (f"missing or not available: {', '.join(missing)}" if missing else "exist")
                + f". A new {self.target} stays PENDING until you create its own two endpoints (database, "
                "web server): their service names appear in its GetEnvironment once it is created",
                fix=endpoint_fix(source, missing) if missing else None,
            )
        )

    def _source_bucket(self, source: dict[str, Any]) -> None:
        bucket = self.config.source.bucket_name
        status = self.s3.versioning(bucket)
        self.add(
            Finding(
                "source bucket versioning",
                status == "Enabled",
                f"s3://{bucket}: versioning {status or 'never enabled'}"
                + (
                    ""
                    if status == "Enabled"
                    else " (MWAA requires it: object versions pin requirements/plugins)"
                ),
                fix=None
                if status == "Enabled"
                else f"aws s3api put-bucket-versioning --bucket {bucket} "
                "--versioning-configuration Status=Enabled",
            )
        )

    def _object_versions(self, source: dict[str, Any]) -> None:
        bucket = self.config.source.bucket_name
        for label, path_key, version_key in OBJECTS:
            path = source.get(path_key)
            if not path:
                continue
            running = source.get(version_key)
            latest = self.s3.object_version(bucket, path)
            name = f"{label} object version"
            if running and self.s3.object_version(bucket, path, running) is None:
                self.add(
                    Finding(
                        name,
                        False,
                        f"{self.source} runs s3://{bucket}/{path} version {running}, which no longer exists: "
                        "a clone cannot be created with what the source runs",
                        fix=f"upload the file again and apply it to {self.source} first "
                        "(UpdateEnvironment with the new object version), or restore the version",
                    )
                )
            elif running and latest and latest != running:
                self.add(
                    Finding(
                        name,
                        False,
                        f"{self.source} runs {path} version {running}; the latest upload ({latest}) "
                        "is not applied "
                        "to it: the clone takes the version the source runs",
                        fix="apply the new upload to the source first if the clone should run it",
                        blocking=False,
                    )
                )
            elif latest is None:
                self.add(Finding(name, False, f"s3://{bucket}/{path} does not exist"))
            else:
                self.add(Finding(name, True, f"{path} version {running or latest} (what {self.source} runs)"))

    def _backup_bucket(self) -> None:
        for finding in self.s3.bucket_findings(
            self.config.dr.backup_bucket, require_kms=self.config.dr.require_kms
        ):
            self.add(
                Finding(
                    f"backup bucket: {finding.name.removeprefix('backup bucket ')}",
                    finding.ok,
                    finding.detail,
                    finding.fix,
                    finding.blocking,
                )
            )

    def _lock_store(self) -> None:
        try:
            require_shared_state_on_ci(self.ws, self.environ)
        except MwaaIacError as exc:
            self.add(Finding("lock store", False, exc.message, fix=exc.hint))
            return
        store = open_state(self.ws, self.config, self.s3)
        if self.config.state is not None:
            status = self.s3.versioning(self.config.state.s3_bucket)  # proves the bucket is reachable
            where = f"S3 (s3://{self.config.state.s3_bucket}, versioning {status or 'off'})"
        else:
            where = "local files (one machine only)"
        holder = Lock(store).holder()
        if holder:
            stale = " (stale: its process is gone)" if is_stale(holder) else ""
            self.add(
                Finding(
                    "lock store",
                    False,
                    f"{where}: {store.where(LOCK_NAME)} is held by {holder.get('workflow')} "
                    f"(pid {holder.get('pid')} on {holder.get('host')}){stale}",
                    fix="let it finish; if it is gone, the next workflow takes it with --break-lock",
                    blocking=False,
                )
            )
        else:
            self.add(Finding("lock store", True, f"{where}: free ({store.where(LOCK_NAME)})"))

    def _routing(self) -> None:
        parameter = self.config.routing.ssm_parameter_name
        value = self.routing.read(parameter)
        if value is None:
            self.add(
                Finding(
                    "routing",
                    False,
                    f"SSM parameter {parameter} does not exist yet (go-live creates it)",
                    blocking=False,
                )
            )
            return
        active = value.get("name")
        self.add(
            Finding(
                "routing",
                active == self.source,
                f"{parameter} names {active}",
                fix=None
                if active == self.source
                else f"it should name {self.source}, the recorded active colour",
                blocking=False,
            )
        )


def doctor_exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.failed for f in findings) else 0
