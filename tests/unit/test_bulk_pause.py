"""The planner of ``dag_id_pattern`` values: Airflow's ILIKE semantics, and (property tests) that a
pattern never selects a DAG outside the set to change and that every DAG of the set is covered.

The properties are checked with a matcher written apart from the planner's (fnmatch), so that a
planner that got the semantics wrong is caught."""

from __future__ import annotations

import fnmatch
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwaa_iac.core import dr
from mwaa_iac.core.bulk_pause import PAGE, like_matches, may_match, plan


def sql_ilike(pattern: str, dag_id: str) -> bool:
    """``dag_id ILIKE '%<pattern>%'`` for ASCII (``%`` is fnmatch's ``*``, ``_`` its ``?``)."""
    glob = "*" + pattern.lower().replace("%", "*").replace("_", "?") + "*"
    return fnmatch.fnmatchcase(dag_id.lower(), glob)


def realistic_dags(*, scattered: bool = False) -> tuple[list[str], set[str]]:
    """500 DAG ids of a shared environment (teams' prefixes, ``_`` everywhere, superseded ``_v1``
    DAGs next to their ``_v2``) and those paused by their owners, interleaved with the live ones in
    id order: a team's legacy DAGs, the ad-hoc DAGs of someone who left, last year's backfills.

    ``scattered``: the owners' paused DAGs are spread over every team instead (every superseded
    ``_v1``, some ad-hoc DAGs and backfills picked at random): their names contain the live ones'
    parts (team, kind, object), which breaks up the groups an unpause may use."""
    rnd = random.Random(14)
    teams = ["finance", "marketing_ops", "data_platform", "team_a", "team_b", "risk", "sales", "ml_platform"]
    kinds = ["ingest", "transform", "export", "report", "sync", "quality"]
    objects = ["orders", "customers", "invoices", "events", "payments", "ledger", "sessions", "users"]
    family = [f"{t}_{k}_{o}" for t in teams for k in kinds for o in objects]  # 384
    superseded = rnd.sample(family, 12)
    ids = [i for i in family if i not in superseded]
    ids += [f"{i}_v1" for i in superseded] + [f"{i}_v2" for i in superseded]
    legacy = [f"team_b_legacy_{o}_{n}" for o in objects[:6] for n in (1, 2)]
    people = ["alice", "bob", "chen", "dana", "eve"]
    adhoc = [f"adhoc_{p}_{o}" for p in people for o in objects]
    backfills = [f"{t}_backfill_{o}_{y}" for t in teams[:3] for o in objects[:6] for y in (2024, 2025)]
    backfills += [f"{t}_backfill_{o}_2025" for t in teams[3:] for o in objects[:3]]
    ids += legacy + adhoc + backfills + ["data_platform_heartbeat"]
    if scattered:
        owner_paused = {f"{i}_v1" for i in superseded} | set(legacy)
        owner_paused |= set(rnd.sample(adhoc, 6)) | set(rnd.sample(backfills, 6))
    else:  # in a few namespaces: a team's legacy DAGs, someone's ad-hoc DAGs, last year's backfills
        owner_paused = set(legacy) | {a for a in adhoc if a.startswith("adhoc_eve_")}
        owner_paused |= {b for b in backfills if b.endswith("_2024")}
    return sorted(ids), owner_paused


# -- the semantics ----------------------------------------------------------------------------------


def test_the_pattern_is_a_case_insensitive_substring_with_sql_wildcards() -> None:
    assert like_matches("orders", "finance_ingest_orders") and like_matches("ORDERS", "Finance_Orders_x")
    assert like_matches("team_a", "team-a_sync") and like_matches("team_a", "teamXa")  # _ is any char
    assert not like_matches("team_a", "team_sync")
    assert like_matches("fin%orders", "finance_ingest_orders") and not like_matches(
        "orders%fin", "fin_orders"
    )
    assert like_matches("~", "anything")  # Airflow's "every DAG"


def test_a_non_ascii_character_of_another_id_may_match_anything() -> None:
    assert may_match("kpi", "\u212apis_report")  # KELVIN SIGN folds to k
    assert may_match("ffi", "o\ufb03ce_sync")  # one character that may fold to three
    assert not may_match("orders", "\u00e9v\u00e9nements")
    assert may_match("abc", "abc") and not may_match("abd", "abc")


def test_a_dag_whose_id_is_inside_another_id_gets_its_own_call() -> None:
    result = plan(["etl", "etl_v2", "etl_x", "report"], ["etl", "etl_x"])
    assert "etl" in result.singles and all(not sql_ilike(p, "etl_v2") for p in result.patterns)


