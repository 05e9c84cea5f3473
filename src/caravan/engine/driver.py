"""Moves executions through stages: the imperative shell around ``model.flow`` and
``model.stage_plan``.

Every method here runs inside one store transaction and records what must happen after the
commit in a ``Changes``; nothing here starts work or publishes events itself.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from caravan.actions.base import JobPending, JobResult, JobSucceeded
from caravan.engine.action_inputs import artifact_bucket, prepare_action, resolve_commands
from caravan.engine.action_outputs import record_details, record_outputs
from caravan.engine.changes import Changes
from caravan.engine.declarations import DeclarationCache, PipelineDoc
from caravan.engine.gates import read_gates, write_gates
from caravan.model import flow, stage_plan
from caravan.model.declaration import ActionDeclaration, StageDeclaration
from caravan.model.records import ActionRecord, ExecutionRecord, JobRecord, StageRecord
from caravan.model.statuses import (
    ActionExecutionStatus,
    FailureType,
    JobStatus,
    PipelineExecutionStatus,
    StageExecutionStatus,
)
from caravan.model.timeouts import action_timeout
from caravan.store import Tx

CANCELLED_BY_UPDATE = (
    "The pipeline's definition was updated before the pipeline execution could be completed."
)


class Driver:
    def __init__(
        self,
        declarations: DeclarationCache,
        *,
        clock: Callable[[], float],
        continuation_delay: float,
        queue_limit: int,
        default_bucket: str,
        region: str,
        account_id: str,
    ) -> None:
        self.declarations = declarations
        self.clock = clock
        self.continuation_delay = continuation_delay
        self.queue_limit = queue_limit
        self.default_bucket = default_bucket
        self.region = region
        self.account_id = account_id

    # Flow state ---------------------------------------------------------------------------
    def load_flow(self, tx: Tx, pipeline: str) -> tuple[flow.FlowState, dict[str, Any]]:
        return read_gates(tx, pipeline, default_queue_limit=self.queue_limit)

    def save_flow(
        self, tx: Tx, pipeline: str, state: flow.FlowState, transitions: Mapping[str, Any]
    ) -> None:
        write_gates(tx, pipeline, state, transitions)

    def apply_flow(
        self, tx: Tx, ch: Changes, pipeline: str, event: flow.Event
    ) -> tuple[flow.Effect, ...]:
        """Apply one flow event, persist the new gates, and carry out its effects."""
        state, transitions = self.load_flow(tx, pipeline)
        state, effects = flow.apply(state, event)
        self.save_flow(tx, pipeline, state, transitions)
        for effect in effects:
            self._carry_out(tx, ch, pipeline, effect)
        return effects

    def _carry_out(self, tx: Tx, ch: Changes, pipeline: str, effect: flow.Effect) -> None:
        match effect:
            case flow.Entered(execution_id, stage):
                self.enter_stage(tx, ch, execution_id, stage)
            case flow.Waiting(execution_id, stage):
                ch.event("inbound", pipeline, pipelineExecutionId=execution_id, stage=stage)
            case flow.Superseded(execution_id, stage):
                self.end_execution(
                    tx,
                    ch,
                    execution_id,
                    PipelineExecutionStatus.SUPERSEDED,
                    f"A newer execution overtook this one while it waited to enter stage {stage}.",
                )
            case flow.Completed(execution_id):
                self.end_execution(tx, ch, execution_id, PipelineExecutionStatus.SUCCEEDED, None)

    # Executions ---------------------------------------------------------------------------
    def new_execution(
        self,
        tx: Tx,
        ch: Changes,
        pdoc: PipelineDoc,
        *,
        trigger_type: str,
        trigger_detail: str | None,
        variables: Mapping[str, str],
        source_revisions: Mapping[str, str],
    ) -> ExecutionRecord:
        decl = pdoc.declaration
        now = self.clock()
        record = ExecutionRecord(
            id=str(uuid.uuid4()),
            pipeline=decl.name,
            pipeline_version=pdoc.version,
            trigger_type=trigger_type,
            trigger_detail=trigger_detail,
            execution_mode=str(decl.execution_mode),
            variables=dict(variables),
            source_revisions=dict(source_revisions),
            started=now,
            updated=now,
        )
        live = len(tx.executions.live(decl.name))
        state, transitions = self.load_flow(tx, decl.name)
        # Checked before anything is written: a refused start leaves no trace.
        state, effects = flow.apply(state, flow.Start(record.id, live=live))
        tx.executions.insert(record)
        ch.event("execution", decl.name, pipelineExecutionId=record.id, status=record.status)
        self.save_flow(tx, decl.name, state, transitions)
        for effect in effects:
            self._carry_out(tx, ch, decl.name, effect)
        return record

    def end_execution(
        self,
        tx: Tx,
        ch: Changes,
        execution_id: str,
        status: PipelineExecutionStatus,
        summary: str | None,
    ) -> None:
        record = self._execution(tx, execution_id)
        record.status = status
        if summary is not None:
            record.status_summary = summary
        record.updated = self.clock()
        tx.executions.save(record)
        ch.event(
            "execution",
            record.pipeline,
            pipelineExecutionId=record.id,
            status=str(status),
            statusSummary=record.status_summary,
        )

    def cancel_execution(self, tx: Tx, ch: Changes, record: ExecutionRecord, reason: str) -> None:
        """End a live execution Cancelled: its running actions are abandoned."""
        for stage in tx.executions.stages_of(record.id):
            if stage.status in (StageExecutionStatus.IN_PROGRESS, StageExecutionStatus.STOPPING):
                self._abandon_live_actions(tx, ch, record.id, stage.stage, reason)
                stage.status = StageExecutionStatus.CANCELLED
                stage.updated = self.clock()
                tx.executions.save_stage(stage)
                ch.stage_event(stage)
        self.end_execution(tx, ch, record.id, PipelineExecutionStatus.CANCELLED, reason)
        self.apply_flow(tx, ch, record.pipeline, flow.Cancel(record.id))

    # Stages -------------------------------------------------------------------------------
    def enter_stage(self, tx: Tx, ch: Changes, execution_id: str, stage_name: str) -> None:
        record = self._execution(tx, execution_id)
        now = self.clock()
        stage = tx.executions.get_stage(execution_id, stage_name)
        if stage is None:
            stage = StageRecord(execution_id, record.pipeline, stage_name, started=now)
        stage.status = StageExecutionStatus.IN_PROGRESS
        stage.updated = now
        tx.executions.save_stage(stage)
        ch.stage_event(stage)
        self.advance_stage(tx, ch, record, stage)

    def advance_stage(
        self, tx: Tx, ch: Changes, record: ExecutionRecord, stage: StageRecord
    ) -> None:
        """Start what can start; end the stage when its plan says it has ended."""
        decl_stage = self._stage_decl(tx, record, stage.stage)
        current: dict[str, str] = {}  # action name -> status, in this stage attempt
        for row in tx.executions.action_statuses(stage.execution_id, stage.stage):
            if row.attempt == stage.attempt or stage.carried.get(row.action) == row.id:
                current[row.action] = row.status
        while True:
            runs = [
                stage_plan.ActionRun(
                    a.name,
                    a.run_order,
                    ActionExecutionStatus(current[a.name]) if a.name in current else None,
                )
                for a in decl_stage.actions
            ]
            plan = stage_plan.plan(runs, stopping=stage.stopping)
            if not plan.start:
                break
            # Plan again only if an action failed as it started (e.g. an unresolved variable).
            for name in plan.start:
                action = next(a for a in decl_stage.actions if a.name == name)
                current[name] = self.start_action(tx, ch, record, stage, action).status
        if plan.outcome is not None:
            self.finish_stage(tx, ch, record, stage, plan.outcome)

    def finish_stage(
        self,
        tx: Tx,
        ch: Changes,
        record: ExecutionRecord,
        stage: StageRecord,
        outcome: StageExecutionStatus,
    ) -> None:
        stage.status = outcome
        stage.stopping = False
        stage.updated = self.clock()
        tx.executions.save_stage(stage)
        ch.stage_event(stage)
        if outcome is StageExecutionStatus.SUCCEEDED:
            self.apply_flow(tx, ch, record.pipeline, flow.StageSucceeded(record.id, stage.stage))
        elif outcome is StageExecutionStatus.FAILED:
            self.end_execution(
                tx,
                ch,
                record.id,
                PipelineExecutionStatus.FAILED,
                self._failure_summary(tx, record, stage),
            )
            self.apply_flow(tx, ch, record.pipeline, flow.StageFailed(record.id, stage.stage))
        elif outcome is StageExecutionStatus.STOPPED:
            self.end_execution(
                tx, ch, record.id, PipelineExecutionStatus.STOPPED, record.stop_reason
            )
            self.apply_flow(tx, ch, record.pipeline, flow.StageStopped(record.id, stage.stage))

    def _failure_summary(self, tx: Tx, record: ExecutionRecord, stage: StageRecord) -> str:
        for action in reversed(self.current_actions(tx, stage)):
            if action.status == ActionExecutionStatus.FAILED:
                first_line = (action.error_message or "failed").strip().splitlines() or ["failed"]
                return f"Action {action.action} in stage {stage.stage} failed: {first_line[-1]}"
        return f"Stage {stage.stage} failed."

    def current_actions(self, tx: Tx, stage: StageRecord) -> list[ActionRecord]:
        """The action executions that count in the stage's current attempt, one per action."""
        latest: dict[str, ActionRecord] = {}
        for action in tx.executions.actions_of(stage.execution_id, stage.stage):
            carried = stage.carried.get(action.action)
            if action.attempt == stage.attempt or action.id == carried:
                latest[action.action] = action
        return list(latest.values())

    # Actions ------------------------------------------------------------------------------
    def start_action(
        self,
        tx: Tx,
        ch: Changes,
        record: ExecutionRecord,
        stage: StageRecord,
        decl: ActionDeclaration,
    ) -> ActionRecord:
        pdoc = self.declarations.get(tx, record.pipeline, record.pipeline_version)
        now = self.clock()
        type_id = decl.action_type_id
        action = ActionRecord(
            id=str(uuid.uuid4()),
            pipeline=record.pipeline,
            pipeline_version=record.pipeline_version,
            execution_id=record.id,
            stage=stage.stage,
            action=decl.name,
            attempt=stage.attempt,
            run_order=decl.run_order,
            action_type={
                "category": str(type_id.category),
                "owner": str(type_id.owner),
                "provider": type_id.provider,
                "version": type_id.version,
            },
            configuration=dict(decl.configuration),
            namespace=decl.namespace,
            region=decl.region,
            role_arn=decl.role_arn,
            started=now,
            updated=now,
        )
        timeout = action_timeout(
            str(type_id.category),
            str(type_id.owner),
            type_id.provider,
            timeout_in_minutes=decl.timeout_in_minutes,
            timeout_in_seconds=decl.timeout_in_seconds,
        )
        action.timeout_at = now + timeout
        problem = self._prepare_action(record, pdoc, decl, action)
        if problem is not None:
            action.status = ActionExecutionStatus.FAILED
            action.error_code = str(FailureType.CONFIGURATION_ERROR)
            action.error_message = problem
            tx.executions.insert_action(action)
            ch.action_event(action)
            ch.ended_actions.append(action.id)
            return action
        if str(type_id.category) == "Approval":
            action.token = str(uuid.uuid4())
        else:
            job = self._new_job(record, action, decl, continuation_token=None, due_at=now)
            action.job_id = job.id
            tx.jobs.insert(job)
            ch.dispatch.append((job, action))
        tx.executions.insert_action(action)
        ch.timers.append((action.id, action.timeout_at))
        ch.action_event(action)
        return action

    def _prepare_action(
        self,
        record: ExecutionRecord,
        pdoc: PipelineDoc,
        decl: ActionDeclaration,
        action: ActionRecord,
    ) -> str | None:
        """Resolve variables and artifact locations; a problem is returned as a message."""
        bucket = artifact_bucket(pdoc.declaration, self.default_bucket)
        return prepare_action(record, decl, action, bucket=bucket)

    def resolve_commands(
        self, record: ExecutionRecord, decl: ActionDeclaration
    ) -> tuple[tuple[str, ...], dict[str, str]]:
        return resolve_commands(record, decl)

    def _new_job(
        self,
        record: ExecutionRecord,
        action: ActionRecord,
        decl: ActionDeclaration,
        *,
        continuation_token: str | None,
        due_at: float,
    ) -> JobRecord:
        now = self.clock()
        return JobRecord(
            id=str(uuid.uuid4()),
            nonce=secrets.token_hex(8),
            action_execution_id=action.id,
            pipeline=record.pipeline,
            execution_id=record.id,
            action_type=dict(action.action_type),
            status=JobStatus.QUEUED,
            data={"continuation_token": continuation_token},
            due_at=due_at,
            created=now,
            updated=now,
        )

    def apply_result(self, tx: Tx, ch: Changes, job: JobRecord, result: JobResult) -> bool:
        """Record a job's result; False when the job had already ended (the result is ignored)."""
        if isinstance(result, JobPending):
            return True  # the result arrives later through the job API
        if not job.open:
            return False
        action = tx.executions.get_action(job.action_execution_id)
        if action is None or not action.live or action.job_id != job.id:
            self._close_job(tx, job, JobStatus.FAILED)
            return False
        record = self._execution(tx, action.execution_id)
        now = self.clock()
        if isinstance(result, JobSucceeded):
            self._close_job(tx, job, JobStatus.SUCCEEDED)
            record_details(action, result)
            if result.continuation_token is not None:
                decl = self._action_decl(tx, record, action)
                follow = self._new_job(
                    record,
                    action,
                    decl,
                    continuation_token=result.continuation_token,
                    due_at=now + self.continuation_delay,
                )
                tx.jobs.insert(follow)
                action.job_id = follow.id
                action.updated = now
                tx.executions.save_action(action)
                ch.dispatch.append((follow, action))
                ch.action_event(action)
                return True
            if action.output_artifacts or action.namespace or result.current_revision:
                record_outputs(record, action, result, now=self.clock())
                tx.executions.save(record)
            else:
                action.output_variables = dict(result.output_variables)
            self.end_action(tx, ch, action, ActionExecutionStatus.SUCCEEDED)
        else:
            self._close_job(tx, job, JobStatus.FAILED)
            action.error_code = str(result.type)
            action.error_message = result.message
            action.external_execution_id = result.external_execution_id
            self.end_action(tx, ch, action, ActionExecutionStatus.FAILED)
        self.after_action(tx, ch, action, record)
        return True

    def end_action(
        self, tx: Tx, ch: Changes, action: ActionRecord, status: ActionExecutionStatus
    ) -> None:
        action.status = status
        action.updated = self.clock()
        tx.executions.save_action(action)
        ch.ended_actions.append(action.id)
        ch.action_event(action)

    def after_action(
        self, tx: Tx, ch: Changes, action: ActionRecord, record: ExecutionRecord | None = None
    ) -> None:
        """An action ended: move its stage on, unless the stage no longer waits for it."""
        stage = tx.executions.get_stage(action.execution_id, action.stage)
        if stage is None or stage.status not in (
            StageExecutionStatus.IN_PROGRESS,
            StageExecutionStatus.STOPPING,
        ):
            return
        counts = action.attempt == stage.attempt or stage.carried.get(action.action) == action.id
        if counts:
            record = record or self._execution(tx, action.execution_id)
            self.advance_stage(tx, ch, record, stage)

    def fail_action(
        self, tx: Tx, ch: Changes, action: ActionRecord, code: FailureType, message: str
    ) -> None:
        if action.job_id is not None:
            job = tx.jobs.get(action.job_id)
            if job is not None and job.open:
                self._close_job(
                    tx, job, JobStatus.TIMED_OUT if "timed out" in message else JobStatus.FAILED
                )
                ch.cancel.append(job.id)
        action.error_code = str(code)
        action.error_message = message
        self.end_action(tx, ch, action, ActionExecutionStatus.FAILED)
        self.after_action(tx, ch, action)

    def _abandon_live_actions(
        self, tx: Tx, ch: Changes, execution_id: str, stage: str, reason: str
    ) -> None:
        for action in tx.executions.actions_of(execution_id, stage):
            if not action.live:
                continue
            if action.job_id is not None:
                job = tx.jobs.get(action.job_id)
                if job is not None and job.open:
                    self._close_job(tx, job, JobStatus.FAILED)
                    ch.cancel.append(job.id)
            action.error_message = reason
            self.end_action(tx, ch, action, ActionExecutionStatus.ABANDONED)

    def abandon_stage_actions(
        self, tx: Tx, ch: Changes, record: ExecutionRecord, stage: StageRecord, reason: str
    ) -> None:
        self._abandon_live_actions(tx, ch, record.id, stage.stage, reason)

    def _close_job(self, tx: Tx, job: JobRecord, status: JobStatus) -> None:
        job.status = status
        job.updated = self.clock()
        tx.jobs.save(job)

    # Lookups ------------------------------------------------------------------------------
    def _execution(self, tx: Tx, execution_id: str) -> ExecutionRecord:
        record = tx.executions.get(execution_id)
        if record is None:
            raise LookupError(f"execution {execution_id} vanished from the store")
        return record

    def _stage_decl(self, tx: Tx, record: ExecutionRecord, stage: str) -> StageDeclaration:
        decl = self.declarations.get(tx, record.pipeline, record.pipeline_version).declaration
        return next(s for s in decl.stages if s.name == stage)

    def _action_decl(
        self, tx: Tx, record: ExecutionRecord, action: ActionRecord
    ) -> ActionDeclaration:
        stage = self._stage_decl(tx, record, action.stage)
        return next(a for a in stage.actions if a.name == action.action)

    def declared_action(
        self, tx: Tx, record: ExecutionRecord, action: ActionRecord
    ) -> ActionDeclaration:
        return self._action_decl(tx, record, action)
