"""The semantic rules of a pipeline declaration (codepipeline.md §1.1, §1.10, §1.11, §1.16).

``validate(document)`` returns every broken rule as an ``Issue`` whose path is the camelCase path
of the offending field relative to the pipeline (``stages[2].actions[0].runOrder``); document
parts beside the pipeline use ``tags[..]``, ``buildProjects.<name>`` and
``disabledInboundTransitions[..]``. Pure: no I/O, no exceptions for bad input.

caravan departs from AWS where AWS is needlessly strict: the artifact store may be omitted (a
default store is used), ``timeoutInMinutes`` is allowed on every action with a range of 1-86400,
and ``timeoutInSeconds`` (1-5,184,000) is an extension.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from caravan.errors import Issue
from caravan.model.declaration import (
    ActionDeclaration,
    GitFilter,
    PipelineDeclaration,
    PipelineDocument,
    StageDeclaration,
)
from caravan.model.statuses import ExecutionMode
from caravan.model.triggers import trigger_issues
from caravan.model.variables import (
    CODEPIPELINE_NAMESPACE,
    CODEPIPELINE_VARIABLES,
    PIPELINE_VARIABLES_NAMESPACE,
    RESERVED_NAMESPACES,
    find_references,
    known_output_variables,
)

NAME = (re.compile(r"[A-Za-z0-9.@\-_]+"), r"[A-Za-z0-9.@\-_]+", 100)
ARTIFACT_NAME = (re.compile(r"[a-zA-Z0-9_\-]+"), r"[a-zA-Z0-9_\-]+", 100)
NAMESPACE = (re.compile(r"[A-Za-z0-9@\-_]+"), r"[A-Za-z0-9@\-_]+", 100)
VARIABLE_NAME = (re.compile(r"[A-Za-z0-9@\-_]+"), r"[A-Za-z0-9@\-_]+", 128)
PROVIDER = (re.compile(r"[0-9A-Za-z_\-]+"), r"[0-9A-Za-z_\-]+", 35)
VERSION = (re.compile(r"[0-9A-Za-z_\-]+"), r"[0-9A-Za-z_\-]+", 9)
PROJECT_NAME = (re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_]*"), r"[A-Za-z0-9][A-Za-z0-9\-_]*", 255)

MIN_STAGES, MAX_STAGES = 2, 50
MAX_ACTIONS_PER_STAGE, MAX_ACTIONS = 50, 500
MAX_RUN_ORDER = 999
MAX_CONFIG_KEY, MAX_CONFIG_VALUE = 50, 1000
MAX_VARIABLES, MAX_VARIABLE_DEFAULT = 50, 1000
MAX_TRIGGERS, MAX_GIT_FILTERS, MAX_FILTER_PATTERNS, MAX_TAG_PATTERN = 50, 3, 8, 255
MAX_ENVIRONMENT_VARIABLES, MAX_COMMANDS, MAX_OUTPUT_VARIABLES, MAX_OUTPUT_FILES = 10, 50, 15, 10
MAX_TIMEOUT_MINUTES, MAX_TIMEOUT_SECONDS = 86_400, 5_184_000
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TRANSITION_REASON = 50, 128, 256, 300

_Pattern = tuple[re.Pattern[str], str, int]


def validate(document: PipelineDocument) -> list[Issue]:
    """Every rule ``document`` breaks, pipeline first, in declaration order."""
    issues = validate_pipeline(document.pipeline)
    issues.extend(_document_rules(document))
    return issues


def validate_pipeline(pipeline: PipelineDeclaration) -> list[Issue]:
    """Every rule the pipeline declaration alone breaks."""
    plan = _Plan.of(pipeline)
    issues: list[Issue] = []
    issues.extend(_pipeline_rules(pipeline))
    issues.extend(_stage_rules(pipeline))
    for place in plan.places:
        issues.extend(_action_rules(place))
    issues.extend(_artifact_rules(plan))
    issues.extend(_namespace_rules(plan))
    issues.extend(_reference_rules(pipeline, plan))
    issues.extend(_trigger_rules(pipeline, plan))
    issues.extend(trigger_issues(pipeline.triggers))
    return issues


def _named(path: str, value: str, pattern: _Pattern) -> Iterator[Issue]:
    regex, text, limit = pattern
    if not regex.fullmatch(value):
        yield Issue(path, f"must match {text}")
    if len(value) > limit:
        yield Issue(path, f"must be at most {limit} characters")


def _at_most(path: str, items: Sequence[object] | None, limit: int, noun: str) -> Iterator[Issue]:
    if items is not None and len(items) > limit:
        yield Issue(path, f"at most {limit} {noun} are allowed, found {len(items)}")


# Where each action sits ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    """An action with its position: who runs before whom is decided by (stage, runOrder)."""

    stage: int
    index: int
    action: ActionDeclaration
    stage_name: str

    @property
    def path(self) -> str:
        return f"stages[{self.stage}].actions[{self.index}]"

    def runs_before(self, other: _Place) -> bool:
        if self.stage != other.stage:
            return self.stage < other.stage
        return self.action.run_order < other.action.run_order

    def describe(self) -> str:
        return f"action {self.action.name!r} in stage {self.stage_name!r}"


@dataclass(frozen=True)
class _Plan:
    places: tuple[_Place, ...]

    @classmethod
    def of(cls, pipeline: PipelineDeclaration) -> _Plan:
        return cls(
            tuple(
                _Place(s, i, action, stage.name)
                for s, stage in enumerate(pipeline.stages)
                for i, action in enumerate(stage.actions)
            )
        )

    def producers(self, artifact: str) -> list[_Place]:
        return [
            p for p in self.places if any(o.name == artifact for o in p.action.output_artifacts)
        ]

    def declaring(self, namespace: str) -> list[_Place]:
        return [p for p in self.places if p.action.namespace == namespace]


# Pipeline ------------------------------------------------------------------------------------


def _pipeline_rules(pipeline: PipelineDeclaration) -> Iterator[Issue]:
    yield from _named("name", pipeline.name, NAME)
    if pipeline.artifact_store is not None and pipeline.artifact_stores is not None:
        yield Issue("artifactStores", "give either artifactStore or artifactStores, not both")
    count = len(pipeline.stages)
    if not MIN_STAGES <= count <= MAX_STAGES:
        yield Issue(
            "stages", f"a pipeline must have {MIN_STAGES} to {MAX_STAGES} stages, found {count}"
        )
    total = sum(len(s.actions) for s in pipeline.stages)
    if total > MAX_ACTIONS:
        yield Issue("stages", f"a pipeline may have at most {MAX_ACTIONS} actions, found {total}")
    if pipeline.stages and all(a.is_source for s in pipeline.stages for a in s.actions):
        yield Issue("stages", "a pipeline needs at least one action that is not a Source action")
    yield from _v1_rules(pipeline)
    yield from _variable_declaration_rules(pipeline)


def _v1_rules(pipeline: PipelineDeclaration) -> Iterator[Issue]:
    """An explicit pipelineType V1 cannot use V2-only features."""
    if pipeline.pipeline_type != "V1":
        return
    needs = "requires pipelineType V2"
    if pipeline.execution_mode in (ExecutionMode.QUEUED, ExecutionMode.PARALLEL):
        yield Issue("executionMode", f"executionMode {pipeline.execution_mode.value} {needs}")
    if pipeline.variables:
        yield Issue("variables", f"declaring pipeline variables {needs}")
    if pipeline.triggers:
        yield Issue("triggers", f"declaring triggers {needs}")
    for s, stage in enumerate(pipeline.stages):
        conditions = {
            "beforeEntry": stage.before_entry,
            "onSuccess": stage.on_success,
            "onFailure": stage.on_failure,
        }
        for key, condition in conditions.items():
            if condition is not None:
                yield Issue(f"stages[{s}].{key}", f"declaring stage conditions {needs}")
        for i, action in enumerate(stage.actions):
            if action.is_commands:
                yield Issue(
                    f"stages[{s}].actions[{i}].actionTypeId", f"the Commands action {needs}"
                )


def _variable_declaration_rules(pipeline: PipelineDeclaration) -> Iterator[Issue]:
    variables = pipeline.variables or []
    yield from _at_most("variables", variables, MAX_VARIABLES, "pipeline variables")
    seen: set[str] = set()
    for v, variable in enumerate(variables):
        path = f"variables[{v}]"
        yield from _named(f"{path}.name", variable.name, VARIABLE_NAME)
        if variable.name in seen:
            yield Issue(f"{path}.name", f"duplicate pipeline variable name {variable.name!r}")
        seen.add(variable.name)
        default = variable.default_value
        if default is not None and len(default) > MAX_VARIABLE_DEFAULT:
            yield Issue(
                f"{path}.defaultValue", f"must be at most {MAX_VARIABLE_DEFAULT} characters"
            )


# Stages --------------------------------------------------------------------------------------


def _stage_rules(pipeline: PipelineDeclaration) -> Iterator[Issue]:
    seen: set[str] = set()
    for s, stage in enumerate(pipeline.stages):
        path = f"stages[{s}]"
        yield from _named(f"{path}.name", stage.name, NAME)
        if stage.name in seen:
            yield Issue(f"{path}.name", f"duplicate stage name {stage.name!r}")
        seen.add(stage.name)
        count = len(stage.actions)
        if not 1 <= count <= MAX_ACTIONS_PER_STAGE:
            yield Issue(
                f"{path}.actions",
                f"a stage must have 1 to {MAX_ACTIONS_PER_STAGE} actions, found {count}",
            )
        yield from _source_placement(s, stage)
        names: set[str] = set()
        for i, action in enumerate(stage.actions):
            if action.name in names:
                yield Issue(
                    f"{path}.actions[{i}].name",
                    f"duplicate action name {action.name!r} in stage {stage.name!r}",
                )
            names.add(action.name)
        if (
            pipeline.execution_mode is ExecutionMode.PARALLEL
            and stage.on_failure is not None
            and stage.on_failure.result == "ROLLBACK"
        ):
            yield Issue(f"{path}.onFailure.result", "rollback is not available in PARALLEL mode")


def _source_placement(s: int, stage: StageDeclaration) -> Iterator[Issue]:
    """Source actions belong in the first stage, and only there."""
    if s == 0 and stage.actions and not any(a.is_source for a in stage.actions):
        yield Issue("stages[0].actions", "the first stage must contain at least one Source action")
    for i, action in enumerate(stage.actions):
        path = f"stages[{s}].actions[{i}].actionTypeId.category"
        if s == 0 and not action.is_source:
            yield Issue(path, "the first stage may contain only Source actions")
        if s > 0 and action.is_source:
            yield Issue(path, "Source actions are allowed only in the first stage")


# Actions -------------------------------------------------------------------------------------


def _action_rules(place: _Place) -> Iterator[Issue]:
    action, path = place.action, place.path
    yield from _named(f"{path}.name", action.name, NAME)
    yield from _named(f"{path}.actionTypeId.provider", action.action_type_id.provider, PROVIDER)
    yield from _named(f"{path}.actionTypeId.version", action.action_type_id.version, VERSION)
    if not 1 <= action.run_order <= MAX_RUN_ORDER:
        yield Issue(f"{path}.runOrder", f"runOrder must be between 1 and {MAX_RUN_ORDER}")
    yield from _timeout_rules(path, action)
    for key, value in action.configuration.items():
        if len(key) > MAX_CONFIG_KEY:
            yield Issue(
                f"{path}.configuration",
                f"key {key[:60]!r} is longer than {MAX_CONFIG_KEY} characters",
            )
        if len(value) > MAX_CONFIG_VALUE:
            yield Issue(
                f"{path}.configuration.{key}", f"must be at most {MAX_CONFIG_VALUE} characters"
            )
    yield from _at_most(
        f"{path}.environmentVariables",
        action.environment_variables,
        MAX_ENVIRONMENT_VARIABLES,
        "environment variables",
    )
    yield from _at_most(f"{path}.commands", action.commands, MAX_COMMANDS, "commands")
    yield from _at_most(
        f"{path}.outputVariables", action.output_variables, MAX_OUTPUT_VARIABLES, "output variables"
    )
    for o, output in enumerate(action.output_artifacts):
        yield from _at_most(
            f"{path}.outputArtifacts[{o}].files", output.files, MAX_OUTPUT_FILES, "file patterns"
        )
    if action.is_commands and not action.commands:
        yield Issue(f"{path}.commands", "the Commands action requires commands")


def _timeout_rules(path: str, action: ActionDeclaration) -> Iterator[Issue]:
    minutes, seconds = action.timeout_in_minutes, action.timeout_in_seconds
    if minutes is not None and not 1 <= minutes <= MAX_TIMEOUT_MINUTES:
        yield Issue(f"{path}.timeoutInMinutes", f"must be between 1 and {MAX_TIMEOUT_MINUTES}")
    if seconds is not None and not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
        yield Issue(f"{path}.timeoutInSeconds", f"must be between 1 and {MAX_TIMEOUT_SECONDS}")
    if minutes is not None and seconds is not None:
        yield Issue(
            f"{path}.timeoutInSeconds", "give either timeoutInMinutes or timeoutInSeconds, not both"
        )


# Artifacts and namespaces ---------------------------------------------------------------------


def _artifact_rules(plan: _Plan) -> Iterator[Issue]:
    produced: dict[str, _Place] = {}
    for place in plan.places:
        for o, output in enumerate(place.action.output_artifacts):
            path = f"{place.path}.outputArtifacts[{o}].name"
            yield from _named(path, output.name, ARTIFACT_NAME)
            first = produced.setdefault(output.name, place)
            if first is not place or _produced_twice(place.action, output.name, o):
                yield Issue(
                    path,
                    f"duplicate output artifact name {output.name!r} "
                    f"(also produced by {first.describe()})",
                )
    for place in plan.places:
        for i, artifact in enumerate(place.action.input_artifacts):
            path = f"{place.path}.inputArtifacts[{i}].name"
            yield from _named(path, artifact.name, ARTIFACT_NAME)
            producers = plan.producers(artifact.name)
            if not any(p.runs_before(place) for p in producers):
                rule = (
                    f"input artifact {artifact.name!r} is not produced by an earlier action "
                    "(an earlier stage, or a lower runOrder in this stage)"
                )
                if producers:
                    rule += f"; {producers[0].describe()} produces it but does not run earlier"
                yield Issue(path, rule)


def _produced_twice(action: ActionDeclaration, name: str, index: int) -> bool:
    return any(o.name == name for o in action.output_artifacts[:index])


def _namespace_rules(plan: _Plan) -> Iterator[Issue]:
    artifacts = {o.name for p in plan.places for o in p.action.output_artifacts}
    seen: dict[str, _Place] = {}
    for place in plan.places:
        namespace = place.action.namespace
        if namespace is None:
            continue
        path = f"{place.path}.namespace"
        yield from _named(path, namespace, NAMESPACE)
        if namespace in RESERVED_NAMESPACES:
            yield Issue(path, f"namespace {namespace!r} is reserved")
        if namespace in seen:
            first = seen[namespace].describe()
            yield Issue(path, f"duplicate namespace {namespace!r} (also declared by {first})")
        seen.setdefault(namespace, place)
        if namespace in artifacts:
            yield Issue(path, f"namespace {namespace!r} must not equal an artifact name")


# Variable references --------------------------------------------------------------------------


def _texts(place: _Place) -> Iterator[tuple[str, str]]:
    """Every (path, text) of an action where CodePipeline resolves #{...} references."""
    action, path = place.action, place.path
    for key, value in action.configuration.items():
        yield f"{path}.configuration.{key}", value
    for c, command in enumerate(action.commands or ()):
        yield f"{path}.commands[{c}]", command
    for e, variable in enumerate(action.environment_variables or ()):
        yield f"{path}.environmentVariables[{e}].value", variable.value


