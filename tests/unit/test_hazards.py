"""The 2 → 3 migration-hazard preflight: what a scan's answer means (core/hazards.py), the probe's
own helpers (dr_runtime/dags/probe.py, loaded without Airflow), and the workflow that runs the scan
and turns it into preflight checks (workflows/hazards.py), with the probe faked."""

from __future__ import annotations

import ast
import hashlib
import json
import math
import pickle
import sys
import types
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from mwaa_iac.core import constants_block, dr, hazards
from mwaa_iac.core.planner import Strategy, plan_path
from mwaa_iac.workflows import hazards as workflow
from mwaa_iac.workspace import load_config

TODAY = date(2026, 11, 23)


def _scan(**found: dict[str, Any]) -> dict[str, Any]:
    rows = {"task_instance": 1200, "dag_run": 40, "xcom": 300}
    return {"version": hazards.SCAN_VERSION, "rows": rows, "found": found, "xcom_limit": hazards.XCOM_LIMIT}


def _found(count: int, *pairs: tuple[str, str | None], runs: int | None = None) -> dict[str, Any]:
    return {"count": count, "runs": len(pairs) if runs is None else runs, "ids": [list(p) for p in pairs]}


# -- core ----------------------------------------------------------------------------------------


def test_a_clean_scan_finds_nothing_on_a_fixed_target() -> None:
    assessment = hazards.assess(_scan(**{"task-instances": _found(1200, ("etl", None))}), "3.3.1")
    assert assessment.findings == () and assessment.failed == ()
    assert "none found (1,200 task instances, 300 XComs, 40 runs)" in hazards.summary_text(assessment)


@pytest.mark.parametrize(
    ("name", "blocking"),
    [
        ("nan-json-xcom", True),
        ("nul-json-xcom", True),
        ("xcom-over-256mb", True),
        ("pickled-xcom", False),
        ("pickled-dag-run-conf", False),
    ],
)
def test_each_scanned_category_is_a_finding_with_its_ids_and_fix(name: str, blocking: bool) -> None:
    scan = _scan(**{name: _found(3, ("etl", "manual__1"), ("etl", "manual__2"), runs=5)})
    (item,) = hazards.assess(scan, "3.3.1").findings
    assert item.name == name and item.count == 3 and item.hazard.blocking is blocking
    assert item.ids == (("etl", "manual__1"), ("etl", "manual__2")) and item.failed is blocking
    text = item.text()
    assert "in 5 run(s): etl/manual__1, etl/manual__2 and 3 more" in text
    assert f"fix: {hazards.BY_NAME[name].fix}" in text
    assert item.to_dict()["ids"] == [["etl", "manual__1"], ["etl", "manual__2"]]


def test_an_accepted_blocking_finding_no_longer_fails() -> None:
    scan = _scan(**{"nan-json-xcom": _found(1, ("etl", "r1"))})
    (item,) = hazards.assess(scan, "3.3.1", accepted=["nan-json-xcom"]).findings
    assert item.accepted and not item.failed and "accepted (--accept-hazard)" in item.text()


def test_unknown_accepted_names_are_reported() -> None:
    assert hazards.assess(_scan(), "3.3.1", accepted=["nan-xcom"]).unknown == ("nan-xcom",)


def test_historic_task_instances_block_only_before_3_2_1() -> None:
    scan = _scan(**{"task-instances": _found(1200, ("etl", None), ("report", None), runs=3)})
    (item,) = hazards.assess(scan, "3.0.6").findings
    assert item.name == "null-dag-version-before-3.2.1" and item.failed
    assert "in 3 DAG(s): etl, report and 1 more" in item.text()
    assert hazards.assess(scan, "3.2.1").findings == ()


def test_the_ids_that_travel_are_bounded() -> None:
    pairs = [("d", f"r{i}") for i in range(50)]
    (item,) = hazards.assess(_scan(**{"pickled-xcom": _found(50, *pairs)}), "3.3.1").findings
    assert len(item.ids) == hazards.MAX_IDS and "and 40 more" in item.text()


