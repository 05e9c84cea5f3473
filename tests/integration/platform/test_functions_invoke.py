"""Invoke on real worker processes: Lambda's results, errors, context, environment and logs."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from caravan.artifacts.zipfiles import zip_files
from caravan.platform.functions import (
    FunctionRegistry,
    InvalidParameterValueException,
    InvalidRequestContentException,
    Invoker,
    RequestTooLargeException,
    ResourceNotFoundException,
)

APP = b"""
import os, sys

COUNT = 0
print("module imported")


def handler(event, context):
    global COUNT
    COUNT += 1
    action = event.get("action") if isinstance(event, dict) else None
    if action == "boom":
        raise ValueError("boom: " + str(event.get("why")))
    if action == "unmarshallable":
        return {1, 2}
    if action == "print":
        print("to stdout")
        print("to stderr", file=sys.stderr)
    if action == "env":
        return dict(os.environ)
    if action == "log":
        import logging

        logging.getLogger("app").warning("careful: %s", event.get("what"))
    if action == "big":
        return "x" * event["size"]
    if action == "imports":
        found = {}
        for name in ("caravan", "pydantic", "json", "vendored"):
            try:
                __import__(name)
                found[name] = True
            except ImportError:
                found[name] = False
        return found
    if action == "context":
        cc = context.client_context
        return {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
            "identity_id": context.identity.cognito_identity_id,
            "client_title": cc.client.app_title if cc else None,
            "custom": cc.custom if cc else None,
        }
    return {"count": COUNT, "pid": os.getpid(), "event": event}
