"""The benchmark's charts (bench/charts.py): drawn from a results file, one bar per size and value."""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def _charts():
    spec = importlib.util.spec_from_file_location("bench_charts", REPO / "bench" / "charts.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_charts_draw_each_size_from_the_results(tmp_path: Path) -> None:
    charts = _charts()
    document = json.loads((REPO / "bench" / "results-2026-12-02.json").read_text())
    written = charts.write_charts(document, tmp_path)
    assert [p.name for p in written] == ["freeze-vs-size.svg", "freeze-steps.svg"]
    size = ET.fromstring(written[0].read_text())
    freeze = {
        r.get("data-size"): float(r.get("height"))
        for r in size.iter(f"{SVG}rect")
        if r.get("class") == "freeze"
    }
    raw = {
        r.get("data-size"): float(r.get("height")) for r in size.iter(f"{SVG}rect") if r.get("class") == "raw"
    }
    assert set(freeze) == set(raw) == {"3k", "1M"}
    # heights follow the values: 1M's freeze (32.5 s) is taller than 3k's (27.5 s); 1M's raw copy
    # (18.2 s) shorter than its freeze
    assert freeze["1M"] > freeze["3k"] > raw["3k"] and raw["1M"] < freeze["1M"]
    steps = ET.fromstring(written[1].read_text())
    stacked = [
        (r.get("data-size"), r.get("data-step")) for r in steps.iter(f"{SVG}rect") if r.get("class") == "step"
    ]
    assert ("1M", "backup-p2") in stacked and ("3k", "go-live") in stacked


def test_the_axis_top_is_a_round_number_above_the_largest_value() -> None:
    nice_top = _charts().nice_top
    assert nice_top(35.75) == 40 and nice_top(7.0) == 8 and nice_top(130.0) == 200 and nice_top(0) == 1
