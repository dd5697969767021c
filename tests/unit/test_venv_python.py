"""Issue 22 part 7: the local stack builds each Airflow version on the Python MWAA runs it on (the
catalog's ``python``), or refuses naming that interpreter and how to install it; never another.

The machine is faked: which interpreters exist (``shutil.which``, pyenv's folder, uv's managed ones)
and what each reports as its version."""

from __future__ import annotations

from pathlib import Path

import pytest

from mwaa_iac.adapters import airflow_venvs as venvs
from mwaa_iac.adapters.airflow_venvs import VenvBuildError, find_python, python_override_var


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """``{path: "X.Y"}``: the interpreters this fake machine has (on PATH as ``pythonX.Y``)."""
    installed: dict[str, str] = {}

    def which(name: str) -> str | None:
        version = name.removeprefix("python")
        return next((p for p, v in installed.items() if v == version and "/bin/" in p), None)

    monkeypatch.setattr(venvs.shutil, "which", which)
    monkeypatch.setattr(
        venvs, "_probe_python", lambda path: (path, installed[path]) if path in installed else None
    )
    monkeypatch.setattr(venvs, "_uv_python", lambda version: None)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    for version in ("3.10", "3.11", "3.12"):
        monkeypatch.delenv(python_override_var(version), raising=False)
    return installed


MWAA_PYTHONS = [
    ("2.4.3", "3.10"),
    ("2.5.1", "3.10"),
    ("2.6.3", "3.10"),
    ("2.9.2", "3.11"),
    ("2.10.3", "3.11"),
    ("2.11.2", "3.12"),
    ("3.0.6", "3.12"),
    ("3.3.1", "3.12"),
]


@pytest.mark.parametrize(("airflow", "python"), MWAA_PYTHONS)
def test_each_version_is_built_on_mwaas_python(machine: dict[str, str], airflow: str, python: str) -> None:
    machine.update({"/opt/py/bin/python3.10": "3.10", "/opt/py/bin/python3.11": "3.11"})
    machine["/opt/py/bin/python3.12"] = "3.12"
    assert find_python(airflow) == (f"/opt/py/bin/python{python}", python)


def test_a_missing_python_is_refused_naming_it_and_how_to_install_it(machine: dict[str, str]) -> None:
    machine.update({"/opt/py/bin/python3.11": "3.11", "/opt/py/bin/python3.12": "3.12"})  # no 3.10
    with pytest.raises(VenvBuildError) as caught:
        find_python("2.5.1")  # before: built on 3.11 with a log warning
    message = str(caught.value)
    assert message.startswith(
        "Airflow 2.5.1 runs on Python 3.10 on MWAA, and the local stack builds it on that Python only"
    )
    assert "no Python 3.10 was found" in message
    assert "`uv python install 3.10`" in message and "`pyenv install 3.10`" in message
    assert "MWAA_IAC_PYTHON_3_10" in message


def test_a_3_12_version_is_not_built_on_3_11(machine: dict[str, str]) -> None:
    machine["/usr/bin/python3.11"] = "3.11"  # a fresh machine with only the system Python
    with pytest.raises(VenvBuildError, match=r"Airflow 2\.11\.2 runs on Python 3\.12 on MWAA"):
        find_python("2.11.2")
    assert find_python("2.10.3") == ("/usr/bin/python3.11", "3.11")


def test_an_interpreter_named_by_the_variable_is_used(machine: dict[str, str], monkeypatch) -> None:
    machine["/somewhere/custom-python"] = "3.10"
    monkeypatch.setenv("MWAA_IAC_PYTHON_3_10", "/somewhere/custom-python")
    assert find_python("2.6.3") == ("/somewhere/custom-python", "3.10")


def test_a_variable_naming_another_python_is_not_taken(machine: dict[str, str], monkeypatch) -> None:
    machine["/somewhere/python"] = "3.11"
    monkeypatch.setenv("MWAA_IAC_PYTHON_3_10", "/somewhere/python")
    with pytest.raises(VenvBuildError, match=r"no Python 3\.10 was found"):
        find_python("2.4.3")


def test_uvs_managed_python_is_found(machine: dict[str, str], monkeypatch) -> None:
    machine["/root/.local/share/uv/python/cpython-3.12.8/bin/python3.12"] = "3.12"
    found = "/root/.local/share/uv/python/cpython-3.12.8/bin/python3.12"
    monkeypatch.setattr(venvs, "_uv_python", lambda version: found if version == "3.12" else None)
    assert find_python("3.0.6") == (found, "3.12")
