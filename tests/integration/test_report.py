"""The pull-request report over a git repository made here: a commit moving 2.9.2 → 2.10.3, then one
moving 2.10.3 → 3.3.1. Golden files in tests/fixtures/report (regenerate with
MWAA_IAC_UPDATE_GOLDEN=1 after a deliberate change, and read the diff)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber
from rich.console import Console

from mwaa_iac.core.sizing import TableCount, parse_rates
from mwaa_iac.report import ReportOptions, build_report, render_json, render_markdown, render_text
from mwaa_iac.report.aws import read_live_state
from mwaa_iac.report.git import GitError
from mwaa_iac.workflows.sizing import SourceCounts, sizing_section
from mwaa_iac.workspace import open_workspace

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = FIXTURES / "report"
SCHEMA = json.loads((REPO / "mwaa_iac" / "data" / "report.schema.json").read_text("utf-8"))
TODAY = date(2026, 11, 23)
UPDATE = os.environ.get("MWAA_IAC_UPDATE_GOLDEN") == "1"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Fixture",
    "GIT_AUTHOR_EMAIL": "fixture@example.com",
    "GIT_AUTHOR_DATE": "2026-11-01T12:00:00+00:00",
    "GIT_COMMITTER_NAME": "Fixture",
    "GIT_COMMITTER_EMAIL": "fixture@example.com",
    "GIT_COMMITTER_DATE": "2026-11-01T12:00:00+00:00",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
NO_AWS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), "utf-8")


def commit(repo: Path, message: str, tag: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    git(repo, "tag", tag)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with tags: base (2.9.2 deployed), pr1 (wants 2.10.3), deployed (green runs 2.10.3),
    pr2 (wants 3.3.1, with a DAG folder and requirements that do not fit 3.3.1)."""
    repo = tmp_path_factory.mktemp("gitops")
    git(repo, "init", "-q", "-b", "main")
    env_dir = repo / "environments" / "demo"
    env_dir.mkdir(parents=True)
    for name in ("mwaa.yaml", "main.tf", "variables.tf", "settings.auto.tfvars"):
        shutil.copy(GOLDEN / "repo" / name, env_dir / name)
    config = env_dir / "mwaa.yaml"
    commit(repo, "analytics on 2.9.2", "base")

    replace_in(config, 'airflow_version: "2.9.2"', 'airflow_version: "2.10.3"')
    replace_in(env_dir / "settings.auto.tfvars", "log_retention_days = 14", "log_retention_days = 30")
    commit(repo, "upgrade analytics to 2.10.3", "pr1")

    replace_in(
        config,
        'active_color: blue\n  blue: "2.9.2"\n  green: null',
        'active_color: green\n  blue: null\n  green: "2.10.3"',
    )
    commit(repo, "record: green runs 2.10.3", "deployed")

    replace_in(config, 'airflow_version: "2.10.3"', 'airflow_version: "3.3.1"')
    replace_in(config, "min_workers: 1\n", "min_workers: 2\n")
    source = repo / "source"
    shutil.copytree(FIXTURES / "dags" / "airflow2_style", source / "dags")
    (source / "requirements").mkdir()
    shutil.copy(
        FIXTURES / "constraints" / "requirements-conflicting.txt",
        source / "requirements" / "requirements.txt",
    )
    commit(repo, "upgrade analytics to 3.3.1", "pr2")
    return repo


def checkout(repo: Path, tag: str) -> Path:
    git(repo, "checkout", "-q", tag)
    return repo


