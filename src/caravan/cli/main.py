"""The ``caravan`` command: the root group, its global options, and lazy loading of commands.

The registry below names each command's module and a one-line summary, so ``caravan --help``
lists every command without importing any of them (nor the HTTP stack, the ORM or pydantic they
use); a command's module is imported only when that command runs. Errors are presented here,
once, for every command (see ``caravan.cli.output``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from caravan import __version__
from caravan.cli.output import report_error, report_unexpected
from caravan.errors import CaravanError

DEFAULT_URL = "http://127.0.0.1:7878"


@dataclass
class Settings:
    """What every command knows: where the server is. Tests inject an httpx transport."""

    url: str = DEFAULT_URL
    transport: Any = None  # an httpx.AsyncBaseTransport, or None for real HTTP


@dataclass(frozen=True)
class CommandInfo:
    target: str  # "module:attribute" of the click command
    summary: str  # the first line of its help, shown by `caravan --help`


_C = "caravan.cli.commands."
COMMANDS: dict[str, CommandInfo] = {
    "server": CommandInfo(_C + "server:server", "Run the caravan server (API, events, engine)."),
    "run": CommandInfo(_C + "run:run", "Run a pipeline file once, in-process, without a server."),
    "demo": CommandInfo(
        _C + "demo:demo",
        "Deliver the dromedary sample app from a git commit to production, on this machine.",
    ),
    "up": CommandInfo(
        _C + "apps:up",
        "Create or update an app from DIR/caravan.yml: environments, pipeline, git hooks.",
    ),
    "down": CommandInfo(
        _C + "apps:down",
        "Remove APP: its environments, host routes, functions, pipeline and git hooks.",
    ),
    "wait": CommandInfo(
        _C + "apps:wait", "Wait for the latest execution of APP's pipeline to end."
    ),
    "rollback": CommandInfo(
        _C + "apps:rollback",
        "Move APP's ENV back to its previous release (or --to VERSION) in one step.",
    ),
    "promote": CommandInfo(
        _C + "apps:promote",
        "Finish the running release of APP's ENV now: the new version takes all the traffic.",
    ),
    "abort": CommandInfo(
        _C + "apps:abort", "Stop the running release of APP's ENV and roll it back."
    ),
    "pipeline": CommandInfo(
        _C + "pipeline:pipeline", "Create, update, show, list and delete pipelines."
    ),
    "start": CommandInfo(_C + "control:start", "Start an execution of a pipeline; prints its id."),
    "status": CommandInfo(
        _C + "executions:status", "Show the stage board of a pipeline, or the view of an app."
    ),
    "watch": CommandInfo(
        _C + "watch:watch", "Follow an execution live on the stage board until it ends."
    ),
    "executions": CommandInfo(
        _C + "executions:executions", "List a pipeline's executions, newest first."
    ),
    "execution": CommandInfo(_C + "executions:execution", "Show one execution of a pipeline."),
    "actions": CommandInfo(_C + "executions:actions", "List the action executions of a pipeline."),
    "logs": CommandInfo(_C + "logs:logs", "Print the log of an action execution."),
    "stop": CommandInfo(
        _C + "control:stop", "Stop an execution: let running actions finish, or abandon them."
    ),
    "retry": CommandInfo(_C + "control:retry", "Retry a failed stage of an execution."),
    "approve": CommandInfo(_C + "control:approve", "Approve a manual approval action."),
    "reject": CommandInfo(
        _C + "control:reject", "Reject a manual approval action (its stage fails)."
    ),
    "hook": CommandInfo(
        _C + "hooks:hook",
        "Install or remove the git hooks that start pipelines on commit and push.",
    ),
    "transition": CommandInfo(
        _C + "control:transition", "Disable or enable the inbound transition of a stage."
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use, and which presents every error."""

    def __init__(self, *args: Any, lazy: Mapping[str, CommandInfo], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.lazy, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        info = self.lazy.get(cmd_name)
        if info is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = info.target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{info.target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Registry order groups related commands; `list_commands` stays alphabetical.
        rows = [(name, info.summary) for name, info in self.lazy.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CaravanError as error:
            report_error(error)
            ctx.exit(error.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("CARAVAN_DEBUG"):
                raise
            report_unexpected(exc)
            ctx.exit(1)


@click.group(
    name="caravan",
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--url",
    envvar="CARAVAN_URL",
    default=DEFAULT_URL,
    show_default=True,
    metavar="URL",
    help="The caravan server to talk to (env CARAVAN_URL).",
)
@click.version_option(__version__, prog_name="caravan")
@click.pass_context
def cli(ctx: click.Context, url: str) -> None:
    """caravan: continuous delivery for serverless applications, on one machine.

    Pipelines are declared in the AWS CodePipeline structure and run with its semantics.
    Start a server with `caravan server`, then create a pipeline with
    `caravan pipeline create pipeline.yml` and follow it with `caravan watch NAME`.
    """
    settings = ctx.ensure_object(Settings)
    settings.url = url.rstrip("/")


def main(args: Sequence[str] | None = None) -> None:
    """The console script ``caravan``."""
    cli.main(args=args, prog_name="caravan")
