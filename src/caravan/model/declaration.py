"""The pipeline declaration: CodePipeline's ``PipelineDeclaration`` as frozen pydantic models.

Every field accepts the camelCase key of the CreatePipeline API and the PascalCase key of
CloudFormation's ``AWS::CodePipeline::Pipeline`` (and its snake_case name); dumping with
``model_dump(by_alias=True, exclude_none=True)`` gives the camelCase CreatePipeline shape.
Unknown keys are errors. Free-form maps (an action's ``configuration``, condition rules) keep
their keys untouched.

These models check shapes only: types, required fields, enumerations and unknown keys. Every
limit, pattern and cross-reference rule lives in ``caravan.model.validation``, so that a document
with many problems reports all of them at once rather than stopping at the first shape error.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_pascal

from caravan.errors import ActionNotFoundError, StageNotFoundError
from caravan.model.statuses import ActionCategory, ActionOwner, ExecutionMode, RetryMode

DEFAULT_ROLE_ARN = "arn:aws:iam::000000000000:role/caravan"

# Providers of the Commands action (AWS's 2024 "Compute" category).
COMMANDS_ACTION = (ActionCategory.COMPUTE.value, ActionOwner.AWS.value, "Commands")


def _plain(value: StrEnum) -> str:
    return value.value


# The status vocabularies are StrEnums; dumps carry their plain string values (YAML-safe).
Category = Annotated[ActionCategory, PlainSerializer(_plain, return_type=str)]
Owner = Annotated[ActionOwner, PlainSerializer(_plain, return_type=str)]
Mode = Annotated[ExecutionMode, PlainSerializer(_plain, return_type=str)]
Retry = Annotated[RetryMode, PlainSerializer(_plain, return_type=str)]


def _aliases(field: str) -> AliasChoices:
    return AliasChoices(to_camel(field), to_pascal(field))


class DeclarationModel(BaseModel):
    """Base of every declaration model: frozen, strict about keys, camelCase or PascalCase."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=AliasGenerator(validation_alias=_aliases, serialization_alias=to_camel),
        validate_by_name=True,
        validate_by_alias=True,
        # CloudFormation YAML often writes `Version: 1` or `RunOrder: "2"`; accept both.
        coerce_numbers_to_str=True,
    )


def _scalar_to_str(value: Any) -> Any:
    """CloudFormation's spelling of a scalar as a string (booleans lower-case, like AWS)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


# Actions ------------------------------------------------------------------------------------


class ActionTypeId(DeclarationModel):
    category: Category
    owner: Owner
    provider: str
    version: str

    def key(self) -> tuple[str, str, str, str]:
        """The provider registry's key: (category, owner, provider, version)."""
        return (self.category.value, self.owner.value, self.provider, self.version)


class InputArtifact(DeclarationModel):
    name: str


class OutputArtifact(DeclarationModel):
    name: str
    files: list[str] | None = None  # Commands action: globs selecting the artifact's files


class EnvironmentVariable(DeclarationModel):
    name: str
    value: str
    type: Literal["PLAINTEXT", "SECRETS_MANAGER"] = "PLAINTEXT"


class ActionDeclaration(DeclarationModel):
    name: str
    action_type_id: ActionTypeId
    run_order: int = 1
    configuration: dict[str, str] = Field(default_factory=dict)
    input_artifacts: list[InputArtifact] = Field(default_factory=list)
    output_artifacts: list[OutputArtifact] = Field(default_factory=list)
    namespace: str | None = None
    region: str | None = None
    role_arn: str | None = None
    timeout_in_minutes: int | None = None
    commands: list[str] | None = None
    output_variables: list[str] | None = None
    environment_variables: list[EnvironmentVariable] | None = None
    # caravan extension: a timeout finer than AWS's minutes.
    timeout_in_seconds: int | None = None

    @field_validator("configuration", mode="before")
    @classmethod
    def _configuration_scalars(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_scalar_to_str(k): _scalar_to_str(v) for k, v in value.items()}
        return value

    @property
    def is_source(self) -> bool:
        return self.action_type_id.category is ActionCategory.SOURCE

    @property
    def is_commands(self) -> bool:
        return self.action_type_id.key()[:3] == COMMANDS_ACTION

    @property
    def timeout_seconds(self) -> int | None:
        """The declared timeout in seconds (either spelling), or None for the provider default."""
        if self.timeout_in_seconds is not None:
            return self.timeout_in_seconds
        if self.timeout_in_minutes is not None:
            return self.timeout_in_minutes * 60
        return None


