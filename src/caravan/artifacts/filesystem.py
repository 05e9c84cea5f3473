"""The filesystem artifact store: content-addressed blobs plus one small record per key.

Layout under ``root``::

    blobs/ab/cdef...                      content, named by its sha256, read-only
    buckets/<bucket>/keys/<name>.json     {key, sha256, size, etag, content_type, last_modified,
                                           metadata, cache_control}
    tmp/                                  uploads in progress
    lock                                  taken shared by puts, exclusively by collect_garbage

``<name>`` is the key percent-encoded (see ``keys.key_filename``), so no key can leave the
store, whatever it contains. Unchanged content (the same bytes under many keys) is stored once.

Every write goes to ``tmp/`` first and is published with ``os.replace``: readers see the old or
the new object, never a torn one, and concurrent writers of the same content simply race to
publish identical blobs. A blob is published before the record pointing to it, and garbage
collection takes the lock exclusively, so it can never remove a blob a put is about to reference.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

from caravan.artifacts.keys import (
    DEFAULT_CONTENT_TYPE,
    ContentDigest,
    filename_key,
    key_filename,
    normalize_metadata,
    validate_bucket,
    validate_key,
    validate_prefix,
)
from caravan.artifacts.store import ObjectInfo
from caravan.errors import CaravanError, InvalidInputError, ObjectNotFoundError

_CHUNK = 1024 * 1024
_STALE_UPLOAD_SECONDS = 24 * 3600  # a temp file this old belongs to a crashed upload


class FilesystemArtifactStore:
    """An ``ArtifactStore`` in a directory; safe for several threads and processes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._buckets = self.root / "buckets"
        self._tmp = self.root / "tmp"
        for directory in (self._blobs, self._buckets, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.RLock()  # where flock is unavailable

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
        return self.put_stream(
            bucket,
            key,
            [data],
            content_type=content_type,
            metadata=metadata,
            cache_control=cache_control,
        )

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
        with contextlib.ExitStack() as stack:
            try:
                handle = stack.enter_context(Path(path).open("rb"))
            except OSError as error:
                raise InvalidInputError(f"cannot read {path}: {error.strerror}") from None
            return self.put_stream(
                bucket,
                key,
                iter(lambda: handle.read(_CHUNK), b""),
                content_type=content_type,
                metadata=metadata,
                cache_control=cache_control,
            )

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
        validate_bucket(bucket)
        validate_key(key)
        meta = normalize_metadata(metadata)
        digest, upload = self._receive(chunks)
        info = digest.object_info(
            bucket, key, content_type=content_type, metadata=meta, cache_control=cache_control
        )
        try:
            with self._lock(exclusive=False):
                self._publish_blob(upload, digest.sha256)
                keys = self._keys_dir(bucket)
                keys.mkdir(parents=True, exist_ok=True)
                self._write_atomically(self._record_path(bucket, key), _encode_record(info))
        finally:
            upload.unlink(missing_ok=True)
        return info

    def delete(self, bucket: str, key: str) -> None:
        validate_bucket(bucket)
        validate_key(key)
        self._record_path(bucket, key).unlink(missing_ok=True)

    # ----------------------------------------------------------------------------- reading

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        validate_bucket(bucket)
        validate_key(key)
        return self._read_record(bucket, self._record_path(bucket, key))

    def get_bytes(self, bucket: str, key: str) -> bytes:
        # An overwrite plus garbage collection may remove the blob between the record read and
        # the blob read; reading the record again then finds the new content.
        for _attempt in range(3):
            try:
                return self.local_path(bucket, key).read_bytes()
            except FileNotFoundError:
                continue
        return self.local_path(bucket, key).read_bytes()

    def local_path(self, bucket: str, key: str) -> Path:
        info = self.head(bucket, key)
        if info is None:
            raise ObjectNotFoundError(f"no object {key!r} in bucket {bucket!r}")
        path = self._blob_path(info.sha256)
        if not path.is_file():
            raise CaravanError(f"artifact store {self.root} is damaged: blob {path} is missing")
        return path

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_bucket(bucket)
        validate_prefix(prefix)
        found: builtins.list[ObjectInfo] = []
        keys = self._keys_dir(bucket)
        if not keys.is_dir():
            return iter(())
        for record in keys.iterdir():
            name = record.name
            if not name.endswith(".json"):
                continue
            decoded = filename_key(name[: -len(".json")])
            if decoded is not None and not decoded.startswith(prefix):
                continue  # skip reading records that cannot match
            info = self._read_record(bucket, record)
            if info is not None and info.key.startswith(prefix):
                found.append(info)
        return iter(sorted(found, key=lambda info: info.key))

    # ----------------------------------------------------------------------------- buckets

    def create_bucket(self, name: str) -> None:
        validate_bucket(name)
        self._keys_dir(name).mkdir(parents=True, exist_ok=True)

    def bucket_exists(self, name: str) -> bool:
        validate_bucket(name)
        return self._keys_dir(name).is_dir()

    def list_buckets(self) -> builtins.list[str]:
        return sorted(p.name for p in self._buckets.iterdir() if (p / "keys").is_dir())

    # ------------------------------------------------------------------------- maintenance

    def collect_garbage(self) -> int:
        """Remove blobs no record refers to (and uploads abandoned by a crash)."""
        removed = 0
        with self._lock(exclusive=True):
            live = {info.sha256 for bucket in self.list_buckets() for info in self.list(bucket)}
            for shard in self._blobs.iterdir():
                for blob in shard.iterdir():
                    if shard.name + blob.name not in live:
                        blob.unlink(missing_ok=True)
                        removed += 1
        cutoff = time.time() - _STALE_UPLOAD_SECONDS
        for upload in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if upload.stat().st_mtime < cutoff:
                    upload.unlink()
        return removed

    # ----------------------------------------------------------------------------- helpers

    def _keys_dir(self, bucket: str) -> Path:
        return self._buckets / bucket / "keys"

    def _record_path(self, bucket: str, key: str) -> Path:
        return self._keys_dir(bucket) / (key_filename(key) + ".json")

    def _blob_path(self, sha256: str) -> Path:
        return self._blobs / sha256[:2] / sha256[2:]

    def _receive(self, chunks: Iterable[bytes]) -> tuple[ContentDigest, Path]:
        """Stream the body into tmp/, hashing it on the way."""
        digest = ContentDigest()
        handle = self._temp_file()
        path = Path(handle.name)
        try:
            with handle:
                for chunk in chunks:
                    digest.update(chunk)
                    handle.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return digest, path

    def _publish_blob(self, upload: Path, sha256: str) -> None:
        blob = self._blob_path(sha256)
        if blob.is_file():
            return  # already stored; the lock keeps GC from taking it before our record lands
        blob.parent.mkdir(exist_ok=True)
        upload.chmod(0o444)  # blobs are shared by every key holding that content
        upload.replace(blob)

    def _write_atomically(self, path: Path, data: bytes) -> None:
        handle = self._temp_file()
        temp = Path(handle.name)
        try:
            with handle:
                handle.write(data)
            temp.chmod(0o644)
            temp.replace(path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _temp_file(self) -> IO[bytes]:
        return tempfile.NamedTemporaryFile(dir=self._tmp, prefix="put-", delete=False)

    def _read_record(self, bucket: str, path: Path) -> ObjectInfo | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return _decode_record(bucket, json.loads(raw))
        except (ValueError, KeyError, TypeError) as error:
            raise CaravanError(f"artifact record {path} is damaged: {error}") from None

    def _lock(self, *, exclusive: bool) -> AbstractContextManager[None]:
        if sys.platform == "win32":
            return self._thread_lock
        return _flock(self.root / "lock", exclusive=exclusive)


if sys.platform != "win32":
    import fcntl

    @contextmanager
    def _flock(path: Path, *, exclusive: bool) -> Iterator[None]:
        """An advisory lock shared across threads and processes (each call opens its own fd)."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _encode_record(info: ObjectInfo) -> bytes:
    record = {
        "key": info.key,
        "sha256": info.sha256,
        "size": info.size,
        "etag": info.etag,
        "content_type": info.content_type,
        "last_modified": info.last_modified,
        "metadata": dict(info.metadata),
        "cache_control": info.cache_control,
    }
    return json.dumps(record, sort_keys=True).encode("utf-8")


def _decode_record(bucket: str, record: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        bucket=bucket,
        key=str(record["key"]),
        size=int(record["size"]),
        sha256=str(record["sha256"]),
        etag=str(record["etag"]),
        last_modified=float(record["last_modified"]),
        content_type=str(record.get("content_type") or DEFAULT_CONTENT_TYPE),
        metadata={str(k): str(v) for k, v in (record.get("metadata") or {}).items()},
        cache_control=record.get("cache_control"),
    )
