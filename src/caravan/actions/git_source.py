"""The git Source action provider: a branch head (or a pinned commit) as a zip artifact.

One provider serves four action types. caravan's own ``Source/Custom/Git`` names a repository
directly (``Repository``: a local path or any URL git can fetch). The AWS-shaped ones
(``ThirdParty/GitHub``, ``AWS/CodeStarSourceConnection``, ``AWS/CodeCommit``) name a hosted
repository; the setting ``git_repositories`` maps that name to a path or URL, and
``git_url_template`` builds a URL for names it does not list (see docs/git-sources.md).

The commit's tree is exported (no ``.git``), zipped deterministically into the first output
artifact, and described by CodePipeline's source variables (CommitId, BranchName, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from caravan.actions.base import Job, JobArtifact, JobContext, JobFailed, JobResult, JobSucceeded
from caravan.actions.git_command import GitCommandError
from caravan.actions.git_repo import (
    BranchNotFoundError,
    CommitInfo,
    ExportStats,
    GitMirror,
    RevisionNotFoundError,
    open_mirror,
)
from caravan.actions.git_urls import is_url, redact, repository_name
from caravan.artifacts.zipfiles import write_zip
from caravan.errors import ArchiveError, InvalidInputError, NotFoundError
from caravan.model.statuses import FailureType

ACTION_TYPES: tuple[tuple[str, str, str, str], ...] = (
    ("Source", "Custom", "Git", "1"),
    ("Source", "ThirdParty", "GitHub", "1"),
    ("Source", "AWS", "CodeStarSourceConnection", "1"),
    ("Source", "AWS", "CodeCommit", "1"),
)

DEFAULT_URL_TEMPLATE = "https://github.com/{owner}/{repo}.git"
CODE_ZIP = "CODE_ZIP"
CODEBUILD_CLONE_REF = "CODEBUILD_CLONE_REF"
_PROVIDER_TYPES = {"github.com": "GitHub", "gitlab.com": "GitLab", "bitbucket.org": "Bitbucket"}


@dataclass(frozen=True)
class SourceSpec:
    """What to fetch, resolved from an action's configuration and the settings."""

    url: str  # as git fetches it; may hold credentials, so only ever shown redacted
    branch: str | None  # None: the remote's default branch
    repository_name: str
    output_format: str = CODE_ZIP
    variables: Mapping[str, str] = field(default_factory=dict)  # provider-specific extras
    # The git_repositories key that would override a URL built from the template.
    mapping_hint: str | None = None
    secrets: tuple[str, ...] = ()


async def git_source_provider(job: Job, ctx: JobContext) -> JobResult:
    """Fetch the repository, export the commit, store the zip, report the source variables."""
    try:
        spec = resolve_source(job, ctx)
        output = _first_output(job)
    except InvalidInputError as error:
        return JobFailed(redact(_describe(error)), FailureType.CONFIGURATION_ERROR)
    try:
        return await _run(job, ctx, spec, output)
    except (GitCommandError, NotFoundError, InvalidInputError) as error:
        return _failure(error, spec)


def resolve_source(job: Job, ctx: JobContext) -> SourceSpec:
    """The repository, branch and extras of ``job``; InvalidInputError names a bad key."""
    config = job.configuration
    provider = job.action_type.provider
    if provider == "Git":
        location = _local_or_url(_required(config, "Repository"), ctx.declaration_dir)
        return SourceSpec(location, _optional(config, "Branch"), repository_name(location))
    if provider == "GitHub":
        owner, repo = _required(config, "Owner"), _required(config, "Repo")
        url, hint = _hosted(f"{owner}/{repo}", ctx.settings, owner=owner, repo=repo)
        token = _optional(config, "OAuthToken")
        url = _with_token(url, token)
        secrets = (token,) if token else ()
        return SourceSpec(
            url, _optional(config, "Branch"), repo, mapping_hint=hint, secrets=secrets
        )
    if provider == "CodeStarSourceConnection":
        return _codestar_spec(config, ctx.settings)
    if provider == "CodeCommit":
        name = _required(config, "RepositoryName")
        url, hint = _hosted(name, ctx.settings)
        return SourceSpec(url, _optional(config, "BranchName"), name, mapping_hint=hint)
    raise InvalidInputError(f"the git source provider does not serve {job.action_type}")


