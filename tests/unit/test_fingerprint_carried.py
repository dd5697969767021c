"""``fingerprint.carried``: is everything of one fingerprint in a later one of a running environment?"""

from __future__ import annotations

from mwaa_iac.local.fingerprint import carried


def _table(rows: dict[str, dict[str, str]], states: dict[str, str] | None = None) -> dict:
    columns = sorted({c for fields in rows.values() for c in fields})
    table = {
        "count": len(rows),
        "sha256": "x",
        "columns": columns,
        "rows": {k: "|".join(f"{c}={v}" for c, v in sorted(f.items())) for k, f in rows.items()},
        "fields": rows,
    }
    if states:
        table["states"] = states
    return table


def _fp(**tables: dict) -> dict:
    return {"airflow_version": "x", "tables": tables}


def test_final_rows_must_be_unchanged_and_unfinished_ones_only_present() -> None:
    before = _fp(
        task_instance=_table(
            {
                "d | r1 | t": {"state": "s1", "end_date": "e1"},
                "d | r2 | t": {"state": "s2", "end_date": "e2"},
            },
            {"d | r1 | t": "success", "d | r2 | t": "running"},
        ),
        variable=_table({"k": {"val": "v"}}),
    )
    after = _fp(
        task_instance=_table(
            {
                "d | r1 | t": {"state": "s1", "end_date": "e1"},
                "d | r2 | t": {"state": "s3", "end_date": "e9"},  # finished meanwhile: fine
                "d | r3 | t": {"state": "s1", "end_date": "e3"},  # a new run: fine
            }
        ),
        variable=_table({"k": {"val": "v"}}),
    )
    assert carried(before, after) == []


def test_a_changed_final_row_a_lost_row_and_a_lost_table_are_named() -> None:
    before = _fp(
        task_instance=_table(
            {
                "d | r1 | t": {"state": "s1", "end_date": "e1"},
                "d | r2 | t": {"state": "s2", "end_date": "e2"},
            },
            {"d | r1 | t": "success", "d | r2 | t": "failed"},
        ),
        xcom=_table({"d | r1 | t | -1 | return_value": {"value": "a", "value_raw": "b"}}),
        task_fail=_table({"d | r2 | t": {"duration": "1"}}),
    )
    after = _fp(
        task_instance=_table({"d | r1 | t": {"state": "s1", "end_date": "e5"}}),
        xcom=_table({"d | r1 | t | -1 | return_value": {"value": "a", "value_raw": "c"}}),
    )
    problems = carried(before, after)
    assert problems == [
        "task_fail: not in the second fingerprint",
        "task_instance: 1 missing: [d | r2 | t]; 1 changed: [d | r1 | t] (end_date)",
        "xcom: 1 changed: [d | r1 | t | -1 | return_value] (value_raw)",
    ]
    assert carried(before, after, ignore=["task_fail", "xcom.value_raw", "task_instance"]) == []


def test_the_fingerprint_reads_every_copied_table_of_the_registry_or_says_why_not() -> None:
    from mwaa_iac.dr_runtime import mwaa_iac_copy
    from mwaa_iac.local import fingerprint
    from mwaa_iac.local.airflow_side import fingerprint_script

    copied = set(mwaa_iac_copy.copied_tables())
    assert set(fingerprint.UNREAD) <= copied
    assert copied - set(fingerprint.UNREAD) <= set(fingerprint.TABLES)
    assert set(fingerprint.TABLES) <= set(fingerprint_script.READERS)
    assert "airflow" not in vars(fingerprint_script)  # Airflow is imported when it runs, not at import
    assert all(callable(getattr(fingerprint_script.Reader, name)) for name in fingerprint_script.READERS)
