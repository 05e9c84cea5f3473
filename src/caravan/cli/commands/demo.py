"""``caravan demo``: a sample pipeline end to end, from nothing, on this machine.

Copies the hello sample (a small Python app with unit tests, a buildspec, and a Lambda-style
deploy handler) into a fresh git repository, then runs its pipeline once in-process:
Source (git) -> Build (CodeBuild buildspec, Commands lint in parallel) -> Deploy (Invoke).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import click

from caravan.cli.board import make_console
from caravan.cli.commands.pipeline import declaration_request
from caravan.cli.commands.run import run_once
from caravan.errors import CaravanError

SAMPLE = "hello"


def sample_dir() -> Path:
    """The sample's files: shipped in the package, or beside it in a source checkout."""
    import caravan

    package = Path(caravan.__file__).parent
    for candidate in (package / "examples" / SAMPLE, package.parents[1] / "examples" / SAMPLE):
        if (candidate / "pipeline" / "pipeline.yaml").is_file():
            return candidate
    raise CaravanError(f"the {SAMPLE} sample is missing from this installation of caravan")


def make_repository(target: Path) -> None:
    """A git repository holding the sample, committed on branch main."""
    shutil.copytree(sample_dir(), target, dirs_exist_ok=True)
    (target / ".gitignore").write_text(".caravan/\n__pycache__/\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "caravan demo",
        "GIT_AUTHOR_EMAIL": "demo@caravan.invalid",
        "GIT_COMMITTER_NAME": "caravan demo",
        "GIT_COMMITTER_EMAIL": "demo@caravan.invalid",
    }
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-q", "-m", "Start the hello sample"],
    ):
        subprocess.run(["git", *args], cwd=target, env=env, check=True, capture_output=True)


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Create the sample repository here (default: a new temporary directory).",
)
@click.pass_context
def demo(ctx: click.Context, directory: Path | None) -> None:
    """Run a sample pipeline end to end: git source, build and test, deploy.

    Exits 0 when the execution succeeds, 1 when it does not."""
    console = make_console()
    target = directory or Path(tempfile.mkdtemp(prefix="caravan-demo-"))
    if target.exists() and any(target.iterdir()):
        raise click.UsageError(f"{target} is not empty; give --dir an empty or new directory")
    target.mkdir(parents=True, exist_ok=True)
    make_repository(target)
    console.print(f"sample repository: {target}")
    request = declaration_request(target / "pipeline" / "pipeline.yaml")
    status = asyncio.run(run_once(request, [], target / ".caravan", console))
    console.print(f"execution {status.lower()}; state kept in {target / '.caravan'}")
    ctx.exit(0 if status == "Succeeded" else 1)
