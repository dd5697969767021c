"""The local runtime's Airflow families: one record per major, looked up by the version's major; a
major without one is refused by name, never run as if it were the newest known."""

from __future__ import annotations

from pathlib import Path

import pytest

from mwaa_iac.local.runtime.airflow import CODE_UNSUPPORTED, AirflowRuntime, _check_version
from mwaa_iac.local.runtime.base import EnvSpec, RuntimeFailure
from mwaa_iac.local.runtime.families import (
    ALL_COMPONENTS,
    DEFAULT_AIRFLOW_CONFIG,
    FAMILIES,
    UnsupportedAirflowVersion,
    Wiring,
    config_env_vars,
    family_of,
    migrate_command,
)


@pytest.mark.parametrize(("version", "major"), [("2.4.3", 2), ("2.10.3", 2), ("3.0.6", 3), ("3.3.1", 3)])
def test_a_version_finds_the_family_of_its_major(version: str, major: int) -> None:
    assert family_of(version) is FAMILIES[major]


@pytest.mark.parametrize("version", ["4.0.0", "1.10.15", "10.2.0"])
def test_an_unknown_major_is_refused_by_name(version: str) -> None:
    major = version.split(".")[0]
    with pytest.raises(UnsupportedAirflowVersion, match=rf"major version {major}\b.*2\.x and 3\.x"):
        family_of(version)


def test_not_a_version_is_refused() -> None:
    with pytest.raises(UnsupportedAirflowVersion, match="not an Apache Airflow version"):
        family_of("latest")


def test_the_runtime_refuses_airflow_4_with_its_code(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match=r"Airflow 4\.0\.0 is of major version 4") as caught:
        _check_version("4.0.0")
    assert caught.value.code == CODE_UNSUPPORTED
    runtime = AirflowRuntime(tmp_path, {}, sync_interval=0)
    spec = EnvSpec(name="blue", airflow_version="4.0.0", source_bucket="b", dag_s3_path="dags")
    with pytest.raises(RuntimeFailure) as created:
        runtime.create(spec)  # refused before anything is built or started
    assert created.value.code == CODE_UNSUPPORTED
    assert not (tmp_path / "envs").exists()


def test_the_families_differ_where_airflow_does() -> None:
    two, three = family_of("2.10.3"), family_of("3.0.6")
    assert two.component_names == ("scheduler", "webserver", "triggerer")
    assert three.component_names == ("scheduler", "api-server", "dag-processor", "triggerer")
    assert (two.api_prefix, two.auth, two.token_path) == ("/api/v1", "basic", None)
    assert (three.api_prefix, three.auth, three.token_path) == ("/api/v2", "jwt", "/auth/token")
    assert (two.admin, three.admin) == ("users-create", "password-file")
    assert not two.scheduler_runs_tasks and three.scheduler_runs_tasks
    assert set(ALL_COMPONENTS) == {"scheduler", "webserver", "api-server", "dag-processor", "triggerer"}


def test_moved_settings_get_the_new_names_on_airflow_3() -> None:
    options = {"scheduler.dag_dir_list_interval": "10", "core.parallelism": "8"}
    assert family_of("2.9.2").options(options) == options
    assert family_of("3.0.6").options(options) == {
        "dag_processor.refresh_interval": "10",
        "core.parallelism": "8",
    }
    three = family_of("3.3.1").defaults()
    assert three["dag_processor.min_file_process_interval"] == "30"
    assert "scheduler.min_file_process_interval" not in three
    assert three["api.workers"] == "1"
    assert family_of("2.10.3").defaults() == DEFAULT_AIRFLOW_CONFIG


def test_each_family_wires_its_own_server(tmp_path: Path) -> None:
    wiring = Wiring(home=tmp_path, port=8081, admin_user="admin", secret_key="k")
    two = config_env_vars(family_of("2.9.2").wiring(wiring))
    assert two["AIRFLOW__WEBSERVER__WEB_SERVER_PORT"] == "8081"
    assert two["AIRFLOW__API__AUTH_BACKENDS"].startswith("airflow.api.auth.backend.basic_auth")
    three = config_env_vars(family_of("3.0.6").wiring(wiring))
    assert three["AIRFLOW__API__PORT"] == "8081"
    assert three["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8081/execution/"
    assert three["AIRFLOW__API_AUTH__JWT_SECRET"] == "k"
    assert not any(key.startswith("AIRFLOW__WEBSERVER__") for key in three)


def test_commands_come_from_the_family(tmp_path: Path) -> None:
    airflow = ["python", "-m", "airflow"]
    server2 = family_of("2.9.2").component("webserver").command(airflow, "2.9.2", 8081)
    assert server2 == [*airflow, "webserver", "--port", "8081", "--hostname", "127.0.0.1", "--workers", "1"]
    server3 = family_of("3.0.6").component("api-server").command(airflow, "3.0.6", 8081)
    assert server3 == [*airflow, "api-server", "--port", "8081", "--host", "127.0.0.1", "--workers", "1"]
    assert migrate_command("2.6.3") == ["db", "upgrade"]
    assert migrate_command("2.7.2") == migrate_command("3.3.1") == ["db", "migrate"]
    with pytest.raises(KeyError, match=r"Airflow 3\.x runs no webserver"):
        family_of("3.0.6").component("webserver")
