"""The dashboard's pages over a real engine: what each shows for each state of a pipeline."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from dashboard_support import (
    Steps,
    approval,
    client_for,
    dashboard_app,
    fragment,
    pipeline,
    running_engine,
    stage_of,
    stage_status,
    step,
    wait_for,
)

from caravan.engine.engine import Engine


@pytest.fixture
def steps() -> Steps:
    return Steps()


@pytest.fixture
async def engine(tmp_path: Path, steps: Steps) -> AsyncIterator[Engine]:
    async with running_engine(tmp_path, steps) as opened:
        yield opened


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(dashboard_app(engine)) as opened:
        yield opened


RELEASE = pipeline(
    "shop",
    [
        ("Source", [step("Fetch", category="Source")]),
        ("Build", [step("Compile"), step("Lint"), step("Test", run_order=2)]),
        (
            "Release",
            [
                approval(
                    "Approve", CustomData="check the canary", ExternalEntityLink="https://x.io"
                ),
                step("Deploy", category="Deploy", run_order=2),
            ],
        ),
    ],
    variables=[{"name": "Region", "defaultValue": "eu-west-1", "description": "where to"}],
)


async def waiting_for_approval(engine: Engine) -> dict:
    await engine.call("CreatePipeline", RELEASE)
    return await wait_for(
        engine, "shop", lambda s: stage_status(s, "Release") == "InProgress", "the approval"
    )


async def test_the_pipelines_page_lists_pipelines_with_their_latest_status(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    empty = await client.get("/")
    assert empty.status_code == 200
    assert "No pipelines yet" in empty.text
    await waiting_for_approval(engine)
    page = (await client.get("/")).text
    row = re.search(r'<tr data-pipeline="shop" data-status="InProgress">.*?</tr>', page, re.S)
    assert row, page
    assert 'href="/pipelines/shop"' in row.group(0)
    assert "status-inprogress" in row.group(0)
    assert 'data-events="/ui/events?view=pipelines"' in page


async def test_the_board_draws_stages_in_order_with_actions_in_run_order_columns(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    await waiting_for_approval(engine)
    page = (await client.get("/pipelines/shop")).text
    assert [m for m in re.findall(r'data-stage="([^"]+)"', page)] == ["Source", "Build", "Release"]
    build = fragment(page, "stage-Build")
    columns = [re.findall(r'data-action="([^"]+)"', c) for c in build.split('class="column"')[1:]]
    assert columns == [["Compile", "Lint"], ["Test"]]
    assert 'data-stage="Build" data-status="Succeeded"' in build
    assert "Compile done" in build  # the action's summary
    # A stage after the first has its inbound transition, enabled, with the button to disable.
    assert 'data-transition="Build" data-enabled="true"' in build
    assert "Disable transition" in build
    assert "data-transition" not in fragment(page, "stage-Source")


async def test_an_approval_waiting_shows_approve_and_reject_with_its_token(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    state = await waiting_for_approval(engine)
    token = stage_of(state, "Release")["actionStates"][0]["latestExecution"]["token"]
    release = fragment((await client.get("/pipelines/shop")).text, "stage-Release")
    assert f'name="approval_token" value="{token}"' in release
    assert 'data-role="approve"' in release and 'data-role="reject"' in release
    assert "check the canary" in release  # CustomData
    assert 'href="https://x.io"' in release  # ExternalEntityLink
    assert 'data-action="Deploy" data-status=""' in release  # not run yet


async def test_a_failed_stage_shows_its_error_and_both_retry_buttons(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    failing = pipeline(
        "broken",
        [
            ("Source", [step("Fetch", category="Source")]),
            ("Build", [step("Compile", Mode="fail", Message="compiler exploded\nline 2")]),
        ],
    )
    await engine.call("CreatePipeline", failing)
    await wait_for(engine, "broken", lambda s: stage_status(s, "Build") == "Failed", "failure")
    build = fragment((await client.get("/pipelines/broken")).text, "stage-Build")
    assert 'data-stage="Build" data-status="Failed"' in build
    assert "compiler exploded" in build and "line 2" not in build  # first line on the card
    assert 'value="FAILED_ACTIONS"' in build and 'value="ALL_ACTIONS"' in build
    history = fragment((await client.get("/pipelines/broken")).text, "history")
    assert 'data-status="Failed"' in history


async def test_a_disabled_transition_shows_its_reason_and_the_waiting_execution(
    engine: Engine, client: httpx.AsyncClient, steps: Steps
) -> None:
    held = pipeline(
        "gated",
        [
            ("Source", [step("Fetch", category="Source")]),
            ("Build", [step("Compile", Mode="hold")]),
            ("Deploy", [step("Ship", category="Deploy")]),
        ],
    )
    await engine.call("CreatePipeline", held)
    await steps.wait_held("Compile")
    await engine.call(
        "DisableStageTransition",
        {
            "pipelineName": "gated",
            "stageName": "Deploy",
            "transitionType": "Inbound",
            "reason": "release freeze",
        },
    )
    steps.release("Compile")
    await wait_for(
        engine, "gated", lambda s: stage_of(s, "Deploy").get("inboundExecution"), "inbound"
    )
    deploy = fragment((await client.get("/pipelines/gated")).text, "stage-Deploy")
    assert 'data-transition="Deploy" data-enabled="false"' in deploy
    assert "release freeze" in deploy
    assert "Enable transition" in deploy
    assert re.search(r"Inbound execution\s*<a[^>]*>[0-9a-f]{8}</a>", deploy)
    assert "waiting" in deploy


async def test_the_history_shows_trigger_status_and_links_to_each_execution(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    await waiting_for_approval(engine)
    second = await engine.call(
        "StartPipelineExecution",
        {"name": "shop", "variables": [{"name": "Region", "value": "us-east-2"}]},
    )
    page = (await client.get("/pipelines/shop/executions")).text
    history = fragment(page, "history")
    rows = re.findall(r'<tr data-execution="([^"]+)"', history)
    assert rows[0] == second["pipelineExecutionId"] and len(rows) == 2
    assert "StartPipelineExecution" in history and "CreatePipeline" in history
    assert f'href="/pipelines/shop/executions/{rows[1]}"' in history


async def test_the_execution_page_shows_resolved_configuration_variables_and_errors(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    declared = pipeline(
        "vars",
        [
            ("Source", [step("Fetch", category="Source")]),
            (
                "Build",
                [
                    step("Compile", Target="#{variables.Region}"),
                    step("Check", run_order=2, Mode="fail", Message="tests failed: 3"),
                ],
            ),
        ],
        variables=[{"name": "Region", "defaultValue": "eu-west-1"}],
    )
    await engine.call("CreatePipeline", declared)
    state = await wait_for(engine, "vars", lambda s: stage_status(s, "Build") == "Failed", "fail")
    execution_id = stage_of(state, "Build")["latestExecution"]["pipelineExecutionId"]
    page = await client.get(f"/pipelines/vars/executions/{execution_id}")
    assert page.status_code == 200
    body = fragment(page.text, "execution")
    assert "Region" in body and "eu-west-1" in body  # pipeline variables
    assert re.search(r"<dt>Target</dt><dd[^>]*>eu-west-1</dd>", body)  # resolved configuration
    assert re.search(r"<dt>Result</dt><dd[^>]*>ok</dd>", body)  # output variables
    assert "tests failed: 3" in body
    assert [s for s in re.findall(r'<section class="stage-runs" data-stage="([^"]+)"', body)] == [
        "Source",
        "Build",
    ]


async def test_the_log_page_shows_the_log_of_a_finished_action_without_streaming(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    await waiting_for_approval(engine)
    history = await engine.call("ListActionExecutions", {"pipelineName": "shop"})
    fetch = next(d for d in history["actionExecutionDetails"] if d["actionName"] == "Fetch")
    url = (
        f"/actions/{fetch['actionExecutionId']}/log"
        f"?pipeline=shop&execution={fetch['pipelineExecutionId']}"
    )
    page = (await client.get(url)).text
    assert "step Fetch starts &lt;b&gt;bold&lt;/b&gt;" in page  # escaped, not markup
    assert "data-stream" not in page  # complete: nothing to follow
    assert "Source · Fetch" in page


async def test_the_log_page_of_a_running_action_follows_it_from_where_the_page_ends(
    engine: Engine, client: httpx.AsyncClient, steps: Steps
) -> None:
    held = pipeline(
        "slow",
        [("Source", [step("Fetch", category="Source")]), ("Build", [step("Wait", Mode="hold")])],
    )
    await engine.call("CreatePipeline", held)
    await steps.wait_held("Wait")
    listed = await engine.call("ListActionExecutions", {"pipelineName": "slow"})
    wait = next(d for d in listed["actionExecutionDetails"] if d["actionName"] == "Wait")
    page = (await client.get(f"/actions/{wait['actionExecutionId']}/log")).text
    logged = await engine.read_log(wait["actionExecutionId"])
    stream = re.search(r'data-stream="([^"]+)"', page)
    assert stream, page
    assert stream.group(1) == f"/ui/logs/{wait['actionExecutionId']}?offset={logged.next_offset}"
    assert "step Wait starts" in page
    steps.release("Wait")


async def test_unknown_things_are_error_pages_with_the_message_never_a_traceback(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    missing = await client.get("/pipelines/nope")
    assert missing.status_code == 404
    assert "nope" in missing.text and "pipeline-not-found" in missing.text
    assert "Traceback" not in missing.text
    await waiting_for_approval(engine)
    execution = await client.get("/pipelines/shop/executions/not-an-id")
    assert execution.status_code == 404 and "not-an-id" in execution.text
    log = await client.get("/actions/not-an-id/log")
    assert log.status_code == 404 and "action-not-found" in log.text


async def test_pages_forbid_framing_and_inline_script(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_the_script_and_stylesheet_are_served_by_the_dashboard_itself(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/")).text
    for asset in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page):
        got = await client.get(asset)
        assert got.status_code == 200 and got.content, asset
    assert "https://" not in page  # nothing from a CDN


async def test_get_slash_is_the_dashboard_while_post_slash_stays_the_aws_api(
    client: httpx.AsyncClient,
) -> None:
    aws = await client.post(
        "/",
        content=b"{}",
        headers={
            "X-Amz-Target": "CodePipeline_20150709.ListPipelines",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert aws.status_code == 200 and aws.json() == {"pipelines": []}
    assert "<!doctype html>" in (await client.get("/")).text
