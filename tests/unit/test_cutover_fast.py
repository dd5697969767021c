"""The cutover end to end against fakes (no network, no Airflow, no PostgreSQL): a fake MWAA control
plane (environments with statuses and versions), a fake Airflow REST API per environment (DAGs with
paused flags, DR DAG runs that back up and restore the fake metadata through a fake S3, task
instances for the drain), fake routing and CloudWatch. Every step on the happy path, a failure at
every step followed by ``--resume``, every abort path, the dry run, rollback and cleanup.

The step list comes from :mod:`mwaa_iac.core.cutover_steps`, as for the code and the end-to-end test.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from mwaa_iac.adapters.iam import RoleDocuments
from mwaa_iac.adapters.mwaa import EnvironmentNotFoundError, observe
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr, hazards
from mwaa_iac.core.config import Color
from mwaa_iac.core.cutover_steps import (
    COPY_STEPS,
    FREEZE_STEPS,
    PARENT,
    PER_ATTEMPT_STEPS,
    Stage,
    Step,
    flow,
    is_hop_step,
    redone_after_abort,
    stage_of,
)
from mwaa_iac.core.findings import Finding
from mwaa_iac.core.status import Observation
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind
from mwaa_iac.workflows.cutover import JOURNAL, Cutover, CutoverOptions, cleanup, rollback
from mwaa_iac.workflows.dr_runs import CutoverError, SchedulerDownError
from mwaa_iac.workflows.journal import Journal
from mwaa_iac.workflows.state import LocalStore
from mwaa_iac.workflows.upgrade import PreflightError
from mwaa_iac.workspace import open_workspace

SOURCE, TARGET = "analytics-blue", "analytics-green"
DAG_BUCKET, DAG_PATH = "analytics-airflow-source", "dags"
DR_BUCKET = "analytics-mwaa-dr-backups"
ACCOUNT = "123456789012"
# The user's DAGs on the source: unpaused ones are recorded at the freeze; an owner-paused one stays so.
USER_DAGS = {"etl_orders": False, "report_daily": False, "owner_paused": True}
LIVE = sorted(d for d, paused in USER_DAGS.items() if not paused)
TWO_PASS = flow(history=True, two_pass=True, hops=["2.10.3"])
SINGLE_PASS = flow(history=True, two_pass=False, hops=["2.10.3"])


class Injected(CutoverError):
    """The failure a test injects (an AWS or Airflow call that fails inside a step)."""


class Killed(BaseException):
    """The process killed inside a step (SIGKILL, Ctrl-C): no abort runs."""


# -- the fake world ----------------------------------------------------------------------------------


class World:
    """Everything the cutover talks to. ``fail_in``: the first call to the world made while that
    journal step is open (started, not done) fails once; the cause is then gone."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.envs: dict[str, FakeEnvironment] = {}
        self.routing: list[str] = []  # environments routing was pointed at, in order
        self.changes: list[tuple] = []  # every mutating call, for "the dry run changes nothing"
        self.cutover: Cutover | None = None  # the running cutover (its journal says which step is open)
        self.fail_in: str | None = None
        self.kill = False  # fail_in kills the process instead of failing the step
        self.restore_fails: str | None = None  # every restore run fails with this error
        self.armed_expire = False  # armed copiers find their deadline passed (they do nothing)
        self.armed_queued = False  # no worker starts an armed copier (its task stays queued)
        # How the armed backup copier answers a pause signal: "pause" (in its database, at once),
        # "silent" (no answer), "fail" (its transaction fails: nothing paused).
        self.copier_pause = "pause"
        self.db_pauses: list[tuple[str, list[str]]] = []  # (environment, DAGs) paused by a copier
        self.copier_unpause = "unpause"  # the armed unpause copier: "unpause" at once, or "silent"
        self.db_unpauses: list[tuple[str, list[str]]] = []  # (environment, DAGs) unpaused by a copier
        self.stop_at: str | None = None  # the first world call whose text holds this fails (kill: killed)
        self.refuse_delta: str | None = None  # a delta restore is refused with this reason (once)
        self.failed: list[str] = []
        self.roles: dict[str, RoleDocuments] = {}
        self.user_dags: dict[str, bool] = dict(USER_DAGS)  # the DAG folder's DAGs (paused on the source)
        # runs of the user's DAGs in flight on the source at the freeze: their task instances (a
        # restore carries them; on 3.x they have no dag_version until the scheduler or a clear gives one)
        self.in_flight: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def touch(self, what: str) -> None:
        if self.stop_at is not None and self.stop_at in what:
            self.stop_at = None
            if self.kill:
                raise Killed(what)
            raise Injected(f"injected failure at {what}")
        step = self.fail_in
        journal = self.cutover.journal if self.cutover is not None else None
        if step is not None and journal is not None and journal.state(step) == "started":
            self.fail_in = None
            self.failed.append(step)
            if self.kill:
                raise Killed(step)
            raise Injected(f"injected failure in {step} ({what})")

    def emit(self, event: dict[str, Any]) -> None:
        """The cutover's progress output: a step that only computes fails when it reports."""
        self.touch(f"event {event.get('event')}")

    def change(self, *item: Any) -> None:
        self.changes.append(item)

    def signalled(self, bucket: str, key: str, body: bytes) -> None:
        """An object was written: an armed backup copier whose go object now says ``pause``
        pauses its environment's unpaused DAGs in its database at once (as the copy module's
        pause_dags does) and writes what it paused beside the go object."""
        try:
            signal = json.loads(body)
        except ValueError:
            return
        if isinstance(signal, dict) and signal.get("unpause"):
            self._unpause(bucket, key, signal["unpause"])
            return
        pause = signal.get("pause") if isinstance(signal, dict) else None
        if not pause:
            return
        for env in self.envs.values():
            airflow = env.airflow
            for run in airflow.runs.values():
                conf = run["conf"]
                if conf.get("go") != key or run["state"] != "running" or self.armed_expire:
                    continue
                if self.copier_pause == "silent":
                    return
                if self.copier_pause == "fail":
                    record = {"state": "failed", "error": "OperationalError (SQLSTATE 57014)", "dags": []}
                else:
                    dags = sorted(
                        d
                        for d, v in airflow.dags.items()
                        if v.get("is_active", True) and not v["is_paused"] and d not in dr.MWAA_IAC_DAG_IDS
                    )
                    for dag_id in dags:
                        airflow._set(airflow.dags[dag_id], True)
                    self.db_pauses.append((env.name, dags))
                    files = {d: airflow.dags[d]["fileloc"] for d in dags if airflow.dags[d].get("fileloc")}
                    record = {"state": "paused", "dags": dags, "files": files, "paused_at": 1.0e9}
                self.objects[(conf["bucket"], pause["key"])] = json.dumps(record).encode()
                return

    def _unpause(self, bucket: str, key: str, unpause: dict[str, Any]) -> None:
        """The armed unpause copier (a run of the restore DAG, ``mode: unpause``) told to go."""
        for env in self.envs.values():
            airflow = env.airflow
            for run in airflow.runs.values():
                conf = run["conf"]
                if conf.get("go") != key or run["state"] != "running" or self.armed_expire:
                    continue
                if self.copier_unpause == "silent":
                    return
                changed = [d for d in unpause["dags"] if d in airflow.dags and airflow.dags[d]["is_paused"]]
                already = [
                    d for d in unpause["dags"] if d in airflow.dags and not airflow.dags[d]["is_paused"]
                ]
                for dag_id in changed:
                    airflow._set(airflow.dags[dag_id], False)
                self.db_unpauses.append((env.name, changed))
                answer = {"state": "unpaused", "dags": changed, "already": already, "unpaused_at": 1.0e9}
                self.objects[(bucket, unpause["key"])] = json.dumps(answer).encode()
                run.update(state="success", note=json.dumps({"ok": True, "count": len(changed)}))
                return

    def dag_file(self, dag_id: str) -> str | None:
        data = self.objects.get((DAG_BUCKET, dr.dag_key(DAG_PATH, f"{dr.DR_DAG_FOLDER}/{dag_id}.py")))
        return data.decode() if data is not None else None

    def dr_keys(self) -> list[str]:
        prefix = dr.dag_key(DAG_PATH, f"{dr.DR_DAG_FOLDER}/")
        return [k for b, k in self.objects if b == DAG_BUCKET and k.startswith(prefix)]


