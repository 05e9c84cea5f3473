"""The deploy and test actions of an app's pipeline, on the local platform (platform/local.py):

    {Deploy, Custom, CaravanFunction, 1}  Function, Environment      input: the function's code
    {Deploy, Custom, CaravanApi, 1}       Environment                input: the API definition
    {Deploy, Custom, CaravanSite, 1}      Environment (Version)      input: the site
    {Test, Custom, CaravanTest, 1}        Environment, Commands | BuildSpec (E2E_MODE)
                                                                     input: the source

The app is the one whose manifest declares the job's pipeline (``caravan up``); the platform
comes from the job context (``ctx.settings["platform"]``).

* Function: one function ``<app>-<function>`` serves every environment through the alias named
  after it. The deploy looks for a published version with exactly this code (CodeSha256, the
  base64 SHA-256 of the artifact's zip) and settings: found, it is that version which moves on
  (a promotion deploys what passed the earlier environment, never a rebuild); not found,
  $LATEST is updated and published. The alias then moves by the environment's release policy
  (releases.py); a rolled-back release fails the action with the reason.
* API: the OpenAPI file the manifest names (``api.definition``) inside the artifact is applied
  to the environment's stage with the environment's stage variables.
* Site: published atomically with ``config.json`` = {apiBaseurl: <environment URL>/api/,
  version: the commit id, executionId}. The commit id is the ``Version`` configuration (e.g.
  ``#{SourceVariables.CommitId}``) or a commit-id revision of an input artifact; without one the
  deploy time (``YYYYMMDD-HHMMSS``, the seed's format) is used and said in the log.
* Test: ``Commands`` (a JSON list) or the ``BuildSpec`` file of the source run by the build
  runner with TARGET_URL = the environment's URL (and ``http_proxy`` to caravan, so the
  ``*.localhost`` name needs no DNS), E2E_MODE when configured.

Misconfiguration (unknown app, environment or function, missing file in an artifact, a bad
definition) fails the action with a ConfigurationError naming what is wrong.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from caravan.actions.base import Job, JobArtifact, JobContext, JobFailed, JobResult, JobSucceeded
from caravan.actions.build_runner import failure_report, run_build
from caravan.actions.buildspec import Buildspec, Phase, parse_buildspec
from caravan.actions.workspace import extract_inputs
from caravan.artifacts.zipfiles import extract_zip, zip_bytes
from caravan.errors import CaravanError, InvalidInputError
from caravan.model.manifest import AppManifest
from caravan.model.statuses import FailureType
from caravan.platform.functions import ResourceNotFoundException, code_sha256
from caravan.platform.local import LocalPlatform
from caravan.platform.releases import ReleaseState, describe_steps
from caravan.platform.sites import site_config

_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class _Target:
    platform: LocalPlatform
    manifest: AppManifest
    repo_dir: Path
    env: str

    @property
    def app(self) -> str:
        return self.manifest.app

    @property
    def where(self) -> str:
        return f"{self.app}/{self.env}"


# ---------------------------------------------------------------------------------- providers


async def caravan_function_provider(job: Job, ctx: JobContext) -> JobResult:
    try:
        target = _target(job, ctx)
        function = _function(job, target.manifest)
        spec = target.manifest.functions[function]
        artifact = _input(job, spec.artifact, "the function's code")
    except InvalidInputError as exc:
        return _misconfigured(exc)
    try:
        code = await asyncio.to_thread(_function_code, ctx, artifact, spec.path)
        version, published = await asyncio.to_thread(_publish, target, function, code, ctx)
    except InvalidInputError as exc:
        return _misconfigured(exc)
    except CaravanError as exc:
        return JobFailed(exc.message)
    platform, name = target.platform, target.manifest.function_name(function)
    try:
        release = await platform.release(
            target.app,
            target.env,
            function,
            version,
            execution_id=job.pipeline_execution_id,
            published=published,
            log=ctx.log,
        )
    except CaravanError as exc:
        return JobFailed(exc.message)
    if release.state != ReleaseState.PROMOTED:
        return JobFailed(release.detail, external_execution_id=release.id)
    return JobSucceeded(
        summary=f"{name} version {version} serves {target.env} ({describe_steps(release)})",
        external_execution_id=release.id,
        output_variables={
            "FunctionName": name,
            "FunctionVersion": version,
            "CodeSha256": code_sha256(code),
            "Alias": target.env,
        },
    )


async def caravan_api_provider(job: Job, ctx: JobContext) -> JobResult:
    try:
        target = _target(job, ctx)
        api = target.manifest.api
        if api is None:
            raise InvalidInputError(f"app {target.app!r} declares no api in its manifest")
        artifact = _input(job, api.artifact, "the API definition")
    except InvalidInputError as exc:
        return _misconfigured(exc)
    try:
        root = await asyncio.to_thread(_extract, ctx, artifact)
        path = _member(root, api.definition, artifact, "api.definition")
        text = path.read_text(encoding="utf-8")
        stage = target.platform.deploy_api(
            target.app, target.env, text, source=f"{artifact.name}/{api.definition}"
        )
    except UnicodeDecodeError:
        return _misconfigured(InvalidInputError(f"{api.definition} is not UTF-8 text"))
    except InvalidInputError as exc:
        return _misconfigured(exc)
    except CaravanError as exc:
        return JobFailed(exc.message)
    routes = len(stage.definition.routes)
    ctx.log(f"API {target.app} stage {target.env}: {routes} routes, variables {stage.variables}")
    return JobSucceeded(
        summary=f"API {target.app} deployed to stage {target.env} ({routes} routes)",
        output_variables={"ApiUrl": target.platform.environment_url(target.app, target.env)},
    )


async def caravan_site_provider(job: Job, ctx: JobContext) -> JobResult:
    try:
        target = _target(job, ctx)
        site = target.manifest.site
        if site is None:
            raise InvalidInputError(f"app {target.app!r} declares no site in its manifest")
        artifact = _input(job, site.artifact, "the site")
    except InvalidInputError as exc:
        return _misconfigured(exc)
    platform = target.platform
    url = platform.environment_url(target.app, target.env)
    version = _commit_id(job, ctx)
    api_base = f"{url}/api/" if target.manifest.api is not None else ""
    config = site_config(api_base, version, job.pipeline_execution_id)
    try:
        root = await asyncio.to_thread(_extract, ctx, artifact)
        source = (
            _member(root, site.path, artifact, "site.path", directory=True) if site.path else root
        )
        published = await platform.publish_site(
            target.app,
            target.env,
            source,
            config=config,
            label=version,
            execution_id=job.pipeline_execution_id,
        )
    except InvalidInputError as exc:
        return _misconfigured(exc)
    except CaravanError as exc:
        return JobFailed(exc.message)
    ctx.log(f"site {published.site} version {published.version_id} is live at {url}: {config}")
    return JobSucceeded(
        summary=f"site version {published.version_id} ({version}) live at {url}",
        output_variables={"SiteVersion": published.version_id, "Url": url},
    )


async def caravan_test_provider(job: Job, ctx: JobContext) -> JobResult:
    try:
        target = _target(job, ctx)
        spec_text = _test_spec(job)
    except InvalidInputError as exc:
        return _misconfigured(exc)
    try:
        inputs = await asyncio.to_thread(extract_inputs, job, ctx)
    except CaravanError as exc:
        return JobFailed(exc.message)
    source = next(iter(inputs.values()), None) or _empty(ctx.workdir)
    try:
        spec = spec_text if isinstance(spec_text, Buildspec) else _buildspec_file(source, spec_text)
    except InvalidInputError as exc:
        return _misconfigured(exc)
    url = target.platform.environment_url(target.app, target.env)
    env = {
        **target.platform.command_environment(),
        "TARGET_URL": url,
        "CARAVAN_ENVIRONMENT": target.env,
    }
    if job.configuration.get("E2E_MODE"):
        env["E2E_MODE"] = job.configuration["E2E_MODE"]
    build_id = f"{job.action_name}:{uuid.uuid4()}"
    ctx.log(f"testing {target.where} at TARGET_URL={url}")
    outcome = await run_build(
        spec,
        workdir=source,
        secondary_sources=dict(list(inputs.items())[1:]),
        env=env,
        on_output=ctx.log,
        scratch=ctx.workdir / "build",
        build_id=build_id,
        initiator=f"codepipeline/{job.pipeline_name}",
        collect=(),
    )
    if not outcome.succeeded:
        return JobFailed(failure_report(outcome), external_execution_id=build_id)
    return JobSucceeded(summary=f"tests passed against {url}", external_execution_id=build_id)


PROVIDERS = {
    ("Deploy", "Custom", "CaravanFunction", "1"): caravan_function_provider,
    ("Deploy", "Custom", "CaravanApi", "1"): caravan_api_provider,
    ("Deploy", "Custom", "CaravanSite", "1"): caravan_site_provider,
    ("Test", "Custom", "CaravanTest", "1"): caravan_test_provider,
}


# ---------------------------------------------------------------------------------- settings


def _target(job: Job, ctx: JobContext) -> _Target:
    platform = ctx.settings.get("platform")
    if not isinstance(platform, LocalPlatform):
        raise InvalidInputError(
            f"{job.action_type.provider} deploys to the local platform, and this engine has none",
            hint="run the pipeline on caravan server (it opens the platform)",
        )
    found = platform.app_for_pipeline(job.pipeline_name)
    if found is None:
        apps = ", ".join(platform.apps()) or "none"
        raise InvalidInputError(
            f"pipeline {job.pipeline_name!r} is not the pipeline of any app on this platform "
            f"(apps: {apps})",
            hint="run caravan up in the app's repository",
        )
    manifest, repo_dir = found
    env = job.configuration.get("Environment")
    known = ", ".join(manifest.environments)
    if not env:
        raise InvalidInputError(f"configuration.Environment is required (one of: {known})")
    if env not in manifest.environments:
        raise InvalidInputError(
            f"configuration.Environment: app {manifest.app!r} has no environment {env!r} "
            f"(environments: {known})"
        )
    return _Target(platform, manifest, repo_dir, env)


def _function(job: Job, manifest: AppManifest) -> str:
    function = job.configuration.get("Function")
    known = ", ".join(manifest.functions)
    if not function:
        raise InvalidInputError(f"configuration.Function is required (one of: {known})")
    if function not in manifest.functions:
        raise InvalidInputError(
            f"configuration.Function: app {manifest.app!r} has no function {function!r} "
            f"(functions: {known})"
        )
    return function


def _input(job: Job, expected: str, what: str) -> JobArtifact:
    """The one input artifact (or the one named as the manifest says)."""
    artifacts = job.input_artifacts
    named = [a for a in artifacts if a.name == expected]
    if named:
        return named[0]
    if len(artifacts) == 1:
        return artifacts[0]
    given = ", ".join(a.name for a in artifacts) or "none"
    raise InvalidInputError(
        f"inputArtifacts: {job.action_type.provider} takes one input artifact, {what} "
        f"({expected} in the manifest); given: {given}"
    )


def _test_spec(job: Job) -> Buildspec | str:
    config = job.configuration
    if ("Commands" in config) == ("BuildSpec" in config):
        raise InvalidInputError(
            "configuration: CaravanTest needs exactly one of Commands and BuildSpec"
        )
    if "BuildSpec" in config:
        return config["BuildSpec"]
    try:
        commands = json.loads(config["Commands"])
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"configuration.Commands is not valid JSON: {exc.msg}") from None
    if (
        not isinstance(commands, list)
        or not commands
        or not all(isinstance(c, str) and c for c in commands)
    ):
        raise InvalidInputError('configuration.Commands must be a JSON list of commands: ["..."]')
    return Buildspec(phases=MappingProxyType({"build": Phase(commands=tuple(commands))}))


def _misconfigured(exc: InvalidInputError) -> JobFailed:
    message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return JobFailed(message, type=FailureType.CONFIGURATION_ERROR)


# --------------------------------------------------------------------------------- artifacts


def _extract(ctx: JobContext, artifact: JobArtifact) -> Path:
    if ctx.artifacts.head(artifact.bucket, artifact.key) is None:
        raise CaravanError(
            f"input artifact {artifact.name} is missing from the artifact store "
            f"(s3://{artifact.bucket}/{artifact.key})"
        )
    dest = ctx.workdir / "src" / artifact.name
    if not dest.exists():
        extract_zip(ctx.artifacts.local_path(artifact.bucket, artifact.key), dest)
    return dest


def _member(
    root: Path, relative: str, artifact: JobArtifact, field: str, *, directory: bool = False
) -> Path:
    """``relative`` inside the extracted artifact (or its bare name at the artifact's root:
    packaging often flattens ``api/openapi.yaml`` to ``openapi.yaml``)."""
    for candidate in (relative, PurePosixPath(relative).name):
        path = root / candidate
        if path.is_dir() if directory else path.is_file():
            return path
    present = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    shown = ", ".join(present[:10]) + (", ..." if len(present) > 10 else "") or "nothing"
    raise InvalidInputError(
        f"input artifact {artifact.name} has no {relative} (the manifest's {field}); "
        f"it holds: {shown}"
    )


def _function_code(ctx: JobContext, artifact: JobArtifact, path: str | None) -> bytes:
    """The function's zip: the artifact itself, or its ``path`` folder zipped the same way."""
    if path is None:
        if ctx.artifacts.head(artifact.bucket, artifact.key) is None:
            raise CaravanError(
                f"input artifact {artifact.name} is missing from the artifact store "
                f"(s3://{artifact.bucket}/{artifact.key})"
            )
        return ctx.artifacts.get_bytes(artifact.bucket, artifact.key)
    root = _extract(ctx, artifact)
    folder = _member(root, path, artifact, "functions.<name>.path", directory=True)
    return zip_bytes(folder)


