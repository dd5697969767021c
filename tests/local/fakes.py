"""A fake :class:`~mwaa_iac.local.runtime.base.Runtime` for control-plane tests.

It records every call (in memory and, so tests can watch an emulator *process*, in
``<state_dir>/fake-runtime-calls.jsonl``), can be told to fail or to block an operation, checks the
contract's "never two calls at once for one environment", and answers InvokeRestApi with a tiny
in-memory Airflow REST API (DAGs, DAG runs, health, plus ``/fake/...`` paths for error statuses,
large and slow answers).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwaa_iac.local.runtime.base import ApiResponse, EnvSpec, RuntimeFailure

CALLS_FILE = "fake-runtime-calls.jsonl"
CONCURRENCY_CHECKED = {"create", "update", "resume", "delete", "sync", "kill_scheduler"}


@dataclass
class FakeEnv:
    spec: EnvSpec
    port: int
    scheduler_alive: bool = True
    dags: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


class FakeRuntime:
    """Constructed like the real runtime: ``FakeRuntime(state_dir, aws_env, venv_cache=None)``."""

    _next_port = 18080

    def __init__(
        self,
        state_dir: Path,
        aws_env: dict[str, str],
        *,
        venv_cache: Path | None = None,
        sync_interval: float = 0.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.aws_env = dict(aws_env)
        self.venv_cache = venv_cache
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.envs: dict[str, FakeEnv] = {}
        self.failures: dict[tuple[str, str], RuntimeFailure] = {}
        self.gates: dict[tuple[str, str], threading.Event] = {}
        self.violations: list[str] = []
        self._active: dict[str, str] = {}
        self._lock = threading.Lock()
        self.shut_down = False

    # ------------------------------------------------------------------ test controls

    def fail_next(self, operation: str, name: str, message: str = "fake failure", **kwargs: Any) -> None:
        """Make the next ``operation`` (create, update, resume, delete, sync) on ``name`` raise."""
        self.failures[(operation, name)] = RuntimeFailure(message, **kwargs)

    def block(self, operation: str, name: str) -> threading.Event:
        """Hold the next ``operation`` on ``name`` until the returned event is set."""
        gate = threading.Event()
        self.gates[(operation, name)] = gate
        return gate

    def calls_of(self, operation: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [call for call in self.calls if call[0] == operation]

    # ------------------------------------------------------------------ plumbing

    def _record(self, operation: str, name: str, **details: Any) -> None:
        entry = (operation, name, details)
        with self._lock:
            self.calls.append(entry)
            with (self.state_dir / CALLS_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"op": operation, "name": name, **details}, default=str) + "\n")

    def _enter(self, operation: str, name: str) -> None:
        if operation in CONCURRENCY_CHECKED:
            with self._lock:
                if name in self._active:
                    self.violations.append(f"{operation} on {name} while {self._active[name]} was running")
                self._active[name] = operation
        gate = self.gates.pop((operation, name), None)
        if gate is not None:
            gate.wait(30)
        failure = self.failures.pop((operation, name), None)
        if failure is not None:
            self._leave(operation, name)
            raise failure

    def _leave(self, operation: str, name: str) -> None:
        if operation in CONCURRENCY_CHECKED:
            with self._lock:
                if self._active.get(name) == operation:
                    del self._active[name]

    def _start(self, spec: EnvSpec) -> str:
        with self._lock:
            port = FakeRuntime._next_port
            FakeRuntime._next_port += 1
        env = self.envs.get(spec.name)
        if env is None:
            env = FakeEnv(spec=spec, port=port)
            env.dags["example_dag"] = {"dag_id": "example_dag", "is_paused": True}
            self.envs[spec.name] = env
        else:
            env.spec = spec
            env.scheduler_alive = True
        return f"http://127.0.0.1:{env.port}"

    # ------------------------------------------------------------------ Runtime protocol

    def create(self, spec: EnvSpec) -> str:
        self._record("create", spec.name, version=spec.airflow_version, bucket=spec.source_bucket)
        self._enter("create", spec.name)
        try:
            return self._start(spec)
        finally:
            self._leave("create", spec.name)

    def update(
        self, old: EnvSpec, new: EnvSpec, *, fail: str | None = None, fail_rollback: bool = False
    ) -> str:
        self._record(
            "update",
            new.name,
            old_version=old.airflow_version,
            new_version=new.airflow_version,
            fail=fail,
            fail_rollback=fail_rollback,
        )
        self._enter("update", new.name)
        try:
            if fail is not None:
                raise RuntimeFailure(fail, code="InjectedFault", rolled_back=not fail_rollback)
            return self._start(new)
        finally:
            self._leave("update", new.name)

    def resume(self, spec: EnvSpec) -> str:
        self._record("resume", spec.name, version=spec.airflow_version)
        self._enter("resume", spec.name)
        try:
            return self._start(spec)
        finally:
            self._leave("resume", spec.name)

    def delete(self, name: str) -> None:
        self._record("delete", name)
        self._enter("delete", name)
        try:
            self.envs.pop(name, None)
        finally:
            self._leave("delete", name)

    def sync(self, spec: EnvSpec) -> None:
        self._record("sync", spec.name)
        self._enter("sync", spec.name)
        self._leave("sync", spec.name)

    def scheduler_alive(self, name: str) -> bool:
        env = self.envs.get(name)
        return bool(env and env.scheduler_alive)

    def kill_scheduler(self, name: str) -> None:
        self._record("kill_scheduler", name)
        self._enter("kill_scheduler", name)
        try:
            if name in self.envs:
                self.envs[name].scheduler_alive = False
        finally:
            self._leave("kill_scheduler", name)

    def shutdown(self) -> None:
        self._record("shutdown", "")
        self.shut_down = True

    def invoke(
        self, name: str, method: str, path: str, query: dict[str, str] | None, body: object | None
    ) -> ApiResponse:
        self._record("invoke", name, method=method, path=path, query=query, body=body)
        env = self.envs.get(name)
        if env is None:
            raise RuntimeFailure(f"{name} is not running")
        return _FakeAirflowApi(env).handle(method, path, query or {}, body)


class _FakeAirflowApi:
    """Just enough of Airflow's stable REST API for control-plane tests."""

    def __init__(self, env: FakeEnv) -> None:
        self.env = env

    @staticmethod
    def _error(status: int, title: str, detail: str = "") -> ApiResponse:
        return ApiResponse(
            status, {"status": status, "title": title, "detail": detail, "type": "about:blank"}
        )

    def handle(self, method: str, path: str, query: dict[str, Any], body: Any) -> ApiResponse:
        parts = [p for p in path.split("/") if p]
        env = self.env
        if parts[:2] == ["fake", "status"] and len(parts) == 3:
            status = int(parts[2])
            return self._error(status, f"Fake status {status}", "requested by the test")
        if parts == ["fake", "large"]:
            return ApiResponse(200, {"blob": "x" * int(query.get("bytes", 7 * 1024 * 1024))})
        if parts == ["fake", "slow"]:
            time.sleep(float(query.get("seconds", 1)))
            return ApiResponse(200, {"slept": True})
        if parts == ["fake", "text"]:
            return ApiResponse(200, "plain text answer")
        if parts == ["health"] and method == "GET":
            scheduler = "healthy" if env.scheduler_alive else "unhealthy"
            return ApiResponse(
                200, {"metadatabase": {"status": "healthy"}, "scheduler": {"status": scheduler}}
            )
        if parts == ["version"] and method == "GET":
            return ApiResponse(200, {"version": env.spec.airflow_version, "git_version": None})
        if parts == ["dags"] and method == "GET":
            dags = sorted(env.dags.values(), key=lambda d: d["dag_id"])
            return ApiResponse(200, {"dags": dags, "total_entries": len(dags)})
        if len(parts) >= 2 and parts[0] == "dags":
            dag = env.dags.get(parts[1])
            if dag is None:
                return self._error(404, "DAG not found", f"The DAG with dag_id: '{parts[1]}' was not found")
            runs = env.runs.setdefault(parts[1], {})
            if len(parts) == 2 and method == "GET":
                return ApiResponse(200, dag)
            if len(parts) == 2 and method == "PATCH":
                if not isinstance(body, dict) or "is_paused" not in body:
                    return self._error(400, "Bad Request", "is_paused is required")
                dag["is_paused"] = bool(body["is_paused"])
                return ApiResponse(200, dag)
            if parts[2:] == ["dagRuns"] and method == "POST":
                run_id = (body or {}).get("dag_run_id") or f"manual__{len(runs) + 1}"
                if run_id in runs:
                    return self._error(409, "Conflict", f"DAGRun with DAG ID: '{parts[1]}' and run ID exists")
                runs[run_id] = {
                    "dag_id": parts[1],
                    "dag_run_id": run_id,
                    "state": "queued",
                    "conf": (body or {}).get("conf", {}),
                }
                return ApiResponse(200, runs[run_id])
            if parts[2:] == ["dagRuns"] and method == "GET":
                return ApiResponse(200, {"dag_runs": list(runs.values()), "total_entries": len(runs)})
            if len(parts) == 4 and parts[2] == "dagRuns" and method == "GET":
                run = runs.get(parts[3])
                if run is None:
                    return self._error(404, "DAGRun not found", parts[3])
                run["state"] = "success"
                return ApiResponse(200, run)
        if parts == ["boom"]:
            raise RuntimeError("the fake runtime exploded")
        return self._error(404, "Not Found", f"no fake route for {method} {path}")


