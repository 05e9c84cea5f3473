"""Run the caravan server: open the engine for the app's lifetime and serve it with uvicorn.

``serve`` is what ``caravan server`` calls. The engine is opened by the app's lifespan (so it is
closed again when uvicorn shuts down); a ``CaravanError`` while opening it (a bad database URL,
an unusable data directory) is raised from ``serve`` as itself, without a traceback in the log.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caravan.engine.api import EngineAPI
from caravan.errors import CaravanError
from caravan.server.app import create_app

# Long-lived responses (event streams, followed logs) would otherwise hold shutdown forever.
GRACEFUL_SHUTDOWN_SECONDS = 3
_STARTUP_FAILED = "Application startup failed. Exiting."

OpenEngine = Callable[..., AbstractAsyncContextManager[EngineAPI]]


class _ReadyServer(uvicorn.Server):
    """A uvicorn server that reports its address (the real port when asked for port 0)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[str], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            self._on_ready(f"http://{shown}:{port}")


class _Failures:
    """Errors met while opening the engine, kept to be raised by ``serve`` as themselves."""

    def __init__(self) -> None:
        self.errors: list[CaravanError] = []

    def opener(
        self, open_engine: OpenEngine, kwargs: Mapping[str, Any]
    ) -> Callable[[], AbstractAsyncContextManager[EngineAPI]]:
        @contextlib.asynccontextmanager
        async def open_it() -> AsyncIterator[EngineAPI]:
            async with AsyncExitStack() as stack:
                try:
                    engine = await stack.enter_async_context(open_engine(**kwargs))
                except CaravanError as error:
                    self.errors.append(error)
                    raise
                yield engine

        return open_it

    def quiet(self, app: ASGIApp) -> ASGIApp:
        """``app``, minus the traceback text it sends uvicorn when opening fails cleanly."""

        async def quiet_app(scope: Scope, receive: Receive, send: Send) -> None:
            async def send_quietly(message: Message) -> None:
                if message["type"] == "lifespan.startup.failed" and self.errors:
                    message = {"type": message["type"], "message": ""}
                await send(message)

            await app(scope, receive, send_quietly if scope["type"] == "lifespan" else send)

        return quiet_app

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.errors and record.getMessage() == _STARTUP_FAILED)


def serve(
    *,
    data_dir: Path,
    host: str,
    port: int,
    database_url: str | None,
    on_ready: Callable[[str], None],
    open_engine: OpenEngine | None = None,
    log_level: str = "warning",
) -> None:
    """Serve until interrupted. ``on_ready(url)`` runs once the socket listens."""
    if open_engine is None:
        from caravan.engine.runtime import open_engine as real_open_engine

        open_engine = real_open_engine
    failures = _Failures()
    kwargs = {"data_dir": data_dir, "database_url": database_url}
    app = create_app(None, opener=failures.opener(open_engine, kwargs))
    config = uvicorn.Config(
        failures.quiet(app),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _ReadyServer(config, on_ready)
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(failures.filter)
    try:
        server.run()
    except SystemExit:
        if failures.errors:
            raise failures.errors[0] from None
        raise
    finally:
        uvicorn_log.removeFilter(failures.filter)
