"""How the long-running commands show workflow events: JSON lines with --json, else readable lines on
stderr plus a live status. ``Progress.__call__`` takes one event dict and renders it."""

from __future__ import annotations

from rich.markup import escape

from mwaa_iac.cli import console as ui


class Progress:
    """Renders workflow events: JSON lines with --json, else readable lines plus a live status."""

    def __init__(self, json_lines: bool) -> None:
        self.json_lines = json_lines
        self.status = None

    def __call__(self, event: dict) -> None:
        if self.json_lines:
            ui.emit_json_line(event)
            return
        kind = event.get("event", "")
        if kind == "preflight.check":
            mark = "[success]✓[/]" if event["ok"] else "[failure]✗[/]"
            self._line(f"{mark} {event['check']}: {event['detail']}")
        elif kind == "watch.status":
            self._line(f"[progress]{event['status']}[/] after {duration(event['elapsed_s'])}")
            self._live(event)
        elif kind in ("watch.poll", "watch.poll-error"):
            self._live(event)
        elif kind == "hop.started":
            self._line(f"[key]hop {event['index']}[/]: {event['from']} → {event['to']} ({event['reason']})")
        elif kind == "hop.done":
            self._stop()
            self._line(f"[success]hop to {event['to']} done in {duration(event['elapsed_s'])}[/]")
        elif kind == "hop.resumed":
            self._line(f"resuming: the update to {event['to']} was already issued; watching it")
        elif kind == "hop.update_environment":
            self._line(f"UpdateEnvironment AirflowVersion={event['to']} ({event['why']})")
        elif kind == "terraform.output":
            ui.err.out("  " + event["line"].rstrip(), style="muted", highlight=False)
        elif kind in ("backup.started", "backup.done", "backup.skipped"):
            detail = event.get("location") or event.get("reason") or event.get("environment")
            self._line(f"{kind.replace('.', ' ')}: {detail}")
        elif kind == "health.poll":
            self._live({"status": f"heartbeat {event['minutes_with_heartbeat']}/{event['required']} min"})
        elif kind == "health.ok":
            self._stop()
            self._line(f"[success]scheduler heartbeat present for {event['minutes']} consecutive minutes[/]")
        elif kind in ("upgrade.resume", "cutover.resume"):
            self._line(f"resuming run {event['run_id']}")
        elif kind == "step.started":
            self._live({"status": event["step"]})
        elif kind == "step.done":
            self._stop()
            self._line(f"[success]✓[/] {event['step']} ({duration(event['elapsed_s'])})")
        elif kind == "dr.run":
            self._live(
                {
                    "status": f"{event['dag_id']} on {event['environment']}: {event['state']}",
                    "elapsed_s": event["elapsed_s"],
                    "time_in_status_s": event["elapsed_s"],
                }
            )
        elif kind == "dr.waiting_for_dag":
            self._live({"status": f"waiting for {event['environment']} to parse {event['dag_id']}"})
        elif kind == "freeze.recorded":
            self._line(f"recorded {len(event['dags'])} unpaused DAG(s) on the source")
        elif kind == "freeze.paused":
            self._line(
                f"[warning]freeze started[/]: {event['count']} DAG(s) paused on {event['environment']}"
            )
        elif kind == "freeze.draining":
            shown = ", ".join(event["task_instances"])
            more = ", ..." if event["count"] > len(event["task_instances"]) else ""
            self._live(
                {
                    "status": escape(
                        f"draining: {event['count']} task instance(s) executing on {event['environment']} "
                        f"({shown}{more}), waited {duration(event['waited_s'])}"
                    )
                }
            )
        elif kind == "freeze.drained":
            self._line(f"no task instance executing on {event['environment']} (waited {event['waited_s']} s)")
        elif kind == "freeze.drain_forced":
            names = event["may_run_twice"]
            self._line(
                f"[warning]--force-drain: continuing with {len(names)} task instance(s) still executing on "
                f"{event['environment']}; they may run twice: {escape(', '.join(names))}[/]"
            )
        elif kind == "freeze.aborted":
            undone = (
                f"{event['repaused_on_target']} DAG(s) paused again on {event['target']}"
                + (", routing pointed back" if event["routed_back"] else "")
                + "; "
                if event["repaused_on_target"]
                else ""
            )
            self._line(
                f"[warning]freeze aborted: {undone}{event['unpaused']} DAG(s) unpaused again on "
                f"{event['environment']}; --resume takes a fresh backup[/]"
            )
        elif kind == "freeze.abort_failed":
            self._line(
                f"[failure]could not give scheduling back: {event['failed_on']}: {event['error']} "
                f"(recorded DAGs: {', '.join(event['dags'])})[/]"
            )
        elif kind == "live":
            self._line(f"[success]{event['environment']} is live[/]: {event['unpaused']} DAG(s) unpaused")
        elif kind == "target.create_environment":
            self._line(f"CreateEnvironment {event['name']} at Airflow {event['version']}")
        elif kind == "dr.vendor":
            versions = ", ".join(f"{k} {v}" for k, v in event["versions"].items())
            self._line(
                f"mwaa-dr delivered in the DAG folder ({versions}): {event['uploaded']} object(s) uploaded, "
                f"{event['unchanged']} unchanged"
            )
        elif kind == "hop.requirements":
            self._line(
                f"requirements for {event['to']}: {event['path']} (its --constraint line names {event['to']})"
            )
        elif kind == "target.role_created":
            self._line(f"created execution role {event['role']} for {event['environment']}")
        elif kind == "terraform.imported":
            self._line(f"[warning]{event['name']} existed but was not in Terraform's state: imported[/]")
        elif kind == "target.pending_endpoints":
            self._line(
                f"[warning]{event['environment']} is PENDING: endpoint mode CUSTOMER, MWAA waits until you "
                f"create its VPC endpoints ({', '.join(event['services']) or 'see the console'}): "
                f"{event['fix']}[/]"
            )
        elif kind == "probe.started":
            self._live({"status": f"probe: {event['dag_id']} on {event['environment']}"})
        elif kind == "probe.done":
            self._stop()
            where = "the DAG folder" if event["vendored"] else "its own installation"
            self._line(
                f"[success]✓[/] probe: {event['environment']} imports mwaa-dr (from {where}) and can write "
                f"to s3://{event['uri'][5:].split('/')[0]}/"
            )
        elif kind == "probe.warning":
            self._line(f"[warning]probe: {event['detail']}[/]")

    def _line(self, text: str) -> None:
        ui.err.print(text)

    def _live(self, event: dict) -> None:
        if not ui.err.is_terminal:  # no spinner in logs: status changes are printed as lines
            return
        text = f"{event.get('status')}"
        if "time_in_status_s" in event:
            text += f" for {duration(event['time_in_status_s'])}, total {duration(event['elapsed_s'])}"
        if event.get("error"):
            text += f" (retrying: {event['error']})"
        if self.status is None:
            self.status = ui.err.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def close(self) -> None:
        self._stop()


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
