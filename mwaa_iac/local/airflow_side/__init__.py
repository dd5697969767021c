"""Programs and DAG files that run inside an emulated environment's Airflow (its virtualenv, 2.x or
3.x, Python 3.10+), not in the mwaa-iac process: the fingerprint script, the seeding DAG and the busy
profile's DAG files. They import nothing of mwaa-iac; mwaa-iac ships them as they are (the DAG files
with their constants block filled in: :mod:`mwaa_iac.core.constants_block`)."""

from __future__ import annotations

from importlib import resources

from mwaa_iac.core.constants_block import BEGIN, END, fill, names

__all__ = ["BEGIN", "END", "names", "render", "source"]


def source(name: str) -> str:
    """The text of ``name`` (``fingerprint_script.py``...) in this folder."""
    return resources.files(__name__).joinpath(name).read_text("utf-8")


def render(text: str, values: dict[str, object]) -> str:
    """``text`` with its constants block filled in from ``values`` (see constants_block.fill)."""
    return fill(text, values)
