"""The cutover as a picture: the timeline of its journal as a self-contained SVG (each step a bar at
the time it ran, the freeze shaded, each bar's duration written on it), and a planned timeline as a
Mermaid Gantt chart for the dry run and the pull-request report (GitHub renders Mermaid). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from mwaa_iac.core.cutover_steps import Stage, stage_of


@dataclass(frozen=True)
class Bar:
    step: str
    start: float  # epoch seconds
    end: float
    stage: Stage

    @property
    def seconds(self) -> float:
        return self.end - self.start


def bars(entries: Sequence[dict[str, Any]]) -> list[Bar]:
    """Each step's last completed attempt (its last ``started`` before its last ``done``), in the
    order the journal first recorded the steps. Unknown step names are left out."""
    order: list[str] = []
    started: dict[str, float] = {}
    done: dict[str, tuple[float, float]] = {}
    for entry in entries:
        step, kind, at = entry.get("step"), entry.get("event"), entry.get("at")
        if not step or at is None:
            continue
        if step not in order:
            order.append(step)
        if kind == "started":
            started[step] = float(at)
        elif kind == "done":
            done[step] = (started.get(step, float(at)), float(at))
    result = []
    for step in order:
        if step not in done:
            continue
        try:
            stage = stage_of(step)
        except ValueError:
            continue
        start, end = done[step]
        result.append(Bar(step, start, end, stage))
    return result


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


COLOURS = {Stage.BEFORE_FREEZE: "#4f7cac", Stage.FREEZE: "#c0392b", Stage.AFTER: "#7f8c8d"}


def svg(items: Sequence[Bar], freeze: tuple[float, float] | None, title: str) -> str:
    """A self-contained SVG: one row per step on a time axis (seconds from the first step), the
    freeze window shaded and labelled with its length."""
    if not items:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40">'
            '<text x="10" y="25" font-family="sans-serif" font-size="13">'
            f"{escape(title)}: no step done</text></svg>"
        )
    origin = min(b.start for b in items)
    span = max(max(b.end for b in items) - origin, 1.0)
    label_w, chart_w, row_h, top = 230, 760, 22, 56
    width, height = label_w + chart_w + 110, top + row_h * len(items) + 50

    def x(t: float) -> float:
        return label_w + (t - origin) / span * chart_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    if freeze is not None:
        left, right = x(freeze[0]), x(freeze[1])
        parts.append(
            f'<rect class="freeze" x="{left:.1f}" y="{top - 18}" width="{max(right - left, 1):.1f}" '
            f'height="{row_h * len(items) + 18}" fill="#f5b7b1" fill-opacity="0.45"/>'
        )
        # the label reads from the band's left edge, or ends at its right edge near the chart's end
        anchor, at = ("end", right) if left > label_w + chart_w * 0.6 else ("start", left + 4)
        parts.append(
            f'<text x="{at:.1f}" y="{top - 5}" text-anchor="{anchor}" fill="#922b21" font-weight="bold">'
            f"freeze {_duration(freeze[1] - freeze[0])} (DAGs paused on the source)</text>"
        )
    for row, bar in enumerate(items):
        y = top + row * row_h
        left = x(bar.start)
        w = max(x(bar.end) - left, 1.5)
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(bar.step)}</text>')
        parts.append(
            f'<rect class="step" data-step="{escape(bar.step)}" x="{left:.1f}" y="{y + 4}" width="{w:.1f}" '
            f'height="{row_h - 8}" fill="{COLOURS[bar.stage]}"/>'
        )
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 15}" fill="#333">{_duration(bar.seconds)}</text>')
    axis_y = top + row_h * len(items) + 10
    parts.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + chart_w}" y2="{axis_y}" stroke="#555"/>')
    for i in range(6):
        t = span * i / 5
        tx = label_w + chart_w * i / 5
        parts.append(f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 5}" stroke="#555"/>')
        parts.append(f'<text x="{tx:.1f}" y="{axis_y + 18}" text-anchor="middle">{_duration(t)}</text>')
    legend_y = axis_y + 34
    for i, (stage, colour) in enumerate(COLOURS.items()):
        lx = label_w + i * 170
        parts.append(f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16}" y="{legend_y}">{stage.value}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def mermaid_gantt(title: str, sections: Sequence[tuple[str, Sequence[tuple[str, float]]]]) -> str:
    """A Mermaid Gantt chart: ``sections`` of ``(task, seconds)`` run one after the other from 0
    (``dateFormat X``: seconds). Task names keep letters, digits, spaces and ``-._()→``."""
    lines = ["gantt", f"    title {_mermaid_text(title)}", "    dateFormat X", "    axisFormat %H:%M:%S"]
    number, previous = 0, None
    for section, tasks in sections:
        lines.append(f"    section {_mermaid_text(section)}")
        for name, seconds in tasks:
            number += 1
            ident = f"t{number}"
            start = f"after {previous}" if previous else "0"
            lines.append(f"    {_mermaid_text(name)} :{ident}, {start}, {max(1, round(seconds))}s")
            previous = ident
    return "\n".join(lines)


def _mermaid_text(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in " -._()→,+") or "-"


AWS_UPGRADE_S = 2 * 3600.0  # AWS: up to two hours of unavailability for a version update


def planned_gantt(sizing: dict[str, Any], title: str) -> str | None:
    """The planned timeline of a cutover from its sizing section (the high end of each estimate):
    pass 1's copy before the freeze, then the freeze's steps; an upgrade inside the freeze is drawn
    at AWS's two-hour bound and says so. None without an estimate."""
    if sizing.get("status") != "estimated":
        return None
    before: list[tuple[str, float]] = []
    if sizing.get("pass1_copy"):
        before.append(("pass-1 copy (source keeps running)", float(sizing["pass1_copy"]["high_s"])))
    freeze: list[tuple[str, float]] = []
    for item in sizing.get("freeze_steps", []):
        if item.get("high_s") is not None:
            freeze.append((str(item["step"]), float(item["high_s"])))
        elif item.get("step") == "upgrade":
            freeze.append(("upgrade (AWS: up to 2 h; the rehearsal measures it)", AWS_UPGRADE_S))
    sections = [(name, tasks) for name, tasks in (("before the freeze", before), ("freeze", freeze)) if tasks]
    return mermaid_gantt(title, sections) if sections else None
