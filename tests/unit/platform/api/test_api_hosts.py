"""Addressing across APIs, stages and sites: the Host table, path-style stages, the fallback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fakes import FakeInvoker, call_asgi
from starlette.types import Receive, Scope, Send

from caravan.errors import InvalidInputError
from caravan.platform.api import FrontRouter, Gateway, HostRoute, load_definition
from caravan.platform.sites import SiteStore, site_config


def event_path(event: dict[str, Any]) -> dict[str, Any]:
    body = {
        "path": event["path"],
        "stage": event["requestContext"]["stage"],
        "full": event["requestContext"]["path"],
    }
    return {"statusCode": 200, "body": json.dumps(body)}


async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"server")]})
    await send({"type": "http.response.body", "body": b"the server's own routes"})


@pytest.fixture
def front(tmp_path: Path) -> FrontRouter:
    gateway = Gateway(FakeInvoker({"demo": event_path}))
    api = load_definition(
        {
            "openapi": "3.0.1",
            "paths": {
                "/data": {
                    "get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": "demo"}}
                }
            },
        }
    )
    gateway.deploy("demo", "test", api)
    gateway.deploy("demo", "prod", api)
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    (site / "index.html").write_text("<p>home</p>")
    (site / "docs" / "index.html").write_text("<p>docs</p>")
    store = SiteStore(tmp_path / "sites")
    store.publish("demo-test", site, config=site_config("/api/", "abc123"), version_label="abc123")
    return FrontRouter(
        gateway,
        sites=store,
        fallback=fallback,
        routes=[
            HostRoute("test.demo.localhost", site="demo-test", api="demo", stage="test"),
            HostRoute("api.demo.localhost", api="demo", stage="prod"),
            HostRoute("www.demo.localhost", site="demo-test"),
        ],
    )


@pytest.fixture
async def client(front: FrontRouter) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(front), base_url="http://127.0.0.1:8000"
    ) as client:
        yield client


async def get(client: httpx.AsyncClient, host: str, path: str) -> httpx.Response:
    return await client.get(path, headers={"Host": host})


async def test_a_site_host_serves_the_page_and_its_api_on_one_origin(
    client: httpx.AsyncClient,
) -> None:
    page = await get(client, "test.demo.localhost", "/")
    assert page.text == "<p>home</p>"
    config = await get(client, "test.demo.localhost", "/config.json")
    assert config.json()["apiBaseurl"] == "/api/"
    api = await get(client, "test.demo.localhost", "/api/data")
    assert api.json() == {"path": "/data", "stage": "test", "full": "/api/data"}
    assert (
        await get(client, "test.demo.localhost", "/api")
    ).status_code == 403  # API root: no route
    assert (
        await get(client, "test.demo.localhost", "/apiary")
    ).status_code == 404  # the site's 404
    assert (await get(client, "test.demo.localhost", "/docs")).headers["location"] == "/docs/"


async def test_host_matching_ignores_case_and_port(client: httpx.AsyncClient) -> None:
    page = await get(client, "Test.Demo.LOCALHOST:8080", "/")
    assert page.text == "<p>home</p>"


async def test_an_api_only_host_serves_the_stage_at_the_root(client: httpx.AsyncClient) -> None:
    response = await get(client, "api.demo.localhost", "/data")
    assert response.json() == {"path": "/data", "stage": "prod", "full": "/data"}


async def test_a_site_only_host_has_no_api(client: httpx.AsyncClient) -> None:
    assert (await get(client, "www.demo.localhost", "/docs/")).text == "<p>docs</p>"
    assert (await get(client, "www.demo.localhost", "/api/data")).status_code == 404


async def test_path_style_addresses_any_stage(client: httpx.AsyncClient) -> None:
    response = await get(client, "127.0.0.1", "/apis/demo/test/data?x=1")
    assert response.json() == {"path": "/data", "stage": "test", "full": "/apis/demo/test/data"}
    prod = await get(client, "localhost", "/apis/demo/prod/data")
    assert prod.json()["stage"] == "prod"
    for path in (
        "/apis",
        "/apis/demo",
        "/apis/demo/",
        "/apis/demo/nope/data",
        "/apis/nope/test/data",
    ):
        response = await get(client, "127.0.0.1", path)
        assert (response.status_code, response.json()) == (404, {"message": "Not Found"}), path


async def test_unknown_hosts_and_paths_fall_through(
    client: httpx.AsyncClient, front: FrontRouter
) -> None:
    for host, path in (
        ("unknown.localhost", "/"),
        ("127.0.0.1", "/api/ListPipelines"),
        ("127.0.0.1", "/apisx"),
    ):
        response = await get(client, host, path)
        assert response.headers["x-app"] == "server", (host, path)
    front.fallback = None
    response = await get(client, "unknown.localhost", "/")
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


async def test_the_table_changes_at_runtime(client: httpx.AsyncClient, front: FrontRouter) -> None:
    front.add_route(HostRoute("new.demo.localhost", api="demo", stage="test"))
    assert (await get(client, "new.demo.localhost", "/data")).json()["stage"] == "test"
    front.remove_route("new.demo.localhost")
    assert (await get(client, "new.demo.localhost", "/data")).headers["x-app"] == "server"
    front.set_routes([HostRoute("only.localhost", site="demo-test")])
    assert [r.host for r in front.routes()] == ["only.localhost"]
    assert (await get(client, "test.demo.localhost", "/")).headers["x-app"] == "server"


async def test_a_custom_api_prefix(front: FrontRouter) -> None:
    front.add_route(
        HostRoute(
            "p.localhost", site="demo-test", api="demo", stage="test", api_prefix="/backend/v1"
        )
    )
    answer = await call_asgi(front, "GET", "/backend/v1/data", headers={"host": "p.localhost"})
    assert json.loads(answer.body)["path"] == "/data"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "a b"}, "host name"),
        ({"host": "x.localhost", "api": "demo"}, "api and stage go together"),
        ({"host": "x.localhost"}, "needs a site, an API stage, or both"),
        ({"host": "x.localhost", "site": "s", "api_prefix": "api/"}, "api_prefix"),
    ],
)
def test_host_routes_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        HostRoute(**kwargs)


def test_a_host_cannot_be_routed_twice(front: FrontRouter) -> None:
    with pytest.raises(InvalidInputError, match="routed twice"):
        front.set_routes([HostRoute("a.localhost", site="s"), HostRoute("A.localhost", site="t")])


async def test_lifespan_without_a_fallback_is_acknowledged(front: FrontRouter) -> None:
    front.fallback = None
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await front({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
