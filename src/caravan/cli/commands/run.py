"""``caravan run``: one execution of a pipeline file, in this process, without a server.

The engine is opened over a data directory (a temporary one unless ``--data`` names one), the
pipeline is created (which starts its execution) or, when that directory already holds it,
updated and started; the live board follows the execution, and when it fails the tail of each
failed action's log is printed. Exit 0 when the execution succeeded, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.rule import Rule

from caravan.cli.board import make_console
from caravan.cli.commands.control import variables_option
from caravan.cli.commands.executions import latest_execution
from caravan.cli.commands.logs import action_details, log_tail
from caravan.cli.commands.pipeline import declaration_file, declaration_request
from caravan.cli.commands.watch import follow_execution
from caravan.engine.api import EngineAPI
from caravan.errors import InvalidInputError, PipelineNotFoundError

LOG_TAIL_LINES = 40


def with_variable_defaults(
    request: dict[str, Any], variables: list[dict[str, str]]
) -> dict[str, Any]:
    """``request`` whose declared variables default to the given values.

    CreatePipeline starts the first execution itself and takes no variables, so for a new
    pipeline the values travel as the declaration's defaults (UpdatePipeline puts the file's
    own defaults back on the next run)."""
    if not variables:
        return request
    declaration = request["pipeline"]
    declared = declaration.get("variables") or []
    names = {v["name"] for v in declared}
    unknown = sorted({v["name"] for v in variables} - names)
    if unknown:
        raise InvalidInputError(
            f"pipeline {declaration['name']!r} declares no variable {', '.join(unknown)}",
            hint="declare pipeline variables under pipeline.variables",
        )
    values = {v["name"]: v["value"] for v in variables}
    merged = [
        {**v, "defaultValue": values[v["name"]]} if v["name"] in values else v for v in declared
    ]
    return {**request, "pipeline": {**declaration, "variables": merged}}


async def start_run(
    engine: EngineAPI, request: dict[str, Any], variables: list[dict[str, str]]
) -> str:
    """Create or update the pipeline of ``request`` and start it; the execution's id."""
    name = request["pipeline"]["name"]
    try:
        await engine.call("GetPipeline", {"name": name})
    except PipelineNotFoundError:
        await engine.call("CreatePipeline", with_variable_defaults(request, variables))
        execution_id: str = (await latest_execution(engine, name))["pipelineExecutionId"]
        return execution_id
    await engine.call("UpdatePipeline", request)
    start: dict[str, Any] = {"name": name}
    if variables:
        start["variables"] = variables
    started: str = (await engine.call("StartPipelineExecution", start))["pipelineExecutionId"]
    return started


async def show_failures(engine: EngineAPI, name: str, execution_id: str, console: Console) -> None:
    """The tail of the log of every failed action of the execution."""
    for detail in await action_details(engine, name, execution_id):
        if detail.get("status") != "Failed":
            continue
        title = f"{detail.get('stageName')}/{detail.get('actionName')} failed"
        error = ((detail.get("output") or {}).get("executionResult") or {}).get("errorDetails")
        console.print(Rule(title, align="left"))
        if error:
            console.print(error.get("message", ""), markup=False)
        tail = await log_tail(engine, detail["actionExecutionId"], LOG_TAIL_LINES)
        if tail:
            console.print(tail, markup=False, highlight=False)


async def run_once(
    request: dict[str, Any], variables: list[dict[str, str]], data_dir: Path, console: Console
) -> str:
    from caravan.engine.runtime import open_engine

    async with open_engine(data_dir=data_dir) as engine:
        name = request["pipeline"]["name"]
        execution_id = await start_run(engine, request, variables)
        status = await follow_execution(engine, name, execution_id, console)
        if status != "Succeeded":
            await show_failures(engine, name, execution_id, console)
        return status


@contextmanager
def data_directory(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="caravan-run-", ignore_cleanup_errors=True) as tmp:
        yield Path(tmp)


@click.command()
@declaration_file
@variables_option
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the engine's state here (default: a temporary directory, removed afterwards).",
)
@click.pass_context
def run(
    ctx: click.Context, file: Path, variables: list[dict[str, str]], data_dir: Path | None
) -> None:
    """Run a pipeline file once, in-process, without a server.

    Exits 0 when the execution succeeds, 1 when it does not."""
    request = declaration_request(file)
    with data_directory(data_dir) as directory:
        status = asyncio.run(run_once(request, variables, directory, make_console()))
    ctx.exit(0 if status == "Succeeded" else 1)
