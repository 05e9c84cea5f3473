"""Object operations: PutObject, GetObject, HeadObject, DeleteObject and CopyObject.

Reads answer with the headers S3 sends (ETag, Last-Modified, Content-Length, Content-Type,
Cache-Control, x-amz-meta-*), honour ``Range`` (206, 416 InvalidRange) and the conditional
headers (304, 412 PreconditionFailed), and stream the content from the store's file. With
``x-amz-checksum-mode: ENABLED`` a whole-object read also carries ``x-amz-checksum-sha256``
(the store knows every object's SHA-256), so boto3 verifies what it downloads.
"""

from __future__ import annotations

import calendar
import contextlib
import email.utils
import os
import re
import urllib.parse
from collections.abc import Iterator
from typing import IO

from starlette.datastructures import Headers

from caravan.artifacts.keys import validate_bucket, validate_key
from caravan.artifacts.store import ArtifactStore, ObjectInfo
from caravan.errors import InvalidInputError, ObjectNotFoundError
from caravan.server.s3 import checksums
from caravan.server.s3.context import Call, UploadFields
from caravan.server.s3.responses import (
    FileBody,
    Reply,
    S3Error,
    document,
    element,
    header_value,
    http_date,
    invalid_argument,
    iso_date,
    no_such_key,
)

_COPY_BLOCK = 1024 * 1024
_DIGITS = re.compile(r"[0-9]{0,20}")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: a header name
# GetObject's response-* query parameters and the headers they override.
_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


async def put_object(call: Call) -> Reply:
    fields = call.upload_fields()
    await call.require_bucket()
    bucket, key, store = call.bucket, call.key, call.store
    info, decoder = await call.upload(
        lambda body: store.put_stream(bucket, key, body, **fields.as_kwargs())
    )
    reply = Reply().header("ETag", info.etag)
    for name, value in decoder.echo.items():
        reply.header(name, value)
    return reply


async def get_object(call: Call) -> Reply:
    _refuse_versions(call)
    opened = await call.run(open_object, call.store, call.bucket, call.key)
    if opened is None:
        await call.require_bucket()
        raise no_such_key(call.key)
    info, handle = opened
    try:
        return _object_reply(call, info, handle)
    except BaseException:
        handle.close()
        raise


async def head_object(call: Call) -> Reply:
    _refuse_versions(call)
    info = await call.run(call.store.head, call.bucket, call.key)
    if info is None:
        await call.require_bucket()
        raise no_such_key(call.key)
    return _object_reply(call, info, None)


async def delete_object(call: Call) -> Reply:
    _refuse_versions(call)
    await call.require_bucket()
    await call.run(call.store.delete, call.bucket, call.key)
    return Reply(204)


async def copy_object(call: Call) -> Reply:
    source_bucket, source_key = parse_copy_source(call.request.headers["x-amz-copy-source"])
    await call.authorize(source_bucket, source_key, "s3:GetObject")
    directive = call.request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise invalid_argument("Unknown metadata directive.", "x-amz-metadata-directive", directive)
    replaced = call.upload_fields() if directive == "REPLACE" else None
    await call.require_bucket()
    if (source_bucket, source_key) == (call.bucket, call.key) and replaced is None:
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect location "
            "or encryption attributes.",
            400,
        )
    opened = await call.run(open_object, call.store, source_bucket, source_key)
    if opened is None:
        await call.require_bucket(source_bucket)
        raise no_such_key(source_key)
    info, handle = opened
    with handle:
        failed = precondition(info, call.request.headers, prefix="x-amz-copy-source-")
        if failed is not None:
            raise _precondition_failed(failed)
        fields = replaced or UploadFields(
            info.content_type, info.cache_control, dict(info.metadata)
        )
        copied = await call.run(_copy, call.store, call.bucket, call.key, handle, fields)
    body = document(
        "CopyObjectResult",
        [element("LastModified", iso_date(copied.last_modified)), element("ETag", copied.etag)],
    )
    return Reply(200, [("Content-Type", "application/xml")], body)


def _copy(
    store: ArtifactStore, bucket: str, key: str, handle: IO[bytes], fields: UploadFields
) -> ObjectInfo:
    return store.put_stream(bucket, key, file_blocks(handle), **fields.as_kwargs())


def parse_copy_source(value: str) -> tuple[str, str]:
    """``x-amz-copy-source`` (``[/]bucket/key[?versionId=...]``, URL-encoded) as (bucket, key)."""
    path, _, query = value.partition("?")
    version = urllib.parse.parse_qs(query).get("versionId", ["null"])[0]
    try:
        decoded = urllib.parse.unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        decoded = ""
    bucket, _, key = decoded.removeprefix("/").partition("/")
    try:
        validate_bucket(bucket)
        validate_key(key)
    except InvalidInputError:
        raise invalid_argument(
            "Invalid copy source object key", "x-amz-copy-source", value[:200]
        ) from None
    if version != "null":
        raise invalid_argument("Invalid version id specified", "x-amz-copy-source", value[:200])
    return bucket, key


# ----------------------------------------------------------------------------- reading


