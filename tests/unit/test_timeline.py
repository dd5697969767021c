"""The cutover as a picture: the journal's timeline as SVG (the freeze shaded) and the planned
timeline as a Mermaid Gantt chart (issue 26)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from mwaa_iac.core.cutover_steps import Stage
from mwaa_iac.core.timeline import bars, mermaid_gantt, planned_gantt, svg

SVG = "{http://www.w3.org/2000/svg}"


def _journal() -> list[dict]:
    return [
        {"at": 100.0, "event": "started", "step": "preflight"},
        {"at": 104.0, "event": "done", "step": "preflight"},
        {"at": 104.0, "event": "started", "step": "create-target"},
        {"at": 160.0, "event": "done", "step": "create-target"},
        {"at": 160.0, "event": "started", "step": "pause-source"},
        {"at": 161.0, "event": "done", "step": "pause-source"},
        {"at": 161.0, "event": "started", "step": "restore-p2"},  # failed, then again
        {"at": 170.0, "event": "started", "step": "restore-p2"},
        {"at": 175.0, "event": "done", "step": "restore-p2"},
        {"at": 175.0, "event": "started", "step": "freeze-hop-2-3.3.1"},
        {"at": 196.0, "event": "done", "step": "freeze-hop-2-3.3.1"},
        {"at": 196.0, "event": "started", "step": "go-live"},
        {"at": 197.0, "event": "done", "step": "go-live"},
        {"at": 197.0, "event": "started", "step": "retire-dr-dags"},  # not done: left out
    ]


def test_each_step_is_its_last_completed_attempt_with_its_stage() -> None:
    got = bars(_journal())
    assert [b.step for b in got] == ["preflight", "create-target", "pause-source", "restore-p2",
                                     "freeze-hop-2-3.3.1", "go-live"]  # fmt: skip
    restore = next(b for b in got if b.step == "restore-p2")
    assert (restore.start, restore.seconds) == (170.0, 5.0)
    assert next(b for b in got if b.step == "freeze-hop-2-3.3.1").stage is Stage.FREEZE
    assert got[1].stage is Stage.BEFORE_FREEZE


def test_the_svg_draws_every_step_and_shades_the_freeze_with_its_length() -> None:
    picture = svg(bars(_journal()), (160.5, 197.0), "blue → green")
    root = ET.fromstring(picture)  # well-formed, self-contained
    steps = [r.get("data-step") for r in root.iter(f"{SVG}rect") if r.get("class") == "step"]
    assert steps == [
        "preflight",
        "create-target",
        "pause-source",
        "restore-p2",
        "freeze-hop-2-3.3.1",
        "go-live",
    ]
    freeze = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "freeze"]
    assert len(freeze) == 1
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "freeze 36.5 s (DAGs paused on the source)" in texts and "56.0 s" in texts
    # the shaded band spans the freeze: it starts after create-target's bar ends
    create = next(r for r in root.iter(f"{SVG}rect") if r.get("data-step") == "create-target")
    assert float(freeze[0].get("x")) >= float(create.get("x")) + float(create.get("width")) - 1


def test_the_mermaid_gantt_chains_tasks_in_seconds() -> None:
    text = mermaid_gantt(
        "plan: a → b", [("before", [("copy", 12.4)]), ("freeze", [("pause", 0.2), ("go-live", 3)])]
    )
    lines = text.splitlines()
    assert lines[:4] == ["gantt", "    title plan a → b", "    dateFormat X", "    axisFormat %H:%M:%S"]
    tasks = [line for line in lines if re.fullmatch(r"    [^:]+ :t\d+, (0|after t\d+), \d+s", line)]
    assert tasks == ["    copy :t1, 0, 12s", "    pause :t2, after t1, 1s", "    go-live :t3, after t2, 3s"]
    assert [line for line in lines if line.startswith("    section")] == [
        "    section before",
        "    section freeze",
    ]


def test_the_planned_timeline_comes_from_the_sizing_and_names_the_aws_bound() -> None:
    sizing = {
        "status": "estimated",
        "pass1_copy": {"low_s": 60.0, "high_s": 90.0},
        "freeze_steps": [
            {"step": "pause", "low_s": 1.0, "high_s": 2.0},
            {"step": "drain", "low_s": None, "high_s": None},
            {"step": "upgrade", "low_s": None, "high_s": None},
            {"step": "go-live", "low_s": 1.0, "high_s": 3.0},
        ],
    }
    text = planned_gantt(sizing, "planned")
    assert text is not None and "pass-1 copy (source keeps running) :t1, 0, 90s" in text
    assert "upgrade (AWS up to 2 h the rehearsal measures it) :t3, after t2, 7200s" in text
    assert "drain" not in text  # unknown: not drawn
    assert planned_gantt({"status": "unavailable"}, "x") is None
