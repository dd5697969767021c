"""Does the environment's ``requirements.txt`` install on the target Airflow version?

MWAA installs an environment's requirements under Airflow's official constraints file for its Airflow
and Python versions (``constraints-<airflow>/constraints-<python>.txt`` in the apache/airflow GitHub
repository). A requirement that pins a package differently from those constraints makes the install
fail, and MWAA then starts the environment without any of the requirements. Two layers:

1. **static** (always, offline): every requirement is compared with the constraints' pin for the same
   package, with markers evaluated for the target's Python; also flagged: a pin of ``apache-airflow``
   itself and a ``--constraint`` line that still points at another Airflow version's file;
2. **resolver** (when ``uv`` or pip is available): ``uv pip compile`` (else ``pip install --dry-run
   --report``) resolves the requirements under the constraints for the target Python, which also finds
   conflicts through transitive dependencies. It needs the package index (or ``--find-links DIR``
   with ``--no-index``); when it cannot run, the result says why and the static layer still stands.

Constraints files come from ``--constraints FILE`` or are downloaded once and cached under
``~/.cache/mwaa-iac/constraints`` (``$MWAA_IAC_CONSTRAINTS_CACHE`` overrides it). When they cannot be
fetched, :class:`ConstraintsUnavailableError` says so plainly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mwaa_iac.core.airflow_env import constraints_cache_dir, constraints_url, python_for
from mwaa_iac.errors import MwaaIacError, UsageError

FETCH_TIMEOUT = 10.0
RESOLVER_TIMEOUT = 600.0
_CONSTRAINT_REF = re.compile(r"constraints-(\d+\.\d+\.\d+)/constraints-(\d+\.\d+)\.txt")


class ConstraintsUnavailableError(MwaaIacError):
    """Airflow's constraints file for the target could not be read or fetched."""


# --------------------------------------------------------------------------------------------------
# Constraints
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConstraintsSource:
    """Where the constraints came from: ``file`` (given), ``cache`` or ``downloaded``."""

    path: Path
    origin: str
    airflow_version: str
    python_version: str
    url: str

    def describe(self) -> str:
        if self.origin == "file":
            return f"{self.path.name} (given with --constraints)"
        what = f"Airflow {self.airflow_version} constraints for Python {self.python_version}"
        return f"{what} ({'cached' if self.origin == 'cache' else 'downloaded'})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "file": self.path.name,
            "airflow_version": self.airflow_version,
            "python_version": self.python_version,
            "url": self.url,
        }


Fetcher = Callable[[str, float], bytes]


def _urlopen_fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def obtain_constraints(
    airflow_version: str,
    python_version: str,
    *,
    constraints_file: Path | None = None,
    offline: bool = False,
    cache_dir: Path | None = None,
    fetch: Fetcher | None = None,
) -> ConstraintsSource:
    """The constraints file to check against: the given file, else the cached copy, else downloaded
    into the cache. Raises :class:`ConstraintsUnavailableError` saying why none is available."""
    url = constraints_url(airflow_version, python_version)
    if constraints_file is not None:
        if not constraints_file.is_file():
            raise UsageError(f"--constraints {constraints_file}: no such file")
        return ConstraintsSource(constraints_file, "file", airflow_version, python_version, url)
    cache = (cache_dir or constraints_cache_dir()).expanduser()
    cached = cache / f"constraints-{airflow_version}-py{python_version}.txt"
    if cached.is_file() and cached.stat().st_size > 0:
        return ConstraintsSource(cached, "cache", airflow_version, python_version, url)
    hint = (
        f"download {url} where it is reachable and pass it with --constraints FILE "
        f"(or put it in {cached} and it will be used from the cache)"
    )
    if offline:
        raise ConstraintsUnavailableError(
            f"Airflow {airflow_version}'s constraints for Python {python_version} are not cached and "
            "--offline forbids fetching them",
            hint=hint,
        )
    try:
        data = (fetch or _urlopen_fetch)(url, FETCH_TIMEOUT)
    except urllib.error.HTTPError as exc:
        why = f"HTTP {exc.code}" + (" (no such constraints file)" if exc.code == 404 else "")
        raise ConstraintsUnavailableError(
            f"Airflow {airflow_version}'s constraints for Python {python_version} could not be fetched "
            f"from {url}: {why}",
            hint=hint,
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConstraintsUnavailableError(
            f"Airflow {airflow_version}'s constraints for Python {python_version} could not be fetched "
            f"from {url}: {reason}",
            hint=hint,
        ) from None
    if not data.strip():
        raise ConstraintsUnavailableError(f"{url} returned an empty file", hint=hint)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, cached)
    return ConstraintsSource(cached, "downloaded", airflow_version, python_version, url)


