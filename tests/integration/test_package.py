"""The package that installs: `uv build` gives an sdist and a wheel whose contents hold everything the
tool reads at run time (templates, version data, constraints, the code that runs inside Airflow), and a
fresh virtualenv with only that wheel (and its dependencies) runs the commands a new user runs first.
Outside the repository, so nothing of the source tree is imported by accident."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import mwaa_iac

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
UV = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))

# What the tool reads from its own package at run time.
MUST_SHIP = (
    "mwaa_iac/templates/blue-green.tfvars.json.j2",
    "mwaa_iac/data/versions.json",
    "mwaa_iac/data/prices.json",
    "mwaa_iac/data/sizing_rates.json",
    "mwaa_iac/data/report.schema.json",
    "mwaa_iac/local/runtime/constraints/airflow-2.9.2-py3.11.txt",
    "mwaa_iac/local/runtime/constraints/airflow-3.3.1-py3.12.txt",
    "mwaa_iac/dr_runtime/mwaa_iac_copy.py",
    "mwaa_iac/dr_runtime/dags/copy_task.py",
    "mwaa_iac/dr_runtime/dags/probe.py",
    "mwaa_iac/local/airflow_side/fingerprint_script.py",
    "mwaa_iac/local/airflow_side/mwaa_iac_seed.py",
    "mwaa_iac/checks/airflow_scripts/import_dags.py",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [UV, "build", "--wheel", "--sdist", "--out-dir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz")), "dir": out}


def test_the_wheel_and_the_sdist_hold_what_the_tool_reads_at_run_time(built: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    missing = [n for n in MUST_SHIP if n not in names]
    assert not missing, f"the wheel lacks {missing}: add them to [tool.setuptools.package-data]"
    every_module = {str(p.relative_to(REPO)) for p in (REPO / "mwaa_iac").rglob("*.py")}
    assert every_module <= names, sorted(every_module - names)[:10]
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    version = mwaa_iac.__version__
    assert built["wheel"].name.startswith(f"mwaa_iac-{version}-")
    with tarfile.open(built["sdist"]) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"README.md", "pyproject.toml", *MUST_SHIP} <= members


def test_a_fresh_venv_with_only_the_wheel_runs_the_first_commands(
    built: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    made = subprocess.run(
        [UV, "venv", "-q", "--python", sys.executable, str(venv)], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    installed = subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(built["wheel"])],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    cli = str(venv / "bin" / "mwaa-iac")

    def run(*args: str) -> str:
        result = subprocess.run([cli, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert result.returncode == 0, f"{args}: {result.stderr[-2000:]}"
        return result.stdout

    assert "cutover" in run("--help") and "upgrade" in run("--help")
    metadata = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('mwaa-iac'))"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert run("--version").strip() == f"mwaa-iac {metadata}" == f"mwaa-iac {mwaa_iac.__version__}"
    assert metadata == importlib.metadata.version("mwaa-iac")  # the dev install says the same
    assert "2.10.3" in run("versions", "path", "--from", "2.9.2", "--to", "2.10.3")
    rendered = run("render", "--env", "example", "--root", str(REPO))
    assert '"airflow_version": "2.9.2"' in rendered
    assert "--phase" in run("plan", "--help")