class FakeAirflow:
    """One environment's Airflow 2 REST API. The DR DAGs appear once their files are in the shared
    DAG folder (their description is the file's marker); their runs do what they do, on the fake
    metadata (``history``: run ids of the user's DAGs), when first polled."""

    def __init__(self, world: World, name: str, dags: dict[str, bool]) -> None:
        self.world = world
        self.name = name
        self.dags = {
            d: {"dag_id": d, "is_paused": p, "is_active": True, "fileloc": f"/usr/local/airflow/dags/{d}.py"}
            for d, p in dags.items()
        }
        self.import_errors: list[dict[str, Any]] = []  # what /importErrors lists
        self.history: list[str] = []
        self.marker: str | None = None  # the restore marker: the prefix of the backup restored last
        self.variables: dict[str, str] = {}  # other variables the tool sets (the hold)
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.tis: list[dict[str, Any]] = []
        self.hazards: dict[str, Any] = {}  # what the probe's migration-hazard scan finds (core/hazards.py)
        self.refuse_pause = False  # pausing a user DAG answers 403
        self.refuse_unpause = False  # unpausing a user DAG answers 403
        self.max_page = 100  # Airflow's [api] maximum_page_limit
        self.requests: list[tuple[str, str]] = []  # every REST call: (method, path)
        self.flips: list[tuple[str, bool]] = []  # every change of a paused flag: (dag_id, is_paused)
        self.scheduler_down = False  # /health: the scheduler's latest heartbeat is 10 minutes old
        self.bulk_flips: list[tuple[str, bool]] = []  # those made by PATCH /dags (a pattern)
        self.before_patch: Any = None  # called before a PATCH /dags is applied (e.g. a DAG appears)
        self.in_flight: dict[tuple[str, str], list[dict[str, Any]]] = {}  # restored: World.in_flight
        self.cleared: list[tuple[str, str, Any]] = []  # clearTaskInstances calls: (dag, run, task_ids)

    def _set(self, dag: dict[str, Any], paused: bool) -> None:
        self.world.change(self.name, "pause" if paused else "unpause", dag["dag_id"])
        if dag["is_paused"] != paused:
            self.flips.append((dag["dag_id"], paused))
        dag["is_paused"] = paused

    @staticmethod
    def ilike(pattern: str, dag_id: str) -> bool:
        """Airflow's ``dag_id ILIKE '%<pattern>%'``, written apart from the planner: SQL's ``%`` is
        fnmatch's ``*`` and ``_`` its ``?`` (ids and patterns hold no ``*``, ``?`` or ``[``)."""
        if pattern == "~":
            pattern = "%"
        glob = "*" + pattern.lower().replace("%", "*").replace("_", "?") + "*"
        return fnmatch.fnmatchcase(dag_id.lower(), glob)

    def _page(self, dags: list[dict[str, Any]], query: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        dags = sorted(dags, key=lambda d: d["dag_id"])
        offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 100)), self.max_page)
        return dags[offset : offset + limit], len(dags)

    def _listed(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        dags = list(self.dags.values())
        if str(query.get("only_active", True)).lower() not in ("false", "0"):
            dags = [d for d in dags if d.get("is_active", True)]
        if "paused" in query:
            paused = str(query["paused"]).lower() in ("true", "1")
            dags = [d for d in dags if d["is_paused"] == paused]
        if query.get("dag_id_pattern"):
            dags = [d for d in dags if self.ilike(query["dag_id_pattern"], d["dag_id"])]
        return dags

    def paused(self) -> dict[str, bool]:
        return {d: v["is_paused"] for d, v in self.dags.items() if d not in dr.MWAA_IAC_DAG_IDS}

    def _parse(self) -> None:
        for dag_id in dr.MWAA_IAC_DAG_IDS:
            text = self.world.dag_file(dag_id)
            record = self.dags.get(dag_id)
            if text is None:
                if record is not None:
                    record["is_active"] = False
                continue
            # the file's marker: its DAG's description (a literal, or the MARKER constant it names)
            match = re.search(r"(?:description=|^MARKER = )('[^']*'|\"[^\"]*\")", text, re.MULTILINE)
            marker = ast.literal_eval(match.group(1)) if match else None
            if record is None:
                record = self.dags[dag_id] = {"dag_id": dag_id, "is_paused": True}
            record.update(description=marker, is_active=True)

    def handle(self, method: str, path: str, query: dict[str, Any], body: Any) -> tuple[int, Any]:
        self._parse()
        self.requests.append((method, path))
        if path == "/importErrors":
            return 200, {"import_errors": list(self.import_errors), "total_entries": len(self.import_errors)}
        if method == "GET" and path == "/health":  # Airflow 2's; the runner compares with the wall clock
            beat = datetime.now(UTC) - timedelta(minutes=10 if self.scheduler_down else 0)
            status = "unhealthy" if self.scheduler_down else "healthy"
            return 200, {
                "metadatabase": {"status": "healthy"},
                "scheduler": {"status": status, "latest_scheduler_heartbeat": beat.isoformat()},
            }
        if method == "GET" and path == f"/variables/{dr.RESTORE_MARKER_VARIABLE}":
            if self.marker is None:
                return 404, {"detail": "Variable not found"}
            return 200, {"key": path.rsplit("/", 1)[1], "value": json.dumps({"backup": self.marker})}
        if method == "POST" and path == "/variables":
            self.world.change(self.name, "set-variable", body["key"])
            self.variables[body["key"]] = body["value"]
            return 200, body
        if method == "DELETE" and (match := re.fullmatch(r"/variables/([^/]+)", path)):
            key = match.group(1)
            if key == dr.RESTORE_MARKER_VARIABLE and self.marker is not None:
                self.marker = None
            elif self.variables.pop(key, None) is None:
                return 404, {"detail": "Variable not found"}
            self.world.change(self.name, "delete-variable", key)
            return 204, None
        if method == "GET" and path == "/dags":
            page, total = self._page(self._listed(query), query)
            parsed = datetime.now(UTC).isoformat()  # the DAG processor parses all the time
            return 200, {"dags": [{**d, "last_parsed_time": parsed} for d in page], "total_entries": total}
        if method == "PATCH" and path == "/dags":  # Airflow 2's patch_dags: one page of the matches
            assert query.get("update_mask") == "is_paused" and query.get("dag_id_pattern")
            if self.before_patch is not None:
                self.before_patch(self)
            page, total = self._page(self._listed({k: v for k, v in query.items() if k != "paused"}), query)
            refused = self.refuse_pause if body["is_paused"] else self.refuse_unpause
            if refused and any(d["dag_id"] in USER_DAGS for d in page):
                return 403, {"detail": "forbidden"}
            for dag in page:
                if dag["is_paused"] != body["is_paused"]:
                    self.bulk_flips.append((dag["dag_id"], body["is_paused"]))
                self._set(dag, body["is_paused"])
            return 200, {"dags": [dict(d) for d in page], "total_entries": total}
        if path == "/dags/~/dagRuns/~/taskInstances":
            states = query["state"] if isinstance(query["state"], list) else [query["state"]]
            found = [t for t in self.tis if t["state"] in states]
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
            return 200, {"task_instances": found[offset : offset + limit], "total_entries": len(found)}
        if match := re.fullmatch(r"/dags/([^/~]+)", path):
            dag = self.dags.get(match.group(1))
            if dag is None:
                return 404, {"detail": "DAG not found"}
            refused = self.refuse_pause if body and body.get("is_paused") else self.refuse_unpause
            if method == "PATCH" and refused and dag["dag_id"] in USER_DAGS:
                return 403, {"detail": "forbidden"}
            if method == "PATCH":
                self._set(dag, body["is_paused"])
            elif method == "DELETE":
                self.world.change(self.name, "delete-dag", dag["dag_id"])
                del self.dags[dag["dag_id"]]
                return 204, None
            return 200, dag
        if match := re.fullmatch(r"/dags/([^/~]+)/details", path):
            dag = self.dags.get(match.group(1))
            return (200, {**dag, "catchup": True}) if dag else (404, {"detail": "not found"})
        if method == "GET" and path == "/dags/~/dagRuns" and "state" in query:  # runs in flight
            found = [{"dag_id": d, "dag_run_id": r, "state": "running"} for d, r in self.in_flight]
            return 200, {"dag_runs": found, "total_entries": len(found)}
        if match := re.fullmatch(r"/dags/([^/~]+)/clearTaskInstances", path):
            assert body["run_on_latest_version"] is True and not body["dry_run"] and not body["only_failed"]
            self.world.change(self.name, "clear", match.group(1), body["dag_run_id"])
            self.cleared.append((match.group(1), body["dag_run_id"], body["task_ids"]))
            tis = self.in_flight[(match.group(1), body["dag_run_id"])]
            chosen = [t for t in tis if t["task_id"] in body["task_ids"]]
            for ti in chosen:
                ti.update(state=None, dag_version={"version_number": 2})
            return 200, {"task_instances": chosen, "total_entries": len(chosen)}
        if (match := re.fullmatch(r"/dags/([^/~]+)/dagRuns/([^/]+)/taskInstances", path)) and (
            key := (match.group(1), match.group(2))
        ) in self.in_flight:
            return 200, self._schedule(key)
        if method == "GET" and path == "/dags/~/dagRuns":  # runs started since (rollback lists them)
            since = datetime.fromisoformat(query["start_date_gte"])
            found = [
                {"dag_id": d, "dag_run_id": r, **run}
                for (d, r), run in self.runs.items()
                if run.get("start_date") and datetime.fromisoformat(run["start_date"]) >= since
            ]
            return 200, {"dag_runs": found, "total_entries": len(found)}
        if match := re.fullmatch(r"/dags/([^/~]+)/dagRuns", path):
            dag_id = match.group(1)
            if method == "POST":
                key = (dag_id, body["dag_run_id"])
                if key in self.runs:
                    return 409, {"detail": "exists"}
                self.world.change(self.name, "trigger", dag_id, body["dag_run_id"])
                self.runs[key] = {
                    "dag_id": dag_id,
                    "dag_run_id": key[1],
                    "conf": body["conf"],
                    "state": "queued",
                }
                return 200, self.runs[key]
            runs = [
                {
                    "dag_run_id": r,
                    "run_type": "scheduled",
                    "logical_date": f"2026-11-{i + 1:02d}T00:00:00+00:00",
                }
                for i, r in enumerate(self.history)
            ][::-1]
            return 200, {"dag_runs": runs, "total_entries": len(runs)}
        if match := re.fullmatch(r"/dags/([^/~]+)/dagRuns/([^/]+)", path):
            run = self.runs.get((match.group(1), match.group(2)))
            if run is None:
                return 404, {"detail": "run not found"}
            if method == "DELETE":
                del self.runs[(match.group(1), match.group(2))]
                return 204, None
            if run["state"] in ("queued", "running"):
                self._execute(run)
            return 200, run
        if match := re.fullmatch(r"/dags/([^/~]+)/dagRuns/([^/]+)/taskInstances", path):
            run = self.runs[(match.group(1), match.group(2))]
            if run["state"] in ("queued", "running"):
                self._execute(run)
            return 200, {"task_instances": [{"task_id": "all_tables", "state": run["state"]}]}
        raise AssertionError(f"unexpected {method} {path} on {self.name}")

    def _schedule(self, key: tuple[str, str]) -> dict[str, Any]:
        """An in-flight run's task instances as Airflow 3.3.1's scheduler leaves them once its DAG is
        unpaused: the first time it examines the run it gives the latest version to the unfinished
        task instances with a state (never to those without one), unless one has it already; a task
        instance with a version and not deferred then runs (success); one without stays queued."""
        tis = self.in_flight[key]
        on_3 = self.world.envs[self.name].version.startswith("3.")
        if on_3 and not self.dags[key[0]]["is_paused"]:
            if not any(t.get("dag_version") for t in tis):
                for ti in tis:
                    if ti["state"] not in (None, "success", "failed", "skipped", "upstream_failed"):
                        ti["dag_version"] = {"version_number": 2}
            for ti in tis:
                if ti["state"] in (None, "scheduled", "queued", "up_for_retry"):
                    ti["state"] = "success" if ti.get("dag_version") else "queued"
        listed = [{"dag_id": key[0], "dag_run_id": key[1], "map_index": -1, **t} for t in tis]
        return {"task_instances": listed, "total_entries": len(listed)}

    def _go(self, run: dict[str, Any]) -> dict[str, Any] | None:
        """An armed run (its conf names ``go``): the conf it runs with once its go signal is there
        (a restore: and the manifest it names); None while it waits (it runs: a worker holds it).
        Cancelled, or past its deadline (``world.armed_expire``), it does nothing and says so."""
        conf = run["conf"]
        if not conf.get("go"):
            return conf
        if self.world.armed_queued and run["state"] == "queued":
            return None
        raw = self.world.objects.get((conf["bucket"], conf["go"]))
        signal = json.loads(raw) if raw else None
        skipped = "cancelled" if signal and signal.get("cancel") else None
        if skipped is None and self.world.armed_expire:
            skipped = "expired"
        if skipped:
            run.update(state="success", note=json.dumps({"ok": True, "armed": {"skipped": skipped}}))
            return None
        if conf.get("mode") == dr.UNPAUSE_MODE:  # it unpauses when its signal is written (World._unpause)
            run["state"] = "running"
            return None
        if signal is None or (
            conf.get("wait_for_manifest")
            and (conf["bucket"], f"{signal['prefix']}/{dr.MANIFEST}") not in self.world.objects
        ):
            run["state"] = "running"
            return None
        return {**conf, **{k: signal[k] for k in ("prefix", "since") if signal.get(k)}}

    def _execute(self, run: dict[str, Any]) -> None:
        """What the DR DAG's task does, at once (an armed one once its go signal is there)."""
        dag_id = run["dag_id"]
        assert run["conf"].get(dr.MARKER_CONF) == self.dags[dag_id]["description"]  # the version asked for
        conf = self._go(run)
        if conf is None:
            return
        run["ran_with"] = conf
        if dag_id == dr.PROBE_DAG_ID:
            note = {
                "ok": True,
                "mwaa_dr": f"/usr/local/airflow/dags/{dr.VENDOR_FOLDER}/mwaa_dr",
                "deleted": True,
            }
            if conf.get("scan"):  # a 2 → 3 path's migration-hazard scan: a database without hazards
                rows = {"task_instance": len(self.history), "dag_run": len(self.history)}
                note["scan"] = {"version": hazards.SCAN_VERSION, "rows": rows, "found": self.hazards}
            run.update(state="success", note=json.dumps(note))
        elif dag_id == dr.BACKUP_DAG_ID:
            tables = {t: {"rows": 1} for t in dr.REQUIRED_TABLES} | {"dag_run": {"rows": len(self.history)}}
            prefix = conf["prefix"]
            self.world.objects[(conf["bucket"], f"{prefix}/history.json")] = json.dumps(self.history).encode()
            manifest: dict[str, Any] = {"format": dr.MANIFEST_FORMAT, "tables": tables, "mode": "full"}
            base = self.world.objects.get((conf["bucket"], f"{conf.get('since')}/history.json"))
            if base is not None:  # a delta: only the runs the base lacks
                new = [r for r in self.history if r not in json.loads(base)]
                tables["dag_run"]["copied"] = len(new)
                manifest.update(mode="delta", base=conf["since"], whole=[])
            elif conf.get("since"):
                manifest["fallback"] = "the base backup is not usable"
            self.world.objects[(conf["bucket"], f"{prefix}/{dr.MANIFEST}")] = json.dumps(manifest).encode()
            run["state"] = "success"
        elif dag_id == dr.PREPARE_DAG_ID:
            self.history = []
            run["state"] = "success"
        elif dag_id == dr.RESTORE_DAG_ID:
            raw = self.world.objects.get((conf["bucket"], f"{conf['prefix']}/history.json"))
            error = self.world.restore_fails or (None if raw else "history.json: no such key")
            if error:
                run.update(state="failed", note=json.dumps({"ok": False, "error": error}))
                return
            manifest = json.loads(self.world.objects[(conf["bucket"], f"{conf['prefix']}/{dr.MANIFEST}")])
            refused = self.world.refuse_delta or (
                None if manifest.get("base") in (None, self.marker) else "holds another backup"
            )
            if manifest.get("mode") == "delta" and refused:
                self.world.refuse_delta = None
                note = {"ok": False, "error": f"delta refused: {refused}", "delta_refused": True}
                run.update(state="failed", note=json.dumps(note))
                return
            self.history = json.loads(raw)
            self.in_flight = {
                k: [{**t, "dag_version": None} for t in v] for k, v in self.world.in_flight.items()
            }
            self.marker = conf["prefix"]
            self.variables[dr.HOLD_VARIABLE] = f"restored from {conf['prefix']}"  # not live: holds
            for dag in self.dags.values():  # the restore pauses every DAG
                dag["is_paused"] = True
            tables = {t: 1 for t in dr.REQUIRED_TABLES} | {"dag_run": len(self.history)}
            note = {"ok": True, "tables": tables, "reset": [], "prefix": conf["prefix"]}
            note |= {"seconds": 0.4, "phases": {"write": 0.1, "verify": 0.2}, "rehashed": {}}
            run.update(state="success", note=json.dumps(note))
        else:
            raise AssertionError(f"unexpected run of {dag_id}")


class FakeEnvironment:
    def __init__(self, world: World, name: str, version: str, fields: dict[str, Any], dags: dict[str, bool]):
        self.name = name
        self.version = version
        self.fields = fields
        self.status = "AVAILABLE"
        self.queue: list[tuple[str, str]] = []  # (status, version) readings to come
        self.airflow = FakeAirflow(world, name, dags)
        self.updates: list[str] = []

    def describe(self) -> dict[str, Any]:
        if self.queue:
            self.status, self.version = self.queue.pop(0)
        return {
            **self.fields,
            "Name": self.name,
            "Arn": f"arn:aws:airflow:us-east-1:{ACCOUNT}:environment/{self.name}",
            "Status": self.status,
            "AirflowVersion": self.version,
            "WebserverUrl": f"{self.name}.airflow.example.com",
            "LastUpdate": {"Status": "SUCCESS"},
        }


class FakeMwaa:
    """MwaaClient's surface; ``client`` answers InvokeRestApi with the environment's FakeAirflow."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.client = self

    def _env(self, name: str) -> FakeEnvironment:
        if name not in self.world.envs:
            raise EnvironmentNotFoundError(
                f"MWAA environment {name} not found", code="ResourceNotFoundException", retryable=False
            )
        return self.world.envs[name]

    def get_environment(self, name: str) -> dict[str, Any]:
        self.world.touch(f"GetEnvironment {name}")
        return self._env(name).describe()

    def observe(self, name: str) -> Observation:
        return observe(self.get_environment(name))

    def exists(self, name: str) -> bool:
        self.world.touch(f"GetEnvironment {name}")
        return name in self.world.envs

    def create_environment(self, name: str, **fields: Any) -> str:
        self.world.touch(f"CreateEnvironment {name}")
        self.world.change("mwaa", "create", name, fields["AirflowVersion"])
        # The target parses the same DAG folder: the user's DAGs appear, paused at creation.
        env = FakeEnvironment(
            self.world, name, fields["AirflowVersion"], fields, dict.fromkeys(self.world.user_dags, True)
        )
        env.status = "CREATING"
        env.queue = [("CREATING", env.version), ("AVAILABLE", env.version)]
        self.world.envs[name] = env
        return f"arn:aws:airflow:us-east-1:{ACCOUNT}:environment/{name}"

    def update_environment(self, name: str, **fields: Any) -> str:
        self.world.touch(f"UpdateEnvironment {name}")
        env = self._env(name)
        self.world.change("mwaa", "update", name, fields["AirflowVersion"])
        env.updates.append(fields["AirflowVersion"])
        env.status = "UPDATING"
        env.queue = [("UPDATING", env.version), ("AVAILABLE", fields["AirflowVersion"])]
        return "arn"

    def delete_environment(self, name: str) -> None:
        self.world.touch(f"DeleteEnvironment {name}")
        self.world.change("mwaa", "delete", name)
        del self.world.envs[name]

    def invoke_rest_api(self, Name: str, Path: str, Method: str, QueryParameters=None, Body=None) -> dict:
        self.world.touch(f"{Method} {Path} on {Name}")
        status, body = self._env(Name).airflow.handle(Method, Path, QueryParameters or {}, Body)
        if status >= 400:
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "RestApiClientException", "Message": str(body)},
                    "RestApiStatusCode": status,
                    "RestApiResponse": body,
                },
                "InvokeRestApi",
            )
        return {"RestApiStatusCode": status, "RestApiResponse": body}


class FakeS3Client:
    """The boto3 S3 calls the S3 adapter makes, on ``world.objects``."""

    def __init__(self, world: World) -> None:
        self.world = world

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict:
        self.world.touch(f"PutObject {Key}")
        self.world.change("s3", "put", Bucket, Key)
        self.world.objects[(Bucket, Key)] = Body
        self.world.signalled(Bucket, Key, Body)
        return {"ETag": f'"{hashlib.md5(Body, usedforsecurity=False).hexdigest()}"'}

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict:
        self.world.touch(f"GetObject {Key}")
        if (Bucket, Key) not in self.world.objects:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject"
            )
        body = self.world.objects[(Bucket, Key)]
        return {"Body": io.BytesIO(body), "ETag": hashlib.md5(body, usedforsecurity=False).hexdigest()}

    def delete_object(self, Bucket: str, Key: str) -> dict:
        self.world.touch(f"DeleteObject {Key}")
        if (Bucket, Key) in self.world.objects:
            self.world.change("s3", "delete", Bucket, Key)
            del self.world.objects[(Bucket, Key)]
        return {}

    def get_paginator(self, name: str) -> Any:
        world = self.world

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str) -> Any:
                world.touch(f"ListObjectsV2 {Prefix}")
                contents = [
                    {
                        "Key": k,
                        "ETag": f'"{hashlib.md5(v, usedforsecurity=False).hexdigest()}"',
                        "LastModified": datetime(2026, 11, 1, tzinfo=UTC),
                    }
                    for (b, k), v in sorted(world.objects.items())
                    if b == Bucket and k.startswith(Prefix)
                ]
                yield {"Contents": contents}

        return Paginator()

    def get_bucket_encryption(self, Bucket: str) -> dict:
        rules = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        return {"ServerSideEncryptionConfiguration": {"Rules": rules}}


class FakeS3(S3):
    def bucket_findings(self, bucket: str, *, require_kms: bool = False) -> list[Finding]:
        return [
            Finding("backup bucket encryption", True, "SSE-S3"),
            Finding("backup bucket access", True, "private"),
        ]


class FakeRouting:
    def __init__(self, world: World) -> None:
        self.world = world

    def point(self, parameter: str, **kwargs: Any) -> None:
        self.world.touch(f"PutParameter {parameter}")
        self.world.change("routing", kwargs["name"])
        self.world.routing.append(kwargs["name"])

    def read(self, parameter: str) -> dict[str, Any] | None:
        """The SSM parameter: the environment routing was pointed at last (unset before)."""
        return {"name": self.world.routing[-1]} if self.world.routing else None

    def read_record(self, zone_id: str, record_name: str) -> str | None:
        return None


class FakeIam:
    def __init__(self, world: World) -> None:
        self.world = world

    def role(self, arn_or_name: str) -> RoleDocuments | None:
        self.world.touch(f"GetRole {arn_or_name}")
        return self.world.roles.get(arn_or_name.rsplit("/", 1)[-1])

    def create_role(self, name: str, trust: dict, policy: dict, **_: Any) -> str:
        self.world.touch(f"CreateRole {name}")
        self.world.change("iam", "create-role", name)
        arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        self.world.roles[name] = RoleDocuments(arn, name, trust, {"execution": policy})
        return arn


class FakeCloudWatch:
    """The scheduler's heartbeat, present every minute."""

    def __init__(self, world: World) -> None:
        self.world = world

    def heartbeat_minutes(self, environment: str, minutes: int, now: datetime | None = None) -> list[bool]:
        self.world.touch(f"GetMetricData {environment}")
        return [True] * minutes


class Clock:
    """Monotonic and wall time that move only when the cutover sleeps."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.wall.timestamp()

    def sleep(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)

    def now(self) -> datetime:
        return self.wall


# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def ws(workspace_root: Path):
    return open_workspace("demo", workspace_root)


@pytest.fixture
def world() -> World:
    world = World()
    source_fields = {
        "SourceBucketArn": f"arn:aws:s3:::{DAG_BUCKET}",
        "DagS3Path": DAG_PATH,
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/source-role",
        "EnvironmentClass": "mw1.small",
        "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
        "Tags": {"team": "data-platform"},
    }
    world.envs[SOURCE] = FakeEnvironment(world, SOURCE, "2.9.2", source_fields, USER_DAGS)
    world.envs[SOURCE].airflow.history = ["scheduled__2026-11-01", "scheduled__2026-11-02"]
    return world


def _cutover(ws, world: World, **options: Any) -> Cutover:
    clock = Clock()
    options.setdefault("to", "2.10.3")
    opts = CutoverOptions(
        engine="api",
        poll_interval=30,
        health_minutes=1,
        today=date(2026, 11, 23),
        run_poll_seconds=5.0,
        **options,
    )
    s3 = FakeS3(client=FakeS3Client(world))
    cutover = Cutover(
        ws,
        ws.load(),
        opts,
        FakeMwaa(world),  # type: ignore[arg-type]
        s3,
        FakeRouting(world),  # type: ignore[arg-type]
        FakeCloudWatch(world),  # type: ignore[arg-type]
        emit=world.emit,
        sleep=clock.sleep,
        clock=clock.monotonic,
        now=clock.now,
        state=LocalStore(ws.work_dir),
        iam=FakeIam(world),
    )
    world.cutover = cutover
    return cutover


def _run(ws, world: World, **options: Any) -> dict[str, Any]:
    """One `mwaa-iac cutover` (the journal is read back from the store, as a new process would)."""
    return _cutover(ws, world, **options).run()


def _journal(ws) -> Journal:
    journal = Journal.load(LocalStore(ws.work_dir), JOURNAL)
    assert journal is not None
    return journal


def _steps(journal: Journal) -> list[str]:
    """The journal's steps in the order it first recorded them."""
    seen: list[str] = []
    for entry in journal.entries:
        if entry.get("step") and entry["step"] not in seen:
            seen.append(entry["step"])
    return seen


def _is_done(entry: dict[str, Any], step: str) -> bool:
    return entry.get("step") == step and entry.get("event") == "done"


def _done_count(journal: Journal, step: str) -> int:
    return sum(1 for e in journal.entries if _is_done(e, step))


def _outcome(journal: Journal) -> str | None:
    return next((e["outcome"] for e in reversed(journal.entries) if e.get("event") == "end"), None)


def _assert_live_on_target(ws, world: World) -> None:
    """What a user sees after a complete cutover."""
    source, target = world.envs[SOURCE].airflow, world.envs[TARGET].airflow
    assert source.paused() == {"etl_orders": True, "report_daily": True, "owner_paused": True}
    assert target.paused() == {"etl_orders": False, "report_daily": False, "owner_paused": True}
    assert world.routing[-1] == TARGET
    assert world.envs[TARGET].version == "2.10.3" and world.envs[SOURCE].updates == []
    deployment = ws.load().deployment
    assert deployment.active_color is Color.GREEN and deployment.green == "2.10.3"
    assert world.dr_keys() == []  # the DR DAG files and the vendored mwaa-dr are gone
    assert not any(d in target.dags for d in dr.MWAA_IAC_DAG_IDS)  # and their records on the target
    assert target.marker is None and target.variables == {}  # and its variables
    assert dr.HOLD_VARIABLE in source.variables  # the old colour holds new DAGs paused
    assert target.history == source.history  # the history the source had when it froze
    assert _outcome(_journal(ws)) == "succeeded"


# -- the step list ---------------------------------------------------------------------------------


def test_the_step_list_is_data_with_phases() -> None:
    assert TWO_PASS[0] == Step.PREFLIGHT and TWO_PASS[-1] == Step.RETIRE_DR_DAGS
    assert len(set(TWO_PASS)) == len(TWO_PASS)
    phases = [stage_of(s) for s in TWO_PASS]
    assert phases == sorted(phases, key=[Stage.BEFORE_FREEZE, Stage.FREEZE, Stage.AFTER].index)
    assert [s for s in TWO_PASS if stage_of(s) is Stage.FREEZE][:3] == list(FREEZE_STEPS)
    assert "target-hop-1-2.10.3" in TWO_PASS and is_hop_step("target-hop-1-2.10.3")
    assert SINGLE_PASS.index(Step.PAUSE_SOURCE) < SINGLE_PASS.index(Step.CREATE_TARGET)
    assert Step.BACKUP_P2 not in SINGLE_PASS and Step.BACKUP_P1 in PER_ATTEMPT_STEPS
    assert redone_after_abort(Step.BACKUP_P2) and not redone_after_abort(Step.BACKUP_P1)
    major = flow(history=True, two_pass=True, hops=["2.11.2", "3.3.1"], freeze_hops=1)
    assert "target-hop-1-2.11.2" in major and "freeze-hop-2-3.3.1" in major
    assert major.index("freeze-hop-2-3.3.1") == major.index(Step.VERIFY_RESTORE_P2) + 1
    assert stage_of("freeze-hop-2-3.3.1") is Stage.FREEZE and redone_after_abort("freeze-hop-2-3.3.1")
    assert [stage_of(s) for s in major] == sorted(
        (stage_of(s) for s in major), key=[Stage.BEFORE_FREEZE, Stage.FREEZE, Stage.AFTER].index
    )
    assert flow(history=False) == [
        Step.PREFLIGHT,
        Step.TARGET_REQUIREMENTS,
        Step.CREATE_TARGET,
        Step.HEALTH_TARGET,
        Step.HEALTH_GATE_TARGET,
        *FREEZE_STEPS,
        Step.CHECK_TARGET,
        Step.GO_LIVE,
        Step.RETIRE_DR_DAGS,
    ]


# -- the happy paths -------------------------------------------------------------------------------


def test_two_pass_cutover_runs_every_step_in_order(ws, world) -> None:
    report = _run(ws, world)
    journal = _journal(ws)
    assert _steps(journal) == TWO_PASS
    assert all(_done_count(journal, s) == 1 for s in TWO_PASS)
    _assert_live_on_target(ws, world)
    assert report["passes"] == 2 and report["history_carried"] is True
    assert report["rows_copied"]["dag_run"] == 2 and report["freeze_window_s"] is not None
    assert next(iter(report["freeze_steps_s"])) == Step.PAUSE_SOURCE
    # The target was created at the source's version and upgraded in place; the source untouched.
    assert ("mwaa", "create", TARGET, "2.9.2") in world.changes
    assert world.envs[TARGET].updates == ["2.10.3"]
    assert not [c for c in world.changes if c[:2] == ("mwaa", "update") and c[2] == SOURCE]


def test_a_run_made_on_the_source_between_the_passes_reaches_the_target(ws, world) -> None:
    world.fail_in = Step.DEPLOY_DR_P2
    with pytest.raises(Injected):
        _run(ws, world)
    world.envs[SOURCE].airflow.history.append("between-passes")
    _run(ws, world, resume=True)
    assert "between-passes" in world.envs[TARGET].airflow.history


def _backup_confs(world: World) -> list[dict[str, Any]]:
    runs = world.envs[SOURCE].airflow.runs
    return [
        run["ran_with"]
        for (dag_id, _), run in runs.items()
        if dag_id == dr.BACKUP_DAG_ID and "ran_with" in run
    ]


def _freeze_triggers(world: World) -> list[tuple]:
    """DAG runs triggered inside the freeze that went live (its first pause on the source to the
    first unpause on the target)."""
    changes = world.changes
    end = next(i for i, c in enumerate(changes) if c[:2] == (TARGET, "unpause") and c[2] in LIVE)
    unpaused = [i for i, c in enumerate(changes[:end]) if c[:2] == (SOURCE, "unpause") and c[2] in LIVE]
    after = unpaused[-1] if unpaused else 0  # an aborted freeze gave scheduling back there
    start = next(
        i for i, c in enumerate(changes) if i > after and c[:2] == (SOURCE, "pause") and c[2] in LIVE
    )
    return [c for c in changes[start:end] if c[1] == "trigger"]


def _events(world: World) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    emit = world.emit
    world.emit = lambda e: (events.append(e), emit(e))[1]  # type: ignore[method-assign]
    return events


def test_pass_two_copiers_are_armed_before_the_freeze_and_only_told_to_go_inside_it(ws, world) -> None:
    events = _events(world)
    report = _run(ws, world)
    _assert_live_on_target(ws, world)
    # Nothing is triggered inside the freeze: the backup and the restore were running, waiting.
    assert _freeze_triggers(world) == []
    armed = [e for e in events if e.get("event") == "copier.armed"]
    assert [(e["environment"], e["dag_id"]) for e in armed] == [
        (SOURCE, dr.BACKUP_DAG_ID),
        (TARGET, dr.RESTORE_DAG_ID),
        (TARGET, dr.RESTORE_DAG_ID),  # the unpause copier (a 2.x target)
    ]
    backup = _journal(ws).data(Step.BACKUP_P2)["result"]
    assert backup["armed"] is True and backup["run_id"] == armed[0]["run_id"]
    restore = _journal(ws).data(Step.RESTORE_P2)["result"]
    assert restore["armed"] is True and restore["run_id"] == armed[1]["run_id"]
    assert report["pass2"]["mode"] == "delta"
    ran = world.envs[TARGET].airflow.runs[(dr.RESTORE_DAG_ID, restore["run_id"])]["ran_with"]
    assert ran["prefix"] == backup["prefix"]  # the target restored pass 2's backup


def test_copiers_past_their_deadline_fall_back_to_runs_triggered_in_the_freeze(ws, world) -> None:
    # Armed, then killed as the freeze began (writing the pause signal) and resumed after the
    # copiers' deadline: the backup's does not answer the pause, so both are cancelled, the DAGs
    # are recorded and paused over REST and the freeze triggers the runs as before.
    world.fail_in, world.kill = Step.RECORD_DAGS, True
    with pytest.raises(Killed):
        _run(ws, world)
    assert _journal(ws).data(Step.ARM_COPIERS)["result"]["armed"] is True
    events = _events(world)
    world.armed_expire = True
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)
    fallbacks = [(e["environment"], e["reason"]) for e in events if e.get("event") == "copier.fallback"]
    ((environment, reason),) = fallbacks
    assert environment == SOURCE and reason.startswith("pause over REST: no answer")
    assert world.db_pauses == [] and _journal(ws).data(Step.RECORD_DAGS)["result"]["dags"] == LIVE
    triggered = [(c[0], c[2]) for c in _freeze_triggers(world)]
    assert triggered == [(SOURCE, dr.BACKUP_DAG_ID), (TARGET, dr.RESTORE_DAG_ID)]
    restore = _journal(ws).data(Step.RESTORE_P2)["result"]["run_id"]
    ran = world.envs[TARGET].airflow.runs[(dr.RESTORE_DAG_ID, restore)]["ran_with"]
    assert ran["prefix"] == _journal(ws).data(Step.BACKUP_P2)["result"]["prefix"]
    # pass 1's restore (before the freeze) vacuums what it rewrote; one inside the freeze never does
    assert "vacuum" not in ran
    first = _journal(ws).data(Step.RESTORE_P1)["result"]["run_id"]
    assert world.envs[TARGET].airflow.runs[(dr.RESTORE_DAG_ID, first)]["ran_with"]["vacuum"] is True


