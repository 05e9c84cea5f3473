"""Declaration text -> ``PipelineDocument``: parse JSON or YAML, find the pipeline, check it.

Three shapes are read (codepipeline.md §1.1):

1. CreatePipeline input / GetPipeline output: ``{"pipeline": {...}, "tags": [...],
   "metadata": {...}}`` plus caravan's ``buildProjects`` and ``disabledInboundTransitions``.
2. A bare pipeline declaration ``{name, stages, ...}``.
3. A CloudFormation template: its one ``AWS::CodePipeline::Pipeline`` resource, and its
   ``AWS::CodeBuild::Project`` resources as build projects.

Keys may be camelCase or PascalCase. CloudFormation short-form tags (``!Ref``, ``!Sub``, ...)
load as their long form. ``Ref`` to a template parameter with a Default, to a build project or
to the pipeline resolves to that literal, as do ``Fn::Sub`` and ``Fn::Join`` over such values;
any other intrinsic function left where a value is needed is an issue at its path.

Every problem is collected (shape errors, then semantic rules from ``caravan.model.validation``)
and raised as one ``DeclarationError`` whose issue paths are camelCase, relative to the
pipeline.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel, to_pascal

from caravan.errors import DeclarationError, InvalidInputError, Issue
from caravan.model.declaration import (
    BuildProject,
    DeclarationModel,
    DisabledTransition,
    PipelineDeclaration,
    PipelineDocument,
    Tag,
)
from caravan.model.validation import validate

PIPELINE_RESOURCE = "AWS::CodePipeline::Pipeline"
PROJECT_RESOURCE = "AWS::CodeBuild::Project"
REQUEST_KEYS = ("pipeline", "tags", "metadata", "buildProjects", "disabledInboundTransitions")
TRANSITIONS = "disabledInboundTransitions"
CFN_TRANSITIONS = "disableInboundStageTransitions"

_Loc = tuple[str | int, ...]
T = TypeVar("T")


def load_file(
    path: str | os.PathLike[str], *, allow_extra_top_level: bool = False
) -> PipelineDocument:
    """Read and check the declaration file at ``path``."""
    source = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise InvalidInputError(
            f"cannot read pipeline declaration {source}: {error.strerror or error}"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        issue = Issue("", f"the file is not UTF-8 text (byte {error.start})")
        raise DeclarationError([issue], source=source) from None
    return load_document(text, source=source, allow_extra_top_level=allow_extra_top_level)


def load_document(
    text: str, *, source: str | None = None, allow_extra_top_level: bool = False
) -> PipelineDocument:
    """Parse and check a declaration (JSON or YAML text)."""
    return load_data(
        parse_text(text, source=source), source=source, allow_extra_top_level=allow_extra_top_level
    )


def load_data(
    data: Any, *, source: str | None = None, allow_extra_top_level: bool = False
) -> PipelineDocument:
    """Check an already parsed declaration (any of the three shapes)."""
    if not isinstance(data, dict):
        issue = Issue("", "the document must be a mapping (a JSON object or a YAML mapping)")
        raise DeclarationError([issue], source=source)
    if "Resources" in data:
        parts = _template_parts(data)
    elif "pipeline" in data:
        parts = _request_parts(data, allow_extra_top_level)
    else:
        parts = _properties_parts(dict(data))
    try:
        return _assemble(parts, source)
    except (_TooLarge, RecursionError):
        issue = Issue("", "the document is too large or refers to itself (YAML aliases)")
        raise DeclarationError([issue], source=source) from None


# Text ----------------------------------------------------------------------------------------


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def parse_text(text: str, *, source: str | None = None) -> Any:
    """JSON or YAML text -> data; a syntax error raises ``DeclarationError`` naming its line."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise DeclarationError([Issue("", "the document is empty")], source=source)
    json_issue: Issue | None = None
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text, object_pairs_hook=_no_duplicates)
        except _DuplicateKeyError as error:
            issue = Issue("", f"duplicate key {error.args[0]!r}")
            raise DeclarationError([issue], source=source) from None
        except json.JSONDecodeError as error:
            # Flow-style YAML also starts with "{"; JSON's message is the precise one otherwise.
            json_issue = Issue(f"line {error.lineno}, column {error.colno}", error.msg)
    try:
        return yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise DeclarationError([json_issue or _yaml_issue(error)], source=source) from None


def _yaml_issue(error: yaml.YAMLError) -> Issue:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        if error.context and error.problem:
            problem = f"{problem} ({error.context})"
        if mark is not None:
            return Issue(f"line {mark.line + 1}, column {mark.column + 1}", problem)
        return Issue("", problem)
    return Issue("", str(error))


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short-form tags and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # complex keys are not ours to judge
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any = None
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _short_form)