def test_no_answer_is_a_blocking_finding_that_can_be_accepted() -> None:
    (item,) = hazards.assess(None, "3.3.1", error="the probe failed: boom").findings
    assert item.name == hazards.SCAN_FAILED and item.failed and "the probe failed: boom" in item.text()
    assert not hazards.assess({"version": 99}, "3.3.1", accepted=[hazards.SCAN_FAILED]).failed


def test_the_estimate_follows_the_measured_migration_times() -> None:
    for millions, minutes in hazards.MIGRATION_MEASURED:
        estimate = hazards.estimate_minutes({"task_instance": int(millions * 1e6)})
        assert abs(math.log(estimate / minutes)) < math.log(1.2), (millions, estimate)
    assert hazards.estimate_minutes({}) == 0.0
    # earlier tries are rewritten too
    both = {"task_instance": 2_000_000, "task_instance_history": 2_000_000}
    assert hazards.estimate_minutes(both) == hazards.estimate_minutes({"task_instance": 4_000_000})


def test_a_long_migration_is_a_warning_with_the_db_clean_fix() -> None:
    scan = _scan()
    scan["rows"]["task_instance"] = 5_000_000
    (item,) = hazards.assess(scan, "3.3.1").findings
    assert item.name == "long-migration" and not item.failed
    assert "--write-db-clean-dag" in item.text() and "min estimated for 5,000,000" in item.text()


def test_a_lowered_xcom_limit_is_named_in_the_finding() -> None:
    scan = _scan(**{"xcom-over-256mb": _found(1, ("etl", "r1"))})
    scan["xcom_limit"] = 1000
    (item,) = hazards.assess(scan, "3.3.1").findings
    assert "measured against 1000 bytes" in item.text()


@pytest.mark.parametrize(
    ("source", "target", "history", "expected"),
    [
        ("2.11.2", "3.3.1", True, True),  # in place
        ("2.9.2", "3.3.1", True, True),  # cutover: staged at 2.11, then 3.x in place
        ("2.9.2", "3.3.1", False, False),  # no history: nothing is migrated
        ("2.9.2", "2.10.3", True, False),  # stays on 2
    ],
)
def test_only_a_path_through_airflow_3s_migration_is_scanned(
    source: str, target: str, history: bool, expected: bool
) -> None:
    strategy = Strategy.IN_PLACE if source.startswith("2.11") else Strategy.CUTOVER
    plan = plan_path(source, target, strategy, TODAY, history=history)
    assert plan.allowed and workflow.needs_scan(plan) is expected


def test_the_db_clean_dag_is_real_python_with_its_cutoff() -> None:
    text = hazards.render_db_clean_dag(dr.dag_template(hazards.DB_CLEAN_FILE), TODAY, days=30)
    ast.parse(text)
    block = dict(zip(constants_block.names(text), ("DAG_ID", "CLEAN_BEFORE", "TABLES"), strict=True))
    assert block == {"DAG_ID": "DAG_ID", "CLEAN_BEFORE": "CLEAN_BEFORE", "TABLES": "TABLES"}
    assert "CLEAN_BEFORE = '2026-10-24'" in text and "DAG_ID = 'mwaa_iac_db_clean'" in text
    assert "dry_run" in text and "skip_archive" in text


# -- the probe's helpers, without Airflow ------------------------------------------------------------


