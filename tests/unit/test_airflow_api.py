"""The REST adapter with DAG ids too long for InvokeRestApi's 64-character path (botocore's Stubber)."""

from __future__ import annotations

import re

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError
from mwaa_iac.adapters.mwaa import MwaaClient

LONG = "partner_feed_reconciliation_with_a_dag_id_longer_than_the_invoke_rest_api_path"


def _api() -> tuple[AirflowApi, Stubber]:
    client = boto3.client(
        "mwaa", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return AirflowApi(MwaaClient("us-east-1", client=client), "blue", sleep=lambda s: None), Stubber(client)


def _call(path: str, method: str, body: dict | None = None, query: dict | None = None) -> dict:
    params: dict = {"Name": "blue", "Path": path, "Method": method}
    if body is not None:
        params["Body"] = body
    if query is not None:
        params["QueryParameters"] = query
    return params


def test_a_long_dag_id_is_paused_through_its_id_pattern() -> None:
    api, stub = _api()
    listing = {"dags": [{"dag_id": LONG, "is_paused": False}], "total_entries": 1}
    stub.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": listing},
        _call("/dags", "GET", query={"dag_id_pattern": LONG, "limit": 100}),
    )
    stub.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": {"dags": [], "total_entries": 1}},
        _call("/dags", "PATCH", {"is_paused": True}, {"dag_id_pattern": LONG, "update_mask": "is_paused"}),
    )
    with stub:
        api.set_paused(LONG, True)
    stub.assert_no_pending_responses()


def test_a_pattern_that_would_change_another_dag_is_refused() -> None:
    api, stub = _api()
    listing = {
        "dags": [
            {"dag_id": LONG, "is_paused": False},
            {"dag_id": LONG + "_v2", "is_paused": False},
        ],
        "total_entries": 2,
    }
    stub.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": listing},
        _call("/dags", "GET", query={"dag_id_pattern": LONG, "limit": 100}),
    )
    with stub, pytest.raises(AirflowApiError) as caught:
        api.set_paused(LONG, True)
    assert f"also selects {LONG}_v2" in str(caught.value)
    stub.assert_no_pending_responses()  # no PATCH was sent


def test_a_long_dag_id_is_found_and_its_running_runs_listed() -> None:
    api, stub = _api()
    listing = {"dags": [{"dag_id": LONG + "_v2", "is_paused": True}], "total_entries": 1}
    stub.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": listing},
        _call("/dags", "GET", query={"dag_id_pattern": LONG, "limit": 100}),
    )
    runs = {"dag_runs": [{"dag_id": LONG, "dag_run_id": "r1", "state": "running"}], "total_entries": 1}
    stub.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": runs},
        _call(
            "/dags/~/dagRuns/list",
            "POST",
            {"dag_ids": [LONG], "states": ["running", "queued"], "page_limit": 100},
        ),
    )
    with stub:
        assert api.get_dag(LONG) is None  # only a longer one matched
        assert [r["dag_run_id"] for r in api.running_runs(LONG)] == ["r1"]
    stub.assert_no_pending_responses()


# -- set_paused_many ----------------------------------------------------------------------------------


class _Airflow:
    """InvokeRestApi over DAGs with paused flags: GET /dags (paused filter, pages), PATCH /dags/<id>
    and Airflow 2's PATCH /dags (``dag_id ILIKE '%pattern%'``, one page of ``max_page`` matches by
    id). ``on_patch`` runs before each PATCH /dags (a DAG appears, someone flips one)."""

    def __init__(self, dags: dict[str, bool], max_page: int = 100) -> None:
        self.dags = dict(dags)
        self.max_page = max_page
        self.calls: list[tuple[str, str, dict]] = []
        self.flips: list[tuple[str, bool]] = []
        self.on_patch = None
        self.ignore: set[str] = set()  # DAGs a PATCH /dags leaves as they are (a lost update)
        self.fail_single = False

    @staticmethod
    def _like(pattern: str, dag_id: str) -> bool:
        rx = "".join("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern.lower())
        return re.search(rx, dag_id.lower()) is not None

    def _flip(self, dag_id: str, paused: bool) -> None:
        if self.dags[dag_id] != paused:
            self.flips.append((dag_id, paused))
        self.dags[dag_id] = paused

    def invoke_rest_api(self, Name: str, Path: str, Method: str, QueryParameters=None, Body=None) -> dict:
        query = QueryParameters or {}
        self.calls.append((Method, Path, query))
        if Method == "GET" and Path == "/dags":
            ids = sorted(d for d, p in self.dags.items() if query.get("paused") in (None, p))
            offset, limit = query.get("offset", 0), min(query.get("limit", 100), self.max_page)
            page = [{"dag_id": d, "is_paused": self.dags[d]} for d in ids[offset : offset + limit]]
            return {"RestApiResponse": {"dags": page, "total_entries": len(ids)}}
        if Method == "PATCH" and Path == "/dags":
            if self.on_patch is not None:
                self.on_patch(self)
            ids = sorted(d for d in self.dags if self._like(query["dag_id_pattern"], d))
            offset, limit = query.get("offset", 0), min(query.get("limit", 100), self.max_page)
            page = ids[offset : offset + limit]
            for dag_id in page:
                if dag_id not in self.ignore:
                    self._flip(dag_id, Body["is_paused"])
            dags = [{"dag_id": d, "is_paused": self.dags[d]} for d in page]
            return {"RestApiResponse": {"dags": dags, "total_entries": len(ids)}}
        match = re.fullmatch(r"/dags/([^/~]+)", Path)
        assert match and Method == "PATCH", (Method, Path)
        if match.group(1) not in self.dags or self.fail_single:
            status = 500 if self.fail_single else 404
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "RestApiClientException", "Message": "x"},
                    "RestApiStatusCode": status,
                    "RestApiResponse": {"detail": "no"},
                },
                "InvokeRestApi",
            )
        self._flip(match.group(1), Body["is_paused"])
        return {"RestApiResponse": {"dag_id": match.group(1), "is_paused": Body["is_paused"]}}


