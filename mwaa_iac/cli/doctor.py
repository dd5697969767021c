"""`mwaa-iac doctor --env E`: read-only checks of the account, each printed ✓/✗/! with its fix."""

from __future__ import annotations

import typer
from rich.markup import escape

from mwaa_iac.cli import console as ui
from mwaa_iac.cli.options import EnvOpt, JsonOpt, RootOpt
from mwaa_iac.core.findings import Finding

_STYLE = {"✓": "success", "✗": "failure", "!": "warning"}


def _print(finding: Finding) -> None:
    style = _STYLE[finding.mark]
    ui.out.print(f"[{style}]{finding.mark}[/] {escape(finding.name)}: {escape(finding.detail)}")
    if finding.fix and not finding.ok:
        ui.out.print(f"    fix: {escape(finding.fix)}")


def doctor(env: EnvOpt, json_out: JsonOpt = False, root: RootOpt = None) -> None:
    """Check with read-only calls what a cutover or upgrade needs: the environments, execution roles
    (trust and permissions for both colours), endpoint mode, object versions, the backup bucket, the
    lock store and routing. Exit 1 when any check fails (✗); warnings (!) do not fail."""
    from mwaa_iac.adapters.iam import Iam
    from mwaa_iac.adapters.mwaa import MwaaClient
    from mwaa_iac.adapters.routing import Routing
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.workflows.doctor import Doctor, doctor_exit_code
    from mwaa_iac.workspace import open_workspace

    ws = open_workspace(env, root)
    config = ws.load()
    check = Doctor(
        ws,
        config,
        MwaaClient(config.region),
        S3(config.region),
        Iam(config.region),
        Routing(config.region),
        emit=(lambda finding: None) if json_out else _print,
    )
    findings = check.run()
    code = doctor_exit_code(findings)
    if json_out:
        ui.emit_json(
            {
                "env": ws.env,
                "ok": code == 0,
                "failed": sum(1 for f in findings if f.failed),
                "warnings": sum(1 for f in findings if not f.ok and not f.blocking),
                "findings": [f.to_dict() for f in findings],
            }
        )
    else:
        failed = sum(1 for f in findings if f.failed)
        summary = f"{failed} check(s) failed" if failed else "every check passed"
        ui.out.print(f"[{'failure' if failed else 'success'}]{summary}[/] ({len(findings)} checks)")
    raise typer.Exit(code)
