"""A cache of virtual environments, one per Apache Airflow version, for the local runtime and the DAG
import check (``checks/dags.py``); below both, so neither reaches up the layers for it.

``ensure_venv("2.10.3")`` returns a :class:`Venv` with what MWAA's image has for that version and
nothing more, building it on first use: ``apache-airflow[postgres]`` (psycopg2) and the Amazon
provider, under Airflow's constraints for the version (MWAA builds its image from them and installs
the Amazon provider; see docs/local-stack.md). Anything else, mwaa-dr included, reaches an
environment only through its requirements.txt (installed at create/update, see
``local/runtime/airflow.py``), as on MWAA:

* where: ``$MWAA_IAC_VENV_CACHE`` or ``~/.cache/mwaa-iac/venvs``, in ``<version>-py<X.Y>``;
* how: with ``uv`` when it is on PATH (seconds, thanks to its package cache), else ``python -m venv``
  and pip;
* which Python: the one MWAA uses for that version (the catalog's ``python``: 3.10 for 2.4.3-2.6.3,
  3.11 for 2.7-2.10, 3.12 for 2.11 and 3.x), found on PATH, under pyenv, in the usual prefixes, among
  uv's managed Pythons or at ``$MWAA_IAC_PYTHON_3_12`` (and so on), and never another: pip resolves
  other packages for another Python (wheels, markers, constraints files are per Python), so a venv on
  another would not be the image MWAA runs. Without it the build stops, naming the interpreter and how
  to install it;
* pins: Airflow's official constraints file when it can be downloaded, else a constraints file kept in
  ``mwaa_iac/local/runtime/constraints/`` (package data: a ``pip freeze`` of an environment verified
  to migrate a database, serve the REST API and run a DAG), else a short list of pins that no 2.x
  release may go without; a 3.x release without either resolves with uv's ``--exclude-newer`` set to
  the day MWAA made the version available (the catalog's ``available``): the packages of that time, as
  Airflow's constraints pin them (resolving 3.0.6 against today's packages gives a PyJWT whose
  tokens its API server cannot issue);
* atomically: built in a temporary directory renamed into place on success, under a lock file so two
  processes never build the same venv. The venv is relocatable because everything runs it as
  ``<venv>/bin/python -m ...``.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mwaa_iac.core.airflow_env import constraints_url, python_for, venv_cache_dir
from mwaa_iac.core.catalog import major_minor, parse_version

log = logging.getLogger(__name__)

# MWAA installs the Amazon provider (it brings boto3) in every image.
AMAZON_PROVIDER_REQUIREMENT = "apache-airflow-providers-amazon"
# Package data kept with the local runtime (pyproject's package-data lists it there); read only.
CONSTRAINTS_DIR = Path(__file__).resolve().parent.parent / "local" / "runtime" / "constraints"
COMPLETE_MARKER = ".mwaa-iac-complete"
# Importing the web app (2.x) or the API server (3.x) and the executor catches most broken sets early.
SMOKE_IMPORTS = {
    2: "import airflow.www.app, airflow.executors.local_executor, airflow.providers.amazon, psycopg2, boto3",
    3: "import airflow.api_fastapi.app, airflow.executors.local_executor, airflow.sdk, "
    "airflow.providers.amazon, airflow.providers.standard, psycopg2, boto3",
}
SUPPORTED_MAJORS = (2, 3)
# Part of the cache key: a venv built from another package recipe (e.g. an earlier release that
# preinstalled mwaa-dr) is never reused.
RECIPE = "mwaa-image-1"
FREEZE_FILE = "mwaa-iac-freeze.txt"
# Without any constraints file, Airflow's own bounds suffice for 2.9 and later (2.9.2, 2.10.x and 2.11.x
# resolve to working sets); older releases predate bounds they turned out to need.
FALLBACK_PINS = ["sqlalchemy<2"]


def resolution_cutoff(airflow_version: str) -> str | None:
    """``--exclude-newer`` for a 3.x version with no constraints file: the day MWAA offered it."""
    from mwaa_iac.core.catalog import load_catalog

    if major_minor(airflow_version) < (3, 0):
        return None
    item = load_catalog().get(airflow_version)
    return item.available.isoformat() if item is not None else None


def fallback_pins(airflow_version: str) -> list[str]:
    """Pins for a version with no constraints file (3.x: none, its own bounds hold)."""
    series = major_minor(airflow_version)
    if series >= (3, 0):
        return []
    pins = list(FALLBACK_PINS)
    if series < (2, 9):
        pins += ["flask-session<0.6", "connexion<3", "marshmallow<4"]
    if series < (2, 8):
        pins += ["pendulum<3"]
    return pins


class VenvBuildError(Exception):
    """A virtualenv for an Airflow version could not be built."""


@dataclass(frozen=True)
class Venv:
    """A finished virtualenv for one Airflow version."""

    path: Path
    airflow_version: str
    python_version: str  # "3.11"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def bin_dir(self) -> Path:
        return self.path / "bin"

    @property
    def freeze_file(self) -> Path:
        """``name==version`` of everything installed: the constraints for requirements installs."""
        return self.path / FREEZE_FILE


def default_cache_dir() -> Path:
    """``$MWAA_IAC_VENV_CACHE``, else ``~/.cache/mwaa-iac/venvs`` (``$XDG_CACHE_HOME`` respected)."""
    return venv_cache_dir()


def _probe_python(executable: str) -> tuple[str, str] | None:
    """``(real executable path, "X.Y")`` if ``executable`` runs, else None (pyenv shims may not)."""
    try:
        out = subprocess.run(
            [
                executable,
                "-c",
                "import sys; print(getattr(sys, '_base_executable', sys.executable));"
                "print('%d.%d' % sys.version_info[:2])",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0].strip(), out[1].strip()


def python_override_var(version: str) -> str:
    """The variable that names an interpreter for Python ``version``: ``MWAA_IAC_PYTHON_3_10``."""
    return "MWAA_IAC_PYTHON_" + version.replace(".", "_")


def _python_candidates(version: str) -> Iterator[str]:
    configured = os.environ.get(python_override_var(version))
    if configured:
        yield configured
    found = shutil.which(f"python{version}")
    if found:
        yield found
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    yield from sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    for prefix in ("/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"):
        yield f"{prefix}/python{version}"
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        yield sys.executable
    managed = _uv_python(version)
    if managed:
        yield managed


def _uv_python(version: str) -> str | None:
    """A Python ``version`` that uv installed (``uv python install``), never downloading one."""
    uv = find_uv()
    if not uv:
        return None
    try:
        out = subprocess.run(
            [uv, "python", "find", "--no-project", version],
            capture_output=True,
            text=True,
            env=installer_env(),
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    path = out.stdout.strip()
    return path if out.returncode == 0 and path else None


def find_python(airflow_version: str) -> tuple[str, str]:
    """``(interpreter path, "X.Y")``: the Python MWAA runs ``airflow_version`` on (the catalog's;
    for a version it does not know, its neighbours'), and no other. Raises VenvBuildError naming the
    interpreter and how to install it when this machine does not have it."""
    wanted = python_for(airflow_version, guess=True)
    for candidate in _python_candidates(wanted):
        probed = _probe_python(candidate)
        if probed and probed[1] == wanted:
            return probed
    variable = python_override_var(wanted)
    raise VenvBuildError(
        f"Airflow {airflow_version} runs on Python {wanted} on MWAA, and the local stack builds it on "
        f"that Python only (on another, pip would install other packages than MWAA's image has); no "
        f"Python {wanted} was found (python{wanted} on PATH, pyenv's versions, /usr/local/bin, /usr/bin, "
        f"/opt/homebrew/bin, uv's managed Pythons, ${variable}). Install it with `uv python install "
        f"{wanted}`, `pyenv install {wanted}` or your system's python{wanted} package (with its venv "
        f"module), or set {variable} to its path"
    )


def find_uv() -> str | None:
    """``uv``: ``$MWAA_IAC_UV`` (``none`` forces pip), on PATH, beside the running interpreter (a
    venv that was not activated), or the ``uv`` package's own binary; None to fall back to pip."""
    configured = os.environ.get("MWAA_IAC_UV")
    if configured:
        return None if configured.lower() == "none" else configured
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    try:
        import uv

        return str(uv.find_uv_bin())
    except Exception:
        return None


def venv_key(airflow_version: str, python_version: str) -> str:
    return f"{airflow_version}-py{python_version}-{RECIPE}"


def bundled_constraints(airflow_version: str, python_version: str) -> Path | None:
    """The constraints file kept with this package for that version, if any."""
    for name in (f"airflow-{airflow_version}-py{python_version}.txt", f"airflow-{airflow_version}.txt"):
        candidate = CONSTRAINTS_DIR / name
        if candidate.is_file():
            return candidate
    return None


def fetch_official_constraints(airflow_version: str, python_version: str, dest: Path) -> bool:
    """Download Airflow's own constraints for that version; False (quickly) when unreachable."""
    url = constraints_url(airflow_version, python_version)
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            dest.write_bytes(response.read())
        return True
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        log.info(
            "Airflow's constraints for %s are not reachable (%s); using local pins", airflow_version, exc
        )
        return False


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise VenvBuildError(f"timed out waiting for the lock {path}") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def installer_env() -> dict[str, str]:
    """The environment for uv/pip: never download interpreters, no virtualenv of the caller's."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return env


def _run(cmd: list[str], log_file: Path, timeout: float) -> None:
    with open(log_file, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            proc = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=installer_env(), timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise VenvBuildError(f"{cmd[0]} timed out after {timeout:.0f}s (log: {log_file})") from exc
    if proc.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-25:])
        raise VenvBuildError(f"`{' '.join(cmd[:4])} ...` failed (exit {proc.returncode}):\n{tail}")


def pip_install_command(
    python: Path,
    requirements: list[str],
    *,
    constraints: list[Path],
    target: Path | None = None,
    requirements_file: Path | None = None,
    exclude_newer: str | None = None,
) -> list[str]:
    """An install command into the venv of ``python`` (or into ``target``): uv's when uv is on PATH
    (``exclude_newer``: only packages published before that day; pip has no such option)."""
    uv = find_uv()
    if uv:
        cmd = [uv, "pip", "install", "--python", str(python)]
        if exclude_newer:
            cmd += ["--exclude-newer", exclude_newer]
    else:
        if exclude_newer:
            log.warning(
                "pip cannot limit the resolution to packages published before %s (uv can): the "
                "newest packages are installed, which may not work with this Airflow version",
                exclude_newer,
            )
        cmd = [str(python), "-m", "pip", "install", "--no-input"]
    if target is not None:
        cmd += ["--target", str(target)]
    for constraint in constraints:
        cmd += ["--constraint", str(constraint)]
    if requirements_file is not None:
        cmd += ["--requirement", str(requirements_file)]
    return cmd + list(requirements)


def ensure_venv(airflow_version: str, cache_dir: Path | None = None, *, timeout: float = 1800.0) -> Venv:
    """The cached venv for ``airflow_version``, built now if missing (see the module docstring)."""
    try:
        major, _, _ = parse_version(airflow_version)
    except ValueError:
        raise VenvBuildError(f"{airflow_version!r} is not an Airflow version") from None
    if major not in SUPPORTED_MAJORS:
        raise VenvBuildError(f"the local runtime runs Airflow 2.x and 3.x only, not {airflow_version}")
    root = (cache_dir or default_cache_dir()).expanduser()
    python, python_version = find_python(airflow_version)
    key = venv_key(airflow_version, python_version)
    final = root / key
    venv = Venv(final, airflow_version, python_version)
    if (final / COMPLETE_MARKER).is_file():
        return venv
    with _file_lock(root / f".{key}.lock", timeout=timeout):
        if (final / COMPLETE_MARKER).is_file():  # another process built it meanwhile
            return venv
        _build(airflow_version, python, python_version, root, final, timeout=timeout)
    return venv


def _build(
    airflow_version: str, python: str, python_version: str, root: Path, final: Path, *, timeout: float
) -> None:
    started = time.monotonic()
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    build_log = root / f"{final.name}.build.log"
    build_log.write_text(f"building Airflow {airflow_version} on Python {python_version} ({python})\n")
    log.info("building the Airflow %s venv in %s (log: %s)", airflow_version, final, build_log)
    try:
        uv = find_uv()
        if uv:
            _run([uv, "venv", "--quiet", "--relocatable", "--python", python, str(tmp)], build_log, 300)
        else:
            _run([python, "-m", "venv", str(tmp)], build_log, 300)
        constraints: list[Path] = []
        official = tmp / "airflow-constraints.txt"
        pins: list[str] = []
        cutoff: str | None = None
        if fetch_official_constraints(airflow_version, python_version, official):
            constraints.append(official)
        elif (bundled := bundled_constraints(airflow_version, python_version)) is not None:
            constraints.append(bundled)
        else:
            pins = fallback_pins(airflow_version)
            cutoff = resolution_cutoff(airflow_version)
        requirements = [
            f"apache-airflow[postgres]=={airflow_version}",
            AMAZON_PROVIDER_REQUIREMENT,
            *pins,
        ]
        venv_python = tmp / "bin" / "python"
        command = pip_install_command(
            venv_python, requirements, constraints=constraints, exclude_newer=cutoff
        )
        _run(command, build_log, timeout)
        _run([str(venv_python), "-c", SMOKE_IMPORTS[parse_version(airflow_version)[0]]], build_log, 300)
        freeze = _freeze(venv_python)
        (tmp / FREEZE_FILE).write_text(freeze)
        (tmp / COMPLETE_MARKER).write_text(
            f"airflow {airflow_version}\npython {python_version}\n"
            f"freeze-sha256 {hashlib.sha256(freeze.encode()).hexdigest()}\n"
        )
        if final.exists():  # an incomplete leftover
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built the Airflow %s venv in %.0fs", airflow_version, time.monotonic() - started)


def _freeze(python: Path) -> str:
    uv = find_uv()
    cmd = [uv, "pip", "freeze", "--python", str(python)] if uv else [str(python), "-m", "pip", "freeze"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=installer_env(), check=True).stdout
    # Only name==version lines make valid constraints (no editable or URL installs here anyway).
    return "".join(line + "\n" for line in out.splitlines() if "==" in line and not line.startswith("-"))
