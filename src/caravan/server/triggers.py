"""From a git event to pipeline executions, through the engine's API only.

``dispatch_git_event(engine, repository, event, settings=...)`` lists the pipelines
(ListPipelines, GetPipeline), finds their git source actions that name the event's repository,
evaluates each one's trigger (``caravan.model.triggers``) or, without one, the default rule (a
push to the action's branch), and starts each matching pipeline once, with trigger
``WebhookV2`` and ``sourceRevisions`` pinning the triggered source actions to the event's commit.

A source action names a repository in one of three ways, all compared here: a path (a
``Custom/Git`` ``Repository``, relative to the declaration's directory, or a path the
``git_repositories`` setting maps a hosted name to), a URL (compared without credentials,
scheme or ``.git``), or a hosted name (``owner/repo``, from ``Owner``/``Repo``,
``FullRepositoryId`` or ``RepositoryName``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from caravan.actions.git_command import GitCommandError, run_git
from caravan.actions.git_source import ACTION_TYPES, DEFAULT_URL_TEMPLATE
from caravan.actions.git_urls import is_url
from caravan.engine.api import EngineAPI
from caravan.errors import CaravanError, InvalidInputError
from caravan.model.declaration import ActionDeclaration, PipelineDeclaration
from caravan.model.statuses import TriggerType
from caravan.model.triggers import (
    NULL_COMMIT,
    GitEvent,
    default_matches,
    trigger_issues,
    trigger_matches,
)

logger = logging.getLogger("caravan.triggers")

_GIT_SOURCES = frozenset(key[:3] for key in ACTION_TYPES)


@dataclass(frozen=True)
class RepositoryRef:
    """The repository an event comes from: its paths or URLs, and its hosted name if any."""

    locations: tuple[str, ...]
    full_name: str | None = None  # "owner/repo" on GitHub

    @property
    def display(self) -> str:
        return self.full_name or (self.locations[0] if self.locations else "?")


@dataclass(frozen=True)
class Started:
    pipeline: str
    execution_id: str
    actions: tuple[str, ...]  # the source actions pinned to the event's commit


@dataclass
class DispatchResult:
    started: list[Started] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (pipeline, message)


@dataclass(frozen=True)
class _Source:
    """A git source action of a pipeline, reduced to what matching needs."""

    action: ActionDeclaration
    branch: str | None
    hosted_name: str | None
    location: str | None  # location_key of where the action fetches from

    @property
    def detects_changes(self) -> bool:
        # CodeStarSourceConnection's DetectChanges=false turns automatic starts off.
        return self.action.configuration.get("DetectChanges", "true").lower() != "false"


async def dispatch_git_event(
    engine: EngineAPI,
    repository: str | RepositoryRef,
    event: GitEvent,
    *,
    settings: Mapping[str, Any],
) -> list[str]:
    """Start every pipeline ``event`` triggers; returns the ids of the executions started."""
    result = await dispatch(engine, repository, event, settings=settings)
    return [s.execution_id for s in result.started]


async def dispatch(
    engine: EngineAPI,
    repository: str | RepositoryRef,
    event: GitEvent,
    *,
    settings: Mapping[str, Any],
) -> DispatchResult:
    """``dispatch_git_event`` with the pipelines named and the failures kept."""
    ref = repository if isinstance(repository, RepositoryRef) else RepositoryRef((repository,))
    result = DispatchResult()
    if event.commit == NULL_COMMIT:  # a deleted branch or tag: nothing to run
        return result
    keys = {key for loc in ref.locations if (key := location_key(loc)) is not None}
    branches = _DefaultBranches(event)
    for name, declaration, base in await _pipelines(engine):
        try:
            triggered = await _triggered_actions(
                declaration, base, ref, keys, event, settings, branches
            )
            if triggered:
                started = await _start(engine, name, triggered, ref, event)
                result.started.append(started)
        except CaravanError as error:
            logger.warning("git event %s@%s: pipeline %s: %s", ref.display, event.ref, name, error)
            result.failures.append((name, error.message))
    return result


async def _pipelines(engine: EngineAPI) -> list[tuple[str, PipelineDeclaration, Path | None]]:
    """Every pipeline's name, declaration and declaration directory."""
    names: list[str] = []
    token: str | None = None
    while True:
        page = await engine.call("ListPipelines", {"nextToken": token} if token else {})
        names.extend(str(p["name"]) for p in page.get("pipelines", []))
        token = page.get("nextToken")
        if not token:
            break
    found = []
    for name in names:
        try:
            answer = await engine.call("GetPipeline", {"name": name})
            declaration = PipelineDeclaration.model_validate(answer["pipeline"])
        except CaravanError as error:  # deleted meanwhile, for instance
            logger.info("git event: skipping pipeline %s: %s", name, error)
            continue
        except ValidationError as error:
            logger.warning("git event: pipeline %s has an unreadable declaration: %s", name, error)
            continue
        directory = (answer.get("metadata") or {}).get("declarationDir")
        found.append((name, declaration, Path(directory) if directory else None))
    return found


async def _triggered_actions(
    declaration: PipelineDeclaration,
    base: Path | None,
    ref: RepositoryRef,
    keys: set[str],
    event: GitEvent,
    settings: Mapping[str, Any],
    branches: _DefaultBranches,
) -> list[str]:
    """The names of the pipeline's source actions this event triggers."""
    triggers = {
        t.git_configuration.source_action_name: t.git_configuration
        for t in declaration.triggers or ()
    }
    sources = [s for s in _sources(declaration, base, settings) if _same_repository(s, ref, keys)]
    if sources and (issues := trigger_issues(declaration.triggers)):
        listed = "; ".join(str(issue) for issue in issues)
        raise InvalidInputError(f"its triggers hold malformed glob patterns: {listed}")
    triggered = []
    for source in sources:
        configuration = triggers.get(source.action.name)
        if configuration is not None:
            hit = trigger_matches(configuration, event)
        else:
            branch = source.branch or await branches.of(source.location)
            hit = source.detects_changes and default_matches(branch, event)
        if hit:
            triggered.append(source.action.name)
    return triggered


