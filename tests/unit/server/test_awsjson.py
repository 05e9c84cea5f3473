"""The AWS JSON 1.1 endpoint, driven with exactly the requests botocore sends (boto3 is not
installed here): headers, SigV4 signature, body; responses and errors in AWS's shapes."""

from __future__ import annotations

import json
import uuid

import httpx
from fake_engine import FakeEngine

AWS_JSON = "application/x-amz-json-1.1"


def botocore_request(operation: str, params: dict) -> tuple[dict[str, str], bytes]:
    """Headers and body as botocore 1.35 sends them for CodePipeline (signed, SigV4)."""
    body = json.dumps(params).encode()
    headers = {
        "X-Amz-Target": f"CodePipeline_20150709.{operation}",
        "Content-Type": AWS_JSON,
        "User-Agent": "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 md/arch#x86_64 "
        "lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.0",
        "X-Amz-Date": "20250101T120000Z",
        "Authorization": "AWS4-HMAC-SHA256 "
        "Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/codepipeline/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
        "Signature=" + "0" * 64,
        "amz-sdk-invocation-id": str(uuid.uuid4()),
        "amz-sdk-request": "attempt=1",
        "Content-Length": str(len(body)),
    }
    return headers, body


async def send(client: httpx.AsyncClient, operation: str, params: dict) -> httpx.Response:
    headers, body = botocore_request(operation, params)
    return await client.post("/", headers=headers, content=body)


async def test_signed_botocore_request_gets_the_operation_output(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    engine.add_execution("demo")
    response = await send(client, "ListPipelineExecutions", {"pipelineName": "demo"})
    assert response.status_code == 200
    assert response.headers["content-type"] == AWS_JSON
    assert response.headers["x-amzn-RequestId"]
    summaries = response.json()["pipelineExecutionSummaries"]
    assert summaries[0]["status"] == "InProgress"
    # AWS JSON timestamps are epoch seconds, numbers: botocore parses them into datetimes.
    assert isinstance(summaries[0]["startTime"], float)


async def test_start_with_variables_dispatches_through_the_engine(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    params = {"name": "demo", "variables": [{"name": "env", "value": "prod"}]}
    response = await send(client, "StartPipelineExecution", params)
    assert response.status_code == 200
    assert set(response.json()) == {"pipelineExecutionId"}
    assert engine.calls == [("StartPipelineExecution", params)]


async def test_error_has_aws_shape_status_and_header(client: httpx.AsyncClient) -> None:
    response = await send(client, "GetPipelineState", {"name": "nope"})
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "PipelineNotFoundException"
    assert response.headers["content-type"] == AWS_JSON
    assert response.json() == {
        "__type": "PipelineNotFoundException",
        "message": "pipeline 'nope' does not exist",
    }


async def test_unknown_operation_is_unknown_operation_exception(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    response = await send(client, "RollbackEverything", {})
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"
    other_service = await client.post(
        "/", headers={"X-Amz-Target": "Lambda_20150331.Invoke"}, content=b"{}"
    )
    assert other_service.json()["__type"] == "UnknownOperationException"
    assert engine.calls == []


async def test_missing_target_and_bad_json_are_validation_errors(
    client: httpx.AsyncClient,
) -> None:
    no_target = await client.post("/", headers={"Content-Type": AWS_JSON}, content=b"{}")
    assert no_target.status_code == 400
    assert no_target.json()["__type"] == "ValidationException"
    assert "X-Amz-Target" in no_target.json()["message"]
    headers, _ = botocore_request("GetPipelineState", {})
    headers["Content-Length"] = "5"
    bad = await client.post("/", headers=headers, content=b"{nope")
    assert bad.status_code == 400
    assert bad.json()["__type"] == "ValidationException"


async def test_unexpected_failure_is_internal_failure_500(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    engine.explode = RuntimeError("disk on fire")
    response = await send(client, "ListPipelines", {})
    assert response.status_code == 500
    assert response.json()["__type"] == "InternalFailure"
    assert "disk on fire" not in response.text