# Shapes --------------------------------------------------------------------------------------


@dataclass
class _Parts:
    """The pieces of a document before checking, each with the path prefix of its issues."""

    pipeline: Any
    tags: Any = None
    tags_path: str = "tags"
    transitions: Any = None
    transitions_path: str = TRANSITIONS
    projects: list[tuple[str, Any]] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # CloudFormation Ref -> literal value
    issues: list[Issue] = field(default_factory=list)


def _request_parts(data: dict[str, Any], allow_extra_top_level: bool) -> _Parts:
    parts = _Parts(pipeline=data["pipeline"], tags=data.get("tags"))
    parts.transitions = data.get(TRANSITIONS)
    projects = data.get("buildProjects")
    if isinstance(projects, dict):
        parts.projects = [
            (f"buildProjects.{k}", {"name": k, **_as_dict(v)}) for k, v in projects.items()
        ]
    elif isinstance(projects, list):
        parts.projects = [(f"buildProjects[{i}]", p) for i, p in enumerate(projects)]
    elif projects is not None:
        parts.issues.append(Issue("buildProjects", "must be a list of build projects"))
    if not allow_extra_top_level:
        expected = ", ".join(REQUEST_KEYS)
        for key in data:
            if key not in REQUEST_KEYS:
                parts.issues.append(Issue(str(key), f"unknown top-level key (expected {expected})"))
    return parts


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _properties_parts(props: dict[str, Any]) -> _Parts:
    """A pipeline as CloudFormation's Properties (or a bare declaration), whose
    CloudFormation-only keys are taken out."""
    props.pop("RestartExecutionOnUpdate", None)  # no meaning outside CloudFormation
    parts = _Parts(pipeline=props, tags=props.pop("Tags", None))
    if "DisableInboundStageTransitions" in props:
        parts.transitions = props.pop("DisableInboundStageTransitions")
        parts.transitions_path = CFN_TRANSITIONS
    return parts


def _template_parts(template: dict[str, Any]) -> _Parts:
    resources = template.get("Resources")
    if not isinstance(resources, dict):
        return _Parts(pipeline=None, issues=[Issue("Resources", "must be a mapping of resources")])
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for logical_id, resource in resources.items():
        if isinstance(resource, dict):
            by_type.setdefault(str(resource.get("Type")), []).append((str(logical_id), resource))
    pipelines = by_type.get(PIPELINE_RESOURCE, [])
    if len(pipelines) != 1:
        found = ", ".join(lid for lid, _ in pipelines) or "none"
        rule = (
            f"the template must declare exactly one {PIPELINE_RESOURCE} resource (found: {found})"
        )
        return _Parts(pipeline=None, issues=[Issue("Resources", rule)])
    logical_id, resource = pipelines[0]
    props = dict(_as_dict(resource.get("Properties")))
    props.setdefault("Name", logical_id)
    parts = _properties_parts(props)
    parts.refs = _template_refs(template, by_type)
    for project_id, project in by_type.get(PROJECT_RESOURCE, []):
        pprops = _as_dict(project.get("Properties"))
        body = {"name": pprops.get("Name", project_id)}
        body.update({k: pprops[k] for k in ("Source", "Environment") if k in pprops})
        parts.projects.append((f"Resources.{project_id}.Properties", body))
    return parts


def _template_refs(
    template: dict[str, Any], by_type: Mapping[str, list[tuple[str, dict[str, Any]]]]
) -> dict[str, str]:
    """What ``Ref`` resolves to without deploying: parameter defaults, project/pipeline names."""
    refs: dict[str, str] = {}
    for name, parameter in _as_dict(template.get("Parameters")).items():
        default = _as_dict(parameter).get("Default")
        if isinstance(default, str | int | float) and not isinstance(default, bool):
            refs[str(name)] = str(default)
    for resource_type in (PIPELINE_RESOURCE, PROJECT_RESOURCE):
        for logical_id, resource in by_type.get(resource_type, []):
            literal = _literal(_as_dict(resource.get("Properties")).get("Name", logical_id), refs)
            if literal is not None:
                refs[logical_id] = literal
    return refs


# CloudFormation intrinsic functions ------------------------------------------------------------

_PLACEHOLDER = "<CloudFormation intrinsic>"
_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")
_RESOLVABLE = (
    "caravan resolves only Ref to a parameter with a Default, a build project or the pipeline"
)


