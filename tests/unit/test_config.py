from __future__ import annotations

import contextlib

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwaa_iac.core.config import Color, Deployment, parse_config, parse_config_text
from mwaa_iac.errors import ConfigError
from mwaa_iac.workspace import load_config, write_deployment
from tests.conftest import EXAMPLE_CONFIG


def _data(example_text: str) -> dict:
    return yaml.safe_load(example_text)


def _problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "envs/x/mwaa.yaml")
    return [str(p) for p in info.value.problems]


def test_example_config_loads(example_text: str) -> None:
    config = parse_config_text(example_text, "example")
    assert config.environment_name(Color.BLUE) == "analytics-blue"
    assert config.active_color is Color.BLUE
    assert config.active_version == "2.9.2"


def test_unknown_key_names_file_key_and_allowed_keys(example_text: str) -> None:
    data = _data(example_text)
    data["network"]["subnets"] = ["subnet-1"]
    (problem,) = _problems(data)
    assert problem.startswith("envs/x/mwaa.yaml: network.subnets: unknown key under network")
    assert "allowed keys: security_group_ids, subnet_ids" in problem


def test_bad_version_string(example_text: str) -> None:
    data = _data(example_text)
    data["airflow_version"] = "2.10"
    (problem,) = _problems(data)
    assert "airflow_version" in problem and "MAJOR.MINOR.PATCH" in problem


def test_unknown_environment_class_lists_allowed(example_text: str) -> None:
    data = _data(example_text)
    data["environment_class"] = "mw1.huge"
    (problem,) = _problems(data)
    assert "environment_class" in problem and "mw1.micro" in problem and "mw1.2xlarge" in problem


def test_wrong_subnet_count(example_text: str) -> None:
    data = _data(example_text)
    data["network"]["subnet_ids"] = ["subnet-01", "subnet-02", "subnet-03"]
    (problem,) = _problems(data)
    assert "network.subnet_ids" in problem and "exactly 2 subnets" in problem and "got 3" in problem


def test_bad_color(example_text: str) -> None:
    data = _data(example_text)
    data["deployment"]["active_color"] = "purple"
    (problem,) = _problems(data)
    assert "deployment.active_color" in problem and "'blue'" in problem and "'green'" in problem


def test_every_problem_reported_at_once(example_text: str) -> None:
    data = _data(example_text)
    data["environment_class"] = "big"
    data["airflow_version"] = "two"
    data["bogus"] = 1
    del data["region"]
    keys = {p.split(": ")[1] for p in _problems(data)}
    assert keys == {"environment_class", "airflow_version", "bogus", "region"}


def test_name_too_long_for_green_suffix(example_text: str) -> None:
    data = _data(example_text)
    data["name"] = "a" * 75
    (problem,) = _problems(data)
    assert "name" in problem and "80-character" in problem


def test_micro_class_limits(example_text: str) -> None:
    data = _data(example_text)
    data["environment_class"] = "mw1.micro"
    (problem,) = _problems(data)
    assert "schedulers must be 1-1" in problem


def test_yaml_syntax_error_has_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text("name: [unclosed\nregion: x\n", "f.yaml")
    assert "f.yaml: line" in str(info.value) and "not valid YAML" in str(info.value)


def test_missing_file_is_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read" in str(info.value)


def test_write_deployment_keeps_comments_and_round_trips(tmp_path, example_text: str) -> None:
    path = tmp_path / "mwaa.yaml"
    path.write_text(example_text)
    write_deployment(path, Deployment(active_color=Color.GREEN, blue="2.9.2", green="2.10.3"))
    text = path.read_text()
    assert "# A GitOps pull request changes" in text
    config = load_config(path)
    assert config.active_color is Color.GREEN and config.active_version == "2.10.3"
    assert text.count("deployment:") == 1


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_gives_config_or_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config_text(text, "fuzz.yaml")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    key=st.sampled_from(
        [
            "name",
            "region",
            "airflow_version",
            "network",
            "source",
            "dr",
            "routing",
            "deployment",
            "schedulers",
            "tags",
            "logging",
            "strategy",
            "x",
        ]
    ),
    value=_values,
)
def test_mutated_example_gives_config_or_config_error(key: str, value: object) -> None:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data[key] = value
    try:
        parse_config(data, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems and all(p.file == "fuzz.yaml" for p in exc.problems)
