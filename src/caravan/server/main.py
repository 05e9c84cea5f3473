"""Run the caravan server: open the platform and the engine for the app's lifetime, serve them.

``serve`` is what ``caravan server`` calls; ``EmbeddedServer`` runs the same server inside a
running event loop (``caravan demo``). The services are opened by the app's lifespan (so they
are closed again when uvicorn shuts down): the local platform over ``<data>/platform`` first,
then the engine with ``services={"platform": platform}`` so deploy actions reach it. A
``CaravanError`` while opening them (a bad database URL, an unusable data directory) is raised
from ``serve`` as itself, without a traceback in the log. Once the socket listens, the platform
is told the server's URL, so environment URLs carry the right port.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caravan.engine.api import EngineAPI
from caravan.errors import CaravanError
from caravan.server.app import Services, ServicesOpener, create_app, set_public_url

# Long-lived responses (event streams, followed logs) would otherwise hold shutdown forever.
GRACEFUL_SHUTDOWN_SECONDS = 3
_STARTUP_FAILED = "Application startup failed. Exiting."
PLATFORM_DIR = "platform"

OpenEngine = Callable[..., AbstractAsyncContextManager[EngineAPI]]


def http_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return http_url(host, port)


def public_url(url: str) -> str:
    """The URL clients on this machine use: a wildcard address becomes the loopback one."""
    for wildcard in ("0.0.0.0", "[::]"):  # noqa: S104
        url = url.replace(f"//{wildcard}:", "//127.0.0.1:")
    return url


class _ReadyServer(uvicorn.Server):
    """A uvicorn server that reports its address (the real port when asked for port 0)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[str], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._on_ready(url_of(self.servers[0].sockets[0]))


def open_services(
    *,
    data_dir: Path,
    database_url: str | None,
    open_engine: OpenEngine,
    url: str | None = None,
) -> ServicesOpener:
    """The opener of the server's services: the platform, then the engine that uses it."""

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[Services]:
        from caravan.platform.local import LocalPlatform

        async with AsyncExitStack() as stack:
            root = data_dir / PLATFORM_DIR
            platform = await (
                LocalPlatform.open(root, public_url=url) if url else LocalPlatform.open(root)
            )
            stack.push_async_callback(platform.aclose)
            kwargs: dict[str, Any] = {"data_dir": data_dir, "database_url": database_url}
            if _takes_services(open_engine):
                kwargs["services"] = {"platform": platform}
            engine = await stack.enter_async_context(open_engine(**kwargs))
            yield Services(engine, platform)

    return opened


def _takes_services(open_engine: OpenEngine) -> bool:
    # Stand-in engines (tests of the serving itself) may predate the `services` parameter.
    try:
        parameters = inspect.signature(open_engine).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "services" or p.kind is p.VAR_KEYWORD for p in parameters)


class _Failures:
    """Errors met while opening the services, kept to be raised by ``serve`` as themselves."""

    def __init__(self) -> None:
        self.errors: list[CaravanError] = []

    def opener(self, open_them: ServicesOpener) -> ServicesOpener:
        @contextlib.asynccontextmanager
        async def open_it() -> AsyncIterator[Services]:
            async with AsyncExitStack() as stack:
                try:
                    services = await stack.enter_async_context(open_them())
                except CaravanError as error:
                    self.errors.append(error)
                    raise
                yield services

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

    @contextlib.contextmanager
    def filtering(self) -> Iterator[None]:
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.addFilter(self.filter)
        try:
            yield
        finally:
            uvicorn_log.removeFilter(self.filter)


def _build(
    data_dir: Path, database_url: str | None, open_engine: OpenEngine | None, url: str | None
) -> tuple[Starlette, _Failures]:
    if open_engine is None:
        from caravan.engine.runtime import open_engine as real_open_engine

        open_engine = real_open_engine
    failures = _Failures()
    services = open_services(
        data_dir=data_dir, database_url=database_url, open_engine=open_engine, url=url
    )
    return create_app(None, opener=failures.opener(services), dashboard=True), failures


def _config(app: ASGIApp, log_level: str, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **kwargs,
    )


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
    known = None if port == 0 else public_url(http_url(host, port))
    app, failures = _build(data_dir, database_url, open_engine, known)

    def ready(url: str) -> None:
        set_public_url(app, public_url(url))
        on_ready(url)

    config = _config(failures.quiet(app), log_level, host=host, port=port)
    server = _ReadyServer(config, ready)
    with failures.filtering():
        try:
            server.run()
        except SystemExit:
            if failures.errors:
                raise failures.errors[0] from None
            raise


class _EmbeddedUvicorn(_ReadyServer):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Inside `caravan demo`, Ctrl-C cancels the demo's task, which stops this server.
        yield


class EmbeddedServer:
    """``caravan server`` in the running event loop, on a socket the caller has bound.

    ``await start()`` returns the server's URL once it answers (or raises what stopped it
    from opening its services); ``await stop()`` shuts it down gracefully."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        data_dir: Path,
        database_url: str | None = None,
        open_engine: OpenEngine | None = None,
        log_level: str = "warning",
    ) -> None:
        self.sock = sock
        self.url = public_url(url_of(sock))
        self.app, self._failures = _build(data_dir, database_url, open_engine, self.url)
        self._ready = asyncio.Event()
        config = _config(self._failures.quiet(self.app), log_level)
        self._server = _EmbeddedUvicorn(config, lambda _: self._ready.set())
        self._task: asyncio.Task[None] | None = None

    @property
    def platform(self) -> Any:
        return getattr(self.app.state, "platform", None)

    async def _run(self) -> None:
        # SystemExit is uvicorn's way of saying startup failed; start() reports why.
        with self._failures.filtering(), contextlib.suppress(SystemExit):
            await self._server.serve(sockets=[self.sock])

    async def start(self) -> str:
        self._task = asyncio.create_task(self._run())
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.is_set():
            ready.cancel()
            await self.stop()
            if self._failures.errors:
                raise self._failures.errors[0]
            raise CaravanError("the embedded caravan server failed to start (see the log above)")
        return self.url

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
