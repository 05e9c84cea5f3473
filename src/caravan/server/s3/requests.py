"""Reading an S3 request off the ASGI scope: which bucket and key it addresses, and its query.

Two addressing styles name the bucket (VirtualHosting.html):

* path-style ``/{bucket}/{key}`` on any host (``127.0.0.1:9000``, ``s3.localhost``), and
* virtual-hosted ``Host: {bucket}.s3.<anything>`` — or, with ``host_patterns``, any
  ``{bucket}.<pattern>`` where ``*`` in a pattern matches any run of characters.

The key is taken from the raw (still percent-encoded) path and decoded strictly as UTF-8, so a
key is exactly what the client encoded; a path that does not decode is ``InvalidURI``. When the
app is mounted under a prefix (``root_path``), the prefix is not part of the key.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from starlette.datastructures import Headers
from starlette.types import Scope

from caravan.server.s3.responses import S3Error

DEFAULT_HOST_PATTERNS = ("s3.*",)

# Query parameters that turn a request into another operation (S3's "subresources"). Any other
# parameter (botocore's x-id, response-* overrides, SigV4 presign fields) leaves it as it is.
SUBRESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "attributes",
        "cors",
        "delete",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "location",
        "logging",
        "metadataConfiguration",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "partNumber",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "renameObject",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "session",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versioning",
        "versions",
        "website",
    }
)


@dataclass(frozen=True)
class S3Request:
    method: str
    bucket: str | None  # None: the service itself (ListBuckets)
    key: str | None  # None: the bucket itself
    query: dict[str, str]  # first value of each parameter, decoded
    query_pairs: tuple[tuple[str, str], ...]  # every parameter, decoded, in order (for SigV4)
    headers: Headers
    raw_path: str  # as sent, percent-encoded, including any mount prefix (for SigV4)
    virtual_host: bool

    def subresources(self) -> list[str]:
        return [name for name in self.query if name in SUBRESOURCES]

    @property
    def resource(self) -> str:
        """``/bucket/key`` as S3 names the resource in errors."""
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}/{self.key}" if self.key is not None else f"/{self.bucket}"


def parse_request(scope: Scope, host_patterns: Sequence[str] = DEFAULT_HOST_PATTERNS) -> S3Request:
    """The bucket, key and query an ASGI HTTP scope addresses; S3Error if they do not decode."""
    headers = Headers(scope=scope)
    raw_path = _raw_path(scope)
    route_path = _without_root(raw_path, scope.get("root_path", ""))
    path = _decode_path(route_path)
    host = headers.get("host", "").lower().rsplit(":", 1)[0] if "host" in headers else ""
    host_bucket = bucket_from_host(host, tuple(host_patterns))
    if host_bucket is not None:
        bucket: str | None = host_bucket
        key: str | None = path[1:] or None
    else:
        name, slash, rest = path[1:].partition("/")
        bucket = name or None
        key = rest if slash and rest else None
    pairs = _parse_query(scope.get("query_string", b""))
    query: dict[str, str] = {}
    for name, value in pairs:
        query.setdefault(name, value)
    return S3Request(
        method=scope["method"].upper(),
        bucket=bucket,
        key=key,
        query=query,
        query_pairs=tuple(pairs),
        headers=headers,
        raw_path=raw_path,
        virtual_host=host_bucket is not None,
    )


def bucket_from_host(host: str, patterns: tuple[str, ...]) -> str | None:
    """The bucket a virtual-hosted ``host`` (lower-case, no port) names, or None."""
    for pattern in patterns:
        match = _host_regex(pattern).fullmatch(host)
        if match:
            return match.group("bucket")
    return None


@lru_cache(maxsize=64)
def _host_regex(pattern: str) -> re.Pattern[str]:
    body = ".*".join(re.escape(part) for part in pattern.lower().split("*"))
    # The bucket is the shortest leading part, so "a.b.s3.x" names bucket "a.b" only when no
    # shorter split matches the pattern.
    return re.compile(rf"(?P<bucket>[^:/]+?)\.{body}")


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if raw:
        # httpx's ASGI transport has sent the query along in raw_path; servers do not.
        return bytes(raw).split(b"?", 1)[0].decode("latin-1")
    return urllib.parse.quote(scope.get("path", "/"), safe="/~!$&'()*+,;=:@")


def _without_root(raw_path: str, root_path: str) -> str:
    if not root_path:
        return raw_path
    encoded_root = urllib.parse.quote(root_path, safe="/~!$&'()*+,;=:@")
    for prefix in (root_path, encoded_root):
        if raw_path.startswith(prefix) and raw_path[len(prefix) : len(prefix) + 1] in ("", "/"):
            return raw_path[len(prefix) :] or "/"
    return raw_path


def _decode_path(raw_path: str) -> str:
    try:
        path = urllib.parse.unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error(
            "InvalidURI", "Couldn't parse the specified URI: the path is not UTF-8", 400
        ) from None
    if not path.startswith("/"):
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.", 400)
    return path


def _parse_query(query_string: bytes) -> list[tuple[str, str]]:
    """Decoded ``name=value`` pairs; ``+`` is a space, as in every S3 client's encoding."""
    text = query_string.decode("latin-1")
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            pairs.append((_unquote(name), _unquote(value)))
        except UnicodeDecodeError:
            raise S3Error(
                "InvalidArgument", f"query parameter {name[:100]!r} is not valid UTF-8", 400
            ) from None
    return pairs


def _unquote(text: str) -> str:
    return urllib.parse.unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
