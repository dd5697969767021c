"""`mwaa-iac backup` and `mwaa-iac restore`: the mwaa-dr building blocks on their own.

A backup runs the backup DAG (mwaa-dr's factory for the environment's own version, mwaa-iac's copy
module) into a fresh prefix of the DR bucket; the DAG writes ``manifest.json`` (per-table counts and
content hashes, never values) and mwaa-iac ``mwaa-iac-backup.json`` (environment, version, factory,
delivery). A restore reads both, cleans the inactive colour's environment and restores with the
backup's factory in one transaction that commits only when counts and hashes match the manifest.

mwaa-dr is delivered with the DAG files (``mwaa_iac_dr/vendor/``), never through the environment's
requirements (that would restart it). Before either changes anything, a probe DAG proves that the
environment running mwaa-dr (the source of a backup, the target of a restore) imports it and can
write to the DR bucket.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mwaa_iac.adapters.airflow_api import AirflowApi
from mwaa_iac.adapters.mwaa import MwaaClient
from mwaa_iac.adapters.storage import BUCKET_FIX, S3
from mwaa_iac.core import dr
from mwaa_iac.core.catalog import parse_version
from mwaa_iac.core.config import EnvironmentConfig
from mwaa_iac.errors import UsageError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.dr_probe import check_scheduler, run_probe
from mwaa_iac.workflows.dr_runs import CutoverError, DagRunner, DeltaRefused, deploy_dr_files, run_note

BACKUP_INFO = "mwaa-iac-backup.json"  # mwaa-iac backup's record beside the DAG's manifest.json


@dataclass
class DrTiming:
    dag_timeout_seconds: float = 900.0
    run_timeout_seconds: float = 3 * 3600.0
    run_poll_seconds: float = 5.0
    import_error_grace_seconds: float = 60.0
    probe_timeout_seconds: float = 900.0


def require_private_bucket(s3: S3, bucket: str, *, require_kms: bool = False) -> None:
    problems = s3.bucket_problems(bucket, require_kms=require_kms)
    if problems:
        raise UsageError(
            f"the backup bucket {bucket} is not fit to hold secrets: {'; '.join(problems)}",
            hint=BUCKET_FIX,
        )


def read_manifest(s3: S3, bucket: str, prefix: str) -> dict[str, Any]:
    """The backup DAG's manifest under ``prefix`` (written last: its presence means the backup is
    complete) with ``rows`` per table; CutoverError when it is missing or incomplete."""
    location = f"s3://{bucket}/{prefix}/"
    raw = s3.get_text(bucket, f"{prefix}/{dr.MANIFEST}")
    if raw is None:
        raise CutoverError(
            f"the backup under {location} has no {dr.MANIFEST}: it did not complete",
            hint="check the backup_metadata run's logs in the source environment",
        )
    try:
        manifest = json.loads(raw)
        rows = dr.manifest_counts(manifest)
    except (ValueError, dr.ManifestError) as exc:
        raise CutoverError(f"the backup under {location} is not usable: {exc}") from exc
    return {"prefix": prefix, "manifest": manifest, "rows": rows}


# Where a database error's text starts quoting values (PostgreSQL's DETAIL and CONTEXT, SQLAlchemy's
# statement and parameters). The copy module reduces errors itself; a note written by the copy module
# of an earlier release may still hold them: cut there, so no value reaches the CLI or --json.
_VALUE_MARKERS = ("DETAIL:", "CONTEXT:", "[SQL:", "[parameters:", "Failing row contains", "\n")


def safe_error(error: Any) -> str:
    """A restore note's error up to the first place it could quote a row's values."""
    text = str(error)
    cut = min((i for i in (text.find(m) for m in _VALUE_MARKERS) if i >= 0), default=len(text))
    return text[:cut].rstrip() + (" [details withheld: they may quote values]" if cut < len(text) else "")


def restore_result(api: AirflowApi, run_id: str) -> dict[str, Any]:
    """What the restore run recorded in its note (counts, reset task instances, or its error; an
    error never with the values a database error quotes)."""
    value = run_note(api, dr.RESTORE_DAG_ID, run_id)
    if value.get("error"):
        value["error"] = safe_error(value["error"])
    return value


def verify_restore(target: str, rows: dict[str, int], result: dict[str, Any]) -> dict[str, Any]:
    """The restore verified every table's count and content hash against the manifest before it
    committed; check what it reports (CutoverError naming the tables otherwise)."""
    problems = dr.restore_problems(rows, result)
    if problems:
        raise CutoverError(
            f"the restore into {target} does not match the backup: {'; '.join(problems)}",
            hint="the restore ran in one transaction: the target is as it was before it",
        )
    return {
        "tables": result.get("tables", rows),
        "reset": result.get("reset", []),
        "paused": result.get("paused"),
        "seconds": result.get("seconds"),
    }


def run_restore(
    runner: DagRunner, run_id: str, marker: str, conf: dict[str, Any], *, started: bool = False, **kwargs: Any
) -> dict:
    """Run the restore DAG (``started``: wait for the run ``run_id`` already started, until its task
    succeeds); on failure, the error the restore recorded (e.g. which table differs)."""
    try:
        if started:
            runner.wait(dr.RESTORE_DAG_ID, run_id, by_task=True, **kwargs)
        else:
            runner.run(dr.RESTORE_DAG_ID, run_id, marker, conf, **kwargs)
    except CutoverError as exc:
        note = restore_result(runner.api, run_id)
        error = note.get("error")
        if error and note.get("delta_refused"):
            raise DeltaRefused(
                f"{exc.message}: {error}", reason=str(error).removeprefix("delta refused: ")
            ) from exc
        if error:
            raise CutoverError(
                f"{exc.message}: {error}",
                hint="the restore ran in one transaction: the target is as it was; fix the cause, "
                "then rerun with --resume",
            ) from exc
        raise
    return restore_result(runner.api, run_id)


def probe(
    runner: DagRunner,
    config: EnvironmentConfig,
    factory: str,
    *,
    role: str,
    bucket: str | None = None,
    cloudwatch: Any = None,
    scan: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check that the environment's scheduler runs (Airflow's health and, with ``cloudwatch``, the
    SchedulerHeartbeat metric: :func:`~mwaa_iac.workflows.dr_probe.check_scheduler` raises
    SchedulerDownError at once when it does not), then run the preflight probe (its DAG file
    already deployed) with a run id of its own; it writes and deletes an object under the
    deployment's prefix in ``bucket`` (default: the DR bucket). With ``scan`` (core.hazards.scan_conf)
    it also scans the database for migration hazards (the answer's parts: ``run_probe``)."""
    check_scheduler(runner.api, runner.emit, role=role, cloudwatch=cloudwatch, now=runner.wall)
    probe_id = uuid.uuid4().hex[:8]
    file = dr.render_probe_dag(factory, config.name)
    conf: dict[str, Any] = dr.probe_conf(
        bucket or config.dr.backup_bucket, config.dr.path_prefix, config.name, probe_id
    )
    if scan is not None:
        conf["scan"] = scan
    return run_probe(runner, file, dr.run_id("probe", probe_id, "x"), conf, role=role)


