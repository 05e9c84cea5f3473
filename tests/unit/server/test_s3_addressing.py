"""Which bucket, key and operation a request names (path-style, virtual-hosted, mounted under a
prefix), bucket operations, and errors in S3's shape on every path — never a traceback."""

from __future__ import annotations

import httpx
import pytest
from s3_helpers import BASE_URL, error_code, find, findall, s3_client, xml
from starlette.applications import Starlette
from starlette.routing import Mount

from caravan.artifacts.memory import MemoryArtifactStore
from caravan.server.s3 import S3Settings, s3_app


@pytest.fixture
def store() -> MemoryArtifactStore:
    memory = MemoryArtifactStore()
    memory.put_bytes("art", "k", b"content")
    return memory


async def test_a_virtual_hosted_request_names_the_bucket_in_the_host(
    store: MemoryArtifactStore,
) -> None:
    async with s3_client(store) as s3:
        put = await s3.put("/dir/key", content=b"v", headers={"Host": "art.s3.localhost:9000"})
        listing = await s3.get("/?list-type=2", headers={"Host": "art.s3.us-east-1.amazonaws.com"})
        plain = await s3.get("/art/k", headers={"Host": "s3.localhost:9000"})
    assert put.status_code == 200
    assert store.get_bytes("art", "dir/key") == b"v"
    assert findall(xml(listing), "Contents/Key") == ["dir/key", "k"]
    assert plain.content == b"content"  # "s3.localhost" alone names no bucket: path-style


async def test_host_patterns_are_configurable(store: MemoryArtifactStore) -> None:
    settings = S3Settings(host_patterns=("objects.example.test", "*.storage.test"))
    async with s3_client(store, settings) as s3:
        first = await s3.get("/k", headers={"Host": "art.objects.example.test"})
        second = await s3.get("/k", headers={"Host": "art.eu.storage.test:8080"})
        default_style = await s3.get("/art/k", headers={"Host": "art.s3.localhost"})
    assert first.content == second.content == b"content"
    assert default_style.content == b"content"  # the default pattern is off: path-style


async def test_mounted_under_a_prefix_the_prefix_is_not_part_of_the_key(
    store: MemoryArtifactStore,
) -> None:
    outer = Starlette(routes=[Mount("/s3", app=s3_app(store))])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        assert (await client.get("/s3/art/k")).content == b"content"
        assert (await client.put("/s3/art/new", content=b"n")).status_code == 200
    assert store.get_bytes("art", "new") == b"n"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/art?acl", "GetBucketAcl"),
        ("PUT", "/art/k?tagging", "PutObjectTagging"),
        ("GET", "/art?versions", "ListObjectVersions"),
        ("GET", "/art/k?uploadId=abc", "ListParts"),
        ("DELETE", "/art", "DeleteBucket"),
        ("POST", "/art/k?restore", "RestoreObject"),
        ("POST", "/art/k", "PostObject"),
    ],
)
async def test_unsupported_operations_are_not_implemented_naming_them(
    store: MemoryArtifactStore, method: str, path: str, operation: str
) -> None:
    async with s3_client(store) as s3:
        response = await s3.request(method, path)
    assert (response.status_code, error_code(response)) == (501, "NotImplemented")
    assert find(xml(response), "Operation") == operation
    assert operation in (find(xml(response), "Message") or "")


@pytest.mark.parametrize(("method", "path"), [("PATCH", "/art/k"), ("POST", "/"), ("DELETE", "/")])
async def test_methods_s3_has_no_operation_for_are_method_not_allowed(
    store: MemoryArtifactStore, method: str, path: str
) -> None:
    async with s3_client(store) as s3:
        response = await s3.request(method, path)
    assert (response.status_code, error_code(response)) == (405, "MethodNotAllowed")


