"""The API front's stages as ASGI apps: routing to functions, API Gateway's error answers, CORS,
atomic deploys and the per-request metrics."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_fakes import FakeInvoker, Raw, proxy

from caravan.errors import ConflictError, InvalidInputError
from caravan.platform.api import (
    ApiDefinition,
    Gateway,
    RequestSample,
    RollingMetrics,
    load_definition,
)

URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.fn}:${stageVariables.alias}"
    "/invocations"
)


def definition(
    paths: dict[str, dict[str, Any]], *, version: str = "1.0", cors: dict[str, Any] | None = None
) -> ApiDefinition:
    document: dict[str, Any] = {"openapi": "3.0.1", "info": {"title": "t"}, "paths": {}}
    for path, operations in paths.items():
        document["paths"][path] = {
            method: {
                "x-amazon-apigateway-integration": {
                    "type": "aws_proxy",
                    "httpMethod": "POST",
                    "uri": uri,
                    "payloadFormatVersion": version,
                    **extra,
                }
            }
            for method, (uri, extra) in operations.items()
        }
    if cors is not None:
        document["x-amazon-apigateway-cors"] = cors
    return load_definition(document)


def echo(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(event),
    }


class Recorder:
    def __init__(self) -> None:
        self.samples: list[RequestSample] = []

    def record(self, sample: RequestSample) -> None:
        self.samples.append(sample)


@pytest.fixture
def invoker() -> FakeInvoker:
    return FakeInvoker({"shop": echo}, versions={"test": "4", "prod": "3"})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(invoker: FakeInvoker, recorder: Recorder) -> Gateway:
    gateway = Gateway(invoker, recorder=recorder)
    api = definition(
        {"/items/{id}": {"get": (URI, {})}, "/": {"x-amazon-apigateway-any-method": (URI, {})}}
    )
    gateway.deploy("shop", "test", api, {"fn": "shop", "alias": "test"})
    gateway.deploy("shop", "prod", api, {"fn": "shop", "alias": "prod"})
    return gateway


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(gateway.app("shop", "test"))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.localhost") as client:
        yield client


async def test_a_route_invokes_the_stage_alias_with_a_proxy_event(
    client: httpx.AsyncClient, invoker: FakeInvoker, recorder: Recorder
) -> None:
    response = await client.get("/items/42?color=red&color=blue", headers={"User-Agent": "t/1"})
    assert response.status_code == 200
    event = response.json()
    assert invoker.calls[-1][:2] == ("shop", "test")
    assert event["resource"] == "/items/{id}" and event["pathParameters"] == {"id": "42"}
    assert event["stageVariables"] == {"fn": "shop", "alias": "test"}
    assert event["multiValueQueryStringParameters"] == {"color": ["red", "blue"]}
    assert event["headers"]["User-Agent"] == "t/1"
    assert event["requestContext"]["stage"] == "test"
    assert event["requestContext"]["domainName"] == "shop.localhost"
    assert response.headers["x-amz-executed-version"] == "4"
    assert response.headers["x-amzn-requestid"] == event["requestContext"]["requestId"]
    [sample] = recorder.samples
    assert (sample.api, sample.stage, sample.function, sample.executed_version, sample.status) == (
        "shop",
        "test",
        "shop",
        "4",
        200,
    )
    assert sample.latency_ms > 0


async def test_stages_of_one_api_use_their_own_variables(
    gateway: Gateway, invoker: FakeInvoker
) -> None:
    transport = httpx.ASGITransport(gateway.app("shop", "prod"))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        response = await client.get("/")
    assert response.headers["x-amz-executed-version"] == "3"
    assert invoker.calls[-1][:2] == ("shop", "prod")


async def test_rest_api_answers_missing_authentication_token_for_no_route(
    client: httpx.AsyncClient, invoker: FakeInvoker
) -> None:
    for method, path in (("GET", "/nothing"), ("DELETE", "/items/1")):
        response = await client.request(method, path)
        assert response.status_code == 403
        assert response.content == b'{"message":"Missing Authentication Token"}'
        assert response.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert invoker.calls == []


async def test_http_api_answers_404_for_no_route_and_unknown_stage(invoker: FakeInvoker) -> None:
    gateway = Gateway(invoker)
    gateway.deploy("h", "v2", definition({"/a": {"get": ("shop", {})}}, version="2.0"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(gateway.app("h", "v2")), base_url="http://x"
    ) as c:
        missing = await c.get("/b")
        assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})
        assert "apigw-requestid" in missing.headers
        ok = await c.get("/a")
        assert ok.status_code == 200 and ok.json()["version"] == "2.0"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(gateway.app("h", "nope")), base_url="http://x"
    ) as c:
        unknown = await c.get("/a")
        assert (unknown.status_code, unknown.json()) == (404, {"message": "Not Found"})


async def test_function_failures_map_to_api_gateway_statuses(recorder: Recorder) -> None:
    async def slow(event: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(5)
        return proxy("late")

    def crash(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    def timed_out(event: dict[str, Any]) -> Raw:
        raise TimeoutError  # replaced below by a Sandbox.Timedout payload

    invoker = FakeInvoker(
        {"crash": crash, "slow": slow, "bad": lambda e: Raw(b"{oops"), "t": timed_out}
    )
    original = invoker.invoke

    async def invoke(name: str, payload: bytes = b"", *, qualifier: str | None = None) -> Any:
        result = await original(name, payload, qualifier=qualifier)
        if name == "t":
            error = {
                "errorMessage": "Task timed out after 3.00 seconds",
                "errorType": "Sandbox.Timedout",
            }
            return type(result)(200, json.dumps(error).encode(), "Unhandled", "1")
        return result

    invoker.invoke = invoke  # type: ignore[method-assign]
    gateway = Gateway(invoker, recorder=recorder)
    api = definition(
        {
            "/crash": {"get": ("crash", {})},
            "/slow": {"get": ("slow", {"timeoutInMillis": 50})},
            "/bad": {"get": ("bad", {})},
            "/t": {"get": ("t", {})},
            "/gone": {"get": ("missing-function", {})},
        }
    )
    gateway.deploy("f", "s", api)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(gateway.app("f", "s")), base_url="http://x"
    ) as c:
        crashed = await c.get("/crash")
        assert (crashed.status_code, crashed.json()) == (502, {"message": "Internal server error"})
        late = await c.get("/slow")
        assert (late.status_code, late.json()) == (504, {"message": "Endpoint request timed out"})
        assert (await c.get("/bad")).status_code == 502
        assert (await c.get("/t")).status_code == 504
        gone = await c.get("/gone")
        assert (gone.status_code, gone.json()) == (500, {"message": "Internal server error"})
    statuses = {(s.function, s.executed_version): s.status for s in recorder.samples}
    assert statuses == {
        ("crash", "$LATEST"): 502,
        ("slow", None): 504,  # the gateway gave up: no version reported
        ("bad", "$LATEST"): 502,
        ("t", "1"): 504,
        ("missing-function", None): 500,
    }


async def test_a_throttled_function_is_a_429(recorder: Recorder) -> None:
    class Throttled(ConflictError):
        http_status = 429

    def throttle(event: dict[str, Any]) -> None:
        raise AssertionError("not reached")

    invoker = FakeInvoker({"x": throttle})

    async def invoke(name: str, payload: bytes = b"", *, qualifier: str | None = None) -> Any:
        raise Throttled("Rate Exceeded.")

    invoker.invoke = invoke  # type: ignore[method-assign]
    gateway = Gateway(invoker)
    gateway.deploy("f", "s", definition({"/": {"get": ("x", {})}}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(gateway.app("f", "s")), base_url="http://x"
    ) as c:
        response = await c.get("/")
    assert (response.status_code, response.json()) == (429, {"message": "Too Many Requests"})


async def test_deploy_is_atomic_for_requests_in_flight(invoker: FakeInvoker) -> None:
    release, started = asyncio.Event(), asyncio.Event()

    async def old(event: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await release.wait()
        return proxy("old")

    invoker.handlers.update({"old": old, "new": lambda e: proxy("new")})
    gateway = Gateway(invoker)
    gateway.deploy("a", "s", definition({"/x": {"get": ("old", {})}}))
    transport = httpx.ASGITransport(gateway.app("a", "s"))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        in_flight = asyncio.create_task(c.get("/x"))
        await started.wait()
        gateway.deploy("a", "s", definition({"/y": {"get": ("new", {})}}))
        after = await c.get("/y")
        assert after.text == "new"
        assert (await c.get("/x")).status_code == 403  # the old route is gone for new requests
        release.set()
        assert (await in_flight).text == "old"  # ... but the request in flight finished on it


def test_deploy_refuses_bad_names_and_missing_stage_variables(invoker: FakeInvoker) -> None:
    gateway = Gateway(invoker)
    api = definition({"/": {"get": (URI, {})}})
    with pytest.raises(InvalidInputError, match=r"stage variable\(s\) \['alias', 'fn'\]"):
        gateway.deploy("shop", "test", api)
    with pytest.raises(InvalidInputError, match="stage name 'a b'"):
        gateway.deploy("shop", "a b", api, {"fn": "x", "alias": "y"})
    with pytest.raises(InvalidInputError, match="must be a string"):
        gateway.deploy("shop", "t", api, {"fn": "x", "alias": 3})  # type: ignore[dict-item]
    assert gateway.apis() == []


def test_stages_are_listed_and_deleted(gateway: Gateway) -> None:
    assert gateway.apis() == ["shop"]
    assert [s.name for s in gateway.stages("shop")] == ["prod", "test"]
    gateway.delete_stage("shop", "prod")
    assert [s.name for s in gateway.stages("shop")] == ["test"]
    with pytest.raises(Exception, match="no stage 'prod'"):
        gateway.stage("shop", "prod")


async def test_a_stage_variable_naming_no_valid_function_is_a_500(invoker: FakeInvoker) -> None:
    gateway = Gateway(invoker)
    gateway.deploy(
        "a", "s", definition({"/": {"get": (URI, {})}}), {"fn": "bad name!", "alias": "x"}
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(gateway.app("a", "s")), base_url="http://x"
    ) as c:
        assert (await c.get("/")).status_code == 500
    assert invoker.calls == []


async def test_cors_preflight_is_answered_by_the_gateway(invoker: FakeInvoker) -> None:
    cors = {
        "allowOrigins": ["https://app.example.com"],
        "allowMethods": ["GET", "POST"],
        "allowHeaders": ["content-type"],
        "exposeHeaders": ["x-amz-executed-version"],
        "maxAge": 60,
    }
    invoker.handlers["cors"] = lambda e: proxy("hi", headers={"Access-Control-Allow-Origin": "*"})
    gateway = Gateway(invoker)
    invoker.handlers["empty"] = lambda e: {"statusCode": 204}
    paths = {"/data": {"get": ("cors", {})}, "/empty": {"delete": ("empty", {})}}
    gateway.deploy("c", "s", definition(paths, version="2.0", cors=cors))
    origin = {"Origin": "https://app.example.com"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(gateway.app("c", "s")), base_url="http://x"
    ) as c:
        preflight = await c.options(
            "/data",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 204 and preflight.content == b""
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        assert preflight.headers["access-control-allow-methods"] == "GET,POST"
        assert preflight.headers["access-control-allow-headers"] == "content-type"
        assert preflight.headers["access-control-max-age"] == "60"
        assert invoker.calls == []  # no function ran
        simple = await c.get("/data", headers=origin)
        assert simple.headers.get_list("access-control-allow-origin") == ["https://app.example.com"]
        assert simple.headers["access-control-expose-headers"] == "x-amz-executed-version"
        stranger = await c.get("/data", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        refused = await c.options(
            "/data",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert refused.status_code == 204 and "access-control-allow-origin" not in refused.headers
        no_route = await c.get("/other", headers=origin)
        assert no_route.status_code == 404
        assert no_route.headers["access-control-allow-origin"] == "https://app.example.com"
        empty = await c.delete("/empty", headers=origin)  # a function's own 204 is not a preflight
        assert empty.status_code == 204
        assert empty.headers["access-control-allow-origin"] == "https://app.example.com"


async def test_bodies_head_and_size_limit(invoker: FakeInvoker) -> None:
    def upload(event: dict[str, Any]) -> dict[str, Any]:
        data = (
            base64.b64decode(event["body"])
            if event["isBase64Encoded"]
            else (event["body"] or "").encode()
        )
        return {
            "statusCode": 200,
            "body": base64.b64encode(data[::-1]).decode(),
            "isBase64Encoded": True,
            "headers": {"Content-Type": "application/octet-stream"},
        }

    invoker.handlers["up"] = upload
    gateway = Gateway(invoker, max_body_bytes=1024)
    gateway.deploy("b", "s", definition({"/up": {"x-amazon-apigateway-any-method": ("up", {})}}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(gateway.app("b", "s")), base_url="http://x"
    ) as c:
        blob = bytes(range(256))
        response = await c.post(
            "/up", content=blob, headers={"Content-Type": "application/octet-stream"}
        )
        assert response.content == blob[::-1]
        head = await c.head("/up")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == "0"
        big = await c.post("/up", content=b"x" * 2048)
        assert big.status_code == 413


async def test_metrics_window_reads_the_gateway_samples(invoker: FakeInvoker) -> None:
    metrics = RollingMetrics(window_s=60)
    invoker.handlers["fail"] = lambda e: proxy("no", status=503)
    gateway = Gateway(invoker, recorder=metrics)
    gateway.deploy(
        "m", "s", definition({"/ok": {"get": ("shop", {})}, "/fail": {"get": ("fail", {})}})
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(gateway.app("m", "s")), base_url="http://x"
    ) as c:
        for _ in range(3):
            await c.get("/ok")
        await c.get("/fail")
        await c.get("/none")
    ok = metrics.stats("shop", "$LATEST")
    assert (ok.requests, ok.errors_5xx, ok.error_rate) == (3, 0, 0.0)
    fail = metrics.stats("fail", "$LATEST")
    assert (fail.requests, fail.errors_5xx, fail.error_rate) == (1, 1, 1.0)
    stage = metrics.stage_stats("m", "s")
    assert (stage.requests, stage.errors_4xx, stage.errors_5xx) == (5, 1, 1)
