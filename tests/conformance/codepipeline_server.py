"""A real ``caravan server`` subprocess for the CodePipeline conformance suites, and a local git
repository for their pipelines' source actions."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CARAVAN = [sys.executable, "-m", "caravan"]


@dataclass(frozen=True)
class CaravanServer:
    url: str
    data: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_server(root: Path) -> Iterator[CaravanServer]:
    """``caravan server`` on 127.0.0.1 (a free port) over a fresh data directory in ``root``;
    stopped with SIGINT when the block ends."""
    data, log = root / "data", root / "server.log"
    # The log goes to a file: a pipe nobody reads could fill up and stall the server.
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*CARAVAN, "server", "--data", str(data), "--host", "127.0.0.1", "--port", "0"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield CaravanServer(_wait_ready(proc, log), data, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://\S+)", log.read_text(errors="replace"))
        if match:
            return match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    raise AssertionError(f"caravan server did not start:\n{log.read_text(errors='replace')}")


@dataclass(frozen=True)
class GitRepo:
    path: Path
    commits: tuple[str, ...]  # oldest first; main's head is the last


def make_repo(path: Path) -> GitRepo:
    """A repository at ``path`` with two commits on main, each writing its own README."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    commits = []
    for text in ("first\n", "second\n"):
        (path / "README").write_text(text)
        _git(path, "add", ".")
        _git(path, "commit", "-q", "-m", text.strip())
        commits.append(_git(path, "rev-parse", "HEAD"))
    return GitRepo(path, tuple(commits))


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return done.stdout.decode().strip()
