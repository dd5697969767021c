"""mwaa-iac's copy of Airflow metadata, on top of mwaa-dr's factory. Runs INSIDE an Airflow 2.x
environment: the generated DR DAG files import it from ``mwaa_iac_dr/vendor/`` (mwaa-iac uploads it
there with mwaa-dr). It is never imported by mwaa-iac itself (it imports Airflow).

mwaa-dr's factory says which tables a version has and their columns (mwaa-dr stays the source of
that knowledge); this module replaces mwaa-dr's per-table export and import, which lose data:

* mwaa-dr writes rows with Python's csv module: NULL and '' both become an empty field (NULL
  connection fields come back as '', '' task fields as NULL), JSON columns become Python reprs (a
  deferred task's ``next_kwargs`` breaks the restore), and its restore reads the file as text in
  batches of lines (CR becomes LF, a multi-line value split across batches breaks COPY) and skips a
  whole batch on a duplicate key. Here PostgreSQL's own ``COPY ... TO/FROM`` (CSV, ``|``) writes and
  reads the bytes: NULL vs '', CR, tabs, unicode, JSON and bytea survive byte for byte.
* mwaa-dr exports each table in its own transaction, with filters that leave running or up_for_retry
  task instances out while their XComs and failures are exported (broken foreign keys on restore).
  Here the backup reads every table in ONE repeatable-read snapshot and exports every task instance
  of every exported run: rows are consistent with each other.
* Variables, connections and triggers hold values encrypted with the environment's Fernet key: they
  are exported decrypted through Airflow's models (JSON lines: NULL stays null, CR stays CR) and
  written through the target's models (encrypted with the target's key). A deferred task instance
  keeps its trigger (same id): the target's triggerer runs it again.
* Tables mwaa-dr does not copy: task_map (mapped tasks' expansion), task_reschedule, dataset events,
  the dataset-triggered DAG queue and which events a run consumed, and each DAG's next scheduled
  interval (``dag.next_dagrun*``). ``job`` is not copied (process heartbeats of the source).
* The restore runs in ONE transaction on the target: it replaces the copied tables (the tool's own
  DAGs' rows stay), re-maps surrogate ids (dag_run ids, log templates, dataset ids), pauses every DAG
  (mwaa-iac unpauses the recorded ones at go-live), then compares per-table row counts and content
  hashes with the backup's manifest and commits only if they match: a failed restore changes nothing.
  Task instances still executing in the backup (a forced drain) are reset afterwards, so the target's
  scheduler runs them.

The backup writes ``manifest.json`` beside the files: per table its columns, row count and content
hash (per group: a DAG id, a variable key...), hashes of values only, never values, and the
snapshot it read (``txid_current_snapshot()``).

Delta (pass 2, docs/design.md §7): a backup whose conf names ``since`` (the backup the target holds)
exports, of the history tables grouped by DAG (the registry's ``delta`` tables), only the rows written
after that backup's snapshot (``xmin`` not visible in it) — unless a DAG's rows cannot be accounted for
that way, then every row of that DAG. A DAG is accounted for when its rows now are the base's plus
the new ones and, if it has a row that looks old but was written inside the base snapshot's window
[xmin, xmax) (a subtransaction of a transaction running when the base was taken looks old without
being in the base), its rows that look old have the base's digest. Digests add up (count and sums of
row md5 halves), so unchanged rows are never re-read. The other tables are small and copied whole.
The restore applies it on top of what the target holds (checked with the marker variable the
restores write), replaces those DAGs' rows, and verifies every DAG's count, the digest of what it
wrote, and the digest of every DAG something else wrote to since the previous restore; it
refuses (``delta_refused``) when it cannot — or when anything unexpected fails — and mwaa-iac then
copies everything. A backup that cannot compute the delta safely (another Airflow version,
transaction ids that went backwards, no usable base, any unexpected error of the delta path) is a
full one, taken in the same run and snapshot, that says why (``fallback``).

Values never reach SQL text: DAG ids, group names and snapshots are bound parameters (psycopg2
quotes them for the COPY statements, with ``standard_conforming_strings`` on), and a database error is
reported as its class, SQLSTATE, table, column and constraint — never its message, DETAIL or CONTEXT,
which quote row values. Python 3.10 compatible (MWAA runs Airflow 2.4.3-2.6.3 on 3.10).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import io
import json
import time

FORMAT = 2  # 2: per-group digests that add up (rows:hi:lo); 1 hashed sorted rows
RESTORE_MARKER = "mwaa_iac_restore"  # on a target: which backup its copied tables hold, and since when
# While it exists, every DAG that first appears in this environment is paused at creation (the hold
# trigger below). mwaa-iac keeps it on the colour that is not live. The name is core.dr.HOLD_VARIABLE.
HOLD_VARIABLE = "mwaa_iac_hold"
HOLD_TRIGGER = "mwaa_iac_hold_new_dags"
OWN_VARIABLES = ("mwaa_iac_fixup", RESTORE_MARKER, HOLD_VARIABLE)
EXECUTING = ("queued", "running", "restarting")
NOTE_LIMIT = 1000  # dag_run_note.content
XID_WRAP = 4294967296  # 2**32: xmin is a 32-bit transaction id, snapshots hold 64-bit ones

# -- the table registry -----------------------------------------------------------------------------
#
# One record per table of Airflow 2.x's metadata database: every fact the copy needs about it. The
# lists below (restore order, history cleared, delta tables...) and the SQL of build_specs,
# _insert_sql, clear_history and the restore derive from it: adding a table is one entry here (and
# its test). docs/design.md "Adding a table to the copy" walks through one.

COPIED = "copied"
REBUILT = "rebuilt by Airflow"
NOT_COPIED = "not copied"

# Where a copied table's columns come from (``Table.source``).
FACTORY = "factory"  # mwaa-dr's column list for this Airflow version (the live ones where it has none)
LIVE = "live"  # the database's own columns
KEYED = "keyed"  # only its natural columns (``Table.natural``): surrogate ids replaced by natural keys
ORM = "orm"  # through Airflow's models, decrypted (JSON lines, not CSV)

# How the restore writes a copied table's staged rows (``Table.insert``).
APPEND = "append"  # every row (the restore removed what they replace first)
MISSING = "missing"  # only rows whose key the target lacks (parsing created the others)
IGNORE = "ignore"  # every row the target does not have already (ON CONFLICT DO NOTHING)
UPDATE = "update"  # the target's rows with the same key are updated; no row is added
READ = "read"  # staged only, for re-mapping another table's ids (log_template)
MODELS = "models"  # written through Airflow's models, encrypted with the target's key

# What the restore removes before it writes (``Table.replace``).
KEEP = "keep"  # nothing
DAG_ROWS = "dag rows"  # the rows of the DAGs it replaces (every DAG but the tool's, or a delta's)
ALL_ROWS = "all rows"  # every row

# The tool's own DAGs' rows are never copied: every SELECT of a spec takes them as this parameter.
NOT_OWN = "<> ALL(:own_dags)"
USER_DAGS = f"t.dag_id {NOT_OWN}"  # a table's ``where``: the rows of every DAG but the tool's
TI_KEY = ("dag_id", "run_id", "task_id", "map_index")
RUN_LINK = "JOIN dag_run r ON r.dag_id = s.dag_id AND r.run_id = s.run_id"  # a staged row's run
# The columns of `dag` the copy carries (the `dag_schedule` entry): each DAG's next scheduled interval.
SCHEDULE = (
    "dag_id",
    "next_dagrun",
    "next_dagrun_data_interval_start",
    "next_dagrun_data_interval_end",
    "next_dagrun_create_after",
)


class Table:
    """What the copy does with one table.

    ``fate``: COPIED, REBUILT or NOT_COPIED, and ``why`` (docs/limits.md's "Not copied" table is rendered from
    the ones not copied). ``parents``: the tables its foreign keys point to (the restore writes parents
    first and clears children first). ``key``: the columns that name a row (its natural key, never a
    surrogate id: the fingerprint and the restore's MISSING/UPDATE use it). ``table``: the real table
    when the entry is a part of one (``dag_schedule`` is columns of ``dag``).

    A table read into the backup (``source`` set) is one CSV: its columns come from ``source``
    (FACTORY, LIVE, KEYED, ORM), listed after its ``natural`` ones (``{csv column: SQL over t and
    joins}``: natural keys that stand in for surrogate ids, e.g. ``dataset_uri`` for ``dataset_id``),
    without the ``dropped`` ones (ids the target assigns itself); ``columns`` narrows them. The backup
    selects ``FROM <table> t <joins> WHERE <where>``, groups rows by ``group`` (an SQL expression: a
    DAG id, a pool...) and hashes every column but ``unhashed`` (none when not ``verify``). ``delta``:
    a delta backup copies it in part, grouped by DAG (``dagless``: rows of no DAG are the group '').

    The restore removes ``replace`` (KEEP, DAG_ROWS, ALL_ROWS) first, then writes the rows by
    ``insert`` (APPEND, MISSING, IGNORE, UPDATE, READ, MODELS), each target column in ``links``
    (``{column: SQL over s and link_joins}``) set from the target's own ids; ``sequence``: its id
    sequence is moved past the ids written; ``after``: written after the restore's transaction."""

    def __init__(
        self,
        name,
        fate,
        why,
        source=None,
        *,
        parents=(),
        key=(),
        table=None,
        columns=None,
        natural=None,
        dropped=(),
        joins="",
        where="",
        group="''",
        unhashed=(),
        verify=True,
        delta=False,
        dagless=False,
        replace=KEEP,
        insert=None,
        links=None,
        link_joins="",
        sequence=False,
        after=False,
    ):
        self.name = name
        self.fate = fate
        self.why = why
        self.source = source
        self.parents = tuple(parents)
        self.key = tuple(key)
        self.table = table or name
        self.columns = None if columns is None else tuple(columns)
        self.natural = dict(natural or {})
        self.dropped = frozenset(dropped)
        self.joins = joins
        self.where = where
        self.group = group
        self.unhashed = frozenset(unhashed)
        self.verify = verify
        self.delta = delta
        self.dagless = dagless
        self.replace = replace
        self.insert = insert if insert is not None else (MODELS if source == ORM else APPEND)
        self.links = dict(links or {})
        self.link_joins = link_joins
        self.sequence = sequence
        self.after = after

    def mapped(self, column):
        """Whether ``column`` of the CSV stands in for another column (the target has no such column)."""
        return column in self.natural and self.natural[column] != f"t.{column}"

    def __repr__(self):
        return f"Table({self.name!r}, {self.fate!r})"


PARSED = "parsing writes it from the DAG files"
WEB_SERVER = "the web server syncs Airflow's permissions at start"
USERS = "refers to web users (ab_user), which are not copied"

TABLES = (
    Table("variable", COPIED, "decrypted, re-encrypted with the target's key", ORM, key=("key",)),
    Table("connection", COPIED, "decrypted, re-encrypted with the target's key", ORM, key=("conn_id",)),
    Table("slot_pool", COPIED, "replaced whole", FACTORY, key=("pool",), group="t.pool", replace=ALL_ROWS),
    Table(
        "log",
        COPIED,
        "the audit log, grouped by DAG ('' for none)",
        FACTORY,
        key=("dttm", "dag_id", "event"),
        dropped=("id",),
        where=f"t.dag_id IS NULL OR t.dag_id {NOT_OWN}",
        group="COALESCE(t.dag_id, '')",
        delta=True,
        dagless=True,
        replace=DAG_ROWS,
    ),
    Table(
        "log_template",
        REBUILT,
        "written by `airflow db migrate` from the logging settings; runs refer to the target's entry "
        "with the same content",
        LIVE,
        key=("filename", "elasticsearch_id"),
        verify=False,
        insert=READ,
    ),
    Table(
        "dataset",
        COPIED,
        "by URI: parsing creates most, the restore adds the others",
        LIVE,
        key=("uri",),
        dropped=("id",),
        verify=False,
        insert=MISSING,
    ),
    Table(
        "dataset_alias",
        COPIED,
        "by name: parsing creates most, the restore adds the others",
        KEYED,
        key=("name",),
        natural={"name": "t.name"},
        verify=False,
        insert=MISSING,
        sequence=True,
    ),
    Table(
        "dataset_alias_dataset",
        COPIED,
        "by alias name and dataset URI",
        KEYED,
        parents=("dataset_alias", "dataset"),
        key=("alias_name", "dataset_uri"),
        natural={"alias_name": "a.name", "dataset_uri": "d.uri"},
        joins="JOIN dataset_alias a ON a.id = t.alias_id JOIN dataset d ON d.id = t.dataset_id",
        group="a.name",
        replace=ALL_ROWS,
        insert=IGNORE,
        links={"alias_id": "a.id", "dataset_id": "d.id"},
        link_joins="JOIN dataset_alias a ON a.name = s.alias_name JOIN dataset d ON d.uri = s.dataset_uri",
    ),
    Table(
        "dag_run",
        COPIED,
        "ids re-assigned; XComs and events re-linked by run id",
        FACTORY,
        parents=("log_template",),
        key=("dag_id", "run_id"),
        natural={"src_id": "t.id"},
        dropped=("id",),
        where=USER_DAGS,
        group="t.dag_id",
        unhashed=("src_id", "log_template_id"),
        delta=True,
        replace=DAG_ROWS,
        # the target's log template with the content of the source's one
        links={
            "log_template_id": "(SELECT lt.id FROM log_template lt JOIN mwaa_iac_stage_log_template sl "
            "ON sl.filename = lt.filename AND sl.elasticsearch_id = lt.elasticsearch_id "
            "WHERE sl.id = s.log_template_id ORDER BY lt.id DESC LIMIT 1)"
        },
    ),
    Table(
        "sla_miss",
        NOT_COPIED,
        "SLA alerts the source raised (mwaa-dr does not copy them)",
        key=("dag_id", "task_id", "execution_date"),
        replace=DAG_ROWS,
    ),
    Table("dag_run_note", NOT_COPIED, USERS, parents=("dag_run",), replace=DAG_ROWS),
    Table(
        "trigger",
        COPIED,
        "kwargs decrypted, re-encrypted with the target's key",
        ORM,
        key=("id",),
        sequence=True,
    ),
    Table(
        "task_instance",
        COPIED,
        "every task instance of every copied run",
        FACTORY,
        parents=("dag_run", "trigger"),
        key=TI_KEY,
        where=USER_DAGS,
        group="t.dag_id",
        delta=True,
        replace=DAG_ROWS,
    ),
    Table(
        "task_instance_history",
        COPIED,
        "earlier tries (2.10+)",
        LIVE,
        parents=("task_instance",),
        key=(*TI_KEY, "try_number"),
        dropped=("id",),
        where=USER_DAGS,
        group="t.dag_id",
        delta=True,
        replace=DAG_ROWS,
    ),
    Table("task_instance_note", NOT_COPIED, USERS, parents=("task_instance",), replace=DAG_ROWS),
    Table(
        "task_fail",
        COPIED,
        "failed tries",
        FACTORY,
        parents=("task_instance",),
        key=(*TI_KEY, "start_date"),
        dropped=("id",),
        where=USER_DAGS,
        group="t.dag_id",
        delta=True,
        replace=DAG_ROWS,
    ),
    Table(
        "task_reschedule",
        COPIED,
        "sensor reschedules",
        LIVE,
        parents=("task_instance",),
        key=(*TI_KEY, "try_number", "start_date"),
        dropped=("id",),
        where=USER_DAGS,
        group="t.dag_id",
        delta=True,
        replace=DAG_ROWS,
    ),
    Table(
        "rendered_task_instance_fields",
        NOT_COPIED,
        "rendered templates may hold rendered secrets; Airflow renders again when asked",
        parents=("task_instance",),
        replace=DAG_ROWS,
    ),
    Table(
        "task_map",
        COPIED,
        "mapped tasks' expansion",
        LIVE,
        parents=("task_instance",),
        key=TI_KEY,
        where=USER_DAGS,
        group="t.dag_id",
        delta=True,
        replace=DAG_ROWS,
    ),
    Table(
        "xcom",
        COPIED,
        "re-linked to the target's run ids",
        FACTORY,
        parents=("task_instance", "dag_run"),
        key=(*TI_KEY, "key"),
        where=USER_DAGS,
        group="t.dag_id",
        unhashed=("dag_run_id",),
        delta=True,
        replace=DAG_ROWS,
        links={"dag_run_id": "r.id"},
        link_joins=RUN_LINK,
    ),
    Table(
        "dataset_event",
        COPIED,
        "event ids kept, datasets by URI",
        LIVE,
        parents=("dataset",),
        key=("id",),
        natural={"dataset_uri": "d.uri"},
        dropped=("dataset_id",),
        joins="JOIN dataset d ON d.id = t.dataset_id",
        group="d.uri",
        replace=ALL_ROWS,
        links={"dataset_id": "d.id"},
        link_joins="JOIN dataset d ON d.uri = s.dataset_uri",
        sequence=True,
    ),
    Table(
        "dataset_alias_dataset_event",
        COPIED,
        "events emitted through an alias (2.10+)",
        KEYED,
        parents=("dataset_alias", "dataset_event"),
        key=("alias_name", "event_id"),
        natural={"alias_name": "a.name", "event_id": "t.event_id"},
        joins="JOIN dataset_alias a ON a.id = t.alias_id",
        group="a.name",
        replace=ALL_ROWS,
        links={"alias_id": "a.id"},
        link_joins="JOIN dataset_alias a ON a.name = s.alias_name",
    ),
    Table(
        "dagrun_dataset_event",
        COPIED,
        "which events a run consumed",
        KEYED,
        parents=("dag_run", "dataset_event"),
        key=("dag_id", "run_id", "event_id"),
        natural={"dag_id": "r.dag_id", "run_id": "r.run_id", "event_id": "t.event_id"},
        joins="JOIN dag_run r ON r.id = t.dag_run_id",
        where=f"r.dag_id {NOT_OWN}",
        group="r.dag_id",
        replace=DAG_ROWS,
        links={"dag_run_id": "r.id"},
        link_joins=RUN_LINK,
    ),
    Table(
        "dataset_dag_run_queue",
        COPIED,
        "dataset-triggered runs not created yet",
        KEYED,
        parents=("dataset",),
        key=("dataset_uri", "target_dag_id"),
        natural={"dataset_uri": "d.uri", "target_dag_id": "t.target_dag_id", "created_at": "t.created_at"},
        joins="JOIN dataset d ON d.id = t.dataset_id",
        group="t.target_dag_id",
        replace=ALL_ROWS,
        insert=IGNORE,
        links={"dataset_id": "d.id"},
        link_joins="JOIN dataset d ON d.uri = s.dataset_uri",
    ),
    Table(
        "dag",
        REBUILT,
        "parsing writes it; the copy carries each DAG's next scheduled interval (dag.next_dagrun*) and "
        "pauses every DAG",
        key=("dag_id",),
    ),
    Table(
        "dag_schedule",
        COPIED,
        "each DAG's next scheduled interval (dag.next_dagrun*), written after the restore's transaction",
        LIVE,
        key=("dag_id",),
        table="dag",
        columns=SCHEDULE,
        where=USER_DAGS,
        verify=False,
        insert=UPDATE,
        after=True,
    ),
    Table("dag_code", REBUILT, PARSED),
    Table("serialized_dag", REBUILT, PARSED),
    Table("dag_tag", REBUILT, PARSED),
    Table("dag_owner_attributes", REBUILT, PARSED),
    Table("dag_warning", REBUILT, PARSED),
    Table("import_error", REBUILT, PARSED),
    Table("dag_schedule_dataset_reference", REBUILT, PARSED),
    Table("dag_schedule_dataset_alias_reference", REBUILT, "parsing writes it from the DAG files (2.10+)"),
    Table("task_outlet_dataset_reference", REBUILT, PARSED),
    Table("alembic_version", REBUILT, "the schema version, written by `airflow db migrate`"),
    Table("ab_permission", REBUILT, WEB_SERVER),
    Table("ab_view_menu", REBUILT, WEB_SERVER),
    Table("ab_permission_view", REBUILT, WEB_SERVER),
    Table("ab_role", REBUILT, "the web server creates Airflow's roles at start; custom roles are not copied"),
    Table(
        "ab_permission_view_role",
        REBUILT,
        "the web server grants Airflow's roles at start; custom grants are not copied",
    ),
    Table("ab_user", NOT_COPIED, "MWAA creates web users from IAM at sign-in"),
    Table("ab_user_role", NOT_COPIED, "MWAA assigns the role from IAM at sign-in"),
    Table("ab_register_user", NOT_COPIED, "self-registration requests (unused on MWAA)"),
    Table("session", NOT_COPIED, "web sessions: users sign in to the target"),
    Table("job", NOT_COPIED, "the source's scheduler, triggerer and task processes"),
    Table("callback_request", NOT_COPIED, "callbacks queued for the source's DAG processor"),
    Table(
        "dag_priority_parsing_request", NOT_COPIED, "requests to re-parse a file on the source now (2.10+)"
    ),
    Table("dag_pickle", NOT_COPIED, "pickled DAGs (DAG pickling is not used on MWAA)"),
)
BY_NAME = {t.name: t for t in TABLES}


def topological(tables):
    """``tables`` with every table after its parents (parents outside ``tables`` are ignored),
    otherwise in the order given. Raises ValueError on a cycle."""
    names = {t.name for t in tables}
    pending = list(tables)
    done = set()
    ordered = []
    while pending:
        ready = next((t for t in pending if all(p in done or p not in names for p in t.parents)), None)
        if ready is None:
            raise ValueError("the tables' parents form a cycle: " + ", ".join(t.name for t in pending))
        pending.remove(ready)
        done.add(ready.name)
        ordered.append(ready)
    return ordered


ORDER = tuple(t.name for t in topological(TABLES))  # parents first
# Derived lists (every one from the registry).
ORM_TABLES = tuple(t.name for t in TABLES if t.source == ORM)  # JSON lines, through the models
DELTA_TABLES = tuple(t.name for t in TABLES if t.delta)  # a delta copies them in part, by DAG
# The order the restore writes the tables in (within its transaction), parents first.
RESTORE_ORDER = tuple(n for n in ORDER if BY_NAME[n].fate == COPIED and not BY_NAME[n].after)
# Rows the restore (and the pre-restore cleanup) replaces per DAG, children before parents.
HISTORY = tuple(n for n in reversed(ORDER) if BY_NAME[n].replace == DAG_ROWS)
# Tables the restore empties before it writes them, children before parents.
EMPTIED = tuple(n for n in reversed(ORDER) if BY_NAME[n].replace == ALL_ROWS)
# Tables whose id sequence the restore moves past the ids it wrote.
SEQUENCES = tuple(t.name for t in TABLES if t.sequence)


def copied_tables():
    """Names of the real tables a copy fills from the backup (the sizing estimate counts these)."""
    return tuple(dict.fromkeys(t.table for t in TABLES if t.fate == COPIED and not t.after))


def not_copied():
    """``[(table, fate, why)]`` of every table a restore does not fill from the backup."""
    return [(t.name, t.fate, t.why) for t in TABLES if t.fate != COPIED]


def not_copied_markdown():
    """docs/limits.md's "Not copied" table (tests/unit/test_copy_registry.py checks the page against it)."""
    lines = ["| table | | why |", "|---|---|---|"]
    lines += [f"| `{name}` | {fate} | {why.replace('|', '/')} |" for name, fate, why in not_copied()]
    return lines


class DeltaRefused(RuntimeError):
    """The target cannot take this delta (it holds another backup, or the result would differ from
    the source): nothing was changed; mwaa-iac copies everything instead."""


class CopyError(RuntimeError):
    """A failure of the copy, said without any value of a row (see :func:`describe_error`)."""


def _q(name):
    return '"' + name.replace('"', '""') + '"'


class Spec:
    """One CSV table: the SELECT that gives its logical rows (the same on both sides: surrogate ids
    replaced by natural keys where the target re-maps them), the columns hashed, the grouping. The
    SELECT's only parameter is ``:own_dags`` (the tool's DAG ids, a list). ``member``: an SQL condition
    over ``t`` that a row's group is in the list ``:groups`` (written so that the table's dag_id index
    serves it)."""

    def __init__(self, name, select, columns, hashed, group="''", verify=True, member=None, where=False):
        self.name = name
        self.select = select
        self.where = where  # whether ``select`` ends with a WHERE clause (conditions are ANDed to it)
        self.columns = columns
        self.hashed = hashed
        self.group = group
        self.verify = verify
        self.member = member or f"{group} = ANY(:groups)"


def build_specs(columns, own_dags=()):
    """The CSV tables' specs from ``{table: [column, ...]}`` (the backup's, from the manifest; in
    registry order)."""
    specs = {}
    for table in TABLES:
        if table.name not in columns or table.source in (None, ORM):
            continue
        listed = list(columns[table.name])
        selected = ", ".join(
            f"{table.natural[c]} AS {_q(c)}" if c in table.natural else f"t.{_q(c)}" for c in listed
        )
        select = f"SELECT {selected} FROM {table.table} t"
        if table.joins:
            select += f" {table.joins}"
        if table.where:
            select += f" WHERE ({table.where})"
        hashed = [c for c in listed if c not in table.unhashed] if table.verify else []
        member = None
        if table.dagless:  # group '' is the rows of no DAG; dag_id = ANY(...) keeps idx_log_dag usable
            member = "(t.dag_id = ANY(:groups) OR (t.dag_id IS NULL AND '' = ANY(:groups)))"
        specs[table.name] = Spec(
            table.name, select, listed, hashed, table.group, table.verify, member, bool(table.where)
        )
    return specs


def source_columns(session, factory):
    """``{table: [column, ...]}`` to back up, per the registry: a table's natural columns, then its
    columns from mwaa-dr's factory or the live schema (only where the table and column exist)."""
    from sqlalchemy import inspect

    inspector = inspect(session.connection())
    existing = set(inspector.get_table_names())
    live = {}

    def live_columns(table):
        if table not in live:
            live[table] = [c["name"] for c in inspector.get_columns(table)] if table in existing else []
        return live[table]

    factory_tables = {t.name: t for t in factory.tables()}
    columns = {}
    for table in TABLES:
        if table.source in (None, ORM):
            continue
        present = live_columns(table.table)
        if not present:
            continue
        if table.columns is not None:
            offered = table.columns
        elif table.source == FACTORY and table.name in factory_tables:
            offered = list(factory_tables[table.name].columns)
        elif table.source in (FACTORY, LIVE):
            offered = present
        else:
            offered = ()
        wanted = [*table.natural]
        wanted += [c for c in offered if c in present and c not in table.dropped and c not in table.natural]
        if wanted:
            columns[table.name] = wanted
    return columns


# -- hashing ----------------------------------------------------------------------------------------


def _run(session, sql, params=None):
    """``sql`` with bound parameters (``:name``; a list binds as an array: ``= ANY(:name)``)."""
    from sqlalchemy import text

    return session.execute(text(sql), params or {})


def _own_params(own_dags, **more):
    return {"own_dags": list(own_dags), **more}


def _copy_out(session, cursor, select, params, out):
    """``COPY (select) TO STDOUT`` as CSV into ``out``. COPY takes no bind parameters: psycopg2
    quotes them into the statement (as it does for every query: libpq's escaping, with
    standard_conforming_strings on), never our string formatting."""
    from sqlalchemy import text

    statement = text(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, DELIMITER '|', HEADER false)")
    used = {k: v for k, v in params.items() if k in statement._bindparams}
    compiled = statement.bindparams(**used).compile(dialect=session.connection().dialect)
    cursor.copy_expert(cursor.mogrify(compiled.string, compiled.params), out)


def _grouped(spec, xmin=False, where=None):
    """``spec``'s SELECT with its group (and the row's xmin and ctid) as extra leading columns, and
    the condition ``where`` (over ``t``) added to its own."""
    extra = f"{spec.group} AS mwaa_iac_group, " + (
        "t.xmin AS mwaa_iac_xmin, t.ctid AS mwaa_iac_ctid, " if xmin else ""
    )
    select = spec.select.replace("SELECT ", f"SELECT {extra}", 1)
    if where:
        select += f" AND ({where})" if spec.where else f" WHERE ({where})"
    return select


def _row_hash(spec):
    return "md5(ROW(" + (", ".join(f"q.{_q(c)}" for c in spec.hashed) or "1") + ")::text)"


# A group's digest: "rows:hi:lo", its row count and the sums of the two 60-bit halves of its rows'
# md5s. It adds up: the digest of a DAG's rows now is the base's plus the new rows' (no sort, no
# re-reading old rows), and the restore checks what it wrote the same way. A check against copy
# errors (a row lost, doubled or changed), not against an adversary.
HALVES = "sum(('x' || substr(h, 1, 15))::bit(60)::bigint), sum(('x' || substr(h, 16, 15))::bit(60)::bigint)"
DIGEST_SUMS = f"count(*), {HALVES}"


def _digest(count, hi, lo):
    return f"{int(count)}:{int(hi or 0)}:{int(lo or 0)}"


def add_digests(*digests):
    """The digest of the union of disjoint sets of rows (None stands for no rows)."""
    total = [0, 0, 0]
    for digest in digests:
        if digest:
            for i, part in enumerate(str(digest).split(":")):
                total[i] += int(part)
    return _digest(*total)


def digests(session, spec, own_dags, where=None, params=None):
    """``{group: digest}`` of ``spec``'s rows in this snapshot (those matching ``where``, over ``t``)."""
    sql = (
        f"SELECT g, {DIGEST_SUMS} FROM (SELECT q.mwaa_iac_group AS g, {_row_hash(spec)} AS h "
        f"FROM ({_grouped(spec, where=where)}) q) z GROUP BY g"
    )
    return {
        str(group): _digest(count, hi, lo)
        for group, count, hi, lo in _run(session, sql, _own_params(own_dags, **(params or {})))
    }


def table_hash(session, spec, own_dags, only=None):
    """``{"rows": n, "sha256": ..., "groups": {group: digest}}`` of ``spec``'s rows in this snapshot
    (of the groups in ``only``, when given)."""
    if only is None:
        groups = digests(session, spec, own_dags)
    else:
        groups = digests(session, spec, own_dags, spec.member, {"groups": sorted(only)})
    return _summary(sum(int(v.split(":")[0]) for v in groups.values()), groups)


# -- delta ----------------------------------------------------------------------------------------


def current_snapshot(session):
    """This transaction's snapshot (``xmin:xmax:xip,...``) and its xmax (the next transaction id)."""
    snapshot = _run(session, "SELECT txid_current_snapshot()::text").scalar()
    return snapshot, int(snapshot.split(":")[1])


def _valid_snapshot(value):
    import re

    return isinstance(value, str) and re.fullmatch(r"\d+:\d+:[\d,]*", value) is not None


def _writer(xmin="q.mwaa_iac_xmin"):
    """SQL: the 64-bit id of the transaction that wrote the row (``xmin``: its low 32 bits), widened
    against this transaction's xmax (``:now_xmax``; rows are never older than 2**31 transactions
    unless frozen; a frozen one misread as new makes its DAG copied whole or hashed, or the delta
    refused: slower, never wrong)."""
    return (
        f"(CAST(:now_xmax AS bigint) - mod(mod(CAST(:now_xmax AS bigint), {XID_WRAP}) "
        f"- {xmin}::text::bigint + {XID_WRAP}, {XID_WRAP}))"
    )


def _new_since(xmin="q.mwaa_iac_xmin"):
    """SQL condition: the row was written after the base snapshot (``:base_snapshot``) was taken."""
    return f"NOT txid_visible_in_snapshot({_writer(xmin)}, CAST(:base_snapshot AS txid_snapshot))"


def delta_scan(session, spec, own_dags, base_snapshot, now_xmax):
    """Per group, in one pass over the table and without hashing: ``(rows now, rows new since the
    base, rows that look old but were written inside the base snapshot's window [xmin, xmax), the
    ctids of the new rows)``."""
    sql = (
        "SELECT g, count(*), count(*) FILTER (WHERE n), count(*) FILTER (WHERE w AND NOT n), "
        "array_agg(c::text) FILTER (WHERE n) "
        f"FROM (SELECT q.mwaa_iac_group AS g, q.mwaa_iac_ctid AS c, {_new_since()} AS n, "
        f"{_writer()} >= CAST(:base_xmin AS bigint) AS w FROM ({_grouped(spec, xmin=True)}) q) z GROUP BY g"
    )
    params = _own_params(
        own_dags, base_snapshot=base_snapshot, now_xmax=now_xmax, base_xmin=int(base_snapshot.split(":")[0])
    )
    return {
        str(group): (total, new, doubt, list(ctids or ()))
        for group, total, new, doubt, ctids in _run(session, sql, params)
    }


def base_counts(entry):
    """``{group: rows}`` a manifest's table entry recorded (a delta backup: ``counts``)."""
    if "counts" in entry:
        return {str(k): int(v) for k, v in entry["counts"].items()}
    return {str(k): int(str(v).split(":")[0]) for k, v in entry.get("groups", {}).items()}


def plan_delta(scans, base, executing):
    """Which DAGs (groups) to copy whole, and which to check. A DAG's rows that look old (visible in
    the base snapshot) and were written before the snapshot's xmin are all in the base (their writer
    had committed when it was taken); updates give a row a new xmin and deletions lower the count. So
    when a DAG's rows now number the base's plus the new ones, its old rows ARE the base's — unless
    some were written inside the snapshot's window [xmin, xmax): a subtransaction of a transaction
    still running when the base was taken looks old without being in the base (a deletion beside it
    balances the count). ``scans``: ``{table: {group: (now, new, in window, ...)}}``; ``base``:
    ``{table: {group: rows}}``. Returns (whole, check): whole = DAGs whose counts do not add up, or
    with task instances executing in the base (the restore reset them on the target); check =
    ``{table: groups}`` whose rows that look old must hash to the base's (else whole)."""
    whole = set(executing)
    check = {}
    for table, groups in scans.items():
        before = base.get(table, {})
        for group in set(groups) | set(before):
            now, new, doubt = groups.get(group, (0, 0, 0))[:3]
            if now != before.get(group, 0) + new:
                whole.add(group)
            elif doubt:
                check.setdefault(table, set()).add(group)
    return whole, {t: g - whole for t, g in check.items() if g - whole}


CTIDS = "t.ctid = ANY(CAST(:ctids AS tid[]))"


def tid_array(ctids):
    """``ctids`` (``"(page,item)"`` texts) as ONE array literal for ``:ctids``: psycopg2 would send a
    list as ARRAY[...] of one literal per item, several times slower to parse at 100,000s of rows."""
    return "{" + ",".join(f'"{c}"' for c in ctids) + "}"


def delta_select(spec):
    """The rows a delta backup exports of ``spec``: of a DAG copied whole (``:groups``, a list, through
    the dag_id index), then the new rows of the others (``:ctids``, found by the delta scan in this
    snapshot: a TID scan, no second pass over the table)."""
    columns = ", ".join(f"q.{_q(c)}" for c in spec.columns)
    return (
        f"SELECT {columns} FROM ({_grouped(spec, where=spec.member)}) q UNION ALL "
        f"SELECT {columns} FROM ({_grouped(spec, where=CTIDS)}) q WHERE q.mwaa_iac_group <> ALL(:groups)"
    )


def _summary(total, groups):
    body = "\n".join(f"{k}\t{v}" for k, v in sorted(groups.items()))
    return {"rows": total, "sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(), "groups": groups}


def _row_digest(values):
    text = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _orm_rows(session, table, own_dags):
    """Rows of an encrypted table as plain values (decrypted with this environment's key)."""
    from airflow.models import Connection, Variable

    if table == "variable":
        for var in session.query(Variable).order_by(Variable.key):
            if var.key not in OWN_VARIABLES:
                yield var.key, {"key": var.key, "val": var.get_val(), "description": var.description}
    elif table == "connection":
        fields = (
            "conn_id",
            "conn_type",
            "description",
            "host",
            "schema",
            "login",
            "password",
            "port",
            "extra",
        )
        for conn in session.query(Connection).order_by(Connection.conn_id):
            yield conn.conn_id, {f: getattr(conn, f) for f in fields}
    elif table == "trigger":
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import Trigger
        from airflow.serialization.serialized_objects import BaseSerialization

        used = (
            session.query(TaskInstance.trigger_id)
            .filter(TaskInstance.trigger_id.isnot(None), TaskInstance.dag_id.notin_(list(own_dags)))
            .distinct()
        )
        for trigger in session.query(Trigger).filter(Trigger.id.in_(used)).order_by(Trigger.id):
            yield (
                str(trigger.id),
                {
                    "id": trigger.id,
                    "classpath": trigger.classpath,
                    "kwargs": BaseSerialization.serialize(trigger.kwargs),
                    "created_date": trigger.created_date.isoformat() if trigger.created_date else None,
                },
            )


def orm_hash(session, table, own_dags):
    groups = {}
    for key, row in _orm_rows(session, table, own_dags):
        groups[key] = f"1:{_row_digest(row)}"
    return _summary(len(groups), groups)


# -- storage ------------------------------------------------------------------------------------------


SINGLE_PUT_BYTES = 32 * 2**20  # an object written whole below this is one PutObject


@functools.lru_cache(maxsize=1)
def _shared_s3_client():
    return _s3_client()


class _Upload:
    """A new S3 object, written: kept in memory and sent in one PutObject when it ends below
    SINGLE_PUT_BYTES (a delta's tables, the JSON lines, the manifest: a multipart upload is three
    requests); past that, streamed as smart_open's multipart upload (a full backup's large tables:
    memory stays bounded at any size)."""

    def __init__(self, client, uri):
        self.client, self.uri = client, uri
        self.bucket, _, self.key = uri[len("s3://") :].partition("/")
        self.buffer, self.stream = io.BytesIO(), None

    def write(self, data):
        if self.stream is not None:
            return self.stream.write(data)
        written = self.buffer.write(data)
        if self.buffer.tell() >= SINGLE_PUT_BYTES:
            import smart_open

            self.stream = smart_open.open(self.uri, "wb", transport_params={"client": self.client})
            self.stream.write(self.buffer.getvalue())
            self.buffer = io.BytesIO()
        return written

    def finish(self):
        if self.stream is not None:
            self.stream.close()
        else:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self.buffer.getvalue())

    def abandon(self):
        """Nothing is written (a multipart upload begun is aborted)."""
        if self.stream is not None:
            terminate = getattr(self.stream, "terminate", None)
            if terminate is not None:
                terminate()


@contextlib.contextmanager
def _open(uri, mode):
    """smart_open's ``open``; on S3 with one client for every object of the task (a client per
    object, smart_open's default, costs more than the request), and a new object written by
    :class:`_Upload` (nothing written when the block fails)."""
    import smart_open

    if not str(uri).startswith("s3://"):
        with smart_open.open(uri, mode) as handle:
            yield handle
        return
    if "w" not in mode:
        with smart_open.open(uri, mode, transport_params={"client": _shared_s3_client()}) as handle:
            yield handle
        return
    upload = _Upload(_shared_s3_client(), str(uri))
    try:
        yield upload
    except BaseException:
        upload.abandon()
        raise
    upload.finish()


# -- an armed run: started before the freeze, it waits for its go signal -----------------------------

ARMED = "mwaa_iac_armed_conf"  # the context key holding an armed run's conf with its go signal on top


def _conf(context):
    """The run's conf; an armed run's with what its go signal said on top."""
    armed = context.get(ARMED) if hasattr(context, "get") else None
    return armed if armed is not None else (context["dag_run"].conf or {})


def _s3_client():
    import boto3

    return boto3.client("s3")


def _s3_read(client, bucket, key, head=False):
    """The object's bytes (``b""`` for ``head``), or None when there is none."""
    try:
        if head:
            client.head_object(Bucket=bucket, Key=key)
            return b""
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return None
        raise


def _armed(context, sleep=time.sleep, clock=time.time, on_pause=None):
    """An armed run (its conf names ``go``): poll ``s3://<bucket>/<go>`` every ``go_poll`` seconds
    until it appears (a restore: and the manifest of the backup it names) or ``deadline`` (epoch
    seconds) passes. Returns None for a run that is not armed, ``{"skipped": "expired"}`` or
    ``{"skipped": "cancelled"}`` for one that must do nothing, else what it waited (the conf to run
    with is then in the context). A pause signal (``{"pause": {...}}``, before the go signal) is
    handed to ``on_pause(client, bucket, pause)`` once (the backup's: :func:`pause_dags`), and the
    run waits on for its go."""
    conf = dict(context["dag_run"].conf or {})
    if not conf.get("go"):
        return None
    bucket, go = conf["bucket"], conf["go"]
    deadline = float(conf.get("deadline") or 0)
    poll = max(0.05, float(conf.get("go_poll") or 0.25))
    client = _s3_client()
    started = clock()
    paused = None
    print(f"mwaa-iac: armed: waiting for s3://{bucket}/{go} (until {deadline:.0f})")
    while True:
        raw = _s3_read(client, bucket, go)
        signal = json.loads(raw) if raw else None
        if signal is not None and signal.get("cancel"):
            return {"skipped": "cancelled", "waited_s": round(clock() - started, 1)}
        if signal is not None and signal.get("pause") and on_pause is not None and paused is None:
            paused = on_pause(client, bucket, signal["pause"])
            continue  # the go signal may already be there: read again at once
        if signal is not None and signal.get("unpause") and conf.get("mode") == "unpause":
            break
        if signal is not None and signal.get("prefix"):
            manifest = f"{str(signal['prefix']).strip('/')}/manifest.json"
            if not conf.get("wait_for_manifest") or _s3_read(client, bucket, manifest, head=True) is not None:
                break
        if clock() > deadline:
            return {"skipped": "expired", "waited_s": round(clock() - started, 1)}
        sleep(poll)
    context[ARMED] = {**conf, **{k: signal[k] for k in ("prefix", "since", "unpause") if signal.get(k)}}
    print(f"mwaa-iac: armed: going, {sorted(signal)}")
    went = {"waited_s": round(clock() - started, 1), "went_at": round(clock(), 3)}
    if signal.get("prefix"):
        went["prefix"] = signal["prefix"]
    if paused is not None:
        went["paused"] = paused
    return went


# -- the freeze's pause, by the armed backup copier ---------------------------------------------------

# What Airflow 2's REST API writes into ``log`` for ``PATCH /dags/<id>`` (its action logging: event
# ``api.patch_dag``, the DAG's id, the caller as owner, the JSON body as ``extra``); the pause here
# writes the same kind of row per DAG, with mwaa-iac as the owner and the origin in ``extra``.
PAUSE_LOG_EVENT = "api.patch_dag"
PAUSE_LOG_OWNER = "mwaa-iac"
PAUSE_LOG_EXTRA = json.dumps({"is_paused": True, "origin": "mwaa-iac cutover freeze (armed backup copier)"})
LOG_COLUMNS = ("dttm", "dag_id", "event", "owner", "owner_display_name", "extra")  # those the pause fills


def pause_select_sql(dag_columns):
    """The DAGs the freeze pauses, as Airflow's REST listing of unpaused DAGs selects them: active,
    unpaused, not a sub-DAG (Airflow < 3), never the tool's own; locked until the commit."""
    where = ["is_active", "NOT is_paused", f"dag_id {NOT_OWN}"]
    if "is_subdag" in dag_columns:
        where.append("NOT is_subdag")
    return f"SELECT dag_id, fileloc FROM dag WHERE {' AND '.join(where)} ORDER BY dag_id FOR UPDATE"


def pause_log_sql(log_columns):
    """The ``log`` row written per paused DAG (the columns this Airflow's ``log`` has)."""
    columns = [c for c in LOG_COLUMNS if c in log_columns]
    values = dict(
        zip(LOG_COLUMNS, ("now()", ":dag_id", ":log_event", ":owner", ":owner", ":extra"), strict=True)
    )
    return f"INSERT INTO log ({', '.join(columns)}) VALUES ({', '.join(values[c] for c in columns)})"


def pause_record(state, rows, **more):
    """The object the copier writes at ``pause.key``: the DAGs (and their files) it selected."""
    dags = [r[0] for r in rows]
    files = {r[0]: r[1] for r in rows if r[1]}
    return {"state": state, "dags": dags, "files": files, **more}


def _columns(session, table):
    rows = _run(
        session,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = :table",
        {"table": table},
    ).fetchall()
    return {r[0] for r in rows}


def _s3_put(client, bucket, key, document):
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, sort_keys=True).encode())


