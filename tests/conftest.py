from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mwaa_iac import events
from mwaa_iac.local import stack
from mwaa_iac.local.emulator.client import EmulatorAdmin

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "environments" / "example" / "mwaa.yaml"


@pytest.fixture(autouse=True)
def _not_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests run the workflows with local journals, also on a CI runner (CI=true), where
    mwaa-iac would otherwise require state.s3_bucket (tests/unit/test_journal.py tests that)."""
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture(autouse=True)
def _strict_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every event a test makes (here or in a CLI it starts) is checked against its kind's
    declaration in mwaa_iac.events: a missing required field or an undeclared one raises, and a
    drift that the code under test swallowed still fails the test."""
    monkeypatch.setenv(events.STRICT_ENV, "1")
    events.DRIFTS.clear()
    yield
    assert not events.DRIFTS, f"events drifted from their declarations: {events.DRIFTS}"


@pytest.fixture
def example_text() -> str:
    return EXAMPLE_CONFIG.read_text("utf-8")


@pytest.fixture
def workspace_root(tmp_path: Path, example_text: str) -> Path:
    """A repository root with one environment `demo` (a copy of the example config)."""
    env_dir = tmp_path / "environments" / "demo"
    env_dir.mkdir(parents=True)
    (env_dir / "mwaa.yaml").write_text(example_text, "utf-8")
    return tmp_path


# -- the local stack: one per test session, shared by tests/local and tests/e2e -------------------


@dataclass
class LocalStack:
    state_dir: Path
    env: dict[str, str]
    admin: EmulatorAdmin
    last_stderr: str = ""

    def cli(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mwaa_iac.cli", *args],
            env={**os.environ, **self.env, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cli_until(self, *args: str, stop_when, timeout: float = 1200) -> tuple[int, list[dict]]:
        """Run the CLI with --json and SIGKILL it as soon as ``stop_when(event)`` is true (a crash
        at that point); returns (return code, events seen). Runs to the end if it never matches;
        the end of its stderr is kept in ``last_stderr``."""
        # stderr goes to a file read after the end: a pipe nobody reads could block the process
        with tempfile.TemporaryFile("w+") as errors:
            process = subprocess.Popen(
                [sys.executable, "-m", "mwaa_iac.cli", *args, "--json"],
                env={**os.environ, **self.env, "NO_COLOR": "1"},
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            events: list[dict] = []
            deadline = time.monotonic() + timeout
            assert process.stdout is not None
            for line in process.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                events.append(event)
                if stop_when(event):
                    process.send_signal(signal.SIGKILL)
                    break
                if time.monotonic() > deadline:
                    process.kill()
                    raise TimeoutError(f"{args} did not reach the kill point")
            process.wait(timeout=60)
            process.stdout.close()
            errors.seek(0)
            self.last_stderr = errors.read()[-4000:]
        return process.returncode, events

    def environment(self, name: str) -> dict:
        return next(e for e in self.admin.environments() if e["name"] == name)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("stack")
    info = stack.up(state, heartbeat_interval=5, sync_interval=10)
    env = stack.load_env(state)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield LocalStack(state, env, EmulatorAdmin(info.mwaa_endpoint))
    finally:
        result = stack.down(state, remove_state=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert result is not None


@pytest.fixture(scope="module", autouse=True)
def _module_environments_retired(request: pytest.FixtureRequest) -> Iterator[None]:
    """The environments a module created on the shared local stack are deleted when the module ends:
    each is a running Airflow (scheduler, DAG processor, triggerer, web server), and left running
    they would take the CPU of every later module on this 2-core machine."""
    if not any(
        item.module is request.module and "local_stack" in getattr(item, "fixturenames", ())
        for item in request.session.items
    ):
        yield
        return
    local: LocalStack = request.getfixturevalue("local_stack")
    before = {e["name"] for e in local.admin.environments()}
    yield
    import boto3

    client = boto3.client("mwaa", region_name="us-east-1")
    created = {e["name"] for e in local.admin.environments()} - before
    for name in sorted(created):
        with contextlib.suppress(Exception):  # already deleting or gone
            client.delete_environment(Name=name)
    deadline = time.monotonic() + 180
    while created & {e["name"] for e in local.admin.environments()} and time.monotonic() < deadline:
        time.sleep(2)
