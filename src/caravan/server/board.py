"""The stage board's data, shared by the CLI's board and the dashboard: what GetPipelineState,
GetPipeline and ListActionExecutions say about a pipeline's latest executions, and the small
formats both show (durations, times, short ids). No rendering here."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class Operations(Protocol):
    """What the board needs of an engine or a client: CodePipeline operations."""

    async def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass
class BoardData:
    state: dict[str, Any]  # GetPipelineState
    pipeline: dict[str, Any] = field(default_factory=dict)  # GetPipeline's "pipeline"
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # by actionExecutionId


async def fetch_board(engine: Operations, name: str) -> BoardData:
    state = await engine.call("GetPipelineState", {"name": name})
    latest_ids = {
        stage["latestExecution"]["pipelineExecutionId"]
        for stage in state.get("stageStates", [])
        if stage.get("latestExecution")
    }
    got, *listed = await asyncio.gather(
        engine.call("GetPipeline", {"name": name, "version": state.get("pipelineVersion")}),
        *(
            engine.call(
                "ListActionExecutions",
                {"pipelineName": name, "filter": {"pipelineExecutionId": execution_id}},
            )
            for execution_id in sorted(latest_ids)
        ),
    )
    details = {
        detail["actionExecutionId"]: detail
        for page in listed
        for detail in page.get("actionExecutionDetails", [])
    }
    return BoardData(state=state, pipeline=got.get("pipeline", {}), details=details)


def short_id(execution_id: str | None) -> str:
    return (execution_id or "")[:8]


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_time(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(float(epoch)).strftime("%Y-%m-%d %H:%M:%S")


def duration_of(detail: Mapping[str, Any] | None, now: float) -> float | None:
    """How long an execution (or action execution) ran, or has been running."""
    if not detail or detail.get("startTime") is None:
        return None
    running = detail.get("status") in ("InProgress", "Stopping")
    end = now if running else detail.get("lastUpdateTime", now)
    return float(end) - float(detail["startTime"])


def first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
