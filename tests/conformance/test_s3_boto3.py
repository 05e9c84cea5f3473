"""boto3 against caravan's S3 endpoint, served by uvicorn on 127.0.0.1: the calls an artifact
client makes, with boto3's own defaults (CRC32 checksums; aws-chunked bodies with a trailer
over TLS), path-style and virtual-hosted addressing, pagination, and verified signatures."""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from s3_server import Recorder, self_signed_certificate, serve

from caravan.artifacts.filesystem import FilesystemArtifactStore
from caravan.artifacts.memory import MemoryArtifactStore
from caravan.server.s3 import S3Settings, s3_app

ACCESS_KEY = "AKIDCONFORMANCE"
SECRET = "conformance-secret"
MiB = 1024 * 1024
SMALL_PARTS = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)


@pytest.fixture(scope="module", autouse=True)
def clean_aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No profile, endpoint or checksum setting of the machine leaks into the clients."""
    empty = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                patch.delenv(name)
        patch.setenv("AWS_CONFIG_FILE", str(empty))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FilesystemArtifactStore:
    return FilesystemArtifactStore(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def recorder(store: FilesystemArtifactStore) -> Recorder:
    return Recorder(s3_app(store))


@pytest.fixture(scope="module")
def http_url(recorder: Recorder) -> Iterator[str]:
    with serve(recorder) as url:
        yield url


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    made = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("openssl is needed to make a certificate for the TLS server")
    return made


@pytest.fixture(scope="module")
def https_url(recorder: Recorder, certificate: tuple[Path, Path]) -> Iterator[str]:
    with serve(recorder, tls=certificate) as url:
        yield url


def client(
    url: str,
    *,
    style: str = "path",
    secret: str = SECRET,
    verify: str | None = None,
    signature_version: str | None = None,
) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        verify=verify,
        config=Config(
            s3={"addressing_style": style},
            retries={"max_attempts": 1},
            signature_version=signature_version,
        ),
    )


def refusal(call: Callable[[], object]) -> str:
    """The error code ``call`` fails with. (Unlike pytest.raises, keeps no traceback alive: one
    would hold a TLS connection open and stall the server's shutdown.)"""
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    raise AssertionError("the call succeeded")


# ---------------------------------------------------------------------------------- objects


def test_put_get_head_delete_with_boto3_defaults(http_url: str) -> None:
    s3 = client(http_url)
    s3.create_bucket(Bucket="roundtrip")
    put = s3.put_object(
        Bucket="roundtrip",
        Key="dir/app.zip",
        Body=b"zip bytes",
        ContentType="application/zip",
        CacheControl="no-cache",
        Metadata={"Commit": "abc123"},
    )
    assert put["ETag"] == f'"{hashlib.md5(b"zip bytes", usedforsecurity=False).hexdigest()}"'
    assert put["ChecksumCRC32"]  # boto3 >= 1.36 sent one; we verified it and echoed it

    got = s3.get_object(Bucket="roundtrip", Key="dir/app.zip")
    assert got["Body"].read() == b"zip bytes"
    assert (got["ContentType"], got["CacheControl"], got["Metadata"]) == (
        "application/zip",
        "no-cache",
        {"commit": "abc123"},
    )
    assert got["ETag"] == put["ETag"]
    assert got["ChecksumSHA256"]  # and boto3 checked the body against it

    head = s3.head_object(Bucket="roundtrip", Key="dir/app.zip")
    assert head["ContentLength"] == len(b"zip bytes")
    assert head["LastModified"] == got["LastModified"]

    s3.delete_object(Bucket="roundtrip", Key="dir/app.zip")
    s3.delete_object(Bucket="roundtrip", Key="dir/app.zip")
    assert refusal(lambda: s3.head_object(Bucket="roundtrip", Key="dir/app.zip")) == "404"
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="roundtrip", Key="dir/app.zip")


