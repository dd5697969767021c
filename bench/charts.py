"""Charts of the freeze benchmark as self-contained SVG files (no plotting library): the freeze window
against the history size beside a raw ``pg_dump | pg_restore`` of the same history, and the freeze's
steps stacked per size. ``bench/freeze_bench.py`` draws them after a run; by hand:
``python bench/charts.py bench/results-2026-12-02.json --out docs/img``.
"""

from __future__ import annotations

import argparse
import json
import math
from html import escape
from pathlib import Path
from typing import Any

STEP_COLOURS = {
    "pause-source": "#4f7cac",
    "drain-source": "#95a5a6",
    "backup-p2": "#c0392b",
    "verify-backup-p2": "#e6b0aa",
    "restore-p2": "#d35400",
    "verify-restore-p2": "#f5cba7",
    "go-live": "#27ae60",
}
FONT = 'font-family="sans-serif" font-size="12"'


def _label(size: dict[str, Any]) -> str:
    count = int(size["task_instances"])
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1000}k"


def _frame(width: int, height: int, title: str, subtitle: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT}>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="12" y="40" fill="#555">{escape(subtitle)}</text>',
    ]


def nice_top(value: float) -> float:
    """The axis's top: the next of 1, 2, 2.5, 5 times a power of ten at or above ``value`` (4 ticks)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value / 4))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power * 4 >= value)
    return step * 4


def _axis(parts: list[str], left: int, top: int, plot_h: int, plot_w: int, top_value: float) -> None:
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#555"/>')
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#555"/>'
    )
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{value:g} s</text>')


def freeze_vs_size(document: dict[str, Any]) -> str:
    """Grouped bars per history size: the freeze window beside the raw full copy of the history."""
    results = [r for r in document["results"] if r.get("freeze_window_s") is not None]
    width, height, left, top, plot_h = 640, 360, 70, 70, 230
    plot_w = width - left - 30
    top_value = nice_top(max(max(r["freeze_window_s"], r.get("raw_copy_s") or 0) for r in results) * 1.1)
    parts = _frame(
        width,
        height,
        "Freeze window vs history size",
        f"{document['date']}, {document.get('machine', '')}"[:100],
    )
    _axis(parts, left, top, plot_h, plot_w, top_value)
    group = plot_w / max(len(results), 1)
    for i, r in enumerate(results):
        x0 = left + group * i + group * 0.15
        bar_w = group * 0.32
        for j, (key, colour, name) in enumerate(
            (("freeze_window_s", "#c0392b", "freeze"), ("raw_copy_s", "#7f8c8d", "raw pg_dump | pg_restore"))
        ):
            value = r.get(key)
            if value is None:
                continue
            h = plot_h * value / top_value
            x = x0 + j * (bar_w + 4)
            y = top + plot_h - h
            parts.append(
                f'<rect class="{name.split()[0]}" data-size="{_label(r)}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{value:.1f}</text>'
            )
        parts.append(
            f'<text x="{left + group * i + group / 2:.1f}" y="{top + plot_h + 18}" text-anchor="middle">'
            f"{_label(r)} task instances, {r.get('dags', '?')} DAGs</text>"
        )
    for j, (colour, name) in enumerate(
        (("#c0392b", "freeze window"), ("#7f8c8d", "raw full copy of the history"))
    ):
        lx = left + j * 220
        parts.append(f'<rect x="{lx}" y="{height - 26}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16}" y="{height - 16}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def freeze_steps(document: dict[str, Any]) -> str:
    """One stacked bar per history size: the freeze's steps (seconds)."""
    results = [r for r in document["results"] if r.get("freeze_steps_s")]
    width, height, left, top, plot_h = 640, 400, 70, 70, 230
    plot_w = width - left - 30
    top_value = nice_top(max(sum(r["freeze_steps_s"].values()) for r in results) * 1.1)
    parts = _frame(width, height, "The freeze's steps per history size", str(document["date"]))
    _axis(parts, left, top, plot_h, plot_w, top_value)
    group = plot_w / max(len(results), 1)
    for i, r in enumerate(results):
        x = left + group * i + group * 0.3
        bar_w = group * 0.4
        base = top + plot_h
        for step, seconds in r["freeze_steps_s"].items():
            h = plot_h * seconds / top_value
            base -= h
            colour = STEP_COLOURS.get(step, "#bbbbbb")
            parts.append(
                f'<rect class="step" data-step="{escape(step)}" data-size="{_label(r)}" x="{x:.1f}" '
                f'y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}"/>'
            )
        total = sum(r["freeze_steps_s"].values())
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{base - 4:.1f}" text-anchor="middle">{total:.1f} s</text>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{_label(r)}</text>'
        )
    steps = list(dict.fromkeys(s for r in results for s in r["freeze_steps_s"]))
    for j, step in enumerate(steps):
        lx = left + (j % 4) * 140
        ly = height - 48 + (j // 4) * 18
        colour = STEP_COLOURS.get(step, "#bbbbbb")
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16}" y="{ly}">{escape(step)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_charts(document: dict[str, Any], out: Path, stem: str = "freeze") -> list[Path]:
    """``<stem>-vs-size.svg`` and ``<stem>-steps.svg`` in ``out`` (the results file's stem: a run with
    MWAA's latency model does not overwrite the run without it)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in ((f"{stem}-vs-size.svg", freeze_vs_size), (f"{stem}-steps.svg", freeze_steps)):
        path = out / name
        path.write_text(draw(document) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a freeze_bench.py results JSON")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"))
    args = parser.parse_args(argv)
    results = Path(args.results)
    stem = "freeze-mwaa-latency" if json.loads(results.read_text()).get("mwaa_latency") else "freeze"
    for path in write_charts(json.loads(results.read_text()), Path(args.out), stem):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
