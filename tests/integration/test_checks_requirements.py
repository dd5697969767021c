"""`check requirements`: static comparison with a constraints fixture, the resolver over local wheels
(offline), and constraints that cannot be had."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import zipfile
from pathlib import Path

import pytest

from mwaa_iac.checks.requirements import (
    ConstraintsUnavailableError,
    RequirementsOptions,
    check_requirements,
    obtain_constraints,
    parse_constraints,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "constraints"
CONSTRAINTS = FIXTURES / "constraints-3.3.1-py3.12.txt"


def static(**kwargs) -> RequirementsOptions:
    return RequirementsOptions(constraints_file=CONSTRAINTS, resolver="none", **kwargs)


def test_conflicting_pins_are_reported_by_package() -> None:
    result = check_requirements(FIXTURES / "requirements-conflicting.txt", "3.3.1", static())
    by_package = {c.package: c for c in result.conflicts}
    assert set(by_package) == {"constraints file", "pandas", "sqlalchemy"}
    assert by_package["pandas"].constrained == "2.3.1" and by_package["pandas"].where.endswith(":4")
    assert "2.10.3" in by_package["constraints file"].reason
    assert result.ok is False and result.status == "failed"
    assert "pandas" in result.summary() and "sqlalchemy" in result.summary()


def test_compatible_file_passes() -> None:
    result = check_requirements(FIXTURES / "requirements-compatible.txt", "3.3.1", static())
    assert result.conflicts == ()
    assert result.ok and result.status == "passed"
    assert result.python_version == "3.12"


def test_airflow_pin_and_markers(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "apache-airflow==2.10.3\n"
        'pandas==1.0.0; python_version < "3.10"  # not installed on 3.12\n'
        "-r extra.txt\n",
        "utf-8",
    )
    (tmp_path / "extra.txt").write_text("requests<2\n", "utf-8")
    result = check_requirements(requirements, "3.3.1", static())
    assert {c.package for c in result.conflicts} == {"apache-airflow", "requests"}
    assert next(c for c in result.conflicts if c.package == "requests").where == "extra.txt:1"


def test_constraints_markers_apply_to_the_target_python() -> None:
    pins = parse_constraints(CONSTRAINTS.read_text("utf-8"), "3.12")
    assert pins["pandas"] == "2.3.1" and "backports-zoneinfo" not in pins


# -- constraints that cannot be had -------------------------------------------------------------


def test_offline_without_cache_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConstraintsUnavailableError, match="not cached and --offline"):
        obtain_constraints("3.3.1", "3.12", offline=True, cache_dir=tmp_path)


def test_unreachable_constraints_say_so_plainly(tmp_path: Path) -> None:
    def unreachable(url: str, timeout: float) -> bytes:
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(ConstraintsUnavailableError) as info:
        obtain_constraints("3.3.1", "3.12", cache_dir=tmp_path, fetch=unreachable)
    assert (
        "could not be fetched from https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/"
        in str(info.value)
    )
    assert "--constraints FILE" in (info.value.hint or "")


def test_fetched_constraints_are_cached(tmp_path: Path) -> None:
    calls = []

    def fetch(url: str, timeout: float) -> bytes:
        calls.append(url)
        return CONSTRAINTS.read_bytes()

    first = obtain_constraints("3.3.1", "3.12", cache_dir=tmp_path, fetch=fetch)
    second = obtain_constraints("3.3.1", "3.12", cache_dir=tmp_path, fetch=fetch)
    assert first.origin == "downloaded" and second.origin == "cache"
    assert second.path == tmp_path / "constraints-3.3.1-py3.12.txt"
    assert len(calls) == 1


# -- the resolver, offline over a directory of wheels -------------------------------------------


def _wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", metadata)
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    house = tmp_path / "wheels"
    house.mkdir()
    _wheel(house, "alpha", "1.0")
    _wheel(house, "alpha", "2.0")
    _wheel(house, "beta", "1.0", ("alpha>=2",))
    return house


@pytest.mark.parametrize("tool", ["uv", "pip"])
def test_resolver_finds_transitive_conflicts(tool: str, wheelhouse: Path, tmp_path: Path) -> None:
    if tool == "uv" and shutil.which("uv") is None:
        pytest.skip("uv is not on PATH")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("alpha==1.0\n", "utf-8")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("beta\n", "utf-8")  # beta needs alpha>=2: no static conflict, a transitive one
    options = RequirementsOptions(
        constraints_file=constraints, resolver=tool, find_links=wheelhouse, offline=True
    )
    result = check_requirements(requirements, "2.10.3", options)
    assert result.resolver is not None and result.resolver.ok is False, result.resolver
    assert result.ok is False
    if tool == "uv":  # pip's short message does not always name both
        assert {"alpha", "beta"} <= set(result.resolver.packages)

    requirements.write_text("alpha\n", "utf-8")
    result = check_requirements(requirements, "2.10.3", options)
    assert result.resolver is not None and result.resolver.ok is True, result.resolver
    assert result.ok


# -- the command --------------------------------------------------------------------------------

_RUN_CLI = """
import sys
from mwaa_iac import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    env["MWAA_IAC_CONSTRAINTS_CACHE"] = str(cwd / "constraints-cache")
    return subprocess.run(
        [sys.executable, "-c", _RUN_CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_check_requirements(workspace_root: Path) -> None:
    common = ("check", "requirements", "--env", "demo", "--to", "3.3.1", "--constraints", str(CONSTRAINTS))
    bad = run_cli(
        *common,
        "--requirements",
        str(FIXTURES / "requirements-conflicting.txt"),
        "--resolver",
        "none",
        cwd=workspace_root,
    )
    assert bad.returncode == 1, bad.stderr
    assert "pandas" in bad.stdout and "sqlalchemy" in bad.stdout
    good = run_cli(
        *common,
        "--requirements",
        str(FIXTURES / "requirements-compatible.txt"),
        "--resolver",
        "none",
        cwd=workspace_root,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    missing = run_cli(
        "check",
        "requirements",
        "--env",
        "demo",
        "--to",
        "3.3.1",
        "--offline",
        "--requirements",
        str(FIXTURES / "requirements-compatible.txt"),
        cwd=workspace_root,
    )
    assert missing.returncode == 1
    assert "--offline forbids fetching" in missing.stderr
