"""Preflight checks shared by `upgrade` and `cutover`: the environment's requirements.txt (read from
its S3 bucket) against the constraints of the Airflow version it moves to."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mwaa_iac.core.catalog import load_catalog
from mwaa_iac.errors import MwaaIacError

if TYPE_CHECKING:
    from mwaa_iac.core.config import EnvironmentConfig


@dataclass(frozen=True)
class Check:
    """One preflight check of `upgrade` or `cutover` (event preflight.check)."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


class PreflightError(MwaaIacError):
    """A preflight check failed; nothing was changed."""

    def __init__(self, checks: list[Check]) -> None:
        failed = [c for c in checks if not c.ok]
        super().__init__(
            "preflight failed, nothing was changed:\n"
            + "\n".join(f"  - {c.name}: {c.detail}" for c in failed)
        )
        self.checks = checks


RequirementsCheck = Callable[..., Check]  # (path, version[, object_version]) -> Check


def requirements_preflight(
    config: EnvironmentConfig,
    path: str,
    version: str,
    constraints: str | None,
    object_version: str | None = None,
) -> Check:
    """The environment's requirements.txt (read from its S3 bucket, at ``object_version`` when given:
    the version the environment runs) against the target's constraints (``constraints``: an offline
    constraints file; default: cached or downloaded)."""
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.checks.requirements import (
        ConstraintsUnavailableError,
        RequirementsOptions,
        check_requirements,
        parse_requirements_file,
    )
    from mwaa_iac.core.hop_requirements import retarget_constraints

    text = S3(config.region).get_text(config.source.bucket_name, path, object_version)
    if text is None:
        return Check("requirements", False, f"s3://{config.source.bucket_name}/{path} does not exist")
    item = load_catalog().get(version)
    if item is not None:  # the hop installs a copy whose --constraint line names its version
        text = retarget_constraints(text, version, item.python) or text
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "requirements.txt"
        local.write_text(text)
        entries = [line for line in parse_requirements_file(local, path) if line.kind != "option"]
        if not entries:
            return Check("requirements", True, f"{path} lists no packages")
        options = RequirementsOptions(
            constraints_file=Path(constraints) if constraints else None, resolver="none"
        )
        try:
            result = check_requirements(local, version, options, display=path)
        except ConstraintsUnavailableError as exc:
            return Check(
                "requirements",
                False,
                f"constraints for Airflow {version} could not be had ({exc.message}); "
                "pass --constraints FILE, or --skip-requirements-check to continue without the check",
            )
    if result.ok:
        return Check(
            "requirements", True, f"{path}: {result.requirements} requirement(s) fit Airflow {version}"
        )
    conflicts = "; ".join(f"{c.package}: {c.reason}" for c in result.conflicts[:5])
    return Check("requirements", False, f"{path} conflicts with Airflow {version}'s constraints: {conflicts}")


def requirements_check_for(config: EnvironmentConfig, constraints: str | None) -> RequirementsCheck:
    """The requirements check a workflow calls as ``check(path, version[, object_version])``, with
    ``constraints`` (the workflow options' offline constraints file, or None)."""

    def check(path: str, version: str, object_version: str | None = None) -> Check:
        return requirements_preflight(config, path, version, constraints, object_version)

    return check
