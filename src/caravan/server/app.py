"""The caravan ASGI application: the native JSON API, the AWS JSON 1.1 endpoint and the event
stream, over one engine.

    create_app(engine)            serve an engine that is already open (tests, embedding)
    create_app(None, opener=...)  open the engine at lifespan startup and close it at shutdown

Routes: ``POST /api/{Operation}``, ``GET /api/logs/{id}``, ``GET /api/events``, ``GET /healthz``
(native.py, events.py), ``POST /`` (awsjson.py), and ``POST /webhooks/github``,
``POST /api/hooks/git``, ``GET /api/webhooks/deliveries`` (webhooks.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette

from caravan.engine.api import EngineAPI
from caravan.server import awsjson, events, native, webhooks

HEARTBEAT_SECONDS = 15.0

EngineOpener = Callable[[], AbstractAsyncContextManager[EngineAPI]]


def create_app(
    engine: EngineAPI | None,
    *,
    opener: EngineOpener | None = None,
    max_body_bytes: int = native.MAX_BODY_BYTES,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    trigger_settings: Mapping[str, Any] | None = None,
) -> Starlette:
    """The application serving ``engine`` (or the engine ``opener`` opens for its lifetime).

    ``trigger_settings`` (``webhook_secret``, ``git_repositories``, ``git_url_template``) configure
    the git hook and webhook routes; None reads them from the environment (webhooks.py)."""
    if (engine is None) == (opener is None):
        raise ValueError("create_app needs exactly one of an engine or an opener")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if opener is None:
            yield
            return
        async with opener() as opened:
            app.state.engine = opened
            yield

    app = Starlette(
        routes=[*native.routes, *events.routes, *awsjson.routes],
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.max_body_bytes = max_body_bytes
    app.state.heartbeat_seconds = heartbeat_seconds
    webhooks.mount(app, trigger_settings)
    return app
