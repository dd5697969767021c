"""A workflow's journal and lock.

The journal is a JSON-lines file: every step is recorded before it runs ("started") and after it
ran ("done", with what it produced, e.g. the update that was issued), fsync'ed each time. After a
crash or Ctrl-C, ``--resume`` reads it back: done steps are skipped, a started step is continued
(an UpdateEnvironment already issued is watched, not issued again).

The lock is a file created with O_EXCL holding who owns it. A lock whose process is gone (same
host) is *stale*; it is broken only when the user says so (``--break-lock``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwaa_iac.errors import LockHeldError, MwaaIacError


class JournalError(MwaaIacError):
    pass


@dataclass
class Journal:
    path: Path
    workflow: str
    run_id: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, path: Path, workflow: str, params: dict[str, Any]) -> Journal:
        """A new journal; refuses to overwrite one that has not finished."""
        existing = cls.load(path) if path.exists() else None
        if existing is not None and not existing.finished:
            raise JournalError(
                f"an unfinished {existing.workflow} (run {existing.run_id}) is recorded in {path}",
                hint="continue it with --resume, or remove the journal file after checking the environment",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        if existing is not None:
            path.rename(path.with_name(f"{path.stem}.{existing.run_id}{path.suffix}"))
        journal = cls(path, workflow, run_id=uuid.uuid4().hex[:8], params=params)
        journal._append({"event": "begin", "workflow": workflow, "run_id": journal.run_id, "params": params})
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal:
        try:
            lines = path.read_text("utf-8").splitlines()
        except OSError as exc:
            raise JournalError(f"cannot read journal {path}: {exc.strerror or exc}") from None
        entries = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):  # a torn last line from a crash mid-write: ignore it
                    break
                raise JournalError(f"journal {path} is corrupt at line {number}") from None
        if not entries or entries[0].get("event") != "begin":
            raise JournalError(f"journal {path} has no begin record")
        head = entries[0]
        return cls(path, head["workflow"], head["run_id"], head.get("params", {}), entries)

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
        """Record progress inside a step (e.g. the update was issued) without finishing it."""
        self._append({"event": "started", "step": step, "data": data})

    def end(self, outcome: str, **data: Any) -> None:
        self._append({"event": "end", "outcome": outcome, "data": data})

    def _append(self, entry: dict[str, Any]) -> None:
        entry = {"at": time.time(), **entry}
        self.entries.append(entry)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def open_journal(path: Path, workflow: str, params: dict[str, Any], *, resume: bool) -> Journal:
    """A new journal, or with ``resume`` the interrupted one at ``path`` (which must be unfinished and
    for the same target version)."""
    if not resume:
        return Journal.start(path, workflow, params)
    if not path.exists():
        raise JournalError(f"nothing to resume: {path} does not exist")
    journal = Journal.load(path)
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


@dataclass
class FileLock:
    path: Path
    owner: dict[str, Any] = field(default_factory=dict)
    held: bool = False

    def acquire(self, workflow: str, *, break_lock: bool = False) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "workflow": workflow,
            "since": time.time(),
        }
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if break_lock:
                    self.path.unlink(missing_ok=True)
                    break_lock = False
                    continue
                stale = self._is_stale(holder)
                raise LockHeldError(
                    f"{'a stale' if stale else 'another'} {holder.get('workflow', 'workflow')} "
                    "holds the lock "
                    f"{self.path} (pid {holder.get('pid')} on {holder.get('host')})",
                    hint="wait for it to finish"
                    + (
                        "; its process is gone: rerun with --break-lock to take the lock"
                        if stale
                        else "; if you are sure it is gone, rerun with --break-lock"
                    ),
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.owner, handle)
            self.held = True
            return

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                if self._read().get("pid") == self.owner.get("pid"):
                    self.path.unlink()
            self.held = False

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _is_stale(holder: dict[str, Any]) -> bool:
        if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
            return False
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
