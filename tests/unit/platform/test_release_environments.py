"""The platform's app environments: up/down/status, what survives a restart (apps, stages,
running releases), the errors the CLI shows, and host routing with proxy-style requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.responses import PlainTextResponse

from caravan.artifacts.zipfiles import zip_files
from caravan.errors import CaravanError, ConflictError, NotFoundError
from caravan.model.manifest import AppManifest, load_manifest
from caravan.platform.local import LocalPlatform
from caravan.platform.releases import ReleaseState

PIPELINE = """
pipeline:
  stages:
    - name: Source
      actions:
        - name: Source
          actionTypeId: {category: Source, owner: Custom, provider: Git, version: "1"}
          configuration: {Repository: ".", Branch: main}
          outputArtifacts: [{name: Code}]
    - name: Build
      actions:
        - name: Build
          actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: "1"}
          inputArtifacts: [{name: Code}]
"""

MANIFEST = (
    """
app: shop
functions:
  api: {handler: main.handler, artifact: Code}
api: {definition: openapi.yaml, artifact: Code}
site: {artifact: Code}
environments:
  test: {}
  prod:
    release: {strategy: Canary, percent: 10, interval: 30}
"""
    + PIPELINE
)

OPENAPI = """
openapi: 3.0.1
info: {title: shop}
paths:
  /hello:
    get:
      x-amazon-apigateway-integration: {type: aws_proxy, uri: "shop-api:${stageVariables.alias}"}
