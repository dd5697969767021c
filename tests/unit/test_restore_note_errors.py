"""A restore run's note, as mwaa-iac reads it: an error never carries the values a database error
quotes (a note written by an earlier release's copy module may hold PostgreSQL's DETAIL/CONTEXT or
SQLAlchemy's statement and parameters), and a delta restore's failure stays the delta_refused outcome
the cutover falls back on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mwaa_iac.core import dr
from mwaa_iac.workflows.backup import restore_result, run_restore, safe_error
from mwaa_iac.workflows.dr_runs import CutoverError, DeltaRefused

SECRET = "AKIA-HUNTER2"
OLD_NOTE_ERROR = (
    'IntegrityError: (psycopg2.errors.NotNullViolation) null value in column "pool" of relation '
    f'"task_instance" violates not-null constraint\nDETAIL:  Failing row contains (etl, {SECRET}).\n'
    f"[SQL: INSERT INTO task_instance ...]\n[parameters: {{'hostname': '{SECRET}'}}]"
)


class Api:
    def __init__(self, note: dict[str, Any]) -> None:
        self.note = json.dumps(note)

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        assert dag_id == dr.RESTORE_DAG_ID
        return {"note": self.note}


class Runner:
    def __init__(self, note: dict[str, Any]) -> None:
        self.api = Api(note)

    def run(self, *args: Any, **kwargs: Any) -> None:
        raise CutoverError("restore_metadata run r1 on green failed (state failed)")


def test_an_old_notes_database_error_is_cut_before_any_value() -> None:
    said = safe_error(OLD_NOTE_ERROR)
    assert SECRET not in said and "Failing row" not in said and said.startswith("IntegrityError:")
    reduced = "NotNullViolation, SQLSTATE 23502 (not_null_violation), table task_instance, column pool"
    assert safe_error(reduced) == reduced  # what the copy module writes now passes unchanged
    assert SECRET not in restore_result(Api({"ok": False, "error": OLD_NOTE_ERROR}), "r1")["error"]


def test_a_failed_restore_raises_without_values_and_a_refused_delta_stays_refused() -> None:
    with pytest.raises(CutoverError) as failed:
        run_restore(Runner({"ok": False, "error": OLD_NOTE_ERROR}), "r1", "m", {})
    assert SECRET not in str(failed.value.message) and not isinstance(failed.value, DeltaRefused)
    refused = {"ok": False, "error": "delta refused: DataError, SQLSTATE 22P02", "delta_refused": True}
    with pytest.raises(DeltaRefused) as delta:
        run_restore(Runner(refused), "r1", "m", {})
    assert delta.value.reason == "DataError, SQLSTATE 22P02"
