"""Input validation: one test per rule, each asserting AWS's error code, message and HTTP status.

botocore validates some inputs itself (required members, types, minimum lengths) before sending;
those tests turn its client-side validation off so the emulator's own answer is checked.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from mwaa_iac.local.emulator import validation
from tests.local.fakes import EmulatorHandle, create_params

pytestmark = pytest.mark.local

PREFIX = "1 validation error detected: "
TAG_PATTERN = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory):
    handle = EmulatorHandle(tmp_path_factory.mktemp("validation"))
    handle.client().create_environment(**create_params("existing"))
    handle.wait_idle()
    yield handle
    handle.stop()


def rejected(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as excinfo:
        call(**params)
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def create_rejected(
    emu: EmulatorHandle, *, client_checks: bool = True, **overrides: Any
) -> tuple[str, str, int]:
    client = emu.client() if client_checks else emu.client(parameter_validation=False)
    params = create_params("candidate", **overrides)
    params = {k: v for k, v in params.items() if v is not None}
    return rejected(client.create_environment, **params)


def violation(value: str, path: str, constraint: str) -> str:
    return f"{PREFIX}Value {value} at '{path}' failed to satisfy constraint: {constraint}"


def raw(emu: EmulatorHandle, method: str, path: str, body: bytes) -> tuple[int, str, dict[str, Any]]:
    request = urllib.request.Request(emu.url + path, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, "", json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["x-amzn-ErrorType"], json.loads(exc.read())


# ---------------------------------------------------------------------- required members and types


def test_missing_execution_role_arn(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, client_checks=False, ExecutionRoleArn=None) == (
        "ValidationException",
        violation("null", "executionRoleArn", "Member must not be null"),
        400,
    )


def test_missing_nested_required_member(emu: EmulatorHandle) -> None:
    code, message, status = create_rejected(
        emu, client_checks=False, LoggingConfiguration={"TaskLogs": {"Enabled": True}}
    )
    assert (code, status) == ("ValidationException", 400)
    assert message == violation("null", "loggingConfiguration.taskLogs.logLevel", "Member must not be null")


def test_missing_subnets(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, NetworkConfiguration={"SecurityGroupIds": ["sg-1"]}) == (
        "ValidationException",
        violation("null", "networkConfiguration.subnetIds", "Member must not be null"),
        400,
    )


def test_wrong_type_is_reported(emu: EmulatorHandle) -> None:
    body = json.dumps({**create_params("typed"), "MaxWorkers": "ten"}).encode()
    assert raw(emu, "PUT", "/environments/typed", body) == (
        400,
        "ValidationException",
        {"message": violation("'ten'", "maxWorkers", "Member must be of type integer")},
    )


def test_boolean_must_be_boolean(emu: EmulatorHandle) -> None:
    body = json.dumps(
        {
            **create_params("typed"),
            "LoggingConfiguration": {"TaskLogs": {"Enabled": "yes", "LogLevel": "INFO"}},
        }
    ).encode()
    status, code, answer = raw(emu, "PUT", "/environments/typed", body)
    assert (status, code) == (400, "ValidationException")
    assert answer["message"] == violation(
        "'yes'", "loggingConfiguration.taskLogs.enabled", "Member must be of type boolean"
    )


def test_unknown_member_is_rejected(emu: EmulatorHandle) -> None:
    body = json.dumps({**create_params("typed"), "Colour": "red"}).encode()
    status, code, answer = raw(emu, "PUT", "/environments/typed", body)
    assert (status, code) == (400, "ValidationException")
    assert answer["message"].startswith(
        f"{PREFIX}Unknown parameter at 'colour': must be one of: Name, ExecutionRoleArn"
    )


def test_body_must_be_json(emu: EmulatorHandle) -> None:
    assert raw(emu, "PUT", "/environments/typed", b"{not json") == (
        400,
        "ValidationException",
        {"message": "Could not parse the request body as JSON"},
    )


def test_querystring_integer_must_be_an_integer(emu: EmulatorHandle) -> None:
    request = urllib.request.Request(emu.url + "/environments?MaxResults=abc")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 400
    assert json.loads(excinfo.value.read())["message"] == violation(
        "'abc'", "MaxResults", "Member must be of type integer"
    )


def test_several_violations_are_counted(emu: EmulatorHandle) -> None:
    code, message, status = create_rejected(emu, Name="1st", DagS3Path="dags", Schedulers=9)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("2 validation errors detected: ")
    assert "at 'name'" in message and "at 'schedulers'" in message


# ---------------------------------------------------------------------- names and patterns


@pytest.mark.parametrize("name", ["1-starts-with-a-digit", "has.dot", "has space"])
def test_environment_name_pattern(emu: EmulatorHandle, name: str) -> None:
    value = f"'{name}'"
    assert create_rejected(emu, Name=name) == (
        "ValidationException",
        violation(value, "name", "Member must satisfy regular expression pattern: [a-zA-Z][0-9a-zA-Z-_]*"),
        400,
    )


def test_environment_name_length(emu: EmulatorHandle) -> None:
    name = "a" * 81
    assert create_rejected(emu, Name=name) == (
        "ValidationException",
        violation(f"'{name}'", "name", "Member must have length less than or equal to 80"),
        400,
    )


def test_execution_role_arn_pattern(emu: EmulatorHandle) -> None:
    code, message, status = create_rejected(emu, ExecutionRoleArn="arn:aws:iam::12:role/short-account")
    assert (code, status) == ("ValidationException", 400)
    assert message == violation(
        "'arn:aws:iam::12:role/short-account'",
        "executionRoleArn",
        "Member must satisfy regular expression pattern: "
        r"arn:aws(-[a-z]+)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+",
    )


def test_source_bucket_arn_pattern(emu: EmulatorHandle) -> None:
    code, message, status = create_rejected(emu, SourceBucketArn="arn:aws:s3:::Upper_Case")
    assert (code, status) == ("ValidationException", 400)
    assert message == violation(
        "'arn:aws:s3:::Upper_Case'",
        "sourceBucketArn",
        r"Member must satisfy regular expression pattern: arn:aws(-[a-z]+)?:s3:::[a-z0-9.\-]+",
    )


def test_maintenance_window_must_be_on_the_half_hour(emu: EmulatorHandle) -> None:
    code, message, status = create_rejected(emu, WeeklyMaintenanceWindowStart="MON:03:15")
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith(violation("'MON:03:15'", "weeklyMaintenanceWindowStart", ""))


def test_airflow_version_pattern(emu: EmulatorHandle) -> None:
    code, message, status = create_rejected(emu, AirflowVersion="2.10.3-rc1")
    assert (code, status) == ("ValidationException", 400)
    assert message == violation(
        "'2.10.3-rc1'", "airflowVersion", "Member must satisfy regular expression pattern: [0-9a-z.]+"
    )


def test_kms_key_pattern(emu: EmulatorHandle) -> None:
    code, message, status = create_rejected(emu, KmsKey="not-a-key")
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith(
        violation("'not-a-key'", "kmsKey", "Member must satisfy regular expression pattern: ")
    )


# ---------------------------------------------------------------------- enums, ranges, sizes


def test_bad_environment_class(emu: EmulatorHandle) -> None:
    # EnvironmentClass is a free string in the model; MWAA checks it against its classes.
    assert create_rejected(emu, EnvironmentClass="mw2.large") == (
        "ValidationException",
        "Invalid EnvironmentClass mw2.large. Valid values: mw1.micro, mw1.small, mw1.medium, mw1.large, "
        "mw1.xlarge, mw1.2xlarge",
        400,
    )


def test_bad_webserver_access_mode_enum(emu: EmulatorHandle) -> None:
    import botocore.session

    # The allowed set comes from the installed botocore's model (it grew PUBLIC_AND_PRIVATE).
    allowed = botocore.session.get_session().get_service_model("mwaa").shape_for("WebserverAccessMode").enum
    assert create_rejected(emu, WebserverAccessMode="OPEN") == (
        "ValidationException",
        violation(
            "'OPEN'", "webserverAccessMode", f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        ),
        400,
    )


def test_three_subnets(emu: EmulatorHandle) -> None:
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
    assert create_rejected(
        emu, NetworkConfiguration={"SubnetIds": subnets, "SecurityGroupIds": ["sg-1"]}
    ) == (
        "ValidationException",
        violation(
            "'[subnet-a, subnet-b, subnet-c]'",
            "networkConfiguration.subnetIds",
            "Member must have length less than or equal to 2",
        ),
        400,
    )


def test_one_subnet(emu: EmulatorHandle) -> None:
    network = {"SubnetIds": ["subnet-a"], "SecurityGroupIds": ["sg-1"]}
    assert create_rejected(emu, client_checks=False, NetworkConfiguration=network) == (
        "ValidationException",
        violation(
            "'[subnet-a]'",
            "networkConfiguration.subnetIds",
            "Member must have length greater than or equal to 2",
        ),
        400,
    )


def test_subnet_id_pattern(emu: EmulatorHandle) -> None:
    network = {"SubnetIds": ["subnet-a", "vpc-b"], "SecurityGroupIds": ["sg-1"]}
    assert create_rejected(emu, NetworkConfiguration=network) == (
        "ValidationException",
        violation(
            "'vpc-b'",
            "networkConfiguration.subnetIds.2.member",
            r"Member must satisfy regular expression pattern: subnet-[a-zA-Z0-9\-._]+",
        ),
        400,
    )


def test_too_many_security_groups(emu: EmulatorHandle) -> None:
    network = {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": [f"sg-{i}" for i in range(6)]}
    code, message, status = create_rejected(emu, NetworkConfiguration=network)
    assert (code, status) == ("ValidationException", 400)
    assert message.endswith(
        "at 'networkConfiguration.securityGroupIds' failed to satisfy constraint: Member must have "
        "length less than or equal to 5"
    )


def test_schedulers_above_the_model_maximum(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, Schedulers=6) == (
        "ValidationException",
        violation("'6'", "schedulers", "Member must have value less than or equal to 5"),
        400,
    )


def test_schedulers_below_two_for_a_small_class(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, Schedulers=1) == (
        "ValidationException",
        "Schedulers must be between 2 and 5 for environment class mw1.small, got 1",
        400,
    )


def test_micro_class_takes_one_scheduler(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, EnvironmentClass="mw1.micro", Schedulers=2) == (
        "ValidationException",
        "Schedulers must be 1 for environment class mw1.micro, got 2",
        400,
    )


def test_min_workers_above_max_workers(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, MinWorkers=5, MaxWorkers=3) == (
        "ValidationException",
        "MinWorkers (5) must not be greater than MaxWorkers (3)",
        400,
    )


def test_max_workers_above_twenty_five(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, MaxWorkers=26) == (
        "ValidationException",
        "MaxWorkers must be at most 25, got 26",
        400,
    )


def test_web_servers_for_a_small_class(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, MinWebservers=1) == (
        "ValidationException",
        "MinWebservers must be between 2 and 5 for environment class mw1.small, got 1",
        400,
    )


def test_update_is_checked_against_the_merged_configuration(emu: EmulatorHandle) -> None:
    client = emu.client()
    assert rejected(client.update_environment, Name="existing", EnvironmentClass="mw1.micro") == (
        "ValidationException",
        "Schedulers must be 1 for environment class mw1.micro, got 2",
        400,
    )


def test_list_max_results_range(emu: EmulatorHandle) -> None:
    client = emu.client()
    assert rejected(client.list_environments, MaxResults=26) == (
        "ValidationException",
        violation("'26'", "maxResults", "Member must have value less than or equal to 25"),
        400,
    )


def test_unknown_airflow_version(emu: EmulatorHandle) -> None:
    code, message, status = create_rejected(emu, AirflowVersion="9.9.9")
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith(
        "Airflow version 9.9.9 is not supported. Supported versions: 2.7.2, 2.8.1, 2.9.2"
    )


def test_end_of_support_airflow_version(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, AirflowVersion="2.4.3") == (
        "ValidationException",
        "Airflow version 2.4.3 reached end of support on 2025-12-30 and is no longer available for new "
        "environments",
        400,
    )


# ---------------------------------------------------------------------- maps (tags, Airflow options)


def test_tag_key_pattern(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, Tags={"bad#key": "v"}) == (
        "ValidationException",
        violation(
            "'bad#key'",
            "tags",
            "Map keys must satisfy constraint: "
            f"[Member must satisfy regular expression pattern: {TAG_PATTERN}]",
        ),
        400,
    )


def test_tag_value_length(emu: EmulatorHandle) -> None:
    value = "v" * 257
    assert create_rejected(emu, Tags={"k": value}) == (
        "ValidationException",
        violation(f"'{value}'", "tags.k", "Member must have length less than or equal to 256"),
        400,
    )


def test_unicode_letters_and_spaces_satisfy_the_tag_pattern(emu: EmulatorHandle) -> None:
    client = emu.client()
    arn = client.create_environment(**create_params("unicode", Tags={"équipe": "données 1", "团队": "数据"}))[
        "Arn"
    ]
    emu.wait_idle()
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"équipe": "données 1", "团队": "数据"}


def test_airflow_configuration_key_pattern_hides_the_sensitive_map(emu: EmulatorHandle) -> None:
    assert create_rejected(emu, AirflowConfigurationOptions={"Core.Parallelism": "4"}) == (
        "ValidationException",
        violation(
            "'***'",
            "airflowConfigurationOptions",
            "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
            "[a-z]+([a-z0-9._]*[a-z0-9_]+)?]",
        ),
        400,
    )


def test_untag_with_too_many_keys(emu: EmulatorHandle) -> None:
    client = emu.client()
    arn = "arn:aws:airflow:us-east-1:123456789012:environment/existing"
    code, message, status = rejected(
        client.untag_resource, ResourceArn=arn, tagKeys=[f"k{i}" for i in range(51)]
    )
    assert (code, status) == ("ValidationException", 400)
    assert message.endswith(
        "at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50"
    )


def test_resource_arn_pattern(emu: EmulatorHandle) -> None:
    client = emu.client()
    code, message, status = rejected(client.list_tags_for_resource, ResourceArn="arn:aws:s3:::bucket")
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith(
        violation("'arn:aws:s3:::bucket'", "resourceArn", "Member must satisfy regular expression")
    )


# ---------------------------------------------------------------------- InvokeRestApi


def test_invoke_path_of_65_characters(emu: EmulatorHandle) -> None:
    path = "/dags/" + "d" * 59
    assert len(path) == 65
    client = emu.client()
    assert rejected(client.invoke_rest_api, Name="existing", Path=path, Method="GET") == (
        "ValidationException",
        violation(f"'{path}'", "path", "Member must have length less than or equal to 64"),
        400,
    )


def test_invoke_path_of_64_characters_is_accepted(emu: EmulatorHandle) -> None:
    path = "/dags/" + "d" * 58
    client = emu.client()
    assert (
        rejected(client.invoke_rest_api, Name="existing", Path=path, Method="GET")[0]
        == "RestApiClientException"
    )


def test_invoke_method_enum(emu: EmulatorHandle) -> None:
    client = emu.client()
    assert rejected(client.invoke_rest_api, Name="existing", Path="/dags", Method="HEAD") == (
        "ValidationException",
        violation("'HEAD'", "method", "Member must satisfy enum value set: [GET, PUT, POST, PATCH, DELETE]"),
        400,
    )


def test_invoke_empty_path(emu: EmulatorHandle) -> None:
    client = emu.client(parameter_validation=False)
    assert rejected(client.invoke_rest_api, Name="existing", Path="", Method="GET") == (
        "ValidationException",
        violation("''", "path", "Member must have length greater than or equal to 1"),
        400,
    )


# ---------------------------------------------------------------------- Java patterns without `regex`


def test_property_classes_translate_for_the_standard_re_module() -> None:
    compiled = re.compile(validation.translate_java_pattern(TAG_PATTERN))
    assert compiled.fullmatch("équipe données 1 团队_.:/=+-@")
    assert compiled.fullmatch("٣")  # Arabic-Indic digit: \p{N}
    assert not compiled.fullmatch("bad#key")
    assert not compiled.fullmatch("tab\tseparated")  # a tab is a control character, not \p{Z}


def test_negated_property_class_outside_brackets() -> None:
    compiled = re.compile(validation.translate_java_pattern(r"\P{L}+"))
    assert compiled.fullmatch("123 !")
    assert not compiled.fullmatch("abc")


# Code points unassigned in this Python's Unicode database are left out: the `regex` module may ship a
# newer Unicode version.
ASSIGNED = st.characters(blacklist_categories=("Cn", "Cs"))


@settings(max_examples=200, deadline=None)
@given(st.text(ASSIGNED, max_size=12))
def test_translation_agrees_with_the_regex_module(text: str) -> None:
    regex = pytest.importorskip("regex")
    translated = re.compile(validation.translate_java_pattern(TAG_PATTERN))
    assert bool(translated.fullmatch(text)) == bool(regex.fullmatch(TAG_PATTERN, text))


def test_a_pattern_that_cannot_compile_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    assert validation.compile_pattern("(unclosed") is None
    assert "does not compile" in caplog.text


def test_record_of_rejected_create_is_not_kept(emu: EmulatorHandle, tmp_path: Path) -> None:
    names = emu.client().list_environments()["Environments"]
    assert "candidate" not in names and "typed" not in names
