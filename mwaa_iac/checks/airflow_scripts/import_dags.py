"""Import DAG files like a DagBag, with the Airflow of the interpreter that runs this file.

Run by ``mwaa_iac.checks.dags.import_dags`` in the target Airflow's virtualenv (Python 3.10 and later,
Airflow 2.x or 3.x), never imported there: ``python import_dags.py DAG_FOLDER FILE...``. It prints one
line, ``RESULT_MARK`` followed by JSON, alone on its stdout: everything else written to stdout (Airflow 3
logs its import errors there, DAG files print) goes to stderr from the start.

The JSON is ``{"error": ...}`` when Airflow cannot be imported, else ``{"results": [...]}`` with one item
per file: ``{"file", "ok": false, "error"}`` (the error whole; the host keeps its last line and finds
the DAG file's line in the traceback) or ``{"file", "ok": true, "dag_ids", "warnings"}``, each warning
``{"file", "line", "category", "message", "deprecation"}``.

The DagBag moved to ``airflow.dag_processing.dagbag`` in Airflow 3.2 (``airflow.models.dagbag`` keeps a
deprecated alias) and lost ``include_examples`` in 3.3; ``process_file`` parses without the metadata
database. A file's warnings come from the DagBag's ``captured_warnings`` (``file:line: category:
message``, Airflow 2.10+; 3.2+ emits them again as UserWarning) or, before 2.10, from the warnings
recorded here, each with whether its class is a deprecation.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
import warnings
from typing import Any, NoReturn, TextIO

RESULT_MARK = "MWAA_IAC_IMPORT_RESULT "
_CAPTURED = re.compile(r"^(.*?):(\d+): ([\w.]+): (.*)$", re.S)
_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _report(out: TextIO, payload: dict[str, Any]) -> NoReturn:
    out.write(RESULT_MARK + json.dumps(payload) + "\n")
    out.flush()
    sys.exit(0)


def _qualified(cls: type) -> str:
    module = getattr(cls, "__module__", "builtins")
    return cls.__name__ if module == "builtins" else f"{module}.{cls.__name__}"


def _is_deprecation(category: str) -> bool:
    module, _, name = category.rpartition(".")
    cls = getattr(sys.modules.get(module or "builtins"), name, None)
    return isinstance(cls, type) and issubclass(cls, _DEPRECATIONS)


def _load_dagbag_class() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2.x to 3.1
    return DagBag


def _file_warnings(bag: Any, path: str, caught: list[warnings.WarningMessage]) -> list[dict[str, Any]]:
    found: list[tuple[str, int, str, str]] = []
    captured = getattr(bag, "captured_warnings", None)
    if isinstance(captured, dict):
        for text in captured.get(path, ()):
            match = _CAPTURED.match(str(text))
            if match:
                found.append((match.group(1), int(match.group(2)), match.group(3), match.group(4)))
    else:
        found = [(w.filename, w.lineno, _qualified(w.category), str(w.message)) for w in caught]
    unique = list(dict.fromkeys(found))
    return [
        {"file": f, "line": n, "category": c, "message": m, "deprecation": _is_deprecation(c)}
        for f, n, c, m in unique
    ]


def _import_one(bag: Any, path: str) -> dict[str, Any]:
    bag.import_errors.clear()  # keyed by the absolute or (3.2+) the relative path: take what this file adds
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            found = bag.process_file(path, only_if_updated=False, safe_mode=False) or []
        except Exception as exc:
            return {"file": path, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    errors = [str(e) for e in bag.import_errors.values()]
    if errors:
        return {"file": path, "ok": False, "error": errors[-1]}
    return {
        "file": path,
        "ok": True,
        "dag_ids": sorted({d.dag_id for d in found}),
        "warnings": _file_warnings(bag, path, caught),
    }


def main(argv: list[str]) -> NoReturn:
    """``argv``: the DAG folder, then the files to import."""
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    dag_dir, paths = argv[0], argv[1:]
    try:
        dagbag_class = _load_dagbag_class()
    except Exception as exc:
        _report(result, {"error": f"cannot import Airflow: {exc}"})
    kwargs: dict[str, Any] = {"dag_folder": dag_dir, "collect_dags": False}
    if "include_examples" in inspect.signature(dagbag_class.__init__).parameters:
        kwargs["include_examples"] = False
    bag = dagbag_class(**kwargs)
    _report(result, {"results": [_import_one(bag, path) for path in paths]})


if __name__ == "__main__":
    main(sys.argv[1:])
