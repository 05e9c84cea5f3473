"""Read operations in CodePipeline's response shapes: GetPipelineState,
ListPipelineExecutions, GetPipelineExecution, ListActionExecutions."""

from __future__ import annotations

from typing import Any

from caravan.engine.core import EngineCore
from caravan.engine.paging import page
from caravan.errors import InvalidInputError, PipelineExecutionNotFoundError
from caravan.model.records import ActionRecord, ExecutionRecord, StageRecord
from caravan.model.statuses import ExecutionMode
from caravan.store import Tx


def _name(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{key!r} is required")
    return value


async def get_pipeline_state(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _name(request, "name")
    with core.read() as tx:
        row = tx.pipelines.get(name)
        pdoc = core.declarations.get(tx, name)
        state, transitions = core.driver.load_flow(tx, name)
        stage_states = []
        for stage in pdoc.declaration.stages:
            stage_states.append(_stage_state(core, tx, name, stage.name, state, transitions))
    assert row is not None  # declarations.get raised PipelineNotFound otherwise
    return {
        "pipelineName": name,
        "pipelineVersion": pdoc.version,
        "stageStates": stage_states,
        "created": row["created"],
        "updated": row["updated"],
    }


def _stage_state(
    core: EngineCore, tx: Tx, pipeline: str, stage: str, state: Any, transitions: dict[str, Any]
) -> dict[str, Any]:
    gate = state.gate(stage)
    transition = transitions.get(stage, {})
    body: dict[str, Any] = {
        "stageName": stage,
        "inboundTransitionState": {
            "enabled": gate.transition_enabled,
            **({"lastChangedBy": transition["changedBy"]} if "changedBy" in transition else {}),
            **({"lastChangedAt": transition["changedAt"]} if "changedAt" in transition else {}),
            **({"disabledReason": transition["reason"]} if transition.get("reason") else {}),
        },
        "actionStates": [],
    }
    inbound = [tx.executions.get(e) for e in gate.waiting]
    inbound_summaries = [
        {"pipelineExecutionId": r.id, "status": r.status, "type": r.execution_type}
        for r in inbound
        if r is not None
    ]
    if inbound_summaries:
        body["inboundExecution"] = inbound_summaries[-1]
        body["inboundExecutions"] = inbound_summaries
    latest: StageRecord | None = None
    if state.mode is ExecutionMode.PARALLEL or gate.latest is None:
        latest = tx.executions.latest_stage(pipeline, stage)
    else:
        latest = tx.executions.get_stage(gate.latest, stage)
    pdoc = core.declarations.get(tx, pipeline)
    decl_stage = next(s for s in pdoc.declaration.stages if s.name == stage)
    actions = {a.action: a for a in core.driver.current_actions(tx, latest)} if latest else {}
    for decl in decl_stage.actions:
        action_state: dict[str, Any] = {"actionName": decl.name}
        record = actions.get(decl.name)
        if record is not None:
            action_state["latestExecution"] = _action_latest(record)
        body["actionStates"].append(action_state)
    if latest is not None:
        body["latestExecution"] = {
            "pipelineExecutionId": latest.execution_id,
            "status": latest.status,
        }
        if latest.manual_retries:
            body["retryStageMetadata"] = {
                "autoStageRetryAttempt": 0,
                "manualStageRetryAttempt": latest.manual_retries,
                "latestRetryTrigger": "ManualStageRetry",
            }
    return body


def _action_latest(record: ActionRecord) -> dict[str, Any]:
    latest: dict[str, Any] = {
        "actionExecutionId": record.id,
        "status": record.status,
        "lastStatusChange": record.updated,
    }
    if record.summary:
        latest["summary"] = record.summary
    if record.token and record.live:
        latest["token"] = record.token
    if record.external_execution_id:
        latest["externalExecutionId"] = record.external_execution_id
    if record.percent_complete is not None:
        latest["percentComplete"] = record.percent_complete
    if record.updated_by:
        latest["lastUpdatedBy"] = record.updated_by
    if record.error_message:
        latest["errorDetails"] = {
            "code": record.error_code or "JobFailed",
            "message": record.error_message[:5000],
        }
    return latest


def execution_summary(record: ExecutionRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pipelineExecutionId": record.id,
        "status": record.status,
        "startTime": record.started,
        "lastUpdateTime": record.updated,
        "sourceRevisions": [
            {"actionName": action, "revisionId": revision}
            for action, revision in sorted(record.source_revisions.items())
        ],
        **_execution_facts(record),
    }
    if record.stop_reason and record.status in ("Stopped", "Stopping"):
        body["stopTrigger"] = {"reason": record.stop_reason}
    return body


def _execution_facts(record: ExecutionRecord) -> dict[str, Any]:
    """What a summary and a full execution both say: trigger, mode, type, status summary and,
    for a rollback, its target."""
    facts: dict[str, Any] = {
        "trigger": {
            "triggerType": record.trigger_type,
            "triggerDetail": record.trigger_detail or "",
        },
        "executionMode": record.execution_mode,
        "executionType": record.execution_type,
    }
    if record.status_summary:
        facts["statusSummary"] = record.status_summary
    if record.rollback_target is not None:
        facts["rollbackMetadata"] = {"rollbackTargetPipelineExecutionId": record.rollback_target}
    return facts


async def list_pipeline_executions(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _name(request, "pipelineName")
    with core.read() as tx:
        core.declarations.get(tx, name)
        records = tx.executions.recent(name, limit=10_000)
        if request.get("filter", {}).get("succeededInStage"):
            stage = request["filter"]["succeededInStage"].get("stageName")
            records = [
                r
                for r in records
                if (s := tx.executions.get_stage(r.id, stage)) and s.status == "Succeeded"
            ]
    items, token = page(
        [execution_summary(r) for r in records], request, default_size=100, max_size=100
    )
    body: dict[str, Any] = {"pipelineExecutionSummaries": items}
    if token:
        body["nextToken"] = token
    return body


async def get_pipeline_execution(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _name(request, "pipelineName")
    execution_id = _name(request, "pipelineExecutionId")
    with core.read() as tx:
        record = tx.executions.get(execution_id)
    if record is None or record.pipeline != name:
        raise PipelineExecutionNotFoundError(f"pipeline {name!r} has no execution {execution_id!r}")
    body = {
        "pipelineName": name,
        "pipelineVersion": record.pipeline_version,
        "pipelineExecutionId": record.id,
        "status": record.status,
        "artifactRevisions": [
            {
                "name": a["name"],
                "revisionId": a.get("revision") or "",
                "revisionSummary": a.get("summary") or "",
                "created": a.get("created"),
            }
            for a in record.artifacts.values()
        ],
        "variables": [{"name": k, "resolvedValue": v} for k, v in record.variables.items()],
        **_execution_facts(record),
    }
    return {"pipelineExecution": body}


async def list_action_executions(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _name(request, "pipelineName")
    wanted = (request.get("filter") or {}).get("pipelineExecutionId")
    with core.read() as tx:
        core.declarations.get(tx, name)
        actions = tx.executions.actions_of_pipeline(
            name, execution_ids=[wanted] if wanted else None, limit=10_000
        )
    details = [action_detail(a) for a in actions]
    items, token = page(details, request, default_size=100, max_size=100)
    body: dict[str, Any] = {"actionExecutionDetails": items}
    if token:
        body["nextToken"] = token
    return body


def action_detail(record: ActionRecord) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if record.external_execution_id:
        result["externalExecutionId"] = record.external_execution_id
    if record.summary:
        result["externalExecutionSummary"] = record.summary
    if record.error_message:
        result["errorDetails"] = {
            "code": record.error_code or "JobFailed",
            "message": record.error_message[:5000],
        }
    return {
        "pipelineExecutionId": record.execution_id,
        "actionExecutionId": record.id,
        "pipelineVersion": record.pipeline_version,
        "stageName": record.stage,
        "actionName": record.action,
        "startTime": record.started,
        "lastUpdateTime": record.updated,
        "status": record.status,
        **({"updatedBy": record.updated_by} if record.updated_by else {}),
        "input": {
            "actionTypeId": record.action_type,
            "configuration": record.configuration,
            "resolvedConfiguration": record.resolved_configuration,
            **({"roleArn": record.role_arn} if record.role_arn else {}),
            **({"region": record.region} if record.region else {}),
            "inputArtifacts": [
                {"name": a["name"], "s3location": {"bucket": a["bucket"], "key": a["key"]}}
                for a in record.input_artifacts
            ],
            **({"namespace": record.namespace} if record.namespace else {}),
        },
        "output": {
            "outputArtifacts": [
                {"name": a["name"], "s3location": {"bucket": a["bucket"], "key": a["key"]}}
                for a in record.output_artifacts
            ],
            "executionResult": result,
            "outputVariables": record.output_variables,
        },
    }