def _intrinsic_name(value: dict[Any, Any]) -> str | None:
    if len(value) == 1:
        (key,) = value
        if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
            return str(key)
    return None


def _evaluate(function: str, argument: Any, refs: Mapping[str, str]) -> str | None:
    """The literal an intrinsic function stands for, or None when it needs a real stack."""
    if function == "Ref":
        return refs.get(argument) if isinstance(argument, str) else None
    if function == "Fn::Sub":
        if isinstance(argument, str):
            return _substitute(argument, refs)
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            names = dict(refs)
            for key, value in argument[1].items():
                literal = _literal(value, refs)
                if literal is None:
                    return None
                names[str(key)] = literal
            return _substitute(argument[0], names) if isinstance(argument[0], str) else None
    if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
        delimiter, items = argument
        if isinstance(delimiter, str) and isinstance(items, list):
            literals = [_literal(item, refs) for item in items]
            if all(item is not None for item in literals):
                return delimiter.join(item for item in literals if item is not None)
    return None


def _literal(value: Any, refs: Mapping[str, str]) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and (function := _intrinsic_name(value)) is not None:
        return _evaluate(function, value[function], refs)
    return None


def _substitute(template: str, names: Mapping[str, str]) -> str | None:
    unresolved: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # ${!Literal} is an escaped, literal ${Literal}
            return "${" + match.group(2) + "}"
        value = names.get(match.group(2))
        if value is None:
            unresolved.append(match.group(2))
            return match.group(0)
        return value

    result = _SUB_VARIABLE.sub(replace, template)
    return None if unresolved else result


# Issue paths -----------------------------------------------------------------------------------