def pause_dags(own_dags, client, bucket, pause, clock=time.time):
    """Pause the source's unpaused DAGs in ONE transaction: select them (locked), set ``is_paused``
    for exactly those, write a ``log`` row per DAG; write the selection to ``s3://<bucket>/<key>``
    (``state: selected``) before the commit, commit only while ``until`` has not passed, then write
    ``state: paused`` with ``paused_at``. Never raises: a failure before the commit rolls back and
    is written as ``state: failed`` (best effort); a failure to write ``paused`` after it leaves
    ``selected`` in place (the freeze then counts every selected DAG as paused). The run then
    waits for its go signal as before."""
    from airflow.settings import Session

    key, until = str(pause["key"]), float(pause["until"])
    started = clock()
    selected = []
    try:
        rows = _pause_transaction(Session, own_dags, client, bucket, key, until, clock, selected)
    except Exception as exc:
        # Rolled back; the selection is kept in the answer all the same (a commit whose outcome
        # is not known), so that the freeze records every DAG that may be paused.
        error = describe_error(exc)[:300]
        print(f"mwaa-iac: armed: pause failed: {error}")
        _best_effort_put(client, bucket, key, pause_record("failed", selected, error=error))
        return {"ok": False, "error": error}
    if rows is None:
        print(f"mwaa-iac: armed: pause not committed, {until:.3f} passed")
        _best_effort_put(client, bucket, key, pause_record("late", [], until=until))
        return {"ok": False, "late": True}
    paused_at = round(clock(), 3)
    _best_effort_put(client, bucket, key, pause_record("paused", rows, paused_at=paused_at))
    took = round(clock() - started, 3)
    print(f"mwaa-iac: armed: paused {len(rows)} DAG(s) in {took} s")
    return {"ok": True, "count": len(rows), "paused_at": paused_at, "took_s": took}


