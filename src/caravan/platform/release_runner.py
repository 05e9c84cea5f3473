"""The release runner: the state machine that drives one release from its saved state to
promoted, rolled-back or stopped (see releases.py), and ``ReleaseControl``, the requests from
outside (promote, abort) it obeys. What it needs of the platform is ``ReleaseDeps``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from caravan.errors import CaravanError
from caravan.platform.health import MetricsSource, judge
from caravan.platform.release_book import AliasChangedError, AliasMover, serves_only
from caravan.platform.releases import Release, ReleaseState, describe_steps

TICK_SECONDS = 1.0  # how often health is judged while traffic shifts
MAX_EVENTS = 40  # state changes kept per release
_log = logging.getLogger("caravan.platform.releases")


class ReleaseControl:
    """Requests from outside a running release: promote (finish now) or abort (roll back)."""

    def __init__(self) -> None:
        self.request: str | None = None  # "promote" | "abort"
        self.reason = ""
        self._any = asyncio.Event()
        self._abort = asyncio.Event()

    def promote(self) -> None:
        if self.request != "abort":
            self.request = "promote"
            self._any.set()

    def abort(self, reason: str) -> None:
        if self.request != "abort":
            self.request, self.reason = "abort", reason
        self._any.set()
        self._abort.set()

    def take_promotion(self) -> bool:
        """Whether a promotion was asked for; it is handled once."""
        if self.request != "promote":
            return False
        self.request = None
        self._any.clear()
        return True

    async def pause(self, seconds: float, sleep: Callable[[float], Awaitable[None]]) -> None:
        """Sleep ``seconds`` unless a request arrives first."""
        if self.request is None:
            await _first(_coroutine(sleep(seconds)), self._any.wait())

    async def unless_aborted(self, work: Awaitable[str | None]) -> tuple[bool, str | None]:
        """Run ``work`` to its end unless an abort arrives first (then it is cancelled)."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self._abort.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            return False, None
        return True, task.result()


async def _coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


