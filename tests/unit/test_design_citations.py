"""Every ``docs/<file>.md §N`` that the code cites exists in the repository, with that section."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"(docs/[\w./-]+\.md) §(\d+)(?:-(\d+))?")


def test_cited_design_sections_exist() -> None:
    missing = []
    cited = 0
    for path in sorted((REPO / "mwaa_iac").rglob("*.py")):
        for match in CITATION.finditer(path.read_text("utf-8")):
            cited += 1
            doc = REPO / match.group(1)
            text = doc.read_text("utf-8") if doc.is_file() else ""
            first, last = int(match.group(2)), int(match.group(3) or match.group(2))
            for number in range(first, last + 1):
                if not re.search(rf"^## {number}\. ", text, re.MULTILINE):
                    missing.append(f"{path.relative_to(REPO)}: {match.group(1)} §{number}")
    assert cited > 0 and missing == []


def test_no_citation_of_a_design_file_outside_the_repository() -> None:
    stale = [
        str(p.relative_to(REPO))
        for p in (REPO / "mwaa_iac").rglob("*.py")
        if re.search(r"(?<![\w/])DESIGN\.md", p.read_text("utf-8"))
    ]
    assert stale == []