def _bulk(airflow: _Airflow) -> AirflowApi:
    return AirflowApi(MwaaClient("us-east-1", client=airflow), "blue", sleep=lambda s: None)  # type: ignore[arg-type]


def _team_dags(count: int) -> dict[str, bool]:
    return {
        f"team_{t}_{kind}_{n:03d}": False
        for t in "abc"
        for kind in ("ingest", "export")
        for n in range(count)
    }


def test_many_dags_are_paused_in_pages_of_a_few_patterns_and_verified() -> None:
    dags = _team_dags(50) | {"team_a_old_report": True, "mwaa_iac_backup": False}
    airflow = _Airflow(dags)
    wanted = [d for d, p in dags.items() if not p and not d.startswith("mwaa_iac")]
    result = _bulk(airflow).set_paused_many(wanted, True)
    assert all(airflow.dags[d] for d in wanted) and airflow.dags["mwaa_iac_backup"] is False
    assert {d for d, _ in airflow.flips} == set(wanted)  # nothing else changed
    patches = [c for c in airflow.calls if c[0] == "PATCH"]
    assert result.calls == len(airflow.calls) and result.calls <= 3 + 5 + 1  # list, patches, verify
    assert len(patches) <= 5 and result.retried == [] and result.put_back == []
    assert all(c[2]["update_mask"] == "is_paused" for c in patches)


def test_an_unpause_never_selects_an_owner_paused_dag() -> None:
    dags = {d: True for d in _team_dags(30)} | {"team_a_ingest_legacy": True, "team_b_export_old": True}
    airflow = _Airflow(dags)
    wanted = [d for d in dags if "legacy" not in d and "old" not in d]
    result = _bulk(airflow).set_paused_many(wanted, False)
    assert not any(airflow.dags[d] for d in wanted)
    assert airflow.dags["team_a_ingest_legacy"] and airflow.dags["team_b_export_old"]
    assert not [d for d, paused in airflow.flips if not paused and d not in wanted]  # never, not briefly
    assert {d for d, _ in airflow.flips} == set(wanted) and len(result.patterns) <= 8


def test_a_pattern_larger_than_a_page_is_paged() -> None:
    airflow = _Airflow({f"etl_{n:03d}": False for n in range(250)} | {"mwaa_iac_probe": False}, max_page=100)
    result = _bulk(airflow).set_paused_many([f"etl_{n:03d}" for n in range(250)], True)
    assert all(airflow.dags[f"etl_{n:03d}"] for n in range(250)) and not airflow.dags["mwaa_iac_probe"]
    assert len(result.patterns) == 1
    offsets = [c[2]["offset"] for c in airflow.calls if c[0] == "PATCH"]
    assert offsets == [0, 100, 200]


def test_a_dag_created_after_the_listing_that_a_pattern_unpaused_is_paused_again() -> None:
    dags = {d: True for d in _team_dags(10)}
    airflow = _Airflow(dags)

    def appear(fake: _Airflow) -> None:
        if "team_a_ingest_new" not in fake.dags:
            fake.dags["team_a_ingest_new"] = True  # parsed meanwhile, paused at creation

    airflow.on_patch = appear
    result = _bulk(airflow).set_paused_many(list(dags), False)
    assert airflow.dags["team_a_ingest_new"] is True
    if result.put_back:
        assert result.put_back == ["team_a_ingest_new"]
        assert (
            airflow.flips[-1] == ("team_a_ingest_new", True) or ("team_a_ingest_new", True) in airflow.flips
        )
    assert not any(airflow.dags[d] for d in dags)


def test_a_dag_still_in_the_wrong_state_is_set_again_alone() -> None:
    dags = _team_dags(10)
    airflow = _Airflow(dags)
    airflow.ignore = {"team_b_export_003"}  # the bulk update missed it
    result = _bulk(airflow).set_paused_many(list(dags), True)
    assert result.retried == ["team_b_export_003"] and airflow.dags["team_b_export_003"] is True
    assert ("PATCH", "/dags/team_b_export_003", {}) in airflow.calls


