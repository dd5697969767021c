"""How an environment's Airflow processes are started: their environment variables, the AWS config
they read, and the launcher the executor runs each task through (pointing it at the worker's copy of
the DAG folder)."""

from __future__ import annotations

import os
from pathlib import Path

from mwaa_iac.adapters.airflow_venvs import Venv
from mwaa_iac.local.runtime.base import EnvSpec
from mwaa_iac.local.runtime.families import Wiring, config_env_vars, family_of
from mwaa_iac.local.runtime.state import EnvState


def aws_config_file(state_dir: Path, aws_env: dict[str, str]) -> Path:
    """An AWS config that makes every S3 client use path-style addressing (the local endpoint
    is an IP address, so bucket.127.0.0.1 cannot resolve)."""
    path = state_dir / "aws-config"
    region = aws_env.get("AWS_DEFAULT_REGION") or aws_env.get("AWS_REGION") or "us-east-1"
    text = f"[default]\nregion = {region}\ns3 =\n    addressing_style = path\n"
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def process_env(
    home: Path,
    state: EnvState,
    spec: EnvSpec,
    venv: Venv,
    requirements_dir: str | None,
    *,
    aws_env: dict[str, str],
    aws_config: Path,
    database_url: str,
) -> dict[str, str]:
    """The environment of every Airflow process of an environment (and its CLI runs): a clean base,
    the local AWS endpoints, the family's defaults, the environment's options, the family's wiring
    and what the runtime fixes itself (executor, folders, keys, database)."""
    path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env: dict[str, str] = {
        # The worker launcher first: the executor starts every task as `airflow tasks run ...`.
        "PATH": os.pathsep.join([str(home / "worker" / "bin"), str(venv.bin_dir), path]),
        "HOME": os.environ.get("HOME", str(home)),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        "AWS_CONFIG_FILE": str(aws_config),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "true",
        "AIRFLOW_HOME": str(home),
        # One config file per version: each writes its own defaults there on first use.
        "AIRFLOW_CONFIG": str(home / f"airflow-{venv.airflow_version}.cfg"),
        "AIRFLOW_ENV_NAME": state.name,
    }
    env.update(aws_env)
    if requirements_dir:
        env["PYTHONPATH"] = requirements_dir
    family = family_of(venv.airflow_version)
    env.update(config_env_vars(family.defaults()))
    env.update(config_env_vars(family.options(spec.airflow_configuration_options)))
    wiring = Wiring(home=home, port=state.port, admin_user=state.admin_user, secret_key=state.secret_key)
    env.update(config_env_vars(family.wiring(wiring)))
    env.update(
        config_env_vars(
            {
                "core.executor": "LocalExecutor",
                # Each task in a process of its own, started through the worker launcher, which
                # points it at the worker's copy of the DAG folder (MWAA's Celery workers read
                # theirs, not the scheduler's).
                "core.execute_tasks_new_python_interpreter": "True",
                "core.dags_folder": str(home / "dags"),
                "core.plugins_folder": str(home / "plugins"),
                "core.fernet_key": state.fernet_key,
                "core.hostname_callable": "socket.gethostname",
                "database.sql_alchemy_conn": database_url,
                "logging.base_log_folder": str(home / "logs"),
            }
        )
    )
    return env


def write_worker_launcher(home: Path, venv: Venv) -> None:
    """``worker/bin/airflow``: what the executor runs for each task. It sets the worker's copy of
    the DAG folder (``--subdir DAGS_FOLDER/...`` resolves against it) and runs this version's
    Airflow."""
    bin_dir = home / "worker" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    launcher = bin_dir / "airflow"
    dags = home / "worker" / "dags"
    text = (
        "#!/bin/sh\n# mwaa-iac local stack: a task runs on the worker's own copy of the DAG folder.\n"
        f"AIRFLOW__CORE__DAGS_FOLDER='{dags}'; export AIRFLOW__CORE__DAGS_FOLDER\n"
        f"exec '{venv.python}' -m airflow \"$@\"\n"
    )
    tmp = launcher.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, launcher)
