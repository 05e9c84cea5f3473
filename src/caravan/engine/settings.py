"""The engine's settings, declared once; the server and CLI derive their options from here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class EngineSettings:
    # Delay before a job that returned a continuation token is dispatched again (AWS: 30 s).
    continuation_delay: float = 1.0
    # QUEUED mode: most live executions per pipeline (AWS: 50).
    queue_limit: int = 50
    # Artifact bucket used when a declaration names no artifactStore.
    default_artifact_bucket: str = "caravan-artifacts"
    # Source actions that name GitHub/CodeStar/CodeCommit repositories resolve through this
    # map ("owner/repo" -> path or URL); see docs/git-sources.md.
    git_repositories: Mapping[str, str] = field(default_factory=dict)
    git_url_template: str = "https://github.com/{owner}/{repo}.git"
    # Base URL of the AWS-compatible endpoint given to Lambda actions (None: no server).
    aws_endpoint_url: str | None = None
    region: str = "local"
    account_id: str = "000000000000"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> EngineSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise ValueError(f"unknown engine settings: {', '.join(unknown)}")
        return cls(**dict(values or {}))
