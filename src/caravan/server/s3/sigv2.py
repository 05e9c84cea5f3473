"""Verifying legacy SigV2 (HMAC-SHA1) signatures, which boto3 still uses for presigned URLs.

``generate_presigned_url`` signs with SigV2 unless the client is configured for ``s3v4``, so a
server that verifies signatures has to verify these as well (RESTAuthentication.html)::

    StringToSign = VERB \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n
                   x-amz-* headers (lower-case, sorted, "name:value\\n" each)
                   /bucket/key[?subresources]

signed with HMAC-SHA1 and base64-encoded; presigned URLs carry ``AWSAccessKeyId``,
``Signature`` and ``Expires`` (epoch seconds) in the query.
"""

from __future__ import annotations

import base64
import calendar
import email.utils
import hashlib
import hmac

from caravan.server.s3.requests import S3Request
from caravan.server.s3.responses import S3Error

MAX_CLOCK_SKEW_SECONDS = 15 * 60
# The query parameters that are part of the signed resource (botocore's HmacV1Auth list).
SIGNED_SUBRESOURCES = frozenset(
    [
        "accelerate",
        "acl",
        "cors",
        "defaultObjectAcl",
        "delete",
        "inventory",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "replication",
        "requestPayment",
        "restore",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
        "analytics",
    ]
)


def verify_v2(request: S3Request, secret: str, *, now: float) -> None:
    """Check a SigV2 header or presigned query; S3Error (403/400) if it does not hold."""
    presigned = "AWSAccessKeyId" in request.query
    if presigned:
        claimed = request.query.get("Signature", "").replace(" ", "+")
        date_line = _check_expiry(request.query.get("Expires", ""), now)
    else:
        header = request.headers.get("authorization", "")
        claimed = header[4:].partition(":")[2].strip()
        date_line = _check_date(request, now)
    string_to_sign = "\n".join(
        [
            request.method,
            _value(request, "content-md5", presigned),
            _value(request, "content-type", presigned),
            date_line,
            *_amz_lines(request, presigned),
            canonical_resource(request),
        ]
    )
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    expected = base64.b64encode(digest.digest()).decode("ascii")
    if not hmac.compare_digest(expected, claimed):
        raise S3Error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            403,
            StringToSign=string_to_sign,
        )


def canonical_resource(request: S3Request) -> str:
    """The signed resource: the path as sent (with the bucket, even when virtual-hosted) and
    the subresources of the query, sorted."""
    path = request.raw_path
    if request.virtual_host and request.bucket is not None:
        path = f"/{request.bucket}{path}"
    signed = sorted(
        (name, value) for name, value in request.query_pairs if name in SIGNED_SUBRESOURCES
    )
    if not signed:
        return path
    return path + "?" + "&".join(f"{name}={value}" if value else name for name, value in signed)


def _value(request: S3Request, name: str, presigned: bool) -> str:
    value = request.headers.get(name)
    if value is None and presigned:
        value = request.query.get(name)
    return (value or "").strip()


def _amz_lines(request: S3Request, presigned: bool) -> list[str]:
    found: dict[str, str] = {}
    for name in request.headers:
        if name.startswith("x-amz-"):
            found[name] = ",".join(v.strip() for v in request.headers.getlist(name))
    if presigned:  # botocore moves the signed x-amz-* headers into the presigned query
        for name, value in request.query_pairs:
            if name.lower().startswith("x-amz-"):
                found.setdefault(name.lower(), value.strip())
    return [f"{name}:{found[name]}" for name in sorted(found)]


def _check_expiry(expires: str, now: float) -> str:
    if not expires.isascii() or not expires.isdigit():
        raise S3Error("AccessDenied", "Invalid date (should be seconds since epoch)", 403)
    if now > int(expires):
        raise S3Error("AccessDenied", "Request has expired", 403)
    return expires


def _check_date(request: S3Request, now: float) -> str:
    amz_date = request.headers.get("x-amz-date")
    text = amz_date or request.headers.get("date", "")
    parsed = email.utils.parsedate_tz(text)
    if parsed is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header", 403
        )
    signed_at = calendar.timegm(parsed[:9]) - (parsed[9] or 0)
    if abs(now - signed_at) > MAX_CLOCK_SKEW_SECONDS:
        raise S3Error(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            403,
        )
    # With x-amz-date the Date line is empty: the date is signed among the x-amz-* headers.
    return "" if amz_date else text.strip()
