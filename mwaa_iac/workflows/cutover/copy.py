"""The cutover's copy: the DR DAG files of each pass, pass 1 and pass 2 (backup on the source,
verify the backup, restore into the target, verify the restore), pass 2's delta base, and the
retirement of the DR DAGs after go-live (docs/design.md §2, §7)."""

from __future__ import annotations

import json
import time
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi, AirflowApiError
from mwaa_iac.core import dr
from mwaa_iac.core.cutover_steps import COPY_STEPS, DEPLOY_STEP, PASS_2, Step
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.backup import read_manifest, run_restore, verify_restore
from mwaa_iac.workflows.cutover.context import Context, Emit
from mwaa_iac.workflows.dr_runs import DeltaRefused, deploy_dr_files, remove_dr_files, run_note

COPY_FIELDS = ("mode", "base", "copied", "whole", "fallback")  # how pass 2 copied (the report's pass2)
# where pass 2's restore spent its time (seconds per phase) and which DAGs it hashed whole, per table,
# because something else had written to them on the target (the report's pass2.restore)
RESTORE_FIELDS = ("seconds", "phases", "rehashed")
UNPAUSE = "unpause"  # the armed copier that unpauses the recorded DAGs on a 2.x target at go-live


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

    # -- copiers armed before the freeze (dr.go_key) ------------------------------------------------

    def arm(self) -> dict[str, Any]:
        """Trigger pass 2's backup on the source and its restore on the target before the freeze,
        each waiting for its go signal, and wait (up to --arm-minutes) until a worker runs both:
        inside the freeze, neither then waits for a scheduler loop, a queue or a free worker. Not
        armed (each is told to cancel; the freeze triggers its runs as before) when one does not
        start in time, or with --no-armed-copy."""
        ctx = self.ctx
        if not ctx.options.armed_copy:
            return {"armed": False, "reason": "--no-armed-copy"}
        attempt = ctx.journal.attempts(Step.ARM_COPIERS) - 1
        markers = self._markers(PASS_2)
        bucket = ctx.config.dr.backup_bucket
        deadline = time.time() + ctx.options.drain_timeout_seconds + ctx.options.armed_wait_seconds
        # Copiers of an earlier attempt (killed while arming, or an aborted freeze) do nothing.
        self._cancel({f"{r}{n}": c for n in range(attempt) for r, c in self._copiers(n).items()})
        copiers = self._copiers(attempt)
        for role, copier in copiers.items():
            environment, dag_id, run_id, go = (copier[k] for k in ("environment", "dag_id", "run_id", "go"))
            mode = dr.UNPAUSE_MODE if role == UNPAUSE else None
            conf = dr.armed_conf(bucket, go, deadline, wait_for_manifest=role == "restore", mode=mode)
            try:
                ctx.runner(environment).start(dag_id, run_id, markers[dag_id], conf)
            except BaseException:
                self._cancel(copiers)  # what was triggered does nothing (a resume arms again)
                raise
        # The unpause copier is optional: not waited for (go-live unpauses over REST without it).
        started, waiting = ctx.clock(), {r: c for r, c in copiers.items() if r != UNPAUSE}
        while waiting:
            for role, copier in list(waiting.items()):
                state = ctx.runner(copier["environment"]).task_state(copier["dag_id"], copier["run_id"])
                if state == "running":
                    copier["started_after_s"] = round(ctx.clock() - started, 2)
                    ctx.emit(event(EventKind.COPIER_ARMED, **copier))
                    del waiting[role]
                elif state in ("success", "failed", "upstream_failed", "skipped"):
                    waiting.clear()  # ended before its go: not armed
                    copiers[role]["ended"] = state
            if not waiting:
                break
            if ctx.clock() - started > ctx.options.arm_timeout_seconds:
                break
            ctx.sleep(min(ctx.options.run_poll_seconds, 2.0))
        late = [c for r, c in copiers.items() if "started_after_s" not in c and r != UNPAUSE]
        if not late and UNPAUSE in copiers:
            copier = copiers[UNPAUSE]
            if ctx.runner(copier["environment"]).task_state(copier["dag_id"], copier["run_id"]) == "running":
                copier["started_after_s"] = round(ctx.clock() - started, 2)
                ctx.emit(event(EventKind.COPIER_ARMED, **copier))
        if late:
            self._cancel(copiers)
            reason = "; ".join(
                f"{c['dag_id']} on {c['environment']} "
                + (f"ended ({c['ended']})" if c.get("ended") else f"not started by a worker within "
                   f"{ctx.options.arm_timeout_seconds:.0f} s")
                for c in late
            )  # fmt: skip
            ctx.emit(event(EventKind.COPIER_NOT_ARMED, reason=reason))
            return {"armed": False, "reason": reason, "cancelled": copiers}
        return {"armed": True, "deadline": deadline, **copiers}

    def _copiers(self, attempt: int) -> dict[str, dict[str, Any]]:
        """The copiers of the ``attempt``-th arming (0-based): where each runs and its go signal."""
        ctx = self.ctx
        copiers = {}
        roles = [("backup", ctx.source, dr.BACKUP_DAG_ID), ("restore", ctx.target, dr.RESTORE_DAG_ID)]
        if not ctx.to_version.startswith("3"):  # a 2.x target at go-live: its tasks can unpause
            roles.append((UNPAUSE, ctx.target, dr.RESTORE_DAG_ID))
        for role, environment, dag_id in roles:
            tag = "u" if role == UNPAUSE else "g"
            run_id = dr.run_id(dag_id, ctx.journal.run_id, f"{PASS_2}{tag}{attempt}")
            go = dr.go_key(self.prefix(PASS_2), run_id)
            copiers[role] = {"environment": environment, "dag_id": dag_id, "run_id": run_id, "go": go}
        return copiers

    def _signal(self, copiers: dict[str, dict[str, Any]], signal: dict[str, Any]) -> None:
        for copier in copiers.values():
            self.ctx.s3.put_text(self.ctx.config.dr.backup_bucket, copier["go"], json.dumps(signal))

    def armed_role(self, role: str, step: Step, used_key: str) -> dict[str, Any] | None:
        """The armed copier ``role`` of the last arm-copiers, unless an earlier attempt of ``step``
        used it (its run id is noted under ``used_key``) or the cutover is not armed."""
        armed = self.ctx.result(Step.ARM_COPIERS)
        copier = armed.get(role) if armed.get("armed") else None
        if copier is None or self.ctx.journal.data(step).get(used_key) == copier["run_id"]:
            return None
        if copier["run_id"] in self.ctx.journal.data(Step.RECORD_DAGS).get("copiers_cancelled", []):
            return None  # the backup's did not answer the freeze's pause signal: both were cancelled
        return copier

    def armed_copier(self, role: str) -> dict[str, Any] | None:
        """The copier ``role`` of the last arm-copiers when it armed, used or not."""
        armed = self.ctx.result(Step.ARM_COPIERS)
        return armed.get(role) if armed.get("armed") else None

    def armed_run_ids(self) -> list[str]:
        armed = self.ctx.result(Step.ARM_COPIERS)
        if not armed.get("armed"):
            return []
        return [armed[r]["run_id"] for r in ("backup", "restore", UNPAUSE) if r in armed]

    def cancel_armed(self) -> None:
        """Tell the armed copiers that have not gone yet to do nothing (best effort: one that is
        not told ends at its deadline)."""
        armed = self.ctx.result(Step.ARM_COPIERS)
        roles = ("backup", "restore", UNPAUSE)
        self._cancel({r: armed[r] for r in roles if armed.get("armed") and r in armed})

    def _cancel(self, copiers: dict[str, dict[str, Any]]) -> None:
        try:
            self._signal(copiers, dr.CANCEL_SIGNAL)
        except MwaaIacError as exc:
            reason = f"could not be told to cancel: {exc.message}"
            self.ctx.emit(event(EventKind.COPIER_NOT_ARMED, reason=reason))

    def _fallback(self, copier: dict[str, Any], reason: str) -> None:
        fields = {"dag_id": copier["dag_id"], "environment": copier["environment"], "reason": reason}
        self.ctx.emit(event(EventKind.COPIER_FALLBACK, **fields))

    def _armed_backup(self, step: Step, prefix: str, since: str | None) -> dict[str, Any] | None:
        """Pass 2's backup by its armed copier: its go signal (and the restore's, naming this
        prefix) written, its task waited for. None when there is none to use, or it did nothing
        (expired, cancelled): the backup is then triggered."""
        ctx = self.ctx
        copier = self.armed_role("backup", step, "armed_go")
        restore = self.armed_role("restore", COPY_STEPS[PASS_2][2], "armed_used")
        if copier is None:
            return None
        ctx.journal.note(step, armed_go=copier["run_id"])
        bucket = ctx.config.dr.backup_bucket
        went = time.time()
        ctx.s3.put_text(bucket, copier["go"], json.dumps(dr.go_signal(prefix, since)))
        if restore is not None:
            # The restore waits for this backup's manifest and starts the moment it is written.
            ctx.s3.put_text(bucket, restore["go"], json.dumps(dr.go_signal(prefix)))
            ctx.journal.note(step, restore_go=prefix)
        run = ctx.runner(ctx.source).wait(copier["dag_id"], copier["run_id"], backoff=False, by_task=True)
        note = run_note(ctx.api(ctx.source), copier["dag_id"], copier["run_id"])
        skipped = dr.armed_skipped(note)
        if skipped:
            self._fallback(copier, skipped)
            return None
        return {**run, "armed": True, "went_after_s": _after(note, went)}

    def _armed_restore(self, step: Step, prefix: str) -> dict[str, Any] | None:
        """Pass 2's restore by its armed copier, told to go with ``prefix`` by the backup step; None
        when there is none to use or it did nothing (the restore is then triggered)."""
        ctx = self.ctx
        copier = self.armed_role("restore", step, "armed_used")
        if copier is None or ctx.journal.data(COPY_STEPS[PASS_2][0]).get("restore_go") != prefix:
            return None
        ctx.journal.note(step, armed_used=copier["run_id"])
        outcome = run_restore(ctx.runner(ctx.target), copier["run_id"], "", {}, backoff=False, started=True)
        skipped = dr.armed_skipped(outcome)
        if skipped or outcome.get("prefix") not in (None, prefix):
            reason = skipped or f"it restored {outcome.get('prefix')}, not {prefix}"
            self._fallback(copier, reason)
            return None
        return {**outcome, "run_id": copier["run_id"], "armed": True}

    def _markers(self, label: str) -> dict[str, str]:
        return self.ctx.result(DEPLOY_STEP[label]).get("markers", {})

    def _run_id(self, dag_id: str, label: str, attempt: int) -> str:
        return dr.run_id(dag_id, self.ctx.journal.run_id, label if attempt <= 0 else f"{label}a{attempt}")

    # -- the pass steps ----------------------------------------------------------------------------

    def backup(self, label: str) -> dict[str, Any]:
        ctx = self.ctx
        step = COPY_STEPS[label][0]
        attempt = ctx.journal.attempts(step) - 1  # this attempt's "started" is recorded
        prefix = self.prefix(label) + (f"-a{attempt}" if attempt > 0 else "")
        since = self.delta_base() if label == PASS_2 else None
        if label == PASS_2:
            armed = self._armed_backup(step, prefix, since)
            if armed is not None:
                return {**armed, "prefix": prefix, "since": since}
        conf = dr.copy_conf(ctx.config.dr.backup_bucket, prefix, since)
        run = ctx.runner(ctx.source).run(
            dr.BACKUP_DAG_ID,
            self._run_id(dr.BACKUP_DAG_ID, label, attempt),
            self._markers(label)[dr.BACKUP_DAG_ID],
            conf,
            backoff=not self.ctx.frozen(),
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
        armed = self._armed_restore(COPY_STEPS[label][2], prefix) if label == PASS_2 else None
        if armed is not None:
            self._hold_warning(armed)
            return armed
        # Outside the freeze (pass 1), a full restore vacuums what it rewrote, before the freeze reads it.
        conf = dr.copy_conf(ctx.config.dr.backup_bucket, prefix, vacuum=not ctx.frozen())
        run_id = self._run_id(dr.RESTORE_DAG_ID, label, attempt)
        outcome = run_restore(
            ctx.runner(ctx.target),
            run_id,
            self._markers(label)[dr.RESTORE_DAG_ID],
            conf,
            backoff=not self.ctx.frozen(),
        )
        self._hold_warning(outcome)
        return {**outcome, "run_id": run_id}

    def _hold_warning(self, outcome: dict[str, Any]) -> None:
        ctx = self.ctx
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

    def armed_report(self) -> dict[str, Any]:
        """Whether pass 2's copiers were armed before the freeze, and which of them copied (a
        copier that did nothing was replaced by a run triggered in the freeze)."""
        ctx = self.ctx
        armed = ctx.result(Step.ARM_COPIERS)
        backup, restore = ctx.result(COPY_STEPS[PASS_2][0]), ctx.result(COPY_STEPS[PASS_2][2])
        return {
            "armed": bool(armed.get("armed")),
            "reason": armed.get("reason"),
            "backup": bool(backup.get("armed")),
            "restore": bool(restore.get("armed")),
            "went_after_s": backup.get("went_after_s"),
            "paused": ctx.result(Step.RECORD_DAGS).get("paused_by") == "copier",
            "unpaused": ctx.result(Step.GO_LIVE).get("unpaused_by") == "copier",
        }

    def pass2_copy(self) -> dict[str, Any]:
        """What pass 2 copied: delta or full (and why), rows per table in its backup."""
        journal = self.ctx.journal
        backup_step, verify_step = COPY_STEPS[PASS_2][:2]
        copy = {k: self.ctx.result(verify_step).get(k) for k in COPY_FIELDS}
        restored = self.ctx.result(COPY_STEPS[PASS_2][2])
        copy["restore"] = {k: restored[k] for k in RESTORE_FIELDS if restored.get(k) is not None}
        recorded = journal.data(backup_step)
        refused = recorded.get("refused")
        if refused and copy["mode"] == "full":
            copy["fallback"] = f"the target refused the delta: {refused}"
        elif recorded.get("full_reason") and copy["mode"] == "full":
            copy["fallback"] = recorded["full_reason"]
        return copy


def _after(note: dict[str, Any], went: float) -> float | None:
    """Seconds from the go signal written to the copier going (None when its note does not say)."""
    armed = note.get("armed")
    at = armed.get("went_at") if isinstance(armed, dict) else None
    return round(float(at) - went, 2) if isinstance(at, int | float) else None


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
