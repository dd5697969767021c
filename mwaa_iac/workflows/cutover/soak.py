"""After go-live, during the soak: `rollback` gives scheduling back to the old colour; `cleanup`
retires the colour that is not live (abandoning an unfinished cutover first)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, logical_date
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.routing import Routing
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr
from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.cutover_steps import Step
from mwaa_iac.core.live import Role
from mwaa_iac.errors import MwaaIacError, UsageError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows import live
from mwaa_iac.workflows.cutover.abort import aborted_steps, freeze_begun, give_back, go_live_half_done
from mwaa_iac.workflows.cutover.context import JOURNAL, Emit
from mwaa_iac.workflows.cutover.copy import remove_tool_records
from mwaa_iac.workflows.cutover.db_pause import settle_pause_record, wait_out_unpause
from mwaa_iac.workflows.cutover.freeze import hold, point_routing, wait_for_executing
from mwaa_iac.workflows.cutover.rehearsal import REHEARSAL_TAG, rehearsal_name
from mwaa_iac.workflows.dr_runs import CutoverError, remove_dr_files
from mwaa_iac.workflows.journal import Journal, holding_lock
from mwaa_iac.workflows.state import StateStore
from mwaa_iac.workspace import Workspace, write_deployment


class RollbackError(MwaaIacError):
    pass


def rollback(
    ws: Workspace,
    config: EnvironmentConfig,
    mwaa: MwaaClient,
    routing: Routing,
    emit: Emit,
    store: StateStore,
    *,
    break_lock: bool = False,
) -> dict[str, Any]:
    """During the soak: pause the recorded DAGs on the new colour, unpause them on the old one, flip
    routing back. Runs made on the new colour are not copied back: the old colour's database is the
    one frozen at go-live. So that the old colour does not run again the intervals the new one ran
    since go-live (catch-up DAGs would), the scheduling is aligned per DAG (see ROLLBACK_POLICIES):
    a DAG whose latest scheduled run on the new colour is later than its latest on the old one is
    left paused on the old colour (reported with that date), unless it does not catch up
    (``catchup=False``: it runs only the latest interval); every other DAG is unpaused."""
    with holding_lock(store, "rollback", break_lock=break_lock):
        journal = Journal.load(store, JOURNAL)
        if journal is None:
            raise UsageError("no cutover is recorded for this environment: nothing to roll back")
        if journal.state(Step.GO_LIVE) != "done":
            raise UsageError(
                "the last cutover did not go live: the old colour still serves",
                hint="resume it with `mwaa-iac cutover --resume`, or clean up the new colour",
            )
        old = Color(journal.params["source_color"])
        new = old.other
        resuming = journal.state(Step.ROLLBACK) == "started"  # a rollback stopped half-way: finish it
        if journal.state(Step.ROLLBACK) == "done":
            raise UsageError(
                f"cutover {journal.run_id} was already rolled back: {config.environment_name(old)} serves"
            )
        if not resuming:
            # The colour it pauses must be the live one by every source (a stale record, routing
            # pointed elsewhere by hand: refuse before changing anything).
            claims = live.read_claims(config, routing, store, live.describer(mwaa), journal=journal)
            live.require("roll back (pause)", new, Role.LIVE, claims, config, ws.env)
        journal.started(Step.ROLLBACK)
        dags = journal.data(Step.RECORD_DAGS).get("result", {}).get("dags", [])
        new_name, old_name = config.environment_name(new), config.environment_name(old)
        if not mwaa.exists(old_name):
            raise UsageError(f"{old_name} no longer exists (cleaned up): a rollback is not possible")
        new_api, old_api = AirflowApi(mwaa, new_name), AirflowApi(mwaa, old_name)
        # first: the new colour stops scheduling, so its latest runs are final
        new_api.set_paused_many(dags, True)
        hold(new_api, old_api)  # the new colour holds DAGs that appear from now on; the old one no longer
        decisions = {dag_id: rollback_policy(dag_id, new_api, old_api) for dag_id in dags}
        old_api.set_paused_many([d for d, v in decisions.items() if v["policy"] != "left_paused"], False)
        env = mwaa.get_environment(old_name)
        point_routing(routing, config, old_name, old, env)
        deployment = ws.load().deployment.model_copy(update={"active_color": old})
        write_deployment(ws.config_file, deployment)
        removed = remove_tool_records(old_api, emit)
        journal.done(Step.ROLLBACK, active=str(old), **removed)
        if not journal.finished:
            journal.end("rolled-back", by="rollback")
        left = {d: v["new_latest"] for d, v in decisions.items() if v["policy"] == "left_paused"}
        went_live = journal.data(Step.GO_LIVE).get("result", {}).get("unpaused_at")
        not_back = runs_since(new_api, went_live) if went_live else []
        result: dict[str, Any] = {
            "active": old_name,
            "paused_on": new_name,
            "history_copied_back": False,
            "unpaused": [d for d, v in decisions.items() if v["policy"] != "left_paused"],
            "unpaused_latest_only": [
                d for d, v in decisions.items() if v["policy"] == "unpaused_latest_only"
            ],
            "left_paused": left,
            "dags": decisions,
            "policies": {
                "unpaused": f"no scheduled run on {new_name} later than {old_name}'s latest: unpaused, "
                "it continues where it stopped",
                "unpaused_latest_only": f"catchup=False: unpaused, it runs only the latest interval (which "
                f"{new_name} may have run already)",
                "left_paused": f"{new_name} ran scheduled intervals after {old_name}'s latest: unpausing "
                f"would run them again on {old_name}",
            },
            "warning": f"runs made on {new_name} since the cutover are not copied back "
            f"({len(not_back)}{'+' if len(not_back) >= RUNS_LISTED else ''}: runs_not_copied_back)",
            "runs_not_copied_back": not_back,
        }
        if left:
            result["hint"] = (
                f"{len(left)} DAG(s) left paused on {old_name} ({', '.join(left)}): their runs since go-live "
                f"exist only on {new_name}; unpause them after deciding, or roll forward"
            )
        emit(event(EventKind.ROLLBACK_SUMMARY, **result))
        return result


ROLLBACK_POLICIES = ("unpaused", "unpaused_latest_only", "left_paused")
RUNS_LISTED = 200  # runs_not_copied_back lists at most this many


def runs_since(api: AirflowApi, since: float) -> list[str]:
    """``dag_id/run_id`` of the user's runs that started on ``api``'s environment at or after
    ``since`` (epoch seconds): what a rollback leaves behind. Unreadable: an empty list."""
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(since, UTC).isoformat()
    runs: list[str] = []
    try:
        page = api.request(
            "GET", "/dags/~/dagRuns", query={"start_date_gte": start, "limit": 100, "order_by": "start_date"}
        )
        offset = 0
        while True:
            batch = page.get("dag_runs", [])
            runs += [
                f"{r['dag_id']}/{r['dag_run_id']}" for r in batch if r["dag_id"] not in dr.MWAA_IAC_DAG_IDS
            ]
            offset += len(batch)
            if not batch or offset >= page.get("total_entries", 0) or len(runs) >= RUNS_LISTED:
                return runs[:RUNS_LISTED]
            page = api.request(
                "GET",
                "/dags/~/dagRuns",
                query={"start_date_gte": start, "limit": 100, "offset": offset, "order_by": "start_date"},
            )
    except MwaaIacError:
        return runs


def rollback_policy(dag_id: str, new_api: AirflowApi, old_api: AirflowApi) -> dict[str, Any]:
    """How ``dag_id`` is given back to the old colour (one of ROLLBACK_POLICIES), with the latest
    scheduled logical date on each colour. The old colour's scheduler continues from its own latest
    scheduled run: the intervals the new colour ran after it would run again there, unless the DAG
    does not catch up (``catchup`` from ``GET /dags/{dag_id}/details``; unknown counts as catching
    up). Manual runs do not move Airflow's next_dagrun, so they cannot be used to skip intervals."""
    old_run = old_api.latest_scheduled_run(dag_id)
    old_latest = logical_date(old_run) if old_run else None
    newer = new_api.latest_scheduled_run(dag_id, after=old_latest)
    if newer is None:
        return {"policy": "unpaused", "old_latest": old_latest, "new_latest": None}
    new_latest = logical_date(newer)
    details = old_api.dag_details(dag_id)
    catchup = None if details is None else details.get("catchup")
    policy = "unpaused_latest_only" if catchup is False else "left_paused"
    return {"policy": policy, "old_latest": old_latest, "new_latest": new_latest}


