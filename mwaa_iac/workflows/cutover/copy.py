"""The cutover's copy: the DR DAG files of each pass, pass 1 and pass 2 (backup on the source,
verify the backup, restore into the target, verify the restore), pass 2's delta base, and the
retirement of the DR DAGs after go-live (docs/design.md §2, §7)."""

from __future__ import annotations

from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError
from mwaa_iac.core import dr
from mwaa_iac.core.cutover_steps import COPY_STEPS, DEPLOY_STEP, PASS_2, Step
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.backup import read_manifest, run_restore, verify_restore
from mwaa_iac.workflows.cutover.context import Context, Emit
from mwaa_iac.workflows.dr_runs import DeltaRefused, deploy_dr_files, remove_dr_files

COPY_FIELDS = ("mode", "base", "copied", "whole", "fallback")  # how pass 2 copied (the report's pass2)


class RunAgainFrom(Exception):
    """The flow goes back to ``step`` (the delta was refused: the pass copies everything)."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


class Copy:
    """Each pass's steps. Each attempt of a step (a retry after a failure, a resume after an aborted
    freeze) runs the DAG with a run id of its own, and each backup attempt writes a prefix of its
    own: a retried step never gets an earlier run back, and a fresh backup never mixes with an older
    one. A restore replaces the target's copied tables in one transaction, so a failed one leaves
    nothing to clean."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- DR DAG files ------------------------------------------------------------------------------

    def prefix(self, label: str) -> str:
        ctx = self.ctx
        return dr.backup_prefix(ctx.config.dr.path_prefix, ctx.config.name, ctx.journal.run_id, label)

    def deploy_dr_dags(self, factory: str, label: str) -> dict[str, Any]:
        """The DR DAG files of a pass, with the vendored mwaa-dr (uploaded where it changed)."""
        ctx = self.ctx
        prefix = self.prefix(label)
        files = [
            dr.render_backup_dag(factory, prefix, ctx.config.name, label),
            dr.render_restore_dag(factory, prefix, ctx.config.name, label),
        ]
        source = ctx.config.source
        vendor = deploy_dr_files(ctx.s3, source.bucket_name, source.dag_s3_path, files)
        ctx.emit(event(EventKind.DR_VENDOR, **vendor))
        ctx.emit(event(EventKind.DR_DEPLOYED, prefix=prefix, files=[f.relative_path for f in files]))
        return {"prefix": prefix, "markers": {f.dag_id: f.marker for f in files}, "vendor": vendor}

    def wait_for_p2_dags(self) -> dict[str, Any]:
        """Pass 2's DAGs parsed on both colours (before the freeze: parsing is not frozen time)."""
        ctx = self.ctx
        markers = self._markers(PASS_2)
        ctx.runner(ctx.source).wait_for_dag(dr.BACKUP_DAG_ID, markers[dr.BACKUP_DAG_ID])
        ctx.runner(ctx.target).wait_for_dag(dr.RESTORE_DAG_ID, markers[dr.RESTORE_DAG_ID])
        return {"parsed": sorted(markers)}

    def retire_dr_dags(self) -> dict[str, Any]:
        """Remove the DR DAG files, then everything of the tool from the new live colour: its DAG
        records (their runs) and its variables (the restore marker: no resume needs it after
        go-live), so that the live colour holds only the user's DAGs and variables."""
        ctx = self.ctx
        source = ctx.config.source
        removed = remove_dr_files(ctx.s3, source.bucket_name, source.dag_s3_path)
        api = ctx.api(ctx.target)
        result = remove_tool_records(api, ctx.emit)
        # The target's copy of the DAG folder keeps the files until its next sync (MWAA: every 30 s),
        # and a parse meanwhile writes their DAG records again: delete what comes back until none
        # has for retire_settle_seconds.
        quiet_since, again = ctx.clock(), 0
        while ctx.clock() - quiet_since < ctx.options.retire_settle_seconds:
            ctx.sleep(min(10.0, ctx.options.retire_settle_seconds))
            if [d for d in dr.MWAA_IAC_DAG_IDS if api.has_dag(d)]:
                remove_tool_records(api, ctx.emit)
                quiet_since, again = ctx.clock(), again + 1
        return {"removed": removed, **result, "deleted_again": again}

    def _markers(self, label: str) -> dict[str, str]:
        return self.ctx.result(DEPLOY_STEP[label]).get("markers", {})

    def _run_id(self, dag_id: str, label: str, attempt: int) -> str:
        return dr.run_id(dag_id, self.ctx.journal.run_id, label if attempt <= 0 else f"{label}a{attempt}")

    def _source_paused(self) -> bool:
        """Inside the freeze (the source paused, go-live not done): DR runs poll without backoff."""
        journal = self.ctx.journal
        return journal.state(Step.PAUSE_SOURCE) == "done" and journal.state(Step.GO_LIVE) != "done"

    # -- the pass steps ----------------------------------------------------------------------------

    def backup(self, label: str) -> dict[str, Any]:
        ctx = self.ctx
        step = COPY_STEPS[label][0]
        attempt = ctx.journal.attempts(step) - 1  # this attempt's "started" is recorded
        prefix = self.prefix(label) + (f"-a{attempt}" if attempt > 0 else "")
        since = self.delta_base() if label == PASS_2 else None
        conf = dr.copy_conf(ctx.config.dr.backup_bucket, prefix, since)
        run = ctx.runner(ctx.source).run(
            dr.BACKUP_DAG_ID,
            self._run_id(dr.BACKUP_DAG_ID, label, attempt),
            self._markers(label)[dr.BACKUP_DAG_ID],
            conf,
            backoff=not self._source_paused(),
        )
        return {**run, "prefix": prefix, "since": since}

    def delta_base(self) -> str | None:
        """The backup the target holds (its restore marker), which pass 2's backup is a delta
        against; None for a full backup (the delta was refused before, or no marker is readable)."""
        ctx = self.ctx
        backup = ctx.journal.data(COPY_STEPS[PASS_2][0])
        if backup.get("full"):
            if backup.get("full_reason") and not backup.get("refused"):
                ctx.emit(event(EventKind.DR_DELTA_FALLBACK, reason=backup["full_reason"]))
            return None
        try:
            value = ctx.api(ctx.target).get_variable_value(dr.RESTORE_MARKER_VARIABLE)
        except AirflowApiError as exc:
            reason = f"the target's restore marker could not be read ({exc.message})"
        else:
            held = dr.restore_marker(value)
            if held:
                return held
            reason = f"{ctx.target} has no readable restore marker ({dr.RESTORE_MARKER_VARIABLE})"
        ctx.emit(event(EventKind.DR_DELTA_FALLBACK, reason=reason))
        return None

    def verify_backup(self, label: str) -> dict[str, Any]:
        """The backup's manifest read back: rows per table, and how it copied (delta or full)."""
        ctx = self.ctx
        prefix = ctx.result(COPY_STEPS[label][0])["prefix"]
        result = read_manifest(ctx.s3, ctx.config.dr.backup_bucket, prefix)
        ctx.emit(event(EventKind.DR_BACKUP_VERIFIED, prefix=prefix, tables=len(result["rows"])))
        copy = dr.manifest_copy(result["manifest"])
        if copy["mode"] == "delta":
            ctx.emit(
                event(
                    EventKind.DR_DELTA,
                    prefix=prefix,
                    base=copy["base"],
                    copied=sum(copy["copied"].values()),
                    rows=sum(result["rows"].values()),
                    whole=copy["whole"],
                )
            )
        elif copy["fallback"]:
            ctx.emit(event(EventKind.DR_DELTA_FALLBACK, reason=copy["fallback"]))
        return {"prefix": prefix, "rows": result["rows"], **copy}

    def restore(self, label: str) -> dict[str, Any]:
        """Restore the pass's backup into the target. A refused delta (nothing changed on the
        target) makes the pass copy everything, at once (still frozen) and on any resume."""
        ctx = self.ctx
        backup_step, verify_step, restore_step, _ = COPY_STEPS[label]
        try:
            return self._restore(label)
        except DeltaRefused as exc:
            if ctx.result(verify_step).get("mode") != "delta":
                raise
            ctx.emit(event(EventKind.DR_DELTA_FALLBACK, reason=f"the target refused the delta: {exc.reason}"))
            for step in (backup_step, verify_step, restore_step):
                ctx.journal.note(step, redo=True, full=True, refused=exc.reason)
            raise RunAgainFrom(backup_step) from exc

    def _restore(self, label: str) -> dict[str, Any]:
        ctx = self.ctx
        attempt = ctx.journal.attempts(COPY_STEPS[label][2]) - 1
        prefix = ctx.result(COPY_STEPS[label][0])["prefix"]
        conf = dr.copy_conf(ctx.config.dr.backup_bucket, prefix)
        run_id = self._run_id(dr.RESTORE_DAG_ID, label, attempt)
        outcome = run_restore(
            ctx.runner(ctx.target),
            run_id,
            self._markers(label)[dr.RESTORE_DAG_ID],
            conf,
            backoff=not self._source_paused(),
        )
        hold = str(outcome.get("hold") or "")
        if hold.startswith("not installed"):
            ctx.emit(
                event(
                    EventKind.PROBE_WARNING,
                    environment=ctx.target,
                    detail=f"the hold is {hold}: until go-live, a DAG created unpaused in the shared DAG "
                    f"folder is scheduled on {ctx.target} too",
                )
            )
        return {**outcome, "run_id": run_id}

    def verify_restore(self, label: str) -> dict[str, Any]:
        """The target's rows against the backup's (a failure: see :meth:`failed`)."""
        ctx = self.ctx
        _, verify_backup_step, restore_step, _ = COPY_STEPS[label]
        verified = verify_restore(
            ctx.target, ctx.result(verify_backup_step)["rows"], ctx.result(restore_step)
        )
        ctx.emit(event(EventKind.DR_RESTORE_VERIFIED, tables=verified["tables"]))
        if verified["reset"]:
            ctx.emit(event(EventKind.DR_RESET_ON_TARGET, task_instances=verified["reset"]))
        return verified

    def failed(self, step: str) -> None:
        """Step ``step`` failed. A restore that failed verification is what --resume restores again
        (an attempt of its own; the restore replaces the target's copied tables, so nothing doubles)."""
        for _, _, restore_step, verify_restore_step in COPY_STEPS.values():
            if step == verify_restore_step:
                self.ctx.journal.note(restore_step, redo=True)

    def pass2_copy(self) -> dict[str, Any]:
        """What pass 2 copied: delta or full (and why), rows per table in its backup."""
        journal = self.ctx.journal
        backup_step, verify_step = COPY_STEPS[PASS_2][:2]
        copy = {k: self.ctx.result(verify_step).get(k) for k in COPY_FIELDS}
        recorded = journal.data(backup_step)
        refused = recorded.get("refused")
        if refused and copy["mode"] == "full":
            copy["fallback"] = f"the target refused the delta: {refused}"
        elif recorded.get("full_reason") and copy["mode"] == "full":
            copy["fallback"] = recorded["full_reason"]
        return copy


def remove_tool_records(api: AirflowApi, emit: Emit) -> dict[str, Any]:
    """Delete the tool's DAG records (with their runs) and variables from ``api``'s environment (the
    live colour); a record that cannot be deleted is reported (dr.record_kept), not fatal."""
    deleted, variables = [], []
    for dag_id in dr.MWAA_IAC_DAG_IDS:
        try:
            api.request("DELETE", f"/dags/{dag_id}")
            deleted.append(dag_id)
        except AirflowApiError as exc:
            if exc.status != 404:
                emit(event(EventKind.DR_RECORD_KEPT, dag_id=dag_id, error=exc.message))
    for key in dr.TOOL_VARIABLES:
        try:
            if api.delete_variable(key):
                variables.append(key)
        except AirflowApiError as exc:
            emit(event(EventKind.DR_RECORD_KEPT, dag_id=f"variable {key}", error=exc.message))
    return {"records_deleted": deleted, "variables_deleted": variables}
