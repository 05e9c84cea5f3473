"""Listing a bucket (ListObjectsV2, and V1): pages, common prefixes, tokens, and their XML.

A page is a pure function of the sorted keys and the query. Each "entry" is a key or, with a
delimiter, the common prefix the key rolls up into; entries count towards ``max-keys`` alike.
A page resumes after its last entry: keys at or before it are skipped, and so are the keys of a
common prefix already returned. The V2 continuation token is that entry, base64url-encoded.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from caravan.artifacts.store import ObjectInfo
from caravan.server.s3.responses import document, element, invalid_argument, iso_date

MAX_KEYS = 1000


@dataclass(frozen=True)
class ListQuery:
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = MAX_KEYS
    after_entry: str | None = None  # continuation token / V1 marker: resume after this entry
    start_after: str = ""  # V2 StartAfter: only keys after this one
    url_encoded: bool = False


@dataclass(frozen=True)
class Page:
    contents: list[ObjectInfo] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last_entry: str | None = None

    @property
    def key_count(self) -> int:
        return len(self.contents) + len(self.common_prefixes)


def list_page(objects: Iterable[ObjectInfo], query: ListQuery) -> Page:
    """One page of ``objects`` (sorted by key, all starting with ``query.prefix``)."""
    contents: list[ObjectInfo] = []
    prefixes: list[str] = []
    last: str | None = None
    marker = query.after_entry
    for info in objects:
        key = info.key
        if query.start_after and key <= query.start_after:
            continue
        if marker is not None and key <= marker:
            continue
        entry, rolled_up = _entry(key, query.prefix, query.delimiter)
        if rolled_up and entry in (marker, last):
            continue  # a common prefix already listed, on this page or an earlier one
        if len(contents) + len(prefixes) >= query.max_keys:
            return Page(contents, prefixes, truncated=query.max_keys > 0, last_entry=last)
        if rolled_up:
            prefixes.append(entry)
        else:
            contents.append(info)
        last = entry
    return Page(contents, prefixes, truncated=False, last_entry=last)


def _entry(key: str, prefix: str, delimiter: str) -> tuple[str, bool]:
    """The entry ``key`` is listed as, and whether that is a common prefix."""
    if not delimiter:
        return key, False
    found = key.find(delimiter, len(prefix))
    if found < 0:
        return key, False
    return key[: found + len(delimiter)], True


# ----------------------------------------------------------------------------- query parsing


def parse_query(params: Mapping[str, str], *, v2: bool) -> ListQuery:
    """A ListObjects(V2) query string, validated as S3 validates it."""
    encoding = params.get("encoding-type")
    if encoding is not None and encoding != "url":
        raise invalid_argument(
            "Invalid Encoding Method specified in Request", "encoding-type", encoding
        )
    raw_max = params.get("max-keys", str(MAX_KEYS))
    try:
        max_keys = int(raw_max)
    except ValueError:
        max_keys = -1
    if max_keys < 0:
        raise invalid_argument(
            "Provided max-keys not an integer or within integer range", "max-keys", raw_max
        )
    if v2:
        token = params.get("continuation-token")
        after = decode_token(token) if token is not None else None
        start_after = params.get("start-after", "")
    else:
        after = params.get("marker") or None
        start_after = ""
    return ListQuery(
        prefix=params.get("prefix", ""),
        delimiter=params.get("delimiter", ""),
        max_keys=min(max_keys, MAX_KEYS),
        after_entry=after,
        start_after=start_after,
        url_encoded=encoding == "url",
    )


def encode_token(entry: str) -> str:
    return base64.urlsafe_b64encode(entry.encode("utf-8")).decode("ascii")


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise invalid_argument(
            "The continuation token provided is incorrect", "continuation-token", token[:200]
        ) from None


# ------------------------------------------------------------------------------------- XML


def v2_document(bucket: str, query: ListQuery, page: Page, params: Mapping[str, str]) -> bytes:
    text = _encoder(query)
    parts = [
        element("Name", bucket),
        element("Prefix", text(query.prefix)),
        element("Delimiter", text(query.delimiter) if query.delimiter else None),
        element("MaxKeys", query.max_keys),
        element("EncodingType", "url" if query.url_encoded else None),
        element("KeyCount", page.key_count),
        element("IsTruncated", page.truncated),
        element("ContinuationToken", params.get("continuation-token")),
        element(
            "NextContinuationToken",
            encode_token(page.last_entry) if page.truncated and page.last_entry else None,
        ),
        element("StartAfter", text(query.start_after) if "start-after" in params else None),
    ]
    return document("ListBucketResult", parts + _entries(page, text))


def v1_document(bucket: str, query: ListQuery, page: Page, params: Mapping[str, str]) -> bytes:
    text = _encoder(query)
    parts = [
        element("Name", bucket),
        element("Prefix", text(query.prefix)),
        element("Marker", text(params.get("marker", ""))),
        element("Delimiter", text(query.delimiter) if query.delimiter else None),
        element("MaxKeys", query.max_keys),
        element("EncodingType", "url" if query.url_encoded else None),
        element("IsTruncated", page.truncated),
        element(
            "NextMarker", text(page.last_entry) if page.truncated and page.last_entry else None
        ),
    ]
    return document("ListBucketResult", parts + _entries(page, text))


def _entries(page: Page, text: Callable[[str], str]) -> list[str]:
    parts = [
        "<Contents>"
        + element("Key", text(info.key))
        + element("LastModified", iso_date(info.last_modified))
        + element("ETag", info.etag)
        + element("Size", info.size)
        + element("StorageClass", "STANDARD")
        + "</Contents>"
        for info in page.contents
    ]
    parts += [
        "<CommonPrefixes>" + element("Prefix", text(prefix)) + "</CommonPrefixes>"
        for prefix in page.common_prefixes
    ]
    return parts


def _encoder(query: ListQuery) -> Callable[[str], str]:
    if not query.url_encoded:
        return lambda value: value
    # botocore decodes these fields with unquote_plus: "+" must travel as %2B.
    return lambda value: urllib.parse.quote(value, safe="/")
