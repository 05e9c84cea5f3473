"""The Lambda API (REST JSON, 2015-03-31) over the platform's functions, as one ASGI app.

    app = lambda_app(registry, invoker)                   # ZipFile uploads only
    app = lambda_app(registry, invoker, artifacts=store)  # Code.S3Bucket/S3Key read from store

boto3 and the AWS CLI reach it with ``endpoint_url`` (or ``AWS_ENDPOINT_URL_LAMBDA``). Each
request is matched to its operation (routes.py), read within its size limit (requests.py) and run
against the registry (off the event loop: it writes to disk) or the invoker. Any failure becomes
Lambda's error response (errors.py); an unexpected one is logged with its traceback and answered
``500 ServiceException`` without details. Every answer carries ``x-amzn-RequestId``. Requests may
be SigV4-signed; signatures are not checked (the server listens on loopback).

The app serves paths under ``/2015-03-31/functions`` and keeps no state of its own: the caller
owns the registry and the invoker (and closes the invoker with ``await invoker.aclose()``). In a
Starlette app, add ``starlette_routes(app)`` to the routes: a bare ``Mount`` would answer the
prefix itself (ListFunctions, CreateFunction) with a redirect that SDKs do not follow.
"""

from __future__ import annotations

import logging
import uuid

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from caravan.artifacts.store import ArtifactStore
from caravan.asgi import acknowledge_lifespan
from caravan.errors import CaravanError
from caravan.platform.functions import FunctionRegistry, Invoker, ServiceException
from caravan.server.lambda_api.errors import error_response
from caravan.server.lambda_api.requests import Call, query_of
from caravan.server.lambda_api.routes import PREFIX, match

logger = logging.getLogger("caravan.server.lambda_api")


def lambda_app(
    registry: FunctionRegistry, invoker: Invoker, *, artifacts: ArtifactStore | None = None
) -> LambdaApp:
    """An ASGI app serving the Lambda API subset over ``registry`` and ``invoker``."""
    return LambdaApp(registry, invoker, artifacts)


def starlette_routes(app: ASGIApp) -> list[BaseRoute]:
    """Routes that hand ``PREFIX`` and every path below it to ``app``, path unchanged."""
    return [Route(PREFIX, app), Mount(PREFIX, app)]


class LambdaApp:
    def __init__(
        self, registry: FunctionRegistry, invoker: Invoker, artifacts: ArtifactStore | None
    ) -> None:
        self.registry = registry
        self.invoker = invoker
        self.artifacts = artifacts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets in the Lambda API; returning closes the connection
        request_id = str(uuid.uuid4())
        try:
            response = await self._serve(scope, receive)
        except CaravanError as error:
            response = error_response(error, request_id)
        except Exception:
            logger.exception("Lambda API request %s failed", request_id)
            internal = ServiceException(
                f"internal error in the caravan server (request {request_id}; the server log "
                "has the details)"
            )
            response = error_response(internal, request_id)
        if "x-amzn-requestid" not in response.headers:
            response.headers["x-amzn-RequestId"] = request_id
        await response(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive) -> Response:
        method = scope["method"].upper()
        route, params = match(method, scope["path"], scope.get("root_path", ""))
        call = Call(
            params=params,
            query=query_of(scope.get("query_string", b"")),
            headers=Headers(scope=scope),
            receive=receive,
            registry=self.registry,
            invoker=self.invoker,
            artifacts=self.artifacts,
        )
        return await route.handler(call)
