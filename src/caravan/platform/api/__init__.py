"""The API front of the local serverless platform: API Gateway's Lambda proxy integration.

    definition = load_definition(Path("openapi.yaml"))     # OpenAPI 3 / Swagger 2 + x-amazon-*
    gateway = Gateway(invoker, recorder=RollingMetrics())  # any FunctionInvoker
    gateway.deploy("dromedary", "test", definition, {"alias": "test"})
    front = FrontRouter(gateway, sites=store, routes=[HostRoute("test.dromedary.localhost",
                        site="dromedary-test", api="dromedary", stage="test")], fallback=app)

Each stage is an ASGI app; ``FrontRouter`` (hosts.py) addresses them by Host header or by path
(``/apis/{api}/{stage}/...``) and falls through to the server's other routes.
Usable without the pipeline engine: nothing here imports caravan.engine, server or store.
"""

from caravan.platform.api.cors import CorsConfig
from caravan.platform.api.events import ApiRequest, StageContext, proxy_event_v1, proxy_event_v2
from caravan.platform.api.gateway import (
    ApiNotFoundError,
    FunctionInvoker,
    Gateway,
    InvokeOutcome,
    Stage,
    api_id,
)
from caravan.platform.api.hosts import APIS_PREFIX, FrontRouter, HostRoute
from caravan.platform.api.metrics import RequestRecorder, RequestSample, RollingMetrics, WindowStats
from caravan.platform.api.openapi import (
    ApiDefinition,
    ApiDefinitionError,
    Integration,
    Route,
    load_definition,
)
from caravan.platform.api.responses import HttpResponse, map_response

__all__ = [
    "APIS_PREFIX",
    "ApiDefinition",
    "ApiDefinitionError",
    "ApiNotFoundError",
    "ApiRequest",
    "CorsConfig",
    "FrontRouter",
    "FunctionInvoker",
    "Gateway",
    "HostRoute",
    "HttpResponse",
    "Integration",
    "InvokeOutcome",
    "RequestRecorder",
    "RequestSample",
    "RollingMetrics",
    "Route",
    "Stage",
    "StageContext",
    "WindowStats",
    "api_id",
    "load_definition",
    "map_response",
    "proxy_event_v1",
    "proxy_event_v2",
]