"""


def manifest(text: str = MANIFEST) -> AppManifest:
    return load_manifest(text)


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[LocalPlatform]:
    platform = await LocalPlatform.open(tmp_path / "platform", public_url="http://127.0.0.1:7000")
    yield platform
    await platform.aclose()


async def test_up_creates_environments_once_and_reports_later_changes(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    assert await platform.up(manifest(), repo_dir=tmp_path) == [
        "created environment test (test.shop.localhost)",
        "created environment prod (prod.shop.localhost)",
    ]
    assert await platform.up(manifest(), repo_dir=tmp_path) == []
    changed = MANIFEST.replace("percent: 10", "percent: 25").replace("  test: {}\n", "")
    assert await platform.up(manifest(changed), repo_dir=tmp_path) == [
        "updated environment prod (release)",
        "removed environment test (its data is kept)",
    ]
    assert platform.apps() == ["shop"]
    assert platform.app_for_pipeline("shop") == (manifest(changed), tmp_path.resolve())
    assert platform.app_for_pipeline("other") is None


async def test_status_names_environments_urls_aliases_site_and_release(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    await platform.up(manifest(), repo_dir=tmp_path)
    platform.public_url = "http://127.0.0.1:7878"  # the server learnt its port
    test = platform.app_status("shop")["environments"][0]
    assert test == {
        "name": "test",
        "urls": ["http://test.shop.localhost:7878"],
        "aliases": [{"function": "shop-api", "alias": "test", "versions": []}],
        "site": None,
        "release": {"state": "idle", "detail": "nothing released yet", "releases": []},
    }
    assert platform.environment_url("shop", "prod") == "http://prod.shop.localhost:7878"


async def test_a_host_of_another_app_is_refused(platform: LocalPlatform, tmp_path: Path) -> None:
    await platform.up(manifest(), repo_dir=tmp_path)
    other = MANIFEST.replace("app: shop", "app: mall").replace(
        "  test: {}", "  test: {hosts: [test.shop.localhost]}"
    )
    with pytest.raises(
        ConflictError, match=r"host test\.shop\.localhost is already a host of app 'shop'"
    ):
        await platform.up(manifest(other), repo_dir=tmp_path)


async def test_unknown_apps_and_environments_are_not_found(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    await platform.up(manifest(), repo_dir=tmp_path)
    with pytest.raises(NotFoundError, match=r"no app named 'mall' \(apps: shop\)"):
        platform.app_status("mall")
    with pytest.raises(
        NotFoundError, match=r"app 'shop' has no environment 'qa' \(environments: test, prod\)"
    ):
        await platform.rollback("shop", "qa")
    with pytest.raises(
        ConflictError, match="shop/prod has no release yet: nothing to roll back to"
    ):
        await platform.rollback("shop", "prod")
    with pytest.raises(ConflictError, match="no release is in progress in shop/prod"):
        await platform.promote("shop", "prod")
    with pytest.raises(ConflictError, match="no release is in progress in shop/test"):
        await platform.abort("shop", "test")


async def test_a_restart_restores_apps_stages_and_routes(tmp_path: Path) -> None:
    root = tmp_path / "platform"
    first = await LocalPlatform.open(root)
    await first.up(manifest(), repo_dir=tmp_path)
    first.deploy_api("shop", "test", OPENAPI, source="openapi.yaml")
    await first.publish_site("shop", "test", _site(tmp_path), config={"version": "v1"}, label="v1")
    await first.aclose()

    again = await LocalPlatform.open(root)
    try:
        assert again.apps() == ["shop"]
        assert again.gateway.stage("shop", "test").variables == {"alias": "test"}
        async with _client(again) as client:
            page = await client.get("/", headers={"Host": "test.shop.localhost"})
            assert page.text == "<h1>shop</h1>"
    finally:
        await again.aclose()


async def test_proxy_style_requests_reach_the_environment(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    await platform.up(manifest(), repo_dir=tmp_path)
    await platform.publish_site(
        "shop", "test", _site(tmp_path), config={"version": "v1"}, label="v1"
    )
    # What an HTTP client sends to a proxy (http_proxy): the absolute URL as the target.
    answer = await _raw_get(
        platform, "http://test.shop.localhost:7000/config.json", "test.shop.localhost:7000"
    )
    assert answer == (200, b'{\n  "version": "v1"\n}\n')
    async with _client(platform) as client:
        assert (
            await client.get("/", headers={"Host": "test.shop.localhost:7000"})
        ).status_code == 200
        other = await client.get("/", headers={"Host": "elsewhere.localhost"})
        assert (other.status_code, other.text) == (418, "fallback")


async def test_down_keeps_data_and_purge_removes_it(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    await platform.up(manifest(), repo_dir=tmp_path)
    await platform.publish_site(
        "shop", "prod", _site(tmp_path), config={"version": "v1"}, label="v1"
    )
    data = platform.data_dir("shop")
    (data / "votes.json").write_text("{}")

    assert await platform.down("shop") == [
        "removed environment test (test.shop.localhost)",
        "removed environment prod (prod.shop.localhost)",
    ]
    assert platform.apps() == []
    assert (data / "votes.json").is_file()
    assert await platform.down("shop") == []  # already down
    changes = await platform.down("shop", purge=True)
    assert changes == [
        "deleted site shop-prod",
        "deleted the release history of prod",
        f"deleted the data directory {data}",
    ]
    assert not data.exists()
    with pytest.raises(NotFoundError, match="no app named 'shop'"):
        await platform.down("shop")


async def test_a_release_running_at_shutdown_resumes_after_the_restart(tmp_path: Path) -> None:
    root = tmp_path / "platform"
    first = await LocalPlatform.open(root)
    await first.up(manifest(), repo_dir=tmp_path)
    settings = first.function_configuration("shop", "api")
    first.functions.create_function("shop-api", code=_code("one"), publish=True, **settings)
    first.functions.create_alias("shop-api", "prod", "1")
    first.functions.update_function_code("shop-api", _code("two"), publish=True)
    shifted = asyncio.Event()
    log = lambda line: shifted.set() if "takes 10% of the traffic" in line else None  # noqa: E731
    waiting = asyncio.create_task(
        first.release("shop", "prod", "api", "2", execution_id="e2", log=log)
    )
    await asyncio.wait_for(shifted.wait(), 10)
    await first.aclose()  # caravan stops in the middle of the canary
    with pytest.raises(CaravanError, match="the release resumes when caravan restarts"):
        await waiting
    assert first.functions.alias("shop-api", "prod").weights == {"2": 0.1}

    again = await LocalPlatform.open(root)
    try:
        prod = again.app_status("shop")["environments"][1]
        assert prod["release"]["state"] == "shifting"
        assert prod["aliases"][0]["versions"] == [
            {"version": "1", "weight": 0.9},
            {"version": "2", "weight": 0.1},
        ]
        outcome = await again.promote("shop", "prod")
        assert outcome["releases"][0]["state"] == ReleaseState.PROMOTED
        assert again.functions.alias("shop-api", "prod").function_version == "2"
        rolled = await again.rollback("shop", "prod", to_version="1")
        assert rolled["functions"] == [
            {"function": "shop-api", "alias": "prod", "from": "2", "to": "1"}
        ]
    finally:
        await again.aclose()


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("<h1>shop</h1>")
    return site


def _code(mark: str) -> bytes:
    return zip_files({"main.py": f"def handler(e, c):\n    return {mark!r}\n".encode()})


@contextlib.asynccontextmanager
async def _client(platform: LocalPlatform) -> AsyncIterator[httpx.AsyncClient]:
    front = platform.front(PlainTextResponse("fallback", status_code=418))
    transport = httpx.ASGITransport(app=front)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:7000") as client:
        yield client


async def _raw_get(platform: LocalPlatform, target: str, host: str) -> tuple[int, bytes]:
    """One ASGI request whose path is an absolute URL, as uvicorn passes a proxy request."""
    front = platform.front(PlainTextResponse("fallback", status_code=418))
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": target,
        "raw_path": target.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
        "scheme": "http",
        "http_version": "1.1",
        "server": ("127.0.0.1", 7000),
        "client": ("127.0.0.1", 50000),
    }
    await front(scope, receive, send)
    status = int(sent[0]["status"])  # type: ignore[call-overload]
    body = b"".join(m.get("body", b"") for m in sent[1:])  # type: ignore[misc]
    return status, body
