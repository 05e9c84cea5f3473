"""Local git hooks start pipelines with nothing polling: a real ``caravan server`` process, a
real repository with hooks written by ``install_hooks``, a pipeline whose Custom/Git source
names that repository. A commit (or a push into a bare repository) has started the execution,
pinned to its commit, by the time git returns; a branch the trigger excludes starts nothing;
with the server down, git still succeeds."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from caravan.errors import InvalidInputError
from caravan.hooks.install import HOOKS, install_hooks, uninstall_hooks

CARAVAN = Path(sys.executable).parent / "caravan"
HERMETIC = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
IDENTITY = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**env, **HERMETIC, **IDENTITY}, capture_output=True, text=True
    )
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done


def commit(repo: Path, name: str, text: str) -> tuple[str, str]:
    """Write a file and commit it; returns the new HEAD and what the hooks printed."""
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    done = git(repo, "commit", "-q", "-m", f"change {name}")
    return git(repo, "rev-parse", "HEAD").stdout.strip(), done.stderr


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, "app.txt", "hello\n")
    return path


class Server:
    """``caravan server --data D --port 0`` in its own process; ``url`` once it listens."""

    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(
            [str(CARAVAN), "server", "--data", str(data), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(lines,), daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("caravan server did not start in 20 s") from None
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                break
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def _read(self, lines: queue.Queue[str]) -> None:
        for line in self.proc.stdout or ():
            lines.put(line)

    def call(self, operation: str, **request: Any) -> dict[str, Any]:
        response = self.http.post(f"/api/{operation}", json=request)
        assert response.status_code == 200, response.text
        return response.json()

    def executions(self, pipeline: str, trigger: str = "WebhookV2") -> list[dict[str, Any]]:
        summaries = self.call("ListPipelineExecutions", pipelineName=pipeline)
        return [
            s
            for s in summaries["pipelineExecutionSummaries"]
            if s["trigger"]["triggerType"] == trigger
        ]

    def wait_for_source(self, pipeline: str, execution_id: str) -> list[dict[str, Any]]:
        """The execution's artifact revisions, once its source action has produced them."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            execution = self.call(
                "GetPipelineExecution", pipelineName=pipeline, pipelineExecutionId=execution_id
            )["pipelineExecution"]
            if execution["artifactRevisions"] or execution["status"] == "Failed":
                return execution["artifactRevisions"]
            time.sleep(0.05)  # the test polls; the product does not
        raise AssertionError(f"the source action of {execution_id} did not finish")

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    yield running
    running.stop()


