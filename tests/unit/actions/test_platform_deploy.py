"""The app pipeline's deploy and test actions on a real local platform: real zips in a real
artifact store, the platform served by uvicorn on 127.0.0.1, requests by Host header."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import threading
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from job_helpers import Harness, make_job
from starlette.responses import PlainTextResponse

from caravan.actions.base import ActionTypeKey, Job, JobArtifact, JobFailed, JobResult, JobSucceeded
from caravan.actions.platform_deploy import PROVIDERS
from caravan.model.manifest import load_manifest
from caravan.model.statuses import FailureType
from caravan.platform.functions import code_sha256
from caravan.platform.local import LocalPlatform

T = TypeVar("T")
COMMIT_1, COMMIT_2 = "1" * 40, "2" * 40

MANIFEST = """
app: shop
functions:
  api:
    handler: app.handler
    timeout: 5
    environment: {GREETING: hello, DATA_DIR: "${dataDir}"}
    artifact: FunctionZip
api: {definition: openapi.yaml, artifact: ApiDefinition}
site: {artifact: SiteZip}
environments:
  test:
    stageVariables: {table: test}
  prod:
    stageVariables: {table: prod}
    release: {strategy: Canary, percent: 50, interval: 1}
pipeline:
  stages:
    - name: Source
      actions:
        - name: Source
          actionTypeId: {category: Source, owner: Custom, provider: Git, version: "1"}
          configuration: {Repository: ".", Branch: main}
          outputArtifacts: [{name: SourceOutput}]
    - name: Build
      actions:
        - name: Build
          actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: "1"}
          inputArtifacts: [{name: SourceOutput}]
          outputArtifacts: [{name: FunctionZip}, {name: SiteZip}, {name: ApiDefinition}]
"""

HANDLER = """
import json
import os


def handler(event, context):
    body = {
        "mark": %r,
        "version": context.function_version,
        "table": event["stageVariables"]["table"],
        "greeting": os.environ["GREETING"],
        "data": os.environ["CARAVAN_APP_DATA"] == os.environ["DATA_DIR"],
    }
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body)}
"""

URI = (
    "arn:aws:apigateway:local:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:local:000000000000:function:shop-api:${stageVariables.alias}/invocations"
)
OPENAPI = """
openapi: 3.0.1
info: {title: shop}
paths:
  /hello:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        payloadFormatVersion: "1.0"
        uri: URI
