"""Where a workflow's journal and lock live.

By default, local files under ``.mwaa-iac/<env>/`` — right when one machine runs the workflows of an
environment. With ``state.s3_bucket`` in mwaa.yaml they live in S3 under
``<s3_prefix>/<name>/`` so that CI runners and operators on different machines see the same lock
and can resume each other's journal:

- the lock is created with a conditional write (``PutObject`` with ``If-None-Match: *``): S3 lets
  exactly one writer create the key, every other one gets 412 Precondition Failed;
- the journal is one object rewritten on every record, each write conditional on the ETag of the
  previous one (``If-Match``), so a writer that did not take the lock cannot silently clobber it.

Both stores expose the same few operations; :mod:`mwaa_iac.workflows.journal` builds on them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mwaa_iac.errors import MwaaIacError, UsageError

if TYPE_CHECKING:
    from mwaa_iac.adapters.storage import S3
    from mwaa_iac.core.config import EnvironmentConfig
    from mwaa_iac.workspace import Workspace


class StateError(MwaaIacError):
    pass


class StateStore(Protocol):
    def where(self, name: str) -> str:
        """Where ``name`` lives, for messages (a path or an s3:// URI)."""
        ...

    def read(self, name: str) -> str | None:
        """The text of ``name``, or None when it does not exist."""
        ...

    def append(self, name: str, text: str) -> None:
        """Add ``text`` at the end of ``name`` (created if missing), durably."""
        ...

    def create(self, name: str, text: str) -> bool:
        """Create ``name`` only if it does not exist; False if it does."""
        ...

    def delete(self, name: str) -> None: ...

    def rename(self, name: str, new_name: str) -> None: ...


@dataclass
class LocalStore:
    directory: Path

    def where(self, name: str) -> str:
        return str(self.directory / name)

    def read(self, name: str) -> str | None:
        try:
            return (self.directory / name).read_text("utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self.where(name)}: {exc.strerror or exc}") from None

    def append(self, name: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / name, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def create(self, name: str, text: str) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.directory / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / name).unlink()

    def rename(self, name: str, new_name: str) -> None:
        (self.directory / name).rename(self.directory / new_name)


@dataclass
class S3Store:
    s3: S3
    bucket: str
    prefix: str
    _etags: dict[str, str] = field(default_factory=dict)
    _texts: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def where(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def read(self, name: str) -> str | None:
        found = self.s3.get_text_etag(self.bucket, self.key(name))
        if found is None:
            self._etags.pop(name, None)
            self._texts.pop(name, None)
            return None
        self._texts[name], self._etags[name] = found
        return found[0]

    def append(self, name: str, text: str) -> None:
        if name not in self._etags:
            self.read(name)
        new_text = self._texts.get(name, "") + text
        etag = self.s3.put_text_if(self.bucket, self.key(name), new_text, etag=self._etags.get(name))
        if etag is None:
            raise StateError(
                f"{self.where(name)} was changed by another writer while this workflow held the lock",
                hint="another mwaa-iac may be running on this environment without the lock (was it "
                "broken with --break-lock?); check both before resuming",
            )
        self._texts[name], self._etags[name] = new_text, etag

    def create(self, name: str, text: str) -> bool:
        etag = self.s3.put_text_if(self.bucket, self.key(name), text, etag=None)
        if etag is None:
            return False
        self._texts[name], self._etags[name] = text, etag
        return True

    def delete(self, name: str) -> None:
        self.s3.delete(self.bucket, self.key(name))
        self._etags.pop(name, None)
        self._texts.pop(name, None)

    def rename(self, name: str, new_name: str) -> None:
        text = self.read(name)
        if text is None:
            return
        self.s3.put_text(self.bucket, self.key(new_name), text)
        self.delete(name)


def open_state(ws: Workspace, config: EnvironmentConfig, s3: S3 | None = None) -> StateStore:
    """The store configured for this environment: S3 when ``state.s3_bucket`` is set, else local
    files in the workspace's scratch directory."""
    if config.state is None:
        require_shared_state_on_ci(ws, os.environ)
        return LocalStore(ws.work_dir)
    if s3 is None:
        from mwaa_iac.adapters.storage import S3

        s3 = S3(config.region)
    prefix = "/".join(p for p in (config.state.s3_prefix.strip("/"), config.name) if p)
    return S3Store(s3, config.state.s3_bucket, prefix)


ALLOW_LOCAL_STATE = "MWAA_IAC_ALLOW_LOCAL_STATE"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def require_shared_state_on_ci(ws: Workspace, environ: Mapping[str, str]) -> None:
    """On a CI runner (``CI=true``) a journal and lock in local files die with the runner: a runner
    killed during the freeze would leave the source paused with nothing to resume from. Refuse,
    with the fix, unless ``MWAA_IAC_ALLOW_LOCAL_STATE=true`` says the runner's disk persists."""
    if not _truthy(environ.get("CI")) or _truthy(environ.get(ALLOW_LOCAL_STATE)):
        return
    raise UsageError(
        f"{ws.config_file}: state.s3_bucket is required on a CI runner (CI=true): the journal and the "
        "lock would live on the runner's disk, and a runner lost during the freeze would leave the "
        "source paused with nothing to resume from",
        hint="add to mwaa.yaml:\n  state:\n    s3_bucket: <a private bucket the deploy role may read and "
        "write>\n(journals and the lock then live in S3 under mwaa-iac/state/<name>/, and `cutover --resume` "
        f"or `cleanup` work from any machine); or set {ALLOW_LOCAL_STATE}=true when the runner's "
        "disk outlives the job",
    )
