"""A real engine for the dashboard tests (SQLite, filesystem artifacts, in a tmp dir) whose
actions a test controls, the server app with the dashboard mounted, and small page readers.

Actions of type {category, Custom, Step, 1} succeed at once, fail (configuration Mode=fail), or
hold until the test releases them (Mode=hold). Manual approvals are the real provider.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from caravan.actions.base import Job, JobContext, JobFailed, JobResult, JobSucceeded
from caravan.actions.registry import ProviderKind, ProviderRegistry
from caravan.engine.api import EngineAPI
from caravan.engine.engine import Engine
from caravan.engine.runtime import open_engine
from caravan.server.app import create_app
from caravan.server.dashboard import dashboard_routes
from caravan.server.dashboard.environments import EnvironmentSource

TERMINAL = {"Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"}


class Steps:
    """The provider of Step actions; held actions wait for ``release``."""

    def __init__(self) -> None:
        self.holds: dict[str, asyncio.Future[JobResult]] = {}
        self.held = asyncio.Event()

    async def provider(self, job: Job, ctx: JobContext) -> JobResult:
        ctx.log(f"step {job.action_name} starts <b>bold</b>")
        mode = job.configuration.get("Mode", "succeed")
        if mode == "fail":
            return JobFailed(job.configuration.get("Message", "step failed"))
        if mode == "hold":
            future: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
            self.holds[job.action_name] = future
            self.held.set()
            return await future
        return JobSucceeded(
            summary=job.configuration.get("Summary", f"{job.action_name} done"),
            output_variables={"Result": "ok"},
        )

    async def wait_held(self, action: str) -> None:
        async with asyncio.timeout(5):
            while action not in self.holds:
                self.held.clear()
                await self.held.wait()

    def release(self, action: str) -> None:
        self.holds.pop(action).set_result(JobSucceeded(summary=f"{action} released"))


def registry(steps: Steps) -> ProviderRegistry:
    found = ProviderRegistry()
    for category in ("Source", "Build", "Test", "Deploy"):
        found.add(category, "Custom", "Step", "1", steps.provider)
    found.add("Approval", "AWS", "Manual", "1", kind=ProviderKind.APPROVAL)
    return found


def step(name: str, *, category: str = "Build", run_order: int = 1, **config: str) -> dict:
    return {
        "name": name,
        "runOrder": run_order,
        "actionTypeId": {
            "category": category,
            "owner": "Custom",
            "provider": "Step",
            "version": "1",
        },
        "configuration": config,
    }


def approval(name: str, *, run_order: int = 1, **config: str) -> dict:
    return {
        "name": name,
        "runOrder": run_order,
        "actionTypeId": {
            "category": "Approval",
            "owner": "AWS",
            "provider": "Manual",
            "version": "1",
        },
        "configuration": config,
    }


def pipeline(name: str, stages: list[tuple[str, list[dict]]], **extra: Any) -> dict[str, Any]:
    return {
        "pipeline": {
            "name": name,
            "roleArn": "arn:aws:iam::000000000000:role/test",
            "stages": [{"name": s, "actions": a} for s, a in stages],
            **extra,
        }
    }


@asynccontextmanager
async def running_engine(tmp_path: Path, steps: Steps) -> AsyncIterator[Engine]:
    async with open_engine(
        data_dir=tmp_path / "data",
        settings={"continuation_delay": 0.01},
        registry=registry(steps),
    ) as engine:
        yield engine


def dashboard_app(engine: EngineAPI, environments: EnvironmentSource | None = None) -> Starlette:
    """The server app over ``engine`` with the dashboard mounted (by ``create_app`` when it
    does so for tests too, else here) and ``environments`` wired the way the server wires it."""
    app = create_app(engine, heartbeat_seconds=0.2)
    if not any(getattr(route, "path", None) == "/environments" for route in app.router.routes):
        app.router.routes.extend(dashboard_routes())
    if environments is not None:
        app.state.environment_source = environments
    return app


@asynccontextmanager
async def client_for(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://caravan.test") as client:
        yield client


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free loopback port in this event loop; yields its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server._serve())  # _serve: no signal handlers inside tests
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)


async def sse_messages(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """The messages of an event stream: {"event", "data", "id"} (comments skipped)."""
    message: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in message:
                yield {"event": "message", **message}
            message = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            message[field] = value.removeprefix(" ")


async def wait_for(engine: EngineAPI, name: str, check: Any, what: str) -> dict[str, Any]:
    """Poll GetPipelineState (at most 5 s) until ``check(state)`` holds."""
    try:
        async with asyncio.timeout(5):
            while True:
                state = await engine.call("GetPipelineState", {"name": name})
                if check(state):
                    return state
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def stage_of(state: dict[str, Any], stage: str) -> dict[str, Any]:
    return next(s for s in state["stageStates"] if s["stageName"] == stage)


def stage_status(state: dict[str, Any], stage: str) -> str | None:
    return (stage_of(state, stage).get("latestExecution") or {}).get("status")


def form_fields(page: str, action: str) -> dict[str, str]:
    """The hidden and prefilled fields of the first form posting to ``action`` in ``page``."""
    match = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.DOTALL)
    assert match, f"no form posting to {action}"
    fields = {}
    for tag in re.finditer(r"<input[^>]*>", match.group(1)):
        name = re.search(r'name="([^"]*)"', tag.group(0))
        value = re.search(r'value="([^"]*)"', tag.group(0))
        if name:
            fields[html.unescape(name.group(1))] = html.unescape(value.group(1) if value else "")
    return fields


def fragment(page: str, fragment_id: str) -> str:
    """The inner HTML of the fragment ``fragment_id`` of ``page``."""
    start = page.index(">", page.index(f'id="{fragment_id}" class="fragment')) + 1
    end = page.find('class="fragment', start)
    return page[start : end if end != -1 else len(page)]