def _pause_transaction(session_factory, own_dags, client, bucket, key, until, clock, selected):
    """The pause's transaction: the rows ``(dag_id, fileloc)`` paused (also put in ``selected`` as
    soon as they are selected), or None when ``until`` passed before the commit (rolled back)."""
    with session_factory() as session:
        try:
            dag_columns = _columns(session, "dag")
            log_columns = _columns(session, "log")
            rows = [tuple(r) for r in _run(session, pause_select_sql(dag_columns), _own_params(own_dags))]
            selected.extend(rows)
            ids = [r[0] for r in rows]
            if ids:
                _run(session, "UPDATE dag SET is_paused = true WHERE dag_id = ANY(:ids)", {"ids": ids})
                params = {"log_event": PAUSE_LOG_EVENT, "owner": PAUSE_LOG_OWNER, "extra": PAUSE_LOG_EXTRA}
                _run(session, pause_log_sql(log_columns), [{**params, "dag_id": d} for d in ids])
            _s3_put(client, bucket, key, pause_record("selected", rows, selected_at=round(clock(), 3)))
            if clock() >= until:
                session.rollback()
                return None
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return rows


UNPAUSE_LOG_EXTRA = json.dumps(
    {"is_paused": False, "origin": "mwaa-iac cutover go-live (armed unpause copier)"}
)


