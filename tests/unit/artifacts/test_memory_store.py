"""What only the in-memory store does: back local_path with lazily written temporary files."""

from __future__ import annotations

import gc

from caravan.artifacts.memory import MemoryArtifactStore

BUCKET = "caravan-artifacts"


def test_local_path_is_written_lazily_and_removed_with_the_store() -> None:
    store = MemoryArtifactStore()
    store.put_bytes(BUCKET, "a", b"content")
    store.put_bytes(BUCKET, "b", b"content")
    path = store.local_path(BUCKET, "a")
    assert path.read_bytes() == b"content"
    assert store.local_path(BUCKET, "b") == path  # one file per distinct content

    del store
    gc.collect()
    assert not path.exists()
