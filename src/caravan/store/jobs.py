"""Jobs: one dispatch of an action execution, as CodePipeline's job workers see them."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from caravan.model.records import JobRecord
from caravan.store.schema import jobs

_OPEN = ("Created", "Queued", "Dispatched", "InProgress")


class JobConnector:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, record: JobRecord) -> None:
        t = record.action_type
        self.conn.execute(
            insert(jobs).values(
                id=record.id,
                action_execution_id=record.action_execution_id,
                status=record.status,
                owner=t["owner"],
                category=t["category"],
                provider=t["provider"],
                version=t["version"],
                due_at=record.due_at,
                doc=record.to_doc(),
            )
        )

    def save(self, record: JobRecord) -> None:
        self.conn.execute(
            update(jobs)
            .where(jobs.c.id == record.id)
            .values(status=record.status, due_at=record.due_at, doc=record.to_doc())
        )

    def get(self, job_id: str) -> JobRecord | None:
        row = self.conn.execute(select(jobs.c.doc).where(jobs.c.id == job_id)).first()
        return None if row is None else JobRecord.from_doc(dict(row.doc))

    def open_jobs(self) -> list[JobRecord]:
        rows = self.conn.execute(select(jobs.c.doc).where(jobs.c.status.in_(_OPEN)))
        return [JobRecord.from_doc(dict(r.doc)) for r in rows]

    def queued_for(
        self, category: str, owner: str, provider: str, version: str, *, now: float, limit: int
    ) -> list[JobRecord]:
        rows = self.conn.execute(
            select(jobs.c.doc)
            .where(
                jobs.c.status == "Queued",
                jobs.c.category == category,
                jobs.c.owner == owner,
                jobs.c.provider == provider,
                jobs.c.version == version,
                jobs.c.due_at <= now,
            )
            .order_by(jobs.c.due_at)
            .limit(limit)
        )
        return [JobRecord.from_doc(dict(r.doc)) for r in rows]