def unpause_dags(own_dags, client, bucket, unpause, clock=time.time):
    """Unpause, of the DAGs ``unpause["dags"]`` names, those that are paused (never the tool's own),
    with a ``log`` row each, in ONE transaction committed only while ``until`` has not passed; then
    write ``state: unpaused`` (``dags``: those it unpaused, ``already``: those found unpaused; a DAG
    in neither is not in ``dag``) to ``unpause["key"]``. Never raises: a failure rolls back and is
    written as ``state: failed``, a commit too late as ``state: late`` (nothing unpaused)."""
    from airflow.settings import Session

    key, until, wanted = str(unpause["key"]), float(unpause["until"]), list(unpause.get("dags") or [])
    started = clock()
    try:
        with Session() as session:
            try:
                log_columns = _columns(session, "log")
                rows = _run(
                    session,
                    f"SELECT dag_id, is_paused FROM dag WHERE dag_id = ANY(:ids) AND dag_id {NOT_OWN} "
                    "ORDER BY dag_id FOR UPDATE",
                    _own_params(own_dags, ids=wanted),
                )
                rows = [tuple(r) for r in rows]
                changed = [d for d, paused in rows if paused]
                already = [d for d, paused in rows if not paused]
                if changed:
                    _run(
                        session, "UPDATE dag SET is_paused = false WHERE dag_id = ANY(:ids)", {"ids": changed}
                    )
                    params = {
                        "log_event": PAUSE_LOG_EVENT,
                        "owner": PAUSE_LOG_OWNER,
                        "extra": UNPAUSE_LOG_EXTRA,
                    }
                    _run(session, pause_log_sql(log_columns), [{**params, "dag_id": d} for d in changed])
                late = clock() >= until
                if late:
                    session.rollback()
                else:
                    session.commit()
            except BaseException:
                session.rollback()
                raise
    except Exception as exc:
        error = describe_error(exc)[:300]
        print(f"mwaa-iac: armed: unpause failed, nothing unpaused: {error}")
        _best_effort_put(client, bucket, key, {"state": "failed", "error": error, "dags": []})
        return {"ok": False, "error": error}
    if late:
        print(f"mwaa-iac: armed: unpause not committed, {until:.3f} passed")
        _best_effort_put(client, bucket, key, {"state": "late", "dags": [], "until": until})
        return {"ok": False, "late": True}
    unpaused_at = round(clock(), 3)
    answer = {"state": "unpaused", "dags": changed, "already": already, "unpaused_at": unpaused_at}
    _best_effort_put(client, bucket, key, answer)
    took = round(clock() - started, 3)
    print(f"mwaa-iac: armed: unpaused {len(changed)} DAG(s) in {took} s")
    return {"ok": True, "count": len(changed), "unpaused_at": unpaused_at, "took_s": took}


