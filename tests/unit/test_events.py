"""The event contract: every kind named one way, documented, rendered or explicitly silent; every
event name in the sources and the tests is a kind."""

from __future__ import annotations

import json
import logging
import re
import string
from pathlib import Path

import pytest

from mwaa_iac import events
from mwaa_iac.cli.event_text import (
    FORMATTERS,
    SILENT,
    STATUS,
    STATUS_TEMPLATES,
    STOPS_STATUS,
    TEMPLATES,
    format_event,
    status_text,
    stops_status,
)
from mwaa_iac.events import (
    DECLARED,
    SUMMARY_KINDS,
    Declared,
    Event,
    EventDrift,
    EventKind,
    event,
    markdown_table,
)
from mwaa_iac.workflows.watch import WatchEvent

ROOT = Path(__file__).resolve().parents[2]
JOURNAL_ENTRIES = {"begin", "started", "done", "end"}  # a journal's own entries, not emitted events
NAME = re.compile(r"^[a-z]+(_[a-z]+)*\.[a-z]+(_[a-z]+)*$")
# {"event": "<kind>"..., e.get("event") == "<kind>", e["event"] == "<kind>"
LITERAL = re.compile(r"""["']event["']\s*(?::|\)\s*==|\]\s*==)\s*(["'])([^"'\n]*)\1""")
MEMBER = re.compile(r"\bEventKind\.([A-Z][A-Z_]+)\b")  # EventKind.X in docs is no member


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_every_kind_is_named_area_dot_what_in_snake_case() -> None:
    for kind in EventKind:
        assert NAME.match(kind.value), kind.value
        assert kind.name == kind.value.replace(".", "_").upper()


def test_every_kind_is_documented() -> None:
    assert set(DECLARED) == set(EventKind)
    assert all(DECLARED[k].description and "\n" not in DECLARED[k].description for k in EventKind)
    assert all(DECLARED[k].required or DECLARED[k].optional for k in EventKind)
    table = markdown_table()
    assert all(f"| `{kind}` |" in table for kind in EventKind)


def test_every_kind_has_a_formatter_or_is_explicitly_silent() -> None:
    assert set(FORMATTERS) | SILENT == set(EventKind)
    assert not set(FORMATTERS) & SILENT
    assert set(STATUS) <= set(EventKind)
    assert set(STOPS_STATUS) <= set(EventKind)


def test_the_summary_kinds() -> None:
    assert (
        {
            "upgrade.summary",
            "cutover.summary",
            "cutover.plan",
            "rollback.summary",
            "cleanup.summary",
            "backup.summary",
            "restore.summary",
            "apply.summary",
        }
        <= SUMMARY_KINDS
        <= set(EventKind)
    )


def test_every_event_name_in_the_sources_and_tests_is_a_kind() -> None:
    kinds = {k.value for k in EventKind}
    found: dict[str, set[str]] = {}
    for path in _sources("mwaa_iac", "tests"):
        if path.name == "journal.py":  # the journal's entries use the "event" key for their own kinds
            continue
        if path.name in ("events.py", "test_events.py"):  # they name invalid kinds on purpose
            continue
        text = path.read_text()
        for _, name in LITERAL.findall(text):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
        for member in MEMBER.findall(text):
            assert hasattr(EventKind, member), f"{path}: EventKind.{member}"
    unknown = {n: sorted(p) for n, p in found.items() if n not in kinds | JOURNAL_ENTRIES}
    assert not unknown, unknown


def test_workflows_emit_through_the_event_contract() -> None:
    """No bare ``{"event": "..."}`` dict in workflows: they build events with ``event(EventKind.X, ...)``."""
    for path in _sources("mwaa_iac/workflows"):
        if path.name == "journal.py":
            continue
        assert not re.search(r"""\{\s*["']event["']\s*:""", path.read_text()), path


