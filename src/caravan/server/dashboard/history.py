"""Executions as the dashboard lists and details them: history rows (status, trigger, commit,
start, duration), the pipelines overview, one execution's stages and actions, an action's log.

Commit ids come from ListPipelineExecutions' ``sourceRevisions``; commit messages only exist in
GetPipelineExecution's ``artifactRevisions``, so each row costs one more (cheap, concurrent) call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from caravan.engine.api import EngineAPI
from caravan.errors import ActionNotFoundError, CaravanError
from caravan.server.board import Operations, duration_of, first_line
from caravan.server.dashboard.views import RUNNING

_MAX_ACTION_PAGES = 20


@dataclass(frozen=True)
class ExecutionRow:
    id: str
    status: str
    trigger_type: str
    trigger_detail: str
    commit: str
    message: str
    started: float | None
    duration: float | None
    stop_reason: str

    @property
    def running(self) -> bool:
        return self.status in RUNNING


@dataclass(frozen=True)
class History:
    rows: list[ExecutionRow]
    next_token: str | None


@dataclass(frozen=True)
class PipelineRow:
    name: str
    version: int
    pipeline_type: str
    execution_mode: str
    latest: ExecutionRow | None


async def load_history(
    engine: Operations, name: str, *, limit: int, next_token: str | None = None
) -> History:
    request: dict[str, Any] = {"pipelineName": name, "maxResults": limit}
    if next_token:
        request["nextToken"] = next_token
    listed = await engine.call("ListPipelineExecutions", request)
    summaries = listed.get("pipelineExecutionSummaries", [])[:limit]
    executions = await asyncio.gather(*(_execution(engine, name, s) for s in summaries))
    now = time.time()
    rows = [_row(s, e, now) for s, e in zip(summaries, executions, strict=True)]
    return History(rows=rows, next_token=listed.get("nextToken"))


async def _execution(engine: Operations, name: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    request = {"pipelineName": name, "pipelineExecutionId": summary["pipelineExecutionId"]}
    try:
        got = await engine.call("GetPipelineExecution", request)
    except CaravanError:
        return {}  # deleted in between: the row still shows what the summary knows
    execution: dict[str, Any] = got.get("pipelineExecution", {})
    return execution


def _row(summary: Mapping[str, Any], execution: Mapping[str, Any], now: float) -> ExecutionRow:
    trigger = summary.get("trigger") or execution.get("trigger") or {}
    revisions = summary.get("sourceRevisions") or []
    artifacts = execution.get("artifactRevisions") or []
    commit = str((revisions[0] if revisions else {}).get("revisionId") or "")
    message = ""
    for artifact in artifacts:
        if not commit or artifact.get("revisionId") == commit:
            commit = commit or str(artifact.get("revisionId") or "")
            message = first_line(artifact.get("revisionSummary"))
            if message:
                break
    return ExecutionRow(
        id=str(summary.get("pipelineExecutionId", "")),
        status=str(summary.get("status", "")),
        trigger_type=str(trigger.get("triggerType", "")),
        trigger_detail=str(trigger.get("triggerDetail", "")),
        commit=commit,
        message=message,
        started=summary.get("startTime"),
        duration=duration_of(summary, now),
        stop_reason=str((summary.get("stopTrigger") or {}).get("reason") or ""),
    )


async def load_pipelines(engine: Operations) -> list[PipelineRow]:
    listed = await engine.call("ListPipelines", {})
    pipelines = listed.get("pipelines", [])
    latest = await asyncio.gather(*(_latest(engine, p["name"]) for p in pipelines))
    return [
        PipelineRow(
            name=str(p["name"]),
            version=int(p.get("version") or 1),
            pipeline_type=str(p.get("pipelineType") or "V1"),
            execution_mode=str(p.get("executionMode") or "SUPERSEDED"),
            latest=row,
        )
        for p, row in zip(pipelines, latest, strict=True)
    ]


async def _latest(engine: Operations, name: str) -> ExecutionRow | None:
    try:
        history = await load_history(engine, name, limit=1)
    except CaravanError:
        return None  # deleted while the page was drawn
    return history.rows[0] if history.rows else None


# One execution --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActionRun:
    """One action execution: how it ran (configuration with variables resolved) and ended."""

    id: str
    stage: str
    name: str
    status: str
    provider: str
    started: float | None
    duration: float | None
    configuration: dict[str, str]
    output_variables: dict[str, str]
    summary: str
    error_code: str
    error_message: str
    external_id: str
    inputs: list[str]
    outputs: list[str]

    @property
    def running(self) -> bool:
        return self.status in RUNNING


@dataclass(frozen=True)
class StageRuns:
    name: str
    runs: list[ActionRun]  # oldest first: a retried action appears once per attempt


@dataclass(frozen=True)
class ExecutionDetail:
    pipeline: str
    row: ExecutionRow
    version: int
    status_summary: str
    variables: list[tuple[str, str]]
    revisions: list[tuple[str, str, str]]  # artifact name, revision id, summary
    stages: list[StageRuns]


async def action_runs(engine: Operations, name: str, execution_id: str) -> list[ActionRun]:
    """Every action execution of ``execution_id``, oldest first (all pages)."""
    request: dict[str, Any] = {
        "pipelineName": name,
        "filter": {"pipelineExecutionId": execution_id},
    }
    details: list[dict[str, Any]] = []
    for _ in range(_MAX_ACTION_PAGES):
        page = await engine.call("ListActionExecutions", request)
        details.extend(page.get("actionExecutionDetails", []))
        if not page.get("nextToken"):
            break
        request = {**request, "nextToken": page["nextToken"]}
    now = time.time()
    runs = [_run(d, now) for d in details if d.get("pipelineExecutionId") == execution_id]
    return sorted(runs, key=lambda r: (r.started or 0.0, r.id))


def _run(detail: Mapping[str, Any], now: float) -> ActionRun:
    given = detail.get("input") or {}
    output = detail.get("output") or {}
    result = output.get("executionResult") or {}
    error = result.get("errorDetails") or {}
    configuration = given.get("resolvedConfiguration") or given.get("configuration") or {}
    return ActionRun(
        id=str(detail.get("actionExecutionId", "")),
        stage=str(detail.get("stageName", "")),
        name=str(detail.get("actionName", "")),
        status=str(detail.get("status", "")),
        provider=str((given.get("actionTypeId") or {}).get("provider", "")),
        started=detail.get("startTime"),
        duration=duration_of(detail, now),
        configuration={str(k): str(v) for k, v in configuration.items()},
        output_variables={str(k): str(v) for k, v in (output.get("outputVariables") or {}).items()},
        summary=str(result.get("externalExecutionSummary") or ""),
        error_code=str(error.get("code") or ""),
        error_message=str(error.get("message") or ""),
        external_id=str(result.get("externalExecutionId") or ""),
        inputs=[str(a.get("name", "")) for a in given.get("inputArtifacts") or []],
        outputs=[str(a.get("name", "")) for a in output.get("outputArtifacts") or []],
    )


async def load_execution(engine: Operations, name: str, execution_id: str) -> ExecutionDetail:
    request = {"pipelineName": name, "pipelineExecutionId": execution_id}
    execution = (await engine.call("GetPipelineExecution", request))["pipelineExecution"]
    version = execution.get("pipelineVersion")
    declared, runs = await asyncio.gather(
        engine.call("GetPipeline", {"name": name, **({"version": version} if version else {})}),
        action_runs(engine, name, execution_id),
    )
    by_stage: dict[str, list[ActionRun]] = {}
    for run in runs:
        by_stage.setdefault(run.stage, []).append(run)
    order = [s.get("name") for s in declared.get("pipeline", {}).get("stages", [])]
    stages = [StageRuns(n, by_stage.pop(n)) for n in order if n in by_stage]
    stages += [StageRuns(n, r) for n, r in by_stage.items()]  # stages since removed
    summary = await _summary_of(engine, name, execution_id)
    return ExecutionDetail(
        pipeline=name,
        row=_row(summary or execution, execution, time.time()),
        version=int(version or 1),
        status_summary=str(execution.get("statusSummary") or ""),
        variables=[
            (str(v.get("name", "")), str(v.get("resolvedValue", "")))
            for v in execution.get("variables") or []
        ],
        revisions=[
            (
                str(a.get("name", "")),
                str(a.get("revisionId", "")),
                str(a.get("revisionSummary", "")),
            )
            for a in execution.get("artifactRevisions") or []
        ],
        stages=stages,
    )


async def _summary_of(engine: Operations, name: str, execution_id: str) -> dict[str, Any] | None:
    """The execution's ListPipelineExecutions summary (start time, source revisions), looked
    for in the first page: older executions fall back on GetPipelineExecution alone."""
    listed = await engine.call("ListPipelineExecutions", {"pipelineName": name, "maxResults": 100})
    for summary in listed.get("pipelineExecutionSummaries", []):
        if summary.get("pipelineExecutionId") == execution_id:
            found: dict[str, Any] = summary
            return found
    return None


# An action's log ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogView:
    action_execution_id: str
    text: str
    next_offset: int
    complete: bool
    pipeline: str
    execution: str
    run: ActionRun | None  # known when the page was given its pipeline and execution


async def load_log(
    engine: EngineAPI, action_execution_id: str, pipeline: str, execution: str
) -> LogView:
    chunk = await engine.read_log(action_execution_id)
    run = None
    if pipeline and execution:
        runs = await action_runs(engine, pipeline, execution)
        run = next((r for r in runs if r.id == action_execution_id), None)
        if run is None:
            raise ActionNotFoundError(
                f"execution {execution!r} of pipeline {pipeline!r} has no action execution "
                f"{action_execution_id!r}"
            )
    return LogView(
        action_execution_id=action_execution_id,
        text=chunk.text,
        next_offset=chunk.next_offset,
        complete=chunk.complete,
        pipeline=pipeline,
        execution=execution,
        run=run,
    )
