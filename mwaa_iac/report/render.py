"""Render the report document (``Report.to_dict()``): JSON, Markdown for a pull-request comment, and
text for a terminal (rich renderables the CLI prints; nothing here prints). All three read the same
dict, so they cannot disagree. Deterministic: the same document gives the same bytes. The cost table
(here, in the Markdown report and in `mwaa-iac cost`) is built from one place: :func:`cost_rows`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from mwaa_iac.core.sizing import format_span
from mwaa_iac.core.timeline import planned_gantt

COMMENT_MARKER = "<!-- mwaa-iac-report env={env} -->"
"""First line of the Markdown report: lets a CI job find and update its own comment."""

_ICONS = {"change": "🔄", "no-change": "✅", "refused": "⛔", "failed-checks": "⚠️"}
_TITLES = {
    "change": "Change planned",
    "no-change": "No change",
    "refused": "Refused",
    "failed-checks": "Preflight failed",
}
DASH = "\u2013"
_CHECK_ICONS = {"passed": "✅", "failed": "❌", "skipped": "⚪", "unavailable": "❔", "error": "❗"}


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """A value inside a table cell: code-formatted, pipes and newlines escaped."""
    if value is None:
        return DASH
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = text.replace("|", "\\|").replace("\n", " ").replace("`", "'")
    return f"`{text}`"


def _text(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _details(summary: str, body: list[str]) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def _facts(data: dict[str, Any]) -> list[str]:
    decision = data["decision"]
    changes = data["changes"]
    deployed = data["deployed"]
    base = data["base"]
    rows: list[tuple[str, str]] = []
    desired = f"`{changes['desired_version']}`"
    if base is not None:
        if changes["new_environment"]:
            desired += f" (new: no configuration at `{base['ref']}`)"
        else:
            desired += f" (`{base['ref']}`: `{changes['base_version']}`)"
    rows.append(("Desired Airflow", desired))
    if deployed["version"]:
        rows.append(
            ("Deployed", f"`{deployed['version']}` on {deployed['active_color']} ({deployed['source']})")
        )
    else:
        rows.append(("Deployed", "nothing yet"))
    path = decision["path"]
    if decision["kind"] == "upgrade" and path is not None:
        hops = len(path["hops"])
        rows.append(("Strategy", f"**{decision['strategy']}** ({hops} step{'s' if hops != 1 else ''})"))
    elif decision["kind"] == "refused" and path is not None:
        rows.append(("Strategy", f"refused ({decision['requested_strategy']} requested)"))
    rows.append(("Downtime", _text(decision["downtime"]["summary"])))
    carried = decision["history"]["carried"]
    if carried is not None:
        factory = decision["history"]["mwaa_dr_factory"]
        how = (
            f" with mwaa-dr {decision['history']['mwaa_dr_version']} `{factory}`"
            if carried and factory
            else ""
        )
        if how and decision["strategy"] == "cutover":
            how += (
                ", delivered in the DAG folder (`mwaa_iac_dr/vendor/`): the source's requirements are "
                "unchanged and it is not restarted (no UpdateEnvironment on the source)"
            )
        elif how:
            how = (
                " (the database is migrated in place); safety backup" + how + " delivered in the DAG "
                "folder (`mwaa_iac_dr/vendor/`): no requirements change for it"
            )
        rows.append(("Run history", ("carried" + how) if carried else "**not carried**"))
    rows.append(("Live state", _text(data["live"]["message"])))
    terraform = data["terraform"]
    if terraform["ran"]:
        guard = "allowed" if terraform["guard"]["allowed"] else "**refused**"
        count = len(terraform["changes"])
        rows.append(("Terraform", f"phase `{terraform['phase']}`: {count} change(s); plan guard {guard}"))
    else:
        rows.append(("Terraform", f"phase `{terraform['phase']}`: {_text(terraform['reason'] or '')}"))
    checks = ", ".join(
        f"{_CHECK_ICONS.get(c['status'], '')} {c['name']}: {c['status']}" for c in data["checks"]
    )
    rows.append(("Preflight", checks))
    rows.append(("Extra cost", _text(data["cost"]["summary"])))
    if data.get("sizing") is not None:
        rows.append(("Sizing", _text(data["sizing"]["summary"])))
    lines = ["| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return lines


def render_markdown(data: dict[str, Any]) -> str:
    """The report as a pull-request comment: a verdict line, a short table, collapsible details."""
    verdict = data["verdict"]
    status = verdict["status"]
    out = [
        COMMENT_MARKER.format(env=data["env"]),
        f"### mwaa-iac report: `{data['env']}` ({data['name']}, {data['region']})",
        "",
        f"**{_ICONS.get(status, '')} {_TITLES.get(status, status)}:** {_text(verdict['summary'])}",
        "",
        *_facts(data),
        "",
    ]
    decision = data["decision"]
    path = decision["path"]

    # What changed.
    changes = data["changes"]
    if data["base"] is not None:
        body: list[str] = []
        settings = changes["settings"]
        if changes["new_environment"]:
            body.append(f"`mwaa.yaml` is new: the environment does not exist at `{data['base']['ref']}`.")
        elif settings:
            body += ["| setting | base | this change |", "|---|---|---|"]
            body += [f"| `{c['key']}` | {_cell(c['before'])} | {_cell(c['after'])} |" for c in settings]
        else:
            body.append("No settings changed in `mwaa.yaml`.")
        if data["base"]["error"]:
            body += ["", f"Note: {_text(data['base']['error'])}."]
        for tf in changes["terraform_files"]:
            body += [
                "",
                f"`{tf['file']}` ({tf['status']})" + (f": {_text(tf['error'])}" if tf["error"] else ""),
            ]
            if tf["changes"]:
                body += ["", "| key | base | this change |", "|---|---|---|"]
                body += [
                    f"| `{c['key']}` | {_cell(c['before'])} | {_cell(c['after'])} |" for c in tf["changes"]
                ]
        count = len(settings) + sum(len(tf["changes"]) or 1 for tf in changes["terraform_files"])
        out += _details(f"What changed ({count}) against <code>{data['base']['ref']}</code>", body)

    # The decision.
    if path is not None:
        body = []
        if path["allowed"]:
            for number, hop in enumerate(path["hops"], 1):
                body.append(
                    f"{number}. **{hop['kind']}** `{hop['from_version']}` → `{hop['to_version']}`: "
                    + _text(hop["reason"])
                )
            if not path["hops"]:
                body.append("No hops: the deployed version is the desired one.")
        else:
            body += [f"- ⛔ {_text(r)}" for r in path["refusals"]]
            body += [f"- 💡 {_text(h)}" for h in path["hints"]]
        if path["notes"]:
            body.append("")
            body += [f"- {_text(n)}" for n in path["notes"]]
        body += ["", f"Downtime: {_text(decision['downtime']['summary'])}."]
        if decision["kind"] == "upgrade":
            version = f" at `{decision['next_phase_version']}`" if decision["next_phase_version"] else ""
            body.append(f"First Terraform phase: `{decision['next_phase']}`{version}.")
        title = f"Upgrade path {path['from']} → {path['to']}" + (" (refused)" if not path["allowed"] else "")
        out += _details(title, body)
    for note in data["deployed"]["notes"]:
        out += [f"> {_text(note)}", ""]

    # Live state.
    live = data["live"]
    if live["environments"]:
        body = ["| environment | status | Airflow | class | last update |", "|---|---|---|---|---|"]
        for env in live["environments"]:
            if env["exists"]:
                last = env["last_update_status"] or DASH
                if env["last_update_error"]:
                    last += f" ({_text(env['last_update_error'])})"
                body.append(
                    f"| `{env['name']}` | {env['status']} | `{env['airflow_version']}` | "
                    f"{env['environment_class']} | {last} |"
                )
            else:
                body.append(f"| `{env['name']}` | not found | {DASH} | {DASH} | {DASH} |")
        out += _details("Live state", body)

    # Terraform.
    terraform = data["terraform"]
    if terraform["ran"]:
        body = []
        if terraform["changes"]:
            body += ["| resource | action | Airflow |", "|---|---|---|"]
            for change in terraform["changes"]:
                versions = DASH
                if change["airflow_version_before"] or change["airflow_version_after"]:
                    before = change["airflow_version_before"] or DASH
                    after = change["airflow_version_after"] or DASH
                    versions = f"`{before}` → `{after}`"
                body.append(f"| `{change['address']}` | {change['action']} | {versions} |")
        else:
            body.append("No changes.")
        guard = terraform["guard"]
        body += ["", ("✅ " if guard["allowed"] else "⛔ ") + _text(guard["message"])]
        body += [
            f"- {_text(v['address'])}: {_text(v['reason'])}. Instead: {_text(v['instead'])}."
            for v in guard["violations"]
        ]
        body += [f"- {_text(n)}" for n in guard["notes"]]
        out += _details(f"Terraform plan: phase <code>{terraform['phase']}</code>", body)

    # Preflight checks.
    body = []
    for check in data["checks"]:
        body.append(
            f"**{check['name']}** {_CHECK_ICONS.get(check['status'], '')} {check['status']}: "
            + _text(check["summary"])
        )
        details = check["details"] or {}
        for conflict in details.get("conflicts", []):
            where = f" ({conflict['where']})" if conflict["where"] else ""
            body.append(f"- `{conflict['package']}`{where}: {_text(conflict['reason'])}")
        for finding in details.get("findings", []):
            fix = f" Fix: {_text(finding['fix'])}" if finding["fix"] else ""
            kind = "breaking" if finding["breaking"] else "warning"
            body.append(
                f"- `{finding['file']}:{finding['line']}` {finding['rule']} ({kind}): "
                f"{_text(finding['message']).rstrip('.')}.{fix}"
            )
        for item in details.get("imports") or []:
            if not item["ok"]:
                body.append(f"- `{item['file']}` does not import: {_text(item['error'] or '')}")
        body.append("")
    out += _details("Preflight checks", body[:-1])

    # Cost.
    cost = data["cost"]
    estimate = cost["estimate"]
    if estimate is not None:
        body = ["| item | quantity | unit price | cost |", "|---|---|---|---|"]
        for row in cost_rows(estimate):
            price = (DASH if row.unit_price is None else row.unit_price) + (" ⚠️" if row.uncertain else "")
            body.append(f"| {_text(row.description)} | {row.quantity} | {price} | {row.cost} |")
        body.append(f"| **total** | | | **{cost_total(estimate)}** |")
        body.append("")
        body += [f"- {_text(a)}" for a in estimate["assumptions"]]
        if estimate["uncertain_figures"]:
            body.append("- ⚠️ uncertain figures: " + "; ".join(estimate["uncertain_figures"]))
        body += [f"- source `{key}`: {_text(text)}" for key, text in estimate["sources"].items()]
        out += _details(
            f"Extra cost of the parallel run: {_usd(estimate['low_usd'], estimate['high_usd'])}", body
        )
    if data.get("sizing") is not None:
        out += _sizing_markdown(data["sizing"])
    out.append(f"<sub>mwaa-iac report · schema v{data['schema_version']} · as of {data['today']}</sub>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# The cost table (one builder for the Markdown report, the text report and `mwaa-iac cost`)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostRow:
    """One line of a cost estimate, formatted; ``unit_price`` is None when the line has none."""

    description: str
    quantity: str
    unit_price: str | None
    cost: str
    uncertain: bool


def cost_rows(estimate: dict[str, Any]) -> list[CostRow]:
    """The lines of a cost estimate (``CostEstimate.to_dict()``), formatted for any table."""
    return [
        CostRow(
            description=line["description"],
            quantity=_quantity(line["quantity_low"], line["quantity_high"]),
            unit_price=None
            if line["unit_price_usd"] is None
            else f"${line['unit_price_usd']:g}/{line['unit']}",
            cost=_usd(line["low_usd"], line["high_usd"]),
            uncertain=bool(line["uncertain"] and line["quantity_high"]),
        )
        for line in estimate["lines"]
    ]


def cost_total(estimate: dict[str, Any]) -> str:
    return _usd(estimate["low_usd"], estimate["high_usd"])


def cost_table(estimate: dict[str, Any], *, title: str | None = None, boxed: bool = True) -> Table:
    """The cost estimate as a rich table (with its total), for a terminal; ``boxed=False``: without
    lines (inside the text report)."""
    table = Table(title=title, title_justify="left", box=box.HEAVY_HEAD if boxed else None, pad_edge=boxed)
    for column in ("item", "quantity", "unit price", "cost"):
        table.add_column(column)
    for row in cost_rows(estimate):
        price = "-" if row.unit_price is None else row.unit_price
        if row.uncertain:
            price += " [warning](uncertain)[/]"
        table.add_row(escape(row.description), row.quantity, price, row.cost)
    table.add_row("[key]total[/]", "", "", f"[key]{cost_total(estimate)}[/]")
    return table


def _quantity(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}{DASH}{high:g}"


def _usd(low: float, high: float) -> str:
    return f"${low:,.2f}" if low == high else f"${low:,.2f}{DASH}${high:,.2f}"


# --------------------------------------------------------------------------------------------------
# Text (terminal)
# --------------------------------------------------------------------------------------------------

_STYLES = {"change": "warning", "no-change": "success", "refused": "failure", "failed-checks": "failure"}
_CHECK_STYLES = {"passed": "success", "failed": "failure", "error": "failure", "unavailable": "warning"}


class _Lines:
    """Collects what the text report shows, in order (``add`` takes what a console would print)."""

    def __init__(self) -> None:
        self.items: list[RenderableType] = []

    def add(self, item: RenderableType) -> None:
        self.items.append(item)


def render_text(data: dict[str, Any]) -> list[RenderableType]:
    """The report for a terminal: rich markup lines and tables, for the CLI to print in order."""
    lines = _Lines()
    verdict = data["verdict"]
    style = _STYLES.get(verdict["status"], "key")
    lines.add(f"[key]{escape(data['env'])}[/] ({escape(data['name'])}, {escape(data['region'])})")
    lines.add(
        f"[{style}]{_TITLES.get(verdict['status'], verdict['status'])}:[/] {escape(verdict['summary'])}"
    )
    changes = data["changes"]
    if data["base"] is not None:
        lines.add(f"\n[key]Changes against {escape(data['base']['ref'])}[/]")
        if changes["new_environment"]:
            lines.add("  new environment: no mwaa.yaml at the base")
        for change in changes["settings"]:
            lines.add(f"  {escape(change['key'])}: {_arrow(change)}")
        for tf in changes["terraform_files"]:
            lines.add(
                f"  {escape(tf['file'])} ({tf['status']})"
                + (f": {escape(tf['error'])}" if tf["error"] else "")
            )
            for change in tf["changes"]:
                lines.add(f"    {escape(change['key'])}: {_arrow(change)}")
        if not changes["settings"] and not changes["terraform_files"] and not changes["new_environment"]:
            lines.add("  [muted]nothing changed[/]")
    lines.add("\n[key]Live[/]")
    lines.add(f"  {escape(data['live']['message'])}")
    deployed = data["deployed"]
    lines.add(
        f"  deployed: {escape(deployed['version'] or 'nothing')} on {deployed['active_color']} "
        f"({deployed['source']})"
    )
    for note in deployed["notes"]:
        lines.add(f"  [warning]{escape(note)}[/]")
    decision = data["decision"]
    path = decision["path"]
    lines.add("\n[key]Decision[/]")
    if path is not None and path["allowed"]:
        if path["hops"]:
            lines.add(f"  strategy: {decision['strategy']} (requested {decision['requested_strategy']})")
        for number, hop in enumerate(path["hops"], 1):
            lines.add(
                f"  {number}. {hop['kind']} {hop['from_version']} → {hop['to_version']}: "
                + escape(hop["reason"])
            )
        for note in path["notes"]:
            lines.add(f"  [muted]{escape(note)}[/]")
    elif path is not None:
        for reason in path["refusals"]:
            lines.add(f"  [failure]refused:[/] {escape(reason)}")
        for hint in path["hints"]:
            lines.add(f"  [warning]hint:[/] {escape(hint)}")
    lines.add(f"  downtime: {escape(decision['downtime']['summary'])}")
    carried = decision["history"]["carried"]
    if carried is not None:
        lines.add(f"  history carried: {'yes' if carried else 'NO'}")
    terraform = data["terraform"]
    lines.add(f"\n[key]Terraform[/] (phase {escape(terraform['phase'])})")
    if not terraform["ran"]:
        lines.add(f"  [muted]{escape(terraform['reason'] or '')}[/]")
    else:
        for change in terraform["changes"]:
            lines.add(f"  {change['action']:>8}  {escape(change['address'])}")
        if not terraform["changes"]:
            lines.add("  [success]no changes[/]")
        guard = terraform["guard"]
        lines.add(("  [success]" if guard["allowed"] else "  [failure]") + escape(guard["message"]) + "[/]")
    lines.add("\n[key]Preflight[/]")
    for check in data["checks"]:
        check_style = _CHECK_STYLES.get(check["status"], "muted")
        lines.add(f"  [{check_style}]{check['name']}: {check['status']}[/] {escape(check['summary'])}")
        details = check["details"] or {}
        for conflict in details.get("conflicts", []):
            lines.add(f"    - {escape(conflict['package'])}: {escape(conflict['reason'])}")
        for finding in details.get("findings", []):
            lines.add(
                f"    - {escape(finding['file'])}:{finding['line']} {finding['rule']} "
                + escape(finding["message"])
            )
    lines.add("\n[key]Cost[/]")
    cost = data["cost"]
    lines.add(f"  {escape(cost['summary'])}")
    if cost["estimate"] is not None:
        lines.add(cost_table(cost["estimate"], boxed=False))
    if data.get("sizing") is not None:
        lines.add("\n[key]Sizing[/]")
        for item in sizing_text(data["sizing"]):
            lines.add(item)
    return lines.items


# --------------------------------------------------------------------------------------------------
# The sizing estimate (one builder for the text report, the Markdown report and `cutover --dry-run`)
# --------------------------------------------------------------------------------------------------


def sizing_rows(section: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(table, rows, how) of a sizing section, formatted: ``~`` marks an estimated count."""
    rows = []
    for table in section.get("tables") or []:
        if table["rows"] is None:
            count = "not counted"
        elif table["estimated"]:
            count = f"~{table['rows']:,} (estimated)"
        else:
            count = f"{table['rows']:,}"
        rows.append((table["table"], count, table["how"]))
    return rows