def marker_environment(python_version: str) -> dict[str, str]:
    """The marker environment of an MWAA worker running ``python_version`` (Linux, x86_64)."""
    return {
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def _marker_applies(marker: Marker | None, python_version: str) -> bool:
    if marker is None:
        return True
    try:
        return marker.evaluate(marker_environment(python_version))
    except (UndefinedComparison, UndefinedEnvironmentName):
        return True


def parse_constraints(text: str, python_version: str) -> dict[str, str]:
    """``name==version`` lines of a constraints file → {canonical name: version}, markers applied."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if not _marker_applies(req.marker, python_version):
            continue
        exact = [s.version for s in req.specifier if s.operator in ("==", "===")]
        if exact:
            pins[canonicalize_name(req.name)] = exact[0]
    return pins


# --------------------------------------------------------------------------------------------------
# Requirements
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequirementLine:
    """One meaningful line of a requirements file."""

    file: str  # as displayed
    line: int
    text: str
    kind: str  # requirement | constraint-ref | url | option | unparsed
    requirement: Requirement | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join ``\\``-continued lines and drop comments; keeps the first line number of each."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(pending)
        pending = []
        joined = re.sub(r"(^|\s)#.*$", "", joined).strip()
        if joined:
            out.append((start, joined))
    if pending:
        joined = re.sub(r"(^|\s)#.*$", "", " ".join(pending)).strip()
        if joined:
            out.append((start, joined))
    return out


def parse_requirements_file(
    path: Path, display: str | None = None, _seen: set[Path] | None = None
) -> list[RequirementLine]:
    """Read a pip requirements file (following ``-r`` includes)."""
    seen = _seen if _seen is not None else set()
    resolved = path.resolve()
    if resolved in seen:
        return []
    seen.add(resolved)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read requirements file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"requirements file {path} is not UTF-8 text") from None
    shown = display or path.name
    lines: list[RequirementLine] = []
    for number, line in _logical_lines(text):
        option = re.match(r"^(-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)", line)
        if option:
            flag, target = option.groups()
            if flag in ("-r", "--requirement") and "://" not in target:
                included = (path.parent / target).resolve()
                lines += parse_requirements_file(included, f"{Path(shown).parent / target}", seen)
            else:
                kind = "constraint-ref" if flag in ("-c", "--constraint") else "option"
                lines.append(RequirementLine(shown, number, line, kind))
            continue
        if line.startswith("-"):
            lines.append(RequirementLine(shown, number, line, "option"))
            continue
        spec = re.split(r"\s+--hash[=\s]", line, maxsplit=1)[0].strip()
        try:
            req = Requirement(spec)
        except InvalidRequirement:
            kind = "url" if ("://" in spec or spec.startswith((".", "/"))) else "unparsed"
            lines.append(RequirementLine(shown, number, line, kind))
            continue
        kind = "url" if req.url else "requirement"
        lines.append(RequirementLine(shown, number, line, kind, req))
    return lines


@dataclass(frozen=True)
class Conflict:
    """A requirement that cannot be installed with the target's constraints."""

    package: str
    requirement: str
    where: str | None
    constrained: str | None  # the constraints' pin, e.g. "2.2.3"
    reason: str
    found_by: str  # static | resolver

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "requirement": self.requirement,
            "where": self.where,
            "constrained": self.constrained,
            "reason": self.reason,
            "found_by": self.found_by,
        }


