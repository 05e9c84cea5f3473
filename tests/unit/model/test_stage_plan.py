"""Which actions of a stage start next and how the stage ends; what a stage retry resets.

Rules from codepipeline.md: run orders (§1.1: same runOrder in parallel, ascending in series),
failure (§1.6: a failed action fails the stage once in-flight siblings end), stop (§1.7: nothing
new starts), RetryStageExecution (§1.6: FAILED_ACTIONS / ALL_ACTIONS and their preconditions).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caravan.errors import StageNotRetryableError
from caravan.model.stage_plan import ActionRun, StagePlan, plan, retry_plan
from caravan.model.statuses import ActionExecutionStatus, RetryMode, StageExecutionStatus

RUNNING = ActionExecutionStatus.IN_PROGRESS
OK = ActionExecutionStatus.SUCCEEDED
FAILED = ActionExecutionStatus.FAILED
ABANDONED = ActionExecutionStatus.ABANDONED


def actions(*specs: tuple[str, int, ActionExecutionStatus | None]) -> list[ActionRun]:
    return [ActionRun(name, order, status) for name, order, status in specs]


# plan: run orders -----------------------------------------------------------------------------


def test_a_fresh_stage_starts_every_action_of_the_lowest_run_order_together() -> None:
    """§1.1: actions with the same runOrder run in parallel; higher ones wait."""
    stage = actions(("Test", 2, None), ("Build", 1, None), ("Lint", 1, None))
    assert plan(stage) == StagePlan(start=("Build", "Lint"), outcome=None)


def test_the_next_run_order_starts_only_when_the_whole_group_succeeded() -> None:
    """§1.1: ascending runOrders run in series."""
    assert plan(actions(("Build", 1, OK), ("Lint", 1, RUNNING), ("Test", 2, None))) == StagePlan(
        (), None
    )
    assert plan(actions(("Build", 1, OK), ("Lint", 1, OK), ("Test", 2, None))) == StagePlan(
        ("Test",), None
    )


def test_run_orders_need_not_be_contiguous() -> None:
    """§1.1: runOrder values only order the groups; gaps do not matter."""
    stage = actions(("Deploy", 1, OK), ("Smoke", 5, None), ("Load", 9, None))
    assert plan(stage).start == ("Smoke",)


def test_a_stage_whose_actions_all_succeeded_succeeds() -> None:
    """§1.2: all actions must complete successfully before the stage is complete."""
    stage = actions(("Build", 1, OK), ("Test", 2, OK))
    assert plan(stage) == StagePlan((), StageExecutionStatus.SUCCEEDED)


def test_in_flight_actions_keep_the_stage_open() -> None:
    """§1.2: the stage is in progress while any of its actions is."""
    assert plan(actions(("Build", 1, RUNNING))) == StagePlan((), None)


# plan: failure and stop -----------------------------------------------------------------------


def test_a_failure_waits_for_in_flight_siblings_then_fails_the_stage() -> None:
    """§1.6: a failed action fails its stage once the stage completes; no later runOrder starts."""
    stage = actions(("Unit", 1, FAILED), ("Lint", 1, RUNNING), ("Deploy", 2, None))
    assert plan(stage) == StagePlan((), None)
    stage = actions(("Unit", 1, FAILED), ("Lint", 1, OK), ("Deploy", 2, None))
    assert plan(stage) == StagePlan((), StageExecutionStatus.FAILED)


def test_stopping_starts_nothing_new_and_ends_stopped_when_in_flight_actions_end() -> None:
    """§1.7 stop and wait: in-progress actions finish, no new action starts."""
    stage = actions(("Build", 1, RUNNING), ("Test", 2, None))
    assert plan(stage, stopping=True) == StagePlan((), None)
    stage = actions(("Build", 1, OK), ("Test", 2, None))
    assert plan(stage, stopping=True) == StagePlan((), StageExecutionStatus.STOPPED)


def test_stop_and_abandon_ends_stopped() -> None:
    """§1.7 stop and abandon: in-progress actions are marked Abandoned; the stage is Stopped."""
    stage = actions(("Deploy", 1, ABANDONED), ("Notify", 1, OK))
    assert plan(stage, stopping=True).outcome is StageExecutionStatus.STOPPED


def test_a_failure_while_stopping_still_fails_the_stage() -> None:
    """§1.7: stop-and-wait lets actions end Failed; the failure is what the stage reports."""
    stage = actions(("Deploy", 1, FAILED), ("Notify", 1, ABANDONED))
    assert plan(stage, stopping=True).outcome is StageExecutionStatus.FAILED


def test_an_abandoned_action_outside_a_stop_fails_the_stage() -> None:
    """§1.5: Abandoned is not success; without a stop the stage can only have failed."""
    assert plan(actions(("Deploy", 1, ABANDONED))).outcome is StageExecutionStatus.FAILED


def test_after_a_failed_actions_retry_the_reset_action_starts_beside_running_siblings() -> None:
    """§1.6 FAILED_ACTIONS: in-progress actions continue and failed ones are triggered again."""
    stage = actions(("Unit", 1, None), ("Lint", 1, RUNNING), ("Deploy", 2, None))
    assert plan(stage) == StagePlan(("Unit",), None)


# retry_plan -----------------------------------------------------------------------------------


def test_failed_actions_retry_resets_failed_and_abandoned_actions_only() -> None:
    """§1.6 FAILED_ACTIONS: failed actions are triggered again; the rest stays as it is."""
    stage = actions(("A", 1, OK), ("B", 1, FAILED), ("C", 1, RUNNING), ("D", 1, ABANDONED))
    assert retry_plan(stage, RetryMode.FAILED_ACTIONS) == ("B", "D")


def test_all_actions_retry_resets_every_action() -> None:
    """§1.6 ALL_ACTIONS: retry from the first action in the stage."""
    stage = actions(("Build", 1, OK), ("Test", 2, FAILED), ("Deploy", 3, None))
    assert retry_plan(stage, RetryMode.ALL_ACTIONS) == ("Build", "Test", "Deploy")


def test_all_actions_retry_is_refused_while_actions_run() -> None:
    """§1.6 ALL_ACTIONS: the stage cannot have any actions in progress."""
    stage = actions(("Build", 1, FAILED), ("Lint", 1, RUNNING))
    with pytest.raises(StageNotRetryableError) as raised:
        retry_plan(stage, RetryMode.ALL_ACTIONS)
    assert raised.value.message.startswith("stage has actions in progress (Lint)")
    assert raised.value.aws_type == "StageNotRetryableException"


@pytest.mark.parametrize("mode", list(RetryMode))
def test_a_stage_without_failed_actions_is_not_retryable(mode: RetryMode) -> None:
    """§1.6: StageNotRetryableException, "the stage contains no failed actions"."""
    with pytest.raises(StageNotRetryableError, match=r"^stage contains no failed actions$"):
        retry_plan(actions(("Build", 1, OK), ("Test", 2, OK)), mode)
    with pytest.raises(StageNotRetryableError, match=r"no failed actions \(in progress: Test\)"):
        retry_plan(actions(("Build", 1, OK), ("Test", 2, RUNNING)), mode)


def test_a_stage_stopped_between_run_orders_is_retryable() -> None:
    """§1.7: the actions of the stage where an execution stopped can be retried, even when
    stop-and-wait let every started action succeed; the retry runs the remaining ones."""
    stage = actions(("Build", 1, OK), ("Test", 2, None))
    assert retry_plan(stage, RetryMode.FAILED_ACTIONS) == ()
    assert plan(stage).start == ("Test",)
    assert retry_plan(stage, RetryMode.ALL_ACTIONS) == ("Build", "Test")


# Property: simulating a stage always ends, in run order ---------------------------------------

action_specs = st.lists(st.integers(1, 4), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(run_orders=action_specs, data=st.data())
def test_a_simulated_stage_always_ends_and_respects_run_order(
    run_orders: list[int], data: st.DataObject
) -> None:
    """Whatever the action results and whenever a stop comes, plan() never starts a runOrder
    before every lower one succeeded, and the stage ends with an outcome that fits."""
    runs = {f"a{i}": ActionRun(f"a{i}", order, None) for i, order in enumerate(run_orders)}
    stopping = False
    for _ in range(4 * len(runs) + 2):
        stopping = stopping or data.draw(st.integers(0, 9)) == 0
        decision = plan(list(runs.values()), stopping=stopping)
        for name in decision.start:
            group = runs[name].run_order
            assert runs[name].status is None
            assert not stopping
            assert all(a.status is OK for a in runs.values() if a.run_order < group)
            assert {runs[n].run_order for n in decision.start} == {group}
            runs[name] = ActionRun(name, group, RUNNING)
        if decision.outcome is not None:
            check_outcome(decision.outcome, list(runs.values()), stopping)
            return
        running = [a for a in runs.values() if a.status is RUNNING]
        assert running, "the stage is stuck: nothing runs, nothing starts, no outcome"
        finished = data.draw(st.sampled_from(running))
        results = [OK, OK, FAILED] + ([ABANDONED] if stopping else [])
        runs[finished.name] = ActionRun(
            finished.name, finished.run_order, data.draw(st.sampled_from(results))
        )
    pytest.fail("the stage never ended")


def check_outcome(outcome: StageExecutionStatus, runs: list[ActionRun], stopping: bool) -> None:
    statuses = {a.status for a in runs}
    assert RUNNING not in statuses, "a stage ends only when no action is in progress"
    if outcome is StageExecutionStatus.SUCCEEDED:
        assert statuses == {OK} and not stopping
    elif outcome is StageExecutionStatus.FAILED:
        assert FAILED in statuses or (ABANDONED in statuses and not stopping)
    else:
        assert outcome is StageExecutionStatus.STOPPED
        assert stopping and FAILED not in statuses