def open_object(store: ArtifactStore, bucket: str, key: str) -> tuple[ObjectInfo, IO[bytes]] | None:
    """The object's record and an open handle on exactly that content, or None if missing.

    An overwrite (and garbage collection) may land between reading the record and opening the
    file; the file is then the wrong size or gone, or the record changed, and we read again.
    """
    for _attempt in range(5):
        info = store.head(bucket, key)
        if info is None:
            return None
        try:
            handle = store.local_path(bucket, key).open("rb")
        except (ObjectNotFoundError, FileNotFoundError):
            continue
        current = store.head(bucket, key)
        unchanged = current is not None and current.sha256 == info.sha256
        if unchanged and os.fstat(handle.fileno()).st_size == info.size:
            return info, handle
        handle.close()
    raise S3Error("SlowDown", "The object changes too often to be read; try again.", 503)


def _object_reply(call: Call, info: ObjectInfo, handle: IO[bytes] | None) -> Reply:
    headers = call.request.headers
    reply = Reply()
    _describe(reply, info)
    failed = precondition(info, headers)
    if failed == 304:
        _close(handle)
        return Reply(304, reply.headers, b"", omit_body=True)
    if failed is not None:
        raise _precondition_failed(failed)
    _apply_overrides(call, reply)
    span = parse_range(headers.get("range"), info.size)
    start, length = (0, info.size) if span is None else (span[0], span[1] - span[0] + 1)
    if span is not None:
        reply.status = 206
        reply.header("Content-Range", f"bytes {span[0]}-{span[1]}/{info.size}")
    elif headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
        reply.header("x-amz-checksum-sha256", checksums.b64(bytes.fromhex(info.sha256)))
        reply.header("x-amz-checksum-type", "FULL_OBJECT")
    reply.header("Content-Length", str(length))
    if handle is None:
        reply.omit_body = True
    else:
        reply.body = FileBody(handle, start, length)
    return reply


def _describe(reply: Reply, info: ObjectInfo) -> None:
    reply.header("ETag", info.etag)
    reply.header("Last-Modified", http_date(info.last_modified))
    reply.header("Content-Type", header_value(info.content_type))
    reply.header("Accept-Ranges", "bytes")
    if info.cache_control is not None:
        reply.header("Cache-Control", header_value(info.cache_control))
    for name, value in info.metadata.items():
        # Objects stored by other means than this endpoint may hold any name; S3 names are
        # header tokens, and a name that is not one cannot be sent.
        if _TOKEN.fullmatch(name):
            reply.header(f"x-amz-meta-{name}", header_value(value))


def _apply_overrides(call: Call, reply: Reply) -> None:
    for parameter, header in _OVERRIDES.items():
        value = call.request.query.get(parameter)
        if value is None:
            continue
        if any(ord(ch) < 0x20 or ord(ch) > 0xFF for ch in value):
            raise invalid_argument(
                f"{parameter} holds a character not allowed in a header", parameter, value[:100]
            )
        reply.headers = [(name, v) for name, v in reply.headers if name.lower() != header.lower()]
        reply.header(header, value)


def _refuse_versions(call: Call) -> None:
    # Buckets are unversioned: only the "null" version exists.
    version = call.request.query.get("versionId")
    if version is not None and version != "null":
        raise invalid_argument("Invalid version id specified", "versionId", version[:200])


def _close(handle: IO[bytes] | None) -> None:
    if handle is not None:
        handle.close()


# ------------------------------------------------------------------- conditions and ranges


def precondition(info: ObjectInfo, headers: Headers, *, prefix: str = "") -> int | None:
    """412, 304 or None, by RFC 7232's order: If-Match, If-Unmodified-Since, If-None-Match,
    If-Modified-Since (``prefix`` selects CopyObject's x-amz-copy-source-if-* variants)."""
    get = headers.get
    modified = int(info.last_modified)
    if_match = get(prefix + "if-match")
    if if_match is not None:
        if not _etag_matches(if_match, info.etag):
            return 412
    else:
        since = _parse_http_date(get(prefix + "if-unmodified-since"))
        if since is not None and modified > since:
            return 412
    if_none_match = get(prefix + "if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, info.etag):
            return 412 if prefix else 304
    else:
        since = _parse_http_date(get(prefix + "if-modified-since"))
        if since is not None and modified <= since:
            return 412 if prefix else 304
    return None


def _etag_matches(header: str, etag: str) -> bool:
    wanted = etag.strip('"')
    for candidate in header.split(","):
        candidate = candidate.strip().removeprefix("W/").strip('"')
        if candidate in ("*", wanted):
            return True
    return False


def _parse_http_date(value: str | None) -> int | None:
    if not value:
        return None
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    with contextlib.suppress(OverflowError, ValueError):
        return calendar.timegm(parsed[:9]) - (parsed[9] or 0)
    return None


def _precondition_failed(status: int) -> S3Error:
    return S3Error(
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        status,
        Condition="If-Match",
    )


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span a ``Range`` header asks for; None for the whole object.

    Like S3: a header that does not parse, or asks for several ranges, is ignored; a range that
    starts past the end is ``416 InvalidRange``; an end past the end is clipped.
    """
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, dash, last = value[len("bytes=") :].strip().partition("-")
    if not dash or not _DIGITS.fullmatch(first) or not _DIGITS.fullmatch(last):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _invalid_range(value, size)
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise _invalid_range(value, size)
    return start, min(end, size - 1)


def _invalid_range(value: str, size: int) -> S3Error:
    return S3Error(
        "InvalidRange",
        "The requested range is not satisfiable",
        416,
        RangeRequested=value[:100],
        ActualObjectSize=str(size),
    )


def file_blocks(handle: IO[bytes]) -> Iterator[bytes]:
    """The rest of an open file, a block at a time."""
    return iter(lambda: handle.read(_COPY_BLOCK), b"")
