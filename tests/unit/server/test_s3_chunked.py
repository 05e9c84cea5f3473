"""aws-chunked request bodies: boto3's unsigned chunks with a checksum trailer, and signed
chunks checked against the worked examples of AWS's SigV4 streaming documentation."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from s3_helpers import aws_chunked, crc32_b64, error_code, etag, md5_b64, s3_client

from caravan.artifacts.memory import MemoryArtifactStore
from caravan.server.s3 import S3Settings
from caravan.server.s3.auth import ChunkSigner, signing_key
from caravan.server.s3.chunked import AwsChunkedDecoder
from caravan.server.s3.responses import S3Error

UNSIGNED_TRAILER = {
    "Content-Encoding": "aws-chunked",
    "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "x-amz-trailer": "x-amz-checksum-crc32",
}
DATA = b"artifact bytes " * 100

# The worked examples of sigv4-streaming.html and sigv4-streaming-trailers.html.
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_TIME = 1369353600.0  # 20130524T000000Z
EXAMPLE_SCOPE = "20130524/us-east-1/s3/aws4_request"
EXAMPLE_CHUNKS = [b"a" * 65536, b"a" * 1024]


@pytest.fixture
def store() -> MemoryArtifactStore:
    memory = MemoryArtifactStore()
    memory.create_bucket("art")
    memory.create_bucket("examplebucket")
    return memory


@pytest.fixture
async def s3(store: MemoryArtifactStore) -> AsyncIterator[httpx.AsyncClient]:
    async with s3_client(store) as client:
        yield client


def unsigned_headers(data: bytes, **extra: str) -> dict[str, str]:
    return {**UNSIGNED_TRAILER, "x-amz-decoded-content-length": str(len(data)), **extra}


async def test_boto3_style_chunks_with_a_crc32_trailer_store_the_decoded_content(
    s3: httpx.AsyncClient, store: MemoryArtifactStore
) -> None:
    body = aws_chunked([DATA[:700], DATA[700:]], {"x-amz-checksum-crc32": crc32_b64(DATA)})
    response = await s3.put("/art/k", content=body, headers=unsigned_headers(DATA))
    assert response.status_code == 200
    assert response.headers["x-amz-checksum-crc32"] == crc32_b64(DATA)
    assert response.headers["etag"] == etag(DATA)
    assert store.get_bytes("art", "k") == DATA


async def test_a_wrong_trailer_checksum_is_bad_digest_and_nothing_is_stored(
    s3: httpx.AsyncClient, store: MemoryArtifactStore
) -> None:
    body = aws_chunked([DATA], {"x-amz-checksum-crc32": crc32_b64(b"tampered")})
    response = await s3.put("/art/k", content=body, headers=unsigned_headers(DATA))
    assert (response.status_code, error_code(response)) == (400, "BadDigest")
    assert store.head("art", "k") is None


async def test_a_declared_trailer_that_never_comes_is_malformed(s3: httpx.AsyncClient) -> None:
    response = await s3.put("/art/k", content=aws_chunked([DATA]), headers=unsigned_headers(DATA))
    assert (response.status_code, error_code(response)) == (400, "MalformedTrailerError")


async def test_content_md5_covers_the_decoded_content(s3: httpx.AsyncClient) -> None:
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(DATA))}
    good = await s3.put(
        "/art/k",
        content=aws_chunked([DATA]),
        headers={**headers, "Content-MD5": md5_b64(DATA)},
    )
    bad = await s3.put(
        "/art/k",
        content=aws_chunked([DATA]),
        headers={**headers, "Content-MD5": md5_b64(b"x")},
    )
    assert good.status_code == 200
    assert error_code(bad) == "BadDigest"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"%x\r\n%s\r\n" % (len(DATA), DATA), "IncompleteBody"),  # no final chunk
        (b"zz\r\nabc\r\n0\r\n\r\n", "InvalidRequest"),  # a size that is not hex
        (b"2\r\nabc\r\n0\r\n\r\n", "InvalidRequest"),  # more data than declared
        (b"%x\r\n%s\r\n0\r\n\r\n" % (len(DATA) - 1, DATA[:-1]), "IncompleteBody"),  # length
        (b"1;" + b"x" * 5000 + b"\r\n", "InvalidRequest"),  # an endless header line
        (b"+3\r\nabc\r\n0\r\n\r\n", "InvalidRequest"),  # int(x, 16) would take these
        (b"0_3\r\nabc\r\n0\r\n\r\n", "InvalidRequest"),
    ],
)
async def test_broken_framing_is_refused_and_nothing_is_stored(
    s3: httpx.AsyncClient, store: MemoryArtifactStore, body: bytes, code: str
) -> None:
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(DATA))}
    response = await s3.put("/art/k", content=body, headers=headers)
    assert (response.status_code, error_code(response)) == (400, code)
    assert store.head("art", "k") is None


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=1, max_value=3000), max_size=6),
    feed=st.integers(min_value=1, max_value=500),
)
def test_any_chunking_fed_in_any_pieces_decodes_to_the_content(
    data: bytes, cuts: list[int], feed: int
) -> None:
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    body = aws_chunked(chunks, {"x-amz-checksum-crc32": crc32_b64(data)})
    decoder = AwsChunkedDecoder()
    out = b"".join(
        piece
        for start in range(0, len(body), feed)
        for piece in decoder.feed(body[start : start + feed])
    )
    decoder.finish()
    assert out == data
    assert decoder.trailers == {"x-amz-checksum-crc32": crc32_b64(data)}


# ----------------------------------------------------------------- signed chunks (AWS docs)


def example_signer(seed: str) -> ChunkSigner:
    key = signing_key(EXAMPLE_SECRET, "20130524", "us-east-1", "s3")
    return ChunkSigner(key, "20130524T000000Z", EXAMPLE_SCOPE, seed)


def example_settings(secret: str = EXAMPLE_SECRET) -> S3Settings:
    return S3Settings(secret_for=lambda key: secret, clock=lambda: EXAMPLE_TIME + 30)


def signed_body(chunk_signatures: list[str], chunks: list[bytes], trailers: bytes = b"") -> bytes:
    """Signed chunks, the final empty one, then the trailer lines and the closing CRLF."""
    body = b""
    for signature, chunk in zip(chunk_signatures, [*chunks, b""], strict=True):
        body += b"%x;chunk-signature=%s\r\n" % (len(chunk), signature.encode())
        body += chunk + b"\r\n" if chunk else b""
    return body + trailers + b"\r\n"


# sigv4-streaming.html: PUT /examplebucket/chunkObject.txt, 66560 bytes of "a" in 64 KiB chunks.
STREAMING_EXAMPLE_HEADERS = {
    "Host": "s3.amazonaws.com",
    "x-amz-date": "20130524T000000Z",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    "Authorization": f"AWS4-HMAC-SHA256 Credential={EXAMPLE_ACCESS_KEY}/{EXAMPLE_SCOPE},"
    "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
    "x-amz-decoded-content-length;x-amz-storage-class,"
    "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "Content-Encoding": "aws-chunked",
    "x-amz-decoded-content-length": "66560",
    "Content-Length": "66824",
}
STREAMING_EXAMPLE_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]


async def test_the_aws_signed_chunk_example_verifies_end_to_end(store: MemoryArtifactStore) -> None:
    body = signed_body(STREAMING_EXAMPLE_SIGNATURES, EXAMPLE_CHUNKS)
    assert len(body) == 66824  # the example's Content-Length: the body is built as AWS built it
    async with s3_client(store, example_settings()) as s3:
        url = "http://s3.amazonaws.com/examplebucket/chunkObject.txt"
        response = await s3.put(url, content=body, headers=STREAMING_EXAMPLE_HEADERS)
    assert response.status_code == 200, response.text
    assert store.get_bytes("examplebucket", "chunkObject.txt") == b"a" * 66560


@pytest.mark.parametrize("tamper", ["data", "chunk-signature", "secret"])
async def test_a_tampered_signed_chunk_is_refused_and_nothing_is_stored(
    store: MemoryArtifactStore, tamper: str
) -> None:
    chunks = [b"a" * 65536, b"a" * 1023 + b"b"] if tamper == "data" else EXAMPLE_CHUNKS
    signatures = list(STREAMING_EXAMPLE_SIGNATURES)
    if tamper == "chunk-signature":
        signatures[1] = "0" * 64
    secret = "wrong" if tamper == "secret" else EXAMPLE_SECRET
    async with s3_client(store, example_settings(secret)) as s3:
        response = await s3.put(
            "http://s3.amazonaws.com/examplebucket/chunkObject.txt",
            content=signed_body(signatures, chunks),
            headers=STREAMING_EXAMPLE_HEADERS,
        )
    assert (response.status_code, error_code(response)) == (403, "SignatureDoesNotMatch")
    assert store.head("examplebucket", "chunkObject.txt") is None


def test_the_aws_trailer_example_chunk_chain_verifies() -> None:
    """sigv4-streaming-trailers.html: its seed and chunk signatures, and the hash of its
    canonical trailer. (The example's trailer signature, 63bddb24..., is not reproducible by
    its own algorithm — S3 servers such as s3s and minio sign trailers as we do.)"""
    signer = example_signer("106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e")
    for claimed, chunk in zip(
        [
            "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
            "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
            "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
        ],
        [*EXAMPLE_CHUNKS, b""],
        strict=True,
    ):
        signer.verify_chunk(claimed, hashlib.sha256(chunk).hexdigest())
    canonical = b"x-amz-checksum-crc32c:sOO8/Q==\n"
    assert (
        hashlib.sha256(canonical).hexdigest()
        == "1e376db7e1a34a8ef1c4bcee131a2d60a1cb62503747488624e10995f448d774"
    )
    with pytest.raises(S3Error) as refused:
        signer.verify_trailer("0" * 64, canonical)
    assert refused.value.code == "SignatureDoesNotMatch"


async def test_the_aws_trailer_example_request_verifies_with_its_trailer(
    store: MemoryArtifactStore,
) -> None:
    signatures = [
        "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
    ]
    trailer = b"x-amz-checksum-crc32c:sOO8/Q==\n"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256-TRAILER",
            "20130524T000000Z",
            EXAMPLE_SCOPE,
            signatures[-1],
            hashlib.sha256(trailer).hexdigest(),
        ]
    )
    key = signing_key(EXAMPLE_SECRET, "20130524", "us-east-1", "s3")
    trailer_signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    trailer_lines = b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    trailer_lines += b"x-amz-trailer-signature:" + trailer_signature.encode() + b"\r\n"
    body = signed_body(signatures, EXAMPLE_CHUNKS, trailer_lines)
    headers = {
        "Host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={EXAMPLE_ACCESS_KEY}/{EXAMPLE_SCOPE},"
        "SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,"
        "Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "x-amz-trailer": "x-amz-checksum-crc32c",
    }
    async with s3_client(store, example_settings()) as s3:
        url = "http://s3.amazonaws.com/examplebucket/chunkObject.txt"
        response = await s3.put(url, content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["x-amz-checksum-crc32c"] == "sOO8/Q=="
        forged = body.replace(trailer_signature.encode(), b"f" * 64)
        refused = await s3.put(url, content=forged, headers=headers)
    assert (refused.status_code, error_code(refused)) == (403, "SignatureDoesNotMatch")


async def test_without_a_secret_signed_chunks_are_decoded_unverified(
    s3: httpx.AsyncClient, store: MemoryArtifactStore
) -> None:
    body = signed_body(["0" * 64, "1" * 64, "2" * 64], EXAMPLE_CHUNKS)
    response = await s3.put(
        "http://s3.amazonaws.com/examplebucket/chunkObject.txt",
        content=body,
        headers=STREAMING_EXAMPLE_HEADERS,
    )
    assert response.status_code == 200
    assert store.get_bytes("examplebucket", "chunkObject.txt") == b"a" * 66560