def static_conflicts(
    lines: list[RequirementLine], pins: dict[str, str], airflow_version: str, python_version: str
) -> tuple[list[Conflict], list[str]]:
    """(conflicts, notes) from comparing each requirement with the constraints' pins."""
    conflicts: list[Conflict] = []
    notes: list[str] = []
    for item in lines:
        if item.kind == "constraint-ref":
            match = _CONSTRAINT_REF.search(item.text)
            if match and (match.group(1), match.group(2)) != (airflow_version, python_version):
                conflicts.append(
                    Conflict(
                        "constraints file",
                        item.text,
                        item.where,
                        f"constraints-{airflow_version}/constraints-{python_version}.txt",
                        f"this line applies Airflow {match.group(1)}'s constraints for Python "
                        f"{match.group(2)}; for the target change it to "
                        f"{constraints_url(airflow_version, python_version)}",
                        "static",
                    )
                )
            elif not match:
                notes.append(f"{item.where}: a custom constraints line ({item.text}) is not checked")
            continue
        if item.kind in ("url", "unparsed"):
            notes.append(f"{item.where}: `{item.text}` is not a named requirement; not checked")
            continue
        if item.kind != "requirement" or item.requirement is None:
            continue
        req = item.requirement
        if not _marker_applies(req.marker, python_version):
            continue
        name = canonicalize_name(req.name)
        if name == "apache-airflow":
            if req.specifier and not req.specifier.contains(airflow_version, prereleases=True):
                conflicts.append(
                    Conflict(
                        req.name,
                        item.text,
                        item.where,
                        airflow_version,
                        f"requires apache-airflow{req.specifier} but the target is Airflow "
                        f"{airflow_version}; MWAA provides Airflow itself: remove the line",
                        "static",
                    )
                )
            continue
        pinned = pins.get(name)
        if pinned is None or not req.specifier:
            continue
        try:
            allowed = req.specifier.contains(Version(pinned), prereleases=True)
        except InvalidVersion:
            continue
        if not allowed:
            conflicts.append(
                Conflict(
                    req.name,
                    item.text,
                    item.where,
                    pinned,
                    f"requires {req.name}{req.specifier} but Airflow {airflow_version}'s constraints pin "
                    f"{pinned}",
                    "static",
                )
            )
    return conflicts, notes


# --------------------------------------------------------------------------------------------------
# Resolver
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolverOutcome:
    """What ``uv pip compile`` / ``pip install --dry-run`` said. ``ok`` is None when it could not
    decide (index unreachable, tool missing, ...)."""

    tool: str | None
    ok: bool | None
    message: str
    packages: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "ok": self.ok, "message": self.message, "packages": list(self.packages)}


_NO_SOLUTION = (
    "no solution found",
    "resolutionimpossible",
    "conflicting dependencies",
    "requirements are unsatisfiable",
)


def _resolver_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return env


def _pip_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pip") is not None


def resolver_command(
    tool: str,
    requirements: Path,
    constraints: Path,
    python_version: str,
    *,
    find_links: Path | None = None,
    offline: bool = False,
    report: Path | None = None,
) -> list[str]:
    """The resolver's command line (``tool`` is ``uv`` or ``pip``)."""
    if tool == "uv":
        uv = shutil.which("uv") or "uv"
        cmd = [uv, "pip", "compile", str(requirements), "--constraint", str(constraints)]
        cmd += ["--python-version", python_version, "--python-platform", "x86_64-unknown-linux-gnu"]
        cmd += ["--no-header", "--no-annotate", "--output-file", os.devnull]
        if offline:
            cmd.append("--offline")
    else:
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-input"]
        cmd += ["--requirement", str(requirements), "--constraint", str(constraints)]
        cmd += ["--python-version", python_version, "--only-binary=:all:"]
        cmd += ["--platform", "manylinux2014_x86_64"]
        if report is not None:
            cmd += ["--report", str(report)]
    if find_links is not None:
        cmd += ["--no-index", "--find-links", str(find_links)]
    return cmd


