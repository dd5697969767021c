"""`check dags --import`: the host side of the import check (the error's line, the short error, which
warnings are reported) and the import script against stand-ins for the DagBag of Airflow 3.3 (moved
to ``airflow.dag_processing.dagbag``, no ``include_examples``, relative import error keys, warnings
re-emitted as ``UserWarning``) and of Airflow 2.9 (``airflow.models.dagbag``, no captured warnings),
so the plumbing is covered without installing Airflow. tests/local/test_dags_import_airflow3.py runs the
real thing against Airflow 3.3.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mwaa_iac.checks.dags import (
    DagCheck,
    DagImport,
    DagImportWarning,
    check_dags,
    deprecation_warnings,
    error_line,
    import_dags,
    short_error,
)

# What Airflow 3.3.1 stores for `from airflow.datasets import Dataset` on line 6 of a DAG file.
TRACEBACK_33 = """Traceback (most recent call last):
  File "/venv/site-packages/airflow/dag_processing/importers/python_importer.py", line 238, in parse
    loader.exec_module(new_module)
  File "<frozen importlib._bootstrap_external>", line 994, in exec_module
  File "<frozen importlib._bootstrap>", line 488, in _call_with_frames_removed
  File "/dags/datasets_dag.py", line 6, in <module>
    from airflow.datasets import Dataset
ModuleNotFoundError: No module named 'airflow.datasets'
"""

# An error raised in a helper module, called from a function of the DAG file.
TRACEBACK_HELPER = """Traceback (most recent call last):
  File "/dags/etl.py", line 12, in <module>
    dag = build()
  File "/dags/etl.py", line 7, in build
    return helpers.bucket()
  File "/dags/helpers.py", line 4, in bucket
    raise ValueError("no bucket")
