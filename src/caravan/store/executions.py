"""Pipeline executions, stage executions and action executions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import Connection, delete, insert, select, update

from caravan.model.records import ActionRecord, ExecutionRecord, StageRecord
from caravan.model.statuses import PipelineExecutionStatus
from caravan.store.schema import actions, executions, stages


class ActionStatus(NamedTuple):
    id: str
    action: str
    attempt: int
    status: str


_LIVE = (PipelineExecutionStatus.IN_PROGRESS.value, PipelineExecutionStatus.STOPPING.value)


class ExecutionConnector:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # Pipeline executions ------------------------------------------------------------------
    def insert(self, record: ExecutionRecord) -> ExecutionRecord:
        result = self.conn.execute(
            insert(executions).values(
                id=record.id,
                pipeline=record.pipeline,
                status=record.status,
                doc=record.to_doc(),
                started=record.started,
            )
        )
        key = result.inserted_primary_key
        assert key is not None  # an INSERT always has one
        record.seq = int(key[0])
        return record

    def save(self, record: ExecutionRecord) -> None:
        self.conn.execute(
            update(executions)
            .where(executions.c.id == record.id)
            .values(status=record.status, doc=record.to_doc())
        )

    def get(self, execution_id: str) -> ExecutionRecord | None:
        row = self.conn.execute(
            select(executions.c.seq, executions.c.doc).where(executions.c.id == execution_id)
        ).first()
        return None if row is None else _execution(row)

    def recent(
        self, pipeline: str, *, limit: int = 100, before_seq: int | None = None
    ) -> list[ExecutionRecord]:
        query = select(executions.c.seq, executions.c.doc).where(executions.c.pipeline == pipeline)
        if before_seq is not None:
            query = query.where(executions.c.seq < before_seq)
        rows = self.conn.execute(query.order_by(executions.c.seq.desc()).limit(limit))
        return [_execution(r) for r in rows]

    def live(self, pipeline: str | None = None) -> list[ExecutionRecord]:
        query = select(executions.c.seq, executions.c.doc).where(executions.c.status.in_(_LIVE))
        if pipeline is not None:
            query = query.where(executions.c.pipeline == pipeline)
        return [_execution(r) for r in self.conn.execute(query.order_by(executions.c.seq))]

    def delete_pipeline(self, pipeline: str) -> None:
        for table in (actions, stages, executions):
            self.conn.execute(delete(table).where(table.c.pipeline == pipeline))

    # Stage executions ---------------------------------------------------------------------
    def get_stage(self, execution_id: str, stage: str) -> StageRecord | None:
        row = self.conn.execute(
            select(stages.c.doc).where(
                stages.c.execution_id == execution_id, stages.c.stage == stage
            )
        ).first()
        return None if row is None else StageRecord.from_doc(dict(row.doc))

    def save_stage(self, record: StageRecord) -> None:
        values = {"status": record.status, "doc": record.to_doc()}
        done = self.conn.execute(
            update(stages)
            .where(stages.c.execution_id == record.execution_id, stages.c.stage == record.stage)
            .values(**values)
        )
        if done.rowcount == 0:
            self.conn.execute(
                insert(stages).values(
                    execution_id=record.execution_id,
                    stage=record.stage,
                    pipeline=record.pipeline,
                    started=record.started,
                    **values,
                )
            )

    def stages_of(self, execution_id: str) -> list[StageRecord]:
        rows = self.conn.execute(select(stages.c.doc).where(stages.c.execution_id == execution_id))
        return [StageRecord.from_doc(dict(r.doc)) for r in rows]

    def latest_stage(self, pipeline: str, stage: str) -> StageRecord | None:
        """The most recently started execution of a stage (PARALLEL mode's "latest")."""
        row = self.conn.execute(
            select(stages.c.doc)
            .where(stages.c.pipeline == pipeline, stages.c.stage == stage)
            .order_by(stages.c.started.desc())
            .limit(1)
        ).first()
        return None if row is None else StageRecord.from_doc(dict(row.doc))

    # Action executions --------------------------------------------------------------------
    def insert_action(self, record: ActionRecord) -> None:
        self.conn.execute(
            insert(actions).values(
                id=record.id,
                pipeline=record.pipeline,
                execution_id=record.execution_id,
                stage=record.stage,
                action=record.action,
                attempt=record.attempt,
                status=record.status,
                doc=record.to_doc(),
            )
        )

    def save_action(self, record: ActionRecord) -> None:
        self.conn.execute(
            update(actions)
            .where(actions.c.id == record.id)
            .values(status=record.status, doc=record.to_doc())
        )

    def get_action(self, action_execution_id: str) -> ActionRecord | None:
        row = self.conn.execute(
            select(actions.c.doc).where(actions.c.id == action_execution_id)
        ).first()
        return None if row is None else ActionRecord.from_doc(dict(row.doc))

    def actions_of(self, execution_id: str, stage: str | None = None) -> list[ActionRecord]:
        query = select(actions.c.doc).where(actions.c.execution_id == execution_id)
        if stage is not None:
            query = query.where(actions.c.stage == stage)
        rows = self.conn.execute(query.order_by(actions.c.seq))
        return [ActionRecord.from_doc(dict(r.doc)) for r in rows]

    def action_statuses(self, execution_id: str, stage: str) -> list[ActionStatus]:
        """Id, name, attempt and status of a stage's action executions, oldest first (cheap:
        no documents are decoded)."""
        rows = self.conn.execute(
            select(actions.c.id, actions.c.action, actions.c.attempt, actions.c.status)
            .where(actions.c.execution_id == execution_id, actions.c.stage == stage)
            .order_by(actions.c.seq)
        )
        return [ActionStatus(r.id, r.action, r.attempt, r.status) for r in rows]

    def actions_of_pipeline(
        self, pipeline: str, *, execution_ids: Iterable[str] | None = None, limit: int = 1000
    ) -> list[ActionRecord]:
        query = select(actions.c.doc).where(actions.c.pipeline == pipeline)
        if execution_ids is not None:
            query = query.where(actions.c.execution_id.in_(list(execution_ids)))
        rows = self.conn.execute(query.order_by(actions.c.seq.desc()).limit(limit))
        return [ActionRecord.from_doc(dict(r.doc)) for r in rows]

    def live_actions(self) -> list[ActionRecord]:
        rows = self.conn.execute(
            select(actions.c.doc).where(actions.c.status == "InProgress").order_by(actions.c.seq)
        )
        return [ActionRecord.from_doc(dict(r.doc)) for r in rows]


def _execution(row: object) -> ExecutionRecord:
    record = ExecutionRecord.from_doc(dict(row.doc))  # type: ignore[attr-defined]
    record.seq = int(row.seq)  # type: ignore[attr-defined]
    return record