def test_copiers_no_worker_starts_are_cancelled_and_the_freeze_triggers_its_runs(ws, world) -> None:
    events = _events(world)
    world.armed_queued = True
    _run(ws, world, arm_timeout_seconds=60)
    _assert_live_on_target(ws, world)
    (not_armed,) = [e for e in events if e.get("event") == "copier.not_armed"]
    assert "not started by a worker within 60 s" in not_armed["reason"]
    armed = _journal(ws).data(Step.ARM_COPIERS)["result"]
    assert armed["armed"] is False
    for copier in armed["cancelled"].values():  # told to do nothing, should a worker start it later
        assert json.loads(world.objects[(DR_BUCKET, copier["go"])]) == dr.CANCEL_SIGNAL
    assert len(_freeze_triggers(world)) == 2


def test_an_aborted_freeze_cancels_the_armed_copiers_and_resume_arms_new_ones(ws, world) -> None:
    world.fail_in = Step.VERIFY_BACKUP_P2
    with pytest.raises(Injected):
        _run(ws, world)
    first = _journal(ws).data(Step.ARM_COPIERS)["result"]
    # The backup went; the restore, waiting for the manifest, is told to cancel by the abort.
    assert json.loads(world.objects[(DR_BUCKET, first["restore"]["go"])]) == dr.CANCEL_SIGNAL
    assert world.envs[SOURCE].airflow.paused()["etl_orders"] is False  # scheduling given back
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)
    second = _journal(ws).data(Step.ARM_COPIERS)["result"]
    assert second["armed"] and second["backup"]["run_id"] != first["backup"]["run_id"]
    assert _journal(ws).data(Step.RESTORE_P2)["result"]["run_id"] == second["restore"]["run_id"]
    assert _freeze_triggers(world) == []