ValueError: no bucket
"""

SYNTAX_ERROR = """  File "/dags/typo.py", line 7
    with DAG(
         ^
SyntaxError: '(' was never closed
"""


def test_short_error_is_the_last_line() -> None:
    assert short_error(TRACEBACK_33) == "ModuleNotFoundError: No module named 'airflow.datasets'"
    assert short_error(SYNTAX_ERROR) == "SyntaxError: '(' was never closed"
    assert short_error("TypeError: DAG.__init__() got an unexpected keyword argument 'x'") == (
        "TypeError: DAG.__init__() got an unexpected keyword argument 'x'"
    )


def test_error_line_is_the_last_frame_in_the_dag_file() -> None:
    assert error_line(TRACEBACK_33, "/dags/datasets_dag.py") == 6
    assert error_line(TRACEBACK_HELPER, "/dags/etl.py") == 7  # the deepest line of the file, not 12 or 4
    assert error_line(TRACEBACK_HELPER, "/dags/helpers.py") == 4
    assert error_line(SYNTAX_ERROR, "/dags/typo.py") == 7
    assert error_line(TRACEBACK_33, "/dags/other.py") is None
    assert error_line("AirflowDagCycleException: Cycle detected in DAG: x", "/dags/x.py") is None


def test_only_deprecations_that_point_into_the_dag_folder_are_kept(tmp_path: Path) -> None:
    raw = [
        {
            "file": str(tmp_path / "sub" / "etl.py"),
            "line": 8,
            "category": "airflow.utils.deprecation_tools.DeprecatedImportWarning",
            "message": "The `airflow.operators.python.PythonOperator` attribute is deprecated. ",
            "deprecation": True,
        },
        {  # Airflow 3.0's common-compat provider warning about itself on first import
            "file": "/venv/site-packages/airflow/providers/common/compat/_compat_utils.py",
            "line": 95,
            "category": "DeprecationWarning",
            "message": "The `airflow.operators.branch.BaseBranchOperator` class is deprecated.",
            "deprecation": True,
        },
        {  # not a deprecation
            "file": str(tmp_path / "sub" / "etl.py"),
            "line": 9,
            "category": "UserWarning",
            "message": "something else",
            "deprecation": False,
        },
    ]
    kept = deprecation_warnings(raw, tmp_path)
    assert kept == (
        DagImportWarning(
            "sub/etl.py",
            8,
            "airflow.utils.deprecation_tools.DeprecatedImportWarning",
            "The `airflow.operators.python.PythonOperator` attribute is deprecated.",
        ),
    )
    assert kept[0].where == "sub/etl.py:8" and kept[0].category_name == "DeprecatedImportWarning"


def test_deprecation_warnings_do_not_fail_the_check() -> None:
    warning = DagImportWarning("a.py", 3, "DeprecationWarning", "old")
    imports = (
        DagImport("a.py", True, dag_ids=("a",), warnings=(warning,)),
        DagImport("b.py", True, dag_ids=("b",)),
    )
    check = DagCheck("3.3.1", "dags", 2, imports=imports)
    assert check.ok and check.status == "passed"
    assert check.import_warnings == [imports[0]]
    assert check.summary().endswith("0 of 2 file(s) failed to import, 1 imported with deprecation warnings")
    assert check.to_dict()["imports"][0] == {
        "file": "a.py",
        "ok": True,
        "error": None,
        "line": None,
        "dag_ids": ["a"],
        "warnings": [{"file": "a.py", "line": 3, "category": "DeprecationWarning", "message": "old"}],
    }

    broken = DagImport("c.py", False, error="TypeError: x", line=9)
    failed = DagCheck("3.3.1", "dags", 3, imports=(*imports, broken))
    assert not failed.ok and failed.status == "failed"
    assert broken.where == "c.py:9" and DagImport("d.py", False, error="E").where == "d.py"
    assert "1 of 3 file(s) failed to import, 1 imported with deprecation warnings" in failed.summary()


# --------------------------------------------------------------------------------------------------
# The import script against stand-in DagBags
# --------------------------------------------------------------------------------------------------

# Airflow 3.3: import errors keyed by the path relative to the bundle (or as given), warnings stored
# as "file:line: category: message" and re-emitted as UserWarning, no include_examples.
_DAGBAG_33 = """
import os, runpy, traceback, warnings


def qualified(cls):
    return cls.__name__ if cls.__module__ == "builtins" else cls.__module__ + "." + cls.__name__


class DagBag:
    def __init__(self, dag_folder=None, collect_dags=True, bundle_path=None, bundle_name=None):
        self.dag_folder = dag_folder
        self.import_errors = {}
        self.captured_warnings = {}

    def process_file(self, filepath, only_if_updated=True, safe_mode=True):
        key = os.path.relpath(filepath, self.dag_folder)
        with warnings.catch_warnings(record=True) as caught:
            try:
                namespace = runpy.run_path(filepath)
            except Exception:
                self.import_errors[key] = traceback.format_exc()
                return []
        if caught:
            self.captured_warnings[filepath] = tuple(
                "%s:%s: %s: %s" % (w.filename, w.lineno, qualified(w.category), w.message) for w in caught
            )
            for w in caught:
                warnings.warn_explicit(str(w.message), UserWarning, w.filename, w.lineno)
        return [v for v in namespace.values() if hasattr(v, "dag_id") and not isinstance(v, type)]
"""

# Airflow 2.9: airflow.models.dagbag, include_examples, errors keyed by the absolute path, warnings
# left to propagate (no captured_warnings).
_DAGBAG_29 = """
import runpy, traceback


class DagBag:
    def __init__(self, dag_folder=None, include_examples=True, collect_dags=True, **kwargs):
        assert include_examples is False
        self.import_errors = {}

    def process_file(self, filepath, only_if_updated=True, safe_mode=True):
        try:
            namespace = runpy.run_path(filepath)
        except Exception:
            self.import_errors[filepath] = traceback.format_exc()
            return []
        return [v for v in namespace.values() if hasattr(v, "dag_id") and not isinstance(v, type)]
"""

# A deprecation shim like Airflow 3's (a FutureWarning subclass, pointing at the caller), and one
# warning Airflow raises about itself (pointing into "site-packages").
_SHIM = """
import warnings


class DeprecatedImportWarning(FutureWarning):
    pass


def old_operator():
    warnings.warn("old_operator is deprecated, use new_operator", DeprecatedImportWarning, stacklevel=2)


def internal():
    warnings.warn("airflow warns about itself", DeprecationWarning, stacklevel=1)
"""

_GOOD = "class Dag:\n    dag_id = 'good'\n\n\ngood = Dag()\n"
_DEPRECATED = """from airflow.shim import internal, old_operator


class Dag:
    dag_id = "deprecated"


internal()
old_operator()
dag = Dag()
"""
_BROKEN = """import helpers


def build():
    return helpers.fail()


dag = build()
"""
_HELPERS = "def fail():\n    raise ValueError('no bucket configured')\n"


def _fake_python(tmp_path: Path, layout: str) -> Path:
    """A "venv python": this interpreter with a stand-in ``airflow`` package first on sys.path."""
    stub = tmp_path / "stub"
    airflow = stub / "airflow"
    module = ("dag_processing", _DAGBAG_33) if layout == "3.3" else ("models", _DAGBAG_29)
    (airflow / module[0]).mkdir(parents=True)
    (airflow / "__init__.py").write_text("", "utf-8")
    (airflow / module[0] / "__init__.py").write_text("", "utf-8")
    (airflow / module[0] / "dagbag.py").write_text(module[1], "utf-8")
    (airflow / "shim.py").write_text(_SHIM, "utf-8")
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{stub}:$PYTHONPATH" exec "{sys.executable}" "$@"\n', "utf-8")
    python.chmod(0o755)
    return python


def _dag_folder(tmp_path: Path) -> tuple[Path, list[Path]]:
    dags = tmp_path / "dags"
    dags.mkdir()
    for name, text in {
        "broken.py": _BROKEN,
        "deprecated.py": _DEPRECATED,
        "good.py": _GOOD,
        "helpers.py": _HELPERS,
    }.items():
        (dags / name).write_text(text, "utf-8")
    return dags, sorted(dags.glob("*.py"))


@pytest.mark.parametrize("layout", ["3.3", "2.9"])
def test_import_script_reports_errors_lines_and_deprecations(tmp_path: Path, layout: str) -> None:
    python = _fake_python(tmp_path, layout)
    dags, files = _dag_folder(tmp_path)
    results, skipped = import_dags(dags, files, python)
    assert skipped is None and results is not None
    by_file = {item.file: item for item in results}
    broken = by_file["broken.py"]
    assert not broken.ok and broken.line == 5  # `return helpers.fail()`: this file's line, not the helper's
    assert broken.error == "ValueError: no bucket configured"
    assert by_file["good.py"] == DagImport("good.py", True, dag_ids=("good",))
    assert by_file["helpers.py"] == DagImport("helpers.py", True)
    deprecated = by_file["deprecated.py"]
    assert deprecated.ok and deprecated.dag_ids == ("deprecated",)
    # Once, with its own class (not the UserWarning 3.3 re-emits); the stub's warning about itself
    # points outside the DAG folder and is dropped.
    assert deprecated.warnings == (
        DagImportWarning(
            "deprecated.py",
            9,
            "airflow.shim.DeprecatedImportWarning",
            "old_operator is deprecated, use new_operator",
        ),
    )


def test_import_script_without_airflow_says_so(tmp_path: Path) -> None:
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', "utf-8")
    python.chmod(0o755)
    dags, files = _dag_folder(tmp_path)
    results, skipped = import_dags(dags, files, python)
    assert results is None and skipped is not None and skipped.startswith("cannot import Airflow:")


def test_import_script_that_dies_reports_the_end_of_its_output(tmp_path: Path) -> None:
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho 'Fatal Python error: boom' >&2\nexit 3\n", "utf-8")
    python.chmod(0o755)
    dags, files = _dag_folder(tmp_path)
    results, skipped = import_dags(dags, files, python)
    assert results is None
    assert skipped == "the import check did not finish (exit 3): Fatal Python error: boom"


def test_2x_targets_do_not_report_deprecation_warnings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Like the AIR3xx rules: Airflow 2's warnings about Airflow 3 are not reported for 2.x targets."""
    pytest.importorskip("mwaa_iac.adapters.airflow_venvs")
    python = _fake_python(tmp_path, "2.9")
    venv = tmp_path / "cache" / "2.10.3-py3.11"
    (venv / "bin").mkdir(parents=True)
    (venv / ".mwaa-iac-complete").write_text("airflow 2.10.3\n", "utf-8")
    (venv / "bin" / "python").symlink_to(python)
    monkeypatch.setenv("MWAA_IAC_VENV_CACHE", str(tmp_path / "cache"))
    dags, _ = _dag_folder(tmp_path)
    result = check_dags(dags, "2.10.3", import_files=True)
    assert result.import_skipped is None, result.import_skipped
    by_file = {item.file: item for item in result.imports or ()}
    assert by_file["deprecated.py"].ok and by_file["deprecated.py"].warnings == ()
    assert result.import_warnings == []
    assert [i.file for i in result.import_errors] == ["broken.py"]
    assert "deprecation" not in result.summary()


def test_the_import_script_is_a_module_that_runs_nothing_when_imported() -> None:
    """The script ships as a file (linted like all code) and importing it starts nothing."""
    import importlib

    from mwaa_iac.checks import dags

    module = importlib.import_module("mwaa_iac.checks.airflow_scripts.import_dags")
    assert Path(module.__file__ or "") == dags.IMPORT_SCRIPT
    assert dags.IMPORT_SCRIPT.is_file()
    assert 'if __name__ == "__main__":' in dags.IMPORT_SCRIPT.read_text("utf-8")
    assert module.RESULT_MARK == dags.RESULT_MARK


def test_the_import_script_takes_its_folder_and_files_from_argv(tmp_path: Path) -> None:
    """Run by path too (not only through ``-c``), it reads the folder and the files from argv."""
    import json
    import subprocess

    from mwaa_iac.checks.dags import IMPORT_SCRIPT, RESULT_MARK

    python = _fake_python(tmp_path, "3.3")
    dags, _ = _dag_folder(tmp_path)
    good = str(dags / "good.py")
    proc = subprocess.run(
        [str(python), str(IMPORT_SCRIPT), str(dags), good],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    lines = [line for line in proc.stdout.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith(RESULT_MARK)
    payload = json.loads(lines[0][len(RESULT_MARK) :])
    assert payload == {"results": [{"file": good, "ok": True, "dag_ids": ["good"], "warnings": []}]}
