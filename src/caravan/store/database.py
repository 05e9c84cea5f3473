"""Connecting to the database and running transactions.

SQLite is the default (a file in the data directory, WAL journal so readers never block the
writer, ``synchronous=NORMAL`` which is durable across process crashes in WAL mode);
PostgreSQL is used when a ``postgresql+psycopg://`` URL is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text

from caravan.store.executions import ExecutionConnector
from caravan.store.jobs import JobConnector
from caravan.store.pipelines import PipelineConnector
from caravan.store.schema import metadata


class Tx:
    """One open transaction and the connectors that work inside it."""

    def __init__(self, conn: Connection, *, postgres: bool) -> None:
        self.conn = conn
        self.pipelines = PipelineConnector(conn, postgres=postgres)
        self.executions = ExecutionConnector(conn)
        self.jobs = JobConnector(conn)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith("postgresql")
        self._engine = _make_engine(url)
        metadata.create_all(self._engine)

    @classmethod
    def in_directory(cls, data_dir: Path) -> Database:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{data_dir / 'caravan.db'}")

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._engine.begin() as conn:
            yield Tx(conn, postgres=self.postgres)

    def drop_everything(self) -> None:
        """Remove every table (tests use this to start from nothing on PostgreSQL)."""
        metadata.drop_all(self._engine)

    def close(self) -> None:
        self._engine.dispose()


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs: dict[str, Any] = {}
        if memory:
            from sqlalchemy.pool import StaticPool

            # One shared connection, or every new connection would see an empty database.
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            kwargs = {"connect_args": {"check_same_thread": False}}
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take it over so a transaction
        # really starts when SQLAlchemy begins one (no lost updates between read and write).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def ping(db: Database) -> None:
    with db.transaction() as tx:
        tx.conn.execute(text("SELECT 1"))