def test_the_dr_dags_are_never_selected() -> None:
    ids, owner_paused = realistic_dags()
    known = ids + sorted(dr.MWAA_IAC_DAG_IDS)
    live = [i for i in ids if i not in owner_paused]
    result = plan(known, live)
    for pattern in result.patterns:
        assert not any(sql_ilike(pattern, d) for d in dr.MWAA_IAC_DAG_IDS)


# -- the properties ---------------------------------------------------------------------------------

ID_CHARS = "abcAB_-.0"
dag_ids = st.text(alphabet=ID_CHARS, min_size=1, max_size=8)


def _check(known: list[str], change: list[str], free: set[str] | None = None) -> None:
    result = plan(known, change, free=free or ())
    change_set = set(change)
    outside = set(known) - change_set - (free or set())
    covered: set[str] = set()
    for group in result.groups:
        selected = {d for d in set(known) | change_set if sql_ilike(group.pattern, d)}
        assert not selected & outside, (group.pattern, selected & outside)
        assert selected & change_set == set(group.dag_ids) and len(selected) == group.selects
        covered |= selected & change_set
    assert covered | set(result.singles) == change_set
    assert result.calls <= len(change_set)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(dag_ids, min_size=1, max_size=40, unique=True), st.data())
def test_a_pattern_never_selects_outside_the_set_and_every_dag_is_covered(known, data) -> None:
    change = data.draw(st.lists(st.sampled_from(known), unique=True))
    _check(known, change)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(dag_ids, min_size=1, max_size=40, unique=True), st.data())
def test_a_pattern_may_also_select_only_the_free_dags(known, data) -> None:
    change = data.draw(st.lists(st.sampled_from(known), unique=True))
    free = data.draw(st.sets(st.sampled_from(known)))
    _check(known, change, free - set(change))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.text(alphabet=ID_CHARS + "\u212a\u00e9\u0130", min_size=1, max_size=6), max_size=25, unique=True
    ),
    st.data(),
)
def test_ids_outside_ascii_are_never_selected_by_a_pattern_that_may_fold_onto_them(known, data) -> None:
    change = data.draw(st.lists(st.sampled_from(known), unique=True)) if known else []
    result = plan(known, change)
    outside = set(known) - set(change)
    for group in result.groups:
        assert not any(may_match(group.pattern, o) for o in outside)
        assert group.pattern.isascii()
    assert {i for g in result.groups for i in g.dag_ids} | set(result.singles) == set(change)


# -- 500 DAGs ---------------------------------------------------------------------------------------


def _interleaved(ids: list[str], owner_paused: set[str]) -> bool:
    """Some owner-paused DAG sorts between two live ones."""
    flags = [i in owner_paused for i in sorted(ids)]
    return any(not a and b and not c for a, b, c in zip(flags, flags[1:], flags[2:], strict=False))


def test_500_realistic_dags_take_a_handful_of_calls_each_way() -> None:
    ids, owner_paused = realistic_dags()
    assert len(ids) == 500 and len(owner_paused) == 38 and _interleaved(ids, owner_paused)
    known = ids + sorted(dr.MWAA_IAC_DAG_IDS)
    live = [i for i in ids if i not in owner_paused]
    _check(known, live)
    unpause = plan(known, live)
    pause = plan(known, live, free=owner_paused)  # pausing an owner-paused DAG changes nothing
    assert unpause.calls <= 12, (unpause.calls, unpause.patterns, unpause.singles)
    assert pause.calls <= 7, (pause.calls, pause.patterns, pause.singles)
    assert len(live) // PAGE <= pause.calls  # at most a page of DAGs per call
    for group in pause.groups:
        assert not any(sql_ilike(group.pattern, d) for d in dr.MWAA_IAC_DAG_IDS)


def test_owner_paused_dags_named_like_the_live_ones_cost_more_calls_to_unpause() -> None:
    """The limit of dag_id_pattern: a live DAG whose every substring is in an owner-paused id
    (``x`` next to a paused ``x_v1``) needs its own call. Still far fewer than one a DAG."""
    ids, owner_paused = realistic_dags(scattered=True)
    assert len(ids) == 500 and len(owner_paused) == 36 and _interleaved(ids, owner_paused)
    known = ids + sorted(dr.MWAA_IAC_DAG_IDS)
    live = [i for i in ids if i not in owner_paused]
    _check(known, live)
    assert plan(known, live, free=owner_paused).calls <= 7
    assert plan(known, live).calls <= len(live) // 4  # 110 calls for 464 DAGs
