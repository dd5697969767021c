"""Every in-page link of the README points at a heading that exists (GitHub's anchor rules)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than - and _ dropped, spaces to -."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_every_in_page_link_has_its_heading() -> None:
    text = README.read_text("utf-8")
    outside_code = re.sub(r"```.*?```", "", text, flags=re.S)
    anchors = {anchor(h) for h in re.findall(r"^#{1,6} (.+)$", outside_code, re.M)}
    dead = sorted({m for m in re.findall(r"\]\(#([^)]+)\)", outside_code) if m not in anchors})
    assert not dead, f"README links to headings that do not exist: {dead}"
