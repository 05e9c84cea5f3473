"""Listing a bucket: ListObjectsV2 (and V1) pages, common prefixes, tokens and URL encoding,
with paging checked against a one-shot reference listing for arbitrary keys."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from s3_helpers import error_code, find, findall, s3_client, xml

from caravan.artifacts.memory import MemoryArtifactStore
from caravan.artifacts.store import ObjectInfo
from caravan.server.s3.listing import ListQuery, list_page

KEYS = ["a.txt", "dir/1", "dir/2", "dir/sub/3", "dir2/x", "z z+plus"]


@pytest.fixture
def store() -> MemoryArtifactStore:
    memory = MemoryArtifactStore()
    for key in KEYS:
        memory.put_bytes("art", key, key.encode())
    return memory


@pytest.fixture
async def s3(store: MemoryArtifactStore) -> AsyncIterator[httpx.AsyncClient]:
    async with s3_client(store) as client:
        yield client


async def list_v2(s3: httpx.AsyncClient, **params: str) -> httpx.Response:
    return await s3.get("/art", params={"list-type": "2", **params})


async def test_a_plain_listing_has_every_key_with_its_details(s3: httpx.AsyncClient) -> None:
    response = await list_v2(s3)
    assert response.status_code == 200
    root = xml(response)
    assert findall(root, "Contents/Key") == KEYS
    assert find(root, "KeyCount") == str(len(KEYS))
    assert find(root, "IsTruncated") == "false"
    assert find(root, "MaxKeys") == "1000"
    assert findall(root, "Contents/Size")[0] == str(len("a.txt"))
    assert findall(root, "Contents/StorageClass")[0] == "STANDARD"
    assert findall(root, "Contents/ETag")[0].startswith('"')
    stamp = findall(root, "Contents/LastModified")[0]
    assert time.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")


async def test_a_delimiter_rolls_keys_up_into_common_prefixes(s3: httpx.AsyncClient) -> None:
    root = xml(await list_v2(s3, delimiter="/"))
    assert findall(root, "Contents/Key") == ["a.txt", "z z+plus"]
    assert findall(root, "CommonPrefixes/Prefix") == ["dir/", "dir2/"]
    assert find(root, "KeyCount") == "4"
    nested = xml(await list_v2(s3, delimiter="/", prefix="dir/"))
    assert findall(nested, "Contents/Key") == ["dir/1", "dir/2"]
    assert findall(nested, "CommonPrefixes/Prefix") == ["dir/sub/"]


async def test_pages_follow_continuation_tokens_to_the_end(s3: httpx.AsyncClient) -> None:
    seen: list[str] = []
    params = {"max-keys": "2", "delimiter": "/"}
    for _ in range(10):
        root = xml(await list_v2(s3, **params))
        seen += findall(root, "Contents/Key") + findall(root, "CommonPrefixes/Prefix")
        assert int(find(root, "KeyCount") or "0") <= 2
        if find(root, "IsTruncated") == "false":
            assert find(root, "NextContinuationToken") is None
            break
        params["continuation-token"] = find(root, "NextContinuationToken") or ""
    assert sorted(seen) == ["a.txt", "dir/", "dir2/", "z z+plus"]


async def test_start_after_skips_keys_up_to_it(s3: httpx.AsyncClient) -> None:
    root = xml(await list_v2(s3, **{"start-after": "dir/2"}))
    assert findall(root, "Contents/Key") == ["dir/sub/3", "dir2/x", "z z+plus"]
    assert find(root, "StartAfter") == "dir/2"


async def test_url_encoding_encodes_keys_so_botocore_decodes_them_back(
    s3: httpx.AsyncClient,
) -> None:
    root = xml(await list_v2(s3, prefix="z", **{"encoding-type": "url"}))
    (encoded,) = findall(root, "Contents/Key")
    assert encoded == "z%20z%2Bplus"
    assert urllib.parse.unquote_plus(encoded) == "z z+plus"  # what botocore does with it
    assert find(root, "EncodingType") == "url"


@pytest.mark.parametrize(
    "params",
    [
        {"max-keys": "-1"},
        {"max-keys": "many"},
        {"encoding-type": "base64"},
        {"continuation-token": "!!not a token!!"},
    ],
)
async def test_bad_listing_parameters_are_invalid_argument(
    s3: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await list_v2(s3, **params)
    assert (response.status_code, error_code(response)) == (400, "InvalidArgument")


async def test_max_keys_is_capped_at_1000(s3: httpx.AsyncClient) -> None:
    assert find(xml(await list_v2(s3, **{"max-keys": "5000"})), "MaxKeys") == "1000"


async def test_listing_a_missing_bucket_is_no_such_bucket(s3: httpx.AsyncClient) -> None:
    response = await s3.get("/nope?list-type=2")
    assert (response.status_code, error_code(response)) == (404, "NoSuchBucket")


async def test_v1_listing_pages_with_markers(s3: httpx.AsyncClient) -> None:
    first = xml(await s3.get("/art", params={"max-keys": "2", "delimiter": "/"}))
    assert findall(first, "Contents/Key") + findall(first, "CommonPrefixes/Prefix") == [
        "a.txt",
        "dir/",
    ]
    assert find(first, "IsTruncated") == "true"
    marker = find(first, "NextMarker")
    assert marker == "dir/"
    rest = xml(await s3.get("/art", params={"marker": marker, "delimiter": "/"}))
    assert findall(rest, "CommonPrefixes/Prefix") == ["dir2/"]
    assert findall(rest, "Contents/Key") == ["z z+plus"]


# ------------------------------------------------------------------- paging, as a property


def infos(keys: list[str]) -> list[ObjectInfo]:
    return [ObjectInfo("b", key, 0, "0" * 64, '"x"', 0.0) for key in sorted(set(keys))]


def all_entries(objects: list[ObjectInfo], prefix: str, delimiter: str) -> list[str]:
    """The reference: every entry of the listing, computed without paging."""
    entries: list[str] = []
    for info in objects:
        if not info.key.startswith(prefix):
            continue
        rest = info.key[len(prefix) :]
        cut = rest.find(delimiter) if delimiter else -1
        entry = info.key if cut < 0 else prefix + rest[: cut + len(delimiter)]
        if entry not in entries:
            entries.append(entry)
    return entries


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.text(alphabet="ab/-", min_size=1, max_size=6), max_size=25),
    prefix=st.text(alphabet="ab/", max_size=2),
    delimiter=st.sampled_from(["", "/", "-", "b/"]),
    max_keys=st.integers(min_value=1, max_value=5),
)
def test_following_pages_lists_each_entry_exactly_once(
    keys: list[str], prefix: str, delimiter: str, max_keys: int
) -> None:
    objects = infos(keys)
    selected = [info for info in objects if info.key.startswith(prefix)]
    query = ListQuery(prefix=prefix, delimiter=delimiter, max_keys=max_keys)
    listed: list[str] = []
    for _ in range(len(objects) + 2):
        page = list_page(selected, query)
        assert page.key_count <= max_keys
        listed += [info.key for info in page.contents] + page.common_prefixes
        if not page.truncated:
            break
        query = ListQuery(prefix, delimiter, max_keys, after_entry=page.last_entry)
    else:
        pytest.fail("paging did not end")
    # Contents and prefixes interleave by name in the reference; a page lists keys first.
    assert sorted(listed) == sorted(all_entries(objects, prefix, delimiter))
    assert len(listed) == len(set(listed))
