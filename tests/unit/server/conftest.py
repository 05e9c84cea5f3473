"""Fixtures for the server tests: a fake engine with one pipeline, the app over it in-process
(httpx's ASGI transport), and the same app served by uvicorn on 127.0.0.1 (for streams)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fake_engine import FakeEngine, declaration
from starlette.applications import Starlette

from caravan.server.app import create_app


@pytest.fixture
def engine() -> FakeEngine:
    fake = FakeEngine()
    fake.add_pipeline(declaration("demo"))
    return fake


@pytest.fixture
def app(engine: FakeEngine) -> Starlette:
    return create_app(engine, max_body_bytes=64 * 1024, heartbeat_seconds=0.2)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://caravan.test") as c:
        yield c


@pytest.fixture
async def live_url(app: Starlette) -> AsyncIterator[str]:
    """The app served by uvicorn on a free loopback port, in this test's event loop."""
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
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 5)
