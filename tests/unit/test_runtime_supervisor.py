"""The local runtime restarts a crashed component of a serving environment after ``restart_delay``,
as MWAA replaces a failed container (issue 22 part 10), and never one of an environment being stopped;
and it starts the oldest versions MWAA ran (2.4.3-2.6.3) with the commands they have (part 7).

Stand-in processes (``sleep``) play the components: no Airflow, no PostgreSQL; each test takes about a
second and stops what it started."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mwaa_iac.adapters.airflow_venvs import Venv
from mwaa_iac.local.runtime import procs
from mwaa_iac.local.runtime.airflow import (
    RESTART_DELAY,
    RESTART_DELAY_VAR,
    AirflowRuntime,
    EnvState,
    _Env,
    migrate_command,
    restart_delay_from_env,
)
from mwaa_iac.local.runtime.base import EnvSpec

SPEC = EnvSpec(name="blue", airflow_version="2.9.2", source_bucket="b", dag_s3_path="dags")


def _state() -> EnvState:
    return EnvState(
        name="blue",
        airflow_version="2.9.2",
        database="blue",
        fernet_key="k",
        secret_key="s",
        admin_password="p",
        port=1,
        spec={},
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[AirflowRuntime]:
    """A runtime serving ``blue`` whose three 2.x components are ``sleep`` processes."""
    rt = AirflowRuntime(tmp_path, {}, sync_interval=0, restart_delay=0.6, supervise_interval=3600)
    env = _Env("blue", SPEC, state=_state())
    rt._envs["blue"] = env
    rt.env_dir("blue").mkdir(parents=True)
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    env.launch = {c: (sleeper, dict(os.environ)) for c in ("scheduler", "webserver", "triggerer")}
    for component, (cmd, process_env) in env.launch.items():
        rt._launch(env, component, cmd, process_env, f"starting {component}")
    rt._now_serving(env)
    try:
        yield rt
    finally:
        rt.shutdown()
        assert not procs.runtime_processes(rt.pid_dir)


def _pid(rt: AirflowRuntime, component: str) -> int:
    record = procs.read_record(rt.pid_dir, f"blue.{component}")
    assert record is not None
    return record.pid


def test_a_crashed_scheduler_is_started_again_after_the_delay(runtime: AirflowRuntime) -> None:
    old = _pid(runtime, "scheduler")
    runtime.kill_scheduler("blue")
    assert runtime.supervise("blue") == []  # noticed: down from now on
    assert runtime.supervise("blue") == []  # not yet: the delay runs
    time.sleep(0.7)
    assert runtime.supervise("blue") == ["scheduler"]
    new = _pid(runtime, "scheduler")
    assert new != old and psutil.Process(new).is_running()
    assert runtime.restarts("blue") == {"scheduler": 1}
    log = (runtime.env_dir("blue") / "scheduler.log").read_text()
    assert "the scheduler exited with code -9; starting it again in 0.6 s" in log
    assert "starting scheduler again after it exited" in log
    assert runtime.supervise("blue") == []  # running again: nothing to do


def test_any_component_that_exits_is_started_again(runtime: AirflowRuntime) -> None:
    os.kill(_pid(runtime, "triggerer"), signal.SIGTERM)
    time.sleep(0.2)
    runtime.supervise("blue")
    time.sleep(0.7)
    assert runtime.supervise("blue") == ["triggerer"]


def test_a_stopped_environment_is_not_restarted(runtime: AirflowRuntime) -> None:
    env = runtime._envs["blue"]
    runtime._stop(env)  # as update, a failed rollback and delete do first
    time.sleep(0.7)
    assert runtime.supervise("blue") == [] and runtime.supervise("blue") == []
    assert not procs.list_records(runtime.pid_dir)


def test_the_supervisor_thread_restarts_on_its_own(tmp_path: Path) -> None:
    rt = AirflowRuntime(tmp_path, {}, sync_interval=0, restart_delay=0.3, supervise_interval=0.1)
    env = _Env("blue", SPEC, state=_state())
    rt._envs["blue"] = env
    rt.env_dir("blue").mkdir(parents=True)
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    env.launch = {c: (sleeper, dict(os.environ)) for c in ("scheduler", "webserver", "triggerer")}
    try:
        for component, (cmd, process_env) in env.launch.items():
            rt._launch(env, component, cmd, process_env, "start")
        rt._now_serving(env)
        old = _pid(rt, "scheduler")
        rt.kill_scheduler("blue")
        deadline = time.monotonic() + 10
        while rt.restarts("blue").get("scheduler") != 1:
            assert time.monotonic() < deadline, "the scheduler was not started again"
            time.sleep(0.05)
        assert _pid(rt, "scheduler") != old
    finally:
        rt.shutdown()
    assert not procs.runtime_processes(rt.pid_dir)


def test_the_restart_delay_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RESTART_DELAY_VAR, raising=False)
    assert restart_delay_from_env() == RESTART_DELAY == 60.0
    monkeypatch.setenv(RESTART_DELAY_VAR, "5")
    assert restart_delay_from_env() == 5.0
    monkeypatch.setenv(RESTART_DELAY_VAR, "off")
    assert restart_delay_from_env() == float("inf")
    monkeypatch.setenv(RESTART_DELAY_VAR, "soon")
    with pytest.raises(ValueError, match="neither a number of seconds nor 'off'"):
        restart_delay_from_env()


# -- the commands of the oldest versions MWAA ran (2.4.3-2.6.3, on Python 3.10) ----------------------


def test_airflow_before_2_7_migrates_with_db_upgrade() -> None:
    assert migrate_command("2.4.3") == migrate_command("2.6.3") == ["db", "upgrade"]  # no `db migrate` yet
    assert migrate_command("2.7.2") == migrate_command("3.0.6") == ["db", "migrate"]


@pytest.mark.parametrize(
    ("version", "skip"), [("2.4.3", False), ("2.5.1", False), ("2.6.3", True), ("2.9.2", True)]
)
def test_the_triggerer_is_told_not_to_serve_logs_only_where_it_can_be(
    tmp_path: Path, version: str, skip: bool
) -> None:
    rt = AirflowRuntime(tmp_path, {}, sync_interval=0)
    state = _state()
    state.airflow_version = version
    spec = EnvSpec(name="blue", airflow_version=version, source_bucket="b", dag_s3_path="dags")
    venv = Venv(tmp_path / "venv", version, "3.10")
    plan = rt._launch_plan(state, spec, venv)
    assert sorted(plan) == ["scheduler", "triggerer", "webserver"]
    assert ("--skip-serve-logs" in plan["triggerer"][0]) is skip  # 2.4/2.5: "unrecognized arguments"
    assert "--skip-serve-logs" in plan["scheduler"][0]
