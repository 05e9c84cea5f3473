"""What names and identifies a stored object: bucket and key rules, metadata, content digests.

Shared by every artifact store so they accept and refuse exactly the same input. Buckets follow
S3's naming rules; keys are any 1-1024 bytes of UTF-8 without NUL (S3 accepts "../../x" as a key,
so do we — a store must keep such a key inside itself, see ``key_filename``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
import urllib.parse
from collections.abc import Mapping

from caravan.artifacts.store import ObjectInfo
from caravan.errors import InvalidInputError

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048  # S3's limit for all user-defined metadata of one object

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Bytes kept as-is in a key's file name. Upper-case letters are escaped too, so that keys
# differing only in case stay apart on case-insensitive filesystems (macOS, Windows).
_PLAIN_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_.")
_MAX_FILENAME = 200  # below every common filesystem's 255-byte limit, with room for a suffix
HASHED_PREFIX = "#"  # never produced by the escaping above, so the two forms cannot collide


def validate_bucket(name: str) -> str:
    """``name`` if it is a valid S3 bucket name, else InvalidInputError naming it and the rule."""
    if not isinstance(name, str) or not _BUCKET.fullmatch(name):
        raise InvalidInputError(
            f"invalid bucket name {name!r}: 3-63 characters of a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in name:
        raise InvalidInputError(f"invalid bucket name {name!r}: two adjacent periods")
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return name
    raise InvalidInputError(f"invalid bucket name {name!r}: formatted as an IP address")


def validate_key(key: str) -> str:
    """``key`` if it is a valid object key, else InvalidInputError naming it and the rule."""
    if not isinstance(key, str):
        raise InvalidInputError(f"invalid object key {key!r}: must be a string")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInputError(f"invalid object key {key!r}: not valid UTF-8") from None
    if not 1 <= size <= MAX_KEY_BYTES:
        shown = key if size <= 80 else key[:80] + "..."
        raise InvalidInputError(
            f"invalid object key {shown!r}: must be 1-{MAX_KEY_BYTES} bytes of UTF-8 (got {size})"
        )
    if "\x00" in key:
        raise InvalidInputError(f"invalid object key {key!r}: contains a NUL character")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: like a key, but may be empty."""
    return validate_key(prefix) if prefix else prefix


def normalize_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """User metadata as S3 keeps it: names lower-cased, at most 2 KB in all."""
    if not metadata:
        return {}
    result: dict[str, str] = {}
    for name, value in metadata.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidInputError(f"metadata {name!r}: names and values must be strings")
        if not name or any(c.isspace() or ord(c) < 0x21 or c == ":" for c in name):
            raise InvalidInputError(f"metadata name {name!r} is not a valid header name")
        if any(c in value for c in "\r\n\x00"):
            raise InvalidInputError(f"metadata {name!r}: the value holds a line break or NUL")
        result[name.lower()] = value
    size = sum(len(k.encode()) + len(v.encode()) for k, v in result.items())
    if size > MAX_METADATA_BYTES:
        raise InvalidInputError(
            f"user metadata is {size} bytes; the limit is {MAX_METADATA_BYTES} bytes"
        )
    return dict(sorted(result.items()))


def key_filename(key: str) -> str:
    """A single, safe file name for ``key`` (no "/", never "." or ".."), without suffix.

    Percent-encoding of every byte outside [a-z0-9._-]; a name that would be too long becomes
    ``#<sha256 of the key>`` (the key itself is then read from the record).
    """
    encoded = "".join(
        chr(byte) if byte in _PLAIN_BYTES else f"%{byte:02X}" for byte in key.encode("utf-8")
    )
    if encoded in (".", "..") or len(encoded) > _MAX_FILENAME:
        return HASHED_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()
    return encoded


def filename_key(name: str) -> str | None:
    """The key a ``key_filename`` result encodes, or None for a hashed name."""
    if name.startswith(HASHED_PREFIX):
        return None
    return urllib.parse.unquote(name, errors="strict")


class ContentDigest:
    """sha256, MD5 (the S3 ETag of a single-part upload) and size, fed chunk by chunk."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def etag(self) -> str:
        return f'"{self._md5.hexdigest()}"'

    @classmethod
    def of(cls, data: bytes) -> ContentDigest:
        digest = cls()
        digest.update(data)
        return digest

    def object_info(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str | None,
        metadata: Mapping[str, str],
        cache_control: str | None,
    ) -> ObjectInfo:
        """The record of an object stored now with this content (``metadata`` normalized)."""
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=self.size,
            sha256=self.sha256,
            etag=self.etag,
            last_modified=time.time(),
            content_type=content_type or DEFAULT_CONTENT_TYPE,
            metadata=metadata,
            cache_control=cache_control,
        )
