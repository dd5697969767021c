"""The sizing estimate: the pure model (mwaa_iac/core/sizing.py), the counts from a live source through
a fake InvokeRestApi (mwaa_iac/workflows/sizing.py), and how `cutover --dry-run` shows it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from rich.console import Console

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.core import sizing
from mwaa_iac.core.sizing import Span, TableCount, copy_span, estimate, format_span, load_rates, parse_rates
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.report.render import sizing_text
from mwaa_iac.workflows import sizing as sizing_workflow

REPO = Path(__file__).resolve().parents[2]
RATES = load_rates()


def bench_tables(task_instances: int) -> list[TableCount]:
    """The tables of a bench-like history (10 tasks a run, one XCom and one log row a task)."""
    return [
        TableCount("dag_run", task_instances // 10),
        TableCount("task_instance", task_instances),
        TableCount("xcom", task_instances),
        TableCount("log", task_instances),
        TableCount("variable", 21),
        TableCount("connection", 10),
        TableCount("slot_pool", 5),
    ]


# -- the rates ----------------------------------------------------------------------------------------


def test_the_packaged_rates_are_the_bench_results_they_name() -> None:
    """sizing_rates.json copies bench/results-2026-11-24.json: the same figures from either file."""
    bench = parse_rates(json.loads((REPO / "bench" / "results-2026-11-24.json").read_text()))
    assert RATES.date == "2026-11-24" and "results-2026-11-24.json" in RATES.source
    assert "2-core" in RATES.machine
    assert [
        (m.size, m.rows, m.backup_s, m.restore_s, m.pause_s, m.go_live_s) for m in RATES.measurements
    ] == [(m.size, m.rows, m.backup_s, m.restore_s, m.pause_s, m.go_live_s) for m in bench.measurements]
    small, large = RATES.measurements
    assert small.rows < large.rows
    assert small.backup_s == pytest.approx(4.091 + 0.073) and large.restore_s == pytest.approx(16.462 + 0.087)


def test_an_older_bench_file_with_other_step_names_parses() -> None:
    """results-2026-11-23 had cleanup-target and fixup steps: they count as the restore's."""
    rates = parse_rates(
        json.loads((REPO / "bench" / "results-2026-11-23.json").read_text()), date="2026-11-23"
    )
    small = rates.measurements[0]
    assert small.restore_s == pytest.approx(3.271 + 19.204 + 3.34 + 0.13)
    assert rates.date == "2026-11-23"


# -- the model ------------------------------------------------------------------------------------------


def test_copy_span_is_a_range_between_the_line_and_the_large_size_rate() -> None:
    points = [(1_000, 5.0), (101_000, 15.0)]  # fixed 4.9 s, 10,000 rows/s marginal
    assert copy_span(101_000, points).low == pytest.approx(15.0)
    assert copy_span(101_000, points).high == pytest.approx(15.0)
    big = copy_span(1_010_000, points)
    assert big.low == pytest.approx(4.9 + 101.0)  # the line
    assert big.high == pytest.approx(150.0)  # every row at the large size's average rate
    tiny = copy_span(10, points)
    assert tiny.low == pytest.approx(4.9) and tiny.high == pytest.approx(4.901)  # never below the fixed cost
    single = copy_span(50_000, [(100_000, 10.0)])
    assert (single.low, single.high) == (5.0, 10.0)  # one size: its fixed part is not known


def test_at_the_measured_sizes_the_estimate_brackets_the_measured_freeze() -> None:
    for measured, task_instances in ((11.2, 3031), (25.4, 105031)):
        result = estimate(bench_tables(task_instances), RATES.dags_paused, RATES, drain_timeout_s=600)
        assert result.freeze.low - 1 <= measured <= result.freeze.high + 1
        assert result.pass1_copy is not None and result.pass1_copy.high < result.freeze.high


