"""Durable state behind one small interface: SQLAlchemy Core over SQLite (default) or PostgreSQL.

``Database.transaction()`` yields a ``Tx`` whose connectors (``tx.pipelines``, ``tx.executions``,
``tx.jobs``) read and write records; everything inside one ``with`` block commits atomically.
"""

from caravan.store.database import Database, Tx

__all__ = ["Database", "Tx"]
