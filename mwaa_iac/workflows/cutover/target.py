"""The cutover's target colour: its requirements (the source's), its creation through the engine,
its execution role, its in-place hops and its health gate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from mwaa_iac.core.cutover_steps import HOP_PREFIX, Step, is_hop_step
from mwaa_iac.core.findings import Finding
from mwaa_iac.core.planner import Hop
from mwaa_iac.core.status import Outcome
from mwaa_iac.errors import MwaaIacError
from mwaa_iac.events import EventKind, event
from mwaa_iac.workflows.cutover.context import Context
from mwaa_iac.workflows.dr_runs import CutoverError
from mwaa_iac.workflows.upgrade import Upgrade
from mwaa_iac.workflows.watch import Watcher


class Target:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def requirements(self) -> dict[str, Any] | None:
        """The target's requirements are the source's, unchanged (mwaa-dr comes in the DAG folder):
        recorded here (path and object version, as the source runs them), or None without any."""
        ctx = self.ctx
        source = ctx.mwaa.get_environment(ctx.source)
        path = source.get("RequirementsS3Path") or ctx.config.source.requirements_s3_path
        if not path:
            return None
        return {"path": path, "object_version": source.get("RequirementsS3ObjectVersion")}

    def create(self, version: str) -> dict[str, Any]:
        """Create the target at ``version`` like the source (through the engine) and wait for it."""
        ctx = self.ctx
        source = ctx.mwaa.get_environment(ctx.source)
        recorded = ctx.result(Step.TARGET_REQUIREMENTS) if ctx.opened is not None else None
        ctx.engine.create(
            ctx.config,
            ctx.target_color,
            version,
            like=source,
            role=lambda: self.role(source),
            requirements=recorded or None,
        )
        result = Watcher(
            self._observe_creation(),
            interval=ctx.options.poll_interval,
            max_interval=max(ctx.options.max_poll_interval, ctx.options.poll_interval),
            budget=ctx.options.budget_seconds,
            on_event=lambda watched: ctx.emit(watched.to_dict()),
            sleep=ctx.sleep,
            clock=ctx.clock,
        ).run()
        if result.outcome is not Outcome.SUCCEEDED:
            raise CutoverError(
                f"creating {ctx.target} ended {result.observation.status}: "
                f"{result.observation.last_update_error or 'no detail'}",
                hint=f"{ctx.source} is untouched and keeps serving",
            )
        ctx.record(**{str(ctx.target_color): version})
        return {"version": version, **result.to_dict()}

    def _observe_creation(self) -> Callable[[], Any]:
        """GetEnvironment of the target while it is created. In endpoint mode CUSTOMER, MWAA waits in
        PENDING until the customer creates the environment's VPC endpoints: say once which ones
        (their service names are known only now) and how, instead of waiting silently."""
        from mwaa_iac.adapters.mwaa import observe
        from mwaa_iac.adapters.network import endpoint_fix, endpoint_services

        ctx = self.ctx
        told = False

        def read() -> Any:
            nonlocal told
            environment = ctx.mwaa.get_environment(ctx.target)
            if environment.get("Status") == "PENDING" and not told:
                services = endpoint_services(environment)
                told = True
                ctx.emit(
                    event(
                        EventKind.TARGET_PENDING_ENDPOINTS,
                        environment=ctx.target,
                        services=services,
                        fix=endpoint_fix(environment, services)
                        if services
                        else "see the environment in the MWAA console (endpoint mode CUSTOMER)",
                    )
                )
            return observe(environment)

        return read

    # -- the execution role ------------------------------------------------------------------------

    def iam(self) -> Any:
        if self.ctx.iam is None:
            from mwaa_iac.adapters.iam import Iam

            self.ctx.iam = Iam(self.ctx.config.region)
        return self.ctx.iam

    def role_scope(self, source: dict[str, Any]) -> Any:
        from mwaa_iac.adapters.bucket_check import default_kms_key
        from mwaa_iac.workflows.roles import scope_for

        ctx = self.ctx
        key = default_kms_key(ctx.s3.client, ctx.config.dr.backup_bucket)
        return scope_for(ctx.config, ctx.target, source, dr_kms_key=key)

    def role_preflight(self) -> Finding:
        """Which execution role the target gets, and whether it can serve the target (trust
        aws:SourceArn/aws:SourceAccount, logs, metrics, DAG folder, DR prefix and key)."""
        from mwaa_iac.workflows.roles import choose_target_role

        ctx = self.ctx
        name = f"execution role for {ctx.target}"
        if ctx.engine.makes_role(ctx.config):
            return Finding(name, True, f"modules/mwaa-environment creates {ctx.target}'s own role")
        try:
            source = ctx.mwaa.get_environment(ctx.source)
            choice = choose_target_role(self.iam(), ctx.config, source, self.role_scope(source))
        except MwaaIacError as exc:
            return Finding(name, False, exc.message, fix=exc.hint)
        return choice.finding(ctx.target)

    def role(self, source: dict[str, Any]) -> str:
        """The target's execution role ARN when the engine needs one named: reused, or created like
        the module's."""
        from mwaa_iac.workflows.roles import choose_target_role, create_target_role

        ctx = self.ctx
        scope = self.role_scope(source)
        choice = choose_target_role(self.iam(), ctx.config, source, scope)
        if not choice.ok:
            raise CutoverError(choice.text(), hint=f"{ctx.source} is untouched and keeps serving")
        if choice.arn is not None:
            return choice.arn
        tags = {"mwaa-iac:deployment": ctx.config.name, "mwaa-iac:color": str(ctx.target_color)}
        arn = create_target_role(self.iam(), choice, scope, tags)
        ctx.emit(event(EventKind.TARGET_ROLE_CREATED, role=arn, environment=ctx.target))
        return arn

    # -- in-place hops and health ------------------------------------------------------------------

    def _upgrade(self) -> Upgrade:
        """The in-place upgrade machinery, aimed at the target colour, writing into this journal."""
        ctx = self.ctx
        return Upgrade(
            ctx.ws,
            ctx.config,
            ctx.options,
            ctx.mwaa,
            ctx.cloudwatch,
            emit=ctx.emit,
            sleep=ctx.sleep,
            clock=ctx.clock,
            color=ctx.target_color,
            now=ctx.now,
            owns_journal=False,
        )

    def hop(self, index: int, hop: Hop, prefix: str = HOP_PREFIX) -> dict[str, Any]:
        """The ``index``-th in-place hop of the target (journal step ``<prefix>-<n>-<version>``:
        ``target-hop`` before the freeze, ``freeze-hop`` inside it; journaled by the upgrade
        machinery itself)."""
        upgrade = self._upgrade()
        done = upgrade.run_hop(self.ctx.journal, index, hop, prefix)
        self.ctx.config = upgrade.config
        return done

    def health(self) -> dict[str, Any]:
        self._upgrade().health_gate(self.ctx.journal, step=Step.HEALTH_GATE_TARGET)
        return {"minutes": self.ctx.options.health_minutes}

    # -- the go-live gate --------------------------------------------------------------------------

    def list_before_freeze(self, armed: dict[str, Any]) -> dict[str, Any]:
        """The target's DAG listing, taken just before the freeze (with pass 2's copiers armed):
        check-target inside the freeze reuses it when it shows every recorded DAG parsed (the listing
        is paged, one REST call per 100 DAGs; parsing only moves forward), so the freeze pays only
        for the import errors. Only with the copiers armed (go-live's unpause is then the copier's,
        needing no listing; over REST it lists again: pass 2's restore paused every DAG of the target
        after this listing). Not journaled: a resumed cutover lists again. Best effort: without it,
        check-target lists inside the freeze."""
        ctx = self.ctx
        if not armed.get("armed"):
            return armed
        try:
            ctx.listings[ctx.target] = (ctx.clock(), ctx.api(ctx.target).list_dags())
        except MwaaIacError:
            ctx.listings.pop(ctx.target, None)
        return armed

    def check_imports(self) -> dict[str, Any]:
        """Before go-live: every DAG recorded unpaused on the source is parsed by the target, and
        none of their files fails to import there (Airflow's importErrors). After an upgrade (into
        3.x inside the freeze, or a single pass's) the target's DAG processor has parsed every file
        again first: a DAG counts once its ``last_parsed_time`` is after the target's last upgrade.
        Waits up to the DAG timeout for the parse; refuses go-live on a failing or unparsed DAG
        unless --accept-import-errors. A listing taken before the freeze (:meth:`list_before_freeze`)
        that shows every DAG parsed spares listing them again."""
        ctx = self.ctx
        recorded = ctx.result(Step.RECORD_DAGS)
        dags: list[str] = recorded.get("dags", [])
        files: dict[str, str] = recorded.get("files", {})
        since = self._last_upgrade_at()
        api = ctx.api(ctx.target)
        calls = api.calls
        failing, unparsed, waited = wait_for_parse(
            ctx, api, ctx.target, dags, files, since, known=recent_listing(ctx, ctx.target)
        )
        result = {
            "dags": len(dags), "failing": failing, "unparsed": unparsed, "waited_s": waited,
            "calls": api.calls - calls,
        }  # fmt: skip
        if not failing and not unparsed:
            ctx.emit(event(EventKind.TARGET_CHECKED, environment=ctx.target, dags=len(dags), waited_s=waited))
            return result
        listed_text = "; ".join(
            [f"{d}: {why}" for d, why in sorted(failing.items())[:10]]
            + [f"{d}: not parsed within {waited:.0f} s" for d in unparsed[:10]]
        )
        if ctx.options.accept_import_errors:
            ctx.emit(
                event(
                    EventKind.TARGET_IMPORT_ERRORS_ACCEPTED,
                    environment=ctx.target,
                    failing=failing,
                    unparsed=unparsed,
                )
            )
            return {**result, "accepted": True}
        count = len(failing) + len(unparsed)
        version = ctx.mwaa.get_environment(ctx.target).get("AirflowVersion", ctx.to_version)
        raise CutoverError(
            f"{count} DAG(s) unpaused on {ctx.source} would not run on {ctx.target} "
            f"(Airflow {version}): {listed_text}",
            hint="fix the DAG files (the rehearsal and `mwaa-iac check dags --import --to "
            f"{ctx.to_version}` show the same errors) and rerun with --resume, or rerun with --resume "
            "--accept-import-errors to go live with them failing",
        )

    def _last_upgrade_at(self) -> float | None:
        """When the target's last in-place upgrade finished (journal time), or None: its DAG
        processor must have parsed each DAG since (a single pass and two passes into 3.x upgrade it
        inside the freeze)."""
        journal = self.ctx.journal
        done = [e for e in journal.entries if is_hop_step(e.get("step", "")) and e.get("event") == "done"]
        return done[-1]["at"] if done else None


