from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from mwaa_iac.core.catalog import load_catalog
from mwaa_iac.core.planner import HopKind, Strategy, plan_path

TODAY = date(2026, 11, 23)
CATALOG = load_catalog()
NAMES = CATALOG.names()


def _hops(plan) -> list[tuple[str, str | None, str]]:
    return [(str(h.kind), h.from_version, h.to_version) for h in plan.hops]


def test_catalog_has_design_versions_and_dr_support() -> None:
    for version in (
        "2.7.2",
        "2.8.1",
        "2.9.2",
        "2.10.1",
        "2.10.3",
        "2.11.0",
        "2.11.2",
        "3.0.6",
        "3.2.1",
        "3.3.1",
    ):
        assert CATALOG.get(version) is not None
    assert CATALOG.get("2.10.3").dr_factory == "DRFactory_2_10"
    assert CATALOG.get("3.0.6").dr_factory is None
    assert CATALOG.get("1.10.12").end_of_support == date(2024, 2, 21)


def test_minor_upgrade_in_place_is_one_hop() -> None:
    plan = plan_path("2.9.2", "2.10.3", Strategy.IN_PLACE, TODAY)
    assert plan.allowed and _hops(plan) == [("in-place", "2.9.2", "2.10.3")]


def test_major_in_place_goes_through_latest_2_11() -> None:
    plan = plan_path("2.10.3", "3.3.1", Strategy.IN_PLACE, TODAY)
    assert _hops(plan) == [("in-place", "2.10.3", "2.11.2"), ("in-place", "2.11.2", "3.3.1")]
    assert "stepping stone" in plan.hops[0].reason


def test_2_11_0_must_reach_latest_2_11_before_3() -> None:
    plan = plan_path("2.11.0", "3.0.6", Strategy.IN_PLACE, TODAY)
    assert _hops(plan)[0] == ("in-place", "2.11.0", "2.11.2")


def test_1_10_in_place_refused_with_hint() -> None:
    plan = plan_path("1.10.12", "2.10.3", Strategy.IN_PLACE, TODAY)
    assert not plan.allowed
    assert "cannot be upgraded in place" in plan.refusals[0]
    assert any("--no-history" in h for h in plan.hints)


def test_end_of_support_target_refused() -> None:
    plan = plan_path("2.9.2", "2.6.3", Strategy.AUTO, TODAY)
    assert not plan.allowed and "end of support on 2025-12-30" in plan.refusals[0]
    # ... but it was allowed before that date
    assert plan_path("2.9.2", "2.6.3", Strategy.IN_PLACE, date(2025, 6, 1)).allowed


def test_unknown_versions_refused() -> None:
    plan = plan_path("2.9.2", "2.99.0", Strategy.AUTO, TODAY)
    assert not plan.allowed and "not a version Amazon MWAA offers" in plan.refusals[0]
    assert not plan_path("two", "2.10.3", Strategy.AUTO, TODAY).allowed


def test_cutover_clones_at_source_then_upgrades_and_is_two_pass() -> None:
    plan = plan_path("2.9.2", "2.10.3", Strategy.CUTOVER, TODAY)
    assert _hops(plan) == [("new-environment", "2.9.2", "2.9.2"), ("in-place", "2.9.2", "2.10.3")]
    assert plan.history_carried and plan.two_pass


def test_cutover_to_3_is_two_passes_via_2_11_with_the_major_hop_inside_the_freeze() -> None:
    plan = plan_path("2.10.3", "3.3.1", Strategy.CUTOVER, TODAY)
    assert plan.history_carried and plan.two_pass is True
    assert _hops(plan) == [
        ("new-environment", "2.10.3", "2.10.3"),
        ("in-place", "2.10.3", "2.11.2"),
        ("in-place", "2.11.2", "3.3.1"),
    ]
    # pass 2 restores into 2.11.2 (the copy's last version); the hop into 3.x is in the freeze
    assert plan.freeze_hops == 1 and plan.pass2_version == "2.11.2"
    assert "before the freeze" in plan.hops[1].reason and "inside the freeze" in plan.hops[2].reason
    assert any(n.startswith("two passes via 2.11.2") for n in plan.notes)
    # from the latest 2.11 itself: the target is created at 2.11.2, the only hop is in the freeze
    direct = plan_path("2.11.2", "3.3.1", Strategy.CUTOVER, TODAY)
    assert direct.two_pass and direct.freeze_hops == 1 and direct.pass2_version == "2.11.2"
    # a 2.x minor upgrade: every hop before the freeze
    minor = plan_path("2.9.2", "2.10.3", Strategy.CUTOVER, TODAY)
    assert minor.two_pass and minor.freeze_hops == 0 and minor.pass2_version == "2.10.3"
    # a downgrade stays a single pass (no second restore from the newer schema)
    down = plan_path("2.10.3", "2.9.2", Strategy.CUTOVER, TODAY)
    assert down.two_pass is False and down.freeze_hops == 0


def test_cutover_from_3_requires_no_history() -> None:
    refused = plan_path("3.0.6", "3.3.1", Strategy.CUTOVER, TODAY)
    assert not refused.allowed and "does not support Airflow 3.0.6" in refused.refusals[0]
    plan = plan_path("3.0.6", "3.3.1", Strategy.CUTOVER, TODAY, history=False)
    assert plan.allowed and plan.history_carried is False
    assert _hops(plan) == [("new-environment", "3.0.6", "3.3.1")]
    assert "NOT carried" in plan.hops[0].reason


