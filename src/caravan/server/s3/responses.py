"""What the S3 endpoint sends back: XML documents, S3's error shape, and replies on the wire.

Errors are ``S3Error`` (raised anywhere while a request is served) and leave as S3 sends them::

    <Error><Code>NoSuchKey</Code><Message>...</Message><Key>...</Key><RequestId>...</RequestId>
    </Error>

with the error's status; a HEAD request gets the status alone (no body to carry the XML), which
botocore reports as ``ClientError`` with the status as its code. Every reply carries
``x-amz-request-id`` and ``x-amz-id-2``.
"""

from __future__ import annotations

import base64
import email.utils
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO
from xml.sax.saxutils import escape

import anyio
import anyio.to_thread
from starlette.types import Receive, Send

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_TYPE = "application/xml"
_STREAM_BLOCK = 512 * 1024


class S3Error(Exception):
    """An S3 error response: ``code`` (e.g. NoSuchKey), HTTP ``status`` and extra XML fields."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


# ---------------------------------------------------------------------------------- errors


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key)


def invalid_argument(message: str, name: str | None = None, value: str | None = None) -> S3Error:
    fields = {}
    if name is not None:
        fields["ArgumentName"] = name
        fields["ArgumentValue"] = value or ""
    return S3Error("InvalidArgument", message, 400, **fields)


def not_implemented(operation: str) -> S3Error:
    return S3Error(
        "NotImplemented",
        f"{operation} is not implemented by caravan's S3 endpoint",
        501,
        Operation=operation,
    )


def internal_error() -> S3Error:
    return S3Error("InternalError", "We encountered an internal error. Please try again.", 500)


# ------------------------------------------------------------------------------------- XML


def xml_text(value: str) -> str:
    """``value`` escaped for XML 1.0 text; characters XML cannot hold become char references."""
    escaped = escape(value, {'"': "&quot;"})
    if all(ch >= " " or ch in "\t\n\r" for ch in escaped):
        return escaped
    return "".join(ch if ch >= " " or ch in "\t\n\r" else f"&#x{ord(ch):x};" for ch in escaped)


def element(name: str, value: str | int | bool | None) -> str:
    """``<name>value</name>``; None gives nothing, booleans are ``true``/``false``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    return f"<{name}>{xml_text(str(value))}</{name}>"


def document(root: str, children: Iterable[str]) -> bytes:
    """An S3 XML document: declaration, namespaced root, children as already-built XML."""
    body = "".join(children)
    xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NAMESPACE}">{body}</{root}>'
    return xml.encode("utf-8")


def error_document(error: S3Error, request_id: str) -> bytes:
    parts = [element("Code", error.code), element("Message", error.message)]
    parts += [element(name, value) for name, value in error.fields.items()]
    parts.append(element("RequestId", request_id))
    body = "".join(parts)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{body}</Error>'.encode()


def http_date(epoch: float) -> str:
    """RFC 1123 (``Wed, 01 Jan 2025 12:00:00 GMT``), as Last-Modified carries it."""
    return email.utils.formatdate(epoch, usegmt=True)


def iso_date(epoch: float) -> str:
    """ISO 8601 with milliseconds (``2025-01-01T12:00:00.000Z``), as S3's XML carries it."""
    millis = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}Z"


# ----------------------------------------------------------------------------------- replies


@dataclass
class FileBody:
    """``length`` bytes of an open file from ``offset``; the reply closes the file when sent."""

    handle: IO[bytes]
    offset: int
    length: int


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | FileBody = b""
    # HEAD replies and 304s announce a length but carry no body.
    omit_body: bool = False

    def header(self, name: str, value: str | None) -> Reply:
        if value is not None:
            self.headers.append((name, value))
        return self


def header_value(value: str) -> str:
    """``value`` as a header can carry it: printable ASCII as is, anything else as an RFC 2047
    encoded word (what S3 does with non-ASCII metadata), so no stored text can break a reply."""
    if value.isascii() and value.isprintable():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8", "replace")).decode() + "?="


def xml_reply(body: bytes, status: int = 200) -> Reply:
    return Reply(status, [("Content-Type", XML_TYPE)], body)


def error_reply(error: S3Error, request_id: str, *, head: bool) -> Reply:
    if head:
        return Reply(error.status, [], b"")
    return xml_reply(error_document(error, request_id), error.status)


async def send_reply(reply: Reply, request_id: str, receive: Receive, send: Send) -> None:
    """Send ``reply``; a file body streams from disk and stops early if the client leaves."""
    headers = [*reply.headers, ("x-amz-request-id", request_id), ("x-amz-id-2", request_id)]
    body = reply.body
    bodiless = reply.status in (204, 304)  # these must not announce a length
    if not bodiless and not any(name.lower() == "content-length" for name, _ in headers):
        size = body.length if isinstance(body, FileBody) else len(body)
        headers.append(("Content-Length", str(size)))
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    try:
        await send({"type": "http.response.start", "status": reply.status, "headers": raw})
        if reply.omit_body:
            await send({"type": "http.response.body", "body": b""})
        elif isinstance(body, FileBody):
            await _stream_file(body, receive, send)
        else:
            await send({"type": "http.response.body", "body": body})
    finally:
        if isinstance(body, FileBody):
            body.handle.close()


async def _stream_file(body: FileBody, receive: Receive, send: Send) -> None:
    async with anyio.create_task_group() as group:

        async def watch_disconnect() -> None:
            # uvicorn drops writes after a disconnect silently; without this watch a client that
            # left would still have the whole (possibly huge) object read from disk.
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch_disconnect)
        await anyio.to_thread.run_sync(body.handle.seek, body.offset)
        remaining = body.length
        while remaining > 0:
            block = await anyio.to_thread.run_sync(body.handle.read, min(_STREAM_BLOCK, remaining))
            if not block:
                break  # the file is shorter than its record says; the length was checked before
            remaining -= len(block)
            await send({"type": "http.response.body", "body": block, "more_body": remaining > 0})
        if remaining > 0:
            await send({"type": "http.response.body", "body": b""})
        group.cancel_scope.cancel()
