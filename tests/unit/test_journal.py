from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mwaa_iac.errors import LockHeldError
from mwaa_iac.workflows.journal import FileLock, Journal, JournalError


def test_journal_records_steps_and_reloads(tmp_path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal.start(path, "upgrade", {"to": "2.10.3"})
    journal.started("preflight")
    journal.done("preflight", version="2.9.2")
    journal.started("hop-1")
    journal.note("hop-1", update_issued=True)
    loaded = Journal.load(path)
    assert loaded.run_id == journal.run_id and loaded.params == {"to": "2.10.3"}
    assert loaded.state("preflight") == "done" and loaded.state("hop-1") == "started"
    assert loaded.data("hop-1") == {"update_issued": True} and loaded.state("hop-2") is None
    assert not loaded.finished


def test_unfinished_journal_blocks_a_new_run_until_resumed(tmp_path) -> None:
    path = tmp_path / "j.jsonl"
    Journal.start(path, "upgrade", {})
    with pytest.raises(JournalError) as info:
        Journal.start(path, "upgrade", {})
    assert "unfinished upgrade" in info.value.message and "--resume" in info.value.hint
    Journal.load(path).end("succeeded")
    second = Journal.start(path, "upgrade", {})  # a finished one is archived
    assert len(list(tmp_path.glob("j.*.jsonl"))) == 1 and not second.finished


def test_torn_last_line_is_ignored(tmp_path) -> None:
    path = tmp_path / "j.jsonl"
    Journal.start(path, "upgrade", {}).done("preflight")
    with open(path, "a") as handle:
        handle.write('{"event": "sta')
    assert Journal.load(path).state("preflight") == "done"


def test_lock_excludes_a_second_holder_and_releases(tmp_path) -> None:
    first = FileLock(tmp_path / "lock")
    first.acquire("upgrade")
    with pytest.raises(LockHeldError) as info:
        FileLock(tmp_path / "lock").acquire("cutover")
    assert "another upgrade holds the lock" in info.value.message
    first.release()
    FileLock(tmp_path / "lock").acquire("cutover")


def test_stale_lock_needs_break_lock(tmp_path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = tmp_path / "lock"
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename, "workflow": "upgrade"}))
    with pytest.raises(LockHeldError) as info:
        FileLock(lock).acquire("upgrade")
    assert "stale" in info.value.message and "--break-lock" in info.value.hint
    FileLock(lock).acquire("upgrade", break_lock=True)
    assert json.loads(lock.read_text())["pid"] == os.getpid()
