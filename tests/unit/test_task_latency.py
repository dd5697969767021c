"""The local stack's model of MWAA's wait before a queued task starts (the worker launcher of an
Airflow 2.x environment): a task's first process waits, its ``--raw`` child does not, and a task
beyond the warm slots waits for a worker to be added too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mwaa_iac.adapters.airflow_venvs import Venv
from mwaa_iac.local.runtime.launch import MWAA_LATENCY, task_latency, write_worker_launcher


@pytest.fixture
def home(tmp_path: Path) -> Path:
    # A stand-in `airflow` module that prints the DAG folder it was given and its arguments.
    fake = tmp_path / "site" / "airflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(
        "import os, sys\nprint(os.environ['AIRFLOW__CORE__DAGS_FOLDER'], ' '.join(sys.argv[1:]))\n"
    )
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    return tmp_path


def _launch(home: Path, *args: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(home / "site")}
    started = time.monotonic()
    done = subprocess.run(
        [str(home / "worker" / "bin" / "airflow"), *args], capture_output=True, text=True, env=env, check=True
    )
    return time.monotonic() - started, done.stdout.strip()


def test_the_model_is_off_unless_its_variables_say_otherwise() -> None:
    assert task_latency({}) is None
    assert task_latency(MWAA_LATENCY) == (5.0, 90.0, 5)
    with pytest.raises(ValueError, match="must be numbers"):
        task_latency({"MWAA_IAC_LOCAL_TASK_START_S": "soon"})
    with pytest.raises(ValueError, match="must not be negative"):
        task_latency({"MWAA_IAC_LOCAL_TASK_START_S": "-1"})


def test_a_task_waits_before_it_starts_and_longer_beyond_the_warm_slots(home: Path) -> None:
    venv = Venv(home / "venv", "2.9.2", "3.11")
    write_worker_launcher(home, venv, (0.6, 1.2, 1))
    waited, out = _launch(home, "tasks", "run", "d", "t", "r", "--local")
    assert waited >= 0.6 and out == f"{home / 'worker' / 'dags'} tasks run d t r --local"
    slots = set((home / "worker" / "slots").iterdir())
    _, out = _launch(home, "tasks", "run", "d", "t", "r", "--raw")  # the task's own child: no slot, no wait
    assert out.endswith("--raw") and set((home / "worker" / "slots").iterdir()) == slots
    # One slot is taken by a live process (this test's): the next task waits for a worker too.
    (home / "worker" / "slots" / str(os.getpid())).touch()
    waited, _ = _launch(home, "tasks", "run", "d", "t2", "r", "--local")
    assert waited >= 1.8
    # The slots of processes that are gone were given back: this test's and the last task's are left.
    slots = {p.name for p in (home / "worker" / "slots").iterdir()}
    assert len(slots) == 2 and str(os.getpid()) in slots


def test_without_the_model_the_launcher_only_points_at_the_workers_dag_folder(home: Path) -> None:
    write_worker_launcher(home, Venv(home / "venv", "2.9.2", "3.11"))
    text = (home / "worker" / "bin" / "airflow").read_text()
    assert text.startswith("#!/bin/sh") and "sleep" not in text
