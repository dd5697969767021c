"""The preflight probe's outcomes as mwaa-iac reports them: success, an import error (Airflow's
importErrors text), an S3 failure (the error the probe left in its run's note)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from mwaa_iac.adapters.airflow_api import AirflowApiError
from mwaa_iac.core import dr
from mwaa_iac.workflows.dr_probe import run_probe
from mwaa_iac.workflows.dr_runs import DagRunner, ProbeError

PROBE = dr.render_probe_dag("DRFactory_2_9", "a")
CONF = dr.probe_conf("dr-bucket", "mwaa-dr", "a", "1a2b3c4d")
RUN = dr.run_id("probe", "1a2b3c4d", "x")


class _Api:
    environment = "a-blue"

    def __init__(self, *, state: str = "success", note: dict | None = None, import_error: str | None = None):
        self.state, self.note, self.import_error = state, note, import_error
        self.paused: list[tuple[str, bool]] = []

    def get_dag(self, dag_id: str) -> dict | None:
        return None if self.import_error else {"dag_id": dag_id, "description": PROBE.marker}

    def request(self, method: str, path: str, **kwargs) -> dict:
        if path == "/importErrors":
            errors = []
            if self.import_error:
                errors = [
                    {"filename": "/dags/mwaa_iac_dr/mwaa_iac_probe.py", "stack_trace": self.import_error}
                ]
            return {"import_errors": errors}
        raise AirflowApiError("unexpected", status=500)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.paused.append((dag_id, paused))

    def health(self) -> dict | None:
        return None  # the environment serves no health endpoint: waits say nothing of the scheduler

    def trigger(self, dag_id: str, run_id: str, conf=None) -> dict:
        # the run names the version of the file it wants (a lagging worker waits for it)
        assert conf == {**CONF, dr.MARKER_CONF: dr.render_probe_dag("DRFactory_2_9", "demo").marker}
        return {"state": "queued"}

    def get_run(self, dag_id: str, run_id: str) -> dict:
        return {"state": self.state, "note": json.dumps(self.note) if self.note else None}

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        return ["probe"]


def _runner(api: _Api) -> DagRunner:
    options = SimpleNamespace(dag_timeout_seconds=60, run_timeout_seconds=60, run_poll_seconds=1.0)
    return DagRunner(api, options, lambda event: None, sleep=lambda s: None)  # type: ignore[arg-type]


def test_probe_success_reports_where_mwaa_dr_came_from() -> None:
    note = {"ok": True, "mwaa_dr": "/usr/local/airflow/dags/mwaa_iac_dr/vendor/mwaa_dr", "deleted": True}
    api = _Api(note=note)
    result = run_probe(_runner(api), PROBE, RUN, CONF, role="the backup")
    assert result["vendored"] is True and result["uri"] == "s3://dr-bucket/mwaa-dr/a/probe/1a2b3c4d/probe.txt"
    assert api.paused == [(dr.PROBE_DAG_ID, False), (dr.PROBE_DAG_ID, True), (dr.PROBE_DAG_ID, True)]


def test_probe_import_error_says_what_to_fix() -> None:
    api = _Api(import_error="Traceback ...\nModuleNotFoundError: No module named 'mwaa_dr'")
    with pytest.raises(ProbeError) as caught:
        run_probe(_runner(api), PROBE, RUN, CONF, role="the backup")
    assert (
        "a-blue cannot import mwaa-dr for the backup: ModuleNotFoundError: No module named 'mwaa_dr'"
        in str(caught.value)
    )
    assert "mwaa_iac_dr/vendor/" in (caught.value.hint or "") and "nothing was changed" in (
        caught.value.hint or ""
    )
    assert all(d == dr.PROBE_DAG_ID for d, _ in api.paused)  # nothing else is paused or unpaused


def test_probe_s3_failure_carries_the_s3_error() -> None:
    error = "OSError: unable to access bucket: 'dr-bucket' (AccessDenied)"
    api = _Api(state="failed", note={"ok": False, "stage": "s3", "error": error})
    with pytest.raises(ProbeError) as caught:
        run_probe(_runner(api), PROBE, RUN, CONF, role="the cutover's backups")
    message = str(caught.value)
    assert "cannot write s3://dr-bucket/mwaa-dr/a/probe/1a2b3c4d/probe.txt" in message and error in message
    assert "s3:PutObject" in (caught.value.hint or "")
    assert api.paused[-1] == (dr.PROBE_DAG_ID, True)  # paused again after the failed run


def test_a_stale_import_error_is_waited_out_during_the_grace_period() -> None:
    api = _Api(import_error="ModuleNotFoundError: No module named 'mwaa_dr'")
    clock = iter(range(0, 1000, 10))
    options = SimpleNamespace(
        dag_timeout_seconds=600, run_timeout_seconds=60, run_poll_seconds=1.0, import_error_grace_seconds=100
    )
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:  # the environment re-parsed the file with the vendor folder present
            api.import_error = None

    runner = DagRunner(api, options, lambda e: None, sleep=sleep, clock=lambda: float(next(clock)))  # type: ignore[arg-type]
    runner.wait_for_dag(dr.PROBE_DAG_ID, PROBE.marker)
    assert len(polls) == 2
