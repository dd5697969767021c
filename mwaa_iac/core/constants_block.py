"""Files that run inside Airflow are real Python that ruff lints; what varies per upload (DAG ids,
markers, sizes) is a block of ``NAME = <literal>`` lines between two sentinel comments, filled in
here with ``repr`` of each value. Nothing else of the file is touched: no ``str.format`` over code."""

from __future__ import annotations

from collections.abc import Mapping

BEGIN = "# -- mwaa-iac: constants (filled in when the file is uploaded) --"
END = "# -- mwaa-iac: end of constants --"


def names(text: str) -> list[str]:
    """The constants ``text``'s block defines, in order (ValueError when it has no block)."""
    start, stop = _block(text.split("\n"))
    return [n for n in (_name(line) for line in text.split("\n")[start + 1 : stop]) if n]


def fill(text: str, values: Mapping[str, object]) -> str:
    """``text`` with each ``NAME = ...`` line of its block set to ``NAME = repr(values[NAME])``. Every
    constant must get a value and every value a constant (ValueError otherwise)."""
    lines = text.split("\n")
    start, stop = _block(lines)
    seen = set()
    for i in range(start + 1, stop):
        name = _name(lines[i])
        if name is None:
            continue
        if name not in values:
            raise ValueError(f"no value for the constant {name}")
        value = values[name]
        if not isinstance(value, (str, int, float, bool, tuple, type(None))):
            raise ValueError(f"the constant {name} takes a literal, not {type(value).__name__}")
        lines[i] = f"{name} = {value!r}"
        seen.add(name)
    unused = sorted(set(values) - seen)
    if unused:
        raise ValueError(f"no constant for {', '.join(unused)}")
    return "\n".join(lines)


def _block(lines: list[str]) -> tuple[int, int]:
    try:
        return lines.index(BEGIN), lines.index(END)
    except ValueError:
        raise ValueError("the file has no constants block") from None


def _name(line: str) -> str | None:
    name, sep, _ = line.partition(" = ")
    return name if sep and name.isidentifier() else None
