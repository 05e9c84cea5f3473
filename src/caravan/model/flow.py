"""The stage-lock / supersede / queue rules of CodePipeline as pure functions (§1.2 to §1.8).

``FlowState`` is everything that decides where executions may go: for each stage, the execution
holding its lock, the last one that entered it, the executions waiting in front of it, and
whether its inbound transition is enabled. ``apply(state, event)`` returns the next state and the
effects the engine must carry out (persist, then perform). Nothing here does I/O.

Rules:
- A stage processes one execution at a time (the lock). A failure or a stop releases it.
- SUPERSEDED: one waiting slot in front of a stage; a newer execution replaces the waiting one,
  which ends Superseded. Executions are only superseded between stages, never inside one.
- QUEUED: waiting executions form a FIFO per stage; starts beyond ``queue_limit`` live executions
  are refused.
- PARALLEL: no locks; executions never wait for each other (a disabled transition still holds
  them, in FIFO order, until it is enabled).
- A disabled inbound transition behaves like a locked stage; enabling it lets the waiting
  execution(s) in.
- An execution that failed or stopped in a stage stays the stage's ``latest`` and may be retried
  until another execution enters that stage.

Decisions the rules leave open:
- Effects come in causal order: the moving execution's own effect first (``Waiting`` before the
  ``Superseded`` it causes; ``Entered``/``Waiting``/``Completed`` of the execution that left a
  stage before the ``Entered`` of the one admitted behind it).
- ``Cancel`` clears the execution's ``latest`` marks as well, so a cancelled execution is never
  retried (a Retry raises); the stages it held admit their next waiting execution.
- PARALLEL keeps no occupants: ``position`` only reports waiting executions, ``Retry`` is not
  checked against ``latest`` and always yields ``Entered`` (the engine knows whether the stage
  is still running), and ``latest`` is the execution that entered or re-entered last.
- A Retry is refused (``StageNotRetryableError``) when the execution is running in or waiting in
  front of another stage, so an execution is never in two places.
- Events naming a stage outside ``stages`` raise ``StageNotFoundError``; events that can only
  come from an engine bug (a stage ended by an execution that does not hold it, a duplicate
  Start) raise ``ValueError``. ``StopWaiting`` of an execution that does not wait is a no-op.
- ``gates`` omits stages whose gate is the default ``StageGate()``; read it through ``gate()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import assert_never

from caravan.errors import (
    ConcurrentExecutionsLimitError,
    NotLatestPipelineExecutionError,
    StageNotFoundError,
    StageNotRetryableError,
)
from caravan.model.statuses import ExecutionMode


@dataclass(frozen=True)
class StageGate:
    occupant: str | None = None  # execution holding the stage's lock
    latest: str | None = None  # execution that entered the stage last (may have ended)
    waiting: tuple[str, ...] = ()  # inbound executions, oldest first
    transition_enabled: bool = True


@dataclass(frozen=True)
class FlowState:
    mode: ExecutionMode
    stages: tuple[str, ...]
    gates: Mapping[str, StageGate] = field(default_factory=dict)
    queue_limit: int = 50

    def gate(self, stage: str) -> StageGate:
        return self.gates.get(stage, StageGate())


# Events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """A new execution wants to enter the first stage. ``live`` counts non-terminal executions
    of the pipeline before this one (for the QUEUED cap)."""

    execution_id: str
    live: int = 0


@dataclass(frozen=True)
class StageSucceeded:
    execution_id: str
    stage: str


@dataclass(frozen=True)
class StageFailed:
    execution_id: str
    stage: str


@dataclass(frozen=True)
class StageStopped:
    execution_id: str
    stage: str


@dataclass(frozen=True)
class Retry:
    """RetryStageExecution: the execution re-enters ``stage`` (it must be the stage's latest)."""

    execution_id: str
    stage: str


@dataclass(frozen=True)
class StopWaiting:
    """An inbound (waiting) execution was stopped: it leaves the waiting line for good."""

    execution_id: str


@dataclass(frozen=True)
class DisableTransition:
    stage: str


@dataclass(frozen=True)
class EnableTransition:
    stage: str


@dataclass(frozen=True)
class Cancel:
    """The pipeline was updated under this execution: it leaves every gate (ends Cancelled)."""

    execution_id: str


Event = (
    Start
    | StageSucceeded
    | StageFailed
    | StageStopped
    | Retry
    | StopWaiting
    | DisableTransition
    | EnableTransition
    | Cancel
)


# Effects ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entered:
    """The execution took the stage's lock: start the stage's actions."""

    execution_id: str
    stage: str


@dataclass(frozen=True)
class Waiting:
    """The execution waits in front of the stage (inbound execution)."""

    execution_id: str
    stage: str


@dataclass(frozen=True)
class Superseded:
    """A newer execution replaced this waiting one; it ends Superseded."""

    execution_id: str
    stage: str


@dataclass(frozen=True)
class Completed:
    """The execution left the last stage successfully; it ends Succeeded."""

    execution_id: str


Effect = Entered | Waiting | Superseded | Completed


def apply(state: FlowState, event: Event) -> tuple[FlowState, tuple[Effect, ...]]:
    """The next state and the effects of ``event``.

    Raises ``caravan.errors.ConcurrentExecutionsLimitError`` for a Start beyond the QUEUED cap,
    ``NotLatestPipelineExecutionError`` for a Retry of an execution that is no longer the stage's
    latest, ``StageNotRetryableError`` for a Retry of a stage another execution holds.
    """
    match event:
        case Start():
            return _start(state, event)
        case StageSucceeded():
            return _succeed(state, event)
        case StageFailed() | StageStopped():
            return _halt(state, event.execution_id, event.stage)
        case Retry():
            return _retry(state, event)
        case StopWaiting():
            return _stop_waiting(state, event.execution_id), ()
        case DisableTransition():
            _index(state, event.stage)
            gate = replace(state.gate(event.stage), transition_enabled=False)
            return _with_gate(state, event.stage, gate), ()
        case EnableTransition():
            _index(state, event.stage)
            gate = replace(state.gate(event.stage), transition_enabled=True)
            return _admit(_with_gate(state, event.stage, gate), event.stage)
        case Cancel():
            return _cancel(state, event.execution_id)
        case _:
            assert_never(event)


def position(state: FlowState, execution_id: str) -> tuple[str, str] | None:
    """Where an execution is: (stage, "in") holding a lock, (stage, "waiting"), or None."""
    for stage in state.stages:
        gate = state.gate(stage)
        if gate.occupant == execution_id:
            return stage, "in"
        if execution_id in gate.waiting:
            return stage, "waiting"
    return None


# Event handlers -----------------------------------------------------------------------------

_Step = tuple[FlowState, tuple[Effect, ...]]


def _start(state: FlowState, event: Start) -> _Step:
    if not state.stages:
        raise ValueError("engine bug: a pipeline without stages cannot start an execution")
    if position(state, event.execution_id) is not None:
        raise ValueError(f"engine bug: execution {event.execution_id!r} was already started")
    if state.mode is ExecutionMode.QUEUED and event.live >= state.queue_limit:
        raise ConcurrentExecutionsLimitError(
            f"pipeline has {event.live} executions in progress or queued; QUEUED mode allows"
            f" at most {state.queue_limit} (queue_limit)",
            hint="wait for an execution to finish, or stop one, then start again",
        )
    return _arrive(state, event.execution_id, state.stages[0])


def _succeed(state: FlowState, event: StageSucceeded) -> _Step:
    index = _index(state, event.stage)
    released = _release(state, event.execution_id, event.stage)
    if index == len(state.stages) - 1:
        moved: _Step = (released, (Completed(event.execution_id),))
    else:
        moved = _arrive(released, event.execution_id, state.stages[index + 1])
    # The mover's effects come first: the stage it left admits the next execution only after.
    admitted, admissions = _admit(moved[0], event.stage)
    return admitted, moved[1] + admissions


def _halt(state: FlowState, execution_id: str, stage: str) -> _Step:
    """StageFailed / StageStopped: the lock is released; the execution stays ``latest`` (so it
    can be retried) until the next waiting execution enters."""
    _index(state, stage)
    return _admit(_release(state, execution_id, stage), stage)


def _retry(state: FlowState, event: Retry) -> _Step:
    execution_id, stage = event.execution_id, event.stage
    _index(state, stage)
    gate = state.gate(stage)
    if state.mode is not ExecutionMode.PARALLEL:
        _check_latest(gate, execution_id, stage)
    _check_not_elsewhere(state, execution_id, stage)
    if state.mode is ExecutionMode.PARALLEL:
        # No locks: the flow cannot tell whether the stage is still running; it re-enters.
        entered = _with_gate(state, stage, replace(gate, latest=execution_id))
        return entered, (Entered(execution_id, stage),)
    if gate.occupant == execution_id:
        return state, ()  # failed actions are retried while siblings still run
    entered = _with_gate(state, stage, replace(gate, occupant=execution_id))
    return entered, (Entered(execution_id, stage),)


def _check_latest(gate: StageGate, execution_id: str, stage: str) -> None:
    if gate.latest is None:
        raise StageNotRetryableError(
            f"stage {stage!r} has no execution to retry: execution {execution_id!r} has not run"
            " in it, or was cancelled"
        )
    if gate.latest != execution_id:
        raise NotLatestPipelineExecutionError(
            f"execution {execution_id!r} is no longer the latest in stage {stage!r}: execution"
            f" {gate.latest!r} entered it since"
        )
    if gate.occupant is not None and gate.occupant != execution_id:
        raise StageNotRetryableError(
            f"stage {stage!r} is held by execution {gate.occupant!r}; execution"
            f" {execution_id!r} cannot be retried in it"
        )


def _check_not_elsewhere(state: FlowState, execution_id: str, stage: str) -> None:
    where = position(state, execution_id)
    if where is None or where == (stage, "in"):
        return
    verb = "running in" if where[1] == "in" else "waiting in front of"
    raise StageNotRetryableError(
        f"execution {execution_id!r} is {verb} stage {where[0]!r}; it cannot be retried in"
        f" stage {stage!r}"
    )


def _stop_waiting(state: FlowState, execution_id: str) -> FlowState:
    for stage in state.stages:
        gate = state.gate(stage)
        if execution_id in gate.waiting:
            waiting = tuple(e for e in gate.waiting if e != execution_id)
            state = _with_gate(state, stage, replace(gate, waiting=waiting))
    return state


def _cancel(state: FlowState, execution_id: str) -> _Step:
    """The execution leaves every gate. Its ``latest`` marks are cleared too, so a cancelled
    execution can never be retried; the stages it held admit their next waiting execution."""
    released: list[str] = []
    for stage in state.stages:
        gate = state.gate(stage)
        if gate.occupant == execution_id:
            released.append(stage)
        state = _with_gate(
            state,
            stage,
            replace(
                gate,
                occupant=None if gate.occupant == execution_id else gate.occupant,
                latest=None if gate.latest == execution_id else gate.latest,
                waiting=tuple(e for e in gate.waiting if e != execution_id),
            ),
        )
    effects: tuple[Effect, ...] = ()
    for stage in released:
        state, admissions = _admit(state, stage)
        effects += admissions
    return state, effects


# Gate moves ---------------------------------------------------------------------------------


def _arrive(state: FlowState, execution_id: str, stage: str) -> _Step:
    """The execution reaches ``stage``: it enters if the stage is free, its transition enabled
    and nobody waits before it; otherwise it waits (superseding or queueing per mode)."""
    gate = state.gate(stage)
    locked = state.mode is not ExecutionMode.PARALLEL and gate.occupant is not None
    if gate.transition_enabled and not locked and not gate.waiting:
        return _enter(state, execution_id, stage), (Entered(execution_id, stage),)
    if state.mode is ExecutionMode.SUPERSEDED:
        # One waiting slot: the newest arrival takes it; the one it replaces never continues.
        replaced = tuple(Superseded(old, stage) for old in gate.waiting)
        waiting = _with_gate(state, stage, replace(gate, waiting=(execution_id,)))
        return waiting, (Waiting(execution_id, stage), *replaced)
    queued = replace(gate, waiting=(*gate.waiting, execution_id))
    return _with_gate(state, stage, queued), (Waiting(execution_id, stage),)


def _admit(state: FlowState, stage: str) -> _Step:
    """Let waiting executions into ``stage`` if its transition is enabled and it is free:
    the oldest (QUEUED; SUPERSEDED holds at most one), or all of them in order (PARALLEL)."""
    gate = state.gate(stage)
    if not gate.transition_enabled or not gate.waiting:
        return state, ()
    if state.mode is ExecutionMode.PARALLEL:
        admitted = replace(gate, latest=gate.waiting[-1], waiting=())
        return _with_gate(state, stage, admitted), tuple(Entered(e, stage) for e in gate.waiting)
    if gate.occupant is not None:
        return state, ()
    first, rest = gate.waiting[0], gate.waiting[1:]
    state = _with_gate(state, stage, replace(gate, waiting=rest))
    return _enter(state, first, stage), (Entered(first, stage),)


def _enter(state: FlowState, execution_id: str, stage: str) -> FlowState:
    gate = state.gate(stage)
    occupant = None if state.mode is ExecutionMode.PARALLEL else execution_id
    return _with_gate(state, stage, replace(gate, occupant=occupant, latest=execution_id))


def _release(state: FlowState, execution_id: str, stage: str) -> FlowState:
    """The execution leaves ``stage`` (which it must hold); it stays the stage's ``latest``."""
    gate = state.gate(stage)
    if state.mode is ExecutionMode.PARALLEL:
        # No locks to check; an execution that still waits cannot have finished a stage.
        where = position(state, execution_id)
        if where is not None:
            raise ValueError(
                f"engine bug: execution {execution_id!r} ended stage {stage!r} but is waiting"
                f" in front of stage {where[0]!r}"
            )
        return state
    if gate.occupant != execution_id:
        raise ValueError(
            f"engine bug: execution {execution_id!r} ended stage {stage!r} but does not hold it"
            f" (held by {gate.occupant!r})"
        )
    return _with_gate(state, stage, replace(gate, occupant=None))


def _with_gate(state: FlowState, stage: str, gate: StageGate) -> FlowState:
    """A copy of ``state`` with ``gate`` for ``stage``; default gates are left out so equal
    situations compare equal."""
    gates = {**state.gates, stage: gate}
    if gate == StageGate():
        del gates[stage]
    return replace(state, gates=gates)


def _index(state: FlowState, stage: str) -> int:
    try:
        return state.stages.index(stage)
    except ValueError:
        known = ", ".join(state.stages)
        raise StageNotFoundError(
            f"stage {stage!r} is not in the pipeline (stages: {known})"
        ) from None