def test_copiers_of_an_arming_killed_midway_are_cancelled_when_resume_arms_again(ws, world) -> None:
    world.fail_in, world.kill = Step.ARM_COPIERS, True  # killed at its first call (a trigger)
    with pytest.raises(Killed):
        _run(ws, world)
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)
    journal = _journal(ws)
    used = journal.data(Step.ARM_COPIERS)["result"]
    assert used["backup"]["run_id"].endswith("p2g1") and _freeze_triggers(world) == []
    earlier = used["backup"]["go"].replace("p2g1", "p2g0")  # the killed arming's backup copier
    assert json.loads(world.objects[(DR_BUCKET, earlier)]) == dr.CANCEL_SIGNAL


def test_killed_after_the_go_signal_resume_triggers_the_backup_again_and_restores_it(ws, world) -> None:
    world.fail_in, world.kill = Step.VERIFY_BACKUP_P2, True
    with pytest.raises(Killed):
        _run(ws, world)
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)
    journal = _journal(ws)
    assert (
        journal.data(Step.RESTORE_P2)["result"]["prefix"] == journal.data(Step.BACKUP_P2)["result"]["prefix"]
    )
    assert world.envs[TARGET].airflow.history == world.envs[SOURCE].airflow.history


def test_pass_two_is_a_delta_against_the_backup_the_target_holds(ws, world) -> None:
    world.fail_in = Step.DEPLOY_DR_P2
    with pytest.raises(Injected):
        _run(ws, world)
    world.envs[SOURCE].airflow.history.append("between-passes")
    report = _run(ws, world, resume=True)
    first, second = _backup_confs(world)
    assert "since" not in first and second["since"] == first["prefix"]  # the target's marker
    assert report["pass2"] == {
        "mode": "delta",
        "base": first["prefix"],
        "copied": {**dict.fromkeys(dr.REQUIRED_TABLES, 1), "dag_run": 1},
        "whole": [],
        "fallback": None,
        # where the restore's time went, as its note says
        "restore": {"seconds": 0.4, "phases": {"write": 0.1, "verify": 0.2}, "rehashed": {}},
    }
    assert "between-passes" in world.envs[TARGET].airflow.history
    _assert_live_on_target(ws, world)


def test_a_refused_delta_is_copied_in_full_at_once_inside_the_same_freeze(ws, world) -> None:
    world.refuse_delta = "task_instance [etl_orders]: backup 10 rows, target 11 rows"
    report = _run(ws, world)
    confs = _backup_confs(world)
    assert ["since" in c for c in confs] == [False, True, False]  # p1, the delta, the full copy
    assert report["pass2"]["mode"] == "full"
    assert "the target refused the delta: task_instance [etl_orders]" in report["pass2"]["fallback"]
    journal = _journal(ws)
    assert journal.attempts(Step.BACKUP_P2) == 2 and _done_count(journal, Step.PAUSE_SOURCE) == 1
    _assert_live_on_target(ws, world)


def test_single_pass_cutover_freezes_before_the_copy(ws, world) -> None:
    report = _run(ws, world, single_pass=True)
    assert _steps(_journal(ws)) == SINGLE_PASS
    assert report["passes"] == 1
    _assert_live_on_target(ws, world)


def test_cutover_without_history_copies_nothing(ws, world) -> None:
    _run(ws, world, no_history=True)
    journal = _journal(ws)
    hops = [h[2] for h in journal.data(Step.PREFLIGHT)["result"]["hops"] if h[0] == "in-place"]
    assert _steps(journal) == flow(history=False, hops=hops)
    assert world.envs[TARGET].airflow.history == []
    assert not [c for c in world.changes if c[:2] == ("s3", "put") and c[2] == DR_BUCKET]
    assert world.envs[TARGET].airflow.paused() == {
        "etl_orders": False,
        "report_daily": False,
        "owner_paused": True,
    }
    assert world.routing == [TARGET]


def test_dry_run_changes_nothing(ws, world) -> None:
    report = _run(ws, world, dry_run=True)
    assert report["dry_run"] is True and report["passes"] == 2
    assert [h["to_version"] for h in report["hops"]] == ["2.9.2", "2.10.3"]
    assert world.changes == [] and world.routing == []
    assert Journal.load(LocalStore(ws.work_dir), JOURNAL) is None
    assert not (ws.work_dir / "lock").exists()


def test_the_dry_run_without_history_says_the_freeze_is_only_around_go_live(ws, world) -> None:
    report = _run(ws, world, dry_run=True, no_history=True)
    assert report["history_carried"] is False and report["passes"] == 0
    assert report["freeze"].startswith("only around go-live") and "nothing is copied" in report["freeze"]
    assert world.changes == []


def test_a_refused_preflight_changes_nothing_and_ends_the_journal(ws, world) -> None:
    world.envs[TARGET] = FakeEnvironment(world, TARGET, "2.9.2", {}, {})  # the other colour is taken
    with pytest.raises(PreflightError, match="already exists"):
        _run(ws, world)
    assert _outcome(_journal(ws)) == "preflight-failed"
    assert world.changes == []


