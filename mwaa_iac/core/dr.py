"""mwaa-dr integration, the pure part: which factory, which DAG files, which prefixes and run ids.

mwaa-dr 2.2.0 facts this module encodes (docs/design.md §3): ``DRFactory_<major>_<minor>(dag_id,
path_prefix, storage_type="S3")`` knows a version's tables and columns; the DAG ids must be
``backup_metadata``, ``restore_metadata`` and ``cleanup_metadata``.

The generated backup and restore DAGs take the tables and columns from mwaa-dr's factory and copy
them with mwaa-iac's copy module (``mwaa_iac/dr_runtime/mwaa_iac_copy.py``: one snapshot, PostgreSQL
COPY, one verified restore transaction; its docstring says what mwaa-dr's own export loses and why).
A backup is ``s3://<bucket>/<prefix>/``: ``<table>.csv`` (``|``-delimited, PostgreSQL CSV),
``variable.jsonl``/``connection.jsonl``/``trigger.jsonl`` (decrypted values: plaintext secrets) and
``manifest.json`` (per-table counts and content hashes), written last.

Neither mwaa-dr nor the copy module is installed in the environment: mwaa-iac uploads their files (and
smart_open's, mwaa-dr's only dependency) beside the generated DAGs in ``mwaa_iac_dr/vendor/`` (see
:mod:`mwaa_iac.adapters.dr_bundle`), hidden from DAG parsing by ``mwaa_iac_dr/.airflowignore``; each
generated file appends that folder to ``sys.path``. So the source's requirements.txt never changes
and it is never restarted (UpdateEnvironment) for mwaa-dr.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from mwaa_iac.core import constants_block
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
FIXUP_VARIABLE = "mwaa_iac_fixup"  # where earlier releases left restore counts: never copied
# On a target: which backup its copied tables hold (written by each restore; never copied). The name
# is also in dr_runtime/mwaa_iac_copy.py (it runs inside Airflow and imports nothing of mwaa-iac).
RESTORE_MARKER_VARIABLE = "mwaa_iac_restore"
# While this variable exists on an environment, every DAG that first appears there is paused at
# creation, whatever its file or the environment's configuration says (a trigger on the `dag` table
# that the copy module installs on both colours). The colours share the DAG folder: the colour that
# is not live holds new DAGs, so that a DAG created unpaused runs on the live colour only. Never copied.
HOLD_VARIABLE = "mwaa_iac_hold"
# The tool's own variables: never copied, never left on the live colour after go-live.
TOOL_VARIABLES = (FIXUP_VARIABLE, RESTORE_MARKER_VARIABLE, HOLD_VARIABLE)
# The run conf key naming the version of a generated DAG file the run wants (its marker): a worker whose
# copy of the DAG folder lags waits for that version (the rendered tasks read this literal key).
MARKER_CONF = "mwaa_iac_marker"

# The backup's table of contents, written last by the backup DAG beside the table files: per table its
# columns, row count and content hash (values hashed inside the environment, never shown).
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2  # the copy module's FORMAT (2: per-DAG digests that add up)
# Tables every backup holds (others depend on the Airflow version: task_map, dataset events...).
REQUIRED_TABLES = ("variable", "connection", "slot_pool", "dag_run", "task_instance", "xcom")
# The copy module (mwaa_iac/dr_runtime/mwaa_iac_copy.py) delivered beside mwaa-dr in vendor/.
COPY_MODULE = "mwaa_iac_copy"

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


def dag_key(dag_path: str, relative: str) -> str:
    """The S3 key of ``relative`` (``mwaa_iac_dr/...``) in the DAG folder ``dag_path`` (may be empty)."""
    base = dag_path.strip("/")
    return f"{base}/{relative}" if base else relative


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

# Before ``from mwaa_dr ...``: mwaa-iac delivers mwaa-dr, smart_open and its own copy module
# (``mwaa_iac_copy``) in vendor/ beside this file. Appended, never prepended: an environment with
# mwaa-dr installed keeps its own, and the user's other DAGs parsed in the same process resolve their
# imports as before. (The DAG files in mwaa_iac/dr_runtime/dags/ carry the same lines.)
VENDOR_BOOTSTRAP = """
import os
import sys

_VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if _VENDOR not in sys.path:
    sys.path.append(_VENDOR)
"""

# The DR DAG files, real Python in mwaa_iac/dr_runtime/dags/ (package data), each with a constants
# block filled in per upload (core.constants_block): the copy DAGs (backup, restore, pre-restore
# cleanup: one task running the copy module) and the preflight probe. Read when a file is rendered,
# never at import (as load_rates reads its JSON).
DAGS_PACKAGE = "mwaa_iac.dr_runtime.dags"
COPY_TASK_FILE = "copy_task.py"
PROBE_FILE = "probe.py"


def dag_template(name: str) -> str:
    """The text of ``name`` in :data:`DAGS_PACKAGE`."""
    return resources.files(DAGS_PACKAGE).joinpath(name).read_text("utf-8")


def _factory_ref(factory: str) -> str:
    """``mwaa_dr.v_2_9.dr_factory:DRFactory_2_9``: where a DAG file imports the factory from."""
    return f"{_factory_module(factory)}:{factory}"


def _copy_dag(
    action: str, dag_id: str, factory: str | None, path_prefix: str, deployment: str, label: str
) -> DagFile:
    marker = f"mwaa-iac {action} {path_prefix}"
    text = constants_block.fill(
        dag_template(COPY_TASK_FILE),
        {
            "DAG_ID": dag_id,
            "ACTION": action,
            "MARKER": marker,
            "OWN_DAGS": MWAA_IAC_DAG_IDS,
            "FACTORY": _factory_ref(factory) if factory is not None else "",
            "PATH_PREFIX": path_prefix,
            "DEPLOYMENT": deployment,
            "LABEL": label,
        },
    )
    return DagFile(f"{DR_DAG_FOLDER}/{dag_id}.py", text, dag_id, marker)


def render_backup_dag(factory: str, path_prefix: str, deployment: str, label: str) -> DagFile:
    """The backup: every copied table in one snapshot, then ``manifest.json`` (counts and hashes)."""
    return _copy_dag("backup", BACKUP_DAG_ID, factory, path_prefix, deployment, label)


def render_restore_dag(factory: str, path_prefix: str, deployment: str, label: str) -> DagFile:
    """The restore: one transaction that replaces the copied tables, pauses every DAG (mwaa-iac
    unpauses exactly the recorded ones at go-live) and commits only when the manifest matches."""
    return _copy_dag("restore", RESTORE_DAG_ID, factory, path_prefix, deployment, label)


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


def render_prepare_dag(deployment: str, label: str) -> DagFile:
    """Empties the target's history tables before a restore, outside the freeze (the restore would
    do it too, inside it). Unlike mwaa-dr's cleanup DAG it keeps the ``dag`` table, DAG tags and the
    scheduler's jobs, so the target goes on scheduling at once instead of re-parsing every file."""
    return _copy_dag("prepare", PREPARE_DAG_ID, None, label, deployment, label)


def render_probe_dag(factory: str, deployment: str) -> DagFile:
    """The preflight probe DAG for ``factory`` (the one the DR DAGs will import there): proves, before
    mwaa-iac changes anything, that the environment imports it from the delivered files and reads and
    writes the DR bucket as mwaa-dr does (see mwaa_iac/dr_runtime/dags/probe.py)."""
    marker = f"mwaa-iac probe {factory}"
    text = constants_block.fill(
        dag_template(PROBE_FILE),
        {
            "DAG_ID": PROBE_DAG_ID,
            "MARKER": marker,
            "FACTORY": _factory_ref(factory),
            "DEPLOYMENT": deployment,
        },
    )
    return DagFile(f"{DR_DAG_FOLDER}/{PROBE_DAG_ID}.py", text, PROBE_DAG_ID, marker)


def probe_conf(bucket: str, base_prefix: str, deployment: str, probe_id: str) -> dict[str, str]:
    """Where the probe writes (and then deletes) its object: under the deployment's backup prefix."""
    prefix = backup_prefix(base_prefix, deployment, "probe", probe_id)
    return {"bucket": bucket, "key": f"{prefix}/probe.txt"}


