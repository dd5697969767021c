"""Where environments live on disk: ``<root>/environments/<env>/`` with ``mwaa.yaml``, an optional
tfvars template and the Terraform root module. Reads and writes files; decisions stay in the core."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from mwaa_iac.core.config import CONFIG_FILENAME, Deployment, EnvironmentConfig, parse_config_text
from mwaa_iac.core.tfvars import TEMPLATE_FILENAME, default_template
from mwaa_iac.errors import ConfigError, ConfigProblem, UsageError

ROOT_ENV_VAR = "MWAA_IAC_ROOT"
ENV_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def resolve_root(root: Path | None = None) -> Path:
    """The repository root: ``--root`` > ``$MWAA_IAC_ROOT`` > the nearest parent holding environments/."""
    if root is not None:
        return root
    if os.environ.get(ROOT_ENV_VAR):
        return Path(os.environ[ROOT_ENV_VAR])
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "environments").is_dir():
            return candidate
    return here


@dataclass(frozen=True)
class Workspace:
    """One environment directory."""

    root: Path
    env: str

    @property
    def directory(self) -> Path:
        return self.root / "environments" / self.env

    @property
    def config_file(self) -> Path:
        return self.directory / CONFIG_FILENAME

    @property
    def template_file(self) -> Path:
        return self.directory / TEMPLATE_FILENAME

    @property
    def work_dir(self) -> Path:
        """Scratch space for plans and rendered phase files (git-ignored)."""
        return self.root / ".mwaa-iac" / self.env

    def template(self) -> tuple[str, str]:
        """(template text, where it came from)."""
        if self.template_file.is_file():
            return self.template_file.read_text("utf-8"), str(self.template_file)
        return default_template(), "the built-in template"

    def load(self) -> EnvironmentConfig:
        return load_config(self.config_file)


def open_workspace(env: str, root: Path | None = None) -> Workspace:
    if not ENV_NAME_RE.match(env):
        raise UsageError(f"--env {env!r} is not a valid environment directory name")
    ws = Workspace(resolve_root(root), env)
    if not ws.config_file.is_file():
        existing = sorted(
            p.parent.name for p in (ws.root / "environments").glob(f"*/{CONFIG_FILENAME}") if p.is_file()
        )
        raise UsageError(
            f"no configuration for environment {env!r}: {ws.config_file} does not exist",
            hint=f"environments here: {', '.join(existing)}"
            if existing
            else "create environments/<env>/mwaa.yaml (see environments/example/) or pass --root",
        )
    return ws


def load_config(path: Path) -> EnvironmentConfig:
    """Read and validate a config file. Raises ConfigError only."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), "", f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(str(path), "", "not UTF-8 text")]) from None
    return parse_config_text(text, str(path))


def write_deployment(path: Path, deployment: Deployment) -> None:
    """Replace the top-level ``deployment:`` block of a config file, keeping everything else
    (comments included) as it was. Written atomically."""
    commit_deployment(prepare_deployment(path, deployment), path)


def prepare_deployment(path: Path, deployment: Deployment) -> Path:
    """Everything of :func:`write_deployment` that can fail (read, render, validate, write a file
    beside ``path``), without replacing ``path``: :func:`commit_deployment` then only renames."""
    lines = path.read_text("utf-8").splitlines(keepends=True)
    out: list[str] = []
    skipping = False
    for line in lines:
        top_level = bool(line.strip()) and not line[0].isspace() and not line.lstrip().startswith("#")
        if top_level:
            skipping = line.startswith("deployment:")
        if not skipping:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    block = yaml.safe_dump(
        {"deployment": deployment.model_dump(mode="json")}, sort_keys=False, default_flow_style=False
    )
    text = "".join(out) + ("\n" if out else "") + block
    parse_config_text(text, str(path))  # never write a file we could not read back
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, "utf-8")
    return tmp


def commit_deployment(prepared: Path, path: Path) -> None:
    """Put a file made by :func:`prepare_deployment` in place (an atomic rename)."""
    os.replace(prepared, path)
