"""Execution records: what the store keeps about executions, stages, actions and jobs.

Plain dataclasses that serialise to JSON documents (``to_doc``/``from_doc``). The store keeps
the document plus a few indexed columns; the engine reads and writes these records only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Self

from caravan.model.statuses import (
    ActionExecutionStatus,
    JobStatus,
    PipelineExecutionStatus,
    StageExecutionStatus,
)

_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    return names


class _Doc:
    """Round-trips a dataclass through a JSON-able dict, ignoring unknown keys (forward compat).

    ``to_doc`` is shallow on purpose: the store serialises the document at once, and a deep copy
    per write was the engine's largest single cost.
    """

    def to_doc(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _field_names(type(self))}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Self:
        names = _field_names(cls)
        return cls(**{k: v for k, v in doc.items() if k in names})


@dataclass
class ArtifactRef(_Doc):
    name: str
    bucket: str
    key: str
    revision: str | None = None
    summary: str | None = None
    created: float | None = None


@dataclass
class ExecutionRecord(_Doc):
    id: str
    pipeline: str
    pipeline_version: int
    status: str = PipelineExecutionStatus.IN_PROGRESS
    status_summary: str | None = None
    trigger_type: str = "StartPipelineExecution"
    trigger_detail: str | None = None
    execution_mode: str = "SUPERSEDED"
    execution_type: str = "STANDARD"
    rollback_target: str | None = None  # a ROLLBACK execution's targetPipelineExecutionId
    variables: dict[str, str] = field(default_factory=dict)  # pipeline-level, resolved
    source_revisions: dict[str, str] = field(default_factory=dict)  # source action -> commit
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)  # output variables
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> ArtifactRef doc
    stop_reason: str | None = None
    stop_abandon: bool = False
    started: float = 0.0
    updated: float = 0.0
    seq: int = 0  # assigned by the store: start order within the whole store

    @property
    def live(self) -> bool:
        return not PipelineExecutionStatus(self.status).terminal


@dataclass
class StageRecord(_Doc):
    execution_id: str
    pipeline: str
    stage: str
    status: str = StageExecutionStatus.IN_PROGRESS
    attempt: int = 1
    stopping: bool = False
    # Actions whose execution from an earlier attempt counts in this attempt (FAILED_ACTIONS
    # retry keeps succeeded and still-running actions): action name -> action execution id.
    carried: dict[str, str] = field(default_factory=dict)
    manual_retries: int = 0
    started: float = 0.0
    updated: float = 0.0


@dataclass
class ActionRecord(_Doc):
    id: str  # actionExecutionId
    pipeline: str
    pipeline_version: int
    execution_id: str
    stage: str
    action: str
    attempt: int
    run_order: int
    action_type: dict[str, str]
    status: str = ActionExecutionStatus.IN_PROGRESS
    configuration: dict[str, str] = field(default_factory=dict)
    resolved_configuration: dict[str, str] = field(default_factory=dict)
    namespace: str | None = None
    region: str | None = None
    role_arn: str | None = None
    input_artifacts: list[dict[str, Any]] = field(default_factory=list)
    output_artifacts: list[dict[str, Any]] = field(default_factory=list)
    output_variables: dict[str, str] = field(default_factory=dict)
    summary: str | None = None
    external_execution_id: str | None = None
    percent_complete: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    token: str | None = None  # approval token
    approval_summary: str | None = None
    updated_by: str | None = None
    job_id: str | None = None  # the job currently carrying this action
    timeout_at: float | None = None
    started: float = 0.0
    updated: float = 0.0

    @property
    def live(self) -> bool:
        return self.status == ActionExecutionStatus.IN_PROGRESS


@dataclass
class JobRecord(_Doc):
    id: str
    nonce: str
    action_execution_id: str
    pipeline: str
    execution_id: str
    action_type: dict[str, str]
    status: str = JobStatus.QUEUED
    data: dict[str, Any] = field(default_factory=dict)  # the Job, serialised
    due_at: float = 0.0  # not dispatched before (continuations wait)
    dispatches: int = 0
    created: float = 0.0
    updated: float = 0.0

    @property
    def open(self) -> bool:
        return self.status in (
            JobStatus.CREATED,
            JobStatus.QUEUED,
            JobStatus.DISPATCHED,
            JobStatus.IN_PROGRESS,
        )