def copy_conf(bucket: str, prefix: str, since: str | None = None, vacuum: bool = False) -> dict[str, Any]:
    """Run conf of the backup and restore DAGs: where the backup is (each attempt its own prefix);
    ``since``: a backup's prefix in the same bucket, the one the target holds (a delta backup);
    ``vacuum``: a full restore then vacuums the history tables it rewrote (a restore outside the
    freeze, with a freeze to come: pass 1)."""
    conf: dict[str, Any] = {"bucket": bucket, "prefix": prefix}
    if since:
        conf["since"] = since
    if vacuum:
        conf["vacuum"] = True
    return conf


# -- copiers armed before the freeze (docs/design.md §11) ------------------------------------------
# Pass 2's backup (on the source) and restore (on the target) are triggered before the freeze with
# ``go`` in their conf: the task starts (a worker slot, before anything is paused) and polls the go
# object; the freeze then only writes it. The restore's go names the backup's prefix, and the restore
# waits for that backup's manifest. An armed run that is not told to go by ``deadline`` (epoch
# seconds), or is told to cancel, does nothing and says so in its note (``armed.skipped``).
GO_POLL_SECONDS = 0.25


def go_key(pass_prefix: str, run_id: str) -> str:
    """Where the go signal of the armed run ``run_id`` is written: beside the pass's backups."""
    return f"{pass_prefix.strip('/')}-go/{run_id}.json"


def armed_conf(
    bucket: str, go: str, deadline: float, *, wait_for_manifest: bool = False, mode: str | None = None
) -> dict[str, Any]:
    """Run conf of an armed copier: wait for ``s3://<bucket>/<go>`` until ``deadline``; a restore
    also waits for the manifest of the backup its go signal names. ``mode`` ``unpause``: a run of
    the restore DAG that only unpauses the recorded DAGs at go-live (:func:`unpause_signal`)."""
    conf: dict[str, Any] = {"bucket": bucket, "go": go, "deadline": round(deadline, 3)}
    conf["go_poll"] = GO_POLL_SECONDS
    if wait_for_manifest:
        conf["wait_for_manifest"] = True
    if mode:
        conf["mode"] = mode
    return conf


def go_signal(prefix: str, since: str | None = None) -> dict[str, str]:
    """What the go object says: the backup's prefix (and the delta's base, for the backup)."""
    signal = {"prefix": prefix}
    if since:
        signal["since"] = since
    return signal


CANCEL_SIGNAL: dict[str, Any] = {"cancel": True}

# The armed backup copier also pauses the source's DAGs in its database at the freeze's start
# (docs/design.md §11): told by a pause signal in its go object, it selects the unpaused DAGs, pauses
# exactly those and writes a ``log`` row per DAG in ONE transaction, and writes what it recorded to
# ``paused_key(go)``: first the selection (``state: selected``, before its commit), then ``state:
# paused`` once committed (or ``failed`` / ``late``: nothing paused). It commits only before the
# signal's ``until`` (epoch seconds): the freeze waits for its answer until then plus a margin for
# the two clocks, and only then falls back to pausing over REST, with whatever selection the copier
# wrote added to the record (never a DAG paused and left unrecorded).
PAUSE_ANSWER_SECONDS = 10.0
PAUSE_CLOCK_MARGIN_SECONDS = 2.0
PAUSE_STATES = ("selected", "paused", "failed", "late")


def paused_key(go: str) -> str:
    """Where the armed backup copier writes the DAGs it paused: beside its go object."""
    return f"{go.removesuffix('.json')}.paused.json"


def pause_signal(key: str, until: float) -> dict[str, Any]:
    """The go object's content that tells the armed backup copier to pause (and nothing else yet)."""
    return {"pause": {"key": key, "until": round(until, 3)}}