def _codestar_spec(config: Mapping[str, str], settings: Mapping[str, Any]) -> SourceSpec:
    full_name = _required(config, "FullRepositoryId")
    owner, slash, repo = full_name.partition("/")
    if not (owner and slash and repo):
        raise InvalidInputError(
            f"configuration FullRepositoryId {full_name!r} must look like owner/repository"
        )
    url, hint = _hosted(full_name, settings, owner=owner, repo=repo)
    output_format = _optional(config, "OutputArtifactFormat") or CODE_ZIP
    if output_format not in (CODE_ZIP, CODEBUILD_CLONE_REF):
        raise InvalidInputError(
            f"configuration OutputArtifactFormat {output_format!r} must be "
            f"{CODE_ZIP} or {CODEBUILD_CLONE_REF}"
        )
    variables = {
        "FullRepositoryName": full_name,  # the name AWS documents
        "FullRepositoryId": full_name,  # the configuration key's name, for symmetry
        "ConnectionArn": _optional(config, "ConnectionArn") or "",
        "ProviderType": _provider_type(url),
    }
    branch = _optional(config, "BranchName")
    return SourceSpec(url, branch, repo, output_format, variables, mapping_hint=hint)


def _hosted(name: str, settings: Mapping[str, Any], **fields: str) -> tuple[str, str | None]:
    """The URL or path of a hosted repository, and the settings key that would override it.

    ``fields`` fill ``git_url_template``; without them (CodeCommit) only the map applies.
    """
    mapping: Mapping[str, str] = settings.get("git_repositories") or {}
    key = f'git_repositories["{name}"] (CARAVAN_GIT_REPOSITORIES="{name}=<path or URL>")'
    if name in mapping:
        return _local_or_url(mapping[name], None), None
    template = settings.get("git_url_template", DEFAULT_URL_TEMPLATE)
    if not template or not fields:
        raise InvalidInputError(f"repository {name!r} is not mapped to a git repository: add {key}")
    try:
        return str(template).format(**fields), key
    except (KeyError, IndexError, ValueError) as error:
        raise InvalidInputError(
            f"git_url_template {template!r} cannot be filled for {name!r} ({error!r}); "
            f"add {key} or use the placeholders {{owner}} and {{repo}}"
        ) from error


def _local_or_url(location: str, base: Path | None) -> str:
    """A URL as given; a path made absolute (against ``base``) and checked to exist."""
    if is_url(location):
        return location
    path = Path(location).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    if not path.is_dir():
        raise InvalidInputError(f"repository {location!r}: no such directory {path}")
    return str(path)


def _with_token(url: str, token: str | None) -> str:
    """Put an OAuth token into an https URL (GitHub reads it as the password)."""
    parts = urlsplit(url)
    # "****" is how AWS shows a token it hides: a declaration copied from GetPipeline has it.
    if not token or set(token) == {"*"} or parts.scheme != "https" or "@" in parts.netloc:
        return url
    return parts._replace(netloc=f"x-access-token:{token}@{parts.netloc}").geturl()


def _provider_type(url: str) -> str:
    host = (urlsplit(url).hostname or "") if "://" in url else ""
    return _PROVIDER_TYPES.get(host, "GitHub")


