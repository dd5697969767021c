from __future__ import annotations

import json

import pytest

from mwaa_iac.core.config import Color, Deployment, parse_config_text
from mwaa_iac.core.phase_layout import PHASE_NAMES, layout_for, parse_phase
from mwaa_iac.core.tfvars import TemplateError, render_tfvars
from mwaa_iac.errors import UsageError


@pytest.fixture
def config(example_text: str):
    return parse_config_text(example_text.replace('airflow_version: "2.9.2"', 'airflow_version: "2.10.3"'))


def _render(config, phase: str, **kwargs) -> dict:
    return json.loads(render_tfvars(config, layout_for(config, parse_phase(phase, config), **kwargs)))


def test_steady_keeps_active_at_deployed_version(config) -> None:
    data = _render(config, "steady")
    assert data["active_color"] == "blue"
    assert data["blue"] == {
        "enabled": True,
        "airflow_version": "2.9.2",
        "requirements_s3_path": "requirements/requirements.txt",
    }
    assert data["green"]["enabled"] is False


def test_steady_with_hop_version_is_an_in_place_upgrade(config) -> None:
    data = _render(config, "steady", version="2.10.1")
    assert data["blue"]["airflow_version"] == "2.10.1" and data["green"]["enabled"] is False


def test_clone_green_is_at_blue_version(config) -> None:
    data = _render(config, "clone-green")
    assert data["green"] == {**data["blue"], "enabled": True}
    assert data["green"]["airflow_version"] == "2.9.2" and data["active_color"] == "blue"


def test_upgrade_green_moves_to_desired_version(config) -> None:
    data = _render(config, "upgrade-green", requirements={Color.GREEN: "requirements/green.txt"})
    assert data["green"]["airflow_version"] == "2.10.3" and data["blue"]["airflow_version"] == "2.9.2"
    assert data["green"]["requirements_s3_path"] == "requirements/green.txt"
    assert data["active_color"] == "blue"


def test_flip_and_retire(config) -> None:
    flip = _render(config, "flip")
    assert flip["active_color"] == "green" and flip["blue"]["enabled"] and flip["green"]["enabled"]
    after = config.model_copy(
        update={"deployment": Deployment(active_color=Color.GREEN, blue="2.9.2", green="2.10.3")}
    )
    retire = _render(after, "retire-blue")
    assert retire["active_color"] == "green"
    assert retire["blue"]["enabled"] is False and retire["green"] == {
        "enabled": True,
        "airflow_version": "2.10.3",
        "requirements_s3_path": "requirements/requirements.txt",
    }
    layout = layout_for(after, parse_phase("retire-blue", after))
    assert layout.retiring(after) == frozenset({"analytics-blue"})
    # mirror image: green is active, so blue is the colour being built
    assert _render(after, "clone-blue")["blue"]["airflow_version"] == "2.10.3"


def test_phase_names_cover_both_directions() -> None:
    assert {
        "steady",
        "clone-green",
        "upgrade-green",
        "flip-green",
        "retire-blue",
        "clone-blue",
        "upgrade-blue",
        "flip-blue",
        "retire-green",
    } <= set(PHASE_NAMES)


@pytest.mark.parametrize("phase", ["clone-blue", "explode-green", "clone", "clone-purple", "steady-blue"])
def test_bad_phases(config, phase: str) -> None:
    with pytest.raises(UsageError):
        parse_phase(phase, config)


def test_rendering_is_byte_identical(config) -> None:
    layout = layout_for(config, parse_phase("upgrade-green", config))
    assert render_tfvars(config, layout) == render_tfvars(config, layout)
    assert render_tfvars(config, layout).endswith("}\n")


def test_tags_and_environment_settings_reach_tfvars(config) -> None:
    data = _render(config, "steady")
    assert data["tags"]["team"] == "data-platform" and data["tags"]["mwaa-iac:deployment"] == "analytics"
    assert data["environment"]["subnet_ids"] == ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"]
    assert data["environment"]["logging"]["webserver"] == {"enabled": True, "log_level": "WARNING"}
    assert data["routing"]["ssm_parameter_name"] == "/mwaa/analytics/active"


def test_custom_template_errors_are_clear(config) -> None:
    layout = layout_for(config, parse_phase("steady", config))
    with pytest.raises(TemplateError, match="did not render valid JSON"):
        render_tfvars(config, layout, '{"name": {{ config.name }}}', source="t.j2")
    with pytest.raises(TemplateError, match=r"t\.j2"):
        render_tfvars(config, layout, '{"x": {{ nope.name | tojson }}}', source="t.j2")
    with pytest.raises(TemplateError, match="line 1"):
        render_tfvars(config, layout, "{% for %}", source="t.j2")
