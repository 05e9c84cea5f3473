"""The native JSON API: operations by name, errors as payloads, logs, health, body limits."""

from __future__ import annotations

import logging

import httpx
import pytest
from fake_engine import FakeEngine

from caravan import __version__
from caravan.errors import ConflictError


async def test_healthz_reports_ok_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


async def test_operation_answers_with_the_engine_response(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    response = await client.post("/api/GetPipelineState", json={"name": "demo"})
    assert response.status_code == 200
    body = response.json()
    assert body["pipelineName"] == "demo"
    assert [s["stageName"] for s in body["stageStates"]] == ["Source", "Build"]
    assert engine.calls == [("GetPipelineState", {"name": "demo"})]


async def test_request_body_reaches_the_engine_unchanged(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    request = {"name": "demo", "variables": [{"name": "env", "value": "prod"}]}
    response = await client.post("/api/StartPipelineExecution", json=request)
    assert response.status_code == 200
    assert engine.calls[-1] == ("StartPipelineExecution", request)
    execution_id = response.json()["pipelineExecutionId"]
    assert engine.execution("demo", execution_id)["variables"] == [
        {"name": "env", "resolvedValue": "prod"}
    ]


async def test_empty_body_is_the_empty_request(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/ListPipelines", content=b"")
    assert response.status_code == 200
    assert [p["name"] for p in response.json()["pipelines"]] == ["demo"]


async def test_unknown_operation_is_400_and_never_reaches_the_engine(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    response = await client.post("/api/DropAllTables", json={})
    assert response.status_code == 400
    body = response.json()
    assert body["reference"] == "unknown-operation"
    assert "DropAllTables" in body["message"]
    assert engine.calls == []


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"name": "demo",', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b"\xff\xfe{}", "request body is not"),
    ],
)
async def test_malformed_body_is_invalid_input_naming_the_problem(
    client: httpx.AsyncClient, content: bytes, says: str
) -> None:
    response = await client.post("/api/GetPipelineState", content=content)
    assert response.status_code == 400
    body = response.json()
    assert body["reference"] == "invalid-input"
    assert body["__type"] == "ValidationException"
    assert says in body["message"]


async def test_caravan_error_is_its_payload_with_its_status(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/GetPipelineState", json={"name": "nope"})
    assert response.status_code == 404
    assert response.json() == {
        "__type": "PipelineNotFoundException",
        "message": "pipeline 'nope' does not exist",
        "reference": "pipeline-not-found",
    }


async def test_conflict_keeps_its_hint(client: httpx.AsyncClient, engine: FakeEngine) -> None:
    engine.explode = ConflictError("pipeline is busy", hint="try again in a moment")
    response = await client.post("/api/ListPipelines", json={})
    assert response.status_code == 409
    assert response.json()["hint"] == "try again in a moment"


async def test_declaration_error_lists_every_issue(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/CreatePipeline", json={"pipeline": {"stages": []}})
    assert response.status_code == 400
    body = response.json()
    assert body["reference"] == "invalid-declaration"
    assert body["issues"] == [
        {"path": "pipeline.name", "rule": "is required"},
        {"path": "pipeline.stages", "rule": "a pipeline needs at least 2 stages"},
    ]


async def test_unexpected_exception_is_500_without_details_but_logged(
    client: httpx.AsyncClient, engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    engine.explode = KeyError("secret-internal-detail")
    with caplog.at_level(logging.ERROR, logger="caravan.server"):
        response = await client.post("/api/ListPipelines", json={})
    assert response.status_code == 500
    body = response.json()
    assert body["reference"] == "internal-error"
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text
    assert any("secret-internal-detail" in r.exc_text for r in caplog.records if r.exc_text)


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, engine: FakeEngine) -> None:
    big = b'{"name": "' + b"x" * (64 * 1024) + b'"}'
    response = await client.post("/api/GetPipelineState", content=big)
    assert response.status_code == 413
    assert response.json()["reference"] == "request-too-large"
    assert engine.calls == []


async def test_streamed_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # no Content-Length: the limit must count what arrives
        for _ in range(100):
            yield b" " * 1024

    response = await client.post("/api/ListPipelines", content=chunks())
    assert response.status_code == 413


async def test_log_chunk_carries_next_offset_and_completion(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    execution_id = engine.add_execution("demo")
    action_id = engine.add_action(
        "demo", execution_id, "Build", "Compile", log="line one\nline two\n"
    )
    response = await client.get(f"/api/logs/{action_id}", params={"offset": 9})
    assert response.status_code == 200
    assert response.text == "line two\n"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["X-Caravan-Next-Offset"] == "18"
    assert response.headers["X-Caravan-Log-Complete"] == "true"


async def test_log_of_running_action_is_not_complete(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    execution_id = engine.add_execution("demo")
    action_id = engine.add_action(
        "demo", execution_id, "Build", "Compile", status="InProgress", log="a\n", log_pending=["b"]
    )
    response = await client.get(f"/api/logs/{action_id}")
    assert response.headers["X-Caravan-Log-Complete"] == "false"
    assert response.headers["X-Caravan-Next-Offset"] == "2"


async def test_log_bad_offset_and_unknown_action(client: httpx.AsyncClient) -> None:
    bad = await client.get("/api/logs/abc", params={"offset": "-3"})
    assert bad.status_code == 400
    assert "offset" in bad.json()["message"]
    missing = await client.get("/api/logs/abc")
    assert missing.status_code == 404
    assert missing.json()["reference"] == "action-not-found"
    followed = await client.get("/api/logs/abc", params={"follow": "1"})
    assert followed.status_code == 404


async def test_a_cross_site_browser_request_cannot_run_an_operation() -> None:
    """A page on another site can POST text/plain or a form without a CORS preflight; the API
    must refuse it (403), while JSON clients (CLI, boto3) keep working."""
    import httpx
    from fake_engine import FakeEngine

    from caravan.server.app import create_app

    engine = FakeEngine()
    app = create_app(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for headers in (
            {"Content-Type": "text/plain;charset=UTF-8"},
            {"Content-Type": "application/x-www-form-urlencoded"},
            {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
        ):
            refused = await client.post("/api/ListPipelines", content=b"{}", headers=headers)
            assert refused.status_code == 403, headers
            assert refused.json()["reference"] == "cross-site-request"
        aws = await client.post(
            "/",
            content=b"{}",
            headers={
                "Content-Type": "text/plain",
                "X-Amz-Target": "CodePipeline_20150709.ListPipelines",
            },
        )
        assert aws.status_code == 400  # AWS JSON answers client errors with 400 and __type
        assert aws.json()["__type"] == "AccessDeniedException"
        allowed = await client.post("/api/ListPipelines", json={})
        assert allowed.status_code == 200
