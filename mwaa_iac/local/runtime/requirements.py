"""An environment's requirements.txt, installed for one Airflow version with ``--target`` into
``requirements/<version>-<hash>/`` (put on ``PYTHONPATH``) and constrained to the version venv's own
packages, as MWAA constrains them. An identical earlier install is reused; a failed one leaves
nothing behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from mwaa_iac.adapters.airflow_venvs import Venv, installer_env, pip_install_command
from mwaa_iac.local.runtime import procs

INSTALL_TIMEOUT = 900.0


class RequirementsFailed(Exception):
    """requirements.txt did not install (the message ends with the installer's last lines)."""


def install_requirements(body: bytes, home: Path, venv: Venv) -> str:
    """Install ``body`` (a requirements.txt) for ``venv``'s version under ``home/requirements``;
    returns the directory to put on PYTHONPATH."""
    digest = hashlib.sha256(body + venv.airflow_version.encode()).hexdigest()[:12]
    root = home / "requirements"
    final = root / f"{venv.airflow_version}-{digest}"
    if (final / ".complete").is_file():
        return str(final)
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    req_file = root / f"{final.name}.requirements.txt"
    req_file.write_bytes(body)
    log_file = home / "requirements.log"
    cmd = pip_install_command(
        venv.python, [], constraints=[venv.freeze_file], target=tmp, requirements_file=req_file
    )
    with open(log_file, "a") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n")
        out.flush()
        try:
            result = subprocess.run(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=installer_env(),
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RequirementsFailed("installing requirements.txt timed out") from exc
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RequirementsFailed(
            f"requirements.txt did not install on Airflow {venv.airflow_version}:\n{procs.tail(log_file, 12)}"
        )
    (tmp / ".complete").write_text(body.decode(errors="replace"))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return str(final)


def prune_requirements(home: Path, keep: str | None) -> None:
    """Remove every install under ``home/requirements`` but ``keep`` (and its requirements file)."""
    root = home / "requirements"
    if not root.is_dir():
        return
    for path in root.iterdir():
        if keep and (str(path) == keep or path.name == f"{Path(keep).name}.requirements.txt"):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
