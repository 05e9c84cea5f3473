"""S3 object operations over the ASGI app: what PutObject stores and verifies, what GetObject
and HeadObject answer (headers, ranges, conditions), DeleteObject and CopyObject."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from s3_helpers import crc32_b64, error_code, etag, find, md5_b64, s3_client, xml

from caravan.artifacts.filesystem import FilesystemArtifactStore
from caravan.artifacts.memory import MemoryArtifactStore
from caravan.server.s3 import S3Settings
from caravan.server.s3.checksums import b64, compute

BODY = b"0123456789abcdefghij"


@pytest.fixture
def store() -> MemoryArtifactStore:
    memory = MemoryArtifactStore()
    memory.create_bucket("art")
    return memory


@pytest.fixture
async def s3(store: MemoryArtifactStore) -> AsyncIterator[httpx.AsyncClient]:
    async with s3_client(store, S3Settings(max_body_bytes=1024)) as client:
        yield client


async def put(
    s3: httpx.AsyncClient, key: str = "k", body: bytes = BODY, **headers: str
) -> httpx.Response:
    return await s3.put(f"/art/{key}", content=body, headers=headers)


# ------------------------------------------------------------------------------ PutObject


async def test_put_then_get_returns_the_content_and_the_headers_s3_sends(
    s3: httpx.AsyncClient,
) -> None:
    put_response = await s3.put(
        "/art/dir/file.json",
        content=BODY,
        headers={
            "Content-Type": "application/json",
            "Cache-Control": "max-age=60",
            "x-amz-meta-Build": "42",
        },
    )
    assert put_response.status_code == 200
    assert put_response.headers["etag"] == etag(BODY)
    assert put_response.headers["x-amz-request-id"]

    response = await s3.get("/art/dir/file.json")
    assert response.status_code == 200
    assert response.content == BODY
    assert response.headers["etag"] == put_response.headers["etag"]
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "max-age=60"
    assert response.headers["content-length"] == str(len(BODY))
    assert response.headers["x-amz-meta-build"] == "42"
    assert email.utils.parsedate_to_datetime(response.headers["last-modified"]).tzname() == "UTC"


async def test_an_upload_without_a_type_is_served_as_octet_stream(s3: httpx.AsyncClient) -> None:
    await put(s3)
    assert (await s3.get("/art/k")).headers["content-type"] == "application/octet-stream"


async def test_a_wrong_content_md5_is_bad_digest_and_keeps_the_old_object(
    s3: httpx.AsyncClient,
) -> None:
    await put(s3, body=b"old")
    response = await put(s3, body=BODY, **{"Content-MD5": md5_b64(b"something else")})
    assert response.status_code == 400
    assert error_code(response) == "BadDigest"
    assert find(xml(response), "RequestId") == response.headers["x-amz-request-id"]
    assert (await s3.get("/art/k")).content == b"old"


async def test_a_matching_content_md5_is_accepted(s3: httpx.AsyncClient) -> None:
    response = await put(s3, **{"Content-MD5": md5_b64(BODY)})
    assert response.status_code == 200


async def test_a_content_md5_that_is_not_an_md5_is_invalid_digest(s3: httpx.AsyncClient) -> None:
    response = await put(s3, **{"Content-MD5": "not-base64"})
    assert (response.status_code, error_code(response)) == (400, "InvalidDigest")


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"])
async def test_a_correct_checksum_header_is_verified_and_echoed(
    s3: httpx.AsyncClient, algorithm: str
) -> None:
    value = b64(compute(algorithm, BODY))
    response = await put(s3, **{f"x-amz-checksum-{algorithm}": value})
    assert response.status_code == 200
    assert response.headers[f"x-amz-checksum-{algorithm}"] == value


async def test_a_wrong_crc32_is_bad_digest_and_nothing_is_stored(
    s3: httpx.AsyncClient, store: MemoryArtifactStore
) -> None:
    response = await put(s3, **{"x-amz-checksum-crc32": crc32_b64(b"other")})
    assert (response.status_code, error_code(response)) == (400, "BadDigest")
    assert store.head("art", "k") is None


async def test_a_malformed_checksum_or_two_checksums_are_invalid_requests(
    s3: httpx.AsyncClient,
) -> None:
    malformed = await put(s3, **{"x-amz-checksum-crc32": "AAAA"})
    both = await put(
        s3,
        **{
            "x-amz-checksum-crc32": crc32_b64(BODY),
            "x-amz-checksum-sha1": b64(compute("sha1", BODY)),
        },
    )
    assert error_code(malformed) == error_code(both) == "InvalidRequest"


async def test_a_payload_hash_that_does_not_match_is_refused(
    s3: httpx.AsyncClient, store: MemoryArtifactStore
) -> None:
    response = await put(s3, **{"x-amz-content-sha256": hashlib.sha256(b"x").hexdigest()})
    assert (response.status_code, error_code(response)) == (400, "XAmzContentSHA256Mismatch")
    assert store.head("art", "k") is None
    good = await put(s3, **{"x-amz-content-sha256": hashlib.sha256(BODY).hexdigest()})
    assert good.status_code == 200


async def test_a_body_over_the_limit_is_entity_too_large_and_not_stored(
    s3: httpx.AsyncClient, store: MemoryArtifactStore
) -> None:
    declared = await put(s3, body=b"x" * 1025)
    assert (declared.status_code, error_code(declared)) == (400, "EntityTooLarge")

    async def undeclared() -> AsyncIterator[bytes]:  # no Content-Length: caught while streaming
        for _ in range(5):
            yield b"x" * 300

    streamed = await s3.put("/art/k", content=undeclared())
    assert error_code(streamed) == "EntityTooLarge"
    assert store.head("art", "k") is None


async def test_a_put_into_a_missing_bucket_is_no_such_bucket(s3: httpx.AsyncClient) -> None:
    response = await s3.put("/nope/k", content=BODY)
    assert (response.status_code, error_code(response)) == (404, "NoSuchBucket")
    assert find(xml(response), "BucketName") == "nope"


async def test_a_key_over_1024_bytes_is_key_too_long(s3: httpx.AsyncClient) -> None:
    response = await put(s3, key="k" * 1025)
    assert (response.status_code, error_code(response)) == (400, "KeyTooLongError")


async def test_metadata_over_2_kb_is_metadata_too_large(s3: httpx.AsyncClient) -> None:
    response = await put(s3, **{"x-amz-meta-big": "v" * 2100})
    assert (response.status_code, error_code(response)) == (400, "MetadataTooLarge")


async def test_hostile_keys_round_trip_and_stay_inside_the_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = FilesystemArtifactStore(root)
    store.create_bucket("art")
    keys = ["../../escape", "a b+c", "ünï/cødé", "%2e%2e/x", "/leading", "trailing/"]
    async with s3_client(store) as s3:
        for key in keys:
            # Dots are escaped too: httpx would otherwise resolve "../" before sending.
            encoded = urllib.parse.quote(key, safe="/").replace(".", "%2E")
            assert (await s3.put(f"/art/{encoded}", content=key.encode())).status_code == 200
            assert (await s3.get(f"/art/{encoded}")).content == key.encode()
    assert sorted(info.key for info in store.list("art")) == sorted(keys)
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


# ------------------------------------------------------------------------ Get and Head


@pytest.mark.parametrize(
    ("header", "status", "span", "body"),
    [
        ("bytes=2-5", 206, "2-5", BODY[2:6]),
        ("bytes=15-", 206, "15-19", BODY[15:]),
        ("bytes=-3", 206, "17-19", BODY[-3:]),
        ("bytes=10-99", 206, "10-19", BODY[10:]),
        ("bytes=5-2", 200, None, BODY),  # unsatisfiable order: ignored, as S3 does
        ("items=0-1", 200, None, BODY),
        ("bytes=0-1,4-5", 200, None, BODY),  # S3 serves no multi-range
    ],
)
async def test_ranges_are_served_as_s3_serves_them(
    s3: httpx.AsyncClient, header: str, status: int, span: str | None, body: bytes
) -> None:
    await put(s3)
    response = await s3.get("/art/k", headers={"Range": header})
    assert response.status_code == status
    assert response.content == body
    assert response.headers["content-length"] == str(len(body))
    if span is not None:
        assert response.headers["content-range"] == f"bytes {span}/{len(BODY)}"


async def test_a_range_past_the_end_is_invalid_range(s3: httpx.AsyncClient) -> None:
    await put(s3)
    response = await s3.get("/art/k", headers={"Range": "bytes=20-"})
    assert (response.status_code, error_code(response)) == (416, "InvalidRange")
    assert find(xml(response), "ActualObjectSize") == "20"


async def test_conditional_reads_answer_304_and_412(s3: httpx.AsyncClient) -> None:
    etag = (await put(s3)).headers["etag"]
    modified = (await s3.head("/art/k")).headers["last-modified"]
    later = email.utils.formatdate(
        email.utils.parsedate_to_datetime(modified).timestamp() + 60, usegmt=True
    )
    earlier = email.utils.formatdate(
        email.utils.parsedate_to_datetime(modified).timestamp() - 60, usegmt=True
    )

    not_modified = await s3.get("/art/k", headers={"If-None-Match": etag})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert not_modified.headers["etag"] == etag
    assert (await s3.get("/art/k", headers={"If-None-Match": '"other"'})).status_code == 200
    assert (await s3.get("/art/k", headers={"If-Modified-Since": later})).status_code == 304
    assert (await s3.get("/art/k", headers={"If-Modified-Since": earlier})).status_code == 200

    failed = await s3.get("/art/k", headers={"If-Match": '"other"'})
    assert (failed.status_code, error_code(failed)) == (412, "PreconditionFailed")
    assert (await s3.get("/art/k", headers={"If-Match": etag})).status_code == 200
    assert (await s3.get("/art/k", headers={"If-Match": "*"})).status_code == 200
    assert (await s3.get("/art/k", headers={"If-Unmodified-Since": earlier})).status_code == 412
    # If-Match holding wins over a failing If-Unmodified-Since (RFC 7232, as S3 documents).
    both = {"If-Match": etag, "If-Unmodified-Since": earlier}
    assert (await s3.get("/art/k", headers=both)).status_code == 200


async def test_head_answers_the_get_headers_without_a_body(s3: httpx.AsyncClient) -> None:
    await put(s3, **{"Content-Type": "text/plain", "x-amz-meta-a": "1"})
    get = await s3.get("/art/k")
    head = await s3.head("/art/k")
    assert head.status_code == 200
    assert head.content == b""
    for name in ("etag", "last-modified", "content-type", "content-length", "x-amz-meta-a"):
        assert head.headers[name] == get.headers[name]


async def test_head_of_a_missing_key_is_a_bare_404(s3: httpx.AsyncClient) -> None:
    response = await s3.head("/art/missing")
    assert (response.status_code, response.content) == (404, b"")
    assert response.headers["x-amz-request-id"]


async def test_get_of_a_missing_key_is_no_such_key_naming_it(s3: httpx.AsyncClient) -> None:
    response = await s3.get("/art/missing/key")
    assert (response.status_code, error_code(response)) == (404, "NoSuchKey")
    assert find(xml(response), "Key") == "missing/key"
    assert (await s3.get("/other/key")).status_code == 404
    assert error_code(await s3.get("/other/key")) == "NoSuchBucket"


async def test_checksum_mode_adds_the_sha256_of_the_whole_object(s3: httpx.AsyncClient) -> None:
    await put(s3)
    whole = await s3.get("/art/k", headers={"x-amz-checksum-mode": "ENABLED"})
    expected = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert whole.headers["x-amz-checksum-sha256"] == expected
    ranged = await s3.get(
        "/art/k", headers={"x-amz-checksum-mode": "ENABLED", "Range": "bytes=0-1"}
    )
    assert "x-amz-checksum-sha256" not in ranged.headers


async def test_response_overrides_replace_headers_but_not_with_line_breaks(
    s3: httpx.AsyncClient,
) -> None:
    await put(s3, **{"Content-Type": "text/plain"})
    response = await s3.get(
        "/art/k?response-content-type=text/html&response-content-disposition=attachment"
    )
    assert response.headers["content-type"] == "text/html"
    assert response.headers["content-disposition"] == "attachment"
    injected = await s3.get("/art/k?response-content-type=text/html%0d%0aSet-Cookie:%20x")
    assert (injected.status_code, error_code(injected)) == (400, "InvalidArgument")


async def test_text_stored_by_other_means_is_sent_as_headers_can_carry_it(
    s3: httpx.AsyncClient, store: MemoryArtifactStore
) -> None:
    store.put_bytes(
        "art", "k", BODY, content_type="text/plain; name=\u20ac", metadata={"price": "5 \u20ac"}
    )
    response = await s3.get("/art/k")
    assert response.status_code == 200
    assert response.headers["x-amz-meta-price"] == "=?UTF-8?B?NSDigqw=?="  # RFC 2047, as S3
    assert response.headers["content-type"].startswith("=?UTF-8?B?")


async def test_a_version_other_than_null_is_refused(s3: httpx.AsyncClient) -> None:
    await put(s3)
    assert (await s3.get("/art/k?versionId=null")).status_code == 200
    response = await s3.get("/art/k?versionId=3HL4kqtJlcpXroDTDmJ")
    assert (response.status_code, error_code(response)) == (400, "InvalidArgument")


async def test_a_large_object_streams_from_the_filesystem_store(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path)
    store.create_bucket("art")
    data = bytes(range(256)) * 8192  # 2 MiB: several blocks each way
    async with s3_client(store) as s3:
        assert (await s3.put("/art/big", content=data)).status_code == 200
        assert (await s3.get("/art/big")).content == data
        tail = await s3.get("/art/big", headers={"Range": "bytes=1000000-"})
        assert tail.content == data[1000000:]


# ------------------------------------------------------------------------- Delete, Copy


async def test_delete_is_204_and_idempotent(s3: httpx.AsyncClient) -> None:
    await put(s3)
    deleted = await s3.delete("/art/k")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert "content-length" not in deleted.headers  # a 204 announces no length
    assert (await s3.delete("/art/k")).status_code == 204
    assert (await s3.get("/art/k")).status_code == 404
    assert error_code(await s3.delete("/nope/k")) == "NoSuchBucket"


async def test_copy_keeps_the_source_metadata_unless_replaced(s3: httpx.AsyncClient) -> None:
    await put(s3, "src", **{"Content-Type": "text/plain", "x-amz-meta-a": "1"})
    copied = await s3.put("/art/dst", headers={"x-amz-copy-source": "/art/src"})
    assert copied.status_code == 200
    assert find(xml(copied), "ETag") == etag(BODY)
    same = await s3.get("/art/dst")
    assert (same.content, same.headers["content-type"], same.headers["x-amz-meta-a"]) == (
        BODY,
        "text/plain",
        "1",
    )
    replaced = await s3.put(
        "/art/dst2",
        headers={
            "x-amz-copy-source": "art/src",
            "x-amz-metadata-directive": "REPLACE",
            "Content-Type": "image/png",
        },
    )
    assert replaced.status_code == 200
    other = await s3.get("/art/dst2")
    assert other.headers["content-type"] == "image/png"
    assert "x-amz-meta-a" not in other.headers


async def test_copy_errors_name_what_is_wrong(s3: httpx.AsyncClient) -> None:
    await put(s3, "src")
    onto_itself = await s3.put("/art/src", headers={"x-amz-copy-source": "/art/src"})
    missing = await s3.put("/art/dst", headers={"x-amz-copy-source": "/art/none"})
    failed_condition = await s3.put(
        "/art/dst",
        headers={"x-amz-copy-source": "/art/src", "x-amz-copy-source-if-match": '"nope"'},
    )
    assert (onto_itself.status_code, error_code(onto_itself)) == (400, "InvalidRequest")
    assert (missing.status_code, error_code(missing)) == (404, "NoSuchKey")
    assert (failed_condition.status_code, error_code(failed_condition)) == (
        412,
        "PreconditionFailed",
    )
