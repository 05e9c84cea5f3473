"""Multipart uploads (what boto3's upload_file and the AWS CLI use above 8 MB): parts spooled
to disk, assembled in order on completion, checked against what was uploaded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from s3_helpers import aws_chunked, crc32_b64, error_code, etag, find, s3_client, xml

from caravan.artifacts.memory import MemoryArtifactStore
from caravan.server.s3 import S3Settings

PARTS = [b"first part " * 50, b"second part " * 40, b"third"]


@pytest.fixture
def store() -> MemoryArtifactStore:
    memory = MemoryArtifactStore()
    memory.create_bucket("art")
    return memory


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
async def s3(store: MemoryArtifactStore, spool: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with s3_client(store, S3Settings(upload_dir=spool, max_body_bytes=2000)) as client:
        yield client


async def start(s3: httpx.AsyncClient, key: str = "big.zip", **headers: str) -> str:
    response = await s3.post(f"/art/{key}?uploads", headers=headers)
    assert response.status_code == 200
    assert find(xml(response), "Key") == key
    return find(xml(response), "UploadId") or ""


async def upload(s3: httpx.AsyncClient, upload_id: str, number: int, data: bytes) -> str:
    response = await s3.put(f"/art/big.zip?partNumber={number}&uploadId={upload_id}", content=data)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def completion(parts: list[tuple[int, str]]) -> bytes:
    items = "".join(
        f"<Part><PartNumber>{number}</PartNumber><ETag>{tag}</ETag></Part>" for number, tag in parts
    )
    return f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()


async def test_parts_are_assembled_in_order_with_the_upload_metadata(
    s3: httpx.AsyncClient, store: MemoryArtifactStore, spool: Path
) -> None:
    upload_id = await start(s3, **{"Content-Type": "application/zip", "x-amz-meta-run": "7"})
    # Parts may arrive in any order; one comes aws-chunked with a trailer, as boto3 sends it.
    third = await upload(s3, upload_id, 3, PARTS[2])
    first = await upload(s3, upload_id, 1, PARTS[0])
    chunked = await s3.put(
        f"/art/big.zip?partNumber=2&uploadId={upload_id}",
        content=aws_chunked([PARTS[1]], {"x-amz-checksum-crc32": crc32_b64(PARTS[1])}),
        headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-trailer": "x-amz-checksum-crc32",
            "x-amz-decoded-content-length": str(len(PARTS[1])),
        },
    )
    assert chunked.headers["x-amz-checksum-crc32"] == crc32_b64(PARTS[1])
    second = chunked.headers["etag"]
    assert first == etag(PARTS[0])

    done = await s3.post(
        f"/art/big.zip?uploadId={upload_id}",
        content=completion([(1, first), (2, second), (3, third)]),
    )
    assert done.status_code == 200, done.text
    content = b"".join(PARTS)
    assert find(xml(done), "ETag") == etag(content)
    info = store.head("art", "big.zip")
    assert info is not None
    assert (info.content_type, dict(info.metadata)) == ("application/zip", {"run": "7"})
    assert store.get_bytes("art", "big.zip") == content
    assert list(spool.iterdir()) == []  # the spooled parts are gone


async def test_completing_with_unknown_parts_or_out_of_order_fails(s3: httpx.AsyncClient) -> None:
    upload_id = await start(s3)
    first = await upload(s3, upload_id, 1, PARTS[0])
    second = await upload(s3, upload_id, 2, PARTS[1])
    url = f"/art/big.zip?uploadId={upload_id}"
    wrong_tag = await s3.post(url, content=completion([(1, '"0000"')]))
    missing = await s3.post(url, content=completion([(1, first), (5, second)]))
    disorder = await s3.post(url, content=completion([(2, second), (1, first)]))
    empty = await s3.post(url, content=b"<CompleteMultipartUpload/>")
    assert error_code(wrong_tag) == error_code(missing) == "InvalidPart"
    assert error_code(disorder) == "InvalidPartOrder"
    assert error_code(empty) == "MalformedXML"
    finished = await s3.post(url, content=completion([(1, first), (2, second)]))
    assert finished.status_code == 200  # the failures left the upload intact


async def test_an_aborted_upload_is_gone(s3: httpx.AsyncClient, spool: Path) -> None:
    upload_id = await start(s3)
    await upload(s3, upload_id, 1, PARTS[0])
    assert (await s3.delete(f"/art/big.zip?uploadId={upload_id}")).status_code == 204
    after = await s3.put(f"/art/big.zip?partNumber=2&uploadId={upload_id}", content=b"x")
    assert (after.status_code, error_code(after)) == (404, "NoSuchUpload")
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize(
    "path",
    [
        "/art/big.zip?partNumber=1&uploadId=0123456789abcdef0123456789abcdef",
        "/art/other.zip?partNumber=1&uploadId={id}",  # another key's upload
        "/art/big.zip?partNumber=1&uploadId=../../etc",
    ],
)
async def test_parts_for_an_unknown_upload_are_no_such_upload(
    s3: httpx.AsyncClient, path: str
) -> None:
    upload_id = await start(s3)
    response = await s3.put(path.format(id=upload_id), content=b"x")
    assert (response.status_code, error_code(response)) == (404, "NoSuchUpload")


@pytest.mark.parametrize("number", ["0", "10001", "x", "-1"])
async def test_a_part_number_out_of_range_is_invalid_argument(
    s3: httpx.AsyncClient, number: str
) -> None:
    upload_id = await start(s3)
    response = await s3.put(f"/art/big.zip?partNumber={number}&uploadId={upload_id}", content=b"x")
    assert (response.status_code, error_code(response)) == (400, "InvalidArgument")


async def test_parts_together_may_not_exceed_the_object_limit(s3: httpx.AsyncClient) -> None:
    upload_id = await start(s3)
    await upload(s3, upload_id, 1, b"x" * 1500)
    over = await s3.put(f"/art/big.zip?partNumber=2&uploadId={upload_id}", content=b"y" * 600)
    assert (over.status_code, error_code(over)) == (400, "EntityTooLarge")
    # Re-sending part 1 smaller frees the room again.
    await upload(s3, upload_id, 1, b"x" * 100)
    await upload(s3, upload_id, 2, b"y" * 600)
