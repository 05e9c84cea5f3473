"""``caravan server``: run the engine and its API on one port (loopback unless told otherwise)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def default_data_dir() -> Path:
    return Path(os.environ.get("CARAVAN_DATA") or ".caravan")


@click.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="$CARAVAN_DATA or ./.caravan",
    help="Where the engine keeps its state, artifacts and logs.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=7878, show_default=True, help="0: any free."
)
@click.option(
    "--database-url",
    envvar="CARAVAN_DATABASE_URL",
    metavar="URL",
    help="A SQLAlchemy URL (e.g. PostgreSQL) instead of SQLite in the data directory.",
)
def server(data_dir: Path, host: str, port: int, database_url: str | None) -> None:
    """Run the caravan server (API, events, engine).

    Serves the native JSON API under /api, CodePipeline's AWS JSON 1.1 API on / (for boto3 and
    the AWS CLI) and Server-Sent Events under /api/events, until interrupted."""
    from caravan.server.main import serve

    data_dir = data_dir.resolve()
    if host not in LOOPBACK:
        click.echo(
            f"caravan: warning: listening on {host}: the API has no authentication; "
            "anyone who can reach this address can run pipelines",
            err=True,
        )

    def ready(url: str) -> None:
        click.echo(f"caravan server listening on {url} (data: {data_dir})")

    # Ctrl-C is how one stops a server; uvicorn has shut it down cleanly by then.
    with contextlib.suppress(KeyboardInterrupt):
        serve(data_dir=data_dir, host=host, port=port, database_url=database_url, on_ready=ready)
    click.echo("caravan server stopped")
