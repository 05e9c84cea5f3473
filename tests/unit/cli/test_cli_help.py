"""`caravan --help` is fast: it imports no command module, HTTP stack, ORM or pydantic; the
registry's summaries are the commands' own help."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from caravan import __version__
from caravan.cli.main import COMMANDS, cli

HEAVY = {"httpx", "starlette", "uvicorn", "sqlalchemy", "pydantic"}

PROBE = """
import sys
from caravan.cli.main import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = {heavy!r}
print(sorted(m for m in sys.modules
             if m.split('.')[0] in heavy or m.startswith('caravan.cli.commands.')))
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], []])
def test_help_imports_none_of_the_heavy_modules(args: list[str]) -> None:
    probe = PROBE.format(args=args, heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_help_lists_every_command_with_its_summary() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert result.output.startswith("Usage: caravan [OPTIONS] COMMAND [ARGS]...")
    for name, info in COMMANDS.items():
        assert f"  {name}" in result.output
        assert info.summary in " ".join(result.output.split())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_registry_summary_is_the_first_line_of_the_command_help(name: str) -> None:
    module, _, attribute = COMMANDS[name].target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    assert command.name == name
    assert (command.help or "").splitlines()[0] == COMMANDS[name].summary


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.output == f"caravan, version {__version__}\n"
