"""Variables: ``#{namespace.name}`` references, what each namespace holds, and their resolution.

CodePipeline resolves every reference in an action's configuration before the action starts
(§1.11). Namespaces:

- ``codepipeline``: values of the execution. ``PipelineExecutionId`` is CodePipeline's;
  ``PipelineName`` and ``PipelineExecutionStartTime`` (ISO 8601, UTC) are caravan extras.
- ``variables``: the pipeline-level variables (V2), with per-run overrides.
- any other name: the output variables of the action that declares that ``namespace``.

A reference is ``#{`` namespace ``.`` name ``}``, each part ``[A-Za-z0-9@\\-_]+``. Text that does
not match that shape (``#{oops}``, ``#{a.b.c}``) is left as it is, as CodePipeline does.
Substituted values are not scanned again, so a value containing ``#{...}`` stays literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from caravan.errors import VariableError
from caravan.model.declaration import ActionDeclaration

CODEPIPELINE_NAMESPACE = "codepipeline"
PIPELINE_VARIABLES_NAMESPACE = "variables"
RESERVED_NAMESPACES = frozenset({CODEPIPELINE_NAMESPACE, PIPELINE_VARIABLES_NAMESPACE})

# PipelineExecutionId is CodePipeline's implicit variable; the other two are caravan extras.
CODEPIPELINE_VARIABLES = frozenset(
    {"PipelineExecutionId", "PipelineName", "PipelineExecutionStartTime"}
)

# What source actions export, per (category, owner, provider). caravan's git source provider
# emits all of these (FullRepositoryId as well as AWS's FullRepositoryName for connections).
_GIT_SOURCE_VARIABLES = frozenset(
    {
        "CommitId",
        "BranchName",
        "CommitMessage",
        "AuthorDate",
        "CommitterDate",
        "RepositoryName",
        "FullRepositoryName",
        "FullRepositoryId",
        "ConnectionArn",
        "ProviderType",
    }
)
SOURCE_VARIABLES: Mapping[tuple[str, str, str], frozenset[str]] = {
    ("Source", "Custom", "Git"): _GIT_SOURCE_VARIABLES,
    ("Source", "AWS", "CodeStarSourceConnection"): _GIT_SOURCE_VARIABLES,
    ("Source", "ThirdParty", "GitHub"): _GIT_SOURCE_VARIABLES,
    ("Source", "AWS", "CodeCommit"): _GIT_SOURCE_VARIABLES,
}

_PART = r"[A-Za-z0-9@\-_]+"
_REFERENCE = re.compile(rf"#\{{({_PART})\.({_PART})\}}")


@dataclass(frozen=True)
class VariableRef:
    """One ``#{namespace.name}`` found in a text, at ``text[start:end]``."""

    namespace: str
    name: str
    start: int
    end: int

    def __str__(self) -> str:
        return f"#{{{self.namespace}.{self.name}}}"


def find_references(text: str) -> list[VariableRef]:
    """Every well-formed reference in ``text``, in order."""
    return [
        VariableRef(m.group(1), m.group(2), m.start(), m.end()) for m in _REFERENCE.finditer(text)
    ]


def _lookup(ref: VariableRef, values: Mapping[str, Mapping[str, str]]) -> str | None:
    namespace = values.get(ref.namespace)
    if namespace is None:
        return None
    return namespace.get(ref.name)


def _missing_reason(ref: VariableRef, values: Mapping[str, Mapping[str, str]]) -> str:
    namespace = values.get(ref.namespace)
    if namespace is None:
        return f"{ref} cannot be resolved: no namespace {ref.namespace!r} has values"
    known = ", ".join(sorted(namespace)) or "none"
    return (
        f"{ref} cannot be resolved: namespace {ref.namespace!r} has no variable {ref.name!r} "
        f"(it has: {known})"
    )


def _substitute(text: str, values: Mapping[str, Mapping[str, str]]) -> tuple[str, list[str]]:
    """``text`` with every resolvable reference replaced, and the reasons for the others."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        ref = VariableRef(match.group(1), match.group(2), match.start(), match.end())
        value = _lookup(ref, values)
        if value is None:
            missing.append(_missing_reason(ref, values))
            return match.group(0)
        return value

    return _REFERENCE.sub(replace, text), missing


def resolve_text(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """``text`` with each reference replaced by ``values[namespace][name]``.

    Raises ``VariableError`` naming every reference that has no value.
    """
    resolved, missing = _substitute(text, values)
    if missing:
        raise VariableError("; ".join(missing))
    return resolved


def resolve_mapping(
    mapping: Mapping[str, str], values: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """Every value of ``mapping`` resolved; keys are kept. Raises ``VariableError`` naming each
    key whose value holds an unresolvable reference."""
    resolved: dict[str, str] = {}
    problems: list[str] = []
    for key, text in mapping.items():
        resolved[key], missing = _substitute(text, values)
        problems.extend(f"{key}: {reason}" for reason in missing)
    if problems:
        raise VariableError("; ".join(problems))
    return resolved


def known_output_variables(action: ActionDeclaration) -> frozenset[str] | None:
    """The names of the variables ``action`` exports when they are known before it runs;
    None when only the run can tell (Lambda, CodeBuild, custom actions, ...)."""
    if action.is_commands:
        return frozenset(action.output_variables or ())
    category, owner, provider, _ = action.action_type_id.key()
    return SOURCE_VARIABLES.get((category, owner, provider))