def test_ranges_conditions_copies_and_batch_deletes(http_url: str) -> None:
    s3 = client(http_url)
    s3.create_bucket(Bucket="misc")
    etag = s3.put_object(Bucket="misc", Key="src", Body=b"0123456789")["ETag"]
    assert s3.get_object(Bucket="misc", Key="src", Range="bytes=3-5")["Body"].read() == b"345"
    assert refusal(lambda: s3.get_object(Bucket="misc", Key="src", IfNoneMatch=etag)) == "304"
    assert refusal(lambda: s3.get_object(Bucket="misc", Key="src", IfMatch='"0"')) == (
        "PreconditionFailed"
    )

    copied = s3.copy_object(Bucket="misc", Key="dst", CopySource={"Bucket": "misc", "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == etag
    result = s3.delete_objects(
        Bucket="misc", Delete={"Objects": [{"Key": "src"}, {"Key": "dst"}]}
    )  # boto3 sends a CRC32 of the XML document: verified too
    assert sorted(d["Key"] for d in result["Deleted"]) == ["dst", "src"]
    assert s3.list_objects_v2(Bucket="misc")["KeyCount"] == 0


def test_buckets_are_created_and_listed(http_url: str) -> None:
    s3 = client(http_url)
    s3.create_bucket(Bucket="plain-bucket")
    s3.create_bucket(
        Bucket="configured-bucket",
        CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
    )
    names = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    assert {"plain-bucket", "configured-bucket"} <= set(names)
    s3.head_bucket(Bucket="plain-bucket")
    assert refusal(lambda: s3.head_bucket(Bucket="no-such-bucket")) == "404"
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket="no-such-bucket")


def test_upload_file_and_download_file(http_url: str, tmp_path: Path) -> None:
    s3 = client(http_url)
    s3.create_bucket(Bucket="files")
    source = tmp_path / "artifact.zip"
    source.write_bytes(os.urandom(256 * 1024))
    s3.upload_file(str(source), "files", "builds/artifact.zip")
    target = tmp_path / "downloaded.zip"
    s3.download_file("files", "builds/artifact.zip", str(target))
    assert target.read_bytes() == source.read_bytes()


def test_large_transfers_go_multipart_up_and_ranged_down(http_url: str, tmp_path: Path) -> None:
    s3 = client(http_url)
    s3.create_bucket(Bucket="large")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(12 * MiB))
    s3.upload_file(str(source), "large", "big.bin", Config=SMALL_PARTS)
    target = tmp_path / "back.bin"
    s3.download_file("large", "big.bin", str(target), Config=SMALL_PARTS)
    assert target.read_bytes() == source.read_bytes()


# ----------------------------------------------------------- boto3's aws-chunked uploads


def test_over_tls_boto3_streams_aws_chunked_with_a_crc32_trailer(
    https_url: str, certificate: tuple[Path, Path], recorder: Recorder, tmp_path: Path
) -> None:
    s3 = client(https_url, verify=str(certificate[0]))
    s3.create_bucket(Bucket="chunked")
    source = tmp_path / "artifact.zip"
    source.write_bytes(os.urandom(12 * MiB + 123))
    recorder.requests.clear()
    s3.upload_file(
        str(source), "chunked", "small.zip", ExtraArgs={"ContentType": "application/zip"}
    )
    with source.open("rb") as handle:
        s3.upload_fileobj(handle, "chunked", "multipart.zip", Config=SMALL_PARTS)

    uploads = [headers for method, _, headers in recorder.requests if method == "PUT"]
    assert uploads and all(h.get("content-encoding") == "aws-chunked" for h in uploads)
    assert all(h.get("x-amz-trailer") == "x-amz-checksum-crc32" for h in uploads)
    assert {h.get("x-amz-content-sha256") for h in uploads} == {
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    }
    for key in ("small.zip", "multipart.zip"):
        target = tmp_path / key
        s3.download_file("chunked", key, str(target))
        assert target.read_bytes() == source.read_bytes()


# ----------------------------------------------------------------------------- listing