# ---------------------------------------------------------------------- test harness


def prepare_account(endpoint_url: str, bucket: str = "mwaa-dags-bucket", role: str = "mwaa-execution") -> Any:
    """What MWAA needs in the account before CreateEnvironment (the emulator checks it as MWAA does):
    the source bucket with versioning enabled and the execution role. Returns an S3 client."""
    import boto3

    from mwaa_iac.local.demo import ensure_role

    kwargs = {
        "endpoint_url": endpoint_url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    s3 = boto3.client("s3", **kwargs)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ensure_role(boto3.client("iam", **kwargs), role)
    return s3


def create_params(name: str = "blue", **overrides: Any) -> dict[str, Any]:
    """A valid CreateEnvironment request."""
    params: dict[str, Any] = {
        "Name": name,
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa-execution",
        "SourceBucketArn": "arn:aws:s3:::mwaa-dags-bucket",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-aaa", "subnet-bbb"], "SecurityGroupIds": ["sg-123"]},
        "AirflowVersion": "2.9.2",
    }
    params.update(overrides)
    return params


def mwaa_client(endpoint: str, region: str = "us-east-1", **config: Any) -> Any:
    """A plain boto3 MWAA client for ``endpoint``. Host-prefix injection is turned off through the
    client config because botocore < 1.37.5 ignores AWS_DISABLE_HOST_PREFIX_INJECTION; retries are off
    so throttling and 5xx answers reach the test."""
    import boto3
    from botocore.config import Config

    settings = {"inject_host_prefix": False, "retries": {"total_max_attempts": 1}, **config}
    return boto3.client(
        "mwaa",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**settings),
    )


