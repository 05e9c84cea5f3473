"""The CodeBuild action provider, {Build|Test, AWS, CodeBuild, 1}: a buildspec run locally.

Configuration, as CodePipeline's CodeBuild action: ``ProjectName`` names a build project
declared beside the pipeline (``ctx.build_projects``: its ``buildspec`` is inline YAML or a path
inside the primary source; its ``environmentVariables`` are set); ``EnvironmentVariables`` is
the JSON list ``[{"name", "value", "type"}]`` that overrides them; ``PrimarySource`` names the
input artifact that becomes CODEBUILD_SRC_DIR (default: the first). caravan adds ``BuildSpec``:
a buildspec path in the primary source, or inline text when it spans several lines; it wins
over the project's. With no buildspec anywhere, ``buildspec.yml`` of the primary source is used.

Output artifacts map as in CodePipeline: an output artifact named like a ``secondary-artifacts``
identifier receives that artifact; otherwise the first output receives the primary
``artifacts``. The buildspec's ``exported-variables`` become the action's output variables.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from caravan.actions.base import Job, JobContext, JobFailed, JobResult, JobSucceeded
from caravan.actions.build_runner import PRIMARY_ARTIFACT, failure_report, run_build
from caravan.actions.buildspec import Buildspec, parse_buildspec
from caravan.actions.workspace import extract_inputs, store_outputs
from caravan.errors import CaravanError, InvalidInputError
from caravan.model.statuses import FailureType

DEFAULT_BUILDSPEC = "buildspec.yml"
DEFAULT_TIMEOUT_MINUTES = 60  # CodeBuild's default build timeout


@dataclass(frozen=True)
class _Settings:
    project: str | None
    buildspec: str | None  # inline text or a path in the primary source
    variables: dict[str, str]
    primary: str | None
    timeout_seconds: float


async def codebuild_provider(job: Job, ctx: JobContext) -> JobResult:
    try:
        settings = _settings(job, ctx)
    except InvalidInputError as exc:
        return JobFailed(exc.message, type=FailureType.CONFIGURATION_ERROR)
    try:
        inputs = await asyncio.to_thread(extract_inputs, job, ctx)
    except CaravanError as exc:
        return JobFailed(exc.message)
    try:
        primary, primary_dir = _primary(settings.primary, inputs, ctx.workdir)
        spec = await asyncio.to_thread(_load_buildspec, settings.buildspec, primary, primary_dir)
        outputs = _map_outputs(job, spec)
    except InvalidInputError as exc:
        return JobFailed(exc.message, type=FailureType.CONFIGURATION_ERROR)
    build_id = f"{settings.project or 'caravan'}:{uuid.uuid4()}"
    ctx.log(f"Build {build_id}: primary source {primary or '(none)'}")
    outcome = await run_build(
        spec,
        workdir=primary_dir,
        secondary_sources={name: path for name, path in inputs.items() if name != primary},
        env={**settings.variables, **_source_version(job, primary)},
        on_output=ctx.log,
        timeout=settings.timeout_seconds,
        scratch=ctx.workdir / "build",
        build_id=build_id,
        initiator=f"codepipeline/{job.pipeline_name}",
        collect=set(outputs.values()),
    )
    if not outcome.succeeded:
        return JobFailed(failure_report(outcome), external_execution_id=build_id)
    for name in outcome.unset_exported:
        ctx.log(f"Exported variable {name} was never set; it is not an output variable")
    dirs = {name: outcome.output_dirs[ident] for name, ident in outputs.items()}
    try:
        revisions = await asyncio.to_thread(store_outputs, job, ctx, dirs)
    except CaravanError as exc:
        return JobFailed(exc.message, external_execution_id=build_id)
    return JobSucceeded(
        output_variables=outcome.exported_variables,
        summary=f"Build {build_id} succeeded",
        external_execution_id=build_id,
        artifact_revisions=revisions,
    )


def _source_version(job: Job, primary: str) -> dict[str, str]:
    """CODEBUILD_RESOLVED_SOURCE_VERSION: the primary input's revision (a commit id), if known."""
    for artifact in job.input_artifacts:
        if artifact.name == primary and artifact.revision:
            return {"CODEBUILD_RESOLVED_SOURCE_VERSION": artifact.revision}
    return {}


