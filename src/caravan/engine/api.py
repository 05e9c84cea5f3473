"""The engine as its callers (server, CLI's in-process ``run``) see it.

Operations are CodePipeline's: ``call("GetPipelineState", {"name": "p"})`` takes the request
shape of that API operation and returns its response shape (botocore's codepipeline model), so
the native API, the AWS JSON 1.1 endpoint and the CLI's ``--json`` share one vocabulary.
caravan's additions to a request are extra optional keys (documented per operation).
Errors are ``caravan.errors.CaravanError`` subclasses whose ``aws_type`` is the AWS exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# The operations the engine answers: all 44 of CodePipeline's (docs/api.md says how fully).
OPERATIONS: tuple[str, ...] = (
    "CreatePipeline",
    "UpdatePipeline",
    "GetPipeline",
    "ListPipelines",
    "DeletePipeline",
    "StartPipelineExecution",
    "StopPipelineExecution",
    "GetPipelineExecution",
    "ListPipelineExecutions",
    "GetPipelineState",
    "ListActionExecutions",
    "RetryStageExecution",
    "PutApprovalResult",
    "EnableStageTransition",
    "DisableStageTransition",
    "PollForJobs",
    "AcknowledgeJob",
    "GetJobDetails",
    "PutJobSuccessResult",
    "PutJobFailureResult",
    "PollForThirdPartyJobs",
    "AcknowledgeThirdPartyJob",
    "GetThirdPartyJobDetails",
    "PutThirdPartyJobSuccessResult",
    "PutThirdPartyJobFailureResult",
    "ListActionTypes",
    "CreateCustomActionType",
    "DeleteCustomActionType",
    "GetActionType",
    "UpdateActionType",
    "PutWebhook",
    "ListWebhooks",
    "DeleteWebhook",
    "RegisterWebhookWithThirdParty",
    "DeregisterWebhookWithThirdParty",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "RollbackStage",
    "PutActionRevision",
    "OverrideStageCondition",
    "ListRuleTypes",
    "ListRuleExecutions",
    "ListDeployActionExecutionTargets",
)


@dataclass(frozen=True)
class LogChunk:
    text: str
    next_offset: int  # pass back to read on from here
    complete: bool  # the action has ended and this is the end of its log


class EngineAPI(Protocol):
    async def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Run one CodePipeline operation. Raises CaravanError (unknown operation included)."""
        ...

    async def read_log(self, action_execution_id: str, offset: int = 0) -> LogChunk:
        """Read an action's log from byte ``offset``."""
        ...

    def follow_log(self, action_execution_id: str, offset: int = 0) -> AsyncIterator[str]:
        """Yield the log as it is written, until the action ends."""
        ...

    def subscribe(self, pipeline: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield change events as they are committed, e.g.
        {"type": "execution", "pipeline": "p", "pipelineExecutionId": "...", "status": "..."},
        {"type": "stage", ..., "stage": "Build", "status": "..."},
        {"type": "action", ..., "stage": "Build", "action": "Compile", "status": "...",
         "actionExecutionId": "..."}, {"type": "transition", ...}, {"type": "pipeline", ...}.
        """
        ...