def test_a_source_whose_scheduler_is_down_is_refused_before_the_probe_runs(ws, world) -> None:
    """Issue 22 part 10: the environment is AVAILABLE but its scheduler does not heartbeat; the
    preflight says so at once instead of waiting up to 15 minutes for the probe DAG."""
    world.envs[SOURCE].airflow.scheduler_down = True
    with pytest.raises(SchedulerDownError) as caught:
        _run(ws, world)
    message = str(caught.value)
    assert message.startswith(f"the scheduler of {SOURCE} is down: its latest heartbeat was 600 s ago")
    assert "(Airflow's /health)" in message and "the cutover's backups would only wait" in message
    assert f"airflow-{SOURCE}-Scheduler" in (caught.value.hint or "")
    requests = world.envs[SOURCE].airflow.requests
    assert ("GET", "/health") in requests
    assert not [r for r in requests if r[0] in ("POST", "PATCH")]  # no run triggered, nothing unpaused
    assert TARGET not in world.envs
    assert _outcome(_journal(ws)) == "preflight-failed"


# -- a failure at every step, then --resume --------------------------------------------------------


def _fail_then_resume(ws, world: World, steps: list[str], step: str, **options: Any) -> None:
    world.fail_in = step
    with pytest.raises(Injected) as caught:
        _run(ws, world, **options)
    assert world.failed == [step]
    before = _journal(ws)
    done_before = [s for s in steps if _done_count(before, s)]
    # everything before the failed step ran (but the step around it), nothing after it
    assert done_before == [s for s in steps[: steps.index(step)] if s != PARENT.get(step)]
    # With armed copiers the freeze begins in record-dags (the backup copier is told to pause).
    begins = (
        Step.RECORD_DAGS
        if Step.ARM_COPIERS in steps and options.get("armed_copy", True)
        else Step.PAUSE_SOURCE
    )
    frozen = steps.index(step) >= steps.index(begins) and stage_of(step) is not Stage.AFTER
    if frozen:  # scheduling is given back to the source, the target is not live
        assert world.envs[SOURCE].airflow.paused() == USER_DAGS
        assert "the freeze was aborted" in (caught.value.hint or "")
    else:
        assert "--resume" in (caught.value.hint or "")
    if stage_of(step) is not Stage.AFTER:  # the target is not live
        if TARGET in world.envs:
            assert world.envs[TARGET].airflow.paused() == dict.fromkeys(USER_DAGS, True)
        assert TARGET not in world.routing and ws.load().deployment.active_color is Color.BLUE

    _run(ws, world, resume=True, **options)  # the same command with --resume

    journal = _journal(ws)
    assert _steps(journal) == steps
    # a restore that failed verification is restored again (an attempt of its own)
    restore_of_verify = {verify: restore for _, _, restore, verify in COPY_STEPS.values()}
    for name in steps:
        again = (frozen and name in done_before and redone_after_abort(name)) or (
            name == restore_of_verify.get(step)
        )
        assert _done_count(journal, name) == (2 if again else 1), name
    if frozen and before.state(Step.BACKUP_P2) is not None:  # a fresh backup, under a prefix of its own
        earlier = [e["data"]["result"]["prefix"] for e in before.entries if _is_done(e, Step.BACKUP_P2)]
        prefix = journal.data(Step.BACKUP_P2)["result"]["prefix"]
        assert prefix not in earlier and re.search(r"/p2-a\d+$", prefix)
    _assert_live_on_target(ws, world)


@pytest.mark.parametrize("step", TWO_PASS)
def test_two_pass_failure_at_each_step_then_resume_completes(ws, world, step) -> None:
    _fail_then_resume(ws, world, TWO_PASS, step)


@pytest.mark.parametrize("step", SINGLE_PASS)
def test_single_pass_failure_at_each_step_then_resume_completes(ws, world, step) -> None:
    _fail_then_resume(ws, world, SINGLE_PASS, step, single_pass=True)


def test_resume_continues_the_interrupted_cutover_as_it_was_started(ws, world) -> None:
    """`cutover --single-pass` fails; `cutover --resume` (the flags not retyped) stays single-pass."""
    world.fail_in = Step.CREATE_TARGET
    with pytest.raises(Injected):
        _run(ws, world, single_pass=True)
    report = _run(ws, world, resume=True)
    assert report["passes"] == 1
    assert _steps(_journal(ws)) == SINGLE_PASS


def test_a_restore_that_fails_verification_is_restored_again_on_resume(ws, world) -> None:
    world.fail_in = Step.VERIFY_RESTORE_P1
    with pytest.raises(Injected):
        _run(ws, world)
    assert _journal(ws).state(Step.RESTORE_P1) == "started"  # not done any more: it runs again
    _run(ws, world, resume=True)
    journal = _journal(ws)
    restores = [e for e in journal.entries if e.get("step") == Step.RESTORE_P1 and e["event"] == "done"]
    assert [e["data"]["result"]["run_id"].rsplit("-", 1)[-1] for e in restores] == ["p1", "p1a1"]
    _assert_live_on_target(ws, world)


def test_a_failed_restore_runs_again_with_a_run_id_of_its_own(ws, world) -> None:
    world.restore_fails = "dag_run.csv: no such key"  # e.g. a file of the backup lost
    with pytest.raises(CutoverError, match=r"dag_run\.csv"):
        _run(ws, world)
    assert _journal(ws).state(Step.RESTORE_P1) == "started"
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS  # nothing paused before the freeze
    world.restore_fails = None
    _run(ws, world, resume=True)
    restores = [c[3] for c in world.changes if c[1:3] == ("trigger", dr.RESTORE_DAG_ID)]
    assert restores[0].endswith("-p1") and restores[1].endswith("-p1a1")
    _assert_live_on_target(ws, world)


# -- aborts inside the freeze ----------------------------------------------------------------------


def test_drain_timeout_aborts_the_freeze_and_resume_freezes_again_with_a_fresh_backup(ws, world) -> None:
    source = world.envs[SOURCE].airflow
    long_task = {"dag_id": "etl_orders", "dag_run_id": "r1", "task_id": "load", "state": "running"}
    source.tis.append(long_task)
    with pytest.raises(CutoverError, match="still executing") as caught:
        _run(ws, world, drain_timeout_seconds=20)
    assert source.paused() == USER_DAGS  # the recorded DAGs unpaused, the owner's stays paused
    assert world.envs[TARGET].airflow.paused() == dict.fromkeys(USER_DAGS, True)
    assert world.routing == [] and ws.load().deployment.active_color is Color.BLUE
    assert "--force-drain" in (caught.value.hint or "")
    journal = _journal(ws)
    assert journal.state(Step.BACKUP_P2) is None  # pass 2 never started

    long_task["state"] = "success"  # the cause is gone; the source made a run meanwhile
    source.history.append("after-abort")
    _run(ws, world, resume=True)
    journal = _journal(ws)
    assert all(_done_count(journal, s) == 2 for s in (Step.RECORD_DAGS, Step.PAUSE_SOURCE))
    assert "after-abort" in world.envs[TARGET].airflow.history
    _assert_live_on_target(ws, world)


def test_the_freeze_polls_every_second_with_the_default_run_poll(ws, world) -> None:
    """Frozen time is the users' downtime: inside the freeze the drain (and every DR run's wait) polls
    at most a second apart, whatever --run-poll (5 s here, its default) says."""
    world.envs[SOURCE].airflow.tis.append(
        {"dag_id": "etl_orders", "dag_run_id": "r1", "task_id": "load", "state": "running"}
    )
    waited: list[float] = []
    emit = world.emit

    def recording(item: dict[str, Any]) -> None:
        if item.get("event") == EventKind.FREEZE_DRAINING:
            waited.append(item["waited_s"])
        emit(item)

    world.emit = recording  # type: ignore[method-assign]
    with pytest.raises(CutoverError, match="still executing"):
        _run(ws, world, drain_timeout_seconds=5)
    assert waited == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_force_drain_goes_on_and_reports_what_may_run_twice(ws, world) -> None:
    world.envs[SOURCE].airflow.tis.append(
        {"dag_id": "etl_orders", "dag_run_id": "r1", "task_id": "load", "state": "running", "map_index": 2}
    )
    report = _run(ws, world, drain_timeout_seconds=20, force_drain=True)
    assert report["may_run_twice"] == ["etl_orders/r1/load[2]"]
    _assert_live_on_target(ws, world)


def test_a_restore_failure_inside_the_freeze_is_aborted_and_resumed_with_a_fresh_backup(ws, world) -> None:
    world.fail_in, world.kill = Step.VERIFY_BACKUP_P2, True  # killed after pass 2's backup
    with pytest.raises(Killed):
        _run(ws, world)
    # The backup loses a file before the resume: the restore fails, the freeze is aborted again.
    first = _journal(ws).data(Step.BACKUP_P2)["result"]["prefix"]
    del world.objects[(DR_BUCKET, f"{first}/history.json")]
    with pytest.raises(CutoverError, match=r"history\.json"):
        _run(ws, world, resume=True)
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS
    world.envs[SOURCE].airflow.history.append("after-second-abort")
    _run(ws, world, resume=True)
    journal = _journal(ws)
    # the second backup taken (the abort's notes are not attempts)
    assert journal.data(Step.BACKUP_P2)["result"]["prefix"] == f"{first}-a1"
    assert "after-second-abort" in world.envs[TARGET].airflow.history
    _assert_live_on_target(ws, world)


def test_a_go_live_that_fails_after_routing_is_undone_then_resumed(ws, world) -> None:
    routing_calls: list[str] = []

    class FlakyRouting(FakeRouting):
        def point(self, parameter: str, **kwargs: Any) -> None:
            routing_calls.append(kwargs["name"])
            if len(routing_calls) == 1:
                raise Injected("SSM PutParameter throttled")
            super().point(parameter, **kwargs)

    cutover = _cutover(ws, world)
    cutover.routing = FlakyRouting(world)  # type: ignore[assignment]
    with pytest.raises(Injected):
        cutover.run()
    # Undone: the target's recorded DAGs paused again, routing pointed back, the source schedules.
    assert routing_calls == [TARGET, SOURCE] and world.routing == [SOURCE]
    assert world.envs[TARGET].airflow.paused() == dict.fromkeys(USER_DAGS, True)
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS
    assert ws.load().deployment.active_color is Color.BLUE
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)
    # The target held pass 2's restore: the fresh backup is a delta against that one.
    p1, p2, fresh = _backup_confs(world)
    assert p2["since"] == p1["prefix"] and fresh["since"] == p2["prefix"]


def half_done_unpause(monkeypatch: pytest.MonkeyPatch, world: World, then: Any = None) -> None:
    """The go-live's unpause on the target stops half-way: one DAG unpaused, then the request fails
    (once); ``then(airflow)`` runs at that moment (e.g. the target starts a task). The armed unpause
    copier does not answer: go-live unpauses over REST."""
    world.copier_unpause = "silent"
    handle = FakeAirflow.handle

    def failing(
        self: FakeAirflow, method: str, path: str, query: dict[str, Any], body: Any
    ) -> tuple[int, Any]:
        unpause = method == "PATCH" and isinstance(body, dict) and body.get("is_paused") is False
        journal = world.cutover.journal if world.cutover is not None else None
        in_go_live = journal is not None and journal.state(Step.GO_LIVE) == "started"
        if self.name == TARGET and unpause and in_go_live and Step.GO_LIVE not in world.failed:
            world.failed.append(Step.GO_LIVE)
            self._set(self.dags["etl_orders"], False)
            if then is not None:
                then(self)
            raise Injected("PATCH throttled")
        return handle(self, method, path, query, body)

    monkeypatch.setattr(FakeAirflow, "handle", failing)


def test_an_abort_that_cannot_pause_the_target_again_keeps_the_source_paused(ws, world, monkeypatch) -> None:
    half_done_unpause(monkeypatch, world, then=lambda airflow: setattr(airflow, "refuse_pause", True))
    with pytest.raises(Injected) as caught:
        _run(ws, world)
    assert world.envs[SOURCE].airflow.paused() == dict.fromkeys(USER_DAGS, True)  # never both colours
    assert "could not be undone" in (caught.value.hint or "") and "--resume" in (caught.value.hint or "")
    world.envs[TARGET].airflow.refuse_pause = False
    _run(ws, world, resume=True)  # finishes the go-live
    _assert_live_on_target(ws, world)


def test_an_abort_that_cannot_unpause_the_source_says_so_and_resume_pauses_again(ws, world) -> None:
    world.envs[SOURCE].airflow.tis.append(
        {"dag_id": "etl_orders", "dag_run_id": "r1", "task_id": "load", "state": "running"}
    )
    world.envs[SOURCE].airflow.refuse_unpause = True
    with pytest.raises(CutoverError, match="still executing") as caught:
        _run(ws, world, drain_timeout_seconds=20)
    assert "could not all be unpaused" in (caught.value.hint or "")
    assert world.envs[SOURCE].airflow.paused() == dict.fromkeys(USER_DAGS, True)
    assert world.routing == []
    world.envs[SOURCE].airflow.refuse_unpause = False
    world.envs[SOURCE].airflow.tis.clear()
    _run(ws, world, resume=True)
    journal = _journal(ws)
    # the recorded DAGs are kept (the source was still paused): pause and drain again
    assert _done_count(journal, Step.RECORD_DAGS) == 1 and _done_count(journal, Step.PAUSE_SOURCE) == 2
    _assert_live_on_target(ws, world)


