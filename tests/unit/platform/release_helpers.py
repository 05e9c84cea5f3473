"""A release bench for the release tests: a real function registry and release book in a
temporary directory, a fake clock, scripted metrics, recorded hooks and green routes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caravan.artifacts.zipfiles import zip_files
from caravan.model.manifest import ReleasePolicy
from caravan.platform.api.metrics import WindowStats
from caravan.platform.functions import FunctionRegistry
from caravan.platform.release_book import AliasMover, ReleaseBook
from caravan.platform.release_runner import ReleaseControl, ReleaseDeps, ReleaseRunner
from caravan.platform.releases import Release, plan_release

FUNCTION = "shop-api"
START = 1_000.0
ENV_URL = "http://prod.shop.localhost:7878"
GREEN_URL = "http://green.prod.shop.localhost:7878"


def window(requests: int, errors: int = 0, p99: float = 20.0) -> WindowStats:
    return WindowStats(
        300.0, requests, 0, errors, 10.0 if requests else None, p99 if requests else None
    )


class FakeTime:
    """A clock that moves only when the release sleeps; ``at`` schedules work at a time."""

    def __init__(self) -> None:
        self.now = START
        self._scheduled: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    def at(self, moment: float, work: Callable[[], None]) -> None:
        self._scheduled.append((START + moment, work))

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        due = [w for t, w in self._scheduled if t <= self.now]
        self._scheduled = [(t, w) for t, w in self._scheduled if t > self.now]
        for work in due:
            work()
        await asyncio.sleep(0)


@dataclass
class FakeMetrics:
    """The new version's figures as a function of the seconds since the start."""

    time: FakeTime
    script: Callable[[float], WindowStats] = lambda _elapsed: window(0)
    asked: list[tuple[str, str | None]] = field(default_factory=list)

    def stats(self, function: str, version: str | None) -> WindowStats:
        self.asked.append((function, version))
        return self.script(self.time.now - START)


@dataclass
class FakeHooks:
    """Hook runs recorded; ``failures`` maps a phase to the failure it reports."""

    failures: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, list[str], str]] = field(default_factory=list)

    async def __call__(
        self, phase: str, commands: Sequence[str], target_url: str, release: Release
    ) -> str | None:
        self.calls.append((phase, list(commands), target_url))
        await asyncio.sleep(0)
        return self.failures.get(phase)


@dataclass
class FakeRoutes:
    log: list[str] = field(default_factory=list)

    def environment_url(self, release: Release) -> str:
        return ENV_URL

    def open_green(self, release: Release) -> str:
        self.log.append(f"open green {release.target}")
        return GREEN_URL

    def close_green(self, release: Release) -> None:
        self.log.append("close green")


class Bench:
    """Function ``shop-api`` with versions 1-3 and alias ``prod`` on version 1."""

    def __init__(self, tmp_path: Path) -> None:
        self.registry = FunctionRegistry(tmp_path / "platform")
        self.registry.create_function(
            FUNCTION, handler="app.handler", code=code("one"), publish=True
        )
        for mark in ("two", "three"):
            self.registry.update_function_code(FUNCTION, code(mark), publish=True)
        self.registry.create_alias(FUNCTION, "prod", "1")
        self.book_path = tmp_path / "releases" / "shop-prod.json"
        self.time = FakeTime()
        self.book = ReleaseBook(self.book_path, clock=self.time.clock)
        self.metrics = FakeMetrics(self.time)
        self.hooks = FakeHooks()
        self.routes = FakeRoutes()
        self.logs: list[str] = []

    def plan(
        self, policy: dict[str, Any], *, target: str = "2", previous: str | None = "1"
    ) -> Release:
        return plan_release(
            app="shop",
            environment="prod",
            function="api",
            function_name=FUNCTION,
            policy=ReleasePolicy.model_validate(policy),
            target=target,
            previous=previous,
            execution_id="exec-1",
            now=self.time.now,
        )

    def runner(self, book: ReleaseBook | None = None) -> ReleaseRunner:
        book = book or self.book
        deps = ReleaseDeps(
            mover=AliasMover(self.registry, book, clock=self.time.clock),
            metrics=self.metrics,
            hooks=self.hooks,
            routes=self.routes,
            save=book.put,
            log=self.logs.append,
            clock=self.time.clock,
            sleep=self.time.sleep,
        )
        return ReleaseRunner(deps)

    async def run(self, release: Release, control: ReleaseControl | None = None) -> Release:
        return await self.runner().run(release, control or ReleaseControl())

    def alias(self) -> tuple[str, dict[str, float]]:
        record = self.registry.alias(FUNCTION, "prod")
        return record.function_version, dict(record.weights)

    def moves(self) -> list[tuple[float, str, dict[str, float]]]:
        """(seconds since the start, primary version, weights) of every alias move."""
        return [
            (m["at"] - START, m["to"]["version"], m["to"]["weights"])
            if m["to"]
            else (m["at"] - START, "(removed)", {})
            for m in self.book.moves
        ]


def code(mark: str) -> bytes:
    return zip_files({"app.py": f"def handler(event, context):\n    return {mark!r}\n".encode()})
