"""The HTTP client of the native API: the engine's operations, logs and events, remotely.

``Client`` has the shape of ``caravan.engine.api.EngineAPI`` (``call``, ``read_log``,
``follow_log``, ``subscribe``), so the code that renders boards and follows executions runs the
same against a server as against an in-process engine (``caravan run``). API errors come back as
the ``CaravanError`` the server raised; a server that does not answer is a
``ServerUnavailableError``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from caravan.cli.main import Settings
from caravan.cli.output import error_from_payload
from caravan.engine.api import LogChunk
from caravan.errors import CaravanError, ServerUnavailableError

T = TypeVar("T")

# Calls answer quickly; streams (events, followed logs) may be quiet for long stretches.
CALL_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
STREAM_TIMEOUT = httpx.Timeout(None, connect=5.0)


class Client:
    def __init__(self, url: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, transport=transport, timeout=CALL_TIMEOUT, trust_env=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _unreachable(self, exc: Exception) -> ServerUnavailableError:
        return ServerUnavailableError(
            f"cannot reach the caravan server at {self.url} — start one with `caravan server`"
        )

    async def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            response = await self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            if stream:
                await response.aread()
            raise _error_of(response)
        return response

    async def call(
        self, operation: str, request: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run one CodePipeline operation on the server."""
        http_request = self._http.build_request(
            "POST", f"/api/{quote(operation)}", json=dict(request or {})
        )
        response = await self._send(http_request)
        body = response.json()
        if not isinstance(body, dict):
            raise CaravanError(f"the server answered {operation} with {type(body).__name__}")
        return body

    async def read_log(self, action_execution_id: str, offset: int = 0) -> LogChunk:
        request = self._http.build_request(
            "GET", f"/api/logs/{quote(action_execution_id)}", params={"offset": offset}
        )
        response = await self._send(request)
        next_offset = int(response.headers.get("X-Caravan-Next-Offset", offset))
        complete = response.headers.get("X-Caravan-Log-Complete") == "true"
        return LogChunk(response.text, next_offset, complete)

    async def follow_log(self, action_execution_id: str, offset: int = 0) -> AsyncIterator[str]:
        """The log from ``offset`` as it is written, until the action ends."""
        request = self._http.build_request(
            "GET",
            f"/api/logs/{quote(action_execution_id)}",
            params={"offset": offset, "follow": 1},
            timeout=STREAM_TIMEOUT,
        )
        response = await self._send(request, stream=True)
        try:
            async for text in response.aiter_text():
                yield text
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        finally:
            await response.aclose()

    async def subscribe(self, pipeline: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """The server's change events (Server-Sent Events), as they happen."""
        params = {"pipeline": pipeline} if pipeline else {}
        request = self._http.build_request(
            "GET", "/api/events", params=params, timeout=STREAM_TIMEOUT
        )
        response = await self._send(request, stream=True)
        try:
            data: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        finally:
            await response.aclose()


def _error_of(response: httpx.Response) -> CaravanError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        return error_from_payload(payload, http_status=response.status_code)
    text = response.text.strip()[:200]
    return CaravanError(f"the server answered HTTP {response.status_code}: {text}")


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[Client]:
    client = Client(settings.url, transport=settings.transport)
    try:
        yield client
    finally:
        await client.aclose()


def run_with_client(settings: Settings, work: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``work`` with a connected client, synchronously (the body of a CLI command)."""

    async def go() -> T:
        async with connect(settings) as client:
            return await work(client)

    return asyncio.run(go())
