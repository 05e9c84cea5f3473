"""The stage gates of a pipeline (``model.flow.FlowState``) and its transition settings, as the
store keeps them: one JSON document per pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from caravan.model import flow
from caravan.model.statuses import ExecutionMode
from caravan.store import Tx


def read_gates(
    tx: Tx, pipeline: str, *, default_queue_limit: int
) -> tuple[flow.FlowState, dict[str, Any]]:
    """The pipeline's flow state and its transitions (stage -> enabled, reason, when, who)."""
    doc = tx.pipelines.get_flow(pipeline) or {}
    gates = {
        name: flow.StageGate(
            occupant=g.get("occupant"),
            latest=g.get("latest"),
            waiting=tuple(g.get("waiting", ())),
            transition_enabled=g.get("transition_enabled", True),
        )
        for name, g in doc.get("gates", {}).items()
    }
    state = flow.FlowState(
        mode=ExecutionMode(doc["mode"]),
        stages=tuple(doc["stages"]),
        gates=gates,
        queue_limit=doc.get("queue_limit", default_queue_limit),
    )
    return state, dict(doc.get("transitions", {}))


def write_gates(
    tx: Tx, pipeline: str, state: flow.FlowState, transitions: Mapping[str, Any]
) -> None:
    gates = {
        name: {
            "occupant": g.occupant,
            "latest": g.latest,
            "waiting": list(g.waiting),
            "transition_enabled": g.transition_enabled,
        }
        for name, g in state.gates.items()
    }
    tx.pipelines.put_flow(
        pipeline,
        {
            "mode": str(state.mode),
            "stages": list(state.stages),
            "queue_limit": state.queue_limit,
            "gates": gates,
            "transitions": dict(transitions),
        },
    )