async def test_bad_names_and_paths_are_400s(store: MemoryArtifactStore) -> None:
    async with s3_client(store) as s3:
        bad_bucket = await s3.get("/Not_A_Bucket/k")
        bad_utf8 = await s3.get("/art/%FF%FE")
        nul = await s3.get("/art/a%00b")
    assert (bad_bucket.status_code, error_code(bad_bucket)) == (400, "InvalidBucketName")
    assert (bad_utf8.status_code, error_code(bad_utf8)) == (400, "InvalidURI")
    assert (nul.status_code, error_code(nul)) == (400, "InvalidArgument")


async def test_every_answer_carries_a_request_id_matching_its_error(
    store: MemoryArtifactStore,
) -> None:
    async with s3_client(store) as s3:
        answers = [
            await s3.get("/art/k"),
            await s3.get("/art/missing"),
            await s3.head("/art/missing"),
            await s3.get("/"),
            await s3.request("PATCH", "/art"),
        ]
    ids = [answer.headers["x-amz-request-id"] for answer in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    assert find(xml(answers[1]), "RequestId") == ids[1]


async def test_an_unexpected_failure_is_internal_error_without_details(
    store: MemoryArtifactStore, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenStore(MemoryArtifactStore):
        def head(self, bucket: str, key: str) -> None:
            raise RuntimeError("secret internals at /srv/data")

    async with s3_client(BrokenStore()) as s3:
        response = await s3.get("/art/k")
    assert (response.status_code, error_code(response)) == (500, "InternalError")
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert "secret internals" in caplog.text  # the operator still sees what went wrong


# ----------------------------------------------------------------------- bucket operations


async def test_create_head_and_list_buckets(store: MemoryArtifactStore) -> None:
    configuration = (
        b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
    )
    async with s3_client(store) as s3:
        created = await s3.put("/fresh")
        configured = await s3.put("/configured", content=configuration)
        again = await s3.put("/fresh")
        head = await s3.head("/fresh")
        missing = await s3.head("/absent")
        listing = await s3.get("/")
        location = await s3.get("/fresh?location")
    assert created.status_code == configured.status_code == again.status_code == 200
    assert created.headers["location"] == "/fresh"
    assert (head.status_code, head.headers["x-amz-bucket-region"]) == (200, "us-east-1")
    assert (missing.status_code, missing.content) == (404, b"")
    assert findall(xml(listing), "Buckets/Bucket/Name") == ["art", "configured", "fresh"]
    assert findall(xml(listing), "Buckets/Bucket/CreationDate")[0].endswith("Z")
    assert xml(location).text is None  # us-east-1 is the empty constraint


@pytest.mark.parametrize(
    "body",
    [
        b"<CreateBucketConfiguration>",
        b"<Other/>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<CreateBucketConfiguration>&e;</CreateBucketConfiguration>",
    ],
)
async def test_a_broken_or_hostile_bucket_configuration_is_malformed_xml(
    store: MemoryArtifactStore, body: bytes
) -> None:
    async with s3_client(store) as s3:
        response = await s3.put("/fresh", content=body)
    assert (response.status_code, error_code(response)) == (400, "MalformedXML")
    assert not store.bucket_exists("fresh")


async def test_delete_objects_deletes_and_reports_each_key(store: MemoryArtifactStore) -> None:
    store.put_bytes("art", "b", b"x")
    body = (
        b"<Delete><Quiet>false</Quiet><Object><Key>k</Key></Object>"
        b"<Object><Key>b</Key></Object><Object><Key>never-there</Key></Object></Delete>"
    )
    async with s3_client(store) as s3:
        response = await s3.post("/art?delete", content=body)
        quiet = await s3.post(
            "/art?delete",
            content=b"<Delete><Quiet>true</Quiet><Object><Key>k</Key></Object></Delete>",
        )
    assert findall(xml(response), "Deleted/Key") == ["k", "b", "never-there"]
    assert findall(xml(quiet), "Deleted/Key") == []
    assert list(store.list("art")) == []


async def test_the_app_answers_lifespan_messages() -> None:
    app = s3_app(MemoryArtifactStore())
    sent: list[dict[str, object]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