def test_a_large_history_gives_a_wide_range_and_says_it_is_extrapolated() -> None:
    result = estimate(bench_tables(10_000_000), 500, RATES, drain_timeout_s=600)
    steps = {s.name: s for s in result.freeze_steps}
    assert steps["restore"].span is not None and steps["restore"].span.high > 1.3 * steps["restore"].span.low
    assert steps["drain"].span is None and "at most 10 min (--drain-minutes)" in steps["drain"].note
    # 500 DAGs one request each: at least 50 s to pause at MWAA's ~10 requests per second.
    assert steps["pause"].span is not None and steps["pause"].span.low >= 50
    assert steps["go-live"].span is not None and steps["go-live"].span.low >= 50
    text = "\n".join(result.assumptions)
    assert "extrapolated" in text and "MWAA's own copy rate is not known" in text
    assert "pass 2 is estimated as a full copy" in text and "only what changed" in text
    assert "2026-11-24" in text
    total = sum(s.span.low for s in result.freeze_steps if s.span)
    assert result.freeze.low == pytest.approx(total)
    assert result.pass1_copy is not None and result.pass1_copy.low > 10 * 60


def test_estimated_and_uncounted_tables_are_named() -> None:
    tables = [
        *bench_tables(3031),
        TableCount("task_fail", 40, True, "estimated"),
        TableCount("trigger", None, False, "not counted"),
    ]
    result = estimate(tables, 3, RATES)
    assert result.estimated_rows == 40 and result.rows == sum(t.rows or 0 for t in tables)
    text = "\n".join(result.assumptions)
    assert "40 of the rows are estimated, not counted (task_fail)" in text
    assert "not counted (left out of the rows): trigger" in text
    data = result.to_dict()
    assert data["rates"]["date"] == "2026-11-24" and data["passes"] == 2
    assert [s["step"] for s in data["freeze_steps"]] == ["pause", "drain", "backup", "restore", "go-live"]


def test_a_delta_pass_2_and_a_single_pass() -> None:
    full = estimate(bench_tables(1_000_000), 10, RATES)
    delta = estimate(bench_tables(1_000_000), 10, RATES, pass2_rows=5_000)
    assert delta.freeze.high < full.freeze.high / 5
    assert "whole history" not in "\n".join(delta.assumptions)
    single = estimate(bench_tables(3031), 3, RATES, passes=1)
    assert single.pass1_copy is None and "single pass" in single.summary()
    assert "single pass" in "\n".join(single.assumptions)


def test_durations_read_as_people_write_them() -> None:
    dash = "\u2013"
    assert format_span(4.04, 4.16) == f"4.0{dash}4.2 s"
    assert format_span(25.2, 25.4) == "25 s"
    assert format_span(99, 140) == f"1.6{dash}2.3 min"
    assert format_span(1500, 2500) == f"25{dash}42 min"
    assert format_span(5000, 9000) == f"1.4{dash}2.5 h"
    assert Span(1, 2) + Span(3, 4) == Span(4, 6)


# -- counts from a live source -------------------------------------------------------------------------

TOTALS = {
    "/dags": 12,
    "/dags/~/dagRuns": 1_000,
    "/dags/~/dagRuns/~/taskInstances": 10_000,
    "/dags/~/dagRuns/~/taskInstances/~/xcomEntries": 9_000,
    "/eventLogs": 20_000,
    "/variables": 30,
    "/connections": 8,
    "/pools": 3,
}


# 12 live DAGs of two teams, 3 paused by their owners, the tool's backup DAG
DAGS = [
    *({"dag_id": f"sales_{i:02d}_daily", "is_paused": False} for i in range(7)),
    *({"dag_id": f"finance_{i:02d}_hourly", "is_paused": False} for i in range(5)),
    *({"dag_id": f"legacy_{i}", "is_paused": True} for i in range(3)),
    {"dag_id": "backup_metadata", "is_paused": False},  # the tool's backup DAG: never paused
]


class FakeInvoke:
    """boto3's mwaa client, InvokeRestApi only: list endpoints answer ``total_entries``."""

    def __init__(self, refuse: tuple[str, ...] = (), down: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.refuse = refuse
        self.down = down

    def invoke_rest_api(self, Name: str, Path: str, Method: str, QueryParameters=None, Body=None) -> dict:
        assert Method == "GET" and len(Path) <= 64
        query = QueryParameters or {}
        self.calls.append((Path, query))
        if self.down is not None:
            raise self.down
        if Path in self.refuse:
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "RestApiClientException", "Message": "Forbidden"},
                    "RestApiStatusCode": 403,
                    "RestApiResponse": {"detail": "Forbidden"},
                },
                "InvokeRestApi",
            )
        if Path == "/dags" and query["limit"] != 1:  # the listing the bulk pause is planned from
            page = DAGS[query.get("offset", 0) : query.get("offset", 0) + query["limit"]]
            return {"RestApiStatusCode": 200, "RestApiResponse": {"dags": page, "total_entries": len(DAGS)}}
        assert query["limit"] == 1
        total = 150 if query.get("state") == "failed" else TOTALS[Path]
        return {"RestApiStatusCode": 200, "RestApiResponse": {"items": [], "total_entries": total}}


