"""One deployment, one engine. Pure.

The Terraform modules tag each environment ``mwaa-iac:engine = terraform``; the api engine tags the
environments it creates ``mwaa-iac:engine = api``. Driving a Terraform-managed deployment with the
api engine creates environments Terraform does not know (its next plan would delete or recreate
them); driving api-made environments with Terraform makes its plan create them again. Both are
refused with the fix. Untagged environments (made by hand, or before the tag) are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

ENGINE_TAG = "mwaa-iac:engine"


class Engine(StrEnum):
    """How a deployment's environments are created and changed (``--engine``; tag ENGINE_TAG)."""

    TERRAFORM = "terraform"  # render tfvars, plan, guard, apply the saved plan
    API = "api"  # call MWAA's CreateEnvironment / UpdateEnvironment directly


DEFAULT_ENGINE = Engine.TERRAFORM
ENGINES = tuple(str(e) for e in Engine)


def engine_conflict(tags: Mapping[str, str] | None, engine: str, environment: str, env: str) -> str | None:
    """Why ``engine`` must not drive the deployment whose environment ``environment`` carries
    ``tags`` (None: it may), with the fix."""
    recorded = (tags or {}).get(ENGINE_TAG)
    if recorded not in ENGINES or recorded == engine:
        return None
    if recorded == "terraform":
        return (
            f"{environment} is managed by Terraform (tag {ENGINE_TAG}=terraform): the api engine would "
            "create or change environments outside Terraform's state, and the next terraform apply would "
            f"undo it. Fix: --engine terraform (the default), e.g. mwaa-iac cutover --env {env} "
            "--engine terraform"
        )
    return (
        f"{environment} was created by the api engine (tag {ENGINE_TAG}=api) and is not in Terraform's "
        f"state: a terraform phase would try to create it again. Fix: --engine api; or adopt it into "
        f'Terraform first (terraform import of module.mwaa.module.environment["<colour>"].'
        f"aws_mwaa_environment.this[0] {environment} in environments/{env}/), then set the tag to terraform"
    )
