"""The app commands: ``up``, ``wait``, ``down``, ``rollback``, ``promote``, ``abort``, and the
app view that ``status`` shows for an app.

They are the seed's gulp ``pipeline:up/wait/status/down`` with its bugs fixed (seed-system.md
§5, §12 items 26-32): nothing is hard-coded (the app's ``caravan.yml`` says it all), an
unchanged ``up`` changes nothing and says so, ``wait`` follows events with a timeout and exits
non-zero on failure, ``status`` works on a half-created app, ``down`` removes whatever exists.
Each is a client of the server's ``POST /api/apps/{Operation}`` (``caravan.server.apps``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console, Group
from rich.text import Text

from caravan.cli.board import make_console, render_board, status_text
from caravan.cli.client import Client, run_with_client
from caravan.cli.main import Settings
from caravan.errors import (
    CaravanError,
    InvalidInputError,
    NotFoundError,
    PipelineExecutionNotFoundError,
    PipelineNotFoundError,
    ServerUnavailableError,
)
from caravan.server.board import fetch_board, short_id

if TYPE_CHECKING:
    from caravan.model.manifest import AppManifest

MANIFEST_NAME = "caravan.yml"
NO_PLATFORM = "no-platform"  # the reference of a server's "I serve no apps" error
ENDED = ("Succeeded", "Failed", "Stopped", "Superseded", "Cancelled")
RECHECK_SECONDS = 5.0  # a safety net for an event missed while subscribing, not a poll loop


class WaitTimeoutError(CaravanError):
    reference = "wait-timeout"


async def app_call(client: Client, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """One of the server's app operations (``POST /api/apps/{operation}``)."""
    return await client.call(f"apps/{operation}", body)


def read_manifest(directory: Path) -> tuple[str, AppManifest]:
    """The manifest text of ``directory`` and the checked manifest (ManifestError if broken)."""
    from caravan.model.manifest import load_manifest

    path = directory / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(
            f"{path} not found: an app's directory holds its {MANIFEST_NAME}",
            hint="give the app's directory (caravan up DIR) or its name",
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"cannot read {path}: {error}") from None
    return text, load_manifest(text, source=str(path))


def local_app() -> tuple[str, str, Path] | None:
    """The app of ``./caravan.yml`` (name, pipeline, directory), or None without the file."""
    here = Path.cwd()
    if not (here / MANIFEST_NAME).is_file():
        return None
    _, manifest = read_manifest(here)
    return manifest.app, manifest.pipeline.pipeline.name, here


def resolve_app(app: str | None) -> str:
    if app:
        return app
    found = local_app()
    if found is None:
        raise InvalidInputError(
            f"name the app, or run this in an app's directory (one with a {MANIFEST_NAME})"
        )
    return found[0]


# up ------------------------------------------------------------------------------------------


@click.command()
@click.argument(
    "directory", default=".", type=click.Path(file_okay=False, path_type=Path), metavar="[DIR]"
)
@click.pass_obj
def up(settings: Settings, directory: Path) -> None:
    """Create or update an app from DIR/caravan.yml: environments, pipeline, git hooks.

    Idempotent: an unchanged app changes nothing and says so. Creating the pipeline starts its
    first execution; commits in DIR then start executions at once (through git hooks)."""
    directory = directory.resolve()
    text, _ = read_manifest(directory)  # checked here first: every issue, before any call
    body = {"manifest": text, "directory": str(directory), "serverUrl": settings.url}
    answer = run_with_client(settings, lambda c: app_call(c, "Up", body))
    print_up(answer)


def print_up(answer: Mapping[str, Any], *, urls: bool = True) -> None:
    """What ``up`` changed; with ``urls``, where the environments answer and how to follow."""
    changes = answer.get("changes") or []
    if not changes:
        click.echo(f"{answer.get('app', '')} is up to date: no changes")
    for change in changes:
        click.echo(f"  {change}")
    if not urls:
        return
    for env in answer.get("environments") or []:
        click.echo(f"{env.get('name')}: {', '.join(env.get('urls') or [])}")
    if answer.get("pipelineExecutionId"):
        click.echo(f"follow it with: caravan watch {answer.get('pipeline')}")


# status (the app view) --------------------------------------------------------------------


async def app_status(client: Client, app: str) -> dict[str, Any] | None:
    """The app's status, or None when the server has no app of that name (or no apps)."""
    try:
        return await app_call(client, "Status", {"app": app})
    except NotFoundError:
        return None
    except ServerUnavailableError as error:
        if error.reference == NO_PLATFORM:
            return None  # a server without the local platform: only pipelines there
        raise


def _percent(weight: Any) -> str:
    return f"{float(weight) * 100:.0f}%"


