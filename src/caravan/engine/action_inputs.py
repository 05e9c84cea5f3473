"""What an action starts with: its configuration with every ``#{namespace.name}`` resolved,
its input artifacts' locations, and fresh locations for its outputs (§1.11, §1.14)."""

from __future__ import annotations

import secrets

from caravan.errors import VariableError
from caravan.model.declaration import ActionDeclaration, PipelineDeclaration
from caravan.model.records import ActionRecord, ExecutionRecord
from caravan.model.variables import resolve_mapping, resolve_text


def variable_values(record: ExecutionRecord) -> dict[str, dict[str, str]]:
    """Every namespace an action of ``record`` may reference, with its values."""
    values: dict[str, dict[str, str]] = {
        "codepipeline": {
            "PipelineExecutionId": record.id,
            "PipelineName": record.pipeline,
            "PipelineExecutionStartTime": f"{record.started:.3f}",
        },
        "variables": dict(record.variables),
    }
    values.update(record.namespaces)
    return values


def artifact_bucket(decl: PipelineDeclaration, default: str) -> str:
    return decl.artifact_store.location if decl.artifact_store is not None else default


def prepare_action(
    record: ExecutionRecord, decl: ActionDeclaration, action: ActionRecord, *, bucket: str
) -> str | None:
    """Fill ``action``'s resolved configuration and artifact locations; a problem that must
    fail the action is returned as its message."""
    try:
        action.resolved_configuration = resolve_mapping(
            dict(decl.configuration), variable_values(record)
        )
    except VariableError as error:
        return str(error)
    for artifact in decl.input_artifacts:
        ref = record.artifacts.get(artifact.name)
        if ref is None:
            return (
                f"input artifact {artifact.name!r} was not produced: the action that "
                "declares it as output did not store it"
            )
        action.input_artifacts.append(dict(ref))
    for output in decl.output_artifacts:
        # Keys shaped like CodePipeline's: <pipeline[:20]>/<artifact[:20]>/<random>.
        key = f"{record.pipeline[:20]}/{output.name[:20]}/{secrets.token_hex(4)}"
        action.output_artifacts.append(
            {"name": output.name, "bucket": bucket, "key": key, "files": output.files}
        )
    return None


def resolve_commands(
    record: ExecutionRecord, decl: ActionDeclaration
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The Commands action's commands and environment variables, resolved."""
    values = variable_values(record)
    commands = tuple(resolve_text(c, values) for c in decl.commands or ())
    env = {v.name: resolve_text(v.value, values) for v in decl.environment_variables or ()}
    return commands, env
