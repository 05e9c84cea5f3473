"""The pipeline board as the dashboard draws it: plain data built from CodePipeline responses.

The data comes from ``fetch_board`` (GetPipelineState, GetPipeline, ListActionExecutions of the
executions the stages show), shared with the CLI's board. Here it is shaped for the console's
layout: stages top to bottom, each with its inbound transition and the executions waiting in
front of it, and its actions in columns by run order, each with what its buttons need (the
approval token, whether the stage can be retried).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from caravan.server.board import BoardData, Operations, duration_of, fetch_board, first_line

RUNNING = ("InProgress", "Stopping")
RETRYABLE_STAGE = ("Failed", "Stopped")
_SAFE_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Approval:
    """An approval action waiting for a decision: what PutApprovalResult needs and shows."""

    token: str
    comments: str  # the action's CustomData
    review_url: str | None  # ExternalEntityLink, only when it is an http(s) URL


@dataclass(frozen=True)
class ActionCard:
    name: str
    provider: str  # e.g. "Commands", "Manual"
    category: str
    status: str | None  # None: not run in the execution the stage shows
    action_execution_id: str | None
    execution_id: str | None
    started: float | None
    duration: float | None
    message: str  # the summary, or the first line of the error
    approval: Approval | None

    @property
    def running(self) -> bool:
        return self.status in RUNNING


@dataclass(frozen=True)
class Transition:
    enabled: bool
    reason: str
    changed_by: str
    changed_at: float | None


@dataclass(frozen=True)
class Inbound:
    execution_id: str
    status: str


@dataclass(frozen=True)
class StageView:
    name: str
    status: str | None
    execution_id: str | None
    columns: list[list[ActionCard]]  # by run order, lowest first
    transition: Transition | None  # None for the first stage: nothing flows into it
    inbound: list[Inbound]
    manual_retries: int

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STAGE and bool(self.execution_id)


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    description: str


@dataclass(frozen=True)
class Board:
    name: str
    version: int
    execution_mode: str
    pipeline_type: str
    stages: list[StageView]
    variables: list[Variable]


async def load_board(engine: Operations, name: str) -> Board:
    return board_from(await fetch_board(engine, name), now=time.time())


def board_from(data: BoardData, *, now: float) -> Board:
    pipeline = data.pipeline
    declared = {s.get("name"): s for s in pipeline.get("stages", [])}
    parallel = pipeline.get("executionMode") == "PARALLEL"
    stages = [
        _stage(data, state, declared.get(state.get("stageName"), {}), index, parallel, now)
        for index, state in enumerate(data.state.get("stageStates", []))
    ]
    variables = [
        Variable(
            name=str(v.get("name", "")),
            default=str(v.get("defaultValue") or ""),
            description=str(v.get("description") or ""),
        )
        for v in pipeline.get("variables") or []
    ]
    return Board(
        name=str(data.state.get("pipelineName", pipeline.get("name", ""))),
        version=int(data.state.get("pipelineVersion") or pipeline.get("version") or 1),
        execution_mode=str(pipeline.get("executionMode") or "SUPERSEDED"),
        pipeline_type=str(pipeline.get("pipelineType") or "V1"),
        stages=stages,
        variables=variables,
    )


def _stage(
    data: BoardData,
    state: Mapping[str, Any],
    declared: Mapping[str, Any],
    index: int,
    parallel: bool,
    now: float,
) -> StageView:
    latest = state.get("latestExecution") or {}
    decl_actions = {a.get("name"): a for a in declared.get("actions", [])}
    columns: dict[int, list[ActionCard]] = {}
    for action_state in state.get("actionStates", []):
        decl = decl_actions.get(action_state.get("actionName"), {})
        card = _card(data, action_state, decl, parallel, now)
        columns.setdefault(int(decl.get("runOrder") or 1), []).append(card)
    inbound_list = state.get("inboundExecutions") or (
        [state["inboundExecution"]] if state.get("inboundExecution") else []
    )
    return StageView(
        name=str(state.get("stageName", "")),
        status=latest.get("status"),
        execution_id=latest.get("pipelineExecutionId"),
        columns=[columns[order] for order in sorted(columns)],
        transition=_transition(state.get("inboundTransitionState")) if index > 0 else None,
        inbound=[
            Inbound(str(i.get("pipelineExecutionId", "")), str(i.get("status", "")))
            for i in inbound_list
        ],
        manual_retries=int(
            (state.get("retryStageMetadata") or {}).get("manualStageRetryAttempt") or 0
        ),
    )


def _transition(state: Mapping[str, Any] | None) -> Transition:
    state = state or {}
    return Transition(
        enabled=state.get("enabled", True) is not False,
        reason=str(state.get("disabledReason") or ""),
        changed_by=str(state.get("lastChangedBy") or ""),
        changed_at=state.get("lastChangedAt"),
    )


def _card(
    data: BoardData,
    action_state: Mapping[str, Any],
    declared: Mapping[str, Any],
    parallel: bool,
    now: float,
) -> ActionCard:
    latest = action_state.get("latestExecution") or {}
    action_execution_id = latest.get("actionExecutionId")
    detail = data.details.get(action_execution_id or "")
    type_id = declared.get("actionTypeId") or {}
    status = latest.get("status")
    return ActionCard(
        name=str(action_state.get("actionName", "")),
        provider=str(type_id.get("provider", "")),
        category=str(type_id.get("category", "")),
        status=status,
        action_execution_id=action_execution_id,
        execution_id=(detail or {}).get("pipelineExecutionId"),
        started=(detail or {}).get("startTime"),
        duration=duration_of(detail, now) if latest else None,
        message=_message(latest),
        approval=_approval(latest, detail, declared, parallel),
    )


def _message(latest: Mapping[str, Any]) -> str:
    if latest.get("status") == "Failed" and latest.get("errorDetails"):
        return first_line(latest["errorDetails"].get("message"))
    return first_line(latest.get("summary"))


def _approval(
    latest: Mapping[str, Any],
    detail: Mapping[str, Any] | None,
    declared: Mapping[str, Any],
    parallel: bool,
) -> Approval | None:
    type_id = declared.get("actionTypeId") or {}
    if type_id.get("category") != "Approval" or latest.get("status") != "InProgress":
        return None
    token = latest.get("token")
    if not token and parallel and detail:
        # PARALLEL mode: the state has no token; the action execution's external id is it.
        result = (detail.get("output") or {}).get("executionResult") or {}
        token = result.get("externalExecutionId")
    if not token:
        return None
    configuration = _configuration(detail, declared)
    link = configuration.get("ExternalEntityLink", "")
    return Approval(
        token=str(token),
        comments=configuration.get("CustomData", ""),
        review_url=link if link.lower().startswith(_SAFE_SCHEMES) else None,
    )


def _configuration(detail: Mapping[str, Any] | None, declared: Mapping[str, Any]) -> dict[str, str]:
    """The action's configuration as it ran (resolved variables), else as declared."""
    given = (detail or {}).get("input") or {}
    configuration = given.get("resolvedConfiguration") or declared.get("configuration") or {}
    return {str(k): str(v) for k, v in configuration.items()}
