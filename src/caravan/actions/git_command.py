"""Running git: one command as an async subprocess, with a scrubbed, non-interactive environment.

``run_git`` runs git with an argument list in its own process group (cancelling the caller stops
it: SIGTERM, then SIGKILL), never prompting for credentials, with the caller's variables that
would point git at another repository removed; a failure is a ``GitCommandError`` whose message
has every URL's ``user:password@`` part redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from caravan.actions.git_urls import redact
from caravan.errors import CaravanError

_STOP_GRACE = 2.0  # seconds between SIGTERM (git removes its lock files) and SIGKILL
# Variables of the caller's environment that would point git at another repository or change
# its output; a caravan started from a git hook has GIT_DIR set, for example.
_SCRUBBED = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_PARAMETERS",
    "GIT_QUARANTINE_PATH",
)


class GitCommandError(CaravanError):
    """A git command failed (the remote is unreachable, the path is not a repository, ...)."""

    reference = "git-command-failed"


def git_environment() -> dict[str, str]:
    """The environment for git: the caller's, minus repository pointers, never prompting."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["GIT_TERMINAL_PROMPT"] = "0"  # fail instead of asking for a password on a TTY
    env["GCM_INTERACTIVE"] = "never"  # Git Credential Manager: no dialogs either
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C"  # git's messages in one language, whatever the host's locale
    return env


async def run_git(*args: str, cwd: Path | None = None) -> bytes:
    """Run ``git args`` and return its stdout; GitCommandError (redacted) if it fails.

    Cancelling the caller stops git and its children: SIGTERM first, so git removes the lock
    files it holds, then SIGKILL.
    """
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=git_environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = await process.communicate()
    except BaseException:
        await _stop(process)
        raise
    if process.returncode != 0:
        detail = redact(stderr.decode("utf-8", errors="replace").strip())
        raise GitCommandError(
            f"git {_subcommand(args)} failed (exit {process.returncode}): {detail or 'no message'}"
        )
    return stdout


def _subcommand(args: tuple[str, ...]) -> str:
    """The command's name for messages: the first word that is not a global option."""
    words = iter(args)
    for word in words:
        if word in ("-c", "-C", "--git-dir"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return "command"


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), _STOP_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
