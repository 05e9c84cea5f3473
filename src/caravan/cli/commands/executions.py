"""Reading executions: ``status`` (the stage board), ``executions``, ``execution``, ``actions``.

With ``--json`` each prints its API response exactly: GetPipelineState, ListPipelineExecutions,
GetPipelineExecution, ListActionExecutions. Execution ids may be abbreviated to a unique prefix
(the board shows the first 8 characters); ``resolve_execution`` expands them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import click
from rich.console import Group
from rich.text import Text

from caravan.cli.board import listing, make_console, render_board, status_text
from caravan.cli.client import Client, run_with_client
from caravan.cli.main import Settings
from caravan.cli.output import json_option, print_json
from caravan.errors import (
    InvalidInputError,
    NotFoundError,
    PipelineExecutionNotFoundError,
    PipelineNotFoundError,
)
from caravan.server.board import (
    Operations,
    duration_of,
    fetch_board,
    first_line,
    format_duration,
    format_time,
    short_id,
)

FULL_ID_LENGTH = 36  # a UUID


async def list_executions(engine: Operations, name: str, limit: int = 100) -> list[dict[str, Any]]:
    answer = await engine.call(
        "ListPipelineExecutions", {"pipelineName": name, "maxResults": limit}
    )
    summaries: list[dict[str, Any]] = answer.get("pipelineExecutionSummaries", [])
    return summaries


async def resolve_execution(engine: Operations, name: str, wanted: str) -> str:
    """The full id of the execution ``wanted`` names (a full id or a unique prefix)."""
    if len(wanted) >= FULL_ID_LENGTH:
        return wanted
    matches = [
        s["pipelineExecutionId"]
        for s in await list_executions(engine, name)
        if s["pipelineExecutionId"].startswith(wanted)
    ]
    if len(matches) > 1:
        raise InvalidInputError(
            f"execution id prefix {wanted!r} of pipeline {name!r} is ambiguous: "
            + ", ".join(short_id(m) for m in matches[:5])
        )
    if not matches:
        raise PipelineExecutionNotFoundError(
            f"pipeline {name!r} has no execution whose id starts with {wanted!r}"
        )
    found: str = matches[0]
    return found


async def latest_execution(engine: Operations, name: str) -> dict[str, Any]:
    summaries = await list_executions(engine, name, limit=1)
    if not summaries:
        raise PipelineExecutionNotFoundError(
            f"pipeline {name!r} has no executions yet", hint=f"start one: caravan start {name}"
        )
    return summaries[0]


@click.command()
@click.argument("name", required=False)
@json_option
@click.pass_obj
def status(settings: Settings, name: str | None, as_json: bool) -> None:
    """Show the stage board of a pipeline, or the view of an app.

    When NAME is an app on the server (or no NAME is given in a directory holding a
    caravan.yml), each environment is shown with its URLs, the versions behind each alias with
    their weights, the site's version and the release state, then the pipeline's board. With
    --json: GetPipelineState's response (an app's adds the key "app": its status)."""
    from caravan.cli.commands.apps import app_status, local_app, show_app

    async def work(client: Client) -> None:
        target = name
        if target is None:
            found = local_app()
            if found is None:
                raise InvalidInputError(
                    "name a pipeline or an app, or run this in an app's directory "
                    "(one with a caravan.yml)"
                )
            target = found[0]
        app = await app_status(client, target)
        if app is None and name is None:
            raise NotFoundError(
                f"app {target!r} is not up on the server at {client.url}",
                hint="create it with: caravan up",
            )
        if app is not None and not as_json:
            await show_app(client, app, make_console())
            return
        if not as_json:
            make_console().print(render_board(await fetch_board(client, target)))
            return
        if app is None:
            print_json(await client.call("GetPipelineState", {"name": target}))
            return
        try:
            state = await client.call("GetPipelineState", {"name": app.get("pipeline") or target})
        except PipelineNotFoundError:
            state = {}  # a half-created app: environments without their pipeline yet
        print_json({**state, "app": app})

    run_with_client(settings, work)


@click.command()
@click.argument("name")
@click.option("--max", "limit", type=click.IntRange(1, 100), default=20, show_default=True)
@json_option
@click.pass_obj
def executions(settings: Settings, name: str, limit: int, as_json: bool) -> None:
    """List a pipeline's executions, newest first."""

    async def work(client: Client) -> None:
        request = {"pipelineName": name, "maxResults": limit}
        answer = await client.call("ListPipelineExecutions", request)
        if as_json:
            print_json(answer)
            return
        summaries = answer.get("pipelineExecutionSummaries", [])
        if not summaries:
            click.echo(f"pipeline {name} has no executions yet")
            return
        now = time.time()
        rows = [
            (
                short_id(s["pipelineExecutionId"]),
                status_text(s.get("status")),
                (s.get("trigger") or {}).get("triggerType", ""),
                format_time(s.get("startTime")),
                format_duration(duration_of(s, now)),
                first_line(s.get("statusSummary") or (s.get("stopTrigger") or {}).get("reason")),
            )
            for s in summaries
        ]
        columns = ("Execution", "Status", "Trigger", "Started", "Duration", "Summary")
        make_console().print(listing(columns, rows))

    run_with_client(settings, work)


