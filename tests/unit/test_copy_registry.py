"""The "Not copied" table of docs/limits.md is the copy module's table registry (TABLES), rendered."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_copy_module_pure import ROOT, copy

START = "<!-- not-copied:start"
END = "<!-- not-copied:end -->"


def test_the_docs_list_exactly_the_tables_the_registry_does_not_copy() -> None:
    text = (Path(ROOT) / "docs" / "limits.md").read_text("utf-8")
    assert START in text and END in text
    block = text[text.index("\n", text.index(START)) + 1 : text.index(END)].rstrip("\n").splitlines()
    expected = copy.not_copied_markdown()
    assert block == expected, "docs/limits.md's Not copied table is stale; it should read:\n" + "\n".join(
        expected
    )
