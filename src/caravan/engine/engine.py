"""The engine as callers use it: CodePipeline operations by name, logs, and live events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from caravan.engine import (
    ops_action_types,
    ops_admin,
    ops_executions,
    ops_jobs,
    ops_pipelines,
    ops_tags,
    ops_third_party,
    ops_webhooks,
    views,
)
from caravan.engine.api import OPERATIONS, LogChunk
from caravan.engine.core import EngineCore
from caravan.errors import ActionNotFoundError, InvalidInputError

Operation = Callable[[EngineCore, dict[str, Any]], Awaitable[dict[str, Any]]]

_OPERATIONS: dict[str, Operation] = {
    "CreatePipeline": ops_pipelines.create_pipeline,
    "UpdatePipeline": ops_pipelines.update_pipeline,
    "GetPipeline": ops_pipelines.get_pipeline,
    "ListPipelines": ops_pipelines.list_pipelines,
    "DeletePipeline": ops_pipelines.delete_pipeline,
    "StartPipelineExecution": ops_executions.start_pipeline_execution,
    "StopPipelineExecution": ops_executions.stop_pipeline_execution,
    "RetryStageExecution": ops_executions.retry_stage_execution,
    "EnableStageTransition": partial(ops_executions.set_transition, enabled=True),
    "DisableStageTransition": partial(ops_executions.set_transition, enabled=False),
    "PutApprovalResult": ops_executions.put_approval_result,
    "GetPipelineState": views.get_pipeline_state,
    # Both through ops_admin, which adds the rollbackMetadata of rollback executions.
    "ListPipelineExecutions": views.list_pipeline_executions,
    "GetPipelineExecution": views.get_pipeline_execution,
    "ListActionExecutions": views.list_action_executions,
    "PollForJobs": ops_jobs.poll_for_jobs,
    "AcknowledgeJob": ops_jobs.acknowledge_job,
    "GetJobDetails": ops_jobs.get_job_details,
    "PutJobSuccessResult": ops_jobs.put_job_success_result,
    "PutJobFailureResult": ops_jobs.put_job_failure_result,
    "PollForThirdPartyJobs": ops_third_party.poll_for_third_party_jobs,
    "AcknowledgeThirdPartyJob": ops_third_party.acknowledge_third_party_job,
    "GetThirdPartyJobDetails": ops_third_party.get_third_party_job_details,
    "PutThirdPartyJobSuccessResult": ops_third_party.put_third_party_job_success_result,
    "PutThirdPartyJobFailureResult": ops_third_party.put_third_party_job_failure_result,
    "ListActionTypes": ops_action_types.list_action_types,
    "CreateCustomActionType": ops_action_types.create_custom_action_type,
    "DeleteCustomActionType": ops_action_types.delete_custom_action_type,
    "GetActionType": ops_action_types.get_action_type,
    "UpdateActionType": ops_action_types.update_action_type,
    "PutWebhook": ops_webhooks.put_webhook,
    "ListWebhooks": ops_webhooks.list_webhooks,
    "DeleteWebhook": ops_webhooks.delete_webhook,
    "RegisterWebhookWithThirdParty": ops_webhooks.webhook_with_third_party,
    "DeregisterWebhookWithThirdParty": ops_webhooks.webhook_with_third_party,
    "TagResource": ops_tags.tag_resource,
    "UntagResource": ops_tags.untag_resource,
    "ListTagsForResource": ops_tags.list_tags_for_resource,
    "RollbackStage": ops_admin.rollback_stage,
    "PutActionRevision": ops_admin.put_action_revision,
    "OverrideStageCondition": ops_admin.override_stage_condition,
    "ListRuleTypes": ops_admin.list_rule_types,
    "ListRuleExecutions": ops_admin.list_rule_executions,
    "ListDeployActionExecutionTargets": ops_admin.list_deploy_action_execution_targets,
}
assert set(_OPERATIONS) == set(OPERATIONS), "engine/api.py lists the operations served here"


class UnknownOperationError(InvalidInputError):
    reference = "unknown-operation"
    aws_type = "UnknownOperationException"


class Engine:
    """Implements ``caravan.engine.api.EngineAPI``."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        handler = _OPERATIONS.get(operation)
        if handler is None:
            raise UnknownOperationError(
                f"unknown operation {operation!r}; this server answers: "
                + ", ".join(sorted(_OPERATIONS))
            )
        if not isinstance(request, Mapping):
            raise InvalidInputError("the request body must be a JSON object")
        return await handler(self.core, dict(request))

    def _live(self, action_execution_id: str) -> bool:
        with self.core.read() as tx:
            action = tx.executions.get_action(action_execution_id)
        if action is None:
            raise ActionNotFoundError(f"no action execution {action_execution_id!r}")
        return bool(action.live)

    def set_public_url(self, url: str) -> None:
        """The URL the server answers on, known once its socket listens: the webhook URLs
        PutWebhook hands out and the AWS endpoint given to handler actions use it."""
        url = url.rstrip("/")
        self.core.settings = replace(self.core.settings, public_url=url, aws_endpoint_url=url)
        self.core.dispatcher.settings["aws_endpoint_url"] = url

    async def read_log(self, action_execution_id: str, offset: int = 0) -> LogChunk:
        live = self._live(action_execution_id)
        return self.core.logs.read(action_execution_id, offset, complete=not live)

    async def follow_log(self, action_execution_id: str, offset: int = 0) -> AsyncIterator[str]:
        self._live(action_execution_id)  # raises for an unknown id before streaming starts
        async for text in self.core.logs.follow(
            action_execution_id, offset, lambda: self._live(action_execution_id)
        ):
            yield text

    async def subscribe(self, pipeline: str | None = None) -> AsyncIterator[dict[str, Any]]:
        async for event in self.core.bus.subscribe(pipeline):
            yield event
