"""``caravan logs``: an action execution's log, whole or followed as it is written.

The action execution is found through ListActionExecutions: by default the latest action of
the latest execution, narrowed with ``--execution``, ``--stage`` and ``--action``. The log goes
to stdout untouched; which action it belongs to goes to stderr, so the output can be piped.
"""

from __future__ import annotations

from typing import Any

import click

from caravan.cli.client import Client, run_with_client
from caravan.cli.commands.executions import latest_execution, resolve_execution
from caravan.cli.main import Settings
from caravan.engine.api import EngineAPI
from caravan.errors import ActionNotFoundError
from caravan.server.board import Operations, short_id


async def action_details(engine: Operations, name: str, execution_id: str) -> list[dict[str, Any]]:
    """Every action execution of one pipeline execution (all pages)."""
    request: dict[str, Any] = {
        "pipelineName": name,
        "filter": {"pipelineExecutionId": execution_id},
    }
    details: list[dict[str, Any]] = []
    while True:
        answer = await engine.call("ListActionExecutions", request)
        details.extend(answer.get("actionExecutionDetails", []))
        if not answer.get("nextToken"):
            return details
        request["nextToken"] = answer["nextToken"]


async def find_action(
    engine: Operations,
    name: str,
    *,
    execution_id: str | None = None,
    stage: str | None = None,
    action: str | None = None,
) -> dict[str, Any]:
    """The latest action execution matching the filters (latest execution by default)."""
    if execution_id:
        execution_id = await resolve_execution(engine, name, execution_id)
    else:
        execution_id = (await latest_execution(engine, name))["pipelineExecutionId"]
    matching = [
        d
        for d in await action_details(engine, name, execution_id)
        if stage in (None, d.get("stageName")) and action in (None, d.get("actionName"))
    ]
    if not matching:
        wanted = "/".join(part for part in (stage, action) if part) or "any action"
        raise ActionNotFoundError(
            f"execution {short_id(execution_id)} of pipeline {name!r} has no action execution "
            f"for {wanted}"
        )
    return max(matching, key=lambda d: d.get("startTime") or 0)


async def read_whole_log(engine: EngineAPI, action_execution_id: str) -> tuple[str, int, bool]:
    """The log so far: (text, offset to follow from, whether it is complete)."""
    parts: list[str] = []
    offset = 0
    while True:
        chunk = await engine.read_log(action_execution_id, offset)
        parts.append(chunk.text)
        offset = chunk.next_offset
        if chunk.complete or not chunk.text:
            return "".join(parts), offset, chunk.complete


async def log_tail(engine: EngineAPI, action_execution_id: str, lines: int = 30) -> str:
    text, _, _ = await read_whole_log(engine, action_execution_id)
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


@click.command()
@click.argument("name")
@click.option("--execution", "execution_id", metavar="ID", help="Default: the latest execution.")
@click.option("--stage", help="Only actions of this stage.")
@click.option("--action", help="Only actions of this name.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the action ends.")
@click.pass_obj
def logs(
    settings: Settings,
    name: str,
    execution_id: str | None,
    stage: str | None,
    action: str | None,
    follow: bool,
) -> None:
    """Print the log of an action execution."""

    async def work(client: Client) -> None:
        detail = await find_action(
            client, name, execution_id=execution_id, stage=stage, action=action
        )
        action_id = detail["actionExecutionId"]
        click.echo(
            f"== {detail.get('stageName')}/{detail.get('actionName')} "
            f"({detail.get('status')}) of execution {short_id(detail['pipelineExecutionId'])}",
            err=True,
        )
        text, offset, complete = await read_whole_log(client, action_id)
        click.echo(text, nl=False)
        if follow and not complete:
            async for more in client.follow_log(action_id, offset):
                click.echo(more, nl=False)

    run_with_client(settings, work)
