"""Live updates: the fragment stream of a page and the log stream of an action, over HTTP on
127.0.0.1 against a real engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from dashboard_support import (
    Steps,
    approval,
    dashboard_app,
    pipeline,
    running_engine,
    serving,
    sse_messages,
    stage_of,
    stage_status,
    step,
    wait_for,
)

from caravan.engine.engine import Engine
from caravan.server.dashboard.environments import EnvironmentView, VersionMetrics, version_chart
from caravan.server.dashboard.live import fragment_stream
from caravan.server.dashboard.render import Fragment, Renderer
from caravan.server.dashboard.security import FormGuard

RELEASE = pipeline(
    "shop",
    [
        ("Source", [step("Fetch", category="Source")]),
        ("Build", [step("Compile", Mode="hold")]),
        ("Release", [approval("Approve"), step("Deploy", category="Deploy", run_order=2)]),
    ],
)


@pytest.fixture
def steps() -> Steps:
    return Steps()


@pytest.fixture
async def engine(tmp_path: Path, steps: Steps) -> AsyncIterator[Engine]:
    async with running_engine(tmp_path, steps) as opened:
        yield opened


@pytest.fixture
async def url(engine: Engine) -> AsyncIterator[str]:
    async with serving(dashboard_app(engine)) as served:
        yield served


async def next_message(messages: AsyncIterator[dict[str, str]], event: str) -> dict[str, str]:
    async with asyncio.timeout(5):
        async for message in messages:
            if message["event"] == event:
                return message
    raise AssertionError(f"the stream ended before a {event!r} message")


async def test_the_stream_sends_every_fragment_then_only_what_changed(
    engine: Engine, steps: Steps, url: str
) -> None:
    await engine.call("CreatePipeline", RELEASE)
    await steps.wait_held("Compile")
    async with (
        httpx.AsyncClient(base_url=url, timeout=10) as client,
        client.stream("GET", "/ui/events?view=pipeline&pipeline=shop") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = sse_messages(response)
        first = [json.loads((await next_message(messages, "fragment"))["data"]) for _ in range(5)]
        assert [f["id"] for f in first] == [
            "controls",
            "stage-Source",
            "stage-Build",
            "stage-Release",
            "history",
        ]
        steps.release("Compile")  # Build succeeds; the approval starts waiting
        seen: list[str] = []
        while True:
            update = json.loads((await next_message(messages, "fragment"))["data"])
            seen.append(update["id"])
            if update["id"] == "stage-Release" and 'data-role="approve"' in update["html"]:
                break
        assert "stage-Source" not in seen  # unchanged, not sent again


async def test_a_change_made_elsewhere_reaches_the_page_and_the_stage_turns_green(
    engine: Engine, steps: Steps, url: str
) -> None:
    await engine.call("CreatePipeline", RELEASE)
    await steps.wait_held("Compile")
    steps.release("Compile")
    state = await wait_for(
        engine, "shop", lambda s: stage_status(s, "Release") == "InProgress", "approval"
    )
    token = stage_of(state, "Release")["actionStates"][0]["latestExecution"]["token"]
    async with (
        httpx.AsyncClient(base_url=url, timeout=10) as client,
        client.stream("GET", "/ui/events?view=pipeline&pipeline=shop") as response,
    ):
        messages = sse_messages(response)
        for _ in range(5):
            await next_message(messages, "fragment")
        await engine.call(
            "PutApprovalResult",
            {
                "pipelineName": "shop",
                "stageName": "Release",
                "actionName": "Approve",
                "token": token,
                "result": {"status": "Approved", "summary": "from the CLI"},
            },
        )
        while True:
            update = json.loads((await next_message(messages, "fragment"))["data"])
            if update["id"] == "stage-Release" and (
                'data-stage="Release" data-status="Succeeded"' in update["html"]
            ):
                break


async def test_the_page_is_told_to_reload_when_its_stages_change_or_the_pipeline_goes(
    engine: Engine, steps: Steps, url: str
) -> None:
    await engine.call("CreatePipeline", RELEASE)
    await steps.wait_held("Compile")
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/ui/events?view=pipeline&pipeline=shop") as response:
            messages = sse_messages(response)
            await next_message(messages, "fragment")
            declared = (await engine.call("GetPipeline", {"name": "shop"}))["pipeline"]
            declared["stages"].append({"name": "Verify", "actions": [step("Smoke")]})
            await engine.call("UpdatePipeline", {"pipeline": declared})
            await next_message(messages, "reload")
        async with client.stream("GET", "/ui/events?view=pipeline&pipeline=shop") as response:
            messages = sse_messages(response)
            await next_message(messages, "fragment")
            await engine.call("DeletePipeline", {"name": "shop"})
            await next_message(messages, "reload")


async def test_the_stream_refuses_unknown_pipelines_and_views(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        missing = await client.get("/ui/events?view=pipeline&pipeline=nope")
        assert missing.status_code == 404 and "nope" in missing.text
        bad = await client.get("/ui/events?view=everything")
        assert bad.status_code == 400 and "view must be one of" in bad.text
        incomplete = await client.get("/ui/events?view=execution&pipeline=x")
        assert incomplete.status_code == 400


async def test_a_log_streams_as_it_grows_ends_with_the_status_and_resumes_by_offset(
    engine: Engine, steps: Steps, url: str
) -> None:
    await engine.call("CreatePipeline", RELEASE)
    await steps.wait_held("Compile")
    listed = await engine.call("ListActionExecutions", {"pipelineName": "shop"})
    compile_ = next(d for d in listed["actionExecutionDetails"] if d["actionName"] == "Compile")
    path = (
        f"/ui/logs/{compile_['actionExecutionId']}"
        f"?offset=0&pipeline=shop&execution={compile_['pipelineExecutionId']}"
    )
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", path) as response:
            messages = sse_messages(response)
            log = await next_message(messages, "log")
            assert "step Compile starts" in json.loads(log["data"])["text"]
            steps.release("Compile")
            end = await next_message(messages, "end")
            assert json.loads(end["data"]) == {"status": "Succeeded"}
        # A browser reconnecting sends the last id it saw: nothing is sent twice.
        headers = {"Last-Event-ID": end["id"]}
        async with client.stream("GET", path, headers=headers) as response:
            kinds = [m["event"] async for m in sse_messages(response)]
        assert kinds == ["end"]
        missing = await client.get("/ui/logs/not-an-id")
        assert missing.status_code == 404


async def test_the_environments_view_is_redrawn_on_its_own_without_engine_events() -> None:
    renderer = Renderer(FormGuard(b"k"))
    versions = iter(["1", "2", "2", "2"])

    async def draw() -> list[Fragment]:
        metrics = VersionMetrics(next(versions), 10, 0.0, 1.0, 2.0, [(0.0, 0.0, 2.0)])
        env = EnvironmentView("app", "prod", [], [], [metrics])
        return [
            renderer.fragment(
                "environments",
                "_environments.html",
                environments=[env],
                charts={("app", "prod", metrics.version): version_chart(metrics)},
            )
        ]

    stream = fragment_stream(draw, None, heartbeat=5, refresh=0.01)
    sent = []
    async with asyncio.timeout(5):
        async for chunk in stream:
            sent.append(chunk.decode())
            if sum("event: fragment" in c for c in sent) == 2:
                break
    await stream.aclose()
    fragments = [c for c in sent if "event: fragment" in c]
    assert "version 1" in fragments[0] and "version 2" in fragments[1]
