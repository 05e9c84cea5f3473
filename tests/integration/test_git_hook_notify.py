"""What the installed hooks post for each way a branch moves, captured by a loopback HTTP
server standing in for caravan: the ref, the commits, the changed files (a new branch: only
the files its own commits touched) — and one notification per change, never two."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from caravan.hooks.install import install_hooks

ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


def commit(repo: Path, *files: str) -> str:
    for name in files:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        with (repo / name).open("a") as file:  # every commit changes each file it names
            file.write(f"{name}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"touch {' '.join(files)}")
    return git(repo, "rev-parse", "HEAD")


class Capture:
    """A stand-in for the caravan server: records what POST /api/hooks/git receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        captured = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                captured.append({"path": self.path, **json.loads(self.rfile.read(length))})
                answer = (
                    b'{"pipelineExecutions": [{"pipelineName": "p", "pipelineExecutionId": "e"}]}'
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def take(self) -> list[dict[str, Any]]:
        taken = list(self.bodies)
        self.bodies.clear()
        return taken


@pytest.fixture
def capture() -> Iterator[Capture]:
    running = Capture()
    yield running
    running.server.shutdown()
    running.server.server_close()
    running.thread.join(5)


@pytest.fixture
def repo(tmp_path: Path, capture: Capture) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    install_hooks(path, capture.url)
    return path


def test_commits_post_their_branch_commit_and_changed_files(repo: Path, capture: Capture) -> None:
    first = commit(repo, "README.md", "src/app.py")
    (body,) = capture.take()
    assert body["path"] == "/api/hooks/git"
    assert body["repository"] == str(repo.resolve())
    assert (body["ref"], body["after"], body["before"]) == ("refs/heads/main", first, None)
    assert body["createdBranch"] is True  # the repository's first commit
    assert sorted(body["changedFiles"]) == ["README.md", "src/app.py"]

    second = commit(repo, "src/app.py", "docs/new.md")
    (body,) = capture.take()
    assert (body["before"], body["after"], body["createdBranch"]) == (first, second, False)
    assert sorted(body["changedFiles"]) == ["docs/new.md", "src/app.py"]


def test_amend_rebase_and_merge_each_post_once(repo: Path, capture: Capture) -> None:
    base = commit(repo, "a.txt")
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, "t1.txt")
    commit(repo, "t2.txt")
    git(repo, "checkout", "-q", "main")
    commit(repo, "b.txt")
    capture.take()

    git(repo, "commit", "-q", "--amend", "-m", "amended")  # post-commit and post-rewrite run
    (body,) = capture.take()
    assert body["ref"] == "refs/heads/main" and body["before"] == base

    git(repo, "checkout", "-q", "topic")
    git(repo, "rebase", "-q", "main")  # post-commit per pick is skipped; post-rewrite reports
    (body,) = capture.take()
    assert body["ref"] == "refs/heads/topic"
    assert body["after"] == git(repo, "rev-parse", "HEAD")
    assert "t1.txt" not in body["changedFiles"]  # not changed by the rebase itself
    assert "b.txt" in body["changedFiles"]

    git(repo, "checkout", "-q", "main")
    before = git(repo, "rev-parse", "HEAD")
    git(repo, "merge", "-q", "--ff-only", "topic")  # post-merge
    (body,) = capture.take()
    assert (body["before"], body["after"]) == (before, git(repo, "rev-parse", "HEAD"))
    assert sorted(body["changedFiles"]) == ["t1.txt", "t2.txt"]


def test_a_detached_head_posts_nothing(repo: Path, capture: Capture) -> None:
    commit(repo, "a.txt")
    git(repo, "checkout", "-q", "--detach")
    capture.take()
    commit(repo, "b.txt")
    assert capture.take() == []


def test_pushes_into_a_bare_repository_post_each_ref(tmp_path: Path, capture: Capture) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    commit(work, "a.txt")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    install_hooks(origin, capture.url)
    git(work, "remote", "add", "origin", str(origin))

    pushed = subprocess.run(
        ["git", "push", "origin", "main"], cwd=work, env=ENV, capture_output=True, text=True
    )
    assert "caravan: started pipeline p (execution e)" in pushed.stderr
    (body,) = capture.take()
    assert body["repository"] == str(origin.resolve())
    assert (body["createdBranch"], body["changedFiles"]) == (True, ["a.txt"])

    git(work, "checkout", "-q", "-b", "feature")
    commit(work, "f1.txt")
    feature = commit(work, "lib/f2.txt")
    git(work, "tag", "v1")
    git(work, "push", "-q", "origin", "feature", "v1")
    bodies = {b["ref"]: b for b in capture.take()}
    assert set(bodies) == {"refs/heads/feature", "refs/tags/v1"}
    created = bodies["refs/heads/feature"]
    # Only what the new branch's own commits touched, not a.txt that main already has.
    assert (created["createdBranch"], created["after"]) == (True, feature)
    assert sorted(created["changedFiles"]) == ["f1.txt", "lib/f2.txt"]

    git(work, "push", "-q", "origin", "--delete", "feature")  # deletions post nothing
    assert capture.take() == []
