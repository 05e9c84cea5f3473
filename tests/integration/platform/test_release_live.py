"""Releases under live traffic: a real local platform behind uvicorn on 127.0.0.1, real function
workers, and a client sending requests the whole time (Host: prod.app.localhost). A canary of a
broken version is rolled back automatically, a good one goes to 100%, and a rollback moves the
environment back without failing a single request."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from starlette.responses import PlainTextResponse

from caravan.artifacts.zipfiles import zip_files
from caravan.model.manifest import load_manifest
from caravan.platform.local import LocalPlatform
from caravan.platform.releases import Release, ReleaseState

T = TypeVar("T")
HOST = "prod.app.localhost"

MANIFEST = """
app: app
functions:
  api: {handler: main.handler, artifact: Code}
api: {definition: openapi.yaml, artifact: Code}
environments:
  prod:
    release:
      strategy: Canary
      percent: 50
      interval: 1
      healthCheck: {maxErrorRate: 0.1, minRequests: 5, noTraffic: pass}
  bg:
    release:
      strategy: BlueGreen
      hooks: {preTraffic: python3 check.py, postTraffic: python3 check.py}
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

OPENAPI = """
openapi: 3.0.1
info: {title: app}
paths:
  /hello:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        uri: app-api:${stageVariables.alias}
"""

# The hook: run in the app's repository, it asks TARGET_URL which version answers.
CHECK = """
import os, sys, urllib.request
url = os.environ["TARGET_URL"] + "/hello"
served = urllib.request.urlopen(url).headers["x-amz-executed-version"]
print("checked", url, "answered by version", served)
sys.exit(0 if served == os.environ["RELEASE_VERSION"] else 1)
"""

HANDLER = """
def handler(event, context):
    return {"statusCode": %d, "body": %r}
"""


def code(status: int, body: str) -> bytes:
    return zip_files({"main.py": (HANDLER % (status, body)).encode()})


@dataclass(frozen=True)
class Answer:
    sent: float  # time.monotonic() when the request left
    status: int | None  # None: no HTTP answer at all
    version: str | None