@pytest.fixture
def probe_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> types.ModuleType:
    """dr_runtime/dags/probe.py as rendered, with Airflow and the factory stubbed (only its pure
    helpers are called)."""
    airflow = types.ModuleType("airflow")

    class _Dag:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __enter__(self) -> _Dag:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

    airflow.DAG = _Dag  # type: ignore[attr-defined]
    operators = types.ModuleType("airflow.operators")
    python = types.ModuleType("airflow.operators.python")
    python.PythonOperator = lambda **kwargs: None  # type: ignore[attr-defined]
    factory = types.ModuleType("fake_factory")
    factory.DRFactory_2_9 = type("DRFactory_2_9", (), {})  # type: ignore[attr-defined]
    for name, module in {
        "airflow": airflow,
        "airflow.operators": operators,
        "airflow.operators.python": python,
        "fake_factory": factory,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    text = dr.render_probe_dag("DRFactory_2_9", "t").text.replace(
        "mwaa_dr.v_2_9.dr_factory:DRFactory_2_9", "fake_factory:DRFactory_2_9"
    )
    module = types.ModuleType("probe_under_test")
    module.__file__ = str(tmp_path / "probe.py")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the file appends its vendor folder
    exec(compile(text, module.__file__, "exec"), module.__dict__)
    return module


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": NaN}', (True, False)),
        (b"[1, Infinity, -Infinity]", (True, False)),
        (b'{"a": "NaN is a word", "b": "Infinity"}', (False, False)),  # only in strings: fine
        (b'{"a": "x\\u0000y"}', (False, True)),
        (b'{"a\\u0000": 1}', (False, True)),
        (b'{"a": "\\\\u0000 is text"}', (False, False)),  # an escaped backslash, then text
        (b"not json NaN", (False, False)),
    ],
)
def test_the_probe_tells_nan_and_nul_from_text(
    probe_module: types.ModuleType, raw: bytes, expected: tuple[bool, bool]
) -> None:
    assert probe_module._json_problems(raw) == expected


def test_the_probe_counts_an_oversized_candidate_without_parsing(
    probe_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe_module, "PARSE_LIMIT", 4)
    assert probe_module._json_problems(b'{"a": 1}') == (True, False)


def test_the_probe_tells_which_pickled_confs_json_cannot_hold(probe_module: types.ModuleType) -> None:
    assert probe_module._conf_converts(pickle.dumps({"a": [1, "x"]}))
    assert not probe_module._conf_converts(pickle.dumps({"when": datetime(2024, 1, 1)}))
    assert not probe_module._conf_converts(pickle.dumps({"ratio": float("nan")}))
    assert not probe_module._conf_converts(b"\x80\x04not a pickle")


def test_the_probe_bounds_the_ids_it_reports(probe_module: types.ModuleType) -> None:
    found = probe_module._Found(2)
    for run in ("r3", "r1", "r2", "r1"):
        found.add("d", run)
    assert found.answer() == {"count": 4, "runs": 3, "ids": [["d", "r1"], ["d", "r2"]]}


def test_the_probes_sql_tests_pickles_as_the_migration_does(probe_module: types.ModuleType) -> None:
    # Airflow 3.0's migration moves rows with get_byte(value, 0) = 128 to _xcom_archive.
    assert "get_byte(x.value, 0) END = 128" in probe_module.PICKLED
    assert "octet_length(x.value) > 0" in probe_module.PICKLED  # an empty value does not raise


# -- the workflow, with the probe faked -------------------------------------------------------------


class _S3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], str] = {}
        self.deleted: list[str] = []

    def get_text(self, bucket: str, key: str) -> str | None:
        return self.objects.get((bucket, key))

    def delete(self, bucket: str, key: str) -> None:
        self.deleted.append(key)


@pytest.fixture
def config(workspace_root: Path) -> Any:
    return load_config(workspace_root / "environments" / "demo" / "mwaa.yaml")


def _run(
    monkeypatch: pytest.MonkeyPatch, config: Any, answer: dict[str, Any], s3: _S3 | None = None, **kwargs: Any
) -> tuple[workflow.HazardScan, list[dict], list[dict]]:
    asked: list[dict] = []
    events: list[dict] = []

    def fake_probe(runner: Any, config: Any, factory: str, *, role: str, cloudwatch: Any, scan: dict) -> dict:
        asked.append({"factory": factory, "scan": scan})
        return answer(scan) if callable(answer) else answer

    monkeypatch.setattr(workflow, "probe", fake_probe)
    monkeypatch.setattr(workflow, "deploy_dr_files", lambda *args: {"versions": {}, "uploaded": 0})
    monkeypatch.setattr(workflow, "event", lambda kind, fields=None, **more: {"event": str(kind), **more})
    plan = plan_path("2.9.2", kwargs.pop("to", "3.3.1"), Strategy.CUTOVER, TODAY)
    result = workflow.scan_hazards(
        plan,
        environment="demo-blue",
        config=config,
        runner=None,  # type: ignore[arg-type]
        s3=s3 or _S3(),
        emit=events.append,
        **kwargs,
    )
    return result, asked, events


