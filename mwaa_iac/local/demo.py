"""The README's main job: on the local stack, seed a blue 2.9.2 environment with real history and
prepare a deployment directory for `mwaa-iac cutover` to move it to 2.10.3.

Only standard AWS calls are used (boto3 through the stack's endpoint variables), so what runs here is
what runs against AWS.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core.status import Observation, Outcome
from mwaa_iac.events import EventKind, event
from mwaa_iac.local.busy import BusyProfile, seed_busy
from mwaa_iac.local.seed import SeedPlan, run_seed, upload_dags
from mwaa_iac.workflows.watch import Watcher

DEMO_CONFIG = """# Written by `mwaa-iac local demo` for the local stack.
name: {name}
region: us-east-1
airflow_version: "{to_version}"
strategy: cutover
environment_class: mw1.small
schedulers: 2
min_workers: 1
max_workers: 2
network:
  subnet_ids: [subnet-0a1b2c3d4e5f60718, subnet-0f1e2d3c4b5a69788]
  security_group_ids: [sg-0123456789abcdef0]
source:
  bucket_arn: arn:aws:s3:::{source_bucket}
  dag_s3_path: dags
  requirements_s3_path: requirements/requirements.txt
# MWAA keeps Airflow's parsing defaults (a new DAG file listed within 300 s, a changed one re-parsed
# within 30 s); a shorter listing interval makes mwaa-iac's DR DAG files appear sooner.
airflow_configuration_options:
{config_options}{execution_role_line}dr:
  backup_bucket: {dr_bucket}
  retention_days: 30
routing:
  ssm_parameter_name: /mwaa/{name}/active
soak_hours: 1
deployment:
  active_color: blue
  blue: "{from_version}"
  green: null
"""


@dataclass
class DemoSetup:
    root: Path
    env: str
    source: str
    seeded: dict[str, Any]


# AirflowConfigurationOptions of the demo's environments (MWAA accepts these overrides).
DEMO_AIRFLOW_CONFIG = {
    "scheduler.dag_dir_list_interval": "20",
    "scheduler.min_file_process_interval": "10",
}
DEMO_ROLE = "mwaa-demo-execution"
_TRUST_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", '
    '"Principal": {"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]}}]}'
)


def ensure_role(
    iam_client: Any, name: str, policy: dict[str, Any] | None = None, policy_name: str = "mwaa-execution"
) -> str:
    """The execution role (MWAA refuses an environment whose role does not exist); returns its ARN.
    With ``policy``, that is (re)written as its inline policy ``policy_name``: the cutover checks
    that the role may do what the target colour needs (the local stack itself evaluates no IAM).
    Deployments sharing the role each keep a policy of their own."""
    try:
        arn = str(iam_client.get_role(RoleName=name)["Role"]["Arn"])
    except iam_client.exceptions.NoSuchEntityException:
        created = iam_client.create_role(
            RoleName=name, AssumeRolePolicyDocument=_TRUST_POLICY, Description="mwaa-iac local demo"
        )
        arn = str(created["Role"]["Arn"])
    if policy is not None:
        iam_client.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    return arn


def ensure_colour_role(
    iam_client: Any,
    environment: str,
    region: str,
    account: str,
    source_bucket: str,
    dr_bucket: str,
    name: str,
) -> str:
    """The execution role ``mwaa-<environment>`` as modules/mwaa-environment makes it: trust and
    permissions scoped to that environment (plus the deployment's DR prefix); returns its ARN."""
    from mwaa_iac.core.roles import RoleScope, execution_policy, role_name_for, trust_policy

    scope = RoleScope(
        "aws", region, account, environment, source_bucket, "dags", ("requirements/requirements.txt",),
        dr_bucket, f"mwaa-dr/{name}",
    )  # fmt: skip
    role = role_name_for(environment)
    try:
        arn = str(iam_client.get_role(RoleName=role)["Role"]["Arn"])
    except iam_client.exceptions.NoSuchEntityException:
        arn = str(
            iam_client.create_role(
                RoleName=role, Path="/service-role/", AssumeRolePolicyDocument=json.dumps(trust_policy(scope))
            )["Role"]["Arn"]
        )
    iam_client.put_role_policy(
        RoleName=role, PolicyName="mwaa-execution", PolicyDocument=json.dumps(execution_policy(scope))
    )
    return arn


def shared_role_policy(
    name: str, region: str, account: str, source_bucket: str, dr_bucket: str
) -> dict[str, Any]:
    """The permissions of a role shared by both colours of deployment ``name`` (the demo's
    ``execution_role_arn``): what modules/mwaa-environment grants one environment, for ``<name>-*``."""
    from mwaa_iac.core.roles import RoleScope, execution_policy

    scope = RoleScope(
        "aws", region, account, f"{name}-*", source_bucket, "dags", ("requirements/requirements.txt",),
        dr_bucket, f"mwaa-dr/{name}",
    )  # fmt: skip
    return execution_policy(scope)


def ensure_bucket(s3_client: Any, bucket: str, *, private_encrypted: bool) -> None:
    existing = {b["Name"] for b in s3_client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3_client.create_bucket(Bucket=bucket)
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if private_encrypted:
        s3_client.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3_client.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
            },
        )