def _fact_rows(execution: Mapping[str, Any]) -> Iterable[tuple[str, str | Text]]:
    trigger = execution.get("trigger") or {}
    yield "Execution", execution.get("pipelineExecutionId", "")
    yield (
        "Pipeline",
        f"{execution.get('pipelineName')} (version {execution.get('pipelineVersion')})",
    )
    yield "Status", status_text(execution.get("status"))
    if execution.get("statusSummary"):
        yield "Summary", execution["statusSummary"]
    detail = f" ({trigger['triggerDetail']})" if trigger.get("triggerDetail") else ""
    yield "Trigger", f"{trigger.get('triggerType', '')}{detail}"
    yield "Mode", f"{execution.get('executionMode', '')} {execution.get('executionType', '')}"
    for variable in execution.get("variables", []):
        yield "Variable", f"{variable['name']}={variable.get('resolvedValue', '')}"
    for artifact in execution.get("artifactRevisions", []):
        summary = first_line(artifact.get("revisionSummary"))
        yield "Artifact", f"{artifact.get('name')}  {artifact.get('revisionId', '')}  {summary}"


def actions_listing(details: Iterable[Mapping[str, Any]], *, with_execution: bool) -> Group:
    columns = ["Stage", "Action", "Status", "Started", "Duration", "Message"]
    rows = []
    now = time.time()
    for d in details:
        result = (d.get("output") or {}).get("executionResult") or {}
        error = (result.get("errorDetails") or {}).get("message")
        row = [
            d.get("stageName", ""),
            d.get("actionName", ""),
            status_text(d.get("status")),
            format_time(d.get("startTime")),
            format_duration(duration_of(d, now)),
            first_line(error or result.get("externalExecutionSummary")),
        ]
        execution = [short_id(d.get("pipelineExecutionId"))] if with_execution else []
        rows.append([*execution, *row])
    return listing(["Execution", *columns] if with_execution else columns, rows)


@click.command()
@click.argument("name")
@click.argument("execution_id", metavar="ID")
@json_option
@click.pass_obj
def execution(settings: Settings, name: str, execution_id: str, as_json: bool) -> None:
    """Show one execution of a pipeline."""

    async def work(client: Client) -> None:
        full_id = await resolve_execution(client, name, execution_id)
        request = {"pipelineName": name, "pipelineExecutionId": full_id}
        answer = await client.call("GetPipelineExecution", request)
        if as_json:
            print_json(answer)
            return
        facts = list(_fact_rows(answer.get("pipelineExecution", {})))
        width = max(len(label) for label, _ in facts)
        console = make_console()
        for label, value in facts:
            line = Text(f"{label:<{width}}", style="bold").append("  ")
            console.print(line.append_text(value if isinstance(value, Text) else Text(value)))
        listed = await client.call(
            "ListActionExecutions",
            {"pipelineName": name, "filter": {"pipelineExecutionId": full_id}},
        )
        details = sorted(
            listed.get("actionExecutionDetails", []), key=lambda d: d.get("startTime") or 0
        )
        if details:
            console.print()
            console.print(actions_listing(details, with_execution=False))

    run_with_client(settings, work)


@click.command()
@click.argument("name")
@click.option("--execution", "execution_id", metavar="ID", help="Only this execution's actions.")
@json_option
@click.pass_obj
def actions(settings: Settings, name: str, execution_id: str | None, as_json: bool) -> None:
    """List the action executions of a pipeline."""

    async def work(client: Client) -> None:
        request: dict[str, Any] = {"pipelineName": name}
        if execution_id:
            full_id = await resolve_execution(client, name, execution_id)
            request["filter"] = {"pipelineExecutionId": full_id}
        answer = await client.call("ListActionExecutions", request)
        if as_json:
            print_json(answer)
            return
        details = answer.get("actionExecutionDetails", [])
        if not details:
            click.echo(f"pipeline {name} has no action executions yet")
            return
        make_console().print(actions_listing(details, with_execution=True))

    run_with_client(settings, work)
