"""Warm worker pools: one pool per (function, version), one concurrency limit per function.

``WorkerRuntime.run(version, request)`` takes an idle worker of that version (the most recently
used, the warmest) or starts one, runs the request on it, and parks it again for reuse. A
function has at most ``concurrency_limit`` requests in flight (more is Lambda's
``TooManyRequestsException``) and at most that many live workers: starting one past the limit
first stops the longest-idle worker of another version. An idle worker exits after
``keep_alive`` seconds (a timer, not a sweep). A worker that timed out, ran out of memory or
exited is never reused. ``$LATEST`` pools are keyed by its RevisionId, so workers of a replaced
$LATEST are retired rather than reused. ``aclose()`` stops every worker and reaps it.

Functions run on the interpreter caravan runs on, whatever python3.x runtime they declare.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from caravan.platform.functions.errors import ServiceException, TooManyRequestsException
from caravan.platform.functions.layer import RuntimeExtras
from caravan.platform.functions.process import (
    RawOutcome,
    WorkerProcess,
    WorkerRequest,
    sweep_orphaned_tmp_dirs,
)
from caravan.platform.functions.records import Scope, VersionRecord

# Workers one function may run at once before invokes are throttled (429). AWS's default is an
# account-wide 1000; 32 warm processes is plenty on one machine and still bounds memory. (The API
# front benchmark was throttled at 16 connections with 10.)
DEFAULT_CONCURRENCY = 32
DEFAULT_KEEP_ALIVE_S = 300.0
_REUSABLE = frozenset({"ok", "error", "bad_request"})


def pool_key(version: VersionRecord) -> str:
    return f"$LATEST@{version.revision_id}" if version.is_latest else version.version


@dataclass
class _FunctionWorkers:
    busy: int = 0  # requests in flight, starting workers included
    live: set[WorkerProcess] = field(default_factory=set)
    idle: dict[str, list[WorkerProcess]] = field(default_factory=dict)  # key -> oldest first
    timers: dict[WorkerProcess, asyncio.TimerHandle] = field(default_factory=dict)
    parked_at: dict[WorkerProcess, float] = field(default_factory=dict)


class WorkerRuntime:
    """Starts, reuses and stops worker processes; knows nothing of aliases or logs."""

    def __init__(
        self,
        *,
        scope: Scope | None = None,
        concurrency_limit: int = DEFAULT_CONCURRENCY,
        keep_alive: float = DEFAULT_KEEP_ALIVE_S,
        extras: RuntimeExtras | None = None,
    ) -> None:
        if concurrency_limit < 1:
            raise ValueError("concurrency_limit must be at least 1")
        self.scope = scope or Scope()
        self.concurrency_limit = concurrency_limit
        self.keep_alive = keep_alive
        self.extras = extras or RuntimeExtras()
        self._functions: dict[str, _FunctionWorkers] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        sweep_orphaned_tmp_dirs()

    async def run(self, version: VersionRecord, request: WorkerRequest) -> RawOutcome:
        """Run ``request`` on a warm (or new) worker of ``version``."""
        if self._closed:
            raise ServiceException("the function runtime is closed")
        state = self._functions.setdefault(version.function_name, _FunctionWorkers())
        if state.busy >= self.concurrency_limit:
            raise TooManyRequestsException(
                f"Rate Exceeded. Function {version.function_name} has {state.busy} invocations "
                f"in flight; its concurrency limit is {self.concurrency_limit}.",
                reason="ReservedFunctionConcurrentInvocationLimitExceeded",
            )
        state.busy += 1
        worker: WorkerProcess | None = None
        try:
            worker = await self._acquire(state, version)
            outcome = await worker.run(request)
        except BaseException:
            if worker is not None:  # cancelled mid-request: the worker's state is unknown
                self._retire(state, worker)
            raise
        finally:
            state.busy -= 1
        if outcome.status in _REUSABLE and worker.alive and not worker.stale and not self._closed:
            self._park(state, worker)
        else:
            self._retire(state, worker)
        return outcome

    def retire(self, function_name: str, *, latest_only: bool = False) -> None:
        """Stop idle workers of a function now and busy ones when their request ends."""
        state = self._functions.get(function_name)
        if state is None:
            return
        for worker in list(state.live):
            if latest_only and not worker.pool_key.startswith("$LATEST@"):
                continue
            worker.stale = True
            if self._is_idle(state, worker):
                self._retire(state, worker)

    def workers(self, function_name: str) -> list[WorkerProcess]:
        """The live workers of a function (busy and idle)."""
        state = self._functions.get(function_name)
        return list(state.live) if state else []

    async def aclose(self) -> None:
        """Stop every worker and wait until each one is reaped."""
        self._closed = True
        for state in self._functions.values():
            for timer in state.timers.values():
                timer.cancel()
            state.timers.clear()
            state.idle.clear()
            for worker in list(state.live):
                self._retire(state, worker)
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    # ------------------------------------------------------------------------------- helpers

    async def _acquire(self, state: _FunctionWorkers, version: VersionRecord) -> WorkerProcess:
        key = pool_key(version)
        idle = state.idle.get(key, [])
        while idle:
            worker = idle.pop()
            self._unpark(state, worker)
            if worker.alive and not worker.stale:
                return worker
            self._retire(state, worker)
        if version.is_latest:  # a new $LATEST revision makes the old one's workers useless
            for other in list(state.live):
                if other.pool_key.startswith("$LATEST@") and other.pool_key != key:
                    other.stale = True
                    if self._is_idle(state, other):
                        self._retire(state, other)
        if len(state.live) >= self.concurrency_limit:
            self._evict_longest_idle(state)
        worker = WorkerProcess(version, self.scope, pool_key=key, extras=self.extras)
        state.live.add(worker)
        try:
            await worker.start()
        except BaseException:
            self._retire(state, worker)
            raise
        return worker

    def _park(self, state: _FunctionWorkers, worker: WorkerProcess) -> None:
        state.idle.setdefault(worker.pool_key, []).append(worker)
        state.parked_at[worker] = time.monotonic()
        state.timers[worker] = asyncio.get_running_loop().call_later(
            self.keep_alive, self._expire, state, worker
        )

    def _unpark(self, state: _FunctionWorkers, worker: WorkerProcess) -> None:
        timer = state.timers.pop(worker, None)
        if timer is not None:
            timer.cancel()
        state.parked_at.pop(worker, None)
        idle = state.idle.get(worker.pool_key, [])
        if worker in idle:
            idle.remove(worker)

    def _is_idle(self, state: _FunctionWorkers, worker: WorkerProcess) -> bool:
        return worker in state.parked_at

    def _expire(self, state: _FunctionWorkers, worker: WorkerProcess) -> None:
        if self._is_idle(state, worker):
            self._retire(state, worker)

    def _evict_longest_idle(self, state: _FunctionWorkers) -> None:
        if state.parked_at:
            oldest = min(state.parked_at, key=state.parked_at.__getitem__)
            self._retire(state, oldest)

    def _retire(self, state: _FunctionWorkers, worker: WorkerProcess) -> None:
        self._unpark(state, worker)
        state.live.discard(worker)
        worker.kill()
        task = asyncio.get_running_loop().create_task(worker.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
