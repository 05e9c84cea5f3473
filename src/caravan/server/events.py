"""Server-Sent Events: ``GET /api/events?pipeline=NAME`` streams the engine's change events.

Each engine event goes out as one ``data: {json}`` message; a comment line keeps idle
connections (and the proxies between) alive. The stream lives as long as the client listens:
when it disconnects, the subscription to the engine is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from caravan.engine.api import EngineAPI
from caravan.errors import CaravanError
from caravan.server.native import (
    dump_json,
    engine_of,
    error_response,
    internal_error,
)

HEARTBEAT = b": heartbeat\n\n"

# Events on their way from the engine to one client; None marks the end of the subscription.
EventQueue = asyncio.Queue[dict[str, Any] | None]


def sse_message(event: dict[str, Any]) -> bytes:
    # json.dumps escapes newlines, so one event is always one `data:` line.
    return b"data: " + dump_json(event) + b"\n\n"


async def _pump(subscription: AsyncIterator[dict[str, Any]], queue: EventQueue) -> None:
    """Move events from the engine into ``queue``; runs as its own task so that waiting for
    the next event can time out (for the heartbeat) without cancelling the subscription."""
    try:
        async for event in subscription:
            queue.put_nowait(event)
    except Exception:
        internal_error("event subscription")
    finally:
        closer = getattr(subscription, "aclose", None)
        if closer is not None:
            await closer()
        queue.put_nowait(None)


async def event_stream(
    engine: EngineAPI, pipeline: str | None, heartbeat_seconds: float
) -> AsyncIterator[bytes]:
    """The SSE body: an opening comment (so clients know they are subscribed), then events."""
    queue: EventQueue = asyncio.Queue()
    pump = asyncio.create_task(_pump(aiter(engine.subscribe(pipeline)), queue))
    try:
        # Let the pump reach the engine first, so "subscribed" is (nearly always) true.
        await asyncio.sleep(0)
        yield b": subscribed\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), heartbeat_seconds)
            except TimeoutError:
                yield HEARTBEAT
                continue
            if item is None:
                return
            yield sse_message(item)
    finally:
        # No await here: when the client has gone, this runs inside a cancelled scope.
        pump.cancel()


async def events(request: Request) -> Response:
    engine = engine_of(request)
    pipeline = request.query_params.get("pipeline") or None
    try:
        if pipeline is not None:
            # An unknown pipeline is a 404 now rather than a stream that never says anything.
            await engine.call("GetPipeline", {"name": pipeline})
    except CaravanError as error:
        return error_response(error)
    except Exception:
        return error_response(internal_error("event stream"))
    heartbeat: float = request.app.state.heartbeat_seconds
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        event_stream(engine, pipeline, heartbeat), media_type="text/event-stream", headers=headers
    )


routes = [Route("/api/events", events, methods=["GET"])]
