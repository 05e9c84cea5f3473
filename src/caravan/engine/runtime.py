"""Assembling an engine from a data directory (or a database URL) and settings."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from caravan.actions.registry import ProviderRegistry
from caravan.artifacts.filesystem import FilesystemArtifactStore
from caravan.engine.core import EngineCore
from caravan.engine.engine import Engine
from caravan.engine.ops_action_types import register_declared_workers
from caravan.engine.settings import EngineSettings
from caravan.store import Database


@asynccontextmanager
async def open_engine(
    *,
    data_dir: Path,
    database_url: str | None = None,
    settings: Mapping[str, Any] | None = None,
    registry: ProviderRegistry | None = None,
    services: Mapping[str, Any] | None = None,
) -> AsyncIterator[Engine]:
    """An engine over ``data_dir`` (SQLite there unless ``database_url`` names another
    database), recovered from whatever state a previous process left, closed on exit.

    ``settings`` override the ``CARAVAN_*`` environment (see ``EngineSettings``). ``services``
    are live objects providers may use (``ctx.settings["platform"]``: the local platform)."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(database_url) if database_url else Database.in_directory(data_dir)
    core = EngineCore(
        db=db,
        artifacts=FilesystemArtifactStore(data_dir / "artifacts"),
        registry=registry or ProviderRegistry.from_entry_points(),
        data_dir=data_dir,
        settings=EngineSettings.resolve(settings, os.environ),
        services=services,
    )
    try:
        # Action types declared through the API (third-party job workers) survive a restart.
        register_declared_workers(core)
        await core.start()
        yield Engine(core)
    finally:
        await core.close()
