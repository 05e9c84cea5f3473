"""Receiving a request body: bounded, decoded (aws-chunked) and verified before it counts.

``BodyDecoder`` is the synchronous part: it decodes aws-chunked framing and computes exactly
the digests the request asks to be checked — ``Content-MD5`` (BadDigest), one
``x-amz-checksum-<alg>`` header or trailer (BadDigest), a hex ``x-amz-content-sha256``
(XAmzContentSHA256Mismatch) — and enforces the size limit (EntityTooLarge) and the declared
length (IncompleteBody). ``finish`` raises if any check fails; a store fed through
``decoded_blocks`` sees that exception as the end of its input, so the object is never
published.

Uploads run the decoder in a worker thread (``decoded_blocks``), which pulls the raw bytes from
the event loop: hashing and pure-Python CRCs never block other requests, and the body goes to
disk as it arrives instead of into memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import anyio.from_thread
from starlette.datastructures import Headers
from starlette.types import Receive

from caravan.server.s3 import checksums
from caravan.server.s3.auth import ChunkSigner
from caravan.server.s3.chunked import AwsChunkedDecoder
from caravan.server.s3.responses import S3Error

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_NOT_ALGORITHMS = frozenset({"algorithm", "mode", "type"})  # x-amz-checksum-<these> are options
_PAYLOAD_KEYWORDS = frozenset(
    {
        "UNSIGNED-PAYLOAD",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
    }
)


class RawBody:
    """The request body as ASGI delivers it, piece by piece."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._finished = False

    async def next(self) -> bytes:
        """The next non-empty piece, or b"" once the body is complete."""
        while not self._finished:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise S3Error("IncompleteBody", "The client disconnected during the upload", 400)
            body = bytes(message.get("body", b""))
            self._finished = not message.get("more_body", False)
            if body:
                return body
        return b""


class BodyDecoder:
    """Decodes and verifies one request body against the checks its headers ask for."""

    def __init__(self, headers: Headers, *, limit: int, signer: ChunkSigner | None = None) -> None:
        self._limit = limit
        self._chunked = _is_aws_chunked(headers)
        self._decoder = AwsChunkedDecoder(signer) if self._chunked else None
        self._size = 0
        self._declared = _declared_length(headers, chunked=self._chunked)
        if self._declared is not None and self._declared > limit:
            raise entity_too_large(limit, self._declared)
        self._md5 = _content_md5(headers)
        self._payload_sha256 = _payload_sha256(headers, chunked=self._chunked)
        self._algorithm, self._expected, self._in_trailer = _requested_checksum(
            headers, chunked=self._chunked
        )
        self._running = {
            name: checksums.new_checksum(name)
            for name, wanted in (
                ("md5", self._md5 is not None),
                ("sha256", self._payload_sha256 is not None),
            )
            if wanted
        }
        if self._algorithm is not None:
            self._running.setdefault(self._algorithm, checksums.new_checksum(self._algorithm))
        self.echo: dict[str, str] = {}  # checksum headers to send back once verified

    def feed(self, raw: bytes) -> list[bytes]:
        pieces = self._decoder.feed(raw) if self._decoder is not None else [raw]
        for piece in pieces:
            self._size += len(piece)
            if self._size > self._limit:
                raise entity_too_large(self._limit, self._size)
            for running in self._running.values():
                running.update(piece)
        return pieces

    def finish(self) -> None:
        """Verify the whole body; S3Error naming the first check that fails."""
        if self._decoder is not None:
            self._decoder.finish()
        if self._declared is not None and self._size != self._declared:
            raise S3Error(
                "IncompleteBody",
                f"You did not provide the number of bytes specified: {self._declared} declared, "
                f"{self._size} received.",
                400,
            )
        if self._payload_sha256 is not None:
            calculated = self._running["sha256"].digest().hex()
            if calculated != self._payload_sha256.lower():
                raise S3Error(
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    400,
                    ClientComputedContentSHA256=self._payload_sha256,
                    S3ComputedContentSHA256=calculated,
                )
        if self._md5 is not None and self._running["md5"].digest() != self._md5:
            raise S3Error(
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
                400,
                ExpectedDigest=self._md5.hex(),
                CalculatedDigest=self._running["md5"].digest().hex(),
            )
        self._verify_checksum()

    def _verify_checksum(self) -> None:
        if self._algorithm is None:
            return
        header = f"x-amz-checksum-{self._algorithm}"
        expected = self._expected
        if self._in_trailer:
            trailers = self._decoder.trailers if self._decoder is not None else {}
            value = trailers.get(header)
            if value is None:
                raise S3Error(
                    "MalformedTrailerError",
                    f"The request declared the trailer {header} but did not send it",
                    400,
                )
            expected = _decode_checksum(self._algorithm, value)
        calculated = self._running[self._algorithm].digest()
        if calculated != expected:
            raise S3Error(
                "BadDigest",
                f"The {self._algorithm.upper()} you specified did not match the calculated "
                "checksum.",
                400,
            )
        self.echo[header] = checksums.b64(calculated)


