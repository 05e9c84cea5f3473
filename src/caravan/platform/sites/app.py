"""A site as an ASGI app, with S3 website-endpoint semantics (serverless.md §4.1).

``site_app(store, site)`` serves the site's current version; the version is resolved once per
request, so a publish never mixes two versions in one answer.

* Only ``GET`` and ``HEAD`` (anything else: ``405`` with ``Allow: GET, HEAD``).
* The index document ``index.html`` answers ``/`` and every ``folder/``; ``/folder`` without the
  slash is first looked up as an object and, when only ``folder/index.html`` exists, answered
  with ``302 Found`` to ``folder/`` (query kept).
* A 4xx answer carries the error document ``error.html`` when the version has one, otherwise a
  plain HTML page naming the code and key, as S3's predefined error pages do.
* ``Content-Type`` and ``Cache-Control`` are the ones stored at publish; ``ETag`` and
  ``Last-Modified`` let ``If-None-Match`` / ``If-Modified-Since`` answer ``304``.
* Paths are percent-decoded once; a key with a ``.``/``..`` segment, a backslash or a NUL is
  never looked up, and only names listed in the version's manifest are ever opened, so no path —
  ``/../``, ``%2e%2e``, ``..%5c`` — can reach outside the version's directory.
"""

from __future__ import annotations

import html
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

from caravan.asgi import not_http
from caravan.errors import CaravanError
from caravan.platform.sites.store import FileMeta, SiteStore, SiteVersion

INDEX_DOCUMENT = "index.html"
ERROR_DOCUMENT = "error.html"
CHUNK = 256 * 1024
Headers = list[tuple[bytes, bytes]]


def site_app(store: SiteStore, site: str) -> ASGIApp:
    """The ASGI app serving ``site``'s current version below its mount point."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await not_http(scope, receive, send)
            return
        await _serve(store, site, scope, send)

    return app


async def _serve(store: SiteStore, site: str, scope: Scope, send: Send) -> None:
    head = scope["method"] == "HEAD"
    try:
        version = store.current(site)
    except CaravanError:  # a bad site name or a vanished version: nothing to serve
        version = None
    path = _route_path(scope)
    if version is None:
        await _error(send, None, 404, "NoSuchBucket", path.lstrip("/"), head=head)
        return
    if scope["method"] not in ("GET", "HEAD"):
        await _error(send, version, 405, "MethodNotAllowed", path.lstrip("/"), head=head)
        return
    key = _key(path)
    if key is None:
        await _error(send, version, 404, "NoSuchKey", path.lstrip("/"), head=head)
    elif key in version.files:
        await _object(send, scope, version, key, head=head)
    elif not path.endswith("/") and f"{key}/{INDEX_DOCUMENT}" in version.files:
        location = quote(scope.get("root_path", "") + path + "/")
        query = scope.get("query_string", b"").decode("latin-1")
        location += f"?{query}" if query else ""
        await _send(send, 302, [(b"location", location.encode("latin-1"))], b"", head=head)
    else:
        await _error(send, version, 404, "NoSuchKey", key, head=head)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root) :]
    return path or "/"


def _key(path: str) -> str | None:
    """The object key for a decoded request path, or None for a path that must not resolve."""
    if "\\" in path or "\x00" in path:
        return None
    relative = path.lstrip("/")
    if any(segment in (".", "..") for segment in relative.split("/")):
        return None
    if relative == "" or relative.endswith("/"):
        return relative + INDEX_DOCUMENT
    return relative


async def _object(send: Send, scope: Scope, version: SiteVersion, key: str, *, head: bool) -> None:
    meta = version.files[key]
    headers = _metadata_headers(version, meta)
    if _not_modified(scope, version, meta):
        await _send(send, 304, headers, b"", head=True)
        return
    try:
        handle = (version.root / key).open("rb")  # key is a manifest entry: inside the version
    except OSError:  # the version was pruned while this request was on its way
        await _error(send, version, 404, "NoSuchKey", key, head=head)
        return
    with handle:
        headers.append((b"content-length", str(meta.size).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if head:
            await send({"type": "http.response.body", "body": b""})
            return
        while True:
            chunk = handle.read(CHUNK)
            more = len(chunk) == CHUNK
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if not more:
                return


def _metadata_headers(version: SiteVersion, meta: FileMeta) -> Headers:
    return [
        (b"content-type", meta.content_type.encode()),
        (b"cache-control", meta.cache_control.encode()),
        (b"etag", meta.etag.encode()),
        (b"last-modified", format_datetime(version.created, usegmt=True).encode()),
    ]


def _not_modified(scope: Scope, version: SiteVersion, meta: FileMeta) -> bool:
    headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or meta.etag in tags
    if_modified_since = headers.get(b"if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparsable date is ignored, as HTTP says
    if since.tzinfo is None:
        return False
    return version.created.replace(microsecond=0) <= since


async def _error(
    send: Send, version: SiteVersion | None, status: int, code: str, key: str, *, head: bool
) -> None:
    """A 4xx answer: the site's error document if it has one, else S3's plain HTML page."""
    headers: Headers = [(b"allow", b"GET, HEAD")] if status == 405 else []
    document = version.files.get(ERROR_DOCUMENT) if version is not None else None
    if version is not None and document is not None:
        try:
            body = (version.root / ERROR_DOCUMENT).read_bytes()
        except OSError:
            body = None
        if body is not None:
            headers += [
                (b"content-type", document.content_type.encode()),
                (b"cache-control", b"no-cache"),
            ]
            await _send(send, status, headers, body, head=head)
            return
    headers += [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-cache")]
    await _send(send, status, headers, _error_page(status, code, key), head=head)


def _error_page(status: int, code: str, key: str) -> bytes:
    title = {404: "404 Not Found", 405: "405 Method Not Allowed"}.get(status, str(status))
    messages = {
        "NoSuchKey": "The specified key does not exist.",
        "NoSuchBucket": "The specified site does not exist or has no published version.",
        "MethodNotAllowed": "The specified method is not allowed against this resource.",
    }
    return (
        f"<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n<ul>\n"
        f"<li>Code: {code}</li>\n<li>Message: {messages.get(code, code)}</li>\n"
        f"<li>Key: {html.escape(key)}</li>\n</ul>\n<hr/>\n</body>\n</html>\n"
    ).encode()


async def _send(send: Send, status: int, headers: Headers, body: bytes, *, head: bool) -> None:
    if status != 304:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
