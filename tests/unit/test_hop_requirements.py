from __future__ import annotations

from mwaa_iac.core.hop_requirements import hop_requirements_key, retarget_constraints

URL = "https://example.invalid/apache/airflow/constraints-{v}/constraints-{p}.txt"


def test_the_constraint_line_follows_the_hop() -> None:
    text = f'--constraint "{URL.format(v="2.9.2", p="3.11")}"\napache-airflow-providers-snowflake\n'
    moved = retarget_constraints(text, "2.11.2", "3.12")
    assert moved == f'--constraint "{URL.format(v="2.11.2", p="3.12")}"\napache-airflow-providers-snowflake\n'
    assert retarget_constraints(f"-c {URL.format(v='2.9.2', p='3.11')}\n", "2.10.3", "3.11") == (
        f"-c {URL.format(v='2.10.3', p='3.11')}\n"
    )


def test_a_file_without_a_constraint_line_is_left_alone() -> None:
    assert (
        retarget_constraints(
            "pandas==2.1.4\n# constraints-2.9.2/constraints-3.11.txt in a comment\n", "2.10.3", "3.11"
        )
        is None
    )


def test_hop_keys() -> None:
    assert (
        hop_requirements_key("requirements/requirements.txt", "2.10.3")
        == "requirements/requirements-airflow-2.10.3.txt"
    )
    assert hop_requirements_key("requirements/requirements-airflow-2.10.3.txt", "2.11.2") == (
        "requirements/requirements-airflow-2.11.2.txt"
    )
    assert hop_requirements_key("reqs", "2.10.3") == "reqs-airflow-2.10.3.txt"
