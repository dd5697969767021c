"""The programs and DAG files that run inside an emulated environment's Airflow are real files that
ruff lints; mwaa-iac fills in their constants block and nothing else."""

from __future__ import annotations

import ast

import pytest

from mwaa_iac.local import airflow_side, busy, seed


def _dag_ids(text: str) -> set[str]:
    """String dag ids a file passes to DAG(...) / @dag(dag_id=...) once its constants are known."""
    tree = ast.parse(text)
    constants = {
        t.id: n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("DAG", "dag"):
            args = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "dag_id")]
            for arg in args:
                value = arg.value if isinstance(arg, ast.Constant) else constants.get(getattr(arg, "id", ""))
                if isinstance(value, str):
                    found.add(value)
    return found


def test_render_fills_every_constant_and_nothing_else() -> None:
    text = f"x = 1\n{airflow_side.BEGIN}\nA = 'a'\nB = 2  # seconds\n{airflow_side.END}\nA = 'later'\n"
    assert airflow_side.render(text, {"A": "it's", "B": None}) == (
        f"x = 1\n{airflow_side.BEGIN}\nA = \"it's\"\nB = None\n{airflow_side.END}\nA = 'later'\n"
    )
    with pytest.raises(ValueError, match="no value for the constant B"):
        airflow_side.render(text, {"A": "a"})
    with pytest.raises(ValueError, match="no constant for C"):
        airflow_side.render(text, {"A": "a", "B": 1, "C": 3})
    with pytest.raises(ValueError, match="no constants block"):
        airflow_side.render("x = 1\n", {})


def test_the_busy_dag_files_define_the_profiles_dags() -> None:
    profile = busy.BusyProfile(basic=None)
    files = profile.dag_files()
    assert list(files) == list(busy.DAG_FILES)
    assert set().union(*(_dag_ids(text) for text in files.values())) == set(profile.dag_ids())
    short = busy.BusyProfile(basic=None, long_dag_id=False, catchup_days=5, retry_delay_seconds=30)
    rendered = short.dag_files()
    assert "LONG_DAG = None" in rendered["busy_schedules.py"]
    assert busy.LONG_DAG not in "".join(rendered.values())
    assert "CATCHUP_DAYS = 5" in rendered["busy_schedules.py"]
    assert "RETRY_DELAY = 30" in rendered["busy_in_flight.py"]


def test_the_seeding_dag_file_is_the_seed_dag_id() -> None:
    assert _dag_ids(airflow_side.source(seed.SEED_DAG_FILE)) == {seed.SEED_DAG_ID}
