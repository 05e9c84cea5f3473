"""Tables. Each keeps its record as a JSON document plus the columns queries filter on."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

pipelines = Table(
    "pipelines",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("doc", JSON, nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("doc", JSON, nullable=False),
    Column("created", Float, nullable=False),
)

# The stage gates of each pipeline (model.flow.FlowState) and its transition settings.
flows = Table(
    "flows",
    metadata,
    Column("pipeline", String(100), primary_key=True),
    Column("doc", JSON, nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("pipeline", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("doc", JSON, nullable=False),
    Column("started", Float, nullable=False),
    Index("ix_executions_pipeline_seq", "pipeline", "seq"),
    Index("ix_executions_status", "status"),
)

stages = Table(
    "stage_executions",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("stage", String(100), primary_key=True),
    Column("pipeline", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("doc", JSON, nullable=False),
    Column("started", Float, nullable=False),
    Index("ix_stage_executions_pipeline_stage", "pipeline", "stage", "started"),
)

actions = Table(
    "action_executions",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("pipeline", String(100), nullable=False),
    Column("execution_id", String(64), nullable=False),
    Column("stage", String(100), nullable=False),
    Column("action", String(100), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("doc", JSON, nullable=False),
    Index("ix_action_executions_execution", "execution_id", "stage", "seq"),
    Index("ix_action_executions_pipeline", "pipeline", "seq"),
    Index("ix_action_executions_status", "status"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("action_execution_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("owner", String(20), nullable=False),
    Column("category", String(20), nullable=False),
    Column("provider", String(35), nullable=False),
    Column("version", String(9), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("doc", JSON, nullable=False),
    Index("ix_jobs_status_type", "status", "owner", "category", "provider", "version"),
    Index("ix_jobs_action", "action_execution_id"),
)

# Free-form documents keyed by kind and name (webhooks, tags, custom action types, settings).
documents = Table(
    "documents",
    metadata,
    Column("kind", String(40), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("doc", JSON, nullable=False),
    Column("updated", Float, nullable=False),
    Column("note", Text, nullable=True),
)
