"""MWAA emulator conformance: plain boto3 against the emulator's HTTP server, with a fake runtime.

These tests check the control plane (routes, shapes, statuses, errors, faults, persistence); the
real-Airflow runtime has its own tests.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError

from mwaa_iac.local.emulator.client import EmulatorAdmin, EmulatorAdminError
from mwaa_iac.local.emulator.models import TRANSITIONS, Status, TransitionError
from mwaa_iac.local.emulator.routes import build_routes, find_route, load_service_model
from tests.local.fakes import EmulatorHandle, create_params

pytestmark = pytest.mark.local

ARN_PREFIX = "arn:aws:airflow:us-east-1:123456789012:environment/"


@pytest.fixture
def emu(tmp_path: Path):
    handle = EmulatorHandle(tmp_path)
    yield handle
    handle.stop()
    assert handle.runtime.violations == []


@pytest.fixture
def admin(emu: EmulatorHandle) -> EmulatorAdmin:
    return EmulatorAdmin(emu.url)


def create(emu: EmulatorHandle, name: str = "blue", wait: bool = True, **overrides: Any) -> str:
    arn = emu.client().create_environment(**create_params(name, **overrides))["Arn"]
    if wait:
        emu.wait_idle()
    return arn


def error_of(error: pytest.ExceptionInfo[ClientError] | ClientError) -> tuple[str, str, int]:
    """(code, message, HTTP status) of a botocore error."""
    response = (error.value if isinstance(error, pytest.ExceptionInfo) else error).response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def raw(emu: EmulatorHandle, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    request = urllib.request.Request(emu.url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


# ---------------------------------------------------------------------- routes and wire format


def test_every_model_operation_has_a_route_derived_from_the_model() -> None:
    model = load_service_model()
    routes = {route.operation: route for route in build_routes()}
    assert set(routes) == set(model.operation_names)
    for name, route in routes.items():
        http = model.operation_model(name).http
        assert (route.method, route.uri) == (http["method"], http["requestUri"])


def test_route_keeps_an_encoded_arn_as_one_label() -> None:
    route, labels = find_route(
        "GET", "/tags/arn%3Aaws%3Aairflow%3Aus-east-1%3A123456789012%3Aenvironment%2Fblue"
    )
    assert route is not None and route.operation == "ListTagsForResource"
    assert labels == {"ResourceArn": ARN_PREFIX + "blue"}


def test_unknown_path_is_unknown_operation(emu: EmulatorHandle) -> None:
    status, headers, body = raw(emu, "GET", "/nothing/here")
    assert status == 404
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert "No MWAA operation answers GET /nothing/here" in body["message"]


def test_timestamps_are_epoch_seconds_on_the_wire(emu: EmulatorHandle) -> None:
    create(emu)
    status, _, body = raw(emu, "GET", "/environments/blue")
    assert status == 200
    assert isinstance(body["Environment"]["CreatedAt"], int | float)
    assert isinstance(body["Environment"]["LastUpdate"]["CreatedAt"], int | float)


# ---------------------------------------------------------------------- create / get / list / delete


def test_create_returns_arn_and_get_echoes_request_with_mwaa_defaults(emu: EmulatorHandle) -> None:
    arn = create(emu, Tags={"team": "data"}, AirflowConfigurationOptions={"core.load_examples": "False"})
    assert arn == ARN_PREFIX + "blue"
    env = emu.environment("blue")
    assert env["Status"] == "AVAILABLE"
    assert env["Arn"] == arn
    assert env["Name"] == "blue"
    assert isinstance(env["CreatedAt"], datetime)
    assert env["WebserverUrl"].startswith("127.0.0.1:")
    assert env["ExecutionRoleArn"] == "arn:aws:iam::123456789012:role/mwaa-execution"
    assert env["SourceBucketArn"] == "arn:aws:s3:::mwaa-dags-bucket"
    assert env["DagS3Path"] == "dags"
    assert env["NetworkConfiguration"] == {
        "SubnetIds": ["subnet-aaa", "subnet-bbb"],
        "SecurityGroupIds": ["sg-123"],
    }
    assert env["AirflowVersion"] == "2.9.2"
    assert env["AirflowConfigurationOptions"] == {"core.load_examples": "False"}
    assert env["Tags"] == {"team": "data"}
    assert (env["EnvironmentClass"], env["Schedulers"], env["MinWorkers"], env["MaxWorkers"]) == (
        "mw1.small",
        2,
        1,
        10,
    )
    assert (env["MinWebservers"], env["MaxWebservers"]) == (2, 2)
    assert (env["WebserverAccessMode"], env["EndpointManagement"]) == ("PRIVATE_ONLY", "SERVICE")
    assert env["ServiceRoleArn"].endswith(
        ":role/aws-service-role/airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA"
    )
    assert set(env["LoggingConfiguration"]) == {
        "DagProcessingLogs",
        "SchedulerLogs",
        "TaskLogs",
        "WebserverLogs",
        "WorkerLogs",
    }
    assert env["LastUpdate"]["Status"] == "SUCCESS"
    spec = emu.runtime.envs["blue"].spec
    assert (spec.airflow_version, spec.source_bucket, spec.dag_s3_path) == (
        "2.9.2",
        "mwaa-dags-bucket",
        "dags",
    )
    assert spec.airflow_configuration_options == {"core.load_examples": "False"}


def test_enabled_logging_gets_a_log_group_arn(emu: EmulatorHandle) -> None:
    create(emu, LoggingConfiguration={"TaskLogs": {"Enabled": True, "LogLevel": "WARNING"}})
    logging_config = emu.environment("blue")["LoggingConfiguration"]
    assert logging_config["TaskLogs"] == {
        "Enabled": True,
        "LogLevel": "WARNING",
        "CloudWatchLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:airflow-blue-Task",
    }
    assert logging_config["WorkerLogs"] == {"Enabled": False, "LogLevel": "INFO"}


def test_micro_class_defaults_to_one_scheduler_and_web_server(emu: EmulatorHandle) -> None:
    create(emu, EnvironmentClass="mw1.micro")
    env = emu.environment("blue")
    assert (env["Schedulers"], env["MinWebservers"], env["MaxWebservers"]) == (1, 1, 1)


def test_create_passes_through_creating_to_available(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    admin.stretch(0.3)
    create(emu, wait=False)
    assert emu.poll_statuses("blue", {"AVAILABLE"}) == ["CREATING", "AVAILABLE"]
    assert emu.backend.history("blue") == ["CREATING", "AVAILABLE"]


def test_get_unknown_environment_is_resource_not_found(emu: EmulatorHandle) -> None:
    client = emu.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.get_environment(Name="missing")
    assert error_of(excinfo) == ("ResourceNotFoundException", "Environment named missing not found", 404)


def test_duplicate_name_is_rejected(emu: EmulatorHandle) -> None:
    create(emu)
    client = emu.client()
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.create_environment(**create_params("blue"))
    assert error_of(excinfo) == ("ValidationException", "An environment named blue already exists", 400)


def test_delete_passes_through_deleting_then_is_gone(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    create(emu)
    admin.stretch(0.3)
    client = emu.client()
    assert client.delete_environment(Name="blue")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert emu.environment("blue")["Status"] == "DELETING"
    emu.wait_idle()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.get_environment(Name="blue")
    assert error_of(excinfo)[2] == 404
    assert client.list_environments()["Environments"] == []
    assert [c[0] for c in emu.runtime.calls] == ["create", "delete"]
    assert not (
        emu.state_dir / "emulator" / "environments" / "123456789012" / "us-east-1" / "blue.json"
    ).exists()


def test_delete_unknown_environment_is_resource_not_found(emu: EmulatorHandle) -> None:
    client = emu.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.delete_environment(Name="missing")
    assert error_of(excinfo) == ("ResourceNotFoundException", "Environment named missing not found", 404)


def test_delete_is_refused_while_updating(emu: EmulatorHandle) -> None:
    create(emu)
    gate = emu.runtime.block("update", "blue")
    client = emu.client()
    client.update_environment(Name="blue", MaxWorkers=4)
    try:
        with pytest.raises(client.exceptions.ValidationException) as excinfo:
            client.delete_environment(Name="blue")
        code, message, status = error_of(excinfo)
        assert (code, status) == ("ValidationException", 400)
        assert (
            message
            == "Environment blue is in status UPDATING and cannot be deleted until the operation in progress "
            "finishes"
        )
    finally:
        gate.set()
        emu.wait_idle()


def test_regions_and_accounts_are_separate(emu: EmulatorHandle) -> None:
    create(emu)
    west = emu.client("us-west-2")
    assert west.list_environments()["Environments"] == []
    with pytest.raises(west.exceptions.ResourceNotFoundException):
        west.get_environment(Name="blue")
    with pytest.raises(west.exceptions.ValidationException) as excinfo:
        west.create_environment(**create_params("blue"))
    assert "unique across accounts and regions" in error_of(excinfo)[1]
    arn = west.create_environment(**create_params("west"))["Arn"]
    assert arn == "arn:aws:airflow:us-west-2:123456789012:environment/west"


# ---------------------------------------------------------------------- failures and faults


def test_injected_create_failure_ends_create_failed_with_error(
    emu: EmulatorHandle, admin: EmulatorAdmin
) -> None:
    admin.fail_next_create("blue", "no capacity")
    create(emu)
    env = emu.environment("blue")
    assert env["Status"] == "CREATE_FAILED"
    assert env["LastUpdate"]["Status"] == "FAILED"
    assert env["LastUpdate"]["Error"] == {"ErrorCode": "InjectedFault", "ErrorMessage": "no capacity"}
    assert "WebserverUrl" not in env
    emu.client().delete_environment(Name="blue")
    emu.wait_idle()
    assert emu.client().list_environments()["Environments"] == []


def test_runtime_create_failure_ends_create_failed(emu: EmulatorHandle) -> None:
    emu.runtime.fail_next("create", "blue", "pip could not install requirements", code="RequirementsFailed")
    create(emu)
    env = emu.environment("blue")
    assert env["Status"] == "CREATE_FAILED"
    assert env["LastUpdate"]["Error"] == {
        "ErrorCode": "RequirementsFailed",
        "ErrorMessage": "pip could not install requirements",
    }


def test_version_upgrade_goes_through_snapshot(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    create(emu)
    admin.stretch(0.25)
    emu.client().update_environment(Name="blue", AirflowVersion="2.10.3")
    seen = emu.poll_statuses("blue", {"AVAILABLE", "UPDATE_FAILED"})
    assert seen == ["UPDATING", "CREATING_SNAPSHOT", "UPDATING", "AVAILABLE"]
    assert emu.backend.history("blue")[-4:] == ["UPDATING", "CREATING_SNAPSHOT", "UPDATING", "AVAILABLE"]
    env = emu.environment("blue")
    assert env["AirflowVersion"] == "2.10.3"
    assert env["LastUpdate"]["Status"] == "SUCCESS"
    update = emu.runtime.calls_of("update")[-1][2]
    assert (update["old_version"], update["new_version"], update["fail"]) == ("2.9.2", "2.10.3", None)


def test_configuration_update_skips_the_snapshot(emu: EmulatorHandle) -> None:
    create(emu)
    emu.client().update_environment(
        Name="blue",
        MaxWorkers=4,
        AirflowConfigurationOptions={"core.parallelism": "8"},
        NetworkConfiguration={"SecurityGroupIds": ["sg-999"]},
    )
    emu.wait_idle()
    env = emu.environment("blue")
    assert emu.backend.history("blue") == ["CREATING", "AVAILABLE", "UPDATING", "AVAILABLE"]
    assert (env["MaxWorkers"], env["AirflowConfigurationOptions"]) == (4, {"core.parallelism": "8"})
    assert env["NetworkConfiguration"] == {
        "SubnetIds": ["subnet-aaa", "subnet-bbb"],
        "SecurityGroupIds": ["sg-999"],
    }


def test_failed_update_rolls_back_to_update_failed(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    create(emu)
    admin.fail_next_update("blue", "migration failed")
    admin.stretch(0.2)
    emu.client().update_environment(Name="blue", AirflowVersion="2.10.3")
    seen = emu.poll_statuses("blue", {"UPDATE_FAILED", "UNAVAILABLE", "AVAILABLE"})
    assert seen == ["UPDATING", "CREATING_SNAPSHOT", "UPDATING", "ROLLING_BACK", "UPDATE_FAILED"]
    env = emu.environment("blue")
    assert env["AirflowVersion"] == "2.9.2"  # the old configuration is serving again
    assert env["LastUpdate"]["Status"] == "FAILED"
    assert env["LastUpdate"]["Error"] == {"ErrorCode": "InjectedFault", "ErrorMessage": "migration failed"}
    assert emu.runtime.calls_of("update")[-1][2]["fail"] == "migration failed"
    answer = emu.client().invoke_rest_api(Name="blue", Path="/version", Method="GET")
    assert answer["RestApiResponse"]["version"] == "2.9.2"
    # UPDATE_FAILED can be updated again
    emu.client().update_environment(Name="blue", AirflowVersion="2.10.3")
    emu.wait_idle()
    assert emu.environment("blue")["Status"] == "AVAILABLE"


def test_failed_rollback_leaves_the_environment_unavailable(
    emu: EmulatorHandle, admin: EmulatorAdmin
) -> None:
    create(emu)
    admin.fail_rollback("blue", "restore of the snapshot failed")
    emu.client().update_environment(Name="blue", AirflowVersion="2.10.3")
    emu.wait_idle()
    env = emu.environment("blue")
    assert env["Status"] == "UNAVAILABLE"
    assert emu.backend.history("blue")[-2:] == ["ROLLING_BACK", "UNAVAILABLE"]
    assert env["LastUpdate"]["Error"]["ErrorMessage"] == "restore of the snapshot failed"
    assert emu.runtime.calls_of("update")[-1][2]["fail_rollback"] is True
    client = emu.client()
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.update_environment(Name="blue", MaxWorkers=3)
    assert error_of(excinfo) == (
        "ValidationException",
        "Environment blue is in status UNAVAILABLE; it can only be updated when it is AVAILABLE or "
        "UPDATE_FAILED",
        400,
    )
    client.delete_environment(Name="blue")
    emu.wait_idle()
    assert client.list_environments()["Environments"] == []


def test_update_is_refused_while_updating(emu: EmulatorHandle) -> None:
    create(emu)
    gate = emu.runtime.block("update", "blue")
    client = emu.client()
    client.update_environment(Name="blue", MaxWorkers=4)
    try:
        with pytest.raises(client.exceptions.ValidationException) as excinfo:
            client.update_environment(Name="blue", MaxWorkers=5)
        assert error_of(excinfo) == (
            "ValidationException",
            "Environment blue is in status UPDATING; it can only be updated when it is AVAILABLE or "
            "UPDATE_FAILED",
            400,
        )
    finally:
        gate.set()
        emu.wait_idle()


def test_update_unknown_environment_is_resource_not_found(emu: EmulatorHandle) -> None:
    client = emu.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.update_environment(Name="missing", MaxWorkers=3)
    assert error_of(excinfo)[0::2] == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (
            "2.9.2",
            "3.0.6",
            "Environment blue cannot be updated from Airflow 2.9.2 to 3.0.6: an in-place upgrade from 2.x "
            "to 3.x must start from the latest 2.11.x (2.11.2)",
        ),
        (
            "2.9.2",
            "2.6.3",
            "Environment blue cannot be updated from Airflow 2.9.2 to 2.6.3: Airflow 2.6.3 reached "
            "end of support on 2025-12-30",
        ),
        ("2.9.2", "2.99.0", "Airflow version 2.99.0 is not supported. Supported versions: "),
    ],
)
def test_version_changes_follow_the_catalog(
    emu: EmulatorHandle, source: str, target: str, message: str
) -> None:
    create(emu, AirflowVersion=source)
    client = emu.client()
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.update_environment(Name="blue", AirflowVersion=target)
    code, text, status = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert text.startswith(message)
    assert emu.environment("blue")["Status"] == "AVAILABLE"


def test_major_upgrade_from_latest_2_11_is_allowed(emu: EmulatorHandle) -> None:
    create(emu, AirflowVersion="2.11.2")
    emu.client().update_environment(Name="blue", AirflowVersion="3.0.6")
    emu.wait_idle()
    assert emu.environment("blue")["AirflowVersion"] == "3.0.6"


def test_create_only_members_are_refused_by_update(emu: EmulatorHandle) -> None:
    create(emu)
    for body, named in (
        ({"KmsKey": "alias/other"}, "KmsKey"),
        ({"NetworkConfiguration": {"SubnetIds": ["subnet-x", "subnet-y"]}}, "NetworkConfiguration.SubnetIds"),
        ({"EndpointManagement": "CUSTOMER"}, "EndpointManagement"),
    ):
        status, headers, answer = raw(emu, "PATCH", "/environments/blue", body)
        assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationException")
        assert answer["message"] == (
            f"{named} can only be set when the environment is created; UpdateEnvironment cannot change it"
        )


def test_fault_endpoint_rejects_bad_requests(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    with pytest.raises(EmulatorAdminError, match="unknown fault 'explode'"):
        admin.inject("explode", environment="blue")
    with pytest.raises(EmulatorAdminError, match="needs an environment name"):
        admin.inject("fail_update")
    with pytest.raises(EmulatorAdminError, match="unknown fields colour"):
        admin._call("POST", "faults", {"fault": "throttle", "environment": "blue", "colour": "red"})
    with pytest.raises(EmulatorAdminError, match="no environment named ghost"):
        admin.kill_scheduler("ghost")


def test_faults_can_be_listed_and_cleared(admin: EmulatorAdmin) -> None:
    admin.fail_next_update("blue", "x")
    admin.throttle("blue", 3)
    admin.stretch(1.5, environment="green")
    faults = admin.faults()
    assert faults["fail_update"] == [{"environment": "blue", "message": "x", "fail_rollback": False}]
    assert faults["throttle"] == [{"environment": "blue", "count": 3}]
    assert faults["stretch"] == {"seconds": 0.0, "environments": {"green": 1.5}}
    cleared = admin.clear_faults("blue")
    assert cleared["fail_update"] == [] and cleared["throttle"] == []
    assert admin.clear_faults()["stretch"]["environments"] == {}


def test_kill_scheduler_fault_reaches_the_runtime(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    create(emu)
    assert emu.runtime.scheduler_alive("blue")
    admin.kill_scheduler("blue")
    assert not emu.runtime.scheduler_alive("blue")
    answer = emu.client().invoke_rest_api(Name="blue", Path="/health", Method="GET")
    assert answer["RestApiResponse"]["scheduler"]["status"] == "unhealthy"


def test_sync_endpoint_syncs_serving_environments(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    create(emu)
    create(emu, "green")
    assert admin.sync() == {"synced": ["blue", "green"], "errors": {}}
    assert admin.sync("blue") == {"synced": ["blue"], "errors": {}}
    assert [c[1] for c in emu.runtime.calls_of("sync")] == ["blue", "green", "blue"]


def test_undeclared_transitions_are_refused(emu: EmulatorHandle) -> None:
    create(emu)
    env = emu.backend._by_name("blue")
    assert env is not None
    with pytest.raises(TransitionError, match="AVAILABLE → CREATING_SNAPSHOT"):
        emu.backend._transition(env, Status.CREATING_SNAPSHOT)
    assert Status.ROLLING_BACK in TRANSITIONS[Status.UPDATING]
    assert TRANSITIONS[Status.DELETED] == frozenset()


# ---------------------------------------------------------------------- pagination and tags


def test_list_environments_paginates(emu: EmulatorHandle) -> None:
    names = [f"env{i}" for i in range(7)]
    for name in names:
        create(emu, name, wait=False)
    emu.wait_idle()
    client = emu.client()
    first = client.list_environments(MaxResults=3)
    assert first["Environments"] == names[:3]
    second = client.list_environments(MaxResults=3, NextToken=first["NextToken"])
    assert second["Environments"] == names[3:6]
    third = client.list_environments(MaxResults=3, NextToken=second["NextToken"])
    assert third["Environments"] == names[6:]
    assert "NextToken" not in third
    pages = client.get_paginator("list_environments").paginate(PaginationConfig={"PageSize": 2})
    assert [name for page in pages for name in page["Environments"]] == names
    assert client.list_environments()["Environments"] == names


def test_list_environments_rejects_a_forged_token(emu: EmulatorHandle) -> None:
    client = emu.client()
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.list_environments(NextToken="not-a-token")
    assert error_of(excinfo) == ("ValidationException", "Invalid NextToken: not-a-token", 400)


def test_tags_round_trip(emu: EmulatorHandle) -> None:
    arn = create(emu, Tags={"team": "data", "env": "dev"})
    client = emu.client()
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "data", "env": "dev"}
    client.tag_resource(ResourceArn=arn, Tags={"env": "prod", "cost": "42"})
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {
        "team": "data",
        "env": "prod",
        "cost": "42",
    }
    client.untag_resource(ResourceArn=arn, tagKeys=["team", "cost", "absent"])
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"env": "prod"}
    assert emu.environment("blue")["Tags"] == {"env": "prod"}


def test_tagging_an_unknown_resource_is_resource_not_found(emu: EmulatorHandle) -> None:
    client = emu.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.tag_resource(ResourceArn=ARN_PREFIX + "ghost", Tags={"a": "b"})
    assert error_of(excinfo) == ("ResourceNotFoundException", f"Resource {ARN_PREFIX}ghost not found", 404)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_tags_for_resource(ResourceArn=ARN_PREFIX + "ghost")


def test_reserved_tag_prefix_is_rejected(emu: EmulatorHandle) -> None:
    arn = create(emu)
    client = emu.client()
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.tag_resource(ResourceArn=arn, Tags={"aws:owner": "me"})
    assert error_of(excinfo) == (
        "ValidationException",
        "Tag keys starting with 'aws:' are reserved for AWS use: aws:owner",
        400,
    )


def test_more_than_fifty_tags_in_total_are_rejected(emu: EmulatorHandle) -> None:
    arn = create(emu, Tags={f"k{i}": "v" for i in range(30)})
    client = emu.client()
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.tag_resource(ResourceArn=arn, Tags={f"n{i}": "v" for i in range(21)})
    assert error_of(excinfo) == (
        "ValidationException",
        "An environment can have at most 50 tags; this request would give it 51",
        400,
    )


# ---------------------------------------------------------------------- InvokeRestApi


def test_invoke_rest_api_triggers_and_reads_a_dag_run(emu: EmulatorHandle) -> None:
    create(emu)
    client = emu.client()
    unpaused = client.invoke_rest_api(
        Name="blue", Path="/dags/example_dag", Method="PATCH", Body={"is_paused": False}
    )
    assert unpaused["RestApiStatusCode"] == 200 and unpaused["RestApiResponse"]["is_paused"] is False
    triggered = client.invoke_rest_api(
        Name="blue",
        Path="/dags/example_dag/dagRuns",
        Method="POST",
        Body={"dag_run_id": "r1", "conf": {"x": 1}},
    )
    assert triggered["RestApiResponse"]["state"] == "queued"
    state = client.invoke_rest_api(Name="blue", Path="/dags/example_dag/dagRuns/r1", Method="GET")
    assert (state["RestApiStatusCode"], state["RestApiResponse"]["state"]) == (200, "success")
    listed = client.invoke_rest_api(
        Name="blue", Path="/dags", Method="GET", QueryParameters={"limit": 10, "only_active": True}
    )
    assert listed["RestApiResponse"]["total_entries"] == 1
    assert emu.runtime.calls_of("invoke")[-1][2]["query"] == {"limit": "10", "only_active": "true"}


def test_invoke_rest_api_relays_a_text_body(emu: EmulatorHandle) -> None:
    create(emu)
    answer = emu.client().invoke_rest_api(Name="blue", Path="/fake/text", Method="GET")
    assert answer["RestApiResponse"] == "plain text answer"


def test_airflow_4xx_is_rest_api_client_exception(emu: EmulatorHandle) -> None:
    create(emu)
    client = emu.client()
    with pytest.raises(client.exceptions.RestApiClientException) as excinfo:
        client.invoke_rest_api(Name="blue", Path="/dags/nope", Method="GET")
    code, message, status = error_of(excinfo)
    assert (code, status) == ("RestApiClientException", 400)
    assert message == "Apache Airflow REST API returned HTTP 404"
    assert excinfo.value.response["RestApiStatusCode"] == 404
    assert excinfo.value.response["RestApiResponse"]["title"] == "DAG not found"
    with pytest.raises(client.exceptions.RestApiClientException) as excinfo:
        client.invoke_rest_api(
            Name="blue", Path="/dags/example_dag/dagRuns", Method="POST", Body={"dag_run_id": "a"}
        )
        client.invoke_rest_api(
            Name="blue", Path="/dags/example_dag/dagRuns", Method="POST", Body={"dag_run_id": "a"}
        )
    assert excinfo.value.response["RestApiStatusCode"] == 409


def test_airflow_5xx_is_rest_api_server_exception(emu: EmulatorHandle) -> None:
    create(emu)
    client = emu.client()
    with pytest.raises(client.exceptions.RestApiServerException) as excinfo:
        client.invoke_rest_api(Name="blue", Path="/fake/status/503", Method="GET")
    assert error_of(excinfo) == ("RestApiServerException", "Apache Airflow REST API returned HTTP 503", 400)
    assert excinfo.value.response["RestApiStatusCode"] == 503
    assert excinfo.value.response["RestApiResponse"]["title"] == "Fake status 503"


def test_unreachable_airflow_is_rest_api_server_exception(emu: EmulatorHandle) -> None:
    create(emu)
    emu.runtime.envs.pop("blue")  # the runtime lost the environment's web server
    client = emu.client()
    with pytest.raises(client.exceptions.RestApiServerException) as excinfo:
        client.invoke_rest_api(Name="blue", Path="/dags", Method="GET")
    assert excinfo.value.response["RestApiStatusCode"] == 503
    assert excinfo.value.response["RestApiResponse"]["detail"] == "blue is not running"


def test_a_runtime_bug_is_an_internal_server_exception(emu: EmulatorHandle) -> None:
    create(emu)
    client = emu.client()
    with pytest.raises(client.exceptions.InternalServerException) as excinfo:
        client.invoke_rest_api(Name="blue", Path="/boom", Method="GET")
    assert error_of(excinfo) == ("InternalServerException", "An internal error has occurred", 500)


def test_slow_airflow_times_out(tmp_path: Path) -> None:
    emu = EmulatorHandle(tmp_path, invoke_timeout=0.3)
    try:
        create(emu)
        client = emu.client()
        with pytest.raises(client.exceptions.RestApiServerException) as excinfo:
            client.invoke_rest_api(
                Name="blue", Path="/fake/slow", Method="GET", QueryParameters={"seconds": "1"}
            )
        assert excinfo.value.response["RestApiStatusCode"] == 504
    finally:
        emu.stop()


def test_responses_over_six_megabytes_are_refused(emu: EmulatorHandle) -> None:
    create(emu)
    client = emu.client()
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.invoke_rest_api(
            Name="blue", Path="/fake/large", Method="GET", QueryParameters={"bytes": 7_000_000}
        )
    code, message, status = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert "over the 6 MB limit of InvokeRestApi" in message
    small = client.invoke_rest_api(
        Name="blue", Path="/fake/large", Method="GET", QueryParameters={"bytes": 1000}
    )
    assert len(small["RestApiResponse"]["blob"]) == 1000


def test_invoke_needs_an_available_environment(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    admin.stretch(0.5)
    create(emu, wait=False)
    client = emu.client()
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.invoke_rest_api(Name="blue", Path="/dags", Method="GET")
    assert error_of(excinfo) == (
        "ValidationException",
        "Environment blue is in status CREATING; the Apache Airflow REST API is reachable only when it is "
        "AVAILABLE",
        400,
    )
    emu.wait_idle()
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke_rest_api(Name="missing", Path="/dags", Method="GET")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_invoke_rest_api_is_throttled_at_ten_per_second(tmp_path: Path) -> None:
    clock = FakeClock()
    emu = EmulatorHandle(tmp_path, clock=clock)
    try:
        create(emu)
        client = emu.client()

        def burst(calls: int) -> list[str]:
            outcomes = []
            for _ in range(calls):
                try:
                    client.invoke_rest_api(Name="blue", Path="/dags", Method="GET")
                    outcomes.append("ok")
                except ClientError as exc:
                    assert error_of(exc) == ("ThrottlingException", "Rate exceeded", 400)
                    outcomes.append("throttled")
            return outcomes

        assert burst(15) == ["ok"] * 10 + ["throttled"] * 5
        clock.now += 0.5  # half a second refills five tokens
        assert burst(6) == ["ok"] * 5 + ["throttled"]
        clock.now += 10  # the bucket holds at most ten
        assert burst(11).count("ok") == 10
    finally:
        emu.stop()


def test_throttling_is_per_environment(tmp_path: Path) -> None:
    emu = EmulatorHandle(tmp_path, clock=FakeClock())
    try:
        create(emu)
        create(emu, "green")
        client = emu.client()
        for _ in range(10):
            client.invoke_rest_api(Name="blue", Path="/dags", Method="GET")
        with pytest.raises(ClientError):
            client.invoke_rest_api(Name="blue", Path="/dags", Method="GET")
        assert client.invoke_rest_api(Name="green", Path="/dags", Method="GET")["RestApiStatusCode"] == 200
    finally:
        emu.stop()


def test_throttle_fault_refuses_the_next_calls(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    create(emu)
    admin.throttle("blue", 2)
    client = emu.client()
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            client.invoke_rest_api(Name="blue", Path="/dags", Method="GET")
        assert error_of(excinfo) == ("ThrottlingException", "Rate exceeded", 400)
    assert client.invoke_rest_api(Name="blue", Path="/dags", Method="GET")["RestApiStatusCode"] == 200


def test_botocore_retries_throttling_by_default(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    create(emu)
    admin.throttle("blue", 1)
    client = emu.client(retries={"mode": "standard", "max_attempts": 3})
    answer = client.invoke_rest_api(Name="blue", Path="/dags", Method="GET")
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1


# ---------------------------------------------------------------------- tokens


def test_cli_and_web_login_tokens(emu: EmulatorHandle) -> None:
    create(emu)
    client = emu.client()
    cli = client.create_cli_token(Name="blue")
    web = client.create_web_login_token(Name="blue")
    host = emu.environment("blue")["WebserverUrl"]
    assert cli["WebServerHostname"] == host and len(cli["CliToken"]) > 20
    assert web["WebServerHostname"] == host and len(web["WebToken"]) > 20
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.create_cli_token(Name="missing")


# ---------------------------------------------------------------------- persistence


def test_environments_survive_a_restart(emu: EmulatorHandle) -> None:
    arn = create(emu, Tags={"team": "data"})
    emu.client().update_environment(Name="blue", MaxWorkers=3)
    emu.wait_idle()
    record = emu.state_dir / "emulator" / "environments" / "123456789012" / "us-east-1" / "blue.json"
    assert json.loads(record.read_text())["status"] == "AVAILABLE"
    restarted = emu.restart()
    try:
        restarted.wait_idle()
        env = restarted.environment("blue")
        assert (env["Arn"], env["Status"], env["MaxWorkers"], env["Tags"]) == (
            arn,
            "AVAILABLE",
            3,
            {"team": "data"},
        )
        assert [c[0] for c in restarted.runtime.calls] == ["resume"]
        answer = restarted.client().invoke_rest_api(Name="blue", Path="/dags", Method="GET")
        assert answer["RestApiStatusCode"] == 200
    finally:
        restarted.stop()


def test_an_update_interrupted_by_a_crash_leaves_the_environment_unavailable(emu: EmulatorHandle) -> None:
    create(emu)
    gate = emu.runtime.block("update", "blue")
    emu.client().update_environment(Name="blue", AirflowVersion="2.10.3")
    time.sleep(0.1)
    emu.crash()
    gate.set()
    restarted = EmulatorHandle(emu.state_dir)
    try:
        restarted.wait_idle()
        env = restarted.environment("blue")
        assert env["Status"] == "UNAVAILABLE"
        assert env["AirflowVersion"] == "2.9.2"
        assert env["LastUpdate"]["Status"] == "FAILED"
        assert env["LastUpdate"]["Error"]["ErrorCode"] == "EMULATOR_RESTARTED"
        assert restarted.runtime.calls == []
    finally:
        restarted.stop()


def test_a_create_interrupted_by_a_crash_ends_create_failed(emu: EmulatorHandle) -> None:
    gate = emu.runtime.block("create", "blue")
    create(emu, wait=False)
    time.sleep(0.1)
    emu.crash()
    gate.set()
    restarted = EmulatorHandle(emu.state_dir)
    try:
        env = restarted.environment("blue")
        assert env["Status"] == "CREATE_FAILED"
        assert env["LastUpdate"]["Error"]["ErrorCode"] == "EMULATOR_RESTARTED"
    finally:
        restarted.stop()


def test_a_delete_interrupted_by_a_crash_is_finished_after_restart(emu: EmulatorHandle) -> None:
    create(emu)
    gate = emu.runtime.block("delete", "blue")
    emu.client().delete_environment(Name="blue")
    time.sleep(0.1)
    emu.crash()
    gate.set()
    restarted = EmulatorHandle(emu.state_dir)
    try:
        restarted.wait_idle()
        assert restarted.client().list_environments()["Environments"] == []
        assert [c[0] for c in restarted.runtime.calls] == ["delete"]
    finally:
        restarted.stop()


def test_an_environment_that_cannot_resume_becomes_unavailable(emu: EmulatorHandle) -> None:
    create(emu)
    emu.stop()

    def prepare(runtime: Any) -> None:
        runtime.fail_next("resume", "blue", "database is gone", code="ResumeFailed")

    restarted = EmulatorHandle(emu.state_dir, prepare=prepare)
    try:
        restarted.wait_idle()
        env = restarted.environment("blue")
        assert env["Status"] == "UNAVAILABLE"
        assert env["LastUpdate"]["Error"] == {
            "ErrorCode": "EMULATOR_RESTARTED",
            "ErrorMessage": "could not resume the environment: database is gone",
        }
    finally:
        restarted.stop()


# ---------------------------------------------------------------------- metrics


def test_heartbeat_is_published_only_for_live_schedulers(emu: EmulatorHandle, admin: EmulatorAdmin) -> None:
    from mwaa_iac.local.emulator.background import HeartbeatPublisher

    create(emu)
    create(emu, "green")
    sent: list[dict[str, Any]] = []

    class Recorder:
        def put_metric_data(self, **kwargs: Any) -> None:
            sent.append(kwargs)

    publisher = HeartbeatPublisher(
        emu.backend, "http://unused", client_factory=lambda account, region: Recorder()
    )
    assert publisher.publish_once() == ["blue", "green"]
    admin.kill_scheduler("green")
    assert publisher.publish_once() == ["blue"]
    datum = sent[-1]["MetricData"][0]
    assert sent[-1]["Namespace"] == "AmazonMWAA"
    assert (datum["MetricName"], datum["Value"]) == ("SchedulerHeartbeat", 1.0)
    assert datum["Dimensions"] == [
        {"Name": "Environment", "Value": "blue"},
        {"Name": "Function", "Value": "Scheduler"},
    ]


def test_heartbeat_reaches_moto_cloudwatch(emu: EmulatorHandle) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from mwaa_iac.local.emulator.background import HeartbeatPublisher

    create(emu)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        HeartbeatPublisher(emu.backend, endpoint).publish_once()
        cloudwatch = boto3.client(
            "cloudwatch",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        metrics = cloudwatch.list_metrics(Namespace="AmazonMWAA", MetricName="SchedulerHeartbeat")["Metrics"]
        assert len(metrics) == 1
        assert sorted((d["Name"], d["Value"]) for d in metrics[0]["Dimensions"]) == [
            ("Environment", "blue"),
            ("Function", "Scheduler"),
        ]
    finally:
        server.stop()


# ---------------------------------------------------------------------- boto3 through environment variables


@pytest.mark.skipif(
    tuple(int(p) for p in botocore.__version__.split(".")[:3]) < (1, 37, 5),
    reason="AWS_DISABLE_HOST_PREFIX_INJECTION needs botocore >= 1.37.5",
)
def test_unmodified_boto3_reaches_the_emulator_through_environment_variables(
    emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", emu.url)
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.session.Session().client("mwaa")
    client.create_environment(**create_params("plain"))
    emu.wait_idle()
    assert client.get_environment(Name="plain")["Environment"]["Status"] == "AVAILABLE"
    assert client.invoke_rest_api(Name="plain", Path="/dags", Method="GET")["RestApiStatusCode"] == 200
