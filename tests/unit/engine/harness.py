"""A real engine (SQLite, filesystem artifacts) with step providers a test controls.

Actions of type {Source|Build|Test|Deploy, Custom, Step, "1"} run ``Steps.provider``: by the
action's configuration ``Mode`` they succeed at once, fail, or hold until the test releases them
with ``steps.release(execution_id, action, result)``. Every start is recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caravan.actions.base import Job, JobContext, JobFailed, JobResult, JobSucceeded
from caravan.actions.registry import ProviderKind, ProviderRegistry
from caravan.artifacts.zipfiles import zip_files
from caravan.engine.engine import Engine
from caravan.engine.runtime import open_engine

TERMINAL = {"Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"}


@dataclass
class Steps:
    started: list[tuple[str, str]] = field(default_factory=list)  # (execution id, action)
    cancelled: list[tuple[str, str]] = field(default_factory=list)
    holds: dict[tuple[str, str], asyncio.Future[JobResult]] = field(default_factory=dict)
    tokens: list[str | None] = field(default_factory=list)
    started_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def provider(self, job: Job, ctx: JobContext) -> JobResult:
        key = (job.pipeline_execution_id, job.action_name)
        self.started.append(key)
        self.tokens.append(job.continuation_token)
        self.started_event.set()
        ctx.log(f"step {job.action_name} of {job.pipeline_execution_id} starts")
        mode = job.configuration.get("Mode", "succeed")
        for artifact in job.output_artifacts:
            data = zip_files({"out.txt": f"{job.action_name}:{job.pipeline_execution_id}".encode()})
            ctx.artifacts.put_bytes(artifact.bucket, artifact.key, data)
        if mode == "fail":
            return JobFailed(job.configuration.get("Message", "step failed"))
        if mode == "continue" and job.continuation_token is None:
            return JobSucceeded(continuation_token="1", summary="halfway")
        if mode == "hold":
            future: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
            self.holds[key] = future
            self.started_event.set()
            try:
                return await future
            except asyncio.CancelledError:
                self.cancelled.append(key)
                raise
        variables = json.loads(job.configuration.get("Outputs", "{}"))
        return JobSucceeded(output_variables=variables, summary=f"{job.action_name} done")

    async def wait_held(self, execution_id: str, action: str) -> None:
        """Wait (at most 5 s) until the action has started and is holding."""
        async with asyncio.timeout(5.0):
            while (execution_id, action) not in self.holds:
                self.started_event.clear()
                await self.started_event.wait()

    def release(self, execution_id: str, action: str, result: JobResult | None = None) -> None:
        self.holds.pop((execution_id, action)).set_result(result or JobSucceeded())


def step_registry(steps: Steps) -> ProviderRegistry:
    registry = ProviderRegistry()
    for category in ("Source", "Build", "Test", "Deploy", "Invoke"):
        registry.add(category, "Custom", "Step", "1", steps.provider)
    registry.add("Approval", "AWS", "Manual", "1", kind=ProviderKind.APPROVAL)
    return registry


def action(
    name: str,
    *,
    category: str = "Build",
    run_order: int = 1,
    mode: str = "succeed",
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    configuration = {"Mode": mode, **extra.pop("configuration", {})}
    body: dict[str, Any] = {
        "name": name,
        "actionTypeId": {
            "category": category,
            "owner": "Custom",
            "provider": "Step",
            "version": "1",
        },
        "runOrder": run_order,
        "configuration": configuration,
        "inputArtifacts": [{"name": n} for n in inputs],
        "outputArtifacts": [{"name": n} for n in outputs],
    }
    body.update(extra)
    return body


def pipeline(
    name: str, stages: list[tuple[str, list[dict[str, Any]]]], **extra: Any
) -> dict[str, Any]:
    if not stages or stages[0][0] != "Source":
        stages = [("Source", [action("Fetch", category="Source", outputs=("Src",))]), *stages]
    return {
        "pipeline": {
            "name": name,
            "roleArn": "arn:aws:iam::000000000000:role/test",
            "stages": [{"name": s, "actions": acts} for s, acts in stages],
            **extra,
        }
    }


@asynccontextmanager
async def running_engine(tmp_path: Path, steps: Steps, **settings: Any) -> AsyncIterator[Engine]:
    async with open_engine(
        data_dir=tmp_path / "data",
        database_url=settings.pop("database_url", None),
        settings={"continuation_delay": 0.01, **settings},
        registry=step_registry(steps),
    ) as engine:
        yield engine


async def wait_status(
    engine: Engine,
    pipeline_name: str,
    execution_id: str,
    statuses: set[str] | None = None,
) -> dict[str, Any]:
    """Wait (at most 10 s) for an execution to reach one of ``statuses`` (default: any
    terminal status)."""
    wanted = statuses or TERMINAL
    async with asyncio.timeout(10.0):
        while True:
            body = await engine.call(
                "GetPipelineExecution",
                {"pipelineName": pipeline_name, "pipelineExecutionId": execution_id},
            )
            if body["pipelineExecution"]["status"] in wanted:
                return body["pipelineExecution"]
            await asyncio.sleep(0.01)


async def latest_execution(engine: Engine, name: str) -> str:
    body = await engine.call("ListPipelineExecutions", {"pipelineName": name})
    return str(body["pipelineExecutionSummaries"][0]["pipelineExecutionId"])


async def stage_state(engine: Engine, name: str, stage: str) -> dict[str, Any]:
    body = await engine.call("GetPipelineState", {"name": name})
    return next(s for s in body["stageStates"] if s["stageName"] == stage)