def test_a_blocking_finding_fails_the_preflight_and_is_reported(monkeypatch, config) -> None:
    answer = {
        "scan": _scan(**{"nan-json-xcom": _found(2, ("etl", "r1")), "pickled-xcom": _found(1, ("etl", "r2"))})
    }
    result, asked, events = _run(monkeypatch, config, answer)
    assert asked[0]["factory"] == "DRFactory_2_9" and asked[0]["scan"]["max_ids"] == hazards.MAX_IDS
    checks = {c.name: c for c in result.checks}
    assert not checks["migration hazard nan-json-xcom"].ok
    assert checks["migration hazard pickled-xcom"].ok
    assert checks["migration hazard pickled-xcom"].detail.startswith("warning: 1 rows")
    report = result.report()
    assert report["scanned"] and report["blocking"] == ["nan-json-xcom"]
    assert [e["event"] for e in events] == ["dr.vendor", "preflight.hazards"]


def test_accepting_lets_the_preflight_pass(monkeypatch, config) -> None:
    answer = {"scan": _scan(**{"nan-json-xcom": _found(2, ("etl", "r1"))})}
    result, _, _ = _run(monkeypatch, config, answer, accepted=("nan-json-xcom",))
    assert all(c.ok for c in result.checks)


def test_an_answer_too_long_for_the_note_is_read_from_the_bucket_and_removed(monkeypatch, config) -> None:
    s3 = _S3()

    def answer(scan: dict) -> dict:
        body = json.dumps(_scan(**{"pickled-dag-run-conf": _found(7, ("etl", "r9"))}))
        s3.objects[(config.dr.backup_bucket, scan["key"])] = body
        return {"scan_key": scan["key"], "scan_sha256": hashlib.sha256(body.encode()).hexdigest()}

    result, asked, _ = _run(monkeypatch, config, answer, s3=s3)
    assert asked[0]["scan"]["key"].endswith("/scan.json") and s3.deleted == [asked[0]["scan"]["key"]]
    assert [f.name for f in result.assessment.findings] == ["pickled-dag-run-conf"]


def test_a_tampered_or_missing_answer_is_a_failed_scan(monkeypatch, config) -> None:
    for answer in ({"scan_key": "k", "scan_sha256": "0"}, {}, {"scan_error": "OperationalError: boom"}):
        result, _, _ = _run(monkeypatch, config, answer)
        (check,) = result.checks
        assert check.name == "migration hazard hazard-scan" and not check.ok, answer


def test_nothing_is_scanned_off_the_2_to_3_path_but_the_dag_is_written(monkeypatch, config, tmp_path) -> None:
    path = tmp_path / "db_clean.py"
    result, asked, _ = _run(monkeypatch, config, {}, to="2.10.3", db_clean_dag=str(path), today=TODAY)
    assert asked == [] and result.checks == [] and result.report()["scanned"] is False
    assert "CLEAN_BEFORE = '2026-08-25'" in path.read_text()


def test_an_earlier_failed_check_skips_the_scan(monkeypatch, config) -> None:
    result, asked, _ = _run(monkeypatch, config, {}, run=False)
    assert asked == [] and result.report()["reason"] == "an earlier preflight check failed"


def test_an_unknown_accepted_name_fails(monkeypatch, config) -> None:
    result, _, _ = _run(monkeypatch, config, {"scan": _scan()}, accepted=("nan",))
    assert [c.name for c in result.checks if not c.ok] == ["accept-hazard"]


def test_the_accept_hazard_help_names_every_hazard() -> None:
    from mwaa_iac.cli import options

    help_text = options.AcceptHazardOpt.__metadata__[0].help
    listed = help_text.split("names: ")[1].rstrip(").").split(", ")
    assert tuple(listed) == hazards.NAMES
