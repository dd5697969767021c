"""Will the DAG files work on the target Airflow version?

Two checks:

* **lint** (Airflow 3 targets): ruff's Airflow 3 migration rules, selected with ``--select AIR3
  --preview`` (AIR301 removed names and arguments, AIR302 moved to a provider, AIR303 changed function
  signatures; AIR304 dynamic DAG arguments, AIR311/AIR312 deprecated but still working, AIR321 moved in
  3.1, reported only for 3.1+ targets). Run through the ``ruff`` executable with ``--isolated`` (the DAG
  repository's own ruff settings do not switch rules off) and JSON output; every finding comes back with
  file, line, rule, message and ruff's suggested fix. AIR301-AIR303 break on Airflow 3; the others are
  warnings.
* **import** (optional): import every DAG file with the target Airflow in an isolated virtualenv, like a
  DagBag check, and report import errors per file, with the line of the DAG file the error comes from.
  For Airflow 3 targets, the files that import but raise deprecation warnings (e.g. the
  ``airflow.operators.*`` shims of 3.x, ``DeprecatedImportWarning``) are listed with the warnings; they
  are not errors. It uses the cached Airflow virtualenvs the local stack uses too
  (:mod:`mwaa_iac.adapters.airflow_venvs`); when the venv is not available, the result says so instead
  of failing. No metadata
  database is needed: the DagBag only parses (a throwaway sqlite URL keeps Airflow's settings happy).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mwaa_iac.adapters import airflow_venvs
from mwaa_iac.checks.airflow_scripts import script_path
from mwaa_iac.checks.airflow_scripts.import_dags import RESULT_MARK
from mwaa_iac.core.catalog import parse_version
from mwaa_iac.errors import MwaaIacError, UsageError

RULE_SELECTOR = "AIR3"
BREAKING_RULES = frozenset({"AIR301", "AIR302", "AIR303"})
AIRFLOW_31_RULES = frozenset({"AIR321"})
RUFF_TIMEOUT = 300.0
IMPORT_TIMEOUT = 600.0
# Deep enough that an import error's traceback still shows the DAG file's frame (Airflow keeps 2).
IMPORT_TRACEBACK_DEPTH = 64


class DagCheckError(MwaaIacError):
    """The DAG check could not run (ruff missing or failing)."""


@dataclass(frozen=True)
class DagFinding:
    """One ruff finding: where, which rule, what, and ruff's suggested fix."""

    file: str  # relative to the DAG folder
    line: int
    column: int
    rule: str
    name: str
    message: str
    fix: str | None
    fix_applicability: str | None  # safe | unsafe | display-only, when ruff offers an automatic fix
    breaking: bool

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "name": self.name,
            "message": self.message,
            "fix": self.fix,
            "fix_applicability": self.fix_applicability,
            "breaking": self.breaking,
        }


@dataclass(frozen=True)
class DagImportWarning:
    """A deprecation warning raised while importing a DAG file (the file still imports)."""

    file: str  # where the warning points, relative to the DAG folder (the DAG file or a helper module)
    line: int | None
    category: str  # the warning class, qualified (airflow.utils.deprecation_tools.DeprecatedImportWarning)
    message: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def category_name(self) -> str:
        return self.category.rpartition(".")[2]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "category": self.category, "message": self.message}


@dataclass(frozen=True)
class DagImport:
    """Importing one DAG file with the target Airflow."""

    file: str
    ok: bool
    error: str | None = None  # the exception's last line ("ModuleNotFoundError: No module named ...")
    dag_ids: tuple[str, ...] = ()
    line: int | None = None  # the line of this file the import error comes from, when known
    warnings: tuple[DagImportWarning, ...] = ()  # deprecation warnings (Airflow 3 targets)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ok": self.ok,
            "error": self.error,
            "line": self.line,
            "dag_ids": list(self.dag_ids),
            "warnings": [w.to_dict() for w in self.warnings],
        }


@dataclass(frozen=True)
class DagCheck:
    airflow_version: str
    path: str
    files: int
    findings: tuple[DagFinding, ...] = ()
    lint_skipped: str | None = None
    ruff_version: str | None = None
    imports: tuple[DagImport, ...] | None = None
    import_skipped: str | None = None

    @property
    def breaking(self) -> list[DagFinding]:
        return [f for f in self.findings if f.breaking]

    @property
    def import_errors(self) -> list[DagImport]:
        return [i for i in self.imports or () if not i.ok]

    @property
    def import_warnings(self) -> list[DagImport]:
        """The files that import, with deprecation warnings (not a failure)."""
        return [i for i in self.imports or () if i.ok and i.warnings]

    @property
    def ok(self) -> bool:
        return not self.breaking and not self.import_errors

    @property
    def status(self) -> str:
        if not self.ok:
            return "failed"
        if self.lint_skipped and self.imports is None:
            return "skipped"
        return "passed"

    def summary(self) -> str:
        parts = []
        if self.lint_skipped:
            parts.append(self.lint_skipped)
        else:
            warnings = len(self.findings) - len(self.breaking)
            parts.append(
                f"{len(self.breaking)} breaking finding(s) and {warnings} warning(s) for Airflow "
                f"{self.airflow_version} in {self.files} file(s)"
            )
        if self.imports is not None:
            text = f"{len(self.import_errors)} of {len(self.imports)} file(s) failed to import"
            if self.import_warnings:
                text += f", {len(self.import_warnings)} imported with deprecation warnings"
            parts.append(text)
        elif self.import_skipped:
            parts.append(self.import_skipped)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "summary": self.summary(),
            "airflow_version": self.airflow_version,
            "path": self.path,
            "files": self.files,
            "ruff_version": self.ruff_version,
            "lint_skipped": self.lint_skipped,
            "findings": [f.to_dict() for f in self.findings],
            "imports": None if self.imports is None else [i.to_dict() for i in self.imports],
            "import_skipped": self.import_skipped,
        }


