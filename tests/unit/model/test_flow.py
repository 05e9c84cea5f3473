"""Example tests of the stage-lock / supersede / queue rules, one behaviour each.

Each docstring cites the rule it guards: codepipeline.md §1.2 (locks, SUPERSEDED), §1.3
(QUEUED), §1.4 (PARALLEL), §1.6 (failure and retry), §1.7 (stop), §1.8 (transitions).
"""

from __future__ import annotations

import pytest

from caravan.errors import (
    ConcurrentExecutionsLimitError,
    NotLatestPipelineExecutionError,
    StageNotFoundError,
    StageNotRetryableError,
)
from caravan.model.flow import (
    Cancel,
    Completed,
    DisableTransition,
    Effect,
    EnableTransition,
    Entered,
    Event,
    FlowState,
    Retry,
    StageFailed,
    StageGate,
    StageStopped,
    StageSucceeded,
    Start,
    StopWaiting,
    Superseded,
    Waiting,
    apply,
    position,
)
from caravan.model.statuses import ExecutionMode

SUPERSEDED, QUEUED, PARALLEL = (
    ExecutionMode.SUPERSEDED,
    ExecutionMode.QUEUED,
    ExecutionMode.PARALLEL,
)
STAGES = ("Source", "Build", "Deploy")


def flow(mode: ExecutionMode, *events: Event, queue_limit: int = 50) -> FlowState:
    """The state after ``events`` applied in order to a fresh three-stage pipeline."""
    state = FlowState(mode=mode, stages=STAGES, queue_limit=queue_limit)
    for event in events:
        state, _ = apply(state, event)
    return state


def step(state: FlowState, event: Event) -> tuple[FlowState, list[Effect]]:
    new, effects = apply(state, event)
    return new, list(effects)


# SUPERSEDED: locks and the single waiting slot (§1.2) ----------------------------------------


def test_first_execution_enters_the_free_first_stage() -> None:
    """§1.2.1: a free stage takes the execution and locks."""
    state, effects = step(flow(SUPERSEDED), Start("a"))
    assert effects == [Entered("a", "Source")]
    assert position(state, "a") == ("Source", "in")
    assert state.gate("Source") == StageGate(occupant="a", latest="a")


def test_later_execution_waits_in_front_of_a_locked_stage() -> None:
    """§1.2.2: a locked stage makes later executions wait in front of it."""
    state, effects = step(flow(SUPERSEDED, Start("a")), Start("b"))
    assert effects == [Waiting("b", "Source")]
    assert position(state, "b") == ("Source", "waiting")
    assert position(state, "a") == ("Source", "in")


def test_newer_execution_supersedes_the_waiting_one_never_the_one_inside() -> None:
    """§1.2.3: only the waiting slot is replaced (newest wins); the running execution stays."""
    state, effects = step(flow(SUPERSEDED, Start("a"), Start("b")), Start("c"))
    assert effects == [Waiting("c", "Source"), Superseded("b", "Source")]
    assert position(state, "a") == ("Source", "in")
    assert position(state, "b") is None
    assert state.gate("Source").waiting == ("c",)


def test_success_moves_on_then_the_released_stage_admits_the_waiting_one() -> None:
    """§1.2.3: the overtaking execution continues as soon as the stage is unlocked; effects come
    in causal order (the mover first, then the admission behind it)."""
    state, effects = step(flow(SUPERSEDED, Start("a"), Start("b")), StageSucceeded("a", "Source"))
    assert effects == [Entered("a", "Build"), Entered("b", "Source")]
    assert position(state, "a") == ("Build", "in")
    assert position(state, "b") == ("Source", "in")
    assert state.gate("Source").latest == "b"


def test_supersede_happens_between_inner_stages_too() -> None:
    """§1.2.3: an execution leaving a stage into a locked one replaces the one waiting there."""
    state = flow(
        SUPERSEDED,
        Start("a"),
        StageSucceeded("a", "Source"),  # a holds Build
        Start("b"),
        StageSucceeded("b", "Source"),  # b waits for Build
        Start("c"),
    )
    state, effects = step(state, StageSucceeded("c", "Source"))
    assert effects == [Waiting("c", "Build"), Superseded("b", "Build")]
    assert position(state, "a") == ("Build", "in")
    assert position(state, "c") == ("Build", "waiting")
    assert state.gate("Source").occupant is None


