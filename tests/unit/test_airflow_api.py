"""The REST adapter with DAG ids too long for InvokeRestApi's 64-character path (botocore's Stubber)."""

from __future__ import annotations

import boto3
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
