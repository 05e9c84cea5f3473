"""boto3 and the AWS CLI against the Lambda API on a real uvicorn server on 127.0.0.1: the calls a
deploy script and the seed's pipeline make, with the answers and exception classes AWS gives."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvicorn
from botocore.config import Config

from caravan.artifacts.memory import MemoryArtifactStore
from caravan.platform.functions import FunctionRegistry, Invoker
from caravan.server.lambda_api import lambda_app

HANDLER = """
import os

def handler(event, context):
    print("handling", event.get("name"))
    if event.get("fail"):
        raise RuntimeError("asked to fail: " + event["fail"])
    return {"greeting": os.environ.get("GREETING", "hello") + ", " + event.get("name", "world"),
            "answer": ANSWER, "version": context.function_version}
"""


def make_zip(answer: int) -> bytes:
    """A deployment package built the way a user builds one (zipfile, not caravan's helpers)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", HANDLER + f"\nANSWER = {answer}\n")
    return buffer.getvalue()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass
class Live:
    url: str
    client: Any  # botocore's generated Lambda client
    store: MemoryArtifactStore


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is listening."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class _ServerThread(threading.Thread):
    """uvicorn serving the Lambda app in its own event loop; the invoker lives and dies there."""

    def __init__(self, registry: FunctionRegistry, store: MemoryArtifactStore) -> None:
        super().__init__(daemon=True)
        self.registry = registry
        self.store = store
        self.server: _Server | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the fixture
            self.error = exc
        finally:
            self.ready.set()

    async def _main(self) -> None:
        invoker = Invoker(self.registry, event_retry_delays=(0.0, 0.0))
        try:
            app = lambda_app(self.registry, invoker, artifacts=self.store)
            config = uvicorn.Config(
                app, host="127.0.0.1", port=0, log_config=None, lifespan="off", access_log=False
            )
            self.server = _Server(config, self.ready)
            await self.server.serve()
        finally:
            await invoker.aclose()  # no worker process outlives the test

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, str(tmp_path / "no-aws-config"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    thread = _ServerThread(FunctionRegistry(tmp_path / "platform"), MemoryArtifactStore())
    thread.start()
    assert thread.ready.wait(10), "server did not start"
    if thread.error is not None:
        raise thread.error
    url = f"http://127.0.0.1:{thread.port}"
    client = boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )
    yield Live(url, client, thread.store)
    client.close()
    assert thread.server is not None
    thread.server.should_exit = True
    thread.join(15)
    assert not thread.is_alive(), "server thread did not stop"
    if thread.error is not None:
        raise thread.error


def create(live: Live, name: str = "greeter", answer: int = 1, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = live.client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/lambda",
        Handler="app.handler",
        Code={"ZipFile": make_zip(answer)},
        **extra,
    )
    return response


def invoke(live: Live, event: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = live.client.invoke(
        FunctionName=kwargs.pop("FunctionName", "greeter"),
        Payload=json.dumps(event).encode(),
        **kwargs,
    )
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def test_create_function_and_invoke_it(live: Live) -> None:
    created = create(live, Environment={"Variables": {"GREETING": "hi"}}, Timeout=10)
    assert created["FunctionName"] == "greeter"
    assert created["Version"] == "$LATEST"
    assert created["CodeSha256"] == sha256_b64(make_zip(1))
    assert created["Environment"] == {"Variables": {"GREETING": "hi"}}
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201

    response, result = invoke(live, {"name": "ada"})
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert result == {"greeting": "hi, ada", "answer": 1, "version": "$LATEST"}


def test_function_error_and_log_tail(live: Live) -> None:
    create(live)
    response, result = invoke(live, {"fail": "on purpose", "name": "x"}, LogType="Tail")
    assert response["StatusCode"] == 200  # a function error is not an API error
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "RuntimeError"
    assert result["errorMessage"] == "asked to fail: on purpose"
    log = base64.b64decode(response["LogResult"]).decode()
    assert "START RequestId:" in log and "handling x" in log and "REPORT RequestId:" in log


def test_event_and_dry_run_invocations(live: Live) -> None:
    create(live)
    event, _ = invoke(live, {"name": "later"}, InvocationType="Event")
    assert event["StatusCode"] == 202
    dry, _ = invoke(live, {}, InvocationType="DryRun")
    assert dry["StatusCode"] == 204


def test_update_code_then_publish_with_the_code_sha256_guard(live: Live) -> None:
    create(live)
    updated = live.client.update_function_code(FunctionName="greeter", ZipFile=make_zip(2))
    assert updated["CodeSha256"] == sha256_b64(make_zip(2))

    with pytest.raises(live.client.exceptions.InvalidParameterValueException) as stale:
        live.client.publish_version(FunctionName="greeter", CodeSha256=sha256_b64(make_zip(1)))
    assert "CodeSHA256" in stale.value.response["Error"]["Message"]

    published = live.client.publish_version(
        FunctionName="greeter", CodeSha256=updated["CodeSha256"], Description="second build"
    )
    assert published["Version"] == "1"
    assert published["FunctionArn"].endswith(":function:greeter:1")
    assert published["ResponseMetadata"]["HTTPStatusCode"] == 201
    response, result = invoke(live, {"name": "v"}, Qualifier="1")
    assert response["ExecutedVersion"] == "1"
    assert result["answer"] == 2 and result["version"] == "1"


def test_weighted_alias_and_revision_id_compare_and_swap(live: Live) -> None:
    create(live, answer=1, Publish=True)
    live.client.update_function_code(FunctionName="greeter", ZipFile=make_zip(2), Publish=True)
    alias = live.client.create_alias(
        FunctionName="greeter",
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert alias["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}

    executed = {invoke(live, {}, Qualifier="live")[0]["ExecutedVersion"] for _ in range(24)}
    assert executed == {"1", "2"}  # both sides of a 50/50 split (chance of failing ~1e-7)

    moved = live.client.update_alias(
        FunctionName="greeter",
        Name="live",
        FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {}},
        RevisionId=alias["RevisionId"],
    )
    assert moved["FunctionVersion"] == "2"
    assert moved["RoutingConfig"] == {"AdditionalVersionWeights": {}}
    assert moved["RevisionId"] != alias["RevisionId"]
    with pytest.raises(live.client.exceptions.PreconditionFailedException):
        live.client.update_alias(
            FunctionName="greeter", Name="live", FunctionVersion="1", RevisionId=alias["RevisionId"]
        )
    assert live.client.get_alias(FunctionName="greeter", Name="live")["FunctionVersion"] == "2"
    assert invoke(live, {}, Qualifier="live")[0]["ExecutedVersion"] == "2"


def test_list_versions_by_function_with_the_paginator(live: Live) -> None:
    create(live, Publish=True)
    for n in (2, 3, 4):
        live.client.update_function_code(FunctionName="greeter", ZipFile=make_zip(n), Publish=True)
    paginator = live.client.get_paginator("list_versions_by_function")
    pages = list(paginator.paginate(FunctionName="greeter", PaginationConfig={"PageSize": 2}))
    assert [len(p["Versions"]) for p in pages] == [2, 2, 1]
    versions = [v["Version"] for p in pages for v in p["Versions"]]
    assert versions == ["$LATEST", "1", "2", "3", "4"]


def test_get_function_delete_alias_and_delete_function(live: Live) -> None:
    create(live, Publish=True)
    live.client.create_alias(FunctionName="greeter", Name="prod", FunctionVersion="1")
    got = live.client.get_function(FunctionName="greeter", Qualifier="prod")
    assert got["Configuration"]["Version"] == "1"
    assert got["Configuration"]["FunctionArn"].endswith(":function:greeter:prod")
    assert got["Code"]["RepositoryType"] == "S3"

    deleted = live.client.delete_alias(FunctionName="greeter", Name="prod")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(live.client.exceptions.ResourceNotFoundException):
        live.client.get_alias(FunctionName="greeter", Name="prod")

    live.client.delete_function(FunctionName="greeter")
    with pytest.raises(live.client.exceptions.ResourceNotFoundException) as missing:
        live.client.get_function(FunctionName="greeter")
    error = missing.value.response["Error"]
    assert error["Code"] == "ResourceNotFoundException"
    assert error["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:greeter"
    )
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(live.client.exceptions.ResourceNotFoundException):
        invoke(live, {})


def test_error_classes_boto3_raises(live: Live) -> None:
    create(live)
    with pytest.raises(live.client.exceptions.ResourceConflictException):
        create(live)
    with pytest.raises(live.client.exceptions.InvalidParameterValueException) as bad:
        live.client.update_function_configuration(FunctionName="greeter", Runtime="nodejs18.x")
    assert "'runtime'" in bad.value.response["Error"]["Message"]
    stale = live.client.get_function_configuration(FunctionName="greeter")["RevisionId"]
    live.client.update_function_configuration(FunctionName="greeter", Timeout=5)
    with pytest.raises(live.client.exceptions.PreconditionFailedException):
        live.client.update_function_configuration(
            FunctionName="greeter", Timeout=6, RevisionId=stale
        )
    with pytest.raises(live.client.exceptions.RequestTooLargeException):
        live.client.invoke(FunctionName="greeter", Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')


def test_create_function_from_an_s3_object_of_the_artifact_store(live: Live) -> None:
    live.store.put_bytes("deploy-bucket", "builds/greeter.zip", make_zip(7))
    created = live.client.create_function(
        FunctionName="from-s3",
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/lambda",
        Handler="app.handler",
        Code={"S3Bucket": "deploy-bucket", "S3Key": "builds/greeter.zip"},
    )
    assert created["CodeSha256"] == sha256_b64(make_zip(7))
    assert invoke(live, {}, FunctionName="from-s3")[1]["answer"] == 7
    with pytest.raises(live.client.exceptions.InvalidParameterValueException) as missing:
        live.client.update_function_code(
            FunctionName="from-s3", S3Bucket="deploy-bucket", S3Key="builds/nothing.zip"
        )
    assert "NoSuchKey" in missing.value.response["Error"]["Message"]


AWS = shutil.which("aws", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(AWS is None, reason="the AWS CLI is not installed in this virtualenv")
def test_aws_cli_invoke_writes_the_payload_to_the_outfile(live: Live, tmp_path: Path) -> None:
    create(live, name="f")
    out = tmp_path / "out.json"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_PAGER": "",
    }
    started = time.monotonic()
    done = subprocess.run(
        [
            str(AWS),
            "--endpoint-url",
            live.url,
            "lambda",
            "invoke",
            "--function-name",
            "f",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    assert json.loads(out.read_text()) == {
        "greeting": "hello, world",
        "answer": 1,
        "version": "$LATEST",
    }
    assert time.monotonic() - started < 30