def run_resolver(
    lines: list[RequirementLine],
    constraints: Path,
    python_version: str,
    *,
    tool: str = "auto",
    find_links: Path | None = None,
    offline: bool = False,
    timeout: float = RESOLVER_TIMEOUT,
) -> ResolverOutcome:
    """Resolve the named requirements under ``constraints`` for ``python_version``."""
    if tool == "none":
        return ResolverOutcome(None, None, "resolver not run (--resolver none)")
    if tool == "auto":
        tool = "uv" if shutil.which("uv") else ("pip" if _pip_available() else "none")
        if tool == "none":
            return ResolverOutcome(None, None, "resolver not run: neither uv nor pip is available")
    elif tool == "uv" and not shutil.which("uv"):
        return ResolverOutcome("uv", None, "resolver not run: uv is not on PATH")
    elif tool == "pip" and not _pip_available():
        return ResolverOutcome("pip", None, "resolver not run: pip is not installed")
    named = [item for item in lines if item.kind in ("requirement", "url")]
    if not named:
        return ResolverOutcome(tool, True, "nothing to resolve")
    with tempfile.TemporaryDirectory(prefix="mwaa-iac-req-") as tmp:
        req_file = Path(tmp) / "requirements.txt"
        # Only the requirements themselves: the file's own --constraint lines (which may point at
        # another Airflow version's constraints) are replaced by the target's.
        req_file.write_text("".join(item.text + "\n" for item in named), "utf-8")
        report = Path(tmp) / "report.json"
        cmd = resolver_command(
            tool, req_file, constraints, python_version, find_links=find_links, offline=offline, report=report
        )
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=_resolver_env(), check=False
            )
        except subprocess.TimeoutExpired:
            return ResolverOutcome(tool, None, f"the resolver ({tool}) timed out after {timeout:.0f} s")
        except OSError as exc:
            return ResolverOutcome(tool, None, f"the resolver ({tool}) could not run: {exc}")
    output = (proc.stderr or "") + (proc.stdout or "")
    if proc.returncode == 0:
        return ResolverOutcome(tool, True, f"{tool} resolved the requirements under the constraints")
    text = _clean_output(output)
    lowered = text.lower()
    if any(marker in lowered for marker in _NO_SOLUTION):
        names: set[str] = {canonicalize_name(i.requirement.name) for i in named if i.requirement is not None}
        names |= _names_in_constraints(constraints)
        mentioned = tuple(sorted(n for n in names if _mentions(lowered, n)))
        return ResolverOutcome(tool, False, text, mentioned)
    return ResolverOutcome(tool, None, f"the resolver ({tool}) could not decide: {text}")