async def _first(*coroutines: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ------------------------------------------------------------------------------------- runner


class HookRunner(Protocol):
    """Runs a hook's commands with TARGET_URL; None when all succeeded, else what failed."""

    async def __call__(
        self, phase: str, commands: Sequence[str], target_url: str, release: Release
    ) -> str | None: ...


class ReleaseRoutes(Protocol):
    """The environment's addresses: its URL, and the green host pinned to a version."""

    def environment_url(self, release: Release) -> str: ...
    def open_green(self, release: Release) -> str: ...
    def close_green(self, release: Release) -> None: ...


@dataclass
class ReleaseDeps:
    mover: AliasMover
    metrics: MetricsSource
    hooks: HookRunner
    routes: ReleaseRoutes
    save: Callable[[Release], None]
    log: Callable[[str], None] = lambda _text: None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    tick: float = TICK_SECONDS


class ReleaseRunner:
    """Drives one release from its saved state to promoted, rolled-back or stopped."""

    def __init__(self, deps: ReleaseDeps) -> None:
        self.deps = deps

    async def run(self, release: Release, control: ReleaseControl) -> Release:
        try:
            if release.state != ReleaseState.PENDING:
                self._resume(release)
            while release.active:
                await self._step(release, control)
        except AliasChangedError as exc:
            self._end(release, ReleaseState.STOPPED, exc.message)
        except CaravanError as exc:  # the platform refused a step: put the old version back
            self._fail(release, exc.message)
        finally:
            if release.green_url is not None:
                self._close_green(release)
        return release

    async def _step(self, release: Release, control: ReleaseControl) -> None:
        if control.request == "abort":
            self._rollback(release, f"aborted: {control.reason}")
        elif release.state == ReleaseState.PENDING:
            self._log(release, f"release of version {release.target}: {describe_steps(release)}")
            if release.pre_traffic:
                self._enter(release, ReleaseState.PRE_TRAFFIC, "running the preTraffic hook")
            else:
                self._shift(release, 0)
        elif release.state == ReleaseState.PRE_TRAFFIC:
            await self._pre_traffic(release, control)
        elif release.state in (ReleaseState.SHIFTING, ReleaseState.BAKING):
            await self._watch(release, control)
        elif release.state == ReleaseState.POST_TRAFFIC:
            await self._post_traffic(release, control)

    # -- traffic

    def _shift(self, release: Release, index: int) -> None:
        """Take step ``index``: saved first, then the alias moves."""
        percent, wait = release.steps[index]
        full = percent >= 100 or release.previous is None
        release.step, release.percent = index, 100 if full else percent
        release.step_started = self.deps.clock()
        if full and wait <= 0:
            self._save(release)
            self._apply(release)
            self._after_full_traffic(release)
            return
        state = ReleaseState.BAKING if full else ReleaseState.SHIFTING
        share = f"{release.percent}% of the traffic" if not full else "all the traffic"
        self._enter(release, state, f"version {release.target} takes {share}, watched for {wait} s")
        self._apply(release)

    def _apply(self, release: Release) -> None:
        deps, cause = self.deps, f"release {release.id} ({release.strategy})"
        if release.percent >= 100 or release.previous is None:
            moved = deps.mover.move(
                release.function_name,
                release.alias,
                release.target,
                expect=release.revision,
                cause=cause,
            )
        else:
            moved = deps.mover.move(
                release.function_name,
                release.alias,
                release.previous,
                canary=(release.target, release.percent / 100),
                expect=release.revision,
                cause=cause,
            )
        release.revision = moved.revision_id
        self._save(release)

    async def _watch(self, release: Release, control: ReleaseControl) -> None:
        if control.take_promotion():
            self._log(release, "promoted by request: the remaining steps are skipped")
            release.step = len(release.steps) - 1
            release.steps[release.step] = (100, 0)
            self._shift(release, release.step)
            return
        _, wait = release.steps[release.step]
        elapsed = self.deps.clock() - release.step_started
        stats = self.deps.metrics.stats(release.function_name, release.target)
        verdict = judge(
            stats, release.health_check(), version=release.target, interval_over=elapsed >= wait
        )
        if verdict.action == "rollback":
            self._rollback(release, verdict.reason)
        elif verdict.action == "advance":
            self._log(release, verdict.reason)
            last = release.step + 1 >= len(release.steps)
            if release.state == ReleaseState.BAKING or last:
                self._after_full_traffic(release)
            else:
                self._shift(release, release.step + 1)
        else:
            if verdict.action == "hold" and release.detail != verdict.reason:
                release.detail = verdict.reason
                self._log(release, verdict.reason)
                self._save(release)
            remaining = wait - elapsed
            pause = min(self.deps.tick, remaining) if remaining > 0 else self.deps.tick
            await control.pause(pause, self.deps.sleep)

    def _after_full_traffic(self, release: Release) -> None:
        if release.post_traffic:
            self._enter(release, ReleaseState.POST_TRAFFIC, "running the postTraffic hook")
        else:
            self._end(
                release,
                ReleaseState.PROMOTED,
                f"version {release.target} serves all of {release.environment}",
            )

    # -- hooks

    async def _pre_traffic(self, release: Release, control: ReleaseControl) -> None:
        release.green_url = self.deps.routes.open_green(release)
        self._save(release)
        finished, failure = await control.unless_aborted(
            self.deps.hooks("preTraffic", release.pre_traffic, release.green_url, release)
        )
        self._close_green(release)
        if not finished:
            return  # aborted: the loop rolls back
        if failure is not None:
            self._rollback(release, failure)
        else:
            self._shift(release, 0)

    async def _post_traffic(self, release: Release, control: ReleaseControl) -> None:
        url = self.deps.routes.environment_url(release)
        finished, failure = await control.unless_aborted(
            self.deps.hooks("postTraffic", release.post_traffic, url, release)
        )
        if not finished:
            return
        if failure is not None:
            self._rollback(release, failure)
        else:
            self._end(
                release,
                ReleaseState.PROMOTED,
                f"version {release.target} serves all of {release.environment}",
            )

    def _close_green(self, release: Release) -> None:
        with contextlib.suppress(Exception):  # a missing route is already closed
            self.deps.routes.close_green(release)
        release.green_url = None
        self._save(release)

    # -- endings

    def _rollback(self, release: Release, reason: str) -> None:
        mover, cause = self.deps.mover, f"rollback of release {release.id}"
        current = mover.read(release.function_name, release.alias)
        if not serves_only(current, release.previous):
            if release.previous is None:
                mover.remove(
                    release.function_name, release.alias, expect=release.revision, cause=cause
                )
            else:
                mover.move(
                    release.function_name,
                    release.alias,
                    release.previous,
                    expect=release.revision,
                    cause=cause,
                )
        release.percent = 0
        self._end(release, ReleaseState.ROLLED_BACK, f"rolled back: {reason}")

    def _fail(self, release: Release, reason: str) -> None:
        try:
            self._rollback(release, reason)
        except CaravanError as again:
            self._end(release, ReleaseState.STOPPED, f"{reason}; the rollback failed too: {again}")

    def _resume(self, release: Release) -> None:
        """After a restart: adopt the alias as it is (if it is ours), redo the step in effect."""
        current = self.deps.mover.read(release.function_name, release.alias)
        ours = {release.previous, release.target}
        if current is not None and set(current.versions()) <= ours:
            release.revision = current.revision_id
        elif current is not None:
            raise AliasChangedError(
                f"alias {release.alias} of {release.function_name} now points at versions "
                f"{', '.join(current.versions())}, not this release's; left as it is"
            )
        self._log(release, f"resuming the release of version {release.target} ({release.state})")
        if release.state in (ReleaseState.SHIFTING, ReleaseState.BAKING):
            release.step_started = self.deps.clock()  # a fresh interval, judged on fresh data
            self._apply(release)
        elif release.state == ReleaseState.POST_TRAFFIC:
            release.percent = 100
            self._apply(release)

    def _enter(self, release: Release, state: ReleaseState, detail: str) -> None:
        release.state, release.detail = state, detail
        self._event(release)
        self._log(release, detail)
        self._save(release)

    def _end(self, release: Release, state: ReleaseState, detail: str) -> None:
        release.state, release.detail, release.ended = state, detail, self.deps.clock()
        self._event(release)
        self._log(release, detail)
        self._save(release)

    def _event(self, release: Release) -> None:
        event = {"at": self.deps.clock(), "state": str(release.state), "detail": release.detail}
        release.events = [*release.events, event][-MAX_EVENTS:]

    def _save(self, release: Release) -> None:
        self.deps.save(release)

    def _log(self, release: Release, text: str) -> None:
        line = f"{release.function_name}:{release.alias}: {text}"
        _log.info("%s", line)
        self.deps.log(line)