def test_leaving_the_last_stage_completes_the_execution() -> None:
    """§1.2: an execution that succeeds in the last stage ends Succeeded and unlocks it."""
    state = flow(
        SUPERSEDED, Start("a"), StageSucceeded("a", "Source"), StageSucceeded("a", "Build")
    )
    state, effects = step(state, StageSucceeded("a", "Deploy"))
    assert effects == [Completed("a")]
    assert position(state, "a") is None
    assert state.gate("Deploy") == StageGate(occupant=None, latest="a")


def test_ending_a_stage_one_does_not_hold_is_an_engine_bug() -> None:
    """§1.2.1: only the lock holder can end a stage; anything else is refused, state intact."""
    state = flow(SUPERSEDED, Start("a"), Start("b"))
    with pytest.raises(ValueError, match="'b' ended stage 'Source' but does not hold it"):
        apply(state, StageSucceeded("b", "Source"))


# Failure, stop and retry (§1.2, §1.6, §1.7) --------------------------------------------------


def test_failure_releases_the_lock_and_the_failed_execution_can_no_longer_be_retried() -> None:
    """§1.2.2 / §1.6: a failure releases the lock; the waiting execution enters the failed stage
    and supersedes the failed one, which can then not be retried (NotLatest)."""
    state, effects = step(flow(SUPERSEDED, Start("a"), Start("b")), StageFailed("a", "Source"))
    assert effects == [Entered("b", "Source")]
    assert position(state, "a") is None
    with pytest.raises(NotLatestPipelineExecutionError) as raised:
        apply(state, Retry("a", "Source"))
    assert raised.value.message == (
        "execution 'a' is no longer the latest in stage 'Source': execution 'b' entered it since"
    )


def test_failed_execution_stays_latest_and_retry_re_enters_the_stage() -> None:
    """§1.6: RetryStageExecution retries the same execution in the stage it failed in."""
    state = flow(SUPERSEDED, Start("a"), StageFailed("a", "Source"))
    assert state.gate("Source") == StageGate(occupant=None, latest="a")
    state, effects = step(state, Retry("a", "Source"))
    assert effects == [Entered("a", "Source")]
    assert position(state, "a") == ("Source", "in")


def test_stop_releases_the_lock_like_a_failure() -> None:
    """§1.2.2 / §1.7: a stopped execution unlocks the stage; the waiting one goes in."""
    state, effects = step(flow(QUEUED, Start("a"), Start("b")), StageStopped("a", "Source"))
    assert effects == [Entered("b", "Source")]
    assert state.gate("Source").latest == "b"


def test_stop_behind_a_disabled_transition_keeps_the_stopped_execution_retryable() -> None:
    """§1.2.2 / §1.8: AWS's advice: disable the inbound transition before stopping, so the
    unlocked stage takes nobody and the stopped execution can be retried."""
    state = flow(
        SUPERSEDED, Start("a"), Start("b"), DisableTransition("Source"), StageStopped("a", "Source")
    )
    assert position(state, "b") == ("Source", "waiting")
    state, effects = step(state, Retry("a", "Source"))
    assert effects == [Entered("a", "Source")]
    assert position(state, "b") == ("Source", "waiting")


def test_retry_of_the_occupant_while_siblings_run_changes_nothing() -> None:
    """§1.6: failed actions may be retried before the stage completes; the execution still
    holds the stage, so nothing enters and no effect is due."""
    state = flow(SUPERSEDED, Start("a"), Start("b"))
    new, effects = step(state, Retry("a", "Source"))
    assert effects == []
    assert new == state


def test_retry_of_an_execution_that_moved_on_is_refused() -> None:
    """§1.6: an execution in one place only: it cannot re-enter a stage it already left while
    it is waiting in front of the next one."""
    state = flow(
        SUPERSEDED,
        Start("a"),
        StageSucceeded("a", "Source"),
        Start("b"),
        StageSucceeded("b", "Source"),
    )
    # b waits for Build and is still Source's latest.
    with pytest.raises(StageNotRetryableError, match="'b' is waiting in front of stage 'Build'"):
        apply(state, Retry("b", "Source"))


def test_retry_of_a_stage_nobody_ran_is_refused() -> None:
    """§1.6: StageNotRetryableException when the stage has nothing to retry."""
    with pytest.raises(StageNotRetryableError, match="stage 'Build' has no execution to retry"):
        apply(flow(SUPERSEDED, Start("a")), Retry("a", "Build"))


