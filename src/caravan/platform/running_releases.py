"""The local platform's releases in progress: each environment's release book and alias mover,
the running releases (started, joined, stopped), the request recorder whose watchers feed their
health checks, and the shell hooks they run. ``LocalPlatform`` decides what to release
(local.py); this module runs it (with releases.ReleaseRunner) and keeps track of it."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from caravan.errors import CaravanError
from caravan.platform.api import RollingMetrics
from caravan.platform.api.metrics import RequestSample
from caravan.platform.functions import AliasRecord, FunctionRegistry
from caravan.platform.release_book import AliasMover, ReleaseBook
from caravan.platform.release_runner import ReleaseControl, ReleaseDeps, ReleaseRunner
from caravan.platform.releases import Release, ReleaseState

HOOK_TIMEOUT_S = 600.0
LogSink = Callable[[str], None]


class RequestRecorder:
    """The gateway's recorder: every request to ``metrics``, and to the watchers of running
    releases (each counts its environment's requests from the moment the release started)."""

    def __init__(self, metrics: RollingMetrics) -> None:
        self.metrics = metrics
        self._watchers: dict[int, tuple[str, str, RollingMetrics]] = {}
        self._next = 0

    def record(self, sample: RequestSample) -> None:
        self.metrics.record(sample)
        for api, stage, watcher in list(self._watchers.values()):
            if sample.api == api and sample.stage == stage:
                watcher.record(sample)

    def watch(self, api: str, stage: str) -> tuple[int, RollingMetrics]:
        self._next += 1
        watcher = RollingMetrics(window_s=7 * 24 * 3600.0, max_samples=100_000)
        self._watchers[self._next] = (api, stage, watcher)
        return self._next, watcher

    def unwatch(self, token: int) -> None:
        self._watchers.pop(token, None)


class ReleaseHost(Protocol):
    """What a running release needs of the platform (``LocalPlatform``)."""

    def environment_url(self, app: str, env: str) -> str: ...
    def open_green(self, release: Release) -> str: ...
    def close_green(self, release: Release) -> None: ...
    def command_environment(self) -> dict[str, str]: ...


@dataclass
class RunningRelease:
    release: Release
    control: ReleaseControl
    task: asyncio.Task[Release]
    sinks: list[LogSink]


class RunningReleases:
    """The releases in progress, by (app, environment, function), and each environment's book."""

    def __init__(
        self,
        root: Path,
        functions: FunctionRegistry,
        recorder: RequestRecorder,
        host: ReleaseHost,
        repo_dir: Callable[[str], Path],
    ) -> None:
        self.root = root
        self.functions = functions
        self.recorder = recorder
        self.host = host
        self.repo_dir = repo_dir
        self.books: dict[tuple[str, str], ReleaseBook] = {}
        self.running: dict[tuple[str, str, str], RunningRelease] = {}

    def start(self, release: Release, sinks: list[LogSink]) -> RunningRelease:
        app, env = release.app, release.environment
        control = ReleaseControl()
        token, watcher = self.recorder.watch(app, env)
        running: RunningRelease | None = None

        def log(text: str) -> None:
            for sink in list(running.sinks if running else sinks):
                sink(text)

        deps = ReleaseDeps(
            mover=self.mover(app, env),
            metrics=watcher,
            hooks=ShellHooks(self.host, self.repo_dir, log),
            routes=_Routes(self.host),
            save=self.book(app, env).put,
            log=log,
        )

        async def run() -> Release:
            try:
                finished = await ReleaseRunner(deps).run(release, control)
            finally:
                self.recorder.unwatch(token)
                if self.running.get(key) is running:
                    del self.running[key]
            if finished.state == ReleaseState.PROMOTED:
                self.book(app, env).record(
                    "deploy",
                    execution_id=finished.execution_id,
                    functions={finished.function: finished.target},
                )
            return finished

        key = (app, env, release.function)
        running = RunningRelease(
            release, control, asyncio.get_running_loop().create_task(run()), sinks
        )
        self.running[key] = running
        return running

    async def join(self, running: RunningRelease) -> Release:
        """Wait for a release; a cancelled waiter (the deploy action stopped) aborts it."""
        try:
            return await asyncio.shield(running.task)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                running.control.abort("the deploy action was stopped before the release ended")
                await asyncio.gather(running.task, return_exceptions=True)
                raise
            raise CaravanError(
                f"the platform closed while releasing version {running.release.target} to "
                f"{running.release.environment}; the release resumes when caravan restarts"
            ) from None

    def note_baseline(self, app: str, env: str, function: str, version: str | None) -> None:
        """Note the version an environment served before caravan released to it (an alias
        set by hand or through the Lambda API), so that a rollback can return to it."""
        book = self.book(app, env)
        current = book.current()
        if version is None or (current is not None and current["functions"].get(function)):
            return
        book.record("baseline", functions={function: version})

    def active(self, app: str, env: str) -> list[RunningRelease]:
        return [r for (a, e, _), r in self.running.items() if a == app and e == env]

    async def outcome(
        self, app: str, env: str, running: Sequence[RunningRelease]
    ) -> dict[str, Any]:
        await asyncio.gather(*(r.task for r in running), return_exceptions=True)
        return {
            "app": app,
            "environment": env,
            "releases": [r.release.summary() for r in running],
        }

    async def stop(self, app: str, reason: str, *, env_only: str | None = None) -> None:
        running = [r for (a, e, _), r in self.running.items() if a == app and env_only in (None, e)]
        for item in running:
            item.control.abort(reason)
        await asyncio.gather(*(r.task for r in running), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop every runner (releases resume on the next ``LocalPlatform.open``)."""
        tasks = [running.task for running in self.running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def book(self, app: str, env: str) -> ReleaseBook:
        book = self.books.get((app, env))
        if book is None:
            book = ReleaseBook(self.book_file(app, env), clock=self.clock)
            self.books[(app, env)] = book
        return book

    def book_file(self, app: str, env: str) -> Path:
        return self.root / "releases" / f"{app}-{env}.json"

    def mover(self, app: str, env: str) -> AliasMover:
        return AliasMover(self.functions, self.book(app, env), clock=self.clock)

    @staticmethod
    def clock() -> float:
        return time.time()


class _Routes:
    """The addresses a release needs, from the platform (releases.ReleaseRoutes)."""

    def __init__(self, host: ReleaseHost) -> None:
        self.host = host

    def environment_url(self, release: Release) -> str:
        return self.host.environment_url(release.app, release.environment)

    def open_green(self, release: Release) -> str:
        return self.host.open_green(release)

    def close_green(self, release: Release) -> None:
        self.host.close_green(release)


class ShellHooks:
    """Release hooks: shell commands in the app's repository with TARGET_URL set, run like any
    user command (scrubbed environment, process group stopped at the end)."""

    def __init__(self, host: ReleaseHost, repo_dir: Callable[[str], Path], log: LogSink) -> None:
        self.host = host
        self.repo_dir = repo_dir
        self.log = log

    async def __call__(
        self, phase: str, commands: Sequence[str], target_url: str, release: Release
    ) -> str | None:
        from caravan.actions.process import run_process, scrubbed_environment

        repo = self.repo_dir(release.app)
        with tempfile.TemporaryDirectory(prefix="caravan-hook-") as scratch:
            cwd = repo if repo.is_dir() else Path(scratch)
            env = scrubbed_environment(
                {
                    **self.host.command_environment(),
                    "TARGET_URL": target_url,
                    "RELEASE_VERSION": release.target,
                    "RELEASE_PREVIOUS_VERSION": release.previous or "",
                    "RELEASE_ENVIRONMENT": release.environment,
                },
                home=Path(scratch) / "home",
            )
            for command in commands:
                self.log(f"{phase} hook: {command} (TARGET_URL={target_url})")
                result = await run_process(
                    ["/bin/sh", "-c", command],
                    cwd=cwd,
                    env=env,
                    on_output=lambda line: self.log(f"  {line}"),
                    timeout=HOOK_TIMEOUT_S,
                )
                if result.timed_out:
                    return f"{phase} hook `{command}` timed out after {HOOK_TIMEOUT_S:g} s"
                if result.exit_code != 0:
                    last = result.output_tail.strip().splitlines()[-1:] or [""]
                    detail = f": {last[0]}" if last[0] else ""
                    status = result.exit_code
                    return f"{phase} hook `{command}` failed with exit status {status}{detail}"
        return None


def previous_version(current: AliasRecord | None, target: str) -> str | None:
    """The version a release shifts traffic away from: the alias's primary, or (when an
    interrupted split left the target as primary) the other version it routes to."""
    if current is None:
        return None
    others = [v for v in current.versions() if v != target]
    return others[0] if others else None


def ignore_log(_text: str) -> None:
    return None