# --------------------------------------------------------------------------------------------------
# Lint with ruff
# --------------------------------------------------------------------------------------------------


def find_ruff() -> list[str] | None:
    """The ruff command: next to this Python (a venv's bin), else on PATH, else ``python -m ruff``."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("ruff")
    if found:
        return [found]
    import importlib.util

    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    return None


def _ruff_version(ruff: list[str]) -> str | None:
    try:
        out = subprocess.run([*ruff, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text.split()[-1] if text else None


def dag_files(dag_dir: Path) -> list[Path]:
    """The Python files under ``dag_dir`` (hidden directories and caches skipped), sorted."""
    files = []
    for path in sorted(dag_dir.rglob("*.py")):
        parts = path.relative_to(dag_dir).parts
        if any(p.startswith(".") or p == "__pycache__" for p in parts):
            continue
        files.append(path)
    return files


def lint_dags(
    dag_dir: Path, airflow_version: str, ruff: list[str] | None = None
) -> tuple[list[DagFinding], str]:
    """Run ruff's AIR3 rules over ``dag_dir``; returns (findings sorted by file/line, ruff version)."""
    ruff = ruff or find_ruff()
    if ruff is None:
        raise DagCheckError(
            "ruff is not installed, so the Airflow 3 rules (AIR3xx) cannot run",
            hint="install ruff (>= 0.13) into the same environment as mwaa-iac, or put it on PATH",
        )
    version = _ruff_version(ruff) or "unknown"
    cmd = [
        *ruff,
        "check",
        "--isolated",
        "--no-cache",
        "--preview",
        "--select",
        RULE_SELECTOR,
        "--output-format",
        "json",
        "--exit-zero",
        str(dag_dir),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUFF_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise DagCheckError(f"ruff timed out after {RUFF_TIMEOUT:.0f} s on {dag_dir}") from None
    except OSError as exc:
        raise DagCheckError(f"could not run ruff ({' '.join(ruff)}): {exc}") from None
    if proc.returncode != 0:
        raise DagCheckError(
            f"ruff {version} failed on {dag_dir}: {proc.stderr.strip() or proc.stdout.strip()}",
            hint="the AIR3xx rules need ruff >= 0.13 (with --preview for some); upgrade ruff",
        )
    try:
        raw = json.loads(proc.stdout or "[]")
    except ValueError:
        raise DagCheckError(f"ruff {version} printed something that is not JSON") from None
    target = parse_version(airflow_version)
    root = dag_dir.resolve()
    findings = []
    for item in raw:
        code = str(item.get("code") or "")
        if not code.startswith("AIR3"):
            continue
        if code in AIRFLOW_31_RULES and target < (3, 1, 0):
            continue
        fix = item.get("fix") or {}
        location = item.get("location") or {}
        findings.append(
            DagFinding(
                file=_relative(Path(item.get("filename", "")), root),
                line=int(location.get("row", 0)),
                column=int(location.get("column", 0)),
                rule=code,
                name=str(item.get("name") or ""),
                message=str(item.get("message") or "").rstrip(";").strip(),
                fix=fix.get("message") or None,
                fix_applicability=fix.get("applicability") if fix.get("edits") else None,
                breaking=code in BREAKING_RULES,
            )
        )
    findings.sort(key=lambda f: (f.file, f.line, f.column, f.rule))
    return findings, version


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.name


# --------------------------------------------------------------------------------------------------
# Import with the target Airflow
# --------------------------------------------------------------------------------------------------

# The import check runs in the target Airflow's virtualenv as a program of its own
# (airflow_scripts/import_dags.py, see its docstring), fed through ``-c`` so that the interpreter's
# sys.path starts with its working directory (a throwaway AIRFLOW_HOME), not with this package.
IMPORT_SCRIPT = script_path("import_dags")

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)', re.MULTILINE)


def short_error(text: str) -> str:
    """The last line of an import error (the exception and its message), without the traceback."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def error_line(text: str, path: str) -> int | None:
    """The line of ``path`` an import error's traceback ends in (its last frame in that file), if any."""
    line = None
    for match in _FRAME.finditer(text):
        if match["file"] == path:
            line = int(match["line"])
    return line


