"""Drive a site's ASGI app with the scope uvicorn would build (``path`` decoded once), so tests
can send paths an HTTP client would normalise away (``/../``, ``%2e%2e``, backslashes)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from starlette.types import ASGIApp, Message


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def request(
    app: ASGIApp,
    raw_path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    root_path: str = "",
) -> Answer:
    path, _, query = raw_path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + unquote(path),
        "raw_path": (root_path + path).encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": root_path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    answer_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return Answer(
        start["status"], answer_headers, b"".join(m.get("body", b"") for m in messages[1:])
    )
