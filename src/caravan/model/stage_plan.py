"""Which actions of a stage run next, and how the stage ends (run orders, §1.2, §1.6, §1.7).

Actions with the same runOrder run concurrently; ascending runOrders run in series. A failed
action fails the stage once its in-flight siblings end, and no later runOrder starts. Stopping
(stop-and-wait) starts nothing new and ends the stage Stopped when in-flight actions end.
Pure functions over the actions' latest statuses in the current stage attempt.

How a stage ends (``plan``), once no action is in progress:
- an action Failed -> Failed (also while stopping: the failure is the fact the user must see);
- otherwise, stopping -> Stopped (stop-and-abandon leaves Abandoned actions; stop-and-wait may
  leave actions that never started, or even none: the execution still ends Stopped there);
- otherwise an Abandoned action (outside a stop) -> Failed;
- every action Succeeded -> Succeeded.

A stage is retryable (``retry_plan``) when an action Failed or was Abandoned, or when it ended
before all of its actions ran (a stop-and-wait between run orders): AWS lets every stopped stage
be retried, not only ones with failed actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from caravan.errors import StageNotRetryableError
from caravan.model.statuses import ActionExecutionStatus, RetryMode, StageExecutionStatus


@dataclass(frozen=True)
class ActionRun:
    name: str
    run_order: int
    status: ActionExecutionStatus | None  # None: not started in this stage attempt


@dataclass(frozen=True)
class StagePlan:
    start: tuple[str, ...]  # actions to start now
    outcome: StageExecutionStatus | None  # set when the stage has ended


def plan(actions: Sequence[ActionRun], *, stopping: bool = False) -> StagePlan:
    """What to do next in a stage given each action's status."""
    running = any(a.status is _IN_PROGRESS for a in actions)
    broken = any(a.status in _BROKEN for a in actions)
    if broken or stopping:
        # Nothing new starts; the stage ends once its in-flight actions have ended.
        return StagePlan(start=(), outcome=None if running else _halted_outcome(actions, stopping))
    group = _current_group(actions)
    if group is None:
        return StagePlan(start=(), outcome=StageExecutionStatus.SUCCEEDED)
    # Every lower runOrder has succeeded (that is what makes ``group`` current), so starting its
    # not-yet-started actions never overtakes an unfinished lower group.
    start = tuple(a.name for a in actions if a.run_order == group and a.status is None)
    return StagePlan(start=start, outcome=None)


def retry_plan(actions: Sequence[ActionRun], mode: RetryMode) -> tuple[str, ...]:
    """The actions to reset for RetryStageExecution.

    FAILED_ACTIONS: the failed (and abandoned) actions; in-progress ones keep running. The stage
    must have at least one failed action. ALL_ACTIONS: every action; none may be in progress.
    Raises ``caravan.errors.StageNotRetryableError`` naming the reason.
    """
    running = [a.name for a in actions if a.status is _IN_PROGRESS]
    broken = tuple(a.name for a in actions if a.status in _BROKEN)
    cut_short = not running and any(a.status is None for a in actions)
    if not broken and not cut_short:
        raise StageNotRetryableError(
            "stage contains no failed actions"
            + (f" (in progress: {', '.join(running)})" if running else "")
        )
    if mode is RetryMode.FAILED_ACTIONS:
        return broken
    if running:
        raise StageNotRetryableError(
            f"stage has actions in progress ({', '.join(running)}); retrying ALL_ACTIONS needs"
            " them to end first",
            hint="retry with FAILED_ACTIONS, or wait for them to finish",
        )
    return tuple(a.name for a in actions)


_IN_PROGRESS = ActionExecutionStatus.IN_PROGRESS
_BROKEN = (ActionExecutionStatus.FAILED, ActionExecutionStatus.ABANDONED)


def _halted_outcome(actions: Sequence[ActionRun], stopping: bool) -> StageExecutionStatus:
    """How a stage ends when a failure or a stop prevents its remaining actions from running."""
    if any(a.status is ActionExecutionStatus.FAILED for a in actions):
        return StageExecutionStatus.FAILED
    return StageExecutionStatus.STOPPED if stopping else StageExecutionStatus.FAILED


def _current_group(actions: Sequence[ActionRun]) -> int | None:
    """The lowest runOrder whose actions have not all succeeded (None: all succeeded)."""
    pending = [a.run_order for a in actions if a.status is not ActionExecutionStatus.SUCCEEDED]
    return min(pending, default=None)