def test_auto_prefers_in_place_where_mwaa_dr_cannot_copy() -> None:
    plan = plan_path("3.0.6", "3.3.1", Strategy.AUTO, TODAY)
    assert plan.strategy is Strategy.IN_PLACE


def test_downgrades() -> None:
    assert _hops(plan_path("2.10.3", "2.9.2", Strategy.IN_PLACE, TODAY)) == [("in-place", "2.10.3", "2.9.2")]
    down = plan_path("3.3.1", "2.10.3", Strategy.IN_PLACE, TODAY)
    assert _hops(down) == [("in-place", "3.3.1", "2.11.2"), ("in-place", "2.11.2", "2.10.3")]


def test_same_version_is_a_noop() -> None:
    plan = plan_path("2.10.3", "2.10.3", Strategy.AUTO, TODAY)
    assert plan.allowed and plan.is_noop


@given(
    src=st.sampled_from(NAMES),
    dst=st.sampled_from(NAMES),
    strategy=st.sampled_from(list(Strategy)),
    history=st.booleans(),
    today=st.dates(min_value=date(2023, 1, 1), max_value=date(2030, 1, 1)),
)
def test_path_properties(src: str, dst: str, strategy: Strategy, history: bool, today: date) -> None:
    plan = plan_path(src, dst, strategy, today, history=history)
    if not plan.allowed:
        assert plan.refusals and not plan.hops
        return
    if plan.is_noop:
        assert src == dst
        return
    # every path ends at the target
    assert plan.hops[-1].to_version == dst
    # hops chain
    current = src
    for hop in plan.hops:
        assert hop.from_version == current
        current = hop.to_version
        version = CATALOG.get(hop.to_version)
        # never passes through an end-of-support version
        assert version.is_supported(today)
        if hop.kind is HopKind.IN_PLACE:
            before = CATALOG.get(hop.from_version)
            # never an in-place major jump from below 2.11
            if before.major == 2 and version.major == 3:
                assert before.key[1] == 11
            assert before.major != 1
        assert hop.reason


def test_a_cutover_from_2_4_cannot_carry_history_even_while_it_is_supported() -> None:
    """Airflow 2.4 has no DAG run notes, where the copy reports what it did: a copy could not be
    verified, so the planner refuses history (whatever the date) and says why."""
    before_end_of_support = date(2025, 6, 1)
    plan = plan_path("2.4.3", "2.10.3", Strategy.CUTOVER, before_end_of_support)
    assert not plan.allowed
    assert any("no DAG run notes" in r for r in plan.refusals)
    without = plan_path("2.4.3", "2.10.3", Strategy.CUTOVER, before_end_of_support, history=False)
    assert without.allowed and without.history_carried is False
    assert plan_path("2.5.1", "2.10.3", Strategy.CUTOVER, before_end_of_support).history_carried


def test_the_ways_side_by_side_recommend_two_passes_and_name_the_aws_figure() -> None:
    from mwaa_iac.core.choices import SOURCE_NOTE, choices

    ways = {c.name: c for c in choices("2.9.2", "3.3.1", TODAY)}
    assert list(ways) == ["in-place", "single-pass", "two-pass", "no-history"]
    assert [c.name for c in ways.values() if c.recommended] == ["two-pass"]
    assert "2.11.2 → 3.3.1" in ways["two-pass"].scheduling_stop
    assert "2 in-place upgrades" in ways["in-place"].scheduling_stop  # via 2.11.2
    assert "creation, the full copy and 2 in-place upgrades" in ways["single-pass"].scheduling_stop
    assert not ways["no-history"].history
    # never "only for the freeze window" where the freeze holds an upgrade
    assert all("freeze window" not in c.scheduling_stop for c in ways.values())
    assert "two hours" in SOURCE_NOTE
    # from 3.x the copy cannot read the source: in place is recommended, the cutovers say why not
    from3 = {c.name: c for c in choices("3.0.6", "3.3.1", TODAY)}
    assert from3["in-place"].recommended and not from3["two-pass"].allowed
    assert "does not support Airflow 3.0.6" in from3["two-pass"].detail


def test_what_a_2_to_3_move_changes_beyond_dag_code() -> None:
    from mwaa_iac.core.major_changes import major_changes

    environment = {
        "PluginsS3Path": "plugins.zip",
        "AirflowConfigurationOptions": {"scheduler.dag_dir_list_interval": "30", "core.check_slas": "False"},
    }
    changes = {c.name: c.detail for c in major_changes("2.10.3", "3.3.1", environment)}
    assert list(changes) == ["python", "plugins", "configuration", "rest-api", "metadata-database"]
    assert "scheduler.dag_dir_list_interval → dag_processor.refresh_interval" in changes["configuration"]
    assert "core.check_slas (SLAs were removed" in changes["configuration"]
    assert "plugins.zip" in changes["plugins"]
    assert major_changes("2.9.2", "2.10.3", environment) == []  # only a move into 3.x
    assert "configuration" not in {c.name for c in major_changes("2.10.3", "3.3.1", {})}
