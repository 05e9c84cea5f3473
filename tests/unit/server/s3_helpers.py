"""Shared pieces of the S3 endpoint tests: the app in-process over httpx's ASGI transport,
requests signed by botocore (an independent SigV4 implementation), aws-chunked bodies built as
AWS's spec describes them, and XML reading."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import xml.etree.ElementTree as ET
import zlib
from collections.abc import AsyncIterator, Mapping

import httpx
from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from caravan.artifacts.store import ArtifactStore
from caravan.server.s3 import S3Settings, s3_app

BASE_URL = "http://127.0.0.1:9000"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "secret-key"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@contextlib.asynccontextmanager
async def s3_client(
    store: ArtifactStore, settings: S3Settings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=s3_app(store, settings))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


def xml(response: httpx.Response) -> ET.Element:
    return ET.fromstring(response.content)  # noqa: S314  (our own server's answer)


def find(root: ET.Element, path: str) -> str | None:
    """Text at ``path`` (``/``-separated tag names, S3 namespace optional)."""
    for candidate in (path, "/".join(NS + part for part in path.split("/"))):
        found = root.find(candidate)
        if found is not None:
            return found.text or ""
    return None


def findall(root: ET.Element, path: str) -> list[str]:
    tags = "/".join(NS + part for part in path.split("/"))
    return [element.text or "" for element in root.findall(tags)]


def error_code(response: httpx.Response) -> str | None:
    return find(xml(response), "Code")


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def etag(data: bytes) -> str:
    """The ETag S3 gives a single-part upload: the quoted MD5 hex of the content."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def aws_chunked(chunks: list[bytes], trailers: Mapping[str, str] | None = None) -> bytes:
    """An unsigned aws-chunked body (STREAMING-UNSIGNED-PAYLOAD-TRAILER), as boto3 sends one."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks if chunk)
    body += b"0\r\n"
    for name, value in (trailers or {}).items():
        body += f"{name}:{value}\r\n".encode()
    return body + b"\r\n"


def sign(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    access_key: str = ACCESS_KEY,
    secret: str = SECRET,
    presign_seconds: int | None = None,
) -> tuple[str, dict[str, str]]:
    """(url, headers) of a request botocore signed: header auth, or a presigned URL."""
    request = AWSRequest(method=method, url=BASE_URL + path, data=body, headers=dict(headers or {}))
    credentials = Credentials(access_key, secret)
    if presign_seconds is None:
        S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
    else:
        S3SigV4QueryAuth(credentials, "s3", "us-east-1", expires=presign_seconds).add_auth(request)
    return request.url, {name: str(value) for name, value in request.headers.items()}


def sign_v2(
    method: str,
    url: str,
    *,
    auth_path: str | None = None,
    headers: Mapping[str, str] | None = None,
    secret: str = SECRET,
    presign_seconds: int | None = None,
) -> tuple[str, dict[str, str]]:
    """(url, headers) signed with legacy SigV2 by botocore (what generate_presigned_url does by
    default); ``auth_path`` is the path-style path of a virtual-hosted ``url``."""
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    request.auth_path = auth_path
    credentials = Credentials(ACCESS_KEY, secret)
    if presign_seconds is None:
        HmacV1Auth(credentials).add_auth(request)
    else:
        HmacV1QueryAuth(credentials, expires=presign_seconds).add_auth(request)
    return request.url, {name: str(value) for name, value in request.headers.items()}
