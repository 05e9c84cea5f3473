"""``caravan demo``: the dromedary sample app delivered from a git commit to production.

From nothing: the sample (``examples/dromedary``) is copied into a new git repository (branch
``main``, one commit), ``caravan server`` starts inside this process on 127.0.0.1, the app is
brought ``up`` (its environments, its pipeline — whose creation starts the first execution —
and the git hooks that start an execution on every commit), and the execution is followed live
to Production. Then the URLs are printed and the server keeps serving until Ctrl-C (``--once``:
exit 0 when the execution succeeded, 1 when not). The server keeps its state in
``<DIR>/.caravan``, so ``caravan server --data <DIR>/.caravan`` serves it all again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from caravan.cli.board import make_console
from caravan.errors import CaravanError, InvalidInputError

SAMPLE = "dromedary"
DATA_DIR = ".caravan"
DEFAULT_PORT = 7878
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", DATA_DIR, "dist", "deps", ".data")


def sample_dir() -> Path:
    """The sample's files: shipped in the package, or beside it in a source checkout."""
    import caravan

    package = Path(caravan.__file__).parent
    for candidate in (package / "examples" / SAMPLE, package.parents[1] / "examples" / SAMPLE):
        if (candidate / "caravan.yml").is_file():
            return candidate
    raise CaravanError(f"the {SAMPLE} sample is missing from this installation of caravan")


def git_env() -> dict[str, str]:
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "caravan demo",
        "GIT_AUTHOR_EMAIL": "demo@caravan.invalid",
        "GIT_COMMITTER_NAME": "caravan demo",
        "GIT_COMMITTER_EMAIL": "demo@caravan.invalid",
    }


def make_repository(target: Path) -> None:
    """A git repository holding the sample, committed on branch main; the server's data
    directory inside it is ignored."""
    shutil.copytree(sample_dir(), target, ignore=_IGNORED, dirs_exist_ok=True)
    ignore = target / ".gitignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    if f"{DATA_DIR}/" not in lines:
        ignore.write_text("\n".join([*lines, f"{DATA_DIR}/"]) + "\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-q", "-m", f"Start the {SAMPLE} sample"],
    ):
        subprocess.run(["git", *args], cwd=target, env=git_env(), check=True, capture_output=True)


def bind(port: int) -> socket.socket:
    """A listening-ready socket on 127.0.0.1:``port`` (0: any free port); a port in use is
    bad input, said in one line."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise InvalidInputError(
                f"port {port} on 127.0.0.1 is in use",
                hint="stop what listens there, or pick another port: --port N (0: any free one)",
            ) from None
        raise InvalidInputError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from None
    sock.set_inheritable(False)
    return sock


def print_urls(answer: dict[str, Any], server_url: str) -> None:
    port = server_url.rsplit(":", 1)[-1]
    width = max([len(str(e.get("name", ""))) for e in answer.get("environments", [])] + [9])
    for env in answer.get("environments") or []:
        for url in env.get("urls") or []:
            click.echo(f"  {str(env.get('name')).ljust(width)}  {url}/")
    hosts = [
        url.split("//", 1)[-1].rsplit(":", 1)[0]
        for env in answer.get("environments") or []
        for url in env.get("urls") or []
    ]
    click.echo(f"  {'dashboard'.ljust(width)}  {server_url}/")
    if hosts:
        click.echo(
            "  (browsers resolve *.localhost to this machine; with curl: "
            f"curl -H 'Host: {hosts[-1]}' http://127.0.0.1:{port}/)"
        )


async def deliver(repo: Path, server_url: str, console: Console) -> str:
    """Bring the sample up on the server and follow its first execution; its final status."""
    from caravan.cli.client import Client
    from caravan.cli.commands.apps import app_call, print_up, read_manifest
    from caravan.cli.commands.run import show_failures
    from caravan.cli.commands.watch import follow_execution

    client = Client(server_url)
    try:
        text, manifest = read_manifest(repo)
        body = {"manifest": text, "directory": str(repo), "serverUrl": server_url}
        answer = await app_call(client, "Up", body)
        print_up(answer, urls=False)  # printed at the end
        pipeline = manifest.pipeline.pipeline.name
        execution_id = answer.get("pipelineExecutionId")
        if not execution_id:  # the pipeline was there already: run it again
            started = await client.call("StartPipelineExecution", {"name": pipeline})
            execution_id = started["pipelineExecutionId"]
        status = await follow_execution(client, pipeline, str(execution_id), console)
        if status != "Succeeded":
            await show_failures(client, pipeline, str(execution_id), console)
        click.echo()
        verdict = "is in production" if status == "Succeeded" else "did not reach production"
        click.echo(f"{manifest.app} {verdict} (execution {execution_id} {status})")
        print_urls(answer, server_url)
        return status
    finally:
        await client.aclose()


async def run_demo(
    repo: Path, sock: socket.socket, *, once: bool, console: Console, outcome: dict[str, str]
) -> None:
    """Serve, deliver, and (without ``once``) keep serving; ``outcome["status"]`` is the first
    execution's status as soon as it is known (Ctrl-C ends this coroutine by cancelling it)."""
    from caravan.server.main import EmbeddedServer

    server = EmbeddedServer(sock, data_dir=repo / DATA_DIR)
    url = await server.start()
    try:
        click.echo(f"caravan server listening on {url} (data: {repo / DATA_DIR})")
        outcome["status"] = await deliver(repo, url, console)
        if once:
            return
        click.echo(f"repository: {repo} (a commit there starts a new execution at once)")
        click.echo("serving until Ctrl-C")
        await asyncio.Event().wait()
    finally:
        await server.stop()


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Create the sample repository here (default: a new temporary directory).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="The server's port on 127.0.0.1 (0: any free port).",
)
@click.option("--once", is_flag=True, help="Exit once the first execution ends.")
@click.pass_context
def demo(ctx: click.Context, directory: Path | None, port: int, once: bool) -> None:
    """Deliver the dromedary sample app from a git commit to production, on this machine.

    Copies the sample into a new git repository, starts the server, brings the app up (test and
    prod environments, its pipeline, git hooks) and follows the first execution to Production,
    then serves the app until Ctrl-C. With --once, exits 0 when the execution succeeds, 1 when
    it does not."""
    console = make_console()
    target = (directory or Path(tempfile.mkdtemp(prefix="caravan-demo-"))).resolve()
    if target.exists() and any(target.iterdir()):
        raise click.UsageError(f"{target} is not empty; give --dir an empty or new directory")
    sock = bind(port)
    target.mkdir(parents=True, exist_ok=True)
    make_repository(target)
    click.echo(f"sample repository: {target}")
    outcome = {"status": "Stopped"}
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(target, sock, once=once, console=console, outcome=outcome))
    if not once:
        click.echo("caravan demo stopped")
    ctx.exit(0 if outcome["status"] == "Succeeded" else 1)
