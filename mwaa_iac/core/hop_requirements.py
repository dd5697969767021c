"""Per-hop requirements files. Pure.

AWS's upgrade guidance: a requirements.txt that pins Airflow's constraints (``--constraint
".../constraints-2.9.2/constraints-3.11.txt"``) must name the constraints of the version being
upgraded to, or the install on the new version is resolved against the old version's pins. A file
that carries such a line is therefore copied for each hop with the line pointing at the hop's version
(``requirements-airflow-<version>.txt`` beside it); a file without one is used unchanged.
"""

from __future__ import annotations

import posixpath
import re

_LINE = re.compile(
    r"^(?P<head>\s*(?:-c|--constraint)(?:\s+|=)\S*?)constraints-\d+\.\d+\.\d+/constraints-\d+\.\d+\.txt",
    re.MULTILINE,
)
_HOP_SUFFIX = re.compile(r"-airflow-\d+\.\d+\.\d+$")


def retarget_constraints(text: str, airflow_version: str, python_version: str) -> str | None:
    """``text`` with every ``--constraint`` reference to Airflow's constraints pointing at
    ``airflow_version``/``python_version``; None when the file has no such line."""
    if not _LINE.search(text):
        return None
    return _LINE.sub(
        lambda m: f"{m.group('head')}constraints-{airflow_version}/constraints-{python_version}.txt", text
    )


def hop_requirements_key(path: str, airflow_version: str) -> str:
    """``requirements/requirements.txt`` → ``requirements/requirements-airflow-2.10.3.txt`` (a
    previous hop's suffix is replaced, not stacked)."""
    directory, name = posixpath.split(path)
    stem, ext = posixpath.splitext(name)
    stem = _HOP_SUFFIX.sub("", stem)
    return posixpath.join(directory, f"{stem}-airflow-{airflow_version}{ext or '.txt'}")
