"""Executions through a real engine: stage locks, supersede, queue, run orders, retries, stops,
transitions, updates, variables, continuations, timeouts, approvals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from harness import (
    Steps,
    action,
    latest_execution,
    pipeline,
    running_engine,
    stage_state,
    wait_status,
)

from caravan.actions.base import JobFailed
from caravan.errors import (
    ConcurrentExecutionsLimitError,
    DuplicatedStopRequestError,
    NotLatestPipelineExecutionError,
    PipelineExecutionNotStoppableError,
    StageNotRetryableError,
)


async def test_creating_a_pipeline_starts_an_execution_that_runs_every_stage(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "p",
                [
                    ("Build", [action("Compile", inputs=("Src",), outputs=("Bin",))]),
                    ("Deploy", [action("Ship", category="Deploy", inputs=("Bin",))]),
                ],
            ),
        )
        execution_id = await latest_execution(engine, "p")
        result = await wait_status(engine, "p", execution_id)
    assert result["status"] == "Succeeded"
    assert result["trigger"]["triggerType"] == "CreatePipeline"
    assert [a for _, a in steps.started] == ["Fetch", "Compile", "Ship"]
    assert {a["name"] for a in result["artifactRevisions"]} == {"Src", "Bin"}


async def test_same_run_order_runs_concurrently_and_higher_run_orders_wait(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "p",
                [
                    (
                        "Build",
                        [
                            action("A", mode="hold"),
                            action("B", mode="hold"),
                            action("C", run_order=2),
                        ],
                    )
                ],
            ),
        )
        e = await latest_execution(engine, "p")
        await steps.wait_held(e, "A")
        await steps.wait_held(e, "B")  # both run at once
        assert (e, "C") not in steps.started
        steps.release(e, "A")
        await asyncio.sleep(0.05)
        assert (e, "C") not in steps.started  # B still runs
        steps.release(e, "B")
        assert (await wait_status(engine, "p", e))["status"] == "Succeeded"
    assert steps.started[-1] == (e, "C")


async def test_a_failed_action_fails_the_stage_once_its_siblings_end(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "p",
                [
                    (
                        "Build",
                        [
                            action("Bad", mode="fail", configuration={"Message": "tests failed"}),
                            action("Slow", mode="hold"),
                            action("Later", run_order=2),
                        ],
                    )
                ],
            ),
        )
        e = await latest_execution(engine, "p")
        await steps.wait_held(e, "Slow")
        await asyncio.sleep(0.05)
        state = await stage_state(engine, "p", "Build")
        assert state["latestExecution"]["status"] == "InProgress"
        steps.release(e, "Slow")
        result = await wait_status(engine, "p", e)
        state = await stage_state(engine, "p", "Build")
    assert result["status"] == "Failed"
    assert "tests failed" in result["statusSummary"]
    assert (e, "Later") not in steps.started
    bad = next(a for a in state["actionStates"] if a["actionName"] == "Bad")
    assert bad["latestExecution"]["errorDetails"]["message"] == "tests failed"


async def test_a_newer_execution_supersedes_the_one_waiting_but_not_the_one_inside(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "p",
                [
                    ("Build", [action("Compile", mode="hold")]),
                ],
            ),
        )
        first = await latest_execution(engine, "p")
        await steps.wait_held(first, "Compile")
        second = (await engine.call("StartPipelineExecution", {"name": "p"}))["pipelineExecutionId"]
        await wait_status(engine, "p", second, {"InProgress"})
        await asyncio.sleep(0.05)  # second has passed Source and waits in front of Build
        state = await stage_state(engine, "p", "Build")
        assert state["inboundExecution"]["pipelineExecutionId"] == second
        third = (await engine.call("StartPipelineExecution", {"name": "p"}))["pipelineExecutionId"]
        assert (await wait_status(engine, "p", second))["status"] == "Superseded"
        steps.release(first, "Compile")
        assert (await wait_status(engine, "p", first))["status"] == "Succeeded"
        await steps.wait_held(third, "Compile")
        steps.release(third, "Compile")
        assert (await wait_status(engine, "p", third))["status"] == "Succeeded"
    assert (second, "Compile") not in steps.started


async def test_queued_mode_runs_waiting_executions_in_order_and_caps_them(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url, queue_limit=3) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "q",
                [("Build", [action("Compile", mode="hold")])],
                pipelineType="V2",
                executionMode="QUEUED",
            ),
        )
        first = await latest_execution(engine, "q")
        await steps.wait_held(first, "Compile")
        second = (await engine.call("StartPipelineExecution", {"name": "q"}))["pipelineExecutionId"]
        third = (await engine.call("StartPipelineExecution", {"name": "q"}))["pipelineExecutionId"]
        with pytest.raises(ConcurrentExecutionsLimitError, match="3"):
            await engine.call("StartPipelineExecution", {"name": "q"})
        await asyncio.sleep(0.05)
        state = await stage_state(engine, "q", "Build")
        assert [x["pipelineExecutionId"] for x in state["inboundExecutions"]] == [second, third]
        for execution_id in (first, second, third):
            await steps.wait_held(execution_id, "Compile")
            steps.release(execution_id, "Compile")
            assert (await wait_status(engine, "q", execution_id))["status"] == "Succeeded"


async def test_parallel_mode_executions_do_not_wait_for_each_other(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "par",
                [("Build", [action("Compile", mode="hold")])],
                pipelineType="V2",
                executionMode="PARALLEL",
            ),
        )
        first = await latest_execution(engine, "par")
        second = (await engine.call("StartPipelineExecution", {"name": "par"}))[
            "pipelineExecutionId"
        ]
        await steps.wait_held(first, "Compile")
        await steps.wait_held(second, "Compile")  # both inside the stage at once
        steps.release(second, "Compile")
        steps.release(first, "Compile")
        for execution_id in (first, second):
            assert (await wait_status(engine, "par", execution_id))["status"] == "Succeeded"


async def test_retry_failed_actions_reruns_only_them_on_the_same_execution(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "p",
                [
                    (
                        "Build",
                        [
                            action("Ok"),
                            action("Flaky", mode="hold"),
                            action("Next", run_order=2),
                        ],
                    )
                ],
            ),
        )
        e = await latest_execution(engine, "p")
        await steps.wait_held(e, "Flaky")
        steps.release(e, "Flaky", JobFailed("flaked"))
        assert (await wait_status(engine, "p", e))["status"] == "Failed"
        retried = await engine.call(
            "RetryStageExecution",
            {
                "pipelineName": "p",
                "stageName": "Build",
                "pipelineExecutionId": e,
                "retryMode": "FAILED_ACTIONS",
            },
        )
        assert retried["pipelineExecutionId"] == e
        await steps.wait_held(e, "Flaky")
        steps.release(e, "Flaky")
        assert (await wait_status(engine, "p", e))["status"] == "Succeeded"
        state = await stage_state(engine, "p", "Build")
    names = [a for x, a in steps.started if x == e]
    assert names.count("Ok") == 1 and names.count("Flaky") == 2 and names.count("Next") == 1
    assert state["retryStageMetadata"]["manualStageRetryAttempt"] == 1


async def test_retry_all_actions_reruns_the_whole_stage(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "p",
                [
                    (
                        "Build",
                        [
                            action("Ok"),
                            action("Bad", mode="fail"),
                        ],
                    )
                ],
            ),
        )
        e = await latest_execution(engine, "p")
        await wait_status(engine, "p", e)
        await engine.call(
            "RetryStageExecution",
            {
                "pipelineName": "p",
                "stageName": "Build",
                "pipelineExecutionId": e,
                "retryMode": "ALL_ACTIONS",
            },
        )
        await wait_status(engine, "p", e)
    assert [a for x, a in steps.started if x == e].count("Ok") == 2


async def test_a_failed_execution_overtaken_in_its_stage_cannot_be_retried(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline", pipeline("p", [("Build", [action("Compile", mode="hold")])])
        )
        first = await latest_execution(engine, "p")
        await steps.wait_held(first, "Compile")
        second = (await engine.call("StartPipelineExecution", {"name": "p"}))["pipelineExecutionId"]
        await asyncio.sleep(0.05)
        steps.release(first, "Compile", JobFailed("broken"))
        assert (await wait_status(engine, "p", first))["status"] == "Failed"
        await steps.wait_held(second, "Compile")  # the waiting one entered the released stage
        with pytest.raises(NotLatestPipelineExecutionError):
            await engine.call(
                "RetryStageExecution",
                {
                    "pipelineName": "p",
                    "stageName": "Build",
                    "pipelineExecutionId": first,
                    "retryMode": "FAILED_ACTIONS",
                },
            )
        steps.release(second, "Compile")
        await wait_status(engine, "p", second)


async def test_retrying_a_stage_without_failed_actions_is_refused(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call("CreatePipeline", pipeline("p", [("Build", [action("Ok")])]))
        e = await latest_execution(engine, "p")
        await wait_status(engine, "p", e)
        with pytest.raises(StageNotRetryableError):
            await engine.call(
                "RetryStageExecution",
                {
                    "pipelineName": "p",
                    "stageName": "Build",
                    "pipelineExecutionId": e,
                    "retryMode": "FAILED_ACTIONS",
                },
            )


async def test_stop_and_wait_lets_running_actions_finish_and_starts_nothing_new(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "p", [("Build", [action("Compile", mode="hold"), action("After", run_order=2)])]
            ),
        )
        e = await latest_execution(engine, "p")
        await steps.wait_held(e, "Compile")
        await engine.call(
            "StopPipelineExecution",
            {"pipelineName": "p", "pipelineExecutionId": e, "reason": "hold on"},
        )
        assert (await wait_status(engine, "p", e, {"Stopping"}))["status"] == "Stopping"
        with pytest.raises(DuplicatedStopRequestError):
            await engine.call(
                "StopPipelineExecution", {"pipelineName": "p", "pipelineExecutionId": e}
            )
        steps.release(e, "Compile")
        assert (await wait_status(engine, "p", e))["status"] == "Stopped"
        with pytest.raises(PipelineExecutionNotStoppableError):
            await engine.call(
                "StopPipelineExecution", {"pipelineName": "p", "pipelineExecutionId": e}
            )
    assert (e, "After") not in steps.started
    assert steps.cancelled == []


async def test_stop_and_abandon_cancels_the_local_work_at_once(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline", pipeline("p", [("Build", [action("Compile", mode="hold")])])
        )
        e = await latest_execution(engine, "p")
        await steps.wait_held(e, "Compile")
        await engine.call(
            "StopPipelineExecution",
            {"pipelineName": "p", "pipelineExecutionId": e, "abandon": True},
        )
        assert (await wait_status(engine, "p", e))["status"] == "Stopped"
        await asyncio.sleep(0.05)
        state = await stage_state(engine, "p", "Build")
    assert steps.cancelled == [(e, "Compile")]
    assert state["actionStates"][0]["latestExecution"]["status"] == "Abandoned"


async def test_a_disabled_transition_holds_executions_until_enabled(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call("CreatePipeline", pipeline("p", [("Build", [action("Compile")])]))
        first = await latest_execution(engine, "p")
        await wait_status(engine, "p", first)
        await engine.call(
            "DisableStageTransition",
            {
                "pipelineName": "p",
                "stageName": "Build",
                "transitionType": "Inbound",
                "reason": "release freeze",
            },
        )
        e = (await engine.call("StartPipelineExecution", {"name": "p"}))["pipelineExecutionId"]
        await asyncio.sleep(0.1)
        state = await stage_state(engine, "p", "Build")
        assert state["inboundTransitionState"]["enabled"] is False
        assert state["inboundTransitionState"]["disabledReason"] == "release freeze"
        assert state["inboundExecution"]["pipelineExecutionId"] == e
        assert (e, "Compile") not in steps.started
        await engine.call(
            "EnableStageTransition",
            {"pipelineName": "p", "stageName": "Build", "transitionType": "Inbound"},
        )
        assert (await wait_status(engine, "p", e))["status"] == "Succeeded"


async def test_updating_a_pipeline_cancels_its_running_execution(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        decl = pipeline("p", [("Build", [action("Compile", mode="hold")])])
        await engine.call("CreatePipeline", decl)
        e = await latest_execution(engine, "p")
        await steps.wait_held(e, "Compile")
        updated = await engine.call("UpdatePipeline", decl)
        result = await wait_status(engine, "p", e)
        got = await engine.call("GetPipeline", {"name": "p"})
    assert updated["pipeline"]["version"] == 2 and got["pipeline"]["version"] == 2
    assert result["status"] == "Cancelled"
    assert "definition was updated" in result["statusSummary"]
    assert steps.cancelled == [(e, "Compile")]


async def test_variables_flow_from_namespaces_and_pipeline_variables(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline(
                "p",
                [
                    (
                        "Build",
                        [
                            action(
                                "Compile",
                                namespace="BuildVars",
                                configuration={"Outputs": '{"Image": "app:42"}'},
                            )
                        ],
                    ),
                    (
                        "Deploy",
                        [
                            action(
                                "Ship",
                                category="Deploy",
                                configuration={
                                    "Target": "#{BuildVars.Image} to #{variables.Env} in "
                                    "#{codepipeline.PipelineExecutionId}"
                                },
                            )
                        ],
                    ),
                ],
                pipelineType="V2",
                variables=[{"name": "Env", "defaultValue": "test"}],
            ),
        )
        first = await latest_execution(engine, "p")
        await wait_status(engine, "p", first)
        e = (
            await engine.call(
                "StartPipelineExecution",
                {"name": "p", "variables": [{"name": "Env", "value": "prod"}]},
            )
        )["pipelineExecutionId"]
        await wait_status(engine, "p", e)
        actions = await engine.call(
            "ListActionExecutions", {"pipelineName": "p", "filter": {"pipelineExecutionId": e}}
        )
        execution = await engine.call(
            "GetPipelineExecution", {"pipelineName": "p", "pipelineExecutionId": e}
        )
    ship = next(a for a in actions["actionExecutionDetails"] if a["actionName"] == "Ship")
    assert ship["input"]["resolvedConfiguration"]["Target"] == f"app:42 to prod in {e}"
    assert ship["input"]["configuration"]["Target"].startswith("#{BuildVars.Image}")
    assert execution["pipelineExecution"]["variables"] == [{"name": "Env", "resolvedValue": "prod"}]


async def test_a_continuation_token_keeps_the_action_running_and_dispatches_again(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(
        tmp_path, steps, database_url=database_url, continuation_delay=0.05
    ) as engine:
        await engine.call(
            "CreatePipeline", pipeline("p", [("Build", [action("Poll", mode="continue")])])
        )
        e = await latest_execution(engine, "p")
        assert (await wait_status(engine, "p", e))["status"] == "Succeeded"
    assert [a for x, a in steps.started if x == e and a == "Poll"] == ["Poll", "Poll"]
    assert steps.tokens[-2:] == [None, "1"]


async def test_an_action_that_exceeds_its_timeout_fails(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline("p", [("Build", [action("Stuck", mode="hold", timeoutInSeconds=1)])]),
        )
        e = await latest_execution(engine, "p")
        result = await wait_status(engine, "p", e)
    assert result["status"] == "Failed"
    assert "timed out after 1 seconds" in result["statusSummary"]
    assert steps.cancelled == [(e, "Stuck")]


async def test_a_manual_approval_waits_for_its_result(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    approval = {
        "name": "Approve",
        "actionTypeId": {
            "category": "Approval",
            "owner": "AWS",
            "provider": "Manual",
            "version": "1",
        },
    }
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call(
            "CreatePipeline",
            pipeline("p", [("Gate", [approval]), ("Deploy", [action("Ship", category="Deploy")])]),
        )
        e = await latest_execution(engine, "p")
        await asyncio.sleep(0.1)
        state = await stage_state(engine, "p", "Gate")
        token = state["actionStates"][0]["latestExecution"]["token"]
        assert (e, "Ship") not in steps.started
        await engine.call(
            "PutApprovalResult",
            {
                "pipelineName": "p",
                "stageName": "Gate",
                "actionName": "Approve",
                "token": token,
                "result": {"status": "Approved", "summary": "looks good"},
            },
        )
        assert (await wait_status(engine, "p", e))["status"] == "Succeeded"

        second = (await engine.call("StartPipelineExecution", {"name": "p"}))["pipelineExecutionId"]
        await asyncio.sleep(0.1)
        token = (await stage_state(engine, "p", "Gate"))["actionStates"][0]["latestExecution"][
            "token"
        ]
        await engine.call(
            "PutApprovalResult",
            {
                "pipelineName": "p",
                "stageName": "Gate",
                "actionName": "Approve",
                "token": token,
                "result": {"status": "Rejected", "summary": "not today"},
            },
        )
        result = await wait_status(engine, "p", second)
    assert result["status"] == "Failed" and "not today" in result["statusSummary"]


async def test_an_action_type_without_a_provider_fails_at_once_naming_it(tmp_path: Path) -> None:
    steps = Steps()
    unknown = {
        "name": "Mystery",
        "actionTypeId": {
            "category": "Deploy",
            "owner": "AWS",
            "provider": "Teleport",
            "version": "1",
        },
    }
    async with running_engine(tmp_path, steps) as engine:
        await engine.call("CreatePipeline", pipeline("p", [("Deploy", [unknown])]))
        result = await wait_status(engine, "p", await latest_execution(engine, "p"))
    assert result["status"] == "Failed"
    assert "no action provider for actionTypeId Deploy/AWS/Teleport/1" in result["statusSummary"]