""".replace("URI", URI)


class Live:
    """The platform and its front on uvicorn, in a thread with its own event loop."""

    def __init__(self, platform: LocalPlatform, loop: asyncio.AbstractEventLoop, url: str) -> None:
        self.platform, self.loop, self.url = platform, loop, url

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def get(self, host: str, path: str) -> httpx.Response:
        return httpx.get(self.url + path, headers={"Host": host, "Connection": "close"}, timeout=30)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ready: dict[str, Any] = {}
    started = threading.Event()

    async def serve() -> None:
        platform = await LocalPlatform.open(tmp_path / "platform", public_url=url)
        fallback = PlainTextResponse("the server's other routes", status_code=418)
        server = uvicorn.Server(
            uvicorn.Config(platform.front(fallback), log_config=None, lifespan="off")
        )
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
        threading.Event().wait(0.01)
    live = Live(ready["platform"], ready["loop"], url)
    live.run(live.platform.up(load_manifest(MANIFEST), repo_dir=tmp_path))
    yield live
    ready["server"].should_exit = True
    thread.join(10)
    sock.close()
    assert not thread.is_alive()


def job(
    harness: Harness,
    provider: str,
    configuration: Mapping[str, str],
    inputs: list[JobArtifact],
    *,
    category: str = "Deploy",
    execution: str = "exec-1",
    pipeline: str = "shop",
) -> Job:
    base = make_job(category, provider, configuration=configuration, inputs=inputs)
    return dataclasses.replace(
        base,
        action_type=ActionTypeKey(category, "Custom", provider, "1"),
        pipeline_name=pipeline,
        pipeline_execution_id=execution,
    )


def run(live: Live, harness: Harness, the_job: Job) -> JobResult:
    harness.ctx.settings = {"platform": live.platform}
    provider = PROVIDERS[tuple(the_job.action_type.to_dict().values())]  # type: ignore[index]
    return live.run(provider(the_job, harness.ctx))


def harness(tmp_path: Path, name: str) -> Harness:
    (tmp_path / name).mkdir()
    return Harness(tmp_path / name)


def artifacts(h: Harness, mark: str, commit: str) -> dict[str, JobArtifact]:
    function = h.input("FunctionZip", {"app.py": (HANDLER % mark).encode()})
    api = h.input("ApiDefinition", {"openapi.yaml": OPENAPI.encode()})
    site = h.input("SiteZip", {"index.html": b"<h1>shop</h1>", "js/app.js": b"poll()"})
    return {
        "function": function,
        "api": api,
        "site": dataclasses.replace(site, revision=commit),
    }


def deploy_all(
    live: Live, h: Harness, found: dict[str, JobArtifact], env: str, execution: str
) -> list[JobResult]:
    return [
        run(
            live,
            h,
            job(
                h,
                "CaravanFunction",
                {"Function": "api", "Environment": env},
                [found["function"]],
                execution=execution,
            ),
        ),
        run(
            live, h, job(h, "CaravanApi", {"Environment": env}, [found["api"]], execution=execution)
        ),
        run(
            live,
            h,
            job(h, "CaravanSite", {"Environment": env}, [found["site"]], execution=execution),
        ),
    ]


def test_deploy_to_test_then_promote_the_same_version_to_prod(live: Live, tmp_path: Path) -> None:
    h = harness(tmp_path, "one")
    found = artifacts(h, "one", COMMIT_1)

    in_test = deploy_all(live, h, found, "test", "exec-1")
    assert all(isinstance(r, JobSucceeded) for r in in_test), in_test
    function = in_test[0]
    assert isinstance(function, JobSucceeded)
    zipped = h.store.get_bytes(found["function"].bucket, found["function"].key)
    assert function.output_variables == {
        "FunctionName": "shop-api",
        "FunctionVersion": "1",
        "CodeSha256": code_sha256(zipped),
        "Alias": "test",
    }

    hello = live.get("test.shop.localhost", "/api/hello")
    assert hello.status_code == 200
    assert hello.json() == {
        "mark": "one",
        "version": "1",
        "table": "test",
        "greeting": "hello",
        "data": True,
    }
    config = live.get("test.shop.localhost", "/config.json").json()
    assert config == {
        "apiBaseurl": f"http://test.shop.localhost:{live.url.rsplit(':', 1)[1]}/api/",
        "version": COMMIT_1,
        "executionId": "exec-1",
    }
    assert live.get("test.shop.localhost", "/").text == "<h1>shop</h1>"

    in_prod = deploy_all(live, h, found, "prod", "exec-1")
    assert all(isinstance(r, JobSucceeded) for r in in_prod), in_prod
    promoted = in_prod[0]
    assert isinstance(promoted, JobSucceeded)
    assert promoted.output_variables["FunctionVersion"] == "1"  # the very version tested
    assert promoted.output_variables["CodeSha256"] == function.output_variables["CodeSha256"]
    assert [
        v["Version"] for v in live.platform.functions.list_versions_by_function("shop-api")
    ] == [
        "$LATEST",
        "1",
    ]  # promotion published nothing
    assert any("version 1 has exactly this code" in line for line in h.log)
    assert live.get("prod.shop.localhost", "/api/hello").json()["table"] == "prod"
    assert live.get("other.localhost", "/").status_code == 418  # the server's other routes


def test_a_new_commit_moves_both_environments_and_rollback_restores_prod(
    live: Live, tmp_path: Path
) -> None:
    first, second = harness(tmp_path, "one"), harness(tmp_path, "two")
    for h, mark, commit, execution in (
        (first, "one", COMMIT_1, "e1"),
        (second, "two", COMMIT_2, "e2"),
    ):
        found = artifacts(h, mark, commit)
        for env in ("test", "prod"):
            results = deploy_all(live, h, found, env, execution)
            assert all(isinstance(r, JobSucceeded) for r in results), results

    assert live.get("prod.shop.localhost", "/api/hello").json()["mark"] == "two"
    assert any("Canary: 50% for 1 s, then 100%" in line for line in second.log)
    status = live.platform.app_status("shop")
    prod = status["environments"][1]
    assert prod["aliases"] == [
        {"function": "shop-api", "alias": "prod", "versions": [{"version": "2", "weight": 1.0}]}
    ]
    assert prod["site"]["label"] == COMMIT_2
    assert prod["release"]["state"] == "promoted"

    moved = live.run(live.platform.rollback("shop", "prod"))

    assert moved["functions"] == [{"function": "shop-api", "alias": "prod", "from": "2", "to": "1"}]
    assert live.get("prod.shop.localhost", "/api/hello").json()["mark"] == "one"
    assert live.get("prod.shop.localhost", "/config.json").json()["version"] == COMMIT_1
    assert live.get("test.shop.localhost", "/api/hello").json()["mark"] == "two"  # untouched


def test_the_test_action_reaches_the_environment_by_its_host_name(
    live: Live, tmp_path: Path
) -> None:
    h = harness(tmp_path, "one")
    deploy_all(live, h, artifacts(h, "one", COMMIT_1), "test", "exec-1")
    check = (
        'python3 -c "import json, os, urllib.request; '
        "c = json.load(urllib.request.urlopen(os.environ['TARGET_URL'] + '/config.json')); "
        "h = json.load(urllib.request.urlopen(c['apiBaseurl'] + 'hello')); "
        "print('version', c['version'], h['table'], os.environ.get('E2E_MODE'))\""
    )
    source = h.input("SourceOutput", {"README": b"shop"})
    passing = job(
        h,
        "CaravanTest",
        {"Environment": "test", "Commands": json.dumps([check]), "E2E_MODE": "smoke"},
        [source],
        category="Test",
    )
    result = run(live, h, passing)
    assert isinstance(result, JobSucceeded), result
    assert f"version {COMMIT_1} test smoke" in h.log

    failing = job(
        h,
        "CaravanTest",
        {"Environment": "test", "Commands": '["exit 3"]'},
        [source],
        category="Test",
    )
    failed = run(live, h, failing)
    assert isinstance(failed, JobFailed)
    assert "exit status 3" in failed.message


def test_a_buildspec_test_runs_from_the_source(live: Live, tmp_path: Path) -> None:
    h = harness(tmp_path, "one")
    spec = b"version: 0.2\nphases:\n  build:\n    commands:\n      - echo target $TARGET_URL\n"
    source = h.input("SourceOutput", {"ci/e2e.yml": spec})
    result = run(
        live,
        h,
        job(
            h,
            "CaravanTest",
            {"Environment": "prod", "BuildSpec": "ci/e2e.yml"},
            [source],
            category="Test",
        ),
    )
    assert isinstance(result, JobSucceeded), result
    assert any(line.startswith("target http://prod.shop.localhost:") for line in h.log)


@pytest.mark.parametrize(
    ("provider", "configuration", "pipeline", "message"),
    [
        (
            "CaravanFunction",
            {"Function": "api", "Environment": "test"},
            "unknown",
            "pipeline 'unknown' is not the pipeline of any app on this platform (apps: shop) "
            "(run caravan up in the app's repository)",
        ),
        (
            "CaravanApi",
            {"Environment": "staging"},
            "shop",
            "configuration.Environment: app 'shop' has no environment 'staging' "
            "(environments: test, prod)",
        ),
        (
            "CaravanFunction",
            {"Function": "web", "Environment": "test"},
            "shop",
            "configuration.Function: app 'shop' has no function 'web' (functions: api)",
        ),
        (
            "CaravanSite",
            {},
            "shop",
            "configuration.Environment is required (one of: test, prod)",
        ),
        (
            "CaravanTest",
            {"Environment": "test"},
            "shop",
            "configuration: CaravanTest needs exactly one of Commands and BuildSpec",
        ),
    ],
)
def test_misconfiguration_is_a_configuration_error_naming_the_problem(
    live: Live,
    tmp_path: Path,
    provider: str,
    configuration: dict[str, str],
    pipeline: str,
    message: str,
) -> None:
    h = harness(tmp_path, "one")
    source = h.input("FunctionZip", {"app.py": b"x = 1"})
    category = "Test" if provider == "CaravanTest" else "Deploy"
    result = run(
        live, h, job(h, provider, configuration, [source], category=category, pipeline=pipeline)
    )
    assert result == JobFailed(message, type=FailureType.CONFIGURATION_ERROR)


def test_a_missing_definition_file_names_what_the_artifact_holds(
    live: Live, tmp_path: Path
) -> None:
    h = harness(tmp_path, "one")
    wrong = h.input("ApiDefinition", {"swagger.json": b"{}", "docs/readme.md": b"x"})
    result = run(live, h, job(h, "CaravanApi", {"Environment": "test"}, [wrong]))
    assert result == JobFailed(
        "input artifact ApiDefinition has no openapi.yaml (the manifest's api.definition); "
        "it holds: docs/readme.md, swagger.json",
        type=FailureType.CONFIGURATION_ERROR,
    )


def test_a_bad_definition_is_a_configuration_error_with_its_issues(
    live: Live, tmp_path: Path
) -> None:
    h = harness(tmp_path, "one")
    bad = h.input("ApiDefinition", {"openapi.yaml": b"openapi: 3.0.1\npaths: 7\n"})
    result = run(live, h, job(h, "CaravanApi", {"Environment": "test"}, [bad]))
    assert isinstance(result, JobFailed)
    assert result.type == FailureType.CONFIGURATION_ERROR
    assert result.message.startswith("API definition in ApiDefinition/openapi.yaml has")


def test_without_a_platform_the_deploy_says_so(tmp_path: Path) -> None:
    h = harness(tmp_path, "one")
    source = h.input("FunctionZip", {"app.py": b"x = 1"})
    the_job = job(h, "CaravanFunction", {"Function": "api", "Environment": "test"}, [source])
    result = asyncio.run(PROVIDERS[("Deploy", "Custom", "CaravanFunction", "1")](the_job, h.ctx))
    assert isinstance(result, JobFailed)
    assert result.type == FailureType.CONFIGURATION_ERROR
    assert result.message.startswith("CaravanFunction deploys to the local platform")