def test_the_paginator_walks_2500_keys_in_pages_of_1000() -> None:
    store = MemoryArtifactStore()  # filling a filesystem store with 2500 keys takes seconds
    for number in range(2500):
        store.put_bytes("many", f"logs/{number:04d}.txt", b"x")
    store.put_bytes("many", "readme", b"x")
    with serve(s3_app(store)) as url:
        s3 = client(url)
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="many", Prefix="logs/"))
        grouped = s3.list_objects_v2(Bucket="many", Delimiter="/")
        small = list(
            s3.get_paginator("list_objects_v2").paginate(
                Bucket="many", StartAfter="logs/2400.txt", PaginationConfig={"PageSize": 30}
            )
        )
    assert [page["KeyCount"] for page in pages] == [1000, 1000, 500]
    keys = [item["Key"] for page in pages for item in page["Contents"]]
    assert keys == [f"logs/{number:04d}.txt" for number in range(2500)]
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["logs/"]
    assert [item["Key"] for item in grouped["Contents"]] == ["readme"]
    assert sum(page["KeyCount"] for page in small) == 99 + 1  # logs/2401..2499 and readme


# ------------------------------------------------------------------- addressing and auth


def test_virtual_hosted_requests_reach_the_bucket_in_the_host(http_url: str) -> None:
    port = urllib.parse.urlsplit(http_url).port
    s3 = client(f"http://s3.localhost:{port}", style="virtual")

    def to_loopback(request: Any, **kwargs: Any) -> None:
        # *.s3.localhost does not resolve here: connect to 127.0.0.1, keep the Host header.
        parts = urllib.parse.urlsplit(request.url)
        request.headers["Host"] = parts.netloc
        request.url = urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port}"))

    s3.meta.events.register("before-send.s3", to_loopback)
    s3.create_bucket(Bucket="virtual-bucket")
    s3.put_object(Bucket="virtual-bucket", Key="a/b.txt", Body=b"hosted")
    assert s3.get_object(Bucket="virtual-bucket", Key="a/b.txt")["Body"].read() == b"hosted"
    listing = s3.list_objects_v2(Bucket="virtual-bucket")
    assert [item["Key"] for item in listing["Contents"]] == ["a/b.txt"]


def test_signatures_are_verified_when_the_secret_is_known(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    store = MemoryArtifactStore()
    store.create_bucket("guarded")
    allowed: list[tuple[str | None, str]] = []

    def authorize(key_id: str | None, bucket: str | None, key: str | None, action: str) -> bool:
        allowed.append((key_id, action))
        return key_id == ACCESS_KEY

    settings = S3Settings(secret_for={ACCESS_KEY: SECRET}.get, authorize=authorize)
    source = tmp_path / "file"
    source.write_bytes(os.urandom(6 * MiB))
    tls = ssl.create_default_context(cafile=str(certificate[0]))
    with serve(s3_app(store, settings), tls=certificate) as url:
        # Clients are closed before the server stops: open TLS connections would hold it.
        with contextlib.closing(client(url, verify=str(certificate[0]))) as good:
            good.put_object(Bucket="guarded", Key="k", Body=b"signed")  # aws-chunked
            good.upload_file(str(source), "guarded", "multi", Config=SMALL_PARTS)
            assert good.get_object(Bucket="guarded", Key="k")["Body"].read() == b"signed"
            # boto3 presigns with SigV2 unless told otherwise; both are verified.
            for version in ("s3", "s3v4"):
                signer = client(url, verify=str(certificate[0]), signature_version=version)
                with contextlib.closing(signer):
                    presigned = signer.generate_presigned_url(
                        "get_object", Params={"Bucket": "guarded", "Key": "k"}, ExpiresIn=60
                    )
                with urllib.request.urlopen(presigned, context=tls) as response:
                    assert response.read() == b"signed"
                with pytest.raises(urllib.error.HTTPError) as tampered:
                    urllib.request.urlopen(presigned.replace("/k?", "/other?"), context=tls)
                assert tampered.value.code == 403
                tampered.value.close()
        with contextlib.closing(client(url, secret="forged", verify=str(certificate[0]))) as bad:
            assert refusal(lambda: bad.get_object(Bucket="guarded", Key="k")) == (
                "SignatureDoesNotMatch"
            )
    assert store.get_bytes("guarded", "multi") == source.read_bytes()
    assert (ACCESS_KEY, "s3:PutObject") in allowed
