"""The one-port edge: each kind of request reaches the app meant for it, in the documented order
(app host, then AWS signature / target, then the Lambda path, then the server's own routes)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from caravan.server.edge import Edge, EdgeTargets, classify, signed_service

APP_HOSTS = {"test.dromedary.localhost", "prod.dromedary.localhost"}
SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=abc123"
)


def named(name: str) -> ASGIApp:
    """An app answering its name and the path it was given."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps({"app": name, "path": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def front(fallback: ASGIApp) -> ASGIApp:
    """A stand-in for LocalPlatform.front: app hosts here, everything else to ``fallback``."""
    front_app = named("front")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        host = dict(scope["headers"]).get(b"host", b"").decode().split(":")[0]
        await (front_app if host in APP_HOSTS else fallback)(scope, receive, send)

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    targets = EdgeTargets()
    targets.attach(front=front, s3=named("s3"), lambda_api=named("lambda"))
    edge = Edge(named("server"), targets)
    transport = httpx.ASGITransport(app=edge)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:7878") as c:
        yield c


async def served_by(response: httpx.Response) -> tuple[str, str]:
    data = response.json()
    return data["app"], data["path"]


async def test_app_environment_hosts_reach_the_platform_front(client: httpx.AsyncClient) -> None:
    for host in ("test.dromedary.localhost", "prod.dromedary.localhost:7878"):
        answer = await client.get("/index.html", headers={"Host": host})
        assert (await served_by(answer))[0] == "front"


async def test_an_app_host_wins_over_an_aws_signature(client: httpx.AsyncClient) -> None:
    headers = {
        "Host": "test.dromedary.localhost",
        "Authorization": SIGV4.format(service="s3"),
    }
    assert (await served_by(await client.get("/data", headers=headers)))[0] == "front"


async def test_sigv4_s3_requests_reach_the_s3_api(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": SIGV4.format(service="s3")}
    assert await served_by(await client.put("/bucket/key", headers=headers)) == (
        "s3",
        "/bucket/key",
    )


async def test_presigned_s3_urls_reach_the_s3_api(client: httpx.AsyncClient) -> None:
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": "AKID/20250101/us-east-1/s3/aws4_request",
        "X-Amz-Signature": "abc",
    }
    assert (await served_by(await client.get("/bucket/key", params=query)))[0] == "s3"


async def test_sigv2_requests_are_s3s(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": "AWS AKID:signature"}
    assert (await served_by(await client.get("/bucket", headers=headers)))[0] == "s3"


async def test_sigv4_lambda_requests_reach_the_lambda_api(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": SIGV4.format(service="lambda")}
    path = "/2015-03-31/functions/dromedary-api/invocations"
    assert await served_by(await client.post(path, headers=headers)) == ("lambda", path)


async def test_unsigned_lambda_paths_reach_the_lambda_api(client: httpx.AsyncClient) -> None:
    for path in ("/2015-03-31/functions", "/2015-03-31/functions/f/aliases/prod"):
        assert await served_by(await client.get(path)) == ("lambda", path)


async def test_codepipeline_targets_reach_the_aws_json_route_on_root(
    client: httpx.AsyncClient,
) -> None:
    headers = {
        "X-Amz-Target": "CodePipeline_20150709.ListPipelines",
        "Authorization": SIGV4.format(service="codepipeline"),
    }
    for path in ("/", "/anything"):
        assert await served_by(await client.post(path, headers=headers)) == ("server", "/")


async def test_everything_else_reaches_the_server(client: httpx.AsyncClient) -> None:
    for path in ("/", "/api/GetPipelineState", "/api/events", "/webhooks/github", "/healthz"):
        assert await served_by(await client.get(path)) == ("server", path)
    other = {"Authorization": SIGV4.format(service="execute-api")}
    assert (await served_by(await client.get("/api/x", headers=other)))[0] == "server"


async def test_before_the_services_attach_everything_reaches_the_server() -> None:
    edge = Edge(named("server"), EdgeTargets())
    transport = httpx.ASGITransport(app=edge)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        headers = {"Host": "test.dromedary.localhost", "Authorization": SIGV4.format(service="s3")}
        assert (await served_by(await client.get("/b/k", headers=headers)))[0] == "server"


def test_the_signed_service_is_read_from_the_credential_scope() -> None:
    def scope(headers: dict[str, str], query: bytes = b"") -> Scope:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        return {"type": "http", "path": "/", "headers": raw, "query_string": query}

    assert signed_service(scope({"Authorization": SIGV4.format(service="Lambda")})) == "lambda"
    assert signed_service(scope({"Authorization": "Bearer token"})) is None
    assert signed_service(scope({"Authorization": "AWS4-HMAC-SHA256 garbage"})) is None
    assert signed_service(scope({})) is None
    presigned = b"X-Amz-Credential=AKID%2F20250101%2Feu-west-1%2Fs3%2Faws4_request"
    assert signed_service(scope({}, presigned)) == "s3"
    assert classify(scope({"X-Amz-Target": "Lambda_20150331.Invoke"})) == "server"