def _reference_rules(pipeline: PipelineDeclaration, plan: _Plan) -> Iterator[Issue]:
    declared = {v.name for v in pipeline.variables or ()}
    for place in plan.places:
        for path, text in _texts(place):
            for ref in find_references(text):
                problem = _unresolvable(ref.namespace, ref.name, place, plan, declared)
                if problem:
                    yield Issue(path, f"{ref}: {problem}")


def _unresolvable(
    namespace: str, name: str, place: _Place, plan: _Plan, declared: set[str]
) -> str | None:
    """Why ``#{namespace.name}`` used by ``place`` cannot be resolved, or None when it can."""
    if namespace == CODEPIPELINE_NAMESPACE:
        if name in CODEPIPELINE_VARIABLES:
            return None
        return f"the codepipeline namespace has only {', '.join(sorted(CODEPIPELINE_VARIABLES))}"
    if namespace == PIPELINE_VARIABLES_NAMESPACE:
        return None if name in declared else f"no pipeline variable {name!r} is declared"
    owners = plan.declaring(namespace)
    if not owners:
        return f"no action declares namespace {namespace!r}"
    owner = owners[0]
    if not owner.runs_before(place):
        return (
            f"namespace {namespace!r} belongs to {owner.describe()}, which does not run before "
            "this action (it must be in an earlier stage, or at a lower runOrder in this stage)"
        )
    known = known_output_variables(owner.action)
    if known is not None and name not in known:
        exported = ", ".join(sorted(known)) or "none"
        return f"{owner.describe()} does not export {name!r} (it exports: {exported})"
    return None