def test_unknown_stage_is_reported_by_name() -> None:
    """A stage name outside the pipeline is a StageNotFoundError naming the stages."""
    with pytest.raises(StageNotFoundError, match=r"'Test' is not in the pipeline \(stages: Sou"):
        apply(flow(SUPERSEDED), DisableTransition("Test"))


# Transitions (§1.2, §1.8) ---------------------------------------------------------------------


def test_disabled_transition_holds_executions_and_keeps_only_the_newest() -> None:
    """§1.2: a disabled transition behaves like a locked stage: the newest waiting execution
    supersedes older ones; enabling lets the latest in."""
    state = flow(SUPERSEDED, DisableTransition("Source"), Start("a"))
    assert position(state, "a") == ("Source", "waiting")
    state, effects = step(state, Start("b"))
    assert effects == [Waiting("b", "Source"), Superseded("a", "Source")]
    state, effects = step(state, EnableTransition("Source"))
    assert effects == [Entered("b", "Source")]
    assert state.gate("Source") == StageGate(occupant="b", latest="b")


def test_disabling_a_transition_does_not_touch_the_execution_inside() -> None:
    """§1.8: runs already past the disabled transition continue."""
    state = flow(SUPERSEDED, Start("a"), StageSucceeded("a", "Source"), DisableTransition("Build"))
    assert position(state, "a") == ("Build", "in")
    state, effects = step(state, StageSucceeded("a", "Build"))
    assert effects == [Entered("a", "Deploy")]


def test_enabling_while_the_stage_is_locked_admits_nobody_yet() -> None:
    """§1.2 / §1.8: enabling opens the gate, but the lock still holds the waiting one."""
    state = flow(SUPERSEDED, Start("a"), DisableTransition("Source"), Start("b"))
    state, effects = step(state, EnableTransition("Source"))
    assert effects == []
    state, effects = step(state, StageSucceeded("a", "Source"))
    assert effects == [Entered("a", "Build"), Entered("b", "Source")]


# StopWaiting and Cancel ----------------------------------------------------------------------


def test_stopped_inbound_execution_leaves_the_line_and_never_continues() -> None:
    """§1.2: a stopped inbound execution does not continue when the stage frees."""
    state, effects = step(flow(SUPERSEDED, Start("a"), Start("b")), StopWaiting("b"))
    assert effects == []
    assert position(state, "b") is None
    state, effects = step(state, StageSucceeded("a", "Source"))
    assert effects == [Entered("a", "Build")]
    assert state.gate("Source").occupant is None


def test_cancel_frees_the_stage_for_the_waiting_execution() -> None:
    """Cancel (pipeline updated under the execution): it leaves every gate, the stage it held
    admits the waiting one, and it can never be retried."""
    state, effects = step(flow(QUEUED, Start("a"), Start("b")), Cancel("a"))
    assert effects == [Entered("b", "Source")]
    assert position(state, "a") is None
    with pytest.raises(NotLatestPipelineExecutionError):
        apply(state, Retry("a", "Source"))


def test_cancelled_execution_loses_its_latest_marks() -> None:
    """A cancelled execution is not retryable even where nobody entered after it."""
    state = flow(SUPERSEDED, Start("a"), StageSucceeded("a", "Source"), Cancel("a"))
    assert state.gate("Source").latest is None
    assert state.gate("Build") == StageGate()
    with pytest.raises(StageNotRetryableError):
        apply(state, Retry("a", "Source"))


# QUEUED (§1.3) --------------------------------------------------------------------------------


def test_queued_executions_go_through_three_stages_in_fifo_order() -> None:
    """§1.3: executions are processed one by one in the order they are queued, stage by stage."""
    state = flow(QUEUED, Start("a"), Start("b"), Start("c"))
    assert state.gate("Source").waiting == ("b", "c")
    entered: list[tuple[str, str]] = []
    completed: list[str] = []
    # Always finish the execution in the furthest stage first, as a busy pipeline would.
    while True:
        holders = [(s, state.gate(s).occupant) for s in reversed(STAGES)]
        running = [(s, e) for s, e in holders if e is not None]
        if not running:
            break
        stage, execution = running[0]
        state, effects = step(state, StageSucceeded(execution, stage))
        entered += [(e.stage, e.execution_id) for e in effects if isinstance(e, Entered)]
        completed += [e.execution_id for e in effects if isinstance(e, Completed)]
    assert completed == ["a", "b", "c"]
    for stage in STAGES[1:]:
        assert [e for s, e in entered if s == stage] == ["a", "b", "c"]