def stub_live(versions: dict[str, str | None]):
    """A live reader over a stubbed MWAA client: blue/green at the given versions (None: not found)."""
    client = boto3.client(
        "mwaa", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    for color in ("blue", "green"):
        name = f"analytics-{color}"
        version = versions.get(color)
        if version is None:
            stubber.add_client_error(
                "get_environment",
                service_error_code="ResourceNotFoundException",
                service_message=f"Environment {name} not found",
                http_status_code=404,
                expected_params={"Name": name},
            )
        else:
            stubber.add_response(
                "get_environment",
                {
                    "Environment": {
                        "Name": name,
                        "Status": "AVAILABLE",
                        "AirflowVersion": version,
                        "EnvironmentClass": "mw1.small",
                        "LastUpdate": {"Status": "SUCCESS"},
                    }
                },
                {"Name": name},
            )
    stubber.activate()
    return lambda config: read_live_state(config, client=client)


# The golden files' rates: the 2026-11-24 bench results themselves (not the packaged rates, which a
# new `make bench` replaces).
RATES = parse_rates(
    {**json.loads((REPO / "bench" / "results-2026-11-24.json").read_text("utf-8")), "dags_paused": 3},
    date="2026-11-24",
    source="bench/results-2026-11-24.json",
)


def stub_sizing(calls: list | None = None):
    """A sizing reader over fixed counts (what workflows.sizing reads through InvokeRestApi)."""

    def read(config, source: str, passes: int, freeze_hops: tuple[str, ...] = ()) -> dict:
        if calls is not None:
            calls.append((source, passes))
        tables = [
            TableCount("dag_run", 52_000, False, "GET /dags/~/dagRuns (total_entries)"),
            TableCount(
                "task_instance", 520_000, False, "GET /dags/~/dagRuns/~/taskInstances (total_entries)"
            ),
            TableCount(
                "xcom", 480_000, False, "GET /dags/~/dagRuns/~/taskInstances/~/xcomEntries (total_entries)"
            ),
            TableCount("log", 900_000, False, "GET /eventLogs (total_entries)"),
            TableCount("variable", 40, False, "GET /variables (total_entries)"),
            TableCount("connection", 12, False, "GET /connections (total_entries)"),
            TableCount("slot_pool", 4, False, "GET /pools (total_entries)"),
            TableCount("task_fail", 1_300, True, "estimated: one row per failed task instance"),
            TableCount("trigger", None, False, "not counted: no REST endpoint lists it"),
        ]
        counts = SourceCounts(source, tables, dags=45, requests=9)
        return sizing_section(counts, passes=passes, rates=RATES, freeze_hops=freeze_hops)

    return read


def options(base: str, **kwargs) -> ReportOptions:
    return ReportOptions(base=base, today=TODAY, terraform=False, offline=True, **kwargs)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, "utf-8")
    assert path.is_file(), f"{path} missing: run with MWAA_IAC_UPDATE_GOLDEN=1"
    assert text == path.read_text("utf-8"), f"{name} differs from the golden file"