# -- rollback and cleanup --------------------------------------------------------------------------


def test_rollback_gives_scheduling_back_to_the_source(ws, world) -> None:
    _run(ws, world)
    made = datetime.now(UTC).isoformat()  # a run the new colour made after go-live
    world.envs[TARGET].airflow.runs[("etl_orders", "on-green")] = {"state": "success", "start_date": made}
    store = LocalStore(ws.work_dir)
    mwaa = FakeMwaa(world)
    result = rollback(ws, ws.load(), mwaa, FakeRouting(world), lambda e: None, store)  # type: ignore[arg-type]
    assert result["active"] == SOURCE and result["left_paused"] == {}
    assert result["runs_not_copied_back"] == ["etl_orders/on-green"] and "(1: " in result["warning"]
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS
    assert world.envs[TARGET].airflow.paused() == dict.fromkeys(USER_DAGS, True)
    assert world.routing[-1] == SOURCE and ws.load().deployment.active_color is Color.BLUE
    # the new colour now holds DAGs that appear paused; the colour live again holds none of the tool's
    source, target = world.envs[SOURCE].airflow, world.envs[TARGET].airflow
    assert dr.HOLD_VARIABLE in target.variables and source.variables == {} and source.marker is None
    assert not any(d in source.dags for d in dr.MWAA_IAC_DAG_IDS)


def test_rollback_before_go_live_is_refused(ws, world) -> None:
    world.fail_in = Step.DRAIN_SOURCE
    with pytest.raises(Injected):
        _run(ws, world)
    with pytest.raises(MwaaIacError, match="did not go live"):
        rollback(ws, ws.load(), FakeMwaa(world), FakeRouting(world), lambda e: None, LocalStore(ws.work_dir))  # type: ignore[arg-type]


def test_cleanup_after_go_live_retires_the_old_colour(ws, world) -> None:
    _run(ws, world)
    store = LocalStore(ws.work_dir)
    s3 = FakeS3(client=FakeS3Client(world))
    result = cleanup(ws, ws.load(), FakeMwaa(world), s3, lambda e: None, store, routing=FakeRouting(world))  # type: ignore[arg-type]
    assert result["retired"] == SOURCE and SOURCE not in world.envs
    assert ws.load().deployment.blue is None and ws.load().deployment.active_color is Color.GREEN


def test_cleanup_of_a_cutover_killed_inside_the_freeze_gives_scheduling_back(ws, world) -> None:
    world.fail_in, world.kill = Step.BACKUP_P2, True
    with pytest.raises(Killed):
        _run(ws, world)
    assert world.envs[SOURCE].airflow.paused() == dict.fromkeys(USER_DAGS, True)  # killed: no abort ran
    store = LocalStore(ws.work_dir)
    s3 = FakeS3(client=FakeS3Client(world))
    result = cleanup(ws, ws.load(), FakeMwaa(world), s3, lambda e: None, store, routing=FakeRouting(world))  # type: ignore[arg-type]
    assert result["retired"] == TARGET and TARGET not in world.envs
    assert result["unpaused_on_source"] == len(LIVE)
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS
    assert _outcome(_journal(ws)) == "abandoned" and world.dr_keys() == []


@pytest.mark.parametrize("step", TWO_PASS)
def test_a_cutover_killed_inside_each_step_resumes_to_the_end(ws, world, step) -> None:
    """SIGKILL inside a step (no abort runs): --resume continues the started step; no step that
    completed runs again."""
    world.fail_in, world.kill = step, True
    with pytest.raises(Killed):
        _run(ws, world)
    _run(ws, world, resume=True)
    journal = _journal(ws)
    assert _steps(journal) == TWO_PASS
    assert all(_done_count(journal, s) == 1 for s in TWO_PASS)
    _assert_live_on_target(ws, world)


# -- the sizing estimate of a dry run (issue 14) ------------------------------------------------------


def test_dry_run_estimates_the_sizing_from_the_live_source(ws, world, monkeypatch) -> None:
    """The dry run counts the source's rows with limit=1 list requests and estimates the passes; an
    answer it cannot use leaves the estimate out with the reason, never fails the dry run."""
    airflow = world.envs[SOURCE].airflow
    handle = airflow.handle
    totals = {
        "/dags": 2,
        "/dags/~/dagRuns": 300,
        "/dags/~/dagRuns/~/taskInstances": 3_000,
        "/dags/~/dagRuns/~/taskInstances/~/xcomEntries": 2_500,
        "/eventLogs": 4_000,
        "/variables": 20,
        "/connections": 10,
        "/pools": 5,
    }

    def counting(method: str, path: str, query: dict[str, Any], body: Any) -> tuple[int, Any]:
        if method == "GET" and query.get("limit") == 1 and path in totals:
            return 200, {"total_entries": 12 if query.get("state") == "failed" else totals[path]}
        return handle(method, path, query, body)

    monkeypatch.setattr(airflow, "handle", counting)
    sizing = _run(ws, world, dry_run=True)["sizing"]
    assert sizing["status"] == "estimated" and sizing["environment"] == SOURCE and sizing["passes"] == 2
    assert sizing["rows"] == sum(v for k, v in totals.items() if k != "/dags") + 12 and sizing["dags"] == 2
    assert sizing["pass1_copy"]["high_s"] > 0 and sizing["freeze"]["high_s"] > 0
    assert world.changes == []

    monkeypatch.setattr(airflow, "handle", handle)  # the fake answers no count: no estimate, no failure
    sizing = _run(ws, world, dry_run=True)["sizing"]
    assert sizing["status"] == "unavailable" and sizing["summary"].startswith("sizing not available: ")


# -- 500 DAGs --------------------------------------------------------------------------------------


DR_IDS = set(dr.MWAA_IAC_DAG_IDS)  # the DR runner pauses and unpauses them one by one, as before


def _many_dags() -> dict[str, bool]:
    """500 DAGs of a shared environment (team prefixes, ``_`` everywhere): 462 live, 38 paused by
    their owners and interleaved with the live ones in id order (a team's legacy DAGs, the ad-hoc
    DAGs of someone who left, last year's backfills)."""
    teams = ["finance", "marketing_ops", "data_platform", "team_a", "team_b", "risk", "sales", "ml_platform"]
    kinds = ["ingest", "transform", "export", "report", "sync", "quality"]
    objects = ["orders", "customers", "invoices", "events", "payments", "ledger", "sessions", "users"]
    live = [f"{t}_{k}_{o}" for t in teams for k in kinds for o in objects]  # 384
    live += [f"adhoc_{p}_{o}" for p in ("alice", "bob", "chen", "dana") for o in objects]  # 32
    live += [f"{t}_backfill_{o}_2025" for t in teams for o in objects[:5]]
    live += [f"data_platform_heartbeat_{region}" for region in ("eu", "us", "ap", "sa", "af", "me")]
    paused = [f"team_b_legacy_{o}_{n}" for o in objects[:6] for n in (1, 2)]
    paused += [f"adhoc_eve_{o}" for o in objects] + [
        f"{t}_backfill_{o}_2024" for t in teams[:3] for o in objects[:6]
    ]
    return dict.fromkeys(live, False) | dict.fromkeys(paused, True)


def _many_dags_world(world: World) -> dict[str, bool]:
    dags = _many_dags()
    assert len(dags) == 500 and sum(dags.values()) == 38
    world.user_dags = dags
    world.envs[SOURCE].airflow.dags = {
        d: {"dag_id": d, "is_paused": p, "is_active": True} for d, p in dags.items()
    }
    return dags


def _step_result(journal: Journal, step: str) -> dict[str, Any]:
    return journal.data(step).get("result", {})


def test_500_dags_are_paused_and_unpaused_in_a_handful_of_calls(ws, world) -> None:
    dags = _many_dags_world(world)
    live = {d for d, paused in dags.items() if not paused}
    _run(ws, world, armed_copy=False)  # the REST path (the fallback of the copier's pause)
    journal = _journal(ws)
    assert _outcome(journal) == "succeeded"
    source, target = world.envs[SOURCE].airflow, world.envs[TARGET].airflow
    # the freeze's pause: the listing that recorded the DAGs is reused; 7 PATCH (3 patterns, one of
    # 5 pages), verified by their answers (no listing). One call a DAG would be 462.
    assert _step_result(journal, Step.PAUSE_SOURCE)["calls"] == 7
    # the go-live: check-target's listing of the target reused; its patterns, verified by their answers
    assert _step_result(journal, Step.GO_LIVE)["calls"] <= 11
    assert source.paused() == dict.fromkeys(dags, True)
    assert target.paused() == {d: d not in live for d in dags}
    for airflow in (source, target):  # an owner-paused DAG was never unpaused, not even for a moment
        assert not [d for d, paused in airflow.flips if not paused and d not in live | DR_IDS]
        assert not [d for d, _ in airflow.bulk_flips if d in dr.MWAA_IAC_DAG_IDS]  # nor a DR DAG touched
    assert {d for d, paused in source.flips if paused and d not in dr.MWAA_IAC_DAG_IDS} == live
    assert {d for d, paused in target.flips if not paused and d not in dr.MWAA_IAC_DAG_IDS} == live


def test_check_target_reuses_the_listing_taken_before_the_freeze_and_reads_import_errors_in_it(
    ws, world
) -> None:
    """500 DAGs: the target's listing (5 pages) is taken as the copiers are armed, before the freeze;
    inside it check-target reads only the import errors (one call). A DAG file that breaks during the
    freeze still stops go-live; --resume arms again (a listing with it) and goes live once fixed."""
    dags = _many_dags_world(world)
    broken = sorted(d for d, paused in dags.items() if not paused)[0]
    world.envs[SOURCE].airflow.dags[broken]["fileloc"] = f"/usr/local/airflow/dags/{broken}.py"
    target_errors: list[dict[str, Any]] = []
    emit = world.emit

    def breaks_in_the_freeze(event: dict[str, Any]) -> None:
        if event.get("event") == "freeze.recorded" and not target_errors:
            world.envs[TARGET].airflow.import_errors = target_errors
            target_errors.append(
                {"filename": f"/usr/local/airflow/dags/{broken}.py", "stack_trace": "ImportError: gone"}
            )
        emit(event)

    world.emit = breaks_in_the_freeze  # type: ignore[method-assign]
    with pytest.raises(CutoverError) as caught:
        _run(ws, world)
    assert f"{broken}: ImportError: gone" in caught.value.message
    journal = _journal(ws)
    assert journal.data(Step.CHECK_TARGET).get("result") is None and TARGET not in world.routing
    world.emit = emit  # type: ignore[method-assign]
    target_errors.clear()  # the DAG file fixed
    _run(ws, world, resume=True)
    journal = _journal(ws)
    assert _outcome(journal) == "succeeded"
    assert journal.attempts(Step.ARM_COPIERS) == 2  # the resumed freeze armed (and listed) again
    assert _step_result(journal, Step.CHECK_TARGET)["calls"] == 1


def test_check_target_in_the_freeze_is_one_call_for_500_dags(ws, world) -> None:
    _many_dags_world(world)
    _run(ws, world)
    journal = _journal(ws)
    assert _outcome(journal) == "succeeded"
    # the import errors; the listing of 500 DAGs (5 pages) was taken before the freeze
    assert _step_result(journal, Step.CHECK_TARGET)["calls"] == 1
    assert _step_result(journal, Step.CHECK_TARGET)["unparsed"] == []


def test_500_dags_a_pause_killed_half_way_resumes_with_what_is_still_unpaused(ws, world) -> None:
    dags = _many_dags_world(world)
    live = {d for d, paused in dags.items() if not paused}
    source = world.envs[SOURCE].airflow
    patches: list[int] = []

    def kill_at_the_third(airflow: FakeAirflow) -> None:
        patches.append(1)
        if len(patches) == 3:
            raise Killed(Step.PAUSE_SOURCE)

    source.before_patch = kill_at_the_third
    with pytest.raises(Killed):
        _run(ws, world, armed_copy=False)
    paused_first = {d for d, paused in source.flips if paused and d not in DR_IDS}
    assert paused_first and paused_first < live  # some, not all
    source.before_patch = None
    flips_before = len(source.flips)
    _run(ws, world, resume=True, armed_copy=False)
    journal = _journal(ws)
    assert _outcome(journal) == "succeeded"
    again = [d for d, paused in source.flips[flips_before:] if paused and d not in dr.MWAA_IAC_DAG_IDS]
    assert sorted(again) == sorted(live - paused_first)  # only what was still unpaused, once each
    assert not [d for d, paused in source.flips if not paused and d not in dr.MWAA_IAC_DAG_IDS]
    assert source.paused() == dict.fromkeys(dags, True)
    assert world.envs[TARGET].airflow.paused() == {d: d not in live for d in dags}