# The unpause at go-live, on a 2.x target: a third armed run (the restore DAG's, ``mode: unpause``)
# waits on the target; go-live's signal names the recorded DAGs, and it unpauses those of them that
# are paused, with a ``log`` row each, in one transaction committed only before ``until``; its
# answer (``unpaused``, ``failed``, ``late``) is written to ``unpaused_key(go)``. A 3.x target (its
# tasks cannot use the database) is unpaused over REST only.
UNPAUSE_MODE = "unpause"


def unpaused_key(go: str) -> str:
    """Where the armed unpause copier writes the DAGs it unpaused: beside its go object."""
    return f"{go.removesuffix('.json')}.unpaused.json"


def unpause_signal(key: str, until: float, dags: list[str]) -> dict[str, Any]:
    """The go object's content that tells the armed unpause copier which DAGs to unpause."""
    return {"unpause": {"key": key, "until": round(until, 3), "dags": sorted(dags)}}


def armed_skipped(note: dict[str, Any]) -> str | None:
    """Why an armed run did nothing (``expired``, ``cancelled``), from its note; None when it copied."""
    armed = note.get("armed")
    if isinstance(armed, dict) and armed.get("skipped"):
        return str(armed["skipped"])
    return None


def restore_marker(value: str | None) -> str | None:
    """The backup prefix a target's restore marker variable names (None: none, or unreadable)."""
    try:
        data = json.loads(value) if value else None
    except ValueError:
        return None
    backup = data.get("backup") if isinstance(data, dict) else None
    return backup if isinstance(backup, str) and backup else None


class ManifestError(ValueError):
    """A backup's manifest is missing, of another format, or lacks a table."""


def manifest_counts(manifest: dict[str, Any]) -> dict[str, int]:
    """Rows per table of a backup manifest; ManifestError when it is not a complete backup."""
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        hint = (
            " (an earlier mwaa-iac made this backup: take a new one with this version)"
            if isinstance(found, int) and found < MANIFEST_FORMAT
            else ""
        )
        raise ManifestError(f"backup manifest format {found!r}, expected {MANIFEST_FORMAT}{hint}")
    tables = manifest.get("tables")
    if not isinstance(tables, dict):
        raise ManifestError("backup manifest lists no tables")
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise ManifestError(f"backup manifest lacks table(s) {', '.join(missing)}")
    return {name: int(entry.get("rows", 0)) for name, entry in sorted(tables.items())}


def manifest_copy(manifest: dict[str, Any]) -> dict[str, Any]:
    """How a backup copied: ``mode`` (delta or full), the ``base`` backup of a delta, the DAGs it
    carries ``whole``, rows in the backup per table (``copied``), and why a delta was not taken
    (``fallback``). Backups of earlier releases are full."""
    tables = manifest.get("tables", {})
    delta = manifest.get("mode") == "delta"
    return {
        "mode": "delta" if delta else "full",
        "base": manifest.get("base") if delta else None,
        "whole": list(manifest.get("whole") or []) if delta else [],
        "copied": {
            name: int(entry.get("copied", entry.get("rows", 0))) for name, entry in sorted(tables.items())
        },
        "fallback": manifest.get("fallback"),
    }


def restore_problems(manifest_rows: dict[str, int], result: dict[str, Any]) -> list[str]:
    """What a restore's result (the restore run's note) says went wrong, compared with the backup's
    manifest: [] when the restore committed and every verified table has the backup's rows."""
    if not result:
        return ["the restore left no result (its run's note is empty)"]
    if not result.get("ok"):
        return [str(result.get("error") or "the restore failed")]
    if result.get("truncated"):
        return []  # the restore verified the hashes itself; the note was too long to hold the counts
    tables = result.get("tables", {})
    return [
        f"{table}: backup {rows}, target {tables[table]}"
        for table, rows in sorted(manifest_rows.items())
        if table in tables and tables[table] != rows
    ]


def _factory_module(factory: str) -> str:
    match = re.fullmatch(r"DRFactory_(\d+)_(\d+)", factory)
    if not match:
        raise ValueError(f"not an mwaa-dr factory name: {factory}")
    return f"mwaa_dr.v_{match.group(1)}_{match.group(2)}.dr_factory"
