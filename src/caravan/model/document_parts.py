"""The document shapes before checking: a request (CreatePipeline input / GetPipeline output,
plus caravan's ``buildProjects`` and ``disabledInboundTransitions``) or a bare declaration, cut
into ``DocumentParts`` whose issue paths say where the user wrote each piece.

The CloudFormation template shape builds on ``properties_parts``; see
``caravan.model.cloudformation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caravan.errors import Issue

REQUEST_KEYS = ("pipeline", "tags", "metadata", "buildProjects", "disabledInboundTransitions")
TRANSITIONS = "disabledInboundTransitions"
CFN_TRANSITIONS = "disableInboundStageTransitions"


@dataclass
class DocumentParts:
    """The pieces of a document before checking, each with the path prefix of its issues."""

    pipeline: Any
    tags: Any = None
    tags_path: str = "tags"
    transitions: Any = None
    transitions_path: str = TRANSITIONS
    projects: list[tuple[str, Any]] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # CloudFormation Ref -> literal value
    issues: list[Issue] = field(default_factory=list)


def request_parts(data: dict[str, Any], allow_extra_top_level: bool) -> DocumentParts:
    parts = DocumentParts(pipeline=data["pipeline"], tags=data.get("tags"))
    parts.transitions = data.get(TRANSITIONS)
    projects = data.get("buildProjects")
    if isinstance(projects, dict):
        parts.projects = [
            (f"buildProjects.{k}", {"name": k, **as_dict(v)}) for k, v in projects.items()
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


def as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def properties_parts(props: dict[str, Any]) -> DocumentParts:
    """A pipeline as CloudFormation's Properties (or a bare declaration), whose
    CloudFormation-only keys are taken out."""
    props.pop("RestartExecutionOnUpdate", None)  # no meaning outside CloudFormation
    parts = DocumentParts(pipeline=props, tags=props.pop("Tags", None))
    if "DisableInboundStageTransitions" in props:
        parts.transitions = props.pop("DisableInboundStageTransitions")
        parts.transitions_path = CFN_TRANSITIONS
    return parts
