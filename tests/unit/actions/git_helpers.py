"""Real git repositories for the git source tests: fixed identities and dates, no user config."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The caller's git config (signing, hooks, templates) must not change what the tests build.
HERMETIC = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
DATE = "2026-11-26T18:41:11+01:00"  # 17:41:11 UTC


def git_env(date: str = DATE) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HERMETIC)
    env.update(
        GIT_AUTHOR_NAME="Ada",
        GIT_AUTHOR_EMAIL="ada@example.com",
        GIT_COMMITTER_NAME="Bob",
        GIT_COMMITTER_EMAIL="bob@example.com",
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_DATE=date,
    )
    return env


def git_in(cwd: Path, *args: str, date: str = DATE, input: str | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(date), capture_output=True, text=True, input=input
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


class GitRepo:
    """A working repository in a temporary directory, driven through the git CLI."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)

    def git(self, *args: str, date: str = DATE, input: str | None = None) -> str:
        return git_in(self.path, *args, date=date, input=input)

    def write(self, name: str, content: str = "", *, executable: bool = False) -> None:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(0o755 if executable else 0o644)

    def symlink(self, name: str, target: str) -> None:
        (self.path / name).symlink_to(target)

    def commit(self, message: str, *, date: str = DATE, add: bool = True) -> str:
        if add:
            self.git("add", "-A")
        message_file = self.path / ".git" / "test-message"
        message_file.write_text(message)
        self.git(
            "commit",
            "-q",
            "--allow-empty",
            "--cleanup=verbatim",
            "-F",
            str(message_file),
            date=date,
        )
        return self.git("rev-parse", "HEAD")


def simple_repo(path: Path) -> tuple[GitRepo, str]:
    """A repository with a nested tree, an executable and a symlink; returns its head."""
    repo = GitRepo(path)
    repo.write("README.md", "# demo\n")
    repo.write("bin/run.sh", "#!/bin/sh\necho hi\n", executable=True)
    repo.write("src/app/main.py", "print('hi')\n")
    repo.symlink("docs", "src/app")
    return repo, repo.commit("Add the app\n\nWith a body line.\n")


class _AuthHandler(SimpleHTTPRequestHandler):
    """Serves a directory (git's "dumb" HTTP protocol) to requests with the right password."""

    expected = ""

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def http_git_server(root: Path, authorization: str) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 behind basic auth; yields ``http://127.0.0.1:port``."""
    handler = type("Handler", (_AuthHandler,), {"expected": authorization})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
