"""Plan summary and plan guard, on hand-written plans in Terraform's JSON plan format."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mwaa_iac.core.plan_guard import (
    SENSITIVE,
    Action,
    PlanFormatError,
    classify_actions,
    enforce_guard,
    guard_plan,
    summarize_plan,
)
from mwaa_iac.errors import PlanGuardError

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "plans"
BLUE = "module.blue.aws_mwaa_environment.this[0]"
GREEN = "module.green.aws_mwaa_environment.this[0]"
ROUTING = "/mwaa/analytics/active-environment"


def load(name: str) -> dict[str, Any]:
    return json.loads((PLANS / f"{name}.json").read_text())


# -- actions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (["create"], Action.CREATE),
        (["update"], Action.UPDATE),
        (["delete", "create"], Action.REPLACE),
        (["create", "delete"], Action.REPLACE),
        (["delete"], Action.DELETE),
        (["no-op"], Action.NO_OP),
        (["read"], Action.READ),
        (["forget"], Action.FORGET),
        (["create", "forget"], Action.REPLACE),
        ([], Action.NO_OP),
    ],
)
def test_classify_actions(actions: list[str], expected: Action) -> None:
    assert classify_actions(actions) == expected


def test_classify_actions_reads_unknown_lists_conservatively() -> None:
    assert classify_actions(["delete", "update"]) == Action.REPLACE
    with pytest.raises(PlanFormatError, match="unknown Terraform plan actions"):
        classify_actions(["teleport"])


# -- summary -------------------------------------------------------------------------------------


def test_minor_update_is_an_in_place_update_with_versions() -> None:
    summary = summarize_plan(load("minor_update"))

    assert summary.has_changes
    blue = summary.resource(BLUE)
    assert blue.action == Action.UPDATE
    assert (blue.airflow_version_before, blue.airflow_version_after) == ("2.9.2", "2.10.3")
    assert summary.resource("aws_ssm_parameter.active_environment").airflow_version_before is None
    env = summary.environment("analytics-blue")
    assert env.action == Action.UPDATE
    assert (env.airflow_version_before, env.airflow_version_after) == ("2.9.2", "2.10.3")
    assert (env.name_before, env.name_after) == ("analytics-blue", "analytics-blue")
    assert not env.major_version_change
    assert summary.counts["update"] == 1 and summary.counts["no-op"] == 1


def test_resource_drift_is_reported_but_not_counted() -> None:
    summary = summarize_plan(load("minor_update"))

    assert summary.drifted == (BLUE,)
    assert len(summary.resources) == 2  # drift adds no resource change
    assert sum(summary.counts.values()) == 2


def test_major_replace_is_a_replace_with_versions() -> None:
    summary = summarize_plan(load("major_replace"))

    env = summary.environment(BLUE)
    assert env.action == Action.REPLACE
    assert (env.airflow_version_before, env.airflow_version_after) == ("2.11.0", "3.0.6")
    assert env.major_version_change
    assert env.replace_paths == (("airflow_version",),)
    assert summary.counts["replace"] == 1


def test_retire_is_a_delete_of_blue() -> None:
    summary = summarize_plan(load("retire_blue"))

    blue = summary.environment(BLUE)
    assert blue.action == Action.DELETE
    assert blue.name == "analytics-blue" and blue.name_after is None
    assert blue.airflow_version_after is None
    assert summary.environment("analytics-green").action == Action.NO_OP
    assert {o.name: o.action for o in summary.outputs}["blue_arn"] == Action.DELETE


def test_no_op_plan_has_no_changes() -> None:
    summary = summarize_plan(load("no_op"))

    assert not summary.has_changes
    assert summary.changes == ()
    assert summary.counts["no-op"] == 2
    assert all(count == 0 for action, count in summary.counts.items() if action != "no-op")


def test_create_green_sees_the_create_and_unknown_values() -> None:
    summary = summarize_plan(load("create_green"))

    green = summary.environment(GREEN)
    assert green.action == Action.CREATE
    assert green.name_before is None and green.name == "analytics-green"
    assert green.airflow_version_after == "2.9.2"
    assert summary.counts["create"] == 1 and summary.counts["read"] == 1
    arn = {o.name: o for o in summary.outputs}["green_arn"]
    assert arn.action == Action.CREATE and not arn.after_known and arn.after is None


def test_after_unknown_version_is_marked_unknown() -> None:
    plan = load("create_green")
    change = plan["resource_changes"][1]["change"]
    del change["after"]["airflow_version"]
    change["after_unknown"]["airflow_version"] = True

    green = summarize_plan(plan).environment(GREEN)

    assert green.airflow_version_after is None
    assert green.unknown_after == ("airflow_version",)
    assert green.describe_version() == "(none) → (known after apply)"


def test_summary_to_dict_is_json_serialisable() -> None:
    data = summarize_plan(load("major_replace")).to_dict()

    assert json.loads(json.dumps(data))["environments"][0]["airflow_version_after"] == "3.0.6"
    assert data["counts"]["replace"] == 1 and data["has_changes"] is True


def test_sensitive_output_values_are_not_kept() -> None:
    plan = load("minor_update")
    plan["output_changes"]["db_password"] = {
        "actions": ["update"],
        "before": "old-secret",
        "after": "new-secret",
        "after_unknown": False,
        "before_sensitive": True,
        "after_sensitive": True,
    }

    output = {o.name: o for o in summarize_plan(plan).outputs}["db_password"]

    assert (output.before, output.after, output.sensitive) == (SENSITIVE, SENSITIVE, True)
    assert "secret" not in json.dumps(summarize_plan(plan).to_dict())


def test_missing_keys_are_tolerated() -> None:
    summary = summarize_plan(
        {
            "resource_changes": [
                {"address": "module.x.aws_mwaa_environment.this", "change": {"actions": ["delete"]}},
                {"address": "data.aws_caller_identity.me"},
                "not a resource change",
            ]
        }
    )

    env = summary.environments[0]
    assert env.action == Action.DELETE and env.name is None
    assert summary.resources[1].mode == "data" and summary.resources[1].action == Action.NO_OP
    assert not guard_plan(summary).allowed  # an unnamed environment cannot be proven retired


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_actions = st.lists(st.sampled_from(["create", "update", "delete", "no-op", "read", "forget"]), max_size=2)
_change = st.fixed_dictionaries(
    {"actions": _actions},
    optional={"before": _json, "after": _json, "after_unknown": _json, "replace_paths": _json},
)
_resource = st.fixed_dictionaries(
    {},
    optional={
        "address": st.sampled_from([BLUE, GREEN, "aws_ssm_parameter.x", "data.aws_x.y"]),
        "type": st.sampled_from(["aws_mwaa_environment", "aws_ssm_parameter"]),
        "change": _change | _json,
        "deposed": _json,
    },
)


# No deadline: on a loaded 2-core CI machine one example can take longer than hypothesis's 200 ms, and
# what this asserts is that nothing raises, not how fast.
@settings(deadline=None)
@given(st.fixed_dictionaries({}, optional={"resource_changes": st.lists(_resource | _json, max_size=4)}))
def test_summary_and_guard_survive_malformed_plans(plan: dict[str, Any]) -> None:
    summary = summarize_plan(plan)

    json.dumps(summary.to_dict())
    json.dumps(guard_plan(summary, routing_parameters=frozenset({ROUTING})).to_dict())


def test_empty_plan_has_no_changes() -> None:
    assert not summarize_plan({}).has_changes


def test_unsupported_format_major_is_refused() -> None:
    with pytest.raises(PlanFormatError, match=r"format_version '2\.0'"):
        summarize_plan({"format_version": "2.0"})
    with pytest.raises(PlanFormatError):
        summarize_plan([])  # type: ignore[arg-type]


def test_moved_resource_counts_as_a_change() -> None:
    plan = load("no_op")
    plan["resource_changes"][1]["previous_address"] = "aws_ssm_parameter.routing"

    assert summarize_plan(plan).has_changes


# -- guard ---------------------------------------------------------------------------------------


def test_guard_refuses_the_major_replace_and_says_to_upgrade() -> None:
    verdict = guard_plan(summarize_plan(load("major_replace")))

    assert not verdict.allowed
    (violation,) = verdict.violations
    assert violation.address == BLUE and violation.action == Action.REPLACE
    assert violation.name == "analytics-blue"
    assert "2.11.0 → 3.0.6 is a major upgrade" in violation.reason
    assert "history" in violation.reason
    assert "mwaa-iac upgrade" in violation.instead and "apply -refresh-only" in violation.instead
    assert "mwaa-iac cutover" in violation.instead


def test_enforce_guard_raises_plan_guard_error() -> None:
    with pytest.raises(PlanGuardError) as raised:
        enforce_guard(summarize_plan(load("major_replace")))

    error = raised.value
    assert len(error.violations) == 1 and BLUE in error.violations[0]
    assert "mwaa-iac upgrade" in error.hint
    assert "refused" in error.message


def test_guard_allows_the_retire_when_the_phase_retires_blue() -> None:
    summary = summarize_plan(load("retire_blue"))

    verdict = enforce_guard(summary, retiring=frozenset({"analytics-blue"}))

    assert verdict.allowed
    assert any("analytics-blue" in note and "retired" in note for note in verdict.notes)


def test_guard_refuses_the_retire_otherwise() -> None:
    summary = summarize_plan(load("retire_blue"))

    for retiring in (frozenset(), frozenset({"analytics-green"})):
        verdict = guard_plan(summary, retiring=retiring)
        assert not verdict.allowed
        (violation,) = verdict.violations
        assert violation.action == Action.DELETE and violation.name == "analytics-blue"
        assert "mwaa-iac cleanup" in violation.instead


@pytest.mark.parametrize("name", ["no_op", "create_green", "minor_update"])
def test_guard_allows_plans_that_destroy_nothing(name: str) -> None:
    assert guard_plan(summarize_plan(load(name))).allowed


def test_guard_notes_an_in_place_version_change() -> None:
    verdict = guard_plan(summarize_plan(load("minor_update")))

    assert any("2.9.2 → 2.10.3" in note and "two hours" in note for note in verdict.notes)


def test_guard_explains_a_replace_forced_by_a_rename() -> None:
    plan = load("no_op")
    change = plan["resource_changes"][0]["change"]
    change["actions"] = ["delete", "create"]
    change["after"]["name"] = "analytics-blue2"
    change["replace_paths"] = [["name"]]

    (violation,) = guard_plan(summarize_plan(plan)).violations

    assert "changing name forces replacing environment analytics-blue" in violation.reason
    assert "(as analytics-blue2)" in violation.reason
    assert "mwaa-iac cutover" in violation.instead


def test_guard_sends_a_replace_with_unknown_version_to_upgrade() -> None:
    plan = load("major_replace")
    change = plan["resource_changes"][0]["change"]
    del change["after"]["airflow_version"]
    change["after_unknown"]["airflow_version"] = True

    (violation,) = guard_plan(summarize_plan(plan)).violations

    assert "changing airflow_version forces replacing environment analytics-blue" in violation.reason
    assert "mwaa-iac upgrade" in violation.instead


def test_guard_explains_a_tainted_environment() -> None:
    plan = load("no_op")
    plan["resource_changes"][0]["change"]["actions"] = ["delete", "create"]
    plan["resource_changes"][0]["action_reason"] = "replace_because_tainted"

    (violation,) = guard_plan(summarize_plan(plan)).violations

    assert "tainted" in violation.reason and "terraform untaint" in violation.instead


def test_guard_refuses_deleting_the_routing_parameter_when_named() -> None:
    plan = load("no_op")
    plan["resource_changes"][1]["change"]["actions"] = ["delete"]
    plan["resource_changes"][1]["change"]["after"] = None
    summary = summarize_plan(plan)

    assert guard_plan(summary).allowed  # without names the rule does nothing
    verdict = guard_plan(summary, routing_parameters=frozenset({ROUTING}))
    (violation,) = verdict.violations
    assert violation.address == "aws_ssm_parameter.active_environment" and violation.name == ROUTING
    assert guard_plan(summary, retiring=frozenset({ROUTING}), routing_parameters=frozenset({ROUTING})).allowed


def test_guard_refuses_replacing_the_routing_parameter() -> None:
    plan = load("no_op")
    plan["resource_changes"][1]["change"]["actions"] = ["delete", "create"]

    verdict = guard_plan(summarize_plan(plan), routing_parameters=frozenset({ROUTING}))

    assert [v.action for v in verdict.violations] == [Action.REPLACE]


def test_guard_refuses_deleting_a_deposed_environment_not_retired() -> None:
    plan = load("no_op")
    deposed = copy.deepcopy(plan["resource_changes"][0])
    deposed["deposed"] = "00000001"
    deposed["change"]["actions"] = ["delete"]
    deposed["change"]["after"] = None
    plan["resource_changes"].append(deposed)

    summary = summarize_plan(plan)
    verdict = guard_plan(summary)

    assert [v.address for v in verdict.violations] == [BLUE]
    assert summary.resources[-1].key == f"{BLUE} (deposed 00000001)"


def test_verdict_to_dict_is_json_serialisable() -> None:
    verdict = guard_plan(summarize_plan(load("major_replace")))

    data = json.loads(json.dumps(verdict.to_dict()))

    assert data["allowed"] is False
    assert data["violations"][0]["address"] == BLUE
    assert "mwaa-iac upgrade" in data["violations"][0]["instead"]


def test_enforce_guard_accepts_a_verdict_already_reached() -> None:
    summary = summarize_plan(load("retire_blue"))

    allowed = guard_plan(summary, retiring=frozenset({"analytics-blue"}))
    assert enforce_guard(allowed) is allowed
    with pytest.raises(PlanGuardError):
        enforce_guard(guard_plan(summary))


def test_repeated_no_op_is_no_op() -> None:
    assert classify_actions(["no-op", "no-op"]) == Action.NO_OP