async def _run(job: Job, ctx: JobContext, spec: SourceSpec, output: JobArtifact) -> JobResult:
    cache_dir = Path(ctx.settings.get("cache_dir") or ctx.workdir)
    export_dir = ctx.workdir / "source"
    async with open_mirror(spec.url, cache_dir) as mirror:
        started = time.perf_counter()
        await mirror.fetch()
        elapsed = (time.perf_counter() - started) * 1000
        ctx.log(f"Fetched {mirror.display_url} into the cache in {elapsed:.0f} ms")
        branch = spec.branch or await _default_branch(mirror)
        if job.source_revision:
            sha = await mirror.resolve_revision(job.source_revision)
        else:
            sha = await mirror.resolve_branch(branch)
        commit = await mirror.commit_info(sha)
        if spec.output_format == CODEBUILD_CLONE_REF:
            stats = await mirror.clone_at(sha, branch, export_dir)
        else:
            stats = await mirror.export_tree(sha, export_dir)
    _log_export(ctx, mirror, branch, commit, stats)
    zip_path = ctx.workdir / "source.zip"
    digest = await asyncio.to_thread(write_zip, export_dir, zip_path)
    stored = await asyncio.to_thread(
        ctx.artifacts.put_file, output.bucket, output.key, zip_path, content_type="application/zip"
    )
    ctx.log(f"Stored {output.name}: {stored.size} bytes, sha256 {digest}")
    return _success(spec, branch, commit, output)


async def _default_branch(mirror: GitMirror) -> str:
    """The remote's HEAD; failing that, its only branch."""
    branch = await mirror.default_branch()
    if branch is not None:
        return branch
    branches = await mirror.branches()
    if len(branches) == 1:
        return branches[0]
    listed = ", ".join(branches) or "none: the repository has no branches"
    raise InvalidInputError(
        f"the default branch of {mirror.display_url} is unknown (its HEAD names no branch); "
        f"name the branch in the action configuration; existing branches: {listed}"
    )


def _log_export(
    ctx: JobContext, mirror: GitMirror, branch: str, commit: CommitInfo, stats: ExportStats
) -> None:
    ctx.log(
        f"Source {mirror.display_url} branch {branch} commit {commit.sha}: "
        f"{stats.files} files, {stats.bytes} bytes"
    )
    for path in stats.skipped_submodules:
        ctx.log(f"Skipped submodule {path}: submodules are not supported")
    if stats.uses_lfs:
        ctx.log("Git LFS is not supported: files tracked by LFS are exported as pointer files")


def _success(spec: SourceSpec, branch: str, commit: CommitInfo, output: JobArtifact) -> JobResult:
    variables = {
        "CommitId": commit.sha,
        "BranchName": branch,
        "CommitMessage": commit.message,
        "AuthorDate": commit.author_date,
        "CommitterDate": commit.committer_date,
        "RepositoryName": spec.repository_name,
        **spec.variables,
    }
    return JobSucceeded(
        output_variables=variables,
        summary=commit.summary,
        current_revision={
            "revision": commit.sha,
            "changeIdentifier": commit.sha,
            "revisionSummary": commit.summary,
        },
        artifact_revisions={output.name: commit.sha},
    )


def _failure(error: Exception, spec: SourceSpec) -> JobFailed:
    message = _describe(error)
    kind = FailureType.JOB_FAILED
    if isinstance(error, RevisionNotFoundError):
        kind = FailureType.REVISION_UNAVAILABLE
    elif isinstance(error, ArchiveError):
        kind = FailureType.JOB_FAILED  # the repository's content, not the configuration
    elif isinstance(error, BranchNotFoundError | InvalidInputError):
        kind = FailureType.CONFIGURATION_ERROR
    elif isinstance(error, GitCommandError) and spec.mapping_hint:
        # The URL came from the template: most likely the name is not hosted there.
        kind = FailureType.CONFIGURATION_ERROR
        message += f"\nTo fetch it from elsewhere, add {spec.mapping_hint}"
    for secret in spec.secrets:
        message = message.replace(secret, "***")
    return JobFailed(redact(message), kind)


def _describe(error: Exception) -> str:
    hint = getattr(error, "hint", None)
    return f"{error}\n{hint}" if hint else str(error)


def _first_output(job: Job) -> JobArtifact:
    if not job.output_artifacts:
        raise InvalidInputError(
            f"source action {job.action_name!r} declares no output artifact to write the source to"
        )
    return job.output_artifacts[0]


def _required(config: Mapping[str, str], key: str) -> str:
    value = (config.get(key) or "").strip()
    if not value:
        raise InvalidInputError(f"configuration {key} is required")
    return value


def _optional(config: Mapping[str, str], key: str) -> str | None:
    value = (config.get(key) or "").strip()
    return value or None
