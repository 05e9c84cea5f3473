"""CloudFormation templates: the template shape (its one pipeline resource and its build
projects) and the intrinsic functions caravan resolves without deploying.

``Ref`` to a template parameter with a Default, to a build project or to the pipeline resolves
to that literal, as do ``Fn::Sub`` and ``Fn::Join`` over such values; any other intrinsic is left
for the checker to report (``caravan.model.declaration_checker``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from caravan.errors import Issue
from caravan.model.document_parts import DocumentParts, as_dict, properties_parts

PIPELINE_RESOURCE = "AWS::CodePipeline::Pipeline"
PROJECT_RESOURCE = "AWS::CodeBuild::Project"


def template_parts(template: dict[str, Any]) -> DocumentParts:
    resources = template.get("Resources")
    if not isinstance(resources, dict):
        return DocumentParts(
            pipeline=None, issues=[Issue("Resources", "must be a mapping of resources")]
        )
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
        return DocumentParts(pipeline=None, issues=[Issue("Resources", rule)])
    logical_id, resource = pipelines[0]
    props = dict(as_dict(resource.get("Properties")))
    props.setdefault("Name", logical_id)
    parts = properties_parts(props)
    parts.refs = _template_refs(template, by_type)
    for project_id, project in by_type.get(PROJECT_RESOURCE, []):
        pprops = as_dict(project.get("Properties"))
        body = {"name": pprops.get("Name", project_id)}
        body.update({k: pprops[k] for k in ("Source", "Environment") if k in pprops})
        parts.projects.append((f"Resources.{project_id}.Properties", body))
    return parts


def _template_refs(
    template: dict[str, Any], by_type: Mapping[str, list[tuple[str, dict[str, Any]]]]
) -> dict[str, str]:
    """What ``Ref`` resolves to without deploying: parameter defaults, project/pipeline names."""
    refs: dict[str, str] = {}
    for name, parameter in as_dict(template.get("Parameters")).items():
        default = as_dict(parameter).get("Default")
        if isinstance(default, str | int | float) and not isinstance(default, bool):
            refs[str(name)] = str(default)
    for resource_type in (PIPELINE_RESOURCE, PROJECT_RESOURCE):
        for logical_id, resource in by_type.get(resource_type, []):
            literal = literal_of(as_dict(resource.get("Properties")).get("Name", logical_id), refs)
            if literal is not None:
                refs[logical_id] = literal
    return refs


# CloudFormation intrinsic functions ------------------------------------------------------------

PLACEHOLDER = "<CloudFormation intrinsic>"
_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")
RESOLVABLE = (
    "caravan resolves only Ref to a parameter with a Default, a build project or the pipeline"
)


def intrinsic_name(value: dict[Any, Any]) -> str | None:
    if len(value) == 1:
        (key,) = value
        if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
            return str(key)
    return None


def evaluate_intrinsic(function: str, argument: Any, refs: Mapping[str, str]) -> str | None:
    """The literal an intrinsic function stands for, or None when it needs a real stack."""
    if function == "Ref":
        return refs.get(argument) if isinstance(argument, str) else None
    if function == "Fn::Sub":
        if isinstance(argument, str):
            return _substitute(argument, refs)
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            names = dict(refs)
            for key, value in argument[1].items():
                literal = literal_of(value, refs)
                if literal is None:
                    return None
                names[str(key)] = literal
            return _substitute(argument[0], names) if isinstance(argument[0], str) else None
    if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
        delimiter, items = argument
        if isinstance(delimiter, str) and isinstance(items, list):
            literals = [literal_of(item, refs) for item in items]
            if all(item is not None for item in literals):
                return delimiter.join(item for item in literals if item is not None)
    return None


def literal_of(value: Any, refs: Mapping[str, str]) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and (function := intrinsic_name(value)) is not None:
        return evaluate_intrinsic(function, value[function], refs)
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
