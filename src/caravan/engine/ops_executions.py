"""Execution control: StartPipelineExecution, StopPipelineExecution, RetryStageExecution,
Enable/DisableStageTransition, PutApprovalResult."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from caravan.engine.core import EngineCore
from caravan.errors import (
    ActionNotFoundError,
    ApprovalAlreadyCompletedError,
    DuplicatedStopRequestError,
    InvalidApprovalTokenError,
    InvalidInputError,
    PipelineExecutionNotFoundError,
    PipelineExecutionNotStoppableError,
    StageNotFoundError,
    StageNotRetryableError,
)
from caravan.model import flow, stage_plan
from caravan.model.records import ExecutionRecord
from caravan.model.statuses import (
    ActionExecutionStatus,
    FailureType,
    PipelineExecutionStatus,
    RetryMode,
    StageExecutionStatus,
    TriggerType,
)

_REASON = re.compile(r"^[a-zA-Z0-9!@ \(\)\.\*\?\-]{1,300}$")


async def start_execution(
    core: EngineCore,
    name: str,
    *,
    trigger_type: str,
    trigger_detail: str | None,
    variables: Mapping[str, str],
    source_revisions: Mapping[str, str] | None = None,
    strict_variables: bool = True,
) -> str:
    async with core.mutate(name) as (tx, ch):
        pdoc = core.declarations.get(tx, name)
        resolved = _pipeline_variables(
            pdoc.declaration.variables or [], variables, strict=strict_variables
        )
        record = core.driver.new_execution(
            tx,
            ch,
            pdoc,
            trigger_type=trigger_type,
            trigger_detail=trigger_detail,
            variables=resolved,
            source_revisions=source_revisions or {},
        )
    return record.id


def _pipeline_variables(
    declared: list[Any], overrides: Mapping[str, str], *, strict: bool
) -> dict[str, str]:
    names = {v.name for v in declared}
    unknown = sorted(set(overrides) - names)
    if unknown:
        known = ", ".join(sorted(names)) or "none"
        raise InvalidInputError(
            f"pipeline variable(s) {', '.join(unknown)} are not declared (declared: {known})"
        )
    values: dict[str, str] = {}
    for variable in declared:
        if variable.name in overrides:
            values[variable.name] = overrides[variable.name]
        elif variable.default_value is not None:
            values[variable.name] = variable.default_value
        elif strict:
            raise InvalidInputError(
                f"pipeline variable {variable.name!r} has no default value: give one with "
                f"variables=[{{name: {variable.name}, value: ...}}]"
            )
        else:
            values[variable.name] = ""
    return values


async def start_pipeline_execution(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _required(request, "name")
    overrides: dict[str, str] = {}
    for item in request.get("variables") or []:
        overrides[str(item.get("name"))] = str(item.get("value", ""))
    revisions = {
        str(r["actionName"]): str(r["revisionValue"])
        for r in request.get("sourceRevisions") or []
        if r.get("revisionType", "COMMIT_ID") == "COMMIT_ID"
    }
    token = request.get("clientRequestToken")
    if token:
        with core.read() as tx:
            seen = tx.pipelines.get_document("client-request-token", f"{name}/{token}")
        if seen is not None:
            return {"pipelineExecutionId": seen["pipelineExecutionId"]}
    # caravan extension: triggers (git hooks, webhooks) say what started the execution.
    trigger = request.get("trigger") or {}
    trigger_type = str(trigger.get("triggerType") or TriggerType.START_PIPELINE_EXECUTION)
    if trigger_type not in {t.value for t in TriggerType}:
        raise InvalidInputError(f"trigger.triggerType {trigger_type!r} is not a trigger type")
    execution_id = await start_execution(
        core,
        name,
        trigger_type=trigger_type,
        trigger_detail=str(trigger.get("triggerDetail") or "caravan"),
        variables=overrides,
        source_revisions=revisions,
    )
    if token:
        async with core.mutate(name) as (tx, _ch):
            tx.pipelines.put_document(
                "client-request-token",
                f"{name}/{token}",
                {"pipelineExecutionId": execution_id},
                core.clock(),
            )
    return {"pipelineExecutionId": execution_id}


async def stop_pipeline_execution(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _required(request, "pipelineName")
    execution_id = _required(request, "pipelineExecutionId")
    abandon = bool(request.get("abandon", False))
    reason = request.get("reason")
    async with core.mutate(name) as (tx, ch):
        record = _execution(tx, name, execution_id)
        status = PipelineExecutionStatus(record.status)
        if status.terminal:
            raise PipelineExecutionNotStoppableError(
                f"execution {execution_id} has already ended ({status})"
            )
        if status is PipelineExecutionStatus.STOPPING and not abandon:
            raise DuplicatedStopRequestError(
                f"execution {execution_id} is already stopping; use abandon to stop it now"
            )
        record.stop_reason = reason
        record.stop_abandon = abandon
        state, _ = core.driver.load_flow(tx, name)
        where = flow.position(state, execution_id)
        if where is not None and where[1] == "waiting":
            core.driver.apply_flow(tx, ch, name, flow.StopWaiting(execution_id))
            tx.executions.save(record)
            core.driver.end_execution(tx, ch, execution_id, PipelineExecutionStatus.STOPPED, reason)
            return {"pipelineExecutionId": execution_id}
        record.status = PipelineExecutionStatus.STOPPING
        tx.executions.save(record)
        ch.event("execution", name, pipelineExecutionId=execution_id, status=record.status)
        running = [
            s
            for s in tx.executions.stages_of(execution_id)
            if s.status in (StageExecutionStatus.IN_PROGRESS, StageExecutionStatus.STOPPING)
        ]
        if not running:
            core.driver.end_execution(tx, ch, execution_id, PipelineExecutionStatus.STOPPED, reason)
        for stage in running:
            stage.stopping = True
            stage.status = StageExecutionStatus.STOPPING
            tx.executions.save_stage(stage)
            if abandon:
                core.driver.abandon_stage_actions(
                    tx, ch, record, stage, "Abandoned: the execution was stopped and abandoned."
                )
            core.driver.advance_stage(tx, ch, record, stage)
    return {"pipelineExecutionId": execution_id}


async def retry_stage_execution(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _required(request, "pipelineName")
    stage_name = _required(request, "stageName")
    execution_id = _required(request, "pipelineExecutionId")
    try:
        mode = RetryMode(request.get("retryMode", "FAILED_ACTIONS"))
    except ValueError:
        raise InvalidInputError("retryMode must be FAILED_ACTIONS or ALL_ACTIONS") from None
    async with core.mutate(name) as (tx, ch):
        record = _execution(tx, name, execution_id)
        current = core.declarations.get(tx, name)
        if stage_name not in {s.name for s in current.declaration.stages}:
            raise StageNotFoundError(f"pipeline {name!r} has no stage {stage_name!r}")
        if record.pipeline_version != current.version:
            raise StageNotRetryableError(
                f"the pipeline's structure changed (version {record.pipeline_version} -> "
                f"{current.version}) since execution {execution_id} ran"
            )
        stage = tx.executions.get_stage(execution_id, stage_name)
        if stage is None or stage.status not in (
            StageExecutionStatus.FAILED,
            StageExecutionStatus.STOPPED,
            StageExecutionStatus.IN_PROGRESS,
        ):
            raise StageNotRetryableError(
                f"stage {stage_name} of execution {execution_id} has not failed or stopped"
            )
        actions = core.driver.current_actions(tx, stage)
        runs = [
            stage_plan.ActionRun(a.action, a.run_order, ActionExecutionStatus(a.status))
            for a in actions
        ]
        reset = set(stage_plan.retry_plan(runs, mode))
        # Refuses (NotLatest / not retryable) before anything is written.
        state, _ = core.driver.load_flow(tx, name)
        flow.apply(state, flow.Retry(execution_id, stage_name))
        stage.carried = {a.action: a.id for a in actions if a.action not in reset}
        stage.attempt += 1
        stage.manual_retries += 1
        stage.stopping = False
        stage.status = StageExecutionStatus.IN_PROGRESS
        tx.executions.save_stage(stage)
        record.status = PipelineExecutionStatus.IN_PROGRESS
        record.status_summary = None
        record.stop_reason = None
        tx.executions.save(record)
        ch.event("execution", name, pipelineExecutionId=execution_id, status=record.status)
        entered = core.driver.apply_flow(tx, ch, name, flow.Retry(execution_id, stage_name))
        if not any(isinstance(e, flow.Entered) and e.execution_id == execution_id for e in entered):
            core.driver.advance_stage(tx, ch, record, stage)
    return {"pipelineExecutionId": execution_id}


async def set_transition(
    core: EngineCore, request: dict[str, Any], *, enabled: bool
) -> dict[str, Any]:
    name = _required(request, "pipelineName")
    stage_name = _required(request, "stageName")
    kind = request.get("transitionType", "Inbound")
    reason = request.get("reason")
    if not enabled and (not isinstance(reason, str) or not _REASON.match(reason)):
        raise InvalidInputError(
            "reason is required to disable a transition: 1-300 characters of letters, digits, "
            "spaces and !@().*?-"
        )
    async with core.mutate(name) as (tx, ch):
        stages = [s.name for s in core.declarations.get(tx, name).declaration.stages]
        if stage_name not in stages:
            raise StageNotFoundError(f"pipeline {name!r} has no stage {stage_name!r}")
        index = stages.index(stage_name)
        if kind == "Outbound":
            index += 1
        elif kind != "Inbound":
            raise InvalidInputError("transitionType must be Inbound or Outbound")
        if not 1 <= index < len(stages):
            raise InvalidInputError(f"stage {stage_name!r} has no {kind.lower()} transition")
        target = stages[index]
        state, transitions = core.driver.load_flow(tx, name)
        transitions[target] = {
            "enabled": enabled,
            "reason": None if enabled else reason,
            "changedAt": core.clock(),
            "changedBy": request.get("changedBy", "caravan-user"),
        }
        core.driver.save_flow(tx, name, state, transitions)
        event = flow.EnableTransition(target) if enabled else flow.DisableTransition(target)
        core.driver.apply_flow(tx, ch, name, event)
        ch.event("transition", name, stage=target, enabled=enabled, reason=reason)
    return {}


async def put_approval_result(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _required(request, "pipelineName")
    stage_name = _required(request, "stageName")
    action_name = _required(request, "actionName")
    token = _required(request, "token")
    result = request.get("result") or {}
    status = result.get("status")
    summary = str(result.get("summary", ""))
    if status not in ("Approved", "Rejected"):
        raise InvalidInputError("result.status must be Approved or Rejected")
    if len(summary) > 512:
        raise InvalidInputError("result.summary must be at most 512 characters")
    async with core.mutate(name) as (tx, ch):
        candidates = [
            a
            for a in tx.executions.actions_of_pipeline(name)
            if a.stage == stage_name and a.action == action_name
        ]
        if not candidates:
            raise ActionNotFoundError(
                f"stage {stage_name!r} of pipeline {name!r} has no executed action {action_name!r}"
            )
        action = next((a for a in candidates if a.token == token), None)
        if action is None:
            raise InvalidApprovalTokenError(
                "the approval token does not match a pending approval of this action"
            )
        if not action.live:
            raise ApprovalAlreadyCompletedError(
                f"approval {action_name} has already ended ({action.status})"
            )
        action.approval_summary = summary
        action.summary = summary or status
        action.updated_by = request.get("approvedBy", "caravan-user")
        if status == "Approved":
            core.driver.end_action(tx, ch, action, ActionExecutionStatus.SUCCEEDED)
            core.driver.after_action(tx, ch, action)
        else:
            core.driver.fail_action(
                tx,
                ch,
                action,
                FailureType.JOB_FAILED,
                f"Rejected: {summary}" if summary else "Rejected",
            )
        approved_at = core.clock()
    return {"approvedAt": approved_at}


def _execution(tx: Any, name: str, execution_id: str) -> ExecutionRecord:
    record: ExecutionRecord | None = tx.executions.get(execution_id)
    if record is None or record.pipeline != name:
        raise PipelineExecutionNotFoundError(f"pipeline {name!r} has no execution {execution_id!r}")
    return record


def _required(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{key!r} is required")
    return value
