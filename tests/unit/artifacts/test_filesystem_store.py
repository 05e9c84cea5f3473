"""The filesystem store's on-disk promises: layout, dedup, containment, atomicity, persistence."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from caravan.artifacts.filesystem import FilesystemArtifactStore
from caravan.errors import CaravanError

BUCKET = "caravan-artifacts"


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_layout_is_content_addressed_blobs_plus_key_records(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path / "store")
    info = store.put_bytes(BUCKET, "Pipe/Out/abc.zip", b"payload", metadata={"a": "b"})

    blob = tmp_path / "store" / "blobs" / info.sha256[:2] / info.sha256[2:]
    assert blob.read_bytes() == b"payload"
    assert blob.stat().st_mode & 0o222 == 0  # read-only: shared by every key with this content
    record = tmp_path / "store" / "buckets" / BUCKET / "keys" / "%50ipe%2F%4Fut%2Fabc.zip.json"
    assert json.loads(record.read_text()) == {
        "key": "Pipe/Out/abc.zip",
        "sha256": info.sha256,
        "size": 7,
        "etag": info.etag,
        "content_type": "application/octet-stream",
        "last_modified": info.last_modified,
        "metadata": {"a": "b"},
        "cache_control": None,
    }
    assert store.local_path(BUCKET, "Pipe/Out/abc.zip") == blob  # no copy


def test_unchanged_output_is_stored_once_however_many_keys(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path / "store")
    for run in range(5):
        store.put_bytes(BUCKET, f"run-{run}/output.zip", b"same bytes every run")
    assert len(files_under(tmp_path / "store" / "blobs")) == 1
    assert len(files_under(tmp_path / "store" / "buckets")) == 5


@pytest.mark.parametrize(
    "key", ["../../../../evil", "/tmp/evil", "..", "../..", "a/../../../evil", "..%2F..%2Fevil"]
)
def test_no_key_can_escape_the_store_root(tmp_path: Path, key: str) -> None:
    root = tmp_path / "deep" / "store"
    store = FilesystemArtifactStore(root)
    outside_before = files_under(tmp_path) - files_under(root)

    store.put_bytes(BUCKET, key, b"evil")
    store.head(BUCKET, key)
    list(store.list(BUCKET))
    store.delete(BUCKET, key)
    store.put_bytes(BUCKET, key, b"evil")

    assert files_under(tmp_path) - files_under(root) == outside_before
    records = list((root / "buckets" / BUCKET / "keys").iterdir())
    assert len(records) == 1
    assert records[0].parent == root / "buckets" / BUCKET / "keys"
    assert records[0].name not in (".json", "..json")


def test_long_keys_get_hashed_file_names_and_still_list(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path / "store")
    long_key = "prefix/" + "ü" * 500  # 1007 bytes of UTF-8, 3000 characters once escaped
    store.put_bytes(BUCKET, long_key, b"long")
    store.put_bytes(BUCKET, "prefix/short", b"short")

    names = [p.name for p in (tmp_path / "store" / "buckets" / BUCKET / "keys").iterdir()]
    assert max(len(n) for n in names) < 255
    assert [i.key for i in store.list(BUCKET, "prefix/")] == ["prefix/short", long_key]
    assert [i.key for i in store.list(BUCKET, "prefix/ü")] == [long_key]
    assert store.get_bytes(BUCKET, long_key) == b"long"


def test_a_reopened_store_sees_everything(tmp_path: Path) -> None:
    first = FilesystemArtifactStore(tmp_path / "store")
    info = first.put_bytes(BUCKET, "k", b"persisted", content_type="application/zip")
    first.create_bucket("empty-bucket")

    again = FilesystemArtifactStore(tmp_path / "store")
    assert again.head(BUCKET, "k") == info
    assert again.list_buckets() == ["caravan-artifacts", "empty-bucket"]


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path / "store")
    for i in range(10):
        store.put_bytes(BUCKET, "k", str(i % 3).encode())
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_a_failed_stream_leaves_the_previous_object_intact(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path / "store")
    store.put_bytes(BUCKET, "k", b"good")

    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put_stream(BUCKET, "k", chunks())
    assert store.get_bytes(BUCKET, "k") == b"good"
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_garbage_collection_also_clears_abandoned_uploads(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path / "store")
    stale = tmp_path / "store" / "tmp" / "put-crashed"
    stale.write_bytes(b"half an upload")
    old = time.time() - 3 * 24 * 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / "store" / "tmp" / "put-in-progress"
    fresh.write_bytes(b"being written")

    store.collect_garbage()
    assert not stale.exists()
    assert fresh.exists()


def test_a_damaged_record_is_reported_with_its_path(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path / "store")
    store.put_bytes(BUCKET, "k", b"x")
    (tmp_path / "store" / "buckets" / BUCKET / "keys" / "k.json").write_text("{not json")
    with pytest.raises(CaravanError, match=r"k\.json"):
        store.head(BUCKET, "k")


_WRITER = """
import sys
from pathlib import Path
from caravan.artifacts.filesystem import FilesystemArtifactStore
store = FilesystemArtifactStore(Path(sys.argv[1]))
for i in range(40):
    store.put_bytes("caravan-artifacts", f"{sys.argv[2]}-{i}", b"cross-process content")
    if i % 10 == 0:
        store.collect_garbage()
"""


def test_concurrent_processes_share_one_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    FilesystemArtifactStore(root)
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(root), f"proc{n}"]) for n in range(4)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0, 0]

    store = FilesystemArtifactStore(root)
    infos = list(store.list(BUCKET))
    assert len(infos) == 160
    expected = hashlib.sha256(b"cross-process content").hexdigest()
    assert all(store.get_bytes(BUCKET, i.key) == b"cross-process content" for i in infos)
    assert {i.sha256 for i in infos} == {expected}
    assert len(files_under(root / "blobs")) == 1
