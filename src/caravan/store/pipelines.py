"""Pipelines, their versions, their stage gates (flow state) and free-form documents."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from caravan.store.schema import documents, flows, pipeline_versions, pipelines


class PipelineConnector:
    def __init__(self, conn: Connection, *, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    def get(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(pipelines).where(pipelines.c.name == name)).first()
        return None if row is None else _pipeline_row(row)

    def all(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(pipelines).order_by(pipelines.c.name))
        return [_pipeline_row(r) for r in rows]

    def insert(self, name: str, version: int, doc: dict[str, Any], now: float) -> None:
        self.conn.execute(
            insert(pipelines).values(name=name, version=version, doc=doc, created=now, updated=now)
        )
        self._insert_version(name, version, doc, now)

    def replace(self, name: str, version: int, doc: dict[str, Any], now: float) -> None:
        self.conn.execute(
            update(pipelines)
            .where(pipelines.c.name == name)
            .values(version=version, doc=doc, updated=now)
        )
        self._insert_version(name, version, doc, now)

    def delete(self, name: str) -> None:
        for table, column in (
            (pipelines, pipelines.c.name),
            (pipeline_versions, pipeline_versions.c.name),
            (flows, flows.c.pipeline),
        ):
            self.conn.execute(delete(table).where(column == name))

    def get_version(self, name: str, version: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(pipeline_versions.c.doc).where(
                pipeline_versions.c.name == name, pipeline_versions.c.version == version
            )
        ).first()
        return None if row is None else dict(row.doc)

    def _insert_version(self, name: str, version: int, doc: dict[str, Any], now: float) -> None:
        self.conn.execute(
            insert(pipeline_versions).values(name=name, version=version, doc=doc, created=now)
        )

    # Flow state: read for update, so two writers of one pipeline serialise (PostgreSQL).
    def get_flow(self, pipeline: str) -> dict[str, Any] | None:
        query = select(flows.c.doc).where(flows.c.pipeline == pipeline)
        if self.postgres:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return None if row is None else dict(row.doc)

    def put_flow(self, pipeline: str, doc: dict[str, Any]) -> None:
        done = self.conn.execute(update(flows).where(flows.c.pipeline == pipeline).values(doc=doc))
        if done.rowcount == 0:
            self.conn.execute(insert(flows).values(pipeline=pipeline, doc=doc))

    # Documents: webhooks, tags, custom action types...
    def get_document(self, kind: str, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(documents.c.doc).where(documents.c.kind == kind, documents.c.name == name)
        ).first()
        return None if row is None else dict(row.doc)

    def put_document(self, kind: str, name: str, doc: dict[str, Any], now: float) -> None:
        done = self.conn.execute(
            update(documents)
            .where(documents.c.kind == kind, documents.c.name == name)
            .values(doc=doc, updated=now)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(documents).values(kind=kind, name=name, doc=doc, updated=now))

    def list_documents(self, kind: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(documents.c.doc).where(documents.c.kind == kind).order_by(documents.c.name)
        )
        return [dict(r.doc) for r in rows]

    def delete_document(self, kind: str, name: str) -> None:
        self.conn.execute(
            delete(documents).where(documents.c.kind == kind, documents.c.name == name)
        )


def _pipeline_row(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "version": row.version,
        "doc": dict(row.doc),
        "created": row.created,
        "updated": row.updated,
    }
