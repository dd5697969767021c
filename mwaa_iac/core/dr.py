"""mwaa-dr integration, the pure part: which factory, which DAG files, which prefixes and run ids.

mwaa-dr 2.2.0 facts this module encodes (DESIGN.md §3): a DAG file instantiates
``DRFactory_<major>_<minor>(dag_id, path_prefix, storage_type="S3")`` and calls
``create_backup_dag()`` / ``create_restore_dag()`` / ``create_cleanup_dag()``; the ids must be
``backup_metadata``, ``restore_metadata`` and ``cleanup_metadata`` (mwaa-dr excludes them from its
exports); ``path_prefix`` is fixed per file, so a file is rendered per cutover and pass; backups are
header-less, ``|``-delimited CSVs at ``s3://<bucket>/<path_prefix>/<table>.csv``.

mwaa-dr is not installed in the environment: mwaa-iac uploads its files (and smart_open's, its only
dependency) beside the generated DAGs in ``mwaa_iac_dr/vendor/`` (see
:mod:`mwaa_iac.adapters.dr_bundle`), hidden from DAG parsing by ``mwaa_iac_dr/.airflowignore``; each
generated file appends that folder to ``sys.path`` when mwaa-dr is not importable otherwise. So the
source's requirements.txt never changes and it is never restarted (UpdateEnvironment) for mwaa-dr.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from mwaa_iac.core.catalog import load_catalog
from mwaa_iac.errors import UsageError

BACKUP_DAG_ID = "backup_metadata"
RESTORE_DAG_ID = "restore_metadata"
CLEANUP_DAG_ID = "cleanup_metadata"
FIXUP_DAG_ID = "mwaa_iac_fixup"  # the fix-up's own DAG in earlier releases; now a restore task
PREPARE_DAG_ID = "mwaa_iac_prepare"
PROBE_DAG_ID = "mwaa_iac_probe"
# DAGs whose rows the fix-up and the pre-restore cleanup leave out. Not the probe: its runs on the
# source are ordinary history to them (backed up, restored and counted like any other DAG's).
DR_DAG_IDS = (BACKUP_DAG_ID, RESTORE_DAG_ID, CLEANUP_DAG_ID, FIXUP_DAG_ID, PREPARE_DAG_ID)
# Every DAG mwaa-iac deploys: never recorded, paused, drained or unpaused as the user's DAGs.
MWAA_IAC_DAG_IDS = (*DR_DAG_IDS, PROBE_DAG_ID)
DR_DAG_FOLDER = "mwaa_iac_dr"  # sub-folder of the environment's DAG folder holding our files
VENDOR_FOLDER = f"{DR_DAG_FOLDER}/vendor"  # mwaa-dr and smart_open, delivered with the DAG files
VENDORED_MODULES = ("mwaa_dr", "smart_open")
AIRFLOWIGNORE = f"{DR_DAG_FOLDER}/.airflowignore"
# Airflow 2 matches a regexp rule against the path relative to the DAG folder's root (not to the
# ignore file's folder: "^vendor" would match nothing), so the first rule accepts "vendor" after a
# "/"; the second is for core.dag_ignore_file_syntax=glob (gitignore style). Both only apply under
# mwaa_iac_dr/, where this file lives. mwaa_dr ships DAG files of its own: they must not be parsed.
AIRFLOWIGNORE_TEXT = """# mwaa-iac: mwaa-dr and smart_open for the DR DAGs beside this file, not DAGs
(^|/)vendor(/|$)
vendor/
"""
FIXUP_VARIABLE = "mwaa_iac_fixup"  # where the fix-up DAG leaves its counts (read over the REST API)
# The run conf key naming the version of a generated DAG file the run wants (its marker): a worker whose
# copy of the DAG folder lags waits for that version (the rendered tasks read this literal key).
MARKER_CONF = "mwaa_iac_marker"

# Tables mwaa-dr copies, in restore order (active_dag is mwaa-dr's synthetic list of unpaused DAGs).
TABLES = (
    "variable",
    "connection",
    "slot_pool",
    "log",
    "job",
    "dag_run",
    "trigger",
    "task_instance",
    "task_fail",
    "xcom",
    "active_dag",
)
# Tables whose rows the target's own activity also adds to (its scheduler's jobs, API audit log):
# the restore must have copied at least the backup's rows; exact equality is not expected.
GROWING_TABLES = frozenset({"log", "job"})
SECRET_TABLES = frozenset({"variable", "connection"})  # plaintext secrets: count, never show

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,24}$")


def factory_for(version: str) -> str:
    """``DRFactory_2_9`` for 2.9.2; UsageError when mwaa-dr does not support the version."""
    item = load_catalog().require(version)
    if item.dr_factory is None:
        raise UsageError(
            f"mwaa-dr {load_catalog().mwaa_dr_version} does not support Airflow {version}",
            hint="a cutover from this version cannot carry history: use --no-history",
        )
    return item.dr_factory


def backup_prefix(base_prefix: str, deployment: str, cutover_id: str, label: str) -> str:
    """``mwaa-dr/analytics/c1a2b3c4/pass1``: unique per cutover and pass."""
    parts = [p.strip("/") for p in (base_prefix, deployment, cutover_id, label)]
    return "/".join(p for p in parts if p)


def run_id(kind: str, cutover_id: str, label: str) -> str:
    """A short dag_run_id (MWAA's InvokeRestApi path limit is 64 characters)."""
    value = f"{kind[:3]}-{cutover_id[:8]}-{label}"[:24]
    if not _RUN_ID_RE.match(value):
        raise ValueError(f"bad run id {value!r}")
    return value


@dataclass(frozen=True)
class DagFile:
    """A generated DAG file: where it goes under the DAG folder and its text."""

    relative_path: str
    text: str
    dag_id: str
    marker: str  # appears in the parsed DAG's description: proves this version of the file is loaded


# Airflow's DAG discovery (safe mode) only parses files that mention both "airflow" and "dag".
_HEADER = '''"""Airflow DAG file generated by mwaa-iac: {purpose}. Do not edit; mwaa-iac rewrites or
removes this file.

Deployment {deployment}, {label}, mwaa-dr factory {factory}.
"""
'''

# Before ``from mwaa_dr ...``: mwaa-iac delivers mwaa-dr and smart_open in vendor/ beside this file.
# Appended (never prepended) and only when one of them is not importable otherwise: an environment
# with mwaa-dr installed keeps its own, and the user's other DAGs parsed in the same process resolve
# their imports as before.
VENDOR_BOOTSTRAP = f"""
import importlib.util
import os
import sys

_VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if _VENDOR not in sys.path and any(importlib.util.find_spec(m) is None for m in {VENDORED_MODULES!r}):
    sys.path.append(_VENDOR)
"""


# mwaa-dr's own DAGs run one Airflow task per table (plus setup, teardown and empty markers): on a
# small environment nearly all of a backup's or restore's time is task start-up and scheduling,
# and inside the freeze that is frozen time. These DAGs run the same factory's setup, table
# exports/imports and teardown in one task: tables in "levels" that keep mwaa-dr's order, the
# tables of a level side by side in threads (each table uses its own database connection and S3
# stream, as it does in mwaa-dr's separate tasks), so that large tables still copy in parallel.
_RESTORE_LEVELS = """

def _levels(factory):
    \"\"\"The factory's tables in restore levels: mwaa-dr wires task(table) >> task(dependency)
    for each dependency it declares, so a table is ready once every table pointing at it is done.\"\"\"
    pending = list(factory.tables())
    levels = []
    while pending:
        ready = [t for t in pending if not any(p in pending for p in factory.model.reverse_graph[t])]
        if not ready:
            raise RuntimeError("mwaa-dr's table dependencies form a cycle")
        levels.append(ready)
        pending = [t for t in pending if t not in ready]
    return levels
"""
_BACKUP_LEVELS = """

def _levels(factory):
    \"\"\"Backup levels: xcom first, then the rest (mwaa-dr exports xcom before task_instance,
    so no exported XCom belongs to a task instance that is not exported).\"\"\"
    tables = factory.tables()
    return [[t for t in tables if t.name == "xcom"], [t for t in tables if t.name != "xcom"]]
"""
_ONE_TASK = """

MARKER = {marker!r}


def _this_version(context):
    \"\"\"A worker syncs the DAG folder on its own (as on MWAA) and may still hold an older version of
    this file (another path_prefix): the run names the version it wants (MARKER); wait until this
    worker's copy is that version, and load it.\"\"\"
    wanted = (context["dag_run"].conf or {{}}).get("mwaa_iac_marker")
    if not wanted or wanted == MARKER:
        return None
    deadline = time.monotonic() + 900
    while True:
        with open(__file__, encoding="utf-8") as handle:
            if repr(wanted) in handle.read():
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"this worker's copy of {{__file__}} is not {{wanted!r}} after 15 minutes")
        print(f"mwaa-iac: this worker holds an older {{__file__}}; waiting for its DAG folder to sync")
        time.sleep(5)
    print(f"mwaa-iac: running {{wanted!r}} from the synced file")
    return runpy.run_path(__file__)


def _one_table(table, context):
    start = time.monotonic()
    table.{action}(**context)
    print(f"mwaa-iac: {action} of table {{table.name}} took {{time.monotonic() - start:.1f}} s")


def {action}_all_tables(**context):
    try:
        fresh = _this_version(context)
        if fresh is not None:
            return fresh["{action}_all_tables"](**context)
        return _{action}_all_tables(context)
    except AirflowFailException:
        raise
    except Exception as exc:
        # Never retried: a second attempt over half-copied tables could duplicate rows. (The task's
        # retries are for a worker that does not have this file yet: the task never started then.)
        raise AirflowFailException(f"mwaa-iac: {action} failed: {{type(exc).__name__}}: {{exc}}") from exc


def _{action}_all_tables(context):
    factory.setup_{action}(**context)
    for level in _levels(factory):
        if not level:
            continue
        with ThreadPoolExecutor(max_workers=min(4, len(level))) as pool:
            futures = {{table.name: pool.submit(_one_table, table, context) for table in level}}
        failed = {{name: f.exception() for name, f in futures.items() if f.exception() is not None}}
        if failed:
            names = ", ".join(sorted(failed))
            cause = next(iter(failed.values()))
            raise RuntimeError(f"mwaa-dr {action} failed for table(s) {{names}}") from cause
    factory.teardown_{action}(**context)


with DAG({dag_id!r}, schedule=None, start_date=datetime(2022, 1, 1), catchup=False,
         description={marker!r}) as dag:
    {action}_task = PythonOperator(
        task_id="{action}_all_tables", python_callable={action}_all_tables, **WORKER_LAG
    )
{then}"""
_IMPORTS = """
import runpy
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from airflow import DAG
from airflow.exceptions import AirflowFailException
from airflow.operators.python import PythonOperator

# A worker syncs the DAG folder on its own (MWAA: every 30 s) and may not have this file yet when the
# task is queued: then the task fails before it starts, and these retries start it again.
WORKER_LAG = {"retries": 4, "retry_delay": timedelta(seconds=15)}
"""


def render_backup_dag(factory: str, path_prefix: str, deployment: str, label: str) -> DagFile:
    """mwaa-dr's backup in one task: the factory's setup, every table's export (``xcom`` before
    ``task_instance``, as mwaa-dr orders them, so no XCom refers to an unexported task), teardown."""
    marker = f"mwaa-iac backup {path_prefix}"
    module = _factory_module(factory)
    text = (
        _HEADER.format(purpose="mwaa-dr backup DAG", deployment=deployment, label=label, factory=factory)
        + VENDOR_BOOTSTRAP
        + _IMPORTS
        + f"""from {module} import {factory}

factory = {factory}(dag_id={BACKUP_DAG_ID!r}, path_prefix={path_prefix!r}, storage_type="S3")
"""
        + _BACKUP_LEVELS
        + _ONE_TASK.format(
            action="backup",
            dag_id=BACKUP_DAG_ID,
            marker=marker,
            then="",
        )
    )
    return DagFile(f"{DR_DAG_FOLDER}/{BACKUP_DAG_ID}.py", text, BACKUP_DAG_ID, marker)


def render_restore_dag(factory: str, path_prefix: str, deployment: str, label: str) -> DagFile:
    """mwaa-dr's restore in one task (tables in the factory's dependency order), then the fix-up
    task. mwaa-dr's unpausing of the source's active DAGs is turned off: mwaa-iac unpauses exactly
    the recorded DAGs itself at go-live (otherwise both colours would schedule)."""
    marker = f"mwaa-iac restore {path_prefix}"
    module = _factory_module(factory)
    text = (
        _HEADER.format(purpose="mwaa-dr restore DAG", deployment=deployment, label=label, factory=factory)
        + VENDOR_BOOTSTRAP
        + _IMPORTS.replace("import time\n", "import json\nimport time\n")
        + f"""from airflow.models import Variable
from airflow.settings import Session
from mwaa_dr.framework.model.active_dag_table import ActiveDagTable
from {module} import {factory}
from sqlalchemy import text


class KeepDagsPaused(ActiveDagTable):
    def restore(self, **context):
        print("mwaa-iac: restored DAGs stay paused; mwaa-iac unpauses the recorded ones at go-live")


class Factory({factory}):
    def active_dag(self, model):
        table = super().active_dag(model)
        table.__class__ = KeepDagsPaused
        return table


factory = Factory(dag_id={RESTORE_DAG_ID!r}, path_prefix={path_prefix!r}, storage_type="S3")
"""
        + _FIXUP_TASK
        + _RESTORE_LEVELS
        + _ONE_TASK.format(
            action="restore",
            dag_id=RESTORE_DAG_ID,
            marker=marker,
            then='    restore_task >> PythonOperator(task_id="fixup", python_callable=fixup, **WORKER_LAG)\n',
        )
    )
    return DagFile(f"{DR_DAG_FOLDER}/{RESTORE_DAG_ID}.py", text, RESTORE_DAG_ID, marker)


def render_cleanup_dag(factory: str, deployment: str, label: str) -> DagFile:
    marker = f"mwaa-iac cleanup {label}"
    module = _factory_module(factory)
    text = (
        _HEADER.format(purpose="mwaa-dr cleanup DAG", deployment=deployment, label=label, factory=factory)
        + VENDOR_BOOTSTRAP
        + f"""
from {module} import {factory}

factory = {factory}(dag_id={CLEANUP_DAG_ID!r}, path_prefix="unused", storage_type="S3")
dag = factory.create_cleanup_dag()
dag._description = {marker!r}  # DAG.description has no setter; the REST API shows it
"""
    )
    return DagFile(f"{DR_DAG_FOLDER}/{CLEANUP_DAG_ID}.py", text, CLEANUP_DAG_ID, marker)


# The fix-up: runs in the target after every restore, as the restore DAG's second task (one DAG
# run less inside the freeze than a DAG of its own). It repairs mwaa-dr's known defects and counts:
# - ``xcom.dag_run_id`` keeps the source's ids while dag_run ids are renumbered: remap them by
#   (dag_id, run_id) so XCom lookups find their values;
# - the running backup's own dag_run and task rows were exported: delete them;
# - drop the ``active_dags`` helper table;
# then store per-table counts (excluding mwaa-iac's and mwaa-dr's own DAGs) in the Airflow Variable
# ``mwaa_iac_fixup`` for mwaa-iac to read through the REST API.
_FIXUP_TASK = f"""

OWN = {DR_DAG_IDS!r}
TABLES = {TABLES[:-1]!r}
DAG_SCOPED = ("log", "dag_run", "task_instance", "task_fail", "xcom")


def fixup(**context):
    own = ", ".join(f"'{{d}}'" for d in OWN)
    with Session() as session:
        # Two steps: restored ids are a permutation of the target's, so a direct update collides
        # with rows not yet moved on the primary key (dag_run_id, task_id, map_index, key).
        remapped = session.execute(text(
            "UPDATE xcom x SET dag_run_id = -dr.id FROM dag_run dr "
            "WHERE x.dag_id = dr.dag_id AND x.run_id = dr.run_id AND x.dag_run_id <> dr.id"
        )).rowcount
        session.execute(text("UPDATE xcom SET dag_run_id = -dag_run_id WHERE dag_run_id < 0"))
        removed = 0
        for table in ("xcom", "task_fail", "task_instance"):
            delete = f"DELETE FROM {{table}} WHERE dag_id = 'backup_metadata'"
            removed += session.execute(text(delete)).rowcount
        removed += session.execute(text("DELETE FROM dag_run WHERE dag_id = 'backup_metadata'")).rowcount
        session.execute(text("DROP TABLE IF EXISTS active_dags"))
        # Empty strings come back from mwaa-dr's CSVs as NULL; the REST API rejects task instances
        # whose hostname or unixname is NULL (HTTP 500 on /taskInstances), so restore the ''.
        blanks = session.execute(text(
            "UPDATE task_instance SET hostname = COALESCE(hostname, ''), unixname = COALESCE(unixname, '') "
            "WHERE hostname IS NULL OR unixname IS NULL"
        )).rowcount
        session.commit()
        counts = {{}}
        for table in TABLES:
            where = f" WHERE dag_id IS NULL OR dag_id NOT IN ({{own}})" if table in DAG_SCOPED else ""
            if table == "variable":
                where = " WHERE key <> '{FIXUP_VARIABLE}'"
            counts[table] = session.execute(text(f"SELECT count(*) FROM {{table}}{{where}}")).scalar()
    result = {{"run_id": context["run_id"], "xcom_remapped": remapped, "backup_rows_removed": removed,
              "blank_strings_restored": blanks, "counts": counts}}
    Variable.set({FIXUP_VARIABLE!r}, json.dumps(result))
    return result
"""


def render_prepare_dag(deployment: str, label: str) -> DagFile:
    """Empties the target's history tables before a second restore (``log`` and ``task_fail`` have
    no unique key and would duplicate). Unlike mwaa-dr's cleanup DAG it keeps the ``dag`` table,
    DAG tags and the running scheduler's job, so the target goes on scheduling at once instead of
    re-parsing every DAG file first (a minute of frozen time on a small environment)."""
    marker = f"mwaa-iac prepare {label}"
    own = ", ".join(repr(d) for d in DR_DAG_IDS)
    text = (
        _HEADER.format(purpose="pre-restore cleanup DAG", deployment=deployment, label=label, factory="-")
        + f"""
from datetime import datetime

from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.settings import Session
from sqlalchemy import inspect, text

OWN = ({own})
# Children before parents; tables a version lacks are skipped.
DAG_SCOPED = ("xcom", "rendered_task_instance_fields", "task_fail", "task_reschedule", "task_instance_note",
              "task_instance_history", "task_instance", "dag_run_note", "dag_run", "sla_miss", "log")


def prepare(**context):
    own = ", ".join(f"'{{d}}'" for d in OWN)
    with Session() as session:
        existing = set(inspect(session.get_bind()).get_table_names())
        deleted = {{}}
        for table in DAG_SCOPED:
            if table not in existing:
                continue
            columns = {{c["name"] for c in inspect(session.get_bind()).get_columns(table)}}
            where = f" WHERE dag_id IS NULL OR dag_id NOT IN ({{own}})" if "dag_id" in columns else ""
            deleted[table] = session.execute(text(f"DELETE FROM {{table}}{{where}}")).rowcount
        deleted["trigger"] = session.execute(text("DELETE FROM trigger")).rowcount
        stale_jobs = "DELETE FROM job WHERE state IS DISTINCT FROM 'running'"
        deleted["job"] = session.execute(text(stale_jobs)).rowcount
        session.commit()
    return deleted


with DAG({PREPARE_DAG_ID!r}, schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         description={marker!r}) as dag:
    PythonOperator(task_id="prepare", python_callable=prepare)
"""
    )
    return DagFile(f"{DR_DAG_FOLDER}/{PREPARE_DAG_ID}.py", text, PREPARE_DAG_ID, marker)


# The preflight probe: proves, before mwaa-iac changes anything, that the environment that will run
# mwaa-dr can import the factory from the delivered files (the DAG file's own import: an import error
# shows in Airflow's importErrors) and can write to and read from the DR bucket the way mwaa-dr does
# (smart_open over boto3, with the environment's execution role), on a worker. Its result goes into
# the run's note (read over the REST API; a task log is not reachable within MWAA's 64-character
# path limit). Run-specific values (bucket, key) come in the run's conf: workers sync the DAG folder
# on their own, so the file carries none.
_PROBE = """
import json
from datetime import datetime

from airflow import DAG
from airflow.operators.python import PythonOperator
from {module} import {factory}

NOTE_LIMIT = 1000  # dag_run_note.content


def _report(context, result):
    text = json.dumps(result, sort_keys=True)
    print(f"mwaa-iac probe: {{text}}")
    try:
        from airflow.models.dagrun import DagRun
        from airflow.settings import Session

        with Session() as session:
            run = session.query(DagRun).filter(
                DagRun.dag_id == context["dag"].dag_id, DagRun.run_id == context["run_id"]
            ).one()
            run.note = text[:NOTE_LIMIT]
            session.commit()
    except Exception as exc:  # Airflow < 2.5 has no notes: the task state still tells
        print(f"mwaa-iac probe: cannot record the result in the run's note: {{exc}}")


def probe(**context):
    import mwaa_dr
    import smart_open

    conf = context["dag_run"].conf or {{}}
    uri = f"s3://{{conf['bucket']}}/{{conf['key']}}"
    result = {{
        "factory": {factory}.__name__,
        "mwaa_dr": os.path.dirname(mwaa_dr.__file__),
        "smart_open": os.path.dirname(smart_open.__file__),
        "uri": uri,
    }}
    try:
        with smart_open.open(uri, "wb") as out:  # as mwaa-dr's backup writes its CSVs
            out.write(context["run_id"].encode("utf-8"))
        with smart_open.open(uri, encoding="utf-8") as back:  # as its restore reads them
            if back.read() != context["run_id"]:
                raise RuntimeError("the object read back differs from the one written")
    except Exception as exc:
        error = f"{{type(exc).__name__}}: {{exc}}"[:600]
        _report(context, {{**result, "ok": False, "stage": "s3", "error": error}})
        raise
    try:
        import boto3

        boto3.client("s3").delete_object(Bucket=conf["bucket"], Key=conf["key"])
        result["deleted"] = True
    except Exception as exc:  # mwaa-dr itself never deletes: not a reason to stop
        result["deleted"] = f"{{type(exc).__name__}}: {{exc}}"[:300]
    _report(context, {{**result, "ok": True}})


with DAG({dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         description={marker!r}) as dag:
    PythonOperator(task_id="probe", python_callable=probe)
"""


def render_probe_dag(factory: str, deployment: str) -> DagFile:
    """The preflight probe DAG for ``factory`` (the one the DR DAGs will import there)."""
    marker = f"mwaa-iac probe {factory}"
    text = (
        _HEADER.format(purpose="preflight probe DAG", deployment=deployment, label="probe", factory=factory)
        + VENDOR_BOOTSTRAP
        + _PROBE.format(module=_factory_module(factory), factory=factory, dag_id=PROBE_DAG_ID, marker=marker)
    )
    return DagFile(f"{DR_DAG_FOLDER}/{PROBE_DAG_ID}.py", text, PROBE_DAG_ID, marker)


def probe_conf(bucket: str, base_prefix: str, deployment: str, probe_id: str) -> dict[str, str]:
    """Where the probe writes (and then deletes) its object: under the deployment's backup prefix."""
    prefix = backup_prefix(base_prefix, deployment, "probe", probe_id)
    return {"bucket": bucket, "key": f"{prefix}/probe.txt"}


def restore_conf(bucket: str) -> dict[str, str]:
    """Run conf of the restore DAG: an empty target takes everything (REPLACE would also work)."""
    return {
        "bucket": bucket,
        "variable_restore_strategy": "REPLACE",
        "connection_restore_strategy": "REPLACE",
        "dr_type": "WARM_STANDBY",
    }


# mwaa-dr writes these with the csv module's default dialect (``,``, multi-line values quoted); the
# other tables' CSVs are ``|``-delimited (PostgreSQL COPY's CSV with ``|``).
COMMA_TABLES = frozenset({"variable", "connection"})


def csv_delimiter(table: str) -> str:
    """The delimiter of ``table``'s CSV in an mwaa-dr backup."""
    return "," if table in COMMA_TABLES else "|"


def count_csv_records(
    text: str, exclude_value: str = BACKUP_DAG_ID, *, delimiter: str = "|"
) -> tuple[int, int]:
    """(records, records with a field equal to ``exclude_value``) in a header-less mwaa-dr CSV with
    ``delimiter`` (see :func:`csv_delimiter`); quoted values may span lines. The second number is the
    backup's own run, which the fix-up removes from the target. Values are counted, never kept."""
    total = excluded = 0
    for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
        total += 1
        if exclude_value in row:
            excluded += 1
    return total, excluded


@dataclass(frozen=True)
class TableCheck:
    table: str
    backup_rows: int
    target_rows: int | None
    ok: bool
    rule: str

    def to_dict(self) -> dict:
        return {
            "table": self.table,
            "backup_rows": self.backup_rows,
            "target_rows": self.target_rows,
            "ok": self.ok,
            "rule": self.rule,
        }


def verify_counts(
    backup: dict[str, int], target: dict[str, int], *, excluded_backup_rows: dict[str, int]
) -> list[TableCheck]:
    """Compare the backup's per-table record counts with the target's rows after restore + fix-up.
    ``excluded_backup_rows`` are backup rows the fix-up removes on purpose (the backup's own run)."""
    checks = []
    for table in TABLES:
        if table == "active_dag" or table not in backup:
            continue
        expected = backup[table] - excluded_backup_rows.get(table, 0)
        actual = target.get(table)
        if actual is None:
            checks.append(TableCheck(table, expected, None, False, "target count missing"))
        elif table in GROWING_TABLES or table == "slot_pool":
            checks.append(
                TableCheck(table, expected, actual, actual >= expected, "at least the backup's rows")
            )
        else:
            checks.append(TableCheck(table, expected, actual, actual == expected, "equal"))
    return checks


def _factory_module(factory: str) -> str:
    match = re.fullmatch(r"DRFactory_(\d+)_(\d+)", factory)
    if not match:
        raise ValueError(f"not an mwaa-dr factory name: {factory}")
    return f"mwaa_dr.v_{match.group(1)}_{match.group(2)}.dr_factory"
