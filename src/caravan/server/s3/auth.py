"""Who is calling: the access key of an S3 request, its SigV4 signature, and the two hooks.

Every request's credentials are parsed — the ``Authorization: AWS4-HMAC-SHA256 Credential=...``
header, a presigned URL's ``X-Amz-Credential`` query, or legacy SigV2 (``AWS key:sig``,
``AWSAccessKeyId=``) — and the access key id is handed to the ``authorize`` hook with the bucket,
key and IAM action (``s3:GetObject`` ...). By default every request is allowed and no signature
is checked: the endpoint serves loopback, any credentials work, as with other local S3s.

When a ``secret_for`` hook returns the secret of the request's access key, the signature is
verified as AWS does (the SigV4 algorithm botocore implements, in hmac/hashlib): canonical
request, string to sign, derived signing key; a mismatch is ``403 SignatureDoesNotMatch``.
SigV2, which boto3 still uses for presigned URLs, is verified by sigv2.py. For
``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` bodies the returned ``ChunkSigner`` checks each chunk's
signature (and the trailer's) as the body arrives.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import inspect
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from caravan.server.s3.requests import S3Request
from caravan.server.s3.responses import S3Error
from caravan.server.s3.sigv2 import MAX_CLOCK_SKEW_SECONDS, verify_v2

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

_T = TypeVar("_T")

# authorize(access_key_id, bucket, key, action) -> allowed? (None where a part does not apply)
Authorize = Callable[[str | None, str | None, str | None, str], bool | Awaitable[bool]]
# secret_for(access_key_id) -> the secret access key, or None to accept the key unverified
SecretLookup = Callable[[str], str | Awaitable[str | None] | None]


def allow_all(access_key_id: str | None, bucket: str | None, key: str | None, action: str) -> bool:
    """The default ``authorize`` hook: every caller may do everything."""
    return True


async def resolve(value: _T | Awaitable[_T]) -> _T:
    """A hook's answer, whether the hook is a plain function or a coroutine function."""
    if inspect.isawaitable(value):
        return await value
    return value


@dataclass(frozen=True)
class Credentials:
    """What a request claims about its signer; ``kind`` "anonymous" carries no key."""

    kind: Literal["header", "query", "sigv2", "anonymous"]
    access_key_id: str | None = None
    signature: str = ""
    timestamp: str = ""  # x-amz-date form, 20250101T120000Z
    scope: str = ""  # 20250101/us-east-1/s3/aws4_request
    signed_headers: tuple[str, ...] = ()
    expires: int | None = None  # presigned URLs: seconds of validity


def parse_credentials(request: S3Request) -> Credentials:
    """The credentials of ``request``; 400 if its Authorization header or query is malformed."""
    header = request.headers.get("authorization")
    query = request.query
    if header is not None and ("X-Amz-Credential" in query or "AWSAccessKeyId" in query):
        raise S3Error("InvalidArgument", "Only one auth mechanism allowed", 400)
    if header is not None:
        return _parse_header(header.strip(), request)
    if "X-Amz-Credential" in query:
        return _parse_query(query)
    if "AWSAccessKeyId" in query:
        return Credentials("sigv2", query["AWSAccessKeyId"])
    return Credentials("anonymous")


def _parse_header(header: str, request: S3Request) -> Credentials:
    if header.startswith("AWS "):
        access_key, _, _signature = header[4:].partition(":")
        return Credentials("sigv2", access_key.strip() or None)
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise _malformed(f"unsupported authorization type {algorithm[:40]!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name] = value.strip()
    try:
        credential, signed, signature = (
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
        )
    except KeyError as missing:
        raise _malformed(f"the Authorization header has no {missing.args[0]}") from None
    access_key, scope = _split_credential(credential)
    return Credentials(
        "header",
        access_key,
        signature=signature,
        timestamp=request.headers.get("x-amz-date", ""),
        scope=scope,
        signed_headers=tuple(signed.split(";")),
    )


def _parse_query(query: dict[str, str]) -> Credentials:
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise S3Error(
            "AuthorizationQueryParametersError",
            f"X-Amz-Algorithm only supports {ALGORITHM!r}",
            400,
        )
    access_key, scope = _split_credential(query["X-Amz-Credential"])
    try:
        expires = int(query.get("X-Amz-Expires", ""))
    except ValueError:
        expires = -1
    if not 1 <= expires <= MAX_PRESIGN_SECONDS:
        raise S3Error(
            "AuthorizationQueryParametersError",
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_SECONDS}",
            400,
        )
    return Credentials(
        "query",
        access_key,
        signature=query.get("X-Amz-Signature", ""),
        timestamp=query.get("X-Amz-Date", ""),
        scope=scope,
        signed_headers=tuple(query.get("X-Amz-SignedHeaders", "host").split(";")),
        expires=expires,
    )


def _split_credential(credential: str) -> tuple[str, str]:
    access_key, _, scope = credential.partition("/")
    parts = scope.split("/")
    if not access_key or len(parts) != 4 or parts[3] != "aws4_request":
        raise _malformed(
            f"the credential {credential[:200]!r} is not <key>/<date>/<region>/s3/aws4_request"
        )
    return access_key, scope