def _clean_output(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [
        line.rstrip()
        for line in text.strip().splitlines()
        if line.strip() and not line.lstrip().lower().startswith("warning:")
    ]
    if len(lines) > 30:
        lines = [*lines[:30], f"... ({len(lines) - 30} more lines)"]
    return "\n".join(lines)


def _names_in_constraints(path: Path) -> set[str]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==", line)
        if match:
            names.add(canonicalize_name(match.group(1)))
    return names


def _mentions(text: str, name: str) -> bool:
    pattern = "[-_.]".join(re.escape(part) for part in name.split("-"))
    return re.search(rf"(?<![a-z0-9_.-]){pattern}(?![a-z0-9_-])", text) is not None


# --------------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequirementsCheck:
    """The result of checking a requirements file against a target version's constraints."""

    airflow_version: str
    python_version: str
    requirements_file: str | None
    constraints: ConstraintsSource | None
    requirements: int
    conflicts: tuple[Conflict, ...] = ()
    notes: tuple[str, ...] = ()
    resolver: ResolverOutcome | None = None
    skipped: str | None = None  # why nothing was checked

    @property
    def ok(self) -> bool:
        return not self.conflicts and (self.resolver is None or self.resolver.ok is not False)

    @property
    def status(self) -> str:
        if self.skipped:
            return "skipped"
        return "passed" if self.ok else "failed"

    def summary(self) -> str:
        if self.skipped:
            return self.skipped
        target = f"Airflow {self.airflow_version} (Python {self.python_version})"
        if self.ok:
            how = "static check" + (" and resolver" if self.resolver is not None and self.resolver.ok else "")
            return f"{self.requirements} requirement(s) compatible with {target}'s constraints ({how})"
        packages = sorted({c.package for c in self.conflicts})
        if self.resolver is not None and self.resolver.ok is False:
            packages = sorted(set(packages) | set(self.resolver.packages))
        listed = ", ".join(packages) if packages else "see the resolver's message"
        return f"conflicts with {target}'s constraints: {listed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "summary": self.summary(),
            "airflow_version": self.airflow_version,
            "python_version": self.python_version,
            "requirements_file": self.requirements_file,
            "constraints": self.constraints.to_dict() if self.constraints else None,
            "requirements": self.requirements,
            "conflicts": [c.to_dict() for c in self.conflicts],
            "notes": list(self.notes),
            "resolver": self.resolver.to_dict() if self.resolver else None,
        }


@dataclass
class RequirementsOptions:
    """How to run :func:`check_requirements` (flags of ``check requirements``)."""

    constraints_file: Path | None = None
    python_version: str | None = None
    offline: bool = False
    resolver: str = "auto"  # auto | uv | pip | none
    find_links: Path | None = None
    cache_dir: Path | None = None
    fetch: Fetcher | None = None
    extra_notes: list[str] = field(default_factory=list)


def check_requirements(
    requirements_file: Path,
    airflow_version: str,
    options: RequirementsOptions | None = None,
    *,
    display: str | None = None,
) -> RequirementsCheck:
    """Check ``requirements_file`` against ``airflow_version``'s constraints (see the module doc).

    Raises :class:`ConstraintsUnavailableError` when no constraints file can be had, UsageError for
    an unreadable requirements file or an unknown version."""
    options = options or RequirementsOptions()
    python_version = options.python_version or python_for(airflow_version)
    lines = parse_requirements_file(requirements_file, display)
    source = obtain_constraints(
        airflow_version,
        python_version,
        constraints_file=options.constraints_file,
        offline=options.offline,
        cache_dir=options.cache_dir,
        fetch=options.fetch,
    )
    try:
        constraints_text = source.path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConstraintsUnavailableError(f"cannot read the constraints file {source.path}: {exc}") from None
    pins = parse_constraints(constraints_text, python_version)
    conflicts, notes = static_conflicts(lines, pins, airflow_version, python_version)
    resolver = run_resolver(
        lines,
        source.path,
        python_version,
        tool=options.resolver,
        find_links=options.find_links,
        offline=options.offline,
    )
    if resolver.ok is False:
        statically = {canonicalize_name(c.package) for c in conflicts}
        for name in resolver.packages:
            if name not in statically and name in {
                canonicalize_name(i.requirement.name) for i in lines if i.requirement is not None
            }:
                conflicts.append(
                    Conflict(name, name, None, pins.get(name), "the resolver found no solution", "resolver")
                )
    count = sum(1 for item in lines if item.kind in ("requirement", "url"))
    return RequirementsCheck(
        airflow_version,
        python_version,
        display or requirements_file.name,
        source,
        count,
        tuple(conflicts),
        tuple([*options.extra_notes, *notes]),
        resolver,
    )
