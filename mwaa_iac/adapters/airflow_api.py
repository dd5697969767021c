"""Airflow's REST API through MWAA's InvokeRestApi (botocore >= 1.35.47).

Paths are relative to /api/v1 (Airflow 2) or /api/v2 (Airflow 3): MWAA maps them. Where the two
differ, the adapter learns which one it talks to from the first answer that tells (a 422 asking for
``logical_date`` when triggering, a 400 for ordering by ``execution_date``) and remembers it, so an
Airflow 2 environment costs no extra call and an Airflow 3 one at most one. MWAA limits the
path to 64 characters, the response to 6 MB and the rate to about 10 requests per second; Airflow's
4xx/5xx come back as RestApiClientException / RestApiServerException with the status and body.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions

from mwaa_iac.adapters.aws import error_code, error_message
from mwaa_iac.adapters.mwaa import MwaaApiError, MwaaClient, translate
from mwaa_iac.core import bulk_pause
from mwaa_iac.errors import MwaaIacError

MAX_PATH = 64
PAGE = 100  # Airflow's default maximum_page_limit
# Airflow's health endpoint: /api/v1/health on Airflow 2, /api/v2/monitor/health on Airflow 3 (no
# authentication needed in either; InvokeRestApi maps the path onto the version's API).
HEALTH_PATH_V1 = "/health"
HEALTH_PATH_V2 = "/monitor/health"
# Airflow's own default [scheduler] scheduler_health_check_threshold: a scheduler heartbeats every
# scheduler_heartbeat_sec (5 s by default, MWAA keeps it), so 30 s is six heartbeats missed.
SCHEDULER_STALE_SECONDS = 30.0


@dataclass
class BulkPauseResult:
    """What :meth:`AirflowApi.set_paused_many` did: ``changed`` the DAGs that were in the other state,
    ``patterns`` the ``dag_id_pattern`` values sent, ``singles`` the DAGs set one call each,
    ``put_back`` DAGs outside the set a pattern reached (created after the listing, or changed since)
    and that were set back, ``retried`` DAGs of the set found in the wrong state afterwards and set
    again one by one, ``missing`` DAGs not in the active listing (set one by one; absent ones skipped
    when allowed), ``calls`` the REST calls made."""

    paused: bool
    changed: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    singles: list[str] = field(default_factory=list)
    put_back: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    calls: int = 0


@dataclass(frozen=True)
class SchedulerHealth:
    """The scheduler part of Airflow's health answer and what it means: ``problem`` says why the
    scheduler cannot run anything (None: it is heartbeating)."""

    status: str | None  # Airflow's own verdict: "healthy", "unhealthy", or None (no scheduler job yet)
    latest_heartbeat: str | None  # as Airflow gives it (ISO 8601)
    age_s: float | None  # seconds between that heartbeat and ``now`` (None: no heartbeat)
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def scheduler_health(
    answer: Any, now: datetime, *, stale_after: float = SCHEDULER_STALE_SECONDS
) -> SchedulerHealth | None:
    """What Airflow's health answer (``GET /health``, ``GET /monitor/health`` on Airflow 3) says of
    the scheduler at ``now``; None when the answer has no scheduler part (nothing to decide on).

    The scheduler is down when it never heartbeated (Airflow's status null, or no heartbeat), when
    its latest heartbeat is older than ``stale_after`` seconds, or when Airflow itself calls it
    unhealthy (Airflow compares with the environment's own scheduler_health_check_threshold)."""
    part = answer.get("scheduler") if isinstance(answer, dict) else None
    if not isinstance(part, dict):
        return None
    status = part.get("status")
    status = str(status) if status is not None else None
    raw = part.get("latest_scheduler_heartbeat")
    latest = str(raw) if raw else None
    beat = _parse_date(latest)
    age = max(0.0, (now - beat).total_seconds()) if beat is not None else None
    problem: str | None = None
    if beat is None:
        problem = (
            "no scheduler has heartbeated yet"
            if latest is None
            else f"its latest heartbeat {latest!r} is not a time"
        )
    elif age is not None and age > stale_after:
        problem = (
            f"its latest heartbeat was {age:.0f} s ago ({latest}); a running scheduler heartbeats "
            f"every few seconds (stale after {stale_after:.0f} s)"
        )
    elif status not in (None, "healthy"):
        problem = f"Airflow reports it {status} (latest heartbeat {age:.0f} s ago, {latest})"
    return SchedulerHealth(status, latest, None if age is None else round(age, 1), problem)


class AirflowApiError(MwaaIacError):
    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class AirflowApi:
    """One environment's Airflow REST API."""

    mwaa: MwaaClient
    environment: str
    retries: int = 6
    sleep: Callable[[float], None] = time.sleep
    calls: int = field(default=0, init=False)
    # True once an answer showed Airflow 3's /api/v2 (None: not known yet).
    api_v2: bool | None = field(default=None, init=False)

    def request(
        self, method: str, path: str, *, body: dict | None = None, query: dict[str, Any] | None = None
    ) -> Any:
        if len(path) > MAX_PATH:
            raise AirflowApiError(
                f"REST path {path!r} is {len(path)} characters; "
                f"MWAA's InvokeRestApi takes at most {MAX_PATH}",
                hint="shorten the dag_run_id or DAG id in the path",
            )
        kwargs: dict[str, Any] = {"Name": self.environment, "Path": path, "Method": method}
        if body is not None:
            kwargs["Body"] = body
        if query:
            kwargs["QueryParameters"] = query
        delay = 1.0
        for attempt in range(self.retries + 1):
            self.calls += 1
            try:
                return self.mwaa.client.invoke_rest_api(**kwargs).get("RestApiResponse")
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                code = error_code(exc)
                if code in ("RestApiClientException", "RestApiServerException"):
                    response = getattr(exc, "response", {})
                    status = response.get("RestApiStatusCode")
                    detail = response.get("RestApiResponse") or error_message(exc)
                    if code == "RestApiServerException" and attempt < self.retries:
                        self.sleep(delay)
                        delay = min(delay * 2, 15)
                        continue
                    raise AirflowApiError(
                        f"{method} {path} on {self.environment}: Airflow answered {status}: {_short(detail)}",
                        status=status,
                    ) from exc
                error = translate(exc, "InvokeRestApi", self.environment)
                if error.retryable and attempt < self.retries:
                    self.sleep(delay)
                    delay = min(delay * 2, 15)
                    continue
                raise error from exc
        raise MwaaApiError(
            "InvokeRestApi: retries exhausted", code="Retries", retryable=False
        )  # pragma: no cover

    # -- health -----------------------------------------------------------------------------------

    def health(self) -> dict | None:
        """Airflow's health answer (metadatabase, scheduler, triggerer, DAG processor): ``GET
        /health`` on Airflow 2, ``GET /monitor/health`` on Airflow 3 (tried when the first is not
        found, and then remembered). None when the environment serves neither (403, 404, 405)."""
        paths = (HEALTH_PATH_V2,) if self.api_v2 else (HEALTH_PATH_V1, HEALTH_PATH_V2)
        for path in paths:
            try:
                answer = self.request("GET", path)
            except AirflowApiError as exc:
                if exc.status in (403, 404, 405):
                    continue
                raise
            if path == HEALTH_PATH_V2:
                self.api_v2 = True
            return answer if isinstance(answer, dict) else None
        return None

    # -- DAGs -------------------------------------------------------------------------------------

    def get_dag(self, dag_id: str) -> dict | None:
        if len(f"/dags/{dag_id}") > MAX_PATH:  # a long DAG id: find it by pattern instead
            return next((d for d in self._dags_matching(dag_id) if d["dag_id"] == dag_id), None)
        try:
            return self.request("GET", f"/dags/{dag_id}")
        except AirflowApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _dags_matching(self, pattern: str) -> list[dict]:
        """DAGs whose id contains ``pattern`` (Airflow's ``dag_id_pattern``, case-insensitive)."""
        page = self.request("GET", "/dags", query={"dag_id_pattern": pattern, "limit": 100})
        return list(page.get("dags", []))

    def list_dags(self) -> list[dict]:
        dags: list[dict] = []
        offset = 0
        while True:
            page = self.request("GET", "/dags", query={"limit": 100, "offset": offset, "only_active": True})
            batch = page.get("dags", [])
            dags += batch
            offset += len(batch)
            if not batch or offset >= page.get("total_entries", 0):
                return dags

    def import_errors(self) -> list[dict]:
        """Airflow's import errors (``filename``, ``stack_trace``), paged."""
        errors: list[dict] = []
        offset = 0
        while True:
            page = self.request("GET", "/importErrors", query={"limit": PAGE, "offset": offset})
            batch = page.get("import_errors", [])
            errors += batch
            offset += len(batch)
            if not batch or offset >= page.get("total_entries", 0):
                return errors

    def list_dags_in_state(self, paused: bool) -> list[dict]:
        """The active DAGs that are paused (or unpaused), paged (``GET /dags?paused=...``)."""
        dags: list[dict] = []
        offset = 0
        while True:
            query = {"limit": PAGE, "offset": offset, "only_active": True, "paused": paused}
            page = self.request("GET", "/dags", query=query)
            batch = page.get("dags", [])
            dags += [d for d in batch if bool(d.get("is_paused")) == paused]
            offset += len(batch)
            if not batch or offset >= page.get("total_entries", 0):
                return dags

    def set_paused_many(
        self,
        dag_ids: Sequence[str],
        paused: bool,
        *,
        known: Sequence[dict] | None = None,
        missing_ok: bool = False,
        reach_paused: bool = True,
    ) -> BulkPauseResult:
        """Pause (or unpause) ``dag_ids`` in a few calls: ``PATCH /dags?dag_id_pattern=...`` with
        patterns that select, among every DAG of ``known`` (the active listing; listed here when not
        given), only DAGs of ``dag_ids`` in the other state (see :mod:`mwaa_iac.core.bulk_pause`),
        paged when a pattern selects more than a page; the rest one call each. Only DAGs in the other
        state are touched, so a run again after an interruption continues where it stopped. When
        pausing (``reach_paused``), a pattern may also select DAGs listed as paused already (pausing
        them changes nothing), never the tool's own DR DAGs: fewer patterns, as owners' paused DAGs
        no longer break up the groups.

        Then verified: a DAG outside the set that a pattern reached (the PATCH answers list them:
        created after the listing, or changed since) is set back at once (to its listed state; one
        not listed is left paused, as Airflow creates DAGs); unless every DAG of the set was shown
        in the new state by the PATCH answers (as committed), the DAGs in the other state are
        listed (``paused`` filter: one page when the change went through) and any DAG of the set
        among them is set again, one call each. A DAG not in the listing is set with its own call (an
        inactive DAG can be), and with ``missing_ok`` one that does not exist is skipped."""
        start = self.calls
        listing = list(known) if known is not None else self.list_dags()
        state = {d["dag_id"]: bool(d.get("is_paused")) for d in listing}
        wanted = list(dict.fromkeys(dag_ids))
        result = BulkPauseResult(paused=paused)
        result.missing = [d for d in wanted if d not in state]
        result.changed = [d for d in wanted if d in state and state[d] != paused]
        done = {d for d in wanted if state.get(d) == paused}  # for a failure part-way (bulk_done)
        try:
            self._run_bulk(result, state, done, missing_ok=missing_ok, reach_paused=reach_paused)
        except MwaaIacError as exc:
            exc.bulk_done = sorted(done)  # type: ignore[attr-defined]
            raise
        finally:
            result.calls = self.calls - start
        return result

    def _run_bulk(
        self,
        result: BulkPauseResult,
        state: dict[str, bool],
        done: set[str],
        *,
        missing_ok: bool,
        reach_paused: bool,
    ) -> None:
        paused = result.paused
        plan = bulk_pause.plan_for(state, result.changed, paused, reach_paused=reach_paused)
        selected = set(result.changed)
        confirmed: set[str] = set()  # DAGs of the set whose answer showed them in the new state
        for group in plan.groups:
            result.patterns.append(group.pattern)
            for dag in self._patch_pattern(group.pattern, paused):
                dag_id = dag.get("dag_id")
                if not isinstance(dag_id, str):  # Airflow lists each DAG it updated by its id
                    continue
                if dag_id in selected:
                    done.add(dag_id)
                    if dag.get("is_paused") is paused:
                        confirmed.add(dag_id)
                    continue
                before = state.get(dag_id, True)  # not listed: Airflow creates DAGs paused
                if before != paused:
                    self.set_paused(dag_id, before)
                    result.put_back.append(dag_id)
        result.singles = list(plan.singles)
        for dag_id in plan.singles:
            if self.set_paused(dag_id, paused):
                confirmed.add(dag_id)
            done.add(dag_id)
        for dag_id in result.missing:
            try:
                self.set_paused(dag_id, paused)
            except AirflowApiError as exc:
                if not (missing_ok and exc.status == 404):
                    raise
            done.add(dag_id)
        # Airflow answers a PATCH with the DAGs it updated as committed (``is_paused`` read back
        # after the update): a DAG of the set shown in the new state needs no listing to verify
        # it. A DAG not shown so (a page shifted by a DAG that appeared meanwhile, an answer
        # without the field) sends the verification to the listing, as before.
        if result.changed and not set(result.changed) <= confirmed:
            wrong = {d["dag_id"] for d in self.list_dags_in_state(not paused)}
            for dag_id in result.changed:
                if dag_id in wrong:
                    done.discard(dag_id)
                    self.set_paused(dag_id, paused)
                    result.retried.append(dag_id)
                    done.add(dag_id)

    def _patch_pattern(self, pattern: str, paused: bool) -> list[dict]:
        """``PATCH /dags?dag_id_pattern=<pattern>``, page after page (one call updates at most
        ``limit`` DAGs, Airflow's [api] maximum_page_limit): the DAGs it updated."""
        updated: list[dict] = []
        offset = 0
        while True:
            query = {"dag_id_pattern": pattern, "update_mask": "is_paused", "limit": PAGE, "offset": offset}
            page = self.request("PATCH", "/dags", body={"is_paused": paused}, query=query) or {}
            batch = page.get("dags", [])
            updated += batch
            offset += len(batch)
            if not batch or offset >= page.get("total_entries", 0):
                return updated

    def set_paused(self, dag_id: str, paused: bool) -> bool:
        """Pause or unpause one DAG; True when Airflow's answer shows it in the new state. A DAG id
        too long for InvokeRestApi's 64-character path goes through ``PATCH
        /dags?dag_id_pattern=<id>`` (the id is in the query, not the path), only when that pattern
        selects no other DAG whose state would change."""
        if len(f"/dags/{dag_id}") <= MAX_PATH:
            answer = self.request("PATCH", f"/dags/{dag_id}", body={"is_paused": paused})
            return isinstance(answer, dict) and answer.get("is_paused") is paused
        matches = self._dags_matching(dag_id)
        if not any(d["dag_id"] == dag_id for d in matches):
            raise AirflowApiError(f"DAG {dag_id} not found on {self.environment}", status=404)
        others = sorted(d["dag_id"] for d in matches if d["dag_id"] != dag_id and d["is_paused"] != paused)
        if others:
            raise AirflowApiError(
                f"cannot {'pause' if paused else 'unpause'} {dag_id} on {self.environment}: its id is "
                f"too long for InvokeRestApi's {MAX_PATH}-character path, and the id pattern that would "
                f"select it also selects {', '.join(others)}",
                hint=f"{'pause' if paused else 'unpause'} it in the Airflow UI, or give it a shorter id",
            )
        answer = self.request(
            "PATCH",
            "/dags",
            body={"is_paused": paused},
            query={"dag_id_pattern": dag_id, "update_mask": "is_paused"},
        )
        dags = answer.get("dags", []) if isinstance(answer, dict) else []
        return any(d.get("dag_id") == dag_id and d.get("is_paused") is paused for d in dags)

    # -- runs -------------------------------------------------------------------------------------

    def trigger(self, dag_id: str, run_id: str, conf: dict | None = None) -> dict:
        """Trigger a run; triggering a run id that already exists returns the existing run (so a
        resumed workflow never starts a second one)."""
        for _ in range(2):
            body: dict[str, Any] = {"dag_run_id": run_id, "conf": conf or {}}
            if self.api_v2:
                # Airflow 3 requires the field (null would make a run without a logical date);
                # Airflow 2 used the trigger time, and so does this.
                body["logical_date"] = datetime.now(UTC).isoformat()
            try:
                return self.request("POST", f"/dags/{dag_id}/dagRuns", body=body)
            except AirflowApiError as exc:
                if exc.status == 409:
                    return self.get_run(dag_id, run_id)
                if exc.status == 422 and not self.api_v2 and "logical_date" in str(exc):
                    self.api_v2 = True
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def running_runs(self, dag_id: str) -> list[dict]:
        if len(f"/dags/{dag_id}/dagRuns") > MAX_PATH:  # the batch endpoint takes the id in the body
            page = self.request(
                "POST",
                "/dags/~/dagRuns/list",
                body={"dag_ids": [dag_id], "states": ["running", "queued"], "page_limit": 100},
            )
        else:
            page = self.request("GET", f"/dags/{dag_id}/dagRuns", query={"state": "running", "limit": 100})
        return [r for r in page.get("dag_runs", []) if r.get("state") in ("running", "queued")]

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        page = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return sorted(
            t["task_id"]
            for t in page.get("task_instances", [])
            if t.get("state") in ("failed", "upstream_failed")
        )

    # -- task instances ---------------------------------------------------------------------------

    def task_instances(self, states: Sequence[str]) -> list[dict]:
        """Task instances of every DAG and run whose state is one of ``states``
        (``GET /dags/~/dagRuns/~/taskInstances``, paged with limit/offset until ``total_entries``).

        Airflow's ``state`` filter is a repeated query parameter (``state=queued&state=running``): a
        list value in QueryParameters travels so. An environment that refuses the list (400) is asked
        one state at a time. States are checked here as well, and a task instance seen twice while
        paging (states change meanwhile) is listed once."""
        wanted = tuple(states)
        if len(wanted) == 1:
            return self._task_instances({"state": wanted[0]}, wanted)
        try:
            return self._task_instances({"state": list(wanted)}, wanted)
        except AirflowApiError as exc:
            if exc.status != 400:
                raise
        found: list[dict] = []
        for state in wanted:
            found += self._task_instances({"state": state}, (state,))
        return found

    def _task_instances(self, query: dict[str, Any], states: tuple[str, ...]) -> list[dict]:
        path = "/dags/~/dagRuns/~/taskInstances"
        return self._paged(path, "task_instances", query, ti_key, lambda ti: ti.get("state") in states)

    def _paged(
        self,
        path: str,
        key: str,
        query: dict[str, Any],
        identity: Callable[[dict], Any],
        keep: Callable[[dict], bool] = lambda item: True,
    ) -> list[dict]:
        """The items of a listing that ``keep`` takes (``limit``/``offset`` until ``total_entries``);
        an item seen twice while paging (states change meanwhile) is listed once."""
        found: list[dict] = []
        seen: set[Any] = set()
        offset = 0
        while True:
            page = self.request("GET", path, query={**query, "limit": PAGE, "offset": offset})
            batch = page.get(key, [])
            for item in batch:
                if keep(item) and identity(item) not in seen:
                    seen.add(identity(item))
                    found.append(item)
            offset += len(batch)
            if not batch or offset >= page.get("total_entries", 0):
                return found

    def runs_in_states(self, states: Sequence[str]) -> list[dict]:
        """Runs of every DAG whose state is one of ``states`` (``GET /dags/~/dagRuns``, paged)."""
        wanted = tuple(states)
        return self._paged(
            "/dags/~/dagRuns",
            "dag_runs",
            {"state": list(wanted)},
            lambda run: (run.get("dag_id"), run.get("dag_run_id")),
            lambda run: run.get("state") in wanted,
        )

    def run_task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of one run (mapped ones one by one)."""
        return self._paged(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances", {}, ti_key)

    def clear_onto_latest_version(
        self, dag_id: str, run_id: str, tasks: Sequence[tuple[str, int]]
    ) -> list[dict]:
        """Airflow 3.2+: clear ``tasks`` (``(task_id, map_index)``) of one run onto the DAG's latest
        version (``POST /dags/{dag_id}/clearTaskInstances`` with ``run_on_latest_version``): each
        gets no state and the latest ``dag_version_id``; the run's state is left as it is. Returns
        the cleared task instances as Airflow answers them."""
        body = {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [[task, index] if index >= 0 else task for task, index in tasks],
            "only_failed": False,
            "only_running": False,
            "reset_dag_runs": False,
            "run_on_latest_version": True,
        }
        return self.request("POST", f"/dags/{dag_id}/clearTaskInstances", body=body).get("task_instances", [])

    # -- scheduling -------------------------------------------------------------------------------

    def latest_scheduled_run(self, dag_id: str, *, after: str | None = None) -> dict | None:
        """The scheduled run (``run_type`` scheduled) of ``dag_id`` with the latest logical date, or
        None; with ``after`` (an ISO date), only one whose logical date is later than it.

        Airflow 2's run listing has no run_type filter: runs are read newest first (``order_by
        -execution_date``) and filtered here; reading stops at the first scheduled run, or at
        ``after``. A DAG the environment does not serve (404: Airflow 3 answers so for a DAG whose
        file does not import, Airflow 2 for one it never had) has made no run there: None."""
        bound = _parse_date(after) if after else None
        offset = 0
        while True:
            try:
                page = self._runs_newest_first(dag_id, offset)
            except AirflowApiError as exc:
                if exc.status == 404:
                    return None
                raise
            batch = page.get("dag_runs", [])
            for run in batch:
                when = _parse_date(logical_date(run))
                if bound is not None and when is not None and when <= bound:
                    return None
                if run.get("run_type") == "scheduled":
                    return run
            offset += len(batch)
            if not batch or offset >= page.get("total_entries", 0):
                return None

    def _runs_newest_first(self, dag_id: str, offset: int) -> dict:
        # Airflow 2 names it execution_date, 3 logical_date
        orders: tuple[str, ...] = ("-logical_date",) if self.api_v2 else ("-execution_date", "-logical_date")
        for number, order in enumerate(orders):
            try:
                if len(f"/dags/{dag_id}/dagRuns") > MAX_PATH:  # the batch endpoint takes the id in the body
                    return self.request(
                        "POST",
                        "/dags/~/dagRuns/list",
                        body={
                            "dag_ids": [dag_id],
                            "order_by": order,
                            "page_offset": offset,
                            "page_limit": PAGE,
                        },
                    )
                return self.request(
                    "GET",
                    f"/dags/{dag_id}/dagRuns",
                    query={"order_by": order, "limit": PAGE, "offset": offset},
                )
            except AirflowApiError as exc:
                if exc.status != 400 or number == len(orders) - 1:
                    raise
                if "execution_date" in str(exc):
                    self.api_v2 = True
        raise AssertionError("unreachable")  # pragma: no cover

    def dag_details(self, dag_id: str) -> dict | None:
        """``GET /dags/{dag_id}/details`` (it has ``catchup``), or None for a DAG that does not exist
        or whose id is too long for InvokeRestApi's path."""
        path = f"/dags/{dag_id}/details"
        if len(path) > MAX_PATH:
            return None
        try:
            return self.request("GET", path)
        except AirflowApiError as exc:
            if exc.status == 404:
                return None
            raise

    def get_variable_value(self, key: str) -> str | None:
        try:
            return self.request("GET", f"/variables/{key}").get("value")
        except AirflowApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _found(self, method: str, path: str) -> bool:
        """Make the request; False when Airflow answers 404 (the object does not exist)."""
        try:
            self.request(method, path)
        except AirflowApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def has_dag(self, dag_id: str) -> bool:
        """Whether ``dag_id`` has a DAG record (active or not)."""
        return self._found("GET", f"/dags/{dag_id}")

    def set_variable(self, key: str, value: str, description: str | None = None) -> None:
        """Create or replace a variable (``POST /variables`` upserts)."""
        body: dict[str, Any] = {"key": key, "value": value}
        if description is not None:
            body["description"] = description
        self.request("POST", "/variables", body=body)

    def delete_variable(self, key: str) -> bool:
        """Delete a variable; False when it did not exist."""
        return self._found("DELETE", f"/variables/{key}")


def ti_key(ti: dict) -> tuple[Any, ...]:
    """A task instance's identity: DAG, run, task, map index."""
    return (ti.get("dag_id"), ti.get("dag_run_id"), ti.get("task_id"), ti.get("map_index", -1))


def ti_name(ti: dict[str, Any]) -> str:
    """``dag_id/run_id/task_id``, with ``[map_index]`` for a mapped task instance."""
    index = ti.get("map_index", -1)
    suffix = f"[{index}]" if isinstance(index, int) and index >= 0 else ""
    return f"{ti.get('dag_id')}/{ti.get('dag_run_id')}/{ti.get('task_id')}{suffix}"


def dag_is_active(dag: dict) -> bool:
    """Whether a DAG's file is still parsed: ``is_active`` (Airflow 2) or not ``is_stale`` (3)."""
    if "is_stale" in dag:
        return not dag["is_stale"]
    return bool(dag.get("is_active", True))


def has_schedule(details: dict) -> bool:
    """Whether ``GET /dags/{id}/details`` shows a schedule (``schedule_interval`` in Airflow 2,
    ``timetable_summary`` in 3; both null for schedule=None)."""
    for key in ("schedule_interval", "timetable_summary"):
        value = details.get(key)
        if value not in (None, "", "None"):
            return True
    return False


def logical_date(run: dict) -> str | None:
    """A run's logical date as the REST API gives it (``logical_date``; ``execution_date`` before)."""
    return run.get("logical_date") or run.get("execution_date")


def _parse_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _short(detail: Any) -> str:
    if isinstance(detail, dict):
        detail = detail.get("detail") or detail.get("title") or detail
    text = str(detail)
    return text if len(text) < 300 else text[:300] + "..."