def _sources(
    declaration: PipelineDeclaration, base: Path | None, settings: Mapping[str, Any]
) -> list[_Source]:
    return [
        _source(action, base, settings)
        for _, _, action in declaration.actions()
        if action.is_source and action.action_type_id.key()[:3] in _GIT_SOURCES
    ]


def _source(action: ActionDeclaration, base: Path | None, settings: Mapping[str, Any]) -> _Source:
    config = action.configuration
    provider = action.action_type_id.provider
    if provider == "Git":
        repository = config.get("Repository", "").strip()
        location = location_key(repository, base) if repository else None
        return _Source(action, _clean(config.get("Branch")), None, location)
    fields: dict[str, str] = {}
    if provider == "GitHub":
        owner, repo = config.get("Owner", "").strip(), config.get("Repo", "").strip()
        name = f"{owner}/{repo}" if owner and repo else ""
        fields, branch = {"owner": owner, "repo": repo}, config.get("Branch")
    elif provider == "CodeStarSourceConnection":
        name = config.get("FullRepositoryId", "").strip()
        owner, _, repo = name.partition("/")
        fields, branch = {"owner": owner, "repo": repo}, config.get("BranchName")
    else:  # CodeCommit: only the git_repositories map names its repository
        name, branch = config.get("RepositoryName", "").strip(), config.get("BranchName")
    location = _hosted_location(name, fields, settings) if name else None
    return _Source(action, _clean(branch), name or None, location)


def _clean(value: str | None) -> str | None:
    return (value or "").strip() or None


def _hosted_location(
    name: str, fields: Mapping[str, str], settings: Mapping[str, Any]
) -> str | None:
    """Where a hosted repository name is fetched from (as git_source resolves it), as a key."""
    mapping: Mapping[str, str] = settings.get("git_repositories") or {}
    if name in mapping:
        return location_key(mapping[name])
    template = settings.get("git_url_template", DEFAULT_URL_TEMPLATE)
    if not template or not fields or not all(fields.values()):
        return None
    try:
        return location_key(str(template).format(**fields))
    except (KeyError, IndexError, ValueError):
        return None


def _same_repository(source: _Source, ref: RepositoryRef, keys: set[str]) -> bool:
    if source.location is not None and source.location in keys:
        return True
    return bool(
        source.hosted_name and ref.full_name and source.hosted_name.lower() == ref.full_name.lower()
    )


def location_key(location: str, base: Path | None = None) -> str | None:
    """What identifies a repository, whoever names it: ``path:/real/path`` or ``url:host/path``.

    A relative path is resolved against ``base`` (else the working directory); a working
    repository's ``.git`` directory stands for the repository. URLs lose credentials, scheme,
    port, case and a trailing ``.git``, so https and ssh URLs of one repository agree.
    """
    location = location.strip()
    if not location:
        return None
    if location.startswith("file://"):
        return _path_key(Path(unquote(urlsplit(location).path)), None)
    if is_url(location):
        return _url_key(location)
    return _path_key(Path(location).expanduser(), base)


def _path_key(path: Path, base: Path | None) -> str:
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    real = Path(os.path.realpath(path))
    if real.name == ".git" and real.parent != real:
        real = real.parent
    return f"path:{real}"


def _url_key(url: str) -> str | None:
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    else:  # scp-like: user@host:owner/repo.git
        host, _, path = url.partition("@")[2].partition(":")
    path = path.strip("/").removesuffix(".git").rstrip("/")
    if not host and not path:
        return None
    return f"url:{host.lower()}/{path.lower()}"


class _DefaultBranches:
    """The branch a source action without one fetches: the repository's HEAD branch.

    For a local repository that is what its HEAD names (a working repository's checked-out
    branch, a bare one's default branch); for a hosted one, what the event says it is.
    """

    def __init__(self, event: GitEvent) -> None:
        self.event = event
        self.known: dict[str, str | None] = {}

    async def of(self, location: str | None) -> str | None:
        if location is None or not location.startswith("path:"):
            return self.event.default_branch
        if location not in self.known:
            self.known[location] = await _head_branch(Path(location.removeprefix("path:")))
        return self.known[location]


async def _head_branch(path: Path) -> str | None:
    try:
        out = await run_git("-C", str(path), "symbolic-ref", "--quiet", "--short", "HEAD")
    except GitCommandError:
        return None
    return out.decode("utf-8", errors="replace").strip() or None


async def _start(
    engine: EngineAPI, name: str, actions: Sequence[str], ref: RepositoryRef, event: GitEvent
) -> Started:
    detail = f"{ref.display}@{event.ref} {event.commit[:7]}"
    if event.kind == "pull_request":
        detail += f" (pull request {(event.pr_action or '').lower()})"
    request = {
        "name": name,
        "trigger": {"triggerType": TriggerType.WEBHOOK_V2.value, "triggerDetail": detail},
        "sourceRevisions": [
            {"actionName": action, "revisionType": "COMMIT_ID", "revisionValue": event.commit}
            for action in actions
        ],
    }
    answer = await engine.call("StartPipelineExecution", request)
    execution_id = str(answer["pipelineExecutionId"])
    logger.info("git event %s started %s execution %s", detail, name, execution_id)
    return Started(name, execution_id, tuple(actions))