# -- 2 → 3 in two passes: the major hop inside the freeze (issue 24) --------------------------------------

MAJOR = flow(
    history=True, two_pass=True, hops=["2.11.2", "3.3.1"], freeze_hops=1, rehearsal=True, into_3=True
)


def _assert_live_on_3(ws, world: World) -> None:
    source, target = world.envs[SOURCE].airflow, world.envs[TARGET].airflow
    assert target.paused() == {"etl_orders": False, "report_daily": False, "owner_paused": True}
    assert source.paused() == {"etl_orders": True, "report_daily": True, "owner_paused": True}
    assert world.routing[-1] == TARGET and world.envs[TARGET].updates == ["2.11.2", "3.3.1"]
    assert world.envs[TARGET].version == "3.3.1" and ws.load().deployment.green == "3.3.1"
    assert target.history == source.history
    assert _outcome(_journal(ws)) == "succeeded"


def test_two_passes_into_3_upgrade_to_2_11_before_the_freeze_and_to_3_inside_it(ws, world) -> None:
    report = _run(ws, world, to="3.3.1")
    journal = _journal(ws)
    assert _steps(journal) == MAJOR
    _assert_live_on_3(ws, world)
    assert report["passes"] == 2
    # the timeline beside the journal: every step drawn, the freeze shaded
    picture = LocalStore(ws.work_dir).read("cutover.timeline.svg")
    assert picture is not None and report["timeline"].endswith("cutover.timeline.svg")
    assert all(f'data-step="{step}"' in picture for step in MAJOR if step not in PARENT)
    assert 'class="freeze"' in picture
    freeze = list(report["freeze_steps_s"])
    # the freeze: pause, drain, pass 2 into 2.11.2, the hop to 3.3.1, the gate, go-live — no clone
    assert freeze[0] == Step.PAUSE_SOURCE and "freeze-hop-2-3.3.1" in freeze
    assert Step.CREATE_TARGET not in freeze and "target-hop-1-2.11.2" not in freeze
    assert (
        freeze.index(Step.VERIFY_RESTORE_P2)
        < freeze.index("freeze-hop-2-3.3.1")
        < freeze.index(Step.CHECK_TARGET)
    )
    # pass 2 restored into the target while it ran 2.11.2 (the copy restores only into 2.x)
    hop_started = next(e["at"] for e in journal.entries if e.get("step") == "freeze-hop-2-3.3.1")
    restored = next(e["at"] for e in journal.entries if _is_done(e, Step.RESTORE_P2))
    assert restored < hop_started


def _in_flight_run() -> list[dict[str, Any]]:
    return [
        {"task_id": "extract", "state": "success"},
        {"task_id": "wait_for_partner", "state": "deferred"},  # resumes on 3.x's triggerer
        {"task_id": "transform", "state": None},  # no state at the freeze: no dag_version on 3.x
        {"task_id": "flaky", "state": "up_for_retry"},
    ]


def test_runs_in_flight_at_the_freeze_finish_on_3(ws, world) -> None:
    """Airflow's 2 → 3 migration leaves the copied task instances without a DAG version; 3.3.1's
    scheduler gives one to those with a state only: the one without (transform) would stay queued.
    After go-live it is cleared onto the latest version; nothing else of the run is touched."""
    world.in_flight = {("etl_orders", "scheduled__2026-12-01"): _in_flight_run()}
    world.in_flight[("owner_paused", "manual__1")] = [{"task_id": "t", "state": None}]
    report = _run(ws, world, to="3.3.1")
    _assert_live_on_3(ws, world)
    target = world.envs[TARGET].airflow
    assert target.cleared == [("etl_orders", "scheduled__2026-12-01", ["transform"])]
    listed = target._schedule(("etl_orders", "scheduled__2026-12-01"))["task_instances"]  # its next loop
    states = {t["task_id"]: t["state"] for t in listed}
    assert states == {
        "extract": "success",
        "wait_for_partner": "deferred",
        "transform": "success",
        "flaky": "success",
    }
    assert report["in_flight"]["cleared"] == ["etl_orders/scheduled__2026-12-01/transform"]
    # a DAG its owner left paused keeps its run as it is (its owner unpauses it)
    assert target.in_flight[("owner_paused", "manual__1")] == [
        {"task_id": "t", "state": None, "dag_version": None}
    ]


def test_runs_in_flight_resumed_once_across_a_kill(ws, world) -> None:
    world.in_flight = {("etl_orders", "scheduled__2026-12-01"): _in_flight_run()}
    world.fail_in, world.kill = Step.RESUME_IN_FLIGHT, True
    with pytest.raises(Killed):
        _run(ws, world, to="3.3.1")
    report = _run(ws, world, resume=True, to="3.3.1")
    target = world.envs[TARGET].airflow
    assert [c[2] for c in target.cleared] == [["transform"]]
    target._schedule(("etl_orders", "scheduled__2026-12-01"))
    assert all(
        t["state"] in ("success", "deferred")
        for t in target.in_flight[("etl_orders", "scheduled__2026-12-01")]
    )
    assert report["in_flight"]["runs"] in ([], ["etl_orders/scheduled__2026-12-01"])


def test_a_cutover_within_2_has_no_in_flight_step(ws, world) -> None:
    world.in_flight = {("etl_orders", "scheduled__2026-12-01"): _in_flight_run()}
    report = _run(ws, world)
    assert Step.RESUME_IN_FLIGHT not in _steps(_journal(ws)) and "in_flight" not in report
    assert world.envs[TARGET].airflow.cleared == []


@pytest.mark.parametrize("step", MAJOR)
def test_two_passes_into_3_killed_inside_each_step_resume_to_the_end(ws, world, step) -> None:
    world.fail_in, world.kill = step, True
    with pytest.raises(Killed):
        _run(ws, world, to="3.3.1")
    _run(ws, world, resume=True, to="3.3.1")
    journal = _journal(ws)
    assert _steps(journal) == MAJOR
    assert all(_done_count(journal, s) == 1 for s in MAJOR if s not in PARENT)
    _assert_live_on_3(ws, world)


@pytest.mark.parametrize("step", MAJOR)
def test_two_passes_into_3_failure_at_each_step_then_resume_completes(ws, world, step) -> None:
    """A failure before the hop into 3.x gives scheduling back (pass 2 and the hop run again on
    --resume); a failure after it holds the freeze (the 3.x target cannot take pass 2 again) and
    --resume goes on to go-live."""
    world.fail_in = step
    with pytest.raises(Injected) as caught:
        _run(ws, world, to="3.3.1")
    hint = caught.value.hint or ""
    hop = MAJOR.index("freeze-hop-2-3.3.1")
    index = MAJOR.index(step)
    if MAJOR.index(Step.PAUSE_SOURCE) <= index <= hop:
        assert "the freeze was aborted" in hint and world.envs[SOURCE].airflow.paused() == USER_DAGS
    elif hop < index and stage_of(step) is Stage.FREEZE:
        assert "the freeze holds" in hint and "--resume" in hint and "cleanup" in hint
        assert world.envs[SOURCE].airflow.paused() == dict.fromkeys(USER_DAGS, True)
        assert world.envs[TARGET].version == "3.3.1" and TARGET not in world.routing
    _run(ws, world, resume=True, to="3.3.1")
    journal = _journal(ws)
    assert _steps(journal) == MAJOR
    assert world.envs[TARGET].updates.count("3.3.1") == 1  # the hop into 3.x is never taken twice
    _assert_live_on_3(ws, world)


@pytest.mark.parametrize("way_on", ["fixed", "accepted"])
def test_a_dag_that_fails_to_import_on_the_target_stops_go_live_until_fixed_or_accepted(
    ws, world, way_on
) -> None:
    target_errors = []

    def breaks_on_3(env: FakeEnvironment) -> None:
        env.airflow.import_errors = target_errors

    world.fail_in = None
    original = FakeMwaa.update_environment

    def update(self, name: str, **fields: Any) -> str:
        arn = original(self, name, **fields)
        if fields["AirflowVersion"] == "3.3.1":
            breaks_on_3(self._env(name))
        return arn

    FakeMwaa.update_environment = update  # type: ignore[method-assign]
    try:
        target_errors.append(
            {
                "filename": "/usr/local/airflow/dags/report_daily.py",
                "stack_trace": "Traceback\nImportError: no Dataset",
            }
        )
        with pytest.raises(CutoverError) as caught:
            _run(ws, world, to="3.3.1", no_rehearsal=True)
        assert "report_daily: ImportError: no Dataset" in caught.value.message
        assert "--accept-import-errors" in (caught.value.hint or "")
        # the freeze holds: nothing of it is given back, the target not live
        assert world.envs[SOURCE].airflow.paused() == dict.fromkeys(USER_DAGS, True)
        assert TARGET not in world.routing
        # still failing: --resume stops at the same gate; accepted: goes live
        with pytest.raises(CutoverError):
            _run(ws, world, resume=True, to="3.3.1")
        assert Step.REHEARSAL_CREATE not in _steps(_journal(ws))  # --no-rehearsal kept by the resume
        if way_on == "fixed":  # the DAG file fixed in the shared folder: the gate passes
            target_errors.clear()
            _run(ws, world, resume=True, to="3.3.1")
            assert _journal(ws).data(Step.CHECK_TARGET)["result"]["failing"] == {}
        else:
            _run(ws, world, resume=True, to="3.3.1", accept_import_errors=True)
            assert _journal(ws).data(Step.CHECK_TARGET)["result"]["failing"] == {
                "report_daily": "ImportError: no Dataset"
            }
        _assert_live_on_3(ws, world)
    finally:
        FakeMwaa.update_environment = original  # type: ignore[method-assign]


def test_an_import_error_is_matched_to_its_dag_by_file_as_airflow_2_and_3_name_it() -> None:
    from mwaa_iac.workflows.cutover.target import import_failures

    files = {"a": "/usr/local/airflow/dags/team/a.py", "b": "/usr/local/airflow/dags/b.py"}
    errors = [
        {"filename": "team/a.py", "stack_trace": "Traceback\n  ...\nModuleNotFoundError: x"},  # 3.2+
        {"filename": "/usr/local/airflow/dags/other/b.py", "stack_trace": "SyntaxError"},  # not b.py
    ]
    assert import_failures(errors, files) == {"a": "ModuleNotFoundError: x"}
    absolute = [{"filename": "/usr/local/airflow/dags/b.py", "stack_trace": ""}]  # 2.x, 3.0
    assert import_failures(absolute, files) == {"b": "import error"}


def test_the_rehearsal_upgrades_a_third_environment_and_is_deleted_before_the_freeze(ws, world) -> None:
    events: list[dict[str, Any]] = []
    emit = world.emit
    world.emit = lambda e: (events.append(e), emit(e))[1]  # type: ignore[method-assign]
    _run(ws, world, to="3.3.1")
    journal = _journal(ws)
    rehearsal = "analytics-rehearsal"
    created = [c for c in world.changes if c[:3] == ("mwaa", "create", rehearsal)]
    assert created == [("mwaa", "create", rehearsal, "2.11.2")]  # at the target's version before the freeze
    assert ("mwaa", "update", rehearsal, "3.3.1") in world.changes
    assert ("mwaa", "delete", rehearsal) in world.changes and rehearsal not in world.envs
    # all of it before anything was paused
    assert _steps(journal).index(Step.FREEZE_GATE) < _steps(journal).index(Step.PAUSE_SOURCE)
    estimate = next(e for e in events if e.get("event") == "freeze.estimate")
    assert estimate["seconds"] == journal.data(Step.FREEZE_GATE)["result"]["estimate_s"]
    assert journal.data(Step.REHEARSAL_HOP)["result"]["hops"][0]["to"] == "3.3.1"
    _assert_live_on_3(ws, world)


@pytest.mark.parametrize("way_on", ["fixed", "accepted"])
def test_a_dag_failing_in_the_rehearsal_stops_before_the_freeze_with_nothing_paused(
    ws, world, way_on
) -> None:
    original = FakeMwaa.update_environment

    def update(self, name: str, **fields: Any) -> str:
        arn = original(self, name, **fields)
        if fields["AirflowVersion"] == "3.3.1":
            self._env(name).airflow.import_errors = errors
        return arn

    errors = [{"filename": "report_daily.py", "stack_trace": "ImportError: no Dataset"}]  # 3.2+: relative
    FakeMwaa.update_environment = update  # type: ignore[method-assign]
    try:
        with pytest.raises(CutoverError) as caught:
            _run(ws, world, to="3.3.1")
        assert "report_daily: ImportError: no Dataset" in caught.value.message
        assert "nothing is paused" in (caught.value.hint or "")
        assert (
            world.envs[SOURCE].airflow.paused() == USER_DAGS and _journal(ws).state(Step.PAUSE_SOURCE) is None
        )
        if way_on == "fixed":
            errors.clear()
            _run(ws, world, resume=True, to="3.3.1")  # checked again: the rehearsal check reruns
        else:
            _run(ws, world, resume=True, to="3.3.1", accept_import_errors=True)
        _assert_live_on_3(ws, world)
    finally:
        FakeMwaa.update_environment = original  # type: ignore[method-assign]


