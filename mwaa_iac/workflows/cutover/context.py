"""The run context every room of a cutover works over: the adapters, the deployment's config, the
options, the journal, the event callback, the clocks; the colours' names; ``step(name, action)``
(run an action as a journal step unless it is done); the deployment record."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.cloudwatch import CloudWatch
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.routing import Routing
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core.config import Color, Deployment, EnvironmentConfig
from mwaa_iac.core.cutover_steps import Step
from mwaa_iac.events import Emit, EventKind, event
from mwaa_iac.workflows.dr_runs import FREEZE_POLL_SECONDS, DagRunner
from mwaa_iac.workflows.engine import DeploymentEngine, engine_for
from mwaa_iac.workflows.journal import Journal
from mwaa_iac.workflows.preflight import Check
from mwaa_iac.workflows.state import StateStore, open_state
from mwaa_iac.workflows.upgrade import UpgradeOptions
from mwaa_iac.workspace import Workspace, commit_deployment, prepare_deployment

JOURNAL = "cutover.journal.jsonl"


@dataclass
class CutoverOptions(UpgradeOptions):
    single_pass: bool = False
    no_history: bool = False
    force_drain: bool = False
    drain_timeout_seconds: float = 600.0
    dag_timeout_seconds: float = 900.0
    run_timeout_seconds: float = 3 * 3600.0
    run_poll_seconds: float = 5.0
    import_error_grace_seconds: float = 60.0
    # Go-live even when DAGs recorded unpaused on the source fail to import on the target.
    accept_import_errors: bool = False
    # The rehearsal of a freeze that holds an upgrade into 3.x (workflows/cutover/rehearsal.py).
    no_rehearsal: bool = False
    keep_rehearsal: bool = False
    rehearsal_dag: str | None = None  # a DAG run on the rehearsal after its upgrade
    max_freeze_minutes: float | None = None  # the freeze gate refuses a longer estimated freeze
    probe_timeout_seconds: float = 900.0
    # Pass 2's copiers started before the freeze (arm-copiers): how long a worker may take to start
    # them, and how long they wait for their go signal beyond the drain's timeout.
    armed_copy: bool = True
    arm_timeout_seconds: float = 300.0
    armed_wait_seconds: float = 1800.0
    # After go-live: how long no DR DAG record may come back on the new live colour (its DAG folder
    # sync, 30 s on MWAA, and a parse in progress) before retire-dr-dags is done.
    retire_settle_seconds: float = 60.0


@dataclass
class Context:
    ws: Workspace
    config: EnvironmentConfig
    options: CutoverOptions
    mwaa: MwaaClient
    s3: S3
    routing: Routing
    cloudwatch: CloudWatch | None = None
    emit: Emit = lambda event: None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)  # wall clock (the health gate's minutes)
    state: StateStore | None = None  # journal and lock: mwaa.yaml's state setting unless given
    iam: Any = None  # execution roles (adapters.iam.Iam): created from the region unless given
    # (requirements path, Airflow version, object version) -> Check; None: no requirements check
    requirements_check: Callable[..., Check] | None = None
    opened: Journal | None = field(default=None, init=False)  # the journal, once the run opened it
    # The last active DAG listing of each environment taken in this process (environment -> (clock,
    # listing)): go-live plans its unpause with check-target's instead of listing again.
    listings: dict[str, tuple[float, list[dict[str, Any]]]] = field(default_factory=dict, init=False)

    # -- names -------------------------------------------------------------------------------------

    @property
    def source_color(self) -> Color:
        return self.config.active_color

    @property
    def target_color(self) -> Color:
        return self.config.active_color.other

    @property
    def source(self) -> str:
        return self.config.environment_name(self.source_color)

    @property
    def target(self) -> str:
        return self.config.environment_name(self.target_color)

    @property
    def to_version(self) -> str:
        return self.options.to or self.config.airflow_version

    @property
    def journal(self) -> Journal:
        """The journal of the running cutover (opened by ``Cutover.run``)."""
        if self.opened is None:
            raise RuntimeError("the cutover's journal is not open")
        return self.opened

    @property
    def store(self) -> StateStore:
        if self.state is None:
            self.state = open_state(self.ws, self.config, self.s3)
        return self.state

    @property
    def engine(self) -> DeploymentEngine:
        return engine_for(self.options.engine, self.ws, self.mwaa, self.emit, self.options.terraform_bin)

    def api(self, name: str) -> AirflowApi:
        return AirflowApi(self.mwaa, name, sleep=self.sleep)

    def runner(self, name: str) -> DagRunner:
        """Runs DR DAGs on environment ``name``."""
        return DagRunner(self.api(name), self.options, self.emit, self.sleep, self.clock)

    def frozen(self) -> bool:
        """Inside the freeze: the source paused, go-live not done."""
        return self.journal.state(Step.PAUSE_SOURCE) == "done" and self.journal.state(Step.GO_LIVE) != "done"

    def poll_seconds(self) -> float:
        """Seconds between polls: --run-poll, at most FREEZE_POLL_SECONDS inside the freeze."""
        every = self.options.run_poll_seconds
        return min(every, FREEZE_POLL_SECONDS) if self.frozen() else every

    def today(self) -> date:
        return self.options.today or date.today()

    # -- steps -------------------------------------------------------------------------------------

    def step(self, name: str, action: Callable[[], Any]) -> Any:
        """Run ``action`` as journal step ``name`` unless it is done; its result is recorded."""
        journal = self.journal
        if journal.state(name) == "done":
            return journal.data(name).get("result")
        self.emit(event(EventKind.STEP_STARTED, step=name))
        journal.started(name)
        start = self.clock()
        result = action()
        elapsed = self.clock() - start
        journal.done(name, result=result, elapsed_s=round(elapsed, 3), ended=time.time())
        self.emit(event(EventKind.STEP_DONE, step=name, elapsed_s=round(elapsed, 1)))
        return result

    def result(self, name: str) -> dict[str, Any]:
        """What step ``name`` returned ({} when it is not done or returned nothing)."""
        return self.journal.data(name).get("result") or {}

    # -- the deployment record ---------------------------------------------------------------------

    def record(self, active_color: str | None = None, **versions: str) -> None:
        self.commit_record(self.prepare_record(active_color, **versions))

    def prepare_record(self, active_color: str | None = None, **versions: str) -> tuple[Any, Deployment]:
        """The record rendered and validated beside mwaa.yaml (not yet in place)."""
        current = self.config.deployment
        updated = Deployment(
            active_color=Color(active_color) if active_color else current.active_color,
            blue=versions.get("blue", current.blue),
            green=versions.get("green", current.green),
        )
        return prepare_deployment(self.ws.config_file, updated), updated

    def commit_record(self, prepared: tuple[Any, Deployment]) -> None:
        path, updated = prepared
        commit_deployment(path, self.ws.config_file)
        # Keep the source/target orientation of this run: only the versions change in memory.
        self.config = self.config.model_copy(
            update={"deployment": updated.model_copy(update={"active_color": self.source_color})}
        )
