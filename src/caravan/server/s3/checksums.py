"""The integrity checksums S3 clients send: CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256 and MD5.

A checksum travels as the base64 of its big-endian digest, in an ``x-amz-checksum-<name>``
header or aws-chunked trailer (``Content-MD5`` for MD5). CRC32 comes from zlib and the hashes
from hashlib (both C). CRC32C and CRC64NVME have no stdlib implementation, so they are computed
here with slicing-by-8 tables: correct, but pure Python (about 5-10 MB/s) — clients only use
them when asked to, and boto3's default is CRC32.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable
from typing import Protocol

# Names as they appear in headers (x-amz-checksum-<name>), in the order botocore prefers them.
ALGORITHMS = ("crc64nvme", "crc32c", "crc32", "sha1", "sha256")


class Checksum(Protocol):
    """A running digest: feed bytes with ``update``, read the big-endian digest."""

    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def _tables(reversed_poly: int) -> tuple[list[int], ...]:
    """Slicing-by-8 lookup tables for a reflected CRC with the given reversed polynomial."""
    first = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ reversed_poly if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _ in range(7):
        previous = tables[-1]
        tables.append([(value >> 8) ^ first[value & 0xFF] for value in previous])
    return tuple(tables)


class _ReflectedCrc:
    """A reflected CRC of width <= 64 with all-ones init and final xor (CRC32C, CRC64NVME)."""

    def __init__(self, tables: tuple[list[int], ...], width: int) -> None:
        self._tables = tables
        self._mask = (1 << width) - 1
        self._width = width
        self._value = self._mask

    def update(self, data: bytes) -> None:
        t0, t1, t2, t3, t4, t5, t6, t7 = self._tables
        crc = self._value
        view = memoryview(data)
        whole = len(view) - len(view) % 8
        from_bytes = int.from_bytes
        for offset in range(0, whole, 8):
            # The CRC register is xor-ed into the next 8 bytes, read little-endian (reflected).
            v = crc ^ from_bytes(view[offset : offset + 8], "little")
            crc = (
                t7[v & 0xFF]
                ^ t6[(v >> 8) & 0xFF]
                ^ t5[(v >> 16) & 0xFF]
                ^ t4[(v >> 24) & 0xFF]
                ^ t3[(v >> 32) & 0xFF]
                ^ t2[(v >> 40) & 0xFF]
                ^ t1[(v >> 48) & 0xFF]
                ^ t0[v >> 56]
            )
        for byte in view[whole:]:
            crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self._value = crc

    def digest(self) -> bytes:
        return (self._value ^ self._mask).to_bytes(self._width // 8, "big")


_CRC32C_TABLES = _tables(0x82F63B78)
_CRC64NVME_TABLES = _tables(0x9A6C9329AC4BC9B5)


class _Hashlib:
    def __init__(self, name: str) -> None:
        self._hash = hashlib.new(name, usedforsecurity=False)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


_FACTORIES: dict[str, Callable[[], Checksum]] = {
    "crc32": _Crc32,
    "crc32c": lambda: _ReflectedCrc(_CRC32C_TABLES, 32),
    "crc64nvme": lambda: _ReflectedCrc(_CRC64NVME_TABLES, 64),
    "sha1": lambda: _Hashlib("sha1"),
    "sha256": lambda: _Hashlib("sha256"),
    "md5": lambda: _Hashlib("md5"),
}


def new_checksum(algorithm: str) -> Checksum:
    """A fresh running checksum; ``algorithm`` is one of ALGORITHMS or "md5"."""
    return _FACTORIES[algorithm]()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def decode_b64(value: str, size: int) -> bytes | None:
    """The digest a base64 header value carries, or None if it is not ``size`` bytes of base64."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def digest_size(algorithm: str) -> int:
    return len(new_checksum(algorithm).digest())


def compute(algorithm: str, data: bytes) -> bytes:
    """The digest of ``data`` in one call (for small bodies and tests)."""
    checksum = new_checksum(algorithm)
    checksum.update(data)
    return checksum.digest()
