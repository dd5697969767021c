"""`mwaa-iac cutover`, `rollback` and `cleanup`: move a deployment to a new Airflow version on the
other colour, carrying history with mwaa-dr, in two passes so that scheduling pauses only for a
short freeze (docs/design.md §2).

The rooms, over one run context (:mod:`.context`):

- :mod:`.flow` — ``Cutover``: the live-colour guard, the journal, the walk over the step list of
  :func:`mwaa_iac.core.cutover_steps.flow` (the order is written there, once), the report;
- :mod:`.plan` — preflight, the probe of the source, the dry run;
- :mod:`.target` — the target's requirements, creation (through the engine seam,
  :mod:`mwaa_iac.workflows.engine`), execution role, in-place hops, health gate;
- :mod:`.copy` — the DR DAG files, each pass's backup/verify/restore/verify, pass 2's delta base;
- :mod:`.freeze` — record, pause, drain, go-live;
- :mod:`.abort` — giving scheduling back after a failure inside the freeze (shared with cleanup);
- :mod:`.soak` — rollback and cleanup.

Single pass (3.x targets, or ``--single-pass``): the freeze starts before pass 1 and there is no
pass 2. Without history (``--no-history``): no backup or restore at all. mwaa-dr is delivered with
the DR DAG files in the DAG folder, so neither colour needs it in requirements.txt.
"""

from mwaa_iac.workflows.cutover.context import JOURNAL, Context, CutoverOptions
from mwaa_iac.workflows.cutover.flow import Cutover
from mwaa_iac.workflows.cutover.soak import (
    ROLLBACK_POLICIES,
    RollbackError,
    cleanup,
    rollback,
    rollback_policy,
)

__all__ = [
    "JOURNAL",
    "ROLLBACK_POLICIES",
    "Context",
    "Cutover",
    "CutoverOptions",
    "RollbackError",
    "cleanup",
    "rollback",
    "rollback_policy",
]
