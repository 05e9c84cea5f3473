"""The contract between the engine and an action provider.

A provider receives a ``Job`` (the CodePipeline job data plus caravan's view of the action
declaration) and a ``JobContext`` (where to read and write artifacts, where to log, a fresh
working directory, settings), and returns how the job ended. A simple provider is a plain
``async`` function with that signature (``ActionProvider``).

Abandoning an action cancels the provider's task: a provider that starts subprocesses must stop
them when it sees ``asyncio.CancelledError`` (``caravan.actions.process`` does this for you).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from caravan.model.statuses import FailureType

if TYPE_CHECKING:
    from caravan.artifacts.store import ArtifactStore

MAX_FAILURE_MESSAGE = 5000


@dataclass(frozen=True)
class ActionTypeKey:
    """The four parts of an actionTypeId; the registry's key."""

    category: str
    owner: str
    provider: str
    version: str

    def __str__(self) -> str:
        return f"{self.category}/{self.owner}/{self.provider}/{self.version}"

    def to_dict(self) -> dict[str, str]:
        return {
            "category": self.category,
            "owner": self.owner,
            "provider": self.provider,
            "version": self.version,
        }


@dataclass(frozen=True)
class JobArtifact:
    """An input or output artifact of a job, located like CodePipeline's (S3 bucket + key)."""

    name: str
    bucket: str
    key: str
    revision: str | None = None
    # caravan extension (Commands action): globs selecting the files of an output artifact.
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "location": {
                "type": "S3",
                "s3Location": {"bucketName": self.bucket, "objectKey": self.key},
            },
        }
        if self.revision is not None:
            body["revision"] = self.revision
        return body


@dataclass(frozen=True)
class Job:
    """One dispatch of one action execution, carrying CodePipeline's JobData."""

    id: str
    nonce: str
    action_type: ActionTypeKey
    configuration: Mapping[str, str]  # already resolved: no #{...} left
    pipeline_name: str
    stage_name: str
    action_name: str
    action_execution_id: str
    pipeline_execution_id: str
    input_artifacts: tuple[JobArtifact, ...] = ()
    output_artifacts: tuple[JobArtifact, ...] = ()
    continuation_token: str | None = None
    # Action-level fields of the declaration that some providers read (Commands action).
    commands: tuple[str, ...] = ()
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    output_variables: tuple[str, ...] = ()
    # A source action pinned to a revision (StartPipelineExecution sourceRevisions, a trigger's
    # commit): the commit id to fetch instead of the branch head.
    source_revision: str | None = None
    region: str = "local"
    account_id: str = "000000000000"

    def pipeline_context(self) -> dict[str, Any]:
        return {
            "pipelineName": self.pipeline_name,
            "stage": {"name": self.stage_name},
            "action": {"name": self.action_name, "actionExecutionId": self.action_execution_id},
            "pipelineArn": (
                f"arn:aws:codepipeline:{self.region}:{self.account_id}:{self.pipeline_name}"
            ),
            "pipelineExecutionId": self.pipeline_execution_id,
        }

    def job_data(self, credentials: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``JobData`` shape of GetJobDetails / PollForJobs."""
        data: dict[str, Any] = {
            "actionTypeId": self.action_type.to_dict(),
            "actionConfiguration": {"configuration": dict(self.configuration)},
            "pipelineContext": self.pipeline_context(),
            "inputArtifacts": [a.to_dict() for a in self.input_artifacts],
            "outputArtifacts": [a.to_dict() for a in self.output_artifacts],
        }
        if credentials is not None:
            data["artifactCredentials"] = dict(credentials)
        if self.continuation_token is not None:
            data["continuationToken"] = self.continuation_token
        return data

    def lambda_event(self, credentials: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``CodePipeline.job`` event a Lambda invoke action receives (§1.14)."""
        data = self.job_data(credentials)
        del data["actionTypeId"], data["pipelineContext"]
        return {"CodePipeline.job": {"id": self.id, "accountId": self.account_id, "data": data}}


def job_credentials(job_id: str) -> dict[str, str]:
    """``artifactCredentials`` scoped to one job (the AWS-compatible S3 endpoint can authorise
    them for that job's artifacts). Never logged: the event that carries them is not either."""
    return {
        "accessKeyId": f"CARAVANJOB{job_id.replace('-', '')[:10].upper()}",
        "secretAccessKey": secrets.token_urlsafe(30),
        "sessionToken": f"caravan-job:{job_id}",
    }


@dataclass(frozen=True)
class JobSucceeded:
    """PutJobSuccessResult. With a continuation token the action stays InProgress."""

    output_variables: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None
    external_execution_id: str | None = None
    percent_complete: int | None = None
    continuation_token: str | None = None
    current_revision: Mapping[str, str] | None = None
    # Output artifacts the provider stored, by name -> revision (e.g. sha256 or commit id).
    artifact_revisions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobFailed:
    """PutJobFailureResult."""

    message: str
    type: FailureType = FailureType.JOB_FAILED
    external_execution_id: str | None = None

    def __post_init__(self) -> None:
        if len(self.message) > MAX_FAILURE_MESSAGE:
            # Keep the end: the last lines of a log say why a step failed.
            cut = "...[truncated]\n"
            object.__setattr__(
                self, "message", cut + self.message[-(MAX_FAILURE_MESSAGE - len(cut)) :]
            )


@dataclass(frozen=True)
class JobPending:
    """The result will arrive later through the job API (PutJobSuccessResult, approvals, ...)."""


JobResult = JobSucceeded | JobFailed | JobPending


class LogSink(Protocol):
    def __call__(self, text: str, /) -> None: ...


@dataclass
class JobContext:
    """What a provider may use besides the job itself."""

    artifacts: ArtifactStore
    workdir: Path  # fresh, empty, removed after the job
    log: LogSink
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Directory of the declaration file, for paths like ``actions/deploy.py:handler``.
    declaration_dir: Path | None = None
    # Build projects declared beside the pipeline, by name (CodeBuild CreateProject shape).
    build_projects: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class ActionProvider(Protocol):
    async def __call__(self, job: Job, ctx: JobContext, /) -> JobResult: ...


ProviderFactory = Callable[[], ActionProvider]
