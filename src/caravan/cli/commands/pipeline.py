"""``caravan pipeline``: create, update, get, list and delete pipelines.

A declaration file (YAML or JSON, CodePipeline's structure) is loaded and validated here, so a
broken file is reported with every issue before anything is sent; the request is
CreatePipeline's, plus caravan's extension keys (``buildProjects``,
``disabledInboundTransitions``, and ``declarationDir`` so relative paths in the declaration
resolve against the file's directory).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from caravan.cli.board import listing, make_console
from caravan.cli.client import Client, run_with_client
from caravan.cli.main import Settings
from caravan.cli.output import json_option, print_json
from caravan.server.board import format_time

declaration_file = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)


def declaration_request(file: Path) -> dict[str, Any]:
    """The CreatePipeline/UpdatePipeline request for the declaration in ``file`` — a pipeline
    declaration, or an app manifest (caravan.yml) whose ``pipeline`` is taken.

    Raises DeclarationError listing every issue of the file."""
    from caravan.model.loader import load_file, parse_text
    from caravan.model.manifest import load_manifest

    data = parse_text(file.read_text(encoding="utf-8"), source=str(file))
    if isinstance(data, dict) and "app" in data and "pipeline" in data:
        document = load_manifest(file).pipeline
    else:
        document = load_file(file)
    request: dict[str, Any] = document.to_request()
    request["declarationDir"] = str(file.resolve().parent)
    return request


@click.group()
def pipeline() -> None:
    """Create, update, show, list and delete pipelines."""


@pipeline.command()
@declaration_file
@click.pass_obj
def create(settings: Settings, file: Path) -> None:
    """Create a pipeline from a declaration file (this starts its first execution)."""
    request = declaration_request(file)
    answer = run_with_client(settings, lambda c: c.call("CreatePipeline", request))
    name = answer["pipeline"]["name"]
    click.echo(f"created pipeline {name} (version {answer['pipeline'].get('version', 1)})")
    click.echo(f"its first execution has started; follow it with: caravan watch {name}")


@pipeline.command()
@declaration_file
@click.pass_obj
def update(settings: Settings, file: Path) -> None:
    """Update a pipeline from its declaration file (a new version)."""
    request = declaration_request(file)
    answer = run_with_client(settings, lambda c: c.call("UpdatePipeline", request))
    declared = answer["pipeline"]
    click.echo(f"updated pipeline {declared['name']} to version {declared.get('version')}")


def _action_line(action: Mapping[str, Any], width: int) -> Text:
    type_id = action.get("actionTypeId", {})
    provider = f"{type_id.get('category')}/{type_id.get('owner')}/{type_id.get('provider')}"
    inputs = ", ".join(a["name"] for a in action.get("inputArtifacts", []))
    outputs = ", ".join(a["name"] for a in action.get("outputArtifacts", []))
    line = Text(f"{action.get('runOrder', 1):>4}  {action['name'].ljust(width)}  {provider}")
    if inputs or outputs:
        line.append(f"  {inputs or '-'} -> {outputs or '-'}", style="dim")
    return line


def _show_declaration(answer: Mapping[str, Any]) -> None:
    declared, metadata = answer["pipeline"], answer.get("metadata", {})
    facts = [f"version {declared.get('version')}"]
    facts += [declared[k] for k in ("executionMode", "pipelineType") if declared.get(k)]
    console = make_console()
    console.print(Text(declared["name"], style="bold").append("  " + " · ".join(facts), ""))
    if metadata:
        created, updated = (
            format_time(metadata.get("created")),
            format_time(metadata.get("updated")),
        )
        console.print(f"created {created} · updated {updated}")
    for variable in declared.get("variables", []):
        default = variable.get("defaultValue", "")
        console.print(Text(f"variable {variable['name']} (default {default!r})"))
    stages = declared.get("stages", [])
    width = max([len(a["name"]) for s in stages for a in s.get("actions", [])] + [1])
    console.print()
    for stage in stages:
        console.print(Text(stage["name"], style="bold"))
        for action in sorted(stage.get("actions", []), key=lambda a: int(a.get("runOrder", 1))):
            console.print(_action_line(action, width))


@pipeline.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="An earlier version of the pipeline.")
@json_option
@click.pass_obj
def get(settings: Settings, name: str, version: int | None, as_json: bool) -> None:
    """Show a pipeline's declaration."""
    request: dict[str, Any] = {"name": name}
    if version is not None:
        request["version"] = version
    answer = run_with_client(settings, lambda c: c.call("GetPipeline", request))
    if as_json:
        print_json(answer)
    else:
        _show_declaration(answer)


@pipeline.command("list")
@json_option
@click.pass_obj
def list_(settings: Settings, as_json: bool) -> None:
    """List the pipelines."""

    async def work(client: Client) -> dict[str, Any]:
        return await client.call("ListPipelines", {})

    answer = run_with_client(settings, work)
    if as_json:
        print_json(answer)
        return
    if not answer.get("pipelines"):
        click.echo("no pipelines yet; create one with: caravan pipeline create FILE")
        return
    rows = [
        (
            p["name"],
            str(p.get("version", "")),
            p.get("pipelineType", ""),
            p.get("executionMode", ""),
            format_time(p.get("updated")),
        )
        for p in answer["pipelines"]
    ]
    make_console().print(listing(("Name", "Version", "Type", "Mode", "Updated"), rows))


@pipeline.command()
@click.argument("name")
@click.pass_obj
def delete(settings: Settings, name: str) -> None:
    """Delete a pipeline and its execution history."""
    run_with_client(settings, lambda c: c.call("DeletePipeline", {"name": name}))
    click.echo(f"deleted pipeline {name}")