def _camel_names() -> dict[str, str]:
    """Every spelling of every declaration field -> its camelCase key."""
    names: dict[str, str] = {}
    pending: list[type[BaseModel]] = [DeclarationModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        for name in model.model_fields:
            names[name] = names[to_pascal(name)] = names[to_camel(name)] = to_camel(name)
    return names


_CAMEL = _camel_names()
_FREE_FORM = frozenset({"configuration"})  # maps whose keys are the user's own


def _path(loc: Iterable[str | int], prefix: str = "") -> str:
    """A pydantic location as a camelCase path: ``stages[1].actions[0].runOrder``."""
    path, free = prefix, False
    for part in loc:
        if isinstance(part, int):
            path, free = f"{path}[{part}]", False
            continue
        if part == "[key]":
            continue
        name = part if free else _CAMEL.get(part, part)
        path = f"{path}.{name}" if path else name
        free = not free and name in _FREE_FORM
    return path


_PLAIN_RULES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _rule(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in _PLAIN_RULES:
        return _PLAIN_RULES[kind]
    if kind in ("literal_error", "enum"):
        return f"must be {error.get('ctx', {}).get('expected', 'one of the allowed values')}"
    return str(error["msg"]).removeprefix("Value error, ")


def _covers(outer: str, path: str) -> bool:
    return path == outer or path.startswith((f"{outer}.", f"{outer}["))


# Checking --------------------------------------------------------------------------------------


# A pipeline at AWS's limits (500 actions, 50 commands each, ...) has some 50,000 values; far
# more is a YAML alias bomb, refused before it takes time or memory.
MAX_NODES = 200_000


class _TooLarge(Exception):
    pass


class _Checker:
    """Validates the parts of one document, collecting every issue on the way."""

    def __init__(self, refs: Mapping[str, str]) -> None:
        self.refs = refs
        self.issues: list[Issue] = []
        self.intrinsic_paths: list[str] = []
        self.intrinsic_issues: list[Issue] = []
        self.nodes = 0

    def resolve(self, value: Any, loc: _Loc, prefix: str) -> Any:
        """``value`` with CloudFormation intrinsics replaced by their literal (or a placeholder,
        recording an issue, when they have none)."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge
        if isinstance(value, dict):
            function = _intrinsic_name(value)
            if function is None:
                return {k: self.resolve(v, (*loc, k), prefix) for k, v in value.items()}
            literal = _evaluate(function, value[function], self.refs)
            if literal is not None:
                return literal
            path = _path(loc, prefix)
            self.intrinsic_paths.append(path)
            rule = f"CloudFormation intrinsic {function} is not supported here; use a literal value"
            if function in ("Ref", "Fn::Sub", "Fn::Join"):
                rule += f" ({_RESOLVABLE})"
            self.intrinsic_issues.append(Issue(path, rule))
            self.issues.append(self.intrinsic_issues[-1])
            return _PLACEHOLDER
        if isinstance(value, list):
            return [self.resolve(item, (*loc, i), prefix) for i, item in enumerate(value)]
        return value

    def check(self, adapter: TypeAdapter[T], data: Any, prefix: str) -> T | None:
        """Validate ``data``; on shape errors record them and, when they are only unknown keys
        or leftovers of intrinsics, validate again without those keys so the semantic rules
        can still run."""
        data = self.resolve(data, (), prefix)
        try:
            return adapter.validate_python(data)
        except ValidationError as error:
            errors = error.errors(include_url=False)
        self.issues.extend(Issue(_path(e["loc"], prefix), _rule(e)) for e in errors)
        removable = [
            e["loc"]
            for e in errors
            if e["loc"]
            and isinstance(e["loc"][-1], str)
            and (e["type"] == "extra_forbidden" or self.suppressed(_path(e["loc"], prefix)))
        ]
        if len(removable) < len(errors):
            return None
        try:
            return adapter.validate_python(_without(data, removable))
        except ValidationError:
            return None

    def suppressed(self, path: str) -> bool:
        """An issue caused by an intrinsic's placeholder repeats the intrinsic's own issue."""
        return any(_covers(outer, path) for outer in self.intrinsic_paths)

    def final(self, issues: Iterable[Issue]) -> list[Issue]:
        result: list[Issue] = []
        for issue in issues:
            keep = issue in self.intrinsic_issues or not self.suppressed(issue.path)
            if keep and issue not in result:
                result.append(issue)
        return result


def _without(data: Any, locations: Sequence[_Loc]) -> Any:
    """A copy of ``data`` without the keys at ``locations``."""
    copy = json.loads(json.dumps(data, default=str))
    for loc in locations:
        parent = copy
        try:
            for part in loc[:-1]:
                parent = parent[part]
            del parent[loc[-1]]
        except (KeyError, IndexError, TypeError):
            continue
    return copy


_TAGS: TypeAdapter[list[Tag]] = TypeAdapter(list[Tag])
_TRANSITIONS: TypeAdapter[list[DisabledTransition]] = TypeAdapter(list[DisabledTransition])
_PIPELINE: TypeAdapter[PipelineDeclaration] = TypeAdapter(PipelineDeclaration)
_PROJECT: TypeAdapter[BuildProject] = TypeAdapter(BuildProject)


def _assemble(parts: _Parts, source: str | None) -> PipelineDocument:
    if parts.pipeline is None:  # no pipeline found: nothing more to check
        raise DeclarationError(parts.issues, source=source)
    if not isinstance(parts.pipeline, dict):
        parts.issues.append(Issue("pipeline", "must be a mapping (a pipeline declaration)"))
        raise DeclarationError(parts.issues, source=source)
    checker = _Checker(parts.refs)
    pipeline = checker.check(_PIPELINE, parts.pipeline, "")
    tags = checker.check(_TAGS, parts.tags or [], parts.tags_path)
    transitions = checker.check(_TRANSITIONS, parts.transitions or [], parts.transitions_path)
    projects: dict[str, BuildProject] = {}
    prefixes: dict[str, str] = {}
    for prefix, data in parts.projects:
        project = checker.check(_PROJECT, data, prefix)
        if project is None:
            # Stand in for the broken project so actions naming it are not told it is missing.
            name = _literal(_as_dict(data).get("name", _as_dict(data).get("Name")), parts.refs)
            if name is not None:
                projects.setdefault(name, BuildProject.model_construct(name=name))
            continue
        if project.name in projects:
            checker.issues.append(
                Issue(f"{prefix}.name", f"duplicate build project {project.name!r}")
            )
        projects.setdefault(project.name, project)
        prefixes.setdefault(project.name, prefix)
    issues = parts.issues + checker.issues
    document: PipelineDocument | None = None
    if pipeline is not None:
        document = PipelineDocument(
            pipeline=pipeline,
            build_projects=projects,
            tags=tags or [],
            disabled_inbound_transitions=transitions or [],
            source=source,
        )
        issues.extend(_relocate(i, parts, prefixes) for i in validate(document))
    issues = checker.final(issues)
    if issues or document is None:
        raise DeclarationError(issues, source=source)
    return document


def _relocate(issue: Issue, parts: _Parts, prefixes: Mapping[str, str]) -> Issue:
    """Point a document-level issue at the place the user wrote that part."""
    if _covers(TRANSITIONS, issue.path):
        return Issue(parts.transitions_path + issue.path[len(TRANSITIONS) :], issue.rule)
    for name, prefix in prefixes.items():
        head = f"buildProjects.{name}"
        if _covers(head, issue.path):
            return Issue(prefix + issue.path[len(head) :], issue.rule)
    return issue
