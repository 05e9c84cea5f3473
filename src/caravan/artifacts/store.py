"""The artifact store interface: objects addressed like CodePipeline's (bucket + object key)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    sha256: str  # hex digest of the content
    etag: str  # quoted MD5 hex, as S3 returns it for single-part uploads
    last_modified: float  # epoch seconds
    content_type: str = "application/octet-stream"
    # S3 user metadata (x-amz-meta-*; keys lower-cased as S3 returns them) and Cache-Control.
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    cache_control: str | None = None


class ArtifactStore(Protocol):
    """Objects by bucket and key. Content is stored once per distinct sha256.

    A bucket comes into existence on its first put (or ``create_bucket``). Bucket names follow
    S3's rules and keys are 1-1024 bytes of UTF-8 without NUL; anything else raises
    ``InvalidInputError``. A missing object raises ``ObjectNotFoundError`` (``head``: None).
    """

    def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        cache_control: str | None = None,
    ) -> ObjectInfo: ...

    def put_file(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        cache_control: str | None = None,
    ) -> ObjectInfo: ...

    def put_stream(
        self,
        bucket: str,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        cache_control: str | None = None,
    ) -> ObjectInfo:
        """Store a body that arrives in pieces (large uploads) without holding it all."""
        ...

    def get_bytes(self, bucket: str, key: str) -> bytes: ...

    def local_path(self, bucket: str, key: str) -> Path:
        """A path to read the object from, without copying (for extraction). Never write to it."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def delete(self, bucket: str, key: str) -> None:
        """Forget the key (a missing key is fine, as in S3); the content stays until GC."""
        ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """The objects whose key starts with ``prefix``, sorted by key."""
        ...

    def create_bucket(self, name: str) -> None:
        """Create the bucket if it does not exist yet."""
        ...

    def bucket_exists(self, name: str) -> bool: ...

    def list_buckets(self) -> builtins.list[str]:
        """Bucket names, sorted."""
        ...

    def collect_garbage(self) -> int:
        """Drop content no key refers to any more; how many blobs were removed."""
        ...
