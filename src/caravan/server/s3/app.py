"""The S3-compatible endpoint over an artifact store, as one ASGI app.

    s3_app(store)                             any credentials, path-style and <bucket>.s3.<host>
    s3_app(store, S3Settings(authorize=...))  job-scoped access, verified signatures, limits

Each request goes the same way: parse the address (requests.py) and credentials (auth.py),
verify the signature when a secret is known, pick the operation (routing.py), validate bucket
and key as the store will, ask the ``authorize`` hook, run the handler (buckets.py, objects.py,
multipart.py). Any failure becomes S3's XML error with its status; an unexpected one is logged
and answered ``500 InternalError`` without details. Every answer carries ``x-amz-request-id``.
"""

from __future__ import annotations

import logging
import time
import uuid

import anyio
from starlette.types import Receive, Scope, Send

from caravan.artifacts.keys import MAX_KEY_BYTES, validate_bucket, validate_key
from caravan.artifacts.store import ArtifactStore
from caravan.asgi import acknowledge_lifespan
from caravan.errors import CaravanError, InvalidInputError, NotFoundError
from caravan.server.s3.auth import ChunkSigner, Credentials, parse_credentials, resolve, verify
from caravan.server.s3.context import Call, S3Settings
from caravan.server.s3.multipart import Uploads
from caravan.server.s3.requests import S3Request, parse_request
from caravan.server.s3.responses import (
    Reply,
    S3Error,
    error_reply,
    internal_error,
    send_reply,
)
from caravan.server.s3.routing import route

logger = logging.getLogger("caravan.server.s3")


def s3_app(store: ArtifactStore, settings: S3Settings | None = None) -> S3App:
    """An ASGI app serving ``store`` through the S3 REST API subset artifact clients use."""
    return S3App(store, settings or S3Settings())


class S3App:
    def __init__(self, store: ArtifactStore, settings: S3Settings) -> None:
        if settings.max_body_bytes < 0 or settings.max_concurrent_uploads < 1:
            raise ValueError("max_body_bytes must be >= 0 and max_concurrent_uploads >= 1")
        self.store = store
        self.settings = settings
        self.uploads = Uploads(settings.upload_dir)
        self.started = time.time()
        self._upload_limiter: anyio.CapacityLimiter | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets are not part of S3; returning closes the connection
        request_id = uuid.uuid4().hex[:16].upper()
        head = scope.get("method", "").upper() == "HEAD"
        try:
            reply = await self._serve(scope, receive, request_id)
        except S3Error as error:
            reply = error_reply(error, request_id, head=head)
        except CaravanError as error:
            reply = error_reply(_from_caravan(error), request_id, head=head)
        except Exception:
            logger.exception("S3 request %s failed", request_id)
            reply = error_reply(internal_error(), request_id, head=head)
        await send_reply(reply, request_id, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, request_id: str) -> Reply:
        request = parse_request(scope, self.settings.host_patterns)
        credentials = parse_credentials(request)
        signer = await self._verify(request, credentials)
        operation = route(request)
        _validate_names(request)
        call = Call(
            request=request,
            receive=receive,
            store=self.store,
            settings=self.settings,
            access_key_id=credentials.access_key_id,
            signer=signer,
            upload_limiter=self._limiter(),
            uploads=self.uploads,
            started=self.started,
        )
        if operation.action is not None:
            await call.authorize(request.bucket, request.key, operation.action)
        return await operation.handler(call)

    async def _verify(self, request: S3Request, credentials: Credentials) -> ChunkSigner | None:
        lookup = self.settings.secret_for
        if lookup is None or credentials.access_key_id is None:
            return None
        secret = await resolve(lookup(credentials.access_key_id))
        if secret is None:
            return None
        return verify(request, credentials, secret, now=self.settings.clock())

    def _limiter(self) -> anyio.CapacityLimiter:
        # Created on first use, inside the event loop that serves the requests.
        if self._upload_limiter is None:
            self._upload_limiter = anyio.CapacityLimiter(self.settings.max_concurrent_uploads)
        return self._upload_limiter


def _validate_names(request: S3Request) -> None:
    if request.bucket is not None:
        try:
            validate_bucket(request.bucket)
        except InvalidInputError as error:
            raise S3Error(
                "InvalidBucketName", error.message, 400, BucketName=request.bucket[:100]
            ) from None
    if request.key is not None:
        size = len(request.key.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_BYTES:
            raise S3Error(
                "KeyTooLongError",
                "Your key is too long",
                400,
                Size=str(size),
                MaxSizeAllowed=str(MAX_KEY_BYTES),
            )
        try:
            validate_key(request.key)
        except InvalidInputError as error:
            raise S3Error("InvalidArgument", error.message, 400) from None


def _from_caravan(error: CaravanError) -> S3Error:
    """A store error as S3 names it (the store validates as we do, so these are rare)."""
    if isinstance(error, NotFoundError):
        return S3Error("NoSuchKey", error.message, 404)
    if isinstance(error, InvalidInputError):
        return S3Error("InvalidArgument", error.message, 400)
    logger.error("artifact store error: %s", error.message)
    return S3Error("InternalError", error.message, 500)
