"""The --json contract: the long-running commands write JSON lines on stdout (one object per line,
nothing else), ending with exactly one summary event; the workflows are faked, the CLI is real."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mwaa_iac.cli import main

SUMMARIES = {
    "upgrade": "upgrade.summary",
    "cutover": "cutover.summary",
    "rollback": "rollback.summary",
    "cleanup": "cleanup.summary",
    "backup": "backup.summary",
    "restore": "restore.summary",
    "apply": "apply.summary",
}


@pytest.fixture(autouse=True)
def _offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients are made (never called): a region and dummy credentials, nothing reachable."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_COLOR", raising=False)


def json_lines(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.splitlines()
    assert lines, "no output on stdout"
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(e, dict) and isinstance(e.get("event"), str) for e in events), events
    return events


def run_json(capsys: pytest.CaptureFixture[str], command: str, *args: str) -> list[dict[str, Any]]:
    code = main([command, *args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    events = json_lines(captured.out)
    summary = SUMMARIES[command]
    assert [e["event"] for e in events].count(summary) == 1, [e["event"] for e in events]
    assert events[-1]["event"] == summary
    return events


WATCH = {"event": "watch.status", "status": "UPDATING", "elapsed_s": 3.0}


def test_backup_and_restore(monkeypatch, capsys, workspace_root: Path) -> None:
    import mwaa_iac.workflows.backup as backup

    def take_backup(config, name, *, mwaa, s3, emit, timing):
        emit({"event": "backup.started", "environment": name})
        emit({"event": "backup.done", "location": "s3://b/p"})
        return {
            "location": "s3://b/p",
            "environment": name,
            "deployment": "analytics",
            "airflow_version": "2.9.2",
            "factory": "2.9",
            "created": "20261206T080000Z",
            "records": {"a": 1},
            "mwaa_dr_delivery": {"versions": {}, "vendored": True},
        }

    def restore_backup(config, source, *, mwaa, s3, emit, timing, routing, store, env, break_glass):
        emit(
            {"event": "restore.summary", "environment": "analytics-green", "from": source, "tables": {"a": 1}}
        )
        return {"environment": "analytics-green", "tables": {"a": 1}}

    monkeypatch.setattr(backup, "take_backup", take_backup)
    monkeypatch.setattr(backup, "restore_backup", restore_backup)
    root = ("--env", "demo", "--root", str(workspace_root))
    events = run_json(capsys, "backup", *root)
    assert [e["event"] for e in events] == ["backup.started", "backup.done", "backup.summary"]
    assert events[-1]["location"] == "s3://b/p"
    events = run_json(capsys, "restore", *root, "--from", "s3://b/p", "--yes")
    assert events[-1]["tables"] == {"a": 1}


def test_rollback_and_cleanup(monkeypatch, capsys, workspace_root: Path) -> None:
    import mwaa_iac.workflows.cutover as cutover

    def rollback(ws, config, mwaa, routing, emit, store, *, break_lock=False):
        emit({"event": "rollback.summary", "active": "analytics-blue"})
        return {"active": "analytics-blue", "unpaused": [], "dags": {}}

    def cleanup(ws, config, mwaa, s3, emit, store, *, backups, watch, break_lock, routing, break_glass):
        emit(WATCH)
        emit({"event": "cleanup.summary", "retired": "analytics-green"})
        return {"retired": "analytics-green", "dag_files_removed": [], "backups_deleted": 0}

    monkeypatch.setattr(cutover, "rollback", rollback)
    monkeypatch.setattr(cutover, "cleanup", cleanup)
    root = ("--env", "demo", "--root", str(workspace_root), "--yes")
    assert run_json(capsys, "rollback", *root)[-1]["active"] == "analytics-blue"
    events = run_json(capsys, "cleanup", *root)
    assert events[0] == WATCH and events[-1]["retired"] == "analytics-green"


def test_upgrade(monkeypatch, capsys, workspace_root: Path) -> None:
    import mwaa_iac.workflows.upgrade as upgrade

    seen: dict[str, Any] = {}

    class FakeUpgrade:
        def __init__(
            self,
            ws,
            config,
            options,
            mwaa,
            cloudwatch,
            *,
            emit,
            backup_hook,
            requirements_check,
            routing,
            hazard_scan,
        ):
            seen.update(options=options, backup_hook=backup_hook, requirements_check=requirements_check)
            seen.update(hazard_scan=hazard_scan)
            self.emit = emit

        def run(self):
            self.emit({"event": "hop.started", "index": 1, "from": "2.9.2", "to": "2.10.3", "reason": "r"})
            self.emit(WATCH)
            self.emit({"event": "upgrade.summary", "environment": "analytics-blue", "outcome": "succeeded"})
            return SimpleNamespace(dry_run=False)

    monkeypatch.setattr(upgrade, "Upgrade", FakeUpgrade)
    args = ("--env", "demo", "--root", str(workspace_root), "--yes", "--engine", "api", "--to", "2.10.3")
    events = run_json(capsys, "upgrade", *args, "--constraints", "c.txt")
    assert events[1] == WATCH
    assert seen["options"].engine == "api" and seen["options"].constraints == "c.txt"
    assert callable(seen["backup_hook"]) and callable(seen["requirements_check"])
    assert callable(seen["hazard_scan"])


PLAN = {
    "dry_run": True,
    "from": "2.9.2",
    "to": "2.10.3",
    "history_carried": True,
    "passes": 2,
    "freeze": "pass 2 only (minutes)",
    "hops": [],
    "notes": [],
    "mwaa_dr_delivery": None,
    "in_flight_policy": "",
    "catchup_without_history": [],
    "sizing": {},
}


@pytest.mark.parametrize("dry_run", [False, True])
def test_cutover(monkeypatch, capsys, workspace_root: Path, dry_run: bool) -> None:
    import mwaa_iac.workflows.cutover as cutover

    class FakeCutover:
        def __init__(self, ws, config, options, *clients, emit):
            self.options, self.emit = options, emit
            self.requirements_check = None

        def catchup_without_history(self):
            return []

        def run(self):
            self.emit({"event": "step.started", "step": "preflight"})
            self.emit({"event": "step.done", "step": "preflight", "elapsed_s": 1.0})
            report = {"source": "analytics-blue", "target": "analytics-green"}
            if self.options.dry_run:  # the workflow emits its plan as cutover.plan
                self.emit({"event": "cutover.plan", **report, **PLAN})
                return {**report, **PLAN}
            self.emit({"event": "cutover.summary", **report})
            return report

    monkeypatch.setattr(cutover, "Cutover", FakeCutover)
    args = ["--env", "demo", "--root", str(workspace_root), "--yes", "--engine", "api"]
    if dry_run:
        code = main(["cutover", *args, "--dry-run", "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert json_lines(captured.out)[-1]["event"] == "cutover.plan"
    else:
        assert run_json(capsys, "cutover", *args)[-1]["target"] == "analytics-green"


PLAN_DICT = {
    "env": "demo",
    "phase": "steady",
    "active_color": "blue",
    "tfvars_file": "steady.tfvars.json",
    "plan_file": "steady.tfplan",
    "has_changes": True,
    "summary": {},
    "guard": {},
}


@pytest.mark.parametrize("changes", [False, True])
def test_apply(monkeypatch, capsys, workspace_root: Path, changes: bool) -> None:
    import mwaa_iac.workflows.phase as phase

    result = SimpleNamespace(
        verdict=SimpleNamespace(allowed=True),
        has_changes=changes,
        phase="steady",
        to_dict=lambda: PLAN_DICT,
    )
    applied: list[object] = []
    monkeypatch.setattr(phase, "runner_for", lambda ws, terraform_bin, on_line: object())
    monkeypatch.setattr(phase, "live_files_or_note", lambda config: ({}, None))
    monkeypatch.setattr(phase, "plan_phase", lambda *args, **kwargs: result)
    monkeypatch.setattr(phase, "apply_phase", lambda result, runner: applied.append(result))
    events = run_json(capsys, "apply", "--env", "demo", "--root", str(workspace_root), "--yes")
    assert events == [{"event": "apply.summary", **PLAN_DICT, "applied": changes}]
    assert applied == ([result] if changes else [])


def test_a_bad_engine_is_a_usage_error(capsys, workspace_root: Path) -> None:
    code = main(["upgrade", "--env", "demo", "--root", str(workspace_root), "--engine", "pulumi"])
    assert code == 2
    assert "pulumi" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["versions", "list", "--today", "2026-11-23"],
        ["versions", "path", "--from", "2.9.2", "--to", "2.10.3", "--today", "2026-11-23"],
        ["cost", "--env", "demo", "--hours", "48"],
    ],
)
def test_short_commands_print_one_json_document(capsys, workspace_root: Path, argv: list[str]) -> None:
    code = main([*argv, "--json", *(["--root", str(workspace_root)] if "--env" in argv else [])])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert isinstance(json.loads(captured.out), dict)


def test_apply_refused_by_the_guard_says_so_last(monkeypatch, capsys, workspace_root: Path) -> None:
    import mwaa_iac.workflows.phase as phase

    result = SimpleNamespace(
        verdict=SimpleNamespace(allowed=False), has_changes=True, phase="steady", to_dict=lambda: PLAN_DICT
    )
    applied: list[object] = []
    monkeypatch.setattr(phase, "runner_for", lambda ws, terraform_bin, on_line: object())
    monkeypatch.setattr(phase, "live_files_or_note", lambda config: ({}, None))
    monkeypatch.setattr(phase, "plan_phase", lambda *args, **kwargs: result)
    monkeypatch.setattr(phase, "apply_phase", lambda result, runner: applied.append(result))
    code = main(["apply", "--env", "demo", "--root", str(workspace_root), "--yes", "--json"])
    assert code == 1
    assert json_lines(capsys.readouterr().out) == [{"event": "apply.summary", **PLAN_DICT, "applied": False}]
    assert applied == []


def test_cutover_dry_run_text_shows_the_migration_hazards(monkeypatch, capsys, workspace_root: Path) -> None:
    import mwaa_iac.workflows.cutover as cutover

    hazards = {
        "scanned": True,
        "environment": "analytics-blue",
        "estimate_minutes": 0.1,
        "findings": [
            {"name": "nan-json-xcom", "count": 2, "blocking": True, "accepted": True, "fix": "delete them"},
            {"name": "pickled-xcom", "count": 1, "blocking": False, "accepted": False, "fix": "[re-push]"},
        ],
        "db_clean_dag": "/tmp/db_clean.py",
    }

    class FakeCutover:
        def __init__(self, ws, config, options, *clients, emit):
            self.requirements_check = None

        def catchup_without_history(self):
            return []

        def run(self):
            return {
                "source": "analytics-blue",
                "target": "analytics-green",
                **PLAN,
                "migration_hazards": hazards,
            }

    monkeypatch.setattr(cutover, "Cutover", FakeCutover)
    code = main(["cutover", "--env", "demo", "--root", str(workspace_root), "--engine", "api", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "migration hazards (2 → 3, scanned on analytics-blue): 2" in out
    assert "nan-json-xcom: 2 row(s) (fix: delete them)" in out and "(fix: [re-push])" in out
    assert "`airflow db clean` DAG written to /tmp/db_clean.py" in out