def prepare(
    root: Path,
    *,
    name: str = "demo",
    from_version: str = "2.9.2",
    to_version: str = "2.10.3",
    plan: SeedPlan | None = None,
    busy: BusyProfile | None = None,
    progress: Callable[[str], None] = lambda text: None,
    poll: float = 2.0,
    sync: Callable[[str], Any] | None = None,
    per_colour_roles: bool = False,
) -> DemoSetup:
    """Buckets, the blue environment at ``from_version``, seeded history, and ``root``/environments/<name>.

    With ``busy``, the environment gets the busy workload (real runs of DAGs like a user's, retries,
    failures, mapped tasks, datasets, awkward variables and connections; ``busy.basic`` the synthetic
    bulk history), else ``plan``'s synthetic history only. ``sync(name)`` makes an environment pick up
    uploaded DAG files at once (the local stack's admin API); without it, the 30 s sync applies."""
    plan = plan or SeedPlan()
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    source_bucket, dr_bucket = f"{name}-airflow-source", f"{name}-mwaa-dr-backups"
    s3_client = boto3.client("s3", region_name=region)
    ensure_bucket(s3_client, source_bucket, private_encrypted=False)
    ensure_bucket(s3_client, dr_bucket, private_encrypted=True)
    iam_client = boto3.client("iam", region_name=region)
    account = ensure_role(iam_client, DEMO_ROLE).split(":")[4]
    if per_colour_roles:
        # as modules/mwaa-environment makes them: blue's role serves blue only; the cutover gives
        # green a role of its own (mwaa.yaml then names no execution_role_arn)
        role_arn = ensure_colour_role(
            iam_client, f"{name}-blue", region, account, source_bucket, dr_bucket, name
        )
        role_line = ""
    else:
        policy = shared_role_policy(name, region, account, source_bucket, dr_bucket)
        role_arn = ensure_role(iam_client, DEMO_ROLE, policy, policy_name=f"mwaa-iac-demo-{name}")
        role_line = f"execution_role_arn: {role_arn}\n"
    s3 = S3(region, client=s3_client)
    s3.put_text(source_bucket, "requirements/requirements.txt", "# demo requirements\n")
    env_dir = root / "environments" / name
    env_dir.mkdir(parents=True, exist_ok=True)
    (env_dir / "mwaa.yaml").write_text(
        DEMO_CONFIG.format(
            name=name,
            from_version=from_version,
            to_version=to_version,
            source_bucket=source_bucket,
            dr_bucket=dr_bucket,
            execution_role_line=role_line,
            config_options="".join(f'  {k}: "{v}"\n' for k, v in DEMO_AIRFLOW_CONFIG.items()),
        )
    )
    mwaa = MwaaClient(region)
    blue = f"{name}-blue"
    if not mwaa.exists(blue):
        progress(f"creating {blue} at Airflow {from_version}")
        mwaa.create_environment(
            blue,
            AirflowVersion=from_version,
            ExecutionRoleArn=role_arn,
            SourceBucketArn=f"arn:aws:s3:::{source_bucket}",
            DagS3Path="dags",
            RequirementsS3Path="requirements/requirements.txt",
            NetworkConfiguration={
                "SubnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
                "SecurityGroupIds": ["sg-0123456789abcdef0"],
            },
            EnvironmentClass="mw1.small",
            MaxWorkers=2,
            AirflowConfigurationOptions=dict(DEMO_AIRFLOW_CONFIG),
            Tags={"mwaa-iac:deployment": name, "mwaa-iac:color": "blue"},
        )
    result = Watcher(lambda: mwaa.observe(blue), interval=poll, max_interval=poll, budget=1800).run()
    if result.outcome is not Outcome.SUCCEEDED:
        raise RuntimeError(
            f"{blue} ended {result.observation.status}: {result.observation.last_update_error}"
        )
    api = AirflowApi(mwaa, blue)
    seeded: dict[str, Any] = {}
    if busy is not None:
        progress(f"seeding {blue} with the busy workload")
        started = time.monotonic()
        seeded = seed_busy(
            api,
            s3,
            source_bucket,
            "dags",
            busy,
            sync=(lambda: sync(blue)) if sync is not None else None,
            progress=progress,
        )
        progress(f"seeded in {time.monotonic() - started:.0f} s")
    elif api.get_variable_value("mwaa_iac_seed") is None:
        progress(f"seeding {blue}: {plan.runs} runs x {len(plan.dags)} DAGs x {plan.tasks} tasks")
        upload_dags(s3, source_bucket, "dags", plan)
        started = time.monotonic()
        seeded = run_seed(api, plan)
        progress(f"seeded in {time.monotonic() - started:.0f} s: {seeded}")
    return DemoSetup(root, name, blue, seeded)


def observation_or_deleted(mwaa: MwaaClient, name: str) -> Observation:
    from mwaa_iac.adapters.mwaa import EnvironmentNotFoundError

    try:
        return mwaa.observe(name)
    except EnvironmentNotFoundError:
        return Observation("DELETED")


def already_cut_over_summary() -> dict[str, Any]:
    """`local demo --json`'s ``cutover.summary`` when the demo had already cut over to green: it
    says why nothing ran (its other shape, see ``mwaa_iac.events``)."""
    return event(EventKind.CUTOVER_SUMMARY, skipped="already cut over to green")
