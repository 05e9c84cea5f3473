"""The job-worker API (§1.14) through a real engine: a Custom action without a provider waits for
an external worker, who polls, acknowledges with the nonce, reads details and reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from harness import Steps, action, latest_execution, pipeline, running_engine, wait_status

from caravan.errors import InvalidJobStateError, InvalidNonceError, JobNotFoundError

WORKER_TYPE = {"category": "Deploy", "owner": "Custom", "provider": "Rocket", "version": "1"}


def worker_action(name: str) -> dict:
    return {
        "name": name,
        "actionTypeId": WORKER_TYPE,
        "configuration": {"Target": "moon"},
        "inputArtifacts": [{"name": "Src"}],
        "outputArtifacts": [{"name": "Out"}],
    }


async def poll(engine, max_batch: int = 5) -> list[dict]:
    for _ in range(100):
        jobs = (
            await engine.call(
                "PollForJobs", {"actionTypeId": WORKER_TYPE, "maxBatchSize": max_batch}
            )
        )["jobs"]
        if jobs:
            return jobs
        await asyncio.sleep(0.02)
    return []


async def test_a_worker_polls_acknowledges_and_succeeds_with_a_continuation(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(
        tmp_path, steps, database_url=database_url, continuation_delay=0.01
    ) as engine:
        await engine.call("CreatePipeline", pipeline("p", [("Launch", [worker_action("Fly")])]))
        e = await latest_execution(engine, "p")
        [job] = await poll(engine)
        data = job["data"]
        assert data["actionConfiguration"]["configuration"] == {"Target": "moon"}
        assert data["pipelineContext"]["pipelineExecutionId"] == e
        assert data["inputArtifacts"][0]["location"]["s3Location"]["objectKey"]
        assert data["outputArtifacts"][0]["name"] == "Out"
        assert set(data["artifactCredentials"]) == {
            "accessKeyId",
            "secretAccessKey",
            "sessionToken",
        }
        assert await engine.call("PollForJobs", {"actionTypeId": WORKER_TYPE}) == {"jobs": []}
        with pytest.raises(InvalidNonceError):
            await engine.call("AcknowledgeJob", {"jobId": job["id"], "nonce": "wrong"})
        ack = await engine.call("AcknowledgeJob", {"jobId": job["id"], "nonce": job["nonce"]})
        assert ack == {"status": "InProgress"}
        details = await engine.call("GetJobDetails", {"jobId": job["id"]})
        assert details["jobDetails"]["data"]["pipelineContext"]["action"]["name"] == "Fly"
        await engine.call(
            "PutJobSuccessResult",
            {
                "jobId": job["id"],
                "continuationToken": "stage-2",
                "executionDetails": {"summary": "halfway", "percentComplete": 50},
            },
        )
        with pytest.raises(InvalidJobStateError):
            await engine.call("PutJobSuccessResult", {"jobId": job["id"]})
        [again] = await poll(engine)
        assert again["id"] != job["id"]
        assert again["data"]["continuationToken"] == "stage-2"
        await engine.call("AcknowledgeJob", {"jobId": again["id"], "nonce": again["nonce"]})
        await engine.call(
            "PutJobSuccessResult",
            {
                "jobId": again["id"],
                "outputVariables": {"Landed": "yes"},
                "executionDetails": {"summary": "landed", "externalExecutionId": "flight-7"},
            },
        )
        result = await wait_status(engine, "p", e)
        actions = await engine.call(
            "ListActionExecutions", {"pipelineName": "p", "filter": {"pipelineExecutionId": e}}
        )
    assert result["status"] == "Succeeded"
    fly = next(a for a in actions["actionExecutionDetails"] if a["actionName"] == "Fly")
    assert fly["output"]["outputVariables"] == {"Landed": "yes"}
    assert fly["output"]["executionResult"]["externalExecutionId"] == "flight-7"


async def test_a_worker_failure_fails_the_action_with_its_details(
    tmp_path: Path, database_url: str | None
) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps, database_url=database_url) as engine:
        await engine.call("CreatePipeline", pipeline("p", [("Launch", [worker_action("Fly")])]))
        e = await latest_execution(engine, "p")
        [job] = await poll(engine)
        await engine.call(
            "PutJobFailureResult",
            {
                "jobId": job["id"],
                "failureDetails": {"type": "ConfigurationError", "message": "no launch window"},
            },
        )
        result = await wait_status(engine, "p", e)
        state = await engine.call("GetPipelineState", {"name": "p"})
        with pytest.raises(JobNotFoundError):
            await engine.call("GetJobDetails", {"jobId": "no-such-job"})
    assert result["status"] == "Failed"
    launch = next(s for s in state["stageStates"] if s["stageName"] == "Launch")
    assert launch["actionStates"][0]["latestExecution"]["errorDetails"] == {
        "code": "ConfigurationError",
        "message": "no launch window",
    }


async def test_output_variables_with_a_continuation_token_are_refused(tmp_path: Path) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps) as engine:
        await engine.call("CreatePipeline", pipeline("p", [("Launch", [worker_action("Fly")])]))
        [job] = await poll(engine)
        with pytest.raises(Exception, match="only be sent without a continuationToken"):
            await engine.call(
                "PutJobSuccessResult",
                {"jobId": job["id"], "continuationToken": "t", "outputVariables": {"a": "b"}},
            )


async def test_an_action_log_can_be_read_and_followed_until_it_ends(tmp_path: Path) -> None:
    steps = Steps()
    async with running_engine(tmp_path, steps) as engine:
        await engine.call(
            "CreatePipeline", pipeline("p", [("Build", [action("Slow", mode="hold")])])
        )
        e = await latest_execution(engine, "p")
        await steps.wait_held(e, "Slow")
        actions = await engine.call("ListActionExecutions", {"pipelineName": "p"})
        slow = next(a for a in actions["actionExecutionDetails"] if a["actionName"] == "Slow")
        chunk = await engine.read_log(slow["actionExecutionId"])
        assert f"step Slow of {e} starts" in chunk.text and not chunk.complete
        followed: list[str] = []

        async def follow() -> None:
            async for text in engine.follow_log(slow["actionExecutionId"]):
                followed.append(text)

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        steps.release(e, "Slow")
        await asyncio.wait_for(follower, 5)
        done = await engine.read_log(slow["actionExecutionId"])
    assert "starts" in "".join(followed)
    assert done.complete