def decoded_blocks(raw: RawBody, decoder: BodyDecoder) -> Iterator[bytes]:
    """The decoded body, piece by piece; must run in a worker thread started by anyio.

    After the last piece the body is verified: a failed check is raised from this iterator, so
    whatever consumes it (a store's ``put_stream``) aborts instead of keeping the content.
    """
    while data := anyio.from_thread.run(raw.next):
        yield from decoder.feed(data)
    decoder.finish()


async def read_small(raw: RawBody, decoder: BodyDecoder) -> bytes:
    """The whole (small, limit-bounded) body in memory, verified: XML request documents."""
    parts: list[bytes] = []
    while data := await raw.next():
        parts.extend(decoder.feed(data))
    decoder.finish()
    return b"".join(parts)


def entity_too_large(limit: int, size: int) -> S3Error:
    return S3Error(
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
        400,
        ProposedSize=str(size),
        MaxSizeAllowed=str(limit),
    )


# ------------------------------------------------------------------------------ header parsing


def _is_aws_chunked(headers: Headers) -> bool:
    encodings = [part.strip().lower() for part in headers.get("content-encoding", "").split(",")]
    return "aws-chunked" in encodings or headers.get("x-amz-content-sha256", "").startswith(
        "STREAMING-"
    )


def _declared_length(headers: Headers, *, chunked: bool) -> int | None:
    name = "x-amz-decoded-content-length" if chunked else "content-length"
    value = headers.get(name)
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        length = -1
    if length < 0:
        raise S3Error("InvalidArgument", f"{name} must be a number of bytes", 400)
    return length


def _content_md5(headers: Headers) -> bytes | None:
    value = headers.get("content-md5")
    if value is None:
        return None
    digest = checksums.decode_b64(value, 16)
    if digest is None:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.", 400)
    return digest


def _payload_sha256(headers: Headers, *, chunked: bool) -> str | None:
    value = headers.get("x-amz-content-sha256")
    if value is None or value in _PAYLOAD_KEYWORDS:
        return None
    if not _HEX_SHA256.fullmatch(value) or chunked:
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* keyword or the hex "
            "SHA-256 of the payload",
            400,
            ArgumentName="x-amz-content-sha256",
            ArgumentValue=value[:100],
        )
    return value


def _requested_checksum(
    headers: Headers, *, chunked: bool
) -> tuple[str | None, bytes | None, bool]:
    """(algorithm, expected digest from a header, whether it comes in a trailer instead)."""
    found: list[tuple[str, str]] = []
    for name, value in headers.items():
        if name.startswith("x-amz-checksum-"):
            algorithm = name.removeprefix("x-amz-checksum-")
            if algorithm not in _NOT_ALGORITHMS:
                found.append((algorithm, value))
    trailer = headers.get("x-amz-trailer")
    if trailer is not None:
        names = [part.strip().lower() for part in trailer.split(",") if part.strip()]
        if not chunked or len(names) != 1 or not names[0].startswith("x-amz-checksum-"):
            raise S3Error(
                "InvalidRequest",
                f"x-amz-trailer {trailer[:100]!r} is not one x-amz-checksum-<algorithm> "
                "trailer of an aws-chunked body",
                400,
            )
        found.append((names[0].removeprefix("x-amz-checksum-"), ""))
    if not found:
        return None, None, False
    if len(found) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            400,
        )
    algorithm, value = found[0]
    if algorithm not in checksums.ALGORITHMS:
        raise S3Error(
            "InvalidRequest",
            f"Checksum algorithm {algorithm!r} is not supported; use one of "
            + ", ".join(checksums.ALGORITHMS),
            400,
        )
    if trailer is not None:
        return algorithm, None, True
    return algorithm, _decode_checksum(algorithm, value), False


def _decode_checksum(algorithm: str, value: str) -> bytes:
    digest = checksums.decode_b64(value, checksums.digest_size(algorithm))
    if digest is None:
        raise S3Error(
            "InvalidRequest", f"Value for x-amz-checksum-{algorithm} header is invalid.", 400
        )
    return digest
