"""Facts about the Airflow that MWAA runs for a version, shared by the checks and the local runtime.

- the Python it runs on (the catalog's ``python``; :func:`python_for`);
- Airflow's official constraints file for that Airflow and Python (``constraints-<airflow>/
  constraints-<python>.txt`` in the apache/airflow repository), which MWAA builds its image from and
  installs requirements under (:func:`constraints_url`);
- where mwaa-iac caches what it fetches or builds for a version: ``$XDG_CACHE_HOME/mwaa-iac/<kind>``
  (else ``~/.cache/mwaa-iac/<kind>``), each kind with an environment variable that overrides it.

Pure: computes URLs and paths, reads environment variables, touches no file and no network.
"""

from __future__ import annotations

import os
from pathlib import Path

from mwaa_iac.core.catalog import load_catalog, major_minor

CONSTRAINTS_URL = (
    "https://raw.githubusercontent.com/apache/airflow/constraints-{version}/constraints-{python}.txt"
)
CONSTRAINTS_CACHE_ENV = "MWAA_IAC_CONSTRAINTS_CACHE"
VENV_CACHE_ENV = "MWAA_IAC_VENV_CACHE"


def python_for(airflow_version: str, *, guess: bool = False) -> str:
    """The Python version MWAA runs ``airflow_version`` on, e.g. ``"3.11"``, from the catalog.

    A version the catalog does not know raises UsageError, or with ``guess`` gets the Python of its
    neighbours (3.12 from 2.11 on, 3.11 before); a string that is no version raises ValueError then."""
    catalog = load_catalog()
    if not guess:
        return catalog.require(airflow_version).python
    entry = catalog.get(airflow_version)
    if entry is not None and entry.python:
        return entry.python
    return "3.12" if major_minor(airflow_version) >= (2, 11) else "3.11"


def constraints_url(airflow_version: str, python_version: str) -> str:
    """Airflow's official constraints file for ``airflow_version`` on ``python_version``."""
    return CONSTRAINTS_URL.format(version=airflow_version, python=python_version)


def cache_dir(kind: str, env_var: str) -> Path:
    """``$<env_var>``, else ``$XDG_CACHE_HOME/mwaa-iac/<kind>``, else ``~/.cache/mwaa-iac/<kind>``."""
    configured = os.environ.get(env_var)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mwaa-iac" / kind


def constraints_cache_dir() -> Path:
    """Where downloaded constraints files are kept (``$MWAA_IAC_CONSTRAINTS_CACHE`` overrides)."""
    return cache_dir("constraints", CONSTRAINTS_CACHE_ENV)


def venv_cache_dir() -> Path:
    """Where the local runtime keeps its per-version virtualenvs (``$MWAA_IAC_VENV_CACHE`` overrides)."""
    return cache_dir("venvs", VENV_CACHE_ENV)
