"""An environment's startup script: sourced before its processes start, what it exports reaches them,
as on MWAA, except the variables the runtime wires itself (MWAA reserves its own set)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from mwaa_iac.local.runtime import procs

SCRIPT_TIMEOUT = 300.0
_MARKER = "__mwaa_iac_environment__"

_RESERVED_VARIABLES = frozenset(
    {
        "AIRFLOW_HOME",
        "AIRFLOW_CONFIG",
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW_ENV_NAME",
    }
)
_SHELL_VARIABLES = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})
_RESERVED_PREFIXES = (
    "MWAA_IAC_",
    "AIRFLOW__DATABASE__",
    "AIRFLOW__WEBSERVER__WEB_SERVER",
    # Airflow 3's wiring: the API server's address and keys, the auth manager, the execution API.
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
)


class StartupScriptFailed(Exception):
    """The script failed or ran too long; the message says how (with the end of its log)."""


def reserved(name: str) -> bool:
    """Whether a startup script may not set variable ``name``."""
    return name in _SHELL_VARIABLES or name in _RESERVED_VARIABLES or name.startswith(_RESERVED_PREFIXES)


def run_startup_script(script: Path, env: dict[str, str], home: Path, label: str) -> dict[str, str]:
    """``env`` plus what ``script`` exports, run with ``env`` in ``home``; its output is appended to
    ``home/startup.log`` under a line naming ``label``."""
    log_path = home / "startup.log"
    with open(log_path, "a") as log_out:
        log_out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {label}\n")
        log_out.flush()
        try:
            result = subprocess.run(
                ["bash", "-c", f'. "$1" >&2; status=$?; printf "\\0{_MARKER}\\0"; env -0; exit $status',
                 "startup", str(script)],
                env=env, cwd=home, stdout=subprocess.PIPE, stderr=log_out, stdin=subprocess.DEVNULL,
                timeout=SCRIPT_TIMEOUT, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise StartupScriptFailed("the startup script ran for more than 5 minutes") from exc
    if result.returncode != 0:
        raise StartupScriptFailed(
            f"the startup script exited with {result.returncode}:\n{procs.tail(log_path, 10)}"
        )
    exported = result.stdout.split(f"\0{_MARKER}\0".encode(), 1)[-1]
    merged = dict(env)
    for item in exported.split(b"\0"):
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep and not reserved(name):
            merged[name] = value
    return merged