def _malformed(message: str) -> S3Error:
    return S3Error("AuthorizationHeaderMalformed", message, 400)


# ------------------------------------------------------------------------------ verification


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify(
    request: S3Request, credentials: Credentials, secret: str, *, now: float | None = None
) -> ChunkSigner | None:
    """Check ``request``'s SigV4 signature with ``secret``; S3Error (403/400) if it fails.

    Returns the signer for the chunk signatures of a ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` body
    (None for any other body, whose integrity the body reader checks on its own).
    """
    now = time.time() if now is None else now
    if credentials.kind == "sigv2":
        verify_v2(request, secret, now=now)
        return None
    if credentials.kind == "anonymous":
        return None
    date, region, service, _ = credentials.scope.split("/")
    if service != "s3":
        raise _malformed(f"the credential is scoped to service {service!r}; expected 's3'")
    _check_time(credentials, date, now)
    if "host" not in credentials.signed_headers:
        raise _malformed("the signed headers must include host")
    payload = _payload_hash(request, credentials)
    canonical = canonical_request(request, credentials, payload)
    string_to_sign = "\n".join(
        [ALGORITHM, credentials.timestamp, credentials.scope, _sha256_hex(canonical)]
    )
    key = signing_key(secret, date, region, service)
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, credentials.signature.lower()):
        raise S3Error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            403,
            AWSAccessKeyId=credentials.access_key_id or "",
            StringToSign=string_to_sign,
            CanonicalRequest=canonical,
        )
    if payload in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        return ChunkSigner(key, credentials.timestamp, credentials.scope, expected)
    return None


def _check_time(credentials: Credentials, date: str, now: float) -> None:
    try:
        signed_at = float(calendar.timegm(time.strptime(credentials.timestamp, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header", 403
        ) from None
    if credentials.timestamp[:8] != date:
        raise _malformed(f"the credential date {date!r} is not the request's date")
    if credentials.kind == "query":
        if now > signed_at + (credentials.expires or 0):
            raise S3Error("AccessDenied", "Request has expired", 403)
        if signed_at - now > MAX_CLOCK_SKEW_SECONDS:
            raise S3Error("AccessDenied", "Request is not valid yet", 403)
    elif abs(now - signed_at) > MAX_CLOCK_SKEW_SECONDS:
        raise S3Error(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            403,
        )


def _payload_hash(request: S3Request, credentials: Credentials) -> str:
    header = request.headers.get("x-amz-content-sha256")
    if credentials.kind == "query":
        return (
            header
            if header and "x-amz-content-sha256" in credentials.signed_headers
            else (UNSIGNED_PAYLOAD)
        )
    if header is None:
        raise S3Error(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400
        )
    return header


def canonical_request(request: S3Request, credentials: Credentials, payload_hash: str) -> str:
    """SigV4's canonical request. S3 paths are encoded once and never normalized."""
    path_bytes = urllib.parse.unquote_to_bytes(request.raw_path)
    canonical_uri = urllib.parse.quote(path_bytes, safe="/~")
    pairs = [
        (_encode(name), _encode(value))
        for name, value in request.query_pairs
        if not (credentials.kind == "query" and name == "X-Amz-Signature")
    ]
    canonical_query = "&".join(f"{name}={value}" for name, value in sorted(pairs))
    lines = []
    for name in credentials.signed_headers:
        values = request.headers.getlist(name)
        lines.append(f"{name}:{','.join(' '.join(value.split()) for value in values)}\n")
    return "\n".join(
        [
            request.method,
            canonical_uri,
            canonical_query,
            "".join(lines),
            ";".join(credentials.signed_headers),
            payload_hash,
        ]
    )


def _encode(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


class ChunkSigner:
    """Checks the signature chain of an aws-chunked body (sigv4-streaming.html)."""

    def __init__(self, key: bytes, timestamp: str, scope: str, seed_signature: str) -> None:
        self._key = key
        self._timestamp = timestamp
        self._scope = scope
        self._previous = seed_signature

    def verify_chunk(self, claimed: str | None, data_sha256_hex: str) -> None:
        text = "\n".join(
            [
                f"{ALGORITHM}-PAYLOAD",
                self._timestamp,
                self._scope,
                self._previous,
                EMPTY_SHA256,
                data_sha256_hex,
            ]
        )
        self._previous = self._check(claimed, text, "chunk")

    def verify_trailer(self, claimed: str | None, canonical_trailers: bytes) -> None:
        text = "\n".join(
            [
                f"{ALGORITHM}-TRAILER",
                self._timestamp,
                self._scope,
                self._previous,
                hashlib.sha256(canonical_trailers).hexdigest(),
            ]
        )
        self._previous = self._check(claimed, text, "trailer")

    def _check(self, claimed: str | None, string_to_sign: str, what: str) -> str:
        expected = hmac.new(self._key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if claimed is None or not hmac.compare_digest(expected, claimed.lower()):
            raise S3Error(
                "SignatureDoesNotMatch",
                f"The {what} signature we calculated does not match the signature you provided.",
                403,
            )
        return expected
