"""ASGI plumbing shared by the API front's apps: reading a request, sending an answer.

Mounting follows the current ASGI convention (starlette's ``Mount``): a parent passes the full
``path`` and extends ``root_path`` by its prefix; ``route_path`` gives the path below the mount.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

from starlette.types import Receive, Scope, Send

from caravan.platform.api.events import ApiRequest
from caravan.platform.api.responses import HttpResponse


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point (``root_path``), ``/`` at least."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root) :]
    return path or "/"


async def read_request(scope: Scope, receive: Receive, limit: int) -> tuple[ApiRequest, bool]:
    """The request (body read to ``limit``) and whether the body was over the limit."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        more = message.get("more_body", False)
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
    raw = scope.get("raw_path")
    full_path = raw.decode("latin-1") if raw else quote(scope["path"])
    root = scope.get("root_path", "")
    if raw and (not root or full_path.startswith(root)):
        relative = full_path[len(root) :]  # mount prefixes are plain names: same raw or not
    else:
        relative = quote(route_path(scope))
    client, server = scope.get("client"), scope.get("server")
    host_header = next((v for k, v in headers if k == "host"), None)
    host = (host_header or (server[0] if server else "localhost")).rsplit(":", 1)[0]
    request = ApiRequest(
        method=scope["method"].upper(),
        path=relative or "/",
        full_path=full_path,
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        body=b"".join(chunks),
        source_ip=client[0] if client else "127.0.0.1",
        protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        scheme=scope.get("scheme", "http"),
        port=server[1] if server and server[1] else 80,
        host=host.lower(),
        request_id=str(uuid.uuid4()),
    )
    return request, size > limit


async def send_response(send: Send, response: HttpResponse, *, head: bool = False) -> None:
    """Send ``response``; ``head`` keeps the headers (and Content-Length) but not the body."""
    headers = [(k.lower().encode("latin-1"), v.encode("utf-8")) for k, v in response.headers]
    if response.status not in (204, 304):
        headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    body = b"" if head or response.status in (204, 304) else response.body
    await send({"type": "http.response.body", "body": body})
