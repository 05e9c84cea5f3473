"""The engine's settings, declared once. Each can be set by the caller or by an environment
variable named ``CARAVAN_`` plus the setting's name in capitals (``CARAVAN_QUEUE_LIMIT=10``,
``CARAVAN_GIT_REPOSITORIES="owner/repo=/path;other/repo=https://..."``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from caravan.actions.git_urls import parse_repository_map
from caravan.errors import InvalidInputError

ENV_PREFIX = "CARAVAN_"


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
    # Base URL the server is reached at; V1 webhook URLs (PutWebhook) are built from it.
    public_url: str = "http://127.0.0.1:7878"
    region: str = "local"
    account_id: str = "000000000000"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> EngineSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise InvalidInputError(
                f"unknown engine setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**dict(values or {}))

    @classmethod
    def resolve(
        cls, values: Mapping[str, Any] | None, environ: Mapping[str, str]
    ) -> EngineSettings:
        """``values`` over the ``CARAVAN_*`` environment over the defaults."""
        merged: dict[str, Any] = {}
        for f in fields(cls):
            text = environ.get(ENV_PREFIX + f.name.upper())
            if text is not None:
                merged[f.name] = _parse(f.name, f.type, text)
        merged.update(values or {})
        return cls.from_mapping(merged)


def _parse(name: str, kind: Any, text: str) -> Any:
    where = f"{ENV_PREFIX}{name.upper()}={text!r}"
    try:
        if kind in ("float", float):
            return float(text)
        if kind in ("int", int):
            return int(text)
    except ValueError:
        raise InvalidInputError(f"{where}: not a number") from None
    if name == "git_repositories":
        return parse_repository_map(text)
    optional = "None" in str(kind)  # e.g. "str | None": an empty value means unset
    return None if optional and not text else text
