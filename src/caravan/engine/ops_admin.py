"""Stage-level operations beyond run and retry: RollbackStage and PutActionRevision, and the
condition, rule and deploy-target operations, answered honestly (caravan does not evaluate stage
conditions yet, and its deploy providers report no per-target progress).

A rollback is a new execution of type ROLLBACK that enters the rolled-back stage directly with
the target execution's source revisions, pipeline variables, and the artifacts and output
variables of the stages before that stage, then carries on through the stages after it. Its
record names its target (``rollback_target``), shown as ``rollbackMetadata``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from caravan.engine.core import EngineCore
from caravan.engine.declarations import PipelineDoc
from caravan.engine.fields import obj, paged, text
from caravan.engine.ops_executions import start_execution
from caravan.errors import (
    ActionNotFoundError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PipelineExecutionNotFoundError,
    StageNotFoundError,
)
from caravan.model import flow
from caravan.model.records import ExecutionRecord
from caravan.model.statuses import ExecutionMode, StageExecutionStatus, TriggerType
from caravan.store import Tx


class UnableToRollbackStageError(ConflictError):
    reference = "unable-to-roll-back"
    aws_type = "UnableToRollbackStageException"


class ConditionNotOverridableError(ConflictError):
    reference = "condition-not-overridable"
    aws_type = "ConditionNotOverridableException"


class ActionExecutionNotFoundError(NotFoundError):
    reference = "action-execution-not-found"
    aws_type = "ActionExecutionNotFoundException"


def _stage_of(pdoc: PipelineDoc, stage_name: str) -> int:
    names = [s.name for s in pdoc.declaration.stages]
    if stage_name not in names:
        raise StageNotFoundError(
            f"pipeline {pdoc.name!r} has no stage {stage_name!r} (stages: {', '.join(names)})"
        )
    return names.index(stage_name)


def _execution(tx: Tx, pipeline: str, execution_id: str) -> ExecutionRecord:
    record = tx.executions.get(execution_id)
    if record is None or record.pipeline != pipeline:
        raise PipelineExecutionNotFoundError(
            f"pipeline {pipeline!r} has no execution {execution_id!r}"
        )
    return record


async def list_rule_types(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("ruleOwnerFilter") not in (None, "AWS"):
        raise InvalidInputError("ruleOwnerFilter must be AWS")
    return {"ruleTypes": []}  # no rule provider yet: caravan does not evaluate conditions


async def list_rule_executions(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = text(request, "pipelineName", name=True)
    wanted = obj(request, "filter", required=False)
    latest = obj(wanted, "latestInPipelineExecution", required=False)
    execution_id = wanted.get("pipelineExecutionId") or latest.get("pipelineExecutionId")
    with core.read() as tx:
        core.declarations.get(tx, name)
        if execution_id:
            _execution(tx, name, str(execution_id))
    return paged("ruleExecutionDetails", [], request)


async def list_deploy_action_execution_targets(
    core: EngineCore, request: dict[str, Any]
) -> dict[str, Any]:
    action_id = text(request, "actionExecutionId")
    pipeline = request.get("pipelineName")
    with core.read() as tx:
        if pipeline is not None:
            core.declarations.get(tx, str(pipeline))
        action = tx.executions.get_action(action_id)
    if action is None or pipeline not in (None, action.pipeline):
        raise ActionExecutionNotFoundError(f"there is no action execution {action_id!r}")
    # caravan's deploy providers do not report per-target progress (CodeDeploy/ECS do on AWS).
    return paged("targets", [], request)


async def override_stage_condition(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = text(request, "pipelineName", name=True)
    stage_name = text(request, "stageName", name=True)
    execution_id = text(request, "pipelineExecutionId")
    kind = request.get("conditionType")
    if kind not in ("BEFORE_ENTRY", "ON_SUCCESS"):
        raise InvalidInputError("conditionType must be BEFORE_ENTRY or ON_SUCCESS")
    with core.read() as tx:
        pdoc = core.declarations.get(tx, name)
        stage = pdoc.declaration.stages[_stage_of(pdoc, stage_name)]
        _execution(tx, name, execution_id)
    declared = stage.before_entry if kind == "BEFORE_ENTRY" else stage.on_success
    what = "beforeEntry" if kind == "BEFORE_ENTRY" else "onSuccess"
    if declared is None:
        raise ConditionNotOverridableError(
            f"stage {stage_name} declares no {what} condition, so there is none to override"
        )
    raise ConditionNotOverridableError(
        f"the {what} condition of stage {stage_name} is not being evaluated: caravan does not "
        "evaluate stage conditions yet, so there is no condition result to override"
    )


async def put_action_revision(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    """Start an execution with the source action pinned to the given revision, unless an
    execution of the pipeline already used that revision (then ``newRevision`` is false)."""
    name = text(request, "pipelineName", name=True)
    stage_name = text(request, "stageName", name=True)
    action_name = text(request, "actionName", name=True)
    revision = obj(request, "actionRevision")
    revision_id = text(revision, "revisionId")
    text(revision, "revisionChangeId")
    if revision.get("created") is None:
        raise InvalidInputError("actionRevision.created is required")
    with core.read() as tx:
        pdoc = core.declarations.get(tx, name)
        index = _stage_of(pdoc, stage_name)
        if action_name not in {a.name for a in pdoc.declaration.stages[index].actions}:
            raise ActionNotFoundError(f"stage {stage_name!r} has no action {action_name!r}")
        if index != 0:
            raise InvalidInputError(
                f"{stage_name}.{action_name} is not a source action: PutActionRevision "
                "gives a revision to an action of the first stage"
            )
        for record in tx.executions.recent(name, limit=10_000):
            if record.source_revisions.get(action_name) == revision_id:
                return {"newRevision": False, "pipelineExecutionId": record.id}
    execution_id = await start_execution(
        core,
        name,
        trigger_type=TriggerType.PUT_ACTION_REVISION,
        trigger_detail=action_name,
        variables={},
        source_revisions={action_name: revision_id},
        strict_variables=False,
    )
    return {"newRevision": True, "pipelineExecutionId": execution_id}


async def rollback_stage(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    """A new ROLLBACK execution that enters ``stageName`` directly, with the target execution's
    source revisions, variables and the artifacts of the stages before it, and carries on
    through the stages after it."""
    name = text(request, "pipelineName", name=True)
    stage_name = text(request, "stageName", name=True)
    target_id = text(request, "targetPipelineExecutionId")
    async with core.mutate(name) as (tx, ch):
        pdoc = core.declarations.get(tx, name)
        index = _stage_of(pdoc, stage_name)
        target = _execution(tx, name, target_id)
        state, transitions = core.driver.load_flow(tx, name)
        _check_rollback(tx, pdoc, state, target, stage_name, index)
        record = _rollback_record(core, pdoc, target, index)
        tx.executions.insert(record)
        ch.event("execution", name, pipelineExecutionId=record.id, status=record.status)
        # The rollback execution takes the stage's lock (and becomes its latest) as it enters.
        gate = replace(state.gate(stage_name), occupant=record.id, latest=record.id)
        entered = replace(state, gates={**state.gates, stage_name: gate})
        core.driver.save_flow(tx, name, entered, transitions)
        core.driver.enter_stage(tx, ch, record.id, stage_name)
    return {"pipelineExecutionId": record.id}


def _check_rollback(
    tx: Tx,
    pdoc: PipelineDoc,
    state: flow.FlowState,
    target: ExecutionRecord,
    stage_name: str,
    index: int,
) -> None:
    why = None
    stage = tx.executions.get_stage(target.id, stage_name)
    occupant = state.gate(stage_name).occupant
    if state.mode is ExecutionMode.PARALLEL:
        why = "rollback is not available in PARALLEL mode"
    elif index == 0:
        why = f"{stage_name} is the source stage, and a source stage cannot be rolled back"
    elif target.execution_type == "ROLLBACK":
        why = f"execution {target.id} is itself a rollback; choose a STANDARD execution"
    elif target.pipeline_version != pdoc.version:
        why = (
            f"execution {target.id} ran version {target.pipeline_version} of the pipeline, which "
            f"is now at version {pdoc.version}; a target must have started in the current version"
        )
    elif stage is None or stage.status != StageExecutionStatus.SUCCEEDED:
        how = f"it ended {stage.status}" if stage is not None else "it never ran there"
        why = (
            f"execution {target.id} did not succeed in stage {stage_name} ({how}); "
            "ListPipelineExecutions with filter succeededInStage lists the executions that did"
        )
    elif occupant is not None:
        why = f"stage {stage_name} is running execution {occupant}; wait for it to end or stop it"
    if why is not None:
        raise UnableToRollbackStageError(f"cannot roll back stage {stage_name}: {why}")


def _rollback_record(
    core: EngineCore, pdoc: PipelineDoc, target: ExecutionRecord, index: int
) -> ExecutionRecord:
    earlier = [a for s in pdoc.declaration.stages[:index] for a in s.actions]
    outputs = {o.name for a in earlier for o in a.output_artifacts}
    namespaces = {a.namespace for a in earlier if a.namespace}
    now = core.clock()
    return ExecutionRecord(
        id=str(uuid.uuid4()),
        pipeline=pdoc.name,
        pipeline_version=pdoc.version,
        trigger_type=str(TriggerType.MANUAL_ROLLBACK),
        trigger_detail=target.id,
        rollback_target=target.id,
        execution_mode=str(pdoc.declaration.execution_mode),
        execution_type="ROLLBACK",
        variables=dict(target.variables),
        source_revisions=dict(target.source_revisions),
        namespaces={k: dict(v) for k, v in target.namespaces.items() if k in namespaces},
        artifacts={k: dict(v) for k, v in target.artifacts.items() if k in outputs},
        started=now,
        updated=now,
    )
