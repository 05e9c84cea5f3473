"""Streams over real HTTP on 127.0.0.1: Server-Sent Events and followed logs."""

from __future__ import annotations

import asyncio
import json

import httpx
from fake_engine import FakeEngine


async def _lines_until(lines, predicate) -> list[str]:
    seen = []
    async for line in lines:
        seen.append(line)
        if predicate(line):
            return seen
    raise AssertionError(f"stream ended before the expected line; saw {seen}")


async def test_events_stream_publishes_engine_events_as_sse(
    live_url: str, engine: FakeEngine
) -> None:
    event = {
        "type": "execution",
        "pipeline": "demo",
        "pipelineExecutionId": "x",
        "status": "InProgress",
    }
    async with (
        httpx.AsyncClient(base_url=live_url) as client,
        client.stream("GET", "/api/events", params={"pipeline": "demo"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        await _lines_until(lines, lambda line: line == ": subscribed")
        engine.publish({"type": "pipeline", "pipeline": "other"})  # filtered out
        engine.publish(event)
        seen = await _lines_until(lines, lambda line: line.startswith("data:"))
        assert json.loads(seen[-1].removeprefix("data: ")) == event


async def test_idle_stream_sends_heartbeat_comments(live_url: str) -> None:
    async with (
        httpx.AsyncClient(base_url=live_url) as client,
        client.stream("GET", "/api/events") as response,
    ):
        lines = response.aiter_lines()
        await asyncio.wait_for(_lines_until(lines, lambda line: line == ": heartbeat"), 3)


async def test_events_for_unknown_pipeline_is_404(live_url: str) -> None:
    async with httpx.AsyncClient(base_url=live_url) as client:
        response = await client.get("/api/events", params={"pipeline": "nope"})
    assert response.status_code == 404
    assert response.json()["reference"] == "pipeline-not-found"


async def test_client_disconnect_ends_the_engine_subscription(
    live_url: str, engine: FakeEngine
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_url) as client,
        client.stream("GET", "/api/events", params={"pipeline": "demo"}) as response,
    ):
        await _lines_until(response.aiter_lines(), lambda line: line == ": subscribed")
        assert len(engine.subscribers) == 1
    for _ in range(200):
        if not engine.subscribers:
            break
        await asyncio.sleep(0.01)
    assert engine.subscribers == []


async def test_follow_streams_log_chunks_until_the_action_ends(
    live_url: str, engine: FakeEngine
) -> None:
    execution_id = engine.add_execution("demo")
    action_id = engine.add_action(
        "demo",
        execution_id,
        "Build",
        "Compile",
        status="InProgress",
        log="starting\n",
        log_pending=["step 1\n", "step 2\n", "done\n"],
    )
    received = []
    async with httpx.AsyncClient(base_url=live_url) as client:
        url = f"/api/logs/{action_id}"
        async with client.stream("GET", url, params={"follow": "1"}) as response:
            assert response.status_code == 200
            async for text in response.aiter_text():
                received.append(text)
        assert "".join(received) == "starting\nstep 1\nstep 2\ndone\n"
        assert len(received) > 1  # chunks arrived as written, not all at the end
        after = await client.get(url, params={"offset": len("".join(received))})
    assert after.text == ""
    assert after.headers["X-Caravan-Log-Complete"] == "true"


async def test_follow_from_offset_skips_what_was_read(live_url: str, engine: FakeEngine) -> None:
    execution_id = engine.add_execution("demo")
    action_id = engine.add_action("demo", execution_id, "Build", "Compile", log="abc\ndef\n")
    async with httpx.AsyncClient(base_url=live_url) as client:
        response = await client.get(f"/api/logs/{action_id}", params={"follow": "1", "offset": 4})
    assert response.text == "def\n"
