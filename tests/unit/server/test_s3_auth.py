"""Who may do what: the access key reaches the authorize hook with bucket, key and IAM action;
signatures are verified (requests signed by botocore) only when a secret is known."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from s3_helpers import (
    ACCESS_KEY,
    BASE_URL,
    SECRET,
    error_code,
    find,
    findall,
    s3_client,
    sign,
    sign_v2,
    xml,
)

from caravan.artifacts.memory import MemoryArtifactStore
from caravan.server.s3 import S3Settings

Call = tuple[str | None, str | None, str | None, str]


@pytest.fixture
def store() -> MemoryArtifactStore:
    memory = MemoryArtifactStore()
    memory.put_bytes("art", "k", b"content")
    return memory


def recording(calls: list[Call], deny: set[str] | None = None) -> S3Settings:
    def authorize(key_id: str | None, bucket: str | None, key: str | None, action: str) -> bool:
        calls.append((key_id, bucket, key, action))
        return not deny or key not in deny

    return S3Settings(authorize=authorize)


def verifying(clock: Callable[[], float] = time.time) -> S3Settings:
    """Signatures by ACCESS_KEY are verified with SECRET; other keys pass unverified."""
    return S3Settings(secret_for={ACCESS_KEY: SECRET}.get, clock=clock)


async def test_the_hook_sees_the_access_key_bucket_key_and_action(
    store: MemoryArtifactStore,
) -> None:
    calls: list[Call] = []
    async with s3_client(store, recording(calls)) as s3:
        url, headers = sign("GET", "/art/k")
        assert (await s3.get(url, headers=headers)).status_code == 200
        url, headers = sign("PUT", "/art/new", body=b"x")
        assert (await s3.put(url, headers=headers, content=b"x")).status_code == 200
        url, headers = sign("GET", "/art?list-type=2")
        assert (await s3.get(url, headers=headers)).status_code == 200
        url, headers = sign("GET", "/")
        assert (await s3.get(url, headers=headers)).status_code == 200
        await s3.get("/art/k")  # anonymous
    assert calls == [
        (ACCESS_KEY, "art", "k", "s3:GetObject"),
        (ACCESS_KEY, "art", "new", "s3:PutObject"),
        (ACCESS_KEY, "art", None, "s3:ListBucket"),
        (ACCESS_KEY, None, None, "s3:ListAllMyBuckets"),
        (None, "art", "k", "s3:GetObject"),
    ]


async def test_presigned_and_sigv2_requests_name_their_access_key(
    store: MemoryArtifactStore,
) -> None:
    calls: list[Call] = []
    async with s3_client(store, recording(calls)) as s3:
        url, _ = sign("GET", "/art/k", presign_seconds=60, access_key="PRESIGNED")
        assert (await s3.get(url)).status_code == 200
        v2 = {
            "Authorization": "AWS LEGACYKEY:c2lnbmF0dXJl",
            "Date": "Tue, 27 Mar 2007 19:36:42 +0000",
        }
        assert (await s3.get("/art/k", headers=v2)).status_code == 200
    assert [call[0] for call in calls] == ["PRESIGNED", "LEGACYKEY"]


async def test_a_denied_request_is_access_denied_and_changes_nothing(
    store: MemoryArtifactStore,
) -> None:
    calls: list[Call] = []
    async with s3_client(store, recording(calls, deny={"k"})) as s3:
        denied = await s3.put("/art/k", content=b"overwrite")
        head = await s3.head("/art/k")
    assert (denied.status_code, error_code(denied)) == (403, "AccessDenied")
    assert (head.status_code, head.content) == (403, b"")
    assert store.get_bytes("art", "k") == b"content"


async def test_an_async_hook_is_awaited(store: MemoryArtifactStore) -> None:
    async def only_reads(
        key_id: str | None, bucket: str | None, key: str | None, action: str
    ) -> bool:
        return action == "s3:GetObject"

    async with s3_client(store, S3Settings(authorize=only_reads)) as s3:
        assert (await s3.get("/art/k")).status_code == 200
        assert (await s3.delete("/art/k")).status_code == 403


async def test_copy_needs_read_access_to_the_source(store: MemoryArtifactStore) -> None:
    calls: list[Call] = []
    async with s3_client(store, recording(calls, deny={"k"})) as s3:
        response = await s3.put("/art/copy", headers={"x-amz-copy-source": "/art/k"})
    assert (response.status_code, error_code(response)) == (403, "AccessDenied")
    assert (None, "art", "k", "s3:GetObject") in calls
    assert store.head("art", "copy") is None


async def test_delete_objects_asks_per_key_and_reports_refusals(store: MemoryArtifactStore) -> None:
    store.put_bytes("art", "free", b"x")
    calls: list[Call] = []
    body = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Object><Key>k</Key></Object><Object><Key>free</Key></Object></Delete>"
    )
    async with s3_client(store, recording(calls, deny={"k"})) as s3:
        response = await s3.post("/art?delete", content=body)
    root = xml(response)
    assert findall(root, "Deleted/Key") == ["free"]
    assert findall(root, "Error/Key") == ["k"]
    assert findall(root, "Error/Code") == ["AccessDenied"]
    assert store.head("art", "k") is not None
    assert store.head("art", "free") is None


# ------------------------------------------------------------------------- verification


async def test_a_correctly_signed_request_passes_verification(store: MemoryArtifactStore) -> None:
    async with s3_client(store, verifying()) as s3:
        url, headers = sign(
            "PUT", "/art/dir/a%20b.txt", body=b"data", headers={"x-amz-meta-a": "1"}
        )
        assert (await s3.put(url, headers=headers, content=b"data")).status_code == 200
        url, headers = sign("GET", "/art?list-type=2&prefix=dir%2F&max-keys=5")
        assert (await s3.get(url, headers=headers)).status_code == 200
    assert store.get_bytes("art", "dir/a b.txt") == b"data"


@pytest.mark.parametrize("tamper", ["secret", "header", "body", "path"])
async def test_a_request_that_does_not_match_its_signature_is_refused(
    store: MemoryArtifactStore, tamper: str
) -> None:
    secret = "wrong" if tamper == "secret" else SECRET
    url, headers = sign("PUT", "/art/k", body=b"data", headers={"x-amz-meta-a": "1"}, secret=secret)
    body = b"evil" if tamper == "body" else b"data"
    if tamper == "header":
        headers["x-amz-meta-a"] = "2"
    if tamper == "path":
        url = url.replace("/art/k", "/art/other")
    async with s3_client(store, verifying()) as s3:
        response = await s3.put(url, headers=headers, content=body)
    expected = "XAmzContentSHA256Mismatch" if tamper == "body" else "SignatureDoesNotMatch"
    assert error_code(response) == expected
    assert store.get_bytes("art", "k") == b"content"


async def test_the_mismatch_error_shows_the_string_to_sign_but_no_secret(
    store: MemoryArtifactStore,
) -> None:
    url, headers = sign("GET", "/art/k", secret="wrong")
    async with s3_client(store, verifying()) as s3:
        response = await s3.get(url, headers=headers)
    assert response.status_code == 403
    root = xml(response)
    assert (find(root, "StringToSign") or "").startswith("AWS4-HMAC-SHA256\n")
    assert find(root, "AWSAccessKeyId") == ACCESS_KEY
    assert SECRET not in response.text


async def test_an_unknown_key_is_accepted_unverified(store: MemoryArtifactStore) -> None:
    url, headers = sign("GET", "/art/k", access_key="OTHER", secret="anything")
    async with s3_client(store, verifying()) as s3:
        assert (await s3.get(url, headers=headers)).status_code == 200


async def test_presigned_urls_verify_until_they_expire(store: MemoryArtifactStore) -> None:
    url, _ = sign("GET", "/art/k", presign_seconds=60)
    now = time.time()
    async with s3_client(store, verifying(clock=lambda: now)) as s3:
        assert (await s3.get(url)).content == b"content"
        tampered = await s3.get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"))
        assert error_code(tampered) == "SignatureDoesNotMatch"
    async with s3_client(store, verifying(clock=lambda: now + 120)) as s3:
        expired = await s3.get(url)
    assert (expired.status_code, error_code(expired)) == (403, "AccessDenied")


async def test_a_request_signed_long_ago_is_too_skewed(store: MemoryArtifactStore) -> None:
    url, headers = sign("GET", "/art/k")
    later = time.time() + 3600
    async with s3_client(store, verifying(clock=lambda: later)) as s3:
        response = await s3.get(url, headers=headers)
    assert (response.status_code, error_code(response)) == (403, "RequestTimeTooSkewed")


@pytest.mark.parametrize("presign_seconds", [None, 60])
async def test_sigv2_headers_and_presigned_urls_are_verified(
    store: MemoryArtifactStore, presign_seconds: int | None
) -> None:
    store.put_bytes("art", "a b/c+d", b"spaced")
    good = [
        sign_v2("GET", f"{BASE_URL}/art/k", presign_seconds=presign_seconds),
        sign_v2(
            "GET",
            f"{BASE_URL}/art/a%20b/c%2Bd?response-content-type=text/plain",
            presign_seconds=presign_seconds,
        ),
        sign_v2(  # virtual-hosted: the bucket is signed as part of the path
            "GET",
            "http://art.s3.localhost:9000/k",
            auth_path="/art/k",
            presign_seconds=presign_seconds,
        ),
    ]
    forged = sign_v2("GET", f"{BASE_URL}/art/k", secret="wrong", presign_seconds=presign_seconds)
    async with s3_client(store, verifying()) as s3:
        for url, headers in good:
            response = await s3.get(url, headers=headers)
            assert response.status_code == 200, response.text
        refused = await s3.get(forged[0], headers=forged[1])
    assert (refused.status_code, error_code(refused)) == (403, "SignatureDoesNotMatch")


async def test_an_expired_sigv2_url_is_refused(store: MemoryArtifactStore) -> None:
    url, _ = sign_v2("GET", f"{BASE_URL}/art/k", presign_seconds=60)
    later = time.time() + 120
    async with s3_client(store, verifying(clock=lambda: later)) as s3:
        response = await s3.get(url)
    assert (response.status_code, error_code(response)) == (403, "AccessDenied")


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKID, SignedHeaders=host, Signature=00",
        "Bearer token",
    ],
)
async def test_a_malformed_authorization_header_is_a_400(
    store: MemoryArtifactStore, authorization: str
) -> None:
    async with s3_client(store) as s3:
        response = await s3.get("/art/k", headers={"Authorization": authorization})
    assert (response.status_code, error_code(response)) == (400, "AuthorizationHeaderMalformed")