# Stages -------------------------------------------------------------------------------------


class Condition(DeclarationModel):
    result: str | None = None
    rules: list[dict[str, Any]] = Field(default_factory=list)


class BeforeEntry(DeclarationModel):
    conditions: list[Condition]


class OnSuccess(DeclarationModel):
    conditions: list[Condition]


class RetryConfiguration(DeclarationModel):
    retry_mode: Retry


class OnFailure(DeclarationModel):
    result: Literal["ROLLBACK", "FAIL", "RETRY", "SKIP"] | None = None
    retry_configuration: RetryConfiguration | None = None
    conditions: list[Condition] | None = None


class StageDeclaration(DeclarationModel):
    name: str
    actions: list[ActionDeclaration]
    blockers: list[dict[str, Any]] | None = None
    before_entry: BeforeEntry | None = None
    on_success: OnSuccess | None = None
    on_failure: OnFailure | None = None

    @property
    def has_conditions(self) -> bool:
        return any(c is not None for c in (self.before_entry, self.on_success, self.on_failure))


# Pipeline-level parts -----------------------------------------------------------------------


class EncryptionKey(DeclarationModel):
    id: str
    type: Literal["KMS"] = "KMS"


class ArtifactStoreDeclaration(DeclarationModel):
    type: Literal["S3"] = "S3"
    location: str
    encryption_key: EncryptionKey | None = None


class RegionalArtifactStore(DeclarationModel):
    """One entry of ``artifactStores`` (cross-Region pipelines)."""

    region: str
    artifact_store: ArtifactStoreDeclaration


class PipelineVariable(DeclarationModel):
    name: str
    default_value: str | None = None
    description: str | None = None


class GitFilter(DeclarationModel):
    includes: list[str] | None = None
    excludes: list[str] | None = None


class GitPushFilter(DeclarationModel):
    tags: GitFilter | None = None
    branches: GitFilter | None = None
    file_paths: GitFilter | None = None


class GitPullRequestFilter(DeclarationModel):
    events: list[Literal["OPEN", "UPDATED", "CLOSED"]] | None = None
    branches: GitFilter | None = None
    file_paths: GitFilter | None = None


class GitConfiguration(DeclarationModel):
    source_action_name: str
    push: list[GitPushFilter] | None = None
    pull_request: list[GitPullRequestFilter] | None = None


class PipelineTrigger(DeclarationModel):
    provider_type: Literal["CodeStarSourceConnection"]
    git_configuration: GitConfiguration