def _alias_line(alias: Mapping[str, Any]) -> Text:
    versions = alias.get("versions") or []
    shown = " · ".join(f"{v.get('version')} {_percent(v.get('weight', 1))}" for v in versions)
    line = Text(f"{alias.get('function')}:{alias.get('alias')}  ", style="bold")
    return line.append(shown or "no version yet", style="" if shown else "dim")


def _environment_lines(env: Mapping[str, Any], width: int) -> list[Text]:
    indent = " " * (width + 2)
    urls = " ".join(env.get("urls") or []) or "-"
    lines = [Text(str(env.get("name", "")).ljust(width), style="bold").append(f"  {urls}")]
    for alias in env.get("aliases") or []:
        lines.append(Text(indent).append_text(_alias_line(alias)))
    site = env.get("site")
    if site:
        label = f" ({site['label']})" if site.get("label") else ""
        lines.append(Text(indent).append(f"site  version {site.get('version')}{label}"))
    release = env.get("release") or {}
    state = str(release.get("state") or "idle")
    style = {"rolled-back": "bold red", "shifting": "cyan", "baking": "cyan"}.get(state, "")
    line = Text(indent).append("release  ").append(state, style=style)
    if release.get("detail"):
        line.append(f"  {release['detail']}")
    lines.append(line)
    return lines


def render_app(status: Mapping[str, Any]) -> Group:
    """Each environment with its URLs, the versions behind each alias with their weights,
    the site's version and the release state."""
    envs = status.get("environments") or []
    width = max([len(str(e.get("name", ""))) for e in envs] + [4])
    head = Text(str(status.get("app", "")), style="bold").append(
        f"  app · pipeline {status.get('pipeline', '-')}"
    )
    lines = [head, Text()]
    for env in envs:
        lines.extend(_environment_lines(env, width))
    return Group(*lines)


async def show_app(client: Client, status: Mapping[str, Any], console: Console) -> None:
    """The app view, then its pipeline's board (if the pipeline exists yet)."""
    console.print(render_app(status))
    console.print()
    pipeline = status.get("pipeline") or status.get("app")
    try:
        console.print(render_board(await fetch_board(client, str(pipeline))))
    except PipelineNotFoundError:
        console.print(Text(f"pipeline {pipeline}: not created (run caravan up)", style="yellow"))


# wait ---------------------------------------------------------------------------------------


async def _pipeline_of(client: Client, app: str) -> str:
    status = await app_status(client, app)
    if status is not None:
        return str(status.get("pipeline") or app)
    found = local_app()
    if found is not None and found[0] == app:
        return found[1]
    raise NotFoundError(f"no app {app!r} on the server at {client.url}")


async def _execution_status(client: Client, pipeline: str, execution_id: str) -> str:
    answer = await client.call(
        "GetPipelineExecution", {"pipelineName": pipeline, "pipelineExecutionId": execution_id}
    )
    status: str = answer["pipelineExecution"]["status"]
    return status


def _event_line(event: Mapping[str, Any]) -> Text | None:
    kind = event.get("type")
    line = Text(time.strftime("%H:%M:%S "))
    if kind == "stage":
        return line.append(f"{event.get('stage')} ").append(status_text(event.get("status")))
    if kind == "execution":
        line.append(f"execution {short_id(event.get('pipelineExecutionId'))} ")
        return line.append(status_text(event.get("status")))
    return None


async def wait_for(
    client: Client, pipeline: str, execution_id: str, seconds: float | None, console: Console
) -> str:
    """Wait for ``execution_id`` to end, woken by the server's events; its final status.
    WaitTimeoutError after ``seconds`` (None: no limit)."""
    events = aiter(client.subscribe(pipeline))
    queue: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in events:
                queue.put_nowait(event)
        except Exception as exc:
            queue.put_nowait(exc)

    task = asyncio.create_task(pump())
    await asyncio.sleep(0)  # subscribe before the first read, so no change falls between
    status = "unknown"
    try:
        async with asyncio.timeout(seconds):
            status = await _execution_status(client, pipeline, execution_id)
            while status not in ENDED:
                await _next_event(queue, execution_id, console)
                status = await _execution_status(client, pipeline, execution_id)
    except TimeoutError:
        raise WaitTimeoutError(
            f"timed out after {seconds:g}s waiting for execution {execution_id} of "
            f"pipeline {pipeline} (still {status})"
        ) from None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return status


async def _next_event(
    queue: asyncio.Queue[dict[str, Any] | BaseException], execution_id: str, console: Console
) -> None:
    """Wait for the next event (at most RECHECK_SECONDS) and show it if it says something."""
    try:
        item = await asyncio.wait_for(queue.get(), RECHECK_SECONDS)
    except TimeoutError:
        return
    if isinstance(item, BaseException):
        raise item
    if item.get("pipelineExecutionId") in (None, execution_id):
        line = _event_line(item)
        if line is not None:
            console.print(line)


