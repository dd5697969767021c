"""The `mwaa-iac` command line: one module per command group, mounted here in help order.

- ``root``: the app, its global options and the one error-to-exit-code mapper (:func:`main`);
- ``console``: the only consoles; ``options``: every shared option; ``progress``: workflow events;
- commands: ``status``, ``report`` (report, cost, check), ``doctor``, ``terraform`` (render, plan, apply, tf),
  ``upgrade``, ``cutover`` (cutover, rollback, cleanup), ``dr`` (backup, restore), ``versions``,
  ``local`` (the local stack and `local demo`).

Only this package prints or chooses exit codes. Commands are thin: parse arguments, call one library
function, render its result; heavy modules (config models, boto3, the local stack, jinja2) are
imported inside the command functions so that `mwaa-iac --help` starts fast.
"""

from __future__ import annotations

from mwaa_iac.cli.root import app, main, run


def _mount() -> None:
    from mwaa_iac.cli import cutover, doctor, dr, local, report, status, terraform, upgrade, versions

    for name, command in (
        ("report", report.report),
        ("cost", report.cost),
        ("status", status.status),
        ("doctor", doctor.doctor),
        ("render", terraform.render),
        ("plan", terraform.plan),
        ("apply", terraform.apply),
        ("upgrade", upgrade.upgrade),
        ("cutover", cutover.cutover),
        ("rollback", cutover.rollback),
        ("cleanup", cutover.cleanup),
        ("backup", dr.backup),
        ("restore", dr.restore),
    ):
        app.command(name)(command)
    app.add_typer(versions.versions_app, name="versions")
    app.add_typer(terraform.tf_app, name="tf")
    app.add_typer(
        local.local_app, name="local", help="The local stack: moto + an MWAA emulator backed by real Airflow."
    )
    app.add_typer(report.check_app, name="check")


_mount()

__all__ = ["app", "main", "run"]