def create_pipeline(
    server: Server, directory: Path, name: str, source: dict[str, str], **extra: Any
) -> None:
    """Declare ``name`` in ``directory``/pipeline.yml; create it with `caravan pipeline create`."""
    declaration = {
        "pipeline": {
            "name": name,
            "pipelineType": "V2",
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Checkout",
                            "actionTypeId": {
                                "category": "Source",
                                "owner": "Custom",
                                "provider": "Git",
                                "version": "1",
                            },
                            "configuration": source,
                            "outputArtifacts": [{"name": "Src"}],
                        }
                    ],
                },
                {
                    "name": "Review",
                    "actions": [
                        {
                            "name": "Approve",
                            "actionTypeId": {
                                "category": "Approval",
                                "owner": "AWS",
                                "provider": "Manual",
                                "version": "1",
                            },
                        }
                    ],
                },
            ],
            **extra,
        }
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pipeline.yml"
    path.write_text(yaml.safe_dump(declaration))
    done = subprocess.run(
        [str(CARAVAN), "--url", server.url, "pipeline", "create", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_a_commit_starts_the_pipeline_at_once_and_an_excluded_branch_does_not(
    tmp_path: Path, server: Server
) -> None:
    repo = make_repo(tmp_path / "repo")
    branches = {"includes": ["main", "feature/*"], "excludes": ["wip/*"]}
    create_pipeline(
        server,
        tmp_path / "ci",
        "app",
        {"Repository": "../repo", "Branch": "main"},  # relative to the declaration's directory
        triggers=[
            {
                "providerType": "CodeStarSourceConnection",
                "gitConfiguration": {
                    "sourceActionName": "Checkout",
                    "push": [{"branches": branches}],
                },
            }
        ],
    )
    install_hooks(repo, server.url)

    started = time.monotonic()
    sha, printed = commit(repo, "src/main.py", "print('v2')\n")
    # The hook has already started it: one look, no waiting.
    (execution,) = server.executions("app")
    assert time.monotonic() - started < 3
    assert "caravan: started pipeline app" in printed
    assert execution["sourceRevisions"] == [{"actionName": "Checkout", "revisionId": sha}]
    assert execution["trigger"]["triggerDetail"].endswith(f"@main {sha[:7]}")
    (revision,) = server.wait_for_source("app", execution["pipelineExecutionId"])
    assert revision["revisionId"] == sha  # the source action fetched exactly that commit

    git(repo, "checkout", "-q", "-b", "wip/idea")
    _, printed = commit(repo, "src/idea.py", "pass\n")
    assert "started" not in printed
    assert len(server.executions("app")) == 1

    git(repo, "checkout", "-q", "-b", "feature/login", "main")
    feature_sha, printed = commit(repo, "src/login.py", "pass\n")
    assert "caravan: started pipeline app" in printed
    assert server.executions("app")[0]["sourceRevisions"][0]["revisionId"] == feature_sha

    server.stop()
    git(repo, "checkout", "-q", "main")
    after, printed = commit(repo, "src/offline.py", "pass\n")  # git() asserts exit status 0
    assert after != sha
    assert f"caravan: server not reachable at {server.url}; no pipeline started" in printed


def test_a_push_into_a_bare_repository_starts_its_default_branch_pipeline(
    tmp_path: Path, server: Server
) -> None:
    work = make_repo(tmp_path / "work")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(origin))
    git(work, "remote", "add", "origin", str(origin))
    # No Branch and no trigger: the bare repository's default branch, AWS's default rule.
    create_pipeline(server, tmp_path / "ci", "bare", {"Repository": f"file://{origin}"})
    install_hooks(origin, server.url)

    sha, _ = commit(work, "lib/core.py", "pass\n")
    pushed = git(work, "push", "-q", "origin", "main")
    assert "caravan: started pipeline bare" in pushed.stderr  # relayed by git as "remote: ..."
    (execution,) = server.executions("bare")
    assert execution["sourceRevisions"] == [{"actionName": "Checkout", "revisionId": sha}]

    git(work, "checkout", "-q", "-b", "topic")
    commit(work, "lib/topic.py", "pass\n")
    pushed = git(work, "push", "-q", "origin", "topic")
    assert "started" not in pushed.stderr
    assert len(server.executions("bare")) == 1


def test_install_keeps_an_existing_hook_running_and_uninstall_restores_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    hooks = repo / ".git" / "hooks"
    marker = tmp_path / "user-hook-ran"
    (hooks / "post-commit").write_text(f"#!/bin/sh\necho ran > {marker}\n")
    (hooks / "post-commit").chmod(0o755)

    install_hooks(repo, "http://127.0.0.1:9")  # nothing listens on the discard port
    install_hooks(repo, "http://127.0.0.1:9")  # twice: caravan's own hooks are rewritten
    assert (hooks / "post-commit.local").read_text().startswith("#!/bin/sh\necho ran")
    _, printed = commit(repo, "x.txt", "x\n")
    assert marker.read_text() == "ran\n"
    assert "server not reachable" in printed

    uninstall_hooks(repo)
    assert not (hooks / "post-commit.local").exists()
    assert (hooks / "post-commit").read_text().startswith("#!/bin/sh\necho ran")
    assert not any((hooks / name).exists() for name in HOOKS if name != "post-commit")


def test_install_refuses_when_it_could_not_keep_the_users_hook(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    hooks = repo / ".git" / "hooks"
    (hooks / "post-merge").write_text("#!/bin/sh\n")
    (hooks / "post-merge.local").write_text("#!/bin/sh\n")
    with pytest.raises(InvalidInputError, match=r"post-merge\.local exists"):
        install_hooks(repo, "http://127.0.0.1:9")
    assert not (hooks / "post-commit").exists()  # nothing half-installed


def test_the_hook_command_installs_and_uninstalls(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    installed = subprocess.run(
        [str(CARAVAN), "hook", "install", str(repo), "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    assert "http://127.0.0.1:9" in (repo / ".git" / "hooks" / "post-receive").read_text()
    bad = subprocess.run(
        [str(CARAVAN), "hook", "install", str(tmp_path), "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a git repository" in bad.stderr
    removed = subprocess.run(
        [str(CARAVAN), "hook", "uninstall", str(repo)], capture_output=True, text=True
    )
    assert removed.returncode == 0
    assert not (repo / ".git" / "hooks" / "post-receive").exists()
