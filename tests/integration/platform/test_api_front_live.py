"""The API front for real: uvicorn on 127.0.0.1, the real functions runtime running a handler
zip in worker processes, a published site, and Host-header addressing — page and API on one
origin, the stage's alias choosing the version, the executed version in the metrics."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from caravan.artifacts.zipfiles import zip_files
from caravan.platform.api import FrontRouter, Gateway, HostRoute, RollingMetrics, load_definition
from caravan.platform.functions import FunctionRegistry, Invoker
from caravan.platform.sites import SiteStore, site_config

HANDLER = b"""
import json
import time

MARK = "%(mark)s"


def handler(event, context):
    if event["path"] == "/boom":
        raise RuntimeError("boom")
    if event["path"] == "/slow":
        time.sleep(2)
    body = {
        "mark": MARK,
        "version": context.function_version,
        "path": event["path"],
        "stage": event["requestContext"]["stage"],
        "alias": event["stageVariables"]["alias"],
        "colors": event["multiValueQueryStringParameters"],
    }
    headers = {"Content-Type": "application/json"}
    return {"statusCode": 200, "headers": headers, "body": json.dumps(body)}
"""

URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-1:000000000000:function:demo:${stageVariables.alias}/invocations"
)
OPENAPI = f"""
openapi: 3.0.1
info: {{title: demo}}
paths:
  /data:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        payloadFormatVersion: "1.0"
        uri: {URI}
  /slow:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        uri: demo:${{stageVariables.alias}}
        timeoutInMillis: 200
  /boom:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        uri: demo:${{stageVariables.alias}}
"""


@dataclass
class Live:
    url: str
    registry: FunctionRegistry
    metrics: RollingMetrics
    store: SiteStore


def code(mark: str) -> bytes:
    return zip_files({"app.py": HANDLER % {b"mark": mark.encode()}})


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    registry = FunctionRegistry(tmp_path / "platform")
    registry.create_function("demo", handler="app.handler", code=code("one"), publish=True)
    registry.update_function_code("demo", code("two"), publish=True)
    registry.create_alias("demo", "test", "2")
    registry.create_alias("demo", "prod", "1")
    invoker = Invoker(registry)
    metrics = RollingMetrics(window_s=60)
    gateway = Gateway(invoker, recorder=metrics)
    definition = load_definition(OPENAPI)
    gateway.deploy("demo", "test", definition, {"alias": "test"})
    gateway.deploy("demo", "prod", definition, {"alias": "prod"})
    site = tmp_path / "public"
    (site / "js").mkdir(parents=True)
    (site / "index.html").write_text("<title>dromedary</title><script src='js/chart.js'></script>")
    (site / "js" / "chart.js").write_text("poll()")
    store = SiteStore(tmp_path / "sites")
    store.publish(
        "demo-test", site, config=site_config("/api/", "c0ffee", "exec-1"), version_label="c0ffee"
    )
    front = FrontRouter(
        gateway,
        sites=store,
        routes=[HostRoute("test.demo.localhost", site="demo-test", api="demo", stage="test")],
    )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(front, log_config=None, lifespan="off", timeout_graceful_shutdown=2)
    )

    async def serve() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            await invoker.aclose()  # on the loop the workers were started from

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        threading.Event().wait(0.01)
    yield Live(f"http://127.0.0.1:{port}", registry, metrics, store)
    server.should_exit = True
    thread.join(10)
    sock.close()
    assert not thread.is_alive()


def test_page_and_api_share_one_origin_and_the_alias_picks_the_version(live: Live) -> None:
    host = {"Host": "test.demo.localhost"}
    with httpx.Client(base_url=live.url, headers=host, timeout=30) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.text.startswith("<title>dromedary</title>")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        config = client.get("/config.json")
        assert config.json() == {
            "apiBaseurl": "/api/",
            "version": "c0ffee",
            "executionId": "exec-1",
        }
        assert config.headers["cache-control"] == "no-cache, no-store, must-revalidate"

        data = client.get("/api/data?color=red&color=blue")
        assert data.status_code == 200
        assert data.json() == {
            "mark": "two",
            "version": "2",
            "path": "/data",
            "stage": "test",
            "alias": "test",
            "colors": {"color": ["red", "blue"]},
        }
        assert data.headers["x-amz-executed-version"] == "2"

        failed = client.get("/api/boom")
        assert (failed.status_code, failed.json()) == (502, {"message": "Internal server error"})
        assert client.get("/api/missing").status_code == 403
        slow = client.get("/api/slow")  # the integration timeout passes before the function ends
        assert (slow.status_code, slow.json()) == (504, {"message": "Endpoint request timed out"})
        assert client.get("/api/data").status_code == 200  # a fresh worker answers next

        live.registry.update_alias("demo", "test", function_version="1")  # a rollback of the alias
        rolled = client.get("/api/data")
        assert rolled.json()["mark"] == "one" and rolled.headers["x-amz-executed-version"] == "1"

    with httpx.Client(base_url=live.url, timeout=30) as client:
        prod = client.get("/apis/demo/prod/data")  # path-style, on any host
        assert prod.json()["stage"] == "prod" and prod.json()["version"] == "1"
        assert client.get("/", headers={"Host": "elsewhere.localhost"}).status_code == 404

    two = live.metrics.stats("demo", "2")
    assert (two.requests, two.errors_5xx, two.error_rate) == (3, 1, 1 / 3)
    assert two.p50_ms is not None and two.p50_ms > 0
    one = live.metrics.stats("demo", "1")
    assert (one.requests, one.errors_5xx) == (2, 0)
    stage = live.metrics.stage_stats("demo", "test")
    assert (stage.requests, stage.errors_4xx, stage.errors_5xx) == (6, 1, 2)
    timed_out = live.metrics.stats("demo", None)  # the gateway gave up before a version answered
    assert (timed_out.requests, timed_out.errors_5xx) == (1, 1)
