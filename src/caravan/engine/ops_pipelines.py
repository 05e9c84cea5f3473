"""Pipeline operations: CreatePipeline, UpdatePipeline, GetPipeline, ListPipelines,
DeletePipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caravan.engine.core import EngineCore
from caravan.engine.declarations import PipelineDoc
from caravan.engine.driver import CANCELLED_BY_UPDATE
from caravan.engine.ops_executions import start_execution
from caravan.engine.paging import page
from caravan.errors import InvalidInputError, PipelineNameInUseError, PipelineNotFoundError
from caravan.model import flow
from caravan.model.loader import load_data
from caravan.model.statuses import ExecutionMode, TriggerType
from caravan.store import Tx

# caravan's additions to the CreatePipeline/UpdatePipeline request.
_EXTRA_KEYS = ("declarationDir",)


def parse_request(request: dict[str, Any], *, version: int) -> tuple[PipelineDoc, list[Any]]:
    """The pipeline document of a Create/UpdatePipeline request (validated)."""
    if not isinstance(request, dict) or "pipeline" not in request:
        raise InvalidInputError("the request needs a 'pipeline' object (a pipeline declaration)")
    body = {k: v for k, v in request.items() if k not in _EXTRA_KEYS}
    document = load_data(body, source="the request")
    disabled = [
        {"stageName": d.stage_name, "reason": d.reason}
        for d in document.disabled_inbound_transitions
    ]
    declaration_dir = request.get("declarationDir")
    pdoc = PipelineDoc(
        version=version,
        declaration=document.pipeline.model_copy(update={"version": version}),
        tags=[t.model_dump(by_alias=True) for t in document.tags],
        build_projects={
            name: project.model_dump(by_alias=True, exclude_none=True)
            for name, project in document.build_projects.items()
        },
        declaration_dir=Path(declaration_dir) if declaration_dir else None,
    )
    return pdoc, disabled


async def create_pipeline(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    pdoc, disabled = parse_request(request, version=1)
    name = pdoc.name
    async with core.mutate(name) as (tx, _ch):
        if tx.pipelines.get(name) is not None:
            raise PipelineNameInUseError(f"a pipeline named {name!r} already exists")
        now = core.clock()
        _ensure_bucket(core, pdoc)
        tx.pipelines.insert(name, 1, pdoc.stored(), now)
        _save_new_flow(core, tx, pdoc, transitions={}, disabled=disabled)
        core.declarations.remember(pdoc)
    # Creating a pipeline starts an execution (trigger CreatePipeline), as on AWS.
    await start_execution(
        core,
        name,
        trigger_type=TriggerType.CREATE_PIPELINE,
        trigger_detail="caravan",
        variables={},
        strict_variables=False,
    )
    return {"pipeline": _declaration(pdoc), "tags": pdoc.tags}


async def update_pipeline(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    probe, _ = parse_request(request, version=1)
    name = probe.name
    async with core.mutate(name) as (tx, ch):
        row = tx.pipelines.get(name)
        if row is None:
            raise PipelineNotFoundError(f"pipeline {name!r} does not exist")
        pdoc, disabled = parse_request(request, version=int(row["version"]) + 1)
        # Executions of the old structure end Cancelled (§1.1).
        for record in tx.executions.live(name):
            core.driver.cancel_execution(tx, ch, record, CANCELLED_BY_UPDATE)
        _, transitions = core.driver.load_flow(tx, name)
        _ensure_bucket(core, pdoc)
        tx.pipelines.replace(name, pdoc.version, pdoc.stored(), core.clock())
        _save_new_flow(core, tx, pdoc, transitions=transitions, disabled=disabled)
        core.declarations.remember(pdoc)
        ch.event("pipeline", name, version=pdoc.version)
    return {"pipeline": _declaration(pdoc)}


def _ensure_bucket(core: EngineCore, pdoc: PipelineDoc) -> None:
    """The artifact bucket exists before any job worker writes to it through the S3 API."""
    store = pdoc.declaration.artifact_store
    core.artifacts.create_bucket(store.location if store else core.settings.default_artifact_bucket)


def _save_new_flow(
    core: EngineCore,
    tx: Tx,
    pdoc: PipelineDoc,
    *,
    transitions: dict[str, Any],
    disabled: list[Any],
) -> None:
    decl = pdoc.declaration
    stages = tuple(s.name for s in decl.stages)
    kept = {s: t for s, t in transitions.items() if s in stages}
    now = core.clock()
    for item in disabled:
        kept[item["stageName"]] = {
            "enabled": False,
            "reason": item.get("reason"),
            "changedAt": now,
            "changedBy": "declaration",
        }
    gates = {
        s: flow.StageGate(transition_enabled=kept.get(s, {}).get("enabled", True)) for s in stages
    }
    state = flow.FlowState(
        mode=ExecutionMode(str(decl.execution_mode)),
        stages=stages,
        gates=gates,
        queue_limit=core.settings.queue_limit,
    )
    core.driver.save_flow(tx, decl.name, state, kept)


async def get_pipeline(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _name(request)
    with core.read() as tx:
        row = tx.pipelines.get(name)
        if row is None:
            raise PipelineNotFoundError(f"pipeline {name!r} does not exist")
        pdoc = core.declarations.get(tx, name, request.get("version"))
    arn = f"arn:aws:codepipeline:{core.settings.region}:{core.settings.account_id}:{name}"
    return {
        "pipeline": _declaration(pdoc),
        "metadata": {
            "pipelineArn": arn,
            "created": row["created"],
            "updated": row["updated"],
            # caravan extension: where relative paths of the declaration are resolved from.
            **({"declarationDir": str(pdoc.declaration_dir)} if pdoc.declaration_dir else {}),
        },
    }


async def list_pipelines(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    with core.read() as tx:
        rows = tx.pipelines.all()
    summaries = []
    for row in rows:
        decl = row["doc"]["pipeline"]
        summaries.append(
            {
                "name": row["name"],
                "version": row["version"],
                "pipelineType": decl.get("pipelineType", "V1"),
                "executionMode": decl.get("executionMode", "SUPERSEDED"),
                "created": row["created"],
                "updated": row["updated"],
            }
        )
    items, token = page(summaries, request, default_size=1000)
    body: dict[str, Any] = {"pipelines": items}
    if token:
        body["nextToken"] = token
    return body


async def delete_pipeline(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _name(request)
    async with core.mutate(name) as (tx, ch):
        if tx.pipelines.get(name) is None:
            return {}  # AWS's DeletePipeline of a missing pipeline succeeds
        for record in tx.executions.live(name):
            core.driver.cancel_execution(tx, ch, record, "The pipeline was deleted.")
        tx.executions.delete_pipeline(name)
        tx.pipelines.delete(name)
        core.declarations.forget(name)
        ch.event("pipeline", name, deleted=True)
    return {}


def _declaration(pdoc: PipelineDoc) -> dict[str, Any]:
    body = pdoc.declaration.model_dump(by_alias=True, exclude_none=True)
    body["version"] = pdoc.version
    return body


def _name(request: dict[str, Any]) -> str:
    name = request.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError("'name' is required: the pipeline's name")
    return name