def _publish(target: _Target, function: str, code: bytes, ctx: JobContext) -> tuple[str, bool]:
    """The version to release: one already published with this code and these settings, or a
    new one. (version, whether it was published now)."""
    registry, manifest = target.platform.functions, target.manifest
    name = manifest.function_name(function)
    settings = target.platform.function_configuration(target.app, function)
    sha = code_sha256(code)
    try:
        versions = registry.list_versions_by_function(name)[1:]  # without $LATEST
    except ResourceNotFoundException:
        created = registry.create_function(name, code=code, publish=True, **settings)
        ctx.log(f"created function {name}; published version {created['Version']} ({sha})")
        return str(created["Version"]), True
    same = [v for v in versions if v["CodeSha256"] == sha and _same_settings(v, settings)]
    if same:
        version = str(same[-1]["Version"])
        ctx.log(f"{name} version {version} has exactly this code (CodeSha256 {sha}): releasing it")
        return version, False
    latest = registry.version(name, "$LATEST")
    if not _same_settings(latest.to_api(registry.scope), settings):
        registry.update_function_configuration(name, **settings)
    if latest.code_sha256 != sha:
        registry.update_function_code(name, code)
    published = registry.publish_version(name, code_sha256=sha)
    earlier = "" if not versions else " (no earlier version has this code)"
    ctx.log(f"{name}: published version {published['Version']} (CodeSha256 {sha}){earlier}")
    return str(published["Version"]), True


