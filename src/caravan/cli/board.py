"""The stage board: a pipeline's state as text, the way the CodePipeline console draws it.

    demo  version 2 · SUPERSEDED · V2

    Source  Succeeded   execution 1f3c9a2e
         1  Checkout  Succeeded     1.2s  commit 9f1e2d3
    Build   InProgress  execution 7d41b0c8
            waiting: 0be2c4d1 (InProgress)
         1  Compile   InProgress   12.4s
         2  Test      -
    Deploy  not run yet
            transition disabled: release freeze

The data comes from GetPipelineState, plus GetPipeline (run orders, execution mode) and
ListActionExecutions (start and end times, for durations). Colour marks statuses when the
terminal has it; without colour (NO_COLOR, a pipe) the words alone carry the meaning.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.text import Text

from caravan.server.board import (
    BoardData,
    duration_of,
    first_line,
    format_duration,
    short_id,
)

STATUS_STYLES = {
    "Succeeded": "green",
    "Failed": "bold red",
    "InProgress": "cyan",
    "Stopping": "yellow",
    "Stopped": "yellow",
    "Abandoned": "yellow",
    "Superseded": "dim",
    "Cancelled": "dim",
    "Skipped": "dim",
}
NOT_RUN = "-"
STATUS_WIDTH = len("InProgress")


# Small formats shared by the commands -----------------------------------------------------
def status_text(status: str | None, width: int = 0) -> Text:
    shown = status or NOT_RUN
    return Text(shown.ljust(width) if status else shown, style=STATUS_STYLES.get(shown, ""))


def listing(columns: Sequence[str], rows: Iterable[Sequence[str | Text]]) -> Group:
    """A table as aligned lines: every column as wide as its content, except the last, which
    is cut at the console's edge; a row never wraps onto a second line."""
    cells = [[c if isinstance(c, Text) else Text(c) for c in row] for row in rows]
    header = [Text(c, style="bold") for c in columns]
    widths = [max(len(row[i].plain) for row in [header, *cells]) for i in range(len(columns))]
    lines = []
    for row in [header, *cells]:
        line = Text(no_wrap=True, overflow="ellipsis")
        for i, cell in enumerate(row):
            line.append_text(cell)
            if i < len(row) - 1:
                line.append(" " * (widths[i] - len(cell.plain) + 2))
        line.rstrip()
        lines.append(line)
    return Group(*lines)


# The board ------------------------------------------------------------------------------------
def _run_orders(pipeline: Mapping[str, Any], stage: str) -> dict[str, int]:
    for declared in pipeline.get("stages", []):
        if declared.get("name") == stage:
            return {a["name"]: int(a.get("runOrder") or 1) for a in declared.get("actions", [])}
    return {}


def _action_message(latest: Mapping[str, Any]) -> str:
    if latest.get("status") == "Failed" and latest.get("errorDetails"):
        return first_line(latest["errorDetails"].get("message"))
    if latest.get("status") == "InProgress" and latest.get("token"):
        return "waiting for approval"
    return first_line(latest.get("summary"))


def _line(*parts: str | Text) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    for part in parts:
        line.append(part)
    return line


def _header(data: BoardData) -> Text:
    state, pipeline = data.state, data.pipeline
    facts = [f"version {state.get('pipelineVersion', pipeline.get('version', '?'))}"]
    facts += [str(pipeline[k]) for k in ("executionMode", "pipelineType") if pipeline.get(k)]
    return _line(Text(str(state.get("pipelineName", "")), style="bold"), "  " + " · ".join(facts))


def _stage_lines(
    data: BoardData, stage: Mapping[str, Any], widths: tuple[int, int], now: float
) -> list[Text]:
    stage_width, action_width = widths
    name = stage.get("stageName", "")
    indent = " " * (stage_width + 2)
    title = Text(name.ljust(stage_width), style="bold")
    latest = stage.get("latestExecution")
    if latest:
        status = status_text(latest.get("status"), STATUS_WIDTH)
        execution = f"  execution {short_id(latest.get('pipelineExecutionId'))}"
        lines = [_line(title, "  ", status, execution)]
    else:
        lines = [_line(title, "  ", Text("not run yet", style="dim"))]
    transition = stage.get("inboundTransitionState") or {}
    if transition.get("enabled") is False:
        reason = transition.get("disabledReason") or "no reason given"
        lines.append(_line(indent, Text(f"transition disabled: {reason}", style="yellow")))
    waiting = stage.get("inboundExecutions") or (
        [stage["inboundExecution"]] if stage.get("inboundExecution") else []
    )
    for inbound in waiting:
        waiting_id = short_id(inbound.get("pipelineExecutionId"))
        status = status_text(inbound.get("status"))
        lines.append(_line(indent, f"waiting: {waiting_id} (", status, ")"))
    orders = _run_orders(data.pipeline, name)
    actions = sorted(stage.get("actionStates", []), key=lambda a: orders.get(a["actionName"], 1))
    for action in actions:
        lines.append(_action_line(data, action, orders, (stage_width, action_width), now))
    return lines


def _action_line(
    data: BoardData,
    action: Mapping[str, Any],
    orders: Mapping[str, int],
    widths: tuple[int, int],
    now: float,
) -> Text:
    stage_width, action_width = widths
    latest = action.get("latestExecution") or {}
    order = str(orders.get(action["actionName"], ""))
    detail = data.details.get(latest.get("actionExecutionId", ""))
    duration = format_duration(duration_of(detail, now)) if latest else ""
    name = action["actionName"].ljust(action_width)
    line = _line(
        order.rjust(stage_width), "  ", name, "  ", status_text(latest.get("status"), STATUS_WIDTH)
    )
    message = _action_message(latest) if latest else ""
    if duration or message:
        line.append(f"  {duration:>7}")
    if message:
        line.append(f"  {message}", style="red" if latest.get("status") == "Failed" else "")
    line.rstrip()
    return line


def render_board(data: BoardData, now: float | None = None) -> Group:
    now = time.time() if now is None else now
    stages = data.state.get("stageStates", [])
    stage_width = max([len(s.get("stageName", "")) for s in stages] + [2])
    action_width = max(
        [len(a.get("actionName", "")) for s in stages for a in s.get("actionStates", [])] + [1]
    )
    lines = [_header(data), Text()]
    for stage in stages:
        lines.extend(_stage_lines(data, stage, (stage_width, action_width), now))
    return Group(*lines)


class LiveBoard:
    """A board that re-renders on every refresh, so running durations keep counting."""

    def __init__(self, data: BoardData) -> None:
        self.data = data

    def __rich__(self) -> Group:
        return render_board(self.data)


def make_console(*, stderr: bool = False) -> Console:
    # rich already honours NO_COLOR and drops colour and cursor tricks when not on a terminal.
    return Console(stderr=stderr, highlight=False, soft_wrap=False)
