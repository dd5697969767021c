"""`mwaa-iac doctor` on the example configuration against the local stack: each missing piece named,
with its fix, exit code 1. (Per-colour execution roles — a cutover refused in preflight when green's
role cannot serve green, and green given a role of its own — run on the cutover module's busy
deployment: tests/e2e/test_cutover_e2e.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import LocalStack

pytestmark = pytest.mark.local

NAME = "roles"
REPO = Path(__file__).resolve().parents[2]


def test_doctor_on_the_example_names_each_problem_and_exits_1(local_stack: LocalStack) -> None:
    result = local_stack.cli("doctor", "--env", "example", "--root", str(REPO))
    assert result.returncode == 1, result.stderr
    assert "✗ source environment: analytics-blue (the active colour, blue) does not exist" in result.stdout
    assert "✗ backup bucket: exists: analytics-mwaa-dr-backups does not exist" in result.stdout
    assert "fix:" in result.stdout
    print(result.stdout)
