"""What a succeeded job leaves behind: the action's summary and ids, its output artifacts'
revisions in the execution, its output variables under its namespace, and a source action's
revision (§1.11, §1.14)."""

from __future__ import annotations

from caravan.actions.base import JobSucceeded
from caravan.model.records import ActionRecord, ArtifactRef, ExecutionRecord


def record_details(action: ActionRecord, result: JobSucceeded) -> None:
    """executionDetails: kept on every success, continuations included."""
    if result.summary is not None:
        action.summary = result.summary
    if result.external_execution_id is not None:
        action.external_execution_id = result.external_execution_id
    if result.percent_complete is not None:
        action.percent_complete = result.percent_complete


def record_outputs(
    record: ExecutionRecord, action: ActionRecord, result: JobSucceeded, *, now: float
) -> None:
    """The final success: artifacts, output variables and source revision enter ``record``."""
    for out in action.output_artifacts:
        revision = result.artifact_revisions.get(out["name"])
        out["revision"] = revision
        record.artifacts[out["name"]] = ArtifactRef(
            name=out["name"],
            bucket=out["bucket"],
            key=out["key"],
            revision=revision,
            summary=result.summary,
            created=now,
        ).to_doc()
    action.output_variables = dict(result.output_variables)
    if action.namespace:
        record.namespaces[action.namespace] = dict(result.output_variables)
    if result.current_revision is not None:
        record.source_revisions[action.action] = str(result.current_revision.get("revision", ""))
        summary = result.current_revision.get("revisionSummary")
        if summary:
            action.summary = action.summary or summary
    record.updated = now
