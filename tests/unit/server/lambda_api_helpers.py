"""Shared set-up of the Lambda API tests: a real registry and invoker under a temporary directory,
the app in-process through httpx's ASGI transport, and a deployment package."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from caravan.artifacts.memory import MemoryArtifactStore
from caravan.artifacts.zipfiles import zip_files
from caravan.platform.functions import FunctionRegistry, Invoker
from caravan.server.lambda_api import PREFIX, lambda_app

APP = b"""
import time

def handler(event, context):
    if isinstance(event, dict):
        if event.get("fail"):
            raise ValueError("failing: " + event["fail"])
        if event.get("touch"):
            open(event["touch"], "w").close()
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("client"):
            return context.client_context.custom
    print("got", event)
    return {"event": event, "version": context.function_version, "tag": TAG}
"""


def package(tag: str = "one") -> bytes:
    return zip_files({"app.py": APP + f"\nTAG = {tag!r}\n".encode()})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Api:
    client: httpx.AsyncClient
    registry: FunctionRegistry
    invoker: Invoker
    store: MemoryArtifactStore

    async def create(self, name: str = "hello", **members: Any) -> httpx.Response:
        body = {
            "FunctionName": name,
            "Runtime": "python3.11",
            "Role": "arn:aws:iam::000000000000:role/fn",
            "Handler": "app.handler",
            "Code": {"ZipFile": b64(package())},
            **members,
        }
        return await self.client.post(PREFIX, json=body)


@contextlib.asynccontextmanager
async def open_api(
    root: Path, *, with_store: bool = True, **invoker_options: Any
) -> AsyncIterator[Api]:
    registry = FunctionRegistry(root)
    invoker = Invoker(registry, **invoker_options)
    store = MemoryArtifactStore()
    app = lambda_app(registry, invoker, artifacts=store if with_store else None)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://lambda.test") as client:
            yield Api(client, registry, invoker, store)
    finally:
        await invoker.aclose()


def assert_lambda_error(response: httpx.Response, status: int, name: str) -> str:
    """Check the error response is Lambda's; answer its message."""
    assert response.status_code == status, response.text
    assert response.headers["x-amzn-ErrorType"] == name
    assert response.headers["x-amzn-RequestId"]
    body = response.json()
    assert body["Type"] == ("User" if status < 500 else "Service")
    key = "Message" if name in ("ResourceNotFoundException", "ServiceException") else "message"
    message: str = body[key]
    return message
