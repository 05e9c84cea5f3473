"""``caravan watch``: the stage board, live, until an execution ends.

The board is redrawn when the engine says something changed (its event stream), not on a
timer; a quiet stretch of a few seconds only triggers a re-read in case an event was missed
while subscribing. On a terminal the board updates in place (rich's Live); elsewhere (a pipe,
CI logs) each event is one line and the final board is printed at the end.
``follow_execution`` is shared with ``caravan run``, which drives an in-process engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from caravan.cli.board import LiveBoard, make_console, render_board, status_text
from caravan.cli.client import Client, run_with_client
from caravan.cli.commands.executions import latest_execution, resolve_execution
from caravan.cli.main import Settings
from caravan.engine.api import EngineAPI
from caravan.server.board import fetch_board, short_id

ENDED = ("Succeeded", "Failed", "Stopped", "Superseded", "Cancelled")
RECHECK_SECONDS = 3.0

# Events from the subscription; an exception is the subscription failing, None its end.
_Item = dict[str, Any] | BaseException | None


async def _pump(events: AsyncIterator[dict[str, Any]], queue: asyncio.Queue[_Item]) -> None:
    try:
        async for event in events:
            queue.put_nowait(event)
        queue.put_nowait(None)
    except Exception as exc:
        queue.put_nowait(exc)
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()


async def _next_events(queue: asyncio.Queue[_Item], wait: float) -> list[dict[str, Any]]:
    """The events that arrived by now (waiting up to ``wait`` seconds for the first)."""
    items: list[_Item] = []
    with contextlib.suppress(TimeoutError):
        items.append(await asyncio.wait_for(queue.get(), wait))
    while not queue.empty():
        items.append(queue.get_nowait())
    events = []
    for item in items:
        if isinstance(item, BaseException):
            raise item
        if item is not None:
            events.append(item)
    return events


def event_line(event: dict[str, Any]) -> Text:
    """One event as a line of text, for output that is not a terminal."""
    line = Text(time.strftime("%H:%M:%S "))
    kind = event.get("type", "")
    execution = short_id(event.get("pipelineExecutionId"))
    if kind == "action":
        line.append(f"{event.get('stage')}/{event.get('action')} ")
    elif kind == "stage":
        line.append(f"{event.get('stage')} ")
    elif kind == "inbound":
        line.append(f"{event.get('stage')} waiting")
        return line.append(f"  execution {execution}")
    elif kind == "transition":
        state = "enabled" if event.get("enabled") else "disabled"
        return line.append(f"transition into {event.get('stage')} {state}")
    elif kind == "execution":
        return line.append(f"execution {execution} ").append(status_text(event.get("status")))
    else:
        return line.append(f"{kind} {event.get('pipeline', '')}")
    line.append(status_text(event.get("status")))
    return line.append(f"  execution {execution}" if execution else "")


@contextlib.contextmanager
def _display(console: Console, board: LiveBoard) -> Iterator[Live | None]:
    if not console.is_terminal:
        yield None
        console.print()
        console.print(board)
        return
    with Live(board, console=console, refresh_per_second=4) as live:
        yield live


async def _status(engine: EngineAPI, name: str, execution_id: str) -> str:
    request = {"pipelineName": name, "pipelineExecutionId": execution_id}
    answer = await engine.call("GetPipelineExecution", request)
    status: str = answer["pipelineExecution"]["status"]
    return status


async def follow_execution(
    engine: EngineAPI, name: str, execution_id: str, console: Console
) -> str:
    """Show the board until execution ``execution_id`` ends; its final status."""
    queue: asyncio.Queue[_Item] = asyncio.Queue()
    pump = asyncio.create_task(_pump(aiter(engine.subscribe(name)), queue))
    await asyncio.sleep(0)  # subscribe before the first read, so no change falls between
    try:
        board = LiveBoard(await fetch_board(engine, name))
        status = await _status(engine, name, execution_id)
        if status in ENDED:
            console.print(render_board(board.data))
        else:
            with _display(console, board) as live:
                while status not in ENDED:
                    events = await _next_events(queue, RECHECK_SECONDS)
                    if live is None:
                        for event in events:
                            console.print(event_line(event))
                    board.data = await fetch_board(engine, name)
                    status = await _status(engine, name, execution_id)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    console.print(Text("execution ").append(execution_id).append(" ").append(status_text(status)))
    return status


@click.command()
@click.argument("name")
@click.option("--execution", "execution_id", metavar="ID", help="Default: the latest execution.")
@click.pass_context
def watch(ctx: click.Context, name: str, execution_id: str | None) -> None:
    """Follow an execution live on the stage board until it ends.

    Exits 0 when it succeeds, 1 when it fails, stops or is superseded or cancelled."""
    settings: Settings = ctx.find_object(Settings) or Settings()

    async def work(client: Client) -> str:
        if execution_id:
            target = await resolve_execution(client, name, execution_id)
        else:
            target = (await latest_execution(client, name))["pipelineExecutionId"]
        return await follow_execution(client, name, target, make_console())

    status = run_with_client(settings, work)
    ctx.exit(0 if status == "Succeeded" else 1)