def deprecation_warnings(raw: list[dict[str, Any]], root: Path) -> tuple[DagImportWarning, ...]:
    """The deprecation warnings among the ones the import script recorded for a file, keeping those
    that point into the DAG folder: a shim's warning names the DAG line that uses it, while one that
    points into site-packages is Airflow or a provider warning about itself (3.0's common-compat
    provider warns about ``airflow.operators.branch`` when first imported), which no DAG change fixes."""
    found = []
    for item in raw:
        path = Path(str(item.get("file") or ""))
        if not item.get("deprecation") or not path.is_absolute() or not path.is_relative_to(root):
            continue
        line = item.get("line")
        found.append(
            DagImportWarning(
                file=path.relative_to(root).as_posix(),
                line=int(line) if line else None,
                category=str(item.get("category") or ""),
                message=str(item.get("message") or "").strip(),
            )
        )
    return tuple(found)


def find_target_python(airflow_version: str, *, build: bool = False) -> tuple[Path | None, str | None]:
    """(python of a cached virtualenv with ``airflow_version``, None) or (None, why not)."""
    try:
        root = airflow_venvs.default_cache_dir()
    except Exception as exc:  # never let locating the cache break a check
        return None, f"the Airflow virtualenv cache could not be located: {exc}"
    for candidate in sorted(root.glob(f"{airflow_version}-py*")):
        python = candidate / "bin" / "python"
        if (candidate / airflow_venvs.COMPLETE_MARKER).is_file() and python.exists():
            return python, None
    if build:
        try:
            venv = airflow_venvs.ensure_venv(airflow_version)
        except Exception as exc:
            return None, f"could not build a virtualenv for Airflow {airflow_version}: {exc}"
        return Path(venv.python), None
    return None, (
        f"no cached virtualenv with Airflow {airflow_version} in {root}; rerun with --build-venv to "
        "build it (needs the package index), or skip --import"
    )


def import_dags(
    dag_dir: Path, files: list[Path], python: Path, *, timeout: float = IMPORT_TIMEOUT
) -> tuple[list[DagImport] | None, str | None]:
    """Import ``files`` with the Airflow of ``python``; (results, None) or (None, why it did not run)."""
    root = dag_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="mwaa-iac-dags-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "VIRTUAL_ENV"}
        env.update(
            {
                "AIRFLOW_HOME": home,
                "AIRFLOW__CORE__DAGS_FOLDER": str(root),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "True",
                "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACK_DEPTH": str(IMPORT_TRACEBACK_DEPTH),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
                # MWAA puts the DAG folder on sys.path, so DAGs may import their helper modules.
                "PYTHONPATH": str(root),
            }
        )
        script = IMPORT_SCRIPT.read_text("utf-8")
        cmd = [str(python), "-c", script, str(root), *(str(f.resolve()) for f in files)]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=home, check=False
            )
        except subprocess.TimeoutExpired:
            return None, f"importing the DAG files timed out after {timeout:.0f} s"
        except OSError as exc:
            return None, f"could not run {python}: {exc}"
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(RESULT_MARK)), None)
    if line is None:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        return None, f"the import check did not finish (exit {proc.returncode}): {tail}"
    data = json.loads(line[len(RESULT_MARK) :])
    if "error" in data:
        return None, str(data["error"])
    results = []
    for item in data["results"]:
        error = item.get("error")
        results.append(
            DagImport(
                file=_relative(Path(item["file"]), root),
                ok=bool(item["ok"]),
                error=None if error is None else short_error(str(error)),
                dag_ids=tuple(item.get("dag_ids") or ()),
                line=None if error is None else error_line(str(error), item["file"]),
                warnings=deprecation_warnings(item.get("warnings") or [], root),
            )
        )
    return results, None


# --------------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------------


def check_dags(
    dag_dir: Path,
    airflow_version: str,
    *,
    import_files: bool = False,
    build_venv: bool = False,
    ruff: list[str] | None = None,
    display: str | None = None,
) -> DagCheck:
    """Lint (Airflow 3 targets) and optionally import the DAG files under ``dag_dir``."""
    if not dag_dir.is_dir():
        raise UsageError(f"DAG folder {dag_dir} does not exist", hint="pass --path DIR")
    try:
        major = parse_version(airflow_version)[0]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    files = dag_files(dag_dir)
    findings: list[DagFinding] = []
    lint_skipped = None
    ruff_version = None
    if major >= 3:
        findings, ruff_version = lint_dags(dag_dir, airflow_version, ruff)
    else:
        lint_skipped = (
            f"ruff's Airflow 3 rules (AIR3xx) not run: the target {airflow_version} is Airflow {major}.x"
        )
    imports: list[DagImport] | None = None
    import_skipped = None
    if import_files:
        python, import_skipped = find_target_python(airflow_version, build=build_venv)
        if python is not None:
            imports, import_skipped = import_dags(dag_dir, files, python)
        if imports is not None and major < 3:
            # Like the AIR3xx rules: Airflow 2's warnings about Airflow 3 are not reported for 2.x targets.
            imports = [replace(item, warnings=()) for item in imports]
    return DagCheck(
        airflow_version,
        display or str(dag_dir),
        len(files),
        tuple(findings),
        lint_skipped,
        ruff_version,
        None if imports is None else tuple(imports),
        import_skipped,
    )