def probe_runner(runner: DagRunner, timing: Any) -> DagRunner:
    """The same runner with the probe's (shorter) run timeout: it runs in seconds when it works."""
    options = DrTiming(
        dag_timeout_seconds=timing.dag_timeout_seconds,
        run_timeout_seconds=min(timing.run_timeout_seconds, getattr(timing, "probe_timeout_seconds", 900.0)),
        run_poll_seconds=timing.run_poll_seconds,
        import_error_grace_seconds=getattr(timing, "import_error_grace_seconds", 60.0),
    )
    return DagRunner(runner.api, options, runner.emit, runner.sleep, runner.clock, runner.wall)


def parse_location(location: str) -> tuple[str, str]:
    if not location.startswith("s3://") or "/" not in location[5:]:
        raise UsageError(f"--from {location!r} is not an S3 location", hint="use s3://BUCKET/PREFIX")
    bucket, _, prefix = location[5:].partition("/")
    return bucket, prefix.strip("/")


def take_backup(
    config: EnvironmentConfig,
    environment: str,
    *,
    mwaa: MwaaClient,
    s3: S3,
    emit: Any,
    timing: DrTiming | None = None,
    sleep: Any = time.sleep,
) -> dict[str, Any]:
    """Back up ``environment`` with mwaa-dr; returns the location and record counts."""
    timing = timing or DrTiming()
    version = mwaa.observe(environment).airflow_version or config.active_version
    factory = dr.factory_for(version)
    bucket = config.dr.backup_bucket
    require_private_bucket(s3, bucket, require_kms=config.dr.require_kms)
    backup_id = uuid.uuid4().hex[:8]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = dr.backup_prefix(config.dr.path_prefix, config.name, f"{stamp}-{backup_id}", "")
    dag_file = dr.render_backup_dag(factory, prefix, config.name, f"backup {backup_id}")
    vendor = deploy_dr_files(
        s3,
        config.source.bucket_name,
        config.source.dag_s3_path,
        [dr.render_probe_dag(factory, config.name), dag_file],
    )
    emit(event(EventKind.DR_VENDOR, **vendor))
    runner = DagRunner(AirflowApi(mwaa, environment, sleep=sleep), timing, emit, sleep)
    probed = probe(probe_runner(runner, timing), config, factory, role="the backup")
    emit(event(EventKind.BACKUP_STARTED, environment=environment, location=f"s3://{bucket}/{prefix}"))
    runner.run(
        dr.BACKUP_DAG_ID, dr.run_id("backup", backup_id, "b"), dag_file.marker, dr.copy_conf(bucket, prefix)
    )
    counts = read_manifest(s3, bucket, prefix)
    manifest = {
        "environment": environment,
        "deployment": config.name,
        "airflow_version": version,
        "factory": factory,
        "created": stamp,
        "records": counts["rows"],
        "mwaa_dr_delivery": {"versions": vendor["versions"], "vendored": probed["vendored"]},
    }
    s3.put_text(bucket, f"{prefix}/{BACKUP_INFO}", json.dumps(manifest, indent=2, sort_keys=True))
    location = f"s3://{bucket}/{prefix}"
    emit(event(EventKind.BACKUP_DONE, location=location))
    return {"location": location, **manifest}


