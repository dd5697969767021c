"""A workflow's journal and lock, kept in a :mod:`~mwaa_iac.workflows.state` store (local files by
default, S3 when configured).

The journal is JSON lines: every step is recorded before it runs ("started") and after it ran
("done", with what it produced, e.g. the update that was issued), durably each time. After a crash
or Ctrl-C, ``--resume`` reads it back: done steps are skipped, a started step is continued (an
UpdateEnvironment already issued is watched, not issued again).

The lock is created exclusively (O_EXCL locally, a conditional PutObject in S3) and holds who owns
it. A lock whose process is gone (same host) is *stale*; any lock is broken only when the user says
so (``--break-lock``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mwaa_iac.errors import LockHeldError, MwaaIacError
from mwaa_iac.workflows.state import StateStore


class JournalError(MwaaIacError):
    pass


@dataclass
class Journal:
    store: StateStore
    name: str
    workflow: str
    run_id: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, store: StateStore, name: str, workflow: str, params: dict[str, Any]) -> Journal:
        """A new journal; refuses to overwrite one that has not finished."""
        existing = cls.load(store, name)
        if existing is not None and not existing.finished:
            raise JournalError(
                f"an unfinished {existing.workflow} (run {existing.run_id}) is recorded in "
                f"{store.where(name)}",
                hint="continue it with --resume, or remove the journal after checking the environment",
            )
        if existing is not None:
            stem, _, suffix = name.rpartition(".")  # upgrade.journal.jsonl -> upgrade.journal.<run>.jsonl
            store.rename(name, f"{stem}.{existing.run_id}.{suffix}")
        journal = cls(store, name, workflow, run_id=uuid.uuid4().hex[:8], params=params)
        journal._append({"event": "begin", "workflow": workflow, "run_id": journal.run_id, "params": params})
        return journal

    @classmethod
    def load(cls, store: StateStore, name: str) -> Journal | None:
        """The journal recorded under ``name``, or None when there is none."""
        text = store.read(name)
        if text is None:
            return None
        where = store.where(name)
        lines = text.splitlines()
        entries = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):  # a torn last line from a crash mid-write: ignore it
                    break
                raise JournalError(f"journal {where} is corrupt at line {number}") from None
        if not entries or entries[0].get("event") != "begin":
            raise JournalError(f"journal {where} has no begin record")
        head = entries[0]
        return cls(store, name, head["workflow"], head["run_id"], head.get("params", {}), entries)

    @property
    def where(self) -> str:
        return self.store.where(self.name)

    @property
    def finished(self) -> bool:
        return any(e.get("event") == "end" for e in self.entries)

    def state(self, step: str) -> str | None:
        """None (never started), "started" or "done"."""
        result = None
        for entry in self.entries:
            if entry.get("step") == step:
                result = entry["event"]
        return result

    def data(self, step: str) -> dict[str, Any]:
        """What was recorded for ``step`` (merged over its started/done records)."""
        merged: dict[str, Any] = {}
        for entry in self.entries:
            if entry.get("step") == step:
                merged.update(entry.get("data", {}))
        return merged

    def started(self, step: str, **data: Any) -> None:
        self._append({"event": "started", "step": step, "data": data})

    def done(self, step: str, **data: Any) -> None:
        self._append({"event": "done", "step": step, "data": data})

    def note(self, step: str, **data: Any) -> None:
        """Record progress inside a step (e.g. the update was issued) without finishing it. The step
        counts as started (not done), but a note is not an attempt of its own (:meth:`attempts`)."""
        self._append({"event": "started", "step": step, "data": data, "note": True})

    def attempts(self, step: str) -> int:
        """How many times ``step`` was started (its notes excluded)."""
        return sum(
            1
            for e in self.entries
            if e.get("step") == step and e.get("event") == "started" and not e.get("note")
        )

    def end(self, outcome: str, **data: Any) -> None:
        self._append({"event": "end", "outcome": outcome, "data": data})

    def _append(self, entry: dict[str, Any]) -> None:
        entry = {"at": time.time(), **entry}
        self.store.append(self.name, json.dumps(entry, sort_keys=True, default=str) + "\n")
        self.entries.append(entry)


def open_journal(
    store: StateStore, name: str, workflow: str, params: dict[str, Any], *, resume: bool
) -> Journal:
    """A new journal, or with ``resume`` the interrupted one under ``name`` (which must be unfinished
    and for the same target version)."""
    if not resume:
        return Journal.start(store, name, workflow, params)
    journal = Journal.load(store, name)
    if journal is None:
        raise JournalError(f"nothing to resume: {store.where(name)} does not exist")
    if journal.finished:
        raise JournalError(
            f"the last {journal.workflow} (run {journal.run_id}) already finished; nothing to resume",
            hint=f"run without --resume to start a new {workflow}",
        )
    if journal.params.get("to") != params.get("to"):
        raise JournalError(
            f"the interrupted {journal.workflow} was to {journal.params.get('to')}, not {params.get('to')}",
            hint=f"resume with --to {journal.params.get('to')}",
        )
    return journal


LOCK_NAME = "lock"


@dataclass
class Lock:
    """One workflow at a time per environment."""

    store: StateStore
    name: str = LOCK_NAME
    owner: dict[str, Any] = field(default_factory=dict)
    held: bool = False

    def acquire(self, workflow: str, *, break_lock: bool = False) -> None:
        self.owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "workflow": workflow,
            "since": time.time(),
            "token": uuid.uuid4().hex,
        }
        text = json.dumps(self.owner)
        for _ in range(2):
            if self.store.create(self.name, text):
                self.held = True
                return
            holder = self.holder()
            if break_lock:
                self.store.delete(self.name)
                break_lock = False
                continue
            raise self._held_error(holder)
        raise LockHeldError(f"the lock {self.store.where(self.name)} was taken again while breaking it")

    def release(self) -> None:
        if self.held:
            if self.holder().get("token") == self.owner.get("token"):
                self.store.delete(self.name)
            self.held = False

    def holder(self) -> dict[str, Any]:
        try:
            value = json.loads(self.store.read(self.name) or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _held_error(self, holder: dict[str, Any]) -> LockHeldError:
        stale = is_stale(holder)
        since = holder.get("since")
        when = (
            f", since {datetime.fromtimestamp(since, UTC):%Y-%m-%d %H:%M:%S} UTC"
            if isinstance(since, int | float)
            else ""
        )
        return LockHeldError(
            f"{'a stale' if stale else 'another'} {holder.get('workflow', 'workflow')} holds the lock "
            f"{self.store.where(self.name)} (pid {holder.get('pid')} on {holder.get('host')}{when})",
            hint="wait for it to finish"
            + (
                "; its process is gone: rerun with --break-lock to take the lock"
                if stale
                else "; if you are sure it is gone, rerun with --break-lock"
            ),
        )


@contextlib.contextmanager
def holding_lock(store: StateStore, workflow: str, *, break_lock: bool = False) -> Iterator[Lock]:
    lock = Lock(store)
    lock.acquire(workflow, break_lock=break_lock)
    try:
        yield lock
    except BaseException:
        # The workflow's own error is what the user must see; a lock that cannot be released on
        # top of it stays behind (--break-lock takes it).
        with contextlib.suppress(MwaaIacError):
            lock.release()
        raise
    lock.release()


def is_stale(holder: dict[str, Any]) -> bool:
    """Whether the lock's owner is known to be gone: only decidable on the host that took it."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
