"""The dashboard's buttons: each form runs the right operation on a real engine, only when it
comes from the dashboard's own page, and errors come back as messages, never tracebacks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from dashboard_support import (
    Steps,
    approval,
    client_for,
    dashboard_app,
    form_fields,
    fragment,
    pipeline,
    running_engine,
    stage_of,
    stage_status,
    step,
    wait_for,
)
from fake_engine import FakeEngine, declaration

from caravan.engine.engine import Engine

FETCH = {"X-Caravan-Dashboard": "fetch"}


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
        ("Build", [step("Compile", Mode="hold")]),
        ("Release", [approval("Approve"), step("Deploy", category="Deploy", run_order=2)]),
    ],
    variables=[{"name": "Region", "defaultValue": "eu-west-1"}],
)


async def at_approval(engine: Engine, steps: Steps) -> None:
    await engine.call("CreatePipeline", RELEASE)
    await steps.wait_held("Compile")
    steps.release("Compile")
    await wait_for(engine, "shop", lambda s: stage_status(s, "Release") == "InProgress", "approval")


async def fields_of(client: httpx.AsyncClient, action: str, **extra: str) -> dict[str, str]:
    page = (await client.get("/pipelines/shop")).text
    return {**form_fields(page, action), **extra}


async def test_approve_with_a_summary_approves_and_the_stage_goes_on(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await at_approval(engine, steps)
    form = await fields_of(
        client, "/pipelines/shop/approval", decision="Approved", summary="looks good"
    )
    answer = await client.post("/pipelines/shop/approval", data=form)
    assert answer.status_code == 303 and answer.headers["location"] == "/pipelines/shop"
    state = await wait_for(
        engine, "shop", lambda s: stage_status(s, "Release") == "Succeeded", "release"
    )
    approve = stage_of(state, "Release")["actionStates"][0]["latestExecution"]
    assert approve["status"] == "Succeeded" and approve["summary"] == "looks good"


async def test_reject_fails_the_stage_and_offers_retry(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await at_approval(engine, steps)
    form = await fields_of(client, "/pipelines/shop/approval", decision="Rejected")
    answer = await client.post("/pipelines/shop/approval", data=form, headers=FETCH)
    assert answer.json()["ok"] is True
    assert answer.json()["message"] == "Rejected Release/Approve"
    await wait_for(engine, "shop", lambda s: stage_status(s, "Release") == "Failed", "rejection")
    release = fragment((await client.get("/pipelines/shop")).text, "stage-Release")
    assert 'data-role="retry"' in release


async def test_retry_failed_actions_runs_the_failed_action_again_in_the_same_execution(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await at_approval(engine, steps)
    form = await fields_of(client, "/pipelines/shop/approval", decision="Rejected")
    await client.post("/pipelines/shop/approval", data=form)
    state = await wait_for(engine, "shop", lambda s: stage_status(s, "Release") == "Failed", "f")
    execution_id = stage_of(state, "Release")["latestExecution"]["pipelineExecutionId"]
    retry = await fields_of(client, "/pipelines/shop/retry", mode="FAILED_ACTIONS")
    assert retry["execution"] == execution_id
    answer = await client.post("/pipelines/shop/retry", data=retry, headers=FETCH)
    assert answer.json()["ok"] is True, answer.json()
    state = await wait_for(
        engine, "shop", lambda s: stage_status(s, "Release") == "InProgress", "retry"
    )
    assert stage_of(state, "Release")["latestExecution"]["pipelineExecutionId"] == execution_id
    assert stage_of(state, "Release")["retryStageMetadata"]["manualStageRetryAttempt"] == 1


async def test_start_passes_the_pipeline_variables_of_the_form(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await at_approval(engine, steps)
    form = await fields_of(client, "/pipelines/shop/start", **{"var.Region": "ap-south-1"})
    answer = await client.post("/pipelines/shop/start", data=form, headers=FETCH)
    body = answer.json()
    assert body["ok"] is True and body["message"].startswith("Started execution ")
    execution_id = body["message"].removeprefix("Started execution ")
    got = await engine.call(
        "GetPipelineExecution", {"pipelineName": "shop", "pipelineExecutionId": execution_id}
    )
    assert got["pipelineExecution"]["variables"] == [
        {"name": "Region", "resolvedValue": "ap-south-1"}
    ]
    # The answer carries the page's fragments as they are now: the new execution is listed.
    history = next(f for f in body["fragments"] if f["id"] == "history")
    assert execution_id in history["html"]


async def test_stop_and_abandon_stop_the_running_execution(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await engine.call("CreatePipeline", RELEASE)
    await steps.wait_held("Compile")
    form = await fields_of(client, "/pipelines/shop/stop", mode="abandon", reason="wrong branch")
    answer = await client.post("/pipelines/shop/stop", data=form, headers=FETCH)
    assert answer.json()["ok"] is True
    listed = await engine.call("ListPipelineExecutions", {"pipelineName": "shop"})
    [summary] = listed["pipelineExecutionSummaries"]
    assert summary["status"] in ("Stopping", "Stopped")
    assert summary["stopTrigger"]["reason"] == "wrong branch"


async def test_a_stopping_execution_can_still_be_abandoned_but_not_stopped_again(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await engine.call("CreatePipeline", RELEASE)
    await steps.wait_held("Compile")
    form = await fields_of(client, "/pipelines/shop/stop", mode="stop")
    answer = await client.post("/pipelines/shop/stop", data=form, headers=FETCH)
    assert answer.json()["message"].endswith("(letting running actions finish)")
    controls = fragment((await client.get("/pipelines/shop")).text, "controls")
    assert 'data-status="Stopping"' in controls
    assert 'data-role="abandon"' in controls and 'data-role="stop"' not in controls
    steps.release("Compile")  # the running action finishes; nothing starts after it
    await wait_for(engine, "shop", lambda s: stage_status(s, "Build") == "Stopped", "the stop")
    build = fragment((await client.get("/pipelines/shop")).text, "stage-Build")
    assert 'data-role="retry"' in build  # a stopped stage can be retried


async def test_disable_then_enable_a_transition(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await at_approval(engine, steps)
    page = (await client.get("/pipelines/shop")).text
    form = {
        **form_fields(fragment(page, "stage-Release"), "/pipelines/shop/transition"),
        "reason": "freeze (until Monday)",
    }
    assert form["stage"] == "Release" and form["change"] == "disable"
    await client.post("/pipelines/shop/transition", data=form)
    state = await engine.call("GetPipelineState", {"name": "shop"})
    assert stage_of(state, "Release")["inboundTransitionState"] == {
        "enabled": False,
        "disabledReason": "freeze (until Monday)",
        "lastChangedBy": stage_of(state, "Release")["inboundTransitionState"]["lastChangedBy"],
        "lastChangedAt": stage_of(state, "Release")["inboundTransitionState"]["lastChangedAt"],
    }
    page = (await client.get("/pipelines/shop")).text
    enable = form_fields(fragment(page, "stage-Release"), "/pipelines/shop/transition")
    assert enable["change"] == "enable"
    answer = await client.post("/pipelines/shop/transition", data=enable, headers=FETCH)
    assert answer.json()["message"] == "Enabled the transition into Release"
    state = await engine.call("GetPipelineState", {"name": "shop"})
    assert stage_of(state, "Release")["inboundTransitionState"]["enabled"] is True


async def test_an_engine_refusal_is_shown_with_its_message(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await at_approval(engine, steps)
    form = await fields_of(client, "/pipelines/shop/approval", decision="Approved")
    await client.post("/pipelines/shop/approval", data=form)
    # The same (now used) token again: the page that sent it was stale.
    again = await client.post("/pipelines/shop/approval", data=form)
    assert again.status_code == 409
    assert "<!doctype html>" in again.text and "Traceback" not in again.text
    assert 'href="/pipelines/shop"' in again.text  # a way back
    as_json = await client.post("/pipelines/shop/approval", data=form, headers=FETCH)
    assert as_json.status_code == 409
    assert as_json.json()["ok"] is False and as_json.json()["__type"].endswith("Exception")
    bad_reason = await fields_of(
        client, "/pipelines/shop/transition", stage="Build", change="disable", reason="<no>"
    )
    refused = await client.post("/pipelines/shop/transition", data=bad_reason, headers=FETCH)
    assert refused.status_code == 400 and "reason" in refused.json()["message"]


async def test_missing_or_unknown_fields_name_the_field(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await at_approval(engine, steps)
    form = await fields_of(client, "/pipelines/shop/approval", decision="Maybe")
    answer = await client.post("/pipelines/shop/approval", data=form, headers=FETCH)
    assert answer.status_code == 400
    assert "'decision'" in answer.json()["message"] and "Rejected" in answer.json()["message"]
    form = await fields_of(client, "/pipelines/shop/approval", decision="Approved")
    del form["approval_token"]
    answer = await client.post("/pipelines/shop/approval", data=form, headers=FETCH)
    assert answer.status_code == 400 and "'approval_token'" in answer.json()["message"]


async def test_a_form_without_this_servers_token_for_its_path_is_refused(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await at_approval(engine, steps)
    form = await fields_of(client, "/pipelines/shop/start")
    del form["csrf"]
    missing = await client.post("/pipelines/shop/start", data=form)
    assert missing.status_code == 403 and "csrf" in missing.text
    # A token minted for another form's path opens only that path.
    stop_token = (await fields_of(client, "/pipelines/shop/stop"))["csrf"]
    wrong = await client.post("/pipelines/shop/start", data={**form, "csrf": stop_token})
    assert wrong.status_code == 403
    listed = await engine.call("ListPipelineExecutions", {"pipelineName": "shop"})
    assert len(listed["pipelineExecutionSummaries"]) == 1  # nothing started


async def test_a_form_posted_from_another_site_is_refused_even_with_a_token(
    engine: Engine, steps: Steps, client: httpx.AsyncClient
) -> None:
    await at_approval(engine, steps)
    form = await fields_of(client, "/pipelines/shop/start")
    for site in ("cross-site", "same-site"):
        answer = await client.post(
            "/pipelines/shop/start", data=form, headers={"Sec-Fetch-Site": site}
        )
        assert answer.status_code == 403 and "another site" in answer.text
    same = await client.post(
        "/pipelines/shop/start", data=form, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert same.status_code == 303


async def test_a_form_that_is_not_urlencoded_utf8_or_is_too_big_is_refused(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/pipelines/shop/start", json={"csrf": "x"}, headers=FETCH)
    assert answer.status_code == 400
    assert "application/x-www-form-urlencoded" in answer.json()["message"]
    form = {"Content-Type": "application/x-www-form-urlencoded", **FETCH}
    latin = await client.post("/pipelines/shop/start", content=b"csrf=\xe9t\xe9", headers=form)
    assert latin.status_code == 400 and "UTF-8" in latin.json()["message"]
    huge = await client.post("/pipelines/shop/start", content=b"a=" + b"x" * 70_000, headers=form)
    assert huge.status_code == 413


async def test_an_unexpected_failure_is_an_internal_error_message_not_a_traceback() -> None:
    fake = FakeEngine()
    fake.add_pipeline(declaration("demo"))
    async with client_for(dashboard_app(fake)) as client:
        page = (await client.get("/pipelines/demo")).text
        form = form_fields(page, "/pipelines/demo/start")
        fake.explode = RuntimeError("disk on fire")
        answer = await client.post("/pipelines/demo/start", data=form)
        assert answer.status_code == 500
        assert "internal error" in answer.text and "disk on fire" not in answer.text
        fake.explode = RuntimeError("disk on fire")
        page_answer = await client.get("/pipelines/demo")
        assert page_answer.status_code == 500 and "Traceback" not in page_answer.text
