"""The Lambda API's HTTP layer: routing, Lambda's error wire format, hostile bodies and size
limits, internal failures without details, and mounting inside a Starlette app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lambda_api_helpers import Api, assert_lambda_error, open_api
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Message

from caravan.platform.functions import FunctionRegistry, Invoker
from caravan.server.lambda_api import PREFIX, lambda_app, starlette_routes


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(tmp_path) as opened:
        yield opened


async def test_a_path_no_operation_has_is_404_unknown_operation(api: Api) -> None:
    for path in (f"{PREFIX}/hello/policy", "/2015-03-31/layers", f"{PREFIX}/a/aliases/b/c"):
        response = await api.client.get(path)
        message = assert_lambda_error(response, 404, "UnknownOperationException")
        assert path in message


async def test_a_known_path_with_another_method_is_405_naming_the_methods(api: Api) -> None:
    response = await api.client.patch(f"{PREFIX}/hello/aliases/live")
    message = assert_lambda_error(response, 405, "MethodNotAllowedException")
    assert "DELETE, GET, PUT" in message


async def test_a_trailing_slash_reaches_the_same_operation(api: Api) -> None:
    assert (await api.client.get(f"{PREFIX}/")).json() == {"Functions": []}
    missing = await api.client.get(f"{PREFIX}/hello/")
    assert_lambda_error(missing, 404, "ResourceNotFoundException")


async def test_the_error_body_is_lambdas(api: Api) -> None:
    await api.create()
    conflict = await api.create()
    assert conflict.json() == {"Type": "User", "message": "Function already exist: hello"}
    missing = await api.client.get(f"{PREFIX}/nobody")
    assert missing.json() == {
        "Type": "User",
        "Message": "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nobody",
    }
    assert missing.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b'{"Name": "live",', "line 1 column 17"),
        (b'["Name", "live"]', "expected a JSON object, got a list"),
        (b'{"Name": "\xff"}', "not UTF-8"),
        (b'{"Name": 7, "FunctionVersion": "1"}', "Name must be a string, got the number 7"),
        (b'{"Name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "Could not parse"),
        (b'{"Name": ' + b"9" * 5000 + b"}", "Could not parse"),
    ],
)
async def test_malformed_json_is_400_invalid_request_content(
    api: Api, content: bytes, named: str
) -> None:
    await api.create(Publish=True)
    response = await api.client.post(f"{PREFIX}/hello/aliases", content=content)
    message = assert_lambda_error(response, 400, "InvalidRequestContentException")
    assert message.startswith("Could not parse request body into json")
    assert named in message


async def test_a_control_plane_body_over_256_kib_is_413(api: Api) -> None:
    await api.create(Publish=True)
    body = {"Name": "live", "FunctionVersion": "1", "Description": "x" * 300_000}
    response = await api.client.post(f"{PREFIX}/hello/aliases", json=body)
    message = assert_lambda_error(response, 413, "RequestEntityTooLargeException")
    assert message == "Request must be smaller than 262144 bytes for the CreateAlias operation"


async def test_a_code_upload_over_lambdas_limit_is_413(api: Api) -> None:
    response = await api.client.post(PREFIX, content=b"x" * 69_905_068)
    message = assert_lambda_error(response, 413, "RequestEntityTooLargeException")
    assert message == "Request must be smaller than 69905067 bytes for the CreateFunction operation"


async def test_a_body_declared_far_too_large_is_refused_without_reading_it(
    tmp_path: Path,
) -> None:
    registry = FunctionRegistry(tmp_path)
    invoker = Invoker(registry)
    app = lambda_app(registry, invoker)
    sent: list[Message] = []
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": f"{PREFIX}/hello/invocations",
        "query_string": b"",
        "headers": [(b"content-length", b"10000000000")],
    }
    await app(scope, receive, send)
    await invoker.aclose()
    assert reads == 0
    assert sent[0]["status"] == 413
    assert (b"x-amzn-errortype", b"RequestTooLargeException") in sent[0]["headers"]


async def test_an_internal_failure_is_500_without_details_and_logged(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> list[dict[str, Any]]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.registry, "list_functions", broken)
    with caplog.at_level(logging.ERROR, logger="caravan.server.lambda_api"):
        response = await api.client.get(PREFIX)
    message = assert_lambda_error(response, 500, "ServiceException")
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert response.headers["x-amzn-RequestId"] in message
    assert "secret internals" in caplog.text


async def test_the_app_answers_the_lifespan_protocol(api: Api) -> None:
    app = lambda_app(api.registry, api.invoker)
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[Message] = []

    async def receive() -> Message:
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_mounted_in_a_starlette_app_with_its_routes(api: Api) -> None:
    """The prefix itself (ListFunctions, CreateFunction) is served, not redirected."""
    other = Mount("/other", app=Starlette())
    app = lambda_app(api.registry, api.invoker)
    outer = Starlette(routes=[other, *starlette_routes(app)])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://one.port") as client:
        api.client = client
        assert (await api.create()).status_code == 201
        listed = await client.get(PREFIX)
        assert [f["FunctionName"] for f in listed.json()["Functions"]] == ["hello"]
        config = await client.get(f"{PREFIX}/hello/configuration")
        assert config.json()["FunctionName"] == "hello"
        assert (await client.delete(f"{PREFIX}/hello")).status_code == 204