def test_max_freeze_minutes_below_the_rehearsal_estimate_refuses_the_freeze(ws, world) -> None:
    with pytest.raises(CutoverError, match="more than --max-freeze-minutes") as caught:
        _run(ws, world, to="3.3.1", max_freeze_minutes=0.01)
    assert "nothing is paused" in (caught.value.hint or "")
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS
    _run(ws, world, resume=True, to="3.3.1", max_freeze_minutes=600)
    _assert_live_on_3(ws, world)


def test_a_blocking_migration_hazard_stops_a_cutover_into_3_before_anything_changes(ws, world) -> None:
    """The preflight scans the source (the probe DAG): a NaN JSON XCom would fail Airflow 3's
    migration inside the freeze, so nothing is created or paused; named by --accept-hazard, it goes on."""
    found = {"count": 2, "runs": 1, "ids": [["etl_orders", "scheduled__2026-11-01"]]}
    world.envs[SOURCE].airflow.hazards = {"nan-json-xcom": found}
    with pytest.raises(PreflightError) as caught:
        _run(ws, world, to="3.3.1")
    assert "migration hazard nan-json-xcom: 2 rows" in caught.value.message
    assert "etl_orders/scheduled__2026-11-01" in caught.value.message
    assert _outcome(_journal(ws)) == "preflight-failed"
    # only the probe ran (its DAG unpaused to run, then paused): no environment, no user DAG touched
    touched = [c for c in world.changes if c[0] == "mwaa" or c[1] in ("pause", "unpause", "set-variable")]
    assert {c[2] for c in touched} == {dr.PROBE_DAG_ID}
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS
    _run(ws, world, to="3.3.1", accept_hazards=("nan-json-xcom",))
    _assert_live_on_3(ws, world)


def test_a_cutover_within_airflow_2_does_not_scan_for_migration_hazards(ws, world) -> None:
    world.envs[SOURCE].airflow.hazards = {
        "nan-json-xcom": {"count": 1, "runs": 1, "ids": [["etl_orders", "r"]]}
    }
    report = _run(ws, world, dry_run=True)  # 2.9.2 → 2.10.3: Airflow 3's migration never runs
    assert report["migration_hazards"]["scanned"] is False and world.changes == []


# -- the freeze's pause by the armed backup copier (issue 25) --------------------------------------


def _paused_key(ws) -> str:
    return _journal(ws).data(Step.RECORD_DAGS)["pause_signalled"]["key"]


def test_the_armed_backup_copier_records_and_pauses_the_dags_in_one_transaction(ws, world) -> None:
    events = _events(world)
    _run(ws, world)
    _assert_live_on_target(ws, world)
    journal = _journal(ws)
    assert world.db_pauses == [(SOURCE, LIVE)]  # once, the live DAGs only
    recorded = journal.data(Step.RECORD_DAGS)["result"]
    assert recorded["dags"] == LIVE and recorded["paused_by"] == "copier"
    assert recorded["files"] == {d: f"/usr/local/airflow/dags/{d}.py" for d in LIVE}
    # pause-source only checks over REST: one listing of the unpaused DAGs, nothing to pause again
    paused = journal.data(Step.PAUSE_SOURCE)["result"]
    assert paused["paused_by"] == "copier" and paused["calls"] == 1 and paused["paused_again"] == []
    source = world.envs[SOURCE].airflow
    assert "owner_paused" not in {d for d, _ in source.flips}  # never touched
    assert not [f for f in source.bulk_flips if f[0] in LIVE]  # no PATCH paused them
    assert not [e for e in events if e.get("event") == "copier.fallback"]
    assert _freeze_triggers(world) == []  # the same copier then did the backup


def test_a_copier_that_does_not_answer_the_pause_falls_back_to_rest_and_is_cancelled(ws, world) -> None:
    events = _events(world)
    world.copier_pause = "silent"
    _run(ws, world)
    _assert_live_on_target(ws, world)
    journal = _journal(ws)
    assert world.db_pauses == []
    assert journal.data(Step.RECORD_DAGS)["result"] == {
        "dags": LIVE,
        "files": {d: f"/usr/local/airflow/dags/{d}.py" for d in LIVE},
    }
    assert "paused_by" not in journal.data(Step.PAUSE_SOURCE)["result"]  # paused over REST
    (fallback, *_) = [e for e in events if e.get("event") == "copier.fallback"]
    assert fallback["reason"].startswith("pause over REST: no answer to the pause signal")
    # told to cancel: pass 2's runs are triggered in the freeze as without copiers
    assert [(c[0], c[2]) for c in _freeze_triggers(world)] == [
        (SOURCE, dr.BACKUP_DAG_ID),
        (TARGET, dr.RESTORE_DAG_ID),
    ]


def test_a_copier_whose_pause_fails_falls_back_to_rest_and_still_copies(ws, world) -> None:
    events = _events(world)
    world.copier_pause = "fail"
    _run(ws, world)
    _assert_live_on_target(ws, world)
    assert "paused_by" not in _journal(ws).data(Step.RECORD_DAGS)["result"]
    reasons = [e["reason"] for e in events if e.get("event") == "copier.fallback"]
    assert reasons == ["pause over REST: it could not pause: OperationalError (SQLSTATE 57014)"]
    assert _freeze_triggers(world) == []  # it answered: still armed, it does the backup


def test_a_freeze_killed_after_the_copier_paused_finds_its_record_again_on_resume(ws, world) -> None:
    world.stop_at, world.kill = ".paused.json", True  # killed reading the copier's answer
    with pytest.raises(Killed):
        _run(ws, world)
    assert world.db_pauses == [(SOURCE, LIVE)]
    source = world.envs[SOURCE].airflow
    assert source.paused() == {"etl_orders": True, "report_daily": True, "owner_paused": True}
    assert _journal(ws).state(Step.RECORD_DAGS) == "started"
    world.kill = False
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)
    journal = _journal(ws)
    assert world.db_pauses == [(SOURCE, LIVE)]  # not signalled again: the record is the copier's
    assert journal.data(Step.RECORD_DAGS)["result"]["dags"] == LIVE
    assert journal.data(Step.PAUSE_SOURCE)["result"]["paused_by"] == "copier"


def test_an_abort_after_the_copier_paused_unpauses_exactly_the_recorded_dags(ws, world) -> None:
    world.fail_in = Step.PAUSE_SOURCE
    with pytest.raises(Injected) as caught:
        _run(ws, world)
    assert world.db_pauses == [(SOURCE, LIVE)]
    source = world.envs[SOURCE].airflow
    assert source.paused() == USER_DAGS  # the live DAGs scheduling again, the owner's still paused
    assert "owner_paused" not in {d for d, _ in source.flips}
    assert "the freeze was aborted" in (caught.value.hint or "")
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)
    assert [e for e, _ in world.db_pauses] == [SOURCE, SOURCE]  # the resume's new copier paused again


def test_an_abort_while_reading_the_copiers_answer_settles_it_and_gives_back_those_dags(ws, world) -> None:
    world.stop_at = ".paused.json"  # the first read of the copier's answer fails: the freeze aborts
    with pytest.raises(Injected) as caught:
        _run(ws, world)
    assert world.db_pauses == [(SOURCE, LIVE)]
    journal = _journal(ws)
    assert journal.data(Step.RECORD_DAGS)["copier_record"]["dags"] == LIVE  # read again by the abort
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS
    assert "the freeze was aborted" in (caught.value.hint or "")
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)


def test_a_dag_the_copier_selected_but_did_not_confirm_is_recorded_by_the_rest_fallback(ws, world) -> None:
    # The copier paused and wrote its selection, but its "paused" answer was lost: once the signal's
    # deadline passed, the REST record (which sees those DAGs paused) adds the selection.
    original = world.signalled

    def selected_only(bucket: str, key: str, body: bytes) -> None:
        original(bucket, key, body)
        for (b, k), data in list(world.objects.items()):
            if k.endswith(".paused.json") and json.loads(data)["state"] == "paused":
                world.objects[(b, k)] = json.dumps({**json.loads(data), "state": "selected"}).encode()

    world.signalled = selected_only  # type: ignore[method-assign]
    _run(ws, world)
    _assert_live_on_target(ws, world)
    recorded = _journal(ws).data(Step.RECORD_DAGS)["result"]
    assert recorded["dags"] == LIVE and "paused_by" not in recorded


def test_the_armed_unpause_copier_unpauses_the_recorded_dags_on_a_2_x_target(ws, world) -> None:
    events = _events(world)
    report = _run(ws, world)
    _assert_live_on_target(ws, world)
    journal = _journal(ws)
    assert world.db_unpauses == [(TARGET, LIVE)]  # exactly the recorded DAGs, once
    live = journal.data(Step.GO_LIVE)["result"]
    assert live["unpaused_by"] == "copier" and live["unpaused_again"] == []
    assert live["calls"] == 1  # the REST check: one listing of the paused DAGs
    target = world.envs[TARGET].airflow
    assert "owner_paused" not in {d for d, paused in target.flips if not paused}
    assert not [e for e in events if e.get("event") == "copier.fallback"]
    assert report["armed_copy"]["paused"] is True and report["armed_copy"]["unpaused"] is True


def test_an_unpause_copier_that_does_not_answer_falls_back_to_rest(ws, world) -> None:
    events = _events(world)
    world.copier_unpause = "silent"
    _run(ws, world)
    _assert_live_on_target(ws, world)
    assert world.db_unpauses == []
    assert "unpaused_by" not in _journal(ws).data(Step.GO_LIVE)["result"]
    reasons = [e["reason"] for e in events if e.get("event") == "copier.fallback"]
    assert reasons == ["unpause over REST: no answer to the unpause signal within 10 s"]


def test_go_live_over_rest_never_plans_with_the_listing_taken_before_the_freeze(ws, world) -> None:
    """A DAG unpaused by hand on the target before the freeze shows so in the listing taken as the
    copiers are armed; pass 2's restore pauses it again. go-live (over REST: the unpause copier
    does not answer) must unpause it, not take it for done from that listing."""
    world.copier_unpause = "silent"
    emit = world.emit

    def unpaused_by_hand(event: dict[str, Any]) -> None:
        if event.get("event") == "copier.armed" and event.get("dag_id") == dr.RESTORE_DAG_ID:
            world.envs[TARGET].airflow.dags[LIVE[0]]["is_paused"] = False
        emit(event)

    world.emit = unpaused_by_hand  # type: ignore[method-assign]
    _run(ws, world)
    _assert_live_on_target(ws, world)
    assert world.envs[TARGET].airflow.paused()[LIVE[0]] is False


def test_a_go_live_killed_after_the_unpause_signal_finds_the_answer_again_on_resume(ws, world) -> None:
    world.stop_at, world.kill = ".unpaused.json", True  # killed reading the unpause copier's answer
    with pytest.raises(Killed):
        _run(ws, world)
    assert world.db_unpauses == [(TARGET, LIVE)]
    world.kill = False
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)
    assert world.db_unpauses == [(TARGET, LIVE)]  # not signalled again
    assert _journal(ws).data(Step.GO_LIVE)["result"]["unpaused_by"] == "copier"


def test_an_aborted_go_live_after_the_unpause_copier_pauses_the_target_again(ws, world) -> None:
    world.stop_at = ".unpaused.json"  # reading its answer fails: the half-done go-live is undone
    with pytest.raises(Injected) as caught:
        _run(ws, world)
    assert world.db_unpauses == [(TARGET, LIVE)]
    assert world.envs[TARGET].airflow.paused() == dict.fromkeys(USER_DAGS, True)
    assert world.envs[SOURCE].airflow.paused() == USER_DAGS  # scheduling given back, owner's still paused
    assert "the freeze was aborted" in (caught.value.hint or "")
    _run(ws, world, resume=True)
    _assert_live_on_target(ws, world)


def test_a_3_x_target_has_no_unpause_copier(ws, world) -> None:
    _run(ws, world, to="3.3.1")
    armed = _journal(ws).data(Step.ARM_COPIERS)["result"]
    assert armed["armed"] and "unpause" not in armed and world.db_unpauses == []
    assert "unpaused_by" not in _journal(ws).data(Step.GO_LIVE)["result"]
