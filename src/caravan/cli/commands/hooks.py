"""``caravan hook install|uninstall REPO``: the git hooks that start pipelines on commit and push.

The hooks notify the server the moment a branch moves (see ``caravan.hooks``); nothing polls.
``install`` keeps a hook the repository already had (as ``<name>.local``, run first);
``uninstall`` puts it back.
"""

from __future__ import annotations

from pathlib import Path

import click

from caravan.cli.main import Settings

repository_argument = click.argument(
    "repo", type=click.Path(exists=True, file_okay=False, path_type=Path)
)


@click.group()
def hook() -> None:
    """Install or remove the git hooks that start pipelines on commit and push."""


@hook.command()
@repository_argument
@click.option(
    "--url",
    metavar="URL",
    default=None,
    help="The caravan server the hooks notify (default: the global --url / CARAVAN_URL).",
)
@click.pass_obj
def install(settings: Settings, repo: Path, url: str | None) -> None:
    """Install the hooks into REPO (a working or a bare repository).

    A commit, merge or rebase in REPO (post-commit, post-merge, post-rewrite) or a push it
    receives (post-receive) then starts the pipelines whose git source names REPO and whose
    trigger (or branch) matches. If the server is down, git still succeeds."""
    from caravan.hooks.install import install_hooks

    target = (url or settings.url).rstrip("/")
    for change in install_hooks(repo.resolve(), target):
        click.echo(f"{change.hook}: {change.outcome}")
    click.echo(f"commits and pushes in {repo} now notify {target}")


@hook.command()
@repository_argument
def uninstall(repo: Path) -> None:
    """Remove caravan's hooks from REPO, restoring the hooks they had kept."""
    from caravan.hooks.install import uninstall_hooks

    changes = uninstall_hooks(repo.resolve())
    for change in changes:
        click.echo(f"{change.hook}: {change.outcome}")
    if not changes:
        click.echo(f"no caravan hooks in {repo}")
