"""The copy module runs inside the source environments: MWAA runs Airflow 2.4.3-2.6.3 on Python 3.10.
Its pure tests (tests/unit/test_copy_module_pure.py: standard library and the module only) run here on
the oldest Python 3 found on this machine that is older than the one running the suite; skipped,
saying so, when there is none (ruff's per-file target py310 still catches newer syntax)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PURE = Path(__file__).with_name("test_copy_module_pure.py")
OLDEST = (3, 10)  # the oldest Python of a source version mwaa-iac accepts (MWAA, Airflow 2.4.3-2.6.3)
RUNNER = r"""
import importlib.util, sys, traceback
spec = importlib.util.spec_from_file_location("pure", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
failed = 0
tests = [name for name in dir(module) if name.startswith("test_")]
for name in tests:
    try:
        getattr(module, name)()
    except Exception:
        failed += 1
        print(f"FAILED {name}")
        traceback.print_exc()
print(f"{sys.version_info[0]}.{sys.version_info[1]}: {len(tests) - failed} passed, {failed} failed")
sys.exit(1 if failed or not tests else 0)
"""


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.split()  # fmt: skip
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def oldest_python() -> tuple[str, tuple[int, int]] | None:
    """The oldest Python 3 (at least 3.10) on PATH or under pyenv, older than this one."""
    candidates = {shutil.which(f"python3.{minor}") for minor in range(OLDEST[1], sys.version_info[1])}
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates |= set(glob.glob(f"{root}/versions/3.*/bin/python3"))
    found = []
    for python in sorted(p for p in candidates if p):
        version = _version(python)
        if version is not None and OLDEST <= version < sys.version_info[:2]:
            found.append((version, python))
    return (min(found)[1], min(found)[0]) if found else None


def test_the_copy_modules_pure_tests_pass_on_the_oldest_python_found() -> None:
    found = oldest_python()
    if found is None:
        pytest.skip(
            f"no Python {OLDEST[0]}.{OLDEST[1]}..{sys.version_info[1] - 1} on this machine (PATH, pyenv)"
        )
    python, version = found
    run = subprocess.run([python, "-c", RUNNER, str(PURE)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1].startswith(f"{version[0]}.{version[1]}: ")