class FakeMwaa:
    def __init__(self, client: FakeInvoke) -> None:
        self.client = client


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _count(client: FakeInvoke, clock: Clock | None = None) -> sizing_workflow.SourceCounts:
    clock = clock or Clock()
    api = AirflowApi(FakeMwaa(client), "analytics-blue", retries=0, sleep=clock.sleep)  # type: ignore[arg-type]
    return sizing_workflow.count_source(api, sleep=clock.sleep, clock=clock)


def test_counts_come_from_a_handful_of_limit_1_requests_spaced_for_mwaa() -> None:
    client, clock = FakeInvoke(), Clock()
    counts = _count(client, clock)
    assert counts.available and counts.errors == [] and counts.dags == 12
    rows = {t.table: t.rows for t in counts.tables}
    assert rows["task_instance"] == 10_000 and rows["xcom"] == 9_000 and rows["log"] == 20_000
    assert rows["task_fail"] == 150 and rows["trigger"] is None
    assert [t.table for t in counts.tables if t.estimated] == ["task_fail"]
    assert len(client.calls) == counts.requests <= 10  # nine counts and one page of DAGs
    assert ("/dags", {"paused": False, "limit": 1}) in client.calls
    assert len(clock.slept) == len(client.calls) - 1  # the clock never moved: every request waited
    # the bulk pause and unpause of the 12 live DAGs: a pattern or two and one check each, not 12
    assert counts.pause_calls is not None and counts.pause_calls <= 3
    assert counts.unpause_calls is not None and counts.unpause_calls <= 4
    assert all(s == pytest.approx(0.1) for s in clock.slept)


def test_a_refused_count_leaves_that_table_out_and_says_so() -> None:
    counts = _count(FakeInvoke(refuse=("/connections", "/dags")))
    assert counts.available
    assert {t.table: t.rows for t in counts.tables}["connection"] is None
    assert len(counts.errors) == 3 and "403" in counts.errors[0]
    assert "pause and unpause counted per DAG" in counts.errors[2]  # the listing was refused too
    section = sizing_workflow.sizing_section(counts)
    assert section["status"] == "estimated" and section["dags"] == 0
    assert any("unpaused DAGs could not be counted" in e for e in section["errors"])


@pytest.mark.parametrize(
    "down",
    [
        botocore.exceptions.EndpointConnectionError(endpoint_url="https://airflow.us-east-1.example"),
        botocore.exceptions.ClientError(
            {"Error": {"Code": "ResourceNotFoundException", "Message": "Environment not found"}},
            "InvokeRestApi",
        ),
        botocore.exceptions.NoCredentialsError(),
    ],
)
def test_an_unreachable_environment_gives_no_estimate_and_the_reason(down: Exception) -> None:
    client = FakeInvoke(down=down)
    counts = _count(client)
    assert not counts.available and len(client.calls) == 1  # no further requests once it is down
    section = sizing_workflow.sizing_section(counts)
    assert section["status"] == "unavailable"
    assert section["summary"].startswith("sizing not available: ")
    assert section["reason"]


def test_a_bug_behind_the_api_does_not_fail_the_dry_run() -> None:
    class Broken(FakeInvoke):
        def invoke_rest_api(self, **kwargs: Any) -> dict:
            raise KeyError("state")

    counts = _count(Broken())
    assert not counts.available and "state" in (counts.unavailable or "")


def test_read_sizing_estimates_from_the_counts() -> None:
    clock = Clock()
    section = sizing_workflow.read_sizing(
        FakeMwaa(FakeInvoke()),  # type: ignore[arg-type]
        "analytics-blue",
        drain_timeout_s=300,
        sleep=clock.sleep,
        clock=clock,
    )
    assert section["status"] == "estimated" and section["environment"] == "analytics-blue"
    assert section["rows"] == 1_000 + 10_000 + 9_000 + 20_000 + 30 + 8 + 3 + 150
    assert section["estimated_rows"] == 150 and section["dags"] == 12
    assert section["pass1_copy"]["low_s"] > 0 and section["freeze"]["high_s"] >= section["freeze"]["low_s"]


