"""Releases: an environment's alias moving to a new version by a strategy, watched by health
checks and hooks, rolled back automatically, its state persisted before every step.

A ``Release`` is a small state machine, one per (environment, function)::

    pending -> [pre-traffic] -> shifting (Canary, Linear: part of the traffic, one step at a time)
                             -> baking   (all traffic, watched for the policy's interval)
                             -> [post-traffic] -> promoted
    any active state -> rolled-back (health breach, failing hook, abort) | stopped (someone else
    moved the alias meanwhile: left as it is)

``ReleaseRunner`` drives it: every alias move goes through ``AliasMover.move`` (one UpdateAlias
with RevisionId compare-and-swap, recorded in the environment's move log), health is judged every
``tick`` second on the new version's own requests (health.py), hooks run against the green host
(pre-traffic: the new version alone) or the environment (post-traffic). ``ReleaseBook`` is the
environment's file, ``<root>/releases/<app>-<env>.json``: its releases by function, the history of
what it served (for ``rollback``) and the alias moves.

Durability: the release is saved before each alias move (write-ahead) and after it. A restart
*resumes* an active release (``LocalPlatform.open``): the step that was in effect is re-applied and
its interval starts over, so health is judged on fresh figures; a hook that was running is run
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from caravan.errors import CaravanError, ConflictError, NotFoundError
from caravan.model.manifest import HealthCheck, ReleasePolicy
from caravan.platform.functions import (
    AliasRecord,
    FunctionRegistry,
    PreconditionFailedException,
    ResourceNotFoundException,
)
from caravan.platform.health import MetricsSource, judge

TICK_SECONDS = 1.0  # how often health is judged while traffic shifts
MAX_MOVES = 200  # alias moves kept per environment
MAX_HISTORY = 50  # releases kept per environment for rollback
MAX_EVENTS = 40  # state changes kept per release
_log = logging.getLogger("caravan.platform.releases")


class ReleaseState(StrEnum):
    PENDING = "pending"
    PRE_TRAFFIC = "pre-traffic"
    SHIFTING = "shifting"
    BAKING = "baking"
    POST_TRAFFIC = "post-traffic"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled-back"
    STOPPED = "stopped"


ACTIVE = frozenset(
    {
        ReleaseState.PENDING,
        ReleaseState.PRE_TRAFFIC,
        ReleaseState.SHIFTING,
        ReleaseState.BAKING,
        ReleaseState.POST_TRAFFIC,
    }
)


class AliasChangedError(ConflictError):
    """The alias was moved by someone else while a release or rollback relied on it."""

    reference = "alias-changed"


@dataclass
class Release:
    """One function's release in one environment; saved as JSON in the ``ReleaseBook``."""

    id: str
    app: str
    environment: str
    function: str  # the manifest's logical name
    function_name: str  # on the platform: <app>-<function>
    alias: str
    strategy: str
    steps: list[tuple[int, int]]  # (percent of traffic on the new version, seconds to watch)
    target: str  # the new version
    previous: str | None  # the version the alias served before; None on a first deploy
    health: dict[str, Any] | None  # the HealthCheck, camelCase
    pre_traffic: list[str]
    post_traffic: list[str]
    execution_id: str | None
    started: float
    state: str = ReleaseState.PENDING
    step: int = 0  # index of the step in effect
    step_started: float = 0.0
    percent: int = 0  # share of the traffic on the new version now
    revision: str | None = None  # the alias's RevisionId after our last move (CAS)
    detail: str = ""
    ended: float | None = None
    published: bool = False  # the version was published by this environment's deploy
    green_url: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def health_check(self) -> HealthCheck | None:
        return None if self.health is None else HealthCheck.model_validate(self.health)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [list(step) for step in self.steps]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Release:
        values = dict(data)
        values["steps"] = [(int(p), int(w)) for p, w in values["steps"]]
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        """What status views show."""
        return {
            "id": self.id,
            "function": self.function_name,
            "strategy": self.strategy,
            "state": str(self.state),
            "detail": self.detail,
            "version": self.target,
            "previous": self.previous,
            "percent": self.percent,
            "executionId": self.execution_id,
            "started": self.started,
            "ended": self.ended,
        }