LISTING_MAX_AGE_SECONDS = 300.0  # a DAG listing this recent stands for the environment's DAGs


def recent_listing(ctx: Context, environment: str) -> list[dict[str, Any]] | None:
    """The DAG listing of ``environment`` taken in the last LISTING_MAX_AGE_SECONDS (None without
    one), used up: check-target uses the one taken before the freeze (pass 2's restore pauses every
    DAG of the target after it), go-live the one check-target took inside the freeze."""
    taken = ctx.listings.pop(environment, None)
    if taken is None or ctx.clock() - taken[0] > LISTING_MAX_AGE_SECONDS:
        return None
    return taken[1]


def wait_for_parse(
    ctx: Context,
    api: Any,
    environment: str,
    dags: list[str],
    files: dict[str, str],
    since: float | None,
    known: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, str], list[str], float]:
    """Wait (up to the DAG timeout) until each of ``dags`` is parsed on ``api``'s environment (after
    ``since``, when given) or its file is in the import errors: ``(failing: {dag_id: error},
    unparsed, seconds waited)``. The import errors are read every time; ``known``: a recent listing,
    used instead of listing again when it shows every DAG parsed."""
    start = ctx.clock()
    while True:
        errors = import_failures(api.import_errors(), files)
        unparsed = _not_parsed(known, dags, errors, since) if known is not None else None
        if unparsed != []:
            listing = api.list_dags()
            ctx.listings[environment] = (ctx.clock(), listing)
            unparsed = _not_parsed(listing, dags, errors, since)
        known = None
        waited = round(ctx.clock() - start, 1)
        if not unparsed or waited > ctx.options.dag_timeout_seconds:
            return {d: errors[d] for d in dags if d in errors}, unparsed, waited
        ctx.emit(
            event(
                EventKind.TARGET_PARSING,
                environment=environment,
                waiting_for=unparsed[:5],
                count=len(unparsed),
                waited_s=waited,
            )
        )
        ctx.sleep(ctx.poll_seconds())


