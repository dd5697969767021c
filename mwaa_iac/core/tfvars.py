"""Render ``terraform.tfvars.json`` for a phase from a Jinja2 template.

Pure given the template text. The output is parsed back and re-serialised with sorted keys, so it is
byte-identical for the same input and a template that produces invalid JSON fails loudly here, not
in Terraform.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jinja2

from mwaa_iac.core.config import EnvironmentConfig
from mwaa_iac.core.phase_layout import PhaseLayout
from mwaa_iac.errors import MwaaIacError

TEMPLATE_FILENAME = "terraform.tfvars.json.j2"
MANAGED_TAG = "mwaa-iac:deployment"


class TemplateError(MwaaIacError):
    """A tfvars template failed to render or did not produce a JSON object."""


def default_template() -> str:
    return resources.files("mwaa_iac.templates").joinpath("blue-green.tfvars.json.j2").read_text("utf-8")


def template_context(config: EnvironmentConfig, layout: PhaseLayout) -> dict[str, Any]:
    """What a template sees: ``config`` (the model), ``layout`` and plain dicts for nested values."""
    return {
        "config": config,
        "layout": layout,
        "phase": str(layout.phase),
        "slots": {str(color): slot.to_dict() for color, slot in layout.slots.items()},
        "logging": config.logging.model_dump(),
        "routing": config.routing.model_dump(),
        "tags": {**config.tags, MANAGED_TAG: config.name},
        "dr": config.dr.model_dump(),
    }


def render_tfvars(
    config: EnvironmentConfig,
    layout: PhaseLayout,
    template_text: str | None = None,
    *,
    source: str = "template",
) -> str:
    """The tfvars document for ``layout`` as canonical JSON text (ends with a newline)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    try:
        template = env.from_string(template_text if template_text is not None else default_template())
        text = template.render(**template_context(config, layout))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{source}: line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"{source}: {exc.message}",
            hint="templates see: config, layout, phase, slots, logging, routing, tags, dr",
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{source} did not render valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{source} must render a JSON object, got {type(data).__name__}")
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