def plan_release(
    *,
    app: str,
    environment: str,
    function: str,
    function_name: str,
    policy: ReleasePolicy,
    target: str,
    previous: str | None,
    execution_id: str | None,
    now: float,
    published: bool = False,
) -> Release:
    """A pending release of ``target`` following ``policy``."""
    return Release(
        id=uuid.uuid4().hex[:12],
        app=app,
        environment=environment,
        function=function,
        function_name=function_name,
        alias=environment,
        strategy=str(policy.strategy),
        steps=[(step.percent, step.wait_seconds) for step in policy.steps()],
        target=target,
        previous=previous,
        health=(
            None if policy.health_check is None else policy.health_check.model_dump(by_alias=True)
        ),
        pre_traffic=list(policy.hooks.pre_traffic or ()),
        post_traffic=list(policy.hooks.post_traffic or ()),
        execution_id=execution_id,
        started=now,
        published=published,
    )


def describe_steps(release: Release) -> str:
    """``Canary: 20% for 5 s, then 100%`` and the like, for logs and summaries."""
    parts = [f"{p}% for {w} s" if w else f"{p}%" for p, w in release.steps]
    return f"{release.strategy}: " + ", then ".join(parts)


# --------------------------------------------------------------------------- the release book


class ReleaseBook:
    """One environment's release file: releases by function, history, alias moves."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.releases: dict[str, Release] = {}
        self.history: list[dict[str, Any]] = []
        self.moves: list[dict[str, Any]] = []
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            self.releases = {k: Release.from_json(v) for k, v in data["releases"].items()}
            self.history = list(data["history"])
            self.moves = list(data["moves"])

    def save(self) -> None:
        data = {
            "releases": {k: r.to_json() for k, r in sorted(self.releases.items())},
            "history": self.history,
            "moves": self.moves,
        }
        write_json(self.path, data)

    def put(self, release: Release) -> None:
        self.releases[release.function] = release
        self.save()

    def active(self) -> list[Release]:
        return [r for r in self.releases.values() if r.active]

    def add_move(self, move: dict[str, Any]) -> None:
        self.moves = [*self.moves, move][-MAX_MOVES:]
        self.save()

    def current(self) -> dict[str, Any] | None:
        return self.history[-1] if self.history else None

    def record(
        self,
        cause: str,
        *,
        execution_id: str | None = None,
        functions: Mapping[str, str] | None = None,
        site: Mapping[str, str] | None = None,
        restored_from: int | None = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        """Note what the environment serves now. Deploys of one pipeline execution make one
        release together (function and site); ``replace`` sets the whole state (a rollback)."""
        last = self.current()
        if (
            not replace
            and last is not None
            and execution_id is not None
            and last["cause"] == "deploy"
            and last["executionId"] == execution_id
        ):
            entry = last
        else:
            entry = {
                "id": (last["id"] + 1) if last else 1,
                "at": self.clock(),
                "cause": cause,
                "executionId": execution_id,
                "functions": {} if replace or last is None else dict(last["functions"]),
                "site": None if replace or last is None else last["site"],
                "restoredFrom": restored_from,
            }
            if last is not None and not replace and _same(entry, last, functions, site):
                return last  # nothing new: a redeploy of what is served already
            self.history = [*self.history, entry][-MAX_HISTORY:]
        entry["functions"].update(functions or {})
        if site is not None:
            entry["site"] = dict(site)
        entry["at"] = self.clock()
        self.save()
        return entry

    def rollback_target(self, where: str, to_version: str | None) -> dict[str, Any]:
        """The history entry a rollback restores: the one before the current (walking further
        back after a rollback), or the latest one serving ``to_version`` (a function version or
        a site label, i.e. a commit id or its prefix)."""
        current = self.current()
        if current is None:
            raise ConflictError(f"{where} has no release yet: nothing to roll back to")
        if to_version is not None:
            return self._entry_with(where, current, to_version)
        start = len(self.history) - 1
        if current["cause"] == "rollback" and current["restoredFrom"] is not None:
            start = self._index(current["restoredFrom"], start)
        for entry in reversed(self.history[:start]):
            if _state(entry) != _state(current):
                return dict(entry)
        raise ConflictError(
            f"{where} has no earlier release to roll back to (it serves {_describe(current)})"
        )

    def _entry_with(self, where: str, current: dict[str, Any], version: str) -> dict[str, Any]:
        for entry in reversed(self.history[:-1]):
            if _serves(entry, version) and _state(entry) != _state(current):
                return dict(entry)
        if _serves(current, version):
            raise ConflictError(f"{where} already serves version {version}")
        known = sorted({v for e in self.history for v in e["functions"].values()}, key=_order)
        raise NotFoundError(
            f"{where} has no release with version {version} "
            f"(function versions released there: {', '.join(known) or 'none'})"
        )

    def _index(self, entry_id: int, default: int) -> int:
        for index, entry in enumerate(self.history):
            if entry["id"] == entry_id:
                return index
        return default


def _state(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    site = entry["site"]
    return (sorted(entry["functions"].items()), site["version"] if site else None)


def _same(
    entry: Mapping[str, Any],
    last: Mapping[str, Any],
    functions: Mapping[str, str] | None,
    site: Mapping[str, str] | None,
) -> bool:
    merged = {**entry, "functions": {**entry["functions"], **(functions or {})}}
    if site is not None:
        merged["site"] = site
    return _state(merged) == _state(last)


def _serves(entry: Mapping[str, Any], version: str) -> bool:
    if version in entry["functions"].values():
        return True
    label = (entry["site"] or {}).get("label") or ""
    return len(version) >= 7 and label.startswith(version)


def _describe(entry: Mapping[str, Any]) -> str:
    parts = [f"{name} version {v}" for name, v in sorted(entry["functions"].items())]
    if entry["site"]:
        parts.append(f"site version {entry['site']['version']}")
    return ", ".join(parts) or "nothing"


def _order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` atomically (a reader sees the old or the new file, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


# ------------------------------------------------------------------------------- alias moves


class AliasMover:
    """The one way an alias moves: UpdateAlias with RevisionId compare-and-swap (CreateAlias on
    the first deploy, never delete + create), each move recorded in the environment's book."""

    def __init__(
        self,
        registry: FunctionRegistry,
        book: ReleaseBook,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.book = book
        self.clock = clock

    def read(self, function_name: str, alias: str) -> AliasRecord | None:
        try:
            return self.registry.alias(function_name, alias)
        except ResourceNotFoundException:
            return None

    def move(
        self,
        function_name: str,
        alias: str,
        version: str,
        *,
        canary: tuple[str, float] | None = None,
        expect: str | None = None,
        cause: str,
    ) -> AliasRecord:
        """Point ``alias`` at ``version`` (plus ``canary``: (version, weight)) if its revision is
        still ``expect`` (default: the one read now); ``AliasChangedError`` otherwise."""
        current = self.read(function_name, alias)
        weights = {canary[0]: round(canary[1], 6)} if canary else {}
        if current is None:
            if expect is not None:
                raise AliasChangedError(f"alias {alias} of {function_name} was deleted meanwhile")
            self.registry.create_alias(function_name, alias, version)
            if weights:
                return self.move(function_name, alias, version, canary=canary, cause=cause)
        else:
            try:
                self.registry.update_alias(
                    function_name,
                    alias,
                    function_version=version,
                    routing_config={"AdditionalVersionWeights": weights},
                    revision_id=expect or current.revision_id,
                )
            except PreconditionFailedException:
                raise AliasChangedError(
                    f"alias {alias} of {function_name} was changed by someone else "
                    f"(it points at version {current.function_version} now); left as it is"
                ) from None
        moved = self.registry.alias(function_name, alias)
        self._note(function_name, alias, current, moved, cause)
        return moved

    def remove(self, function_name: str, alias: str, *, expect: str | None, cause: str) -> None:
        """Undo a first deploy: the environment had no alias before it."""
        current = self.read(function_name, alias)
        if current is None:
            return
        if expect is not None and current.revision_id != expect:
            raise AliasChangedError(
                f"alias {alias} of {function_name} was changed by someone else; left as it is"
            )
        self.registry.delete_alias(function_name, alias)
        self._note(function_name, alias, current, None, cause)

    def _note(
        self,
        function_name: str,
        alias: str,
        before: AliasRecord | None,
        after: AliasRecord | None,
        cause: str,
    ) -> None:
        self.book.add_move(
            {
                "at": self.clock(),
                "function": function_name,
                "alias": alias,
                "from": _routing(before),
                "to": _routing(after),
                "revision": after.revision_id if after else None,
                "cause": cause,
            }
        )


def _routing(record: AliasRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"version": record.function_version, "weights": dict(record.weights)}


def serves_only(record: AliasRecord | None, version: str | None) -> bool:
    """Whether the alias sends all its traffic to ``version`` (None: there is no alias)."""
    if record is None or version is None:
        return record is None and version is None
    return record.function_version == version and not record.weights


# ------------------------------------------------------------------------------------ control


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