class Client:
    """Sends GET /hello to prod in a loop from a thread, recording every answer."""

    def __init__(self, url: str, host: str = HOST) -> None:
        self.url, self.host = url, host
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.answers) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def _loop(self) -> None:
        # A connection per request: reused connections stall ~40 ms per request between
        # httpx's sync client and uvicorn here, which would starve the canary of traffic.
        headers = {"Host": self.host, "Connection": "close"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as http:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = http.get("/hello")  # an app without a site: its API at the root
                except httpx.HTTPError:
                    self.answers.append(Answer(sent, None, None))
                    continue
                version = response.headers.get("x-amz-executed-version")
                self.answers.append(Answer(sent, response.status_code, version))
                time.sleep(0.002)


class Live:
    def __init__(self, platform: LocalPlatform, loop: asyncio.AbstractEventLoop, url: str) -> None:
        self.platform, self.loop, self.url = platform, loop, url

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def get_status(self, host: str) -> int:
        headers = {"Host": host, "Connection": "close"}
        return httpx.get(self.url + "/hello", headers=headers, timeout=10).status_code

    def publish(self, status: int, body: str) -> str:
        """A new version of app-api (the function is created with the first)."""
        functions = self.platform.functions
        if not functions.list_functions():
            settings = self.platform.function_configuration("app", "api")
            return str(
                functions.create_function(
                    "app-api", code=code(status, body), publish=True, **settings
                )["Version"]
            )
        return str(
            functions.update_function_code("app-api", code(status, body), publish=True)["Version"]
        )

    def release(
        self, version: str, execution: str, env: str = "prod", log: list[str] | None = None
    ) -> Release:
        sink = log.append if log is not None else None
        return self.run(
            self.platform.release("app", env, "api", version, execution_id=execution, log=sink)
        )

    def alias(self, env: str = "prod") -> tuple[str, dict[str, float]]:
        record = self.platform.functions.alias("app-api", env)
        return record.function_version, dict(record.weights)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ready: dict[str, Any] = {}
    started = threading.Event()

    async def serve() -> None:
        platform = await LocalPlatform.open(tmp_path / "platform", public_url=url)
        front = platform.front(PlainTextResponse("not an app", status_code=404))
        server = uvicorn.Server(uvicorn.Config(front, log_config=None, lifespan="off"))
        ready.update(platform=platform, server=server, loop=asyncio.get_running_loop())
        started.set()
        try:
            await server.serve(sockets=[sock])
        finally:
            await platform.aclose()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    while not ready["server"].started:
        time.sleep(0.01)
    live = Live(ready["platform"], ready["loop"], url)
    (tmp_path / "check.py").write_text(CHECK)
    live.run(live.platform.up(load_manifest(MANIFEST), repo_dir=tmp_path))
    live.platform.deploy_api("app", "prod", OPENAPI, source="openapi.yaml")
    first = live.release(live.publish(200, "one"), "e1")  # first deploy: all traffic at once
    assert first.state == ReleaseState.PROMOTED
    yield live
    ready["server"].should_exit = True
    thread.join(10)
    sock.close()
    assert not thread.is_alive()


def test_a_failing_canary_rolls_back_and_a_good_one_goes_to_everyone(live: Live) -> None:
    bad = live.publish(500, "broken")
    with Client(live.url) as client:
        client.wait_for(20)
        began = time.monotonic()
        outcome = live.release(bad, "e2")
        ended = time.monotonic()
        after = len(client.answers)
        client.wait_for(after + 50)

    assert outcome.state == ReleaseState.ROLLED_BACK, outcome.detail
    assert outcome.detail.startswith(f"rolled back: version {bad} error rate 1.00 > 0.1 over ")
    assert ended - began < 3  # judged within the one-second interval, not after a timeout
    assert live.alias() == ("1", {})
    answers = client.answers
    assert all(a.status is not None for a in answers)  # every request was answered
    failed = [a for a in answers if a.status != 200]
    assert failed, "the canary received no traffic"
    assert all(a.version == bad and began <= a.sent <= ended for a in failed)
    later = [a for a in answers if a.sent > ended]
    assert later and all(a.status == 200 and a.version == "1" for a in later)

    good = live.publish(200, "three")
    with Client(live.url) as client:
        client.wait_for(20)
        promoted = live.release(good, "e3")
        done = time.monotonic()
        after = len(client.answers)
        client.wait_for(after + 30)

    assert promoted.state == ReleaseState.PROMOTED, promoted.detail
    assert live.alias() == (good, {})
    assert all(a.status == 200 for a in client.answers)
    served = {a.version for a in client.answers if a.sent < done}
    assert served == {"1", good}  # split while the canary ran
    assert {a.version for a in client.answers if a.sent > done} == {good}
    stats = live.platform.metrics.stats("app-api", good)
    assert stats.requests > 0 and stats.errors_5xx == 0


def test_rollback_moves_back_in_one_step_without_failing_a_request(live: Live) -> None:
    second = live.publish(200, "two")
    assert live.release(second, "e2").state == ReleaseState.PROMOTED
    with Client(live.url) as client:
        client.wait_for(30)
        moved = live.run(live.platform.rollback("app", "prod"))
        done = time.monotonic()
        after = len(client.answers)
        client.wait_for(after + 30)

    assert moved["functions"] == [{"function": "app-api", "alias": "prod", "from": "2", "to": "1"}]
    assert live.alias() == ("1", {})
    assert all(a.status == 200 for a in client.answers)  # none failed during the move
    assert {a.version for a in client.answers if a.sent > done} == {"1"}
    status = live.platform.app_status("app")["environments"][0]
    assert status["aliases"][0]["versions"] == [{"version": "1", "weight": 1.0}]


def test_blue_green_checks_the_new_version_alone_before_it_takes_traffic(live: Live) -> None:
    live.platform.deploy_api("app", "bg", OPENAPI, source="openapi.yaml")
    log: list[str] = []
    assert live.release("1", "e1", env="bg", log=log).state == ReleaseState.PROMOTED
    port = live.url.rsplit(":", 1)[1]
    assert f"  checked http://green.bg.app.localhost:{port}/hello answered by version 1" in log
    assert f"  checked http://bg.app.localhost:{port}/hello answered by version 1" in log

    bad = live.publish(500, "broken")
    with Client(live.url, host="bg.app.localhost") as client:
        client.wait_for(10)
        outcome = live.release(bad, "e2", env="bg")
        after = len(client.answers)
        client.wait_for(after + 10)

    assert outcome.state == ReleaseState.ROLLED_BACK
    assert outcome.detail.startswith("rolled back: preTraffic hook `python3 check.py` failed")
    assert live.alias("bg") == ("1", {})  # blue never stopped serving
    assert all(a.status == 200 and a.version == "1" for a in client.answers)
    assert live.get_status("green.bg.app.localhost") == 404  # the green host is gone

    good = live.publish(200, "three")
    assert live.release(good, "e3", env="bg").state == ReleaseState.PROMOTED
    assert live.alias("bg") == (good, {})
