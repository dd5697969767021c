"""Fingerprints of an emulated environment's metadata, to compare two environments table by table.

The fingerprint is computed inside the environment: a script run with the environment's own Airflow
virtualenv, database and Fernet key reads each table through that version's models (variables and
connections decrypted, XComs deserialized, pickled run conf loaded) and returns only hashes. Per table:
``count``, ``sha256`` and, per row, a key that names it (dag_id, run_id, task_id, map_index, a
variable's key, a pool's name: never a value) with a hash of each field, so :func:`compare` can say
which row and which field differ without printing any value.

The local stack keeps an environment's runtime state in ``<state_dir>/runtime/envs/<name>/env.json``
(its database and Fernet key) and its virtualenv in the venv cache (:func:`venvs.ensure_venv`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mwaa_iac.adapters.airflow_venvs import ensure_venv
from mwaa_iac.core import dr
from mwaa_iac.dr_runtime import mwaa_iac_copy as copy_registry
from mwaa_iac.local.airflow_side import source
from mwaa_iac.local.runtime.postgres import PostgresCluster
from mwaa_iac.local.seed import SEED_DAG_ID

# mwaa-iac's and mwaa-dr's own DAGs and variables: not the user's data.
TOOL_DAGS = (*dr.DR_DAG_IDS, "mwaa_iac_probe", SEED_DAG_ID)
TOOL_VARIABLES = dr.TOOL_VARIABLES

# The script run inside the environment: mwaa_iac/local/airflow_side/fingerprint_script.py (options as
# JSON on stdin, the fingerprint as JSON in the file named there; it prints nothing of the data).
SCRIPT_FILE = "fingerprint_script.py"
# The copied tables (the copy module's registry) the fingerprint does not read, and why. A table added
# to the registry is read by the script or named here (tests/unit/test_fingerprint_carried.py).
UNREAD = {
    "task_instance_history": "earlier tries: Airflow 3 keys them by task instance uuid, not comparable",
    "task_reschedule": "sensor reschedules: Airflow 3 keys them by task instance uuid, not comparable",
    "dataset_alias": "parsing writes most aliases; the copy verifies the others by name",
    "dataset_alias_dataset": "parsing writes the links; the copy verifies them by alias name and URI",
    "dataset_alias_dataset_event": "2.10+ only: a fingerprint across versions could not compare it",
    "dagrun_dataset_event": "keyed by the environment's own run ids; the copy verifies it by run id",
}
# What the fingerprint reads: the registry's copied tables but those, then two of its own (each DAG's
# paused flag and next interval; the run-id set per DAG).
TABLES = (*(t for t in copy_registry.copied_tables() if t not in UNREAD), "dag", "dag_run_ids")


class FingerprintError(RuntimeError):
    """The fingerprint script could not run in the environment."""


def environment_process_env(
    state_dir: Path, name: str, home: Path, *, venv_cache: Path | None = None
) -> tuple[Path, dict[str, str]]:
    """The venv python and the variables that give a process the environment's Airflow: its
    database and its Fernet key (``home`` is a scratch AIRFLOW_HOME; nothing of the environment's
    own folder is written)."""
    runtime = Path(state_dir) / "runtime"
    env_file = runtime / "envs" / name / "env.json"
    try:
        state = json.loads(env_file.read_text())
    except (OSError, ValueError) as exc:
        raise FingerprintError(f"no runtime state for {name} ({env_file}): {exc}") from exc
    venv = ensure_venv(state["airflow_version"], venv_cache)
    url = PostgresCluster(runtime / "pg", runtime / "pids").sqlalchemy_url(state["database"])
    env = {
        "PATH": f"{venv.bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__FERNET_KEY": state["fernet_key"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "utc",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "true",
    }
    return venv.python, env


def run_in_environment(
    state_dir: Path,
    name: str,
    code: str,
    stdin: str = "",
    *,
    timeout: float = 300.0,
    venv_cache: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` with environment ``name``'s Airflow (its venv, database, Fernet key).
    The caller must not print what the code may write: it can read secrets."""
    with tempfile.TemporaryDirectory(prefix="mwaa-iac-inside-") as scratch:
        python, env = environment_process_env(Path(state_dir), name, Path(scratch), venv_cache=venv_cache)
        return subprocess.run(
            [str(python), "-c", code],
            input=stdin,
            env=env,
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def fingerprint(
    state_dir: Path,
    name: str,
    *,
    exclude_dags: Iterable[str] = TOOL_DAGS,
    exclude_variables: Iterable[str] = TOOL_VARIABLES,
    fields: bool = True,
    timeout: float = 600.0,
    venv_cache: Path | None = None,
) -> dict[str, Any]:
    """The fingerprint of environment ``name`` of the local stack in ``state_dir``:
    ``{"airflow_version": ..., "tables": {table: {"count", "sha256", "columns", "rows", "fields"}}}``.

    ``rows`` maps a row's key (dag_id | run_id | ...; never a value) to its hash, ``fields`` (unless
    ``fields=False``) to a hash per column. Tables: variable, connection, slot_pool, dag_run,
    task_instance, task_fail, task_map, xcom (deserialized ``value``, stored ``value_raw``), log
    (counts per dag_id and event), dataset, dataset_event, dataset_dag_run_queue, dag (paused,
    next_dagrun), dag_run_ids (the run-id set per DAG), trigger (counts per classpath)."""
    with tempfile.TemporaryDirectory(prefix="mwaa-iac-fingerprint-") as scratch:
        output = Path(scratch) / "fingerprint.json"
        options = {
            "exclude_dags": sorted(set(exclude_dags)),
            "exclude_variables": sorted(set(exclude_variables)),
            "fields": fields,
            "tables": list(TABLES),
            "output": str(output),
        }
        result = run_in_environment(
            state_dir,
            name,
            source(SCRIPT_FILE),
            json.dumps(options),
            timeout=timeout,
            venv_cache=venv_cache,
        )
        if result.returncode != 0 or not output.is_file():
            # Airflow's own messages (tracebacks name files and lines, not values).
            tail = "\n".join((result.stderr or result.stdout or "").splitlines()[-15:])
            raise FingerprintError(f"the fingerprint of {name} failed (exit {result.returncode}):\n{tail}")
        return json.loads(output.read_text("utf-8"))


def _ignored(ignore: Iterable[str]) -> tuple[set[str], dict[str, set[str]]]:
    tables: set[str] = set()
    columns: dict[str, set[str]] = {}
    for item in ignore:
        table, _, column = item.partition(".")
        if column:
            columns.setdefault(table, set()).add(column)
        else:
            tables.add(table)
    return tables, columns


def compare(a: dict[str, Any], b: dict[str, Any], *, ignore: Iterable[str] = (), limit: int = 3) -> list[str]:
    """Differences between two fingerprints, table by table: ``[]`` when equal.

    ``ignore`` names tables (``"log"``) or columns (``"xcom.value_raw"``, ``"task_instance.try_number"``)
    to leave out; column-level comparison needs fingerprints taken with ``fields=True``. Each message
    names the table, the keys (at most ``limit`` of them) and the columns that differ."""
    skip_tables, skip_columns = _ignored(ignore)
    tables_a, tables_b = a.get("tables", {}), b.get("tables", {})
    out: list[str] = []
    for table in sorted(set(tables_a) | set(tables_b)):
        if table in skip_tables:
            continue
        ta, tb = tables_a.get(table), tables_b.get(table)
        if ta is None or tb is None:
            out.append(f"{table}: only in {'a' if tb is None else 'b'}")
            continue
        skipped = skip_columns.get(table, set())
        if not skipped and ta["sha256"] == tb["sha256"]:
            continue
        columns_a = [c for c in ta.get("columns", []) if c not in skipped]
        columns_b = [c for c in tb.get("columns", []) if c not in skipped]
        problems: list[str] = []
        if ta["count"] != tb["count"]:
            problems.append(f"{ta['count']} rows in a, {tb['count']} in b")
        if columns_a != columns_b:
            problems.append(f"columns differ ({', '.join(sorted(set(columns_a) ^ set(columns_b)))})")
        rows_a, rows_b = ta.get("rows", {}), tb.get("rows", {})
        only_a = sorted(set(rows_a) - set(rows_b))
        only_b = sorted(set(rows_b) - set(rows_a))
        if only_a:
            problems.append(f"{len(only_a)} only in a: {_names(only_a, limit)}")
        if only_b:
            problems.append(f"{len(only_b)} only in b: {_names(only_b, limit)}")
        differing: list[str] = []
        for key in sorted(set(rows_a) & set(rows_b)):
            change = _row_change(ta, tb, key, skipped, set(columns_a) & set(columns_b))
            if change:
                differing.append(change)
        if differing:
            problems.append(f"{len(differing)} differ: {'; '.join(differing[:limit])}")
        if problems:
            out.append(f"{table}: " + "; ".join(problems))
    return out


def _row_change(
    ta: dict[str, Any], tb: dict[str, Any], key: str, skipped: set[str], common: set[str]
) -> str | None:
    """``[key] (columns that differ)`` for a row both tables have, or None when it is equal."""
    changed = _changed_columns(ta, tb, key, skipped, common)
    if changed is None and ta["rows"][key] != tb["rows"][key]:
        changed = ["?"]  # no per-column hashes
    return f"[{key}] ({', '.join(changed)})" if changed else None


def _changed_columns(
    ta: dict[str, Any], tb: dict[str, Any], key: str, skipped: set[str], common: set[str]
) -> list[str] | None:
    fields_a, fields_b = ta.get("fields"), tb.get("fields")
    if fields_a is None or fields_b is None:
        return None if not skipped else []
    fa, fb = fields_a.get(key, {}), fields_b.get(key, {})
    return [c for c in sorted(common) if c not in skipped and fa.get(c) != fb.get(c)]


def _names(keys: list[str], limit: int) -> str:
    shown = ", ".join(f"[{k}]" for k in keys[:limit])
    return shown + (", ..." if len(keys) > limit else "")


# States after which Airflow changes a run or a task instance no more (unless a user clears it).
FINAL_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def carried(
    before: dict[str, Any], after: dict[str, Any], *, ignore: Iterable[str] = (), limit: int = 3
) -> list[str]:
    """What of ``before`` is not in ``after`` unchanged: ``[]`` when every row is carried.

    For an environment that kept running between the two fingerprints (an in-place upgrade of a busy
    environment, a colour that went live): rows ``after`` has in addition are fine; a run or task
    instance that was not final in ``before`` (running, queued, up for retry...) only has to exist
    in ``after``, with any values; every other row must have the same hash per column (``ignore``
    as in :func:`compare`; fingerprints taken with ``fields=True``)."""
    skip_tables, skip_columns = _ignored(ignore)
    tables_after = after.get("tables", {})
    out: list[str] = []
    for table, ta in sorted(before.get("tables", {}).items()):
        if table in skip_tables:
            continue
        tb = tables_after.get(table)
        if tb is None:
            out.append(f"{table}: not in the second fingerprint")
            continue
        skipped = skip_columns.get(table, set())
        states = ta.get("states", {})
        common = (set(ta.get("columns", [])) & set(tb.get("columns", []))) - skipped
        missing = sorted(set(ta.get("rows", {})) - set(tb.get("rows", {})))
        differing: list[str] = []
        for key in sorted(set(ta.get("rows", {})) & set(tb.get("rows", {}))):
            if key in states and states[key] not in FINAL_STATES:
                continue
            change = _row_change(ta, tb, key, skipped, common)
            if change:
                differing.append(change)
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing: {_names(missing, limit)}")
        if differing:
            problems.append(f"{len(differing)} changed: {'; '.join(differing[:limit])}")
        if problems:
            out.append(f"{table}: " + "; ".join(problems))
    return out


def changed_tables(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    """Names of the tables whose hash differs (or that only one fingerprint has)."""
    tables_a, tables_b = a.get("tables", {}), b.get("tables", {})
    return {
        t
        for t in set(tables_a) | set(tables_b)
        if (tables_a.get(t) or {}).get("sha256") != (tables_b.get(t) or {}).get("sha256")
    }