def _same_settings(configuration: dict[str, Any], settings: dict[str, Any]) -> bool:
    return bool(
        configuration["Handler"] == settings["handler"]
        and configuration["Runtime"] == settings["runtime"]
        and configuration["MemorySize"] == settings["memory_size"]
        and configuration["Timeout"] == settings["timeout"]
        and configuration["Environment"]["Variables"] == settings["environment"]
    )


def _commit_id(job: Job, ctx: JobContext) -> str:
    configured = job.configuration.get("Version")
    if configured:
        return configured
    for artifact in job.input_artifacts:
        if artifact.revision and _COMMIT.fullmatch(artifact.revision):
            return artifact.revision
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    ctx.log(
        f"no commit id for config.json (set configuration Version to "
        f"#{{SourceVariables.CommitId}}): using the deploy time {stamp}"
    )
    return stamp


def _buildspec_file(source: Path, relative: str) -> Buildspec:
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise InvalidInputError(f"configuration.BuildSpec {relative!r} must stay inside the source")
    path = source / relative
    if not path.is_file():
        raise InvalidInputError(f"configuration.BuildSpec: {relative} not found in the source")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"configuration.BuildSpec: cannot read {relative}: {exc}") from None
    return parse_buildspec(text, source=f"buildspec {relative}")


def _empty(workdir: Path) -> Path:
    empty = workdir / "src" / "_empty"
    empty.mkdir(parents=True, exist_ok=True)
    return empty