# Triggers ------------------------------------------------------------------------------------


def _trigger_rules(pipeline: PipelineDeclaration, plan: _Plan) -> Iterator[Issue]:
    triggers = pipeline.triggers or []
    yield from _at_most("triggers", triggers, MAX_TRIGGERS, "triggers")
    sources = {p.action.name for p in plan.places if p.action.is_source}
    seen: set[str] = set()
    for t, trigger in enumerate(triggers):
        path = f"triggers[{t}].gitConfiguration"
        git = trigger.git_configuration
        name = git.source_action_name
        if name not in sources:
            yield Issue(
                f"{path}.sourceActionName", f"{name!r} names no source action of the pipeline"
            )
        elif name in seen:
            yield Issue(f"{path}.sourceActionName", f"source action {name!r} already has a trigger")
        seen.add(name)
        yield from _at_most(f"{path}.push", git.push, MAX_GIT_FILTERS, "push filters")
        yield from _at_most(
            f"{path}.pullRequest", git.pull_request, MAX_GIT_FILTERS, "pullRequest filters"
        )
        for f, push in enumerate(git.push or ()):
            yield from _filter_rules(f"{path}.push[{f}].tags", push.tags, tags=True)
            yield from _filter_rules(f"{path}.push[{f}].branches", push.branches)
            yield from _filter_rules(f"{path}.push[{f}].filePaths", push.file_paths)
        for f, pull in enumerate(git.pull_request or ()):
            yield from _filter_rules(f"{path}.pullRequest[{f}].branches", pull.branches)
            yield from _filter_rules(f"{path}.pullRequest[{f}].filePaths", pull.file_paths)


