"""Fixtures for the CLI tests: the fake engine served by uvicorn on 127.0.0.1 in a thread
(one server per module; each test gets a fresh engine), and ``caravan`` run in-process with
click's CliRunner against it."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner, Result
from starlette.applications import Starlette

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from fake_engine import FakeEngine, declaration

from caravan.cli.main import cli
from caravan.server.app import create_app

STAGES = {"Source": ["Checkout"], "Build": ["Compile", "Test"], "Deploy": ["Approve", "Release"]}

Caravan = Callable[..., Result]


@dataclass
class Served:
    app: Starlette
    url: str


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    app = create_app(FakeEngine(), heartbeat_seconds=0.5)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Served(app, f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def engine(served: Served) -> FakeEngine:
    fake = FakeEngine()
    fake.add_pipeline(declaration("demo", STAGES))
    served.app.state.engine = fake
    return fake


@pytest.fixture
def caravan(served: Served, engine: FakeEngine) -> Caravan:
    """Run ``caravan --url <server> ARGS...``; CARAVAN_DEBUG lets unexpected errors fail tests."""
    runner = CliRunner()

    def invoke(*args: str, url: str | None = None, debug: bool = True) -> Result:
        env = {"COLUMNS": "120", "CARAVAN_DEBUG": "1" if debug else None}
        return runner.invoke(
            cli, ["--url", url or served.url, *args], env=env, catch_exceptions=False
        )

    return invoke
