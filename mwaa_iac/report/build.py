"""Build the pull-request report for one environment: what changed, what is live, what the tool
would do about it, what Terraform would change, the offline preflight checks and the extra cost.

:func:`build_report` gathers; it prints nothing. Problems in optional parts (git history of a file,
live state, Terraform, checks, prices) are recorded in the report with their reason; only a broken
current configuration or an unusable ``--base`` raise, since then there is nothing to report on.
The result's :meth:`Report.to_dict` is the JSON document (``mwaa_iac/data/report.schema.json``) that
every renderer reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from mwaa_iac.checks.dags import DagCheckError, check_dags
from mwaa_iac.checks.requirements import (
    ConstraintsUnavailableError,
    RequirementsOptions,
    check_requirements,
)
from mwaa_iac.core.catalog import load_catalog, parse_version
from mwaa_iac.core.config import Color, EnvironmentConfig, parse_config_text
from mwaa_iac.core.cost import DEFAULT_METADATA_GB, MissingPriceError, estimate_parallel_run, load_price_book
from mwaa_iac.core.phase_layout import Phase, PhaseKind
from mwaa_iac.core.planner import PathPlan, Strategy, plan_path
from mwaa_iac.errors import ConfigError, ExitCode, MwaaIacError, TerraformError
from mwaa_iac.report.aws import LiveState, read_live_state
from mwaa_iac.report.diff import Change, FileChange, diff_mappings, diff_terraform_files, mask_sensitive
from mwaa_iac.report.git import GitRepo, open_repo
from mwaa_iac.workspace import Workspace

SCHEMA_VERSION = 1
TERRAFORM_SUFFIXES = (".tf", ".tfvars")

LiveReader = Callable[[EnvironmentConfig], LiveState]
# (configuration, the live source's name, passes) -> the sizing section (mwaa_iac.workflows.sizing)
# (config, source environment, passes, the in-place upgrades inside the freeze) -> the sizing section
SizingReader = Callable[[EnvironmentConfig, str, int, tuple[str, ...]], dict[str, Any]]


@dataclass
class ReportOptions:
    """Inputs of :func:`build_report` beyond the workspace (the ``report`` command's flags)."""

    base: str | None = None
    today: date | None = None
    live: bool = True
    live_reader: LiveReader | None = None
    # Counts the live source's rows for the sizing estimate. Unset: through InvokeRestApi, but only
    # with the default live reader (a stubbed live state has no environment behind it to count).
    sizing_reader: SizingReader | None = None
    terraform: bool = True
    terraform_bin: str | None = None
    source_dir: Path | None = None
    requirements_file: Path | None = None
    constraints_file: Path | None = None
    dag_dir: Path | None = None
    offline: bool = False
    resolver: str = "none"  # the report's requirements check is static unless asked
    find_links: Path | None = None
    hours: float | None = None
    metadata_gb: float = DEFAULT_METADATA_GB


@dataclass
class Report:
    """The report as data. ``to_dict`` is the JSON document; renderers read that."""

    data: dict[str, Any]
    status: str  # change | no-change | refused | failed-checks
    notes: list[str] = field(default_factory=list)

    def exit_code(self, detailed: bool) -> int:
        """0 no change, 2 change planned (only with ``detailed``), 1 refused or a failed check."""
        if self.status in ("refused", "failed-checks"):
            return int(ExitCode.FAILED)
        if self.status == "change" and detailed:
            return int(ExitCode.CHANGES)
        return int(ExitCode.OK)

    def to_dict(self) -> dict[str, Any]:
        return self.data


# --------------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------------


@dataclass
class _Base:
    ref: str | None
    commit: str | None = None
    config_found: bool | None = None
    config: EnvironmentConfig | None = None
    raw: dict[str, Any] | None = None
    error: str | None = None
    terraform_files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "commit": self.commit[:12] if self.commit else None,
            "config_found": self.config_found,
            "airflow_version": self.config.airflow_version
            if self.config
            else (self.raw or {}).get("airflow_version"),
            "error": self.error,
        }


