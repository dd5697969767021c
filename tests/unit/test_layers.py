"""Imports run down the layers only: the lower packages (``core/``, ``adapters/``, ``checks/``) never
import the ones above them (``local/``, ``workflows/``, ``cli/``). Like test_core_is_pure.py, this
reads the source (AST), so an import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import mwaa_iac

PACKAGE = Path(mwaa_iac.__file__).parent
LOWER = ("checks", "adapters", "core")
UPPER = ("mwaa_iac.local", "mwaa_iac.workflows", "mwaa_iac.cli")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement of ``tree`` names (``from x import y`` gives ``x`` and
    ``x.y``, since ``y`` may be a submodule)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _upward(tree: ast.AST) -> list[tuple[int, str]]:
    return [
        (line, name)
        for line, name in _imported(tree)
        if any(name == upper or name.startswith(upper + ".") for upper in UPPER)
    ]


def test_lower_layers_do_not_import_upper_ones() -> None:
    offenders = []
    for layer in LOWER:
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            for line, name in _upward(ast.parse(path.read_text("utf-8"))):
                offenders.append(f"{path.relative_to(PACKAGE.parent).as_posix()}:{line}: {name}")
    assert offenders == [], "imports running up the layers:\n" + "\n".join(offenders)


def test_the_scan_sees_upward_imports() -> None:
    source = (
        "import mwaa_iac.local.stack\n"
        "from mwaa_iac.workflows import cutover\n"
        "from mwaa_iac import cli\n"
        "def f():\n    from mwaa_iac.local.runtime import venvs\n"
        "import mwaa_iac.localish\n"
        "from mwaa_iac.core import catalog\n"
    )
    found = sorted(name for _, name in _upward(ast.parse(source)))
    assert found == sorted(
        [
            "mwaa_iac.local.stack",
            "mwaa_iac.workflows",
            "mwaa_iac.workflows.cutover",
            "mwaa_iac.cli",
            "mwaa_iac.local.runtime",
            "mwaa_iac.local.runtime.venvs",
        ]
    )


def test_the_layers_exist() -> None:
    for layer in LOWER:
        assert (PACKAGE / layer / "__init__.py").is_file(), layer