class PipelineDeclaration(DeclarationModel):
    name: str
    role_arn: str = DEFAULT_ROLE_ARN  # optional locally; kept for AWS round trips
    artifact_store: ArtifactStoreDeclaration | None = None
    artifact_stores: list[RegionalArtifactStore] | None = None
    stages: list[StageDeclaration]
    version: int | None = None
    execution_mode: Mode = ExecutionMode.SUPERSEDED
    pipeline_type: Literal["V1", "V2"] | None = None
    variables: list[PipelineVariable] | None = None
    triggers: list[PipelineTrigger] | None = None

    @property
    def effective_type(self) -> Literal["V1", "V2"]:
        """V2 when declared so or when any V2-only feature is used (CodePipeline's rule)."""
        if self.pipeline_type == "V2" or self.v2_features():
            return "V2"
        return "V1"

    def v2_features(self) -> list[str]:
        """The V2-only features this declaration uses, named for messages."""
        used: list[str] = []
        if self.execution_mode is not ExecutionMode.SUPERSEDED:
            used.append(f"executionMode {self.execution_mode.value}")
        if self.variables:
            used.append("pipeline variables")
        if self.triggers:
            used.append("triggers")
        if any(a.is_commands for _, _, a in self.actions()):
            used.append("the Commands action")
        if any(s.has_conditions for s in self.stages):
            used.append("stage conditions")
        return used

    def actions(self) -> Iterator[tuple[int, StageDeclaration, ActionDeclaration]]:
        """Every action with its stage and the stage's index, in declaration order."""
        for index, stage in enumerate(self.stages):
            for action in stage.actions:
                yield index, stage, action

    def stage_index(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise StageNotFoundError(f"pipeline {self.name!r} has no stage {name!r}")

    def stage(self, name: str) -> StageDeclaration:
        return self.stages[self.stage_index(name)]

    def action(self, stage: str, name: str) -> ActionDeclaration:
        for action in self.stage(stage).actions:
            if action.name == name:
                return action
        raise ActionNotFoundError(
            f"stage {stage!r} of pipeline {self.name!r} has no action {name!r}"
        )


# Beside the pipeline ------------------------------------------------------------------------

# CodeBuild CreateProject keys that describe AWS infrastructure caravan does not need; accepted
# so that a real CreateProject input loads, and ignored.
_IGNORED_PROJECT_KEYS = frozenset(
    {
        "artifacts",
        "secondaryArtifacts",
        "secondarySources",
        "secondarySourceVersions",
        "sourceVersion",
        "serviceRole",
        "description",
        "tags",
        "timeoutInMinutes",
        "queuedTimeoutInMinutes",
        "encryptionKey",
        "cache",
        "logsConfig",
        "badgeEnabled",
        "vpcConfig",
        "fileSystemLocations",
        "concurrentBuildLimit",
        "buildBatchConfig",
        "autoRetryLimit",
    }
)


def _pick(mapping: dict[str, Any], field: str) -> Any:
    """Pop ``field`` from a user mapping under either spelling (None when absent)."""
    for key in (field, field[0].upper() + field[1:]):
        if key in mapping:
            return mapping.pop(key)
    return None


def _nested(mapping: dict[str, Any], field: str) -> dict[str, Any]:
    """Pop a nested CreateProject object (``source``, ``environment``); {} when absent."""
    value = _pick(mapping, field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{field} must be a mapping, as in CodeBuild's CreateProject")
    return dict(value)


class BuildProject(DeclarationModel):
    """A CodeBuild project (CreateProject subset) that CodeBuild actions name in ProjectName."""

    name: str
    buildspec: str | None = None  # inline YAML text, or a path inside the primary input
    environment_variables: list[EnvironmentVariable] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _flatten_create_project(cls, data: Any) -> Any:
        """Accept CreateProject's nesting: source.buildspec and environment.environmentVariables."""
        if not isinstance(data, dict):
            return data
        flat = dict(data)
        for key in list(flat):
            if isinstance(key, str) and key[:1].lower() + key[1:] in _IGNORED_PROJECT_KEYS:
                del flat[key]
        source = _nested(flat, "source")
        if "buildspec" not in flat:
            spec = source.get("buildspec", source.get("BuildSpec"))  # API, CloudFormation
            if spec is not None:
                flat["buildspec"] = spec
        variables = _pick(_nested(flat, "environment"), "environmentVariables")
        if variables is not None and "environmentVariables" not in flat:
            flat["environmentVariables"] = variables
        return flat


class Tag(DeclarationModel):
    key: str
    value: str


class DisabledTransition(DeclarationModel):
    """A stage whose inbound transition starts disabled (CloudFormation's
    DisableInboundStageTransitions)."""

    stage_name: str
    reason: str


class PipelineDocument(DeclarationModel):
    """Everything one declaration file holds: the pipeline and what is declared beside it."""

    pipeline: PipelineDeclaration
    build_projects: dict[str, BuildProject] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)
    disabled_inbound_transitions: list[DisabledTransition] = Field(default_factory=list)
    source: str | None = Field(default=None, exclude=True)  # file name, for messages

    def to_request(self) -> dict[str, Any]:
        """The CreatePipeline request, with caravan's extension keys ``buildProjects`` and
        ``disabledInboundTransitions`` when used; ``load_document`` reads it back."""
        request: dict[str, Any] = {
            "pipeline": self.pipeline.model_dump(mode="json", by_alias=True, exclude_none=True)
        }
        if self.tags:
            request["tags"] = [t.model_dump(by_alias=True) for t in self.tags]
        if self.build_projects:
            request["buildProjects"] = [
                p.model_dump(by_alias=True, exclude_none=True) for p in self.build_projects.values()
            ]
        if self.disabled_inbound_transitions:
            request["disabledInboundTransitions"] = [
                t.model_dump(by_alias=True) for t in self.disabled_inbound_transitions
            ]
        return request
