"""The Commands action provider, {Compute, AWS, Commands, 1}: shell commands on local compute.

CodePipeline runs a Commands action as a CodeBuild build whose one phase holds the action's
``commands``, so caravan does the same through the build runner: one shell session in the
primary input's directory (CODEBUILD_SRC_DIR), with the action's ``environmentVariables``.
``outputVariables`` name the shell variables to export when the commands end; one that was
never set is left out and logged. Each output artifact holds the files its ``files`` globs
select, relative to the primary source directory (all files when it declares none).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from types import MappingProxyType

from caravan.actions.base import Job, JobContext, JobFailed, JobResult, JobSucceeded
from caravan.actions.build_runner import failure_report, run_build
from caravan.actions.buildspec import ArtifactSpec, Buildspec, Phase
from caravan.actions.workspace import collect_files, extract_inputs, store_outputs
from caravan.errors import CaravanError, InvalidInputError
from caravan.model.statuses import FailureType

ALL_FILES = ("**/*",)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


async def commands_provider(job: Job, ctx: JobContext) -> JobResult:
    try:
        spec = _buildspec(job)
    except InvalidInputError as exc:
        return JobFailed(exc.message, type=FailureType.CONFIGURATION_ERROR)
    try:
        inputs = await asyncio.to_thread(extract_inputs, job, ctx)
    except CaravanError as exc:
        return JobFailed(exc.message)
    source = next(iter(inputs.values()), None) or _empty_source(ctx.workdir)
    build_id = f"{job.action_name}:{uuid.uuid4()}"
    outcome = await run_build(
        spec,
        workdir=source,
        secondary_sources=dict(list(inputs.items())[1:]),
        env=job.environment_variables,
        on_output=ctx.log,
        scratch=ctx.workdir / "build",
        build_id=build_id,
        initiator=f"codepipeline/{job.pipeline_name}",
    )
    if not outcome.succeeded:
        return JobFailed(failure_report(outcome), external_execution_id=build_id)
    for name in outcome.unset_exported:
        ctx.log(f"Output variable {name} was never set by the commands; it is left out")
    try:
        revisions = await asyncio.to_thread(_store, job, ctx, source)
    except CaravanError as exc:
        return JobFailed(exc.message, external_execution_id=build_id)
    return JobSucceeded(
        output_variables=outcome.exported_variables,
        summary=_summary(len(job.commands)),
        external_execution_id=build_id,
        artifact_revisions=revisions,
    )


def _buildspec(job: Job) -> Buildspec:
    if not job.commands:
        raise InvalidInputError("commands: a Commands action needs at least one command")
    for index, name in enumerate(job.output_variables):
        if not _NAME.match(name):
            raise InvalidInputError(
                f"outputVariables[{index}]: {name!r} is not a shell variable name"
            )
    return Buildspec(
        exported_variables=tuple(job.output_variables),
        phases=MappingProxyType({"build": Phase(commands=tuple(job.commands))}),
    )


def _empty_source(workdir: Path) -> Path:
    empty = workdir / "src" / "_empty"  # no inputs, so no artifact directory to clash with
    empty.mkdir(parents=True, exist_ok=True)
    return empty


def _store(job: Job, ctx: JobContext, source: Path) -> dict[str, str]:
    dirs: dict[str, Path] = {}
    for index, artifact in enumerate(job.output_artifacts):
        spec = ArtifactSpec(files=tuple(artifact.files) or ALL_FILES)
        dest = ctx.workdir / "build" / "artifacts" / artifact.name
        collect_files(source, spec, dest, label=f"outputArtifacts[{index}]")
        dirs[artifact.name] = dest
    return store_outputs(job, ctx, dirs)


def _summary(count: int) -> str:
    noun = "command" if count == 1 else "commands"
    return f"{count} {noun} succeeded"
