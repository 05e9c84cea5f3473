"""What a transaction decided to do once it commits: dispatch jobs, cancel work, publish events.

The engine collects these while it changes records, commits, and only then performs them
(durable before effective).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caravan.model.records import ActionRecord, JobRecord, StageRecord


@dataclass
class Changes:
    # Jobs to run (now, or at their due_at), with the action they carry.
    dispatch: list[tuple[JobRecord, ActionRecord]] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)  # job ids whose local work must stop
    timers: list[tuple[str, float]] = field(default_factory=list)  # (action id, deadline)
    events: list[dict[str, Any]] = field(default_factory=list)
    ended_actions: list[str] = field(default_factory=list)  # wake log followers

    def event(self, kind: str, pipeline: str, **fields: Any) -> None:
        self.events.append({"type": kind, "pipeline": pipeline, **fields})

    def stage_event(self, stage: StageRecord) -> None:
        """A stage execution changed: its status as it is now."""
        self.event(
            "stage",
            stage.pipeline,
            pipelineExecutionId=stage.execution_id,
            stage=stage.stage,
            status=str(stage.status),
        )

    def action_event(self, action: ActionRecord) -> None:
        """An action execution changed: its status, summary and error as they are now."""
        self.event(
            "action",
            action.pipeline,
            pipelineExecutionId=action.execution_id,
            stage=action.stage,
            action=action.action,
            actionExecutionId=action.id,
            status=str(action.status),
            summary=action.summary,
            error=action.error_message,
        )
