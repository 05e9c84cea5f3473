"""The artifact store contract, run against every implementation (filesystem and in-memory)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from caravan.artifacts.filesystem import FilesystemArtifactStore
from caravan.artifacts.memory import MemoryArtifactStore
from caravan.artifacts.store import ArtifactStore
from caravan.artifacts.zipfiles import extract_zip, zip_files
from caravan.errors import InvalidInputError, NotFoundError, ObjectNotFoundError

BUCKET = "caravan-artifacts"


@pytest.fixture(params=["filesystem", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "filesystem":
        return FilesystemArtifactStore(tmp_path / "store")
    return MemoryArtifactStore()


def test_put_and_get_round_trip_with_s3_style_info(store: ArtifactStore) -> None:
    data = b"artifact bytes"
    info = store.put_bytes(BUCKET, "pipeline/SourceArti/abc.zip", data)

    assert store.get_bytes(BUCKET, "pipeline/SourceArti/abc.zip") == data
    assert info.bucket == BUCKET
    assert info.key == "pipeline/SourceArti/abc.zip"
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.etag == f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    assert info.content_type == "application/octet-stream"
    assert info.metadata == {}
    assert info.cache_control is None
    assert store.head(BUCKET, "pipeline/SourceArti/abc.zip") == info


def test_content_type_metadata_and_cache_control_are_kept(store: ArtifactStore) -> None:
    info = store.put_bytes(
        BUCKET,
        "site/index.html",
        b"<h1>hi</h1>",
        content_type="text/html",
        metadata={"Commit-Id": "abc123", "x": ""},
        cache_control="max-age=60",
    )
    assert info.content_type == "text/html"
    assert info.metadata == {"commit-id": "abc123", "x": ""}  # names lower-cased, as S3 does
    assert info.cache_control == "max-age=60"
    assert store.head(BUCKET, "site/index.html") == info
    assert next(store.list(BUCKET)) == info


def test_put_file_and_put_stream_store_the_same_object(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 5000
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    from_file = store.put_file(BUCKET, "file", source)
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    from_stream = store.put_stream(BUCKET, "stream", chunks)

    assert from_file.sha256 == from_stream.sha256 == hashlib.sha256(data).hexdigest()
    assert from_file.etag == from_stream.etag
    assert store.get_bytes(BUCKET, "stream") == data


def test_local_path_reads_the_object_and_feeds_extraction(
    store: ArtifactStore, tmp_path: Path
) -> None:
    zipped = zip_files({"handler.py": b"def handler(e, c):\n    return 1\n"})
    store.put_bytes(BUCKET, "fn.zip", zipped)
    path = store.local_path(BUCKET, "fn.zip")
    assert path.read_bytes() == zipped
    assert extract_zip(path, tmp_path / "code") == ["handler.py"]


def test_missing_object_raises_not_found_and_head_returns_none(store: ArtifactStore) -> None:
    store.put_bytes(BUCKET, "present", b"x")
    for bucket, key in [(BUCKET, "absent"), ("no-such-bucket", "present")]:
        assert store.head(bucket, key) is None
        with pytest.raises(ObjectNotFoundError) as caught:
            store.get_bytes(bucket, key)
        assert key in caught.value.message
        assert isinstance(caught.value, NotFoundError)
        assert caught.value.reference == "object-not-found"
        assert caught.value.aws_type == "NoSuchKey"
        with pytest.raises(ObjectNotFoundError):
            store.local_path(bucket, key)


def test_overwrite_replaces_content_and_delete_forgets_the_key(store: ArtifactStore) -> None:
    store.put_bytes(BUCKET, "k", b"first")
    second = store.put_bytes(BUCKET, "k", b"second")
    assert store.get_bytes(BUCKET, "k") == b"second"
    assert store.head(BUCKET, "k") == second

    store.delete(BUCKET, "k")
    assert store.head(BUCKET, "k") is None
    store.delete(BUCKET, "k")  # deleting a missing key is fine, as in S3
    store.delete("other-bucket", "k")


def test_list_is_sorted_by_key_and_filtered_by_prefix(store: ArtifactStore) -> None:
    for key in ["b/2", "a/1", "b/10", "B/upper", "a", "c/ü", "c/z"]:
        store.put_bytes(BUCKET, key, key.encode())
    assert [i.key for i in store.list(BUCKET)] == [
        "B/upper",
        "a",
        "a/1",
        "b/10",
        "b/2",
        "c/z",
        "c/ü",
    ]
    assert [i.key for i in store.list(BUCKET, "b/")] == ["b/10", "b/2"]
    assert [i.key for i in store.list(BUCKET, "a")] == ["a", "a/1"]
    assert list(store.list(BUCKET, "zzz")) == []
    assert list(store.list("empty-bucket")) == []


def test_identical_content_is_stored_once_and_collected_when_unreferenced(
    store: ArtifactStore,
) -> None:
    one = store.put_bytes(BUCKET, "run-1/out.zip", b"same build output")
    two = store.put_bytes("other-bucket", "run-2/out.zip", b"same build output")
    store.put_bytes(BUCKET, "other", b"different")
    assert one.sha256 == two.sha256
    assert store.collect_garbage() == 0

    store.delete(BUCKET, "run-1/out.zip")
    assert store.collect_garbage() == 0  # still referenced by run-2
    assert store.get_bytes("other-bucket", "run-2/out.zip") == b"same build output"

    store.delete("other-bucket", "run-2/out.zip")
    assert store.collect_garbage() == 1
    assert store.get_bytes(BUCKET, "other") == b"different"
    assert store.collect_garbage() == 0


def test_buckets_exist_once_created_or_written(store: ArtifactStore) -> None:
    assert store.list_buckets() == []
    assert not store.bucket_exists("made-explicitly")
    store.create_bucket("made-explicitly")
    store.create_bucket("made-explicitly")  # idempotent
    store.put_bytes("made.by.put", "k", b"x")
    assert store.bucket_exists("made-explicitly")
    assert store.list_buckets() == ["made-explicitly", "made.by.put"]


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",
        "a" * 64,
        "UpperCase",
        "under_score",
        "-leading",
        "trailing-",
        "two..dots",
        "192.168.1.1",
        "../etc",
        "a/b",
        "",
    ],
)
def test_invalid_bucket_names_are_refused_by_name(store: ArtifactStore, bucket: str) -> None:
    for call in (
        lambda: store.put_bytes(bucket, "k", b"x"),
        lambda: store.get_bytes(bucket, "k"),
        lambda: store.head(bucket, "k"),
        lambda: list(store.list(bucket)),
        lambda: store.create_bucket(bucket),
    ):
        with pytest.raises(InvalidInputError) as caught:
            call()
        assert repr(bucket) in caught.value.message
    assert store.list_buckets() == []


@pytest.mark.parametrize("key", ["", "nul\x00byte", "x" * 1025, "é" * 513, "lone\ud800surrogate"])
def test_invalid_keys_are_refused(store: ArtifactStore, key: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid object key"):
        store.put_bytes(BUCKET, key, b"x")
    with pytest.raises(InvalidInputError, match="invalid object key"):
        store.head(BUCKET, key)


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        ".",
        "a/../../b",
        "C:\\x",
        "%2e%2e/x",
        "x" * 1024,
        "é" * 512,
        "~user/.ssh/id_rsa",
        "trailing/",
        "sp ace\ttab\nnewline",
    ],
)
def test_hostile_looking_keys_are_ordinary_keys(store: ArtifactStore, key: str) -> None:
    store.put_bytes(BUCKET, key, key.encode())
    assert store.get_bytes(BUCKET, key) == key.encode()
    assert [i.key for i in store.list(BUCKET)] == [key]
    store.delete(BUCKET, key)
    assert store.head(BUCKET, key) is None


def test_keys_differing_only_in_case_are_distinct(store: ArtifactStore) -> None:
    store.put_bytes(BUCKET, "Readme", b"upper")
    store.put_bytes(BUCKET, "readme", b"lower")
    assert store.get_bytes(BUCKET, "Readme") == b"upper"
    assert store.get_bytes(BUCKET, "readme") == b"lower"


def test_oversized_metadata_is_refused(store: ArtifactStore) -> None:
    with pytest.raises(InvalidInputError, match="2048 bytes"):
        store.put_bytes(BUCKET, "k", b"x", metadata={"big": "v" * 2100})
    with pytest.raises(InvalidInputError, match="line break"):
        store.put_bytes(BUCKET, "k", b"x", metadata={"evil": "a\r\nSet-Cookie: x"})
    assert store.head(BUCKET, "k") is None


def test_concurrent_puts_of_the_same_content_from_threads(store: ArtifactStore) -> None:
    data = b"shared output " * 10_000
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def put(index: int) -> None:
        try:
            barrier.wait()
            for round_ in range(5):
                store.put_bytes(BUCKET, "same-key", data)
                store.put_bytes(BUCKET, f"key-{index}-{round_}", data)
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    infos = list(store.list(BUCKET))
    assert len(infos) == 1 + 16 * 5
    assert {i.sha256 for i in infos} == {hashlib.sha256(data).hexdigest()}
    assert all(store.get_bytes(BUCKET, i.key) == data for i in infos)


def test_garbage_collection_racing_puts_never_loses_a_stored_object(store: ArtifactStore) -> None:
    stop = threading.Event()
    collected: list[int] = []

    def collect() -> None:
        while not stop.is_set():
            collected.append(store.collect_garbage())

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        for i in range(200):
            store.put_bytes(BUCKET, "churn", f"version {i}".encode())
            assert store.get_bytes(BUCKET, "churn") == f"version {i}".encode()
    finally:
        stop.set()
        collector.join()
    assert store.collect_garbage() + sum(collected) == 199