@click.command()
@click.argument("app", required=False)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Give up after this long (exit 1). Default: wait as long as it takes.",
)
@click.pass_context
def wait(ctx: click.Context, app: str | None, timeout: float | None) -> None:
    """Wait for the latest execution of APP's pipeline to end.

    APP defaults to the app of ./caravan.yml. Exits 0 when the execution succeeds; 1 when it
    fails, is stopped or superseded, or when --timeout passes first."""
    settings: Settings = ctx.find_object(Settings) or Settings()
    name = resolve_app(app)
    console = make_console()

    async def work(client: Client) -> str:
        pipeline = await _pipeline_of(client, name)
        listed = await client.call(
            "ListPipelineExecutions", {"pipelineName": pipeline, "maxResults": 1}
        )
        summaries = listed.get("pipelineExecutionSummaries") or []
        if not summaries:
            raise PipelineExecutionNotFoundError(f"pipeline {pipeline} has no executions yet")
        execution_id = summaries[0]["pipelineExecutionId"]
        click.echo(f"waiting for execution {execution_id} of pipeline {pipeline}")
        status = await wait_for(client, pipeline, execution_id, timeout, console)
        console.print(Text(f"execution {execution_id} ").append(status_text(status)))
        return status

    status = run_with_client(settings, work)
    ctx.exit(0 if status == "Succeeded" else 1)


# down -----------------------------------------------------------------------------------------


@click.command()
@click.argument("app", required=False)
@click.option("--purge", is_flag=True, help="Delete the app's data too (kept by default).")
@click.pass_obj
def down(settings: Settings, app: str | None, purge: bool) -> None:
    """Remove APP: its environments, host routes, functions, pipeline and git hooks.

    APP defaults to the app of ./caravan.yml. Works on a half-created app. The app's data is
    kept unless --purge is given."""
    body: dict[str, Any] = {"purge": purge}
    found: tuple[str, str, Path] | None = None
    if app is None:
        found = local_app()
        app = resolve_app(None) if found is None else found[0]
    else:
        with contextlib.suppress(CaravanError):  # a broken ./caravan.yml is not APP's
            found = local_app()
    if found is not None and found[0] == app:
        # The local manifest names what the server may have lost (a half-created app).
        body.update(pipeline=found[1], directory=str(found[2]))
    body["app"] = app
    answer = run_with_client(settings, lambda c: app_call(c, "Down", body))
    for change in answer.get("changes") or []:
        click.echo(f"  {change}")
    kept = "" if purge else " (its data is kept; --purge deletes it)"
    click.echo(f"{app} is down{kept}")


# rollback, promote, abort -------------------------------------------------------------------


def print_release(verb: str, app: str, env: str, result: Any) -> None:
    """What a release operation moved, as the platform reports it."""
    click.echo(f"{app}/{env}: {verb}")
    if not isinstance(result, Mapping):
        return
    for moved in result.get("functions") or []:
        click.echo(
            f"  {moved.get('function')}:{moved.get('alias')}  version {moved.get('from') or '-'}"
            f" -> {moved.get('to')}"
        )
    site = result.get("site")
    if site:
        click.echo(
            f"  site {site.get('site')}  version {site.get('from') or '-'} -> {site.get('to')}"
        )
    if "functions" in result and not result.get("functions") and not site:
        click.echo("  nothing to move: it already serves that release")
    for release in result.get("releases") or []:
        detail = f"  ({release['detail']})" if release.get("detail") else ""
        click.echo(
            f"  {release.get('function')}  version {release.get('version')}: "
            f"{release.get('state')}{detail}"
        )


def _release(settings: Settings, operation: str, verb: str, body: dict[str, Any]) -> None:
    result = run_with_client(settings, lambda c: app_call(c, operation, body))
    print_release(verb, body["app"], body["environment"], result)


@click.command()
@click.argument("app")
@click.argument("env")
@click.option("--to", "to_version", metavar="VERSION", help="The release to go back to.")
@click.pass_obj
def rollback(settings: Settings, app: str, env: str, to_version: str | None) -> None:
    """Move APP's ENV back to its previous release (or --to VERSION) in one step.

    Every function alias and the site of the environment move together, in effect for the
    next request."""
    body: dict[str, Any] = {"app": app, "environment": env}
    if to_version is not None:
        body["toVersion"] = to_version
    _release(settings, "Rollback", "rolled back", body)


@click.command()
@click.argument("app")
@click.argument("env")
@click.pass_obj
def promote(settings: Settings, app: str, env: str) -> None:
    """Finish the running release of APP's ENV now: the new version takes all the traffic."""
    _release(settings, "Promote", "promoted", {"app": app, "environment": env})


@click.command()
@click.argument("app")
@click.argument("env")
@click.pass_obj
def abort(settings: Settings, app: str, env: str) -> None:
    """Stop the running release of APP's ENV and roll it back."""
    _release(settings, "Abort", "aborted", {"app": app, "environment": env})
