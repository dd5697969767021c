"""Airflow's REST API through MWAA's InvokeRestApi (botocore >= 1.35.47).

Paths are relative to /api/v1 (Airflow 2) or /api/v2 (Airflow 3): MWAA maps them. MWAA limits the
path to 64 characters, the response to 6 MB and the rate to about 10 requests per second; Airflow's
4xx/5xx come back as RestApiClientException / RestApiServerException with the status and body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from mwaa_iac.adapters.mwaa import MwaaApiError, MwaaClient, translate
from mwaa_iac.errors import MwaaIacError

MAX_PATH = 64


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
            except botocore.exceptions.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in ("RestApiClientException", "RestApiServerException"):
                    status = exc.response.get("RestApiStatusCode")
                    detail = exc.response.get("RestApiResponse") or exc.response.get("Error", {}).get(
                        "Message"
                    )
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
            except botocore.exceptions.BotoCoreError as exc:
                error = translate(exc, "InvokeRestApi", self.environment)
                if error.retryable and attempt < self.retries:
                    self.sleep(delay)
                    delay = min(delay * 2, 15)
                    continue
                raise error from exc
        raise MwaaApiError(
            "InvokeRestApi: retries exhausted", code="Retries", retryable=False
        )  # pragma: no cover

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

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause one DAG. A DAG id too long for InvokeRestApi's 64-character path goes
        through ``PATCH /dags?dag_id_pattern=<id>`` (the id is in the query, not the path), only when
        that pattern selects no other DAG whose state would change."""
        if len(f"/dags/{dag_id}") <= MAX_PATH:
            self.request("PATCH", f"/dags/{dag_id}", body={"is_paused": paused})
            return
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
        self.request(
            "PATCH",
            "/dags",
            body={"is_paused": paused},
            query={"dag_id_pattern": dag_id, "update_mask": "is_paused"},
        )

    # -- runs -------------------------------------------------------------------------------------

    def trigger(self, dag_id: str, run_id: str, conf: dict | None = None) -> dict:
        """Trigger a run; triggering a run id that already exists returns the existing run (so a
        resumed workflow never starts a second one)."""
        try:
            return self.request(
                "POST", f"/dags/{dag_id}/dagRuns", body={"dag_run_id": run_id, "conf": conf or {}}
            )
        except AirflowApiError as exc:
            if exc.status == 409:
                return self.get_run(dag_id, run_id)
            raise

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

    def get_variable_value(self, key: str) -> str | None:
        try:
            return self.request("GET", f"/variables/{key}").get("value")
        except AirflowApiError as exc:
            if exc.status == 404:
                return None
            raise


def _short(detail: Any) -> str:
    if isinstance(detail, dict):
        detail = detail.get("detail") or detail.get("title") or detail
    text = str(detail)
    return text if len(text) < 300 else text[:300] + "..."