def _read_base(ws: Workspace, ref: str) -> tuple[_Base, GitRepo]:
    repo = open_repo(ws.root)
    commit = repo.resolve(ref)
    rel_config = repo.relative(ws.config_file)
    base = _Base(ref, commit)
    text = repo.show(commit, rel_config)
    base.config_found = text is not None
    if text is not None:
        try:
            base.config = parse_config_text(text, f"{ref}:{rel_config}")
        except ConfigError as exc:
            base.error = f"the configuration at {ref} is not valid today ({len(exc.problems)} problem(s))"
            try:
                loaded = yaml.safe_load(text)
                base.raw = loaded if isinstance(loaded, dict) else None
            except yaml.YAMLError:
                base.raw = None
    rel_dir = repo.relative(ws.directory)
    for path in repo.list_files(commit, rel_dir):
        if path.endswith(TERRAFORM_SUFFIXES):
            shown = path[len(rel_dir) + 1 :]
            base.terraform_files[shown] = repo.show(commit, path) or ""
    return base, repo


def _working_terraform_files(ws: Workspace) -> dict[str, str]:
    files = {}
    for path in sorted(ws.directory.rglob("*")):
        rel = path.relative_to(ws.directory)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.name.endswith(TERRAFORM_SUFFIXES):
            try:
                files[rel.as_posix()] = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    return files


def _settings(config: EnvironmentConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")


@dataclass(frozen=True)
class _Deployed:
    version: str | None
    color: Color
    source: str  # live | deployment record | none
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "active_color": str(self.color),
            "version": self.version,
            "source": self.source,
            "notes": list(self.notes),
        }


def _deployed(config: EnvironmentConfig, live: LiveState) -> _Deployed:
    active = config.active_color
    recorded = config.deployment.version_of(active)
    env = live.get(active) if live.read else None
    notes: list[str] = []
    if env is not None and env.exists and env.airflow_version:
        if recorded and recorded != env.airflow_version:
            notes.append(
                f"{env.name} runs Airflow {env.airflow_version} but the deployment record says {recorded}; "
                "the live version is used"
            )
        return _Deployed(env.airflow_version, active, "live", tuple(notes))
    if recorded:
        return _Deployed(recorded, active, "deployment record", tuple(notes))
    return _Deployed(None, active, "none", tuple(notes))


def _downtime(plan: PathPlan | None, kind: str, settings_changed: bool) -> dict[str, str]:
    if kind == "create":
        return {
            "class": "none",
            "short": "nothing running yet",
            "summary": "a new deployment: nothing is running yet, so nothing stops",
        }
    if kind == "refused" or plan is None:
        return {"class": "unknown", "short": "refused", "summary": "no upgrade will run: the path is refused"}
    if kind == "none":
        if settings_changed:
            return {
                "class": "settings-update",
                "short": "settings update",
                "summary": "no Airflow version change; MWAA applies changed settings with an environment "
                "update (schedulers and workers are replaced; running tasks follow "
                "worker_replacement_strategy)",
            }
        return {"class": "none", "short": "no downtime", "summary": "nothing to do: no downtime"}
    hops = sum(1 for h in plan.hops if h.kind == "in-place")
    if plan.strategy is Strategy.IN_PLACE:
        per = "per hop, " if hops > 1 else ""
        return {
            "class": "in-place",
            "short": "scheduling stops during the upgrade (up to ~2 h per hop)",
            "summary": f"scheduling stops for the whole upgrade and running tasks are terminated: up to "
            f"about two hours on AWS {per}for {hops} in-place hop{'s' if hops != 1 else ''}",
        }
    if plan.history_carried is False:
        return {
            "class": "new-environment",
            "short": "scheduling moves when routing flips",
            "summary": "a new environment without history; scheduling moves when routing flips",
        }
    if plan.two_pass and plan.freeze_hops:
        hop = " → ".join(
            [h.from_version or "" for h in plan.hops[-plan.freeze_hops :]][:1]
            + [h.to_version for h in plan.hops[-plan.freeze_hops :]]
        )
        return {
            "class": "freeze-with-hop",
            "short": f"scheduling pauses for the last copy and the in-place upgrade {hop} "
            "(up to ~2 h on AWS)",
            "summary": f"the freeze is pass 2 (what changed since pass 1) and the new colour's in-place "
            f"upgrade {hop}, which on AWS may take up to about two hours (AWS's figure for a version "
            f"update; the rehearsal measures it on a copy before the freeze); pass 1, the upgrade to "
            f"{plan.pass2_version} and the health gate run while the old colour keeps scheduling",
        }
    if plan.two_pass:
        return {
            "class": "freeze-window",
            "short": "scheduling pauses only for the freeze window (minutes)",
            "summary": "only the freeze window (minutes): pass 1 rehearses on the new colour while the old "
            "one keeps scheduling, pass 2 copies the last metadata with DAGs paused",
        }
    return {
        "class": "single-pass-freeze",
        "short": "DAGs paused from the clone until the new colour is verified (hours)",
        "summary": "DAGs are paused on the old colour from before the clone until the new colour is "
        "upgraded and verified (hours: the new colour's in-place hops run inside the freeze); the old "
        "colour stays as the fallback",
    }


