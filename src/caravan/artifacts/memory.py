"""The in-memory artifact store: the fast fake for unit tests, with the filesystem store's rules.

Same validation, same deduplication (one blob per distinct sha256, kept until
``collect_garbage``), same errors. Thread-safe. ``local_path`` has to hand out a real file: it
writes the object's content lazily, on first request, into a private temporary directory (one
file per distinct content, reused afterwards) that is removed when the store is garbage
collected or the process exits.
"""

from __future__ import annotations

import builtins
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from caravan.artifacts.keys import (
    ContentDigest,
    normalize_metadata,
    validate_bucket,
    validate_key,
    validate_prefix,
)
from caravan.artifacts.store import ObjectInfo
from caravan.errors import InvalidInputError, ObjectNotFoundError


class MemoryArtifactStore:
    """An ``ArtifactStore`` held in dictionaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}
        self._buckets: dict[str, dict[str, ObjectInfo]] = {}
        self._spill: Path | None = None

    # ----------------------------------------------------------------------------- writing

    def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        cache_control: str | None = None,
    ) -> ObjectInfo:
        return self._put(bucket, key, bytes(data), content_type, metadata, cache_control)

    def put_file(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        cache_control: str | None = None,
    ) -> ObjectInfo:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise InvalidInputError(f"cannot read {path}: {error.strerror}") from None
        return self._put(bucket, key, data, content_type, metadata, cache_control)

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
        data = b"".join(bytes(chunk) for chunk in chunks)
        return self._put(bucket, key, data, content_type, metadata, cache_control)

    def _put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
        cache_control: str | None,
    ) -> ObjectInfo:
        validate_bucket(bucket)
        validate_key(key)
        info = ContentDigest.of(data).object_info(
            bucket,
            key,
            content_type=content_type,
            metadata=normalize_metadata(metadata),
            cache_control=cache_control,
        )
        with self._lock:
            self._blobs.setdefault(info.sha256, data)
            self._buckets.setdefault(bucket, {})[key] = info
        return info

    def delete(self, bucket: str, key: str) -> None:
        validate_bucket(bucket)
        validate_key(key)
        with self._lock:
            self._buckets.get(bucket, {}).pop(key, None)

    # ----------------------------------------------------------------------------- reading

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        validate_bucket(bucket)
        validate_key(key)
        with self._lock:
            return self._buckets.get(bucket, {}).get(key)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        with self._lock:
            return self._blobs[self._require(bucket, key).sha256]

    def local_path(self, bucket: str, key: str) -> Path:
        with self._lock:
            info = self._require(bucket, key)
            path = self._spill_dir() / info.sha256
            if not path.exists():
                temp = path.with_suffix(".tmp")
                temp.write_bytes(self._blobs[info.sha256])
                temp.chmod(0o444)  # a shared copy: readers must not change it
                temp.replace(path)
            return path

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_bucket(bucket)
        validate_prefix(prefix)
        with self._lock:
            objects = self._buckets.get(bucket, {})
            chosen = [info for key, info in objects.items() if key.startswith(prefix)]
        return iter(sorted(chosen, key=lambda info: info.key))

    # ----------------------------------------------------------------------------- buckets

    def create_bucket(self, name: str) -> None:
        validate_bucket(name)
        with self._lock:
            self._buckets.setdefault(name, {})

    def bucket_exists(self, name: str) -> bool:
        validate_bucket(name)
        with self._lock:
            return name in self._buckets

    def list_buckets(self) -> builtins.list[str]:
        with self._lock:
            return sorted(self._buckets)

    def collect_garbage(self) -> int:
        with self._lock:
            live = {info.sha256 for objects in self._buckets.values() for info in objects.values()}
            dead = [sha for sha in self._blobs if sha not in live]
            for sha in dead:
                del self._blobs[sha]
                if self._spill is not None:
                    (self._spill / sha).unlink(missing_ok=True)
            return len(dead)

    # ----------------------------------------------------------------------------- helpers

    def _require(self, bucket: str, key: str) -> ObjectInfo:
        """The object's info; call with the lock held."""
        validate_bucket(bucket)
        validate_key(key)
        info = self._buckets.get(bucket, {}).get(key)
        if info is None:
            raise ObjectNotFoundError(f"no object {key!r} in bucket {bucket!r}")
        return info

    def _spill_dir(self) -> Path:
        if self._spill is None:
            self._spill = Path(tempfile.mkdtemp(prefix="caravan-artifacts-"))
            # Removed with the store (or at exit): the files only back local_path's answers.
            weakref.finalize(self, shutil.rmtree, self._spill, ignore_errors=True)
        return self._spill
