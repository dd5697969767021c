"""The house's layers: every import of mwaa-iac's own modules points down (or sideways within a
layer), never up, and there is no import circle between modules. Imports inside functions count:
a lazy import is still an arrow (docs/design.md §4)."""

from __future__ import annotations

import ast
from pathlib import Path

import mwaa_iac

PACKAGE = Path(mwaa_iac.__file__).parent

# Bottom first. A module may import from its own layer and the layers below it.
LAYERS: list[set[str]] = [
    {"errors", "events", "data"},
    {"core"},
    {"adapters", "workspace"},
    {"checks"},
    {"workflows"},
    {"report", "local"},
    {"cli"},
]
# Runs inside Airflow on its own: imports nothing of mwaa-iac.
ALONE = {"dr_runtime"}


def _top(module: str) -> str:
    return module.split(".")[1] if module.startswith("mwaa_iac.") else ""


def _layer(top: str) -> int:
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(
        f"mwaa_iac/{top} is in no layer of tests/unit/test_layers.py: add it where it belongs"
    )


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The mwaa_iac modules ``path`` imports (``from x import y``: ``x.y`` when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mwaa_iac"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mwaa_iac"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                as_path = PACKAGE.parent / candidate.replace(".", "/")
                found.add(
                    candidate if as_path.with_suffix(".py").exists() or as_path.is_dir() else node.module
                )
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_import_runs_back_up_a_layer() -> None:
    upward = []
    for module, imported in _graph().items():
        top = _top(module)
        if not top:
            continue
        for target in imported:
            other = _top(target)
            if not other or other == top:
                continue
            if top in ALONE:
                upward.append(f"{module} → {target} (mwaa_iac/{top} runs inside Airflow and imports nothing)")
            elif other in ALONE:
                continue
            elif _layer(other) > _layer(top):
                upward.append(f"{module} → {target}")
    assert not upward, "imports that run back up a layer:\n" + "\n".join(sorted(upward))


def test_no_import_circle_between_modules() -> None:
    graph = {m: {t for t in targets if t != m} for m, targets in _graph().items()}
    # A package's __init__ re-exporting its own modules is not a circle of the house.
    for module in graph:
        graph[module] = {
            t for t in graph[module] if not (module.startswith(f"{t}.") or t.startswith(f"{module}."))
        }
    seen: dict[str, int] = {}
    stack: list[str] = []
    circles: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if seen.get(nxt) == 1:
                circles.append(" → ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_no_module_in_workflows_is_over_450_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in (PACKAGE / "workflows").rglob("*.py")
        if (n := len(p.read_text("utf-8").splitlines())) > 450
    }
    assert not long, f"split these into rooms (docs/design.md §4): {long}"
