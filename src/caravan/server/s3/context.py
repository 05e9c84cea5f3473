"""The endpoint's settings and ``Call``: what every operation handler is given to serve a request.

A ``Call`` holds the parsed request, the store and the caller's identity, and the few things
handlers do alike: run blocking store work in a worker thread, check a bucket exists, ask the
``authorize`` hook, and read a (verified) request body — streamed for uploads, in memory for the
small XML documents some operations carry.
"""

from __future__ import annotations

import functools
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from starlette.types import Receive

from caravan.artifacts.keys import MAX_METADATA_BYTES, normalize_metadata
from caravan.artifacts.store import ArtifactStore
from caravan.errors import InvalidInputError
from caravan.server.s3.auth import Authorize, ChunkSigner, SecretLookup, allow_all, resolve
from caravan.server.s3.body import BodyDecoder, RawBody, decoded_blocks, read_small
from caravan.server.s3.requests import DEFAULT_HOST_PATTERNS, S3Request
from caravan.server.s3.responses import S3Error, invalid_argument, no_such_bucket

if TYPE_CHECKING:
    from caravan.server.s3.multipart import Uploads

DEFAULT_MAX_BODY_BYTES = 5 * 1024**3  # S3's limit for a single PUT
MAX_XML_BYTES = 1024 * 1024  # DeleteObjects with 1000 long keys fits
_T = TypeVar("_T")


@dataclass(frozen=True)
class S3Settings:
    """How the endpoint behaves; every field has a default that suits a loopback server."""

    # Virtual-hosted requests: Host "<bucket>.<pattern>", "*" matching any run of characters.
    host_patterns: tuple[str, ...] = DEFAULT_HOST_PATTERNS
    # The largest object one request may upload (bodies stream to disk, never into memory).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    region: str = "us-east-1"
    authorize: Authorize = allow_all
    # Returns the secret of an access key to verify its signatures; None: accept unverified.
    secret_for: SecretLookup | None = None
    # Where multipart parts wait for CompleteMultipartUpload (default: a private temp dir).
    upload_dir: Path | None = None
    # Uploads each hold a worker thread while their body arrives; more wait their turn.
    max_concurrent_uploads: int = 64
    # The time signatures are checked against (tests replay AWS's 2013 examples).
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class UploadFields:
    """What PutObject and CreateMultipartUpload store beside the content."""

    content_type: str | None
    cache_control: str | None
    metadata: dict[str, str]

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "content_type": self.content_type,
            "cache_control": self.cache_control,
            "metadata": self.metadata,
        }


@dataclass
class Call:
    request: S3Request
    receive: Receive
    store: ArtifactStore
    settings: S3Settings
    access_key_id: str | None
    signer: ChunkSigner | None
    upload_limiter: anyio.CapacityLimiter
    uploads: Uploads  # multipart uploads in progress
    started: float  # when the endpoint started (reported as buckets' creation date)

    @property
    def bucket(self) -> str:
        if self.request.bucket is None:
            raise S3Error("InvalidRequest", "This operation needs a bucket", 400)
        return self.request.bucket

    @property
    def key(self) -> str:
        if self.request.key is None:
            raise S3Error("InvalidRequest", "This operation needs an object key", 400)
        return self.request.key

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` in a worker thread: store calls may touch the disk."""
        return await anyio.to_thread.run_sync(functools.partial(function, *args))

    async def require_bucket(self, bucket: str | None = None) -> None:
        name = bucket or self.bucket
        if not await self.run(self.store.bucket_exists, name):
            raise no_such_bucket(name)

    async def authorize(self, bucket: str | None, key: str | None, action: str) -> None:
        allowed = await resolve(self.settings.authorize(self.access_key_id, bucket, key, action))
        if not allowed:
            raise S3Error("AccessDenied", "Access Denied", 403)

    def body_decoder(self, limit: int | None = None) -> BodyDecoder:
        size = self.settings.max_body_bytes if limit is None else limit
        return BodyDecoder(self.request.headers, limit=size, signer=self.signer)

    async def upload(
        self, consume: Callable[[Iterator[bytes]], _T], decoder: BodyDecoder | None = None
    ) -> tuple[_T, BodyDecoder]:
        """``consume(body pieces)`` in a worker thread; the body is verified before it ends."""
        decoder = decoder or self.body_decoder()
        raw = RawBody(self.receive)
        result = await anyio.to_thread.run_sync(
            lambda: consume(decoded_blocks(raw, decoder)), limiter=self.upload_limiter
        )
        return result, decoder

    async def read_xml(self) -> ET.Element:
        """The request's XML document (DTDs refused, size bounded); MalformedXML if broken."""
        root = await self.read_optional_xml()
        if root is None:
            raise malformed_xml()
        return root

    async def read_optional_xml(self) -> ET.Element | None:
        """Like ``read_xml``, but an empty body is None."""
        body = await read_small(RawBody(self.receive), self.body_decoder(MAX_XML_BYTES))
        if not body.strip():
            return None
        lowered = body.lower()
        if b"<!doctype" in lowered or b"<!entity" in lowered:
            raise malformed_xml()  # no request document needs a DTD; refusing one stops XXE
        try:
            return ET.fromstring(body)  # noqa: S314  (DTDs refused above, size bounded)
        except ET.ParseError:
            raise malformed_xml() from None

    def upload_fields(self) -> UploadFields:
        """Content-Type, Cache-Control and x-amz-meta-* of the request, validated."""
        headers = self.request.headers
        raw = {
            name.removeprefix("x-amz-meta-"): value
            for name, value in headers.items()
            if name.startswith("x-amz-meta-")
        }
        size = sum(len(name.encode()) + len(value.encode()) for name, value in raw.items())
        if size > MAX_METADATA_BYTES:
            raise S3Error(
                "MetadataTooLarge",
                "Your metadata headers exceed the maximum allowed metadata size.",
                400,
                Size=str(size),
                MaxSizeAllowed=str(MAX_METADATA_BYTES),
            )
        try:
            metadata = normalize_metadata(raw)
        except InvalidInputError as error:
            raise invalid_argument(error.message) from None
        return UploadFields(
            content_type=headers.get("content-type") or None,
            cache_control=headers.get("cache-control") or None,
            metadata=metadata,
        )


def malformed_xml() -> S3Error:
    return S3Error(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
        400,
    )


def local_name(element: ET.Element) -> str:
    """An element's tag without its namespace (clients send S3's namespace, or none)."""
    return element.tag.rsplit("}", 1)[-1]


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if local_name(child) == name]


def child_text(element: ET.Element, name: str) -> str | None:
    found = children(element, name)
    return (found[0].text or "") if found else None