def _best_effort_put(client, bucket, key, document):
    try:
        _s3_put(client, bucket, key, document)
    except Exception as exc:  # the freeze falls back once ``until`` has passed
        print(f"mwaa-iac: armed: could not write s3://{bucket}/{key}: {type(exc).__name__}")


def _location(factory, context):
    conf = _conf(context)
    bucket = conf.get("bucket")
    if not bucket:
        raise ValueError("the run's conf names no bucket")
    prefix = str(conf.get("prefix") or factory.path_prefix).strip("/")
    return f"s3://{bucket}/{prefix}"


def _note(context, result):
    """The result in the run's note (read by mwaa-iac over the REST API)."""
    from airflow.models.dagrun import DagRun
    from airflow.settings import Session

    text = json.dumps(result, sort_keys=True, default=str)
    print(f"mwaa-iac: {text}")
    if len(text) > NOTE_LIMIT:
        keep = ("ok", "error", "mode", "fallback", "delta_refused", "hold", "armed", "prefix", "seconds")
        keep += ("phases", "vacuum", "rehashed")
        short = {k: result[k] for k in keep if k in result}
        short["truncated"] = True
        text = json.dumps(short, sort_keys=True, default=str)[:NOTE_LIMIT]
    with Session() as session:
        run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == context["dag"].dag_id, DagRun.run_id == context["run_id"])
            .one()
        )
        run.note = text
        session.commit()


# -- errors -------------------------------------------------------------------------------------------

# What a database error may say of itself: never its message (``invalid input syntax for type
# integer: "<value>"``), DETAIL (``Failing row contains (...)``, ``Key (...)=(...)``) or CONTEXT
# (``COPY t, line 3, column c: "<value>"``), and never SQLAlchemy's text of it (the statement and its
# parameters): they quote the row's values, which can be secrets.
DIAGNOSTICS = (("table", "table_name"), ("column", "column_name"), ("constraint", "constraint_name"))