def test_queued_mode_never_supersedes() -> None:
    """§1.3: waiting executions queue per stage instead of being superseded."""
    state, effects = step(flow(QUEUED, Start("a"), Start("b")), Start("c"))
    assert effects == [Waiting("c", "Source")]
    assert state.gate("Source").waiting == ("b", "c")


def test_queued_start_beyond_the_cap_is_refused_with_the_numbers() -> None:
    """§1.3: at most queue_limit (50 by default) executions in progress or queued."""
    state = flow(QUEUED, Start("a"))
    with pytest.raises(ConcurrentExecutionsLimitError) as raised:
        apply(state, Start("z", live=50))
    assert raised.value.message == (
        "pipeline has 50 executions in progress or queued; QUEUED mode allows at most 50"
        " (queue_limit)"
    )
    assert raised.value.aws_type == "ConcurrentPipelineExecutionsLimitExceededException"
    _, effects = step(state, Start("y", live=49))
    assert effects == [Waiting("y", "Source")]


def test_the_cap_follows_queue_limit_and_only_applies_to_queued() -> None:
    """§1.3: the cap is QUEUED's; SUPERSEDED and PARALLEL starts are never refused for it."""
    with pytest.raises(ConcurrentExecutionsLimitError, match="allows at most 2"):
        apply(flow(QUEUED, queue_limit=2), Start("a", live=2))
    for mode in (SUPERSEDED, PARALLEL):
        _, effects = step(flow(mode), Start("a", live=500))
        assert effects == [Entered("a", "Source")]


def test_queued_enable_admits_the_oldest_only() -> None:
    """§1.3 / §1.8: behind a disabled transition the queue keeps order; enabling admits its
    head, the lock keeps the rest waiting."""
    state = flow(QUEUED, DisableTransition("Source"), Start("a"), Start("b"))
    state, effects = step(state, EnableTransition("Source"))
    assert effects == [Entered("a", "Source")]
    assert state.gate("Source").waiting == ("b",)


# PARALLEL (§1.4) ------------------------------------------------------------------------------


def test_parallel_executions_never_wait_for_each_other() -> None:
    """§1.4: executions run simultaneously and independently."""
    state = flow(PARALLEL)
    for execution in ("a", "b", "c"):
        state, effects = step(state, Start(execution))
        assert effects == [Entered(execution, "Source")]
    state, effects = step(state, StageSucceeded("b", "Source"))
    assert effects == [Entered("b", "Build")]
    assert state.gate("Source") == StageGate(occupant=None, latest="c")
    assert all(position(state, e) is None for e in "abc")  # insides are not tracked


def test_parallel_disabled_transition_holds_in_order_and_enabling_admits_all() -> None:
    """§1.4 / §1.8: a disabled transition still holds PARALLEL executions; enabling lets every
    one of them in, oldest first."""
    state = flow(PARALLEL, DisableTransition("Source"), Start("a"), Start("b"))
    assert position(state, "a") == ("Source", "waiting")
    assert state.gate("Source").waiting == ("a", "b")
    state, effects = step(state, EnableTransition("Source"))
    assert effects == [Entered("a", "Source"), Entered("b", "Source")]
    assert state.gate("Source") == StageGate(latest="b")


def test_parallel_retry_does_not_depend_on_being_latest() -> None:
    """§1.4: runs are independent, so a failed run may be retried after newer ones passed."""
    state = flow(PARALLEL, Start("a"), Start("b"), StageFailed("a", "Source"))
    state, effects = step(state, Retry("a", "Source"))
    assert effects == [Entered("a", "Source")]


# Purity ---------------------------------------------------------------------------------------


def test_apply_returns_a_new_state_and_leaves_the_old_one_untouched() -> None:
    """Functional core: the engine persists the returned state; the input must not change."""
    state = flow(SUPERSEDED, Start("a"), Start("b"))
    before = dict(state.gates)
    new, _ = apply(state, StageSucceeded("a", "Source"))
    assert dict(state.gates) == before
    assert new is not state
    assert new.gates is not state.gates
