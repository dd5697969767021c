"""Read files as they were at a git ref (``git show REF:path``), for the pull-request report.

Runs the ``git`` executable in the repository root, without a shell and without prompts. Every
failure becomes a :class:`GitError` that says what to do (not a repository, unknown ref, git missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mwaa_iac.errors import UsageError

GIT_TIMEOUT = 60.0


class GitError(UsageError):
    """git could not answer: not a repository, unknown ref, git not installed."""


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_PAGER": "cat"})
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise GitError("git is not installed, so --base cannot be read", hint="install git, or omit --base")
    try:
        return subprocess.run(
            [git, "-c", "core.quotepath=off", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            env=_git_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args[:2])} timed out after {GIT_TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise GitError(f"could not run git: {exc}") from None


@dataclass(frozen=True)
class GitRepo:
    root: Path

    def resolve(self, ref: str) -> str:
        """The commit id ``ref`` names. Raises GitError for an unknown ref."""
        if not ref or ref.startswith("-"):
            raise GitError(f"{ref!r} is not a git ref")
        proc = _run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], self.root)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise GitError(
                f"unknown git ref {ref!r} in {self.root}",
                hint="fetch it first (e.g. `git fetch origin main`); in GitHub Actions check out with "
                "`fetch-depth: 0` so the base branch is there",
            )
        return proc.stdout.strip()

    def show(self, commit: str, path: str) -> str | None:
        """The text of ``path`` (relative to the root, POSIX) at ``commit``; None when it is absent."""
        proc = _run(["cat-file", "-e", f"{commit}:{path}"], self.root)
        if proc.returncode != 0:
            return None
        proc = _run(["show", f"{commit}:{path}"], self.root)
        if proc.returncode != 0:
            raise GitError(f"git show {commit[:12]}:{path} failed: {proc.stderr.strip()}")
        return proc.stdout

    def list_files(self, commit: str, directory: str) -> list[str]:
        """Files (POSIX paths relative to the root) under ``directory`` at ``commit``."""
        proc = _run(["ls-tree", "-r", "--name-only", commit, "--", directory.rstrip("/") + "/"], self.root)
        if proc.returncode != 0:
            raise GitError(f"git ls-tree {commit[:12]} {directory} failed: {proc.stderr.strip()}")
        return sorted(line for line in proc.stdout.splitlines() if line)

    def relative(self, path: Path) -> str:
        """``path`` relative to the repository root, POSIX style."""
        return path.resolve().relative_to(self.root).as_posix()


def open_repo(path: Path) -> GitRepo:
    """The git repository holding ``path``. Raises GitError when there is none."""
    proc = _run(["rev-parse", "--show-toplevel"], path)
    if proc.returncode != 0:
        message = proc.stderr.strip()
        if "dubious ownership" in message:
            raise GitError(
                f"git refuses to read {path}: {message.splitlines()[0]}",
                hint="mark it safe: git config --global --add safe.directory <repo>",
            )
        raise GitError(
            f"{path} is not inside a git repository, so --base cannot be compared",
            hint="run the report in a clone of the repository, or omit --base",
        )
    return GitRepo(Path(proc.stdout.strip()).resolve())