def backup_with_summary(
    config: EnvironmentConfig, environment: str, *, mwaa: MwaaClient, s3: S3, emit: Any, **kwargs: Any
) -> dict[str, Any]:
    """`mwaa-iac backup`: :func:`take_backup`, then its result as ``backup.summary`` (the last
    event; the upgrade's safety backup calls :func:`take_backup` and emits none)."""
    result = take_backup(config, environment, mwaa=mwaa, s3=s3, emit=emit, **kwargs)
    emit(event(EventKind.BACKUP_SUMMARY, result))
    return result


def restore_backup(
    config: EnvironmentConfig,
    location: str,
    *,
    mwaa: MwaaClient,
    s3: S3,
    emit: Any,
    timing: DrTiming | None = None,
    sleep: Any = time.sleep,
    routing: Any = None,
    store: Any = None,
    env: str = "",
    break_glass: bool = False,
) -> dict[str, Any]:
    """Restore a backup into the inactive colour's environment (cleaned first; the restore DAG
    fixes up after itself), verify. With ``routing`` and ``store`` (the CLI always passes them),
    nothing is read or changed unless routing, the deployment record and the last cutover agree
    that the inactive colour is not live (``workflows.live``)."""
    from mwaa_iac.core.live import Role
    from mwaa_iac.workflows import live

    timing = timing or DrTiming()
    if routing is not None and store is not None:
        claims = live.read_claims(config, routing, store, live.describer(mwaa))
        live.require(
            "restore into (overwrite)",
            config.active_color.other,
            Role.NOT_LIVE,
            claims,
            config,
            env or config.name,
            break_glass=break_glass,
            emit=emit,
        )
    bucket, prefix = parse_location(location)
    raw = s3.get_text(bucket, f"{prefix}/{BACKUP_INFO}")
    if raw is None:
        raise UsageError(f"{location} has no {BACKUP_INFO}: not a backup made by mwaa-iac backup")
    manifest = json.loads(raw)
    rows = read_manifest(s3, bucket, prefix)["rows"]
    target = config.environment_name(config.active_color.other)
    if not mwaa.exists(target):
        raise UsageError(
            f"{target} (the inactive colour) does not exist",
            hint="restore targets the inactive colour; create it first (mwaa-iac apply --phase clone-...)",
        )
    target_version = mwaa.observe(target).airflow_version or ""
    if parse_version(target_version) < parse_version(manifest["airflow_version"]):
        raise UsageError(
            f"{target} runs Airflow {target_version}, older than the backup's {manifest['airflow_version']}",
            hint="mwaa-dr restores into the same or a newer version only",
        )
    restore_id = uuid.uuid4().hex[:8]
    label = f"restore {restore_id}"
    files = [
        dr.render_prepare_dag(config.name, label),
        dr.render_restore_dag(manifest["factory"], prefix, config.name, label),
    ]
    deploy_dr_files(
        s3,
        config.source.bucket_name,
        config.source.dag_s3_path,
        [dr.render_probe_dag(manifest["factory"], config.name), *files],
    )
    runner = DagRunner(AirflowApi(mwaa, target, sleep=sleep), timing, emit, sleep)
    # Before the target's metadata is emptied: it imports mwaa-dr and can use the DR bucket.
    probe(probe_runner(runner, timing), config, manifest["factory"], role="the restore", bucket=bucket)
    markers = {f.dag_id: f.marker for f in files}
    runner.run(dr.PREPARE_DAG_ID, dr.run_id("prepare", restore_id, "r"), markers[dr.PREPARE_DAG_ID])
    run_id = dr.run_id("restore", restore_id, "r")
    outcome = run_restore(runner, run_id, markers[dr.RESTORE_DAG_ID], dr.copy_conf(bucket, prefix))
    verified = verify_restore(target, rows, outcome)
    result = {"environment": target, "from": location, "tables": verified["tables"]}
    emit(event(EventKind.RESTORE_SUMMARY, **result))
    return result
