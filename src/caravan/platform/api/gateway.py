"""The API front: APIs with stages, each stage an ASGI app invoking functions through Lambda
proxy integrations.

    gateway = Gateway(invoker, recorder=RollingMetrics())
    gateway.deploy("dromedary", "test", load_definition(path), {"alias": "test"})
    app = gateway.app("dromedary", "test")          # ASGI; routes below its mount point

``deploy`` replaces a stage's routes and variables in one reference swap: a request reads its
stage once when it arrives, so the next request sees the new routes while requests in flight
finish on the old ones. Any ``invoker`` with Lambda's async ``invoke`` will do (``FunctionInvoker``;
the platform's ``caravan.platform.functions.Invoker`` is one).

How a request is answered, as API Gateway answers it:

* CORS preflight (when the API declares CORS): ``204`` from the gateway itself (cors.py).
* No route: a REST API (payload 1.0) answers ``403 {"message": "Missing Authentication Token"}``
  — API Gateway's famous answer for an unknown resource or method — and an HTTP API (payload
  2.0) ``404 {"message": "Not Found"}``. An unknown API or stage is ``404 Not Found``.
* The function's answer is mapped by responses.py (malformed -> ``502``); a function error ->
  ``502 {"message": "Internal server error"}``; the function timing out (``Sandbox.Timedout``)
  or the integration timeout (``timeoutInMillis``) passing -> ``504 {"message": "Endpoint
  request timed out"}`` (API Gateway answers 502 for the former: the 504 tells the two failure
  kinds apart, deliberately); the function being throttled -> ``429``; the function missing or
  unusable -> ``500``.
* Every answer carries ``x-amzn-RequestId`` (REST) or ``apigw-requestid`` (HTTP), and, when a
  function ran, ``x-amz-executed-version`` (Lambda's name for it; useful to see which version of
  an alias answered during a canary).

Every request is reported to the ``recorder`` (metrics.py) with its latency and status.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from caravan.asgi import not_http
from caravan.errors import CaravanError, InvalidInputError, NotFoundError
from caravan.platform.api.asgi import read_request, send_response
from caravan.platform.api.cors import without_cors
from caravan.platform.api.events import ApiRequest, StageContext, proxy_event_v1, proxy_event_v2
from caravan.platform.api.metrics import RequestRecorder, RequestSample
from caravan.platform.api.openapi import ApiDefinition
from caravan.platform.api.responses import (
    HttpResponse,
    gateway_error,
    internal_error,
    map_response,
)
from caravan.platform.api.routing import RouteMatch, match_route

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload quota
DEFAULT_ACCOUNT = "123456789012"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_VARIABLE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_log = logging.getLogger("caravan.platform.api")


class InvokeOutcome(Protocol):
    """What the gateway reads of an Invoke response."""

    @property
    def payload(self) -> bytes: ...
    @property
    def function_error(self) -> str | None: ...
    @property
    def executed_version(self) -> str: ...


class FunctionInvoker(Protocol):
    """Lambda's synchronous Invoke, as the gateway calls it."""

    async def invoke(
        self, function_name: str, payload: bytes = ..., *, qualifier: str | None = ...
    ) -> InvokeOutcome: ...


class ApiNotFoundError(NotFoundError):
    reference = "api-stage-not-found"
    aws_type = "NotFoundException"


@dataclass(frozen=True)
class Stage:
    """One deployed stage: its routes (a definition) and its variables."""

    api: str
    name: str
    api_id: str
    definition: ApiDefinition
    variables: Mapping[str, str]
    deployed_at: datetime


@dataclass(frozen=True)
class _Outcome:
    response: HttpResponse
    function: str | None = None
    version: str | None = None
    preflight: bool = False  # the gateway's own CORS answer: its headers are final


