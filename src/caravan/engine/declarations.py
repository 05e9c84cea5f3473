"""Stored pipeline declarations, parsed once per (name, version) and kept in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caravan.errors import PipelineNotFoundError, PipelineVersionNotFoundError
from caravan.model.declaration import PipelineDeclaration
from caravan.model.loader import load_data
from caravan.store import Tx


@dataclass(frozen=True)
class PipelineDoc:
    """A pipeline as stored: its declaration and what caravan keeps beside it."""

    version: int
    declaration: PipelineDeclaration
    tags: list[dict[str, str]] = field(default_factory=list)
    build_projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    declaration_dir: Path | None = None

    @property
    def name(self) -> str:
        return self.declaration.name

    def stored(self) -> dict[str, Any]:
        """The JSON document the store keeps for this version."""
        return {
            "pipeline": self.declaration.model_dump(by_alias=True, exclude_none=True),
            "tags": self.tags,
            "buildProjects": list(self.build_projects.values()),
            "declarationDir": str(self.declaration_dir) if self.declaration_dir else None,
        }

    @classmethod
    def from_stored(cls, version: int, doc: dict[str, Any]) -> PipelineDoc:
        document = load_data(
            {
                "pipeline": doc["pipeline"],
                "tags": doc.get("tags") or [],
                "buildProjects": doc.get("buildProjects") or [],
            }
        )
        return cls(
            version=version,
            declaration=document.pipeline,
            tags=list(doc.get("tags") or []),
            build_projects={
                name: project.model_dump(by_alias=True, exclude_none=True)
                for name, project in document.build_projects.items()
            },
            declaration_dir=Path(doc["declarationDir"]) if doc.get("declarationDir") else None,
        )


class DeclarationCache:
    def __init__(self) -> None:
        self._docs: dict[tuple[str, int], PipelineDoc] = {}

    def get(self, tx: Tx, name: str, version: int | None = None) -> PipelineDoc:
        if version is None:
            row = tx.pipelines.get(name)
            if row is None:
                raise PipelineNotFoundError(f"pipeline {name!r} does not exist")
            version = int(row["version"])
        cached = self._docs.get((name, version))
        if cached is not None:
            return cached
        stored = tx.pipelines.get_version(name, version)
        if stored is None:
            if tx.pipelines.get(name) is None:
                raise PipelineNotFoundError(f"pipeline {name!r} does not exist")
            raise PipelineVersionNotFoundError(f"pipeline {name!r} has no version {version}")
        doc = PipelineDoc.from_stored(version, stored)
        self._docs[(name, version)] = doc
        return doc

    def remember(self, doc: PipelineDoc) -> None:
        self._docs[(doc.name, doc.version)] = doc

    def forget(self, name: str) -> None:
        for key in [k for k in self._docs if k[0] == name]:
            del self._docs[key]
