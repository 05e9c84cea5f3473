"""Property tests: random interleavings of flow events, checked against the reference model.

Each example builds a pipeline of 2 to 5 stages in one execution mode and drives ``flow.apply``
and ``flow_reference.ReferenceFlow`` with the same events (start, finish, fail, stop, retry,
stop-waiting, disable/enable a transition, cancel). After every step both must agree on every
gate and on the effects, and the rules' invariants must hold (§1.2 to §1.8 of codepipeline.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from flow_reference import RefEffect, ReferenceFlow
from hypothesis import given, settings
from hypothesis import strategies as st

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

# Kinds repeat to weight them: executions mostly start and move on.
KINDS = (
    *("start",) * 3,
    *("succeed",) * 7,
    "fail",
    "stop",
    *("retry",) * 2,
    "stop_waiting",
    "disable",
    "enable",
    "cancel",
    "bogus_end",
)
ALIVE = ("in", "waiting")
TERMINAL = ("completed", "superseded", "cancelled")

steps_strategy = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 30), st.integers(0, 30)),
    min_size=10,
    max_size=80,
)


def as_tuple(effect: Effect) -> RefEffect:
    match effect:
        case Entered() | Waiting() | Superseded():
            return (type(effect).__name__, effect.execution_id, effect.stage)
        case Completed():
            return ("Completed", effect.execution_id)


@dataclass
class Harness:
    """Drives both models and tracks where each execution should be, from events and effects."""

    mode: ExecutionMode
    stages: tuple[str, ...]
    state: FlowState
    ref: ReferenceFlow
    started: list[str] = field(default_factory=list)  # in start order
    fate: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    terminal_effects: Counter[str] = field(default_factory=Counter)
    next_id: int = 0

    @classmethod
    def create(cls, mode: ExecutionMode, n_stages: int, queue_limit: int) -> Harness:
        stages = tuple(f"S{i}" for i in range(n_stages))
        return cls(
            mode=mode,
            stages=stages,
            state=FlowState(mode=mode, stages=stages, queue_limit=queue_limit),
            ref=ReferenceFlow(mode.value, list(stages), queue_limit),
        )

    # Choosing events ------------------------------------------------------------------------

    def with_fate(self, *kinds: str) -> list[str]:
        return [e for e in self.started if self.fate[e][0] in kinds]

    def build(self, kind: str, a: int, b: int) -> Event | None:
        stage = self.stages[b % len(self.stages)]
        if kind == "start":
            self.next_id += 1
            return Start(f"x{self.next_id}", live=len(self.with_fate(*ALIVE)))
        if kind in ("succeed", "fail", "stop"):
            inside = self.with_fate("in")
            if not inside:
                return None
            e = inside[a % len(inside)]
            where = self.fate[e][1]
            assert where is not None
            if kind == "succeed":
                return StageSucceeded(e, where)
            return StageFailed(e, where) if kind == "fail" else StageStopped(e, where)
        if kind == "bogus_end":
            # Engine bugs are refused (ValueError) by both models in the locking modes.
            if self.mode is ExecutionMode.PARALLEL or not self.started:
                return None
            return StageSucceeded(self.started[a % len(self.started)], stage)
        if kind == "retry":
            return self.build_retry(a, b, stage)
        if kind == "stop_waiting":
            waiting = self.with_fate("waiting")
            pool = waiting if waiting and a % 3 else self.started
            return StopWaiting(pool[a % len(pool)]) if pool else None
        if kind == "disable":
            return DisableTransition(stage)
        if kind == "enable":
            return EnableTransition(stage)
        alive = self.with_fate(*ALIVE)
        return Cancel(alive[a % len(alive)]) if alive else None

    def build_retry(self, a: int, b: int, stage: str) -> Retry | None:
        if self.mode is ExecutionMode.PARALLEL:
            # Without locks the flow cannot check a retry; the engine only sends ones for an
            # execution that failed, stopped or still runs in that stage.
            pool = self.with_fate("halted", "in")
            if not pool:
                return None
            e = pool[a % len(pool)]
            own = self.fate[e][1]
            assert own is not None
            return Retry(e, own)
        # The engine never retries a completed execution (its stages have no failed action);
        # every other one is fair game: the flow itself refuses what is not retryable.
        pool = [e for e in self.started if self.fate[e][0] != "completed"]
        if not pool:
            return None
        e = pool[a % len(pool)]
        own = self.fate[e][1]
        return Retry(e, own if own is not None and b % 2 == 0 else stage)

    # Running them ---------------------------------------------------------------------------

    def run_reference(self, event: Event) -> list[RefEffect]:
        ref = self.ref
        match event:
            case Start():
                return ref.start(event.execution_id, event.live)
            case StageSucceeded():
                return ref.succeeded(event.execution_id, event.stage)
            case StageFailed() | StageStopped():
                return ref.failed_or_stopped(event.execution_id, event.stage)
            case Retry():
                return ref.retry(event.execution_id, event.stage)
            case StopWaiting():
                return ref.stop_waiting(event.execution_id)
            case DisableTransition():
                return ref.disable(event.stage)
            case EnableTransition():
                return ref.enable(event.stage)
            case Cancel():
                return ref.cancel(event.execution_id)

    def step(self, event: Event) -> None:
        expected_error: type[Exception] | None = None
        expected: list[RefEffect] = []
        try:
            expected = self.run_reference(event)
        except Exception as error:
            expected_error = type(error)
        try:
            new_state, effects = apply(self.state, event)
        except Exception as error:
            assert type(error) is expected_error, f"{event}: apply raised {error!r}"
            self.check_same_gates()
            return
        assert expected_error is None, f"{event}: apply accepted, reference raised"
        assert [as_tuple(e) for e in effects] == expected, event
        self.state = new_state
        self.track(event, effects)
        self.check_same_gates()
        self.check_invariants(effects)

    def track(self, event: Event, effects: tuple[Effect, ...]) -> None:
        match event:
            case Start():
                self.started.append(event.execution_id)
            case StageFailed() | StageStopped():
                self.fate[event.execution_id] = ("halted", event.stage)
            case StageSucceeded():
                self.fate[event.execution_id] = ("between", event.stage)
            case StopWaiting() if self.fate[event.execution_id][0] == "waiting":
                self.fate[event.execution_id] = ("stopped_waiting", None)
            case Cancel():
                self.fate[event.execution_id] = ("cancelled", None)
            case _:
                pass
        for effect in effects:
            e = effect.execution_id
            assert self.fate.get(e, ("new", None))[0] not in TERMINAL, f"{effect} after the end"
            match effect:
                case Entered():
                    self.fate[e] = ("in", effect.stage)
                case Waiting():
                    self.fate[e] = ("waiting", effect.stage)
                case Superseded():
                    # Only a waiting execution is ever superseded, never one inside a stage.
                    assert self.fate[e] == ("waiting", effect.stage), effect
                    self.fate[e] = ("superseded", effect.stage)
                    self.terminal_effects[e] += 1
                case Completed():
                    assert self.fate[e] == ("between", self.stages[-1]), effect
                    self.fate[e] = ("completed", None)
                    self.terminal_effects[e] += 1

    # Checks ---------------------------------------------------------------------------------

    def check_same_gates(self) -> None:
        for s in self.stages:
            g = self.state.gate(s)
            actual = (g.occupant, g.latest, g.waiting, g.transition_enabled)
            assert actual == self.ref.gates()[s], f"gate {s} differs from the reference"
        for e in self.started:
            assert position(self.state, e) == self.ref.where(e), e

    def check_invariants(self, effects: tuple[Effect, ...]) -> None:
        locking = self.mode is not ExecutionMode.PARALLEL
        seen: Counter[str] = Counter()
        for s in self.stages:
            g = self.state.gate(s)
            seen.update(g.waiting)
            if g.occupant is not None:
                seen[g.occupant] += 1
            assert locking or g.occupant is None, "PARALLEL keeps no locks"
            if self.mode is ExecutionMode.SUPERSEDED:
                assert len(g.waiting) <= 1, f"{s} has more than one waiting execution"
            free = g.occupant is None or not locking
            assert not (free and g.transition_enabled and g.waiting), f"{s} holds them for nothing"
        assert all(n == 1 for n in seen.values()), f"an execution is in two places: {seen}"
        for e in self.started:
            # No execution is lost: it is where its history says, or it has ended.
            kind, stage = self.fate[e]
            expected = (stage, kind) if kind in ALIVE else None
            if kind == "in" and not locking:
                expected = None  # PARALLEL does not track executions inside stages
            assert position(self.state, e) == expected, (e, self.fate[e])
            assert self.terminal_effects[e] <= 1
        if self.mode is ExecutionMode.QUEUED:
            self.check_fifo(effects)

    def check_fifo(self, effects: tuple[Effect, ...]) -> None:
        order = {e: i for i, e in enumerate(self.started)}
        for s in self.stages:
            waiting = self.state.gate(s).waiting
            assert list(waiting) == sorted(waiting, key=order.__getitem__), f"{s}: {waiting}"
        for effect in effects:
            if isinstance(effect, Entered):
                behind = self.state.gate(effect.stage).waiting
                older = [w for w in behind if order[w] < order[effect.execution_id]]
                assert not older, f"{effect.execution_id} overtook {older} at {effect.stage}"


Steps = list[tuple[str, int, int]]


def run(mode: ExecutionMode, n_stages: int, queue_limit: int, steps: Steps) -> None:
    harness = Harness.create(mode, n_stages, queue_limit)
    for kind, a, b in steps:
        event = harness.build(kind, a, b)
        if event is not None:
            harness.step(event)


# 600 examples of 10 to 80 events keep this file within a few seconds.
fast = settings(max_examples=200, deadline=None)


@fast
@given(n_stages=st.integers(2, 5), steps=steps_strategy)
def test_superseded_mode_matches_reference_and_keeps_invariants(
    n_stages: int, steps: Steps
) -> None:
    """SUPERSEDED: locks, one waiting slot per stage, newest wins, never inside a stage."""
    run(ExecutionMode.SUPERSEDED, n_stages, 50, steps)


@fast
@given(n_stages=st.integers(2, 5), queue_limit=st.integers(1, 6), steps=steps_strategy)
def test_queued_mode_matches_reference_and_keeps_invariants(
    n_stages: int, queue_limit: int, steps: Steps
) -> None:
    """QUEUED: locks, FIFO waiting lines nobody overtakes, starts refused beyond the cap."""
    run(ExecutionMode.QUEUED, n_stages, queue_limit, steps)


@fast
@given(n_stages=st.integers(2, 5), steps=steps_strategy)
def test_parallel_mode_matches_reference_and_keeps_invariants(n_stages: int, steps: Steps) -> None:
    """PARALLEL: no locks; only disabled transitions hold executions, released in order."""
    run(ExecutionMode.PARALLEL, n_stages, 50, steps)