def _span(value: dict[str, Any] | None) -> str:
    if value is None:
        return "-"
    low, high = value["low_s"], value["high_s"]
    return format_span(low, high)


def sizing_steps(section: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(step, duration, note) of the freeze window, then the total and pass 1's copy."""
    steps = [
        (s["step"], "unknown" if s["low_s"] is None else _span(s), s["note"]) for s in section["freeze_steps"]
    ]
    if section["passes"] == 1:
        total = ("copy in the freeze", "every step above but the drain; the clone and the hops come on top")
    else:
        total = ("freeze window", "every step above but the drain")
    steps.append((total[0], _span(section["freeze"]) + " + drain", total[1]))
    if section.get("pass1_copy") is not None:
        steps.insert(
            0, ("pass-1 copy", _span(section["pass1_copy"]), "before the freeze: the source keeps running")
        )
    return steps


def sizing_text(section: dict[str, Any], indent: int = 2) -> list[RenderableType]:
    """The sizing section for a terminal: a summary line, the rows per table, the freeze steps."""
    pad = " " * indent
    if section["status"] != "estimated":
        return [f"{pad}[muted]{escape(section['summary'])}[/]"]
    items: list[RenderableType] = [
        f"{pad}{escape(section['summary'])} (source {escape(section['environment'])})"
    ]
    tables = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0))
    for column in ("table", "rows"):
        tables.add_column(column, justify="right" if column == "rows" else "left")
    for name, count, how in sizing_rows(section):
        tables.add_row(
            escape(name), count if not how.startswith(("estimated", "not counted")) else f"[muted]{count}[/]"
        )
    steps = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0))
    for column in ("step", "estimate", ""):
        steps.add_column(column)
    for name, duration, note in sizing_steps(section):
        steps.add_row(escape(name), duration, f"[muted]{escape(note)}[/]")
    items += [Padding(t, (0, 0, 0, indent + 2), expand=False) for t in (tables, steps)]
    items += [f"{pad}  [warning]{escape(e)}[/]" for e in section["errors"]]
    items += [f"{pad}  [muted]- {escape(a)}[/]" for a in section["assumptions"]]
    return items


def _sizing_markdown(section: dict[str, Any]) -> list[str]:
    if section["status"] != "estimated":
        return []
    body = ["| table | rows | how |", "|---|---:|---|"]
    body += [f"| `{name}` | {count} | {_text(how)} |" for name, count, how in sizing_rows(section)]
    body += ["", "| step | estimate | |", "|---|---|---|"]
    body += [f"| {name} | {duration} | {_text(note)} |" for name, duration, note in sizing_steps(section)]
    if section["errors"]:
        body.append("")
        body += [f"- ⚠️ {_text(e)}" for e in section["errors"]]
    body.append("")
    body += [f"- {_text(a)}" for a in section["assumptions"]]
    gantt = planned_gantt(section, "planned cutover (high end of each estimate)")
    if gantt:
        body += ["", "```mermaid", gantt, "```"]
    return _details(f"Sizing of <code>{section['environment']}</code>: {_text(section['summary'])}", body)


def _arrow(change: dict[str, Any]) -> str:
    return f"{escape(_plain(change['before']))} → {escape(_plain(change['after']))}"


def _plain(value: Any) -> str:
    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