class EmulatorHandle:
    """An in-process emulator (backend + fake runtime + HTTP server on 127.0.0.1:free port)."""

    def __init__(self, state_dir: Path, *, prepare: Any = None, **backend_kwargs: Any) -> None:
        """``prepare(runtime)`` runs before the persisted environments are loaded."""
        from mwaa_iac.local.emulator.models import MwaaBackend
        from mwaa_iac.local.emulator.persistence import EnvironmentStore
        from mwaa_iac.local.emulator.server import create_app, serve

        self.state_dir = Path(state_dir)
        self.backend_kwargs = backend_kwargs
        self.runtime = FakeRuntime(self.state_dir / "runtime", {})
        if prepare is not None:
            prepare(self.runtime)
        self.backend = MwaaBackend(
            self.runtime, store=EnvironmentStore(self.state_dir / "emulator"), **backend_kwargs
        )
        self.backend.load()
        self.server = serve(create_app(self.backend))
        self.url = self.server.url
        self.admin_url = self.url

    def client(self, region: str = "us-east-1", **config: Any) -> Any:
        return mwaa_client(self.url, region, **config)

    def environment(self, name: str, region: str = "us-east-1") -> dict[str, Any]:
        return self.client(region).get_environment(Name=name)["Environment"]

    def wait_idle(self, timeout: float = 30.0) -> None:
        assert self.backend.wait_idle(timeout), "transitions still running"

    def poll_statuses(self, name: str, until: set[str], timeout: float = 20.0) -> list[str]:
        """Distinct consecutive statuses seen by polling GetEnvironment until one in ``until``."""
        client = self.client()
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = client.get_environment(Name=name)["Environment"]["Status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status in until:
                return seen
            time.sleep(0.02)
        raise AssertionError(f"{name} did not reach {until}; saw {seen}")

    def stop(self) -> None:
        self.server.stop()
        self.backend.close()

    def crash(self) -> None:
        """Stop serving without waiting for transitions (as a killed process would)."""
        self.stop()

    def restart(self, **backend_kwargs: Any) -> EmulatorHandle:
        self.stop()
        return EmulatorHandle(self.state_dir, **{**self.backend_kwargs, **backend_kwargs})
