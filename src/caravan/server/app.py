"""The caravan ASGI application: everything ``caravan server`` answers, on one port.

    create_app(engine)                     serve an engine that is already open (tests, embedding)
    create_app(engine, platform=platform)  ... and the local platform's apps, sites and functions
    create_app(None, opener=...)           open the services at lifespan startup, close them after

The app is a fold of middleware over a router. The router holds the server's own routes:
``POST /api/apps/{Operation}`` (apps.py), ``POST /api/{Operation}``, ``GET /api/logs/{id}``,
``GET /healthz`` (native.py), ``GET /api/events`` (events.py), ``POST /`` (awsjson.py),
``POST /webhooks/github``, ``POST /api/hooks/git``, ``GET /api/webhooks/deliveries``
(webhooks.py) and the dashboard (``GET /`` and its pages). In front of it, ``Edge`` (edge.py)
hands app hosts to the platform's front, S3- and Lambda-signed requests to the S3 API over the
engine's artifact store and to the Lambda API over the platform's functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from caravan.engine.api import EngineAPI
from caravan.server import apps, awsjson, events, native, webhooks, webhooks_v1
from caravan.server.dashboard import dashboard_routes
from caravan.server.edge import Edge, EdgeTargets

HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class Services:
    """What the server serves: the engine, and the local platform when there is one."""

    engine: EngineAPI
    platform: Any = None  # caravan.platform.local.LocalPlatform (apps.AppPlatform)


ServicesOpener = Callable[[], AbstractAsyncContextManager[Services]]


def create_app(
    engine: EngineAPI | None,
    *,
    platform: Any = None,
    opener: ServicesOpener | None = None,
    max_body_bytes: int = native.MAX_BODY_BYTES,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    trigger_settings: Mapping[str, Any] | None = None,
    dashboard: bool = False,
) -> Starlette:
    """The application serving ``engine`` (and ``platform``), or the services ``opener``
    opens for its lifetime.

    ``trigger_settings`` (``webhook_secret``, ``git_repositories``, ``git_url_template``) configure
    the git hook and webhook routes; None reads them from the environment (webhooks.py).
    ``dashboard`` mounts the web dashboard (``caravan server`` does; tests mount their own)."""
    if (engine is None) == (opener is None):
        raise ValueError("create_app needs exactly one of an engine or an opener")
    targets = EdgeTargets()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if opener is None:
            yield
            return
        async with opener() as services:
            attach(app, services)
            try:
                yield
            finally:
                targets.detach()

    app = Starlette(
        routes=[
            *apps.routes,
            *native.routes,
            *events.routes,
            *awsjson.routes,
            *(dashboard_routes() if dashboard else ()),
        ],
        middleware=[Middleware(Edge, targets=targets)],
        lifespan=lifespan,
    )
    app.state.edge = targets
    app.state.engine = engine
    app.state.platform = None
    app.state.max_body_bytes = max_body_bytes
    app.state.heartbeat_seconds = heartbeat_seconds
    webhooks.mount(app, trigger_settings)
    app.router.routes.extend(webhooks_v1.routes)
    if engine is not None:
        attach(app, Services(engine, platform))
    return app


def attach(app: Starlette, services: Services) -> None:
    """Serve ``services`` from ``app``: its routes read them from ``app.state``, the edge
    reaches the platform's front, the S3 API and the Lambda API through them."""
    app.state.engine = services.engine
    app.state.platform = services.platform
    targets: EdgeTargets = app.state.edge
    targets.attach(
        front=services.platform.front if services.platform is not None else None,
        s3=_s3_api(services.engine),
        lambda_api=_lambda_api(services),
    )
    if services.platform is not None:
        app.state.environment_source = apps.PlatformEnvironments(services.platform)


def set_public_url(app: Starlette, url: str) -> None:
    """Tell the platform and the engine the URL the server answers on (known once its socket
    listens), so environment URLs, webhook URLs and the AWS endpoint carry the right port."""
    platform = getattr(app.state, "platform", None)
    if platform is not None:
        platform.public_url = url.rstrip("/")
    set_engine_url = getattr(getattr(app.state, "engine", None), "set_public_url", None)
    if set_engine_url is not None:
        set_engine_url(url)


def _artifacts(engine: EngineAPI) -> Any:
    # The real engine keeps its artifact store on its core; a stand-in engine may have none.
    core = getattr(engine, "core", None)
    return getattr(core, "artifacts", None)


def _s3_api(engine: EngineAPI) -> Any:
    store = _artifacts(engine)
    if store is None:
        return None
    from caravan.server.s3 import S3Settings, s3_app

    # Multipart parts wait beside the engine's data rather than in a temporary directory.
    data_dir = getattr(getattr(engine, "core", None), "data_dir", None)
    uploads = Path(data_dir) / "s3-uploads" if data_dir is not None else None
    return s3_app(store, S3Settings(upload_dir=uploads))


def _lambda_api(services: Services) -> Any:
    platform = services.platform
    if platform is None:
        return None
    from caravan.server.lambda_api import lambda_app

    return lambda_app(platform.functions, platform.invoker, artifacts=_artifacts(services.engine))