def test_every_kind_is_emitted_somewhere() -> None:
    # events.py declares every kind, cli/event_text.py renders every kind: neither emits one
    text = "\n".join(
        p.read_text() for p in _sources("mwaa_iac") if p.name not in ("events.py", "event_text.py")
    )
    referenced = set(MEMBER.findall(text)) | {name for _, name in LITERAL.findall(text)}
    missing = [k for k in EventKind if k.name not in referenced and k.value not in referenced]
    assert not missing, missing


def test_an_event_is_a_plain_dict_with_the_kind_first() -> None:
    data = event(EventKind.HOP_STARTED, {"index": 1, "from": "2.9.2"}, to="2.10.3", reason="r")
    assert data == {"event": "hop.started", "index": 1, "from": "2.9.2", "to": "2.10.3", "reason": "r"}
    assert type(data["event"]) is str and next(iter(data)) == "event"
    assert json.loads(json.dumps(data)) == data
    assert Event.from_dict(data) == Event(
        EventKind.HOP_STARTED, {"index": 1, "from": "2.9.2", "to": "2.10.3", "reason": "r"}
    )
    with pytest.raises(ValueError):
        event("live")  # type: ignore[arg-type]  # the old name of cutover.live
    with pytest.raises(ValueError):
        event(EventKind.HOP_DONE, {"event": "x"})


def test_watch_events_use_the_contract() -> None:
    e = WatchEvent(EventKind.WATCH_POLL_ERROR, 75.0, "UPDATING", 12.0, error="Throttling")
    assert e.to_dict() == {
        "event": "watch.poll_error",
        "elapsed_s": 75.0,
        "status": "UPDATING",
        "time_in_status_s": 12.0,
        "error": "Throttling",
    }
    assert format_event(e.to_dict()) is None
    assert status_text(e.to_dict()) == "UPDATING for 12s, total 1m15s (retrying: Throttling)"


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {"event": "preflight.check", "check": "source exists", "ok": False, "detail": "gone"},
            "[failure]✗[/] source exists: gone",
        ),
        ({"event": "step.done", "step": "go-live", "elapsed_s": 3725.2}, "[success]✓[/] go-live (1h02m)"),
        (
            {"event": "cutover.live", "environment": "a-green", "unpaused": 4},
            "[success]a-green is live[/]: 4 DAG(s) unpaused",
        ),
        (
            {"event": "watch.status", "elapsed_s": 61.0, "status": "UPDATING", "time_in_status_s": 0.0},
            "[progress]UPDATING[/] after 1m01s",
        ),
        ({"event": "backup.skipped", "reason": "--no-backup"}, "backup skipped: --no-backup"),
        ({"event": "terraform.output", "line": "Plan: [1] to add\n"}, "[muted]  Plan: [1] to add[/]"),
        ({"event": "terraform.output", "line": "[bold]x"}, "[muted]  \\[bold]x[/]"),
        (
            {"event": "freeze.drain_forced", "environment": "a-blue", "may_run_twice": ["etl/r1/load[3]"]},
            "[warning]--force-drain: continuing with 1 task instance(s) still executing on a-blue; "
            "they may run twice: etl/r1/load[3][/]",
        ),
        (
            {
                "event": "freeze.aborted",
                "environment": "a-blue",
                "unpaused": 2,
                "target": "a-green",
                "repaused_on_target": 2,
                "routed_back": True,
                "redo": [],
            },
            "[warning]freeze aborted: 2 DAG(s) paused again on a-green, routing pointed back; "
            "2 DAG(s) unpaused again on a-blue; --resume takes a fresh backup[/]",
        ),
        (
            {"event": "probe.done", "environment": "a-blue", "uri": "s3://dr-bucket/x/y", "vendored": True},
            "[success]✓[/] probe: a-blue imports mwaa-dr (from the DAG folder) and can write to s3://dr-bucket/",
        ),
        ({"event": "cutover.summary", "source": "a-blue"}, None),
        ({"event": "step.started", "step": "go-live"}, None),
        ({"event": "no.such_kind"}, None),
    ],
)
def test_formatter_lines(data: dict, line: str | None) -> None:
    assert format_event(data) == line


