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


# MWAA's latency before a queued task starts, modelled by the worker launcher (Airflow 2.x, whose
# executor starts each task as `airflow tasks run`): seconds a task stays queued before it starts, the
# tasks the environment's minimum workers run at once, and how much longer a task beyond those waits
# for a worker to be added. Set by `mwaa-iac local up --mwaa-latency` (or these variables) for the
# environments started afterwards; none by default (docs/benchmarks.md: the model and its sources).
TASK_START_VAR = "MWAA_IAC_LOCAL_TASK_START_S"
SCALE_UP_VAR = "MWAA_IAC_LOCAL_SCALE_UP_S"
WARM_SLOTS_VAR = "MWAA_IAC_LOCAL_WARM_SLOTS"
# The model's defaults (`--mwaa-latency`): a task queued with a free worker slot starts after 5 s (an
# assumption: the executor's message over SQS, a worker's poll of it and a new `airflow tasks run`
# process on a 1-vCPU mw1.small worker; AWS publishes no figure); an mw1.small worker runs 5 tasks
# at once (MWAA's default celery.worker_autoscale for the class) and one worker is the minimum; a task
# beyond them waits 90 s more (MWAA adds workers from Airflow's queued/running task metrics, sent each
# minute, and a new Fargate task takes 30-45 s or longer to start).
MWAA_LATENCY = {TASK_START_VAR: "5", SCALE_UP_VAR: "90", WARM_SLOTS_VAR: "5"}
_NAMES = f"{TASK_START_VAR}, {SCALE_UP_VAR} and {WARM_SLOTS_VAR}"


def task_latency(environ: dict[str, str] | None = None) -> tuple[float, float, int] | None:
    """(start, scale-up, warm slots) from the environment's variables; None when the model is off."""
    env = os.environ if environ is None else environ
    if not env.get(TASK_START_VAR):
        return None
    try:
        start = float(env[TASK_START_VAR])
        scale_up = float(env.get(SCALE_UP_VAR) or 0)
        slots = int(env.get(WARM_SLOTS_VAR) or 0)
    except ValueError as exc:
        raise ValueError(f"{_NAMES} must be numbers: {exc}") from None
    if start < 0 or scale_up < 0 or slots < 0:
        raise ValueError(f"{_NAMES} must not be negative")
    return start, scale_up, slots


# The launcher with the latency model: a Python script run by the version's interpreter. A task's
# first process (`airflow tasks run ... --local`, not its `--raw` child) takes a slot (a file named by
# its pid, kept by exec), counts the slots of live processes and waits before it starts.
_MODELLED = """#!{python}
# mwaa-iac local stack: a task runs on the worker's own copy of the DAG folder, after MWAA's latency.
import os
import sys
import time

START, SCALE_UP, WARM_SLOTS = {start!r}, {scale_up!r}, {slots!r}
SLOTS = {slots_dir!r}
args = sys.argv[1:]
if args[:2] == ["tasks", "run"] and "--raw" not in args:
    os.makedirs(SLOTS, exist_ok=True)
    busy = 0
    for name in os.listdir(SLOTS):
        if os.path.exists(f"/proc/{{name}}"):
            busy += 1
        else:
            try:
                os.remove(os.path.join(SLOTS, name))
            except OSError:
                pass
    open(os.path.join(SLOTS, str(os.getpid())), "w").close()
    time.sleep(START + (SCALE_UP if WARM_SLOTS and busy >= WARM_SLOTS else 0.0))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = {dags!r}
os.execv(sys.executable, [sys.executable, "-m", "airflow", *args])
"""


def write_worker_launcher(home: Path, venv: Venv, latency: tuple[float, float, int] | None = None) -> None:
    """``worker/bin/airflow``: what the executor runs for each task. It sets the worker's copy of
    the DAG folder (``--subdir DAGS_FOLDER/...`` resolves against it) and runs this version's
    Airflow; with ``latency`` (:func:`task_latency`) a task waits as on MWAA before it starts."""
    bin_dir = home / "worker" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    launcher = bin_dir / "airflow"
    dags = home / "worker" / "dags"
    if latency is not None:
        start, scale_up, slots = latency
        text = _MODELLED.format(
            python=venv.python,
            start=start,
            scale_up=scale_up,
            slots=slots,
            slots_dir=str(home / "worker" / "slots"),
            dags=str(dags),
        )
    else:
        text = (
            "#!/bin/sh\n# mwaa-iac local stack: a task runs on the worker's own copy of the DAG folder.\n"
            f"AIRFLOW__CORE__DAGS_FOLDER='{dags}'; export AIRFLOW__CORE__DAGS_FOLDER\n"
            f"exec '{venv.python}' -m airflow \"$@\"\n"
        )
    tmp = launcher.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, launcher)
