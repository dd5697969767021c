"""The local stack as a user runs it: ``mwaa-iac local up/status/down`` in subprocesses, with the fake
runtime selected through ``--runtime``. Asserts by pid that nothing is left behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from mwaa_iac.local.stack import compact_recording, is_mutation, pid_alive
from tests.local.fakes import create_params, mwaa_client, prepare_account

pytestmark = pytest.mark.local

REPO = Path(__file__).resolve().parents[2]
FAKE_RUNTIME = f"{REPO / 'tests' / 'local' / 'fakes.py'}:FakeRuntime"


def local(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``mwaa-iac local ARGS`` (the sub-app on its own) in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MWAA_IAC_LOCAL_DIR"}
    result = subprocess.run(
        [sys.executable, "-m", "mwaa_iac.cli", "local", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env=env,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"local {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def local_json(*args: str) -> Any:
    return json.loads(local(*args, "--json").stdout)


def wait_status(client: Any, name: str, wanted: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        env = client.get_environment(Name=name)["Environment"]
        if env["Status"] == wanted:
            return env
        time.sleep(0.1)
    raise AssertionError(f"{name} did not reach {wanted}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def state_dir(tmp_path: Path):
    directory = tmp_path / "stack"
    yield directory
    local("down", "--state-dir", str(directory), check=False)  # never leave a stack behind


def test_up_status_down_round_trip_leaves_no_process(state_dir: Path) -> None:
    info = local_json("up", "--state-dir", str(state_dir), "--runtime", FAKE_RUNTIME)
    assert info["already_running"] is False
    pids = [info["pids"]["moto"]["pid"], info["pids"]["mwaa"]["pid"]]
    ports = [info["pids"]["moto"]["port"], info["pids"]["mwaa"]["port"]]
    assert all(pid_alive(pid) for pid in pids)
    env = json.loads((state_dir / "env.json").read_text())
    assert env == {
        "AWS_ENDPOINT_URL": info["moto_endpoint"],
        "AWS_ENDPOINT_URL_MWAA": info["mwaa_endpoint"],
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MWAA_IAC_LOCAL_DIR": str(state_dir),
    }
    assert "export AWS_ENDPOINT_URL_MWAA=" in (state_dir / "env.sh").read_text()
    assert info["moto_endpoint"].startswith("http://127.0.0.1:") and info["mwaa_endpoint"].startswith(
        "http://127.0.0.1:"
    )

    # moto serves the rest of AWS; the emulator serves MWAA
    s3 = prepare_account(env["AWS_ENDPOINT_URL"])
    s3.put_object(Bucket="mwaa-dags-bucket", Key="dags/hello.py", Body=b"# a DAG")
    client = mwaa_client(env["AWS_ENDPOINT_URL_MWAA"])
    client.create_environment(**create_params("blue"))
    assert wait_status(client, "blue", "AVAILABLE")["AirflowVersion"] == "2.9.2"

    again = local_json("up", "--state-dir", str(state_dir), "--runtime", FAKE_RUNTIME)
    assert again["already_running"] is True
    assert [again["pids"]["moto"]["pid"], again["pids"]["mwaa"]["pid"]] == pids

    status = local_json("status", "--state-dir", str(state_dir))
    assert status["running"] is True
    assert {name: s["healthy"] for name, s in status["services"].items()} == {"moto": True, "mwaa": True}
    assert [(e["name"], e["status"], e["airflow_version"]) for e in status["environments"]] == [
        ("blue", "AVAILABLE", "2.9.2")
    ]
    text = local("status", "--state-dir", str(state_dir)).stdout
    assert "blue" in text and "AVAILABLE" in text

    down = local_json("down", "--state-dir", str(state_dir))
    assert down["stopped"] == ["mwaa", "moto"] and down["removed_state"] is False
    assert not any(pid_alive(pid) for pid in pids)
    assert not any(port_open(port) for port in ports)
    assert local_json("status", "--state-dir", str(state_dir))["services"] == {}

    # up again: the environment is resumed and moto's data replayed
    info = local_json("up", "--state-dir", str(state_dir), "--runtime", FAKE_RUNTIME)
    pids = [info["pids"]["moto"]["pid"], info["pids"]["mwaa"]["pid"]]
    env = json.loads((state_dir / "env.json").read_text())
    client = mwaa_client(env["AWS_ENDPOINT_URL_MWAA"])
    assert client.get_environment(Name="blue")["Environment"]["Status"] == "AVAILABLE"
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert s3.get_object(Bucket="mwaa-dags-bucket", Key="dags/hello.py")["Body"].read() == b"# a DAG"
    calls = [json.loads(line)["op"] for line in (state_dir / "runtime" / "fake-runtime-calls.jsonl").open()]
    assert calls == ["create", "shutdown", "resume"]
    # the recording was compacted to the requests that changed something before it was replayed
    recorded = [json.loads(line) for line in (state_dir / "moto-recording.jsonl").open()]
    assert [entry["method"] for entry in recorded][:2] == ["PUT", "PUT"]

    down = local_json("down", "--state-dir", str(state_dir), "--remove-state", "--yes")
    assert down["removed_state"] is True
    assert not state_dir.exists()
    assert not any(pid_alive(pid) for pid in pids)


def test_faults_through_the_cli(state_dir: Path) -> None:
    local("up", "--state-dir", str(state_dir), "--runtime", FAKE_RUNTIME)
    env = json.loads((state_dir / "env.json").read_text())
    client = mwaa_client(env["AWS_ENDPOINT_URL_MWAA"])
    prepare_account(env["AWS_ENDPOINT_URL"])
    local("fault", "fail-create", "green", "-m", "no capacity", "--state-dir", str(state_dir))
    client.create_environment(**create_params("green"))
    failed = wait_status(client, "green", "CREATE_FAILED")
    assert failed["LastUpdate"]["Error"]["ErrorMessage"] == "no capacity"
    client.create_environment(**create_params("blue"))
    wait_status(client, "blue", "AVAILABLE")
    out = local("fault", "fail-update", "blue", "--rollback-fails", "--state-dir", str(state_dir)).stdout
    assert "Armed fail_update for blue" in out
    client.update_environment(Name="blue", AirflowVersion="2.10.3")
    assert wait_status(client, "blue", "UNAVAILABLE")["AirflowVersion"] == "2.9.2"
    faults = local_json("fault", "throttle", "blue", "--count", "2", "--state-dir", str(state_dir))
    assert faults["throttle"] == [{"environment": "blue", "count": 2}]
    local("fault", "clear", "--state-dir", str(state_dir))
    assert json.loads(local("fault", "list", "--state-dir", str(state_dir)).stdout)["throttle"] == []


def test_down_when_nothing_runs(tmp_path: Path) -> None:
    result = local("down", "--state-dir", str(tmp_path / "never-started"))
    assert "Nothing was running." in result.stdout


def test_a_busy_port_is_a_user_error_without_traceback(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = local("up", "--state-dir", str(tmp_path / "s"), "--port-mwaa", str(port), check=False)
    assert result.returncode == 1
    assert f"error: port {port} for the MWAA emulator is not free on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s" / "pids.json").exists()


def test_fault_without_a_stack_is_a_user_error(tmp_path: Path) -> None:
    result = local("fault", "kill-scheduler", "blue", "--state-dir", str(tmp_path / "none"), check=False)
    assert result.returncode == 1
    assert "the local stack is not running" in result.stderr
    assert "hint: start it with `mwaa-iac local up`" in result.stderr


def test_remove_state_needs_confirmation_when_not_interactive(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    result = local("down", "--state-dir", str(tmp_path / "s"), "--remove-state", check=False)
    assert result.returncode == 2
    assert "add --yes to confirm" in result.stderr
    assert (tmp_path / "s").exists()


def entry(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict[str, Any]:
    import base64

    return {
        "method": method,
        "url": url,
        "headers": headers or {},
        "body": base64.b64encode(body).decode(),
        "body_encoded": True,
    }


def test_recording_compaction_keeps_only_changes(tmp_path: Path) -> None:
    moto = "http://127.0.0.1:5000"
    ssm_put = entry("POST", moto + "/", b"{}", {"X-Amz-Target": "AmazonSSM.PutParameter"})
    ssm_get = entry("POST", moto + "/", b"{}", {"X-Amz-Target": "AmazonSSM.GetParameter"})
    heartbeat = entry("POST", moto + "/", b"Action=PutMetricData&Namespace=AmazonMWAA&MetricData.member.1=x")
    custom_metric = entry("POST", moto + "/", b"Action=PutMetricData&Namespace=Mine")
    cbor_list = entry("POST", moto + "/service/GraniteServiceVersion20100801/operation/ListMetrics", b"\xa0")
    s3_put = entry("PUT", moto + "/bucket/dags/a.py", b"# dag")
    s3_get = entry("GET", moto + "/bucket/dags/a.py")
    assert [
        is_mutation(e) for e in (ssm_put, ssm_get, heartbeat, custom_metric, cbor_list, s3_put, s3_get)
    ] == [True, False, False, True, False, True, False]
    path = tmp_path / "recording.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in (s3_put, s3_get, ssm_put, heartbeat)) + "garbage\n")
    assert compact_recording(path) == (2, 3)
    assert [json.loads(line)["method"] for line in path.read_text().splitlines()] == ["PUT", "POST"]