def validate(data: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(SCHEMA).validate(data)


# -- strategy and hops --------------------------------------------------------------------------


def test_minor_upgrade_is_a_two_pass_cutover(history: Path) -> None:
    repo = checkout(history, "pr1")
    calls: list = []
    report = build_report(
        open_workspace("demo", repo),
        options(
            "base",
            live_reader=stub_live({"blue": "2.9.2", "green": None}),
            sizing_reader=stub_sizing(calls),
        ),
    )
    data = report.to_dict()
    decision = data["decision"]
    assert decision["kind"] == "upgrade" and decision["strategy"] == "cutover"
    assert calls == [("analytics-blue", 2)]  # the live source, two passes
    sizing = data["sizing"]
    assert sizing["status"] == "estimated" and sizing["dags"] == 45 and sizing["estimated_rows"] == 1_300
    assert sizing["pass1_copy"]["low_s"] > 0 and sizing["freeze"]["low_s"] < sizing["freeze"]["high_s"]
    hops = decision["path"]["hops"]
    assert [(h["kind"], h["from_version"], h["to_version"]) for h in hops] == [
        ("new-environment", "2.9.2", "2.9.2"),
        ("in-place", "2.9.2", "2.10.3"),
    ]
    assert decision["path"]["two_pass"] is True and decision["history"]["carried"] is True
    assert decision["downtime"]["class"] == "freeze-window"
    assert decision["next_phase"] == "clone-green"
    assert data["changes"]["settings"] == [
        {"key": "airflow_version", "kind": "changed", "before": "2.9.2", "after": "2.10.3"}
    ]
    assert data["changes"]["terraform_files"] == [
        {
            "file": "settings.auto.tfvars",
            "status": "modified",
            "changes": [{"key": "log_retention_days", "kind": "changed", "before": 14, "after": 30}],
            "error": None,
        }
    ]
    assert data["deployed"] == {"active_color": "blue", "version": "2.9.2", "source": "live", "notes": []}
    assert report.status == "change" and report.exit_code(detailed=True) == 2
    validate(data)
    check_golden("upgrade-2.9.2-to-2.10.3.json", render_json(data))
    check_golden("upgrade-2.9.2-to-2.10.3.md", render_markdown(data))


def test_major_upgrade_goes_through_2_11_in_two_passes_with_the_major_hop_in_the_freeze(
    history: Path,
) -> None:
    repo = checkout(history, "pr2")
    report = build_report(
        open_workspace("demo", repo),
        options(
            "deployed",
            live_reader=stub_live({"blue": None, "green": "2.10.3"}),
            source_dir=repo / "source",
            constraints_file=FIXTURES / "constraints" / "constraints-3.3.1-py3.12.txt",
        ),
    )
    data = report.to_dict()
    decision = data["decision"]
    assert decision["strategy"] == "cutover"
    assert [h["to_version"] for h in decision["path"]["hops"]] == ["2.10.3", "2.11.2", "3.3.1"]
    assert decision["path"]["two_pass"] is True and decision["path"]["freeze_hops"] == 1
    assert decision["downtime"]["class"] == "freeze-with-hop"
    assert "2.11.2 → 3.3.1" in decision["downtime"]["short"]
    assert decision["next_phase"] == "clone-blue"  # green is active
    assert {c["key"] for c in data["changes"]["settings"]} == {"airflow_version", "min_workers"}
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["requirements"]["status"] == "failed"
    assert checks["dags"]["status"] == "failed"
    rules = {(f["file"], f["line"], f["rule"]) for f in checks["dags"]["details"]["findings"]}
    assert ("legacy_etl.py", 16, "AIR301") in rules
    assert data["cost"]["status"] == "estimated" and data["cost"]["estimate"]["low_usd"] > 0
    assert report.status == "failed-checks" and report.exit_code(detailed=True) == 1
    validate(data)
    # The golden files leave the DAG check out: its messages are ruff's and change with ruff releases.
    golden = build_report(
        open_workspace("demo", repo),
        options(
            "deployed",
            live_reader=stub_live({"blue": None, "green": "2.10.3"}),
            sizing_reader=stub_sizing(),
            requirements_file=repo / "source" / "requirements" / "requirements.txt",
            constraints_file=FIXTURES / "constraints" / "constraints-3.3.1-py3.12.txt",
        ),
    ).to_dict()
    validate(golden)
    check_golden("upgrade-2.10.3-to-3.3.1.json", render_json(golden))
    check_golden("upgrade-2.10.3-to-3.3.1.md", render_markdown(golden))


def test_no_change_after_deployment(history: Path) -> None:
    repo = checkout(history, "deployed")
    report = build_report(
        open_workspace("demo", repo), options("deployed", live_reader=stub_live({"green": "2.10.3"}))
    )
    assert report.status == "no-change"
    assert report.exit_code(detailed=True) == 0
    assert report.to_dict()["decision"]["kind"] == "none"
    assert report.to_dict()["sizing"]["summary"] == "sizing not estimated: no cutover: nothing is copied"
    validate(report.to_dict())


def test_in_place_strategy_has_hours_of_downtime(history: Path, tmp_path: Path) -> None:
    repo = checkout(history, "pr1")
    config = repo / "environments" / "demo" / "mwaa.yaml"
    original = config.read_text("utf-8")
    try:
        replace_in(config, "strategy: auto", "strategy: in-place")
        data = build_report(open_workspace("demo", repo), options("base", live=False)).to_dict()
    finally:
        config.write_text(original, "utf-8")
    assert data["decision"]["strategy"] == "in-place"
    assert data["decision"]["downtime"]["class"] == "in-place"
    assert "two hours" in data["decision"]["downtime"]["summary"]
    assert data["decision"]["next_phase"] == "steady" and data["decision"]["next_phase_version"] == "2.10.3"
    assert data["cost"]["status"] == "skipped"
    assert data["live"]["skipped"] is True
    assert data["sizing"]["status"] == "skipped"
    validate(data)


def test_new_environment_at_base(history: Path) -> None:
    repo = checkout(history, "pr1")
    env_dir = repo / "environments" / "fresh"
    shutil.copytree(repo / "environments" / "demo", env_dir)
    try:
        replace_in(
            env_dir / "mwaa.yaml", 'active_color: blue\n  blue: "2.9.2"', "active_color: blue\n  blue: null"
        )
        data = build_report(open_workspace("fresh", repo), options("base", live=False)).to_dict()
    finally:
        shutil.rmtree(env_dir)
    assert data["changes"]["new_environment"] is True
    assert data["base"]["config_found"] is False
    assert data["decision"]["kind"] == "create"
    assert {f["status"] for f in data["changes"]["terraform_files"]} == {"added"}
    validate(data)


def test_unknown_ref_and_not_a_repository(history: Path, tmp_path: Path, workspace_root: Path) -> None:
    repo = checkout(history, "pr1")
    with pytest.raises(GitError, match="unknown git ref 'no-such-branch'"):
        build_report(open_workspace("demo", repo), options("no-such-branch", live=False))
    with pytest.raises(GitError, match="not inside a git repository"):
        build_report(open_workspace("demo", workspace_root), options("main", live=False))


# -- live state ---------------------------------------------------------------------------------


def test_live_state_without_credentials_says_so(monkeypatch: pytest.MonkeyPatch, history: Path) -> None:
    for key, value in NO_AWS.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    config = open_workspace("demo", checkout(history, "pr1")).load()
    state = read_live_state(config, session=boto3.session.Session())
    assert state.read is False
    assert state.message().startswith("live state could not be read: no AWS credentials found")


def test_live_state_with_unreachable_endpoint_says_so(monkeypatch: pytest.MonkeyPatch, history: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    config = open_workspace("demo", checkout(history, "pr1")).load()
    state = read_live_state(config, session=boto3.session.Session())
    assert state.read is False
    assert "cannot reach the AWS endpoint" in state.message() and "127.0.0.1:9" in state.message()


# -- the command, as CI runs it -----------------------------------------------------------------

_RUN_CLI = """
import sys
from mwaa_iac import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if NO_AWS.get(k, "") is not None}
    env.update({k: v for k, v in NO_AWS.items() if v is not None})
    env.update({"NO_COLOR": "1", "PYTHONPATH": str(REPO)})
    return subprocess.run(
        [sys.executable, "-c", _RUN_CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_detailed_exit_codes(history: Path, tmp_path: Path) -> None:
    repo = checkout(history, "pr1")
    common = ("report", "--env", "demo", "--today", "2026-11-23", "--no-terraform", "--detailed-exitcode")
    out = tmp_path / "report.md"
    changed = run_cli(*common, "--base", "base", "--format", "markdown", "--out", str(out), cwd=repo)
    assert changed.returncode == 2, changed.stderr
    assert changed.stdout.startswith("<!-- mwaa-iac-report env=demo -->")
    assert "live state could not be read: no AWS credentials found" in changed.stdout
    assert out.read_text("utf-8") == changed.stdout

    checkout(history, "deployed")
    same = run_cli(*common, "--base", "deployed", "--format", "json", "--no-live", cwd=repo)
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["verdict"]["status"] == "no-change"

    error = run_cli(*common, "--base", "no-such-ref", cwd=repo)
    assert error.returncode == 1
    assert "unknown git ref" in error.stderr
    usage = run_cli(*common[:-1], "--base", "no-such-ref", cwd=repo)
    assert usage.returncode == 2  # without --detailed-exitcode a bad flag is a usage error


def test_cli_refused_path_exits_1(history: Path) -> None:
    repo = checkout(history, "pr1")
    config = repo / "environments" / "demo" / "mwaa.yaml"
    original = config.read_text("utf-8")
    try:
        replace_in(config, 'airflow_version: "2.10.3"', 'airflow_version: "2.4.3"')  # end of support
        result = run_cli(
            "report", "--env", "demo", "--today", "2026-11-23", "--no-terraform", "--no-live", cwd=repo
        )
    finally:
        config.write_text(original, "utf-8")
    assert result.returncode == 1
    assert "Refused" in result.stdout and "end of support" in result.stdout


def test_cli_terraform_unavailable_is_reported_not_fatal(history: Path, tmp_path: Path) -> None:
    repo = checkout(history, "pr1")
    fake = tmp_path / "terraform"
    fake.write_text("#!/bin/sh\necho 'Error: no providers here' >&2\nexit 1\n", "utf-8")
    fake.chmod(0o755)
    args = ["report", "--env", "demo", "--today", "2026-11-23", "--no-live", "--format", "json"]
    result = run_cli(*args, "--terraform-bin", str(fake), cwd=repo)
    assert result.returncode == 0, result.stderr
    terraform = json.loads(result.stdout)["terraform"]
    assert terraform["ran"] is False
    assert terraform["reason"].startswith("Terraform could not run:")


# -- the cost table: one builder for the Markdown report, the text report and `mwaa-iac cost` -------


def test_the_cost_tables_share_their_rows() -> None:
    import io

    from rich.console import Console

    from mwaa_iac.report.render import cost_rows, cost_table, cost_total, render_text

    data = json.loads((FIXTURES / "report" / "upgrade-2.9.2-to-2.10.3.json").read_text("utf-8"))
    estimate = data["cost"]["estimate"]
    rows = cost_rows(estimate)
    assert len(rows) == len(estimate["lines"]) > 0
    markdown = render_markdown(data)
    for table in (cost_table(estimate, title="t"), cost_table(estimate, boxed=False)):
        buffer = io.StringIO()
        Console(file=buffer, no_color=True, width=200).print(table)
        for row in rows:
            assert row.cost in buffer.getvalue() and row.quantity in buffer.getvalue()
        assert cost_total(estimate) in buffer.getvalue()
    for row in rows:
        assert f"| {row.quantity} |" in markdown and f"| {row.cost} |" in markdown
    assert any(isinstance(item, type(cost_table(estimate))) for item in render_text(data))


# -- the sizing estimate --------------------------------------------------------------------------


def test_sizing_counts_the_live_source_through_invoke_rest_api(
    monkeypatch: pytest.MonkeyPatch, history: Path
) -> None:
    """Without a sizing reader the report counts the active colour's rows through InvokeRestApi (one
    limit=1 request per count); an unreachable source gives the reason, and the report is still made."""
    import mwaa_iac.report.aws as report_aws
    import mwaa_iac.report.build as report_build
    import mwaa_iac.workflows.sizing as sizing_workflow

    repo = checkout(history, "pr1")
    live = stub_live({"blue": "2.9.2", "green": None})
    monkeypatch.setattr(report_build, "read_live_state", live)
    monkeypatch.setattr(sizing_workflow, "MIN_INTERVAL_S", 0.0)
    calls: list[tuple[str, str, dict]] = []

    class Client:
        def invoke_rest_api(self, Name: str, Path: str, Method: str, QueryParameters=None) -> dict:
            calls.append((Name, Path, QueryParameters))
            return {"RestApiStatusCode": 200, "RestApiResponse": {"total_entries": 10}}

    monkeypatch.setattr(report_aws, "mwaa_client", lambda region, session=None: Client())
    data = build_report(open_workspace("demo", repo), options("base")).to_dict()
    sizing = data["sizing"]
    assert sizing["status"] == "estimated" and sizing["environment"] == "analytics-blue"
    # nine counts (limit=1) and one page of DAGs (the bulk pause is planned from their ids)
    assert {name for name, _, _ in calls} == {"analytics-blue"} and len(calls) <= 10
    console = Console(width=160, record=True, color_system=None)
    for item in render_text(data):
        console.print(item)
    text = console.export_text()
    assert "Sizing" in text and "freeze window" in text and "task_instance" in text
    assert all(query["limit"] == 1 for _, path, query in calls if query.get("offset") is None)
    validate(data)

    class Down:
        def invoke_rest_api(self, **kwargs) -> dict:
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    monkeypatch.setattr(report_build, "read_live_state", stub_live({"blue": "2.9.2", "green": None}))
    monkeypatch.setattr(report_aws, "mwaa_client", lambda region, session=None: Down())
    data = build_report(open_workspace("demo", repo), options("base")).to_dict()
    assert data["sizing"]["status"] == "unavailable" and "127.0.0.1:9" in data["sizing"]["summary"]
    assert "sizing not available" in render_markdown(data)
    validate(data)


def test_sizing_is_left_out_with_the_reason(history: Path) -> None:
    repo = checkout(history, "pr1")
    data = build_report(open_workspace("demo", repo), options("base", live=False)).to_dict()
    assert data["sizing"]["status"] == "skipped"
    assert data["sizing"]["summary"] == "sizing not estimated: live state not read: not requested (--no-live)"
    stubbed = build_report(
        open_workspace("demo", repo), options("base", live_reader=stub_live({"blue": "2.9.2", "green": None}))
    ).to_dict()
    assert stubbed["sizing"]["summary"] == "sizing not estimated: no sizing reader for this live state"
    markdown = render_markdown(data)
    assert "| Sizing | sizing not estimated: live state not read" in markdown
    validate(data)
