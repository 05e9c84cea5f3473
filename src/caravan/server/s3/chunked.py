"""Decoding ``Content-Encoding: aws-chunked`` bodies, incrementally, with bounded memory.

The format (sigv4-streaming.html, sigv4-streaming-trailers.html)::

    <hex size>[;chunk-signature=<sig>]\\r\\n<size bytes>\\r\\n     ... repeated
    0[;chunk-signature=<sig>]\\r\\n                               the final, empty chunk
    <name>:<value>\\r\\n                                           trailers (x-amz-trailer), if any
    [x-amz-trailer-signature:<sig>\\r\\n]
    \\r\\n

boto3 >= 1.36 sends unsigned chunks with an ``x-amz-checksum-crc32`` trailer over HTTPS; other
SDKs sign each chunk. Chunk data is passed on as it arrives (a chunk may be larger than memory
allows); only the size and trailer lines are buffered, and those are capped.
"""

from __future__ import annotations

import hashlib
import re

from caravan.server.s3.auth import ChunkSigner
from caravan.server.s3.responses import S3Error

MAX_LINE = 4096  # a size line with its signature is under 100 bytes
MAX_TRAILERS = 16
_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)
TRAILER_SIGNATURE = "x-amz-trailer-signature"


class AwsChunkedDecoder:
    """Feed raw body bytes, get decoded content back; ``trailers`` are known once done.

    With a ``signer``, every chunk must carry a valid ``chunk-signature`` (and trailers a valid
    ``x-amz-trailer-signature``); without one, signatures are read and ignored.
    """

    def __init__(self, signer: ChunkSigner | None = None) -> None:
        self._signer = signer
        self._state = _SIZE
        self._line = bytearray()
        self._remaining = 0
        self._chunk_signature: str | None = None
        self._chunk_hash = hashlib.sha256() if signer else None
        self.trailers: dict[str, str] = {}
        self._trailer_lines: list[tuple[str, str]] = []
        self.decoded_size = 0

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[bytes]:
        """The content bytes in ``data`` (possibly none); S3Error if the framing is broken."""
        out: list[bytes] = []
        position, end = 0, len(data)
        while position < end:
            if self._state == _DATA:
                take = min(self._remaining, end - position)
                piece = data[position : position + take]
                position += take
                self._remaining -= take
                self.decoded_size += take
                if self._chunk_hash is not None:
                    self._chunk_hash.update(piece)
                out.append(piece)
                if self._remaining == 0:
                    self._state = _DATA_END
                continue
            if self._state == _DONE:
                if data[position:end].strip(b"\r\n"):
                    raise _malformed("data after the end of an aws-chunked body")
                break
            newline = data.find(b"\n", position)
            stop = end if newline < 0 else newline + 1
            self._line += data[position:stop]
            position = stop
            if len(self._line) > MAX_LINE:
                raise _malformed("a chunk header or trailer line is too long")
            if newline >= 0:
                line = bytes(self._line)
                self._line.clear()
                self._line_done(line)
        return out

    def finish(self) -> None:
        """Called at the end of the body: S3Error unless the final chunk has been read."""
        if self._state == _TRAILER and not self._line:
            self._state = _DONE  # some clients end right after the trailers, without "\r\n"
        if self._state != _DONE:
            raise S3Error(
                "IncompleteBody", "The request body ended before its final aws-chunked chunk", 400
            )

    # ------------------------------------------------------------------------------ lines

    def _line_done(self, raw: bytes) -> None:
        if not raw.endswith(b"\r\n"):
            raise _malformed("a chunk line does not end with CRLF")
        line = raw[:-2]
        if self._state == _SIZE:
            self._size_line(line)
        elif self._state == _DATA_END:
            if line:
                raise _malformed("chunk data is longer than its declared size")
            self._verify_chunk()
            self._state = _SIZE
        elif self._state == _TRAILER:
            self._trailer_line(line)

    def _size_line(self, line: bytes) -> None:
        size_text, _, extension = line.partition(b";")
        size_text = size_text.strip()
        if not _HEX_SIZE.fullmatch(size_text):  # int(x, 16) alone would take "+1" and "1_0"
            raise _malformed(f"invalid chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        self._chunk_signature = None
        name, _, value = extension.partition(b"=")
        if name.strip() == b"chunk-signature":
            self._chunk_signature = value.strip().decode("ascii", "replace")
        if size == 0:
            self._verify_chunk()
            self._state = _TRAILER
        else:
            self._remaining = size
            self._state = _DATA

    def _verify_chunk(self) -> None:
        if self._signer is None or self._chunk_hash is None:
            return
        self._signer.verify_chunk(self._chunk_signature, self._chunk_hash.hexdigest())
        self._chunk_hash = hashlib.sha256()

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._end_of_trailers()
            return
        if len(self._trailer_lines) >= MAX_TRAILERS:
            raise _malformed_trailer("too many trailers")
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise _malformed_trailer("a trailer is not ASCII") from None
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            raise _malformed_trailer(f"trailer {text[:100]!r} is not 'name:value'")
        self._trailer_lines.append((name.strip().lower(), value.strip()))

    def _end_of_trailers(self) -> None:
        signature: str | None = None
        for name, value in self._trailer_lines:
            if name == TRAILER_SIGNATURE:
                signature = value
            else:
                self.trailers[name] = value
        if self._signer is not None and self._trailer_lines:
            # The signed form: "name:value\n" per trailer, sorted by name (as s3s and minio).
            canonical = "".join(
                f"{name}:{value}\n" for name, value in sorted(self.trailers.items())
            )
            self._signer.verify_trailer(signature, canonical.encode("ascii"))
        self._state = _DONE


def _malformed(message: str) -> S3Error:
    return S3Error("InvalidRequest", f"malformed aws-chunked body: {message}", 400)


def _malformed_trailer(message: str) -> S3Error:
    return S3Error(
        "MalformedTrailerError",
        f"The request contained trailing data that was not well-formed: {message}",
        400,
    )
