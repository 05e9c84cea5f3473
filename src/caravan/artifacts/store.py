"""The artifact store interface: objects addressed like CodePipeline's (bucket + object key)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


class ArtifactStore(Protocol):
    """Objects by bucket and key. Content is stored once per distinct sha256."""

    def put_bytes(
        self, bucket: str, key: str, data: bytes, *, content_type: str | None = None
    ) -> ObjectInfo: ...

    def put_file(
        self, bucket: str, key: str, path: Path, *, content_type: str | None = None
    ) -> ObjectInfo: ...

    def get_bytes(self, bucket: str, key: str) -> bytes: ...

    def local_path(self, bucket: str, key: str) -> Path:
        """A path to read the object from, without copying (for extraction)."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]: ...