def cleanup(
    ws: Workspace,
    config: EnvironmentConfig,
    mwaa: MwaaClient,
    s3: S3,
    emit: Emit,
    store: StateStore,
    *,
    routing: Routing,
    backups: bool = False,
    watch: Callable[[str], None] | None = None,
    break_lock: bool = False,
    break_glass: bool = False,
    drain_seconds: float = 600.0,
) -> dict[str, Any]:
    """After the soak: delete the inactive colour, remove DR DAG files, optionally old backups.

    An unfinished cutover that did not go live is abandoned first: inside its freeze, scheduling is
    given back to the source as the cutover's own abort does (a half-done go-live undone on the
    target first, then the recorded DAGs unpaused on the source). The colour to delete is the
    abandoned cutover's target, else the deployment record's inactive colour; before anything is
    deleted, routing, the record and the last cutover must all say that it is not live
    (``workflows.live``; ``break_glass`` reports a refusal loudly and goes on)."""
    with holding_lock(store, "cleanup", break_lock=break_lock):
        result: dict[str, Any] = {"retired": None, "dag_files_removed": [], "backups_deleted": 0}
        journal = Journal.load(store, JOURNAL)
        abandon = journal is not None and not journal.finished and journal.state(Step.GO_LIVE) != "done"
        if journal is not None and abandon and freeze_begun(journal):
            source_color = Color(journal.params["source_color"])
            source_name = config.environment_name(source_color)

            def route_back() -> None:
                env = mwaa.get_environment(source_name)
                point_routing(routing, config, source_name, source_color, env)
                write_deployment(
                    ws.config_file, ws.load().deployment.model_copy(update={"active_color": source_color})
                )

            settle_pause_record(journal, s3, config.dr.backup_bucket)
            if go_live_half_done(journal):
                wait_out_unpause(journal)
            undo = give_back(
                journal,
                AirflowApi(mwaa, source_name),
                AirflowApi(mwaa, config.environment_name(source_color.other)),
                route_back,
                lambda api: {
                    "may_run_twice": wait_for_executing(api, drain_seconds, 5.0, time.sleep, time.monotonic)[
                        0
                    ]
                },
            )
            if undo.get("failed_on"):
                raise CutoverError(
                    f"cannot give scheduling back to {source_name} before the cleanup: "
                    f"{undo['failed_on']}: {undo['error']}",
                    hint="nothing was deleted; rerun `mwaa-iac cleanup` once the cause is gone",
                )
            if go_live_half_done(journal):
                journal.note(Step.GO_LIVE, aborted=True, routed=False)
            for step in aborted_steps(journal):
                journal.note(step, aborted=True)
            result["unpaused_on_source"] = undo["unpaused_on_source"]
            result["repaused_on_target"] = undo["repaused_on_target"]
            result["may_run_twice"] = undo["may_run_twice"]
            config = ws.load()
        if journal is not None and abandon:
            old = Color(journal.params["source_color"]).other
        else:
            old = config.active_color.other
        old_name = config.environment_name(old)
        claims = live.read_claims(config, routing, store, live.describer(mwaa), journal=journal)
        live.require("delete", old, Role.NOT_LIVE, claims, config, ws.env, break_glass=break_glass, emit=emit)
        if journal is not None and not journal.finished:
            journal.end("abandoned", by="cleanup")
            result["abandoned_cutover"] = journal.run_id
        if mwaa.exists(old_name):
            mwaa.delete_environment(old_name)
            emit(event(EventKind.CLEANUP_DELETING, environment=old_name))
            if watch is not None:
                watch(old_name)
            result["retired"] = old_name
        rehearsal = rehearsal_name(config)
        if mwaa.exists(rehearsal) and REHEARSAL_TAG in (mwaa.get_environment(rehearsal).get("Tags") or {}):
            mwaa.delete_environment(rehearsal)  # only an environment the tool tagged as its rehearsal
            emit(event(EventKind.CLEANUP_DELETING, environment=rehearsal))
            result["rehearsal_deleted"] = rehearsal
        result["dag_files_removed"] = remove_dr_files(
            s3, config.source.bucket_name, config.source.dag_s3_path
        )
        if backups:
            prefix = dr.backup_prefix(config.dr.path_prefix, config.name, "", "") + "/"
            old_keys = s3.old_keys(config.dr.backup_bucket, prefix, config.dr.retention_days)
            for key in old_keys:
                s3.delete(config.dr.backup_bucket, key)
            result["backups_deleted"] = len(old_keys)
        deployment = ws.load().deployment.model_copy(update={str(old): None})
        write_deployment(ws.config_file, deployment)
        emit(event(EventKind.CLEANUP_SUMMARY, **result))
        return result
