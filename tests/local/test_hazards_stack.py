"""The 2 → 3 migration-hazard preflight on real Airflow: one 2.9.2 environment seeded small, scanned
clean (nothing found), then given one row of each hazard the tests can seed (a NaN and a NUL JSON
XCom, a pickled XCom, a 4 KB XCom against a limit lowered to 2 KB, a pickled run conf JSON cannot
hold): the scan names each with its (dag_id, run_id) and its fix, and `cutover --dry-run` to 3.3.1
stops on the blocking ones until they are accepted."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import hazards
from mwaa_iac.core.planner import Strategy, plan_path
from mwaa_iac.local.demo import DemoSetup, prepare
from mwaa_iac.local.seed import SeedPlan, seed_hazards
from mwaa_iac.workflows.backup import DrTiming
from mwaa_iac.workflows.dr_runs import DagRunner
from mwaa_iac.workflows.hazards import HazardScan, scan_hazards
from mwaa_iac.workspace import load_config
from tests.conftest import LocalStack

pytestmark = [pytest.mark.local, pytest.mark.slow]

REGION = "us-east-1"
LIMIT = 2048  # bytes: the seeded 4 KB XCom is over it, the business DAGs' XComs are not
SEEDED = ("nan-json-xcom", "nul-json-xcom", "pickled-xcom", "xcom-over-256mb", "pickled-dag-run-conf")


@pytest.fixture(scope="module")
def deployment(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> DemoSetup:
    root = tmp_path_factory.mktemp("hazards")
    plan = SeedPlan(runs=6, tasks=2, variables=1, connections=1, pools=1)
    sync = local_stack.admin.sync
    return prepare(root, name="hz", from_version="2.9.2", to_version="3.3.1", plan=plan, poll=1.0, sync=sync)


def _scan(setup: DemoSetup) -> tuple[HazardScan, list[dict]]:
    config = load_config(setup.root / "environments" / setup.env / "mwaa.yaml")
    plan = plan_path("2.9.2", "3.3.1", Strategy.CUTOVER, date.today())
    events: list[dict] = []
    timing = DrTiming(run_poll_seconds=1.0, probe_timeout_seconds=300.0, run_timeout_seconds=300.0)
    runner = DagRunner(AirflowApi(MwaaClient(REGION), setup.source), timing, events.append)
    result = scan_hazards(
        plan,
        environment=setup.source,
        config=config,
        runner=runner,
        s3=S3(REGION),
        emit=events.append,
        xcom_limit=LIMIT,
    )
    return result, events


def test_the_preflight_finds_each_seeded_hazard_and_none_on_a_clean_workload(
    local_stack: LocalStack, deployment: DemoSetup
) -> None:
    clean, events = _scan(deployment)
    assert clean.assessment is not None and clean.assessment.findings == (), clean.report()
    assert [(c.name, c.ok) for c in clean.checks] == [("migration hazards", True)]
    assert clean.assessment.rows["task_instance"] >= 6 * 3 * 2  # the seeded history was counted
    assert any(e["event"] == "preflight.hazards" for e in events)

    s3 = S3(REGION)
    api = AirflowApi(MwaaClient(REGION), deployment.source)
    placed = seed_hazards(
        api, s3, "hz-airflow-source", "dags", sync=lambda: local_stack.admin.sync(deployment.source)
    )
    assert set(placed) == set(SEEDED)

    found, _ = _scan(deployment)
    assert found.assessment is not None
    by_name = {f.name: f for f in found.assessment.findings}
    assert set(by_name) == set(SEEDED), found.report()
    for name in SEEDED:
        item = by_name[name]
        assert item.count == 1 and item.ids == (placed[name],), (name, item)
        assert hazards.BY_NAME[name].fix in item.text()
    failed = sorted(c.name for c in found.checks if not c.ok)
    assert failed == [f"migration hazard {n}" for n in ("nan-json-xcom", "nul-json-xcom", "xcom-over-256mb")]
    # nothing of a value left the environment: the report holds counts and ids only
    report = json.dumps(found.report())
    assert "ratio" not in report and "xxxx" not in report


def test_cutover_dry_run_stops_on_blocking_hazards_until_accepted(
    local_stack: LocalStack, deployment: DemoSetup, tmp_path: Path
) -> None:
    args = ("cutover", "--env", "hz", "--root", str(deployment.root), "--engine", "api", "--to", "3.3.1")
    stopped = local_stack.cli(*args, "--dry-run", "--json")
    assert stopped.returncode != 0, stopped.stdout[-2000:]
    checks = [json.loads(x) for x in stopped.stdout.splitlines() if '"preflight.check"' in x]
    failed = {c["check"] for c in checks if not c["ok"]}
    assert failed == {"migration hazard nan-json-xcom", "migration hazard nul-json-xcom"}, stopped.stderr[
        -2000:
    ]

    dag = tmp_path / "db_clean.py"
    accepted = ("--accept-hazard", "nan-json-xcom", "--accept-hazard", "nul-json-xcom")
    passed = local_stack.cli(*args, "--dry-run", "--json", *accepted, "--write-db-clean-dag", str(dag))
    assert passed.returncode == 0, passed.stderr[-2000:]
    plan = json.loads(passed.stdout.splitlines()[-1])
    assert plan["event"] == "cutover.plan"
    hazards_report = plan["migration_hazards"]
    assert hazards_report["scanned"] and hazards_report["blocking"] == []
    assert {f["name"] for f in hazards_report["findings"]} == {
        "nan-json-xcom",
        "nul-json-xcom",
        "pickled-xcom",
        "pickled-dag-run-conf",
    }
    assert "CLEAN_BEFORE = '" in dag.read_text() and hazards_report["db_clean_dag"] == str(dag)
