from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "environments" / "example" / "mwaa.yaml"


@pytest.fixture
def example_text() -> str:
    return EXAMPLE_CONFIG.read_text("utf-8")


@pytest.fixture
def workspace_root(tmp_path: Path, example_text: str) -> Path:
    """A repository root with one environment `demo` (a copy of the example config)."""
    env_dir = tmp_path / "environments" / "demo"
    env_dir.mkdir(parents=True)
    (env_dir / "mwaa.yaml").write_text(example_text, "utf-8")
    return tmp_path