def test_live_status_texts() -> None:
    assert status_text({"event": "step.started", "step": "drain-source"}) == "drain-source"
    draining = {
        "event": "freeze.draining",
        "environment": "a-blue",
        "count": 7,
        "task_instances": ["a/r/t[0]"],
        "waited_s": 65,
    }
    assert (
        status_text(draining)
        == "draining: 7 task instance(s) executing on a-blue (a/r/t[0], ...), waited 1m05s"
    )
    run = {"event": "dr.run", "environment": "a-blue", "dag_id": "backup", "state": "running", "elapsed_s": 5}
    assert status_text(run) == "backup on a-blue: running for 5s, total 5s"
    assert status_text({"event": "cutover.live", "environment": "x", "unpaused": 1}) is None
    assert stops_status({"event": "hop.done"}) and not stops_status({"event": "hop.started"})


def test_the_docs_list_every_event_as_events_py_describes_it() -> None:
    from tests.unit.test_docs_reference import gen_ref

    assert markdown_table().strip() in gen_ref.events_markdown()


def test_an_undeclared_field_fails_the_check() -> None:
    with pytest.raises(EventDrift, match=re.escape("step.done: undeclared field 'seconds'")):
        event(EventKind.STEP_DONE, step="go-live", elapsed_s=1.0, seconds=1.0)
    events.DRIFTS.clear()  # raised on purpose


def test_a_missing_required_field_fails_the_check() -> None:
    with pytest.raises(EventDrift, match=re.escape("hop.started: missing required field 'reason'")):
        event(EventKind.HOP_STARTED, {"index": 1, "from": "2.9.2"}, to="2.10.3")
    events.DRIFTS.clear()  # raised on purpose


def test_optional_fields_and_the_other_shape_pass_the_check() -> None:
    e = {"elapsed_s": 1.0, "status": "UPDATING", "time_in_status_s": 0.0}
    assert event(EventKind.WATCH_POLL, e) == {"event": "watch.poll", **e}
    assert event(EventKind.WATCH_POLL, e, observation={}) == {"event": "watch.poll", **e, "observation": {}}
    assert event(EventKind.CUTOVER_SUMMARY, skipped="already") == {
        "event": "cutover.summary",
        "skipped": "already",
    }
    with pytest.raises(EventDrift):  # the other shape is exactly its fields
        event(EventKind.CUTOVER_SUMMARY, skipped="already", source="a-blue")
    events.DRIFTS.clear()


def test_a_drift_never_stops_a_users_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(events.STRICT_ENV)
    with caplog.at_level(logging.DEBUG, logger="mwaa_iac.events"):
        data = event(EventKind.HOP_RESUMED, to="2.10.3", extra=1)
        assert event(EventKind.HOP_RESUMED) == {"event": "hop.resumed"}
    assert data == {"event": "hop.resumed", "to": "2.10.3", "extra": 1}
    assert "hop.resumed: undeclared field 'extra'" in caplog.text
    assert "hop.resumed: missing required field 'to'" in caplog.text
    assert not events.DRIFTS


def test_a_declaration_names_each_field_once() -> None:
    with pytest.raises(ValueError):
        Declared("x", ("a", "b"), ("a",))
    with pytest.raises(ValueError):
        Declared("x", ("a",), notes={"b": "no such field"})
    assert Declared("x", ("a", "b"), ("c",), notes={"b": "why"}, instead=("d",)).fields_text() == (
        "a, b (why); optional: c; or instead: d"
    )


def test_templates_name_declared_fields_only() -> None:
    """A line or status made from a template uses fields every event of its kind carries."""
    for kind, text in {**TEMPLATES, **STATUS_TEMPLATES}.items():
        used = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        assert used <= set(DECLARED[kind].required), (kind, used)