def _settings(job: Job, ctx: JobContext) -> _Settings:
    config = job.configuration
    name = config.get("ProjectName") or None
    project: Mapping[str, Any] = {}
    if name is not None:
        if name not in ctx.build_projects:
            declared = ", ".join(sorted(ctx.build_projects)) or "none"
            raise InvalidInputError(
                f"configuration.ProjectName: no build project named {name!r} is declared "
                f"(declared build projects: {declared})",
                hint="declare it under buildProjects beside the pipeline",
            )
        project = ctx.build_projects[name]
    timeout = project.get("timeoutInMinutes") or DEFAULT_TIMEOUT_MINUTES
    try:
        timeout_seconds = float(timeout) * 60
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"build project {name}: timeoutInMinutes must be a number, not {timeout!r}"
        ) from None
    return _Settings(
        project=name,
        buildspec=config.get("BuildSpec") or _project_buildspec(project),
        variables={
            **_variables(_project_variables(project), f"build project {name}"),
            **_variables(_config_variables(config), "configuration.EnvironmentVariables"),
        },
        primary=config.get("PrimarySource") or None,
        timeout_seconds=timeout_seconds,
    )


def _project_buildspec(project: Mapping[str, Any]) -> str | None:
    source = project.get("source") or {}
    value = project.get("buildspec") or (source.get("buildspec") if source else None)
    return str(value) if value else None


def _project_variables(project: Mapping[str, Any]) -> Sequence[Any]:
    environment = project.get("environment") or {}
    found = project.get("environmentVariables") or environment.get("environmentVariables")
    return list(found or [])


def _config_variables(config: Mapping[str, str]) -> Sequence[Any]:
    text = config.get("EnvironmentVariables")
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"configuration.EnvironmentVariables is not valid JSON: {exc.msg} "
            f"at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(value, list):
        raise InvalidInputError(
            'configuration.EnvironmentVariables must be a JSON list of {"name", "value", "type"}'
        )
    return value


def _variables(entries: Sequence[Any], where: str) -> dict[str, str]:
    variables: dict[str, str] = {}
    for index, entry in enumerate(entries):
        path = f"{where}[{index}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise InvalidInputError(f'{path}: must be {{"name", "value", "type"}}')
        kind = entry.get("type") or "PLAINTEXT"
        if kind != "PLAINTEXT":
            raise InvalidInputError(
                f"{path}: type {kind} is not supported locally; use PLAINTEXT (the value is set "
                "as is)"
            )
        value = entry.get("value")
        variables[entry["name"]] = "" if value is None else str(value)
    return variables


def _primary(wanted: str | None, inputs: Mapping[str, Path], workdir: Path) -> tuple[str, Path]:
    if wanted is not None and wanted not in inputs:
        names = ", ".join(inputs) or "none"
        raise InvalidInputError(
            f"configuration.PrimarySource: {wanted!r} is not an input artifact of this action "
            f"(inputs: {names})"
        )
    if wanted is not None:
        return wanted, inputs[wanted]
    if inputs:
        name = next(iter(inputs))
        return name, inputs[name]
    empty = workdir / "src" / "_empty"  # no inputs, so no artifact directory to clash with
    empty.mkdir(parents=True, exist_ok=True)
    return "", empty


def _load_buildspec(value: str | None, primary: str, primary_dir: Path) -> Buildspec:
    if value is not None and "\n" in value:
        return parse_buildspec(value, source="buildspec (inline)")
    relative = value or DEFAULT_BUILDSPEC
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise InvalidInputError(f"buildspec path {relative!r} must stay inside the primary source")
    path = primary_dir / relative
    if not path.is_file():
        where = f"input artifact {primary}" if primary else "the action (it has no input)"
        raise InvalidInputError(
            f"buildspec {relative} not found in {where}",
            hint="add it to the source, or set BuildSpec or the build project's buildspec",
        )
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read buildspec {relative}: {exc}") from None
    return parse_buildspec(text, source=f"buildspec {relative}")


def _map_outputs(job: Job, spec: Buildspec) -> dict[str, str]:
    """Output artifact name -> buildspec artifact identifier (PRIMARY_ARTIFACT for the first)."""
    mapping: dict[str, str] = {}
    for index, artifact in enumerate(job.output_artifacts):
        if artifact.name in spec.secondary_artifacts:
            mapping[artifact.name] = artifact.name
        elif index == 0 and spec.artifacts is not None:
            mapping[artifact.name] = PRIMARY_ARTIFACT
        elif index == 0:
            raise InvalidInputError(
                f"output artifact {artifact.name}: the buildspec has no artifacts section"
            )
        else:
            known = ", ".join(spec.secondary_artifacts) or "none"
            raise InvalidInputError(
                f"output artifact {artifact.name}: the buildspec has no secondary-artifacts "
                f"identifier {artifact.name!r} (identifiers: {known})"
            )
    return mapping