def _filter_rules(path: str, criteria: GitFilter | None, *, tags: bool = False) -> Iterator[Issue]:
    if criteria is None:
        return
    for part, patterns in (("includes", criteria.includes), ("excludes", criteria.excludes)):
        yield from _at_most(f"{path}.{part}", patterns, MAX_FILTER_PATTERNS, "patterns")
        for p, pattern in enumerate(patterns or ()):
            if tags and len(pattern) > MAX_TAG_PATTERN:
                yield Issue(f"{path}.{part}[{p}]", f"must be at most {MAX_TAG_PATTERN} characters")


# Beside the pipeline -----------------------------------------------------------------------------


def _document_rules(document: PipelineDocument) -> Iterator[Issue]:
    stages = [s.name for s in document.pipeline.stages]
    for d, transition in enumerate(document.disabled_inbound_transitions):
        path = f"disabledInboundTransitions[{d}]"
        if transition.stage_name not in stages:
            yield Issue(
                f"{path}.stageName", f"{transition.stage_name!r} names no stage of the pipeline"
            )
        elif transition.stage_name == stages[0]:
            yield Issue(f"{path}.stageName", "the first stage has no inbound transition")
        if not 1 <= len(transition.reason) <= MAX_TRANSITION_REASON:
            yield Issue(f"{path}.reason", f"must be 1 to {MAX_TRANSITION_REASON} characters")
    yield from _at_most("tags", document.tags, MAX_TAGS, "tags")
    for t, tag in enumerate(document.tags):
        if not 1 <= len(tag.key) <= MAX_TAG_KEY:
            yield Issue(f"tags[{t}].key", f"must be 1 to {MAX_TAG_KEY} characters")
        if len(tag.value) > MAX_TAG_VALUE:
            yield Issue(f"tags[{t}].value", f"must be at most {MAX_TAG_VALUE} characters")
    for name, project in document.build_projects.items():
        path = f"buildProjects.{name}"
        yield from _named(f"{path}.name", project.name, PROJECT_NAME)
    yield from _project_references(document)


def _project_references(document: PipelineDocument) -> Iterator[Issue]:
    """A CodeBuild action's ProjectName must name a project declared beside the pipeline."""
    declared = document.build_projects
    for place in _Plan.of(document.pipeline).places:
        _, owner, provider, _ = place.action.action_type_id.key()
        project = place.action.configuration.get("ProjectName")
        if (owner, provider) != ("AWS", "CodeBuild") or project is None or project in declared:
            continue
        known = ", ".join(sorted(declared)) or "none"
        yield Issue(
            f"{place.path}.configuration.ProjectName",
            f"build project {project!r} is not declared (declared: {known})",
        )
