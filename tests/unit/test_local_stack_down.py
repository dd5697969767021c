"""`mwaa-iac local down --remove-state` while a process of the stack is still exiting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mwaa_iac.local import stack


def test_removing_the_state_skips_a_file_an_exiting_process_removed_meanwhile(
    tmp_path: Path, monkeypatch
) -> None:
    state = tmp_path / "state"
    (state / "pg" / "global").mkdir(parents=True)
    for name in ("pg_internal.init", "pg_control", "other"):
        (state / "pg" / "global" / name).write_text("x")
    real_unlink = os.unlink

    def postgres_got_there_first(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith("pg_internal.init"):
            real_unlink(path, *args, **kwargs)  # PostgreSQL removes it as it stops...
            raise FileNotFoundError(2, "No such file or directory", str(path))  # ...before rmtree does
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", postgres_got_there_first)
    stack._remove_tree(state)
    assert not state.exists()


def test_removing_the_state_tries_again_while_a_directory_is_still_being_written(
    tmp_path: Path, monkeypatch
) -> None:
    state = tmp_path / "state"
    (state / "pg").mkdir(parents=True)
    calls: list[Path] = []
    real_rmtree = stack.shutil.rmtree

    def not_empty_at_first(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(Path(path))
        if len(calls) == 1:
            raise OSError(39, "Directory not empty", str(path))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(stack.shutil, "rmtree", not_empty_at_first)
    monkeypatch.setattr(stack.time, "sleep", lambda s: None)
    stack._remove_tree(state)
    assert not state.exists() and len(calls) == 2
    with pytest.raises(PermissionError):  # still failing after the attempts: raised, not swallowed
        monkeypatch.setattr(
            stack.shutil, "rmtree", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "no"))
        )
        stack._remove_tree(tmp_path)