def test_a_second_run_touches_only_what_is_still_in_the_wrong_state() -> None:
    dags = _team_dags(20)
    airflow = _Airflow(dags)
    for dag_id in list(dags)[:70]:
        airflow.dags[dag_id] = True  # an interrupted first run paused these
    result = _bulk(airflow).set_paused_many(list(dags), True)
    assert sorted(result.changed) == sorted(list(dags)[70:])
    assert {d for d, _ in airflow.flips} == set(list(dags)[70:])


def test_a_missing_dag_is_skipped_when_allowed_and_a_failure_says_what_was_done() -> None:
    dags = _team_dags(5)
    airflow = _Airflow(dags)
    result = _bulk(airflow).set_paused_many([*dags, "gone"], True, missing_ok=True)
    assert result.missing == ["gone"] and all(airflow.dags.values())
    with pytest.raises(AirflowApiError) as caught:
        _bulk(_Airflow(dags)).set_paused_many([*dags, "gone"], True)
    assert caught.value.status == 404 and len(caught.value.bulk_done) == len(dags)  # type: ignore[attr-defined]


def _rest_error(stub: Stubber, status: int, detail: object, expected: dict) -> None:
    stub.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiClientException",
        service_message="Airflow refused the request",
        http_status_code=400,
        response_meta={},
        modeled_fields={"RestApiStatusCode": status, "RestApiResponse": detail},
        expected_params=expected,
    )


def test_trigger_on_airflow_3_learns_that_a_logical_date_is_required_and_sends_it_from_then_on() -> None:
    """Airflow 3's /api/v2 refuses a trigger without ``logical_date`` (422); the adapter sends it
    again with the trigger time, and the next trigger sends it at once (one extra call in all)."""
    api, stub = _api()
    missing = {"detail": [{"type": "missing", "loc": ["body", "logical_date"], "msg": "Field required"}]}
    _rest_error(stub, 422, missing, _call("/dags/etl/dagRuns", "POST", {"dag_run_id": "r1", "conf": {}}))
    sent: list[dict] = []
    for run_id in ("r1", "r2"):
        stub.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 200, "RestApiResponse": {"dag_run_id": run_id, "state": "queued"}},
        )
    with stub:
        stub.client.meta.events.register(
            "provide-client-params.mwaa.InvokeRestApi", lambda params, **kw: sent.append(params["Body"])
        )
        assert api.trigger("etl", "r1")["dag_run_id"] == "r1"
        assert api.trigger("etl", "r2")["dag_run_id"] == "r2"
    stub.assert_no_pending_responses()
    assert api.api_v2 is True
    assert [sorted(b) for b in sent] == [
        ["conf", "dag_run_id"],
        *[["conf", "dag_run_id", "logical_date"]] * 2,
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT.*\+00:00", b["logical_date"]) for b in sent[1:])


def test_trigger_on_airflow_2_sends_no_logical_date_and_other_errors_are_not_retried() -> None:
    api, stub = _api()
    stub.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": {"dag_run_id": "r1", "state": "queued"}},
        _call("/dags/etl/dagRuns", "POST", {"dag_run_id": "r1", "conf": {}}),
    )
    _rest_error(
        stub,
        422,
        {"detail": "conf must be a dict"},
        _call("/dags/etl/dagRuns", "POST", {"dag_run_id": "r2", "conf": {}}),
    )
    with stub:
        api.trigger("etl", "r1")
        with pytest.raises(AirflowApiError) as caught:
            api.trigger("etl", "r2")
    assert caught.value.status == 422 and api.api_v2 is None
    stub.assert_no_pending_responses()


def test_dag_activity_and_schedule_read_from_either_api_version() -> None:
    from mwaa_iac.adapters.airflow_api import dag_is_active, has_schedule

    assert dag_is_active({"is_active": True}) and not dag_is_active({"is_active": False})
    assert dag_is_active({"is_stale": False}) and not dag_is_active({"is_stale": True})
    assert has_schedule({"schedule_interval": {"__type": "CronExpression", "value": "@daily"}})
    assert has_schedule({"timetable_summary": "@daily", "schedule_interval": None})
    assert not has_schedule({"schedule_interval": None}) and not has_schedule({"timetable_summary": None})


def test_latest_scheduled_run_of_a_dag_the_environment_does_not_serve_is_none() -> None:
    """Airflow 3 answers 404 for the runs of a DAG whose file does not import there (Airflow 2 lists
    them): a rollback then sees no run of it on that colour instead of failing."""
    api, stub = _api()
    gone = {"detail": "The Dag with ID: `busy_dataset_consumer` was not found"}
    query = {"order_by": "-execution_date", "limit": 100, "offset": 0}
    _rest_error(stub, 404, gone, _call("/dags/busy_dataset_consumer/dagRuns", "GET", query=query))
    with stub:
        assert api.latest_scheduled_run("busy_dataset_consumer") is None
    stub.assert_no_pending_responses()