def _next_phase(config: EnvironmentConfig, plan: PathPlan | None, kind: str) -> tuple[Phase, str | None]:
    """The Terraform phase the workflow applies first, and the version it moves to."""
    if kind == "upgrade" and plan is not None and plan.hops:
        if plan.strategy is Strategy.CUTOVER:
            return Phase(PhaseKind.CLONE, config.active_color.other), None
        return Phase(PhaseKind.STEADY), plan.hops[0].to_version
    return Phase(PhaseKind.STEADY), None


def _terraform_section(
    ws: Workspace,
    config: EnvironmentConfig,
    options: ReportOptions,
    phase: Phase,
    version: str | None,
    kind: str,
) -> dict[str, Any]:
    base = {"phase": str(phase), "version": version}
    if not options.terraform:
        return {**base, "ran": False, "reason": "not run (--no-terraform)"}
    if kind == "refused":
        return {**base, "ran": False, "reason": "not run: the upgrade path is refused"}
    from mwaa_iac.workflows.phase import plan_phase, runner_for

    try:
        runner = runner_for(ws, options.terraform_bin)
        result = plan_phase(ws, config, phase, runner, version=version)
    except MwaaIacError as exc:
        reason = exc.message.strip().splitlines()[0]
        if isinstance(exc, TerraformError):
            why = next(
                (ln.strip() for ln in exc.diagnostics.splitlines() if ln.strip().startswith("Error:")), ""
            )
            if why:
                reason += f": {why.removeprefix('Error:').strip()}"
        if exc.hint:
            reason += f" ({exc.hint})"
        for prefix in {str(ws.root.resolve()) + "/", str(ws.root) + "/"}:
            reason = reason.replace(prefix, "")
        return {**base, "ran": False, "reason": f"Terraform could not run: {reason}"}
    changes = [
        {
            "address": c.address,
            "action": str(c.action),
            "airflow_version_before": c.airflow_version_before,
            "airflow_version_after": c.airflow_version_after,
        }
        for c in result.summary.resources
        if str(c.action) not in ("no-op", "read")
    ]
    return {
        **base,
        "ran": True,
        "reason": None,
        "has_changes": result.has_changes,
        "changes": changes,
        "guard": result.verdict.to_dict(),
    }


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _check_entry(
    name: str, status: str, summary: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"name": name, "status": status, "summary": summary, "details": details}


def _requirements_check(
    ws: Workspace, config: EnvironmentConfig, target: str, options: ReportOptions
) -> dict:
    path = options.requirements_file
    if path is None and config.source.requirements_s3_path is None:
        return _check_entry("requirements", "skipped", "the environment has no requirements file")
    if path is None and options.source_dir is not None:
        path = options.source_dir / config.source.requirements_s3_path  # type: ignore[operator]
    if path is None:
        return _check_entry(
            "requirements",
            "skipped",
            "not run: pass --requirements FILE or --source-dir DIR (a local copy of the source bucket)",
        )
    if not path.is_file():
        return _check_entry("requirements", "error", f"requirements file {_display(path, ws.root)} not found")
    try:
        result = check_requirements(
            path,
            target,
            RequirementsOptions(
                constraints_file=options.constraints_file,
                offline=options.offline,
                resolver=options.resolver,
                find_links=options.find_links,
            ),
            display=_display(path, ws.root),
        )
    except ConstraintsUnavailableError as exc:
        return _check_entry("requirements", "unavailable", f"not checked: {exc.message}")
    except MwaaIacError as exc:
        return _check_entry("requirements", "error", exc.message)
    return _check_entry("requirements", result.status, result.summary(), result.to_dict())


