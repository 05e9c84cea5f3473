"""A deliberately naive, mutable model of the stage-lock rules, to check ``flow.apply`` against.

Written straight from the rules (codepipeline.md §1.2 to §1.8 and the flow brief), with plain
dicts and lists and no shared code with ``caravan.model.flow``: effects are tuples such as
``("Entered", "x1", "Build")`` or ``("Completed", "x1")``. Every method validates before it
mutates, so a raised error leaves the model as it was.
"""

from __future__ import annotations

from caravan.errors import (
    ConcurrentExecutionsLimitError,
    NotLatestPipelineExecutionError,
    StageNotFoundError,
    StageNotRetryableError,
)

RefEffect = tuple[str, ...]


class ReferenceFlow:
    def __init__(self, mode: str, stages: list[str], queue_limit: int = 50) -> None:
        self.mode = mode
        self.stages = list(stages)
        self.queue_limit = queue_limit
        self.occupant: dict[str, str | None] = {s: None for s in stages}
        self.latest: dict[str, str | None] = {s: None for s in stages}
        self.waiting: dict[str, list[str]] = {s: [] for s in stages}
        self.enabled: dict[str, bool] = {s: True for s in stages}

    # Queries --------------------------------------------------------------------------------

    def where(self, e: str) -> tuple[str, str] | None:
        for s in self.stages:
            if self.occupant[s] == e:
                return (s, "in")
            if e in self.waiting[s]:
                return (s, "waiting")
        return None

    def gates(self) -> dict[str, tuple[str | None, str | None, tuple[str, ...], bool]]:
        return {
            s: (self.occupant[s], self.latest[s], tuple(self.waiting[s]), self.enabled[s])
            for s in self.stages
        }

    # Events ---------------------------------------------------------------------------------

    def start(self, e: str, live: int) -> list[RefEffect]:
        if self.where(e) is not None:
            raise ValueError("already started")
        if self.mode == "QUEUED" and live >= self.queue_limit:
            raise ConcurrentExecutionsLimitError("queue is full")
        return self._arrive(e, 0)

    def succeeded(self, e: str, s: str) -> list[RefEffect]:
        i = self._stage_index(s)
        self._leave(e, s)
        if i == len(self.stages) - 1:
            effects: list[RefEffect] = [("Completed", e)]
        else:
            effects = self._arrive(e, i + 1)
        return effects + self._let_in(s)

    def failed_or_stopped(self, e: str, s: str) -> list[RefEffect]:
        self._stage_index(s)
        self._leave(e, s)
        return self._let_in(s)

    def retry(self, e: str, s: str) -> list[RefEffect]:
        self._stage_index(s)
        if self.mode != "PARALLEL":
            if self.latest[s] is None:
                raise StageNotRetryableError("nothing to retry")
            if self.latest[s] != e:
                raise NotLatestPipelineExecutionError("not the latest")
            if self.occupant[s] is not None and self.occupant[s] != e:
                raise StageNotRetryableError("someone else holds the stage")
        here = self.where(e)
        if here is not None and here != (s, "in"):
            raise StageNotRetryableError("it is somewhere else")
        if self.mode == "PARALLEL":
            self.latest[s] = e
            return [("Entered", e, s)]
        if self.occupant[s] == e:
            return []
        self.occupant[s] = e
        return [("Entered", e, s)]

    def stop_waiting(self, e: str) -> list[RefEffect]:
        for s in self.stages:
            if e in self.waiting[s]:
                self.waiting[s].remove(e)
        return []

    def disable(self, s: str) -> list[RefEffect]:
        self._stage_index(s)
        self.enabled[s] = False
        return []

    def enable(self, s: str) -> list[RefEffect]:
        self._stage_index(s)
        self.enabled[s] = True
        return self._let_in(s)

    def cancel(self, e: str) -> list[RefEffect]:
        held = [s for s in self.stages if self.occupant[s] == e]
        for s in self.stages:
            if self.occupant[s] == e:
                self.occupant[s] = None
            if self.latest[s] == e:
                self.latest[s] = None
            if e in self.waiting[s]:
                self.waiting[s].remove(e)
        effects: list[RefEffect] = []
        for s in held:
            effects += self._let_in(s)
        return effects

    # Moves ----------------------------------------------------------------------------------

    def _stage_index(self, s: str) -> int:
        if s not in self.stages:
            raise StageNotFoundError("no such stage")
        return self.stages.index(s)

    def _leave(self, e: str, s: str) -> None:
        if self.mode == "PARALLEL":
            if self.where(e) is not None:
                raise ValueError("a waiting execution cannot end a stage")
            return
        if self.occupant[s] != e:
            raise ValueError("does not hold the stage")
        self.occupant[s] = None

    def _arrive(self, e: str, i: int) -> list[RefEffect]:
        s = self.stages[i]
        if self.mode == "PARALLEL":
            if self.enabled[s]:
                self.latest[s] = e
                return [("Entered", e, s)]
            self.waiting[s].append(e)
            return [("Waiting", e, s)]
        if self.enabled[s] and self.occupant[s] is None and not self.waiting[s]:
            self.occupant[s] = e
            self.latest[s] = e
            return [("Entered", e, s)]
        if self.mode == "SUPERSEDED":
            effects: list[RefEffect] = [("Waiting", e, s)]
            effects += [("Superseded", old, s) for old in self.waiting[s]]
            self.waiting[s] = [e]
            return effects
        self.waiting[s].append(e)
        return [("Waiting", e, s)]

    def _let_in(self, s: str) -> list[RefEffect]:
        if not self.enabled[s] or not self.waiting[s]:
            return []
        if self.mode == "PARALLEL":
            effects: list[RefEffect] = []
            while self.waiting[s]:
                e = self.waiting[s].pop(0)
                self.latest[s] = e
                effects.append(("Entered", e, s))
            return effects
        if self.occupant[s] is not None:
            return []
        e = self.waiting[s].pop(0)
        self.occupant[s] = e
        self.latest[s] = e
        return [("Entered", e, s)]
