"""ASGI plumbing shared by caravan's hand-written apps (API front, sites, S3, Lambda): what an
HTTP-only app answers to the lifespan and websocket protocols."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send


async def acknowledge_lifespan(receive: Receive, send: Send) -> None:
    """Answer startup and shutdown: these apps keep nothing to open or close."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def not_http(scope: Scope, receive: Receive, send: Send) -> None:
    """Lifespan is acknowledged; a websocket is refused (these apps serve HTTP only)."""
    if scope["type"] == "lifespan":
        await acknowledge_lifespan(receive, send)
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