"""
CODE = zip_files({"app.py": APP, "vendored.py": b"VALUE = 1\n"})


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[FunctionRegistry, Invoker]]:
    registry = FunctionRegistry(tmp_path)
    registry.create_function(
        "hello",
        handler="app.handler",
        code=CODE,
        memory_size=256,
        timeout=30,
        environment={"STAGE": "test"},
        publish=True,
    )
    registry.create_alias("hello", "live", "1")
    invoker = Invoker(registry, event_retry_delays=(0.0, 0.0))
    yield registry, invoker
    await invoker.aclose()


async def call(invoker: Invoker, event: object, **kwargs: object) -> dict:
    result = await invoker.invoke("hello", json.dumps(event).encode(), **kwargs)  # type: ignore[arg-type]
    assert result.status_code == 200
    return json.loads(result.payload)


async def test_the_handler_module_is_imported_once_per_worker(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    answers = [await call(invoker, {"n": n}) for n in range(4)]
    assert [a["count"] for a in answers] == [1, 2, 3, 4]
    assert len({a["pid"] for a in answers}) == 1
    assert answers[2]["event"] == {"n": 2}


async def test_context_carries_lambdas_fields(platform: tuple[FunctionRegistry, Invoker]) -> None:
    _, invoker = platform
    arn = "arn:aws:lambda:us-east-1:000000000000:function:hello"
    client_context = base64.b64encode(
        json.dumps({"client": {"app_title": "demo"}, "custom": {"k": "v"}}).encode()
    ).decode()
    result = await invoker.invoke(
        "hello", b'{"action": "context"}', qualifier="live", client_context=client_context
    )
    context = json.loads(result.payload)
    assert context["function_name"] == "hello"
    assert context["function_version"] == "1" == result.executed_version
    assert context["invoked_function_arn"] == f"{arn}:live"
    assert context["memory_limit_in_mb"] == "256"  # a string, as Lambda's runtime gives it
    assert context["aws_request_id"] == result.request_id
    assert context["log_group_name"] == "/aws/lambda/hello"
    assert "[1]" in context["log_stream_name"]
    assert 0 < context["remaining"] <= 30_000
    assert context["identity_id"] is None
    assert context["client_title"] == "demo" and context["custom"] == {"k": "v"}
    plain = await call(invoker, {"action": "context"})
    assert plain["invoked_function_arn"] == arn and plain["function_version"] == "$LATEST"
    by_arn = await invoker.invoke(f"{arn}:1", b'{"action": "context"}')
    assert json.loads(by_arn.payload)["invoked_function_arn"] == f"{arn}:1"


async def test_environment_has_reserved_variables_and_none_of_callers_secrets(
    platform: tuple[FunctionRegistry, Invoker], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARAVAN_TEST_SECRET", "do-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak-either")
    _, invoker = platform
    env = await call(invoker, {"action": "env"}, qualifier="1")
    assert env["STAGE"] == "test"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "hello"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/hello"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["TZ"] == ":UTC"
    assert Path(env["LAMBDA_TASK_ROOT"], "app.py").is_file()
    assert env["HOME"] == env["TMPDIR"] and Path(env["TMPDIR"]).is_dir()
    assert "CARAVAN_TEST_SECRET" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "do-not-leak" not in json.dumps(env)


async def test_the_function_sees_the_stdlib_and_its_zip_but_not_caravan(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    found = await call(invoker, {"action": "imports"})
    assert found == {"caravan": False, "pydantic": False, "json": True, "vendored": True}


async def test_a_handler_exception_is_a_function_error_shaped_like_lambdas(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    result = await invoker.invoke("hello", b'{"action": "boom", "why": "testing"}', qualifier="1")
    assert result.status_code == 200
    assert result.function_error == "Unhandled"
    assert result.executed_version == "1"
    error = json.loads(result.payload)
    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "boom: testing"
    assert error["requestId"] == result.request_id
    assert "app.py" in error["stackTrace"][-1] and "in handler" in error["stackTrace"][-1]
    assert not any("worker.py" in frame for frame in error["stackTrace"])
    after = await call(invoker, {}, qualifier="1")  # the worker survives a handled error
    assert after["count"] == 2


async def test_an_unserialisable_result_is_a_marshal_error(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    result = await invoker.invoke("hello", b'{"action": "unmarshallable"}')
    error = json.loads(result.payload)
    assert result.function_error == "Unhandled"
    assert error["errorType"] == "Runtime.MarshalError"
    assert error["errorMessage"].startswith("Unable to marshal response:")


async def test_a_zip_without_the_handler_module_fails_at_invoke_like_lambda(
    tmp_path: Path,
) -> None:
    registry = FunctionRegistry(tmp_path)
    registry.create_function("nomod", handler="missing.handler", code=CODE)
    registry.create_function("nofn", handler="app.nothing", code=CODE)
    invoker = Invoker(registry)
    try:
        missing = await invoker.invoke("nomod", b"{}")
        nothing = await invoker.invoke("nofn", b"{}")
    finally:
        await invoker.aclose()
    error = json.loads(missing.payload)
    assert missing.function_error == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == ("Unable to import module 'missing': No module named 'missing'")
    assert json.loads(nothing.payload)["errorType"] == "Runtime.HandlerNotFound"


async def test_logs_are_lambda_shaped_tailed_and_written_per_function(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    registry, invoker = platform
    result = await invoker.invoke("hello", b'{"action": "print"}', log_type="Tail")
    log = base64.b64decode(result.log_result or "").decode()
    lines = log.splitlines()
    start = lines.index(f"START RequestId: {result.request_id} Version: $LATEST")
    assert "module imported" in lines[:start]  # init output comes before START
    assert lines[start + 1 : start + 3] == ["to stdout", "to stderr"]
    assert lines[start + 3] == f"END RequestId: {result.request_id}"
    assert lines[start + 4].startswith(f"REPORT RequestId: {result.request_id}\tDuration: ")
    assert "Memory Size: 256 MB\tMax Memory Used: " in lines[start + 4]
    assert "Init Duration: " in lines[start + 4]
    quiet = await invoker.invoke("hello", b"{}")
    assert quiet.log_result is None
    files = list((registry.root / "logs" / "hello").glob("*.log"))
    assert len(files) == 1
    written = files[0].read_text()
    assert log in written and f"START RequestId: {quiet.request_id}" in written


async def test_bad_requests_are_api_errors_not_function_errors(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    with pytest.raises(InvalidRequestContentException):
        await invoker.invoke("hello", b"{not json")
    with pytest.raises(ResourceNotFoundException):
        await invoker.invoke("nobody", b"{}")
    with pytest.raises(ResourceNotFoundException):
        await invoker.invoke("hello", b"{}", qualifier="9")
    with pytest.raises(ResourceNotFoundException):
        await invoker.invoke("hello", b"{}", qualifier="prod")
    with pytest.raises(InvalidParameterValueException):
        await invoker.invoke("hello:live", b"{}", qualifier="1")
    with pytest.raises(InvalidParameterValueException):
        await invoker.invoke("hello", b"{}", invocation_type="Sometimes")


async def test_dry_run_validates_only_and_event_runs_in_the_background(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    registry, invoker = platform
    dry = await invoker.invoke("hello", b"{}", qualifier="live", invocation_type="DryRun")
    assert (dry.status_code, dry.payload, dry.executed_version) == (204, b"", "1")
    assert invoker.metrics.stats("hello", "1").total_invocations == 0
    event = await invoker.invoke("hello", b'{"n": 1}', qualifier="live", invocation_type="Event")
    assert (event.status_code, event.payload) == (202, b"")
    with pytest.raises(InvalidRequestContentException):
        await invoker.invoke("hello", b"[oops", invocation_type="Event")
    await invoker.drain()
    assert invoker.metrics.stats("hello", "1").total_invocations == 1
    log = next((registry.root / "logs" / "hello").glob("*.log")).read_text()
    assert f"START RequestId: {event.request_id} Version: 1" in log


async def test_a_failing_event_is_retried_twice_then_dropped_with_a_log_line(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    registry, invoker = platform
    event = await invoker.invoke(
        "hello", b'{"action": "boom", "why": "always"}', qualifier="1", invocation_type="Event"
    )
    await invoker.drain()
    stats = invoker.metrics.stats("hello", "1")
    assert (stats.total_invocations, stats.total_errors) == (3, 3)
    log = next((registry.root / "logs" / "hello").glob("*.log")).read_text()
    assert log.count(f"START RequestId: {event.request_id}") == 3  # retries keep the id
    dropped = [line for line in log.splitlines() if "dropped" in line]
    assert len(dropped) == 1
    assert event.request_id in dropped[0] and "ValueError: boom: always" in dropped[0]


async def test_logging_lines_carry_lambdas_level_time_and_request_id(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    result = await invoker.invoke("hello", b'{"action": "log", "what": "disk"}', log_type="Tail")
    log = base64.b64decode(result.log_result or "").decode().splitlines()
    line = next(line for line in log if line.startswith("[WARNING]"))
    _, stamp, request_id, message = line.split("\t")
    assert request_id == result.request_id and message == "careful: disk"
    assert stamp.endswith("Z") and len(stamp) == len("2026-11-26T17:41:11.123Z")


async def test_payload_limits_are_lambdas(platform: tuple[FunctionRegistry, Invoker]) -> None:
    _, invoker = platform
    big_event = json.dumps({"blob": "y" * (5 * 1024 * 1024)}).encode()
    echoed = await invoker.invoke("hello", big_event)
    assert json.loads(echoed.payload)["event"]["blob"] == "y" * (5 * 1024 * 1024)
    with pytest.raises(RequestTooLargeException):
        await invoker.invoke("hello", b" " * (6 * 1024 * 1024 + 1))
    too_big = await invoker.invoke("hello", b'{"action": "big", "size": 7000000}')
    assert too_big.function_error == "Unhandled"
    assert json.loads(too_big.payload)["errorType"] == "Function.ResponseSizeTooLarge"
