"""Invoke on the wire, on real worker processes: status codes per invocation type, the raw
payload, the X-Amz-* headers, the 6 MB limit and the throttle."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lambda_api_helpers import Api, assert_lambda_error, open_api

from caravan.server.lambda_api import PREFIX

INVOKE = f"{PREFIX}/hello/invocations"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(tmp_path, concurrency_limit=1, event_retry_delays=(0.0, 0.0)) as opened:
        await opened.create(Publish=True, Timeout=10)
        await opened.client.post(
            f"{PREFIX}/hello/aliases", json={"Name": "live", "FunctionVersion": "1"}
        )
        yield opened


async def test_request_response_answers_the_raw_result_and_the_executed_version(api: Api) -> None:
    response = await api.client.post(INVOKE, content=b'{"n": 1}', params={"Qualifier": "live"})
    assert response.status_code == 200
    assert response.json() == {"event": {"n": 1}, "version": "1", "tag": "one"}
    assert response.headers["X-Amz-Executed-Version"] == "1"
    assert "X-Amz-Function-Error" not in response.headers
    assert "X-Amz-Log-Result" not in response.headers
    assert response.headers["x-amzn-RequestId"]


async def test_a_qualified_function_name_and_an_empty_payload(api: Api) -> None:
    response = await api.client.post(f"{PREFIX}/hello:1/invocations")
    assert response.status_code == 200
    assert response.json()["event"] == {}
    assert response.headers["X-Amz-Executed-Version"] == "1"


async def test_a_function_error_keeps_status_200_and_sets_the_header(api: Api) -> None:
    response = await api.client.post(
        INVOKE, json={"fail": "bad day"}, headers={"X-Amz-Log-Type": "Tail"}
    )
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.json()["errorType"] == "ValueError"
    assert response.json()["errorMessage"] == "failing: bad day"
    log = base64.b64decode(response.headers["X-Amz-Log-Result"]).decode()
    assert "START RequestId:" in log and "Version: $LATEST" in log and "ValueError" in log


async def test_event_answers_202_and_dry_run_204_with_empty_bodies(api: Api) -> None:
    event = await api.client.post(INVOKE, json={"n": 2}, headers={"X-Amz-Invocation-Type": "Event"})
    assert event.status_code == 202 and event.content == b""
    await api.invoker.drain()
    assert api.invoker.metrics.stats("hello", "$LATEST").total_invocations == 1  # it ran
    dry = await api.client.post(INVOKE, headers={"X-Amz-Invocation-Type": "DryRun"})
    assert dry.status_code == 204 and dry.content == b""
    missing = await api.client.post(
        f"{PREFIX}/nobody/invocations", headers={"X-Amz-Invocation-Type": "DryRun"}
    )
    assert_lambda_error(missing, 404, "ResourceNotFoundException")


async def test_the_client_context_header_reaches_the_function(api: Api) -> None:
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    response = await api.client.post(
        INVOKE, json={"client": True}, headers={"X-Amz-Client-Context": context}
    )
    assert response.json() == {"k": "v"}
    bad = await api.client.post(INVOKE, json={}, headers={"X-Amz-Client-Context": "%%%"})
    assert "Client context" in assert_lambda_error(bad, 400, "InvalidParameterValueException")


@pytest.mark.parametrize(
    ("headers", "params", "named"),
    [
        ({"X-Amz-Invocation-Type": "Later"}, {}, "invocationType"),
        ({"X-Amz-Log-Type": "All"}, {}, "logType"),
        ({}, {"Qualifier": "no/such"}, "qualifier"),
    ],
)
async def test_bad_invoke_parameters_are_named(
    api: Api, headers: dict[str, str], params: dict[str, str], named: str
) -> None:
    response = await api.client.post(INVOKE, json={}, headers=headers, params=params)
    assert named in assert_lambda_error(response, 400, "InvalidParameterValueException")


async def test_a_payload_that_is_not_json_is_invalid_request_content(api: Api) -> None:
    response = await api.client.post(INVOKE, content=b"{not json")
    message = assert_lambda_error(response, 400, "InvalidRequestContentException")
    assert "Could not parse request body into json" in message


async def test_a_payload_over_6_mb_is_request_too_large(api: Api) -> None:
    response = await api.client.post(INVOKE, content=b"x" * (6 * 1024 * 1024 + 1))
    message = assert_lambda_error(response, 413, "RequestTooLargeException")
    assert message == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    exactly = await api.client.post(INVOKE, content=b'"' + b"x" * (6 * 1024 * 1024 - 2) + b'"')
    assert exactly.status_code == 200  # exactly 6 MB is allowed
    assert len(exactly.json()["event"]) == 6 * 1024 * 1024 - 2


async def test_past_the_concurrency_limit_invoke_is_throttled_with_429(
    api: Api, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    slow = asyncio.create_task(api.client.post(INVOKE, json={"touch": str(started), "sleep": 0.5}))
    # The signal is a file the worker process writes: the function's one slot is now taken.
    while not started.exists():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    throttled = await api.client.post(INVOKE, json={})
    assert "concurrency limit" in assert_lambda_error(throttled, 429, "TooManyRequestsException")
    assert throttled.json()["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert throttled.headers["Retry-After"] == "1"
    assert (await slow).status_code == 200


async def test_a_payload_nested_without_end_is_refused_without_crashing_anything(
    api: Api,
) -> None:
    """Found in review: a deeply nested body crashed the worker (sync) or the server (Event)."""
    for invocation_type in ("RequestResponse", "Event"):
        response = await api.client.post(
            INVOKE, content=b"[" * 100_000, headers={"X-Amz-Invocation-Type": invocation_type}
        )
        assert response.status_code == 400
        assert response.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
