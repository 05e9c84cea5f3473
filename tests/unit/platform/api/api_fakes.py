"""Test doubles for the API front: an in-process invoker and a raw ASGI caller.

``FakeInvoker`` runs plain Python handlers (event -> return value) the way Lambda's Invoke
answers: the return value JSON-encoded, an exception as a function error payload. ``call_asgi``
drives an ASGI app with a scope built the way uvicorn builds it (``path`` percent-decoded once,
``raw_path`` as sent), so tests can send paths an HTTP client would normalise away.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Message

from caravan.errors import NotFoundError


@dataclass(frozen=True)
class FakeResult:
    status_code: int
    payload: bytes
    function_error: str | None
    executed_version: str


@dataclass(frozen=True)
class Raw:
    """A handler result passed through as the payload's bytes (for malformed answers)."""

    payload: bytes


Handler = Callable[[dict[str, Any]], Any]


@dataclass
class FakeInvoker:
    """Functions by name; ``versions`` maps a qualifier to the version that "executes"."""

    handlers: dict[str, Handler]
    versions: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    async def invoke(
        self, function_name: str, payload: bytes = b"", *, qualifier: str | None = None
    ) -> FakeResult:
        event = json.loads(payload)
        self.calls.append((function_name, qualifier, event))
        handler = self.handlers.get(function_name)
        if handler is None:
            raise NotFoundError(f"Function not found: {function_name}")
        version = self.versions.get(qualifier or "$LATEST", qualifier or "$LATEST")
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
            return FakeResult(200, json.dumps(error).encode(), "Unhandled", version)
        body = result.payload if isinstance(result, Raw) else json.dumps(result).encode()
        return FakeResult(200, body, None, version)


def proxy(body: str, status: int = 200, **extra: Any) -> dict[str, Any]:
    """A payload 1.0 proxy response."""
    return {"statusCode": status, "headers": {"Content-Type": "text/plain"}, "body": body, **extra}


@dataclass
class AsgiAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


async def call_asgi(
    app: ASGIApp,
    method: str,
    raw_path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    root_path: str = "",
) -> AsgiAnswer:
    """One request through ``app`` with a uvicorn-like scope; the collected answer."""
    path, _, query = raw_path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": root_path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    messages: list[Message] = []
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # a real server waits for the disconnect
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    answer_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    content = b"".join(m.get("body", b"") for m in messages[1:])
    return AsgiAnswer(start["status"], answer_headers, content)
