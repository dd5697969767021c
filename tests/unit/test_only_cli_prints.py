"""Only `mwaa_iac/cli/` prints: every other module returns data (or renderables) for the CLI to show.
Like tests/unit/test_core_is_pure.py, this reads the source (AST), so code inside strings (scripts
run by another interpreter) is not seen; those are named below anyway, with the reason."""

from __future__ import annotations

import ast
from pathlib import Path

import mwaa_iac

PACKAGE = Path(mwaa_iac.__file__).parent

EXEMPT_FOLDERS = {
    "cli/": "the command line: the one place that prints and picks exit codes",
    "dr_runtime/": "runs inside Airflow on MWAA (a DAG's task), not in the mwaa-iac process",
}
STRING_SCRIPTS = {
    # Programs kept as strings and run by another interpreter: they print to report to the parent,
    # and the AST scan does not look into strings, so they need no exemption (a print outside
    # the strings in these files is still caught).
    "adapters/airflow_venvs.py": "a one-line program (python -c) reporting another interpreter's executable",
}
ALLOWED = {
    # path -> (what is allowed, why)
    "local/emulator/__main__.py": (
        "sys.stderr",
        "the MWAA emulator's own server process (python -m mwaa_iac.local.emulator) logs to its stderr",
    ),
}


def _offences(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append((node.lineno, "print("))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("print", "echo", "secho", "log"):
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                if node.func.attr != "log" or "console" in name:
                    found.append((node.lineno, f"{name}.{node.func.attr}("))
        elif isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr"):
            if isinstance(node.value, ast.Name) and node.value.id == "sys":
                found.append((node.lineno, f"sys.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rich"):
            if any(alias.name == "Console" for alias in node.names):
                found.append((node.lineno, "rich Console"))
        elif isinstance(node, ast.Import) and any(a.name == "rich.console" for a in node.names):
            found.append((node.lineno, "import rich.console"))
    return found


def test_no_module_outside_cli_prints() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(tuple(EXEMPT_FOLDERS)):
            continue
        allowed = ALLOWED.get(rel, ("", ""))[0]
        for line, what in _offences(ast.parse(path.read_text("utf-8"))):
            if allowed and what.startswith(allowed):
                continue
            offenders.append(f"mwaa_iac/{rel}:{line}: {what}")
    assert offenders == [], "print only in mwaa_iac/cli/:\n" + "\n".join(offenders)


def test_the_scan_sees_prints() -> None:
    source = (
        "import sys\nfrom rich.console import Console\nprint(1)\nconsole.print(2)\nsys.stdout.write('x')\n"
    )
    found = sorted(what for _, what in _offences(ast.parse(source)))
    assert found == sorted(["rich Console", "print(", "console.print(", "sys.stdout"])
    assert _offences(ast.parse("SCRIPT = 'print(1)'\n")) == []


def test_the_named_files_exist() -> None:
    for rel in [*ALLOWED, *STRING_SCRIPTS]:
        assert (PACKAGE / rel).is_file(), rel
    for rel in STRING_SCRIPTS:
        assert "print(" in (PACKAGE / rel).read_text("utf-8"), f"{rel}: no script left; drop it from the list"