def _database_error(exc):
    """The DBAPI error inside ``exc`` (SQLAlchemy wraps it), or None when it is not one."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if hasattr(exc, "pgcode") or type(exc).__module__.split(".")[0] in ("psycopg2", "psycopg"):
            return exc
        if type(exc).__module__.split(".")[0] == "sqlalchemy" and hasattr(exc, "statement"):
            orig = getattr(exc, "orig", None)  # StatementError's text holds the statement and parameters
            return orig if orig is not None else exc
        exc = exc.__cause__ or exc.__context__
    return None


def describe_error(exc):
    """``exc`` in words that hold no value of a row: a database error as its class, SQLSTATE (and
    its name), table, column and constraint; our own errors as they are; anything else as its class
    and message (they name files, tables, groups)."""
    if isinstance(exc, (CopyError, DeltaRefused)):
        return str(exc)
    database = _database_error(exc)
    if database is None:
        return f"{type(exc).__name__}: {exc}"
    parts = [type(database).__name__]
    code = getattr(database, "pgcode", None)
    if code:
        try:
            from psycopg2 import errorcodes

            name = errorcodes.lookup(code)
        except Exception:
            name = None
        parts.append(f"SQLSTATE {code}" + (f" ({name.lower()})" if name else ""))
    diag = getattr(database, "diag", None)
    for label, field in DIAGNOSTICS:
        value = getattr(diag, field, None) if diag is not None else None
        if value:
            parts.append(f"{label} {value}")
    return ", ".join(parts)


def _reduced(exc):
    """``exc`` itself, or a CopyError in its place when it is a database error (whose text would
    quote values): raised ``from None``, so no traceback (the task's log) shows the original."""
    if isinstance(exc, (CopyError, DeltaRefused)) or _database_error(exc) is None:
        return exc
    return CopyError(describe_error(exc))


def _settings(session, isolation=None):
    """This transaction's settings: values are read and written the same on both sides. With
    ``isolation``, check that the transaction has it (the backup reads every table in one snapshot:
    repeatable read)."""
    for setting in (
        "TIME ZONE 'UTC'",
        "bytea_output = 'hex'",
        "extra_float_digits = 3",
        "DateStyle = 'ISO, YMD'",
        "standard_conforming_strings = on",
    ):
        _run(session, f"SET LOCAL {setting}")
    if isolation is not None:
        level = _run(session, "SHOW transaction_isolation").scalar()
        if str(level).lower() != isolation:
            raise CopyError(f"the copy's transaction runs at {level}, not {isolation}")


def _raw_cursor(session):
    return session.connection().connection.cursor()


def _begin(session):
    """Start the copy's transaction: repeatable read (one snapshot), the shared settings."""
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    _settings(session, isolation="repeatable read")


# -- backup -------------------------------------------------------------------------------------------


def _bucket_root(context):
    conf = _conf(context)
    return f"s3://{conf.get('bucket')}"


def _plan_from_base(session, specs, own_dags, since_uri, now_xmax):
    """The delta against the backup at ``since_uri``: ``(plan, None)``, or ``(None, why not)`` when
    it cannot be computed safely (the backup is then a full one)."""
    import airflow

    try:
        previous = _read_manifest(since_uri)
    except Exception as exc:
        return None, f"the base backup is not usable ({describe_error(exc)})"
    snapshot = previous.get("snapshot")
    if not _valid_snapshot(snapshot):
        return None, "the base backup recorded no snapshot (an older mwaa-iac made it)"
    if previous.get("airflow_version") != airflow.__version__:
        return (
            None,
            f"the base backup is of Airflow {previous.get('airflow_version')}, this is {airflow.__version__}",
        )
    if sorted(previous.get("own_dags", [])) != sorted(own_dags):
        return None, "the base backup left out other DAGs"
    base_xmax = int(snapshot.split(":")[1])
    if now_xmax < base_xmax:
        return None, (
            f"transaction ids went backwards since the base backup ({base_xmax} then, {now_xmax} now): "
            "the database was restored or replaced"
        )
    scans, base, hashes = {}, {}, {}
    for table in DELTA_TABLES:
        if table not in specs:
            continue
        entry = previous["tables"].get(table)
        if entry is None or entry.get("columns") != specs[table].columns:
            return None, f"the {table} table's columns differ from the base backup's"
        hashes[table] = {str(k): str(v) for k, v in entry.get("groups", {}).items()}
        scans[table] = delta_scan(session, specs[table], own_dags, snapshot, now_xmax)
        base[table] = base_counts(entry)
    whole, check = plan_delta(scans, base, previous.get("executing", []))
    at = {"base_snapshot": snapshot, "now_xmax": now_xmax}
    for table, groups in sorted(check.items()):
        spec = specs[table]
        old = digests(
            session,
            spec,
            own_dags,
            f"{spec.member} AND NOT {_new_since('t.xmin')}",
            {"groups": sorted(groups), **at},
        )
        whole.update(g for g in groups if old.get(g) != hashes[table].get(g))
    # Every DAG's digest now: a DAG copied whole hashed (through the dag_id index), the others the
    # base's plus their new rows' (found by ctid).
    every, added, ctids = {}, {}, {}
    for table, scan in scans.items():
        spec = specs[table]
        found = [c for g, (_, new, _, at) in scan.items() if new and g not in whole for c in at]
        ctids[table] = tid_array(found)  # the new rows of the DAGs not copied whole
        added[table] = digests(session, spec, own_dags, CTIDS, {"ctids": ctids[table]}) if found else {}
        every[table] = (
            digests(session, spec, own_dags, spec.member, {"groups": sorted(whole)}) if whole else {}
        )
        for group, (now, *_) in scan.items():
            if group not in whole:
                every[table][group] = add_digests(hashes[table].get(group), added[table].get(group))
            if int(every[table].get(group, "0").split(":")[0]) != now:
                raise CopyError(f"{table} [{group}]: {now} rows, the digest counts a different number")
    return {"scans": scans, "whole": whole, "ctids": ctids, "digests": every, "added": added}, None


def _export(session, base, specs, own_dags, delta):
    """Write every CSV table (of a delta: the history tables in part) and return the manifest's
    entries."""
    tables = {}
    cursor = _raw_cursor(session)
    for name, spec in specs.items():
        begin = time.monotonic()
        partial = delta is not None and name in delta["scans"]
        if partial:
            select = delta_select(spec)
            params = _own_params(own_dags, groups=sorted(delta["whole"]), ctids=delta["ctids"][name])
        else:
            select, params = spec.select, _own_params(own_dags)
        with _open(f"{base}/{name}.csv", "wb") as out:
            _copy_out(session, cursor, select, params, out)
        entry = {"columns": spec.columns, "file": f"{name}.csv"}
        if partial:
            scan = delta["scans"][name]
            entry.update(_summary(sum(now for now, *_ in scan.values()), delta["digests"][name]))
            entry.update(
                delta=True,
                copied=sum(now if g in delta["whole"] else new for g, (now, new, *_) in scan.items()),
                counts={g: now for g, (now, *_) in scan.items()},
                # What the restore writes per DAG not copied whole: the digest of its new rows.
                added={g: d for g, d in delta["added"][name].items() if g not in delta["whole"]},
            )
        elif spec.verify:
            entry.update(table_hash(session, spec, own_dags))
        else:
            entry["rows"] = _run(
                session, f"SELECT count(*) FROM ({spec.select}) q", _own_params(own_dags)
            ).scalar()
        entry.setdefault("copied", entry["rows"])
        tables[name] = entry
        print(
            f"mwaa-iac: exported {name}: {entry['copied']} of {entry['rows']} rows "
            f"in {time.monotonic() - begin:.1f} s"
        )
    return tables


def backup(factory, context, own_dags):
    """Export every copied table in one snapshot to ``s3://<bucket>/<prefix>/`` and write the
    manifest last (its presence means the backup is complete). With ``since`` in the run's conf,
    a delta against that backup where it can be computed safely; any unexpected error of the delta
    path makes it a full one, in the same snapshot, that says why (``fallback``)."""
    try:
        armed = _armed(
            context, on_pause=lambda client, bucket, pause: pause_dags(own_dags, client, bucket, pause)
        )
        if armed is not None and armed.get("skipped"):
            _note(context, {"ok": True, "armed": armed})
            return armed
        # The source gets the hold trigger now (inert until go-live moves the hold variable here).
        hold = _with_session(install_hold)
        result = _backup(factory, context, own_dags)
        result["hold"] = hold
        if armed is not None:
            result["armed"] = armed
    except Exception as exc:
        _note(context, {"ok": False, "error": describe_error(exc)[:800]})
        raise _reduced(exc) from None
    _note(context, result)
    return result


def _backup(factory, context, own_dags):
    import airflow
    from airflow.settings import Session

    started = time.monotonic()
    base = _location(factory, context)
    since = _conf(context).get("since")
    with Session() as session:
        _begin(session)
        snapshot, now_xmax = current_snapshot(session)
        columns = source_columns(session, factory)
        specs = build_specs(columns, own_dags)
        delta, fallback, tables = None, None, None
        if since:
            since_uri = f"{_bucket_root(context)}/{str(since).strip('/')}"
            savepoint = session.begin_nested()  # a failure rolls back to here: the snapshot stays
            try:
                delta, fallback = _plan_from_base(session, specs, own_dags, since_uri, now_xmax)
                if delta is not None:
                    tables = _export(session, base, specs, own_dags, delta)
                savepoint.commit()
            except Exception as exc:
                savepoint.rollback()
                delta, fallback = None, f"the delta failed ({describe_error(exc)[:300]})"
            if fallback:
                print(f"mwaa-iac: full backup instead of a delta: {fallback}")
        if tables is None:
            tables = _export(session, base, specs, own_dags, None)
        for name in ORM_TABLES:
            groups = {}
            with _open(f"{base}/{name}.jsonl", "wb") as out:
                for key, row in _orm_rows(session, name, own_dags):
                    out.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
                    groups[key] = f"1:{_row_digest(row)}"
            tables[name] = {"file": f"{name}.jsonl", **_summary(len(groups), groups)}
            tables[name]["copied"] = tables[name]["rows"]
        executing = [
            row[0]
            for row in _run(
                session,
                "SELECT DISTINCT dag_id FROM task_instance WHERE state IN ('queued', 'running', "
                f"'restarting') AND dag_id {NOT_OWN} ORDER BY 1",
                _own_params(own_dags),
            )
        ]
        session.rollback()
    manifest = {
        "format": FORMAT,
        "airflow_version": airflow.__version__,
        "factory": type(factory).__name__,
        "run_id": context["run_id"],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "own_dags": list(own_dags),
        "snapshot": snapshot,
        "executing": executing,
        "mode": "delta" if delta is not None else "full",
        "base": str(since).strip("/") if delta is not None else None,
        "whole": sorted(delta["whole"]) if delta is not None else None,
        "fallback": fallback,
        "tables": tables,
    }
    with _open(f"{base}/manifest.json", "wb") as out:
        out.write(json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
    return {
        "ok": True,
        "mode": manifest["mode"],
        "fallback": fallback,
        "manifest_rows": {name: entry["rows"] for name, entry in tables.items()},
        "seconds": round(time.monotonic() - started, 1),
    }


# -- restore ------------------------------------------------------------------------------------------


def clear_history(session, own_dags, only=None):
    """Delete the history rows (HISTORY: the registry's DAG_ROWS tables, children first; tables a
    version lacks are skipped) of every DAG but the tool's own (the pre-restore cleanup, and the
    restore's first step), or of the DAGs in ``only`` ('' for log rows of no DAG: a delta's DAGs
    copied whole). Returns the rows deleted per table."""
    deleted = delete_dag_rows(session, HISTORY, own_dags, only)
    if only is None:
        deleted["trigger"] = _drop_unused_triggers(session)
        _run(session, "DELETE FROM variable WHERE key = :k", {"k": RESTORE_MARKER})
    return deleted


def delete_dag_rows(session, tables, own_dags, only=None):
    """Delete the rows of ``tables`` (in that order) that belong to every DAG but the tool's, or to
    the DAGs in ``only``: by their ``dag_id``, or their run's (``dag_run_id``); a table with neither is
    emptied (only when ``only`` is None). Returns the rows deleted per table."""
    from sqlalchemy import inspect

    if only is None:
        dags = f"dag_id {NOT_OWN}"
        params = _own_params(own_dags)
        any_dag = f"dag_id IS NULL OR {dags}"
    else:
        dags = "dag_id = ANY(:dags)"
        params = {"dags": sorted(g for g in only if g not in own_dags)}  # '': log rows of dag_id ''

        any_dag = f"dag_id IS NULL OR {dags}" if "" in only else dags
    inspector = inspect(session.connection())
    existing = set(inspector.get_table_names())
    deleted = {}
    for table in tables:
        if table not in existing:
            continue
        names = {c["name"] for c in inspector.get_columns(table)}
        if "dag_id" in names:
            where = f" WHERE {any_dag}" if BY_NAME[table].dagless else f" WHERE dag_id IS NULL OR {dags}"
        elif "dag_run_id" in names:
            where = f" WHERE dag_run_id IN (SELECT id FROM dag_run WHERE {dags})"
        elif only is None:
            where = ""
        else:
            continue
        deleted[table] = _run(session, f"DELETE FROM {table}{where}", params).rowcount
    return deleted


def _drop_unused_triggers(session, keep=()):
    return _run(
        session,
        "DELETE FROM trigger WHERE id NOT IN "
        "(SELECT trigger_id FROM task_instance WHERE trigger_id IS NOT NULL) AND id <> ALL(:keep)",
        {"keep": [int(i) for i in keep]},
    ).rowcount


def _marker(session):
    """What the restore marker on this environment says: ``{"backup": prefix, "restored_at": iso,
    "xid": the restore's transaction id, "snapshot": its snapshot}`` ({} when there is none or it is
    not readable)."""
    from airflow.models import Variable

    variable = session.query(Variable).filter(Variable.key == RESTORE_MARKER).one_or_none()
    try:
        value = json.loads(variable.val) if variable is not None else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_marker(session, prefix):
    from sqlalchemy import text

    restored_at, xid, snapshot = session.execute(
        text("SELECT transaction_timestamp(), txid_current(), txid_current_snapshot()::text")
    ).one()
    value = json.dumps(
        {"backup": prefix, "restored_at": restored_at.isoformat(), "xid": int(xid), "snapshot": snapshot}
    )
    session.execute(text("DELETE FROM variable WHERE key = :k"), {"k": RESTORE_MARKER})
    session.execute(
        text("INSERT INTO variable (key, val, is_encrypted) VALUES (:k, :v, false)"),
        {"k": RESTORE_MARKER, "v": value},
    )


# The hold: a BEFORE INSERT trigger on `dag`. Both colours parse the same DAG folder; a DAG whose file
# first appears while both exist, created unpaused (is_paused_upon_creation=False, or
# core.dags_are_paused_at_creation=False), would be scheduled by both. The colour that holds the
# variable pauses such a DAG as its row is inserted, whatever the file or configuration says.
# jsonb_populate_record sets is_paused without naming the column in PL/pgSQL (no error if a later
# Airflow renamed it). Installed idempotently; without the variable it changes nothing.
HOLD_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {HOLD_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF EXISTS (SELECT 1 FROM variable WHERE key = '{HOLD_VARIABLE}') THEN
        NEW := jsonb_populate_record(NEW, jsonb_build_object('is_paused', true));
    END IF;
    RETURN NEW;
END
$body$
"""
HOLD_TRIGGER_SQL = (
    f"CREATE TRIGGER {HOLD_TRIGGER} BEFORE INSERT ON dag FOR EACH ROW EXECUTE PROCEDURE {HOLD_TRIGGER}()"
)


def install_hold(session):
    """Install the hold trigger (its own transaction; waits at most 10 s for the lock on `dag`, so
    a busy scheduler is never blocked for long). Returns "installed", "present" or why not (the
    copy goes on: the hold is a safeguard, not part of the copy)."""
    try:
        present = _run(
            session,
            "SELECT count(*) FROM pg_trigger WHERE tgname = :name AND tgrelid = 'dag'::regclass",
            {"name": HOLD_TRIGGER},
        ).scalar()
        _run(session, "SET LOCAL lock_timeout = '10s'")
        _run(session, HOLD_FUNCTION_SQL)
        if not present:
            _run(session, HOLD_TRIGGER_SQL)
        session.commit()
        return "present" if present else "installed"
    except Exception as exc:
        session.rollback()
        return f"not installed: {describe_error(exc)}"


def _write_hold(session, value):
    _run(session, "DELETE FROM variable WHERE key = :k", {"k": HOLD_VARIABLE})
    _run(
        session,
        "INSERT INTO variable (key, val, is_encrypted, description) VALUES (:k, :v, false, :d)",
        {
            "k": HOLD_VARIABLE,
            "v": value,
            "d": "mwaa-iac: this environment is not live; DAGs that appear here stay paused",
        },
    )


def prepare(context, own_dags):
    """The pre-restore cleanup (before the freeze): empty the history the restore will replace."""
    from airflow.settings import Session

    with Session() as session:
        deleted = clear_history(session, own_dags)
        session.commit()
    print(f"mwaa-iac: deleted {deleted}")
    return deleted


def _read_manifest(base):
    try:
        with _open(f"{base}/manifest.json", "rb") as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except Exception as exc:
        raise RuntimeError(
            f"no complete backup at {base}/ (manifest.json unreadable: {type(exc).__name__}: {exc})"
        ) from exc
    if manifest.get("format") != FORMAT:
        raise RuntimeError(
            f"the backup at {base}/ has format {manifest.get('format')}, expected {FORMAT} "
            "(a backup made by another mwaa-iac release: take a new one)"
        )
    return manifest


def _restore_orm(session, name, rows, delta=False):
    """Write an ORM table's rows through the models (encrypted with the target's key): variables and
    connections replace the target's (but the tool's variables); triggers are added (a delta's: the
    ones the target lacks)."""
    from airflow.models import Connection, Variable

    if name == "variable":
        session.query(Variable).filter(Variable.key.notin_(list(OWN_VARIABLES))).delete(
            synchronize_session=False
        )
        for row in rows:
            session.add(Variable(key=row["key"], val=row["val"], description=row["description"]))
    elif name == "connection":
        session.query(Connection).delete(synchronize_session=False)
        for row in rows:
            session.add(Connection(**row))
    elif name == "trigger":
        from airflow.models.trigger import Trigger
        from airflow.serialization.serialized_objects import BaseSerialization

        present = {row[0] for row in _run(session, "SELECT id FROM trigger")} if delta else set()
        for row in rows:
            if row["id"] in present:
                continue
            created = datetime.datetime.fromisoformat(row["created_date"]) if row["created_date"] else None
            trigger = Trigger(row["classpath"], BaseSerialization.deserialize(row["kwargs"]), created)
            trigger.id = row["id"]
            session.add(trigger)
    else:
        raise CopyError(f"no model writes the {name} table")
    session.flush()


def _jsonl(base, name):
    with _open(f"{base}/{name}.jsonl", "rb") as handle:
        return [json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line.strip()]


def _check_target_columns(session, columns):
    from sqlalchemy import inspect

    inspector = inspect(session.connection())
    existing = set(inspector.get_table_names())
    for name, wanted in columns.items():
        table = BY_NAME[name]
        if table.table not in existing:
            raise CopyError(f"the target has no table {table.table} (the backup has it)")
        present = {c["name"] for c in inspector.get_columns(table.table)}
        missing = [c for c in wanted if c not in present and not table.mapped(c)]
        if missing:
            raise CopyError(f"the target's {table.table} table has no column(s) {', '.join(missing)}")


def _insert_sql(name, columns):
    """The statement that moves a staged table into place (per its registry entry's ``insert``:
    surrogate ids re-mapped through its ``links``), or None for a table staged for re-mapping only."""
    table = BY_NAME[name]
    stage = f"mwaa_iac_stage_{name}"
    if table.insert == READ:
        return None
    if table.insert == UPDATE:
        sets = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in columns if c not in table.key)
        match = " AND ".join(f"{table.table}.{_q(k)} = s.{_q(k)}" for k in table.key)
        return f"UPDATE {table.table} SET {sets} FROM {stage} s WHERE {match}" if sets else None
    kept = [c for c in columns if not table.mapped(c)]
    written = [*(c for c in table.links if c not in kept), *kept]
    values = ", ".join(table.links.get(c, f"s.{_q(c)}") for c in written)
    sql = f"INSERT INTO {table.table} ({', '.join(_q(c) for c in written)}) SELECT {values} FROM {stage} s"
    if table.link_joins:
        sql += f" {table.link_joins}"
    if table.insert == MISSING:
        match = " AND ".join(f"x.{_q(k)} = s.{_q(k)}" for k in table.key)
        sql += f" WHERE NOT EXISTS (SELECT 1 FROM {table.table} x WHERE {match})"
    elif table.insert == IGNORE:
        sql += " ON CONFLICT DO NOTHING"
    return sql


# The ``dag`` table is rewritten by the target's DAG processor at every parse: a repeatable-read
# transaction that updates its rows fails ("could not serialize access due to concurrent update").
# So the DAGs are paused, and their next scheduled intervals written, in short read-committed
# transactions of their own (before and after the copy); a conflict or deadlock is tried again.
RETRYABLE = ("40001", "40P01")  # serialization failure, deadlock detected
ATTEMPTS = 3


def _retrying(what, action):
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except Exception as exc:
            code = getattr(getattr(exc, "orig", None), "pgcode", None)
            if code not in RETRYABLE or attempt == ATTEMPTS:
                raise
            print(f"mwaa-iac: {what}: concurrent update ({code}), attempt {attempt + 1} of {ATTEMPTS}")
            time.sleep(2 * attempt)
    return None


def _pause_all(own_dags):
    """Pause every DAG but the tool's own (only go-live unpauses, whatever the copied configuration
    or a DAG's is_paused_upon_creation say)."""
    from airflow.settings import Session

    with Session() as session:
        paused = _run(
            session, f"UPDATE dag SET is_paused = true WHERE dag_id {NOT_OWN} AND NOT is_paused",
            _own_params(own_dags),
        ).rowcount  # fmt: skip
        session.commit()
    return paused


def _apply_after(base, name, entry, own_dags):
    """Write a table the registry writes after the restore's transaction (``after``: each DAG's next
    scheduled interval as the source had it, for the DAGs the target has), in a short transaction."""
    from airflow.settings import Session

    spec = build_specs({name: entry["columns"]}, own_dags)[name]
    with Session() as session:
        _settings(session)
        _stage(session, _raw_cursor(session), base, name, spec, entry, own_dags)
        sql = _insert_sql(name, spec.columns)
        updated = _run(session, sql).rowcount if sql else 0
        session.commit()
    return updated


def restore(factory, context, own_dags):
    """Replace the target's copied tables with the backup's (a delta backup: apply it on top of the
    backup the target holds), in one transaction that commits only when every table's count and
    content hash equal the manifest's (tried again on a concurrent update); the DAGs are paused
    before it and their next intervals written after it. Any failure of a delta's restore is
    ``delta_refused`` (mwaa-iac then copies everything); no failure says a value of a row."""
    delta = False
    try:
        armed = _armed(context)
        if armed is not None and armed.get("skipped"):
            _note(context, {"ok": True, "armed": armed})
            return armed
        if armed is not None and _conf(context).get("mode") == "unpause":
            conf = _conf(context)
            result = unpause_dags(own_dags, _s3_client(), conf["bucket"], conf["unpause"])
            _note(context, {**result, "armed": armed})
            return result
        started = time.monotonic()  # the restore's own time (an armed one waited for its go until now)
        base = _location(factory, context)
        manifest = _read_manifest(base)
        delta = manifest.get("mode") == "delta"
        prefix = base.split("/", 3)[3]
        paused = _retrying("pausing the DAGs", lambda: _pause_all(own_dags))
        hold = _with_session(install_hold)
        result = _retrying("the restore", lambda: _restore_once(base, prefix, manifest, own_dags))
        result["hold"] = hold
        for table in TABLES:
            entry = manifest["tables"].get(table.name) if table.after else None
            if entry is not None:
                result.setdefault("after", {})[table.name] = _retrying(
                    table.name, lambda t=table, e=entry: _apply_after(base, t.name, e, own_dags)
                )
        if not delta and _conf(context).get("vacuum"):  # pass 1: a freeze comes later, not now
            result["vacuum"] = _vacuum([n for n in HISTORY if n in manifest["tables"]])
    except Exception as exc:
        error = describe_error(exc)
        if isinstance(exc, DeltaRefused) or delta:
            _note(context, {"ok": False, "error": f"delta refused: {error}"[:800], "delta_refused": True})
            raise (exc if isinstance(exc, DeltaRefused) else DeltaRefused(error)) from None
        _note(context, {"ok": False, "error": error[:800]})
        raise _reduced(exc) from None
    result.update(paused=paused, seconds=round(time.monotonic() - started, 1), prefix=prefix)
    if armed is not None:
        result["armed"] = armed
    _note(context, result)
    return result


def _vacuum(names):
    """VACUUM (ANALYZE) the history tables a full restore rewrote, once it committed (VACUUM runs
    outside a transaction). Pass 1's restore is followed by a freeze whose verification reads every
    row of these tables: vacuumed now, that read finds their rows' commit status already recorded
    (the first read after a bulk insert otherwise writes every page back) and autovacuum has nothing
    left to do on them while the freeze runs; the planner's statistics fit the restored sizes. Best
    effort: a failure is reported in the note, never fatal (the rows are restored and verified)."""
    from airflow.settings import Session

    started, failed = time.monotonic(), []
    try:
        with Session() as session:
            connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            # Never long behind another's lock (e.g. an anti-wraparound autovacuum): that table is skipped.
            connection.exec_driver_sql("SET lock_timeout = '10s'")
            for name in names:
                try:
                    connection.exec_driver_sql(f"VACUUM (ANALYZE) {_q(BY_NAME[name].table)}")
                except Exception as exc:
                    failed.append(f"{name}: {describe_error(exc)}"[:100])
            connection.exec_driver_sql("RESET lock_timeout")
    except Exception as exc:
        return {"tables": 0, "failed": [describe_error(exc)[:100]]}
    result = {"tables": len(names) - len(failed), "seconds": round(time.monotonic() - started, 1)}
    return {**result, "failed": failed[:2]} if failed else result


def _stage(session, cursor, base, name, spec, entry, own_dags):
    stage = f"mwaa_iac_stage_{name}"
    _run(session, f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS {spec.select} LIMIT 0", _own_params(own_dags))
    with _open(f"{base}/{entry['file']}", "rb") as handle:
        cursor.copy_expert(
            f"COPY {stage} ({', '.join(_q(c) for c in spec.columns)}) FROM STDIN "
            "WITH (FORMAT csv, DELIMITER '|', HEADER false)",
            handle,
        )


def _with_session(action):
    from airflow.settings import Session

    with Session() as session:
        return action(session)


class _Phases:
    """Seconds per phase of a restore, for its note (where the time of a freeze goes)."""

    def __init__(self, clock=time.monotonic):
        self.clock, self.at, self.seconds = clock, clock(), {}

    def done(self, name):
        now = self.clock()
        self.seconds[name] = round(now - self.at, 3)
        self.at = now


def _restore_once(base, prefix, manifest, own_dags):
    from airflow.settings import Session

    phases, rehashed = _Phases(), {}
    tables = manifest["tables"]
    delta = manifest.get("mode") == "delta"
    csv_columns = {
        name: entry["columns"]
        for name, entry in tables.items()
        if "columns" in entry and name in BY_NAME and not BY_NAME[name].after
    }
    specs = build_specs(csv_columns, own_dags)
    own = _own_params(own_dags)
    with Session() as session:
        _begin(session)
        _check_target_columns(session, csv_columns)
        marker = _marker(session)
        held = marker.get("backup")
        if delta and held == prefix:
            # Applied already (a resumed cutover runs the same restore again): verify only.
            written = _writes(session, marker.get("xid"), marker)
            # It reset the task instances executing in the backup after verifying them.
            counts = _verify(
                session, manifest, specs, own_dags, written, set(manifest.get("executing") or ()), rehashed
            )
            session.rollback()
            phases.done("verify")
            return {
                "ok": True, "mode": "delta", "tables": counts, "already": True, "reset": [],
                "phases": phases.seconds, "rehashed": rehashed,
            }  # fmt: skip
        if delta and held != manifest.get("base"):
            raise DeltaRefused(
                f"the target holds backup {held or 'none (no marker)'}, "
                f"the delta is against {manifest.get('base')}"
            )
        if delta:
            # History the target wrote itself since its last restore (its audit log of REST calls,
            # migrations), then the DAGs the delta carries whole.
            restored_at = marker.get("restored_at")
            deleted = {
                "log_since_restore": _run(
                    session,
                    f"DELETE FROM log WHERE (dag_id IS NULL OR dag_id {NOT_OWN}) "
                    "AND dttm > CAST(:at AS timestamptz)",
                    _own_params(own_dags, at=restored_at),
                ).rowcount
            }
            deleted.update(clear_history(session, own_dags, only=set(manifest.get("whole") or ())))
            # The copied history a delta carries whole (not grouped by DAG): every DAG's rows.
            whole = [n for n in HISTORY if n in specs and not BY_NAME[n].delta]
            for name, rows in delete_dag_rows(session, whole, own_dags).items():
                deleted[name] = deleted.get(name, 0) + rows
        else:
            deleted = clear_history(session, own_dags)
        for name in EMPTIED:
            if name in specs:
                _run(session, f"DELETE FROM {BY_NAME[name].table}")
        phases.done("delete")
        cursor = _raw_cursor(session)
        for name, spec in specs.items():
            _stage(session, cursor, base, name, spec, tables[name], own_dags)
        orm_rows = {name: _jsonl(base, name) for name in ORM_TABLES if name in tables}
        phases.done("stage")
        for name in RESTORE_ORDER:
            if name in orm_rows:
                _restore_orm(session, name, orm_rows[name], delta)
                continue
            if name not in specs:
                continue
            sql = _insert_sql(name, specs[name].columns)
            if sql:
                try:
                    _run(session, sql)
                except Exception as exc:
                    code = getattr(getattr(exc, "orig", None), "pgcode", None)
                    if delta and code == "23505":  # unique violation: the delta is not new rows only
                        raise DeltaRefused(
                            f"{name}: a new row of the delta is already on the target"
                        ) from None
                    raise
        if delta and "trigger" in orm_rows:
            _drop_unused_triggers(session, keep=[row["id"] for row in orm_rows["trigger"]])
        for name in SEQUENCES:
            if name in tables or name in specs:
                _run(
                    session,
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"GREATEST((SELECT COALESCE(max(id), 0) FROM {name}), 1))",
                )
        session.flush()
        phases.done("write")
        mine = _run(session, "SELECT txid_current()").scalar()
        counts = _verify(session, manifest, specs, own_dags, _writes(session, mine, marker), (), rehashed)
        phases.done("verify")
        reset = [
            f"{dag_id}/{run_id}/{task_id}[{map_index}]"
            for dag_id, run_id, task_id, map_index in _run(
                session,
                "UPDATE task_instance SET state = NULL "
                "WHERE state IN ('queued', 'running', 'restarting') "
                f"AND dag_id {NOT_OWN} RETURNING dag_id, run_id, task_id, map_index",
                own,
            )
        ]
        _write_marker(session, prefix)
        _write_hold(session, f"restored from {prefix}")
        session.commit()
    phases.done("commit")
    copied = {name: entry.get("copied", entry.get("rows")) for name, entry in tables.items()}
    return {
        "ok": True,
        "mode": "delta" if delta else "full",
        "tables": counts,
        "copied": sum(v for v in copied.values() if isinstance(v, int)),
        "deleted_before": sum(deleted.values()),
        "reset": reset,
        "phases": phases.seconds,
        "rehashed": rehashed,
    }


def _writes(session, mine, previous):
    """Which transactions wrote what on the target, for :func:`_verify`: ``mine`` (the restore's
    transaction id) and the previous restore's marker (its transaction id and snapshot: a row
    neither written by it nor visible to it was written since; without them, every row not
    ``mine`` counts as written since)."""
    _, xmax = current_snapshot(session)
    mine = None if mine is None else int(mine)
    snapshot, xid = previous.get("snapshot"), previous.get("xid")
    known = _valid_snapshot(snapshot) and isinstance(xid, int)
    return {
        "mine": 0 if mine is None else mine,  # 0: no transaction has that id
        "since_xid": int(xid) if known else 0,
        "since_snapshot": snapshot if known else "1:1:",  # a snapshot that sees nothing
        "now_xmax": max(xmax, (mine or 0) + 1),  # this transaction's own id can be past its xmax
    }


def written_scan(session, spec, own_dags, written):
    """Per group of a delta table on the target, in one pass: ``(rows, rows written since the previous
    restore by another transaction than this restore's, digest of the rows this restore wrote or
    None)``. Written since: by neither restore and not visible to the previous one (a transaction
    that got its id before the previous restore began and committed after is caught too)."""
    x = _writer()
    sql = (
        f"SELECT g, count(*), count(*) FILTER (WHERE d), count(h), {HALVES} "
        f"FROM (SELECT q.mwaa_iac_group AS g, {x} <> CAST(:mine AS bigint) "
        f"AND {x} <> CAST(:since_xid AS bigint) "
        f"AND NOT txid_visible_in_snapshot({x}, CAST(:since_snapshot AS txid_snapshot)) AS d, "
        f"CASE WHEN {x} = CAST(:mine AS bigint) THEN {_row_hash(spec)} END AS h "
        f"FROM ({_grouped(spec, xmin=True)}) q) z GROUP BY g"
    )
    return {
        str(group): (rows, drifted, _digest(count, hi, lo) if count else None)
        for group, rows, drifted, count, hi, lo in _run(session, sql, _own_params(own_dags, **written))
    }


def _verify_delta(session, name, spec, entry, whole, own_dags, written, reset=()):
    """A delta table on the target against the manifest, in proportion to what changed: every DAG's
    count; the digest of the rows this restore wrote (a DAG copied whole: all its rows; another: its
    new rows); a DAG that something else wrote to since the previous restore: all its rows. A DAG
    nothing wrote to holds the rows the previous restore verified. ``reset``: DAGs whose task
    instances the restore reset after verifying (a restore verified again: their digest is not the
    backup's, their counts are). Returns (rows, mismatches, groups hashed whole because they drifted)."""
    scan = written_scan(session, spec, own_dags, written)
    want = {str(k): int(v) for k, v in entry["counts"].items()}
    expected, added = entry.get("groups", {}), entry.get("added", {})
    mismatches, drifted = [], set()
    for group in sorted(set(scan) | set(want)):
        rows, drift, mine = scan.get(group, (0, 0, None))
        if rows != want.get(group, 0):
            mismatches.append(f"{name} [{group}]: backup {want.get(group, 0)} rows, target {rows} rows")
            continue
        wrote = expected.get(group) if group in whole else added.get(group)
        if mine != wrote and not (name == "task_instance" and group in reset):
            mismatches.append(
                f"{name} [{group}]: the restore wrote {(mine or '0').split(':')[0]} rows, the backup has "
                f"{(wrote or '0').split(':')[0]} for it (content hash differs)"
            )
        elif drift:
            drifted.add(group)
    if drifted:
        got = table_hash(session, spec, own_dags, only=drifted)
        if any(got["groups"].get(g) != expected.get(g) for g in drifted):
            mismatches.append(_first_difference(name, {"groups": {g: expected.get(g) for g in drifted}}, got))
    return sum(r for r, *_ in scan.values()), mismatches, len(drifted)


def _verify(session, manifest, specs, own_dags, written, reset=(), rehashed=None):
    """Every table's rows on the target against the manifest: counts and content digests (a delta's
    history tables: :func:`_verify_delta`; ``rehashed`` gets, per table, how many of its DAGs it hashed
    whole because something else wrote to them). Returns rows per table; raises (DeltaRefused for a
    delta) naming the first group that differs."""
    delta = manifest.get("mode") == "delta"
    whole = set(manifest.get("whole") or ())
    mismatches = []
    counts = {}
    rehashed = {} if rehashed is None else rehashed
    for name, entry in manifest["tables"].items():
        if name in ORM_TABLES:
            got = orm_hash(session, name, own_dags)
        elif name in specs and entry.get("delta"):
            counts[name], wrong, drifted = _verify_delta(
                session, name, specs[name], entry, whole, own_dags, written, reset
            )
            mismatches += wrong
            if drifted:
                rehashed[name] = drifted
            continue
        elif name in specs and specs[name].verify:
            got = table_hash(session, specs[name], own_dags)
        else:
            continue
        counts[name] = got["rows"]
        if got["sha256"] != entry["sha256"]:
            mismatches.append(_first_difference(name, entry, got))
    if mismatches:
        message = "the restored rows differ from the backup: " + "; ".join(mismatches)
        raise DeltaRefused(message) if delta else CopyError(message)
    return counts


def _first_difference(name, expected, got):
    """Which group (DAG id, variable key, pool...) differs first: names, counts, never values."""
    want, have = expected.get("groups", {}), got.get("groups", {})
    for group in sorted(set(want) | set(have)):
        if want.get(group) != have.get(group):
            rows_want = want.get(group, "0:").split(":")[0]
            rows_have = have.get(group, "0:").split(":")[0]
            return (
                f"{name} [{group}]: backup {rows_want} rows, target {rows_have} rows (content hash differs)"
            )
    return f"{name}: backup {expected.get('rows')} rows, target {got.get('rows')} rows"