# -- how it is shown ------------------------------------------------------------------------------------


def _rendered(section: dict[str, Any]) -> str:
    console = Console(width=160, record=True, color_system=None)
    for item in sizing_text(section):
        console.print(item)
    return console.export_text()


def test_the_text_shows_rows_per_table_and_the_freeze_steps() -> None:
    clock = Clock()
    section = sizing_workflow.read_sizing(
        FakeMwaa(FakeInvoke()),  # type: ignore[arg-type]
        "analytics-blue",
        sleep=clock.sleep,
        clock=clock,
    )
    text = _rendered(section)
    assert "task_instance" in text and "10,000" in text and "~150" in text and "not counted" in text
    for step in ("pass-1 copy", "pause", "drain", "backup", "restore", "go-live", "freeze window"):
        assert step in text
    assert "unknown" in text and "MWAA's own copy rate is not known" in text
    down = sizing_workflow.unavailable("cannot reach the AWS endpoint", "analytics-blue")
    assert _rendered(down).strip() == "sizing not available: cannot reach the AWS endpoint"


def test_dry_run_prints_the_sizing_table(
    monkeypatch: pytest.MonkeyPatch, workspace_root: Path, capsys
) -> None:
    import mwaa_iac.workflows.cutover as cutover
    from mwaa_iac.cli import main

    clock = Clock()
    section = sizing_workflow.read_sizing(
        FakeMwaa(FakeInvoke()),  # type: ignore[arg-type]
        "analytics-blue",
        sleep=clock.sleep,
        clock=clock,
    )

    class FakeCutover:
        def __init__(self, ws, config, options, *args, emit=lambda e: None, **kwargs):
            self.options = options
            self.requirements_check = None
            self.emit = emit

        def catchup_without_history(self) -> list:
            return []

        def run(self) -> dict[str, Any]:
            report = {
                "dry_run": True,
                "source": "analytics-blue",
                "target": "analytics-green",
                "from": "2.9.2",
                "to": "2.10.3",
                "history_carried": True,
                "passes": 2,
                "freeze": "pass 2 only (minutes)",
                "hops": [],
                "notes": [],
                "mwaa_dr_delivery": None,
                "in_flight_policy": [],
                "catchup_without_history": [],
                "sizing": section,
            }
            self.emit({"event": "cutover.plan", **report})  # the workflow emits its plan
            return report

    monkeypatch.setattr(cutover, "Cutover", FakeCutover)
    monkeypatch.setenv("NO_COLOR", "1")
    args = ["cutover", "--env", "demo", "--root", str(workspace_root), "--dry-run", "--engine", "api"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "sizing:" in out and "task_instance" in out and "freeze window" in out
    assert main([*args, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert plan["event"] == "cutover.plan" and plan["sizing"]["rows"] == section["rows"]


def test_the_workflow_never_raises_from_the_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> sizing.Rates:
        raise ValueError("the rates hold no measurement")

    monkeypatch.setattr(sizing, "load_rates", broken)
    counts = _count(FakeInvoke())
    section = sizing_workflow.sizing_section(counts)
    assert section["status"] == "unavailable" and "rates could not be read" in section["reason"]


def test_mwaa_iac_error_is_the_unreachable_reason() -> None:
    class Down(FakeInvoke):
        def invoke_rest_api(self, **kwargs: Any) -> dict:
            raise MwaaIacError("MWAA environment analytics-blue not found")

    counts = _count(Down())
    assert counts.unavailable == "MWAA environment analytics-blue not found"


def test_the_copied_tables_are_the_copy_modules_registry() -> None:
    from mwaa_iac.core import sizing
    from mwaa_iac.dr_runtime import mwaa_iac_copy

    copied = {t.table for t in mwaa_iac_copy.TABLES if t.fate == mwaa_iac_copy.COPIED and not t.after}
    assert set(sizing.COPIED_TABLES) == copied and "task_instance_history" in copied
    assert sizing.uncounted(["dag_run", "xcom"]) == tuple(
        t for t in sizing.COPIED_TABLES if t not in ("dag_run", "xcom")
    )