class Gateway:
    """APIs by name, each with stages; every stage served as an ASGI app."""

    def __init__(
        self,
        invoker: FunctionInvoker,
        *,
        recorder: RequestRecorder | None = None,
        account_id: str = DEFAULT_ACCOUNT,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.invoker = invoker
        self.recorder = recorder
        self.account_id = account_id
        self.max_body_bytes = max_body_bytes
        self._stages: dict[tuple[str, str], Stage] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------- control

    def deploy(
        self,
        api: str,
        stage: str,
        definition: ApiDefinition,
        variables: Mapping[str, str] | None = None,
    ) -> Stage:
        """Create or replace ``api``'s ``stage`` atomically; the next request sees it."""
        variables = dict(variables or {})
        _check_deploy(api, stage, definition, variables)
        deployed = Stage(api, stage, api_id(api), definition, variables, datetime.now(UTC))
        with self._lock:
            self._stages[(api, stage)] = deployed  # one reference swap: never half a stage
        return deployed

    def delete_stage(self, api: str, stage: str) -> None:
        with self._lock:
            if self._stages.pop((api, stage), None) is None:
                raise ApiNotFoundError(f"API {api!r} has no stage {stage!r}")

    def stage(self, api: str, stage: str) -> Stage:
        found = self._stages.get((api, stage))
        if found is None:
            raise ApiNotFoundError(f"API {api!r} has no stage {stage!r}")
        return found

    def apis(self) -> list[str]:
        return sorted({api for api, _ in self._stages})

    def stages(self, api: str) -> list[Stage]:
        return [s for (name, _), s in sorted(self._stages.items()) if name == api]

    # ---------------------------------------------------------------------------- serving

    def app(self, api: str, stage: str) -> ASGIApp:
        """The ASGI app of one stage; it routes on the path below its ``root_path``."""

        async def stage_app(scope: Scope, receive: Receive, send: Send) -> None:
            await self.serve(api, stage, scope, receive, send)

        return stage_app

    async def serve(self, api: str, stage: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI request addressed to ``api``'s ``stage``."""
        if scope["type"] != "http":
            await not_http(scope, receive, send)
            return
        started = time.perf_counter()
        deployed = self._stages.get((api, stage))  # read once: a deploy now won't split us
        request, too_large = await read_request(scope, receive, self.max_body_bytes)
        if deployed is None:
            outcome = _Outcome(gateway_error(404, "Not Found", "NotFoundException"))
        elif too_large:
            outcome = _Outcome(gateway_error(413, "Request Entity Too Large"))
        else:
            outcome = await self._answer(deployed, request)
        response = _decorate(outcome, deployed, request)
        await send_response(send, response, head=request.method == "HEAD")
        if self.recorder is not None:
            latency = (time.perf_counter() - started) * 1000
            self.recorder.record(
                RequestSample(
                    api, stage, outcome.function, outcome.version, response.status, latency
                )
            )

    async def _answer(self, stage: Stage, request: ApiRequest) -> _Outcome:
        definition = stage.definition
        cors = definition.cors
        origin = request.header("origin")
        wanted = request.header("access-control-request-method")
        if cors is not None and request.method == "OPTIONS" and origin and wanted:
            asked = request.header("access-control-request-headers") or ""
            headers = cors.preflight_headers(origin, wanted, asked)
            return _Outcome(HttpResponse(204, headers), preflight=True)
        match = match_route(definition, request.method, request.path)
        if match is None:
            if definition.kind == "HTTP":
                return _Outcome(gateway_error(404, "Not Found"))
            return _Outcome(
                gateway_error(
                    403, "Missing Authentication Token", "MissingAuthenticationTokenException"
                )
            )
        try:
            return await self._invoke(stage, request, match)
        except Exception:  # never a traceback to the client: log it, answer like API Gateway
            _log.exception("API %s stage %s: integration failed", stage.api, stage.name)
            return _Outcome(internal_error(500))

    async def _invoke(self, stage: Stage, request: ApiRequest, match: RouteMatch) -> _Outcome:
        integration = match.route.integration
        try:
            function, qualifier = integration.target(stage.variables)
        except ValueError as exc:
            _log.warning("API %s stage %s: integration uri: %s", stage.api, stage.name, exc)
            return _Outcome(internal_error(500))
        context = StageContext(stage.api_id, stage.name, dict(stage.variables), self.account_id)
        build = proxy_event_v2 if integration.payload_format_version == "2.0" else proxy_event_v1
        payload = json.dumps(build(request, match, context)).encode()
        try:
            result = await asyncio.wait_for(
                self.invoker.invoke(function, payload, qualifier=qualifier),
                timeout=integration.timeout_ms / 1000,
            )
        except TimeoutError:
            return _Outcome(gateway_error(504, "Endpoint request timed out"), function)
        except CaravanError as exc:
            _log.warning("API %s stage %s: invoke %s: %s", stage.api, stage.name, function, exc)
            if exc.http_status == 429:
                return _Outcome(gateway_error(429, "Too Many Requests"), function)
            return _Outcome(
                internal_error(500),
                function,
            )
        version = result.executed_version
        if result.function_error is not None:
            if _error_type(result.payload) == "Sandbox.Timedout":
                return _Outcome(gateway_error(504, "Endpoint request timed out"), function, version)
            return _Outcome(
                internal_error(502),
                function,
                version,
            )
        response = map_response(result.payload, integration.payload_format_version)
        return _Outcome(response, function, version)


def api_id(name: str) -> str:
    """A stable 10-character id for an API name, in API Gateway's alphabet."""
    digest = hashlib.sha256(name.encode()).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:10]


def _decorate(outcome: _Outcome, stage: Stage | None, request: ApiRequest) -> HttpResponse:
    """The response plus the gateway's headers: request id, executed version, CORS."""
    response = outcome.response
    headers = list(response.headers)
    cors = stage.definition.cors if stage is not None else None
    if cors is not None and not outcome.preflight:
        headers = without_cors(headers) + cors.response_headers(request.header("origin"))
    rest = stage is None or stage.definition.kind == "REST"
    headers.append(("x-amzn-requestid" if rest else "apigw-requestid", request.request_id))
    if outcome.version is not None:
        headers.append(("x-amz-executed-version", outcome.version))
    return HttpResponse(response.status, headers, response.body)


def _error_type(payload: bytes) -> str | None:
    try:
        error = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return error.get("errorType") if isinstance(error, dict) else None


def _check_deploy(
    api: str, stage: str, definition: ApiDefinition, variables: Mapping[str, str]
) -> None:
    problems = []
    if not _NAME.match(api):
        problems.append(f"API name {api!r} must be 1-128 letters, digits, '-' or '_'")
    if not _NAME.match(stage):
        problems.append(f"stage name {stage!r} must be 1-128 letters, digits, '-' or '_'")
    for name, value in variables.items():
        if not isinstance(name, str) or not _VARIABLE.match(name):
            problems.append(f"stage variable name {name!r} must be [A-Za-z0-9_]{{1,64}}")
        elif not isinstance(value, str):
            problems.append(f"stage variable {name!r} must be a string, not {type(value).__name__}")
    missing = sorted(definition.stage_variables - set(variables))
    if missing:
        problems.append(f"the integrations use stage variable(s) {missing} the stage does not set")
    if problems:
        raise InvalidInputError(f"cannot deploy {api}/{stage}: " + "; ".join(problems))
