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

This module owns the entry points, the text parsing and the assembling of the checked parts;
the shapes live in ``caravan.model.document_parts`` and ``caravan.model.cloudformation``, the
checking in ``caravan.model.declaration_checker``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from caravan.errors import DeclarationError, InvalidInputError, Issue
from caravan.model.cloudformation import literal_of, template_parts
from caravan.model.declaration import (
    BuildProject,
    DisabledTransition,
    PipelineDeclaration,
    PipelineDocument,
    Tag,
)
from caravan.model.declaration_checker import Checker, TooLarge, covers
from caravan.model.document_parts import (
    TRANSITIONS,
    DocumentParts,
    as_dict,
    properties_parts,
    request_parts,
)
from caravan.model.validation import validate


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
        parts = template_parts(data)
    elif "pipeline" in data:
        parts = request_parts(data, allow_extra_top_level)
    else:
        parts = properties_parts(dict(data))
    try:
        return _assemble(parts, source)
    except (TooLarge, RecursionError):
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


# Assembling ----------------------------------------------------------------------------------


_TAGS: TypeAdapter[list[Tag]] = TypeAdapter(list[Tag])
_TRANSITIONS: TypeAdapter[list[DisabledTransition]] = TypeAdapter(list[DisabledTransition])
_PIPELINE: TypeAdapter[PipelineDeclaration] = TypeAdapter(PipelineDeclaration)
_PROJECT: TypeAdapter[BuildProject] = TypeAdapter(BuildProject)


def _assemble(parts: DocumentParts, source: str | None) -> PipelineDocument:
    if parts.pipeline is None:  # no pipeline found: nothing more to check
        raise DeclarationError(parts.issues, source=source)
    if not isinstance(parts.pipeline, dict):
        parts.issues.append(Issue("pipeline", "must be a mapping (a pipeline declaration)"))
        raise DeclarationError(parts.issues, source=source)
    checker = Checker(parts.refs)
    pipeline = checker.check(_PIPELINE, parts.pipeline, "")
    tags = checker.check(_TAGS, parts.tags or [], parts.tags_path)
    transitions = checker.check(_TRANSITIONS, parts.transitions or [], parts.transitions_path)
    projects: dict[str, BuildProject] = {}
    prefixes: dict[str, str] = {}
    for prefix, data in parts.projects:
        project = checker.check(_PROJECT, data, prefix)
        if project is None:
            # Stand in for the broken project so actions naming it are not told it is missing.
            name = literal_of(as_dict(data).get("name", as_dict(data).get("Name")), parts.refs)
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


def _relocate(issue: Issue, parts: DocumentParts, prefixes: Mapping[str, str]) -> Issue:
    """Point a document-level issue at the place the user wrote that part."""
    if covers(TRANSITIONS, issue.path):
        return Issue(parts.transitions_path + issue.path[len(TRANSITIONS) :], issue.rule)
    for name, prefix in prefixes.items():
        head = f"buildProjects.{name}"
        if covers(head, issue.path):
            return Issue(prefix + issue.path[len(head) :], issue.rule)
    return issue
