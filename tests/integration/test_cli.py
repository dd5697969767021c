"""The real entry point as a subprocess, as a user or CI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mwaa_iac.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_versions_path_json_goes_through_2_11() -> None:
    result = run("versions", "path", "--from", "2.10.3", "--to", "3.3.1", "--json", "--today", "2026-11-23")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["allowed"] is True
    assert [h["to_version"] for h in data["hops"]][-2:] == ["2.11.2", "3.3.1"]
    assert all(h["reason"] for h in data["hops"])


def test_refused_path_exits_1_with_reason() -> None:
    result = run("versions", "path", "--from", "1.10.12", "--to", "2.10.3", "--strategy", "in-place")
    assert result.returncode == 1
    assert "cannot be upgraded in place" in result.stderr
    data = json.loads(
        run(
            "versions", "path", "--from", "1.10.12", "--to", "2.10.3", "--strategy", "in-place", "--json"
        ).stdout
    )
    assert data["allowed"] is False and data["refusals"]


def test_versions_list_json() -> None:
    data = json.loads(run("versions", "list", "--json", "--today", "2026-11-23").stdout)
    by_version = {v["version"]: v for v in data["versions"]}
    assert by_version["2.6.3"]["supported"] is False and by_version["2.10.3"]["supported"] is True


def test_render_clone_green_prints_green_at_blue_version() -> None:
    result = run("render", "--env", "example", "--phase", "clone-green")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["green"]["enabled"] is True
    assert data["green"]["airflow_version"] == data["blue"]["airflow_version"] == "2.9.2"


def test_render_writes_file_deterministically(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    assert (
        run(
            "render", "--env", "example", "--phase", "upgrade-green", "--version", "2.10.3", "-o", str(out)
        ).returncode
        == 0
    )
    first = out.read_bytes()
    run("render", "--env", "example", "--phase", "upgrade-green", "--version", "2.10.3", "-o", str(out))
    assert out.read_bytes() == first and json.loads(first)["green"]["airflow_version"] == "2.10.3"


def test_bad_config_exit_2_names_file_and_key(workspace_root: Path) -> None:
    config = workspace_root / "environments" / "demo" / "mwaa.yaml"
    config.write_text(config.read_text().replace("mw1.small", "mw1.giant"))
    result = run("render", "--env", "demo", "--root", str(workspace_root))
    assert result.returncode == 2
    assert "mwaa.yaml: environment_class: unknown environment class 'mw1.giant'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_env_and_phase_are_usage_errors() -> None:
    missing = run("render", "--env", "nope")
    assert missing.returncode == 2 and "environments here: example" in missing.stderr
    bad_phase = run("render", "--env", "example", "--phase", "clone-blue")
    assert bad_phase.returncode == 2 and "clone-green" in bad_phase.stderr
    bad_version = run("render", "--env", "example", "--phase", "upgrade-green", "--version", "9.9.9")
    assert bad_version.returncode == 2 and "not a version Amazon MWAA offers" in bad_version.stderr


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("versions", "render", "plan", "apply"):
        assert command in result.stdout


def test_cutover_on_ci_without_shared_state_is_refused_before_any_aws_call(workspace_root: Path) -> None:
    result = run(
        "cutover", "--env", "demo", "--dry-run",
        cwd=workspace_root,
        env={"CI": "true", "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
             "AWS_SECRET_ACCESS_KEY": "x"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "state.s3_bucket is required on a CI runner" in result.stderr
    assert "s3_bucket:" in result.stderr


def test_sigterm_unwinds_and_exits_143_as_the_readme_says(monkeypatch) -> None:
    """A cancelled CI job sends SIGTERM: the command unwinds (locks released) and exits 128 + 15."""
    import os
    import signal

    import mwaa_iac.cli.root as root

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not unwind the command")

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(root, "app", terminated)
    try:
        assert root.main(["versions", "list"]) == 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    assert "| 143 | terminated (SIGTERM" in readme and "answered no" in readme


def test_no_aws_credentials_is_a_clear_error_not_a_bug(workspace_root: Path, tmp_path: Path) -> None:
    """An AWS problem that reaches the entry point (here: no credentials at all) says what to fix
    and exits 1, never "internal error ... a bug" (exit 4)."""
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""}  # empty: none
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1")
    result = run("status", "--env", "demo", "--root", str(workspace_root), env=env)
    assert result.returncode == 1, result.stderr
    assert "no AWS credentials found" in result.stderr and "internal error" not in result.stderr
    assert "hint:" in result.stderr