def _dags_check(ws: Workspace, config: EnvironmentConfig, target: str, options: ReportOptions) -> dict:
    path = options.dag_dir
    if path is None and options.source_dir is not None:
        path = options.source_dir / config.source.dag_s3_path
    if path is None:
        return _check_entry("dags", "skipped", "not run: pass --dags DIR or --source-dir DIR")
    if not path.is_dir():
        return _check_entry("dags", "error", f"DAG folder {_display(path, ws.root)} not found")
    try:
        result = check_dags(path, target, display=_display(path, ws.root))
    except DagCheckError as exc:
        return _check_entry("dags", "error", exc.message)
    except MwaaIacError as exc:
        return _check_entry("dags", "error", exc.message)
    return _check_entry("dags", result.status, result.summary(), result.to_dict())


def _cost_section(
    config: EnvironmentConfig, plan: PathPlan | None, kind: str, options: ReportOptions
) -> dict:
    if kind != "upgrade" or plan is None:
        return {"status": "skipped", "summary": "no upgrade: no second environment", "estimate": None}
    if plan.strategy is Strategy.IN_PLACE:
        return {
            "status": "skipped",
            "summary": "in place: no second environment, no extra cost",
            "estimate": None,
        }
    try:
        estimate = estimate_parallel_run(
            config, load_price_book(), hours=options.hours, metadata_gb=options.metadata_gb
        )
    except MissingPriceError as exc:
        return {"status": "unavailable", "summary": "; ".join(exc.missing) + " missing", "estimate": None}
    return {"status": "estimated", "summary": estimate.summary(), "estimate": estimate.to_dict()}