def _not_parsed(
    listing: list[dict[str, Any]], dags: list[str], errors: dict[str, str], since: float | None
) -> list[str]:
    """Which of ``dags`` ``listing`` does not show parsed (after ``since``) and no import error names."""
    listed = {d["dag_id"]: d for d in listing}
    return [d for d in dags if d not in errors and not parsed_since(listed.get(d), since)]


def import_failures(errors: list[dict[str, Any]], files: dict[str, str]) -> dict[str, str]:
    """The recorded DAGs whose file is in Airflow's importErrors: ``{dag_id: last line of the error}``.
    ``files``: each DAG's file as the source has it (its ``fileloc``); an error's ``filename`` is the
    target's absolute path, or (Airflow 3.2+) the path relative to the DAG folder."""
    failing: dict[str, str] = {}
    for dag_id, fileloc in files.items():
        error = next((e for e in errors if same_dag_file(fileloc, str(e.get("filename", "")))), None)
        if error is not None:
            lines = str(error.get("stack_trace", "")).strip().splitlines()
            failing[dag_id] = (lines[-1] if lines else "import error")[:300]
    return failing


def same_dag_file(fileloc: str, filename: str) -> bool:
    """Whether the source's ``fileloc`` and the target's import error ``filename`` name one file of
    the DAG folder (both absolute: compared below the folder, ``.../dags/``; a relative one: as the
    end of the other)."""
    if not filename:
        return False
    if filename.startswith("/"):
        return dag_relative(fileloc) == dag_relative(filename)
    return fileloc == filename or fileloc.endswith("/" + filename)


def dag_relative(path: str) -> str:
    """A DAG file's path below the DAG folder (``.../dags/a/b.py`` → ``a/b.py``)."""
    marker = "/dags/"
    return path.split(marker, 1)[1] if marker in path else path.lstrip("/")


def parsed_since(dag: dict[str, Any] | None, since: float | None) -> bool:
    """Whether the target lists ``dag`` as active and (after an upgrade at ``since``) parsed it since."""
    if dag is None or dag.get("is_active") is False or dag.get("is_stale") is True:  # 2.x, 3.x
        return False
    if since is None:
        return True
    parsed = dag.get("last_parsed_time")
    if not parsed:
        return False
    return datetime.fromisoformat(str(parsed).replace("Z", "+00:00")).timestamp() >= since