def _read_sizing(
    config: EnvironmentConfig, source: str, passes: int, freeze_hops: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The live source's row counts through InvokeRestApi, with the report's short AWS timeouts."""
    from botocore.exceptions import BotoCoreError

    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.report.aws import explain_aws_error, mwaa_client
    from mwaa_iac.workflows.sizing import read_sizing, unavailable

    try:
        mwaa = MwaaClient(config.region, mwaa_client(config.region))
    except (BotoCoreError, ValueError) as exc:  # a report is posted whatever the AWS set-up
        return unavailable(explain_aws_error(exc), source)
    return read_sizing(mwaa, source, passes=passes, freeze_hops=freeze_hops)


def _sizing_section(
    config: EnvironmentConfig, plan: PathPlan | None, kind: str, live: LiveState, options: ReportOptions
) -> dict[str, Any]:
    """Rows per table on the live source and the estimated copy and freeze times, for a cutover that
    carries history; otherwise why there is none."""
    from mwaa_iac.workflows.sizing import unavailable

    if kind != "upgrade" or plan is None or plan.strategy is not Strategy.CUTOVER:
        return unavailable("no cutover: nothing is copied", skipped=True)
    if not plan.history_carried:
        return unavailable("the cutover carries no history: nothing is copied", skipped=True)
    source = config.environment_name(config.active_color)
    if not live.read:
        return unavailable(live.message(), source, skipped=live.skipped)
    env = live.get(config.active_color)
    if env is None or not env.exists:
        return unavailable(f"{source} does not exist", source)
    reader = options.sizing_reader
    if reader is None and options.live_reader is None:
        reader = _read_sizing
    if reader is None:
        return unavailable("no sizing reader for this live state", source, skipped=True)
    return reader(config, source, 2 if plan.two_pass else 1, plan.freeze_hop_texts())


def _verdict(
    env: str,
    kind: str,
    plan: PathPlan | None,
    deployed: _Deployed,
    desired: str,
    downtime: dict[str, str],
    changes: int,
    terraform: dict[str, Any],
    checks: list[dict[str, Any]],
) -> tuple[str, str]:
    failed = [c["name"] for c in checks if c["status"] == "failed"]
    guard_refused = terraform.get("ran") and not terraform["guard"]["allowed"]
    if kind == "refused" and plan is not None:
        reason = plan.refusals[0] if plan.refusals else "refused"
        return "refused", f"{plan.from_version} → {plan.to_version}: {reason}"
    if guard_refused:
        return "refused", terraform["guard"]["message"]
    if kind == "create":
        head = f"new deployment {env} at Airflow {desired}"
    elif kind == "upgrade" and plan is not None:
        hops = len(plan.hops)
        how = str(plan.strategy)
        if plan.strategy is Strategy.CUTOVER:
            how += ", two passes" if plan.two_pass else ", single pass"
        history = "history carried" if plan.history_carried else "history NOT carried"
        verb = "downgrade" if parse_version(plan.to_version) < parse_version(plan.from_version) else "upgrade"
        steps = f"{hops} step{'s' if hops != 1 else ''}"
        move = f"{verb} {plan.from_version} → {plan.to_version}"
        head = f"{move} by {how} ({steps}); {history}; {downtime['short']}"
    elif changes:
        head = f"settings change ({changes} key{'s' if changes != 1 else ''}); Airflow stays at {desired}"
    elif terraform.get("ran") and terraform.get("has_changes"):
        head = f"Terraform changes planned; Airflow stays at {desired}"
    else:
        where = f" ({deployed.source})" if deployed.version else ""
        return ("failed-checks" if failed else "no-change"), (
            f"{env} runs Airflow {deployed.version or desired}{where} as desired"
            + (f"; failed checks: {', '.join(failed)}" if failed else "")
        )
    if failed:
        return "failed-checks", f"{head}; failed checks: {', '.join(failed)}"
    return "change", head


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------


def build_report(ws: Workspace, options: ReportOptions | None = None) -> Report:
    """Gather the report for ``ws`` (see the module docstring)."""
    options = options or ReportOptions()
    today = options.today or date.today()
    config = ws.load()
    catalog = load_catalog()

    # What changed in the pull request.
    base: _Base | None = None
    settings_changes: list[Change] = []
    file_changes: list[FileChange] = []
    new_environment = False
    if options.base:
        base, _ = _read_base(ws, options.base)
        new_environment = not base.config_found
        if base.config is not None:
            settings_changes = diff_mappings(_settings(base.config), _settings(config))
        else:
            settings_changes = diff_mappings(
                base.raw or {}, yaml.safe_load(ws.config_file.read_text("utf-8"))
            )
        settings_changes = mask_sensitive(settings_changes)
        file_changes = [
            replace(f, changes=tuple(mask_sensitive(list(f.changes))))
            for f in diff_terraform_files(base.terraform_files, _working_terraform_files(ws))
        ]

    # What is live.
    if options.live:
        live = (options.live_reader or read_live_state)(config)
    else:
        live = LiveState(False, "not requested (--no-live)", skipped=True)
    deployed = _deployed(config, live)

    # The decision.
    desired = config.airflow_version
    plan: PathPlan | None = None
    if deployed.version is None:
        kind = "create"
    else:
        plan = plan_path(deployed.version, desired, config.strategy, today)
        kind = "refused" if not plan.allowed else ("none" if plan.is_noop else "upgrade")
    settings_changed = bool([c for c in settings_changes if c.key != "airflow_version"]) or bool(file_changes)
    downtime = _downtime(plan, kind, settings_changed)
    phase, phase_version = _next_phase(config, plan, kind)
    source_entry = catalog.get(deployed.version) if deployed.version else None
    history = {
        "carried": plan.history_carried if plan is not None and kind == "upgrade" else None,
        "mwaa_dr_factory": source_entry.dr_factory if source_entry else None,
        "mwaa_dr_version": catalog.mwaa_dr_version,
    }

    terraform = _terraform_section(ws, config, options, phase, phase_version, kind)
    checks = [
        _requirements_check(ws, config, desired, options),
        _dags_check(ws, config, desired, options),
    ]
    cost = _cost_section(config, plan, kind, options)
    sizing = _sizing_section(config, plan, kind, live, options)
    status, summary = _verdict(
        ws.env, kind, plan, deployed, desired, downtime, len(settings_changes), terraform, checks
    )

    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "env": ws.env,
        "name": config.name,
        "region": config.region,
        "today": today.isoformat(),
        "verdict": {"status": status, "summary": summary},
        "base": base.to_dict() if base is not None else None,
        "changes": {
            "new_environment": new_environment,
            "desired_version": desired,
            "base_version": base.to_dict()["airflow_version"] if base is not None else None,
            "settings": [c.to_dict() for c in settings_changes],
            "terraform_files": [f.to_dict() for f in file_changes],
        },
        "live": live.to_dict(),
        "deployed": deployed.to_dict(),
        "decision": {
            "kind": kind,
            "strategy": str(plan.strategy) if plan is not None and plan.strategy else None,
            "requested_strategy": str(config.strategy),
            "path": plan.to_dict() if plan is not None else None,
            "downtime": downtime,
            "history": history,
            "next_phase": str(phase),
            "next_phase_version": phase_version,
        },
        "terraform": terraform,
        "checks": checks,
        "cost": cost,
        "sizing": sizing,
    }
    return Report(data, status)
